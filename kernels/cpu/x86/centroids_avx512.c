/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Cluster means with AVX-512, bit-identical to the reference
 * (kernels/cpu/cluster.c): each centroid's fp32 sum starts at -0.0f and
 * adds its members in token order, then is divided (not multiplied by a
 * reciprocal) and rounded to the dtype by the reference's conversion.
 * Faster because the elements are widened inside the add (no converted
 * copy), the mean is divided and rounded in registers, and tokens alone in
 * their cluster are neither added nor zeroed: they are copied once, byte
 * for byte, as the reference does.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu/cluster_isa.h"
#include "kernels/cpu/x86/rows_avx512.h"
#include "lshmoe/common/dtype.h"

#define ALWAYS_INLINE LSHMOE_KN_INLINE

ALWAYS_INLINE void add_row(float *a, const unsigned char *x, lshmoe_dtype_t dt, size_t n)
{
    size_t e = 0;
    for (; e + 64 <= n; e += 64) {
        _mm512_storeu_ps(a + e, _mm512_add_ps(_mm512_loadu_ps(a + e), lshmoe_kn_load16(x, e, dt)));
        _mm512_storeu_ps(a + e + 16, _mm512_add_ps(_mm512_loadu_ps(a + e + 16),
                                                   lshmoe_kn_load16(x, e + 16, dt)));
        _mm512_storeu_ps(a + e + 32, _mm512_add_ps(_mm512_loadu_ps(a + e + 32),
                                                   lshmoe_kn_load16(x, e + 32, dt)));
        _mm512_storeu_ps(a + e + 48, _mm512_add_ps(_mm512_loadu_ps(a + e + 48),
                                                   lshmoe_kn_load16(x, e + 48, dt)));
    }
    for (; e + 16 <= n; e += 16)
        _mm512_storeu_ps(a + e, _mm512_add_ps(_mm512_loadu_ps(a + e), lshmoe_kn_load16(x, e, dt)));
    if (e < n) { /* the last n - e < 16 elements: the same adds, masked */
        __mmask16 m = (__mmask16)((1u << (n - e)) - 1u);
        _mm512_mask_storeu_ps(a + e, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, a + e),
                                                      lshmoe_kn_load_part(x, e, n - e, dt)));
    }
}

ALWAYS_INLINE void accumulate(const unsigned char *tok, lshmoe_dtype_t dt, size_t hidden,
                              size_t ntokens, const uint32_t *cluster_of,
                              const uint32_t *sizes, float *acc)
{
    const size_t row_bytes = hidden * (dt == LSHMOE_DTYPE_FP32 ? 4 : 2);
    for (size_t i = 0; i < ntokens; i++) {
        uint32_t c = cluster_of[i];
        if (sizes[c] > 1)
            add_row(acc + (size_t)c * hidden, tok + i * row_bytes, dt, hidden);
    }
}

/* a = a / d (the fp32 mean, as the reference leaves it) and out =
 * round_to_dtype(a), n elements. A chunk that holds a NaN goes through the
 * reference's conversion (its NaN bits are the contract). The last chunk
 * of fewer than 16 elements is the same, masked. */
static void mean_row(float *a, float d, size_t n, lshmoe_dtype_t dt, unsigned char *out)
{
    const __m512 dv = _mm512_set1_ps(d);
    for (size_t e = 0; e < n; e += 16) {
        size_t k = n - e < 16 ? n - e : 16;
        __mmask16 m = (__mmask16)(k == 16 ? 0xffffu : (1u << k) - 1u);
        __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(m, a + e), dv);
        _mm512_mask_storeu_ps(a + e, m, v);
        lshmoe_kn_store_part16(out, e, v, m, dt);
    }
}

void lshmoe_kn_centroids_avx512(LSHMOE_KN_CENTROIDS_ARGS)
{
    if (!lshmoe_dtype_is_float(dtype) || nclusters == 0)
        return;
    const size_t row_bytes = hidden * (dtype == LSHMOE_DTYPE_FP32 ? 4 : 2);
    const unsigned char *tok = tokens;
    unsigned char *out = rows;

    lshmoe_kn_sizes_clear(cluster_of, ntokens, nclusters, hidden, sizes, acc);
    if (dtype == LSHMOE_DTYPE_FP32)
        accumulate(tok, LSHMOE_DTYPE_FP32, hidden, ntokens, cluster_of, sizes, acc);
    else if (dtype == LSHMOE_DTYPE_BF16)
        accumulate(tok, LSHMOE_DTYPE_BF16, hidden, ntokens, cluster_of, sizes, acc);
    else
        accumulate(tok, LSHMOE_DTYPE_FP16, hidden, ntokens, cluster_of, sizes, acc);
    for (size_t c = 0; c < nclusters; c++) {
        if (sizes[c] <= 1)
            continue;
        mean_row(acc + c * hidden, (float)sizes[c], hidden, dtype, out + c * row_bytes);
    }
    for (size_t i = 0; i < ntokens; i++) {
        uint32_t c = cluster_of[i];
        if (sizes[c] == 1)
            memcpy(out + (size_t)c * row_bytes, tok + i * row_bytes, row_bytes);
    }
}
