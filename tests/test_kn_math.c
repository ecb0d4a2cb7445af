/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The shared arithmetic of kernels/common/ (compiled here as C, by nvcc as
 * __host__ __device__): its half conversions agree with lshmoe/common's
 * bit for bit, the PRNG is splitmix64's finaliser, the butterfly order is
 * the one lshmoe_kn_fwht() follows, ties and key packing follow the
 * documented rules.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "kernels/common/half_math.h"
#include "kernels/common/lsh_math.h"
#include "kernels/common/quant_math.h"
#include "kernels/kernels.h"
#include "lshmoe/common/dtype.h"

/* Every fp16 and bf16 value widens to the same fp32 bits. */
static void test_half_to_f32_all_values(void)
{
    size_t bad16 = 0, badb = 0;
    for (uint32_t h = 0; h <= 0xffffu; h++) {
        bad16 += lshmoe_kn_f32_bits(lshmoe_kn_f16_to_f32((uint16_t)h)) !=
                 lshmoe_kn_f32_bits(lshmoe_f16_to_f32((uint16_t)h));
        badb += lshmoe_kn_f32_bits(lshmoe_kn_bf16_to_f32((uint16_t)h)) !=
                lshmoe_kn_f32_bits(lshmoe_bf16_to_f32((uint16_t)h));
    }
    CU_ASSERT_EQUAL(bad16, 0);
    CU_ASSERT_EQUAL(badb, 0);
}

/* fp32 -> fp16/bf16 agrees on a dense sweep of bit patterns (every 61st,
 * both signs, all exponents: subnormals, ties, overflow, Inf, NaN) and on
 * the exact ties and boundaries listed. */
static void test_f32_to_half_sweep(void)
{
    static const uint32_t edges[] = {
        0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u,
        0x7f800001u, 0xffc00123u, 0x477fe000u, 0x477ff000u, 0x477fefffu,
        0x47800000u, 0x38800000u, 0x387fffffu, 0x33000000u, 0x33000001u,
        0x32ffffffu, 0x3f808000u, 0x3f818000u, 0x7f7fffffu, 0x00000001u,
    };
    size_t bad16 = 0, badb = 0, n = 0;
    for (uint64_t u = 0; u <= 0xffffffffull; u += 61, n++) {
        float f = lshmoe_kn_bits_f32((uint32_t)u);
        bad16 += lshmoe_kn_f32_to_f16(f) != lshmoe_f32_to_f16(f);
        badb += lshmoe_kn_f32_to_bf16(f) != lshmoe_f32_to_bf16(f);
    }
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        float f = lshmoe_kn_bits_f32(edges[i]);
        bad16 += lshmoe_kn_f32_to_f16(f) != lshmoe_f32_to_f16(f);
        badb += lshmoe_kn_f32_to_bf16(f) != lshmoe_f32_to_bf16(f);
    }
    CU_ASSERT(n > 70000000);
    CU_ASSERT_EQUAL(bad16, 0);
    CU_ASSERT_EQUAL(badb, 0);
    /* Spot values that do not depend on the other implementation. */
    CU_ASSERT_EQUAL(lshmoe_kn_f32_to_f16(1.0f), 0x3c00);
    CU_ASSERT_EQUAL(lshmoe_kn_f32_to_f16(65520.0f), 0x7c00);   /* tie to Inf */
    CU_ASSERT_EQUAL(lshmoe_kn_f32_to_f16(0x1p-24f), 0x0001);
    CU_ASSERT_EQUAL(lshmoe_kn_f32_to_bf16(lshmoe_kn_bits_f32(0x3f808000u)), 0x3f80); /* tie, even */
    CU_ASSERT_EQUAL(lshmoe_kn_f32_to_bf16(lshmoe_kn_bits_f32(0x3f818000u)), 0x3f82); /* tie, up */
}

/* The draws are splitmix64: its first output for state 0 is
 * mix64(golden gamma) = 0xe220a8397b1dcdaf. Signs come out balanced and
 * differ between purposes, rotations and rounds. */
static void test_prng_and_signs(void)
{
    CU_ASSERT_EQUAL(lshmoe_kn_mix64(0x9e3779b97f4a7c15ull), 0xe220a8397b1dcdafull);
    CU_ASSERT_EQUAL(lshmoe_kn_draw(7, 1, 3), lshmoe_kn_draw(7, 1, 3));
    enum { N = 20000 };
    int neg = 0, diff_purpose = 0, diff_round = 0;
    for (size_t i = 0; i < N; i++) {
        float a = lshmoe_kn_fold_sign(0x5eed, i);
        float b = lshmoe_kn_rot_sign(0x5eed, 0, 0, i);
        float c = lshmoe_kn_rot_sign(0x5eed, 0, 1, i);
        CU_ASSERT(a == 1.0f || a == -1.0f);
        neg += a < 0;
        diff_purpose += a != b;
        diff_round += b != c;
    }
    CU_ASSERT(neg > N * 45 / 100 && neg < N * 55 / 100);
    CU_ASSERT(diff_purpose > N * 40 / 100);
    CU_ASSERT(diff_round > N * 40 / 100);
}

/* 1/sqrt(n): exact powers of two for n = 4^k, and s^2 n = 1 within an ulp. */
static void test_fwht_scale(void)
{
    CU_ASSERT_EQUAL(lshmoe_kn_fwht_scale(1), 1.0f);
    CU_ASSERT_EQUAL(lshmoe_kn_fwht_scale(4), 0.5f);
    CU_ASSERT_EQUAL(lshmoe_kn_fwht_scale(64), 0.125f);
    for (size_t n = 2; n <= 4096; n *= 2) {
        double s = lshmoe_kn_fwht_scale(n);
        CU_ASSERT(fabs(s * s * (double)n - 1.0) < 1e-6);
    }
}

/* lshmoe_kn_fwht() (blocked, vectorised) equals the plain stage order
 * h = 1, 2, ... of lshmoe_kn_butterfly followed by the scale, bit for bit. */
static void test_butterfly_order_is_fwht(void)
{
    for (size_t n = 2; n <= 2048; n *= 2) {
        float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
        CU_ASSERT_FATAL(a != NULL && b != NULL);
        for (size_t i = 0; i < n; i++)
            a[i] = b[i] = (float)((i * 2654435761u) % 1000) / 37.0f - 13.0f;
        for (size_t h = 1; h < n; h *= 2)
            for (size_t i = 0; i < n; i += 2 * h)
                for (size_t j = i; j < i + h; j++)
                    lshmoe_kn_butterfly(&a[j], &a[j + h]);
        float s = lshmoe_kn_fwht_scale(n);
        for (size_t i = 0; i < n; i++)
            a[i] *= s;
        lshmoe_kn_fwht(b, n);
        CU_ASSERT_EQUAL(memcmp(a, b, n * sizeof *a), 0);
        free(a);
        free(b);
    }
}

/* First maximum of |y| wins; the sign bit is y_j* < 0 (so -0 counts as
 * positive). */
static void test_block_value_ties(void)
{
    const float t1[] = {1.0f, -1.0f, 0.5f, 1.0f};
    const float t2[] = {-2.0f, 2.0f};
    const float t3[] = {0.0f, -0.0f, 0.0f, 0.0f};
    const float t4[] = {0.1f, -0.3f, 0.3f, -0.2f};
    const float t5[] = {-0.0f, 0.0f};
    CU_ASSERT_EQUAL(lshmoe_kn_block_value(t1, 4), 0);
    CU_ASSERT_EQUAL(lshmoe_kn_block_value(t2, 2), 1);
    CU_ASSERT_EQUAL(lshmoe_kn_block_value(t3, 4), 0);
    CU_ASSERT_EQUAL(lshmoe_kn_block_value(t4, 4), 3);
    CU_ASSERT_EQUAL(lshmoe_kn_block_value(t5, 2), 0);
}

/* Packed keys are the bit concatenation; mixed keys clear bit 63 and
 * depend on the order of the values. */
static void test_key_packing(void)
{
    CU_ASSERT_EQUAL(lshmoe_kn_value_bits(2), 2);
    CU_ASSERT_EQUAL(lshmoe_kn_value_bits(4), 3);
    CU_ASSERT_EQUAL(lshmoe_kn_value_bits(256), 9);
    uint64_t k = lshmoe_kn_key_init(1);
    const unsigned v[] = {5, 0, 7, 2, 1, 6};
    for (int g = 0; g < 6; g++)
        k = lshmoe_kn_key_add(k, 1, 3, g, v[g]);
    CU_ASSERT_EQUAL(lshmoe_kn_key_finish(k, 1),
                    5ull | 0ull << 3 | 7ull << 6 | 2ull << 9 | 1ull << 12 | 6ull << 15);

    uint64_t m1 = lshmoe_kn_key_init(0), m2 = lshmoe_kn_key_init(0);
    for (int g = 0; g < 6; g++) {
        m1 = lshmoe_kn_key_add(m1, 0, 3, g, v[g]);
        m2 = lshmoe_kn_key_add(m2, 0, 3, g, v[5 - g]);
    }
    m1 = lshmoe_kn_key_finish(m1, 0);
    m2 = lshmoe_kn_key_finish(m2, 0);
    CU_ASSERT(m1 >> 63 == 0 && m2 >> 63 == 0);
    CU_ASSERT(m1 != m2);
    CU_ASSERT(m1 != LSHMOE_KN_KEY_NONFINITE);
}

/* The device grouping sorts only lshmoe_kn_key_sort_bits() low bits: on
 * packed keys (and the non-finite key) that order must be the order of
 * whole keys, pair by pair, for every (L, cdim); mixed keys keep all 64. */
static void test_key_sort_bits(void)
{
    enum { NK = 64 };
    size_t pairs = 0;
    for (int L = 1; L <= 16; L++) {
        for (int cdim = 2; cdim <= 256; cdim *= 2) {
            const int bits = lshmoe_kn_value_bits(cdim), sb = lshmoe_kn_key_sort_bits(L, cdim);
            const int packed = L * bits <= 63;
            if (!packed) {
                CU_ASSERT_EQUAL(sb, 64);
                continue;
            }
            CU_ASSERT_EQUAL(sb, L * bits + 1);
            uint64_t keys[NK + 1];
            for (int i = 0; i < NK; i++) {
                uint64_t k = lshmoe_kn_key_init(1);
                for (int g = 0; g < L; g++) {
                    /* the largest value in every block for key 0 */
                    unsigned v = i == 0 ? 2u * (unsigned)cdim - 1u
                                        : (unsigned)(lshmoe_kn_draw(7, (uint64_t)i, (uint64_t)g) %
                                                     (2u * (unsigned)cdim));
                    k = lshmoe_kn_key_add(k, 1, bits, g, v);
                }
                keys[i] = lshmoe_kn_key_finish(k, 1);
            }
            keys[NK] = LSHMOE_KN_KEY_NONFINITE;
            const uint64_t mask = sb == 64 ? UINT64_MAX : ((uint64_t)1 << sb) - 1;
            for (int a = 0; a <= NK; a++)
                for (int b = 0; b <= NK; b++) {
                    pairs++;
                    if ((keys[a] < keys[b]) != ((keys[a] & mask) < (keys[b] & mask)) ||
                        (keys[a] == keys[b]) != ((keys[a] & mask) == (keys[b] & mask))) {
                        CU_FAIL("sorting the low bits changes the order of two keys");
                        return;
                    }
                }
        }
    }
    CU_ASSERT(pairs > 0);
}

/* The INT4E scale byte is the nearest quarter octave: against fp64 log2
 * on every 997th positive float bit pattern (all binades, subnormals,
 * Inf), exact except within 1e-6 of a rounding boundary; and it decodes
 * within a quarter octave's half of s. */
static void test_e8_scale_code(void)
{
    size_t bad = 0, near = 0, checked = 0;
    for (uint64_t u = 1; u <= 0x7f800000u; u += 997) {
        float s = lshmoe_kn_bits_f32((uint32_t)u);
        double x = 4.0 * log2((double)s) + 160.0;
        double want = x < 1.0 ? 1.0 : (x > 255.0 ? 255.0 : rint(x));
        uint8_t got = lshmoe_qm_e8_of(s);
        checked++;
        if (fabs(x - floor(x) - 0.5) < 1e-6) {
            near++;
            if (fabs((double)got - want) > 1.0)
                bad++;
            continue;
        }
        if ((double)got != want)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(checked > 2000000);
    CU_ASSERT(near < checked / 1000);
    CU_ASSERT_EQUAL(lshmoe_qm_e8_of(lshmoe_kn_bits_f32(0x7f800000u)), 255);
    CU_ASSERT_EQUAL(lshmoe_qm_e8_of(0.0f), 0);
    CU_ASSERT_EQUAL(lshmoe_qm_e8_of(-1.0f), 0);
    CU_ASSERT_EQUAL(lshmoe_qm_e8_of(nanf("")), 0);
    CU_ASSERT_EQUAL(lshmoe_qm_e8_of(1.0f), 160);
    CU_ASSERT_EQUAL(lshmoe_qm_e8_of(2.0f), 164);
    for (int e = 1; e < 256; e++) {   /* every code decodes to itself */
        float v = lshmoe_qm_e8_scale((uint8_t)e);
        if (v > 0.0f && isfinite(v) && lshmoe_kn_f32_bits(v) >= 0x00800000u)
            CU_ASSERT_EQUAL(lshmoe_qm_e8_of(v), e);
    }
}

static const lt_test_t tests[] = {
    {"test_e8_scale_code", test_e8_scale_code},
    {"test_half_to_f32_all_values", test_half_to_f32_all_values},
    {"test_f32_to_half_sweep", test_f32_to_half_sweep},
    {"test_prng_and_signs", test_prng_and_signs},
    {"test_fwht_scale", test_fwht_scale},
    {"test_butterfly_order_is_fwht", test_butterfly_order_is_fwht},
    {"test_block_value_ties", test_block_value_ties},
    {"test_key_packing", test_key_packing},
    {"test_key_sort_bits", test_key_sort_bits},
};

LT_MAIN("kn_math", tests)
