/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* Token-row access for the AVX2 kernels (include only from files built
 * with the AVX2 flags): elements of a fp32/fp16/bf16 row widened to fp32,
 * exactly, as lshmoe_row_to_f32() widens them. */
#ifndef LSHMOE_KERNELS_CPU_X86_ROWS_AVX2_H
#define LSHMOE_KERNELS_CPU_X86_ROWS_AVX2_H

#include <immintrin.h>
#include <string.h>

#include "lshmoe/common/dtype.h"

#define LSHMOE_KN_INLINE static inline __attribute__((always_inline))

/* 8 elements of row x from element i (unaligned). */
LSHMOE_KN_INLINE __m256 lshmoe_kn_load8(const unsigned char *x, size_t i, lshmoe_dtype_t dt)
{
    if (dt == LSHMOE_DTYPE_FP32)
        return _mm256_loadu_ps((const float *)(const void *)(x + 4 * i));
    __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(x + 2 * i));
    if (dt == LSHMOE_DTYPE_BF16)
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}

/* Element i of row x. */
static inline float lshmoe_kn_elem(const unsigned char *x, size_t i, lshmoe_dtype_t dt)
{
    if (dt == LSHMOE_DTYPE_FP32) {
        float f;
        memcpy(&f, x + 4 * i, sizeof f);
        return f;
    }
    uint16_t b;
    memcpy(&b, x + 2 * i, sizeof b);
    return dt == LSHMOE_DTYPE_BF16 ? lshmoe_bf16_to_f32(b) : lshmoe_f16_to_f32(b);
}

#endif /* LSHMOE_KERNELS_CPU_X86_ROWS_AVX2_H */
