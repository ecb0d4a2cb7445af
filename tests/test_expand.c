/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Row expansion (lshmoe_kn_expand, the decoder's copy of centroid rows to
 * their tokens) at every CPU ISA level this machine has: byte for byte the
 * scalar reference's output for every row size from 1 to 300 bytes and a
 * few larger ones, with rows and output at every alignment, and not a
 * byte written outside the output rows.
 */
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "testutil.h"

#define NTOK 37
#define NROWS 11
#define GUARD 64

static void test_expand_same_at_every_level(void)
{
    static const size_t larger[] = {511, 512, 513, 2048, 2050, 4100};
    const size_t maxrb = 4100;
    uint8_t *rows = malloc(NROWS * maxrb + 8);
    uint8_t *ref = malloc(NTOK * maxrb + 2 * GUARD + 8);
    uint8_t *out = malloc(NTOK * maxrb + 2 * GUARD + 8);
    uint32_t cl[NTOK];
    CU_ASSERT_FATAL(rows != NULL && ref != NULL && out != NULL);
    for (size_t i = 0; i < NROWS * maxrb + 8; i++)
        rows[i] = (uint8_t)lt_hash64(3, i);
    for (int t = 0; t < NTOK; t++)
        cl[t] = (uint32_t)(lt_hash64(4, (uint64_t)t) % NROWS);
    cl[NTOK - 1] = NROWS - 1; /* the last row is read */

    int levels = 0;
    for (size_t k = 1; k <= 300 + sizeof larger / sizeof larger[0]; k++) {
        size_t rb = k <= 300 ? k : larger[k - 301];
        size_t in_off = k % 8, out_off = (k / 8) % 8, bytes = NTOK * rb;
        /* int8 rows of rb elements: the row size in bytes is rb */
        CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
        memset(ref, 0xEE, bytes + 2 * GUARD + 8);
        lshmoe_kn_expand(rows + in_off, LSHMOE_DTYPE_INT8, rb, NTOK, cl,
                         ref + GUARD + out_off);
        for (int t = 0; t < NTOK; t++)
            CU_ASSERT(memcmp(ref + GUARD + out_off + t * rb, rows + in_off + cl[t] * rb,
                             rb) == 0);
        for (int isa = 1; isa < LSHMOE_KN_ISA_COUNT; isa++) {
            if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
                continue;
            levels += k == 1;
            CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force((lshmoe_kn_isa_t)isa), LSHMOE_OK);
            memset(out, 0xEE, bytes + 2 * GUARD + 8);
            lshmoe_kn_expand(rows + in_off, LSHMOE_DTYPE_INT8, rb, NTOK, cl,
                             out + GUARD + out_off);
            /* guards included: nothing written outside the rows */
            CU_ASSERT(memcmp(out, ref, bytes + 2 * GUARD + 8) == 0);
        }
    }
    /* other dtypes: the element size scales the row */
    CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
    lshmoe_kn_expand(rows, LSHMOE_DTYPE_BF16, 50, NTOK, cl, ref);
    for (int isa = 1; isa < LSHMOE_KN_ISA_COUNT; isa++) {
        if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
            continue;
        CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force((lshmoe_kn_isa_t)isa), LSHMOE_OK);
        lshmoe_kn_expand(rows, LSHMOE_DTYPE_BF16, 50, NTOK, cl, out);
        CU_ASSERT(memcmp(out, ref, NTOK * 100) == 0);
    }
    if (levels == 0)
        printf("(no SIMD level on this CPU/build: scalar only) ");
    CU_ASSERT_EQUAL(lshmoe_kn_isa_init(), LSHMOE_OK);
    free(rows);
    free(ref);
    free(out);
}

static const lt_test_t tests[] = {
    {"test_expand_same_at_every_level", test_expand_same_at_every_level},
};

LT_MAIN("expand", tests)
