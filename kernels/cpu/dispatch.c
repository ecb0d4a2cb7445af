/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* The CPU kernels that exist per ISA level: each call runs the level
 * lshmoe_kn_isa() chose (kernels/cpu/isa.c). */
#include "kernels/cpu/checksum_isa.h"
#include "kernels/cpu/cluster_isa.h"
#include "kernels/cpu/expand_isa.h"
#include "kernels/cpu/guard_isa.h"
#include "kernels/cpu/hash_isa.h"
#include "kernels/cpu/quant_isa.h"
#include "kernels/cpu/refine_isa.h"
#include "kernels/kernels.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe_build_config.h"

void lshmoe_kn_hash(const lshmoe_kn_hasher_t *hasher, const void *tokens,
                    lshmoe_dtype_t dtype, size_t ntokens, uint64_t *keys,
                    void *ws, size_t *nonfinite_p)
{
    switch (lshmoe_kn_isa()) {
#if LSHMOE_HAVE_X86_SIMD
    case LSHMOE_KN_ISA_AVX512:
        lshmoe_kn_hash_avx512(hasher, tokens, dtype, ntokens, keys, ws, nonfinite_p);
        return;
    case LSHMOE_KN_ISA_AVX2:
        lshmoe_kn_hash_avx2(hasher, tokens, dtype, ntokens, keys, ws, nonfinite_p);
        return;
#endif
    default:
        lshmoe_kn_hash_scalar(hasher, tokens, dtype, ntokens, keys, ws, nonfinite_p);
    }
}

void lshmoe_kn_centroids(LSHMOE_KN_CENTROIDS_ARGS)
{
    switch (lshmoe_kn_isa()) {
#if LSHMOE_HAVE_X86_SIMD
    case LSHMOE_KN_ISA_AVX512:
        lshmoe_kn_centroids_avx512(tokens, dtype, hidden, ntokens, cluster_of, nclusters,
                                   rows, sizes, acc);
        return;
    case LSHMOE_KN_ISA_AVX2:
        lshmoe_kn_centroids_avx2(tokens, dtype, hidden, ntokens, cluster_of, nclusters, rows,
                                 sizes, acc);
        return;
#endif
    default:
        lshmoe_kn_centroids_scalar(tokens, dtype, hidden, ntokens, cluster_of, nclusters,
                                   rows, sizes, acc);
    }
}

void lshmoe_kn_guard_sums(LSHMOE_KN_GUARD_ARGS)
{
    *num_p = 0.0;
    *den_p = 0.0;
    if (!lshmoe_dtype_is_float(dtype))
        return;
    switch (lshmoe_kn_isa()) {
#if LSHMOE_HAVE_X86_SIMD
    case LSHMOE_KN_ISA_AVX512:
        lshmoe_kn_guard_sums_avx512(tokens, rows, dtype, hidden, ntokens, cluster_of, sizes,
                                    num_p, den_p);
        return;
    case LSHMOE_KN_ISA_AVX2:
        lshmoe_kn_guard_sums_avx2(tokens, rows, dtype, hidden, ntokens, cluster_of, sizes,
                                  num_p, den_p);
        return;
#endif
    default:
        lshmoe_kn_guard_sums_scalar(tokens, rows, dtype, hidden, ntokens, cluster_of, sizes,
                                    num_p, den_p);
    }
}

void lshmoe_kn_centroids_guard(LSHMOE_KN_CENTROIDS_ARGS, double *num_p, double *den_p)
{
#if LSHMOE_HAVE_X86_SIMD
    if (lshmoe_kn_isa() == LSHMOE_KN_ISA_AVX512) {
        lshmoe_kn_centroids_guard_avx512(tokens, dtype, hidden, ntokens, cluster_of, nclusters,
                                         rows, sizes, acc, num_p, den_p);
        return;
    }
    if (lshmoe_kn_isa() == LSHMOE_KN_ISA_AVX2) {
        lshmoe_kn_centroids_guard_avx2(tokens, dtype, hidden, ntokens, cluster_of, nclusters,
                                       rows, sizes, acc, num_p, den_p);
        return;
    }
#endif
    lshmoe_kn_centroids(tokens, dtype, hidden, ntokens, cluster_of, nclusters, rows, sizes, acc);
    lshmoe_kn_guard_sums(tokens, rows, dtype, hidden, ntokens, cluster_of, sizes, num_p, den_p);
}

void lshmoe_kn_quant_row(int fmt, const float *x, size_t hidden, uint8_t *dst)
{
    switch (lshmoe_kn_isa()) {
#if LSHMOE_HAVE_X86_SIMD
    case LSHMOE_KN_ISA_AVX512:
        lshmoe_kn_quant_row_avx512(fmt, x, hidden, dst);
        return;
    case LSHMOE_KN_ISA_AVX2:
        lshmoe_kn_quant_row_avx2(fmt, x, hidden, dst);
        return;
#endif
    default:
        lshmoe_kn_quant_row_scalar(fmt, x, hidden, dst);
    }
}

void lshmoe_kn_dequant_row(int fmt, const uint8_t *src, size_t hidden, float *y)
{
    switch (lshmoe_kn_isa()) {
#if LSHMOE_HAVE_X86_SIMD
    case LSHMOE_KN_ISA_AVX512:
        lshmoe_kn_dequant_row_avx512(fmt, src, hidden, y);
        return;
    case LSHMOE_KN_ISA_AVX2:
        lshmoe_kn_dequant_row_avx2(fmt, src, hidden, y);
        return;
#endif
    default:
        lshmoe_kn_dequant_row_scalar(fmt, src, hidden, y);
    }
}

void lshmoe_kn_dequant_row_to(LSHMOE_KN_DEQUANT_TO_ARGS)
{
    switch (lshmoe_kn_isa()) {
#if LSHMOE_HAVE_X86_SIMD
    case LSHMOE_KN_ISA_AVX512:
        lshmoe_kn_dequant_row_to_avx512(fmt, src, hidden, dtype, dst, scratch);
        return;
    case LSHMOE_KN_ISA_AVX2:
        lshmoe_kn_dequant_row_to_avx2(fmt, src, hidden, dtype, dst, scratch);
        return;
#endif
    default:
        lshmoe_kn_dequant_row_to_scalar(fmt, src, hidden, dtype, dst, scratch);
    }
}

double lshmoe_kn_quant_row_sse(LSHMOE_KN_QUANT_SSE_ARGS)
{
    switch (lshmoe_kn_isa()) {
#if LSHMOE_HAVE_X86_SIMD
    case LSHMOE_KN_ISA_AVX512:
        return lshmoe_kn_quant_row_sse_avx512(fmt, x, hidden, dtype, dst, y);
    case LSHMOE_KN_ISA_AVX2:
        return lshmoe_kn_quant_row_sse_avx2(fmt, x, hidden, dtype, dst, y);
#endif
    default:
        return lshmoe_kn_quant_row_sse_scalar(fmt, x, hidden, dtype, dst, y);
    }
}

void lshmoe_kn_quant_rows_sse(LSHMOE_KN_QUANT_ROWS_ARGS)
{
    switch (lshmoe_kn_isa()) {
#if LSHMOE_HAVE_X86_SIMD
    case LSHMOE_KN_ISA_AVX512:
        lshmoe_kn_quant_rows_sse_avx512(fmt, x, x_stride, nrows, hidden, dtype, dst, dst_stride,
                                        y, sse);
        return;
    case LSHMOE_KN_ISA_AVX2:
        lshmoe_kn_quant_rows_sse_avx2(fmt, x, x_stride, nrows, hidden, dtype, dst, dst_stride, y,
                                      sse);
        return;
#endif
    default:
        lshmoe_kn_quant_rows_sse_scalar(fmt, x, x_stride, nrows, hidden, dtype, dst, dst_stride,
                                        y, sse);
    }
}

double lshmoe_kn_row_sq_dist(const float *a, const float *b, size_t n)
{
    switch (lshmoe_kn_isa()) {
#if LSHMOE_HAVE_X86_SIMD
    case LSHMOE_KN_ISA_AVX512:
        return lshmoe_kn_row_sq_dist_avx512(a, b, n);
    case LSHMOE_KN_ISA_AVX2:
        return lshmoe_kn_row_sq_dist_avx2(a, b, n);
#endif
    default:
        return lshmoe_kn_row_sq_dist_scalar(a, b, n);
    }
}

int lshmoe_kn_low_block_errors(int fmt, const float *x, float *e)
{
    switch (lshmoe_kn_isa()) {
#if LSHMOE_HAVE_X86_SIMD
    case LSHMOE_KN_ISA_AVX512:
        return lshmoe_kn_low_block_errors_avx512(fmt, x, e);
    case LSHMOE_KN_ISA_AVX2:
        return lshmoe_kn_low_block_errors_avx2(fmt, x, e);
#endif
    default:
        return lshmoe_kn_low_block_errors_scalar(fmt, x, e);
    }
}

int lshmoe_kn_low_block_errors_n(int fmt, const float *x, size_t n, float *e)
{
    switch (lshmoe_kn_isa()) {
#if LSHMOE_HAVE_X86_SIMD
    case LSHMOE_KN_ISA_AVX512:
        return lshmoe_kn_low_block_errors_n_avx512(fmt, x, n, e);
    case LSHMOE_KN_ISA_AVX2:
        return lshmoe_kn_low_block_errors_n_avx2(fmt, x, n, e);
#endif
    default:
        return lshmoe_kn_low_block_errors_n_scalar(fmt, x, n, e);
    }
}

void lshmoe_kn_checksum_stripes(LSHMOE_KN_CHECKSUM_ARGS)
{
    switch (lshmoe_kn_isa()) {
#if LSHMOE_HAVE_X86_SIMD
    case LSHMOE_KN_ISA_AVX512:
        lshmoe_kn_checksum_stripes_avx512(data, nstripes, lanes);
        return;
    case LSHMOE_KN_ISA_AVX2:
        lshmoe_kn_checksum_stripes_avx2(data, nstripes, lanes);
        return;
#endif
    default:
        lshmoe_kn_checksum_stripes_scalar(data, nstripes, lanes);
    }
}

void lshmoe_kn_checksum_chunks(LSHMOE_KN_CHECKSUM_CHUNKS_ARGS)
{
    switch (lshmoe_kn_isa()) {
#if LSHMOE_HAVE_X86_SIMD
    case LSHMOE_KN_ISA_AVX512:
        lshmoe_kn_checksum_chunks_avx512(data, nchunks, first, seed, acc);
        return;
    case LSHMOE_KN_ISA_AVX2:
        lshmoe_kn_checksum_chunks_avx2(data, nchunks, first, seed, acc);
        return;
#endif
    default:
        lshmoe_kn_checksum_chunks_scalar(data, nchunks, first, seed, acc);
    }
}

void lshmoe_kn_expand(const void *rows, lshmoe_dtype_t dtype, size_t hidden, size_t ntokens,
                      const uint32_t *cluster_of, void *out)
{
    const size_t row_bytes = hidden * lshmoe_kn_elem_bytes(dtype);
    if (row_bytes == 0 || ntokens == 0)
        return;
    switch (lshmoe_kn_isa()) {
#if LSHMOE_HAVE_X86_SIMD
    case LSHMOE_KN_ISA_AVX512:
        lshmoe_kn_expand_avx512(rows, row_bytes, ntokens, cluster_of, out);
        return;
    case LSHMOE_KN_ISA_AVX2:
        lshmoe_kn_expand_avx2(rows, row_bytes, ntokens, cluster_of, out);
        return;
#endif
    default:
        lshmoe_kn_expand_scalar(rows, row_bytes, ntokens, cluster_of, out);
    }
}

lshmoe_kn_refine_dist4_fn lshmoe_kn_refine_dist4_kernel(void)
{
#if LSHMOE_HAVE_X86_SIMD
    if (lshmoe_kn_isa() != LSHMOE_KN_ISA_SCALAR) /* AVX2 or AVX-512 */
        return lshmoe_kn_refine_dist4_avx2;
#endif
    return lshmoe_kn_refine_dist4_scalar;
}
