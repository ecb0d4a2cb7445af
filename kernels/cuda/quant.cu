/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Row quantizers on the device (FP8 e4m3, int8, int4, int2, int4e), coding
 * rows as kernels/cpu/quant.c does, byte for byte: the same element math
 * (kernels/common/quant_math.h), the same scale choice and, for the
 * low-bit formats, the same error sums in the same order (one thread per
 * 32-element block runs the CPU's loop). The maxima of FP8 and int8 are
 * taken by a parallel reduction: a maximum does not depend on the order.
 * The device codec's fixed row formats call them with each row's error
 * and norm (quant_rows_sse), summed in the CPU's order.
 */
#include <cuda_runtime.h>

#include "kernels/common/quant_math.h"
#include "kernels/cuda/cuda_util.h"
#include "kernels/cuda/lsh_cuda.h"

#define QTHREADS 128
#define LOW LSHMOE_QM_LOW_BLOCK
#define NCLIP 4

/* max |x| over the elements [lo, lo + n) of a row, by the whole block. */
static __device__ float block_amax(const unsigned char *row, int dtype, size_t lo, size_t n)
{
    __shared__ float red[QTHREADS];
    float m = 0.0f;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) {
        float a = fabsf(kn_load(row, dtype, lo + i));
        m = a > m ? a : m;
    }
    return kn_block_max(m, red);
}

/* FP8: a scale per 128 elements; int8: one per row. */
static __device__ void quant_wide(const unsigned char *row, int dtype, size_t hidden, int fmt,
                                  uint8_t *dst)
{
    const size_t blk = fmt == LSHMOE_QM_FP8 ? LSHMOE_QM_FP8_BLOCK : hidden;
    const size_t nb = (size_t)lshmoe_qm_nblocks(fmt, hidden);
    uint8_t *codes = dst + 4 * nb;
    for (size_t b = 0; b < nb; b++) {
        size_t lo = b * blk, n = hidden - lo < blk ? hidden - lo : blk;
        float s = block_amax(row, dtype, lo, n) /
                  (fmt == LSHMOE_QM_FP8 ? LSHMOE_QM_E4M3_MAX : 127.0f);
        float inv = lshmoe_qm_scale_inv(&s);
        if (threadIdx.x == 0)
            lshmoe_qm_put_f32(dst + 4 * b, s);
        for (size_t i = threadIdx.x; i < n; i += blockDim.x) {
            float x = kn_load(row, dtype, lo + i);
            codes[lo + i] = fmt == LSHMOE_QM_FP8
                                ? lshmoe_qm_f32_to_e4m3(x * inv)
                                : (uint8_t)(int8_t)lshmoe_qm_code(x, inv, -127.0f, 127.0f);
        }
    }
}

/* kernels/cpu/quant.c block_codes(), same order of operations. */
static __device__ float block_codes(const float *x, size_t n, float s, int bits, float *q)
{
    float inv = lshmoe_qm_scale_inv(&s), part[8] = {0, 0, 0, 0, 0, 0, 0, 0}, e = 0.0f;
    for (size_t i = 0; i < n; i++)
        q[i] = bits == 4 ? lshmoe_qm_code(x[i], inv, -8.0f, 7.0f) : lshmoe_qm_code2(x[i], inv);
    float off = bits == 4 ? 0.0f : 1.5f;
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t k = 0; k < 8; k++) {
            float d = x[i + k] - (q[i + k] - off) * s;
            part[k] += d * d;
        }
    for (; i < n; i++) {
        float d = x[i] - (q[i] - off) * s;
        e += d * d;
    }
    for (size_t k = 0; k < 8; k++)
        e += part[k];
    return e;
}

/* INT4, INT4E, INT2: thread t codes block t (quant.c quant_low()). The
 * codes of a block fill whole bytes (32 elements), so threads never share
 * a byte. */
static __device__ void quant_low(const unsigned char *row, int dtype, size_t hidden, int fmt,
                                 uint8_t *dst)
{
    const float clip4[NCLIP] = {1.0f, 0.9f, 0.8f, 0.7f};
    const float clip2[NCLIP] = {1.0f, 0.85f, 0.7f, 0.55f};
    const int bits = fmt == LSHMOE_QM_INT2 ? 2 : 4;
    const float *clip = bits == 4 ? clip4 : clip2;
    const float qmax = bits == 4 ? 7.0f : 1.5f;
    const size_t sbytes = fmt == LSHMOE_QM_INT4E ? 1 : 2;
    const size_t nb = (size_t)lshmoe_qm_nblocks(fmt, hidden), per_byte = 8 / (size_t)bits;
    uint8_t *codes = dst + sbytes * nb;
    for (size_t b = threadIdx.x; b < nb; b += blockDim.x) {
        float x[LOW], q[LOW], best_q[LOW];
        size_t lo = b * LOW, n = hidden - lo < LOW ? hidden - lo : LOW;
        float amax = 0.0f, best_e = INFINITY;
        for (size_t i = 0; i < n; i++) {
            x[i] = kn_load(row, dtype, lo + i);
            float a = fabsf(x[i]);
            amax = a > amax ? a : amax;
        }
        uint16_t best = 0;
        for (int c = 0; c < NCLIP && amax > 0.0f; c++) {
            uint16_t code = lshmoe_qm_scale_code(fmt, clip[c] * amax / qmax);
            float e = block_codes(x, n, lshmoe_qm_scale_value(fmt, code), bits, q);
            if (e < best_e) {
                best_e = e;
                best = lshmoe_qm_safe_inv(lshmoe_qm_scale_value(fmt, code)) == 0.0f ? 0 : code;
                for (size_t i = 0; i < n; i++)
                    best_q[i] = q[i];
            }
        }
        if (best == 0)
            for (size_t i = 0; i < n; i++)
                best_q[i] = bits == 4 ? 0.0f : 2.0f;
        if (sbytes == 1)
            dst[b] = (uint8_t)best;
        else
            lshmoe_qm_put_f16(dst + 2 * b, best);
        for (size_t i0 = 0; i0 < n; i0 += per_byte) {
            uint8_t byte = 0;
            for (size_t i = i0; i < i0 + per_byte && i < n; i++) {
                unsigned v = bits == 4 ? (unsigned)(int)best_q[i] & 15u : (unsigned)best_q[i];
                byte |= (uint8_t)(v << (bits * (i % per_byte)));
            }
            codes[(lo + i0) / per_byte] = byte;
        }
    }
}

static __global__ void quant_kernel(const unsigned char *rows, int dtype, size_t hidden,
                                    size_t nrows, int fmt, size_t row_bytes, uint8_t *dst)
{
    const size_t es = dtype == LSHMOE_DTYPE_FP32 ? 4 : 2;
    for (size_t r = blockIdx.x; r < nrows; r += gridDim.x) {
        const unsigned char *row = rows + r * hidden * es;
        uint8_t *d = dst + r * row_bytes;
        if (fmt == LSHMOE_QM_FP8 || fmt == LSHMOE_QM_INT8)
            quant_wide(row, dtype, hidden, fmt, d);
        else
            quant_low(row, dtype, hidden, fmt, d);
    }
}

extern "C" lshmoe_status_t lshmoe_kn_cuda_quant_rows(int fmt, const void *rows,
                                                     lshmoe_dtype_t dtype, size_t hidden,
                                                     size_t nrows, void *dst, void *stream)
{
    if (fmt <= LSHMOE_QM_NATIVE || fmt >= LSHMOE_QM_COUNT)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda quant: row format %d", fmt);
    if (dtype != LSHMOE_DTYPE_FP32 && dtype != LSHMOE_DTYPE_FP16 &&
        dtype != LSHMOE_DTYPE_BF16)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda quant: dtype %d is not a float "
                            "dtype", (int)dtype);
    if (nrows == 0)
        return LSHMOE_OK;
    if (rows == NULL || dst == NULL || hidden == 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda quant: null argument");
    unsigned grid = nrows < 65535 ? (unsigned)nrows : 65535u;
    quant_kernel<<<grid, QTHREADS, 0, kn_stream(stream)>>>(
        (const unsigned char *)rows, (int)dtype, hidden, nrows, fmt,
        (size_t)lshmoe_qm_row_bytes(fmt, hidden), (uint8_t *)dst);
    KN_CUDA_LAUNCHED("quant");
    return LSHMOE_OK;
}

/* ---- coded rows measured as the CPU encoder measures them ------------- */

/* A decoded value rounded to the dtype and widened back (the receiver's
 * value; kernels/cpu/quant_ref.h lshmoe_qr_round_dtype). */
static __device__ float round_dtype(float v, int dtype)
{
    if (dtype == LSHMOE_DTYPE_BF16)
        return lshmoe_kn_bf16_to_f32(lshmoe_kn_f32_to_bf16(v));
    if (dtype == LSHMOE_DTYPE_FP16)
        return lshmoe_kn_f16_to_f32(lshmoe_kn_f32_to_f16(v));
    return v;
}

/* Block per token: the row coded into d (if any), then thread k < 8 sums
 * lane k of the whole groups of 8 in fp32 (x^2 and, with d, (x - y)^2 of
 * the decoded, rounded y), thread 0 adds the tail in fp64 and the lanes in
 * order: lshmoe_rd_sq_norm() and lshmoe_kn_row_sq_dist(), bit for bit
 * (--fmad=false: no contraction the CPU does not do). */
static __global__ void quant_sse_kernel(const unsigned char *rows, int dtype, size_t hidden,
                                        size_t nrows, int fmt, size_t row_bytes, uint8_t *dst,
                                        double *row_sse, double *norms)
{
    __shared__ float pn[8], ps[8];
    const size_t es = dtype == LSHMOE_DTYPE_FP32 ? 4 : 2, whole = hidden - hidden % 8;
    for (size_t r = blockIdx.x; r < nrows; r += gridDim.x) {
        const unsigned char *row = rows + r * hidden * es;
        uint8_t *d = dst != NULL ? dst + r * row_bytes : NULL;
        if (d != NULL) {
            if (fmt == LSHMOE_QM_FP8 || fmt == LSHMOE_QM_INT8)
                quant_wide(row, dtype, hidden, fmt, d);
            else
                quant_low(row, dtype, hidden, fmt, d);
        }
        __syncthreads(); /* the row's codes, written by all, read below */
        if (threadIdx.x < 8) {
            float an = 0.0f, as = 0.0f;
            for (size_t i = threadIdx.x; i < whole; i += 8) {
                float x = kn_load(row, dtype, i);
                an += x * x;
                if (d != NULL) {
                    float e = x - round_dtype(lshmoe_qm_decode_elem(fmt, d, hidden, i), dtype);
                    as += e * e;
                }
            }
            pn[threadIdx.x] = an;
            ps[threadIdx.x] = as;
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            double sn = 0.0, ss = 0.0;
            for (size_t i = whole; i < hidden; i++) {
                float x = kn_load(row, dtype, i);
                double dn = (double)x;
                sn += dn * dn;
                if (d != NULL) {
                    double e = (double)x -
                               round_dtype(lshmoe_qm_decode_elem(fmt, d, hidden, i), dtype);
                    ss += e * e;
                }
            }
            for (int k = 0; k < 8; k++) {
                sn += pn[k];
                ss += ps[k];
            }
            norms[r] = sn;
            if (row_sse != NULL)
                row_sse[r] = ss;
        }
        __syncthreads(); /* pn, ps are reused by the next row */
    }
}

extern "C" lshmoe_status_t lshmoe_kn_cuda_quant_rows_sse(int fmt, const void *tokens,
                                                         lshmoe_dtype_t dtype, size_t hidden,
                                                         size_t ntokens, void *dst,
                                                         double *row_sse, double *norms,
                                                         void *stream)
{
    if (dst != NULL && (fmt <= LSHMOE_QM_NATIVE || fmt >= LSHMOE_QM_COUNT))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda quant sse: row format %d", fmt);
    if (dtype != LSHMOE_DTYPE_FP32 && dtype != LSHMOE_DTYPE_FP16 &&
        dtype != LSHMOE_DTYPE_BF16)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda quant sse: dtype %d is not a float "
                            "dtype", (int)dtype);
    if (ntokens == 0)
        return LSHMOE_OK;
    if (tokens == NULL || norms == NULL || hidden == 0 || (dst == NULL && row_sse != NULL))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda quant sse: bad argument");
    if (!kn_elem_aligned(tokens, dtype)) /* kn_load reads whole elements */
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda quant sse: tokens not aligned to "
                            "the dtype");
    unsigned grid = ntokens < 65535 ? (unsigned)ntokens : 65535u;
    quant_sse_kernel<<<grid, QTHREADS, 0, kn_stream(stream)>>>(
        (const unsigned char *)tokens, (int)dtype, hidden, ntokens, fmt,
        dst != NULL ? (size_t)lshmoe_qm_row_bytes(fmt, hidden) : 0, (uint8_t *)dst, row_sse,
        norms);
    KN_CUDA_LAUNCHED("quant sse");
    return LSHMOE_OK;
}

/* One thread: the encoder's fp64 sums in token order (a few microseconds
 * for thousands of tokens; any parallel order would round differently). */
static __global__ void ordered_sums_kernel(const double *row_sse, const double *norms,
                                           size_t n, size_t step, double *sums)
{
    lshmoe_qm_ordered_sums(row_sse, norms, n, step, sums);
}

extern "C" lshmoe_status_t lshmoe_kn_cuda_ordered_sums(const double *row_sse,
                                                       const double *norms, size_t ntokens,
                                                       size_t step, double *sums, void *stream)
{
    if (sums == NULL || step == 0 || (ntokens > 0 && norms == NULL))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda ordered sums: bad argument");
    ordered_sums_kernel<<<1, 1, 0, kn_stream(stream)>>>(row_sse, norms, ntokens, step, sums);
    KN_CUDA_LAUNCHED("ordered sums");
    return LSHMOE_OK;
}
