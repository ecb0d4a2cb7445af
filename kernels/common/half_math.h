/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * fp16 / bf16 <-> fp32 for kernels that run on both backends. The same
 * rounding as lshmoe/common/dtype.h (nearest even; NaN stays a quiet NaN
 * with its sign and top payload bits; fp16 subnormals and overflow to Inf
 * as IEEE 754 says): tests/test_kn_math.c checks them against it for every
 * half value and a dense sweep of fp32 values. dtype.h keeps its own copy
 * because lshmoe/common/ includes nothing from kernels/.
 *
 * Plain C11 for the CPU; __host__ __device__ under nvcc (hd.h).
 */
#ifndef LSHMOE_KN_HALF_MATH_H
#define LSHMOE_KN_HALF_MATH_H

#include <stdint.h>
#include <string.h>

#include "kernels/common/hd.h"

static inline LSHMOE_HD float lshmoe_kn_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline LSHMOE_HD uint32_t lshmoe_kn_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline LSHMOE_HD float lshmoe_kn_bf16_to_f32(uint16_t h)
{
    return lshmoe_kn_bits_f32((uint32_t)h << 16);
}

static inline LSHMOE_HD uint16_t lshmoe_kn_f32_to_bf16(float f)
{
    uint32_t u = lshmoe_kn_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)          /* NaN: keep sign, quiet */
        return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);              /* round to nearest even */
    return (uint16_t)(u >> 16);
}

/* Exact. Subnormals: mant * 2^-24, built as (2^-14 (1 + mant/1024)) - 2^-14
 * (an exact fp32 subtraction). */
static inline LSHMOE_HD float lshmoe_kn_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t a = (uint32_t)(h & 0x7fffu) << 13;
    uint32_t e = a & 0x0f800000u;
    uint32_t r;
    if (e == 0x0f800000u)
        r = a + 0x70000000u;                      /* Inf / NaN */
    else if (e == 0)
        r = lshmoe_kn_f32_bits(lshmoe_kn_bits_f32(a + 0x38800000u) - 0x1p-14f);
    else
        r = a + 0x38000000u;                      /* rebias 15 -> 127 */
    return lshmoe_kn_bits_f32(sign | r);
}

/* Nearest even. |f| < 2^-14: adding 0.5f puts the fp16 subnormal unit at
 * the last place of the fp32 mantissa, so the fp32 addition rounds; else
 * rebias and round the 13 dropped bits (a carry into the exponent is the
 * right result, up to Inf). */
static inline LSHMOE_HD uint16_t lshmoe_kn_f32_to_f16(float f)
{
    uint32_t u = lshmoe_kn_f32_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    uint32_t r;
    if (a > 0x7f800000u)
        r = 0x7e00u | ((a >> 13) & 0x3ffu);       /* NaN, quiet */
    else if (a >= 0x47800000u)
        r = 0x7c00u;                              /* >= 65536 and Inf */
    else if (a < 0x38800000u)
        r = lshmoe_kn_f32_bits(lshmoe_kn_bits_f32(a) + 0.5f) - 0x3f000000u;
    else
        r = (a + 0xc8000fffu + ((a >> 13) & 1u)) >> 13;
    return (uint16_t)(sign | r);
}

#endif /* LSHMOE_KN_HALF_MATH_H */
