/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#include <stdlib.h>
#include <string.h>

#include "bindings/preload/nccl_group.h"

/* ncclDataType_t values (nccl.h, stable since NCCL 2.0; fp8 since 2.19). */
size_t pl_nccl_dtype_size(int dtype)
{
    static const size_t sizes[] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2, 1, 1};
    return dtype >= 0 && (size_t)dtype < sizeof sizes / sizeof sizes[0] ? sizes[dtype] : 0;
}

int pl_nccl_dtype_is_codec_float(int dtype)
{
    return dtype == 6 || dtype == 7 || dtype == 9;  /* fp16, fp32, bf16 */
}

int pl_nccl_group_start(pl_nccl_group_t *g)
{
    return g->depth++ == 0;
}

void pl_nccl_group_record(pl_nccl_group_t *g, const pl_nccl_op_t *op)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 64;
        pl_nccl_op_t *grown = realloc(g->ops, cap * sizeof *grown);
        if (grown == NULL) {
            g->error = 1;
            return;
        }
        g->ops = grown;
        g->cap = cap;
    }
    g->ops[g->n++] = *op;
}

void pl_nccl_group_free(pl_nccl_group_t *g)
{
    free(g->ops);
    memset(g, 0, sizeof *g);
}

void pl_nccl_a2a_free(pl_nccl_a2a_t *a)
{
    free(a->send_op);
    free(a->recv_op);
    a->send_op = a->recv_op = NULL;
}

/* The pattern on one communicator: ops of comm among [0, n) that are not
 * yet claimed. Fills *a and returns 1 if they form an all-to-all. */
static int match_comm(const pl_nccl_op_t *ops, size_t n, void *comm, int nranks, int rank,
                      pl_nccl_a2a_t *a)
{
    size_t *send = malloc((size_t)nranks * sizeof *send);
    size_t *recv = malloc((size_t)nranks * sizeof *recv);
    int ok = send != NULL && recv != NULL;
    const pl_nccl_op_t *first = NULL;
    for (int p = 0; ok && p < nranks; p++)
        send[p] = recv[p] = (size_t)-1;
    for (size_t i = 0; ok && i < n; i++) {
        const pl_nccl_op_t *op = &ops[i];
        if (op->comm != comm || op->kind == PL_NCCL_ALLTOALL)
            continue;
        if (first == NULL)
            first = op;
        size_t *slot = op->kind == PL_NCCL_SEND ? send : recv;
        if (op->peer < 0 || op->peer >= nranks || slot[op->peer] != (size_t)-1 ||
            op->dtype != first->dtype || op->stream != first->stream)
            ok = 0;
        else
            slot[op->peer] = i;
    }
    for (int p = 0; ok && p < nranks; p++)
        if (send[p] == (size_t)-1 || recv[p] == (size_t)-1)
            ok = 0;
    if (!ok || first == NULL) {
        free(send);
        free(recv);
        return 0;
    }
    size_t bytes = 0;
    for (int p = 0; p < nranks; p++)
        if (p != rank)
            bytes += ops[send[p]].count * pl_nccl_dtype_size(first->dtype);
    *a = (pl_nccl_a2a_t){.comm = comm, .stream = first->stream, .dtype = first->dtype,
                         .nranks = nranks, .bytes = bytes, .send_op = send, .recv_op = recv};
    return 1;
}

/* An ncclAlltoAll op as a recognised all-to-all: every peer maps to it. */
static int match_alltoall(const pl_nccl_op_t *ops, size_t i, int nranks, int rank,
                          pl_nccl_a2a_t *a)
{
    size_t *send = malloc((size_t)nranks * sizeof *send);
    size_t *recv = malloc((size_t)nranks * sizeof *recv);
    if (send == NULL || recv == NULL) {
        free(send);
        free(recv);
        return 0;
    }
    for (int p = 0; p < nranks; p++)
        send[p] = recv[p] = i;
    size_t others = nranks > 0 && rank >= 0 ? (size_t)nranks - 1 : 0;
    *a = (pl_nccl_a2a_t){.comm = ops[i].comm, .stream = ops[i].stream, .dtype = ops[i].dtype,
                         .nranks = nranks,
                         .bytes = others * ops[i].count * pl_nccl_dtype_size(ops[i].dtype),
                         .send_op = send, .recv_op = recv};
    return 1;
}

size_t pl_nccl_recognise(const pl_nccl_op_t *ops, size_t n, const pl_nccl_backend_t *be,
                         pl_nccl_a2a_t *out, size_t max_out, unsigned char *claimed)
{
    size_t found = 0;
    for (size_t i = 0; i < n && found < max_out; i++) {
        if (claimed[i])
            continue;
        void *comm = ops[i].comm;
        int nranks = be->nranks(be->arg, comm), rank = be->rank(be->arg, comm);
        if (nranks < 1)
            continue;
        if (ops[i].kind == PL_NCCL_ALLTOALL) {
            if (match_alltoall(ops, i, nranks, rank, &out[found])) {
                claimed[i] = 1;
                found++;
            }
            continue;
        }
        /* Only the first SEND/RECV of each communicator starts a match. */
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = ops[j].comm == comm && ops[j].kind != PL_NCCL_ALLTOALL;
        if (seen || !match_comm(ops, n, comm, nranks, rank, &out[found]))
            continue;
        for (int p = 0; p < nranks; p++)
            claimed[out[found].send_op[p]] = claimed[out[found].recv_op[p]] = 1;
        found++;
    }
    return found;
}

static int replay(const pl_nccl_backend_t *be, const pl_nccl_op_t *op)
{
    switch (op->kind) {
    case PL_NCCL_SEND:
        return be->send(be->arg, op);
    case PL_NCCL_RECV:
        return be->recv(be->arg, op);
    default:
        return be->alltoall(be->arg, op);
    }
}

int pl_nccl_group_end(pl_nccl_group_t *g, const pl_nccl_backend_t *be, int *flushed_p)
{
    *flushed_p = 0;
    if (g->depth == 0)
        return -1;
    if (--g->depth > 0)
        return 0;
    *flushed_p = 1;
    int result = g->error ? 2 /* ncclSystemError */ : 0;
    size_t n = g->n;
    unsigned char *claimed = calloc(n ? n : 1, 1);   /* recognised */
    unsigned char *taken = calloc(n ? n : 1, 1);     /* done by the codec */
    pl_nccl_a2a_t *found = malloc((n ? n : 1) * sizeof *found);
    size_t nfound = 0;
    if (claimed != NULL && taken != NULL && found != NULL && !g->error)
        nfound = pl_nccl_recognise(g->ops, n, be, found, n, claimed);
    for (size_t k = 0; k < nfound; k++) {
        pl_reason_t why = be->codec_try(be->arg, &found[k], g->ops);
        if (why == PL_REASON_NONE) {
            for (int p = 0; p < found[k].nranks; p++)
                taken[found[k].send_op[p]] = taken[found[k].recv_op[p]] = 1;
        } else {
            be->count_pass(be->arg, &found[k], why);
        }
        pl_nccl_a2a_free(&found[k]);
    }
    /* Everything the codec did not take, in the order it was called. */
    for (size_t i = 0; i < n; i++) {
        if (taken != NULL && taken[i])
            continue;
        int r = replay(be, &g->ops[i]);
        if (result == 0)
            result = r;
    }
    free(claimed);
    free(taken);
    free(found);
    g->n = 0;
    g->error = 0;
    return result;
}
