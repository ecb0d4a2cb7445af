/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The device codec (lshmoe/codec_device*.c) with the CUDA kernels against
 * the CPU codec: every check of tests/dev_codec_check.c (the lsh codec and
 * every row format without clustering, fp32/fp16/bf16, two hidden sizes,
 * several budgets: wire bytes and decisions equal to the CPU encoder's;
 * CPU bytes, also of LSH with coded centroids, decoded into the CPU
 * decoder's tokens; damaged segments CORRUPT with nothing written; no
 * allocation on a second call) through the CUDA ops table, on one stream.
 * The fast suite runs the same checks through a host emulation of the ops
 * (test_device_orchestration). Skips (77) without a GPU.
 */
#include <stdio.h>

#include <cuda_runtime.h>

#include "gpu_check.h"
#include "kernels/cuda/lsh_cuda.h"
#include "tests/dev_codec_check.h"

int gpu_failures, gpu_checks;

int main(void)
{
    if (lshmoe_kn_cuda_device_count() == 0) {
        printf("SKIP: no usable CUDA device (no GPU or no driver)\n");
        return GPU_EXIT_SKIP;
    }
    const lshmoe_kn_dev_ops_t *ops = lshmoe_kn_dev_ops(LSHMOE_KN_MEM_CUDA);
    GPU_CHECK(ops != NULL, "cuda ops table");
    cudaStream_t s;
    GPU_CHECK(cudaStreamCreate(&s) == cudaSuccess, "stream");
    if (ops != NULL)
        dev_codec_check_run(ops, s);
    cudaStreamDestroy(s);
    printf("%d checks, %d failed\n", gpu_checks, gpu_failures);
    return gpu_failures ? 1 : 0;
}
