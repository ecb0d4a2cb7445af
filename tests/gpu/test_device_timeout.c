/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The device path's bounded waits on a real stream: a one-rank NCCL
 * communicator, LSHMOE_TIMEOUT_S=1, and the caller's stream held on
 * purpose by a host function (as NCCL kernels waiting for a dead peer
 * would hold it) that lets go 2 s after the deadline (BLOCK_MAX_S). A
 * device lshmoe_alltoallv must return LSHMOE_ERR_TIMEOUT, its wait expired
 * after the configured 1 s (the message says so, naming the wait: encode's
 * count read-back), with the communicator aborted; the call returns once
 * the hold ends (ncclCommAbort waits for it). After that every later call
 * on the context fails at once with LSHMOE_ERR_TIMEOUT, naming the same
 * wait. The logic of the waits is also tested on the CPU
 * (tests/test_dev_wait.c).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cuda_runtime.h>
#include <nccl.h>

#include "gpu_check.h"
#include "gpu_nccl.h"
#include "kernels/cuda/lsh_cuda.h"
#include "lshmoe.h"
#include "lshmoe_nccl.h"

int gpu_failures, gpu_checks;

#define TIMEOUT_S 1.0
/* The hold lets itself go this long after it starts. ncclCommAbort, which
 * the expired wait calls, was seen on an H200 to return only once the
 * stream's hold ended (it ends NCCL's own kernels, not a host function),
 * so the hold must end by itself: 2 s after the deadline. */
#define BLOCK_MAX_S (TIMEOUT_S + 2.0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int release_flag;

/* Runs on CUDA's host-function thread: holds the stream (calls no CUDA). */
static void CUDART_CB hold_stream(void *arg)
{
    (void)arg;
    const double t0 = now_s();
    while (!__atomic_load_n(&release_flag, __ATOMIC_ACQUIRE) && now_s() - t0 < BLOCK_MAX_S) {
        struct timespec nap = {0, 1000000L};
        nanosleep(&nap, NULL);
    }
}

static int has(const char *s, const char *part)
{
    return s != NULL && strstr(s, part) != NULL;
}

static void check_timeout(const lshmoe_comm_desc_t *desc)
{
    lshmoe_ctx_t *ctx = NULL;
    lshmoe_status_t st = lshmoe_ctx_create(desc, NULL, &ctx);
    GPU_CHECK(st == LSHMOE_OK, "ctx_create over nccl: %s", lshmoe_status_name(st));
    if (ctx == NULL)
        return;
    enum { N = 256, H = 64 };
    static float send[N * H];
    for (size_t i = 0; i < N * H; i++)
        send[i] = (float)((i * 2654435761u) % 1000) / 100.0f;
    size_t cnt[1] = {N}, dis[1] = {0};
    void *dsend, *drecv;
    cudaStream_t s;
    GPU_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    GPU_CUDA(cudaMalloc(&dsend, sizeof send));
    GPU_CUDA(cudaMalloc(&drecv, sizeof send));
    GPU_CUDA(cudaMemcpy(dsend, send, sizeof send, cudaMemcpyHostToDevice));

    /* healthy first: the same call succeeds */
    st = lshmoe_alltoallv(ctx, dsend, cnt, dis, drecv, cnt, dis, LSHMOE_DTYPE_FP32, H, s);
    GPU_CHECK(st == LSHMOE_OK, "healthy device alltoallv: %s", lshmoe_last_error(ctx));
    GPU_CUDA(cudaStreamSynchronize(s));

    /* the stream held: the call must give up after about TIMEOUT_S */
    __atomic_store_n(&release_flag, 0, __ATOMIC_RELEASE);
    GPU_CUDA(cudaLaunchHostFunc(s, hold_stream, NULL));
    double t0 = now_s();
    st = lshmoe_alltoallv(ctx, dsend, cnt, dis, drecv, cnt, dis, LSHMOE_DTYPE_FP32, H, s);
    double took = now_s() - t0;
    GPU_CHECK(st == LSHMOE_ERR_TIMEOUT, "held stream: %s (%s)", lshmoe_status_name(st),
              lshmoe_last_error(ctx));
    /* at the deadline, not before; back once the hold ends, not later */
    GPU_CHECK(took >= TIMEOUT_S && took < BLOCK_MAX_S + 4.0,
              "the call gave up after %.3f s, LSHMOE_TIMEOUT_S is %g, the hold %g s", took,
              TIMEOUT_S, BLOCK_MAX_S);
    GPU_CHECK(has(lshmoe_last_error(ctx), "encode: count read-back: not done after 1 s"),
              "message: %s", lshmoe_last_error(ctx));
    printf("held stream: %s after %.3f s: %s\n", lshmoe_status_name(st), took,
           lshmoe_last_error(ctx));

    /* released: the stream drains; the communicator stays aborted */
    __atomic_store_n(&release_flag, 1, __ATOMIC_RELEASE);
    GPU_CUDA(cudaStreamSynchronize(s));
    lshmoe_dtype_t dts[] = {LSHMOE_DTYPE_FP32, LSHMOE_DTYPE_INT32};
    for (int d = 0; d < 2; d++) {
        t0 = now_s();
        st = lshmoe_alltoallv(ctx, dsend, cnt, dis, drecv, cnt, dis, dts[d], H, s);
        took = now_s() - t0;
        GPU_CHECK(st == LSHMOE_ERR_TIMEOUT, "later call (dtype %d): %s (%s)", (int)dts[d],
                  lshmoe_status_name(st), lshmoe_last_error(ctx));
        GPU_CHECK(has(lshmoe_last_error(ctx), "encode: count read-back"),
                  "later call names the wait: %s", lshmoe_last_error(ctx));
        GPU_CHECK(took < TIMEOUT_S, "later call took %.3f s", took);
    }
    GPU_CUDA(cudaStreamSynchronize(s));
    cudaFree(dsend);
    cudaFree(drecv);
    cudaStreamDestroy(s);
    lshmoe_ctx_destroy(ctx);
}

int main(void)
{
    setenv("LSHMOE_TIMEOUT_S", "1", 1);
    ncclComm_t comm;
    lshmoe_comm_desc_t desc;
    int start = gpu_nccl_one_rank(&comm, &desc);
    if (start != 0)
        return start;
    check_timeout(&desc);
    /* no ncclCommDestroy: the timeout aborted the communicator, which
     * frees it (ncclCommAbort) */
    printf("%d checks, %d failed\n", gpu_checks, gpu_failures);
    return gpu_failures ? 1 : 0;
}
