/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* What the device benchmarks (codec_perf_cuda.c, alltoall_perf_nccl.c)
 * share: the median of CUDA-event timings. */
#ifndef LSHMOE_BENCH_GPU_BENCH_H
#define LSHMOE_BENCH_GPU_BENCH_H

#include <stdlib.h>

static inline int gpu_bench_cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n) (sorts v in place). */
static inline float gpu_bench_median(float *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, gpu_bench_cmp_float);
    return n % 2 ? v[n / 2] : 0.5f * (v[n / 2 - 1] + v[n / 2]);
}

#endif
