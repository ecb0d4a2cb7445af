/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The rate-distortion encoder: every codec mode but LSH. A segment can
 * travel as
 *   - its tokens in a row format (native, FP8, int8, int4, int2), or
 *   - LSH clusters (L hash functions, optionally one near-tuple refinement
 *     step) whose centroids are in a row format, plus a per-token index,
 * or RAW (exact). The error of a candidate is measured, not estimated:
 *     err = sqrt(sum_i |x_i - x'_i|^2 / sum_i |x_i|^2)   (fp64 sums)
 * where x'_i is exactly what the decoder will write (rows decoded in fp32
 * and rounded to the dtype), the same definition as the LSH guard.
 *
 * Budget mode sorts the candidates by wire bytes and takes the first whose
 * error is within max_error; nothing fits: RAW. Cost: one pass to widen the
 * tokens to fp32 (kept for the segment), one hash at the ladder's largest L
 * (smaller L are prefixes of its packed key), a grouping per L (keys only),
 * then per candidate tried one error pass that stops as soon as the running
 * error passes the budget; clustered candidates also need a centroid pass
 * when their (L, refine) differs from the previous one (refinement: a
 * second one). codec stats count the token rows visited (search_tokens).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/common/quant_math.h"
#include "lshmoe/codec_internal.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"
#include "lshmoe/common/timer.h"

#define MAX_CAND 128

typedef struct cand {
    int      L, refine, fmt;
    size_t   nrows;    /* rows before refinement (refinement only removes) */
    uint64_t bytes;    /* segment bytes (upper bound with refinement)      */
} cand_t;

typedef struct rd {
    const enc_job_t *j;
    lshmoe_codec_t  *c;
    const float     *x;          /* tokens in fp32                          */
    double           den, limit; /* sum |x|^2; accept iff sse <= limit      */
    int              measure;    /* 0: fixed mode without the guard         */
    int              hashed;
    /* the clustering the workspaces hold now */
    int              cur_L, cur_refine;
    size_t           cur_nrows;
    uint64_t         visited, evals;
} rd_t;

/* The one encoding of each fixed mode: {L, refine, fmt}; L -1 = the
 * codec's num_hashes. */
static void fixed_mode(int mode, int *L, int *refine, int *fmt)
{
    static const int tab[][3] = {
        [LSHMOE_CODEC_NATIVE] = {0, 0, LSHMOE_QM_NATIVE},
        [LSHMOE_CODEC_FP8] = {0, 0, LSHMOE_QM_FP8},
        [LSHMOE_CODEC_INT8] = {0, 0, LSHMOE_QM_INT8},
        [LSHMOE_CODEC_INT4] = {0, 0, LSHMOE_QM_INT4},
        [LSHMOE_CODEC_INT2] = {0, 0, LSHMOE_QM_INT2},
        [LSHMOE_CODEC_LSH_FP8] = {-1, 0, LSHMOE_QM_FP8},
        [LSHMOE_CODEC_LSH_INT8] = {-1, 0, LSHMOE_QM_INT8},
        [LSHMOE_CODEC_LSH_INT4] = {-1, 0, LSHMOE_QM_INT4},
        [LSHMOE_CODEC_LSH_REFINE] = {-1, 1, LSHMOE_QM_NATIVE},
        [LSHMOE_CODEC_LSH_REFINE_INT8] = {-1, 1, LSHMOE_QM_INT8},
        [LSHMOE_CODEC_LSH_REFINE_INT4] = {-1, 1, LSHMOE_QM_INT4},
    };
    *L = tab[mode][0];
    *refine = tab[mode][1];
    *fmt = tab[mode][2];
}

static uint16_t cand_flags(const cand_t *k, size_t nrows)
{
    uint16_t f = (uint16_t)(k->fmt << LSHMOE_WIRE_FMT_SHIFT);
    if (k->L == 0)
        f |= LSHMOE_WIRE_F_RAW;
    else if (nrows > LSHMOE_WIRE_IDX16_MAX_ROWS)
        f |= LSHMOE_WIRE_F_IDX32;
    return f;
}

/* Segment bytes of a candidate with nrows rows; 0 when it does not pay
 * (no smaller than RAW, or below min_ratio). */
static uint64_t cand_bytes(const rd_t *r, const cand_t *k, size_t nrows)
{
    lshmoe_wire_layout_t lay;
    const enc_job_t *j = r->j;
    if (lshmoe_wire_layout(cand_flags(k, nrows), j->es, j->hidden, j->ntokens,
                           nrows, &lay))
        return 0;
    uint64_t len = LSHMOE_WIRE_HEADER_BYTES + lay.payload_bytes;
    if (len >= j->raw_len ||
        (double)j->token_bytes / (double)len < r->c->params.min_ratio)
        return 0;
    return len;
}

/* Widens the tokens to fp32 (kept for the segment) and sums |x|^2.
 * Returns 1 when every element is finite. */
static int widen(rd_t *r, float *x)
{
    const enc_job_t *j = r->j;
    const uint8_t *t = j->tokens;
    size_t h = j->hidden, rb = h * j->es;
    double den = 0.0;
    lshmoe_row_to_f32(t, j->dtype, j->ntokens * h, x);
    (void)rb;
    for (size_t i = 0; i < j->ntokens * h; i++)
        den += (double)x[i] * x[i];
    r->den = den;
    return isfinite(den);
}

/* Rounds an fp32 row to the dtype and back: what the receiver holds. */
static void round_dtype(float *y, size_t h, lshmoe_dtype_t dtype, void *tmp)
{
    if (dtype == LSHMOE_DTYPE_FP32)
        return;
    lshmoe_row_from_f32(y, h, dtype, tmp);
    lshmoe_row_to_f32(tmp, dtype, h, y);
}

static double sq_dist(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        s += d * d;
    }
    return s;
}

/* Per-token rows in format fmt: codes go straight to the rows section of
 * the segment. Returns the sse (stops early past the limit). */
static double eval_rows(rd_t *r, int fmt, uint8_t *rows, float *y, void *tmp)
{
    const enc_job_t *j = r->j;
    size_t h = j->hidden, stride = (size_t)lshmoe_qm_row_bytes(fmt, h);
    double sse = 0.0;
    for (size_t i = 0; i < j->ntokens; i++) {
        const float *xi = r->x + i * h;
        lshmoe_kn_quant_row(fmt, xi, h, rows + i * stride);
        if (!r->measure)
            continue;
        lshmoe_kn_dequant_row(fmt, rows + i * stride, h, y);
        round_dtype(y, h, j->dtype, tmp);
        sse += sq_dist(xi, y, h);
        r->visited++;
        if (sse > r->limit)
            break;
    }
    return sse;
}

/* Groups by the keys cut to L functions and, with refine, runs one
 * refinement step; leaves cluster_of, the fp32 means (acc) and the native
 * rows (nrows_tmp) for (L, refine) in the workspaces. */
/* Groups by the keys cut to L functions (keys_l, cluster_of); returns the
 * row count. Keys only: no pass over the tokens. */
static size_t group_l(rd_t *r, int L)
{
    lshmoe_codec_t *c = r->c;
    size_t n = r->j->ntokens, nrows;
    int bits = c->ladder_bits;
    const uint64_t *full = c->keys.ptr;
    uint64_t *kl = c->keys_l.ptr;
    int full_l = c->params.lsh.num_hashes;
    uint64_t mask = L * bits >= 64 ? UINT64_MAX : (((uint64_t)1 << (L * bits)) - 1);
    if (L == full_l || full_l * bits > 63)
        mask = UINT64_MAX;  /* the whole key (unpacked keys: only L = full) */
    for (size_t i = 0; i < n; i++)
        kl[i] = full[i] == LSHMOE_KN_KEY_NONFINITE ? full[i] : full[i] & mask;
    lshmoe_kn_group(kl, n, c->cluster_of.ptr, &nrows, c->group_ws.ptr);
    r->cur_L = -1; /* the workspaces no longer hold a clustering */
    return nrows;
}

static lshmoe_status_t cluster(rd_t *r, int L, int refine)
{
    lshmoe_codec_t *c = r->c;
    const enc_job_t *j = r->j;
    size_t n = j->ntokens, h = j->hidden, bytes;
    int bits = c->ladder_bits;
    const uint64_t *kl = c->keys_l.ptr;

    if (r->cur_L == L && r->cur_refine == refine)
        return LSHMOE_OK;
    size_t nrows = group_l(r, L);
    LSHMOE_CHECK(lshmoe_mul_size(n * h, sizeof(float), &bytes));
    LSHMOE_CHECK(lshmoe_buf_reserve(&c->acc, bytes));
    LSHMOE_CHECK(lshmoe_buf_reserve(&c->sizes, n * sizeof(uint32_t)));
    LSHMOE_CHECK(lshmoe_buf_reserve(&c->nrows_tmp, n * h * j->es));
    lshmoe_kn_centroids(j->tokens, j->dtype, h, n, c->cluster_of.ptr, nrows,
                        c->nrows_tmp.ptr, c->sizes.ptr, c->acc.ptr);
    r->visited += n;
    if (refine) {
        size_t max_nb = (size_t)L * (((size_t)1 << bits) - 1);
        LSHMOE_CHECK(lshmoe_buf_reserve(&c->refine_ws,
                                        lshmoe_kn_refine_ws_size(nrows, max_nb)));
        nrows = lshmoe_kn_refine(r->x, h, n, kl, L, bits, c->acc.ptr, nrows,
                                 c->cluster_of.ptr, c->refine_ws.ptr, &r->evals);
        lshmoe_kn_centroids(j->tokens, j->dtype, h, n, c->cluster_of.ptr, nrows,
                            c->nrows_tmp.ptr, c->sizes.ptr, c->acc.ptr);
        r->visited += n;
    }
    r->cur_L = L;
    r->cur_refine = refine;
    r->cur_nrows = nrows;
    return LSHMOE_OK;
}

/* Centroid rows in format fmt (into `rows`, native: a copy of the rounded
 * means), decoded into qrows; then the error pass over the tokens. */
static double eval_clustered(rd_t *r, int fmt, uint8_t *rows, void *tmp)
{
    lshmoe_codec_t *c = r->c;
    const enc_job_t *j = r->j;
    size_t h = j->hidden, nrows = r->cur_nrows;
    const uint32_t *of = c->cluster_of.ptr;
    float *q = c->qrows.ptr;
    const float *acc = c->acc.ptr;

    if (fmt == LSHMOE_QM_NATIVE) {
        memcpy(rows, c->nrows_tmp.ptr, nrows * h * j->es);
        lshmoe_row_to_f32(rows, j->dtype, nrows * h, q);
    } else {
        size_t stride = (size_t)lshmoe_qm_row_bytes(fmt, h);
        for (size_t k = 0; k < nrows; k++) {
            lshmoe_kn_quant_row(fmt, acc + k * h, h, rows + k * stride);
            lshmoe_kn_dequant_row(fmt, rows + k * stride, h, q + k * h);
            round_dtype(q + k * h, h, j->dtype, tmp);
        }
    }
    if (!r->measure)
        return 0.0;
    double sse = 0.0;
    for (size_t i = 0; i < j->ntokens; i++) {
        sse += sq_dist(r->x + i * h, q + (size_t)of[i] * h, h);
        r->visited++;
        if (sse > r->limit)
            break;
    }
    return sse;
}

static void write_index(uint8_t *dst, const uint32_t *of, size_t n, int idx32)
{
    for (size_t i = 0; i < n; i++) {
        if (idx32)
            lshmoe_put_le32(dst + 4 * i, of[i]);
        else
            lshmoe_put_le16(dst + 2 * i, (uint16_t)of[i]);
    }
}

/* Header, index and padding of the candidate whose rows are in place. */
static size_t finish(rd_t *r, const cand_t *k, size_t nrows)
{
    const enc_job_t *j = r->j;
    lshmoe_wire_layout_t lay;
    uint16_t flags = cand_flags(k, nrows);
    /* sizes were checked when the candidate was listed (nrows only shrank) */
    (void)lshmoe_wire_layout(flags, j->es, j->hidden, j->ntokens, nrows, &lay);
    lshmoe_codec_zero_pad(j->out, lay.rows_off, lay.rows_bytes);
    if (k->L != 0) {
        write_index(j->out + lay.idx_off, r->c->cluster_of.ptr, j->ntokens,
                    (flags & LSHMOE_WIRE_F_IDX32) != 0);
        lshmoe_codec_zero_pad(j->out, lay.idx_off, lay.idx_bytes);
    }
    lshmoe_codec_finish_header(j->out, flags, j, nrows, lay.payload_bytes);
    return (size_t)(LSHMOE_WIRE_HEADER_BYTES + lay.payload_bytes);
}

static int cmp_cand(const void *a, const void *b)
{
    const cand_t *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? -1 : 1;
    /* equal bytes: the cheaper search first (no refinement, smaller L) */
    if (x->refine != y->refine)
        return x->refine - y->refine;
    return x->L - y->L;
}

/* Hashes once (the codec's L) and fills the workspaces clustering needs.
 * *ok_p = 0 when this width cannot be hashed. */
static lshmoe_status_t hash_once(rd_t *r, int *ok_p)
{
    lshmoe_codec_t *c = r->c;
    const enc_job_t *j = r->j;
    const lshmoe_kn_hasher_t *hs;
    size_t n = j->ntokens, bytes, nonfinite = 0;

    *ok_p = 0;
    LSHMOE_CHECK(lshmoe_codec_hasher(c, j->hidden, &hs));
    if (hs == NULL)
        return LSHMOE_OK;
    LSHMOE_CHECK(lshmoe_mul_size(n, sizeof(uint64_t), &bytes));
    LSHMOE_CHECK(lshmoe_buf_reserve(&c->keys, bytes));
    LSHMOE_CHECK(lshmoe_buf_reserve(&c->keys_l, bytes));
    LSHMOE_CHECK(lshmoe_buf_reserve(&c->cluster_of, n * sizeof(uint32_t)));
    LSHMOE_CHECK(lshmoe_buf_reserve(&c->group_ws, lshmoe_kn_group_ws_size(n)));
    LSHMOE_CHECK(lshmoe_buf_reserve(&c->hash_ws, lshmoe_kn_hash_ws_size(hs)));
    lshmoe_kn_hash(hs, j->tokens, j->dtype, n, c->keys.ptr, c->hash_ws.ptr,
                   &nonfinite);
    *ok_p = 1;
    return LSHMOE_OK;
}

/* The candidates of this mode with their sizes; clustered ones need the
 * hash (and a grouping per L, keys only). */
static lshmoe_status_t list_cands(rd_t *r, cand_t *cands, size_t *ncand_p)
{
    static const int raw_fmts[] = {LSHMOE_QM_INT2, LSHMOE_QM_INT4, LSHMOE_QM_FP8,
                                   LSHMOE_QM_INT8};
    static const int cl_fmts[] = {LSHMOE_QM_INT2, LSHMOE_QM_INT4, LSHMOE_QM_INT8};
    lshmoe_codec_t *c = r->c;
    size_t nc = 0;
    int mode = c->params.mode;
    int ls[16], nl = 0, refines = 1, hashable = 0;
    cand_t k;

    *ncand_p = 0;
    if (mode == LSHMOE_CODEC_BUDGET) {
        for (size_t f = 0; f < 4; f++) {
            k = (cand_t){.L = 0, .fmt = raw_fmts[f], .nrows = r->j->ntokens};
            k.bytes = cand_bytes(r, &k, k.nrows);
            if (k.bytes)
                cands[nc++] = k;
        }
        nl = lshmoe_codec_ladder_l(c, ls);
        refines = 2;
    } else {
        int L, refine, fmt;
        fixed_mode(mode, &L, &refine, &fmt);
        if (L == 0) {
            k = (cand_t){.L = 0, .fmt = fmt, .nrows = r->j->ntokens};
            k.bytes = fmt == LSHMOE_QM_NATIVE ? 0 : cand_bytes(r, &k, k.nrows);
            if (k.bytes)
                cands[nc++] = k;
        } else {
            ls[nl++] = c->params.lsh.num_hashes;
        }
    }
    if (nl > 0)
        LSHMOE_CHECK(hash_once(r, &hashable));
    for (int li = 0; hashable && li < nl; li++) {
        size_t nrows = group_l(r, ls[li]);
        for (int rf = 0; rf < refines; rf++) {
            if (mode == LSHMOE_CODEC_BUDGET) {
                for (size_t f = 0; f < 3; f++) {
                    k = (cand_t){.L = ls[li], .refine = rf, .fmt = cl_fmts[f],
                                 .nrows = nrows};
                    k.bytes = cand_bytes(r, &k, nrows);
                    if (k.bytes && nc < MAX_CAND)
                        cands[nc++] = k;
                }
            } else {
                int L, refine, fmt;
                fixed_mode(mode, &L, &refine, &fmt);
                k = (cand_t){.L = ls[li], .refine = refine, .fmt = fmt, .nrows = nrows};
                k.bytes = cand_bytes(r, &k, nrows);
                if (k.bytes)
                    cands[nc++] = k;
            }
        }
    }
    qsort(cands, nc, sizeof *cands, cmp_cand);
    *ncand_p = nc;
    return LSHMOE_OK;
}

lshmoe_status_t lshmoe_codec_encode_rd(const enc_job_t *j, size_t *len_p,
                                       lshmoe_codec_stats_t *st)
{
    lshmoe_codec_t *c = j->codec;
    rd_t r = {.j = j, .c = c, .cur_L = -1};
    cand_t cands[MAX_CAND];
    size_t ncand = 0, n = j->ntokens, h = j->hidden, bytes, len = 0;
    int chosen = 0;
    double err = 0.0, t0 = lshmoe_now(), t_hash = 0.0;

    *len_p = 0;
    int try_comp = c->params.compress && lshmoe_dtype_is_float(j->dtype) && n > 0 &&
                   n >= c->params.min_tokens && (uint64_t)n < ((uint64_t)1 << 32) &&
                   c->params.mode != LSHMOE_CODEC_NATIVE;
    if (try_comp) {
        LSHMOE_CHECK(lshmoe_mul_size(n * h, sizeof(float), &bytes));
        LSHMOE_CHECK(lshmoe_buf_reserve(&c->xf, bytes));
        LSHMOE_CHECK(lshmoe_buf_reserve(&c->qrows, bytes));
        /* one row of fp32 for decoding, one of the dtype for rounding */
        LSHMOE_CHECK(lshmoe_buf_reserve(&c->scratch, h * sizeof(float) + h * 8 + 64));
        if (!widen(&r, c->xf.ptr))
            return LSHMOE_OK; /* NaN/Inf: the caller's LSH path, exact tokens */
        r.x = c->xf.ptr;
        r.measure = c->params.mode == LSHMOE_CODEC_BUDGET || c->params.error_guard;
        double b = c->params.max_error;
        r.limit = b * b * r.den;
        double th = lshmoe_now();
        LSHMOE_CHECK(list_cands(&r, cands, &ncand));
        t_hash = lshmoe_now() - th;
    }
    float *y = c->scratch.ptr;
    void *tmp = (uint8_t *)c->scratch.ptr + h * sizeof(float);
    uint8_t *rows = j->out + LSHMOE_WIRE_HEADER_BYTES;
    for (size_t i = 0; i < ncand; i++) {
        const cand_t *k = &cands[i];
        double sse;
        size_t nrows = n;
        if (k->L == 0) {
            sse = eval_rows(&r, k->fmt, rows, y, tmp);
        } else {
            LSHMOE_CHECK(cluster(&r, k->L, k->refine));
            nrows = r.cur_nrows;
            sse = eval_clustered(&r, k->fmt, rows, tmp);
        }
        if (r.measure && sse > r.limit)
            continue;
        err = sse > 0.0 ? (r.den > 0.0 ? sqrt(sse / r.den) : INFINITY) : 0.0;
        len = finish(&r, k, nrows);
        chosen = lshmoe_codec_choice_id(k->L, k->refine, k->fmt);
        if (st != NULL) {
            st->rows += nrows;
            st->err_num += sse;
            st->err_den += r.den;
        }
        break;
    }
    if (len == 0) {
        len = lshmoe_codec_write_raw(j);
        err = 0.0;
        if (st != NULL)
            st->rows += n;
    }
    *len_p = len;
    if (st != NULL) {
        st->tokens += n;
        st->bytes_in += j->token_bytes;
        st->bytes_wire += len;
        st->segments_compressed += chosen != 0;
        st->segments_raw += chosen == 0;
        st->time_hash_s += t_hash;
        st->time_search_s += lshmoe_now() - t0 - t_hash;
        st->search_tokens += r.visited;
        st->refine_evals += r.evals;
        st->choice_segments[chosen]++;
        st->last_choice = chosen;
        st->last_error = r.measure || chosen == 0 ? err : -1.0;
    }
    return LSHMOE_OK;
}
