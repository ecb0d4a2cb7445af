/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* codec_perf --device cuda (codec_perf_cuda.c; built with the CUDA
 * kernels). Takes codec_perf's argv; returns its exit status. */
#ifndef LSHMOE_BENCH_CODEC_PERF_CUDA_H
#define LSHMOE_BENCH_CODEC_PERF_CUDA_H

int codec_perf_cuda_main(int argc, char **argv);

#endif
