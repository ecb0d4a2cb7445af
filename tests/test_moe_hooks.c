/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * MoE mode on the self transport with 4 ranks: the token hooks (called
 * with the documented rows; PRE_HASH acts as a change of x for one expert,
 * POST_RECONSTRUCT as a change of y_ts; the backward treats both as the
 * identity, except for the gate gradients) and SCALED compensation.
 * Rank threads record (moe_self.c); the main thread asserts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lshmoe_moe.h"
#include "moe_check.h"
#include "moe_self.h"
#include "testutil.h"

/* ------------------------------------------------------------------------ */
/* Token hooks                                                               */
/* ------------------------------------------------------------------------ */

/* Each expert with rows on this rank saw exactly one call at the point. */
static void assert_hook_calls(const moe_world_t *w, int post)
{
    for (int r = 0; r < MOE_NR; r++) {
        size_t pr[MOE_MAX_RANKS], pe[MOE_MAX_E];
        moe_count_routes(w->p, &w->in[r], pr, pe);
        for (int e = 0; e < w->p->E; e++) {
            int calls = post ? w->res[r].hook.calls_post[e] : w->res[r].hook.calls_pre[e];
            if (pe[e] > 0)
                CU_ASSERT_EQUAL(calls, 1);
            CU_ASSERT(calls <= 1);
        }
    }
}

static moe_world_t *hook_world(moe_prob_t *p, moe_experts_t *ex, int compress,
                               moe_hook_kind_t kind)
{
    moe_world_t *w = moe_world_new(p, ex, compress);
    for (int r = 0; r < MOE_NR; r++)
        w->opts[r].hook = kind;
    return w;
}

static void test_moe_post_reconstruct_hook_doubles(void)
{
    moe_prob_t p = moe_prob_default(MOE_NR, 8, 2, 64, LSHMOE_DTYPE_FP32, 40);
    moe_experts_t *ex = moe_experts_new(&p);
    moe_world_t *w = hook_world(&p, ex, 0, MOE_HOOK_POST_X2);
    CU_ASSERT_EQUAL_FATAL(moe_world_run(w), 0);
    /* out = 2 x reference (doubling commutes with rounding), dgates use
     * the doubled y, dx ignores the hook: moe_ref with post = 1 */
    moe_world_check_reference(w, 0, 1, 1);
    assert_hook_calls(w, 1);
    for (int r = 0; r < MOE_NR; r++) {
        size_t n = w->in[r].n * 2 * p.H;
        float *ys = malloc(n * sizeof(float) + 1);
        void *y = malloc(w->in[r].n * moe_tb(&p) + 1);
        moe_ref_forward(&p, ex, &w->in[r], 0, 1, y, ys);
        /* the rows the hook saw (and doubled) are the reference's y_ts */
        CU_ASSERT_EQUAL(moe_first_diff(w->res[r].hook.yslot, ys, n * sizeof(float)), -1);
        free(ys);
        free(y);
    }
    moe_world_free(w);
    moe_experts_free(ex);
}

static void test_moe_pre_hash_hook_changes_expert_input(void)
{
    moe_prob_t p = moe_prob_default(MOE_NR, 8, 2, 64, LSHMOE_DTYPE_FP32, 40);
    moe_experts_t *ex = moe_experts_new(&p);
    moe_world_t *w = hook_world(&p, ex, 0, MOE_HOOK_PRE_SCALE);
    CU_ASSERT_EQUAL_FATAL(moe_world_run(w), 0);
    /* as if x were scaled for odd experts; the backward ignores the hook,
     * and the linear experts' J^T does not depend on x */
    moe_world_check_reference(w, 1, 0, 1);
    assert_hook_calls(w, 0);
    moe_world_free(w);
    moe_experts_free(ex);

    /* compressed: hashing, centroids and the residual all see the hooked
     * rows, so identity + RESIDUAL gives the scaled token exactly */
    p = moe_prob_identity_clustered(MOE_NR);
    ex = moe_experts_new(&p);
    w = hook_world(&p, ex, 1, MOE_HOOK_PRE_SCALE);
    CU_ASSERT_EQUAL_FATAL(moe_world_run(w), 0);
    moe_world_check_identity(w, 1);
    assert_hook_calls(w, 0);
    moe_world_check_clustered(w);
    moe_world_free(w);
    moe_experts_free(ex);
}

/* Compressed: the POST_RECONSTRUCT rows are one per routed slot, and with
 * the identity expert and RESIDUAL they are the tokens themselves. */
static void test_moe_post_reconstruct_rows_compressed(void)
{
    moe_prob_t p = moe_prob_identity_clustered(MOE_NR);
    moe_experts_t *ex = moe_experts_new(&p);
    moe_world_t *w = hook_world(&p, ex, 1, MOE_HOOK_CAPTURE);
    CU_ASSERT_EQUAL_FATAL(moe_world_run(w), 0);
    moe_world_check_identity(w, 0);
    assert_hook_calls(w, 1);
    for (int r = 0; r < MOE_NR; r++) {
        size_t K = 2, H = p.H;
        const float *x = w->in[r].x, *ys = w->res[r].hook.yslot;
        long bad = 0;
        for (size_t i = 0; i < w->in[r].n * K; i++)
            if (w->in[r].idx[i] >= 0)
                bad += memcmp(ys + i * H, x + i / K * H, H * sizeof(float)) != 0;
        CU_ASSERT_EQUAL(bad, 0);
    }
    moe_world_free(w);
    moe_experts_free(ex);
}

/*
 * With compression the hooks' backward contract still holds exactly:
 * POST_RECONSTRUCT x2 doubles out and dgates (fp32 scaling by 2 commutes
 * with every rounding) and leaves dx as without the hook; PRE_SCALE (x2
 * for odd experts) keeps the groups (the hash is invariant to positive
 * scaling) and, for linear experts, dx.
 */
static long count_not_doubled(const float *a, const float *b, size_t n)
{
    long bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += a[i] != 2.0f * b[i];
    return bad;
}

static void test_moe_hooks_backward_compressed(void)
{
    moe_prob_t p = moe_prob_default(MOE_NR, 8, 2, 64, LSHMOE_DTYPE_FP32, 128);
    p.data = MOE_X_CLUSTERED;
    moe_experts_t *ex = moe_experts_new(&p);
    moe_world_t *base = hook_world(&p, ex, 1, MOE_HOOK_NONE);
    moe_world_t *post = hook_world(&p, ex, 1, MOE_HOOK_POST_X2);
    moe_world_t *pre = hook_world(&p, ex, 1, MOE_HOOK_PRE_SCALE);
    CU_ASSERT_EQUAL_FATAL(moe_world_run(base), 0);
    CU_ASSERT_EQUAL_FATAL(moe_world_run(post), 0);
    CU_ASSERT_EQUAL_FATAL(moe_world_run(pre), 0);
    moe_world_check_clustered(base);
    for (int r = 0; r < MOE_NR; r++) {
        const moe_rank_res_t *b = &base->res[r], *q = &post->res[r], *s = &pre->res[r];
        size_t n = base->in[r].n;
        CU_ASSERT(b->st == LSHMOE_OK && q->st == LSHMOE_OK && s->st == LSHMOE_OK);
        if (b->st != LSHMOE_OK || q->st != LSHMOE_OK || s->st != LSHMOE_OK)
            continue;
        CU_ASSERT_EQUAL(count_not_doubled(q->y, b->y, n * p.H), 0);
        CU_ASSERT_EQUAL(count_not_doubled(q->dgates, b->dgates, n * 2), 0);
        CU_ASSERT_EQUAL(moe_first_diff(q->dx, b->dx, n * moe_tb(&p)), -1);
        CU_ASSERT_EQUAL(s->cluster_sig, b->cluster_sig);
        CU_ASSERT_EQUAL(moe_first_diff(s->dx, b->dx, n * moe_tb(&p)), -1);
        CU_ASSERT(moe_first_diff(s->y, b->y, n * moe_tb(&p)) >= 0); /* the hook acted */
        CU_ASSERT_EQUAL(s->hook.bad + q->hook.bad, 0);
    }
    moe_world_free(base);
    moe_world_free(post);
    moe_world_free(pre);
    moe_experts_free(ex);
}

/* ------------------------------------------------------------------------ */
/* SCALED compensation                                                       */
/* ------------------------------------------------------------------------ */

static moe_world_t *scaled_world(const moe_prob_t *p, const moe_experts_t *ex, int32_t comp,
                                 int warmup)
{
    moe_world_t *w = moe_world_new(p, ex, 1);
    for (int r = 0; r < MOE_NR; r++) {
        w->opts[r].compensation = comp;
        w->opts[r].warmup = warmup;
    }
    CU_ASSERT_EQUAL(moe_world_run(w), 0);
    return w;
}

/* Before any fit, rho_e is 1: SCALED's first pass is RESIDUAL's, forward
 * and backward, byte for byte. */
static void test_moe_scaled_first_pass_is_residual(void)
{
    moe_prob_t p = moe_prob_default(MOE_NR, 8, 2, 64, LSHMOE_DTYPE_FP32, 128);
    p.data = MOE_X_CLUSTERED;
    moe_experts_t *ex = moe_experts_new(&p);
    moe_world_t *sc = scaled_world(&p, ex, LSHMOE_COMP_SCALED, 0);
    moe_world_t *res = scaled_world(&p, ex, LSHMOE_COMP_RESIDUAL, 0);
    moe_world_check_clustered(sc);
    for (int r = 0; r < MOE_NR; r++) {
        const moe_rank_res_t *a = &sc->res[r], *b = &res->res[r];
        size_t n = sc->in[r].n;
        CU_ASSERT(a->st == LSHMOE_OK && b->st == LSHMOE_OK);
        if (a->st != LSHMOE_OK || b->st != LSHMOE_OK)
            continue;
        CU_ASSERT_EQUAL(moe_first_diff(a->y, b->y, n * moe_tb(&p)), -1);
        CU_ASSERT_EQUAL(moe_first_diff(a->dgates, b->dgates, n * 2 * sizeof(float)), -1);
        CU_ASSERT_EQUAL(moe_first_diff(a->dx, b->dx, n * moe_tb(&p)), -1);
    }
    moe_world_free(sc);
    moe_world_free(res);
    moe_experts_free(ex);
}

/*
 * Experts E_e(x) = a_e x with a_e a power of two: every (centroid, output)
 * pair lies on the line of slope a_e, and a least-squares slope (with or
 * without intercept, one pass or a running mean of passes) scales exactly
 * with powers of two, so the fit is a_e exactly. From the second pass on,
 * y = a_e c + a_e (x - c) = a_e x exactly in fp64: the forward equals the
 * dense reference byte for byte. The first pass (rho = 1) must not: it
 * carries (1 - a_e)(x - c).
 */
static void test_moe_scaled_learns_expert_slope(void)
{
    moe_prob_t p = moe_prob_default(MOE_NR, 8, 2, 64, LSHMOE_DTYPE_FP32, 128);
    p.data = MOE_X_CLUSTERED;
    p.scalar_experts = 1;
    moe_experts_t *ex = moe_experts_new(&p);
    char why[512];
    for (int warmup = 0; warmup <= 2; warmup++) {
        moe_world_t *w = scaled_world(&p, ex, LSHMOE_COMP_SCALED, warmup);
        moe_world_check_clustered(w);
        for (int r = 0; r < MOE_NR; r++) {
            if (warmup > 0) { /* the fitted slope: exact */
                moe_check_reference(&p, ex, &w->in[r], &w->res[r], r, 0, 0, 0);
                continue;
            }
            CU_ASSERT_EQUAL(w->res[r].st, LSHMOE_OK);
            if (w->res[r].st == LSHMOE_OK) /* rho = 1 leaves the centroid error */
                CU_ASSERT(moe_compare_reference(&p, ex, &w->in[r], &w->res[r], 0, 0, 0, why,
                                                sizeof why) > 0);
        }
        moe_world_free(w);
    }
    moe_experts_free(ex);
}

static const lt_test_t tests[] = {
    {"test_moe_post_reconstruct_hook_doubles", test_moe_post_reconstruct_hook_doubles},
    {"test_moe_pre_hash_hook_changes_expert_input", test_moe_pre_hash_hook_changes_expert_input},
    {"test_moe_post_reconstruct_rows_compressed", test_moe_post_reconstruct_rows_compressed},
    {"test_moe_hooks_backward_compressed", test_moe_hooks_backward_compressed},
    {"test_moe_scaled_first_pass_is_residual", test_moe_scaled_first_pass_is_residual},
    {"test_moe_scaled_learns_expert_slope", test_moe_scaled_learns_expert_slope},
};

int main(void)
{
    /* No timing-driven plain/encoded choice: see test_moe.c. */
    setenv("LSHMOE_ADAPT", "0", 1);
    return lt_run_suite("moe_hooks", tests, sizeof tests / sizeof tests[0]);
}
