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
int lshmoe_kn_low_block_errors_n_scalar(int fmt, const float *x, size_t n, float *e);
int lshmoe_kn_low_block_errors_n_avx2(int fmt, const float *x, size_t n, float *e);
int lshmoe_kn_low_block_errors_n_avx512(int fmt, const float *x, size_t n, float *e);

#define LSHMOE_KN_QUANT_ROWS_ARGS                                              \
    int fmt, const float *x, size_t x_stride, size_t nrows, size_t hidden,       \
    lshmoe_dtype_t dtype, uint8_t *dst, size_t dst_stride, float *y, double *sse

typedef void (*lshmoe_kn_quant_row_fn)(int fmt, const float *x, size_t hidden, uint8_t *dst);
typedef double (*lshmoe_kn_quant_row_sse_fn)(LSHMOE_KN_QUANT_SSE_ARGS);

/* lshmoe_kn_quant_rows_sse() as a loop over a level's one-row kernels:
 * the scalar level, and the formats that have no batched path. */
static inline void lshmoe_kn_rows_by_row(LSHMOE_KN_QUANT_ROWS_ARGS, lshmoe_kn_quant_row_fn code,
                                         lshmoe_kn_quant_row_sse_fn measure)
{
    for (size_t r = 0; r < nrows; r++) {
        const float *xr = x + r * x_stride;
        uint8_t *dr = dst + r * dst_stride;
        if (y == NULL) {
            code(fmt, xr, hidden, dr);
            continue;
        }
        double e = measure(fmt, xr, hidden, dtype, dr, y + r * hidden);
        if (sse != NULL)
            sse[r] = e;
    }
}

void lshmoe_kn_quant_rows_sse_scalar(LSHMOE_KN_QUANT_ROWS_ARGS);
void lshmoe_kn_quant_rows_sse_avx2(LSHMOE_KN_QUANT_ROWS_ARGS);
void lshmoe_kn_quant_rows_sse_avx512(LSHMOE_KN_QUANT_ROWS_ARGS);

/* The row quantizers' (x86/quant_*.c) measurement of a decoded row y, for
 * the cross-block search (x86/lowbit_lanes_*.c): y rounded to dtype in
 * place, then its squared distance to x in the reference's order. */
double lshmoe_kn_measure_row_avx2(const float *x, float *y, size_t n, lshmoe_dtype_t dtype);
double lshmoe_kn_measure_row_avx512(const float *x, float *y, size_t n, lshmoe_dtype_t dtype);

#endif /* LSHMOE_KERNELS_CPU_QUANT_ISA_H */
