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

/* Stores 8 lanes at element i of row x (unaligned), rounded as
 * lshmoe_row_from_f32() rounds: bf16 by its nearest-even formula, fp16 by
 * the hardware's nearest-even conversion. A NaN lane sends the 8 through
 * lshmoe_row_from_f32() itself (its NaN bits are the contract). */
LSHMOE_KN_INLINE void lshmoe_kn_store8(unsigned char *x, size_t i, __m256 v, lshmoe_dtype_t dt)
{
    if (dt == LSHMOE_DTYPE_FP32) {
        _mm256_storeu_ps((float *)(void *)(x + 4 * i), v);
        return;
    }
    if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0) {
        float t[8];
        _mm256_storeu_ps(t, v);
        lshmoe_row_from_f32(t, 8, dt, x + 2 * i);
        return;
    }
    __m128i h;
    if (dt == LSHMOE_DTYPE_BF16) {
        __m256i u = _mm256_castps_si256(v);
        __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
        u = _mm256_srli_epi32(
            _mm256_add_epi32(u, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7fff))), 16);
        /* 8 values < 2^16 packed in order: pack the halves, not the lanes */
        h = _mm_packus_epi32(_mm256_castsi256_si128(u), _mm256_extracti128_si256(u, 1));
    } else {
        h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    }
    _mm_storeu_si128((__m128i *)(void *)(x + 2 * i), h);
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
