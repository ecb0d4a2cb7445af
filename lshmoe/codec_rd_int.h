/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Internals shared by the rate-distortion encoder (codec_rd.c: candidates,
 * measurements, the measured searches) and its sampled search and
 * forecast (codec_rd_sample.c: estimates from a sample of the tokens).
 * Private to these two files. Not thread-safe: one rd_t per segment, on
 * the thread that encodes it, with that thread's codec.
 */
#ifndef LSHMOE_CODEC_RD_INT_H
#define LSHMOE_CODEC_RD_INT_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/common/quant_math.h"
#include "lshmoe/codec_internal.h"

#define MAX_CAND 128

/* Estimates within this factor (in error) of the budget: the sampled
 * search's second walk, and the forecast by which the encoder bails out
 * (a sample of a few dozen tokens misjudges the error by some percent). */
#define LSHMOE_RD_SAMPLE_SLACK 1.25

/* Rows per call of the batched row coder (lshmoe_kn_quant_rows_sse): on
 * short rows enough whole blocks to fill its vector lanes several times
 * (hidden 100: 16 rows, 48 blocks), on rows of 4096 or more one row. */
#define LSHMOE_RD_BATCH_MAX 16
static inline size_t lshmoe_rd_batch_rows(size_t hidden)
{
    size_t b = hidden > 0 ? 4096 / hidden : LSHMOE_RD_BATCH_MAX;
    return b < 1 ? 1 : (b > LSHMOE_RD_BATCH_MAX ? LSHMOE_RD_BATCH_MAX : b);
}

/* The scratch (c->scratch) of the row measurements, once the segment is
 * widened: lshmoe_rd_batch_rows(hidden) measured rows (fp32), then as many
 * coded rows for the estimates that keep no codes, of the largest row
 * format (FP8) each. */
static inline size_t lshmoe_rd_scratch_bytes(size_t hidden)
{
    size_t b = lshmoe_rd_batch_rows(hidden);
    return b * (hidden * sizeof(float) + (size_t)lshmoe_qm_row_bytes(LSHMOE_QM_FP8, hidden)) +
           64;
}

typedef struct cand {
    int      L, refine, fmt;
    size_t   nrows;    /* rows before refinement (refinement only removes) */
    uint64_t bytes;    /* segment bytes (upper bound with refinement)      */
} cand_t;

/* Row formats of the budget ladder's centroids. */
static const int cl_fmts[] = {LSHMOE_QM_INT4E, LSHMOE_QM_INT8};
#define N_CL_FMTS (sizeof cl_fmts / sizeof cl_fmts[0])

/* Estimates of the sampled search for the clusterings of one L: relative
 * squared error (sse / sum |x|^2 on the sample) per centroid format. */
typedef struct cl_est {
    int    done;
    double rel2[N_CL_FMTS];
} cl_est_t;

typedef struct rd {
    const enc_job_t *j;
    lshmoe_codec_t  *c;
    const float     *x;          /* tokens in fp32                          */
    double           den, limit; /* sum |x|^2; accept iff sse <= limit      */
    int              measure;    /* 0: fixed mode without the guard         */
    int              rows_only;  /* budget: the row formats only (codec_rd.c) */
    int              hashed;
    /* the clustering the workspaces hold now */
    int              cur_L, cur_refine;
    size_t           cur_nrows;
    uint64_t         visited, evals;
    /* groupings by L kept (c->groups_l, slot group_slot[L] - 1; 0: none):
     * the search asks for the same L's grouping several times */
    int              group_slot[LSHMOE_CODEC_MAX_L + 1];
    size_t           group_rows[LSHMOE_CODEC_MAX_L + 1];
    /* sampled search: estimates per L (index L) */
    cl_est_t         cl_est[LSHMOE_CODEC_MAX_L + 1];
    double           row_est[LSHMOE_QM_COUNT]; /* < 0: not yet estimated;
                                                  * set by the caller */
} rd_t;

/* ---- codec_rd.c ------------------------------------------------------- */

/* |x|^2 of one row (8 fp32 partial sums, then fp64). */
double lshmoe_rd_sq_norm(const float *x, size_t n);

/* Segment bytes of a candidate with nrows rows; 0 when it does not pay
 * (no smaller than RAW, or below min_ratio). Needs r->j and r->c only. */
uint64_t lshmoe_rd_cand_bytes(const rd_t *r, const cand_t *k, size_t nrows);

/* Groups by the keys cut to L functions (keys_l, cluster_of); returns the
 * row count. */
size_t lshmoe_rd_group_l(rd_t *r, int L);

/* Does candidate i fit? Measured over every token at most once (state[i]:
 * 0 not yet, 1 fits, -1 does not; sse[i] its sse); *last_p: the candidate
 * whose rows and clustering the segment and workspaces hold. */
lshmoe_status_t lshmoe_rd_fits(rd_t *r, const cand_t *cands, size_t i, signed char *state,
                               double *sse, int *last_p);

/* *fit_p = whether candidate i passes some test (a measurement or an
 * estimate); arg: the caller's. */
typedef lshmoe_status_t (*lshmoe_rd_fit_fn)(rd_t *r, const cand_t *cands, size_t i,
                                            void *arg, int *fit_p);

/*
 * The smallest candidate that passes `fit`, by bisection of chains that
 * are monotone by construction: the quantizers (error falls as bytes grow,
 * save int4 that int4e dominates) first, whose winner bounds the rest;
 * then each clustered chain (one refine x row format, L ascending: more
 * rows, less error), among its members smaller than the best so far:
 * about log2(chain length) tests per chain. `skip` (may be NULL): members
 * with skip[i] != 0 are left out. *best_p: its index, or -1. A chain that
 * is not monotone can make it miss a smaller candidate that passes.
 */
lshmoe_status_t lshmoe_rd_bisect(rd_t *r, const cand_t *cands, size_t n,
                                 const signed char *skip, lshmoe_rd_fit_fn fit, void *arg,
                                 int *best_p);

/* ---- codec_rd_sample.c ------------------------------------------------ */

/* lshmoe_rd_forecast's answer when a sampled token is NaN/Inf: no
 * forecast (the encoder's full path decides). */
#define LSHMOE_RD_NO_FORECAST UINT64_MAX

/* The sampled search (LSHMOE_CODEC_SEARCH_SAMPLE): measures in full the
 * candidates the sample's estimates pick, in order, until one fits
 * (*best_p, or -1); state/sse/last_p as lshmoe_rd_fits. */
lshmoe_status_t lshmoe_rd_search_sample(rd_t *r, const cand_t *cands, size_t n,
                                        signed char *state, double *sse, int *best_p,
                                        int *last_p);

/*
 * The segment bytes the budget ladder would reach on a segment (j: its
 * tokens and sizes; j->out is not touched), forecast from a sample before
 * any pass over all tokens: the smallest row format whose error on every
 * (n / 32)-th token is within `slack` x max_error, and the clustering at
 * the ladder's largest L with the cheapest centroid format that is within
 * it as a row format, its rows estimated from key collisions of a sample
 * (lshmoe_codec_probe). A clustering's own error is not sampled: the
 * forecast errs towards "compresses". `smallest` 0: any candidate that
 * fits will do (the clustering is not probed when a row format fits; for
 * the encoder's bail-out). *bytes_p = 0: nothing is forecast
 * to fit at or above min_ratio (the segment would travel RAW);
 * LSHMOE_RD_NO_FORECAST: a sampled token is not finite. *visited_p (may be
 * NULL) grows by the token rows evaluated. rel (may be NULL; LSHMOE_QM_COUNT
 * entries) receives the relative squared error of each row format the
 * forecast evaluated on the sample, -1 for the others: the same values,
 * on the same tokens, as the sampled search's row estimates (rd_t.row_est),
 * which it can take instead of evaluating them again. Uses the codec's
 * scratch, keys and hash workspaces. Returns LSHMOE_OK or
 * LSHMOE_ERR_NO_MEMORY.
 */
lshmoe_status_t lshmoe_rd_forecast(const enc_job_t *j, double slack, int smallest,
                                   uint64_t *bytes_p, uint64_t *visited_p, double *rel);

#endif /* LSHMOE_CODEC_RD_INT_H */
