/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* Bounded host waits of the device data path (dev_wait.h). */
#include <sched.h>
#include <stdio.h>
#include <time.h>

#include "lshmoe/common/error.h"
#include "lshmoe/common/param.h"
#include "lshmoe/common/timer.h"
#include "lshmoe/dev_wait.h"

/* The back-off: the waits of a healthy call last tens of microseconds, so
 * the first ones spin on the query (each a few microseconds); then the
 * thread yields; then it naps, twice as long each time up to WAIT_NAP_MAX,
 * so a stream stuck for the whole timeout costs little CPU. */
#define WAIT_SPIN_S   100e-6
#define WAIT_YIELD_S  2e-3
#define WAIT_NAP_MIN  20000L   /* ns */
#define WAIT_NAP_MAX  1000000L /* ns */

lshmoe_status_t lshmoe_dev_wait_bind(lshmoe_dev_ws_t *ws, const lshmoe_tl_ops_t *tl_ops,
                                     void *tl)
{
    if (ws->tl_ops == tl_ops && ws->tl == tl && ws->timeout_s > 0.0)
        return LSHMOE_OK;
    double t = 0.0;
    LSHMOE_CHECK(lshmoe_param_timeout(&t));
    ws->tl_ops = tl_ops;
    ws->tl = tl;
    ws->timeout_s = t;
    return LSHMOE_OK;
}

static int can_abort(const lshmoe_dev_ws_t *ws)
{
    return ws->tl_ops != NULL && LSHMOE_TL_HAS(ws->tl_ops, abort);
}

/* Aborts the bound transport (if it can be) with `why`. */
static void abort_transport(lshmoe_dev_ws_t *ws, const char *why)
{
    if (can_abort(ws))
        ws->tl_ops->abort(ws->tl, why);
}

/* The transport's asynchronous error; the transport is aborted with it. */
static lshmoe_status_t poll_transport(lshmoe_dev_ws_t *ws, const char *what)
{
    if (ws->tl_ops == NULL || !LSHMOE_TL_HAS(ws->tl_ops, poll))
        return LSHMOE_OK;
    lshmoe_status_t st = ws->tl_ops->poll(ws->tl);
    if (st == LSHMOE_OK)
        return LSHMOE_OK;
    char msg[LSHMOE_ERRMSG_LEN], why[LSHMOE_ERRMSG_LEN + 80];
    snprintf(msg, sizeof msg, "%s", lshmoe_error_thread_msg());
    snprintf(why, sizeof why, "device wait for %.48s: %s", what, msg);
    abort_transport(ws, why);
    return lshmoe_error(st, "device wait for %s: %s", what, msg);
}

lshmoe_status_t lshmoe_dev_wait(lshmoe_dev_ws_t *ws, void *stream, const char *what)
{
    const double t0 = lshmoe_now();
    long nap = WAIT_NAP_MIN;
    for (;;) {
        int done = 0;
        lshmoe_status_t st = ws->ops->query(stream, &done);
        if (st != LSHMOE_OK) {
            char msg[LSHMOE_ERRMSG_LEN];
            snprintf(msg, sizeof msg, "%s", lshmoe_error_thread_msg());
            return lshmoe_error(st, "device wait for %s: %s", what, msg);
        }
        if (done)
            return LSHMOE_OK;
        double waited = lshmoe_now() - t0;
        if (waited < WAIT_SPIN_S)
            continue;
        LSHMOE_CHECK(poll_transport(ws, what));
        if (ws->timeout_s > 0.0 && waited > ws->timeout_s) {
            char why[LSHMOE_ERRMSG_LEN];
            snprintf(why, sizeof why, "device wait for %s: not done after %g s", what,
                     ws->timeout_s);
            abort_transport(ws, why);
            return lshmoe_error(LSHMOE_ERR_TIMEOUT,
                                "device wait for %s: the stream's work did not finish within "
                                "%g s (LSHMOE_TIMEOUT_S)%s", what, ws->timeout_s,
                                can_abort(ws) ? "; the transport was aborted, and later "
                                                "calls on it fail"
                                              : "");
        }
        if (waited < WAIT_YIELD_S) {
            sched_yield();
            continue;
        }
        struct timespec ts = {0, nap};
        nanosleep(&ts, NULL); /* an early wake-up only polls sooner */
        nap = nap * 2 > WAIT_NAP_MAX ? WAIT_NAP_MAX : nap * 2;
    }
}

lshmoe_status_t lshmoe_dev_read_back(lshmoe_dev_ws_t *ws, void *host_dst, const void *dev_src,
                                     size_t bytes, void *stream, const char *what)
{
    LSHMOE_CHECK(lshmoe_dev_wait(ws, stream, what));
    LSHMOE_CHECK(ws->ops->copy(host_dst, dev_src, bytes, stream));
    return lshmoe_dev_wait(ws, stream, what);
}
