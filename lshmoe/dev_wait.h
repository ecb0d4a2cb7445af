/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Bounded host waits of the device data path. The host waits on the
 * caller's stream only where it needs a value computed there (the waits
 * codec_device.c lists), but that stream may also hold the transport's
 * queued exchange (NCCL kernels), which never finishes when a peer dies
 * after the metadata round. So no wait there is a plain stream
 * synchronisation: each polls the kernels' query op with a short back-off,
 * asks the transport for an asynchronous error, and gives up after
 * LSHMOE_TIMEOUT_S seconds (the timeout every transport uses). Then it
 * aborts the transport (NCCL: ncclCommAbort, which ends the queued NCCL
 * work), and the call, and every later one on the communicator, return
 * LSHMOE_ERR_TIMEOUT with a message naming the wait.
 */
#ifndef LSHMOE_DEV_WAIT_H
#define LSHMOE_DEV_WAIT_H

#include <stddef.h>

#include "lshmoe/dev_ws.h"

/* Binds the waits of `ws` to a transport (tl_ops NULL: none, the waits
 * then abort nothing) and reads LSHMOE_TIMEOUT_S (lshmoe_param_timeout)
 * the first time; later calls with the same transport do nothing.
 * Returns LSHMOE_ERR_INVALID_ARG for a malformed LSHMOE_TIMEOUT_S. */
lshmoe_status_t lshmoe_dev_wait_bind(lshmoe_dev_ws_t *ws, const lshmoe_tl_ops_t *tl_ops,
                                     void *tl);

/*
 * Waits until every piece of work queued on `stream` has finished, for at
 * most ws->timeout_s seconds (<= 0: no limit). `what` names the wait in
 * messages ("encode: count read-back"). Returns LSHMOE_OK; the error of
 * queued work that the ops' query reports (LSHMOE_ERR_CUDA, ...), prefixed
 * with `what`; the transport's asynchronous error (the transport is then
 * aborted: its queued work would never end); or LSHMOE_ERR_TIMEOUT after
 * aborting the transport. Never returns early because of a signal.
 */
lshmoe_status_t lshmoe_dev_wait(lshmoe_dev_ws_t *ws, void *stream, const char *what);

/*
 * Copies `bytes` from device memory `dev_src` to host memory `host_dst`
 * after the work queued on `stream` (which computes them) and returns once
 * they are there: a bounded wait, the copy, and a bounded wait for the
 * copy. The first wait makes sure the copy itself cannot block the host
 * (a device-to-host copy into pageable memory returns only when done).
 * Statuses as lshmoe_dev_wait(), or the ops' copy error.
 */
lshmoe_status_t lshmoe_dev_read_back(lshmoe_dev_ws_t *ws, void *host_dst, const void *dev_src,
                                     size_t bytes, void *stream, const char *what);

#endif /* LSHMOE_DEV_WAIT_H */
