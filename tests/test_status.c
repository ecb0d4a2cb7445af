/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* Status codes, dtype helpers and version queries. */
#include <string.h>

#include "lshmoe.h"
#include "testutil.h"

static void test_status_names_and_strings_are_distinct(void)
{
    static const lshmoe_status_t all[] = {
#define ALL_(name, value, text) LSHMOE_##name,
        LSHMOE_STATUS_MAP(ALL_)
#undef ALL_
    };
    size_t n = sizeof all / sizeof all[0];
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_STRING_NOT_EQUAL(lshmoe_status_name(all[i]), "UNKNOWN");
        CU_ASSERT_STRING_NOT_EQUAL(lshmoe_status_string(all[i]), "unknown status");
        for (size_t j = i + 1; j < n; j++) {
            CU_ASSERT_NOT_EQUAL(all[i], all[j]);
            CU_ASSERT_STRING_NOT_EQUAL(lshmoe_status_name(all[i]), lshmoe_status_name(all[j]));
        }
    }
    CU_ASSERT_STRING_EQUAL(lshmoe_status_name(LSHMOE_ERR_MPI), "ERR_MPI");
    CU_ASSERT_STRING_EQUAL(lshmoe_status_name((lshmoe_status_t)12345), "UNKNOWN");
    CU_ASSERT_STRING_EQUAL(lshmoe_status_string((lshmoe_status_t)-12345), "unknown status");
}

static void test_status_values_are_abi(void)
{
    /* Values are ABI: a change here breaks every binary built before it. */
    CU_ASSERT_EQUAL(LSHMOE_OK, 0);
    CU_ASSERT_EQUAL(LSHMOE_ERR_INVALID_ARG, -1);
    CU_ASSERT_EQUAL(LSHMOE_ERR_CORRUPT, -7);
    CU_ASSERT_EQUAL(LSHMOE_ERR_PEER, -9);
    CU_ASSERT_EQUAL(LSHMOE_ERR_CUDA, -20);
    CU_ASSERT_TRUE(LSHMOE_IS_BACKEND_ERR(LSHMOE_ERR_MPI));
    CU_ASSERT_FALSE(LSHMOE_IS_BACKEND_ERR(LSHMOE_ERR_PEER));
    CU_ASSERT_TRUE(LSHMOE_IS_ERR(LSHMOE_ERR_INTERNAL));
    CU_ASSERT_FALSE(LSHMOE_IS_ERR(LSHMOE_OK));
}

static void test_status_dtype_sizes_and_names(void)
{
    CU_ASSERT_EQUAL(lshmoe_dtype_size(LSHMOE_DTYPE_FP32), 4);
    CU_ASSERT_EQUAL(lshmoe_dtype_size(LSHMOE_DTYPE_BF16), 2);
    CU_ASSERT_EQUAL(lshmoe_dtype_size(LSHMOE_DTYPE_FP16), 2);
    CU_ASSERT_EQUAL(lshmoe_dtype_size(LSHMOE_DTYPE_INT64), 8);
    CU_ASSERT_EQUAL(lshmoe_dtype_size(LSHMOE_DTYPE_BYTES), 1);
    CU_ASSERT_EQUAL(lshmoe_dtype_size(LSHMOE_DTYPE_COUNT), 0);
    CU_ASSERT_EQUAL(lshmoe_dtype_size((lshmoe_dtype_t)-3), 0);
    CU_ASSERT_STRING_EQUAL(lshmoe_dtype_name(LSHMOE_DTYPE_BF16), "bf16");
    CU_ASSERT_STRING_EQUAL(lshmoe_dtype_name((lshmoe_dtype_t)99), "invalid");
}

static void test_status_version_matches_header(void)
{
    CU_ASSERT_EQUAL(lshmoe_get_version(), LSHMOE_VERSION_CODE);
    CU_ASSERT_STRING_EQUAL(lshmoe_version_string(), LSHMOE_VERSION_STRING);
    CU_ASSERT_EQUAL(LSHMOE_VERSION_CODE, LSHMOE_VERSION(LSHMOE_VERSION_MAJOR,
                                                        LSHMOE_VERSION_MINOR,
                                                        LSHMOE_VERSION_PATCH));
}

static const lt_test_t tests[] = {
    {"test_status_names_and_strings_are_distinct", test_status_names_and_strings_are_distinct},
    {"test_status_values_are_abi", test_status_values_are_abi},
    {"test_status_dtype_sizes_and_names", test_status_dtype_sizes_and_names},
    {"test_status_version_matches_header", test_status_version_matches_header},
};

LT_MAIN("status", tests)
