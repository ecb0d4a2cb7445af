/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The device codec's orchestration (lshmoe/codec_device*.c) in CI, without
 * a GPU: every check of tests/dev_codec_check.c run through the device ops
 * table emulated in host memory with the CPU kernels (tests/dev_ops_host.c).
 * This tests what the core queues, where, and what it decides from what it
 * reads back, against the CPU codec byte for byte; it does not test the
 * CUDA kernels (the gpu suite's test_device_codec runs the same checks
 * through them on a GPU). Also: no emulated allocation is left behind.
 */
#include <stdio.h>

#include "tests/dev_codec_check.h"
#include "tests/dev_ops_host.h"
#include "tests/gpu/gpu_check.h"

int gpu_failures, gpu_checks;

int main(void)
{
    dev_codec_check_run(&dev_ops_host, NULL);
    GPU_CHECK(dev_ops_host_live() == 0, "%ld emulated device allocations left",
              dev_ops_host_live());
    printf("%d checks, %d failed\n", gpu_checks, gpu_failures);
    return gpu_failures ? 1 : 0;
}
