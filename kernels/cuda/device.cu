/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Device presence and the memory kind of a pointer. Neither is an error
 * when CUDA is unusable: a build with CUDA must run on a machine without
 * a GPU and treat every pointer as host memory there. Also the ops table
 * of CUDA device memory (kernels.h), through which the core reaches every
 * launcher.
 */
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_util.h"
#include "kernels/cuda/lsh_cuda.h"
#include "kernels/cuda/moe_cuda.h"

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

/* ---- the ops table of LSHMOE_KN_MEM_CUDA (kernels.h) ------------------- */

static lshmoe_status_t dev_alloc(size_t bytes, void **ptr_p)
{
    KN_CUDA_TRY(cudaMalloc(ptr_p, bytes ? bytes : 1));
    return LSHMOE_OK;
}

static void dev_free(void *ptr)
{
    if (ptr != NULL)
        (void)cudaFree(ptr);
}

static lshmoe_status_t dev_copy(void *dst, const void *src, size_t bytes, void *stream)
{
    if (bytes == 0)
        return LSHMOE_OK;
    KN_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, kn_stream(stream)));
    return LSHMOE_OK;
}

static lshmoe_status_t dev_zero(void *dst, size_t bytes, void *stream)
{
    if (bytes == 0)
        return LSHMOE_OK;
    KN_CUDA_TRY(cudaMemsetAsync(dst, 0, bytes, kn_stream(stream)));
    return LSHMOE_OK;
}

static lshmoe_status_t dev_sync(void *stream)
{
    KN_CUDA_TRY(cudaStreamSynchronize(kn_stream(stream)));
    return LSHMOE_OK;
}

/* cudaStreamQuery's "not ready" is an answer, not an error: some runtimes
 * still record it as the thread's last error, which the next launch check
 * (cudaGetLastError) would then report; clear it, and only it. */
static lshmoe_status_t dev_query(void *stream, int *done_p)
{
    cudaError_t e = cudaStreamQuery(kn_stream(stream));
    *done_p = e == cudaSuccess;
    if (e == cudaErrorNotReady) {
        if (cudaPeekAtLastError() == cudaErrorNotReady)
            (void)cudaGetLastError();
        return LSHMOE_OK;
    }
    KN_CUDA_TRY(e);
    return LSHMOE_OK;
}

static lshmoe_status_t dev_hasher_create(const lshmoe_kn_lsh_params_t *params, size_t hidden,
                                         void *stream, void **hasher_p)
{
    lshmoe_kn_cuda_hasher_t *h = NULL;
    lshmoe_status_t st = lshmoe_kn_cuda_hasher_create(params, hidden, stream, &h);
    *hasher_p = h;
    return st;
}

static void dev_hasher_destroy(void *hasher)
{
    lshmoe_kn_cuda_hasher_destroy((lshmoe_kn_cuda_hasher_t *)hasher);
}

static lshmoe_status_t dev_hash(const void *hasher, const void *tokens, lshmoe_dtype_t dtype,
                                size_t ntokens, uint64_t *keys, void *stream)
{
    return lshmoe_kn_cuda_hash((const lshmoe_kn_cuda_hasher_t *)hasher, tokens, dtype,
                               ntokens, keys, stream);
}

extern "C" const lshmoe_kn_dev_ops_t lshmoe_kn_cuda_dev_ops = {
    "cuda",
    (void *)cudaStreamLegacy,
    dev_alloc,
    dev_free,
    dev_copy,
    dev_zero,
    dev_sync,
    dev_hasher_create,
    dev_hasher_destroy,
    dev_hash,
    lshmoe_kn_cuda_group_ws_size,
    lshmoe_kn_cuda_group,
    lshmoe_kn_cuda_centroids,
    lshmoe_kn_cuda_guard_sums,
    lshmoe_kn_cuda_sample_keys,
    lshmoe_kn_cuda_pack_index,
    lshmoe_kn_cuda_seal,
    lshmoe_kn_cuda_check_segment,
    lshmoe_kn_cuda_unpack,
    lshmoe_kn_cuda_moe_gather,
    lshmoe_kn_cuda_moe_combine,
    dev_query,
    lshmoe_kn_cuda_group_bits,
    lshmoe_kn_cuda_quant_rows_sse,
    lshmoe_kn_cuda_ordered_sums,
    lshmoe_kn_cuda_check_rows,
    lshmoe_kn_cuda_dequant_expand,
    lshmoe_kn_cuda_residual_encode,
    lshmoe_kn_cuda_residual_check,
    lshmoe_kn_cuda_residual_decode,
};
