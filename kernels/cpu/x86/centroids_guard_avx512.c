/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Cluster means and the quality guard's sums in one pass, with AVX-512 (the
 * reference is lshmoe_kn_centroids_scalar() followed by
 * lshmoe_kn_guard_sums_scalar(): two passes, fp64).
 *
 * Clusters are visited in order, with their members listed by a counting
 * sort (in the workspace `acc`). A cluster of two or more is summed 256
 * columns at a time in 16 registers, member after member in token order,
 * and its mean is divided, rounded and written from those registers: no
 * fp32 sum row goes through memory, which is what made the token-order
 * kernel (centroids_avx512.c) read and write 8 bytes of `acc` per element
 * per member. A cluster of one is copied byte for byte while its squared
 * norm is taken. The rows are the reference's bit for bit (every sum
 * starts at -0.0f and adds the members in token order; division; the
 * reference's rounding, and its conversion for a chunk that holds NaN).
 *
 * The guard's sums come from the identity, per cluster k of d tokens with
 * fp32 sum S and rounded mean c,
 *     sum ||x_i - c||^2 = sum ||x_i||^2 - 2 c.S + d ||c||^2,
 * with every product in fp32 lanes and every sum across a block of 256
 * columns, a token or a cluster in fp64 lanes: nothing is reduced across
 * lanes until the end. Against the reference's fp64 sums the difference is
 * rounding of S and of the fp32 products: a few times 1e-6 of
 * sum ||x_i||^2 times the cluster size, far below any useful MAX_ERROR (the
 * guard compares num / den with MAX_ERROR^2). To keep the fp32 squares
 * away from overflow, a segment whose largest |x_e| is above 2^30 or not
 * finite, or whose largest |x_e| is below 2^-30 (and not 0: a margin that
 * keeps every product of the segment's largest values far from fp32's
 * subnormal range), or a mean that needs the reference's NaN rounding,
 * gets its sums from the exact two-pass kernel instead
 * (lshmoe_kn_guard_sums_avx512). Tokens much smaller than the segment's
 * largest may lose squares to underflow; what they lose is below 2^-126
 * per square against a den of at least 2^-60.
 * When `acc` cannot hold the member lists (nclusters * hidden floats
 * fewer than ntokens + nclusters + 1 words, i.e. tiny rows), the two
 * kernels run one after the other.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu/cluster_isa.h"
#include "kernels/cpu/guard_isa.h"
#include "kernels/cpu/x86/rows_avx512.h"
#include "lshmoe/common/dtype.h"

#define ALWAYS_INLINE LSHMOE_KN_INLINE
#define BLOCK 16 /* registers of sums per pass over a cluster's members */
#define ESIZE(dt) ((size_t)((dt) == LSHMOE_DTYPE_FP32 ? 4 : 2)) /* float dtypes */

/* The guard's running sums, in fp64 lanes (lo: lanes 0-7, hi: 8-15). */
typedef struct {
    __m512d den_lo, den_hi;     /* ||x||^2, every token                   */
    __m512d multi_lo, multi_hi; /* ||x||^2, tokens of clusters of 2+      */
    __m512d sub_lo, sub_hi;     /* 2 c.S - d ||c||^2, clusters of 2+      */
    __m512 mx;                  /* max |x_e| over the segment             */
    int nan_mean;               /* a mean took the reference's NaN path   */
} gsums_t;

ALWAYS_INLINE void add_wide(__m512d *lo, __m512d *hi, __m512 v)
{
    *lo = _mm512_add_pd(*lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    *hi = _mm512_add_pd(*hi, _mm512_cvtps_pd(_mm256_castpd_ps(
                                 _mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
}

/* k (1..16) elements of row x from element e: all 16 when k is 16. */
ALWAYS_INLINE __m512 load_k(const unsigned char *x, size_t e, size_t k, lshmoe_dtype_t dt)
{
    return k == 16 ? lshmoe_kn_load16(x, e, dt) : lshmoe_kn_load_part(x, e, k, dt);
}

/* Mean v of one chunk of k elements, rounded as the reference rounds, into
 * out (element e); returns the rounded values as fp32 (0 where masked). */
ALWAYS_INLINE __m512 store_mean(__m512 v, size_t e, size_t k, lshmoe_dtype_t dt,
                                unsigned char *out, int *nan_mean)
{
    const __mmask16 m = (__mmask16)(k == 16 ? 0xffffu : (1u << k) - 1u);
    if (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & m) {
        float tmp[16];
        _mm512_storeu_ps(tmp, v);
        lshmoe_row_from_f32(tmp, k, dt, out + ESIZE(dt) * e);
        *nan_mean = 1;
        return _mm512_setzero_ps();
    }
    __m512 r;
    if (dt == LSHMOE_DTYPE_FP32) {
        r = v;
        _mm512_mask_storeu_ps(out + 4 * e, m, v);
    } else if (dt == LSHMOE_DTYPE_BF16) {
        const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff);
        __m512i u = _mm512_castps_si512(v);
        __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
        u = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, bias), lsb), 16);
        _mm256_mask_storeu_epi16(out + 2 * e, m, _mm512_cvtepi32_epi16(u));
        r = _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
    } else {
        __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(out + 2 * e, m, h);
        r = _mm512_cvtph_ps(h);
    }
    return _mm512_maskz_mov_ps(m, r);
}

/* Columns e .. e + 16 * (nv - 1) + klast of a cluster of d >= 2 members
 * (nv <= BLOCK registers, the last holding klast elements): sums, mean into
 * out, and the guard's terms. */
ALWAYS_INLINE void cluster_cols(const unsigned char *tok, size_t row_bytes, lshmoe_dtype_t dt,
                                const uint32_t *mem, uint32_t d, size_t e, int nv,
                                size_t klast, unsigned char *out, gsums_t *g)
{
    __m512 a[BLOCK];
    __m512 mx = g->mx;
    __m512d mlo = g->multi_lo, mhi = g->multi_hi;
#pragma GCC unroll 16
    for (int r = 0; r < nv; r++)
        a[r] = _mm512_set1_ps(-0.0f);
    for (uint32_t t = 0; t < d; t++) {
        const unsigned char *x = tok + (size_t)mem[t] * row_bytes;
        __m512 n0 = _mm512_setzero_ps(), n1 = n0;
#pragma GCC unroll 16
        for (int r = 0; r < nv; r++) {
            __m512 v = load_k(x, e + 16 * (size_t)r, r == nv - 1 ? klast : 16, dt);
            a[r] = _mm512_add_ps(a[r], v);
            if (r & 1)
                n1 = _mm512_fmadd_ps(v, v, n1);
            else
                n0 = _mm512_fmadd_ps(v, v, n0);
            mx = _mm512_max_ps(mx, _mm512_abs_ps(v));
        }
        add_wide(&mlo, &mhi, _mm512_add_ps(n0, n1));
    }
    g->mx = mx;
    g->multi_lo = mlo;
    g->multi_hi = mhi;
    const __m512 dv = _mm512_set1_ps((float)d);
    __m512 cs = _mm512_setzero_ps(), cc = cs;
#pragma GCC unroll 16
    for (int r = 0; r < nv; r++) {
        size_t k = r == nv - 1 ? klast : 16;
        __m512 c = store_mean(_mm512_div_ps(a[r], dv), e + 16 * (size_t)r, k, dt, out,
                              &g->nan_mean);
        cs = _mm512_fmadd_ps(c, a[r], cs);
        cc = _mm512_fmadd_ps(c, c, cc);
    }
    /* sub += 2 cs - d cc, in fp64 lanes */
    __m512d lo = _mm512_setzero_pd(), hi = lo, clo = lo, chi = lo;
    add_wide(&lo, &hi, cs);
    add_wide(&clo, &chi, cc);
    const __m512d two = _mm512_set1_pd(2.0), dd = _mm512_set1_pd((double)d);
    g->sub_lo = _mm512_add_pd(g->sub_lo, _mm512_fnmadd_pd(dd, clo, _mm512_mul_pd(two, lo)));
    g->sub_hi = _mm512_add_pd(g->sub_hi, _mm512_fnmadd_pd(dd, chi, _mm512_mul_pd(two, hi)));
}

ALWAYS_INLINE void cluster_row(const unsigned char *tok, lshmoe_dtype_t dt, size_t hidden,
                               const uint32_t *mem, uint32_t d, unsigned char *out,
                               gsums_t *g)
{
    const size_t row_bytes = hidden * ESIZE(dt);
    size_t e = 0;
    for (; e + 16 * BLOCK <= hidden; e += 16 * BLOCK)
        cluster_cols(tok, row_bytes, dt, mem, d, e, BLOCK, 16, out, g);
    if (e == hidden)
        return;
    /* the last 1 .. 16 * BLOCK - 1 columns in one pass over the members:
     * a register count known at compile time keeps the sums in registers */
    size_t nv = (hidden - e + 15) / 16, klast = hidden - e - 16 * (nv - 1);
    switch (nv) {
#define TAIL(n) case n: cluster_cols(tok, row_bytes, dt, mem, d, e, n, klast, out, g); break;
    TAIL(1) TAIL(2) TAIL(3) TAIL(4) TAIL(5) TAIL(6) TAIL(7) TAIL(8)
    TAIL(9) TAIL(10) TAIL(11) TAIL(12) TAIL(13) TAIL(14) TAIL(15)
#undef TAIL
    default: break; /* nv < BLOCK: not reached */
    }
}

/* A cluster of one: its token copied byte for byte (NaN payloads
 * included), its squared norm added to den. */
ALWAYS_INLINE void single_row(const unsigned char *x, lshmoe_dtype_t dt, size_t hidden,
                              unsigned char *out, gsums_t *g)
{
    __m512 n0 = _mm512_setzero_ps(), n1 = n0, mx = g->mx;
    size_t e = 0;
    for (; e + 32 <= hidden; e += 32) {
        __m512 v0, v1;
        if (dt == LSHMOE_DTYPE_FP32) {
            v0 = _mm512_loadu_ps(x + 4 * e);
            v1 = _mm512_loadu_ps(x + 4 * e + 64);
            _mm512_storeu_ps(out + 4 * e, v0);
            _mm512_storeu_ps(out + 4 * e + 64, v1);
        } else {
            __m512i h = _mm512_loadu_si512(x + 2 * e);
            _mm512_storeu_si512(out + 2 * e, h);
            v0 = lshmoe_kn_load16(x, e, dt); /* from L1: the line just read */
            v1 = lshmoe_kn_load16(x, e + 16, dt);
        }
        n0 = _mm512_fmadd_ps(v0, v0, n0);
        n1 = _mm512_fmadd_ps(v1, v1, n1);
        mx = _mm512_max_ps(mx, _mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    }
    for (; e < hidden; e += 16) {
        size_t k = hidden - e < 16 ? hidden - e : 16;
        __mmask16 m = (__mmask16)(k == 16 ? 0xffffu : (1u << k) - 1u);
        __m512 v = load_k(x, e, k, dt);
        if (dt == LSHMOE_DTYPE_FP32)
            _mm512_mask_storeu_ps(out + 4 * e, m, v);
        else
            _mm256_mask_storeu_epi16(out + 2 * e, m, _mm256_maskz_loadu_epi16(m, x + 2 * e));
        n0 = _mm512_fmadd_ps(v, v, n0);
        mx = _mm512_max_ps(mx, _mm512_abs_ps(v));
    }
    g->mx = mx;
    add_wide(&g->den_lo, &g->den_hi, _mm512_add_ps(n0, n1));
}

#include "kernels/cpu/x86/centroids_guard_rows.h"

void lshmoe_kn_centroids_guard_avx512(LSHMOE_KN_CENTROIDS_ARGS, double *num_p, double *den_p)
{
    *num_p = 0.0;
    *den_p = 0.0;
    if (!lshmoe_dtype_is_float(dtype) || nclusters == 0)
        return;
    if (!cg_lists_fit(nclusters, hidden, ntokens)) {
        lshmoe_kn_centroids_avx512(tokens, dtype, hidden, ntokens, cluster_of, nclusters, rows,
                                   sizes, acc);
        lshmoe_kn_guard_sums_avx512(tokens, rows, dtype, hidden, ntokens, cluster_of, sizes,
                                    num_p, den_p);
        return;
    }
    /* member lists by counting sort (in the workspace) */
    uint32_t *end = (uint32_t *)(void *)acc, *mem = end + nclusters;
    lshmoe_kn_member_lists(cluster_of, ntokens, nclusters, sizes, end, mem);

    gsums_t g = {.den_lo = _mm512_setzero_pd(), .den_hi = _mm512_setzero_pd(),
                 .multi_lo = _mm512_setzero_pd(), .multi_hi = _mm512_setzero_pd(),
                 .sub_lo = _mm512_setzero_pd(), .sub_hi = _mm512_setzero_pd(),
                 .mx = _mm512_setzero_ps(), .nan_mean = 0};
    cg_all_rows(tokens, dtype, hidden, nclusters, end, mem, rows, &g);

    double multi = _mm512_reduce_add_pd(_mm512_add_pd(g.multi_lo, g.multi_hi));
    double den = _mm512_reduce_add_pd(_mm512_add_pd(g.den_lo, g.den_hi)) + multi;
    double sub = _mm512_reduce_add_pd(_mm512_add_pd(g.sub_lo, g.sub_hi));
    if (!cg_finish(multi, den, sub, _mm512_reduce_max_ps(g.mx), g.nan_mean, num_p, den_p))
        lshmoe_kn_guard_sums_avx512(tokens, rows, dtype, hidden, ntokens, cluster_of, sizes,
                                    num_p, den_p);
}
