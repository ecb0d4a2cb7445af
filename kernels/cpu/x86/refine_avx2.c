/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The refinement step's distance loop with AVX2 (refine_isa.h), built
 * with -ffp-contract=off. The reference's 8 lane partials are one __m256,
 * so each lane adds the same products in the same order. What costs at
 * small widths (GloVe: 100) is not the products but the two in-order sums
 * of 8 lanes per distance, chains of 8 dependent additions: the (member,
 * candidate) pairs go four at a time, and their four sums are taken
 * together (lane_sums.h: one 4-wide add per step, each lane the
 * reference's chain). Most clusters have one to three members, so pairs
 * fill the lanes where members alone would not.
 *
 * Four pairs share the bounds best[] held before them, although the
 * reference bounds a member's later candidate by what its earlier ones
 * found. The decisions are the same: a bound only stops a distance that
 * cannot be below it, and the full distance is never below the partial
 * sum the halfway test sees (refine.c's dist2), so "stopped, or not below
 * the older, larger bound" implies "not below the newer one" either way;
 * a pair that did not stop carries its full distance, the reference's
 * value, into the in-order comparison with the current best[].
 */
#include <immintrin.h>
#include <math.h>

#include "kernels/cpu/refine_isa.h"
#include "kernels/cpu/x86/lane_sums.h"

/* s + p[0] + ... + p[7], left to right, as the reference sums its lanes. */
static inline float lane_sum(__m256 p, float s)
{
    float part[8];
    _mm256_storeu_ps(part, p);
    for (int k = 0; k < 8; k++)
        s += part[k];
    return s;
}

/* refine.c's dist2, one row pair: the same value for every input. */
static float dist1(const float *a, const float *b, size_t n, float bound)
{
    __m256 p = _mm256_setzero_ps();
    size_t i = 0, half = n / 16 * 8;
    for (; i < half; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        p = _mm256_add_ps(p, _mm256_mul_ps(d, d));
    }
    if (half > 0 && bound < INFINITY) {
        float lb = lane_sum(p, 0.0f);
        if (lb > bound)
            return lb;
    }
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        p = _mm256_add_ps(p, _mm256_mul_ps(d, d));
    }
    float s = 0.0f;
    for (; i < n; i++) {
        float d = a[i] - b[i];
        s += d * d;
    }
    return lane_sum(p, s);
}

/*
 * dist2 of four row pairs (as[t], bs[t]), lane t bounded by lane t of
 * `bound` (bounded != 0; else no bound, as INFINITY). The halfway test
 * compares lane t's partial sum with its bound, which is the reference's
 * test (a bound of INFINITY or NaN never stops either way). *stop_p: bit
 * t set where lane t stopped; its value is then the partial sum, which
 * the caller ignores. When all four stop, the rest is skipped.
 */
static __m128 dist4(const float *const as[4], const float *const bs[4], size_t n,
                    __m128 bound, int bounded, int *stop_p)
{
    __m256 p[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
    size_t i = 0, half = n / 16 * 8;
    int stop = 0;
    for (; i < half; i += 8)
        for (int t = 0; t < 4; t++) {
            __m256 d = _mm256_sub_ps(_mm256_loadu_ps(as[t] + i), _mm256_loadu_ps(bs[t] + i));
            p[t] = _mm256_add_ps(p[t], _mm256_mul_ps(d, d));
        }
    if (half > 0 && bounded) {
        __m128 lb = lshmoe_kn_lane_sums4(p, _mm_setzero_ps());
        stop = _mm_movemask_ps(_mm_cmpgt_ps(lb, bound));
        if (stop == 0xf) {
            *stop_p = stop;
            return lb;
        }
    }
    for (; i + 8 <= n; i += 8)
        for (int t = 0; t < 4; t++) {
            __m256 d = _mm256_sub_ps(_mm256_loadu_ps(as[t] + i), _mm256_loadu_ps(bs[t] + i));
            p[t] = _mm256_add_ps(p[t], _mm256_mul_ps(d, d));
        }
    __m128 s = _mm_setzero_ps();
    for (; i < n; i++) {
        __m128 a = _mm_setr_ps(as[0][i], as[1][i], as[2][i], as[3][i]);
        __m128 b = _mm_setr_ps(bs[0][i], bs[1][i], bs[2][i], bs[3][i]);
        __m128 d = _mm_sub_ps(a, b);
        s = _mm_add_ps(s, _mm_mul_ps(d, d));
    }
    *stop_p = stop;
    return lshmoe_kn_lane_sums4(p, s);
}

/* One pair's outcome, in the reference's order of pairs. */
static inline void take(float d, uint32_t i, uint32_t cand, float *best, uint32_t *choice)
{
    if (choice == NULL) {
        best[i] = d;
    } else if (d < best[i]) {
        best[i] = d;
        choice[i] = cand;
    }
}

void lshmoe_kn_refine_members_avx2(LSHMOE_KN_REFINE_MEMBERS_ARGS)
{
    size_t v = 0, t = 0; /* the next pair: candidate v, member t */
    if (nmembers == 0)
        return;
    while (v < nnb) {
        const float *as[4], *bs[4];
        uint32_t tok[4], cand[4];
        float bnd[4], d[4];
        size_t k = 0;
        for (; k < 4 && v < nnb; k++) {
            tok[k] = members[t];
            cand[k] = nb[v];
            if (++t == nmembers) {
                t = 0;
                v++;
            }
        }
        if (k == 1) { /* the last pair alone */
            const float *xi = x + (size_t)tok[0] * hidden;
            const float *row = centroids + (size_t)cand[0] * hidden;
            take(dist1(xi, row, hidden, choice != NULL ? best[tok[0]] : INFINITY), tok[0],
                 cand[0], best, choice);
            return;
        }
        for (size_t q = 0; q < 4; q++) { /* spare lanes repeat the last pair */
            size_t r = q < k ? q : k - 1;
            as[q] = x + (size_t)tok[r] * hidden;
            bs[q] = centroids + (size_t)cand[r] * hidden;
            bnd[q] = choice != NULL ? best[tok[r]] : INFINITY;
        }
        int stop;
        _mm_storeu_ps(d, dist4(as, bs, hidden, _mm_loadu_ps(bnd), choice != NULL, &stop));
        for (size_t q = 0; q < k; q++)
            if (!(stop >> q & 1))
                take(d[q], tok[q], cand[q], best, choice);
    }
}
