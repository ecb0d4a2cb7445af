/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * MoE mode's row kernels on the device (moe.cu): the gather of the rows a
 * pass routes to each expert and the combine's gate-weighted sum. The core
 * reaches them through lshmoe_kn_dev_ops_t (kernels.h); the launchers are
 * stream-ordered on `stream` (cudaStream_t; NULL: the legacy default
 * stream), return once the work is queued and never wait for the device.
 * Pointers are device memory unless said otherwise.
 */
#ifndef LSHMOE_KN_MOE_CUDA_H
#define LSHMOE_KN_MOE_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "lshmoe.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Row gather: row i of `out` = row src_row[i] of `src` (row_bytes bytes
 * each, copied as bytes), i < nrows. The caller guarantees every
 * src_row[i] indexes a row of `src`. 16-byte copies when rows and
 * pointers allow, else bytes.
 */
lshmoe_status_t lshmoe_kn_cuda_moe_gather(const void *src, size_t row_bytes, size_t nrows,
                                          const uint64_t *src_row, void *out, void *stream);

/*
 * The combine's reconstruction and gate-weighted sum, as
 * lshmoe/moe_combine.c computes them on the host. For each token t < ntok
 * and element d < hidden: acc = 0.0 (fp64); for s = 0..topk-1 in order,
 * with e = slot_ent[t*topk+s] (UINT64_MAX: dropped, skipped), r =
 * ent_row[e], c = ent_coef[e] and f(R, i) = element d of row i of R
 * (dtype, widened exactly to fp32):
 *   y = c == 0 ? f(rows, r) : (float)((double)f(rows, r)
 *                                      + c * ((double)f(xs, e) - (double)f(cs, r)))
 *   acc += (double)gate[t*topk+s] * (double)y
 * then out_t[d] = acc rounded to fp32, then to `dtype` (nearest even,
 * kernels/common/half_math.h). rows: the expert outputs by row; xs: the
 * routed tokens by entry; cs: the centroids by row (xs and cs are read
 * only where c != 0, and may be NULL when every c is 0). Tokens with every
 * slot dropped get zeros. Built with --fmad=false, so every product and
 * sum is the host's, bit for bit.
 */
lshmoe_status_t lshmoe_kn_cuda_moe_combine(const void *rows, lshmoe_dtype_t dtype,
                                           size_t hidden, size_t ntok, int topk,
                                           const uint64_t *slot_ent, const float *gate,
                                           const uint64_t *ent_row, const double *ent_coef,
                                           const void *xs, const void *cs, void *out,
                                           void *stream);

#ifdef __cplusplus
}
#endif

#endif /* LSHMOE_KN_MOE_CUDA_H */
