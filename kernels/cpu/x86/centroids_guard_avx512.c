/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Cluster means and the quality guard's sums in one pass over the tokens,
 * with AVX-512 (the reference is lshmoe_kn_centroids_scalar() followed by
 * lshmoe_kn_guard_sums_scalar(): two passes, fp64).
 *
 * The rows are the reference's bit for bit (same additions in the same
 * order, division, reference rounding; singletons copied byte for byte).
 * The guard's sums come from the identity, per cluster k of n tokens with
 * fp32 sum S and rounded mean c,
 *     sum ||x_i - c||^2 = sum ||x_i||^2 - 2 c.S + n ||c||^2,
 * so the tokens are read once (their squared norms are taken while they
 * are added or copied) and each mean once more. Each dot product runs in
 * fp32 over 16 lanes and is summed in fp64 across tokens and clusters.
 * Against the reference's fp64 sums the difference is rounding of S and of
 * the fp32 dot products: a few times 1e-6 of sum ||x_i||^2 times the
 * cluster size, far below any useful MAX_ERROR (the guard compares
 * num / den with MAX_ERROR^2). To keep the fp32 products away from
 * overflow and underflow, a segment with a token whose largest |x_e| is
 * outside [2^-30, 2^30] (and not 0), or that is not finite, or a mean that
 * needs the reference's NaN rounding, gets its sums from the exact
 * two-pass kernel instead (lshmoe_kn_guard_sums_avx512).
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu/cluster_isa.h"
#include "kernels/cpu/guard_isa.h"
#include "kernels/cpu/x86/rows_avx512.h"
#include "lshmoe/common/dtype.h"

#define ALWAYS_INLINE LSHMOE_KN_INLINE
#define SAFE_MAX 0x1p30f
#define SAFE_MIN 0x1p-30f

/* Elements e .. e + k (k < 16) widened, the rest 0. */
/* Token pass: adds tokens of clusters of two or more into acc, copies the
 * others; returns sum ||x||^2 over all tokens in *den_p and over tokens of
 * clusters of two or more in *multi_p. 0 if a token is outside the safe
 * range (the sums are then not used). */
ALWAYS_INLINE int token_pass(const unsigned char *tok, lshmoe_dtype_t dt, size_t hidden,
                             size_t ntokens, const uint32_t *cluster_of, const uint32_t *sizes,
                             float *acc, unsigned char *out, double *den_p, double *multi_p)
{
    const size_t row_bytes = hidden * (dt == LSHMOE_DTYPE_FP32 ? 4 : 2);
    const size_t vec_end = hidden / 16 * 16;
    double den = 0.0, multi = 0.0;
    int safe = 1;
    for (size_t i = 0; i < ntokens; i++) {
        const unsigned char *x = tok + i * row_bytes;
        uint32_t c = cluster_of[i];
        __m512 n0 = _mm512_setzero_ps(), mx = n0;
        if (sizes[c] > 1) {
            float *a = acc + (size_t)c * hidden;
            size_t e = 0;
            for (; e < vec_end; e += 16) {
                __m512 v = lshmoe_kn_load16(x, e, dt);
                _mm512_storeu_ps(a + e, _mm512_add_ps(_mm512_loadu_ps(a + e), v));
                n0 = _mm512_fmadd_ps(v, v, n0);
                mx = _mm512_max_ps(mx, _mm512_abs_ps(v));
            }
            if (e < hidden) {
                __mmask16 m = (__mmask16)((1u << (hidden - e)) - 1u);
                __m512 v = lshmoe_kn_load_part(x, e, hidden - e, dt);
                _mm512_mask_storeu_ps(a + e, m,
                                      _mm512_add_ps(_mm512_maskz_loadu_ps(m, a + e), v));
                n0 = _mm512_fmadd_ps(v, v, n0);
                mx = _mm512_max_ps(mx, _mm512_abs_ps(v));
            }
        } else {
            size_t e = 0;
            for (; e < vec_end; e += 16) {
                __m512 v = lshmoe_kn_load16(x, e, dt);
                n0 = _mm512_fmadd_ps(v, v, n0);
                mx = _mm512_max_ps(mx, _mm512_abs_ps(v));
            }
            if (e < hidden) {
                __m512 v = lshmoe_kn_load_part(x, e, hidden - e, dt);
                n0 = _mm512_fmadd_ps(v, v, n0);
                mx = _mm512_max_ps(mx, _mm512_abs_ps(v));
            }
            memcpy(out + (size_t)c * row_bytes, x, row_bytes);
        }
        /* max_ps drops NaN operands, so a NaN token shows in the norm */
        float m = _mm512_reduce_max_ps(mx);
        double nn = (double)_mm512_reduce_add_ps(n0);
        if (!(m == 0.0f || (m >= SAFE_MIN && m <= SAFE_MAX)) || !(nn == nn))
            safe = 0;
        den += nn;
        if (sizes[c] > 1)
            multi += nn;
    }
    *den_p = den;
    *multi_p = multi;
    return safe;
}

/* Mean of cluster row a (sum of d tokens) into a (fp32, as the reference
 * leaves it) and out, rounded as the reference rounds; adds 2 c.S - d ||c||^2 to *sub_p. 0 when a chunk held
 * a NaN (rounded by the reference; the sums are then not used). */
static int mean_row(float *a, float d, size_t n, lshmoe_dtype_t dt, unsigned char *out,
                    double *sub_p)
{
    const __m512 dv = _mm512_set1_ps(d);
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff);
    __m512 cs = _mm512_setzero_ps(), cc = cs;
    int ok = 1;
    for (size_t e = 0; e < n; e += 16) {
        size_t k = n - e < 16 ? n - e : 16;
        __mmask16 m = (__mmask16)(k == 16 ? 0xffffu : (1u << k) - 1u);
        __m512 s = _mm512_maskz_loadu_ps(m, a + e);
        __m512 v = _mm512_div_ps(s, dv), r;
        _mm512_mask_storeu_ps(a + e, m, v);
        if (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & m) {
            float tmp[16];
            _mm512_storeu_ps(tmp, v);
            lshmoe_row_from_f32(tmp, k, dt, out + (dt == LSHMOE_DTYPE_FP32 ? 4 : 2) * e);
            ok = 0;
            continue;
        }
        if (dt == LSHMOE_DTYPE_FP32) {
            r = v;
            _mm512_mask_storeu_ps(out + 4 * e, m, v);
        } else if (dt == LSHMOE_DTYPE_BF16) {
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
        r = _mm512_maskz_mov_ps(m, r);
        cs = _mm512_fmadd_ps(r, s, cs);
        cc = _mm512_fmadd_ps(r, r, cc);
    }
    *sub_p += 2.0 * (double)_mm512_reduce_add_ps(cs) - (double)d * (double)_mm512_reduce_add_ps(cc);
    return ok;
}

void lshmoe_kn_centroids_guard_avx512(LSHMOE_KN_CENTROIDS_ARGS, double *num_p, double *den_p)
{
    *num_p = 0.0;
    *den_p = 0.0;
    if (!lshmoe_dtype_is_float(dtype) || nclusters == 0)
        return;
    const size_t row_bytes = hidden * (dtype == LSHMOE_DTYPE_FP32 ? 4 : 2);
    unsigned char *out = rows;
    double den, multi, sub = 0.0;
    int safe;

    lshmoe_kn_sizes_clear(cluster_of, ntokens, nclusters, hidden, sizes, acc);
    if (dtype == LSHMOE_DTYPE_FP32)
        safe = token_pass(tokens, LSHMOE_DTYPE_FP32, hidden, ntokens, cluster_of, sizes, acc,
                          out, &den, &multi);
    else if (dtype == LSHMOE_DTYPE_BF16)
        safe = token_pass(tokens, LSHMOE_DTYPE_BF16, hidden, ntokens, cluster_of, sizes, acc,
                          out, &den, &multi);
    else
        safe = token_pass(tokens, LSHMOE_DTYPE_FP16, hidden, ntokens, cluster_of, sizes, acc,
                          out, &den, &multi);
    for (size_t c = 0; c < nclusters; c++)
        if (sizes[c] > 1)
            safe &= mean_row(acc + c * hidden, (float)sizes[c], hidden, dtype,
                             out + c * row_bytes, &sub);
    if (!safe) {
        lshmoe_kn_guard_sums_avx512(tokens, rows, dtype, hidden, ntokens, cluster_of, sizes,
                                    num_p, den_p);
        return;
    }
    double num = multi - sub;
    *num_p = num > 0.0 ? num : 0.0;
    *den_p = den;
}
