/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Device presence and the memory kind of a pointer. Neither is an error
 * when CUDA is unusable: a build with CUDA must run on a machine without
 * a GPU and treat every pointer as host memory there.
 */
#include <cuda_runtime.h>

#include "kernels/cuda/lsh_cuda.h"

extern "C" int lshmoe_kn_cuda_device_count(void)
{
    /* Not cached: CUDA caches its own initialisation result. */
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError(); /* leave no sticky error behind */
        return 0;
    }
    return n;
}

extern "C" int lshmoe_kn_cuda_ptr_is_device(const void *ptr)
{
    if (ptr == NULL || lshmoe_kn_cuda_device_count() == 0)
        return 0;
    cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, ptr) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}
