/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The NCCL transport. NCCL moves device memory only, on a CUDA stream:
 *  - alltoallv with a stream: the pointers are device memory; the exchange
 *    is queued on the caller's stream and the call returns (stream-ordered,
 *    no host synchronisation). Uniform sizes laid out contiguously use
 *    ncclAlltoAll; anything else a grouped ncclSend/ncclRecv per peer.
 *  - allgather, alltoall and alltoallv without a stream take host memory
 *    (the core's count exchange and host segments): they are staged through
 *    a device buffer kept per transport, run on the transport's own stream,
 *    and waited for with a deadline of LSHMOE_TIMEOUT_S seconds (the
 *    timeout every transport shares).
 *    Past it the communicator is aborted (ncclCommAbort: the only way to
 *    stop a collective a peer never joins), the call returns
 *    LSHMOE_ERR_TIMEOUT, and every later call on the transport fails at
 *    once with the same status.
 *  - poll and abort serve the core's own bounded waits on the caller's
 *    stream (lshmoe/dev_wait.c): the asynchronous error, and the same
 *    abort, with the name of the wait that expired kept for later calls.
 * Errors carry ncclGetErrorString() and ncclGetLastError(). The caller's
 * communicator is used as is (not split): lshmoe's collectives must be
 * called in the same order on every rank, as the caller's own are.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>
#include <nccl.h>

#include "collectives/nccl/nccl_int.h"
#include "lshmoe/common/error.h"
#include "lshmoe/common/param.h"
#include "lshmoe/common/timer.h"

typedef struct tl_nccl {
    ncclComm_t   comm;
    int          rank, nranks;
    cudaStream_t stream;     /* for host-memory collectives */
    unsigned char *stage;    /* device staging buffer        */
    size_t       stage_bytes;
    double       timeout_s;
    int          aborted;
    char         abort_why[160]; /* what timed out: every later call says it */
} tl_nccl_t;

static lshmoe_status_t nccl_err(tl_nccl_t *t, ncclResult_t r, const char *what)
{
    const char *last = t != NULL && t->comm != NULL ? ncclGetLastError(t->comm) : NULL;
    return lshmoe_error(LSHMOE_ERR_NCCL, "nccl transport: %s: %s%s%s", what,
                        ncclGetErrorString(r), last != NULL && last[0] ? ": " : "",
                        last != NULL ? last : "");
}

static lshmoe_status_t cuda_err(cudaError_t e, const char *what)
{
    return lshmoe_error(LSHMOE_ERR_CUDA, "nccl transport: %s: %s", what,
                        cudaGetErrorString(e));
}

#define NCCL_TRY(t, call)                                                     \
    do {                                                                      \
        ncclResult_t r_ = (call);                                             \
        if (r_ != ncclSuccess && r_ != ncclInProgress)                        \
            return nccl_err((t), r_, #call);                                  \
    } while (0)

#define CUDA_TRY(call)                                                        \
    do {                                                                      \
        cudaError_t e_ = (call);                                              \
        if (e_ != cudaSuccess)                                                \
            return cuda_err(e_, #call);                                       \
    } while (0)

static int tl_nccl_probe(const lshmoe_comm_desc_t *comm)
{
    return comm != NULL && comm->kind == LSHMOE_COMM_NCCL && comm->native != NULL;
}

static void tl_nccl_finalize(void *tl)
{
    tl_nccl_t *t = tl;
    if (t == NULL)
        return;
    if (t->stage != NULL)
        cudaFree(t->stage);
    if (t->stream != NULL)
        cudaStreamDestroy(t->stream);
    free(t);
}

static lshmoe_status_t tl_nccl_init(const lshmoe_comm_desc_t *comm, void **tl_p)
{
    if (!tl_nccl_probe(comm))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "nccl transport: the communicator is not an NCCL one "
                            "(kind %d, native %p)", comm ? (int)comm->kind : -1,
                            comm ? comm->native : NULL);
    double timeout_s = 0;
    LSHMOE_CHECK(lshmoe_param_double("TIMEOUT_S", &timeout_s));
    tl_nccl_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "nccl transport: out of memory");
    t->comm = (ncclComm_t)comm->native;
    t->timeout_s = timeout_s;
    lshmoe_status_t st = LSHMOE_OK;
    ncclResult_t r = ncclCommUserRank(t->comm, &t->rank);
    if (r == ncclSuccess)
        r = ncclCommCount(t->comm, &t->nranks);
    if (r != ncclSuccess)
        st = nccl_err(t, r, "ncclCommUserRank/ncclCommCount");
    else if (t->rank != comm->rank || t->nranks != comm->nranks)
        st = lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                          "nccl transport: the descriptor says rank %d of %d, the "
                          "communicator rank %d of %d", comm->rank, comm->nranks,
                          t->rank, t->nranks);
    if (st == LSHMOE_OK) {
        cudaError_t e = cudaStreamCreateWithFlags(&t->stream, cudaStreamNonBlocking);
        if (e != cudaSuccess)
            st = cuda_err(e, "cudaStreamCreateWithFlags");
    }
    if (st != LSHMOE_OK) {
        tl_nccl_finalize(t);
        return st;
    }
    *tl_p = t;
    return LSHMOE_OK;
}

static lshmoe_status_t stage_reserve(tl_nccl_t *t, size_t bytes)
{
    if (bytes <= t->stage_bytes)
        return LSHMOE_OK;
    if (t->stage != NULL)
        cudaFree(t->stage);
    t->stage = NULL;
    t->stage_bytes = 0;
    CUDA_TRY(cudaMalloc((void **)&t->stage, bytes));
    t->stage_bytes = bytes;
    return LSHMOE_OK;
}

static lshmoe_status_t check_usable(tl_nccl_t *t)
{
    if (t->aborted)
        return lshmoe_error(LSHMOE_ERR_TIMEOUT,
                            "nccl transport: the communicator was aborted after an "
                            "earlier timeout (%s)", t->abort_why);
    return LSHMOE_OK;
}

/* Aborts once; `why` names the wait that expired. */
static void tl_nccl_abort(void *tl, const char *why)
{
    tl_nccl_t *t = tl;
    if (t->aborted)
        return;
    (void)ncclCommAbort(t->comm);
    t->aborted = 1;
    snprintf(t->abort_why, sizeof t->abort_why, "%s", why != NULL ? why : "unknown wait");
}

/* The communicator's asynchronous error (a peer failed), for waits on a
 * stream that holds this transport's queued work. */
static lshmoe_status_t tl_nccl_poll(void *tl)
{
    tl_nccl_t *t = tl;
    LSHMOE_CHECK(check_usable(t));
    ncclResult_t async = ncclSuccess;
    NCCL_TRY(t, ncclCommGetAsyncError(t->comm, &async));
    if (async != ncclSuccess && async != ncclInProgress)
        return nccl_err(t, async, "asynchronous error");
    return LSHMOE_OK;
}

/* Waits for the transport's stream; past the deadline aborts the
 * communicator. Asynchronous NCCL errors (a peer failed) end the wait. */
static lshmoe_status_t wait_stream(tl_nccl_t *t, const char *what)
{
    const double deadline = lshmoe_now() + t->timeout_s;
    for (;;) {
        cudaError_t e = cudaStreamQuery(t->stream);
        if (e == cudaSuccess)
            return LSHMOE_OK;
        if (e != cudaErrorNotReady)
            return cuda_err(e, what);
        ncclResult_t async = ncclSuccess;
        NCCL_TRY(t, ncclCommGetAsyncError(t->comm, &async));
        if (async != ncclSuccess && async != ncclInProgress)
            return nccl_err(t, async, what);
        if (lshmoe_now() > deadline) {
            tl_nccl_abort(t, what);
            return lshmoe_error(LSHMOE_ERR_TIMEOUT,
                                "nccl transport: %s did not finish within %g s "
                                "(LSHMOE_TIMEOUT_S); the communicator was aborted",
                                what, t->timeout_s);
        }
    }
}

static lshmoe_status_t tl_nccl_allgather(void *tl, const void *send, size_t bytes,
                                         void *recv)
{
    tl_nccl_t *t = tl;
    LSHMOE_CHECK(check_usable(t));
    const size_t total = bytes * (size_t)t->nranks;
    if (bytes == 0)
        return LSHMOE_OK;
    LSHMOE_CHECK(stage_reserve(t, total + bytes));
    unsigned char *dsend = t->stage + total;
    CUDA_TRY(cudaMemcpyAsync(dsend, send, bytes, cudaMemcpyHostToDevice, t->stream));
    NCCL_TRY(t, ncclAllGather(dsend, t->stage, bytes, ncclUint8, t->comm, t->stream));
    CUDA_TRY(cudaMemcpyAsync(recv, t->stage, total, cudaMemcpyDeviceToHost, t->stream));
    return wait_stream(t, "allgather");
}

static lshmoe_status_t tl_nccl_alltoall(void *tl, const void *send, size_t bytes,
                                        void *recv)
{
    tl_nccl_t *t = tl;
    LSHMOE_CHECK(check_usable(t));
    const size_t total = bytes * (size_t)t->nranks;
    if (bytes == 0)
        return LSHMOE_OK;
    LSHMOE_CHECK(stage_reserve(t, 2 * total));
    CUDA_TRY(cudaMemcpyAsync(t->stage, send, total, cudaMemcpyHostToDevice, t->stream));
    NCCL_TRY(t, ncclAlltoAll(t->stage, t->stage + total, bytes, ncclUint8, t->comm,
                             t->stream));
    CUDA_TRY(cudaMemcpyAsync(recv, t->stage + total, total, cudaMemcpyDeviceToHost,
                             t->stream));
    return wait_stream(t, "alltoall");
}

/* ncclAlltoAll applies when every peer gets and gives the same size from
 * contiguous, equally spaced buffers. */
static int uniform_layout(const tl_nccl_t *t, const void *const *send_ptrs,
                          const size_t *send_bytes, void *const *recv_ptrs,
                          const size_t *recv_bytes)
{
    const size_t b = send_bytes[0];
    if (b == 0)
        return 0;
    for (int p = 0; p < t->nranks; p++)
        if (send_bytes[p] != b || recv_bytes[p] != b ||
            (const unsigned char *)send_ptrs[p] !=
                (const unsigned char *)send_ptrs[0] + (size_t)p * b ||
            (unsigned char *)recv_ptrs[p] != (unsigned char *)recv_ptrs[0] + (size_t)p * b)
            return 0;
    return 1;
}

/* The device exchange, queued on `s`. */
static lshmoe_status_t enqueue_v(tl_nccl_t *t, const void *const *send_ptrs,
                                 const size_t *send_bytes, void *const *recv_ptrs,
                                 const size_t *recv_bytes, cudaStream_t s)
{
    if (uniform_layout(t, send_ptrs, send_bytes, recv_ptrs, recv_bytes)) {
        NCCL_TRY(t, ncclAlltoAll(send_ptrs[0], recv_ptrs[0], send_bytes[0], ncclUint8,
                                 t->comm, s));
        return LSHMOE_OK;
    }
    NCCL_TRY(t, ncclGroupStart());
    for (int p = 0; p < t->nranks; p++) {
        ncclResult_t r = ncclSuccess;
        if (send_bytes[p] > 0)
            r = ncclSend(send_ptrs[p], send_bytes[p], ncclUint8, p, t->comm, s);
        if (r == ncclSuccess && recv_bytes[p] > 0)
            r = ncclRecv(recv_ptrs[p], recv_bytes[p], ncclUint8, p, t->comm, s);
        if (r != ncclSuccess) {
            (void)ncclGroupEnd();
            return nccl_err(t, r, "ncclSend/ncclRecv");
        }
    }
    NCCL_TRY(t, ncclGroupEnd());
    return LSHMOE_OK;
}

static lshmoe_status_t tl_nccl_alltoallv(void *tl, const void *const *send_ptrs,
                                         const size_t *send_bytes,
                                         void *const *recv_ptrs,
                                         const size_t *recv_bytes, void *stream)
{
    tl_nccl_t *t = tl;
    LSHMOE_CHECK(check_usable(t));
    const int n = t->nranks;
    if (stream != NULL)
        return enqueue_v(t, send_ptrs, send_bytes, recv_ptrs, recv_bytes,
                         (cudaStream_t)stream);

    /* Host memory: stage every segment, exchange, copy back. */
    size_t stot = 0, rtot = 0;
    for (int p = 0; p < n; p++) {
        stot += send_bytes[p];
        rtot += recv_bytes[p];
    }
    if (stot + rtot == 0)
        return LSHMOE_OK;
    LSHMOE_CHECK(stage_reserve(t, stot + rtot));
    const void **sp = malloc((size_t)n * sizeof *sp);
    void **rp = malloc((size_t)n * sizeof *rp);
    if (sp == NULL || rp == NULL) {
        free(sp);
        free(rp);
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "nccl transport: out of memory");
    }
    lshmoe_status_t st = LSHMOE_OK;
    size_t so = 0, ro = stot;
    for (int p = 0; p < n && st == LSHMOE_OK; p++) {
        sp[p] = t->stage + so;
        rp[p] = t->stage + ro;
        if (send_bytes[p] > 0) {
            cudaError_t e = cudaMemcpyAsync(t->stage + so, send_ptrs[p], send_bytes[p],
                                            cudaMemcpyHostToDevice, t->stream);
            if (e != cudaSuccess)
                st = cuda_err(e, "cudaMemcpyAsync (stage in)");
        }
        so += send_bytes[p];
        ro += recv_bytes[p];
    }
    if (st == LSHMOE_OK)
        st = enqueue_v(t, (const void *const *)sp, send_bytes, rp, recv_bytes, t->stream);
    for (int p = 0; p < n && st == LSHMOE_OK; p++) {
        if (recv_bytes[p] == 0)
            continue;
        cudaError_t e = cudaMemcpyAsync(recv_ptrs[p], rp[p], recv_bytes[p],
                                        cudaMemcpyDeviceToHost, t->stream);
        if (e != cudaSuccess)
            st = cuda_err(e, "cudaMemcpyAsync (stage out)");
    }
    free(sp);
    free(rp);
    if (st == LSHMOE_OK)
        st = wait_stream(t, "alltoallv");
    return st;
}

const lshmoe_tl_ops_t lshmoe_tl_nccl_ops = {
    .size      = sizeof(lshmoe_tl_ops_t),
    .version   = LSHMOE_TL_OPS_VERSION,
    .name      = "nccl",
    .probe     = tl_nccl_probe,
    .init      = tl_nccl_init,
    .finalize  = tl_nccl_finalize,
    .allgather = tl_nccl_allgather,
    .alltoall  = tl_nccl_alltoall,
    .alltoallv = tl_nccl_alltoallv,
    .poll      = tl_nccl_poll,
    .abort     = tl_nccl_abort,
};
