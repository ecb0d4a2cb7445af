/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * MoE mode on the self transport with 4 ranks: with compress = 0 every
 * result is byte-identical to a dense single-rank reference (moe_ref.c);
 * with compression, the identity expert with RESIDUAL compensation gives
 * back the input exactly; variants of a pass that must agree bit for bit;
 * uneven routing and placement maps.
 * Rank threads record (moe_self.c); the main thread asserts.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lshmoe_moe.h"
#include "moe_check.h"
#include "moe_self.h"
#include "testutil.h"

/* ------------------------------------------------------------------------ */
/* 1. compress = 0 equals the dense reference                                */
/* ------------------------------------------------------------------------ */

static void run_exact(lshmoe_dtype_t dtype, size_t H, int K, int callbacks)
{
    moe_prob_t p = moe_prob_default(MOE_NR, 16, K, H, dtype, 40);
    moe_experts_t *ex = moe_experts_new(&p);
    moe_world_t *w = moe_world_new(&p, ex, 0);
    for (int r = 0; r < MOE_NR; r++)
        w->opts[r].callbacks = callbacks;
    CU_ASSERT_EQUAL_FATAL(moe_world_run(w), 0);
    moe_world_check_reference(w, 0, 0, 1);
    moe_world_check_plain(w);
    for (int r = 0; r < MOE_NR && callbacks; r++) {
        CU_ASSERT(w->res[r].cb.fwd_calls > 0);
        CU_ASSERT(w->res[r].cb.bwd_calls > 0);
    }
    moe_world_free(w);
    moe_experts_free(ex);
}

static void test_moe_compress_off_matches_reference(void)
{
    run_exact(LSHMOE_DTYPE_FP32, 64, 2, 1);
    run_exact(LSHMOE_DTYPE_BF16, 48, 2, 1);
    run_exact(LSHMOE_DTYPE_FP16, 40, 2, 1);
    /* with 4 terms the fp64 sum depends on the slot order */
    run_exact(LSHMOE_DTYPE_FP32, 64, 4, 1);
    run_exact(LSHMOE_DTYPE_BF16, 32, 4, 1);
    run_exact(LSHMOE_DTYPE_FP32, 64, 1, 1);
}

static void test_moe_compress_off_caller_filled_batches(void)
{
    run_exact(LSHMOE_DTYPE_FP32, 64, 2, 0);
    run_exact(LSHMOE_DTYPE_BF16, 48, 2, 0);
    run_exact(LSHMOE_DTYPE_FP32, 64, 4, 0);
}

/* ------------------------------------------------------------------------ */
/* 2. identity expert + RESIDUAL, compressed: the output is the input        */
/* ------------------------------------------------------------------------ */

/* Backward of the identity + RESIDUAL forward out_t = sum_s g x_t: y_ts is
 * x_t, so dgate_ts = fl32(<dy_t, x_t>) exactly; dx_t = (sum_s g) dy_t = dy_t
 * up to the fp32 roundings of the group gradients (at most a few units of
 * 2^-24 |g dy| per slot). Returns the number of wrong values. */
static long identity_backward_errors(const moe_prob_t *p, const moe_inputs_t *in,
                                     const moe_rank_res_t *x)
{
    size_t K = (size_t)p->K, H = p->H;
    const float *dy = in->dy, *xt = in->x, *dx = x->dx;
    double dmax = 0.0;
    long bad = 0;
    for (size_t i = 0; i < in->n * H; i++)
        dmax = fmax(dmax, fabs(dy[i]));
    for (size_t t = 0; t < in->n; t++) {
        int routed = 0;
        for (size_t s = 0; s < K; s++) {
            int on = in->idx[t * K + s] >= 0;
            double dot = 0.0;
            for (size_t h = 0; h < H && on; h++)
                dot += (double)dy[t * H + h] * (double)xt[t * H + h];
            bad += x->dgates[t * K + s] != (float)dot;
            routed |= on;
        }
        for (size_t h = 0; h < H; h++) {
            double want = routed ? dy[t * H + h] : 0.0;
            bad += !(fabs(dx[t * H + h] - want) <= 8.0 * 0x1p-24 * (double)K * dmax);
        }
    }
    return bad;
}

static void run_identity(lshmoe_dtype_t dtype, size_t H)
{
    moe_prob_t p = moe_prob_identity_clustered(MOE_NR);
    p.dtype = dtype;
    p.H = H;
    moe_experts_t *ex = moe_experts_new(&p);
    moe_world_t *w = moe_world_new(&p, ex, 1);
    CU_ASSERT_EQUAL_FATAL(moe_world_run(w), 0);
    moe_world_check_identity(w, 0);
    moe_world_check_clustered(w);
    for (int r = 0; r < MOE_NR && dtype == LSHMOE_DTYPE_FP32; r++)
        if (w->res[r].st == LSHMOE_OK)
            CU_ASSERT_EQUAL(identity_backward_errors(&p, &w->in[r], &w->res[r]), 0);
    moe_world_free(w);
    moe_experts_free(ex);
}

static void test_moe_identity_residual_exact_with_clusters(void)
{
    run_identity(LSHMOE_DTYPE_FP32, 64);
    run_identity(LSHMOE_DTYPE_FP32, 37); /* not a power of two */
    /* centroids in the token dtype: x - c is still exact in fp64 */
    run_identity(LSHMOE_DTYPE_BF16, 64);
    run_identity(LSHMOE_DTYPE_FP16, 64);
}

/* ------------------------------------------------------------------------ */
/* Variants of one compressed pass that must not change a bit               */
/* ------------------------------------------------------------------------ */

static void assert_same_pass(const moe_world_t *a, const moe_world_t *b, int dgates)
{
    for (int r = 0; r < MOE_NR; r++) {
        const moe_rank_res_t *x = &a->res[r], *y = &b->res[r];
        size_t n = a->in[r].n, tb = moe_tb(a->p);
        CU_ASSERT(x->st == LSHMOE_OK && y->st == LSHMOE_OK);
        CU_ASSERT_EQUAL(x->cb.bad + y->cb.bad + x->batch_bad + y->batch_bad, 0);
        if (x->st != LSHMOE_OK || y->st != LSHMOE_OK)
            continue;
        CU_ASSERT_EQUAL(moe_first_diff(x->y, y->y, n * tb), -1);
        CU_ASSERT_EQUAL(moe_first_diff(x->dx, y->dx, n * tb), -1);
        if (dgates)
            CU_ASSERT_EQUAL(moe_first_diff(x->dgates, y->dgates,
                                           n * (size_t)a->p->K * sizeof(float)), -1);
    }
}

/*
 * Linear experts, clustered tokens, compression on. The same pass (hence
 * the same bytes) whether: the test fills batch->out / grad_in itself; the
 * functions are registered per expert over a catch-all that fails (per
 * expert wins, in either order); the handle was dispatched with other
 * tokens first; dgates is NULL.
 */
static void test_moe_compressed_pass_variants_agree(void)
{
    moe_prob_t p = moe_prob_default(MOE_NR, 8, 2, 64, LSHMOE_DTYPE_FP32, 96);
    p.data = MOE_X_CLUSTERED;
    moe_experts_t *ex = moe_experts_new(&p);
    moe_world_t *base = moe_world_new(&p, ex, 1);
    CU_ASSERT_EQUAL_FATAL(moe_world_run(base), 0);
    moe_world_check_clustered(base);
    for (int v = 0; v < 5; v++) {
        moe_world_t *w = moe_world_new(&p, ex, 1);
        for (int r = 0; r < MOE_NR; r++) {
            w->opts[r].callbacks = v != 0;
            w->opts[r].regs = v == 1 ? 1 : v == 2 ? 2 : 0;
            w->opts[r].redispatch = v == 3;
            w->opts[r].dgates_null = v == 4;
        }
        CU_ASSERT_EQUAL_FATAL(moe_world_run(w), 0);
        assert_same_pass(w, base, v != 4);
        moe_world_free(w);
    }
    moe_world_free(base);
    moe_experts_free(ex);
}

/* compensation LSHMOE_UNSET_INT takes the context's. */
static void test_moe_unset_compensation_uses_context(void)
{
    moe_prob_t p = moe_prob_default(MOE_NR, 8, 2, 64, LSHMOE_DTYPE_FP32, 96);
    p.data = MOE_X_CLUSTERED;
    moe_experts_t *ex = moe_experts_new(&p);
    moe_world_t *w[3];
    const int32_t layer[3] = {LSHMOE_UNSET_INT, LSHMOE_COMP_NONE, LSHMOE_COMP_RESIDUAL};
    for (int k = 0; k < 3; k++) {
        w[k] = moe_world_new(&p, ex, 1);
        w[k]->ctx_comp = LSHMOE_COMP_NONE;
        for (int r = 0; r < MOE_NR; r++)
            w[k]->opts[r].compensation = layer[k];
        CU_ASSERT_EQUAL_FATAL(moe_world_run(w[k]), 0);
    }
    assert_same_pass(w[0], w[1], 1);
    for (int r = 0; r < MOE_NR; r++) /* and NONE is not RESIDUAL here */
        CU_ASSERT(moe_first_diff(w[0]->res[r].y, w[2]->res[r].y, w[0]->in[r].n * moe_tb(&p)) >= 0);
    for (int k = 0; k < 3; k++)
        moe_world_free(w[k]);
    moe_experts_free(ex);
}

/* ------------------------------------------------------------------------ */
/* 5. uneven routing                                                         */
/* ------------------------------------------------------------------------ */

typedef struct uneven {
    const char *name;
    moe_route_t route;
    int         special, empty_rank, drop_rank;
} uneven_t;

static const uneven_t uneven_cases[] = {
    {"expert 3 gets no token", MOE_ROUTE_AVOID, 3, -1, -1},
    {"rank 2 has no token", MOE_ROUTE_RANDOM, 0, 2, -1},
    {"rank 1 drops every slot", MOE_ROUTE_RANDOM, 0, -1, 1},
    {"every token to expert 5", MOE_ROUTE_ONE, 5, -1, -1},
    {"expert 6 only, rank 0 empty, rank 3 drops all", MOE_ROUTE_ONE, 6, 0, 3},
};

static moe_prob_t uneven_prob(const uneven_t *u, int identity)
{
    moe_prob_t p = identity ? moe_prob_identity_clustered(MOE_NR)
                            : moe_prob_default(MOE_NR, 8, 2, 64, LSHMOE_DTYPE_FP32, 48);
    p.route = u->route;
    p.special = u->special;
    p.drop_all_rank = u->drop_rank;
    if (u->empty_rank >= 0)
        p.ntok[u->empty_rank] = 0;
    return p;
}

static void test_moe_uneven_routing(void)
{
    for (size_t i = 0; i < sizeof uneven_cases / sizeof uneven_cases[0]; i++) {
        for (int identity = 0; identity <= 1; identity++) {
            /* compress 0 vs the reference; compressed identity: exact */
            moe_prob_t p = uneven_prob(&uneven_cases[i], identity);
            moe_experts_t *ex = moe_experts_new(&p);
            moe_world_t *w = moe_world_new(&p, ex, identity);
            fprintf(stderr, "uneven: %s, %s\n", uneven_cases[i].name,
                    identity ? "compressed identity" : "compress 0");
            CU_ASSERT_EQUAL_FATAL(moe_world_run(w), 0);
            if (identity) {
                moe_world_check_identity(w, 0);
                moe_world_check_clustered(w);
            } else {
                moe_world_check_reference(w, 0, 0, 1);
                moe_world_check_plain(w);
            }
            moe_world_free(w);
            moe_experts_free(ex);
        }
    }
}

/* Nothing in the header forbids a token routing two slots to one expert:
 * with compress 0 they are two groups of one, summed in slot order; with
 * compression both copies join a group, and identity + RESIDUAL stays
 * exact. */
static void test_moe_two_slots_same_expert(void)
{
    for (int compressed = 0; compressed <= 1; compressed++) {
        moe_prob_t p = compressed ? moe_prob_identity_clustered(MOE_NR)
                                  : moe_prob_default(MOE_NR, 8, 2, 64, LSHMOE_DTYPE_FP32, 40);
        p.route = MOE_ROUTE_DUP;
        moe_experts_t *ex = moe_experts_new(&p);
        moe_world_t *w = moe_world_new(&p, ex, compressed);
        CU_ASSERT_EQUAL_FATAL(moe_world_run(w), 0);
        if (compressed) {
            moe_world_check_identity(w, 0);
            moe_world_check_clustered(w);
        } else {
            moe_world_check_reference(w, 0, 0, 1);
            moe_world_check_plain(w);
        }
        moe_world_free(w);
        moe_experts_free(ex);
    }
}

/* Extreme shapes, compress 0: every token to every expert (E = K = 4) with
 * 3-element bf16 tokens; 256 experts, 8 slots, 1-element tokens. */
static void test_moe_extreme_shapes(void)
{
    moe_prob_t a = moe_prob_default(MOE_NR, 4, 4, 3, LSHMOE_DTYPE_BF16, 50);
    moe_prob_t b = moe_prob_default(MOE_NR, 256, 8, 1, LSHMOE_DTYPE_FP32, 50);
    moe_prob_t *ps[2] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        moe_experts_t *ex = moe_experts_new(ps[i]);
        moe_world_t *w = moe_world_new(ps[i], ex, 0);
        CU_ASSERT_EQUAL_FATAL(moe_world_run(w), 0);
        moe_world_check_reference(w, 0, 0, 1);
        moe_world_check_plain(w);
        moe_world_free(w);
        moe_experts_free(ex);
    }
}

/*
 * A token with a NaN or an Inf is never averaged (docs/algorithm.md 1.1:
 * it hashes to its own group): with identity + RESIDUAL every other token
 * still comes back exactly, and the non-finite one as itself.
 */
static long nonfinite_errors(const moe_prob_t *p, const moe_inputs_t *in, const float *y)
{
    long bad = 0;
    size_t K = (size_t)p->K, H = p->H;
    const float *x = in->x;
    for (size_t t = 0; t < in->n; t++) {
        int routed = 0;
        for (size_t s = 0; s < K; s++)
            routed |= in->idx[t * K + s] >= 0;
        for (size_t h = 0; h < H; h++) {
            float want = routed ? x[t * H + h] : 0.0f, got = y[t * H + h];
            bad += !(got == want || (isnan(got) && isnan(want)));
        }
    }
    return bad;
}

static void test_moe_nonfinite_tokens_stay_alone(void)
{
    moe_prob_t p = moe_prob_identity_clustered(MOE_NR);
    moe_experts_t *ex = moe_experts_new(&p);
    moe_world_t *w = moe_world_new(&p, ex, 1);
    for (int r = 0; r < MOE_NR; r++) {
        float *x = w->in[r].x;
        x[5 * p.H + 3] = NAN;
        x[9 * p.H + 7] = r % 2 ? INFINITY : -INFINITY;
    }
    CU_ASSERT_EQUAL_FATAL(moe_world_run(w), 0);
    moe_world_check_clustered(w);
    for (int r = 0; r < MOE_NR; r++) {
        CU_ASSERT_EQUAL(w->res[r].st, LSHMOE_OK);
        if (w->res[r].st == LSHMOE_OK)
            CU_ASSERT_EQUAL(nonfinite_errors(&p, &w->in[r], w->res[r].y), 0);
    }
    moe_world_free(w);
    moe_experts_free(ex);
}

/* ------------------------------------------------------------------------ */
/* 7. placement map                                                          */
/* ------------------------------------------------------------------------ */

static void run_placement(const int32_t *map, int E, int identity)
{
    moe_prob_t p = identity ? moe_prob_identity_clustered(MOE_NR)
                            : moe_prob_default(MOE_NR, E, 2, 64, LSHMOE_DTYPE_FP32, 40);
    p.E = E;
    p.expert_rank = map;
    moe_experts_t *ex = moe_experts_new(&p);
    moe_world_t *w = moe_world_new(&p, ex, identity);
    for (int r = 0; r < MOE_NR; r++)
        w->opts[r].scribble_map = 1;
    CU_ASSERT_EQUAL_FATAL(moe_world_run(w), 0);
    if (identity) {
        moe_world_check_identity(w, 0);
        moe_world_check_clustered(w);
    } else {
        moe_world_check_reference(w, 0, 0, 1);
        moe_world_check_plain(w);
    }
    moe_world_free(w);
    moe_experts_free(ex);
}

static void test_moe_placement_map(void)
{
    /* two experts per rank, interleaved */
    static const int32_t inter[8] = {2, 0, 3, 1, 1, 3, 0, 2};
    /* 9 experts (not a multiple of 4: legal with a map), rank 3 owns none */
    static const int32_t lopsided[9] = {0, 2, 0, 1, 1, 2, 2, 0, 1};
    for (int identity = 0; identity <= 1; identity++) {
        run_placement(inter, 8, identity);
        run_placement(lopsided, 9, identity);
    }
}

static const lt_test_t tests[] = {
    {"test_moe_compress_off_matches_reference", test_moe_compress_off_matches_reference},
    {"test_moe_compress_off_caller_filled_batches", test_moe_compress_off_caller_filled_batches},
    {"test_moe_identity_residual_exact_with_clusters",
     test_moe_identity_residual_exact_with_clusters},
    {"test_moe_compressed_pass_variants_agree", test_moe_compressed_pass_variants_agree},
    {"test_moe_unset_compensation_uses_context", test_moe_unset_compensation_uses_context},
    {"test_moe_uneven_routing", test_moe_uneven_routing},
    {"test_moe_two_slots_same_expert", test_moe_two_slots_same_expert},
    {"test_moe_extreme_shapes", test_moe_extreme_shapes},
    {"test_moe_nonfinite_tokens_stay_alone", test_moe_nonfinite_tokens_stay_alone},
    {"test_moe_placement_map", test_moe_placement_map},
};

int main(void)
{
    /* The adaptive policy picks plain or encoded from wall-clock timings:
     * the compressed-path assertions must not depend on the machine. */
    setenv("LSHMOE_ADAPT", "0", 1);
    return lt_run_suite("moe", tests, sizeof tests / sizeof tests[0]);
}
