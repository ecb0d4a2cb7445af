/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The scalar level of the "code a row and measure it" kernel and of the
 * row distance (kernels.h: lshmoe_kn_quant_row_sse, lshmoe_kn_row_sq_dist).
 * The error is of the row a receiver will hold (decoded in fp32, rounded
 * to the dtype), summed in the order quant_ref.h fixes: 8 fp32 lane
 * partials over the whole groups of 8, the rest in fp64. The SIMD levels
 * keep that order, so every level gives the same error bit for bit; the
 * fp32 partials lose nothing a budget test could see on rows of this size.
 * Also the errors of one low-bit block's candidate scales, for the test
 * that holds every level to the reference's summation order.
 */
#include "kernels/cpu/quant_isa.h"
#include "kernels/cpu/quant_ref.h"
#include "kernels/kernels.h"

double lshmoe_kn_row_sq_dist_scalar(const float *a, const float *b, size_t n)
{
    float part[8] = {0};
    for (size_t i = 0; i + 8 <= n; i += 8)
        for (size_t k = 0; k < 8; k++) {
            float d = a[i + k] - b[i + k];
            part[k] += d * d;
        }
    return lshmoe_qr_finish_sse(a, b, n, part);
}

double lshmoe_kn_quant_row_sse_scalar(LSHMOE_KN_QUANT_SSE_ARGS)
{
    if (lshmoe_qm_row_bytes(fmt, hidden) == 0)
        return 0.0;
    lshmoe_kn_quant_row_scalar(fmt, x, hidden, dst);
    lshmoe_kn_dequant_row_scalar(fmt, dst, hidden, y);
    for (size_t i = 0; i < hidden; i++)
        y[i] = lshmoe_qr_round_dtype(y[i], dtype);
    return lshmoe_kn_row_sq_dist_scalar(x, y, hidden);
}

int lshmoe_kn_low_block_errors_n_scalar(int fmt, const float *x, size_t n, float *e)
{
    const int bits = fmt == LSHMOE_QM_INT2 ? 2 : 4;
    uint16_t tries[LSHMOE_QR_NCLIP];
    float q[LSHMOE_QM_LOW_BLOCK], amax = lshmoe_qr_amax(x, n);
    int ntry = amax > 0.0f ? lshmoe_qr_clip_codes(fmt, amax, tries) : 0;
    for (int c = 0; c < ntry; c++)
        e[c] = lshmoe_qr_block_codes(x, n, lshmoe_qm_scale_value(fmt, tries[c]), bits, q);
    return ntry;
}

int lshmoe_kn_low_block_errors_scalar(int fmt, const float *x, float *e)
{
    return lshmoe_kn_low_block_errors_n_scalar(fmt, x, LSHMOE_QM_LOW_BLOCK, e);
}

void lshmoe_kn_quant_rows_sse_scalar(LSHMOE_KN_QUANT_ROWS_ARGS)
{
    lshmoe_kn_rows_by_row(fmt, x, x_stride, nrows, hidden, dtype, dst, dst_stride, y, sse,
                          lshmoe_kn_quant_row_scalar, lshmoe_kn_quant_row_sse_scalar);
}
