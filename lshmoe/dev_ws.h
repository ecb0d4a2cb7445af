/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The device workspace of a context: grow-only device buffers for the
 * device data path (staging, per-token codec arrays, read-back area) and
 * the device hashers, kept across calls so that steady-state calls allocate
 * nothing. Memory comes from the caller's allocator hooks when set
 * (lshmoe_ctx_set_device_allocator), else from the kernels' ops table.
 */
#ifndef LSHMOE_DEV_WS_H
#define LSHMOE_DEV_WS_H

#include <stddef.h>
#include <stdint.h>

#include "collectives/transport.h"
#include "kernels/kernels.h"
#include "lshmoe.h"
#include "lshmoe/common/buf.h"

typedef struct lshmoe_dev_buf {
    void  *ptr;
    size_t cap;
} lshmoe_dev_buf_t;

/* Device hashers kept per hidden size (as the codec keeps host ones). */
#define LSHMOE_DEV_HASHERS 4

typedef struct lshmoe_dev_ws {
    const lshmoe_kn_dev_ops_t *ops;   /* NULL until the first device call    */
    lshmoe_device_alloc_fn     alloc_fn;
    lshmoe_device_free_fn      free_fn;
    void                      *user;
    uint64_t                   allocs;  /* device allocations made, in all   */
    size_t                     bytes;   /* device bytes held now             */
    lshmoe_dev_buf_t send_stage, recv_stage;
    lshmoe_dev_buf_t keys, cluster_of, sizes, starts, members, guard_ws, group_ws;
    lshmoe_dev_buf_t small;           /* read-back area: counts, sums, keys,
                                         headers, validation flags          */
    lshmoe_dev_buf_t checksum_ws;     /* the checksum's partial sums (seal,
                                         check_segment)                     */
    lshmoe_buf_t     host_small;      /* its host mirror                     */
    struct {
        size_t hidden;
        void  *hasher;
    } hashers[LSHMOE_DEV_HASHERS];
    unsigned next_hasher;             /* round-robin replacement             */
    /* bounded waits (dev_wait.h): the transport whose queued work the
     * stream may hold (NULL: none), and the deadline (<= 0: none) */
    const lshmoe_tl_ops_t     *tl_ops;
    void                      *tl;
    double                     timeout_s;
    lshmoe_buf_t     host_flags;      /* per segment: the encoder's path     */
} lshmoe_dev_ws_t;

/* Makes buf hold at least `bytes` device bytes (contents not kept; freed
 * and allocated again when it grows, by 1.5x at least, on `stream` for the
 * hooks). Returns LSHMOE_ERR_NO_MEMORY (hook refused or device out of
 * memory) with a message, or the ops' error. */
lshmoe_status_t lshmoe_dev_reserve(lshmoe_dev_ws_t *ws, lshmoe_dev_buf_t *buf, size_t bytes,
                                   void *stream);

/* The cached device hasher for `hidden` (created on first use). */
lshmoe_status_t lshmoe_dev_hasher(lshmoe_dev_ws_t *ws, const lshmoe_kn_lsh_params_t *params,
                                  size_t hidden, void *stream, const void **hasher_p);

/* Frees one buffer of the workspace's memory (with its hooks); NULL-safe.
 * Not stream-ordered: the caller waits for the work that uses it first. */
void lshmoe_dev_buf_release(lshmoe_dev_ws_t *ws, lshmoe_dev_buf_t *buf, void *stream);

/* Frees every buffer and hasher (with the hooks in place when they were
 * made); the workspace stays usable. Not stream-ordered: waits for
 * `stream` first (bounded: dev_wait.h, with no transport to abort), so no
 * queued work still uses the memory; when that wait fails the device
 * memory is forgotten, not freed. Unbinds the transport. */
void lshmoe_dev_ws_release(lshmoe_dev_ws_t *ws, void *stream);

#endif /* LSHMOE_DEV_WS_H */
