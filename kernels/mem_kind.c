/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Which memory a buffer lives in: the key of the kernels' dispatch by
 * memory kind. The only place outside kernels/cuda/ that knows whether the
 * CUDA kernels were built, so the core never tests LSHMOE_HAVE_CUDA.
 */
#include "kernels/kernels.h"
#include "lshmoe_build_config.h"

#if LSHMOE_HAVE_CUDA
#include "kernels/cuda/lsh_cuda.h"
#endif

lshmoe_kn_mem_t lshmoe_kn_mem_kind(const void *ptr)
{
#if LSHMOE_HAVE_CUDA
    if (lshmoe_kn_cuda_ptr_is_device(ptr))
        return LSHMOE_KN_MEM_CUDA;
#else
    (void)ptr;
#endif
    return LSHMOE_KN_MEM_HOST;
}

const char *lshmoe_kn_mem_name(lshmoe_kn_mem_t kind)
{
    return kind == LSHMOE_KN_MEM_CUDA ? "CUDA device" : "host";
}

const lshmoe_kn_dev_ops_t *lshmoe_kn_dev_ops(lshmoe_kn_mem_t kind)
{
#if LSHMOE_HAVE_CUDA
    if (kind == LSHMOE_KN_MEM_CUDA)
        return &lshmoe_kn_cuda_dev_ops;
#else
    (void)kind;
#endif
    return NULL;
}
