/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * alltoall_perf --transport nccl: lshmoe's NCCL transport on one GPU (a
 * one-rank communicator), its stream-ordered device alltoallv beside the
 * plain ncclAlltoAll and a device-to-device copy of the same bytes, all on
 * one stream in the same run, timed with CUDA events (median of --iters).
 * It measures the transport's overhead over NCCL, not compression: on one
 * rank every byte is the rank's own segment, and lshmoe_alltoallv does not
 * take device memory in this version. Several GPUs need several ranks
 * (not wired here yet).
 *
 * Options: -b BYTES (1 MiB) -e BYTES (64 MiB) -f FACTOR (2) --iters N (20).
 * Exit 77 when no device.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>
#include <nccl.h>

#include "benchmarks/alltoall_perf_nccl.h"
#include "collectives/transport.h"
#include "benchmarks/gpu_bench.h"
#include "kernels/cuda/lsh_cuda.h"
#include "lshmoe_nccl.h"

#define TRY(call)                                                             \
    do {                                                                      \
        cudaError_t e_ = (call);                                              \
        if (e_ != cudaSuccess) {                                              \
            fprintf(stderr, "alltoall_perf: %s: %s\n", #call, cudaGetErrorString(e_)); \
            return 1;                                                         \
        }                                                                     \
    } while (0)

#define NTRY(call)                                                            \
    do {                                                                      \
        ncclResult_t r_ = (call);                                             \
        if (r_ != ncclSuccess) {                                              \
            fprintf(stderr, "alltoall_perf: %s: %s\n", #call, ncclGetErrorString(r_)); \
            return 1;                                                         \
        }                                                                     \
    } while (0)

int alltoall_perf_nccl_main(int argc, char **argv)
{
    size_t b0 = (size_t)1 << 20, b1 = (size_t)64 << 20;
    double f = 2;
    int iters = 20;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(argv[i], "--transport"))
            i++;
        else if (!strcmp(argv[i], "-b"))
            b0 = strtoull(v, NULL, 10), i++;
        else if (!strcmp(argv[i], "-e"))
            b1 = strtoull(v, NULL, 10), i++;
        else if (!strcmp(argv[i], "-f"))
            f = atof(v), i++;
        else if (!strcmp(argv[i], "--iters"))
            iters = atoi(v), i++;
        else
            return fprintf(stderr, "alltoall_perf --transport nccl: unknown option %s\n",
                           argv[i]), 2;
    }
    if (b0 == 0 || b1 < b0 || f <= 1 || iters < 1)
        return fprintf(stderr, "alltoall_perf: bad -b/-e/-f/--iters\n"), 2;
    if (lshmoe_kn_cuda_device_count() == 0) {
        printf("SKIP: no usable CUDA device\n");
        return 77;
    }
    ncclUniqueId id;
    ncclComm_t comm;
    NTRY(ncclGetUniqueId(&id));
    NTRY(ncclCommInitRank(&comm, 1, id, 0));
    lshmoe_comm_desc_t desc;
    if (lshmoe_comm_desc_from_nccl(comm, &desc) != LSHMOE_OK)
        return fprintf(stderr, "alltoall_perf: descriptor\n"), 1;
    const lshmoe_tl_ops_t *ops;
    void *tl;
    if (lshmoe_tl_select("nccl", &desc, &ops) != LSHMOE_OK || ops->init(&desc, &tl) != LSHMOE_OK)
        return fprintf(stderr, "alltoall_perf: nccl transport unavailable\n"), 1;

    void *ds, *dr;
    cudaStream_t s;
    TRY(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    TRY(cudaMalloc(&ds, b1));
    TRY(cudaMalloc(&dr, b1));
    TRY(cudaMemset(ds, 1, b1));
    cudaEvent_t e[4];
    for (int i = 0; i < 4; i++)
        TRY(cudaEventCreate(&e[i]));
    float *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = calloc((size_t)iters, sizeof(float));
    printf("# alltoall_perf --transport nccl: 1 GPU, 1 rank, median of %d\n", iters);
    printf("%12s %12s %12s %12s %10s %10s\n", "bytes", "nccl_us", "lshmoe_us", "d2d_us",
           "lshmoe/nccl", "lshmoe/d2d");
    for (size_t bytes = b0; bytes <= b1; bytes = (size_t)((double)bytes * f)) {
        const void *sp[1] = {ds};
        void *rp[1] = {dr};
        size_t sb[1] = {bytes}, rb[1] = {bytes};
        for (int it = -2; it < iters; it++) {
            TRY(cudaEventRecord(e[0], s));
            NTRY(ncclAlltoAll(ds, dr, bytes, ncclUint8, comm, s));
            TRY(cudaEventRecord(e[1], s));
            if (ops->alltoallv(tl, sp, sb, rp, rb, s) != LSHMOE_OK)
                return fprintf(stderr, "alltoall_perf: lshmoe alltoallv failed\n"), 1;
            TRY(cudaEventRecord(e[2], s));
            TRY(cudaMemcpyAsync(dr, ds, bytes, cudaMemcpyDeviceToDevice, s));
            TRY(cudaEventRecord(e[3], s));
            TRY(cudaEventSynchronize(e[3]));
            if (it < 0)
                continue;
            for (int k = 0; k < 3; k++)
                TRY(cudaEventElapsedTime(&t[k][it], e[k], e[k + 1]));
        }
        float a = gpu_bench_median(t[0], iters), l = gpu_bench_median(t[1], iters);
        float c = gpu_bench_median(t[2], iters);
        printf("%12zu %12.1f %12.1f %12.1f %10.2f %10.2f\n", bytes, 1e3 * a, 1e3 * l,
               1e3 * c, l / a, l / c);
    }
    ops->finalize(tl);
    ncclCommDestroy(comm);
    cudaFree(ds);
    cudaFree(dr);
    for (int i = 0; i < 3; i++)
        free(t[i]);
    return 0;
}
