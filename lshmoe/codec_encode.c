/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Segment encoder. Order of work: decide whether compression can pay at all
 * (cheap tests first, then the best case of one row, then a sample of the
 * tokens: codec_probe.c), hash and group, size
 * the compressed segment from the real row count, and only then write the
 * segment: centroids go straight into `out`, so a compressed segment costs
 * no copy of its rows. The quality guard (centroid error above max_error:
 * RAW) runs after the centroids and before anything else is written. Format: docs/wire-format.md.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "lshmoe/codec_internal.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"
#include "lshmoe/common/timer.h"

static uint16_t resid_flag(int bits)
{
    return bits == 8 ? LSHMOE_WIRE_F_RESID8
         : bits == 4 ? LSHMOE_WIRE_F_RESID4 : 0;
}

/* Compressed flags for `nrows` rows. */
uint16_t lshmoe_codec_comp_flags(const lshmoe_codec_t *c, size_t nrows)
{
    uint16_t f = resid_flag(c->params.residual_bits);
    if (nrows > LSHMOE_WIRE_IDX16_MAX_ROWS)
        f |= LSHMOE_WIRE_F_IDX32;
    return f;
}

/* Does a compressed segment of `nrows` rows pay? Fills *lay when it does. */
int lshmoe_codec_comp_pays(const enc_job_t *j, size_t nrows, lshmoe_wire_layout_t *lay)
{
    if (lshmoe_wire_layout(lshmoe_codec_comp_flags(j->codec, nrows), j->es, j->hidden,
                           j->ntokens, nrows, lay))
        return 0;
    uint64_t len = LSHMOE_WIRE_HEADER_BYTES + lay->payload_bytes;
    if (len >= j->raw_len)
        return 0;
    /* ratio as users see it: token bytes per wire byte */
    return (double)j->token_bytes / (double)len >= j->codec->params.min_ratio;
}

void lshmoe_codec_zero_pad(uint8_t *seg, uint64_t off, uint64_t bytes)
{
    uint64_t end = lshmoe_pad8(off + bytes);
    memset(seg + off + bytes, 0, (size_t)(end - off - bytes));
}

void lshmoe_codec_finish_header(uint8_t *seg, uint16_t flags, const enc_job_t *j,
                                size_t nrows, uint64_t payload_bytes)
{
    lshmoe_wire_header_t h = {
        .magic = LSHMOE_WIRE_MAGIC, .version = lshmoe_wire_version_for(flags),
        .flags = flags, .dtype = (uint32_t)j->dtype,
        .hidden = (uint32_t)j->hidden, .ntokens = j->ntokens,
        .nrows = nrows, .payload_bytes = payload_bytes, .checksum = 0,
    };
    lshmoe_wire_header_write(&h, seg);
    h.checksum = lshmoe_wire_segment_checksum(
        seg, seg + LSHMOE_WIRE_HEADER_BYTES, (size_t)payload_bytes);
    lshmoe_put_le64(seg + LSHMOE_WIRE_OFF_CHECKSUM, h.checksum);
}

size_t lshmoe_codec_write_raw(const enc_job_t *j)
{
    uint64_t payload = j->raw_len - LSHMOE_WIRE_HEADER_BYTES;
    if (j->token_bytes > 0)
        memcpy(j->out + LSHMOE_WIRE_HEADER_BYTES, j->tokens, j->token_bytes);
    lshmoe_codec_zero_pad(j->out, LSHMOE_WIRE_HEADER_BYTES, j->token_bytes);
    lshmoe_codec_finish_header(j->out, LSHMOE_WIRE_F_RAW, j, j->ntokens, payload);
    return j->raw_len;
}

static void write_index(uint8_t *dst, const uint32_t *cluster_of, size_t n,
                        int idx32)
{
    if (idx32) {
        for (size_t i = 0; i < n; i++)
            lshmoe_put_le32(dst + 4 * i, cluster_of[i]);
    } else {
        for (size_t i = 0; i < n; i++)
            lshmoe_put_le16(dst + 2 * i, (uint16_t)cluster_of[i]);
    }
}

/* Is the quality guard on for this codec? With residuals the receiver gets
 * centroid + residual, so the centroid error is not what it sees. */
int lshmoe_codec_guard_on(const lshmoe_codec_t *c)
{
    return c->params.error_guard && c->params.residual_bits == 0;
}

/*
 * Relative L2 reconstruction error of the segment if it travels as these
 * centroids: sqrt(sum ||x_i - c_k||^2 / sum ||x_i||^2), fp64 sums. Tokens in
 * clusters of one are sent exactly (0 error, but their energy counts);
 * tokens with NaN/Inf (always alone) are left out of both sums. The rows
 * are taken as the receiver will decode them (rounded to the dtype); the
 * sums come with the centroids (lshmoe_kn_centroids_guard).
 */
double lshmoe_codec_centroid_error(double num, double den)
{
    if (num <= 0.0)
        return 0.0;
    return den > 0.0 ? sqrt(num / den) : INFINITY;
}

/*
 * Writes the compressed segment; workspaces hold cluster_of already. With
 * the quality guard, *kept_p = 0 when the centroid error exceeds max_error:
 * the caller then writes the segment RAW over what is here. err[] receives
 * the guard's sums {sum |x - x'|^2, sum |x|^2} and the error; err[2] stays
 * -1 when the guard is off (the error is then not measured).
 */
static lshmoe_status_t write_compressed(const enc_job_t *j, size_t nrows,
                                        const lshmoe_wire_layout_t *lay,
                                        int *kept_p, double err[3])
{
    lshmoe_codec_t *c = j->codec;
    const uint32_t *cluster_of = c->cluster_of.ptr;
    uint16_t flags = lshmoe_codec_comp_flags(c, nrows);
    int bits = c->params.residual_bits;
    size_t acc_bytes, scratch_bytes = 0;

    *kept_p = 1;
    /* acc: centroid sums */
    LSHMOE_CHECK(lshmoe_mul_size(nrows * j->hidden, sizeof(float), &acc_bytes));
    LSHMOE_CHECK(lshmoe_buf_reserve(&c->acc, acc_bytes));
    LSHMOE_CHECK(lshmoe_buf_reserve(&c->sizes, nrows * sizeof(uint32_t)));

    /* The kernels store whole elements: when `out` is not aligned for
     * them (rare; callers' buffers normally come from malloc), the rows
     * are built in scratch and copied. */
    uint8_t *rows = j->out + lay->rows_off;
    int aligned = ((uintptr_t)rows % 8u) == 0;
    if (!aligned)
        scratch_bytes = (size_t)lshmoe_pad8(lay->rows_bytes);
    if (bits != 0) {
        /* residual kernels: one token's `hidden` floats */
        size_t rs;
        LSHMOE_CHECK(lshmoe_mul_size(j->hidden, sizeof(float), &rs));
        scratch_bytes += rs;
    }
    LSHMOE_CHECK(lshmoe_buf_reserve(&c->scratch, scratch_bytes));
    uint8_t *rows_w = aligned ? rows : (uint8_t *)c->scratch.ptr;
    float *fscratch = (float *)((uint8_t *)c->scratch.ptr +
                                (aligned ? 0 : lshmoe_pad8(lay->rows_bytes)));

    if (lshmoe_codec_guard_on(c)) {
        lshmoe_kn_centroids_guard(j->tokens, j->dtype, j->hidden, j->ntokens, cluster_of,
                                  nrows, rows_w, c->sizes.ptr, c->acc.ptr, &err[0], &err[1]);
        err[2] = lshmoe_codec_centroid_error(err[0], err[1]);
        if (err[2] > c->params.max_error) {
            *kept_p = 0;
            return LSHMOE_OK;
        }
    } else {
        lshmoe_kn_centroids(j->tokens, j->dtype, j->hidden, j->ntokens, cluster_of,
                            nrows, rows_w, c->sizes.ptr, c->acc.ptr);
    }
    if (!aligned)
        memcpy(rows, rows_w, (size_t)lay->rows_bytes);
    lshmoe_codec_zero_pad(j->out, lay->rows_off, lay->rows_bytes);

    write_index(j->out + lay->idx_off, cluster_of, j->ntokens,
                (flags & LSHMOE_WIRE_F_IDX32) != 0);
    lshmoe_codec_zero_pad(j->out, lay->idx_off, lay->idx_bytes);

    if (bits != 0) {
        lshmoe_kn_residual_encode(j->tokens, rows_w, j->dtype, j->hidden,
                                  j->ntokens, cluster_of, bits,
                                  j->out + lay->resid_off, fscratch);
        lshmoe_codec_zero_pad(j->out, lay->resid_off, lay->resid_bytes);
    }
    lshmoe_codec_finish_header(j->out, flags, j, nrows, lay->payload_bytes);
    return LSHMOE_OK;
}

/* Hashes and groups; *nrows_p = 0 when the segment is not to be hashed. */
static lshmoe_status_t hash_and_group(const enc_job_t *j, size_t *nrows_p,
                                      size_t *nonfinite_p)
{
    lshmoe_codec_t *c = j->codec;
    const lshmoe_kn_hasher_t *h;
    size_t n = j->ntokens, bytes;

    *nrows_p = 0;
    LSHMOE_CHECK(lshmoe_codec_hasher(c, j->hidden, &h));
    if (h == NULL)
        return LSHMOE_OK;
    LSHMOE_CHECK(lshmoe_mul_size(n, sizeof(uint64_t), &bytes));
    LSHMOE_CHECK(lshmoe_buf_reserve(&c->keys, bytes));
    LSHMOE_CHECK(lshmoe_buf_reserve(&c->cluster_of, n * sizeof(uint32_t)));
    LSHMOE_CHECK(lshmoe_buf_reserve(&c->group_ws, lshmoe_kn_group_ws_size(n)));
    LSHMOE_CHECK(lshmoe_buf_reserve(&c->hash_ws, lshmoe_kn_hash_ws_size(h)));

    lshmoe_kn_hash(h, j->tokens, j->dtype, n, c->keys.ptr, c->hash_ws.ptr,
                   nonfinite_p);
    lshmoe_kn_group(c->keys.ptr, n, c->cluster_of.ptr, nrows_p, c->group_ws.ptr);
    return LSHMOE_OK;
}

static lshmoe_status_t check_args(const lshmoe_codec_t *codec, const void *tokens,
                                  lshmoe_dtype_t dtype, size_t hidden,
                                  size_t ntokens, const void *out, size_t cap,
                                  const size_t *len_p, size_t *raw_len_p)
{
    if (codec == NULL || len_p == NULL || out == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "codec encode: codec, out and len_p must not be NULL");
    if (tokens == NULL && ntokens > 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "codec encode: tokens is NULL for %zu tokens", ntokens);
    LSHMOE_CHECK(lshmoe_codec_max_bytes(dtype, hidden, ntokens, raw_len_p));
    if (cap < *raw_len_p)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "codec encode: out holds %zu bytes, max_bytes is %zu",
                            cap, *raw_len_p);
    return LSHMOE_OK;
}

lshmoe_status_t lshmoe_codec_encode(lshmoe_codec_t *codec, const void *tokens,
                                    lshmoe_dtype_t dtype, size_t hidden,
                                    size_t ntokens, void *out, size_t cap,
                                    size_t *len_p, lshmoe_codec_stats_t *st)
{
    enc_job_t j;
    lshmoe_wire_layout_t lay;
    size_t nrows = 0, nonfinite = 0, len;

    LSHMOE_CHECK(check_args(codec, tokens, dtype, hidden, ntokens, out, cap,
                            len_p, &j.raw_len));
    j.codec = codec;
    j.tokens = tokens;
    j.dtype = dtype;
    j.es = lshmoe_dtype_size(dtype);
    j.hidden = hidden;
    j.ntokens = ntokens;
    j.token_bytes = ntokens * hidden * j.es; /* fits: max_bytes checked */
    j.out = out;

    if (codec->params.mode != LSHMOE_CODEC_LSH) {
        LSHMOE_CHECK(lshmoe_codec_encode_rd(&j, len_p, st));
        if (*len_p != 0)
            return LSHMOE_OK;
        /* NaN/Inf tokens: never quantized; the LSH path keeps them exact
         * (budget-rows: the whole segment raw below, since its rows need
         * not be tokens and must not be clustered) */
    }
    double t0 = lshmoe_now(), t1 = t0;
    /* Cheap tests first; then the best case (every token in one row): if
     * even that does not pay, hashing cannot change the answer. The group
     * kernel takes fewer than 2^32 tokens. */
    int try_comp = codec->params.mode != LSHMOE_CODEC_BUDGET_ROWS &&
                   codec->params.compress && lshmoe_dtype_is_float(dtype) &&
                   ntokens > 0 && ntokens >= codec->params.min_tokens &&
                   (uint64_t)ntokens < ((uint64_t)1 << 32) &&
                   lshmoe_codec_comp_pays(&j, 1, &lay);
    int probed_raw = 0;
    if (try_comp && 4 * lshmoe_codec_probe_sample(ntokens) <= ntokens) {
        /* a sample first: a segment that cannot reach MIN_RATIO goes RAW
         * for a few percent of the hashing (codec_probe.c) */
        size_t est;
        LSHMOE_CHECK(lshmoe_codec_probe(codec, tokens, dtype, hidden, ntokens, &est));
        probed_raw = est > 0 && !lshmoe_codec_comp_pays(&j, est, &lay);
        try_comp = !probed_raw;
    }
    if (try_comp) {
        LSHMOE_CHECK(hash_and_group(&j, &nrows, &nonfinite));
        t1 = lshmoe_now();
        try_comp = nrows > 0 && lshmoe_codec_comp_pays(&j, nrows, &lay);
    }
    double err[3] = {0.0, 0.0, -1.0};
    if (try_comp)
        LSHMOE_CHECK(write_compressed(&j, nrows, &lay, &try_comp, err));
    if (try_comp) {
        len = (size_t)(LSHMOE_WIRE_HEADER_BYTES + lay.payload_bytes);
    } else {
        len = lshmoe_codec_write_raw(&j);
        nrows = ntokens;
    }
    double t2 = lshmoe_now();

    *len_p = len;
    if (st != NULL) {
        st->tokens += ntokens;
        st->rows += nrows;
        st->bytes_in += j.token_bytes;
        st->bytes_wire += len;
        st->segments_compressed += try_comp ? 1u : 0u;
        st->segments_raw += try_comp ? 0u : 1u;
        st->segments_probed_raw += probed_raw ? 1u : 0u;
        st->choice_segments[try_comp ? lshmoe_codec_choice_id(codec->params.lsh.num_hashes, 0,
                                                              0)
                                     : 0]++;
        /* only tokens kept out of clusters in a compressed segment */
        st->tokens_nonfinite += try_comp ? nonfinite : 0u;
        st->time_hash_s += t1 - t0;
        st->time_pack_s += t2 - t1;
        /* the guard's measurement, as the rate-distortion modes report it */
        if (try_comp && err[2] >= 0.0) {
            st->err_num += err[0];
            st->err_den += err[1];
        }
        st->last_error = try_comp ? err[2] : 0.0;
    }
    return LSHMOE_OK;
}
