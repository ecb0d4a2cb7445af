/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* Token-row access for the AVX-512 kernels (include only from files built
 * with the AVX-512 flags): rows_avx2.h's helpers plus 16-wide loads. */
#ifndef LSHMOE_KERNELS_CPU_X86_ROWS_AVX512_H
#define LSHMOE_KERNELS_CPU_X86_ROWS_AVX512_H

#include "kernels/cpu/x86/rows_avx2.h"

/* 16 elements of row x from element i (unaligned). */
LSHMOE_KN_INLINE __m512 lshmoe_kn_load16(const unsigned char *x, size_t i, lshmoe_dtype_t dt)
{
    if (dt == LSHMOE_DTYPE_FP32)
        return _mm512_loadu_ps(x + 4 * i);
    __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)(x + 2 * i));
    if (dt == LSHMOE_DTYPE_BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    return _mm512_cvtph_ps(h);
}

/* Elements i .. i + k - 1 (k < 16) of row x, the other lanes 0. */
LSHMOE_KN_INLINE __m512 lshmoe_kn_load_part(const unsigned char *x, size_t i, size_t k,
                                            lshmoe_dtype_t dt)
{
    __mmask16 m = (__mmask16)((1u << k) - 1u);
    if (dt == LSHMOE_DTYPE_FP32)
        return _mm512_maskz_loadu_ps(m, x + 4 * i);
    __m256i h = _mm256_maskz_loadu_epi16(m, x + 2 * i);
    if (dt == LSHMOE_DTYPE_BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    return _mm512_cvtph_ps(h);
}

/* Stores the lanes of v in mask k (a prefix) at element i of row x, as
 * lshmoe_kn_store8() stores 8 (rows_avx2.h). */
LSHMOE_KN_INLINE void lshmoe_kn_store_part16(unsigned char *x, size_t i, __m512 v, __mmask16 k,
                                             lshmoe_dtype_t dt)
{
    if (dt == LSHMOE_DTYPE_FP32) {
        _mm512_mask_storeu_ps(x + 4 * i, k, v);
        return;
    }
    if (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & k) {
        float t[16];
        _mm512_storeu_ps(t, v);
        lshmoe_row_from_f32(t, (size_t)__builtin_popcount(k), dt, x + 2 * i);
        return;
    }
    __m256i h;
    if (dt == LSHMOE_DTYPE_BF16) {
        __m512i u = _mm512_castps_si512(v);
        __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
        u = _mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff)));
        h = _mm512_cvtepi32_epi16(_mm512_srli_epi32(u, 16));
    } else {
        h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    }
    _mm256_mask_storeu_epi16(x + 2 * i, k, h);
}

#endif /* LSHMOE_KERNELS_CPU_X86_ROWS_AVX512_H */
