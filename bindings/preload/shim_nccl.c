/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The exported NCCL entry points. The real functions are found with
 * dlsym(RTLD_NEXT) (then the pnccl* names), so this library never links
 * libnccl: loading it into a program without NCCL costs nothing.
 *
 * ncclGroupStart/End are forwarded as they come (the real group stays open
 * and nests as the program nests it); between the outermost start and its
 * end, ncclSend, ncclRecv and ncclAlltoAll are recorded, and at the
 * outermost end recognised, offered to the codec hook and replayed in
 * order before the real ncclGroupEnd (nccl_group.c). Calls NCCL makes
 * without us (ncclAllReduce, ...) go straight into the real group. Because
 * the recorded calls are issued at the end, their own errors are returned
 * by ncclGroupEnd, not by the calls.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <nccl.h>

#include "bindings/preload/nccl_shim.h"

#define PL_EXPORT __attribute__((visibility("default")))

/* nccl.h declares these with empty parentheses (no prototype). */
ncclResult_t ncclGroupStart(void);
ncclResult_t ncclGroupEnd(void);

typedef struct real_nccl {
    ncclResult_t (*alltoall)(const void *, void *, size_t, ncclDataType_t, ncclComm_t,
                             cudaStream_t);
    ncclResult_t (*send)(const void *, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t);
    ncclResult_t (*recv)(void *, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t);
    ncclResult_t (*group_start)(void);
    ncclResult_t (*group_end)(void);
    ncclResult_t (*group_simulate_end)(ncclSimInfo_t *);
    ncclResult_t (*comm_destroy)(ncclComm_t);
    ncclResult_t (*comm_abort)(ncclComm_t);
    ncclResult_t (*comm_count)(const ncclComm_t, int *);
    ncclResult_t (*user_rank)(const ncclComm_t, int *);
} real_nccl_t;

static pthread_once_t real_once = PTHREAD_ONCE_INIT;
static real_nccl_t real;
static const pl_config_t *cfg;

static __thread pl_nccl_group_t group;

/* Per-communicator statistics entries (the entries outlive the comms). */
typedef struct nccl_comm {
    ncclComm_t        comm;
    pl_stats_t       *st;
    struct nccl_comm *next;
} nccl_comm_t;

static pthread_mutex_t comms_lock = PTHREAD_MUTEX_INITIALIZER;
static nccl_comm_t *comms;
static int comm_seq;

static void *find(const char *name, const char *pname)
{
    void *f = dlsym(RTLD_NEXT, name);
    return f != NULL ? f : dlsym(RTLD_DEFAULT, pname);
}

static void resolve(void)
{
    cfg = pl_init();
    *(void **)&real.alltoall = find("ncclAlltoAll", "pncclAlltoAll");
    *(void **)&real.send = find("ncclSend", "pncclSend");
    *(void **)&real.recv = find("ncclRecv", "pncclRecv");
    *(void **)&real.group_start = find("ncclGroupStart", "pncclGroupStart");
    *(void **)&real.group_end = find("ncclGroupEnd", "pncclGroupEnd");
    *(void **)&real.group_simulate_end = find("ncclGroupSimulateEnd", "pncclGroupSimulateEnd");
    *(void **)&real.comm_destroy = find("ncclCommDestroy", "pncclCommDestroy");
    *(void **)&real.comm_abort = find("ncclCommAbort", "pncclCommAbort");
    *(void **)&real.comm_count = find("ncclCommCount", "pncclCommCount");
    *(void **)&real.user_rank = find("ncclCommUserRank", "pncclCommUserRank");
}

static const real_nccl_t *nccl(void)
{
    pthread_once(&real_once, resolve);
    return &real;
}

/* A real entry point NCCL does not provide: say so once, fail the call. */
static ncclResult_t missing(const char *name)
{
    pl_warn_once("the real %s was not found (is libnccl loaded?)", name);
    return ncclSystemError;
}

#define CALL_REAL(fn, name, ...) \
    (nccl()->fn != NULL ? nccl()->fn(__VA_ARGS__) : missing(name))

static pl_stats_t *comm_stats(ncclComm_t comm, int rank, int nranks)
{
    pthread_mutex_lock(&comms_lock);
    nccl_comm_t *c = comms;
    while (c != NULL && c->comm != comm)
        c = c->next;
    if (c == NULL && (c = calloc(1, sizeof *c)) != NULL) {
        char label[48];
        snprintf(label, sizeof label, "nccl comm %d", ++comm_seq);
        c->comm = comm;
        c->st = pl_stats_new(label, rank, nranks);
        c->next = comms;
        comms = c;
    }
    pthread_mutex_unlock(&comms_lock);
    return c != NULL ? c->st : NULL;
}

static void comm_forget(ncclComm_t comm)
{
    pthread_mutex_lock(&comms_lock);
    for (nccl_comm_t **pp = &comms; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->comm == comm) {
            nccl_comm_t *dead = *pp;
            *pp = dead->next;
            free(dead);
            break;
        }
    pthread_mutex_unlock(&comms_lock);
}

/* ---- the backend the recorder replays through ---- */

static int be_send(void *arg, const pl_nccl_op_t *op)
{
    (void)arg;
    return CALL_REAL(send, "ncclSend", op->sendbuf, op->count, (ncclDataType_t)op->dtype,
                     op->peer, (ncclComm_t)op->comm, (cudaStream_t)op->stream);
}

static int be_recv(void *arg, const pl_nccl_op_t *op)
{
    (void)arg;
    return CALL_REAL(recv, "ncclRecv", op->recvbuf, op->count, (ncclDataType_t)op->dtype,
                     op->peer, (ncclComm_t)op->comm, (cudaStream_t)op->stream);
}

static int be_alltoall(void *arg, const pl_nccl_op_t *op)
{
    (void)arg;
    return CALL_REAL(alltoall, "ncclAlltoAll", op->sendbuf, op->recvbuf, op->count,
                     (ncclDataType_t)op->dtype, (ncclComm_t)op->comm,
                     (cudaStream_t)op->stream);
}

/* ncclCommCount / ncclCommUserRank, -1 when unavailable or failing. */
static int comm_int(ncclResult_t (*fn)(const ncclComm_t, int *), void *comm)
{
    int v = -1;
    if (fn == NULL || fn((ncclComm_t)comm, &v) != ncclSuccess)
        return -1;
    return v;
}

static int be_nranks(void *arg, void *comm)
{
    (void)arg;
    return comm_int(nccl()->comm_count, comm);
}

static int be_rank(void *arg, void *comm)
{
    (void)arg;
    return comm_int(nccl()->user_rank, comm);
}

static pl_reason_t be_codec(void *arg, const pl_nccl_a2a_t *a2a, const pl_nccl_op_t *ops)
{
    (void)arg;
    return pl_nccl_codec_try(cfg, a2a, ops);
}

static void be_count(void *arg, const pl_nccl_a2a_t *a2a, pl_reason_t reason)
{
    (void)arg;
    pl_stats_pass(comm_stats((ncclComm_t)a2a->comm, be_rank(NULL, a2a->comm), a2a->nranks),
                  reason, a2a->bytes);
}

static const pl_nccl_backend_t backend = {
    be_send, be_recv, be_alltoall, be_nranks, be_rank, be_codec, be_count, NULL,
};

/* A simulated group executes nothing: its all-to-alls are replayed
 * unchanged (never offered to a codec) and not counted. */
static pl_reason_t sim_codec(void *arg, const pl_nccl_a2a_t *a2a, const pl_nccl_op_t *ops)
{
    (void)arg, (void)a2a, (void)ops;
    return PL_REASON_NO_CODEC;
}

static void sim_count(void *arg, const pl_nccl_a2a_t *a2a, pl_reason_t reason)
{
    (void)arg, (void)a2a, (void)reason;
}

static const pl_nccl_backend_t sim_backend = {
    be_send, be_recv, be_alltoall, be_nranks, be_rank, sim_codec, sim_count, NULL,
};

/* ---- exported entry points ---- */

/* 1 when the call must go straight to NCCL: inside lshmoe (re-entrant),
 * or the preload is disabled. */
static int straight(void)
{
    if (pl_inside) {
        pl_count_reentrant();
        return 1;
    }
    nccl();
    return cfg->policy.disabled;
}

PL_EXPORT ncclResult_t ncclGroupStart(void)
{
    if (!straight())
        pl_nccl_group_start(&group);
    return CALL_REAL(group_start, "ncclGroupStart");
}

/* The replay's first error wins over the real end's result: it belongs to
 * a call the program made earlier in the group. */
static ncclResult_t end_result(int flushed, int replayed, ncclResult_t end)
{
    return flushed && replayed != 0 ? (ncclResult_t)replayed : end;
}

PL_EXPORT ncclResult_t ncclGroupEnd(void)
{
    if (straight())
        return CALL_REAL(group_end, "ncclGroupEnd");
    int flushed = 0;
    int replayed = pl_nccl_group_end(&group, &backend, &flushed);
    return end_result(flushed, replayed, CALL_REAL(group_end, "ncclGroupEnd"));
}

/* Like ncclGroupEnd, for a group the program only wants simulated. */
PL_EXPORT ncclResult_t ncclGroupSimulateEnd(ncclSimInfo_t *simInfo)
{
    if (straight())
        return CALL_REAL(group_simulate_end, "ncclGroupSimulateEnd", simInfo);
    int flushed = 0;
    int replayed = pl_nccl_group_end(&group, &sim_backend, &flushed);
    return end_result(flushed, replayed,
                      CALL_REAL(group_simulate_end, "ncclGroupSimulateEnd", simInfo));
}

PL_EXPORT ncclResult_t ncclSend(const void *sendbuff, size_t count, ncclDataType_t datatype,
                                int peer, ncclComm_t comm, cudaStream_t stream)
{
    if (straight() || group.depth == 0)
        return CALL_REAL(send, "ncclSend", sendbuff, count, datatype, peer, comm, stream);
    pl_nccl_op_t op = {PL_NCCL_SEND, comm, stream, sendbuff, NULL, count, (int)datatype, peer};
    pl_nccl_group_record(&group, &op);
    return ncclSuccess;
}

PL_EXPORT ncclResult_t ncclRecv(void *recvbuff, size_t count, ncclDataType_t datatype,
                                int peer, ncclComm_t comm, cudaStream_t stream)
{
    if (straight() || group.depth == 0)
        return CALL_REAL(recv, "ncclRecv", recvbuff, count, datatype, peer, comm, stream);
    pl_nccl_op_t op = {PL_NCCL_RECV, comm, stream, NULL, recvbuff, count, (int)datatype, peer};
    pl_nccl_group_record(&group, &op);
    return ncclSuccess;
}

PL_EXPORT ncclResult_t ncclAlltoAll(const void *sendbuff, void *recvbuff, size_t count,
                                    ncclDataType_t datatype, ncclComm_t comm,
                                    cudaStream_t stream)
{
    if (straight())
        return CALL_REAL(alltoall, "ncclAlltoAll", sendbuff, recvbuff, count, datatype, comm,
                         stream);
    pl_nccl_op_t op = {PL_NCCL_ALLTOALL, comm, stream, sendbuff, recvbuff, count,
                       (int)datatype, -1};
    if (group.depth > 0) {
        pl_nccl_group_record(&group, &op);
        return ncclSuccess;
    }
    /* Outside a group: a group of one, through the same recognise/offer/
     * replay path (no real group needed for one call). */
    pl_nccl_group_t one = {0};
    int flushed;
    pl_nccl_group_start(&one);
    pl_nccl_group_record(&one, &op);
    int rc = pl_nccl_group_end(&one, &backend, &flushed);
    pl_nccl_group_free(&one);
    return (ncclResult_t)rc;
}

PL_EXPORT ncclResult_t ncclCommDestroy(ncclComm_t comm)
{
    if (!straight())
        comm_forget(comm);
    return CALL_REAL(comm_destroy, "ncclCommDestroy", comm);
}

PL_EXPORT ncclResult_t ncclCommAbort(ncclComm_t comm)
{
    if (!straight())
        comm_forget(comm);
    return CALL_REAL(comm_abort, "ncclCommAbort", comm);
}
