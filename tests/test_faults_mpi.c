/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Faults across ranks of an MPI job (meson runs it with mpiexec -n 4): a
 * rank that fails its own arguments in a collective constructor, ranks in
 * different collectives, ranks with different dtypes. In every case every
 * rank must return an error (none may hang, none may return OK with crossed
 * data). alarm() turns a hang into a failed run.
 *
 * As in test_tl_mpi.c, no test uses a _FATAL assertion before its last
 * collective, and every rank exits with the summed failure count.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <mpi.h>

#include "lshmoe.h"
#include "lshmoe_moe.h"
#include "lshmoe_mpi.h"
#include "testutil.h"

static int me, nr;
static MPI_Comm world; /* file scope: every descriptor's `native` stays valid */

static lshmoe_comm_desc_t world_desc(void)
{
    lshmoe_comm_desc_t d;
    CU_ASSERT_EQUAL(lshmoe_comm_desc_from_mpi(&world, &d), LSHMOE_OK);
    return d;
}

static lshmoe_ctx_t *open_ctx(int compress)
{
    lshmoe_comm_desc_t d = world_desc();
    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    lshmoe_ctx_t *ctx = NULL;
    cfg.compress = compress;
    lshmoe_status_t st = lshmoe_ctx_create(&d, &cfg, &ctx);
    CU_ASSERT_EQUAL(st, LSHMOE_OK);
    if (st != LSHMOE_OK)
        fprintf(stderr, "rank %d: ctx_create: %s\n", me, lshmoe_last_error(NULL));
    return ctx;
}

static int has(const char *msg, const char *part)
{
    return msg != NULL && strstr(msg, part) != NULL;
}

/* ------------------------------------------------------------------------ */
/* Collective constructors: a rank with bad arguments still joins            */
/* ------------------------------------------------------------------------ */

static void test_faults_mpi_ctx_create_bad_own_args_fail_peers(void)
{
    for (int odd = 1; odd < nr; odd++) {
        lshmoe_comm_desc_t d = world_desc();
        lshmoe_ctx_t *ctx = NULL;
        lshmoe_status_t st;
        lshmoe_status_t want = LSHMOE_ERR_PEER;
        if (me == odd && odd == 1) {
            st = lshmoe_ctx_create(&d, NULL, NULL); /* ctx_p NULL */
            want = LSHMOE_ERR_INVALID_ARG;
        } else if (me == odd && odd == 2) {
            st = lshmoe_ctx_create_v(LSHMOE_VERSION_CODE + 1, &d, NULL, &ctx);
            want = LSHMOE_ERR_VERSION;
        } else if (me == odd) {
            d.version = LSHMOE_VERSION_CODE + 1; /* a newer descriptor */
            st = lshmoe_ctx_create(&d, NULL, &ctx);
            want = LSHMOE_ERR_VERSION;
        } else {
            st = lshmoe_ctx_create(&d, NULL, &ctx);
        }
        CU_ASSERT_EQUAL(st, want);
        CU_ASSERT_PTR_NULL(ctx);
        if (me != odd) {
            char rank[16];
            snprintf(rank, sizeof rank, "rank %d", odd);
            CU_ASSERT(has(lshmoe_last_error(NULL), rank));
        }
        lshmoe_ctx_destroy(ctx);
    }
}

static void test_faults_mpi_moe_create_null_out_fails_peers(void)
{
    lshmoe_ctx_t *ctx = open_ctx(1);
    lshmoe_moe_config_t mc = LSHMOE_MOE_CONFIG_INITIALIZER;
    mc.num_experts = 2 * nr;
    mc.topk = 2;
    mc.dtype = LSHMOE_DTYPE_FP32;
    mc.hidden = 32;
    lshmoe_moe_t *moe = NULL;
    lshmoe_status_t st = lshmoe_moe_create(ctx, &mc, me == 1 ? NULL : &moe);
    CU_ASSERT_EQUAL(st, me == 1 ? LSHMOE_ERR_INVALID_ARG : LSHMOE_ERR_PEER);
    CU_ASSERT_PTR_NULL(moe);
    CU_ASSERT(has(lshmoe_last_error(ctx), me == 1 ? "moe_p" : "rank 1"));
    lshmoe_moe_destroy(moe);
    lshmoe_ctx_destroy(ctx);
}

/* ------------------------------------------------------------------------ */
/* Different dtypes of one element size                                      */
/* ------------------------------------------------------------------------ */

#define TOK 8     /* tokens per peer */
#define HID 16

/* Every rank sends TOK tokens of HID 4-byte elements to every rank. */
static lshmoe_status_t a2a_call(lshmoe_ctx_t *ctx, lshmoe_dtype_t dtype, size_t hidden)
{
    size_t n = (size_t)nr, tb = hidden * 4;
    size_t *cnt = calloc(n, sizeof *cnt), *dsp = calloc(n, sizeof *dsp);
    float *send = calloc(n * TOK, tb), *recv = calloc(n * TOK, tb);
    for (size_t p = 0; p < n; p++) {
        cnt[p] = TOK;
        dsp[p] = p * TOK;
    }
    for (size_t i = 0; i < n * TOK * hidden; i++)
        send[i] = (float)((i * 37 + (size_t)me) % 101) / 7.0f;
    lshmoe_status_t st = lshmoe_alltoallv(ctx, send, cnt, dsp, recv, cnt, dsp, dtype, hidden,
                                          NULL);
    free(cnt);
    free(dsp);
    free(send);
    free(recv);
    return st;
}

static void test_faults_mpi_dtypes_of_one_size_fail_every_rank(void)
{
    for (int compress = 0; compress <= 1; compress++) {
        lshmoe_ctx_t *ctx = open_ctx(compress);
        lshmoe_status_t st = a2a_call(ctx, me == 2 ? LSHMOE_DTYPE_INT32 : LSHMOE_DTYPE_FP32,
                                      HID);
        CU_ASSERT_EQUAL(st, LSHMOE_ERR_MISMATCH);
        CU_ASSERT(has(lshmoe_last_error(ctx), "rank 2"));
        if (st != LSHMOE_ERR_MISMATCH)
            fprintf(stderr, "rank %d, compress %d: %s: %s\n", me, compress,
                    lshmoe_status_name(st), lshmoe_last_error(ctx));
        /* the context stays usable: a clean call after it */
        CU_ASSERT_EQUAL(a2a_call(ctx, LSHMOE_DTYPE_FP32, HID), LSHMOE_OK);
        lshmoe_ctx_destroy(ctx);
    }
}

/* ------------------------------------------------------------------------ */
/* Collectives confused with each other                                      */
/* ------------------------------------------------------------------------ */

/* Rank 0 calls lshmoe_alltoallv with one crafted 72-byte token per peer
 * (first word 0x80000001: the dispatch op code with the RAW row flag)
 * while the other ranks call lshmoe_moe_dispatch on a layer whose tokens
 * are 72 bytes too. Every rank must fail; none may return crossed data. */
static void test_faults_mpi_alltoallv_against_dispatch_fails_every_rank(void)
{
    lshmoe_ctx_t *ctx = open_ctx(1);
    lshmoe_moe_config_t mc = LSHMOE_MOE_CONFIG_INITIALIZER;
    mc.num_experts = nr;
    mc.topk = 1;
    mc.dtype = LSHMOE_DTYPE_FP32;
    mc.hidden = 18; /* 72 bytes */
    lshmoe_moe_t *moe = NULL;
    CU_ASSERT_EQUAL(lshmoe_moe_create(ctx, &mc, &moe), LSHMOE_OK);
    lshmoe_status_t st;
    if (me == 0) {
        size_t n = (size_t)nr;
        size_t *cnt = calloc(n, sizeof *cnt), *dsp = calloc(n, sizeof *dsp);
        uint32_t *send = calloc(n, 72), *recv = calloc(n, 72);
        for (size_t p = 0; p < n; p++) {
            cnt[p] = 1;
            dsp[p] = p;
            send[p * 18] = 0x80000001u;
            send[p * 18 + 2] = 1; /* where a dispatch expects a sequence number */
        }
        st = lshmoe_alltoallv(ctx, send, cnt, dsp, recv, cnt, dsp, LSHMOE_DTYPE_BYTES, 72,
                              NULL);
        free(cnt);
        free(dsp);
        free(send);
        free(recv);
    } else {
        int32_t idx[2] = {0, me};
        float gate[2] = {1.0f, 1.0f};
        float x[2 * 18];
        for (int i = 0; i < 2 * 18; i++)
            x[i] = (float)(i + me);
        lshmoe_moe_handle_t *h = NULL;
        CU_ASSERT_EQUAL(lshmoe_moe_layout(moe, 2, idx, gate, &h), LSHMOE_OK);
        st = lshmoe_moe_dispatch(moe, h, x, NULL);
        lshmoe_moe_handle_destroy(h);
    }
    const char *msg = lshmoe_last_error(ctx);
    CU_ASSERT_EQUAL(st, LSHMOE_ERR_MISMATCH);
    CU_ASSERT(has(msg, "rank 0 called alltoallv"));
    CU_ASSERT(has(msg, "moe dispatch #1"));
    if (st != LSHMOE_ERR_MISMATCH || !has(msg, "rank 0 called alltoallv"))
        fprintf(stderr, "rank %d: %s: %s\n", me, lshmoe_status_name(st), msg);
    lshmoe_moe_destroy(moe);
    lshmoe_ctx_destroy(ctx);
}

static const lt_test_t tests[] = {
    {"test_faults_mpi_ctx_create_bad_own_args_fail_peers",
     test_faults_mpi_ctx_create_bad_own_args_fail_peers},
    {"test_faults_mpi_moe_create_null_out_fails_peers",
     test_faults_mpi_moe_create_null_out_fails_peers},
    {"test_faults_mpi_dtypes_of_one_size_fail_every_rank",
     test_faults_mpi_dtypes_of_one_size_fail_every_rank},
    {"test_faults_mpi_alltoallv_against_dispatch_fails_every_rank",
     test_faults_mpi_alltoallv_against_dispatch_fails_every_rank},
};

/* Runs the suite on this rank; returns its failure count (1 on a CUnit
 * error). Ranks other than 0 stay silent except for their failures. */
static int run_suite(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("faults_mpi", NULL, NULL);
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
    setenv("LSHMOE_ADAPT", "0", 1); /* no timing-driven plain/encoded choice */
    if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
        fprintf(stderr, "MPI_Init failed: skipping\n");
        return LT_EXIT_SKIP;
    }
    world = MPI_COMM_WORLD;
    MPI_Comm_rank(world, &me);
    MPI_Comm_size(world, &nr);
    if (nr < 4) {
        if (me == 0)
            fprintf(stderr, "faults_mpi needs 4 ranks (mpiexec -n 4), got %d: skipped\n", nr);
        MPI_Finalize();
        return LT_EXIT_SKIP;
    }
    alarm(40); /* a hang becomes SIGALRM: a failed run, not a stuck job */
    int mine = run_suite(), all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_SUM, world);
    if (me == 0)
        printf("faults_mpi: %d failure(s) over %d ranks\n", all, nr);
    MPI_Finalize();
    return all == 0 ? 0 : 1;
}
