/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * lshmoe_alltoallv end to end on the self transport with 4 ranks: exact
 * paths, compressed paths with bounded error, uneven and zero counts, and
 * failures that must reach every rank without a hang. Rank threads record
 * results; the main thread asserts.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lshmoe.h"
#include "lshmoe/common/dtype.h"
#include "testutil.h"

#define NR 4
#define HIDDEN 64

typedef enum { DATA_GAUSS, DATA_CLUSTER, DATA_DUP } data_kind_t;

typedef struct scenario {
    int            compress;
    lshmoe_dtype_t dtype;
    data_kind_t    data;
    int            nan_every;   /* token j with j % nan_every == 1 gets a NaN */
    int            bad_hidden_rank;   /* this rank passes hidden 0 (or -1)    */
    int            bad_count_rank;    /* this rank expects 1 token fewer from rank 0 */
    /* results, per rank */
    lshmoe_status_t st[NR];
    lshmoe_status_t st_after[NR];     /* a clean call after a failure */
    char            msg[NR][512];
    int             exact[NR];        /* received bytes equal what was sent */
    double          err[NR];          /* rel L2 of received float tokens  */
    lshmoe_stats_t  stats[NR];
} scenario_t;

/* Tokens from rank r to rank p: uneven counts, some zero. */
static size_t count(int r, int p)
{
    if (r == 3 && p == 1)
        return 0; /* an empty segment */
    if (r == 2)
        return p == 2 ? 7 : 0; /* a rank that sends nobody anything */
    return (size_t)(40 + 23 * r + 11 * p);
}

/* Value k of token j from rank r to rank p, in fp32. */
static float value(const scenario_t *s, int r, int p, size_t j, size_t k)
{
    uint64_t tok = ((uint64_t)r << 40) | ((uint64_t)p << 32) | j;
    if (s->nan_every > 0 && j % (size_t)s->nan_every == 1 && k == 3)
        return NAN;
    switch (s->data) {
    case DATA_GAUSS:
        return (float)lt_normal(7, tok * HIDDEN + k);
    case DATA_DUP:   /* 8 distinct tokens, repeated */
        return (float)lt_normal(9, (j % 8) * HIDDEN + k);
    case DATA_CLUSTER:
    default:
        return (float)(lt_normal(9, (j % 8) * HIDDEN + k) + 0.05 * lt_normal(11, tok * HIDDEN + k));
    }
}

static void fill(const scenario_t *s, int r, int p, size_t j, void *dst)
{
    float row[HIDDEN];
    for (size_t k = 0; k < HIDDEN; k++)
        row[k] = value(s, r, p, j, k);
    if (s->dtype == LSHMOE_DTYPE_INT32) {
        int32_t *d = dst;
        for (size_t k = 0; k < HIDDEN; k++)
            d[k] = (int32_t)(lt_hash64(r * 131 + p, j * HIDDEN + k) & 0x7fffffff);
    } else {
        lshmoe_row_from_f32(row, HIDDEN, s->dtype, dst);
    }
}

static void run_rank(lt_rank_ctx_t *rc)
{
    scenario_t *s = rc->arg;
    int me = rc->rank;
    size_t tb = HIDDEN * lshmoe_dtype_size(s->dtype);
    size_t scount[NR], sdisp[NR], rcount[NR], rdisp[NR], stot = 0, rtot = 0;
    for (int p = 0; p < NR; p++) {
        scount[p] = count(me, p);
        sdisp[p] = stot;
        stot += scount[p];
        rcount[p] = count(p, me);
        rdisp[p] = rtot;
        rtot += rcount[p];
    }
    char *send = malloc(stot * tb + 1), *recv = malloc((rtot + 1) * tb + 1);
    char *want = malloc(rtot * tb + 1);
    for (int p = 0; p < NR; p++)
        for (size_t j = 0; j < scount[p]; j++)
            fill(s, me, p, j, send + (sdisp[p] + j) * tb);
    for (int p = 0; p < NR; p++)
        for (size_t j = 0; j < rcount[p]; j++)
            fill(s, p, me, j, want + (rdisp[p] + j) * tb);

    lshmoe_comm_desc_t d = lt_self_desc(rc);
    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    cfg.compress = s->compress;
    lshmoe_ctx_t *ctx = NULL;
    s->st[me] = lshmoe_ctx_create(&d, &cfg, &ctx);
    if (s->st[me] != LSHMOE_OK) {
        snprintf(s->msg[me], sizeof s->msg[me], "create: %s", lshmoe_last_error(NULL));
        goto out;
    }
    size_t hidden = me == s->bad_hidden_rank ? 0 : HIDDEN;
    size_t rc2[NR];
    memcpy(rc2, rcount, sizeof rc2);
    /* One fewer, not one more: one more would make the receive range
     * overlap the next peer's, which is refused before any exchange. */
    if (me == s->bad_count_rank)
        rc2[0]--;
    memset(recv, 0x5a, rtot * tb);
    s->st[me] = lshmoe_alltoallv(ctx, send, scount, sdisp, recv, rc2, rdisp, s->dtype, hidden,
                                 NULL);
    snprintf(s->msg[me], sizeof s->msg[me], "%s", lshmoe_last_error(ctx));
    if (s->st[me] == LSHMOE_OK) {
        s->exact[me] = memcmp(recv, want, rtot * tb) == 0;
        if (lshmoe_dtype_is_float(s->dtype)) {
            float *a = malloc(rtot * HIDDEN * sizeof(float) + 1);
            float *b = malloc(rtot * HIDDEN * sizeof(float) + 1);
            lshmoe_row_to_f32(recv, s->dtype, rtot * HIDDEN, a);
            lshmoe_row_to_f32(want, s->dtype, rtot * HIDDEN, b);
            /* NaN positions must match; compare the rest */
            for (size_t i = 0; i < rtot * HIDDEN; i++)
                if (isnan(a[i]) && isnan(b[i]))
                    a[i] = b[i] = 0.0f;
            s->err[me] = lt_rel_l2(a, b, rtot * HIDDEN);
            free(a);
            free(b);
        }
    }
    /* After any failure the context must still work. */
    s->st_after[me] = lshmoe_alltoallv(ctx, send, scount, sdisp, recv, rcount, rdisp, s->dtype,
                                       HIDDEN, NULL);
    lshmoe_stats_get(ctx, &s->stats[me]);
out:
    lshmoe_ctx_destroy(ctx);
    free(send);
    free(recv);
    free(want);
}

static void run(scenario_t *s)
{
    for (int r = 0; r < NR; r++)
        s->stats[r] = (lshmoe_stats_t)LSHMOE_STATS_INITIALIZER;
    CU_ASSERT_EQUAL_FATAL(lt_run_ranks(NR, 20.0, run_rank, s), 0);
    for (int r = 0; r < NR; r++) /* the cause, for whoever reads a failure */
        if (s->st[r] != LSHMOE_OK || s->st_after[r] != LSHMOE_OK)
            fprintf(stderr, "rank %d: %s / %s: %s\n", r, lshmoe_status_name(s->st[r]),
                    lshmoe_status_name(s->st_after[r]), s->msg[r]);
}

static scenario_t base(int compress, lshmoe_dtype_t dtype, data_kind_t data)
{
    scenario_t s;
    memset(&s, 0, sizeof s);
    s.compress = compress;
    s.dtype = dtype;
    s.data = data;
    s.bad_hidden_rank = -1;
    s.bad_count_rank = -1;
    return s;
}

static void test_alltoallv_uncompressed_is_exact(void)
{
    const lshmoe_dtype_t dts[] = {LSHMOE_DTYPE_FP32, LSHMOE_DTYPE_BF16, LSHMOE_DTYPE_FP16};
    for (size_t i = 0; i < 3; i++) {
        scenario_t s = base(0, dts[i], DATA_DUP);
        run(&s);
        for (int r = 0; r < NR; r++) {
            CU_ASSERT_EQUAL(s.st[r], LSHMOE_OK);
            CU_ASSERT_TRUE(s.exact[r]);
            CU_ASSERT_EQUAL(s.st_after[r], LSHMOE_OK);
            CU_ASSERT_EQUAL(s.stats[r].bytes_wire, s.stats[r].bytes_in);
        }
    }
}

static void test_alltoallv_integers_are_exact_with_compression_on(void)
{
    scenario_t s = base(1, LSHMOE_DTYPE_INT32, DATA_DUP);
    run(&s);
    for (int r = 0; r < NR; r++) {
        CU_ASSERT_EQUAL(s.st[r], LSHMOE_OK);
        CU_ASSERT_TRUE(s.exact[r]);
        CU_ASSERT_EQUAL(s.stats[r].segments_compressed, 0);
    }
}

static void test_alltoallv_gaussian_travels_raw_and_exact(void)
{
    /* No structure: the honest answer is "nothing to compress". */
    scenario_t s = base(1, LSHMOE_DTYPE_FP32, DATA_GAUSS);
    run(&s);
    for (int r = 0; r < NR; r++) {
        CU_ASSERT_EQUAL(s.st[r], LSHMOE_OK);
        CU_ASSERT_TRUE(s.exact[r]);
        CU_ASSERT_EQUAL(s.stats[r].segments_compressed, 0);
    }
    CU_ASSERT_TRUE(s.stats[0].segments_raw > 0);
}

static void test_alltoallv_duplicates_compress_nearly_exactly(void)
{
    const lshmoe_dtype_t dts[] = {LSHMOE_DTYPE_FP32, LSHMOE_DTYPE_BF16};
    for (size_t i = 0; i < 2; i++) {
        scenario_t s = base(1, dts[i], DATA_DUP);
        run(&s);
        for (int r = 0; r < NR; r++) {
            CU_ASSERT_EQUAL(s.st[r], LSHMOE_OK);
            /* means of identical tokens: at most rounding of the mean */
            CU_ASSERT_TRUE(s.err[r] < 1e-6);
            if (s.stats[r].bytes_in > 0) /* rank 2 sends nothing remote */
                CU_ASSERT_TRUE(s.stats[r].bytes_in > 3 * s.stats[r].bytes_wire);
        }
    }
}

static void test_alltoallv_clusters_compress_with_bounded_error(void)
{
    scenario_t s = base(1, LSHMOE_DTYPE_FP32, DATA_CLUSTER);
    run(&s);
    for (int r = 0; r < NR; r++) {
        CU_ASSERT_EQUAL(s.st[r], LSHMOE_OK);
        /* noise 0.05 around unit-variance centers: the centroid error is
         * about the noise level; 0.15 leaves room for split clusters */
        CU_ASSERT_TRUE(s.err[r] < 0.15);
        if (r != 2)
            CU_ASSERT_TRUE(s.stats[r].bytes_in > 2 * s.stats[r].bytes_wire);
    }
}

static void test_alltoallv_nan_tokens_travel_exact(void)
{
    scenario_t s = base(1, LSHMOE_DTYPE_FP32, DATA_DUP);
    s.nan_every = 5;
    run(&s);
    for (int r = 0; r < NR; r++) {
        CU_ASSERT_EQUAL(s.st[r], LSHMOE_OK);
        CU_ASSERT_TRUE(s.err[r] < 1e-6); /* NaN positions matched, rest near exact */
    }
    CU_ASSERT_TRUE(s.stats[0].tokens_nonfinite > 0);
}

static void test_alltoallv_count_mismatch_names_peer_without_hang(void)
{
    scenario_t s = base(1, LSHMOE_DTYPE_FP32, DATA_CLUSTER);
    s.bad_count_rank = 1; /* rank 1 expects one token fewer from rank 0 */
    run(&s);
    CU_ASSERT_EQUAL(s.st[1], LSHMOE_ERR_MISMATCH);
    CU_ASSERT_PTR_NOT_NULL(strstr(s.msg[1], "rank 0"));
    CU_ASSERT_EQUAL(s.st[0], LSHMOE_OK);
    CU_ASSERT_EQUAL(s.st[2], LSHMOE_OK);
    for (int r = 0; r < NR; r++)
        CU_ASSERT_EQUAL(s.st_after[r], LSHMOE_OK);
}

static void test_alltoallv_local_error_reaches_every_rank(void)
{
    scenario_t s = base(1, LSHMOE_DTYPE_BF16, DATA_CLUSTER);
    s.bad_hidden_rank = 2;
    run(&s);
    CU_ASSERT_EQUAL(s.st[2], LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(s.msg[2], "hidden"));
    for (int r = 0; r < NR; r++) {
        if (r != 2) {
            CU_ASSERT_EQUAL(s.st[r], LSHMOE_ERR_PEER);
            CU_ASSERT_PTR_NOT_NULL(strstr(s.msg[r], "rank 2"));
        }
        CU_ASSERT_EQUAL(s.st_after[r], LSHMOE_OK);
    }
}

/* Device allocator hooks that count their calls (host calls make none). */
static int hook_calls;

static int count_alloc(void *user, size_t bytes, void *stream, void **ptr_p)
{
    (void)user, (void)bytes, (void)stream, (void)ptr_p;
    hook_calls++;
    return 1;
}

static void count_free(void *user, void *ptr, size_t bytes, void *stream)
{
    (void)user, (void)ptr, (void)bytes, (void)stream;
    hook_calls++;
}

static void test_alltoallv_bad_arguments(void)
{
    size_t z[1] = {0};
    CU_ASSERT_EQUAL(lshmoe_alltoallv(NULL, NULL, z, z, NULL, z, z, LSHMOE_DTYPE_FP32, 4, NULL),
                    LSHMOE_ERR_INVALID_ARG);
    lshmoe_comm_desc_t d = LSHMOE_COMM_DESC_INITIALIZER;
    d.kind = LSHMOE_COMM_SELF;
    d.rank = 0;
    d.nranks = 1;
    lshmoe_ctx_t *ctx = NULL;
    CU_ASSERT_EQUAL_FATAL(lshmoe_ctx_create(&d, NULL, &ctx), LSHMOE_OK);
    float buf[4] = {1, 2, 3, 4}, out[4] = {0};
    size_t one[1] = {1};
    int stream;
    CU_ASSERT_EQUAL(lshmoe_alltoallv(ctx, buf, one, z, out, one, z, LSHMOE_DTYPE_FP32, 4,
                                     &stream), LSHMOE_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(lshmoe_alltoallv(ctx, buf, one, z, out, one, z, (lshmoe_dtype_t)42, 4, NULL),
                    LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(lshmoe_alltoallv(ctx, NULL, one, z, out, one, z, LSHMOE_DTYPE_FP32, 4, NULL),
                    LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(lshmoe_last_error(ctx), "send is NULL"));
    size_t huge[1] = {SIZE_MAX / 2};
    CU_ASSERT_EQUAL(lshmoe_alltoallv(ctx, buf, one, huge, out, one, z, LSHMOE_DTYPE_FP32, 4,
                                     NULL), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(lshmoe_alltoallv(ctx, buf, one, z, out, z, z, LSHMOE_DTYPE_FP32, 4, NULL),
                    LSHMOE_ERR_MISMATCH);
    CU_ASSERT_EQUAL(lshmoe_alltoallv(ctx, buf, one, z, out, one, z, LSHMOE_DTYPE_FP32, 4, NULL),
                    LSHMOE_OK);
    CU_ASSERT_EQUAL(memcmp(buf, out, sizeof buf), 0);
    /* device allocator hooks: both or neither; host calls never use them */
    CU_ASSERT_EQUAL(lshmoe_ctx_set_device_allocator(NULL, count_alloc, count_free, NULL),
                    LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(lshmoe_ctx_set_device_allocator(ctx, count_alloc, NULL, NULL),
                    LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(lshmoe_last_error(NULL), "both"));
    CU_ASSERT_EQUAL(lshmoe_ctx_set_device_allocator(ctx, count_alloc, count_free, NULL),
                    LSHMOE_OK);
    CU_ASSERT_EQUAL(lshmoe_alltoallv(ctx, buf, one, z, out, one, z, LSHMOE_DTYPE_FP32, 4, NULL),
                    LSHMOE_OK);
    CU_ASSERT_EQUAL(lshmoe_ctx_set_device_allocator(ctx, NULL, NULL, NULL), LSHMOE_OK);
    lshmoe_ctx_destroy(ctx);
    CU_ASSERT_EQUAL(hook_calls, 0);
}

static const lt_test_t tests[] = {
    {"test_alltoallv_uncompressed_is_exact", test_alltoallv_uncompressed_is_exact},
    {"test_alltoallv_integers_are_exact_with_compression_on",
     test_alltoallv_integers_are_exact_with_compression_on},
    {"test_alltoallv_gaussian_travels_raw_and_exact", test_alltoallv_gaussian_travels_raw_and_exact},
    {"test_alltoallv_duplicates_compress_nearly_exactly",
     test_alltoallv_duplicates_compress_nearly_exactly},
    {"test_alltoallv_clusters_compress_with_bounded_error",
     test_alltoallv_clusters_compress_with_bounded_error},
    {"test_alltoallv_nan_tokens_travel_exact", test_alltoallv_nan_tokens_travel_exact},
    {"test_alltoallv_count_mismatch_names_peer_without_hang",
     test_alltoallv_count_mismatch_names_peer_without_hang},
    {"test_alltoallv_local_error_reaches_every_rank",
     test_alltoallv_local_error_reaches_every_rank},
    {"test_alltoallv_bad_arguments", test_alltoallv_bad_arguments},
};

LT_MAIN("alltoallv", tests)
