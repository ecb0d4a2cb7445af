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
#include "lshmoe/codec_rd_int.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"
#include "lshmoe/common/timer.h"

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
        [LSHMOE_CODEC_INT4E] = {0, 0, LSHMOE_QM_INT4E},
        [LSHMOE_CODEC_LSH_REFINE_INT4E] = {-1, 1, LSHMOE_QM_INT4E},
    };
    *L = tab[mode][0];
    *refine = tab[mode][1];
    *fmt = tab[mode][2];
}

/* The modes that search a ladder under the budget (the others are fixed). */
static int budget_mode(int mode)
{
    return mode == LSHMOE_CODEC_BUDGET || mode == LSHMOE_CODEC_BUDGET_ROWS;
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
uint64_t lshmoe_rd_cand_bytes(const rd_t *r, const cand_t *k, size_t nrows)
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

/* |x|^2 of one row, as lshmoe_kn_row_sq_dist sums (8 fp32 partial sums, then fp64);
 * non-finite elements give a non-finite sum. */
double lshmoe_rd_sq_norm(const float *restrict x, size_t n)
{
    float part[8] = {0};
    double s = 0.0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t k = 0; k < 8; k++)
            part[k] += x[i + k] * x[i + k];
    for (; i < n; i++)
        s += (double)x[i] * x[i];
    for (size_t k = 0; k < 8; k++)
        s += part[k];
    return s;
}

/* Widens the tokens to fp32 (kept for the segment) and sums |x|^2, per
 * token (kept in norms, for the sampled search) and over the segment.
 * Returns 1 when every element is finite. */
static int widen(rd_t *r, float *x, double *norms)
{
    const enc_job_t *j = r->j;
    const uint8_t *t = j->tokens;
    size_t h = j->hidden;
    double den = 0.0;
    lshmoe_row_to_f32(t, j->dtype, j->ntokens * h, x);
    for (size_t i = 0; i < j->ntokens; i++) {
        norms[i] = lshmoe_rd_sq_norm(x + i * h, h);
        den += norms[i];
    }
    r->den = den;
    return isfinite(den);
}

/* Per-token rows in format fmt: codes go straight to the rows section of
 * the segment, coded and measured a batch of rows per kernel call (the
 * error of what the decoder will write; y is scratch for a batch). Returns
 * the sse (stops early past the limit). The rows' errors are added and
 * the limit tested row by row, as a loop over single rows would: the same
 * sse, stop and visited count; the rest of the batch past a stop is coded
 * for nothing (its bytes are those of a candidate that does not fit). */
static double eval_rows(rd_t *r, int fmt, uint8_t *rows, float *y)
{
    const enc_job_t *j = r->j;
    size_t h = j->hidden, stride = (size_t)lshmoe_qm_row_bytes(fmt, h);
    size_t batch = lshmoe_rd_batch_rows(h);
    double sse = 0.0, row_sse[LSHMOE_RD_BATCH_MAX];
    for (size_t i = 0; i < j->ntokens; i += batch) {
        size_t m = j->ntokens - i < batch ? j->ntokens - i : batch;
        if (!r->measure) {
            lshmoe_kn_quant_rows_sse(fmt, r->x + i * h, h, m, h, j->dtype, rows + i * stride,
                                     stride, NULL, NULL);
            continue;
        }
        lshmoe_kn_quant_rows_sse(fmt, r->x + i * h, h, m, h, j->dtype, rows + i * stride, stride,
                                 y, row_sse);
        for (size_t k = 0; k < m; k++) {
            sse += row_sse[k];
            r->visited++;
            if (sse > r->limit)
                return sse;
        }
    }
    return sse;
}

/* Groups by the keys cut to L functions (keys_l, cluster_of); returns the
 * row count. Keys only: no pass over the tokens. A grouping list_cands
 * kept (group_slot) is copied instead of grouped again. */
size_t lshmoe_rd_group_l(rd_t *r, int L)
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
    r->cur_L = -1; /* the workspaces no longer hold a clustering */
    if (L >= 0 && L <= LSHMOE_CODEC_MAX_L && r->group_slot[L] > 0) {
        const uint32_t *kept = (const uint32_t *)c->groups_l.ptr +
                               (size_t)(r->group_slot[L] - 1) * n;
        memcpy(c->cluster_of.ptr, kept, n * sizeof *kept);
        return r->group_rows[L];
    }
    lshmoe_kn_group(kl, n, c->cluster_of.ptr, &nrows, c->group_ws.ptr);
    return nrows;
}

/* The centroid kernel leaves the fp32 means of clusters of two or more in
 * acc; a cluster of one's mean is its token, already in fp32 (r->x). */
static void singleton_means(rd_t *r)
{
    lshmoe_codec_t *c = r->c;
    size_t h = r->j->hidden;
    const uint32_t *of = c->cluster_of.ptr, *sizes = c->sizes.ptr;
    float *acc = c->acc.ptr;
    for (size_t i = 0; i < r->j->ntokens; i++)
        if (sizes[of[i]] == 1)
            memcpy(acc + (size_t)of[i] * h, r->x + i * h, h * sizeof *acc);
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
    size_t nrows = lshmoe_rd_group_l(r, L);
    LSHMOE_CHECK(lshmoe_mul_size(n * h, sizeof(float), &bytes));
    LSHMOE_CHECK(lshmoe_buf_reserve(&c->acc, bytes));
    LSHMOE_CHECK(lshmoe_buf_reserve(&c->sizes, n * sizeof(uint32_t)));
    LSHMOE_CHECK(lshmoe_buf_reserve(&c->nrows_tmp, n * h * j->es));
    lshmoe_kn_centroids(j->tokens, j->dtype, h, n, c->cluster_of.ptr, nrows,
                        c->nrows_tmp.ptr, c->sizes.ptr, c->acc.ptr);
    singleton_means(r);
    r->visited += n;
    if (refine) {
        size_t max_nb = (size_t)L * (((size_t)1 << bits) - 1);
        LSHMOE_CHECK(lshmoe_buf_reserve(&c->refine_ws,
                                        lshmoe_kn_refine_ws_size(n, nrows, max_nb)));
        nrows = lshmoe_kn_refine(r->x, h, n, kl, L, bits, c->acc.ptr, nrows,
                                 c->cluster_of.ptr, c->refine_ws.ptr, &r->evals);
        lshmoe_kn_centroids(j->tokens, j->dtype, h, n, c->cluster_of.ptr, nrows,
                            c->nrows_tmp.ptr, c->sizes.ptr, c->acc.ptr);
        singleton_means(r);
        r->visited += n;
    }
    r->cur_L = L;
    r->cur_refine = refine;
    r->cur_nrows = nrows;
    return LSHMOE_OK;
}

/* Centroid rows in format fmt (into `rows`, native: a copy of the rounded
 * means), decoded into qrows as the decoder will write them (coded and
 * decoded by the batched kernel; their error against the means is not
 * needed); then the error pass over the tokens. */
static double eval_clustered(rd_t *r, int fmt, uint8_t *rows)
{
    lshmoe_codec_t *c = r->c;
    const enc_job_t *j = r->j;
    size_t h = j->hidden, nrows = r->cur_nrows;
    const uint32_t *of = c->cluster_of.ptr;
    float *q = c->qrows.ptr;
    const float *acc = c->acc.ptr;

    size_t stride = (size_t)lshmoe_qm_row_bytes(fmt, h);
    if (fmt == LSHMOE_QM_NATIVE) {
        memcpy(rows, c->nrows_tmp.ptr, nrows * h * j->es);
        lshmoe_row_to_f32(rows, j->dtype, nrows * h, q);
    } else if (!r->measure) {
        lshmoe_kn_quant_rows_sse(fmt, acc, h, nrows, h, j->dtype, rows, stride, NULL, NULL);
    }
    if (!r->measure)
        return 0.0;
    /* Rows are coded when a token first needs them (clusters are numbered
     * in order of first appearance, so row k is reached at its first
     * member), a batch of rows from k on at a time: a pass stopped early
     * codes only the batches it reached. */
    double sse = 0.0;
    size_t coded = fmt == LSHMOE_QM_NATIVE ? nrows : 0, batch = lshmoe_rd_batch_rows(h);
    for (size_t i = 0; i < j->ntokens; i++) {
        size_t k = of[i];
        if (k == coded) {
            size_t m = nrows - k < batch ? nrows - k : batch;
            lshmoe_kn_quant_rows_sse(fmt, acc + k * h, h, m, h, j->dtype, rows + k * stride,
                                     stride, q + k * h, NULL);
            coded += m;
        }
        sse += lshmoe_kn_row_sq_dist(r->x + i * h, q + k * h, h);
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
    /* The ladder (docs/algorithm.md has the measurements behind it). */
    static const int raw_fmts[] = {LSHMOE_QM_INT2, LSHMOE_QM_INT4E, LSHMOE_QM_INT4,
                                   LSHMOE_QM_FP8, LSHMOE_QM_INT8};
    const size_t n_raw = sizeof raw_fmts / sizeof raw_fmts[0];
    const size_t n_cl = N_CL_FMTS;
    lshmoe_codec_t *c = r->c;
    size_t nc = 0;
    int mode = c->params.mode;
    int ls[16], nl = 0, refines = 1, hashable = 0;
    cand_t k;

    *ncand_p = 0;
    if (budget_mode(mode)) {
        for (size_t f = 0; f < n_raw; f++) {
            k = (cand_t){.L = 0, .fmt = raw_fmts[f], .nrows = r->j->ntokens};
            k.bytes = lshmoe_rd_cand_bytes(r, &k, k.nrows);
            if (k.bytes)
                cands[nc++] = k;
        }
        /* BUDGET_ROWS: the rows may not be tokens, so no clustering;
         * BUDGET: none either while the stream's rows win (rows_only) */
        nl = mode == LSHMOE_CODEC_BUDGET && !r->rows_only ? lshmoe_codec_ladder_l(c, ls) : 0;
        refines = 2;
    } else {
        int L, refine, fmt;
        fixed_mode(mode, &L, &refine, &fmt);
        if (L == 0) {
            k = (cand_t){.L = 0, .fmt = fmt, .nrows = r->j->ntokens};
            k.bytes = fmt == LSHMOE_QM_NATIVE ? 0 : lshmoe_rd_cand_bytes(r, &k, k.nrows);
            if (k.bytes)
                cands[nc++] = k;
        } else {
            ls[nl++] = c->params.lsh.num_hashes;
        }
    }
    if (nl > 0)
        LSHMOE_CHECK(hash_once(r, &hashable));
    size_t n = r->j->ntokens, bytes;
    if (hashable && nl > 1) {
        LSHMOE_CHECK(lshmoe_mul_size(n * (size_t)nl, sizeof(uint32_t), &bytes));
        LSHMOE_CHECK(lshmoe_buf_reserve(&c->groups_l, bytes));
    }
    for (int li = 0; hashable && li < nl; li++) {
        size_t nrows = lshmoe_rd_group_l(r, ls[li]);
        if (nl > 1 && ls[li] <= LSHMOE_CODEC_MAX_L) {
            memcpy((uint32_t *)c->groups_l.ptr + (size_t)li * n, c->cluster_of.ptr,
                   n * sizeof(uint32_t));
            r->group_slot[ls[li]] = li + 1;
            r->group_rows[ls[li]] = nrows;
        }
        for (int rf = 0; rf < refines; rf++) {
            if (mode == LSHMOE_CODEC_BUDGET) {
                for (size_t f = 0; f < n_cl; f++) {
                    k = (cand_t){.L = ls[li], .refine = rf, .fmt = cl_fmts[f],
                                 .nrows = nrows};
                    k.bytes = lshmoe_rd_cand_bytes(r, &k, nrows);
                    if (k.bytes && nc < MAX_CAND)
                        cands[nc++] = k;
                }
            } else {
                int L, refine, fmt;
                fixed_mode(mode, &L, &refine, &fmt);
                k = (cand_t){.L = ls[li], .refine = refine, .fmt = fmt, .nrows = nrows};
                k.bytes = lshmoe_rd_cand_bytes(r, &k, nrows);
                if (k.bytes)
                    cands[nc++] = k;
            }
        }
    }
    qsort(cands, nc, sizeof *cands, cmp_cand);
    *ncand_p = nc;
    return LSHMOE_OK;
}

/* Evaluates one candidate: its rows go to the segment, and for clustered
 * ones the workspaces hold its clustering. *sse_p > limit: it does not fit
 * (the pass may have stopped early). */
static lshmoe_status_t eval(rd_t *r, const cand_t *k, double *sse_p)
{
    const enc_job_t *j = r->j;
    lshmoe_codec_t *c = r->c;
    float *y = c->scratch.ptr;
    uint8_t *rows = j->out + LSHMOE_WIRE_HEADER_BYTES;
    if (k->L == 0) {
        *sse_p = eval_rows(r, k->fmt, rows, y);
        return LSHMOE_OK;
    }
    LSHMOE_CHECK(cluster(r, k->L, k->refine));
    *sse_p = eval_clustered(r, k->fmt, rows);
    return LSHMOE_OK;
}

/* Does candidate i fit? Evaluated at most once; *last_p is the candidate
 * whose rows and clustering the segment and workspaces hold. */
lshmoe_status_t lshmoe_rd_fits(rd_t *r, const cand_t *cands, size_t i, signed char *state,
                            double *sse, int *last_p)
{
    if (state[i] == 0) {
        LSHMOE_CHECK(eval(r, &cands[i], &sse[i]));
        *last_p = (int)i;
        state[i] = sse[i] <= r->limit ? 1 : -1;
    }
    return LSHMOE_OK;
}

/* Misses in a row that end the downward walk, and how often the search
 * starts afresh (bisection) instead of from the previous choice. */
#define WARM_TRIES 3
#define WARM_REANCHOR 8
/* The longest interval between full searches of a stream whose segments
 * keep going to row formats (rows_only): it doubles from WARM_REANCHOR at
 * each full search that confirms a row format. */
#define ROWS_REANCHOR_MAX 64

void lshmoe_codec_mode_encoding(int mode, int *L, int *refine, int *fmt)
{
    fixed_mode(mode, L, refine, fmt);
}

void lshmoe_codec_warm_swap(lshmoe_codec_t *codec, lshmoe_codec_warm_t *w)
{
    lshmoe_codec_warm_t mine = {codec->warm_id, codec->warm_valid, codec->warm_count,
                                codec->warm_every};
    codec->warm_id = w->id;
    codec->warm_valid = w->valid;
    codec->warm_count = w->count;
    codec->warm_every = w->every;
    *w = mine;
}

/* Index of the previous segment's encoding among the candidates (after a
 * raw segment: the largest candidate), or -1. */
static int warm_start(rd_t *r, const cand_t *cands, size_t n)
{
    /* every WARM_REANCHOR-th segment bisects: a walk that stops at a local
     * optimum (two misses below it) is not kept for ever */
    if (r->c->rows_forced)
        return -1; /* the stream's memory is the full search's (warm_note) */
    if (!r->c->warm_valid || n == 0 || r->c->warm_count++ % WARM_REANCHOR == 0)
        return -1;
    if (r->c->warm_id == 0)
        return (int)n - 1;
    for (size_t i = 0; i < n; i++)
        if (lshmoe_codec_choice_id(cands[i].L, cands[i].refine, cands[i].fmt) ==
            r->c->warm_id)
            return (int)i;
    return -1;
}

/* Is a choice id a row format (not RAW, no clustering)? */
static int row_choice(int id)
{
    return id != 0 && lshmoe_codec_choice_l(id) == 0;
}

/* Did the stream's previous segment go to a row format? */
static int warm_rows(const lshmoe_codec_t *c)
{
    return c->warm_valid && row_choice(c->warm_id);
}

/* Segments between full searches of the stream now (warm_every 0: none
 * set yet). */
static uint64_t warm_interval(const lshmoe_codec_t *c)
{
    return c->warm_every > 0 ? c->warm_every : WARM_REANCHOR;
}

/*
 * The SAMPLE search of BUDGET mode between re-anchors: while this stream's
 * previous segment went to a row format (no clustering was within the
 * budget and smaller), the next segments leave the clusterings out: no
 * hash, no grouping, no cluster estimates, the ladder of BUDGET_ROWS.
 * Full searches of the whole ladder come WARM_REANCHOR segments apart
 * (the first segment, and the first after any other pick, is one), the
 * interval doubling up to ROWS_REANCHOR_MAX while they confirm a row
 * format (warm_note), as the adaptive policy's tries do: data that starts
 * to cluster is found within that many segments; until then such a
 * segment gets the row format the full search would have picked among the
 * rows (the walk sees them in the same order), within the budget, only
 * larger than the clustering it missed. On a stream whose clusterings
 * never fit (GloVe at budget 0.13: 60% of the encoder's time went to
 * them: a full search there visits about 4.7 token rows per token against
 * 1.4 for a rows-only one) that time is saved in all but one
 * segment of 8, then 16, 32 and 64. warm_count: segments since the last
 * full search, that one included.
 */
static int rows_only(lshmoe_codec_t *c)
{
    if (c->rows_forced)
        return 1; /* and the stream's memory is left alone (warm_note) */
    if (c->params.mode != LSHMOE_CODEC_BUDGET || c->params.search != LSHMOE_CODEC_SEARCH_SAMPLE)
        return 0;
    if (warm_rows(c) && c->warm_count < warm_interval(c)) {
        c->warm_count++;
        return 1;
    }
    c->warm_count = 1;
    return 0;
}

void lshmoe_codec_set_rows_only(lshmoe_codec_t *codec, int on)
{
    codec->rows_forced = on != 0 && codec->params.mode == LSHMOE_CODEC_BUDGET;
}

/* Remembers a budget segment's pick (0: raw) for the next segment of its
 * stream; `rows_only`: the search left the clusterings out. A full search
 * that finds a row format again after one doubles the interval to the
 * next; any other pick starts it afresh. A forced rows-only segment
 * changes nothing: the full search resumes from its own memory. */
static void warm_note(lshmoe_codec_t *c, int chosen, int rows_only)
{
    if (c->rows_forced)
        return;
    uint64_t every = warm_interval(c);
    if (!row_choice(chosen) || !warm_rows(c))
        every = WARM_REANCHOR;
    else if (!rows_only)
        every = 2 * every < ROWS_REANCHOR_MAX ? 2 * every : ROWS_REANCHOR_MAX;
    c->warm_every = every;
    c->warm_id = chosen;
    c->warm_valid = 1;
}

/* Same chain: no clustering (the quantizers), or one (refine, fmt) over L. */
static int same_chain(const cand_t *a, const cand_t *b)
{
    if (a->L == 0 || b->L == 0)
        return a->L == b->L;
    return a->refine == b->refine && a->fmt == b->fmt;
}

lshmoe_status_t lshmoe_rd_bisect(rd_t *r, const cand_t *cands, size_t n,
                                 const signed char *skip, lshmoe_rd_fit_fn fit, void *arg,
                                 int *best_p)
{
    signed char done[MAX_CAND] = {0};
    size_t idx[MAX_CAND];
    int best = -1, ok;
    /* the quantizers first: they need no clustering pass, and the bound
     * their winner sets cuts the clustered chains short */
    for (int pass = 0; pass < 2; pass++)
    for (size_t h = 0; h < n; h++) {
        if (done[h] || (pass == 0) != (cands[h].L == 0))
            continue;
        size_t m = 0;
        for (size_t i = h; i < n; i++)  /* cands are sorted by bytes */
            if (!done[i] && same_chain(&cands[h], &cands[i])) {
                done[i] = 1;
                if ((skip == NULL || skip[i] == 0) &&
                    (best < 0 || cands[i].bytes < cands[best].bytes))
                    idx[m++] = i;
            }
        size_t lo = 0, hi = m;   /* smallest member that passes in [lo, hi) */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            LSHMOE_CHECK(fit(r, cands, idx[mid], arg, &ok));
            if (ok)
                hi = mid;
            else
                lo = mid + 1;
        }
        if (lo < m)
            best = (int)idx[lo];
    }
    *best_p = best;
    return LSHMOE_OK;
}

/* lshmoe_rd_bisect's test for the BISECT search: a full measurement. */
typedef struct measured {
    signed char *state;
    double      *sse;
    int         *last_p;
} measured_t;

static lshmoe_status_t measured_fit(rd_t *r, const cand_t *cands, size_t i, void *arg,
                                    int *fit_p)
{
    measured_t *m = arg;
    LSHMOE_CHECK(lshmoe_rd_fits(r, cands, i, m->state, m->sse, m->last_p));
    *fit_p = m->state[i] > 0;
    return LSHMOE_OK;
}

/*
 * The smallest candidate that fits. SAMPLE: lshmoe_rd_search_sample
 * (codec_rd_sample.c). LINEAR: every candidate in byte order until one
 * fits. WARM: see codec.h (falls back to BISECT when the previous segment
 * gave no start). BISECT: lshmoe_rd_bisect on measurements, most of them
 * stopped early. Leaves the winner's rows and clustering in place.
 */
static lshmoe_status_t search(rd_t *r, const cand_t *cands, size_t n, int *best_p,
                              double *sse_p)
{
    signed char state[MAX_CAND] = {0};
    double sse[MAX_CAND];
    int best = -1, last = -1;

    if (r->c->params.search == LSHMOE_CODEC_SEARCH_SAMPLE) {
        LSHMOE_CHECK(lshmoe_rd_search_sample(r, cands, n, state, sse, &best, &last));
    } else if (r->c->params.search == LSHMOE_CODEC_SEARCH_WARM &&
               (best = warm_start(r, cands, n)) >= 0) {
        /* down the byte order while candidates fit */
        int at = best;
        LSHMOE_CHECK(lshmoe_rd_fits(r, cands, (size_t)at, state, sse, &last));
        if (state[at] > 0) {
            /* each fit moves the start down; WARM_TRIES evaluated misses in
             * a row end it. A miss also settles, unevaluated, the smaller
             * members of its chain (monotone by construction). */
            for (int i = at - 1, misses = 0; i >= 0 && misses < WARM_TRIES; i--) {
                if (state[i] != 0)
                    continue;
                LSHMOE_CHECK(lshmoe_rd_fits(r, cands, (size_t)i, state, sse, &last));
                if (state[i] > 0) {
                    at = i;
                    misses = 0;
                    continue;
                }
                misses++;
                for (int k = i - 1; k >= 0; k--)
                    if (state[k] == 0 && same_chain(&cands[k], &cands[i]) &&
                        cands[k].bytes < cands[i].bytes)
                        state[k] = -1;
            }
            best = at;
        } else {
            /* up until one fits */
            best = -1;
            for (size_t i = (size_t)at + 1; i < n && best < 0; i++) {
                LSHMOE_CHECK(lshmoe_rd_fits(r, cands, i, state, sse, &last));
                if (state[i] > 0)
                    best = (int)i;
            }
        }
    } else if (r->c->params.search == LSHMOE_CODEC_SEARCH_LINEAR) {
        for (size_t i = 0; i < n && best < 0; i++) {
            LSHMOE_CHECK(lshmoe_rd_fits(r, cands, i, state, sse, &last));
            if (state[i] > 0)
                best = (int)i;
        }
    } else {
        measured_t m = {state, sse, &last};
        LSHMOE_CHECK(lshmoe_rd_bisect(r, cands, n, NULL, measured_fit, &m, &best));
    }
    if (best >= 0 && last != best) {
        /* a later evaluation overwrote the winner's rows: once more */
        LSHMOE_CHECK(eval(r, &cands[best], &sse[best]));
    }
    *best_p = best;
    if (best >= 0)
        *sse_p = sse[best];
    return LSHMOE_OK;
}

lshmoe_status_t lshmoe_codec_encode_rd(const enc_job_t *j, size_t *len_p,
                                       lshmoe_codec_stats_t *st)
{
    lshmoe_codec_t *c = j->codec;
    rd_t r = {.j = j, .c = c, .cur_L = -1};
    cand_t cands[MAX_CAND];
    for (size_t f = 0; f < LSHMOE_QM_COUNT; f++)
        r.row_est[f] = -1.0;
    size_t ncand = 0, n = j->ntokens, h = j->hidden, bytes, len = 0;
    int chosen = 0;
    double err = 0.0, t0 = lshmoe_now(), t_hash = 0.0;

    *len_p = 0;
    int try_comp = c->params.compress && lshmoe_dtype_is_float(j->dtype) && n > 0 &&
                   n >= c->params.min_tokens && (uint64_t)n < ((uint64_t)1 << 32) &&
                   c->params.mode != LSHMOE_CODEC_NATIVE;
    if (try_comp && budget_mode(c->params.mode)) {
        /* bail out before any pass over all tokens when a sample says
         * nothing on the ladder can fit at or above min_ratio */
        uint64_t fc;
        LSHMOE_CHECK(lshmoe_rd_forecast(j, LSHMOE_RD_SAMPLE_SLACK, 0, &fc, &r.visited,
                                        r.row_est));
        if (fc == 0) {
            try_comp = 0;
            warm_note(c, 0, 0);
            if (st != NULL)
                st->segments_probed_raw++;
        }
    }
    if (try_comp) {
        LSHMOE_CHECK(lshmoe_mul_size(n * h, sizeof(float), &bytes));
        LSHMOE_CHECK(lshmoe_buf_reserve(&c->xf, bytes));
        LSHMOE_CHECK(lshmoe_buf_reserve(&c->qrows, bytes));
        LSHMOE_CHECK(lshmoe_buf_reserve(&c->scratch, lshmoe_rd_scratch_bytes(h)));
        LSHMOE_CHECK(lshmoe_buf_reserve(&c->norms, n * sizeof(double)));
        if (!widen(&r, c->xf.ptr, c->norms.ptr))
            return LSHMOE_OK; /* NaN/Inf: the caller's LSH path, exact tokens */
        r.x = c->xf.ptr;
        r.measure = budget_mode(c->params.mode) || c->params.error_guard;
        double b = c->params.max_error;
        r.limit = b * b * r.den;
        r.rows_only = rows_only(c);
        double th = lshmoe_now();
        LSHMOE_CHECK(list_cands(&r, cands, &ncand));
        t_hash = lshmoe_now() - th;
    }
    int best = -1;
    double sse = 0.0;
    if (ncand > 0)
        LSHMOE_CHECK(r.measure ? search(&r, cands, ncand, &best, &sse)
                               : (best = 0, eval(&r, &cands[0], &sse)));
    if (best >= 0) {
        const cand_t *k = &cands[best];
        err = sse > 0.0 ? (r.den > 0.0 ? sqrt(sse / r.den) : INFINITY) : 0.0;
        len = finish(&r, k, k->L == 0 ? n : r.cur_nrows);
        chosen = lshmoe_codec_choice_id(k->L, k->refine, k->fmt);
        if (st != NULL) {
            st->rows += k->L == 0 ? n : r.cur_nrows;
            st->err_num += sse;
            st->err_den += r.den;
        }
    }
    if (budget_mode(c->params.mode) && try_comp)
        warm_note(c, chosen, r.rows_only);
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
        st->segments_rows_only += r.rows_only;
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
