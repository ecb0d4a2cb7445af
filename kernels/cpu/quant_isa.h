/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* The row quantizers per ISA level, private to kernels/cpu/ (the public
 * entry points in kernels.h dispatch to them). */
#ifndef LSHMOE_KERNELS_CPU_QUANT_ISA_H
#define LSHMOE_KERNELS_CPU_QUANT_ISA_H

#include "kernels/kernels.h"

#define LSHMOE_KN_QUANT_SSE_ARGS                                               \
    int fmt, const float *x, size_t hidden, lshmoe_dtype_t dtype, uint8_t *dst, \
    float *y

void lshmoe_kn_quant_row_scalar(int fmt, const float *x, size_t hidden, uint8_t *dst);
void lshmoe_kn_quant_row_avx2(int fmt, const float *x, size_t hidden, uint8_t *dst);
void lshmoe_kn_quant_row_avx512(int fmt, const float *x, size_t hidden, uint8_t *dst);

void lshmoe_kn_dequant_row_scalar(int fmt, const uint8_t *src, size_t hidden, float *y);
void lshmoe_kn_dequant_row_avx2(int fmt, const uint8_t *src, size_t hidden, float *y);
void lshmoe_kn_dequant_row_avx512(int fmt, const uint8_t *src, size_t hidden, float *y);

#define LSHMOE_KN_DEQUANT_TO_ARGS                                                 \
    int fmt, const uint8_t *src, size_t hidden, lshmoe_dtype_t dtype, void *dst, \
    float *scratch

void lshmoe_kn_dequant_row_to_scalar(LSHMOE_KN_DEQUANT_TO_ARGS);
void lshmoe_kn_dequant_row_to_avx2(LSHMOE_KN_DEQUANT_TO_ARGS);
void lshmoe_kn_dequant_row_to_avx512(LSHMOE_KN_DEQUANT_TO_ARGS);

double lshmoe_kn_quant_row_sse_scalar(LSHMOE_KN_QUANT_SSE_ARGS);
double lshmoe_kn_quant_row_sse_avx2(LSHMOE_KN_QUANT_SSE_ARGS);
double lshmoe_kn_quant_row_sse_avx512(LSHMOE_KN_QUANT_SSE_ARGS);

double lshmoe_kn_row_sq_dist_scalar(const float *a, const float *b, size_t n);
double lshmoe_kn_row_sq_dist_avx2(const float *a, const float *b, size_t n);
double lshmoe_kn_row_sq_dist_avx512(const float *a, const float *b, size_t n);

int lshmoe_kn_low_block_errors_scalar(int fmt, const float *x, float *e);
int lshmoe_kn_low_block_errors_avx2(int fmt, const float *x, float *e);
int lshmoe_kn_low_block_errors_avx512(int fmt, const float *x, float *e);

#endif /* LSHMOE_KERNELS_CPU_QUANT_ISA_H */
