/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * MoE mode's row kernels (moe_cuda.h): the gather of routed rows and the
 * combine's gate-weighted sum, in the host's order of operations.
 */
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_util.h"
#include "kernels/cuda/moe_cuda.h"

/* Grid-stride over rows, block-stride over the row's vectors. */
template <typename V>
static __global__ void moe_gather_kernel(const V *src, size_t row_vecs, size_t nrows,
                                         const uint64_t *src_row, V *out)
{
    for (size_t i = blockIdx.x; i < nrows; i += gridDim.x) {
        const V *s = src + (size_t)src_row[i] * row_vecs;
        V *d = out + i * row_vecs;
        for (size_t v = threadIdx.x; v < row_vecs; v += blockDim.x)
            d[v] = s[v];
    }
}

extern "C" lshmoe_status_t lshmoe_kn_cuda_moe_gather(const void *src, size_t row_bytes,
                                                     size_t nrows, const uint64_t *src_row,
                                                     void *out, void *stream)
{
    if (nrows == 0 || row_bytes == 0)
        return LSHMOE_OK;
    if (src == NULL || src_row == NULL || out == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda moe gather: null argument");
    unsigned grid = nrows < 65535 ? (unsigned)nrows : 65535u;
    cudaStream_t s = kn_stream(stream);
    if (row_bytes % 16 == 0 && (uintptr_t)src % 16 == 0 && (uintptr_t)out % 16 == 0)
        moe_gather_kernel<uint4><<<grid, 128, 0, s>>>((const uint4 *)src, row_bytes / 16,
                                                      nrows, src_row, (uint4 *)out);
    else
        moe_gather_kernel<unsigned char><<<grid, 128, 0, s>>>(
            (const unsigned char *)src, row_bytes, nrows, src_row, (unsigned char *)out);
    KN_CUDA_LAUNCHED("moe gather");
    return LSHMOE_OK;
}

/* One element of a token row of `dtype`, from fp32. */
static __device__ __forceinline__ void moe_store(unsigned char *row, int dtype, size_t d,
                                                 float v)
{
    if (dtype == LSHMOE_DTYPE_FP32)
        ((float *)row)[d] = v;
    else if (dtype == LSHMOE_DTYPE_BF16)
        ((uint16_t *)row)[d] = lshmoe_kn_f32_to_bf16(v);
    else
        ((uint16_t *)row)[d] = lshmoe_kn_f32_to_f16(v);
}

/* A block per token (grid-stride), a thread per element (block-stride);
 * each element's sum runs over the slots in order, as on the host. */
static __global__ void moe_combine_kernel(const unsigned char *rows, int dtype, size_t hidden,
                                          size_t row_bytes, size_t ntok, int topk,
                                          const uint64_t *slot_ent, const float *gate,
                                          const uint64_t *ent_row, const double *ent_coef,
                                          const unsigned char *xs, const unsigned char *cs,
                                          unsigned char *out)
{
    for (size_t t = blockIdx.x; t < ntok; t += gridDim.x) {
        const uint64_t *se = slot_ent + t * (size_t)topk;
        const float *g = gate + t * (size_t)topk;
        unsigned char *o = out + t * row_bytes;
        for (size_t d = threadIdx.x; d < hidden; d += blockDim.x) {
            double acc = 0.0;
            for (int s = 0; s < topk; s++) {
                uint64_t e = se[s];
                if (e == UINT64_MAX)
                    continue;
                uint64_t r = ent_row[e];
                double c = ent_coef[e];
                float y = kn_load(rows + r * row_bytes, dtype, d);
                if (c != 0.0)
                    y = (float)((double)y + c * ((double)kn_load(xs + e * row_bytes, dtype, d) -
                                                 (double)kn_load(cs + r * row_bytes, dtype, d)));
                acc += (double)g[s] * (double)y;
            }
            moe_store(o, dtype, d, (float)acc);
        }
    }
}

extern "C" lshmoe_status_t lshmoe_kn_cuda_moe_combine(const void *rows, lshmoe_dtype_t dtype,
                                                      size_t hidden, size_t ntok, int topk,
                                                      const uint64_t *slot_ent,
                                                      const float *gate,
                                                      const uint64_t *ent_row,
                                                      const double *ent_coef, const void *xs,
                                                      const void *cs, void *out, void *stream)
{
    if (ntok == 0 || hidden == 0)
        return LSHMOE_OK;
    if (slot_ent == NULL || gate == NULL || ent_row == NULL || ent_coef == NULL ||
        out == NULL || topk < 1)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda moe combine: null argument or "
                            "topk %d", topk);
    if (dtype != LSHMOE_DTYPE_FP32 && dtype != LSHMOE_DTYPE_BF16 &&
        dtype != LSHMOE_DTYPE_FP16)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda moe combine: dtype %d is not a "
                            "float dtype", (int)dtype);
    unsigned grid = ntok < 65535 ? (unsigned)ntok : 65535u;
    unsigned block = hidden >= 256 ? 256u : hidden >= 64 ? 64u : 32u;
    moe_combine_kernel<<<grid, block, 0, kn_stream(stream)>>>(
        (const unsigned char *)rows, (int)dtype, hidden, hidden * kn_elem_size(dtype), ntok,
        topk, slot_ent, gate, ent_row, ent_coef, (const unsigned char *)xs,
        (const unsigned char *)cs, (unsigned char *)out);
    KN_CUDA_LAUNCHED("moe combine");
    return LSHMOE_OK;
}
