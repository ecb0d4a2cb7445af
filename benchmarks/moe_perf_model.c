/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * moe_perf's model: the tokens of each rank, the router, the linear experts
 * (the hooks lshmoe runs) and a local reference of the exact pass.
 * Everything is a pure function of fixed seeds, the expert id and the
 * sizes, so every rank (thread or process) derives the same gate matrix and
 * the same experts without communication.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "benchmarks/moe_perf.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/timer.h"
#include "tests/datagen.h"

#define SEED_CLUSTERED 0x5EED0C1Full
#define SEED_GAUSSIAN  0x5EED06A5ull
#define SEED_GATE      0x6A7E6A7Eull
#define SEED_EXPERT    0xE7E7E7E7ull

/* ------------------------------------------------------------------------ */
/* Tokens and router                                                         */
/* ------------------------------------------------------------------------ */

int mp_gen_tokens(const mp_data_t *d, const mp_opts_t *o, int me, size_t ntok, float *x)
{
    size_t h = d->hidden;
    if (d->npy.data != NULL) {
        /* rank me takes the stream's rows [me * ntok, (me + 1) * ntok),
         * wrapping around at the end of the file */
        for (size_t i = 0; i < ntok; i++) {
            size_t row = ((size_t)me * ntok + i) % d->npy.rows;
            memcpy(x + i * h, d->npy.data + row * h, h * sizeof(float));
        }
        return 0;
    }
    if (!strcmp(d->spec, "gaussian")) {
        lt_gen_gaussian(x, ntok, h, SEED_GAUSSIAN + (uint64_t)me);
        return 0;
    }
    /* clustered: one data set (same centers) for all ranks; rank me takes
     * its tokens [me * ntok, (me + 1) * ntok). lt_gen_clustered() always
     * starts at token 0, so generate up to the end of this rank's slice. */
    size_t upto = ((size_t)me + 1) * ntok;
    float *all = malloc(upto * h * sizeof(float));
    if (all == NULL)
        return -1;
    lt_gen_clustered(all, upto, h, o->centers, o->noise, SEED_CLUSTERED);
    memcpy(x, all + (size_t)me * ntok * h, ntok * h * sizeof(float));
    free(all);
    return 0;
}

int mp_route(const float *x, size_t ntok, size_t h, int nexp, int topk, int32_t *idx,
             float *gw)
{
    /* Wg: h x nexp, N(0, 1 / h); same on every rank */
    float *wg = malloc(h * (size_t)nexp * sizeof(float));
    double *logit = malloc((size_t)nexp * sizeof(double));
    char *taken = malloc((size_t)nexp);
    if (wg == NULL || logit == NULL || taken == NULL) {
        free(wg);
        free(logit);
        free(taken);
        return -1;
    }
    double scale = 1.0 / sqrt((double)h);
    for (size_t i = 0; i < h * (size_t)nexp; i++)
        wg[i] = (float)(scale * lt_normal(SEED_GATE, i));
    for (size_t t = 0; t < ntok; t++) {
        const float *xt = x + t * h;
        /* RMS-normalised input, as routers see hidden states after a norm */
        double ss = 0;
        for (size_t j = 0; j < h; j++)
            ss += (double)xt[j] * xt[j];
        double inv = 1.0 / (sqrt(ss / (double)h) + 1e-12);
        for (int e = 0; e < nexp; e++)
            logit[e] = 0;
        for (size_t j = 0; j < h; j++) {
            double xv = xt[j] * inv;
            const float *row = wg + j * (size_t)nexp;
            for (int e = 0; e < nexp; e++)
                logit[e] += xv * row[e];
        }
        /* top-k by logit (ties: lower id); gate weights = softmax over the
         * whole row restricted to the top k and renormalised, which is a
         * softmax over the k chosen logits */
        memset(taken, 0, (size_t)nexp);
        int32_t *it = idx + t * (size_t)topk;
        for (int k = 0; k < topk; k++) {
            int best = -1;
            for (int e = 0; e < nexp; e++)
                if (!taken[e] && (best < 0 || logit[e] > logit[best]))
                    best = e;
            taken[best] = 1;
            it[k] = best;
        }
        double lmax = logit[it[0]], sum = 0;
        for (int k = 0; k < topk; k++)
            sum += exp(logit[it[k]] - lmax);
        for (int k = 0; k < topk; k++)
            gw[t * (size_t)topk + k] = (float)(exp(logit[it[k]] - lmax) / sum);
    }
    free(wg);
    free(logit);
    free(taken);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Experts                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * out[r][c] = sum_j x[r][j] * a[j][c] (+ bias[c]), fp32, j ascending for
 * every element: each row's result depends on that row only (not on the
 * batch it is in), which the reference relies on. Blocked so that the
 * accumulators stay in L1 and each row of `a` serves RB rows of x.
 */
#define RB 8
#define CB 256
static void gemm(const float *restrict x, const float *restrict a, const float *restrict bias,
                 float *restrict out, size_t rows, size_t h)
{
    float acc[RB][CB];
    for (size_t r0 = 0; r0 < rows; r0 += RB) {
        size_t nr = rows - r0 < RB ? rows - r0 : RB;
        for (size_t c0 = 0; c0 < h; c0 += CB) {
            size_t nc = h - c0 < CB ? h - c0 : CB;
            for (size_t r = 0; r < nr; r++)
                for (size_t c = 0; c < CB; c++)
                    acc[r][c] = 0.0f;
            for (size_t j = 0; j < h; j++) {
                const float *aj = a + j * h + c0;
                for (size_t r = 0; r < nr; r++) {
                    float xv = x[(r0 + r) * h + j];
                    if (nc == CB) {
                        for (size_t c = 0; c < CB; c++)
                            acc[r][c] += xv * aj[c];
                    } else {
                        for (size_t c = 0; c < nc; c++)
                            acc[r][c] += xv * aj[c];
                    }
                }
            }
            for (size_t r = 0; r < nr; r++)
                for (size_t c = 0; c < nc; c++)
                    out[(r0 + r) * h + c0 + c] = acc[r][c] + (bias ? bias[c0 + c] : 0.0f);
        }
    }
}

/* Expert e: W = diag * I + sigma / sqrt(h) * N(0, 1) (w: h x h, row =
 * output), wt = W^T, b = bias * N(0, 1). */
static void expert_gen(int e, size_t h, double diag, double sigma, double bias, float *w,
                       float *wt, float *b)
{
    uint64_t seed = lt_hash64(SEED_EXPERT, (uint64_t)e);
    double s = sigma / sqrt((double)h);
    for (size_t i = 0; i < h; i++)
        for (size_t j = 0; j < h; j++) {
            float v = (float)((i == j ? diag : 0.0) + s * lt_normal(seed, i * h + j));
            w[i * h + j] = v;
            wt[j * h + i] = v;
        }
    for (size_t i = 0; i < h; i++)
        b[i] = (float)(bias * lt_normal(seed ^ 0xB1A5ull, i));
}

int mp_model_init(mp_model_t *m, size_t h, int nexp, int topk, lshmoe_dtype_t dt,
                  double diag, double sigma, double bias, int nlocal, const int32_t *ids)
{
    memset(m, 0, sizeof *m);
    m->h = h;
    m->nexp = nexp;
    m->topk = topk;
    m->dt = dt;
    m->diag = diag;
    m->sigma = sigma;
    m->bias = bias;
    m->nlocal = nlocal;
    m->ids = calloc((size_t)(nlocal > 0 ? nlocal : 1), sizeof *m->ids);
    m->w = calloc((size_t)(nlocal > 0 ? nlocal : 1), sizeof *m->w);
    m->wt = calloc((size_t)(nlocal > 0 ? nlocal : 1), sizeof *m->wt);
    m->b = calloc((size_t)(nlocal > 0 ? nlocal : 1), sizeof *m->b);
    if (m->ids == NULL || m->w == NULL || m->wt == NULL || m->b == NULL)
        return -1;
    for (int j = 0; j < nlocal; j++) {
        m->ids[j] = ids[j];
        m->w[j] = malloc(h * h * sizeof(float));
        m->wt[j] = malloc(h * h * sizeof(float));
        m->b[j] = malloc(h * sizeof(float));
        if (m->w[j] == NULL || m->wt[j] == NULL || m->b[j] == NULL)
            return -1;
        expert_gen(ids[j], h, diag, sigma, bias, m->w[j], m->wt[j], m->b[j]);
    }
    return 0;
}

void mp_model_free(mp_model_t *m)
{
    for (int j = 0; m->w != NULL && j < m->nlocal; j++) {
        free(m->w[j]);
        free(m->wt[j]);
        free(m->b[j]);
    }
    free(m->ids);
    free(m->w);
    free(m->wt);
    free(m->b);
    free(m->xa);
    free(m->xb);
    memset(m, 0, sizeof *m);
}

static int local_index(const mp_model_t *m, int expert)
{
    for (int j = 0; j < m->nlocal; j++)
        if (m->ids[j] == expert)
            return j;
    return -1;
}

static int scratch(mp_model_t *m, size_t rows)
{
    if (rows <= m->cap_rows)
        return 0;
    float *a = realloc(m->xa, rows * m->h * sizeof(float));
    if (a != NULL)
        m->xa = a;
    float *b = realloc(m->xb, rows * m->h * sizeof(float));
    if (b != NULL)
        m->xb = b;
    if (a == NULL || b == NULL)
        return -1;
    m->cap_rows = rows;
    return 0;
}

/* y = rows x h through the matrix mat (+ bias), in the layer dtype. */
static int apply(mp_model_t *m, const float *mat, const float *bias, const void *in, void *out,
                 size_t rows)
{
    if (rows == 0)
        return 0;
    if (scratch(m, rows) != 0) {
        m->failed = 1;
        return 1;
    }
    size_t n = rows * m->h;
    lshmoe_row_to_f32(in, m->dt, n, m->xa);
    gemm(m->xa, mat, bias, m->xb, rows, m->h);
    lshmoe_row_from_f32(m->xb, n, m->dt, out);
    return 0;
}

int mp_expert_fwd(int expert, const void *in, void *out, size_t rows, void *user, void *stream)
{
    mp_model_t *m = user;
    (void)stream;
    int j = local_index(m, expert);
    if (j < 0)
        return 1;  /* lshmoe asked for an expert this rank does not own */
    double t0 = lshmoe_now();
    int rc = apply(m, m->wt[j], m->b[j], in, out, rows);
    m->fwd_s += lshmoe_now() - t0;
    return rc;
}

int mp_expert_bwd(int expert, const void *in, const void *grad_out, void *grad_in, size_t rows,
                  void *user, void *stream)
{
    mp_model_t *m = user;
    (void)in;  /* linear: the Jacobian is W whatever the input */
    (void)stream;
    int j = local_index(m, expert);
    if (j < 0)
        return 1;
    double t0 = lshmoe_now();
    /* grad_in = W^T grad_out: the same kernel with W in place of W^T */
    int rc = apply(m, m->w[j], NULL, grad_out, grad_in, rows);
    m->bwd_s += lshmoe_now() - t0;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Reference                                                                 */
/* ------------------------------------------------------------------------ */

/* Rounds n floats through the dtype, in place. */
static void through_dtype(float *v, size_t n, lshmoe_dtype_t dt, void *tmp)
{
    lshmoe_row_from_f32(v, n, dt, tmp);
    lshmoe_row_to_f32(tmp, dt, n, v);
}

static void compare(const float *got, const float *want, size_t n, double *num, double *den)
{
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - (double)want[i];
        *num += d * d;
        *den += (double)want[i] * want[i];
    }
}

/*
 * With compress 0 every group has one token, so by lshmoe_moe.h:
 *   y_ts    = E_e(x_t) as the expert wrote it (layer dtype), widened to fp32
 *   out_t   = dtype(fp32(sum_s gate_ts * y_ts in fp64, slot order))
 *   dgate   = fp32(dot(dy_t, y_ts) in fp64)
 *   dx_t    = dtype(fp32(sum_s W_e^T (gate_ts * dy_t) in fp64))
 * (gate * dy reaches the expert in the layer dtype.) The expert outputs are
 * recomputed with the same kernel the hooks use, row by row, so out_t is
 * expected bit for bit; dx and the gate gradients within rounding.
 */
int mp_reference_check(const mp_model_t *m, size_t ntok, const void *x, const void *dy,
                       const int32_t *idx, const float *gw, const void *y, const void *dx,
                       const float *dg, size_t nsample, mp_check_t *c)
{
    size_t h = m->h, ts = lshmoe_dtype_size(m->dt) * h;
    int ok = 0;
    float *xt = malloc(h * sizeof(float)), *dyt = malloc(h * sizeof(float));
    float *yk = malloc(h * sizeof(float)), *g = malloc(h * sizeof(float));
    float *gi = malloc(h * sizeof(float)), *got = malloc(h * sizeof(float));
    float *ref = malloc(h * sizeof(float));
    double *ay = malloc(h * sizeof(double)), *adx = malloc(h * sizeof(double));
    void *tmp = malloc(h * sizeof(float));
    float *w = malloc(h * h * sizeof(float)), *wt = malloc(h * h * sizeof(float));
    float *b = malloc(h * sizeof(float));
    if (!xt || !dyt || !yk || !g || !gi || !got || !ref || !ay || !adx || !tmp || !w || !wt || !b)
        goto out;
    if (nsample > ntok)
        nsample = ntok;
    for (size_t s = 0; s < nsample; s++) {
        size_t t = s * ntok / nsample;
        lshmoe_row_to_f32((const char *)x + t * ts, m->dt, h, xt);
        lshmoe_row_to_f32((const char *)dy + t * ts, m->dt, h, dyt);
        for (size_t i = 0; i < h; i++)
            ay[i] = adx[i] = 0.0;
        for (int k = 0; k < m->topk; k++) {
            int e = idx[t * (size_t)m->topk + k];
            float gate = gw[t * (size_t)m->topk + k];
            if (e == LSHMOE_MOE_DROPPED)
                continue;
            const float *ew, *ewt, *eb;
            int j = local_index(m, e);
            if (j >= 0) {
                ew = m->w[j];
                ewt = m->wt[j];
                eb = m->b[j];
            } else {
                expert_gen(e, h, m->diag, m->sigma, m->bias, w, wt, b);
                ew = w;
                ewt = wt;
                eb = b;
            }
            gemm(xt, ewt, eb, yk, 1, h);
            through_dtype(yk, h, m->dt, tmp);
            double dot = 0.0;
            for (size_t i = 0; i < h; i++) {
                ay[i] += (double)gate * (double)yk[i];
                dot += (double)dyt[i] * (double)yk[i];
            }
            float dgr = (float)dot;
            compare(&dg[t * (size_t)m->topk + k], &dgr, 1, &c->dg_num, &c->dg_den);
            for (size_t i = 0; i < h; i++)
                g[i] = (float)((double)gate * (double)dyt[i]);
            through_dtype(g, h, m->dt, tmp);
            gemm(g, ew, NULL, gi, 1, h);
            through_dtype(gi, h, m->dt, tmp);
            for (size_t i = 0; i < h; i++)
                adx[i] += (double)gi[i];
        }
        for (size_t i = 0; i < h; i++)
            ref[i] = (float)ay[i];
        through_dtype(ref, h, m->dt, tmp);
        lshmoe_row_to_f32((const char *)y + t * ts, m->dt, h, got);
        compare(got, ref, h, &c->y_num, &c->y_den);
        for (size_t i = 0; i < h; i++)
            c->y_diff_elems += memcmp(&got[i], &ref[i], sizeof(float)) != 0;
        c->elems += (double)h;
        for (size_t i = 0; i < h; i++)
            ref[i] = (float)adx[i];
        through_dtype(ref, h, m->dt, tmp);
        lshmoe_row_to_f32((const char *)dx + t * ts, m->dt, h, got);
        compare(got, ref, h, &c->dx_num, &c->dx_den);
        c->tokens += 1;
    }
    ok = 1;
out:
    free(xt);
    free(dyt);
    free(yk);
    free(g);
    free(gi);
    free(got);
    free(ref);
    free(ay);
    free(adx);
    free(tmp);
    free(w);
    free(wt);
    free(b);
    return ok ? 0 : -1;
}
