/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The NCCL group recorder and all-to-all recogniser. Between the outermost
 * ncclGroupStart and its ncclGroupEnd the shim records every ncclSend,
 * ncclRecv and ncclAlltoAll instead of issuing it; at the end it finds, per
 * communicator, the pattern PyTorch's all_to_all_single issues (exactly one
 * send and one receive per peer, one dtype, one stream), offers each such
 * all-to-all to the device codec, and replays everything else, untouched
 * and in order.
 *
 * No NCCL types here: communicators and streams are opaque pointers and
 * dtypes the ncclDataType_t values, so this file builds and is unit-tested
 * without NCCL (tests/test_preload_nccl_group.c) on recorded sequences.
 */
#ifndef LSHMOE_PRELOAD_NCCL_GROUP_H
#define LSHMOE_PRELOAD_NCCL_GROUP_H

#include <stddef.h>

#include "bindings/preload/policy.h"

typedef enum pl_nccl_kind {
    PL_NCCL_SEND,
    PL_NCCL_RECV,
    PL_NCCL_ALLTOALL      /* ncclAlltoAll: count elements to every peer */
} pl_nccl_kind_t;

typedef struct pl_nccl_op {
    pl_nccl_kind_t kind;
    void          *comm;      /* ncclComm_t   */
    void          *stream;    /* cudaStream_t */
    const void    *sendbuf;   /* SEND, ALLTOALL */
    void          *recvbuf;   /* RECV, ALLTOALL */
    size_t         count;     /* elements       */
    int            dtype;     /* ncclDataType_t */
    int            peer;      /* SEND, RECV     */
} pl_nccl_op_t;

/* One recognised all-to-all(v) over comm: ops[first..] hold its sends and
 * receives; per peer p, send_op[p] / recv_op[p] index into the group's ops
 * (for an ncclAlltoAll both are its one op). */
typedef struct pl_nccl_a2a {
    void  *comm;
    void  *stream;
    int    dtype;
    int    nranks;
    size_t bytes;             /* bytes this rank sends to other ranks */
    size_t *send_op, *recv_op;
} pl_nccl_a2a_t;

/* What the replay needs from the outside world (the real NCCL in the shim,
 * fakes in the test). Each returns an ncclResult_t (0 = success). */
typedef struct pl_nccl_backend {
    int (*send)(void *arg, const pl_nccl_op_t *op);
    int (*recv)(void *arg, const pl_nccl_op_t *op);
    int (*alltoall)(void *arg, const pl_nccl_op_t *op);
    /* Group size and this rank in comm; -1 when unknown. */
    int (*nranks)(void *arg, void *comm);
    int (*rank)(void *arg, void *comm);
    /*
     * Offered each recognised all-to-all before the replay. Returns
     * PL_REASON_NONE when it has taken the exchange over (its ops are then
     * not replayed), or the reason it passes. Today: always
     * PL_REASON_NO_CODEC (no device codec in this build).
     */
    pl_reason_t (*codec_try)(void *arg, const pl_nccl_a2a_t *a2a, const pl_nccl_op_t *ops);
    /* Counts a recognised all-to-all that passed through, for the stats. */
    void (*count_pass)(void *arg, const pl_nccl_a2a_t *a2a, pl_reason_t reason);
    void *arg;
} pl_nccl_backend_t;

/* A thread's open group (NCCL groups are per thread). Zero-initialise. */
typedef struct pl_nccl_group {
    int           depth;
    pl_nccl_op_t *ops;
    size_t        n, cap;
    int           error;      /* first recording failure (out of memory) */
} pl_nccl_group_t;

/* 1 if this start opened the outermost group. */
int pl_nccl_group_start(pl_nccl_group_t *g);

/* Records one op (inside a group). On out of memory the group remembers
 * the failure and pl_nccl_group_end returns ncclSystemError. */
void pl_nccl_group_record(pl_nccl_group_t *g, const pl_nccl_op_t *op);

/* Closes one level; at the outermost level recognises, offers, replays in
 * recorded order and empties the group. Returns the first non-zero result
 * of the replay (the ops' own errors surface here, not at the calls), -1
 * for an end without a start (the shim maps it to ncclInvalidUsage), or 0.
 * *flushed_p = 1 when it flushed (the caller then ends the real group). */
int pl_nccl_group_end(pl_nccl_group_t *g, const pl_nccl_backend_t *be, int *flushed_p);

/* Frees the group's buffers. */
void pl_nccl_group_free(pl_nccl_group_t *g);

/*
 * Finds the all-to-alls among ops[0..n). For each communicator in order of
 * first appearance whose SEND/RECV ops are exactly one send and one receive
 * per peer of the same dtype and stream, fills out[k] (send_op/recv_op
 * arrays are malloc'ed: free with pl_nccl_a2a_free) and marks its ops in
 * claimed[] (n entries, zeroed by the caller); each ALLTOALL op is one on
 * its own. Returns how many were found (at most max_out).
 */
size_t pl_nccl_recognise(const pl_nccl_op_t *ops, size_t n, const pl_nccl_backend_t *be,
                         pl_nccl_a2a_t *out, size_t max_out, unsigned char *claimed);
void pl_nccl_a2a_free(pl_nccl_a2a_t *a);

/* Element size of an ncclDataType_t, 0 for an unknown value. */
size_t pl_nccl_dtype_size(int dtype);

/* 1 for the float types the codec encodes (fp16, fp32, bf16). */
int pl_nccl_dtype_is_codec_float(int dtype);

#endif /* LSHMOE_PRELOAD_NCCL_GROUP_H */
