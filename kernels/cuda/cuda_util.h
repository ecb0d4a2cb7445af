/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Helpers private to the .cu files of kernels/cuda/: CUDA errors to lshmoe statuses,
 * element loads of every float dtype through kernels/common/half_math.h.
 */
#ifndef LSHMOE_KN_CUDA_UTIL_H
#define LSHMOE_KN_CUDA_UTIL_H

#include <stdint.h>

#include <cuda_runtime.h>

#include "kernels/common/hd.h"
#include "kernels/common/half_math.h"
extern "C" {
#include "lshmoe/common/error.h"
}

/* Returns LSHMOE_ERR_CUDA naming the call and CUDA's message. */
#define KN_CUDA_TRY(call)                                                     \
    do {                                                                      \
        cudaError_t e_ = (call);                                              \
        if (e_ != cudaSuccess)                                                \
            return lshmoe_error(LSHMOE_ERR_CUDA, "%s: %s (%s)", #call,        \
                                cudaGetErrorString(e_), cudaGetErrorName(e_)); \
    } while (0)

/* After a launch: configuration errors are reported at once. */
#define KN_CUDA_LAUNCHED(what) KN_CUDA_TRY(cudaGetLastError())

static inline cudaStream_t kn_stream(void *stream)
{
    return (cudaStream_t)stream;
}

static inline size_t kn_elem_size(lshmoe_dtype_t dtype)
{
    return dtype == LSHMOE_DTYPE_FP32 ? 4 : 2;
}

/* Element i of a row of `dtype` (fp32, fp16 or bf16), widened exactly. */
static __device__ __forceinline__ float kn_load(const unsigned char *row, int dtype,
                                                size_t i)
{
    if (dtype == LSHMOE_DTYPE_FP32)
        return ((const float *)row)[i];
    uint16_t h = ((const uint16_t *)row)[i];
    return dtype == LSHMOE_DTYPE_BF16 ? lshmoe_kn_bf16_to_f32(h)
                                      : lshmoe_kn_f16_to_f32(h);
}

/* Is p aligned to an element of the float dtype (what kn_load and the
 * element stores of the row kernels need)? */
static inline int kn_elem_aligned(const void *p, int dtype)
{
    return (uintptr_t)p % kn_elem_size((lshmoe_dtype_t)dtype) == 0;
}

/* The largest of every thread's m over the block, for every thread.
 * blockDim.x is a power of two and red (shared memory) holds blockDim.x
 * floats; red may be reused as soon as this returns. */
static __device__ __forceinline__ float kn_block_max(float m, float *red)
{
    red[threadIdx.x] = m;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s /= 2) {
        if (threadIdx.x < s && red[threadIdx.x + s] > red[threadIdx.x])
            red[threadIdx.x] = red[threadIdx.x + s];
        __syncthreads();
    }
    m = red[0];
    __syncthreads();
    return m;
}

#endif /* LSHMOE_KN_CUDA_UTIL_H */
