/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The refinement step's four-distance kernel with AVX2 (refine_isa.h),
 * built with -ffp-contract=off. The reference's 8 lane partials are one
 * __m256, so each lane adds the same products in the same order. What
 * costs at small widths (GloVe: 100) is not the products but the two
 * in-order sums of 8 lanes per distance, chains of 8 dependent additions:
 * the four distances' sums are taken together (lane_sums.h: one 4-wide
 * add per step, each lane the reference's chain), and so is the tail.
 */
#include <immintrin.h>

#include "kernels/cpu/refine_isa.h"
#include "kernels/cpu/x86/lane_sums.h"

/* p[t] += (a[t] - b[t])^2 over the elements [i, i + 8), t = 0..3. */
static inline __attribute__((always_inline)) void step8(__m256 p[4], const float *const a[4],
                                                        const float *const b[4], size_t i)
{
    for (int t = 0; t < 4; t++) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a[t] + i), _mm256_loadu_ps(b[t] + i));
        p[t] = _mm256_add_ps(p[t], _mm256_mul_ps(d, d));
    }
}

/*
 * Lane t: refine.c's dist2(a[t], b[t], n, bound[t]). The halfway test
 * compares lane t's partial sum with its bound, which is the reference's
 * test (a bound of INFINITY or NaN never stops either way); a lane that
 * stops returns that partial sum. When all four stop, the rest is skipped;
 * otherwise the stopped lanes' full sums are computed and discarded.
 */
void lshmoe_kn_refine_dist4_avx2(LSHMOE_KN_REFINE_DIST4_ARGS)
{
    __m256 p[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
    size_t i = 0, half = n / 16 * 8;
    __m128 lb = _mm_setzero_ps(), stopped = _mm_setzero_ps();
    for (; i < half; i += 8)
        step8(p, a, b, i);
    if (half > 0) {
        lb = lshmoe_kn_lane_sums4(p, _mm_setzero_ps());
        stopped = _mm_cmpgt_ps(lb, _mm_loadu_ps(bound));
        if (_mm_movemask_ps(stopped) == 0xf) {
            _mm_storeu_ps(d, lb);
            return;
        }
    }
    for (; i + 8 <= n; i += 8)
        step8(p, a, b, i);
    __m128 s = _mm_setzero_ps();
    for (; i < n; i++) {
        __m128 x = _mm_setr_ps(a[0][i], a[1][i], a[2][i], a[3][i]);
        __m128 y = _mm_setr_ps(b[0][i], b[1][i], b[2][i], b[3][i]);
        __m128 e = _mm_sub_ps(x, y);
        s = _mm_add_ps(s, _mm_mul_ps(e, e));
    }
    _mm_storeu_ps(d, _mm_blendv_ps(lshmoe_kn_lane_sums4(p, s), lb, stopped));
}
