/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Shared test helpers: a CUnit runner whose exit status reflects failures
 * (CUnit's own does not), exit 77 for skips, rank threads on a self world.
 */
#ifndef LSHMOE_TESTUTIL_H
#define LSHMOE_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include <CUnit/CUnit.h>

#include "datagen.h"
#include "ranks.h"
#include "lshmoe.h"

#define LT_EXIT_SKIP 77

typedef struct lt_test {
    const char  *name;
    CU_TestFunc  fn;
} lt_test_t;

/* Runs one suite in CUnit basic mode; returns the process exit status
 * (0 all passed, 1 failures or a CUnit error). */
int lt_run_suite(const char *suite, const lt_test_t *tests, size_t ntests);

/*
 * One rank of an MPI test: runs the suite, verbose on rank 0 and silent on
 * the others, which print only their failures (with their rank). Returns
 * this rank's failure count, counting a CUnit error or a test that did not
 * run as one; the caller sums the counts over the ranks.
 */
int lt_run_suite_on_rank(const char *suite, const lt_test_t *tests, size_t ntests, int rank);

#define LT_MAIN(suite, table)                                                \
    int main(void)                                                           \
    {                                                                        \
        return lt_run_suite((suite), (table), sizeof(table) / sizeof((table)[0])); \
    }

#endif /* LSHMOE_TESTUTIL_H */
