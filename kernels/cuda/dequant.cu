/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The receiver's side of the row formats on the device: every coded row of
 * a segment checked as the CPU decoder checks it (a flag, OR'd into the
 * segment's validation result), then each token's row decoded in fp32 and
 * rounded to the dtype as lshmoe/codec_decode.c does (write_quantized:
 * lshmoe_kn_dequant_row, then lshmoe_row_from_f32), expanded through the
 * index for clustered segments. The expansion reads the validation result
 * on the device and writes nothing for a segment that failed any check.
 * The element math is kernels/common/quant_math.h, the CPU's own.
 */
#include <cuda_runtime.h>

#include "kernels/common/quant_math.h"
#include "kernels/cuda/cuda_util.h"
#include "kernels/cuda/lsh_cuda.h"

#define DQ_THREADS 256

static unsigned dq_grid(size_t n)
{
    return n < 65535 ? (unsigned)(n ? n : 1) : 65535u;
}

/* A thread per row: lshmoe_qm_row_check() (the CPU's check, verbatim). */
static __global__ void check_rows_kernel(const uint8_t *rows, int fmt, size_t hidden,
                                         size_t nrows, size_t stride, uint32_t *bad)
{
    for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < nrows;
         k += (size_t)gridDim.x * blockDim.x)
        if (lshmoe_qm_row_check(fmt, rows + k * stride, hidden) != 0)
            atomicOr(bad, LSHMOE_KN_SEG_BAD_ROW);
}

extern "C" lshmoe_status_t lshmoe_kn_cuda_check_rows(const void *seg, const lshmoe_kn_seg_t *g,
                                                     int fmt, size_t hidden, uint32_t *bad,
                                                     void *stream)
{
    if (fmt <= LSHMOE_QM_NATIVE || fmt >= LSHMOE_QM_COUNT || seg == NULL || bad == NULL ||
        hidden == 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda check rows: bad argument");
    if (g->nrows == 0)
        return LSHMOE_OK;
    size_t blocks = (g->nrows + DQ_THREADS - 1) / DQ_THREADS;
    check_rows_kernel<<<dq_grid(blocks), DQ_THREADS, 0, kn_stream(stream)>>>(
        (const uint8_t *)seg + g->rows_off, fmt, hidden, g->nrows,
        (size_t)lshmoe_qm_row_bytes(fmt, hidden), bad);
    KN_CUDA_LAUNCHED("check rows");
    return LSHMOE_OK;
}

/* Little-endian index entry t (the wire may sit at any offset). */
static __device__ uint64_t index_entry(const uint8_t *idx, int idx32, uint64_t t)
{
    if (idx32)
        return (uint64_t)idx[4 * t] | (uint64_t)idx[4 * t + 1] << 8 |
               (uint64_t)idx[4 * t + 2] << 16 | (uint64_t)idx[4 * t + 3] << 24;
    return (uint64_t)idx[2 * t] | (uint64_t)idx[2 * t + 1] << 8;
}

/* Block per token, threads over its elements. */
static __global__ void dequant_expand_kernel(const uint8_t *seg, lshmoe_kn_seg_t g, int fmt,
                                             int dtype, size_t hidden, size_t stride,
                                             const uint32_t *bad, unsigned char *out)
{
    if (*bad != 0)
        return; /* a segment that failed validation writes nothing */
    const size_t es = dtype == LSHMOE_DTYPE_FP32 ? 4 : 2;
    for (uint64_t t = blockIdx.x; t < g.ntokens; t += gridDim.x) {
        uint64_t k = g.raw ? t : index_entry(seg + g.idx_off, g.idx32, t);
        const uint8_t *row = seg + g.rows_off + k * stride;
        unsigned char *o = out + t * hidden * es;
        for (size_t e = threadIdx.x; e < hidden; e += blockDim.x) {
            float y = lshmoe_qm_decode_elem(fmt, row, hidden, e);
            if (dtype == LSHMOE_DTYPE_FP32)
                ((float *)o)[e] = y;
            else
                ((uint16_t *)o)[e] = dtype == LSHMOE_DTYPE_BF16 ? lshmoe_kn_f32_to_bf16(y)
                                                                : lshmoe_kn_f32_to_f16(y);
        }
    }
}

extern "C" lshmoe_status_t lshmoe_kn_cuda_dequant_expand(const void *seg,
                                                         const lshmoe_kn_seg_t *g, int fmt,
                                                         lshmoe_dtype_t dtype, size_t hidden,
                                                         const uint32_t *bad, void *out,
                                                         void *stream)
{
    if (fmt <= LSHMOE_QM_NATIVE || fmt >= LSHMOE_QM_COUNT || seg == NULL || bad == NULL ||
        hidden == 0 || (dtype != LSHMOE_DTYPE_FP32 && dtype != LSHMOE_DTYPE_FP16 &&
                        dtype != LSHMOE_DTYPE_BF16))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda dequant: bad argument");
    if (g->ntokens == 0)
        return LSHMOE_OK;
    if (out == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda dequant: out is NULL");
    if (!kn_elem_aligned(out, dtype)) /* whole-element stores */
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda dequant: out not aligned to the dtype");
    dequant_expand_kernel<<<dq_grid(g->ntokens), DQ_THREADS, 0, kn_stream(stream)>>>(
        (const uint8_t *)seg, *g, fmt, (int)dtype, hidden,
        (size_t)lshmoe_qm_row_bytes(fmt, hidden), bad, (unsigned char *)out);
    KN_CUDA_LAUNCHED("dequant expand");
    return LSHMOE_OK;
}
