/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* fp16 / bf16 <-> fp32 conversions (lshmoe/common/dtype.h). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "kernels/common/half_math.h"
#include "lshmoe/common/dtype.h"
#include "testutil.h"

/* Value of an fp16 bit pattern computed from the IEEE definition. */
static double f16_reference(uint16_t h)
{
    int sign = h >> 15, e = (h >> 10) & 0x1f, mant = h & 0x3ff;
    double v;
    if (e == 0x1f)
        v = mant ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp(mant, -24);
    else
        v = ldexp(1024 + mant, e - 25);
    return sign ? -v : v;
}

static void test_dtype_f16_all_patterns(void)
{
    for (uint32_t p = 0; p < 65536; p++) {
        uint16_t h = (uint16_t)p;
        float f = lshmoe_f16_to_f32(h);
        double ref = f16_reference(h);
        uint16_t back = lshmoe_f32_to_f16(f);
        if (isnan(ref)) {
            CU_ASSERT_FATAL(isnan(f));
            CU_ASSERT_FATAL((back & 0x7c00u) == 0x7c00u && (back & 0x3ffu) != 0);
            CU_ASSERT_FATAL((back & 0x8000u) == (h & 0x8000u));
        } else {
            CU_ASSERT_FATAL((double)f == ref);
            CU_ASSERT_FATAL(!signbit(f) == !signbit(ref));
            CU_ASSERT_FATAL(back == h);
        }
    }
}

static void test_dtype_bf16_all_patterns(void)
{
    for (uint32_t p = 0; p < 65536; p++) {
        uint16_t h = (uint16_t)p;
        float f = lshmoe_bf16_to_f32(h);
        CU_ASSERT_FATAL(lshmoe_kn_f32_bits(f) == p << 16);
        uint16_t back = lshmoe_f32_to_bf16(f);
        if (isnan(f)) {
            CU_ASSERT_FATAL((back & 0x7f80u) == 0x7f80u && (back & 0x7fu) != 0);
            CU_ASSERT_FATAL((back & 0x8000u) == (h & 0x8000u));
        } else {
            CU_ASSERT_FATAL(back == h);
        }
    }
}

static void test_dtype_f16_round_nearest_even(void)
{
    /* 1 + 2^-11 is halfway between 1 (even) and 1 + 2^-10 (odd). */
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);
    /* 1 + 3 * 2^-11 is halfway between 0x3c01 (odd) and 0x3c02 (even). */
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(1.0f + 0x3p-11f), 0x3c02);
    /* Just above / below a tie goes to the nearer value. */
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(1.0f + 0x3p-11f - 0x1p-20f), 0x3c01);
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(-(1.0f + 0x1p-11f)), 0xbc00);
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(-(1.0f + 0x3p-11f)), 0xbc02);
    /* Ties in the subnormal range (unit 2^-24). */
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(0x1p-25f), 0x0000);
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(0x3p-25f), 0x0002);
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(0x1p-25f + 0x1p-40f), 0x0001);
    /* The largest subnormal plus half a unit rounds to the smallest normal. */
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(0x7ffp-25f), 0x0400);
}

static void test_dtype_bf16_round_nearest_even(void)
{
    CU_ASSERT_EQUAL(lshmoe_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
    CU_ASSERT_EQUAL(lshmoe_f32_to_bf16(1.0f + 0x3p-8f), 0x3f82);
    CU_ASSERT_EQUAL(lshmoe_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
    CU_ASSERT_EQUAL(lshmoe_f32_to_bf16(-(1.0f + 0x3p-8f)), 0xbf82);
}

static void test_dtype_f16_overflow_to_inf(void)
{
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(65504.0f), 0x7bff);       /* max finite */
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(65519.996f), 0x7bff);     /* below tie  */
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(65520.0f), 0x7c00);       /* tie -> Inf */
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(1e6f), 0x7c00);
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(-1e6f), 0xfc00);
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(FLT_MAX), 0x7c00);
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(INFINITY), 0x7c00);
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(-INFINITY), 0xfc00);
    CU_ASSERT_EQUAL(lshmoe_f32_to_bf16(FLT_MAX), 0x7f80);       /* rounds up  */
    CU_ASSERT_EQUAL(lshmoe_f32_to_bf16(-INFINITY), 0xff80);
}

static void test_dtype_f16_subnormals(void)
{
    CU_ASSERT(lshmoe_f16_to_f32(0x0001) == 0x1p-24f);
    CU_ASSERT(lshmoe_f16_to_f32(0x03ff) == 0x3ffp-24f);
    CU_ASSERT(lshmoe_f16_to_f32(0x8001) == -0x1p-24f);
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(0x1p-24f), 0x0001);
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(-0x1p-24f), 0x8001);
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(0x3ffp-24f), 0x03ff);
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(0x1p-14f), 0x0400);       /* min normal */
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(1e-10f), 0x0000);         /* underflow  */
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(-1e-10f), 0x8000);        /* keeps sign */
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(FLT_TRUE_MIN), 0x0000);
    CU_ASSERT_EQUAL(lshmoe_f32_to_f16(-0.0f), 0x8000);
}

static void test_dtype_nan_stays_nan(void)
{
    /* Signalling NaN whose payload lives only in bits fp16 drops: must not
     * turn into Inf. */
    uint16_t h = lshmoe_f32_to_f16(lshmoe_kn_bits_f32(0x7f800001u));
    CU_ASSERT((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0);
    h = lshmoe_f32_to_f16(lshmoe_kn_bits_f32(0xff800001u));
    CU_ASSERT(h & 0x8000u);
    CU_ASSERT((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0);
    CU_ASSERT(isnan(lshmoe_f16_to_f32(lshmoe_f32_to_f16(NAN))));
    uint16_t b = lshmoe_f32_to_bf16(lshmoe_kn_bits_f32(0x7f800001u));
    CU_ASSERT((b & 0x7f80u) == 0x7f80u && (b & 0x7fu) != 0);
}

/* Row conversions agree with the scalar ones, for every length around the
 * vector blocks and for unaligned buffers. */
static void test_dtype_rows_match_scalar(void)
{
    enum { MAXN = 131 };
    float src[MAXN], back[MAXN];
    unsigned char raw[4 * MAXN + 8];
    lt_gen_gaussian(src, 1, MAXN, 7);
    src[3] = NAN;
    src[4] = INFINITY;
    src[5] = 1e6f;
    src[6] = 1e-7f;
    src[7] = -0.0f;
    const size_t lens[] = {0, 1, 15, 16, 17, 33, MAXN};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t n = lens[li];
        for (size_t off = 0; off < 2; off++) {
            unsigned char *p = raw + off; /* odd offset: unaligned halves */
            lshmoe_row_from_f32(src, n, LSHMOE_DTYPE_FP16, p);
            for (size_t i = 0; i < n; i++) {
                uint16_t h;
                memcpy(&h, p + 2 * i, 2);
                CU_ASSERT_EQUAL_FATAL(h, lshmoe_f32_to_f16(src[i]));
            }
            lshmoe_row_to_f32(p, LSHMOE_DTYPE_FP16, n, back);
            for (size_t i = 0; i < n; i++) {
                uint16_t h;
                memcpy(&h, p + 2 * i, 2);
                CU_ASSERT_EQUAL_FATAL(lshmoe_kn_f32_bits(back[i]), lshmoe_kn_f32_bits(lshmoe_f16_to_f32(h)));
            }
            lshmoe_row_from_f32(src, n, LSHMOE_DTYPE_BF16, p);
            for (size_t i = 0; i < n; i++) {
                uint16_t h;
                memcpy(&h, p + 2 * i, 2);
                CU_ASSERT_EQUAL_FATAL(h, lshmoe_f32_to_bf16(src[i]));
            }
            lshmoe_row_to_f32(p, LSHMOE_DTYPE_BF16, n, back);
            for (size_t i = 0; i < n; i++) {
                uint16_t h;
                memcpy(&h, p + 2 * i, 2);
                CU_ASSERT_EQUAL_FATAL(lshmoe_kn_f32_bits(back[i]), (uint32_t)h << 16);
            }
            lshmoe_row_from_f32(src, n, LSHMOE_DTYPE_FP32, p);
            CU_ASSERT_FATAL(n == 0 || memcmp(p, src, n * sizeof(float)) == 0);
            memset(back, 0xab, sizeof back);
            lshmoe_row_to_f32(p, LSHMOE_DTYPE_FP32, n, back);
            CU_ASSERT_FATAL(n == 0 || memcmp(back, src, n * sizeof(float)) == 0);
        }
    }
}

static const lt_test_t tests[] = {
    {"test_dtype_f16_all_patterns", test_dtype_f16_all_patterns},
    {"test_dtype_bf16_all_patterns", test_dtype_bf16_all_patterns},
    {"test_dtype_f16_round_nearest_even", test_dtype_f16_round_nearest_even},
    {"test_dtype_bf16_round_nearest_even", test_dtype_bf16_round_nearest_even},
    {"test_dtype_f16_overflow_to_inf", test_dtype_f16_overflow_to_inf},
    {"test_dtype_f16_subnormals", test_dtype_f16_subnormals},
    {"test_dtype_nan_stays_nan", test_dtype_nan_stays_nan},
    {"test_dtype_rows_match_scalar", test_dtype_rows_match_scalar},
};

LT_MAIN("dtype", tests)
