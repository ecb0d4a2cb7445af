/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * fp16 <-> fp32 conversions and row conversions for every float dtype.
 *
 * The element conversions are written without branches (bit arithmetic and
 * selects) so that the row loops below vectorise at -O2; the scalar
 * functions share the same code, so both give bit-identical results.
 * Rows are read and written through memcpy: wire data may be unaligned.
 */
#include <string.h>

#include "lshmoe/common/dtype.h"

/* Elements per inner block: a fixed trip count lets gcc's very-cheap cost
 * model (the -O2 default) vectorise without an epilogue. */
#define ROW_BLOCK 16

/* The row loops are integer bit arithmetic, so any vector width gives the
 * same bits: on x86-64 with GCC each also gets an AVX2 clone, chosen at
 * load time by the CPU's features (ifunc), because the baseline SSE2 has
 * no 32->16-bit pack and needs about twice the instructions per element. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define ROW_LOOP __attribute__((target_clones("avx2", "default")))
#else
#define ROW_LOOP
#endif

static inline float bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t f32_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* cond ? a : b as mask arithmetic: gcc does not if-convert the ternary
 * form in these loops at -O2, and a branch stops vectorisation. */
static inline uint32_t sel(int cond, uint32_t a, uint32_t b)
{
    uint32_t m = 0u - (uint32_t)(cond != 0);
    return (a & m) | (b & ~m);
}

/*
 * fp16 -> fp32 is exact. Normal numbers: rebias the exponent (+112).
 * Inf/NaN: exponent 31 -> 255, mantissa (NaN payload) kept as is.
 * Subnormals (and zero): build 2^-14 * (1 + mant/1024) and subtract 2^-14,
 * which is exact and gives mant * 2^-24.
 */
static inline uint32_t f16_bits_to_f32_bits(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t a = (uint32_t)(h & 0x7fffu) << 13;
    uint32_t e = a & 0x0f800000u;
    uint32_t normal = a + 0x38000000u;
    uint32_t infnan = a + 0x70000000u;
    uint32_t sub = f32_to_bits(bits_to_f32(a + 0x38800000u) - 0x1p-14f);
    uint32_t r = sel(e == 0x0f800000u, infnan, normal);
    r = sel(e == 0, sub, r);
    return sign | r;
}

/*
 * fp32 -> fp16, round to nearest even.
 *  - |f| >= 65536 (and Inf): Inf. Values in [65520, 65536) round up to Inf
 *    through the normal path, as IEEE 754 says (65520 is the tie above the
 *    largest finite 65504, and ties go to the even Inf).
 *  - NaN: sign and the top mantissa bits kept, quiet bit set.
 *  - |f| < 2^-14 (fp16 subnormal range): adding 0.5f puts the fp16
 *    subnormal unit 2^-24 at the last place of the fp32 mantissa, so the
 *    fp32 addition itself rounds to nearest even; the mantissa bits are then
 *    the fp16 result (0x400 is the smallest normal, which is right).
 *  - otherwise: rebias the exponent (-112) and round the 13 dropped bits to
 *    nearest even (add 0xfff plus the lowest kept bit); a carry into the
 *    exponent is the correct result (up to Inf).
 */
static inline uint16_t f32_bits_to_f16_bits(uint32_t u)
{
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    uint32_t normal = (a + 0xc8000fffu + ((a >> 13) & 1u)) >> 13;
    uint32_t sub = f32_to_bits(bits_to_f32(a) + 0.5f) - 0x3f000000u;
    uint32_t nan = 0x7e00u | ((a >> 13) & 0x3ffu);
    uint32_t r = sel(a < 0x38800000u, sub, normal);
    r = sel(a >= 0x47800000u, 0x7c00u, r);
    r = sel(a > 0x7f800000u, nan, r);
    return (uint16_t)(sign | r);
}

float lshmoe_f16_to_f32(uint16_t h)
{
    return bits_to_f32(f16_bits_to_f32_bits(h));
}

uint16_t lshmoe_f32_to_f16(float f)
{
    return f32_bits_to_f16_bits(f32_to_bits(f));
}

ROW_LOOP static void f16_row_to_f32(const unsigned char *restrict s, size_t n,
                           float *restrict d)
{
    size_t i = 0;
    for (; i + ROW_BLOCK <= n; i += ROW_BLOCK) {
        for (size_t k = 0; k < ROW_BLOCK; k++) {
            uint16_t h;
            memcpy(&h, s + 2 * (i + k), sizeof h);
            d[i + k] = bits_to_f32(f16_bits_to_f32_bits(h));
        }
    }
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, sizeof h);
        d[i] = bits_to_f32(f16_bits_to_f32_bits(h));
    }
}

ROW_LOOP static void bf16_row_to_f32(const unsigned char *restrict s, size_t n,
                            float *restrict d)
{
    size_t i = 0;
    for (; i + ROW_BLOCK <= n; i += ROW_BLOCK) {
        for (size_t k = 0; k < ROW_BLOCK; k++) {
            uint16_t h;
            memcpy(&h, s + 2 * (i + k), sizeof h);
            d[i + k] = bits_to_f32((uint32_t)h << 16);
        }
    }
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, sizeof h);
        d[i] = bits_to_f32((uint32_t)h << 16);
    }
}

ROW_LOOP static void f32_row_to_f16(const float *restrict s, size_t n,
                           unsigned char *restrict d)
{
    size_t i = 0;
    for (; i + ROW_BLOCK <= n; i += ROW_BLOCK) {
        for (size_t k = 0; k < ROW_BLOCK; k++) {
            uint16_t h = f32_bits_to_f16_bits(f32_to_bits(s[i + k]));
            memcpy(d + 2 * (i + k), &h, sizeof h);
        }
    }
    for (; i < n; i++) {
        uint16_t h = f32_bits_to_f16_bits(f32_to_bits(s[i]));
        memcpy(d + 2 * i, &h, sizeof h);
    }
}

/* Same rounding as lshmoe_f32_to_bf16() (dtype.h), written with sel()
 * instead of a branch so the loop vectorises. */
static inline uint16_t f32_bits_to_bf16_bits(uint32_t u)
{
    uint32_t nan = (u >> 16) | 0x0040u;
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)sel((u & 0x7fffffffu) > 0x7f800000u, nan, rounded);
}

ROW_LOOP static void f32_row_to_bf16(const float *restrict s, size_t n,
                            unsigned char *restrict d)
{
    size_t i = 0;
    for (; i + ROW_BLOCK <= n; i += ROW_BLOCK) {
        for (size_t k = 0; k < ROW_BLOCK; k++) {
            uint16_t h = f32_bits_to_bf16_bits(f32_to_bits(s[i + k]));
            memcpy(d + 2 * (i + k), &h, sizeof h);
        }
    }
    for (; i < n; i++) {
        uint16_t h = f32_bits_to_bf16_bits(f32_to_bits(s[i]));
        memcpy(d + 2 * i, &h, sizeof h);
    }
}

void lshmoe_row_to_f32(const void *src, lshmoe_dtype_t dtype, size_t n, float *dst)
{
    if (n == 0)
        return;
    switch (dtype) {
    case LSHMOE_DTYPE_FP32:
        memmove(dst, src, n * sizeof(float));
        break;
    case LSHMOE_DTYPE_FP16:
        f16_row_to_f32(src, n, dst);
        break;
    case LSHMOE_DTYPE_BF16:
        bf16_row_to_f32(src, n, dst);
        break;
    default:
        /* Not a float dtype: callers never ask; give zeros, not garbage. */
        memset(dst, 0, n * sizeof(float));
        break;
    }
}

void lshmoe_row_from_f32(const float *src, size_t n, lshmoe_dtype_t dtype, void *dst)
{
    if (n == 0)
        return;
    switch (dtype) {
    case LSHMOE_DTYPE_FP32:
        memmove(dst, src, n * sizeof(float));
        break;
    case LSHMOE_DTYPE_FP16:
        f32_row_to_f16(src, n, dst);
        break;
    case LSHMOE_DTYPE_BF16:
        f32_row_to_bf16(src, n, dst);
        break;
    default:
        /* Not a float dtype: nothing to write. */
        break;
    }
}
