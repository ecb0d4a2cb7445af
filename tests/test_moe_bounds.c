/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * MoE mode with compression on, linear experts against the exact
 * (compress = 0) result: exact given the centroids, and error bounds
 * derived from the centroid error. Self transport, 4 ranks; the main
 * thread asserts.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lshmoe_moe.h"
#include "moe_self.h"
#include "testutil.h"

#define U 0x1p-24 /* fp32 unit roundoff */

/* ------------------------------------------------------------------------ */
/* Error bounds of linear experts                                            */
/* ------------------------------------------------------------------------ */

/*
 * With the groups fixed, slot (t, s) of expert e and centroid c computes
 *   RESIDUAL: y = W c + b + (x - c),  exact: W x + b,  error (W - I)(c - x)
 *   NONE:     y = W c + b,                              error  W (c - x)
 * so ||out_t - exact_t|| <= sum_s g_ts ||W_e - rho I||_2 ||x_t - c_ts|| and
 * ||A||_2 <= ||A||_F. Squared and summed over tokens with Cauchy-Schwarz:
 *   ||out - exact||^2 <= max_t(sum_s g_ts^2) max_e ||W_e - rho I||_F^2
 *                        * sum over slots ||x - c||^2,
 * and the last sum is centroid_rel_error^2 * sum over slots ||x||^2 per
 * rank. Both outputs are also rounded (each rounding relative 2^-24 of the
 * values involved): `slack` below. With W = I + 0.05 G/sqrt(H), the
 * RESIDUAL error is about 0.05 of the NONE error.
 */
typedef struct bound_acc {
    double err2, ref2, tight2, slack2, cdist2, x2;
} bound_acc_t;

/* The centroid of slot i, as the identity expert with NONE gave it back. */
static const float *centroid(const moe_world_t *d, int r, size_t i)
{
    return d->res[r].hook.yslot + i * d->p->H;
}

/* Accumulates one rank's error, bound and slack for compensation rho;
 * y is that run, a the exact run, d the centroids. */
static void bound_rank(const moe_world_t *y, const moe_world_t *a, const moe_world_t *d,
                       int r, double rho, bound_acc_t *acc)
{
    const moe_prob_t *p = y->p;
    const moe_inputs_t *in = &y->in[r];
    size_t H = p->H, K = (size_t)p->K;
    const float *x = in->x, *oy = y->res[r].y, *oa = a->res[r].y;
    float *ya = malloc(in->n * K * H * sizeof(float) + 1);
    void *tmp = malloc(in->n * moe_tb(p) + 1);
    moe_ref_forward(p, y->ex, in, 0, 0, tmp, ya);
    for (size_t t = 0; t < in->n; t++) {
        double e2 = 0.0, tight = 0.0;
        double sl = sqrt(moe_norm2(oy + t * H, H)) + sqrt(moe_norm2(oa + t * H, H));
        for (size_t h = 0; h < H; h++)
            e2 += pow((double)oy[t * H + h] - oa[t * H + h], 2);
        for (size_t s = 0; s < K; s++) {
            size_t i = t * K + s;
            int e = in->idx[i];
            if (e < 0)
                continue;
            double cd2 = 0.0, g = in->w[i];
            for (size_t h = 0; h < H; h++)
                cd2 += pow((double)x[t * H + h] - centroid(d, r, i)[h], 2);
            tight += g * moe_expert_frob_minus(y->ex, e, rho) * sqrt(cd2);
            sl += g * (sqrt(moe_norm2(y->res[r].hook.yslot + i * H, H)) +
                       sqrt(moe_norm2(ya + i * H, H)));
            acc->cdist2 += cd2;
            acc->x2 += moe_norm2(x + t * H, H);
        }
        acc->err2 += e2;
        acc->ref2 += moe_norm2(oa + t * H, H);
        acc->tight2 += tight * tight;
        acc->slack2 += pow(4.0 * U * sl, 2);
    }
    free(ya);
    free(tmp);
}

/* Given the centroids, y_ts is exactly fl32(fp64(E(c) + rho (x - c))) and
 * out the fp64 gate-weighted sum of those: counts the values that are not. */
static long exact_given_centroids(const moe_world_t *y, const moe_world_t *d, int r, double rho)
{
    const moe_prob_t *p = y->p;
    const moe_inputs_t *in = &y->in[r];
    size_t H = p->H, K = (size_t)p->K;
    const float *x = in->x, *ys = y->res[r].hook.yslot;
    float *want = calloc(in->n * K * H + 1, sizeof(float)), *ec = malloc(H * sizeof(float));
    long bad = 0;
    for (size_t i = 0; i < in->n * K; i++) {
        if (in->idx[i] < 0)
            continue;
        const float *c = centroid(d, r, i);
        moe_expert_fwd_rows(y->ex, in->idx[i], c, ec, 1);
        for (size_t h = 0; h < H; h++)
            want[i * H + h] = (float)((double)ec[h] + rho * ((double)x[i / K * H + h] - c[h]));
        bad += memcmp(ys + i * H, want + i * H, H * sizeof(float)) != 0;
    }
    float *out = malloc(in->n * H * sizeof(float) + 1);
    moe_ref_combine_slots(p, in, ys, out);
    bad += memcmp(out, y->res[r].y, in->n * H * sizeof(float)) != 0;
    free(want);
    free(ec);
    free(out);
    return bad;
}

/* Checks one compensation; returns the relative L2 error of the output. */
static double check_bounds(const moe_world_t *y, const moe_world_t *a, const moe_world_t *d,
                           double rho)
{
    bound_acc_t acc = {0};
    double fmx = 0.0, g2max = 0.0, via_stats = 0.0;
    for (int e = 0; e < y->p->E; e++)
        fmx = fmax(fmx, moe_expert_frob_minus(y->ex, e, rho));
    for (int r = 0; r < MOE_NR; r++) {
        bound_acc_t one = {0};
        CU_ASSERT_EQUAL(exact_given_centroids(y, d, r, rho), 0);
        bound_rank(y, a, d, r, rho, &one);
        /* the statistic is the centroid error this rank's slots carry */
        double cre = sqrt(one.cdist2 / one.x2), st = y->res[r].stats.centroid_rel_error;
        if (fabs(cre - st) > 1e-3 * cre)
            fprintf(stderr, "rank %d: centroid_rel_error %.6g, measured %.6g\n", r, st, cre);
        CU_ASSERT(fabs(cre - st) <= 1e-3 * cre);
        via_stats += st * st * one.x2;
        acc.err2 += one.err2;
        acc.ref2 += one.ref2;
        acc.tight2 += one.tight2;
        acc.slack2 += one.slack2;
        for (size_t i = 0; i < y->in[r].n; i++) {
            double g2 = 0.0;
            size_t K = (size_t)y->p->K;
            for (size_t s = 0; s < K; s++)
                if (y->in[r].idx[i * K + s] >= 0)
                    g2 += pow(y->in[r].w[i * K + s], 2);
            g2max = fmax(g2max, g2);
        }
    }
    double err = sqrt(acc.err2), slack = sqrt(acc.slack2);
    fprintf(stderr, "rho %g: error %.4g, bound %.4g (slot by slot) %.4g (statistics)\n", rho,
            err / sqrt(acc.ref2), sqrt(acc.tight2) / sqrt(acc.ref2),
            fmx * sqrt(g2max * via_stats) / sqrt(acc.ref2));
    CU_ASSERT(err <= sqrt(acc.tight2) + slack);
    CU_ASSERT(err <= fmx * sqrt(g2max * via_stats) + slack);
    return err / sqrt(acc.ref2);
}

static void test_moe_linear_error_bounds(void)
{
    moe_prob_t p = moe_prob_numeric(MOE_EXPERT_LINEAR, 128, 0.05), pid = p;
    pid.kind = MOE_EXPERT_IDENTITY; /* same seeds: same tokens and routing */
    moe_experts_t *ex = moe_experts_new(&p), *exid = moe_experts_new(&pid);
    moe_world_t *a = moe_world_numeric(&p, ex, 0, LSHMOE_COMP_RESIDUAL, MOE_HOOK_NONE, 0);
    moe_world_t *res = moe_world_numeric(&p, ex, 1, LSHMOE_COMP_RESIDUAL, MOE_HOOK_CAPTURE, 0);
    moe_world_t *none = moe_world_numeric(&p, ex, 1, LSHMOE_COMP_NONE, MOE_HOOK_CAPTURE, 0);
    /* identity + NONE: the POST_RECONSTRUCT rows are the centroids */
    moe_world_t *d = moe_world_numeric(&pid, exid, 1, LSHMOE_COMP_NONE, MOE_HOOK_CAPTURE, 0);
    CU_ASSERT_EQUAL_FATAL(moe_world_run(a), 0);
    CU_ASSERT_EQUAL_FATAL(moe_world_run(res), 0);
    CU_ASSERT_EQUAL_FATAL(moe_world_run(none), 0);
    CU_ASSERT_EQUAL_FATAL(moe_world_run(d), 0);
    int ok = moe_world_all_ok(a) & moe_world_all_ok(res) & moe_world_all_ok(none) &
             moe_world_all_ok(d);
    if (ok) {
        /* grouping happens on the sender, before any expert runs */
        CU_ASSERT(moe_world_same_grouping(res, d));
        CU_ASSERT(moe_world_same_grouping(none, d));
        CU_ASSERT(moe_world_clusters_formed(res));
        double e_res = check_bounds(res, a, d, 1.0);
        double e_none = check_bounds(none, a, d, 0.0);
        CU_ASSERT(e_res > 0.0);           /* groups of several tokens formed */
        CU_ASSERT(e_res < 0.25 * e_none); /* expected ratio ~0.05, see above */
    }
    moe_world_free(a);
    moe_world_free(res);
    moe_world_free(none);
    moe_world_free(d);
    moe_experts_free(ex);
    moe_experts_free(exid);
}

static const lt_test_t tests[] = {
    {"test_moe_linear_error_bounds", test_moe_linear_error_bounds},
};

int main(void)
{
    /* No timing-driven plain/encoded choice: see test_moe.c. */
    setenv("LSHMOE_ADAPT", "0", 1);
    return lt_run_suite("moe_bounds", tests, sizeof tests / sizeof tests[0]);
}
