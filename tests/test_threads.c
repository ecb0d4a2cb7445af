/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * LSHMOE_THREADS: the codec work of a call split over a pool gives the same
 * result whatever the thread count. 4 ranks on the self transport, every
 * call encoded (LSHMOE_ADAPT=0), segments of different sizes, clustered
 * and structureless; with 1, 2 and 3 threads per rank each receiver must
 * get byte-identical tokens, and each sender the same wire bytes, rows and
 * segment kinds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lshmoe.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/ctx_int.h" /* white-box: the pool's size */
#include "testutil.h"

#define NR 4
#define HIDDEN 192
#define NCALLS 3
#define MAXT 3

typedef struct result {
    lshmoe_status_t st[NR];
    int             nthreads[NR];
    uint16_t       *recv[NR][NCALLS];
    size_t          recv_len[NR];
    lshmoe_stats_t  stats[NR];
} result_t;

static size_t count(int from, int to)
{
    return 150 + 61 * (size_t)from + 23 * (size_t)to;
}

static void fill(int call, int from, int to, uint16_t *dst)
{
    size_t n = count(from, to);
    float *x = malloc(n * HIDDEN * sizeof(float));
    if ((from + to) % 2 == 0)
        lt_gen_clustered(x, n, HIDDEN, 12, 0.05, 100 * (uint64_t)call + 10 * (uint64_t)from + (uint64_t)to);
    else
        lt_gen_gaussian(x, n, HIDDEN, 7 + 100 * (uint64_t)call + 10 * (uint64_t)from + (uint64_t)to);
    lt_to_dtype(x, n * HIDDEN, LSHMOE_DTYPE_BF16, dst);
    free(x);
}

static void run_rank(lt_rank_ctx_t *rc)
{
    result_t *res = rc->arg;
    int me = rc->rank;
    size_t sc[NR], sd[NR], rcnt[NR], rd[NR], stot = 0, rtot = 0;
    for (int p = 0; p < NR; p++) {
        sc[p] = count(me, p);
        sd[p] = stot;
        stot += sc[p];
        rcnt[p] = count(p, me);
        rd[p] = rtot;
        rtot += rcnt[p];
    }
    uint16_t *send = malloc(stot * HIDDEN * 2);
    lshmoe_comm_desc_t d = lt_self_desc(rc);
    lshmoe_ctx_t *ctx = NULL;
    res->st[me] = lshmoe_ctx_create(&d, NULL, &ctx);
    if (res->st[me] != LSHMOE_OK)
        goto out;
    res->nthreads[me] = ctx->nthreads;
    res->recv_len[me] = rtot * HIDDEN * 2;
    for (int call = 0; call < NCALLS && res->st[me] == LSHMOE_OK; call++) {
        for (int p = 0; p < NR; p++)
            fill(call, me, p, send + sd[p] * HIDDEN);
        res->recv[me][call] = malloc(rtot * HIDDEN * 2);
        res->st[me] = lshmoe_alltoallv(ctx, send, sc, sd, res->recv[me][call], rcnt, rd,
                                       LSHMOE_DTYPE_BF16, HIDDEN, NULL);
    }
    lshmoe_stats_get(ctx, &res->stats[me]);
out:
    lshmoe_ctx_destroy(ctx);
    free(send);
}

/* `codec`: LSHMOE_CODEC for the run; `lsh`: its segments are LSH-clustered
 * or RAW (both kinds must then occur). */
static void check_codec_mode(const char *codec, int lsh)
{
    result_t *res = calloc(MAXT, sizeof *res);
    CU_ASSERT_FATAL(res != NULL);
    setenv("LSHMOE_ADAPT", "0", 1);
    setenv("LSHMOE_CODEC", codec, 1);
    for (int t = 0; t < MAXT; t++) {
        char v[8];
        snprintf(v, sizeof v, "%d", t + 1);
        setenv("LSHMOE_THREADS", v, 1);
        for (int r = 0; r < NR; r++)
            res[t].stats[r] = (lshmoe_stats_t)LSHMOE_STATS_INITIALIZER;
        CU_ASSERT_EQUAL_FATAL(lt_run_ranks(NR, 120.0, run_rank, &res[t]), 0);
        for (int r = 0; r < NR; r++) {
            CU_ASSERT_EQUAL_FATAL(res[t].st[r], LSHMOE_OK);
            CU_ASSERT_EQUAL(res[t].nthreads[r], t + 1);
        }
    }
    unsetenv("LSHMOE_THREADS");
    unsetenv("LSHMOE_ADAPT");
    unsetenv("LSHMOE_CODEC");
    for (int r = 0; r < NR; r++) {
        /* both kinds of segment were there to split */
        CU_ASSERT(res[0].stats[r].segments_compressed > 0);
        if (lsh)
            CU_ASSERT(res[0].stats[r].segments_raw > 0);
        /* it did encode: fewer bytes on the wire than the tokens' */
        CU_ASSERT(res[0].stats[r].bytes_wire < res[0].stats[r].bytes_in);
        /* the encoder measured its error (lsh: through the guard) */
        CU_ASSERT(res[0].stats[r].err_ref > 0.0);
        CU_ASSERT(res[0].stats[r].err_max > 0.0);
        for (int t = 1; t < MAXT; t++) {
            for (int call = 0; call < NCALLS; call++)
                CU_ASSERT_EQUAL(memcmp(res[t].recv[r][call], res[0].recv[r][call],
                                       res[0].recv_len[r]), 0);
            CU_ASSERT_EQUAL(res[t].stats[r].bytes_wire, res[0].stats[r].bytes_wire);
            CU_ASSERT_EQUAL(res[t].stats[r].clusters, res[0].stats[r].clusters);
            CU_ASSERT_EQUAL(res[t].stats[r].segments_compressed,
                            res[0].stats[r].segments_compressed);
            CU_ASSERT_EQUAL(res[t].stats[r].segments_raw, res[0].stats[r].segments_raw);
            /* the per-segment stats, summed in rank order whatever the
             * thread count: equal, not merely close */
            CU_ASSERT_EQUAL(res[t].stats[r].err_sq, res[0].stats[r].err_sq);
            CU_ASSERT_EQUAL(res[t].stats[r].err_ref, res[0].stats[r].err_ref);
            CU_ASSERT_EQUAL(res[t].stats[r].err_max, res[0].stats[r].err_max);
            CU_ASSERT_EQUAL(res[t].stats[r].segments_unmeasured,
                            res[0].stats[r].segments_unmeasured);
            CU_ASSERT_EQUAL(memcmp(res[t].stats[r].segments_by_format,
                                   res[0].stats[r].segments_by_format,
                                   sizeof res[0].stats[r].segments_by_format), 0);
            CU_ASSERT_EQUAL(res[t].stats[r].segments_grouped, res[0].stats[r].segments_grouped);
            CU_ASSERT_EQUAL(res[t].stats[r].segments_refined, res[0].stats[r].segments_refined);
        }
    }
    for (int t = 0; t < MAXT; t++)
        for (int r = 0; r < NR; r++)
            for (int call = 0; call < NCALLS; call++)
                free(res[t].recv[r][call]);
    free(res);
}

static void test_output_independent_of_thread_count(void)
{
    check_codec_mode("lsh", 1);
}

/* The rate-distortion modes: a pure row format, LSH with a row format, and
 * the budget ladder, whose warm start follows each destination's stream of
 * segments whichever thread encodes them. */
static void test_codec_modes_independent_of_thread_count(void)
{
    check_codec_mode("int8", 0);
    check_codec_mode("lsh-int4", 0);
    check_codec_mode("budget", 0);
}

static void test_threads_env(void)
{
    int t = 0;
    setenv("LSHMOE_THREADS", "65", 1);
    CU_ASSERT_EQUAL(lshmoe_pool_threads_from_env(0, &t), LSHMOE_ERR_INVALID_ARG);
    setenv("LSHMOE_THREADS", "0", 1);
    CU_ASSERT_EQUAL(lshmoe_pool_threads_from_env(1000000, &t), LSHMOE_OK);
    CU_ASSERT_EQUAL(t, 1); /* more ranks than cores: the caller alone */
    CU_ASSERT_EQUAL(lshmoe_pool_threads_from_env(1, &t), LSHMOE_OK);
    CU_ASSERT(t >= 1 && t <= 16);
    unsetenv("LSHMOE_THREADS");
}

static const lt_test_t tests[] = {
    {"test_output_independent_of_thread_count", test_output_independent_of_thread_count},
    {"test_codec_modes_independent_of_thread_count",
     test_codec_modes_independent_of_thread_count},
    {"test_threads_env", test_threads_env},
};

LT_MAIN("threads", tests)
