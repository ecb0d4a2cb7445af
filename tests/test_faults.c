/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Faults a single process can show (the multi-rank ones are in
 * test_faults_mpi.c): every failing call sets its own error text, buffers
 * that overlap are refused instead of giving wrong data, and two threads on
 * one context get LSHMOE_ERR_INVALID_ARG instead of corrupting it.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lshmoe.h"
#include "lshmoe_moe.h"
#include "testutil.h"

/* One rank, no communicator: the self transport. */
static lshmoe_ctx_t *one_rank_ctx(int compress)
{
    lshmoe_comm_desc_t d = LSHMOE_COMM_DESC_INITIALIZER;
    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    lshmoe_ctx_t *ctx = NULL;
    d.rank = 0;
    d.nranks = 1;
    cfg.compress = compress;
    CU_ASSERT_EQUAL(lshmoe_ctx_create(&d, &cfg, &ctx), LSHMOE_OK);
    return ctx;
}

static lshmoe_moe_t *small_moe(lshmoe_ctx_t *ctx)
{
    lshmoe_moe_config_t mc = LSHMOE_MOE_CONFIG_INITIALIZER;
    lshmoe_moe_t *moe = NULL;
    mc.num_experts = 2;
    mc.topk = 1;
    mc.dtype = LSHMOE_DTYPE_FP32;
    mc.hidden = 8;
    CU_ASSERT_EQUAL(lshmoe_moe_create(ctx, &mc, &moe), LSHMOE_OK);
    return moe;
}

/* ------------------------------------------------------------------------ */
/* Error text                                                                */
/* ------------------------------------------------------------------------ */

static void test_faults_every_failing_call_sets_its_own_message(void)
{
    lshmoe_ctx_t *ctx = one_rank_ctx(1);
    lshmoe_moe_t *moe = ctx ? small_moe(ctx) : NULL;
    if (moe == NULL) {
        lshmoe_ctx_destroy(ctx);
        return;
    }
    lshmoe_moe_handle_t *h = NULL;
    /* A first failure leaves its message... */
    CU_ASSERT_EQUAL(lshmoe_moe_layout(moe, 1, NULL, NULL, &h), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(lshmoe_last_error(ctx), "topk_idx"));
    /* ...which the next failure must replace with its own. */
    int32_t idx[1] = {0};
    float gate[1] = {1.0f};
    CU_ASSERT_EQUAL(lshmoe_moe_layout(moe, 1, idx, gate, NULL), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(lshmoe_last_error(ctx), "handle_p"));
    CU_ASSERT_EQUAL(lshmoe_moe_layout(moe, 1, NULL, NULL, &h), LSHMOE_ERR_INVALID_ARG);
    int count = 0;
    CU_ASSERT_EQUAL(lshmoe_moe_local_experts(moe, &count, NULL), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(lshmoe_last_error(ctx), "ids_p"));
    lshmoe_moe_destroy(moe);
    lshmoe_ctx_destroy(ctx);
}

/* ------------------------------------------------------------------------ */
/* Overlapping buffers                                                       */
/* ------------------------------------------------------------------------ */

#define OV_HIDDEN 16

/* Two ranks on a self world: rank 1 plays a clean peer, rank 0 the case. */
typedef struct overlap_case {
    int            alias;   /* 1: send == recv; 0: receive ranges overlap */
    int            compress;
    lshmoe_dtype_t dtype;
    lshmoe_status_t got[2];
    char           msg[2][256];
} overlap_case_t;

static void overlap_rank(lt_rank_ctx_t *rc)
{
    overlap_case_t *c = rc->arg;
    int me = rc->rank;
    lshmoe_comm_desc_t d = lt_self_desc(rc);
    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    cfg.compress = c->compress;
    lshmoe_ctx_t *ctx = NULL;
    if (lshmoe_ctx_create(&d, &cfg, &ctx) != LSHMOE_OK) {
        c->got[me] = LSHMOE_ERR_INTERNAL;
        return;
    }
    size_t tb = OV_HIDDEN * 4, n = 8;
    char *a = calloc(4 * n, tb), *b = calloc(4 * n, tb);
    for (size_t i = 0; i < 4 * n * tb; i++)
        a[i] = (char)(i * 7 + (size_t)me);
    size_t sc[2] = {n, n}, sd[2] = {0, n}, rc_[2] = {n, n}, rd[2] = {0, n};
    void *recv = b;
    if (me == 0 && c->alias)
        recv = a; /* the whole call in place */
    if (me == 0 && !c->alias)
        rd[1] = n / 2; /* rank 1's tokens land on top of rank 0's */
    c->got[me] = lshmoe_alltoallv(ctx, a, sc, sd, recv, rc_, rd, c->dtype, OV_HIDDEN, NULL);
    snprintf(c->msg[me], sizeof c->msg[me], "%s", lshmoe_last_error(ctx));
    free(a);
    free(b);
    lshmoe_ctx_destroy(ctx);
}

static void run_overlap(int alias, int compress, lshmoe_dtype_t dtype)
{
    overlap_case_t c = {.alias = alias, .compress = compress, .dtype = dtype};
    CU_ASSERT_EQUAL_FATAL(lt_run_ranks(2, 30.0, overlap_rank, &c), 0);
    CU_ASSERT_EQUAL(c.got[0], LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.msg[0], alias ? "alias" : "overlap"));
    CU_ASSERT_EQUAL(c.got[1], LSHMOE_ERR_PEER);
}

static void test_faults_overlapping_receive_ranges_are_refused(void)
{
    run_overlap(0, 1, LSHMOE_DTYPE_FP32);
    run_overlap(0, 0, LSHMOE_DTYPE_INT32);
}

static void test_faults_send_aliasing_recv_is_refused(void)
{
    run_overlap(1, 0, LSHMOE_DTYPE_INT32);
    run_overlap(1, 0, LSHMOE_DTYPE_FP32);
    run_overlap(1, 1, LSHMOE_DTYPE_FP32);
}

/* ------------------------------------------------------------------------ */
/* Negative zero                                                             */
/* ------------------------------------------------------------------------ */

#define NZ_HIDDEN 32
#define NZ_TOKENS 64

typedef struct negzero_case {
    int residual_bits;
    int distinct;          /* 1: tokens differ (small clusters), 0: duplicates */
    int lost[2], total[2], compressed[2];
    lshmoe_status_t st[2];
} negzero_case_t;

/* Every fourth coordinate of every token is -0.0; the rest make clusters. */
static void negzero_rank(lt_rank_ctx_t *rc)
{
    negzero_case_t *c = rc->arg;
    int me = rc->rank;
    lshmoe_comm_desc_t d = lt_self_desc(rc);
    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    cfg.compress = 1;
    cfg.residual_bits = c->residual_bits;
    cfg.compensation = LSHMOE_COMP_RESIDUAL;
    lshmoe_ctx_t *ctx = NULL;
    if ((c->st[me] = lshmoe_ctx_create(&d, &cfg, &ctx)) != LSHMOE_OK)
        return;
    size_t n = 2 * NZ_TOKENS;
    float *send = calloc(n * NZ_HIDDEN, sizeof *send), *recv = calloc(n * NZ_HIDDEN, 4);
    for (size_t t = 0; t < n; t++)
        for (size_t k = 0; k < NZ_HIDDEN; k++)
            send[t * NZ_HIDDEN + k] = k % 4 == 0 ? -0.0f
                                      : (float)(t % 3 + k) * 0.1f +
                                        (c->distinct ? (float)t * 0.37f : 0.0f);
    size_t cnt[2] = {NZ_TOKENS, NZ_TOKENS}, dsp[2] = {0, NZ_TOKENS};
    c->st[me] = lshmoe_alltoallv(ctx, send, cnt, dsp, recv, cnt, dsp, LSHMOE_DTYPE_FP32,
                                 NZ_HIDDEN, NULL);
    for (size_t t = 0; t < n; t++)
        for (size_t k = 0; k < NZ_HIDDEN; k += 4) {
            c->total[me]++;
            c->lost[me] += !signbit(recv[t * NZ_HIDDEN + k]);
        }
    lshmoe_stats_t stats = LSHMOE_STATS_INITIALIZER;
    lshmoe_stats_get(ctx, &stats);
    c->compressed[me] = (int)stats.segments_compressed;
    free(send);
    free(recv);
    lshmoe_ctx_destroy(ctx);
}

/* A coordinate that is -0.0 in every member of a cluster arrives as -0.0:
 * the centroid sum starts from -0.0 and a zero residual leaves it alone. */
static void test_faults_negative_zero_keeps_its_sign(void)
{
    setenv("LSHMOE_ADAPT", "0", 1); /* encode every call: what is tested */
    for (int bits = 0; bits <= 8; bits += 4)
        for (int distinct = 0; distinct <= 1; distinct++) {
            negzero_case_t c = {.residual_bits = bits, .distinct = distinct};
            CU_ASSERT_EQUAL_FATAL(lt_run_ranks(2, 30.0, negzero_rank, &c), 0);
            for (int r = 0; r < 2; r++) {
                CU_ASSERT_EQUAL(c.st[r], LSHMOE_OK);
                CU_ASSERT(c.compressed[r] > 0); /* the codec path, not the plain one */
                CU_ASSERT(c.total[r] > 0);
                CU_ASSERT_EQUAL(c.lost[r], 0);
            }
        }
    unsetenv("LSHMOE_ADAPT");
}

/* ------------------------------------------------------------------------ */
/* Two threads on one context                                                */
/* ------------------------------------------------------------------------ */

/* Thread A runs a combine; its expert hook, i.e. a point where the call
 * holds the context, lets the main thread make its own calls on the same
 * context and waits until they are done. */
typedef struct two_threads {
    lshmoe_ctx_t       *ctx;
    lshmoe_moe_t       *moe;
    lshmoe_moe_handle_t *h;
    pthread_mutex_t     lock;
    pthread_cond_t      cond;
    int                 in_hook, main_done;
    lshmoe_status_t     combine_st;
    float               y[2 * 8];
} two_threads_t;

static int hook_waits_for_main(int expert, const void *in, void *out, size_t rows, void *user,
                               void *stream)
{
    two_threads_t *t = user;
    (void)expert;
    (void)stream;
    memcpy(out, in, rows * 8 * sizeof(float));
    pthread_mutex_lock(&t->lock);
    t->in_hook = 1;
    pthread_cond_broadcast(&t->cond);
    while (!t->main_done)
        pthread_cond_wait(&t->cond, &t->lock);
    pthread_mutex_unlock(&t->lock);
    return 0;
}

static void *combine_thread(void *arg)
{
    two_threads_t *t = arg;
    t->combine_st = lshmoe_moe_combine(t->moe, t->h, t->y, NULL);
    return NULL;
}

static void test_faults_second_thread_on_a_context_is_refused(void)
{
    two_threads_t t = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    t.ctx = one_rank_ctx(1);
    t.moe = t.ctx ? small_moe(t.ctx) : NULL;
    if (t.moe == NULL) {
        lshmoe_ctx_destroy(t.ctx);
        return;
    }
    CU_ASSERT_EQUAL(lshmoe_moe_set_expert(t.moe, LSHMOE_MOE_ALL_EXPERTS, hook_waits_for_main,
                                          NULL, &t), LSHMOE_OK);
    int32_t idx[2] = {0, 1};
    float gate[2] = {1.0f, 1.0f}, x[2 * 8];
    for (int i = 0; i < 16; i++)
        x[i] = (float)i;
    CU_ASSERT_EQUAL_FATAL(lshmoe_moe_layout(t.moe, 2, idx, gate, &t.h), LSHMOE_OK);
    CU_ASSERT_EQUAL_FATAL(lshmoe_moe_dispatch(t.moe, t.h, x, NULL), LSHMOE_OK);

    pthread_t a;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&a, NULL, combine_thread, &t), 0);
    pthread_mutex_lock(&t.lock);
    while (!t.in_hook)
        pthread_cond_wait(&t.cond, &t.lock);
    pthread_mutex_unlock(&t.lock);

    /* Thread A holds the context: every collective on it is refused. */
    size_t cnt[1] = {2}, dsp[1] = {0};
    float send[16] = {0}, recv[16];
    CU_ASSERT_EQUAL(lshmoe_alltoallv(t.ctx, send, cnt, dsp, recv, cnt, dsp, LSHMOE_DTYPE_FP32,
                                     8, NULL), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(lshmoe_last_error(NULL), "in use"));
    lshmoe_moe_handle_t *h2 = NULL;
    CU_ASSERT_EQUAL(lshmoe_moe_layout(t.moe, 2, idx, gate, &h2), LSHMOE_OK);
    CU_ASSERT_EQUAL(lshmoe_moe_dispatch(t.moe, h2, x, NULL), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(lshmoe_moe_combine(t.moe, t.h, t.y, NULL), LSHMOE_ERR_INVALID_ARG);
    lshmoe_moe_t *moe2 = NULL;
    lshmoe_moe_config_t mc = LSHMOE_MOE_CONFIG_INITIALIZER;
    CU_ASSERT_EQUAL(lshmoe_moe_create(t.ctx, &mc, &moe2), LSHMOE_ERR_INVALID_ARG);

    pthread_mutex_lock(&t.lock);
    t.main_done = 1;
    pthread_cond_broadcast(&t.cond);
    pthread_mutex_unlock(&t.lock);
    pthread_join(a, NULL);
    /* Thread A's call was not disturbed, and the context is free again. */
    CU_ASSERT_EQUAL(t.combine_st, LSHMOE_OK);
    CU_ASSERT_EQUAL(lshmoe_alltoallv(t.ctx, send, cnt, dsp, recv, cnt, dsp, LSHMOE_DTYPE_FP32,
                                     8, NULL), LSHMOE_OK);
    lshmoe_moe_handle_destroy(h2);
    lshmoe_moe_handle_destroy(t.h);
    lshmoe_moe_destroy(t.moe);
    lshmoe_ctx_destroy(t.ctx);
}

static const lt_test_t tests[] = {
    {"test_faults_every_failing_call_sets_its_own_message",
     test_faults_every_failing_call_sets_its_own_message},
    {"test_faults_overlapping_receive_ranges_are_refused",
     test_faults_overlapping_receive_ranges_are_refused},
    {"test_faults_send_aliasing_recv_is_refused", test_faults_send_aliasing_recv_is_refused},
    {"test_faults_negative_zero_keeps_its_sign", test_faults_negative_zero_keeps_its_sign},
    {"test_faults_second_thread_on_a_context_is_refused",
     test_faults_second_thread_on_a_context_is_refused},
};

LT_MAIN("faults", tests)
