/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Cluster means and the quality guard's sums in one pass, with AVX2: the
 * AVX-512 kernel's method (centroids_guard_avx512.c, whose comment gives
 * the argument for bit-identical rows and for the sums' precision), eight
 * lanes wide and with the 16 registers AVX2 has: a cluster of two or more
 * is summed 64 columns at a time in 8 registers. AVX2 has no masked
 * 16-bit loads and stores, so the last hidden % 8 elements of a row are
 * taken one by one (the reference's additions, division and conversion;
 * their squares and dot products in fp64).
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/cpu/cluster_isa.h"
#include "kernels/cpu/guard_isa.h"
#include "kernels/cpu/x86/rows_avx2.h"
#include "lshmoe/common/dtype.h"

#define ALWAYS_INLINE LSHMOE_KN_INLINE
#define BLOCK 8 /* registers of sums per pass over a cluster's members */
#define ESIZE(dt) ((size_t)((dt) == LSHMOE_DTYPE_FP32 ? 4 : 2)) /* float dtypes */

/* The guard's running sums: fp64 lanes (lo: lanes 0-3, hi: 4-7) for the
 * vector columns, fp64 scalars for the last hidden % 8. */
typedef struct {
    __m256d den_lo, den_hi;     /* ||x||^2, every token                 */
    __m256d multi_lo, multi_hi; /* ||x||^2, tokens of clusters of 2+    */
    __m256d sub_lo, sub_hi;     /* 2 c.S - d ||c||^2, clusters of 2+    */
    __m256 mx;                  /* max |x_e| over the segment           */
    double den_t, multi_t, sub_t;
    float mx_t;
    int nan_mean;               /* a mean held NaN                      */
} gsums_t;

ALWAYS_INLINE void add_wide(__m256d *lo, __m256d *hi, __m256 v)
{
    *lo = _mm256_add_pd(*lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    *hi = _mm256_add_pd(*hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

ALWAYS_INLINE __m256 abs8(__m256 v)
{
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
}

/* Mean v of 8 elements, rounded as the reference rounds, into out (element
 * e); returns the rounded values as fp32. */
ALWAYS_INLINE __m256 store_mean(__m256 v, size_t e, lshmoe_dtype_t dt, unsigned char *out,
                                int *nan_mean)
{
    if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0) {
        float tmp[8];
        _mm256_storeu_ps(tmp, v);
        lshmoe_row_from_f32(tmp, 8, dt, out + ESIZE(dt) * e);
        *nan_mean = 1;
        return _mm256_setzero_ps();
    }
    if (dt == LSHMOE_DTYPE_FP32) {
        _mm256_storeu_ps((float *)(void *)(out + 4 * e), v);
        return v;
    }
    if (dt == LSHMOE_DTYPE_BF16) {
        const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
        __m256i u = _mm256_castps_si256(v);
        __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
        u = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, bias), lsb), 16);
        __m128i p = _mm_packus_epi32(_mm256_castsi256_si128(u), _mm256_extracti128_si256(u, 1));
        _mm_storeu_si128((__m128i *)(void *)(out + 2 * e), p);
        return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
    }
    __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128((__m128i *)(void *)(out + 2 * e), h);
    return _mm256_cvtph_ps(h);
}

/* Columns e .. e + 8 nv of a cluster of d >= 2 members (nv <= BLOCK). */
ALWAYS_INLINE void cluster_cols(const unsigned char *tok, size_t row_bytes, lshmoe_dtype_t dt,
                                const uint32_t *mem, uint32_t d, size_t e, int nv,
                                unsigned char *out, gsums_t *g)
{
    __m256 a[BLOCK];
    __m256 mx = g->mx;
    __m256d mlo = g->multi_lo, mhi = g->multi_hi;
#pragma GCC unroll 8
    for (int r = 0; r < nv; r++)
        a[r] = _mm256_set1_ps(-0.0f);
    for (uint32_t t = 0; t < d; t++) {
        const unsigned char *x = tok + (size_t)mem[t] * row_bytes;
        __m256 n0 = _mm256_setzero_ps(), n1 = n0;
#pragma GCC unroll 8
        for (int r = 0; r < nv; r++) {
            __m256 v = lshmoe_kn_load8(x, e + 8 * (size_t)r, dt);
            a[r] = _mm256_add_ps(a[r], v);
            if (r & 1)
                n1 = _mm256_fmadd_ps(v, v, n1);
            else
                n0 = _mm256_fmadd_ps(v, v, n0);
            mx = _mm256_max_ps(mx, abs8(v));
        }
        add_wide(&mlo, &mhi, _mm256_add_ps(n0, n1));
    }
    g->mx = mx;
    g->multi_lo = mlo;
    g->multi_hi = mhi;
    const __m256 dv = _mm256_set1_ps((float)d);
    __m256 cs = _mm256_setzero_ps(), cc = cs;
#pragma GCC unroll 8
    for (int r = 0; r < nv; r++) {
        __m256 c = store_mean(_mm256_div_ps(a[r], dv), e + 8 * (size_t)r, dt, out, &g->nan_mean);
        cs = _mm256_fmadd_ps(c, a[r], cs);
        cc = _mm256_fmadd_ps(c, c, cc);
    }
    __m256d lo = _mm256_setzero_pd(), hi = lo, clo = lo, chi = lo;
    add_wide(&lo, &hi, cs);
    add_wide(&clo, &chi, cc);
    const __m256d two = _mm256_set1_pd(2.0), dd = _mm256_set1_pd((double)d);
    g->sub_lo = _mm256_add_pd(g->sub_lo, _mm256_fnmadd_pd(dd, clo, _mm256_mul_pd(two, lo)));
    g->sub_hi = _mm256_add_pd(g->sub_hi, _mm256_fnmadd_pd(dd, chi, _mm256_mul_pd(two, hi)));
}

/* The last k < 8 columns (from e) of a cluster of d >= 2, element by
 * element as the reference adds, divides and converts them. */
static void cluster_tail(const unsigned char *tok, size_t row_bytes, lshmoe_dtype_t dt,
                         const uint32_t *mem, uint32_t d, size_t e, size_t k,
                         unsigned char *out, gsums_t *g)
{
    float s[8], m[8];
    for (size_t j = 0; j < k; j++)
        s[j] = -0.0f;
    for (uint32_t t = 0; t < d; t++) {
        const unsigned char *x = tok + (size_t)mem[t] * row_bytes;
        for (size_t j = 0; j < k; j++) {
            float v = lshmoe_kn_elem(x, e + j, dt);
            s[j] += v;
            g->multi_t += (double)v * (double)v;
            g->mx_t = fmaxf(g->mx_t, fabsf(v));
        }
    }
    for (size_t j = 0; j < k; j++) {
        m[j] = s[j] / (float)d;
        g->nan_mean |= isnan(m[j]);
    }
    lshmoe_row_from_f32(m, k, dt, out + ESIZE(dt) * e);
    for (size_t j = 0; j < k; j++) {
        double c = (double)lshmoe_kn_elem(out, e + j, dt);
        g->sub_t += 2.0 * c * (double)s[j] - (double)d * c * c;
    }
}

ALWAYS_INLINE void cluster_row(const unsigned char *tok, lshmoe_dtype_t dt, size_t hidden,
                               const uint32_t *mem, uint32_t d, unsigned char *out,
                               gsums_t *g)
{
    const size_t row_bytes = hidden * ESIZE(dt);
    size_t e = 0;
    for (; e + 8 * BLOCK <= hidden; e += 8 * BLOCK)
        cluster_cols(tok, row_bytes, dt, mem, d, e, BLOCK, out, g);
    switch ((hidden - e) / 8) {
#define REST(n) case n: cluster_cols(tok, row_bytes, dt, mem, d, e, n, out, g); break;
    REST(1) REST(2) REST(3) REST(4) REST(5) REST(6) REST(7)
#undef REST
    default: break; /* 0 */
    }
    e = hidden / 8 * 8;
    if (e < hidden)
        cluster_tail(tok, row_bytes, dt, mem, d, e, hidden - e, out, g);
}

/* A cluster of one: its token copied byte for byte, its squared norm added
 * to den. */
ALWAYS_INLINE void single_row(const unsigned char *x, lshmoe_dtype_t dt, size_t hidden,
                              unsigned char *out, gsums_t *g)
{
    __m256 n0 = _mm256_setzero_ps(), n1 = n0, mx = g->mx;
    size_t e = 0;
    for (; e + 16 <= hidden; e += 16) {
        __m256 v0, v1;
        if (dt == LSHMOE_DTYPE_FP32) {
            v0 = _mm256_loadu_ps((const float *)(const void *)(x + 4 * e));
            v1 = _mm256_loadu_ps((const float *)(const void *)(x + 4 * e + 32));
            _mm256_storeu_ps((float *)(void *)(out + 4 * e), v0);
            _mm256_storeu_ps((float *)(void *)(out + 4 * e + 32), v1);
        } else {
            __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)(x + 2 * e));
            _mm256_storeu_si256((__m256i *)(void *)(out + 2 * e), h);
            v0 = lshmoe_kn_load8(x, e, dt); /* from L1: the line just read */
            v1 = lshmoe_kn_load8(x, e + 8, dt);
        }
        n0 = _mm256_fmadd_ps(v0, v0, n0);
        n1 = _mm256_fmadd_ps(v1, v1, n1);
        mx = _mm256_max_ps(mx, _mm256_max_ps(abs8(v0), abs8(v1)));
    }
    if (e + 8 <= hidden) {
        __m256 v = lshmoe_kn_load8(x, e, dt);
        memcpy(out + ESIZE(dt) * e, x + ESIZE(dt) * e, 8 * ESIZE(dt));
        n0 = _mm256_fmadd_ps(v, v, n0);
        mx = _mm256_max_ps(mx, abs8(v));
        e += 8;
    }
    g->mx = mx;
    add_wide(&g->den_lo, &g->den_hi, _mm256_add_ps(n0, n1));
    if (e < hidden) {
        memcpy(out + ESIZE(dt) * e, x + ESIZE(dt) * e, (hidden - e) * ESIZE(dt));
        for (; e < hidden; e++) {
            float v = lshmoe_kn_elem(x, e, dt);
            g->den_t += (double)v * (double)v;
            g->mx_t = fmaxf(g->mx_t, fabsf(v));
        }
    }
}

#include "kernels/cpu/x86/centroids_guard_rows.h"

static double hsum(__m256d a, __m256d b)
{
    __m256d s = _mm256_add_pd(a, b);
    __m128d q = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    return _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q)));
}

static float hmax(__m256 v)
{
    __m128 q = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_max_ps(q, _mm_movehl_ps(q, q));
    q = _mm_max_ss(q, _mm_shuffle_ps(q, q, 1));
    return _mm_cvtss_f32(q);
}

void lshmoe_kn_centroids_guard_avx2(LSHMOE_KN_CENTROIDS_ARGS, double *num_p, double *den_p)
{
    *num_p = 0.0;
    *den_p = 0.0;
    if (!lshmoe_dtype_is_float(dtype) || nclusters == 0)
        return;
    if (!cg_lists_fit(nclusters, hidden, ntokens)) {
        lshmoe_kn_centroids_avx2(tokens, dtype, hidden, ntokens, cluster_of, nclusters, rows,
                                 sizes, acc);
        lshmoe_kn_guard_sums_avx2(tokens, rows, dtype, hidden, ntokens, cluster_of, sizes,
                                  num_p, den_p);
        return;
    }
    /* member lists by counting sort, as the AVX-512 kernel makes them */
    uint32_t *end = (uint32_t *)(void *)acc, *mem = end + nclusters;
    lshmoe_kn_member_lists(cluster_of, ntokens, nclusters, sizes, end, mem);

    gsums_t g = {.den_lo = _mm256_setzero_pd(), .den_hi = _mm256_setzero_pd(),
                 .multi_lo = _mm256_setzero_pd(), .multi_hi = _mm256_setzero_pd(),
                 .sub_lo = _mm256_setzero_pd(), .sub_hi = _mm256_setzero_pd(),
                 .mx = _mm256_setzero_ps()};
    cg_all_rows(tokens, dtype, hidden, nclusters, end, mem, rows, &g);

    double multi = hsum(g.multi_lo, g.multi_hi) + g.multi_t;
    double den = hsum(g.den_lo, g.den_hi) + g.den_t + multi;
    double sub = hsum(g.sub_lo, g.sub_hi) + g.sub_t;
    if (!cg_finish(multi, den, sub, fmaxf(hmax(g.mx), g.mx_t), g.nan_mean, num_p, den_p))
        lshmoe_kn_guard_sums_avx2(tokens, rows, dtype, hidden, ntokens, cluster_of, sizes,
                                  num_p, den_p);
}
