/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Four 8-lane partial sums reduced at once, each in lane order (include
 * only from files built with AVX, or wider, enabled). The low-bit
 * quantizers (quant_avx2.c, quant_avx512.c) measure up to four clip scales
 * per block; summing each scale's 8 partials one scalar add after the
 * other was a chain of 4 x 8 dependent additions per block. Transposing
 * the four vectors lets one 4-wide add do step k of all four chains: the
 * same fp32 additions, in the same order, as the scalar reference's
 * e += part[0]; ...; e += part[7] (kernels/cpu/quant_ref.h).
 */
#ifndef LSHMOE_KERNELS_CPU_X86_LANE_SUMS_H
#define LSHMOE_KERNELS_CPU_X86_LANE_SUMS_H

#include <immintrin.h>

/* Lane c of the result: start[c] + p[c][0] + p[c][1] + ... + p[c][7],
 * added left to right. */
static inline __attribute__((always_inline)) __m128 lshmoe_kn_lane_sums4(const __m256 p[4],
                                                                         __m128 start)
{
    __m128 a0 = _mm256_castps256_ps128(p[0]), a1 = _mm256_castps256_ps128(p[1]);
    __m128 a2 = _mm256_castps256_ps128(p[2]), a3 = _mm256_castps256_ps128(p[3]);
    __m128 b0 = _mm256_extractf128_ps(p[0], 1), b1 = _mm256_extractf128_ps(p[1], 1);
    __m128 b2 = _mm256_extractf128_ps(p[2], 1), b3 = _mm256_extractf128_ps(p[3], 1);
    _MM_TRANSPOSE4_PS(a0, a1, a2, a3); /* a_k: lane k of each vector */
    _MM_TRANSPOSE4_PS(b0, b1, b2, b3); /* b_k: lane 4 + k            */
    __m128 s = _mm_add_ps(start, a0);
    s = _mm_add_ps(s, a1);
    s = _mm_add_ps(s, a2);
    s = _mm_add_ps(s, a3);
    s = _mm_add_ps(s, b0);
    s = _mm_add_ps(s, b1);
    s = _mm_add_ps(s, b2);
    return _mm_add_ps(s, b3);
}

#endif /* LSHMOE_KERNELS_CPU_X86_LANE_SUMS_H */
