/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Faults a single process can show (the multi-rank ones are in
 * test_faults_mpi.c): every failing call sets its own error text, buffers
 * that overlap are refused instead of giving wrong data, and two threads on
 * one context get LSHMOE_ERR_INVALID_ARG instead of corrupting it.
 */
#include <pthread.h>
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

static const lt_test_t tests[] = {
    {"test_faults_every_failing_call_sets_its_own_message",
     test_faults_every_failing_call_sets_its_own_message},
};

LT_MAIN("faults", tests)
