/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The start of the gpu tests that run over NCCL: a usable device, a
 * one-rank communicator and lshmoe's descriptor of it. Header-only so
 * that each test stays one file on bare GPU images.
 */
#ifndef LSHMOE_GPU_NCCL_H
#define LSHMOE_GPU_NCCL_H

#include <stdio.h>

#include <nccl.h>

#include "gpu_check.h"
#include "kernels/cuda/lsh_cuda.h"
#include "lshmoe_nccl.h"

/* 0 with *comm_p and *desc set; GPU_EXIT_SKIP (reason printed) without a
 * usable device; 1 (a failed check) when NCCL or the descriptor fails. */
static inline int gpu_nccl_one_rank(ncclComm_t *comm_p, lshmoe_comm_desc_t *desc)
{
    if (lshmoe_kn_cuda_device_count() == 0) {
        printf("SKIP: no usable CUDA device (no GPU or no driver)\n");
        return GPU_EXIT_SKIP;
    }
    ncclUniqueId id;
    *comm_p = NULL;
    ncclResult_t r = ncclGetUniqueId(&id);
    if (r == ncclSuccess)
        r = ncclCommInitRank(comm_p, 1, id, 0);
    GPU_CHECK(r == ncclSuccess, "one-rank communicator: %s", ncclGetErrorString(r));
    if (r != ncclSuccess)
        return 1;
    lshmoe_status_t st = lshmoe_comm_desc_from_nccl(*comm_p, desc);
    GPU_CHECK(st == LSHMOE_OK, "descriptor from the communicator: %s",
              lshmoe_last_error(NULL));
    return st == LSHMOE_OK ? 0 : 1;
}

#endif /* LSHMOE_GPU_NCCL_H */
