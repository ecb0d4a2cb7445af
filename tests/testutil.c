/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "lshmoe.h"
#include "testutil.h"

int lt_run_suite(const char *suite, const lt_test_t *tests, size_t ntests)
{
    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
        return 1;
    }
    CU_pSuite s = CU_add_suite(suite, NULL, NULL);
    if (s == NULL) {
        fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 1;
    }
    for (size_t i = 0; i < ntests; i++) {
        if (CU_add_test(s, tests[i].name, tests[i].fn) == NULL) {
            fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
            CU_cleanup_registry();
            return 1;
        }
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (run == 0) {
        fprintf(stderr, "no test ran\n");
        return 1;
    }
    return failures == 0 ? 0 : 1;
}

int lt_run_suite_on_rank(const char *suite, const lt_test_t *tests, size_t ntests, int rank)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite(suite, NULL, NULL);
    for (size_t i = 0; s != NULL && i < ntests; i++)
        if (CU_add_test(s, tests[i].name, tests[i].fn) == NULL)
            s = NULL;
    if (s == NULL) {
        fprintf(stderr, "rank %d: CUnit: %s\n", rank, CU_get_error_msg());
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(rank == 0 ? CU_BRM_VERBOSE : CU_BRM_SILENT);
    CU_basic_run_tests();
    int fails = (int)CU_get_number_of_failures();
    if (CU_get_number_of_tests_run() != ntests)
        fails++;
    if (rank != 0)
        for (CU_pFailureRecord r = CU_get_failure_list(); r != NULL; r = r->pNext)
            fprintf(stderr, "rank %d: %s: %s:%u: %s\n", rank,
                    r->pTest ? r->pTest->pName : "?", r->strFileName ? r->strFileName : "?",
                    r->uiLineNumber, r->strCondition ? r->strCondition : "?");
    CU_cleanup_registry();
    return fails;
}
