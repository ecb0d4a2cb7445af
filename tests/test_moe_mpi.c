/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * MoE mode over the mpi transport (meson runs it with mpiexec -n 4): a
 * subset of test_moe.c with the same problems, passes and checks
 * (moe_ref.c, moe_pass.c, moe_check.c): compress = 0 equals the dense
 * reference byte for byte, identity + RESIDUAL is exact when compressed,
 * uneven routing, and handles of different dispatches.
 *
 * Every rank generates its own inputs (pure functions of the seeds) and
 * checks its own results. As in test_tl_mpi.c, no _FATAL assertion comes
 * before a test's last collective, only rank 0 prints CUnit's report, and
 * every rank exits with the failure count summed over all ranks.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <mpi.h>

#include "lshmoe.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe_moe.h"
#include "lshmoe_mpi.h"
#include "moe_check.h"
#include "testutil.h"

static int me, nr;
static MPI_Comm world; /* file scope: every descriptor's `native` stays valid */

/* A context on MPI_COMM_WORLD with this codec and error budget (UNSET:
 * the defaults), or NULL (the failure is asserted). */
static lshmoe_ctx_t *open_ctx_codec(int compress, int32_t codec, double max_error)
{
    lshmoe_comm_desc_t d;
    lshmoe_config_t cfg = moe_ctx_config(compress);
    cfg.codec = codec;
    cfg.max_error = max_error;
    lshmoe_ctx_t *ctx = NULL;
    CU_ASSERT_EQUAL(lshmoe_comm_desc_from_mpi(&world, &d), LSHMOE_OK);
    lshmoe_status_t st = lshmoe_ctx_create(&d, &cfg, &ctx);
    CU_ASSERT_EQUAL(st, LSHMOE_OK);
    if (st != LSHMOE_OK)
        fprintf(stderr, "rank %d: ctx: %s\n", me, lshmoe_last_error(NULL));
    return ctx;
}

static lshmoe_ctx_t *open_ctx(int compress)
{
    return open_ctx_codec(compress, LSHMOE_UNSET_INT, LSHMOE_UNSET_DOUBLE);
}

/* Sum over ranks (a collective: every rank calls it unconditionally). */
static uint64_t sum_all(uint64_t v)
{
    uint64_t s = 0;
    MPI_Allreduce(&v, &s, 1, MPI_UINT64_T, MPI_SUM, world);
    return s;
}

/*
 * One pass of p on this rank and its checks. compress 0: forward and
 * backward equal the dense reference; compress 1 (identity experts with
 * dyadic gates): the forward equals it too, and groups formed.
 */
static void pass(const moe_prob_t *p, int compress, int callbacks)
{
    moe_experts_t *ex = moe_experts_new(p);
    moe_inputs_t in;
    moe_rank_res_t res;
    moe_pass_opts_t o = moe_opts_default();
    size_t slots_e[MOE_MAX_E];
    o.callbacks = callbacks;
    moe_inputs_gen(p, me, &in);
    memset(&res, 0, sizeof res);
    res.st = LSHMOE_ERR_INTERNAL;
    lshmoe_ctx_t *ctx = open_ctx(compress);
    if (ctx != NULL) /* ctx creation fails on every rank alike */
        moe_run_pass(ctx, p, ex, &in, &o, &res);
    if (res.st != LSHMOE_OK)
        fprintf(stderr, "rank %d: %s: %s: %s\n", me, res.step, lshmoe_status_name(res.st),
                res.msg);
    moe_check_reference(p, ex, &in, &res, me, 0, 0, !compress);
    moe_expert_slots_all(p, slots_e);
    moe_check_counts(p, &in, &res, me, slots_e, !compress);
    uint64_t sent = sum_all(res.stats.rows_sent), rows = sum_all(res.stats.rows_received);
    uint64_t slots = sum_all(res.stats.slots_received);
    CU_ASSERT_EQUAL(sent, rows);
    if (compress)
        CU_ASSERT(rows < slots); /* groups of several tokens formed */
    lshmoe_ctx_destroy(ctx);
    moe_res_free(&res);
    moe_inputs_free(&in);
    moe_experts_free(ex);
}

static void test_moe_mpi_compress_off_matches_reference(void)
{
    moe_prob_t p32 = moe_prob_default(nr, 16, 2, 64, LSHMOE_DTYPE_FP32, 40);
    moe_prob_t p16 = moe_prob_default(nr, 16, 2, 48, LSHMOE_DTYPE_BF16, 40);
    for (int callbacks = 1; callbacks >= 0; callbacks--) {
        pass(&p32, 0, callbacks);
        pass(&p16, 0, callbacks);
    }
}

static void test_moe_mpi_identity_residual_exact_with_clusters(void)
{
    moe_prob_t p = moe_prob_identity_clustered(nr);
    pass(&p, 1, 1);
}

/* The uneven cases of test_moe.c, in both modes. */
static void test_moe_mpi_uneven_routing(void)
{
    for (int identity = 0; identity <= 1; identity++) {
        for (int k = 0; k < 4; k++) {
            moe_prob_t p = identity ? moe_prob_identity_clustered(nr)
                                    : moe_prob_default(nr, 8, 2, 64, LSHMOE_DTYPE_FP32, 48);
            if (k == 0) {
                p.route = MOE_ROUTE_AVOID; /* expert 3 gets no token */
                p.special = 3;
            } else if (k == 1) {
                p.ntok[2] = 0;             /* rank 2 has no token */
                p.drop_all_rank = 1;       /* rank 1 drops every slot */
            } else if (k == 2) {
                p.route = MOE_ROUTE_ONE;   /* every token to expert 5 */
                p.special = 5;
            } else {
                p.route = MOE_ROUTE_ONE;   /* expert 6 only, rank 0 empty */
                p.special = 6;
                p.ntok[0] = 0;
                p.drop_all_rank = 3;
            }
            pass(&p, identity, 1);
        }
    }
}

/* One pass with backward under `codec` (linear experts, RESIDUAL). */
static void codec_pass(const moe_prob_t *p, const moe_experts_t *ex, const moe_inputs_t *in,
                       int32_t codec, double max_error, moe_rank_res_t *res)
{
    moe_pass_opts_t o = moe_opts_default();
    o.backward = 1;
    memset(res, 0, sizeof *res);
    res->st = LSHMOE_ERR_INTERNAL;
    lshmoe_ctx_t *ctx = open_ctx_codec(1, codec, max_error);
    if (ctx != NULL)
        moe_run_pass(ctx, p, ex, in, &o, res);
    if (res->st != LSHMOE_OK)
        fprintf(stderr, "rank %d: codec %d: %s: %s: %s\n", me, (int)codec, res->step,
                lshmoe_status_name(res->st), res->msg);
    lshmoe_ctx_destroy(ctx);
}

/* Row formats over MPI (test_moe_codec.c has the full set on the self
 * transport): int4 and the budget against the pass in the dtype (codec
 * native: the dense reference). Fewer bytes, outputs close, errors within
 * the budget, and dx identical (straight-through, linear experts). */
static void test_moe_mpi_row_formats(void)
{
    moe_prob_t p = moe_prob_default(nr, 8, 2, 64, LSHMOE_DTYPE_BF16, 48);
    moe_experts_t *ex = moe_experts_new(&p);
    moe_inputs_t in;
    moe_inputs_gen(&p, me, &in);
    moe_rank_res_t nat, q;
    codec_pass(&p, ex, &in, LSHMOE_CODEC_NATIVE, LSHMOE_UNSET_DOUBLE, &nat);
    CU_ASSERT_EQUAL(nat.st, LSHMOE_OK);
    moe_check_reference(&p, ex, &in, &nat, me, 0, 0, 1);
    static const int32_t codecs[] = {LSHMOE_CODEC_INT4, LSHMOE_CODEC_BUDGET};
    for (int c = 0; c < 2; c++) {
        double budget = codecs[c] == LSHMOE_CODEC_BUDGET ? 0.05 : 1000.0;
        codec_pass(&p, ex, &in, codecs[c], budget, &q);
        CU_ASSERT_EQUAL(q.st, LSHMOE_OK);
        if (q.st == LSHMOE_OK && nat.st == LSHMOE_OK) {
            CU_ASSERT(q.stats.bytes_remote_dispatch < nat.stats.bytes_remote_dispatch);
            CU_ASSERT(q.stats.bytes_remote_combine < nat.stats.bytes_remote_combine);
            CU_ASSERT(q.stats.centroid_rel_error <= budget);
            CU_ASSERT(q.stats.combine_rel_error <= budget);
            CU_ASSERT(memcmp(q.dx, nat.dx, in.n * moe_tb(&p)) == 0);
            double num = 0.0, den = 0.0;
            float a[64], b[64];
            for (size_t t = 0; t < in.n; t++) {
                lshmoe_row_to_f32((const char *)q.y + t * moe_tb(&p), p.dtype, p.H, a);
                lshmoe_row_to_f32((const char *)nat.y + t * moe_tb(&p), p.dtype, p.H,
                                         b);
                for (size_t h = 0; h < p.H; h++) {
                    num += ((double)a[h] - b[h]) * ((double)a[h] - b[h]);
                    den += (double)b[h] * b[h];
                }
            }
            /* int4's error (~0.1 per exchange) and the budget's, through
             * W = I + G / sqrt(H), twice, with margin */
            CU_ASSERT(den > 0.0 && sqrt(num / den) < (c == 0 ? 0.5 : 0.25));
        }
        moe_res_free(&q);
    }
    moe_res_free(&nat);
    moe_inputs_free(&in);
    moe_experts_free(ex);
}

static void test_moe_mpi_mismatched_handles(void)
{
    moe_prob_t p = moe_prob_default(nr, 8, 2, 32, LSHMOE_DTYPE_FP32, 24);
    moe_experts_t *ex = moe_experts_new(&p);
    moe_inputs_t in;
    moe_mismatch_res_t m = {.st_combine = LSHMOE_ERR_INTERNAL, .st_after = LSHMOE_ERR_INTERNAL};
    moe_inputs_gen(&p, me, &in);
    void *y = malloc(in.n * moe_tb(&p) + 1), *ref = malloc(in.n * moe_tb(&p) + 1);
    lshmoe_ctx_t *ctx = open_ctx(0);
    if (ctx != NULL)
        moe_flow_mismatched_handles(ctx, &p, ex, &in, 2, y, &m);
    if (m.st_combine != LSHMOE_ERR_MISMATCH)
        fprintf(stderr, "rank %d: combine of another dispatch: %s: %s\n", me,
                lshmoe_status_name(m.st_combine), m.msg);
    CU_ASSERT_EQUAL(m.st_combine, LSHMOE_ERR_MISMATCH);
    CU_ASSERT(m.msg[0] != '\0');
    CU_ASSERT_EQUAL(m.st_after, LSHMOE_OK);
    moe_ref_forward(&p, ex, &in, 0, 0, ref, NULL);
    if (m.st_after == LSHMOE_OK)
        CU_ASSERT_EQUAL(moe_first_diff(y, ref, in.n * moe_tb(&p)), -1);
    lshmoe_ctx_destroy(ctx);
    free(y);
    free(ref);
    moe_inputs_free(&in);
    moe_experts_free(ex);
}

/* ------------------------------------------------------------------------ */
/* main: CUnit on every rank, one report, one exit status                   */
/* ------------------------------------------------------------------------ */

static const lt_test_t tests[] = {
    {"test_moe_mpi_compress_off_matches_reference", test_moe_mpi_compress_off_matches_reference},
    {"test_moe_mpi_identity_residual_exact_with_clusters",
     test_moe_mpi_identity_residual_exact_with_clusters},
    {"test_moe_mpi_uneven_routing", test_moe_mpi_uneven_routing},
    {"test_moe_mpi_mismatched_handles", test_moe_mpi_mismatched_handles},
    {"test_moe_mpi_row_formats", test_moe_mpi_row_formats},
};

/* Runs the suite on this rank; returns its failure count (1 on a CUnit
 * error). Ranks other than 0 stay silent except for their failures. */
static int run_suite(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("moe_mpi", NULL, NULL);
    for (size_t i = 0; s != NULL && i < sizeof(tests) / sizeof(tests[0]); i++)
        if (CU_add_test(s, tests[i].name, tests[i].fn) == NULL)
            s = NULL;
    if (s == NULL) {
        fprintf(stderr, "rank %d: CUnit: %s\n", me, CU_get_error_msg());
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(me == 0 ? CU_BRM_VERBOSE : CU_BRM_SILENT);
    CU_basic_run_tests();
    int fails = (int)CU_get_number_of_failures();
    if (CU_get_number_of_tests_run() != sizeof(tests) / sizeof(tests[0]))
        fails++;
    if (me != 0)
        for (CU_pFailureRecord r = CU_get_failure_list(); r != NULL; r = r->pNext)
            fprintf(stderr, "rank %d: %s: %s:%u: %s\n", me,
                    r->pTest ? r->pTest->pName : "?", r->strFileName ? r->strFileName : "?",
                    r->uiLineNumber, r->strCondition ? r->strCondition : "?");
    CU_cleanup_registry();
    return fails;
}

int main(int argc, char **argv)
{
    /* No timing-driven plain/encoded choice: see test_moe.c. */
    setenv("LSHMOE_ADAPT", "0", 1);
    if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
        fprintf(stderr, "MPI_Init failed: skipping the mpi suite\n");
        return LT_EXIT_SKIP;
    }
    world = MPI_COMM_WORLD;
    MPI_Comm_rank(world, &me);
    MPI_Comm_size(world, &nr);
    if (nr != 4) {
        /* The problems place 8 and 16 experts and name ranks 0..3. */
        if (me == 0)
            fprintf(stderr, "moe_mpi needs 4 ranks (mpiexec -n 4), got %d: skipped\n", nr);
        MPI_Finalize();
        return LT_EXIT_SKIP;
    }
    int mine = run_suite(), all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_SUM, world);
    if (me == 0)
        printf("moe_mpi: %d failure(s) over %d ranks\n", all, nr);
    MPI_Finalize();
    return all == 0 ? 0 : 1;
}
