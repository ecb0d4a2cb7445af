/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The budget codec's estimates from a sample of a segment's tokens:
 *  - the sampled search (LSHMOE_CODEC_SEARCH_SAMPLE, the default): which
 *    candidate to measure next. A candidate is accepted once its error has
 *    been measured over every token of the segment (lshmoe_rd_fits), as in
 *    every search, so a wrong estimate costs time or ratio, never the
 *    budget;
 *  - the forecast (lshmoe_rd_forecast), before any pass over all tokens:
 *    what the ladder would reach. The encoder sends a segment RAW at once
 *    when nothing is forecast to fit (bail-out), and the adaptive policy
 *    asks it (lshmoe_codec_probe_ratio) before it tries an encoded call.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/common/quant_math.h"
#include "lshmoe/codec_rd_int.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"

/* tokens sampled for a row format; about as many tokens for a clustering,
 * in whole clusters (a centroid needs every member) */
#define SAMPLE_TOKENS 32
/* a refined candidate's estimate is its unrefined twin's times this (in
 * error): measured gains of one refinement step are 11-32% (algorithm.md) */
#define SAMPLE_REFINE_GAIN 0.85

static double rel2(double sse, double den)
{
    return den > 0.0 ? sse / den : (sse > 0.0 ? INFINITY : 0.0);
}

/* Relative squared error of rows in format fmt on every (n / SAMPLE_TOKENS)-th
 * token (kept in row_est), a batch of sampled rows per kernel call; their
 * codes go to the scratch after the measured rows (lshmoe_rd_scratch_bytes)
 * and are dropped. The errors are added in token order, as one row at a
 * time would add them. */
static double est_rows(rd_t *r, int fmt)
{
    const enc_job_t *j = r->j;
    size_t n = j->ntokens, h = j->hidden, batch = lshmoe_rd_batch_rows(h);
    size_t step = n > SAMPLE_TOKENS ? n / SAMPLE_TOKENS : 1;
    size_t stride = (size_t)lshmoe_qm_row_bytes(fmt, h);
    const double *norms = r->c->norms.ptr;
    float *y = r->c->scratch.ptr;
    uint8_t *code = (uint8_t *)(y + batch * h);
    double sse = 0.0, den = 0.0, row_sse[LSHMOE_RD_BATCH_MAX];
    if (r->row_est[fmt] >= 0.0)
        return r->row_est[fmt];
    for (size_t i = step / 2; i < n; i += batch * step) {
        size_t m = (n - i + step - 1) / step;
        m = m < batch ? m : batch;
        lshmoe_kn_quant_rows_sse(fmt, r->x + i * h, step * h, m, h, j->dtype, code, stride, y,
                                 row_sse);
        for (size_t k = 0; k < m; k++) {
            sse += row_sse[k];
            den += norms[i + k * step];
            r->visited++;
        }
    }
    r->row_est[fmt] = rel2(sse, den);
    return r->row_est[fmt];
}

/*
 * Estimates for the clustering by L functions that group_l left in
 * cluster_of (nrows clusters), per centroid format, in two strata. A
 * cluster of one decodes to its token in the row format: that error is
 * the format's row estimate times the stratum's exact sum |x|^2. Clusters
 * of two or more (rare on data LSH cannot compress, where they carry all
 * of the clustering's error: so never left to chance) are sampled whole,
 * every cstep-th of them (all of them when there are few), about
 * SAMPLE_TOKENS members: means in fp32 from the widened tokens (the
 * kernel's up to summation order), each format's decoded rows, the error
 * of every member, scaled by the stratum's sum |x|^2 over the sample's.
 */
static lshmoe_status_t est_clusters(rd_t *r, int L, size_t nrows)
{
    lshmoe_codec_t *c = r->c;
    const enc_job_t *j = r->j;
    size_t n = j->ntokens, h = j->hidden, bytes;
    const uint32_t *of = c->cluster_of.ptr;
    const double *norms = c->norms.ptr;
    double den1 = 0.0, denm = 0.0;
    size_t nmulti = 0, members = 0;

    /* per cluster: size, then sample slot; per slot: the mean and each
     * format's decoded row; the sampled members */
    LSHMOE_CHECK(lshmoe_mul_size(n * h, (1 + N_CL_FMTS) * sizeof(float), &bytes));
    LSHMOE_CHECK(lshmoe_buf_reserve(&c->sample_ws, bytes + 3 * n * sizeof(uint32_t)));
    uint32_t *size = c->sample_ws.ptr, *mem = size + n, *slot_of = mem + n;
    float *mean = (float *)(slot_of + n);
    memset(size, 0, nrows * sizeof *size);
    for (size_t i = 0; i < n; i++)
        size[of[i]]++;
    for (size_t i = 0; i < n; i++) {
        if (size[of[i]] == 1) {
            den1 += norms[i];
        } else {
            denm += norms[i];
            members++;
        }
    }
    for (size_t k = 0; k < nrows; k++)
        nmulti += size[k] > 1;
    size_t cstep = members / SAMPLE_TOKENS;
    if (nmulti / 4 < cstep)
        cstep = nmulti / 4;    /* few large clusters: at least 4 of them */
    if (cstep < 1)
        cstep = 1;
    size_t nslots = 0;
    for (size_t k = 0, mk = 0; k < nrows; k++) {
        slot_of[k] = UINT32_MAX;
        if (size[k] > 1 && mk++ % cstep == cstep / 2)
            slot_of[k] = (uint32_t)nslots++;
    }
    float *q = mean + nslots * h;
    size_t m = 0;
    memset(mean, 0, nslots * h * sizeof *mean);
    for (size_t i = 0; i < n; i++) {
        uint32_t s = slot_of[of[i]];
        if (s == UINT32_MAX)
            continue;
        const float *xi = r->x + i * h;
        float *ms = mean + (size_t)s * h;
        for (size_t e = 0; e < h; e++)
            ms[e] += xi[e];
        mem[m++] = (uint32_t)i;
        r->visited++;
    }
    for (size_t k = 0; k < nrows; k++) {
        uint32_t s = slot_of[k];
        if (s == UINT32_MAX)
            continue;
        float *ms = mean + (size_t)s * h, inv = 1.0f / (float)size[k];
        for (size_t e = 0; e < h; e++)
            ms[e] *= inv;
    }
    /* each format's decoded means, a batch of slots per kernel call (the
     * codes go to the scratch after its measured rows, and are dropped) */
    size_t batch = lshmoe_rd_batch_rows(h);
    uint8_t *code = (uint8_t *)((float *)c->scratch.ptr + batch * h);
    for (size_t f = 0; f < N_CL_FMTS; f++)
        for (size_t s = 0; s < nslots; s += batch)
            lshmoe_kn_quant_rows_sse(cl_fmts[f], mean + s * h, h,
                                     nslots - s < batch ? nslots - s : batch, h, j->dtype, code,
                                     (size_t)lshmoe_qm_row_bytes(cl_fmts[f], h),
                                     q + (f * nslots + s) * h, NULL);
    double sse[N_CL_FMTS] = {0}, dens = 0.0;
    for (size_t t = 0; t < m; t++) {
        const float *xi = r->x + (size_t)mem[t] * h;
        size_t s = slot_of[of[mem[t]]];
        for (size_t f = 0; f < N_CL_FMTS; f++) {
            sse[f] += lshmoe_kn_row_sq_dist(xi, q + (f * nslots + s) * h, h);
            r->visited++;
        }
        dens += norms[mem[t]];
    }
    for (size_t f = 0; f < N_CL_FMTS; f++) {
        double e = est_rows(r, cl_fmts[f]) * den1;
        if (dens > 0.0)
            e += sse[f] * (denm / dens);
        r->cl_est[L].rel2[f] = rel2(e, r->den);
    }
    r->cl_est[L].done = 1;
    return LSHMOE_OK;
}

/* The estimated relative squared error of a candidate. */
static lshmoe_status_t estimate(rd_t *r, const cand_t *k, double *est_p)
{
    if (k->L == 0) {
        *est_p = est_rows(r, k->fmt);
        return LSHMOE_OK;
    }
    if (!r->cl_est[k->L].done)
        LSHMOE_CHECK(est_clusters(r, k->L, lshmoe_rd_group_l(r, k->L)));
    size_t f = 0;
    while (f + 1 < N_CL_FMTS && cl_fmts[f] != k->fmt)
        f++;
    *est_p = r->cl_est[k->L].rel2[f] *
             (k->refine ? SAMPLE_REFINE_GAIN * SAMPLE_REFINE_GAIN : 1.0);
    return LSHMOE_OK;
}

/* lshmoe_rd_bisect's test for the sampled search: est[i] <= thr,
 * estimating on first use (est[i] < 0: not yet). */
typedef struct estimated {
    double            *est;
    double             thr;
    const signed char *state; /* measured: > 0 fits, < 0 does not */
} estimated_t;

/* Does a row format smaller than candidate i, not measured to miss, have
 * an estimate within thr already (the forecast's, or an earlier test's)?
 * Then i, a row format too, is taken to fit without an estimate of its
 * own: the bisection only asks about i to find the smallest fit, and in
 * the chain's order (monotone by assumption) a smaller fit implies it.
 * Where the chain is not monotone (int4 can miss where int4e fits) this
 * keeps the bisection on the smaller fit instead of sending it above i. */
static int smaller_row_fits(const rd_t *r, const cand_t *cands, size_t i, const estimated_t *e)
{
    for (size_t k = 0; k < i; k++)
        if (cands[k].L == 0 && cands[k].bytes < cands[i].bytes && e->state[k] >= 0 &&
            r->row_est[cands[k].fmt] >= 0.0 && r->row_est[cands[k].fmt] <= e->thr)
            return 1;
    return 0;
}

static lshmoe_status_t est_fit(rd_t *r, const cand_t *cands, size_t i, void *arg, int *fit_p)
{
    estimated_t *e = arg;
    if (e->est[i] < 0.0 && cands[i].L == 0 && r->row_est[cands[i].fmt] < 0.0 &&
        smaller_row_fits(r, cands, i, e)) {
        *fit_p = 1;
        return LSHMOE_OK;
    }
    if (e->est[i] < 0.0)
        LSHMOE_CHECK(estimate(r, &cands[i], &e->est[i]));
    *fit_p = e->est[i] <= e->thr;
    return LSHMOE_OK;
}

/* Measures in full the smallest candidate whose estimate is within the
 * budget, the next one after a miss, until one fits; then, if none did,
 * the same for the estimates within LSHMOE_RD_SAMPLE_SLACK of it. */
lshmoe_status_t lshmoe_rd_search_sample(rd_t *r, const cand_t *cands, size_t n,
                                        signed char *state, double *sse, int *best_p,
                                        int *last_p)
{
    double est[MAX_CAND], b2 = r->c->params.max_error * r->c->params.max_error;
    for (size_t i = 0; i < n; i++)
        est[i] = -1.0;
    *best_p = -1;
    for (int tier = 0; tier < 2; tier++) {
        double thr = tier ? b2 * LSHMOE_RD_SAMPLE_SLACK * LSHMOE_RD_SAMPLE_SLACK : b2;
        for (;;) {
            int i;
            /* the smallest unmeasured candidate whose estimate is within
             * thr: a chain that is not monotone can make this miss a
             * smaller fit, which costs ratio, never the budget */
            estimated_t e = {est, thr, state};
            LSHMOE_CHECK(lshmoe_rd_bisect(r, cands, n, state, est_fit, &e, &i));
            if (i < 0)
                break;
            LSHMOE_CHECK(lshmoe_rd_fits(r, cands, (size_t)i, state, sse, last_p));
            if (state[i] > 0) {
                *best_p = i;
                return LSHMOE_OK;
            }
        }
    }
    return LSHMOE_OK;
}


/* The ladder's row formats by bytes (list_cands, codec_rd.c), less int4:
 * int4e is no larger and has the smaller error, so when int4e does not fit
 * neither does int4. FP8 and int8 have the same size. */
static const int fc_fmts[] = {LSHMOE_QM_INT2, LSHMOE_QM_INT4E, LSHMOE_QM_FP8, LSHMOE_QM_INT8};
#define N_FC_FMTS (sizeof fc_fmts / sizeof fc_fmts[0])

/* A sample of the segment in fp32: every (n / SAMPLE_TOKENS)-th token. */
typedef struct fc_sample {
    const enc_job_t *j;
    float           *x, *y;  /* the sampled tokens; a batch of decoded rows */
    uint8_t         *code;   /* a batch of coded rows                      */
    size_t           m;      /* tokens in the sample                */
    double           den;    /* their sum |x|^2                     */
    double           rel[LSHMOE_QM_COUNT]; /* per format; < 0: not yet */
    uint64_t         visited;
} fc_sample_t;

/* Widens the sample into the scratch; 0 when a sampled token is not
 * finite. */
static lshmoe_status_t fc_widen(fc_sample_t *s, int *finite_p)
{
    const enc_job_t *j = s->j;
    lshmoe_codec_t *c = j->codec;
    size_t n = j->ntokens, h = j->hidden, tb = j->token_bytes / n, bytes;
    size_t step = n > SAMPLE_TOKENS ? n / SAMPLE_TOKENS : 1;
    s->m = (n - step / 2 + step - 1) / step;
    /* the sample (fp32), then a batch of measured and coded rows */
    LSHMOE_CHECK(lshmoe_mul_size(h, s->m * sizeof(float), &bytes));
    LSHMOE_CHECK(lshmoe_buf_reserve(&c->scratch, bytes + lshmoe_rd_scratch_bytes(h)));
    s->x = c->scratch.ptr;
    s->y = s->x + s->m * h;
    s->code = (uint8_t *)(s->y + lshmoe_rd_batch_rows(h) * h);
    s->den = 0.0;
    for (size_t f = 0; f < LSHMOE_QM_COUNT; f++)
        s->rel[f] = -1.0;
    for (size_t i = step / 2, k = 0; i < n; i += step, k++) {
        float *xk = s->x + k * h;
        lshmoe_row_to_f32((const uint8_t *)j->tokens + i * tb, j->dtype, h, xk);
        s->den += lshmoe_rd_sq_norm(xk, h);
    }
    *finite_p = isfinite(s->den);
    return LSHMOE_OK;
}

/* Relative squared error of rows in format fmt on the sample (once). */
static double fc_rel(fc_sample_t *s, int fmt)
{
    const enc_job_t *j = s->j;
    size_t h = j->hidden;
    size_t batch = lshmoe_rd_batch_rows(h), stride = (size_t)lshmoe_qm_row_bytes(fmt, h);
    double sse = 0.0, row_sse[LSHMOE_RD_BATCH_MAX];
    if (s->rel[fmt] >= 0.0)
        return s->rel[fmt];
    for (size_t k = 0; k < s->m; k += batch) {
        size_t m = s->m - k < batch ? s->m - k : batch;
        lshmoe_kn_quant_rows_sse(fmt, s->x + k * h, h, m, h, j->dtype, s->code, stride, s->y,
                                 row_sse);
        for (size_t t = 0; t < m; t++)
            sse += row_sse[t]; /* in token order, as one row at a time */
    }
    s->visited += s->m;
    s->rel[fmt] = rel2(sse, s->den);
    return s->rel[fmt];
}

lshmoe_status_t lshmoe_rd_forecast(const enc_job_t *j, double slack, int smallest,
                                   uint64_t *bytes_p, uint64_t *visited_p, double *rel)
{
    lshmoe_codec_t *c = j->codec;
    rd_t r = {.j = j, .c = c};
    fc_sample_t s = {.j = j};
    double thr = c->params.max_error * slack;
    uint64_t best = 0;
    int finite;

    thr *= thr;
    *bytes_p = 0;
    for (size_t f = 0; f < LSHMOE_QM_COUNT; f++)
        s.rel[f] = -1.0;
    if (j->ntokens == 0)
        goto out;
    LSHMOE_CHECK(fc_widen(&s, &finite));
    if (!finite) {
        *bytes_p = LSHMOE_RD_NO_FORECAST;
        goto out;
    }
    /* the first row format by bytes that fits and pays */
    for (size_t f = 0; f < N_FC_FMTS && best == 0; f++) {
        cand_t k = {.L = 0, .fmt = fc_fmts[f], .nrows = j->ntokens};
        uint64_t b = lshmoe_rd_cand_bytes(&r, &k, k.nrows);
        if (b && fc_rel(&s, fc_fmts[f]) <= thr)
            best = b;
    }
    int ls[16], nl = c->params.mode == LSHMOE_CODEC_BUDGET ? lshmoe_codec_ladder_l(c, ls) : 0;
    if (nl > 0 && (smallest || best == 0)) {
        /* the cheapest centroid format within the budget as a row format:
         * a centroid's quantization error is about a token's, plus the
         * clustering's own, which is not sampled */
        int cl_fmt = -1;
        for (size_t g = 0; g < N_CL_FMTS && cl_fmt < 0; g++)
            if (fc_rel(&s, cl_fmts[g]) <= thr)
                cl_fmt = cl_fmts[g];
        if (cl_fmt >= 0) {
            size_t rows;
            LSHMOE_CHECK(lshmoe_codec_probe(c, j->tokens, j->dtype, j->hidden, j->ntokens,
                                            &rows));
            s.visited += lshmoe_codec_probe_sample(j->ntokens);
            cand_t k = {.L = ls[nl - 1], .fmt = cl_fmt, .nrows = rows};
            uint64_t b = rows > 0 ? lshmoe_rd_cand_bytes(&r, &k, rows) : 0;
            if (b && (best == 0 || b < best))
                best = b;
        }
    }
    *bytes_p = best;
out:
    if (visited_p != NULL)
        *visited_p += s.visited;
    if (rel != NULL)
        memcpy(rel, s.rel, sizeof s.rel);
    return LSHMOE_OK;
}
