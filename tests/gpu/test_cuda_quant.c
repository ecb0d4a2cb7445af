/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The device row quantizers (kernels/cuda/quant.cu) against the CPU's
 * (lshmoe_kn_quant_row): for every row format, fp32/fp16/bf16 rows and
 * hidden sizes with and without partial scale blocks, on Gaussian rows,
 * heavy-tailed rows, a zero row, rows of tiny values (scales that
 * underflow) and huge ones, the coded bytes must be equal. Skips (77)
 * without a GPU.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "gpu_check.h"
#include "kernels/common/quant_math.h"
#include "kernels/cuda/lsh_cuda.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"

int gpu_failures, gpu_checks;

#define NROWS 64

static uint64_t rng = 99;
static double gauss(void)
{
    double s = 0.0;
    for (int k = 0; k < 12; k++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        s += (double)(rng >> 11) / 9007199254740992.0;
    }
    return s - 6.0;
}

static void fill(float *x, size_t hidden)
{
    for (size_t r = 0; r < NROWS; r++) {
        float *row = x + r * hidden;
        double scale = r % 8 == 5 ? 1e-39 : r % 8 == 6 ? 1e-20 : r % 8 == 7 ? 1e30 : 1.0;
        for (size_t i = 0; i < hidden; i++) {
            double g = gauss();
            if (r % 4 == 1 && i % 97 == 3)
                g *= 40.0; /* heavy tail: clipping pays */
            row[i] = (float)(g * scale);
        }
        if (r == 2)
            memset(row, 0, hidden * sizeof *row);
    }
}

static void check(int fmt, lshmoe_dtype_t dt, size_t hidden)
{
    const size_t es = lshmoe_dtype_size(dt), rb = (size_t)lshmoe_qm_row_bytes(fmt, hidden);
    float *x = malloc(NROWS * hidden * sizeof *x), *w = malloc(hidden * sizeof *w);
    uint8_t *rows = malloc(NROWS * hidden * es), *cpu = calloc(NROWS, rb),
            *gpu = calloc(NROWS, rb);
    fill(x, hidden);
    lshmoe_row_from_f32(x, NROWS * hidden, dt, rows);
    for (size_t r = 0; r < NROWS; r++) {
        lshmoe_row_to_f32(rows + r * hidden * es, dt, hidden, w);
        for (size_t i = 0; i < hidden; i++) /* fp16 overflows the huge rows to Inf */
            if (!isfinite(w[i]))
                w[i] = 0.0f;
        lshmoe_row_from_f32(w, hidden, dt, rows + r * hidden * es);
        lshmoe_kn_quant_row(fmt, w, hidden, cpu + r * rb);
    }
    void *drows, *dcodes;
    GPU_CUDA(cudaMalloc(&drows, NROWS * hidden * es));
    GPU_CUDA(cudaMalloc(&dcodes, NROWS * rb));
    GPU_CUDA(cudaMemcpy(drows, rows, NROWS * hidden * es, cudaMemcpyHostToDevice));
    GPU_CUDA(cudaMemset(dcodes, 0, NROWS * rb));
    lshmoe_status_t st = lshmoe_kn_cuda_quant_rows(fmt, drows, dt, hidden, NROWS, dcodes, NULL);
    GPU_CHECK(st == LSHMOE_OK, "quant: %s", lshmoe_error_thread_msg());
    GPU_CUDA(cudaMemcpy(gpu, dcodes, NROWS * rb, cudaMemcpyDeviceToHost));
    int bad = 0;
    for (size_t r = 0; r < NROWS; r++) {
        int same = memcmp(cpu + r * rb, gpu + r * rb, rb) == 0;
        GPU_CHECK(same, "format %d %s hidden %zu row %zu: codes differ from the CPU's", fmt,
                  lshmoe_dtype_name(dt), hidden, r);
        bad += !same;
    }
    printf("format %d %-4s hidden %5zu: %d rows, %s\n", fmt, lshmoe_dtype_name(dt), hidden,
           NROWS, bad ? "DIFFERENT" : "codes identical");
    cudaFree(drows);
    cudaFree(dcodes);
    free(x);
    free(w);
    free(rows);
    free(cpu);
    free(gpu);
}

int main(void)
{
    if (lshmoe_kn_cuda_device_count() == 0) {
        printf("SKIP: no usable CUDA device (no GPU or no driver)\n");
        return GPU_EXIT_SKIP;
    }
    const size_t hiddens[] = {4096, 1000, 37};
    const lshmoe_dtype_t dts[] = {LSHMOE_DTYPE_FP32, LSHMOE_DTYPE_FP16, LSHMOE_DTYPE_BF16};
    for (int fmt = LSHMOE_QM_FP8; fmt < LSHMOE_QM_COUNT; fmt++)
        for (int d = 0; d < 3; d++)
            for (int h = 0; h < 3; h++)
                check(fmt, dts[d], hiddens[h]);
    /* a non-format is an error, not a silent no-op */
    GPU_CHECK(lshmoe_kn_cuda_quant_rows(LSHMOE_QM_NATIVE, NULL, LSHMOE_DTYPE_FP32, 8, 1, NULL,
                                        NULL) == LSHMOE_ERR_INVALID_ARG, "native refused");
    printf("%d checks, %d failed\n", gpu_checks, gpu_failures);
    return gpu_failures ? 1 : 0;
}
