/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The NCCL transport on a one-rank communicator: the descriptor helper,
 * the host-staged collectives the core uses (allgather, alltoall,
 * alltoallv without a stream), the stream-ordered device alltoallv
 * (ncclAlltoAll path), a whole lshmoe_alltoallv over NCCL with host
 * and with device buffers on a stream (the own segment, float and integer
 * dtypes), a fixed row-format codec accepted on device buffers and LSH
 * with coded centroids refused by name, and the clear refusal of mixed
 * host/device buffers.
 * One rank cannot reach the grouped ncclSend/ncclRecv path with data
 * (every layout of one peer is uniform): that needs two GPUs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>
#include <nccl.h>

#include "collectives/transport.h"
#include "gpu_check.h"
#include "gpu_nccl.h"
#include "kernels/cuda/lsh_cuda.h"
#include "lshmoe.h"
#include "lshmoe_nccl.h"

int gpu_failures, gpu_checks;

static void check_transport(const lshmoe_comm_desc_t *desc)
{
    const lshmoe_tl_ops_t *ops = NULL;
    void *tl = NULL;
    GPU_CHECK(lshmoe_tl_select("nccl", desc, &ops) == LSHMOE_OK, "select");
    if (ops == NULL)
        return;
    GPU_CHECK(ops->init(desc, &tl) == LSHMOE_OK, "init");
    if (tl == NULL)
        return;

    uint64_t a = 0x1122334455667788ull, b = 0;
    GPU_CHECK(ops->allgather(tl, &a, sizeof a, &b) == LSHMOE_OK, "allgather");
    GPU_CHECK(b == a, "allgather result");
    b = 0;
    GPU_CHECK(ops->alltoall(tl, &a, sizeof a, &b) == LSHMOE_OK, "alltoall");
    GPU_CHECK(b == a, "alltoall result");

    char hs[1000], hr[1000];
    for (size_t i = 0; i < sizeof hs; i++)
        hs[i] = (char)(i * 7 + 1);
    memset(hr, 0, sizeof hr);
    const void *sp[1] = {hs};
    void *rp[1] = {hr};
    size_t sb[1] = {sizeof hs}, rb[1] = {sizeof hr};
    GPU_CHECK(ops->alltoallv(tl, sp, sb, rp, rb, NULL) == LSHMOE_OK, "host alltoallv");
    GPU_CHECK(memcmp(hs, hr, sizeof hs) == 0, "host alltoallv result");

    /* Device buffers on a stream: queued, then synchronised by the caller. */
    void *ds, *dr;
    cudaStream_t s;
    GPU_CUDA(cudaStreamCreate(&s));
    GPU_CUDA(cudaMalloc(&ds, sizeof hs));
    GPU_CUDA(cudaMalloc(&dr, sizeof hs));
    GPU_CUDA(cudaMemcpy(ds, hs, sizeof hs, cudaMemcpyHostToDevice));
    GPU_CUDA(cudaMemset(dr, 0, sizeof hs));
    const void *dsp[1] = {ds};
    void *drp[1] = {dr};
    GPU_CHECK(ops->alltoallv(tl, dsp, sb, drp, rb, s) == LSHMOE_OK, "device alltoallv");
    GPU_CUDA(cudaStreamSynchronize(s));
    memset(hr, 0, sizeof hr);
    GPU_CUDA(cudaMemcpy(hr, dr, sizeof hr, cudaMemcpyDeviceToHost));
    GPU_CHECK(memcmp(hs, hr, sizeof hs) == 0, "device alltoallv result");
    cudaFree(ds);
    cudaFree(dr);
    cudaStreamDestroy(s);
    ops->finalize(tl);
}

/* Allocator hooks that count what lshmoe asks of them. */
static int hook_allocs, hook_frees, hook_user;

static int count_alloc(void *user, size_t bytes, void *stream, void **ptr_p)
{
    (void)stream;
    GPU_CHECK(user == &hook_user, "alloc hook gets its user pointer");
    hook_allocs++;
    return cudaMalloc(ptr_p, bytes ? bytes : 1) != cudaSuccess;
}

static void count_free(void *user, void *ptr, size_t bytes, void *stream)
{
    (void)bytes;
    (void)stream;
    GPU_CHECK(user == &hook_user, "free hook gets its user pointer");
    hook_frees++;
    cudaFree(ptr);
}

static void check_alltoallv(const lshmoe_comm_desc_t *desc)
{
    lshmoe_ctx_t *ctx = NULL;
    lshmoe_status_t st = lshmoe_ctx_create(desc, NULL, &ctx);
    GPU_CHECK(st == LSHMOE_OK, "ctx_create over nccl: %s", lshmoe_status_name(st));
    if (ctx == NULL)
        return;
    enum { N = 256, H = 64 };
    static float send[N * H], recv[N * H];
    for (size_t i = 0; i < N * H; i++)
        send[i] = (float)((i * 2654435761u) % 1000) / 100.0f;
    size_t cnt[1] = {N}, dis[1] = {0};
    st = lshmoe_alltoallv(ctx, send, cnt, dis, recv, cnt, dis, LSHMOE_DTYPE_FP32, H, NULL);
    GPU_CHECK(st == LSHMOE_OK, "alltoallv over nccl: %s", lshmoe_last_error(ctx));
    /* One rank: its own segment travels exact. */
    GPU_CHECK(memcmp(send, recv, sizeof send) == 0, "own segment exact");

    /* Device buffers on a stream: the own segment arrives exact on the
     * stream; bf16 and int32 (plain path) too. */
    void *dsend, *drecv;
    cudaStream_t s;
    GPU_CUDA(cudaStreamCreate(&s));
    GPU_CUDA(cudaMalloc(&dsend, sizeof send));
    GPU_CUDA(cudaMalloc(&drecv, sizeof send));
    GPU_CUDA(cudaMemcpy(dsend, send, sizeof send, cudaMemcpyHostToDevice));
    GPU_CUDA(cudaMemset(drecv, 0, sizeof send));
    GPU_CHECK(lshmoe_ctx_set_device_allocator(ctx, count_alloc, NULL, NULL) ==
              LSHMOE_ERR_INVALID_ARG, "one hook alone is refused");
    GPU_CHECK(lshmoe_ctx_set_device_allocator(ctx, count_alloc, count_free, &hook_user) ==
              LSHMOE_OK, "allocator hooks: %s", lshmoe_last_error(NULL));
    lshmoe_dtype_t dts[] = {LSHMOE_DTYPE_FP32, LSHMOE_DTYPE_BF16, LSHMOE_DTYPE_INT32};
    for (int d = 0; d < 3; d++) {
        st = lshmoe_alltoallv(ctx, dsend, cnt, dis, drecv, cnt, dis, dts[d], H, s);
        GPU_CHECK(st == LSHMOE_OK, "device alltoallv (dtype %d): %s", (int)dts[d],
                  lshmoe_last_error(ctx));
        GPU_CUDA(cudaStreamSynchronize(s));
        GPU_CUDA(cudaMemcpy(recv, drecv, sizeof recv, cudaMemcpyDeviceToHost));
        GPU_CHECK(memcmp(send, recv, sizeof send) == 0, "device own segment exact");
    }
    /* The workspace came from the hooks, and warm calls take nothing more. */
    int warm = hook_allocs;
    GPU_CHECK(warm > 0, "the device workspace came from the hooks");
    for (int i = 0; i < 4; i++)
        GPU_CHECK(lshmoe_alltoallv(ctx, dsend, cnt, dis, drecv, cnt, dis, LSHMOE_DTYPE_FP32, H,
                                   s) == LSHMOE_OK, "warm call");
    GPU_CHECK(hook_allocs == warm, "warm calls allocated: %d then %d", warm, hook_allocs);
    /* NULL stream with device buffers: the legacy default stream */
    st = lshmoe_alltoallv(ctx, dsend, cnt, dis, drecv, cnt, dis, LSHMOE_DTYPE_FP32, H, NULL);
    GPU_CHECK(st == LSHMOE_OK, "device alltoallv, NULL stream: %s", lshmoe_last_error(ctx));
    /* Mixed host and device buffers: a clear error, nothing read. */
    st = lshmoe_alltoallv(ctx, dsend, cnt, dis, recv, cnt, dis, LSHMOE_DTYPE_FP32, H, s);
    GPU_CHECK(st == LSHMOE_ERR_INVALID_ARG, "device send, host recv: %s",
              lshmoe_status_name(st));
    GPU_CHECK(strstr(lshmoe_last_error(ctx), "same memory") != NULL, "reason: %s",
              lshmoe_last_error(ctx));
    st = lshmoe_alltoallv(ctx, send, cnt, dis, recv, cnt, dis, LSHMOE_DTYPE_FP32, H, s);
    GPU_CHECK(st == LSHMOE_ERR_UNSUPPORTED, "host buffers with a stream: %s",
              lshmoe_status_name(st));
    cudaFree(dsend);
    cudaFree(drecv);
    cudaStreamDestroy(s);
    lshmoe_ctx_destroy(ctx);
    ctx = NULL;
    GPU_CHECK(hook_frees == hook_allocs, "every hook allocation went back to the hook: %d "
              "allocations, %d frees", hook_allocs, hook_frees);
    lshmoe_ctx_destroy(ctx);
}

/* A fixed row-format codec on device buffers: accepted (the own segment
 * arrives exact); LSH with coded centroids: refused by name, not yet on
 * the device. One rank sends only its own segment, so the codec itself is
 * tested segment by segment in test_device_codec. */
static void check_fixed_codec(const lshmoe_comm_desc_t *desc)
{
    const int modes[] = {LSHMOE_CODEC_INT8, LSHMOE_CODEC_INT4E, LSHMOE_CODEC_LSH_INT8};
    enum { N = 128, H = 96 };
    static float send[N * H], recv[N * H];
    for (size_t i = 0; i < N * H; i++)
        send[i] = (float)((i * 2654435761u) % 1000) / 100.0f;
    void *dsend, *drecv;
    GPU_CUDA(cudaMalloc(&dsend, sizeof send));
    GPU_CUDA(cudaMalloc(&drecv, sizeof send));
    GPU_CUDA(cudaMemcpy(dsend, send, sizeof send, cudaMemcpyHostToDevice));
    size_t cnt[1] = {N}, dis[1] = {0};
    for (int m = 0; m < 3; m++) {
        lshmoe_config_t cfg;
        lshmoe_config_init(&cfg);
        cfg.codec = modes[m];
        lshmoe_ctx_t *ctx = NULL;
        lshmoe_status_t st = lshmoe_ctx_create(desc, &cfg, &ctx);
        GPU_CHECK(st == LSHMOE_OK, "ctx_create codec %d: %s", modes[m], lshmoe_status_name(st));
        if (ctx == NULL)
            continue;
        GPU_CUDA(cudaMemset(drecv, 0, sizeof send));
        st = lshmoe_alltoallv(ctx, dsend, cnt, dis, drecv, cnt, dis, LSHMOE_DTYPE_FP32, H, NULL);
        if (modes[m] == LSHMOE_CODEC_LSH_INT8) {
            GPU_CHECK(st == LSHMOE_ERR_UNSUPPORTED && strstr(lshmoe_last_error(ctx), "lsh"),
                      "codec %d on device buffers: %s (%s)", modes[m], lshmoe_status_name(st),
                      lshmoe_last_error(ctx));
        } else {
            GPU_CHECK(st == LSHMOE_OK, "codec %d on device buffers: %s", modes[m],
                      lshmoe_last_error(ctx));
            GPU_CUDA(cudaMemcpy(recv, drecv, sizeof recv, cudaMemcpyDeviceToHost));
            GPU_CHECK(memcmp(send, recv, sizeof send) == 0, "codec %d: own segment exact",
                      modes[m]);
        }
        lshmoe_ctx_destroy(ctx);
    }
    cudaFree(dsend);
    cudaFree(drecv);
}

int main(void)
{
    ncclComm_t comm;
    lshmoe_comm_desc_t desc;
    int start = gpu_nccl_one_rank(&comm, &desc);
    if (start != 0)
        return start;
    GPU_CHECK(desc.rank == 0 && desc.nranks == 1 && desc.kind == LSHMOE_COMM_NCCL, "desc fields");
    check_transport(&desc);
    check_alltoallv(&desc);
    check_fixed_codec(&desc);
    ncclCommDestroy(comm);
    printf("%d checks, %d failed\n", gpu_checks, gpu_failures);
    return gpu_failures ? 1 : 0;
}
