/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * MoE mode with compression on: the backward pass (dx and dgates) against
 * finite differences of the forward, for linear and identity experts and
 * every compensation. Self transport, 4 ranks; the main thread asserts.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datagen.h"
#include "lshmoe_moe.h"
#include "moe_self.h"
#include "testutil.h"

#define U 0x1p-24 /* fp32 unit roundoff */

/* ------------------------------------------------------------------------ */
/* Gradients vs finite differences                                          */
/* ------------------------------------------------------------------------ */

/*
 * L = sum_t <w_t, out_t> with w = dy. With the groups fixed, out is affine
 * in x (centroids are means, experts linear) and linear in the gates, so
 * L(x+) - L(x-) = <dL/dx, x+ - x-> exactly, for any step: the step only
 * has to keep the grouping (checked). The perturbed inputs are rounded to
 * fp32 first and the difference taken of what was actually passed, so what
 * remains is the rounding of the forward outputs and of dx:
 *  - out_th: centroid (an fp32 sum of up to n members: (n+1) u X through
 *    W - rho I), E(c) (u Emax), y (u (Emax + 2 rho X)), out (u |out|),
 *    doubled to cover the fp64 steps: e_th below;
 *  - dx: group gradient, W^T A, means and residual terms and the final
 *    rounding, each u times at most (||W^T||_inf + 2) g_max D per slot.
 * Only tokens whose output changed carry rounding into L(x+) - L(x-): the
 * others are bit-identical in both runs.
 * The step: the rounding noise does not shrink with it, the signal grows
 * with it, and linearity makes any step exact that keeps the grouping; 0.05
 * per element of one token per rank moves a token by about 5% of its
 * norm, which keeps the LSH buckets (else another direction is tried), and
 * puts the signal about 200 times above the tolerance (1e-3 would leave
 * the tolerance at 25% of the signal). The check also requires the
 * tolerance to stay under 5% of the signal, so it cannot pass vacuously.
 */
typedef struct fd_scale {
    double X, Emax, Wn, WTn, gmax, D, rho, nmax;
} fd_scale_t;

static fd_scale_t fd_scales(const moe_world_t *w, double rho)
{
    fd_scale_t sc = {.rho = rho, .Wn = 1.0, .WTn = 1.0};
    double bmax = 0.0;
    for (int e = 0; e < w->p->E; e++) {
        sc.Wn = fmax(sc.Wn, moe_expert_row_abs(w->ex, e));
        sc.WTn = fmax(sc.WTn, moe_expert_col_abs(w->ex, e));
        for (size_t h = 0; h < w->p->H && w->ex->kind == MOE_EXPERT_LINEAR; h++)
            bmax = fmax(bmax, fabs(w->ex->b[(size_t)e * w->p->H + h]));
    }
    for (int r = 0; r < MOE_NR; r++) {
        const moe_inputs_t *in = &w->in[r];
        for (size_t i = 0; i < in->n * w->p->H; i++) {
            sc.X = fmax(sc.X, 1.01 * fabs(((const float *)in->x)[i])); /* + the steps */
            sc.D = fmax(sc.D, fabs(((const float *)in->dy)[i]));
        }
        for (size_t i = 0; i < in->n * (size_t)w->p->K; i++)
            sc.gmax = fmax(sc.gmax, 1.01 * fabs(in->w[i]));
        sc.nmax = fmax(sc.nmax, (double)w->res[r].max_cluster);
    }
    sc.Emax = sc.Wn * sc.X + bmax;
    return sc;
}

static double out_err(const fd_scale_t *sc, double out, double gsum)
{
    double slot = 2 * sc->Emax + 2 * sc->rho * sc->X + (sc->Wn + sc->rho) * (sc->nmax + 1) * sc->X;
    return 2 * U * (fabs(out) + gsum * slot);
}

/*
 * Sum over ranks of <w, out+ - out->, and the rounding bound of it: with
 * gates_only the worst case (y is the same in both runs and out rounds
 * once, so the bound is small), else the probabilistic bound of Higham and
 * Mary (SIAM J. Sci. Comput. 41(5), 2019): independent roundings of zero
 * mean, each bounded by b_i, sum to at most lambda * sqrt(sum b_i^2) but
 * with probability 2 exp(-lambda^2 / 2); lambda = 6 gives 3e-8. The worst
 * case (sum b_i) is 2 to 3 orders looser than what rounding ever does here,
 * and would leave the check blind to errors of a few percent.
 */
static double loss_diff(const moe_world_t *pl, const moe_world_t *mi, const fd_scale_t *sc,
                        int gates_only, double *tol)
{
    double dl = 0.0, worst = 0.0, sq = 0.0;
    size_t H = pl->p->H, K = (size_t)pl->p->K;
    for (int r = 0; r < MOE_NR; r++) {
        const float *a = pl->res[r].y, *b = mi->res[r].y, *w = pl->in[r].dy;
        for (size_t t = 0; t < pl->in[r].n; t++) {
            if (memcmp(a + t * H, b + t * H, H * sizeof(float)) == 0)
                continue;
            double gsum = 0.0;
            for (size_t s = 0; s < K; s++)
                if (pl->in[r].idx[t * K + s] >= 0)
                    gsum += sc->gmax;
            for (size_t h = 0; h < H; h++) {
                size_t i = t * H + h;
                dl += (double)w[i] * ((double)a[i] - (double)b[i]);
                double bi = gates_only ? 2 * U * (fabs(a[i]) + fabs(b[i]))
                                       : out_err(sc, a[i], gsum) + out_err(sc, b[i], gsum);
                bi *= fabs(w[i]);
                worst += bi;
                sq += bi * bi;
            }
        }
    }
    *tol += gates_only ? worst : 6.0 * sqrt(sq);
    return dl;
}

static void fd_compare(const char *what, double dl, double pred, double tol)
{
    fprintf(stderr, "fd %s: L(+)-L(-) %.9g, gradient %.9g, |diff| %.3g, tolerance %.3g\n", what,
            dl, pred, fabs(dl - pred), tol);
    CU_ASSERT(fabs(dl - pred) <= tol);
    CU_ASSERT(tol <= 0.05 * fabs(pred)); /* else the check proves little */
}

/* One token per rank moved by +-step along a random direction whose sign
 * makes its term of <dx, v> positive (so the terms add up). Returns 1 if
 * the grouping held (and the check ran), 0 to try another direction. */
static int fd_x(const moe_world_t *base, int32_t comp, uint64_t dir, double step)
{
    const moe_prob_t *p = base->p;
    size_t H = p->H;
    moe_world_t *pm[2];
    double pred = 0.0, tol = 0.0;
    for (int k = 0; k < 2; k++) {
        pm[k] = moe_world_numeric(p, base->ex, 1, comp, MOE_HOOK_NONE, 0);
        moe_world_warm_like(pm[k], base);
    }
    for (int r = 0; r < MOE_NR; r++) {
        const moe_inputs_t *in = &base->in[r];
        size_t t = (size_t)(lt_hash64(dir, (uint64_t)r) % in->n), K = (size_t)p->K;
        while (in->idx[t * K] < 0 && in->idx[t * K + K - 1] < 0) /* a routed token */
            t = (t + 1) % in->n;
        const float *dx = base->res[r].dx, *x = in->x;
        double sign = 0.0;
        for (size_t h = 0; h < H; h++)
            sign += dx[t * H + h] * lt_normal(dir * 31 + (uint64_t)r, h);
        sign = sign < 0 ? -1.0 : 1.0;
        for (size_t h = 0; h < H; h++) {
            double v = sign * step * lt_normal(dir * 31 + (uint64_t)r, h);
            float *xp = (float *)pm[0]->in[r].x + t * H, *xm = (float *)pm[1]->in[r].x + t * H;
            xp[h] = (float)(x[t * H + h] + v);
            xm[h] = (float)(x[t * H + h] - v);
            double d = (double)xp[h] - (double)xm[h];
            pred += dx[t * H + h] * d;
        }
    }
    int held = moe_world_run(pm[0]) == 0 && moe_world_run(pm[1]) == 0;
    held = held && moe_world_all_ok(pm[0]) && moe_world_all_ok(pm[1]);
    held = held && moe_world_same_grouping(base, pm[0]) && moe_world_same_grouping(base, pm[1]);
    if (held) {
        fd_scale_t sc = fd_scales(base, comp == LSHMOE_COMP_RESIDUAL ? 1.0 : 0.0);
        /* SCALED's rho is a least-squares slope <W d, d> / |d|^2, at most
         * ||W||_2 <= sqrt(||W||_1 ||W||_inf) */
        if (comp == LSHMOE_COMP_SCALED)
            sc.rho = sqrt(sc.Wn * sc.WTn);
        double dl = loss_diff(pm[0], pm[1], &sc, 0, &tol);
        for (int r = 0; r < MOE_NR; r++) {
            const float *xp = pm[0]->in[r].x, *xm = pm[1]->in[r].x, *dx = base->res[r].dx;
            for (size_t i = 0; i < base->in[r].n * H; i++)
                tol += fabs((double)xp[i] - xm[i]) *
                       (4 * U * p->K * (sc.WTn + 2) * sc.gmax * sc.D + U * fabs(dx[i]));
        }
        fd_compare("dx", dl, pred, tol);
    } else {
        fprintf(stderr, "fd dx: direction %llu changed the grouping, trying another\n",
                (unsigned long long)dir);
    }
    moe_world_free(pm[0]);
    moe_world_free(pm[1]);
    return held;
}

/* Every gate moved by +-step (dropped slots too: their dgate must be 0). */
static void fd_gates(const moe_world_t *base, int32_t comp, double step)
{
    const moe_prob_t *p = base->p;
    moe_world_t *pm[2];
    double pred = 0.0, tol = 0.0;
    for (int k = 0; k < 2; k++) {
        pm[k] = moe_world_numeric(p, base->ex, 1, comp, MOE_HOOK_NONE, 0);
        moe_world_warm_like(pm[k], base);
    }
    for (int r = 0; r < MOE_NR; r++) {
        const moe_inputs_t *in = &base->in[r];
        const float *dg = base->res[r].dgates;
        for (size_t i = 0; i < in->n * (size_t)p->K; i++) {
            double v = step * lt_normal(977, (uint64_t)r * 100000u + i);
            v = dg[i] < 0 ? -v : v;
            pm[0]->in[r].w[i] = (float)(in->w[i] + v);
            pm[1]->in[r].w[i] = (float)(in->w[i] - v);
            double d = (double)pm[0]->in[r].w[i] - pm[1]->in[r].w[i];
            pred += dg[i] * d;
            tol += fabs(d) * 2 * U * fabs(dg[i]);
        }
    }
    CU_ASSERT_EQUAL_FATAL(moe_world_run(pm[0]), 0);
    CU_ASSERT_EQUAL_FATAL(moe_world_run(pm[1]), 0);
    if (moe_world_all_ok(pm[0]) && moe_world_all_ok(pm[1])) {
        /* gates do not enter the grouping */
        CU_ASSERT(moe_world_same_grouping(base, pm[0]) && moe_world_same_grouping(base, pm[1]));
        fd_scale_t sc = fd_scales(base, 0.0);
        double dl = loss_diff(pm[0], pm[1], &sc, 1, &tol);
        fd_compare("dgates", dl, pred, tol);
    }
    moe_world_free(pm[0]);
    moe_world_free(pm[1]);
}

/* dgates = fl32(<dy_t, y_ts>) for the y_ts the POST_RECONSTRUCT hook saw,
 * 0 for dropped slots: counts the values that are not. */
static long dgates_errors(const moe_world_t *w, int r)
{
    const moe_inputs_t *in = &w->in[r];
    size_t H = w->p->H, K = (size_t)w->p->K;
    const float *dy = in->dy, *ys = w->res[r].hook.yslot;
    long bad = 0;
    for (size_t i = 0; i < in->n * K; i++) {
        double dot = 0.0;
        for (size_t h = 0; h < H && in->idx[i] >= 0; h++)
            dot += (double)dy[i / K * H + h] * ys[i * H + h];
        bad += w->res[r].dgates[i] != (float)dot;
    }
    return bad;
}

static void run_fd(moe_expert_kind_t kind, int32_t comp)
{
    moe_prob_t p = moe_prob_numeric(kind, 64, 0.3);
    moe_experts_t *ex = moe_experts_new(&p);
    moe_world_t *base = moe_world_numeric(&p, ex, 1, comp, MOE_HOOK_CAPTURE, 1);
    for (int r = 0; r < MOE_NR && comp == LSHMOE_COMP_SCALED; r++)
        base->opts[r].warmup = 1; /* rho_e fitted, not 1 */
    moe_world_warm_like(base, base);
    fprintf(stderr, "fd: %s experts, %s\n", kind == MOE_EXPERT_LINEAR ? "linear" : "identity",
            comp == LSHMOE_COMP_RESIDUAL ? "RESIDUAL" : comp == LSHMOE_COMP_NONE ? "NONE"
                                                                                : "SCALED");
    CU_ASSERT_EQUAL_FATAL(moe_world_run(base), 0);
    if (moe_world_all_ok(base)) {
        CU_ASSERT(moe_world_clusters_formed(base));
        for (int r = 0; r < MOE_NR; r++)
            CU_ASSERT_EQUAL(dgates_errors(base, r), 0);
        int held = 0;
        for (uint64_t dir = 1; dir <= 8 && !held; dir++)
            held = fd_x(base, comp, dir, 5e-2);
        CU_ASSERT(held); /* some direction kept the grouping */
        fd_gates(base, comp, 1e-2);
    }
    moe_world_free(base);
    moe_experts_free(ex);
}

static void test_moe_gradients_match_finite_differences(void)
{
    run_fd(MOE_EXPERT_LINEAR, LSHMOE_COMP_RESIDUAL);
    run_fd(MOE_EXPERT_LINEAR, LSHMOE_COMP_NONE);
    run_fd(MOE_EXPERT_LINEAR, LSHMOE_COMP_SCALED); /* rho_e fitted on a first pass */
    run_fd(MOE_EXPERT_IDENTITY, LSHMOE_COMP_NONE); /* the parameter-free path */
}

static const lt_test_t tests[] = {
    {"test_moe_gradients_match_finite_differences", test_moe_gradients_match_finite_differences},
};

int main(void)
{
    /* No timing-driven plain/encoded choice: see test_moe.c. */
    setenv("LSHMOE_ADAPT", "0", 1);
    return lt_run_suite("moe_grad", tests, sizeof tests / sizeof tests[0]);
}
