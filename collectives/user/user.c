/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The "user" transport: collectives the caller supplies as functions
 * (lshmoe_user_comm_t, kind LSHMOE_COMM_USER), so lshmoe runs over
 * torch.distributed, a framework's own collectives or a test harness.
 *
 * The caller's functions see contiguous buffers with byte displacements,
 * the shape every framework's all-to-all-v takes. The core hands this
 * transport one pointer per peer; when those pointers already lie back to
 * back in rank order (the common case: the core packs its segments that
 * way) they are passed as they are, otherwise they are staged through one
 * contiguous buffer per direction, kept between calls.
 *
 * What the caller's function returns decides the status: LSHMOE_ERR_PEER
 * stays ERR_PEER (another rank failed), anything else non-zero becomes
 * LSHMOE_ERR_CALLBACK; its message, if it wrote one, is in the error text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/transport.h"
#include "lshmoe/common/error.h"

#define USER_ERRBUF_LEN 384

typedef struct user_tl {
    lshmoe_user_comm_t uc;        /* the caller's table, copied at init */
    int                rank;
    int                nranks;
    size_t            *sizes;     /* 4 * nranks: send/recv bytes and displs */
    unsigned char     *stage_send;
    size_t             stage_send_cap;
    unsigned char     *stage_recv;
    size_t             stage_recv_cap;
} user_tl_t;

/* Turns the caller's return code and message into a status. */
static lshmoe_status_t user_result(const user_tl_t *tl, const char *op, int rc,
                                   char *errbuf)
{
    if (rc == 0)
        return LSHMOE_OK;
    errbuf[USER_ERRBUF_LEN - 1] = '\0';
    lshmoe_status_t st = rc == LSHMOE_ERR_PEER ? LSHMOE_ERR_PEER : LSHMOE_ERR_CALLBACK;
    return lshmoe_error(st, "user communicator %s at rank %d failed (returned %d): %s",
                        op, tl->rank, rc, errbuf[0] != '\0' ? errbuf : "no message");
}

static lshmoe_status_t user_grow(unsigned char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return LSHMOE_OK;
    unsigned char *p = realloc(*buf, need);
    if (p == NULL)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY,
                            "user transport: cannot stage %zu bytes", need);
    *buf = p;
    *cap = need;
    return LSHMOE_OK;
}

/*
 * If every non-empty pointer continues where the previous one ended, sets
 * *base_p to the first non-empty one (NULL if all are empty) and displs to
 * the offsets from it; returns 0 otherwise. Sums are checked for overflow.
 */
static int user_contiguous(const void *const *ptrs, const size_t *bytes, int n,
                           size_t *displs, const unsigned char **base_p)
{
    const unsigned char *base = NULL;
    size_t off = 0;

    for (int p = 0; p < n; p++) {
        if (bytes[p] == 0) {
            displs[p] = off;
            continue;
        }
        const unsigned char *q = ptrs[p];
        if (base == NULL)
            base = q;
        else if (q != base + off)
            return 0;
        displs[p] = off;
        if (bytes[p] > SIZE_MAX - off)
            return 0;
        off += bytes[p];
    }
    *base_p = base;
    return 1;
}

/* Packed offsets of `bytes`, and their total in *total_p. */
static lshmoe_status_t user_offsets(const size_t *bytes, int n, size_t *displs,
                                    size_t *total_p)
{
    size_t off = 0;
    for (int p = 0; p < n; p++) {
        if (bytes[p] > SIZE_MAX - off)
            return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                                "user transport: byte counts overflow size_t");
        displs[p] = off;
        off += bytes[p];
    }
    *total_p = off;
    return LSHMOE_OK;
}

static lshmoe_status_t user_alltoallv(void *tl_, const void *const *send_ptrs,
                                      const size_t *send_bytes,
                                      void *const *recv_ptrs,
                                      const size_t *recv_bytes, void *stream)
{
    user_tl_t *tl = tl_;
    if (tl == NULL || send_bytes == NULL || recv_bytes == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "user transport alltoallv: tl or a byte count array is NULL");
    int n = tl->nranks;
    size_t *sdispl = tl->sizes, *rdispl = tl->sizes + n;
    const unsigned char *send = NULL, *rbase = NULL;
    unsigned char *recv = NULL;
    size_t total = 0;

    for (int p = 0; p < n; p++)
        if ((send_bytes[p] > 0 && (send_ptrs == NULL || send_ptrs[p] == NULL)) ||
            (recv_bytes[p] > 0 && (recv_ptrs == NULL || recv_ptrs[p] == NULL)))
            return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                                "user transport alltoallv at rank %d: NULL buffer "
                                "for peer rank %d with a non-zero size", tl->rank, p);
    /* Host staging cannot touch device memory; the caller's function gets
     * the stream only with buffers it can use as they are. */
    int send_direct = user_contiguous(send_ptrs, send_bytes, n, sdispl, &send);
    int recv_direct = user_contiguous((const void *const *)recv_ptrs, recv_bytes, n,
                                      rdispl, &rbase);
    if (stream != NULL && !(send_direct && recv_direct))
        return lshmoe_error(LSHMOE_ERR_UNSUPPORTED,
                            "user transport alltoallv at rank %d: device buffers "
                            "that are not contiguous in rank order cannot be staged",
                            tl->rank);
    if (!send_direct) {
        LSHMOE_CHECK(user_offsets(send_bytes, n, sdispl, &total));
        LSHMOE_CHECK(user_grow(&tl->stage_send, &tl->stage_send_cap, total));
        for (int p = 0; p < n; p++)
            if (send_bytes[p] > 0)
                memcpy(tl->stage_send + sdispl[p], send_ptrs[p], send_bytes[p]);
        send = tl->stage_send;
    }
    if (recv_direct) {
        recv = (unsigned char *)rbase;
    } else {
        LSHMOE_CHECK(user_offsets(recv_bytes, n, rdispl, &total));
        LSHMOE_CHECK(user_grow(&tl->stage_recv, &tl->stage_recv_cap, total));
        recv = tl->stage_recv;
    }

    char errbuf[USER_ERRBUF_LEN] = "";
    int rc = tl->uc.alltoallv(tl->uc.user, send, send_bytes, sdispl, recv, recv_bytes,
                              rdispl, stream, errbuf, sizeof errbuf);
    LSHMOE_CHECK(user_result(tl, "alltoallv", rc, errbuf));
    if (!recv_direct)
        for (int p = 0; p < n; p++)
            if (recv_bytes[p] > 0)
                memcpy(recv_ptrs[p], tl->stage_recv + rdispl[p], recv_bytes[p]);
    return LSHMOE_OK;
}

static lshmoe_status_t user_allgather(void *tl_, const void *send, size_t bytes,
                                      void *recv)
{
    user_tl_t *tl = tl_;
    if (tl == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "user transport allgather: tl is NULL");
    if (bytes > 0 && (send == NULL || recv == NULL))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "user transport allgather at rank %d: %s is NULL with "
                            "%zu bytes", tl->rank, send == NULL ? "send" : "recv", bytes);
    char errbuf[USER_ERRBUF_LEN] = "";
    int rc = tl->uc.allgather(tl->uc.user, send, bytes, recv, errbuf, sizeof errbuf);
    return user_result(tl, "allgather", rc, errbuf);
}

/* A uniform all-to-all is the all-to-all-v with equal blocks. */
static lshmoe_status_t user_alltoall(void *tl_, const void *send, size_t bytes,
                                     void *recv)
{
    user_tl_t *tl = tl_;
    if (tl == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "user transport alltoall: tl is NULL");
    int n = tl->nranks;
    if (bytes > SIZE_MAX / (size_t)n)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "user transport alltoall: %zu bytes times %d ranks "
                            "overflows size_t", bytes, n);
    if (bytes > 0 && (send == NULL || recv == NULL))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "user transport alltoall at rank %d: %s is NULL",
                            tl->rank, send == NULL ? "send" : "recv");
    size_t *counts = tl->sizes + 2 * n, *displs = tl->sizes + 3 * n;
    for (int p = 0; p < n; p++) {
        counts[p] = bytes;
        displs[p] = (size_t)p * bytes;
    }
    char errbuf[USER_ERRBUF_LEN] = "";
    int rc = tl->uc.alltoallv(tl->uc.user, send, counts, displs, recv, counts, displs,
                              NULL, errbuf, sizeof errbuf);
    return user_result(tl, "alltoallv", rc, errbuf);
}

static int user_probe(const lshmoe_comm_desc_t *comm)
{
    return comm != NULL && comm->size >= sizeof(*comm) && comm->magic == LSHMOE_MAGIC &&
           comm->kind == LSHMOE_COMM_USER && comm->native != NULL;
}

static lshmoe_status_t user_check(const lshmoe_comm_desc_t *comm)
{
    if (comm->kind != LSHMOE_COMM_USER)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "user transport init: communicator kind %d is not "
                            "LSHMOE_COMM_USER", (int)comm->kind);
    const lshmoe_user_comm_t *uc = comm->native;
    if (uc == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "user transport init: native is NULL; it must point "
                            "to an lshmoe_user_comm_t");
    if (uc->size < offsetof(lshmoe_user_comm_t, user) + sizeof(void *) ||
        uc->magic != LSHMOE_MAGIC)
        return lshmoe_error(LSHMOE_ERR_NOT_INIT,
                            "user transport init: lshmoe_user_comm_t has size %u "
                            "and magic 0x%x: fill it with LSHMOE_USER_COMM_INITIALIZER "
                            "or lshmoe_user_comm_init()", uc->size, uc->magic);
    if (uc->version > LSHMOE_VERSION_CODE)
        return lshmoe_error(LSHMOE_ERR_VERSION,
                            "user transport init: lshmoe_user_comm_t is from header "
                            "version %u, newer than library %d", uc->version,
                            LSHMOE_VERSION_CODE);
    if (uc->alltoallv == NULL || uc->allgather == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "user transport init: the %s function is NULL",
                            uc->alltoallv == NULL ? "alltoallv" : "allgather");
    return LSHMOE_OK;
}

static lshmoe_status_t user_init(const lshmoe_comm_desc_t *comm, void **tl_p)
{
    if (comm == NULL || tl_p == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "user transport init: %s is NULL",
                            comm == NULL ? "comm" : "tl_p");
    LSHMOE_CHECK(user_check(comm));
    user_tl_t *tl = calloc(1, sizeof *tl);
    size_t *sizes = calloc(4 * (size_t)comm->nranks, sizeof *sizes);
    if (tl == NULL || sizes == NULL) {
        free(tl);
        free(sizes);
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "user transport init: out of memory");
    }
    /* Only the fields this library knows; a newer caller's extra fields are
     * ignored, an older caller's struct is at least as large as checked. */
    const lshmoe_user_comm_t *uc = comm->native;
    tl->uc.size = sizeof tl->uc;
    tl->uc.alltoallv = uc->alltoallv;
    tl->uc.allgather = uc->allgather;
    tl->uc.user = uc->user;
    tl->rank = comm->rank;
    tl->nranks = comm->nranks;
    tl->sizes = sizes;
    *tl_p = tl;
    return LSHMOE_OK;
}

static void user_finalize(void *tl_)
{
    user_tl_t *tl = tl_;
    if (tl == NULL)
        return;
    free(tl->sizes);
    free(tl->stage_send);
    free(tl->stage_recv);
    free(tl);
}

LSHMOE_API lshmoe_status_t lshmoe_user_comm_init(lshmoe_user_comm_t *uc)
{
    if (uc == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "lshmoe_user_comm_init: uc is NULL");
    *uc = (lshmoe_user_comm_t)LSHMOE_USER_COMM_INITIALIZER;
    return LSHMOE_OK;
}

const lshmoe_tl_ops_t lshmoe_tl_user_ops = {
    .size      = sizeof(lshmoe_tl_ops_t),
    .version   = LSHMOE_TL_OPS_VERSION,
    .name      = "user",
    .probe     = user_probe,
    .init      = user_init,
    .finalize  = user_finalize,
    .allgather = user_allgather,
    .alltoall  = user_alltoall,
    .alltoallv = user_alltoallv,
};
