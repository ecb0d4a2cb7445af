/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Coded residuals on the device (kernels/cpu/residual.c, byte for byte):
 * per token, r = x - its row in fp32 with non-finite differences zeroed,
 * an fp32 scale max|r| / qmax (0 below FLT_MIN), codes round(r / scale)
 * clamped to +-qmax (int8, or two int4 per byte, low nibble first); the
 * receiver adds q * scale where q is not 0 and rounds back to the dtype.
 * The maximum is a block reduction (a maximum does not depend on the
 * order); every other step is the CPU's element by element. Also the
 * decoder's check of the residual scales (finite, >= 0) and of the
 * section's zero padding; decoding writes nothing when the segment failed
 * any check.
 */
#include <float.h>

#include <cuda_runtime.h>

#include "kernels/common/quant_math.h"
#include "kernels/cuda/cuda_util.h"
#include "kernels/cuda/lsh_cuda.h"

#define RES_THREADS 256

static unsigned res_grid(size_t n)
{
    return n < 65535 ? (unsigned)(n ? n : 1) : 65535u;
}

/* x - c with a non-finite difference counted as 0 (residual.c diff_f32). */
static __device__ float res_diff(const unsigned char *x, const unsigned char *c, int dtype,
                                 size_t e)
{
    float d = kn_load(x, dtype, e) - kn_load(c, dtype, e);
    return (d - d == 0.0f) ? d : 0.0f;
}

/* residual.c quantize(): clamp, then round to nearest even. */
static __device__ int res_code(float r, float inv, float qmax)
{
    float v = r * inv;
    v = v > qmax ? qmax : v;
    v = v < -qmax ? -qmax : v;
    return (int)lshmoe_qm_rne(v);
}

static __global__ void res_encode_kernel(const unsigned char *tokens, const unsigned char *rows,
                                         int dtype, size_t hidden, size_t ntokens,
                                         const uint32_t *cluster_of, int bits, size_t stride,
                                         uint8_t *coded)
{
    __shared__ float red[RES_THREADS];
    const size_t rb = hidden * (dtype == LSHMOE_DTYPE_FP32 ? 4 : 2);
    const float qmax = bits == 8 ? 127.0f : 7.0f;
    const size_t nq = stride - 4;
    for (size_t t = blockIdx.x; t < ntokens; t += gridDim.x) {
        const unsigned char *x = tokens + t * rb, *c = rows + (size_t)cluster_of[t] * rb;
        uint8_t *out = coded + t * stride;
        float m = 0.0f;
        for (size_t e = threadIdx.x; e < hidden; e += blockDim.x) {
            float d = res_diff(x, c, dtype, e);
            float a = d < 0.0f ? -d : d;
            m = a > m ? a : m;
        }
        float scale = kn_block_max(m, red) / qmax;
        if (!(scale >= FLT_MIN))
            scale = 0.0f;
        if (threadIdx.x == 0)
            lshmoe_qm_put_f32(out, scale);
        uint8_t *payload = out + 4;
        const float inv = scale == 0.0f ? 0.0f : 1.0f / scale;
        for (size_t p = threadIdx.x; p < nq; p += blockDim.x) {
            if (scale == 0.0f) {
                payload[p] = 0;
            } else if (bits == 8) {
                payload[p] = (uint8_t)(int8_t)res_code(res_diff(x, c, dtype, p), inv, qmax);
            } else {
                unsigned lo = (unsigned)res_code(res_diff(x, c, dtype, 2 * p), inv, qmax) & 0xfu;
                unsigned hi = 2 * p + 1 < hidden
                                  ? (unsigned)res_code(res_diff(x, c, dtype, 2 * p + 1), inv,
                                                       qmax) & 0xfu
                                  : 0u;
                payload[p] = (uint8_t)(lo | hi << 4);
            }
        }
    }
}

extern "C" lshmoe_status_t lshmoe_kn_cuda_residual_encode(const void *tokens, const void *rows,
                                                          lshmoe_dtype_t dtype, size_t hidden,
                                                          size_t ntokens,
                                                          const uint32_t *cluster_of, int bits,
                                                          void *coded, void *stream)
{
    if ((bits != 8 && bits != 4) || hidden == 0 ||
        (dtype != LSHMOE_DTYPE_FP32 && dtype != LSHMOE_DTYPE_FP16 &&
         dtype != LSHMOE_DTYPE_BF16))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda residual encode: bad argument");
    if (ntokens == 0)
        return LSHMOE_OK;
    /* kn_load reads whole elements: a misaligned row would fault the
     * context (a sticky error), so refuse it here instead. */
    if (!kn_elem_aligned(tokens, dtype) || !kn_elem_aligned(rows, dtype))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda residual encode: tokens or rows not "
                            "aligned to the dtype");
    res_encode_kernel<<<res_grid(ntokens), RES_THREADS, 0, kn_stream(stream)>>>(
        (const unsigned char *)tokens, (const unsigned char *)rows, (int)dtype, hidden,
        ntokens, cluster_of, bits, lshmoe_kn_residual_bytes(hidden, bits), (uint8_t *)coded);
    KN_CUDA_LAUNCHED("residual encode");
    return LSHMOE_OK;
}

/* A thread per token: its scale finite and >= 0 (codec_decode.c
 * check_scales); thread 0 also the section's zero padding. */
static __global__ void res_check_kernel(const uint8_t *res, size_t ntokens, size_t stride,
                                        uint32_t *bad)
{
    size_t i0 = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    for (size_t i = i0; i < ntokens; i += (size_t)gridDim.x * blockDim.x) {
        float s = lshmoe_qm_get_f32(res + i * stride);
        if (!isfinite(s) || s < 0.0f)
            atomicOr(bad, LSHMOE_KN_SEG_BAD_RESID);
    }
    if (i0 == 0) {
        size_t end = ntokens * stride, padded = (end + 7) & ~(size_t)7;
        for (size_t b = end; b < padded; b++)
            if (res[b] != 0)
                atomicOr(bad, LSHMOE_KN_SEG_BAD_PAD);
    }
}

extern "C" lshmoe_status_t lshmoe_kn_cuda_residual_check(const void *seg, uint64_t resid_off,
                                                         size_t ntokens, size_t hidden,
                                                         int bits, uint32_t *bad, void *stream)
{
    if ((bits != 8 && bits != 4) || seg == NULL || bad == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda residual check: bad argument");
    if (ntokens == 0)
        return LSHMOE_OK;
    size_t blocks = (ntokens + RES_THREADS - 1) / RES_THREADS;
    res_check_kernel<<<res_grid(blocks), RES_THREADS, 0, kn_stream(stream)>>>(
        (const uint8_t *)seg + resid_off, ntokens, lshmoe_kn_residual_bytes(hidden, bits), bad);
    KN_CUDA_LAUNCHED("residual check");
    return LSHMOE_OK;
}

/* Block per token: out row += q * scale where q != 0, rounded back to the
 * dtype (residual.c lshmoe_kn_residual_decode: a token whose scale is 0 is
 * left as it is). */
static __global__ void res_decode_kernel(const uint8_t *res, int dtype, size_t hidden,
                                         size_t ntokens, int bits, size_t stride,
                                         const uint32_t *bad, unsigned char *out)
{
    if (*bad != 0)
        return; /* a segment that failed validation writes nothing */
    const size_t rb = hidden * (dtype == LSHMOE_DTYPE_FP32 ? 4 : 2);
    for (size_t t = blockIdx.x; t < ntokens; t += gridDim.x) {
        const uint8_t *in = res + t * stride, *payload = in + 4;
        float scale = lshmoe_qm_get_f32(in);
        if (scale == 0.0f)
            continue;
        unsigned char *row = out + t * rb;
        for (size_t e = threadIdx.x; e < hidden; e += blockDim.x) {
            int q = bits == 8 ? (int)(int8_t)payload[e]
                              : (int)(((payload[e / 2] >> (4 * (e % 2))) & 0xfu) ^ 8u) - 8;
            float v = kn_load(row, dtype, e);
            v = q != 0 ? v + (float)q * scale : v;
            if (dtype == LSHMOE_DTYPE_FP32)
                ((float *)row)[e] = v;
            else
                ((uint16_t *)row)[e] = dtype == LSHMOE_DTYPE_BF16 ? lshmoe_kn_f32_to_bf16(v)
                                                                  : lshmoe_kn_f32_to_f16(v);
        }
    }
}

extern "C" lshmoe_status_t lshmoe_kn_cuda_residual_decode(const void *seg, uint64_t resid_off,
                                                          size_t ntokens, int bits,
                                                          lshmoe_dtype_t dtype, size_t hidden,
                                                          const uint32_t *bad, void *out,
                                                          void *stream)
{
    if ((bits != 8 && bits != 4) || seg == NULL || bad == NULL || hidden == 0 ||
        (dtype != LSHMOE_DTYPE_FP32 && dtype != LSHMOE_DTYPE_FP16 &&
         dtype != LSHMOE_DTYPE_BF16))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda residual decode: bad argument");
    if (ntokens == 0)
        return LSHMOE_OK;
    if (!kn_elem_aligned(out, dtype)) /* whole-element loads and stores */
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda residual decode: out not aligned "
                            "to the dtype");
    res_decode_kernel<<<res_grid(ntokens), RES_THREADS, 0, kn_stream(stream)>>>(
        (const uint8_t *)seg + resid_off, (int)dtype, hidden, ntokens, bits,
        lshmoe_kn_residual_bytes(hidden, bits), bad, (unsigned char *)out);
    KN_CUDA_LAUNCHED("residual decode");
    return LSHMOE_OK;
}
