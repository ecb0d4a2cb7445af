/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* A step the AVX2 and AVX-512 row quantizers share (include only from
 * files built with the AVX2 flags or above). */
#ifndef LSHMOE_KERNELS_CPU_X86_QUANT_X86_H
#define LSHMOE_KERNELS_CPU_X86_QUANT_X86_H

#include <immintrin.h>

/*
 * The errors of 4 candidate scales of a low-bit block from their 8 lane
 * partials p[c]: e[c] = ((p[c][0] + p[c][1]) + p[c][2]) + ... + p[c][7],
 * the reference's order (quant_ref.h, lshmoe_qr_block_codes, whose sum
 * starts at 0 and 0 + p = p exactly), for the 4 scales at once: the
 * partials are transposed so that one 4-lane add does step k of all four.
 */
static inline __attribute__((always_inline)) void
lshmoe_kn_lane_sums4(const __m256 p[4], float e[4])
{
    __m256 t0 = _mm256_unpacklo_ps(p[0], p[1]); /* p0[0] p1[0] p0[1] p1[1] | [4] [5] */
    __m256 t1 = _mm256_unpackhi_ps(p[0], p[1]); /* p0[2] p1[2] p0[3] p1[3] | [6] [7] */
    __m256 t2 = _mm256_unpacklo_ps(p[2], p[3]);
    __m256 t3 = _mm256_unpackhi_ps(p[2], p[3]);
    __m256 k0 = _mm256_shuffle_ps(t0, t2, 0x44); /* lane k = 0 | 4 of p0..p3 */
    __m256 k1 = _mm256_shuffle_ps(t0, t2, 0xee); /* 1 | 5 */
    __m256 k2 = _mm256_shuffle_ps(t1, t3, 0x44); /* 2 | 6 */
    __m256 k3 = _mm256_shuffle_ps(t1, t3, 0xee); /* 3 | 7 */
    __m128 s = _mm256_castps256_ps128(k0);
    s = _mm_add_ps(s, _mm256_castps256_ps128(k1));
    s = _mm_add_ps(s, _mm256_castps256_ps128(k2));
    s = _mm_add_ps(s, _mm256_castps256_ps128(k3));
    s = _mm_add_ps(s, _mm256_extractf128_ps(k0, 1));
    s = _mm_add_ps(s, _mm256_extractf128_ps(k1, 1));
    s = _mm_add_ps(s, _mm256_extractf128_ps(k2, 1));
    s = _mm_add_ps(s, _mm256_extractf128_ps(k3, 1));
    _mm_storeu_ps(e, s);
}

#endif /* LSHMOE_KERNELS_CPU_X86_QUANT_X86_H */
