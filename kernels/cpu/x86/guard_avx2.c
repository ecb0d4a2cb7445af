/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Quality-guard sums with AVX2 (kernels/cpu/guard.c is the reference):
 * elements widened to fp64, four lanes per register and two registers per
 * sum so that the FMA latency does not chain; a tail of hidden % 8 elements
 * in scalar fp64. Only the order of the additions differs from the
 * reference.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/cpu/guard_isa.h"
#include "kernels/cpu/x86/rows_avx2.h"
#include "lshmoe/common/dtype.h"

#define ALWAYS_INLINE LSHMOE_KN_INLINE

static double hsum(__m256d a, __m256d b)
{
    __m256d s = _mm256_add_pd(a, b);
    __m128d q = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    return _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q)));
}

ALWAYS_INLINE void sums_dt(const unsigned char *tok, const unsigned char *rows,
                           lshmoe_dtype_t dt, size_t hidden, size_t ntokens,
                           const uint32_t *cluster_of, const uint32_t *sizes,
                           double *num_p, double *den_p)
{
    const size_t row_bytes = hidden * (dt == LSHMOE_DTYPE_FP32 ? 4 : 2);
    const size_t vec_end = hidden / 8 * 8;
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < ntokens; i++) {
        const unsigned char *x = tok + i * row_bytes;
        const unsigned char *r = rows + (size_t)cluster_of[i] * row_bytes;
        const int multi = sizes[cluster_of[i]] > 1;
        __m256d n0 = _mm256_setzero_pd(), n1 = n0, d0 = n0, d1 = n0;
        if (multi) {
            for (size_t e = 0; e < vec_end; e += 8) {
                __m256 xv = lshmoe_kn_load8(x, e, dt), rv = lshmoe_kn_load8(r, e, dt);
                __m256d xl = _mm256_cvtps_pd(_mm256_castps256_ps128(xv));
                __m256d xh = _mm256_cvtps_pd(_mm256_extractf128_ps(xv, 1));
                __m256d dl = _mm256_sub_pd(xl, _mm256_cvtps_pd(_mm256_castps256_ps128(rv)));
                __m256d dh = _mm256_sub_pd(xh, _mm256_cvtps_pd(_mm256_extractf128_ps(rv, 1)));
                n0 = _mm256_fmadd_pd(xl, xl, n0);
                n1 = _mm256_fmadd_pd(xh, xh, n1);
                d0 = _mm256_fmadd_pd(dl, dl, d0);
                d1 = _mm256_fmadd_pd(dh, dh, d1);
            }
        } else {
            for (size_t e = 0; e < vec_end; e += 8) {
                __m256 xv = lshmoe_kn_load8(x, e, dt);
                __m256d xl = _mm256_cvtps_pd(_mm256_castps256_ps128(xv));
                __m256d xh = _mm256_cvtps_pd(_mm256_extractf128_ps(xv, 1));
                n0 = _mm256_fmadd_pd(xl, xl, n0);
                n1 = _mm256_fmadd_pd(xh, xh, n1);
            }
        }
        double nn = hsum(n0, n1), d = hsum(d0, d1);
        for (size_t e = vec_end; e < hidden; e++) {
            double xe = lshmoe_kn_elem(x, e, dt);
            nn += xe * xe;
            if (multi) {
                double diff = xe - lshmoe_kn_elem(r, e, dt);
                d += diff * diff;
            }
        }
        if (!isfinite(nn))
            continue;
        den += nn;
        if (multi)
            num += d;
    }
    *num_p = num;
    *den_p = den;
}

void lshmoe_kn_guard_sums_avx2(LSHMOE_KN_GUARD_ARGS)
{
    if (dtype == LSHMOE_DTYPE_FP32)
        sums_dt(tokens, rows, LSHMOE_DTYPE_FP32, hidden, ntokens, cluster_of, sizes, num_p,
                den_p);
    else if (dtype == LSHMOE_DTYPE_BF16)
        sums_dt(tokens, rows, LSHMOE_DTYPE_BF16, hidden, ntokens, cluster_of, sizes, num_p,
                den_p);
    else
        sums_dt(tokens, rows, LSHMOE_DTYPE_FP16, hidden, ntokens, cluster_of, sizes, num_p,
                den_p);
}
