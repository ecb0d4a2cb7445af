/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Transports behind one ops table. The core composes its collectives from
 * these byte-level primitives; a transport knows nothing about tokens,
 * hashing or the wire format. Written as if it were an ABI: `size` first,
 * optional methods checked with LSHMOE_TL_HAS().
 *
 * Every method is collective over the transport's ranks unless said
 * otherwise, blocks until its buffers may be reused, and reports errors
 * with lshmoe_error() (naming the peer where one is at fault).
 */
#ifndef LSHMOE_TRANSPORT_H
#define LSHMOE_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "lshmoe.h"

#define LSHMOE_TL_OPS_VERSION 1

typedef struct lshmoe_tl_ops {
    uint32_t    size;     /* sizeof(lshmoe_tl_ops_t) the transport was built with */
    uint32_t    version;  /* LSHMOE_TL_OPS_VERSION                            */
    const char *name;     /* "self", "mpi", "nccl", "user"                    */

    /* Can this transport serve `comm`? Not collective; no side effects. */
    int (*probe)(const lshmoe_comm_desc_t *comm);

    /* Not collective. *tl_p set on success only. */
    lshmoe_status_t (*init)(const lshmoe_comm_desc_t *comm, void **tl_p);
    void (*finalize)(void *tl);

    /* recv (nranks * bytes) = every rank's `bytes` of send, in rank order. */
    lshmoe_status_t (*allgather)(void *tl, const void *send, size_t bytes,
                                 void *recv);

    /* Rank r sends send + p * bytes to rank p, which stores it at
     * recv + r * bytes. */
    lshmoe_status_t (*alltoall)(void *tl, const void *send, size_t bytes,
                                void *recv);

    /*
     * Rank r sends send_bytes[p] bytes from send_ptrs[p] to rank p, and
     * receives recv_bytes[p] bytes from rank p into recv_ptrs[p]. Both sides
     * know the sizes in advance (the core exchanges them first); a size that
     * disagrees is LSHMOE_ERR_MISMATCH naming the peer, never an overflow.
     * Pointers for zero sizes may be NULL. `stream` is NULL for host memory.
     */
    lshmoe_status_t (*alltoallv)(void *tl, const void *const *send_ptrs,
                                 const size_t *send_bytes,
                                 void *const *recv_ptrs,
                                 const size_t *recv_bytes, void *stream);

    /*
     * Optional (LSHMOE_TL_HAS), for the core's bounded waits on a stream
     * that holds this transport's queued device work (lshmoe/dev_wait.c).
     * Neither is collective; both may be called at any time after init.
     * poll: LSHMOE_OK while that work may still finish, else the error
     * that stops it (NCCL: an asynchronous error, such as a failed peer),
     * with a message. abort: ends queued work that will never finish
     * (NCCL: ncclCommAbort); from then on every method returns
     * LSHMOE_ERR_TIMEOUT with a message that includes `why` (copied).
     */
    lshmoe_status_t (*poll)(void *tl);
    void (*abort)(void *tl, const char *why);
} lshmoe_tl_ops_t;

#define LSHMOE_TL_HAS(ops, m)                                                \
    ((ops)->size > offsetof(lshmoe_tl_ops_t, m) && (ops)->m != NULL)

/* Transport tables (collectives/<name>/). */
extern const lshmoe_tl_ops_t lshmoe_tl_self_ops;
extern const lshmoe_tl_ops_t lshmoe_tl_user_ops;

/*
 * Picks a transport: by `name` if non-NULL ("self", ...), else by the
 * communicator's kind, else (kind AUTO) by LSHMOE_TRANSPORT, else the first
 * registered transport whose probe() accepts `comm`.
 * Returns LSHMOE_ERR_INVALID_ARG (unknown name), LSHMOE_ERR_UNSUPPORTED
 * (known but not built, or none usable).
 */
lshmoe_status_t lshmoe_tl_select(const char *name, const lshmoe_comm_desc_t *comm,
                                 const lshmoe_tl_ops_t **ops_p);

/* Names of every transport lshmoe knows, built or not, and whether built. */
typedef struct lshmoe_tl_info {
    const char *name;
    int         built;
    const char *why_not; /* NULL when built */
} lshmoe_tl_info_t;

size_t lshmoe_tl_list(const lshmoe_tl_info_t **list_p);

#endif /* LSHMOE_TRANSPORT_H */
