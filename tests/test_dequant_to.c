/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * lshmoe_kn_dequant_row_to() at every ISA level the CPU has writes the
 * bytes that the scalar lshmoe_kn_dequant_row() followed by
 * lshmoe_row_from_f32() writes, for every row format and dtype: on rows
 * the encoder codes (Gaussian, heavy-tailed, near overflow, subnormal) and
 * on rows of arbitrary bytes whose scales overflow the dtype, land in its
 * subnormals, or (e4m3 NaN codes, which a decoder may meet before the
 * validity check) decode to NaN. The destination is misaligned and
 * fenced: nothing outside the row may change. Levels the CPU lacks are
 * reported and left out.
 */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "kernels/common/quant_math.h"
#include "kernels/kernels.h"
#include "lshmoe/common/dtype.h"
#include "testutil.h"

#define FENCE 64

static const int fmts[] = {LSHMOE_QM_FP8, LSHMOE_QM_INT8, LSHMOE_QM_INT4, LSHMOE_QM_INT4E,
                           LSHMOE_QM_INT2};
static const size_t hiddens[] = {1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 129, 1000};
static const lshmoe_dtype_t dtypes[] = {LSHMOE_DTYPE_FP32, LSHMOE_DTYPE_FP16,
                                        LSHMOE_DTYPE_BF16};

static size_t compared, mismatches;

/* One coded row decoded by the reference and by every other level. */
static void check_row(int fmt, const uint8_t *row, size_t h, const char *what)
{
    float *scratch = malloc(h * sizeof(float));
    uint8_t *ref = malloc(4 * h + 2 * FENCE), *got = malloc(4 * h + 2 * FENCE + 1);
    CU_ASSERT_FATAL(scratch && ref && got);
    for (size_t d = 0; d < sizeof dtypes / sizeof dtypes[0]; d++) {
        size_t rb = h * lshmoe_dtype_size(dtypes[d]);
        CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
        lshmoe_kn_dequant_row(fmt, row, h, scratch);
        lshmoe_row_from_f32(scratch, h, dtypes[d], ref);
        for (int isa = 0; isa < LSHMOE_KN_ISA_COUNT; isa++) {
            if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
                continue;
            CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force((lshmoe_kn_isa_t)isa), LSHMOE_OK);
            uint8_t *dst = got + FENCE + 1; /* odd address: any alignment */
            memset(got, 0xa5, 4 * h + 2 * FENCE + 1);
            memset(scratch, 0x5a, h * sizeof(float));
            lshmoe_kn_dequant_row_to(fmt, row, h, dtypes[d], dst, scratch);
            int bad = memcmp(dst, ref, rb) != 0;
            for (size_t i = 0; i < FENCE; i++) /* the fences before and after */
                bad |= got[i] != 0xa5 || dst[rb + i] != 0xa5;
            if (bad) {
                mismatches++;
                printf("  mismatch: %s row, %s, format %d, hidden %zu, %s\n", what,
                       lshmoe_kn_isa_name((lshmoe_kn_isa_t)isa), fmt, h,
                       lshmoe_dtype_name(dtypes[d]));
            }
            compared++;
        }
    }
    free(scratch);
    free(ref);
    free(got);
}

/* Rows as the encoder codes them. */
static void test_coded_rows(void)
{
    enum { GAUSS, HEAVY, HUGE, TINY, KINDS };
    static const char *const names[] = {"gaussian", "heavy-tailed", "near-overflow",
                                        "subnormal"};
    mismatches = compared = 0;
    for (size_t hi = 0; hi < sizeof hiddens / sizeof hiddens[0]; hi++) {
        size_t h = hiddens[hi];
        float *x = malloc(h * sizeof(float));
        CU_ASSERT_FATAL(x != NULL);
        for (int kind = 0; kind < KINDS; kind++) {
            lt_gen_gaussian(x, 1, h, 700 + 31 * (uint64_t)kind + h);
            for (size_t i = 0; i < h; i++) {
                if (kind == HEAVY && i % 29 == 3)
                    x[i] *= 3000.0f;
                if (kind == HUGE)
                    x[i] = i % 11 == 0 ? (x[i] < 0 ? -3.3e38f : 3.3e38f) : x[i] * 1e37f;
                if (kind == TINY)
                    x[i] *= 1e-6f; /* fp16 subnormals, bf16 normals */
            }
            for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
                size_t rb = (size_t)lshmoe_qm_row_bytes(fmts[f], h);
                uint8_t *row = malloc(rb);
                CU_ASSERT_FATAL(row != NULL);
                CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
                lshmoe_kn_quant_row(fmts[f], x, h, row);
                check_row(fmts[f], row, h, names[kind]);
                free(row);
            }
        }
        free(x);
    }
    printf("  %zu rows x dtypes x levels compared, %zu mismatches\n", compared, mismatches);
    CU_ASSERT(compared > 0);
    CU_ASSERT_EQUAL(mismatches, 0);
}

/* Rows of arbitrary bytes: every code value under scales from huge (the
 * products overflow bf16/fp16, int8 even fp32) to tiny (fp16 subnormals
 * and zero), e4m3 NaN codes included. */
static void test_arbitrary_rows(void)
{
    static const float f32_scales[] = {0.37f, 3.0e38f, 1.0e-7f, 7.0e4f};
    static const uint16_t f16_scales[] = {0x3bd7, 0x7bff, 0x0001, 0x0400};
    mismatches = compared = 0;
    for (size_t hi = 0; hi < sizeof hiddens / sizeof hiddens[0]; hi++) {
        size_t h = hiddens[hi];
        for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
            int fmt = fmts[f];
            size_t rb = (size_t)lshmoe_qm_row_bytes(fmt, h);
            size_t sb = (size_t)lshmoe_qm_scale_bytes(fmt, h);
            uint8_t *row = malloc(rb);
            CU_ASSERT_FATAL(row != NULL);
            for (size_t v = 0; v < 4; v++) {
                for (size_t i = sb; i < rb; i++)
                    row[i] = (uint8_t)((i - sb) * 37 + 11 * v);
                if (fmt == LSHMOE_QM_FP8 || fmt == LSHMOE_QM_INT8)
                    for (size_t b = 0; b < sb / 4; b++)
                        lshmoe_qm_put_f32(row + 4 * b, f32_scales[(v + b) % 4]);
                else if (fmt == LSHMOE_QM_INT4E)
                    for (size_t b = 0; b < sb; b++)
                        row[b] = (uint8_t)(v == 1 ? 255 - b : v == 2 ? 1 + b : 90 + 40 * v + b);
                else
                    for (size_t b = 0; b < sb / 2; b++)
                        lshmoe_qm_put_f16(row + 2 * b, f16_scales[(v + b) % 4]);
                check_row(fmt, row, h, "arbitrary");
            }
            free(row);
        }
    }
    printf("  %zu rows x dtypes x levels compared, %zu mismatches\n", compared, mismatches);
    CU_ASSERT(compared > 0);
    CU_ASSERT_EQUAL(mismatches, 0);
}

/* A format the kernel does not decode writes nothing. */
static void test_other_formats_write_nothing(void)
{
    uint8_t row[64] = {0}, out[256];
    float scratch[32];
    memset(out, 0xa5, sizeof out);
    lshmoe_kn_dequant_row_to(LSHMOE_QM_NATIVE, row, 16, LSHMOE_DTYPE_BF16, out, scratch);
    lshmoe_kn_dequant_row_to(LSHMOE_QM_COUNT, row, 16, LSHMOE_DTYPE_FP32, out, scratch);
    for (size_t i = 0; i < sizeof out; i++)
        CU_ASSERT_EQUAL(out[i], 0xa5);
}

int main(void)
{
    static const lt_test_t tests[] = {
        {"coded rows match the two-step reference", test_coded_rows},
        {"arbitrary rows match the two-step reference", test_arbitrary_rows},
        {"other formats write nothing", test_other_formats_write_nothing},
    };
    for (int isa = 1; isa < LSHMOE_KN_ISA_COUNT; isa++)
        if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
            printf("ISA level %s not supported here: left out\n",
                   lshmoe_kn_isa_name((lshmoe_kn_isa_t)isa));
    return lt_run_suite("dequant_to", tests, sizeof tests / sizeof tests[0]);
}
