/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * An LSHMOE_LOG_FILE that cannot be opened fails context creation with
 * LSHMOE_ERR_INVALID_ARG naming the variable (it used to fall back to
 * stderr without a word). Log set-up runs once per process, so this test
 * has a process of its own.
 */
#include <stdlib.h>
#include <string.h>

#include "lshmoe.h"
#include "testutil.h"

static void test_log_file_unopenable_fails_ctx_create(void)
{
    setenv("LSHMOE_LOG_FILE", "/nonexistent-lshmoe-dir/sub/log.txt", 1);
    lshmoe_comm_desc_t d = LSHMOE_COMM_DESC_INITIALIZER;
    d.rank = 0; /* one rank, no communicator: the self transport */
    d.nranks = 1;
    lshmoe_ctx_t *ctx = NULL;
    CU_ASSERT_EQUAL(lshmoe_ctx_create(&d, NULL, &ctx), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(ctx);
    CU_ASSERT_PTR_NOT_NULL(strstr(lshmoe_last_error(NULL), "LSHMOE_LOG_FILE"));
    CU_ASSERT_PTR_NOT_NULL(strstr(lshmoe_last_error(NULL), "/nonexistent-lshmoe-dir"));
    lshmoe_ctx_destroy(ctx);
}

static const lt_test_t tests[] = {
    {"test_log_file_unopenable_fails_ctx_create", test_log_file_unopenable_fails_ctx_create},
};

LT_MAIN("log_file", tests)
