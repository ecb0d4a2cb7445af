/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Codec object: parameter validation, the per-hidden-size hasher cache, the
 * grow-only workspaces, and the layout arithmetic shared by the encoder and
 * the decoder (codec_encode.c, codec_decode.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/common/quant_math.h"
#include "lshmoe/codec_internal.h"
#include "lshmoe/common/error.h"

static int is_pow2(long v)
{
    return v > 0 && (v & (v - 1)) == 0;
}

/* log2(2 * cdim): bits of one hash value in a packed key. */
static int hash_bits(int cdim)
{
    int b = 0;
    while ((1 << b) < 2 * cdim)
        b++;
    return b;
}

static lshmoe_status_t check_params(const lshmoe_codec_params_t *p)
{
    const lshmoe_kn_lsh_params_t *l = &p->lsh;

    if (l->num_hashes < 1 || l->num_hashes > 16)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "codec: num_hashes %d is not in 1..16", l->num_hashes);
    if (l->cdim < 2 || l->cdim > 256 || !is_pow2(l->cdim))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "codec: cdim %d is not a power of two in 2..256", l->cdim);
    if (l->reduce != LSHMOE_REDUCE_PAD && l->reduce != LSHMOE_REDUCE_FOLD)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "codec: reduce %d is neither pad (%d) nor fold (%d)",
                            l->reduce, LSHMOE_REDUCE_PAD, LSHMOE_REDUCE_FOLD);
    /* reduce_dim only matters for FOLD, but a PAD config with garbage in it
     * is still a bad config: it would hash differently once switched. */
    if (l->reduce_dim < 16 || l->reduce_dim > 4096 || !is_pow2(l->reduce_dim))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "codec: reduce_dim %d is not a power of two in 16..4096",
                            l->reduce_dim);
    if (l->reduce == LSHMOE_REDUCE_FOLD && l->cdim > l->reduce_dim)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "codec: cdim %d exceeds fold reduce_dim %d",
                            l->cdim, l->reduce_dim);
    if (l->rounds < 1 || l->rounds > 3)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "codec: rounds %d is not in 1..3", l->rounds);
    if (p->compress != 0 && p->compress != 1)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "codec: compress %d is neither 0 nor 1", p->compress);
    if (p->residual_bits != 0 && p->residual_bits != 4 && p->residual_bits != 8)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "codec: residual_bits %d is not 0, 4 or 8",
                            p->residual_bits);
    if (!(p->min_ratio >= 0.0) || !isfinite(p->min_ratio))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "codec: min_ratio %g is not a finite value >= 0",
                            p->min_ratio);
    if (p->error_guard != 0 && p->error_guard != 1)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "codec: error_guard %d is neither 0 nor 1", p->error_guard);
    if (!(p->max_error >= 0.0 && p->max_error <= 1000.0))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "codec: max_error %g is not in 0..1000", p->max_error);
    if (p->mode < LSHMOE_CODEC_LSH || p->mode > LSHMOE_CODEC_BUDGET_ROWS)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "codec: mode %d is not a codec mode (0..%d)", p->mode,
                            (int)LSHMOE_CODEC_BUDGET_ROWS);
    if (p->search < LSHMOE_CODEC_SEARCH_SAMPLE || p->search > LSHMOE_CODEC_SEARCH_LINEAR)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "codec: search %d is not 0..3",
                            p->search);
    if (p->mode != LSHMOE_CODEC_LSH && p->residual_bits != 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "codec: coded residuals (residual_bits %d) combine only "
                            "with the lsh codec, not mode %d", p->residual_bits, p->mode);
    int refine = p->mode == LSHMOE_CODEC_LSH_REFINE ||
                 p->mode == LSHMOE_CODEC_LSH_REFINE_INT8 ||
                 p->mode == LSHMOE_CODEC_LSH_REFINE_INT4 ||
                 p->mode == LSHMOE_CODEC_LSH_REFINE_INT4E;
    if (refine && (size_t)l->num_hashes * (size_t)hash_bits(l->cdim) > 63)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "codec: refinement needs packed keys, num_hashes %d x "
                            "%d bits exceeds 63", l->num_hashes, hash_bits(l->cdim));
    return LSHMOE_OK;
}

/* Ladder of hash-function counts the budget mode tries (docs/algorithm.md). */
static const int ladder_l[] = {2, 3, 4, 5, 6, 8, 10, 12};

int lshmoe_codec_ladder_l(const lshmoe_codec_t *c, int *ls)
{
    int n = 0;
    for (size_t i = 0; i < sizeof ladder_l / sizeof ladder_l[0]; i++)
        if (ladder_l[i] * c->ladder_bits <= 63 && ladder_l[i] <= LSHMOE_CODEC_MAX_L)
            ls[n++] = ladder_l[i];
    return n;
}

lshmoe_status_t lshmoe_codec_create(const lshmoe_codec_params_t *params,
                                    lshmoe_codec_t **codec_p)
{
    if (codec_p == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "codec: codec_p is NULL");
    *codec_p = NULL;
    if (params == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "codec: params is NULL");
    LSHMOE_CHECK(check_params(params));

    lshmoe_codec_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY,
                            "codec: cannot allocate %zu bytes", sizeof *c);
    c->params = *params;
    c->ladder_bits = hash_bits(params->lsh.cdim);
    if (params->mode == LSHMOE_CODEC_BUDGET) {
        /* one hash at the ladder's largest L serves every smaller L: the
         * first L values of a packed key are the key of L functions */
        int ls[16];
        int n = lshmoe_codec_ladder_l(c, ls);
        c->params.lsh.num_hashes = n > 0 ? ls[n - 1] : 1;
    }
    *codec_p = c;
    return LSHMOE_OK;
}

void lshmoe_codec_destroy(lshmoe_codec_t *codec)
{
    if (codec == NULL)
        return;
    for (int i = 0; i < LSHMOE_CODEC_HASHERS; i++)
        lshmoe_kn_hasher_destroy(codec->slots[i].hasher);
    lshmoe_buf_free(&codec->keys);
    lshmoe_buf_free(&codec->cluster_of);
    lshmoe_buf_free(&codec->group_ws);
    lshmoe_buf_free(&codec->hash_ws);
    lshmoe_buf_free(&codec->acc);
    lshmoe_buf_free(&codec->sizes);
    lshmoe_buf_free(&codec->scratch);
    lshmoe_buf_free(&codec->xf);
    lshmoe_buf_free(&codec->keys_l);
    lshmoe_buf_free(&codec->qrows);
    lshmoe_buf_free(&codec->nrows_tmp);
    lshmoe_buf_free(&codec->refine_ws);
    lshmoe_buf_free(&codec->sample_ws);
    lshmoe_buf_free(&codec->norms);
    lshmoe_buf_free(&codec->probe_rows);
    lshmoe_buf_free(&codec->groups_l);
    free(codec);
}

lshmoe_status_t lshmoe_codec_hasher(lshmoe_codec_t *codec, size_t hidden,
                                    const lshmoe_kn_hasher_t **h_p)
{
    lshmoe_codec_hasher_slot_t *victim = &codec->slots[0];

    codec->clock++;
    for (int i = 0; i < LSHMOE_CODEC_HASHERS; i++) {
        lshmoe_codec_hasher_slot_t *s = &codec->slots[i];
        if (s->hidden == hidden) {
            s->used = codec->clock;
            *h_p = s->hasher;
            return LSHMOE_OK;
        }
        /* empty slots have used == 0 and so are taken first */
        if (s->used < victim->used)
            victim = s;
    }

    lshmoe_kn_hasher_t *h = NULL;
    lshmoe_status_t st = lshmoe_kn_hasher_create(&codec->params.lsh, hidden, &h);
    if (st == LSHMOE_ERR_INVALID_ARG) {
        /* The params are valid (checked at create) but cannot hash this
         * width, e.g. PAD with next_pow2(hidden) < cdim or hidden > 2^24.
         * Such a tensor is not one LSH can cluster: remember that and send
         * it RAW rather than fail the exchange. */
        h = NULL;
        lshmoe_error_clear();
    } else if (LSHMOE_IS_ERR(st)) {
        return st;
    }
    lshmoe_kn_hasher_destroy(victim->hasher);
    victim->hidden = hidden;
    victim->hasher = h;
    victim->used = codec->clock;
    *h_p = h;
    return LSHMOE_OK;
}

/* a + b and a * b on 64 bits, returning -1 on overflow. */
static int add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a > UINT64_MAX - b)
        return -1;
    *out = a + b;
    return 0;
}

static int mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a != 0 && b > UINT64_MAX / a)
        return -1;
    *out = a * b;
    return 0;
}

static int padded(uint64_t n, uint64_t *out)
{
    if (n > UINT64_MAX - 7u)
        return -1;
    *out = lshmoe_pad8(n);
    return 0;
}

int lshmoe_wire_layout(uint16_t flags, size_t elem_size, uint64_t hidden,
                       uint64_t ntokens, uint64_t nrows,
                       lshmoe_wire_layout_t *lay)
{
    uint64_t row_bytes, end, p;

    memset(lay, 0, sizeof *lay);
    int fmt = lshmoe_wire_fmt(flags);
    if (fmt != LSHMOE_QM_NATIVE) {
        if (fmt >= LSHMOE_QM_COUNT || hidden > UINT32_MAX)
            return -1;
        row_bytes = lshmoe_qm_row_bytes(fmt, hidden);
        if (mul_u64(row_bytes, nrows, &lay->rows_bytes))
            return -1;
    } else if (mul_u64(elem_size, hidden, &row_bytes) ||
        mul_u64(row_bytes, nrows, &lay->rows_bytes))
        return -1;
    lay->rows_off = LSHMOE_WIRE_HEADER_BYTES;
    if (padded(lay->rows_bytes, &p) || add_u64(lay->rows_off, p, &end))
        return -1;

    if (!(flags & LSHMOE_WIRE_F_RAW)) {
        uint64_t isz = (flags & LSHMOE_WIRE_F_IDX32) ? 4u : 2u;
        lay->idx_off = end;
        if (mul_u64(isz, ntokens, &lay->idx_bytes) ||
            padded(lay->idx_bytes, &p) || add_u64(end, p, &end))
            return -1;
        int bits = (flags & LSHMOE_WIRE_F_RESID8) ? 8
                 : (flags & LSHMOE_WIRE_F_RESID4) ? 4 : 0;
        if (bits != 0) {
            /* residual_bytes() takes size_t: keep hidden in range first */
            if (hidden > SIZE_MAX / 2)
                return -1;
            lay->resid_stride = lshmoe_kn_residual_bytes((size_t)hidden, bits);
            lay->resid_off = end;
            if (mul_u64(lay->resid_stride, ntokens, &lay->resid_bytes) ||
                padded(lay->resid_bytes, &p) || add_u64(end, p, &end))
                return -1;
        }
    }
    /* The whole segment must be addressable on this host. */
    if (end > SIZE_MAX)
        return -1;
    lay->payload_bytes = end - LSHMOE_WIRE_HEADER_BYTES;
    return 0;
}

lshmoe_status_t lshmoe_codec_max_bytes(lshmoe_dtype_t dtype, size_t hidden,
                                       size_t ntokens, size_t *bytes_p)
{
    lshmoe_wire_layout_t lay;
    size_t es = lshmoe_dtype_size(dtype);

    if (bytes_p == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "codec: bytes_p is NULL");
    if (es == 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "codec: invalid dtype %d",
                            (int)dtype);
    if (hidden == 0 || hidden > UINT32_MAX)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "codec: hidden %zu is not in 1..%u", hidden, UINT32_MAX);
    if (lshmoe_wire_layout(LSHMOE_WIRE_F_RAW, es, hidden, ntokens, ntokens, &lay))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "codec: segment of %zu tokens of %zu x %s overflows",
                            ntokens, hidden, lshmoe_dtype_name(dtype));
    *bytes_p = (size_t)(LSHMOE_WIRE_HEADER_BYTES + lay.payload_bytes);
    return LSHMOE_OK;
}

void lshmoe_wire_header_write(const lshmoe_wire_header_t *h, uint8_t *dst)
{
    lshmoe_put_le32(dst + LSHMOE_WIRE_OFF_MAGIC, h->magic);
    lshmoe_put_le16(dst + LSHMOE_WIRE_OFF_VERSION, h->version);
    lshmoe_put_le16(dst + LSHMOE_WIRE_OFF_FLAGS, h->flags);
    lshmoe_put_le32(dst + LSHMOE_WIRE_OFF_DTYPE, h->dtype);
    lshmoe_put_le32(dst + LSHMOE_WIRE_OFF_HIDDEN, h->hidden);
    lshmoe_put_le64(dst + LSHMOE_WIRE_OFF_NTOKENS, h->ntokens);
    lshmoe_put_le64(dst + LSHMOE_WIRE_OFF_NROWS, h->nrows);
    lshmoe_put_le64(dst + LSHMOE_WIRE_OFF_PAYLOAD, h->payload_bytes);
    lshmoe_put_le64(dst + LSHMOE_WIRE_OFF_CHECKSUM, h->checksum);
}

void lshmoe_wire_header_read(const uint8_t *src, lshmoe_wire_header_t *h)
{
    h->magic = lshmoe_get_le32(src + LSHMOE_WIRE_OFF_MAGIC);
    h->version = lshmoe_get_le16(src + LSHMOE_WIRE_OFF_VERSION);
    h->flags = lshmoe_get_le16(src + LSHMOE_WIRE_OFF_FLAGS);
    h->dtype = lshmoe_get_le32(src + LSHMOE_WIRE_OFF_DTYPE);
    h->hidden = lshmoe_get_le32(src + LSHMOE_WIRE_OFF_HIDDEN);
    h->ntokens = lshmoe_get_le64(src + LSHMOE_WIRE_OFF_NTOKENS);
    h->nrows = lshmoe_get_le64(src + LSHMOE_WIRE_OFF_NROWS);
    h->payload_bytes = lshmoe_get_le64(src + LSHMOE_WIRE_OFF_PAYLOAD);
    h->checksum = lshmoe_get_le64(src + LSHMOE_WIRE_OFF_CHECKSUM);
}

void lshmoe_codec_choice_name(int id, char *buf, size_t n)
{
    static const char *fmts[LSHMOE_CODEC_NFMTS] = {"native", "fp8", "int8", "int4",
                                                   "int2", "int4e"};
    if (n == 0)
        return;
    if (id < 0 || id >= LSHMOE_CODEC_NCHOICES) {
        snprintf(buf, n, "invalid");
        return;
    }
    int fmt = id % LSHMOE_CODEC_NFMTS, refine = (id / LSHMOE_CODEC_NFMTS) % 2;
    int L = lshmoe_codec_choice_l(id);
    if (id == 0)
        snprintf(buf, n, "raw");
    else if (L == 0)
        snprintf(buf, n, "%s", fmts[fmt]);
    else
        snprintf(buf, n, "lsh%d%s/%s", L, refine ? "+r" : "", fmts[fmt]);
}
