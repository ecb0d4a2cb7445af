/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* codec_perf --device cuda (codec_perf_cuda.c; built with the CUDA
 * kernels). Takes codec_perf's argv; returns its exit status. */
#ifndef LSHMOE_BENCH_CODEC_PERF_CUDA_H
#define LSHMOE_BENCH_CODEC_PERF_CUDA_H

int codec_perf_cuda_main(int argc, char **argv);

#include <stddef.h>

#include "lshmoe.h"

typedef struct codec_perf_cuda_opts {
    size_t tokens, hidden;
    lshmoe_dtype_t dtype;
    int hashes, cdim, reduce_dim, iters;
    const char *data;
} codec_perf_cuda_opts_t;

/* The whole device segment codec on the tokens at dx (device), timed on
 * `stream` (a cudaStream_t) beside copy_ms, the d2d copy of the same
 * bytes (codec_perf_wire.c). Returns 0, or 1 with a message. */
int codec_perf_cuda_wire(const codec_perf_cuda_opts_t *o, const void *dx, void *stream,
                         float copy_ms);

#endif
