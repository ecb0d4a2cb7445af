/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The device path's bounded waits (lshmoe/dev_wait.c) on the CPU: a
 * stand-in kernels table whose stream finishes after a set number of
 * queries, never, or with an error, and a stand-in transport that counts
 * polls and aborts. Checks that a healthy wait returns, a stuck one ends
 * with LSHMOE_ERR_TIMEOUT after about LSHMOE_TIMEOUT_S seconds and aborts
 * the transport once with the wait's name, device and transport errors
 * pass through, and the read-back copies only after the stream is done.
 * The same waits on a real stream held by a real NCCL communicator:
 * tests/gpu/test_device_timeout.c.
 */
#include <stdlib.h>
#include <string.h>

#include "lshmoe/common/error.h"
#include "lshmoe/common/timer.h"
#include "lshmoe/dev_wait.h"
#include "testutil.h"

/* ---- a stream that finishes after `done_after` queries ---------------- */
static int queries, done_after;           /* done_after < 0: never       */
static lshmoe_status_t query_error;       /* returned by every query     */
static int copies, queries_at_copy;

static lshmoe_status_t fake_query(void *stream, int *done_p)
{
    (void)stream;
    queries++;
    if (query_error != LSHMOE_OK)
        return lshmoe_error(query_error, "fake device: an illegal address");
    *done_p = done_after >= 0 && queries > done_after;
    return LSHMOE_OK;
}

static lshmoe_status_t fake_copy(void *dst, const void *src, size_t bytes, void *stream)
{
    (void)stream;
    copies++;
    queries_at_copy = queries;
    memcpy(dst, src, bytes);
    return LSHMOE_OK;
}

static lshmoe_kn_dev_ops_t fake_ops;

/* ---- a transport that counts ------------------------------------------- */
static int polls, aborts;
static lshmoe_status_t poll_error;
static char abort_why[LSHMOE_ERRMSG_LEN];

static lshmoe_status_t fake_poll(void *tl)
{
    (void)tl;
    polls++;
    if (poll_error != LSHMOE_OK)
        return lshmoe_error(poll_error, "fake transport: peer 3 failed");
    return LSHMOE_OK;
}

static void fake_abort(void *tl, const char *why)
{
    (void)tl;
    aborts++;
    snprintf(abort_why, sizeof abort_why, "%s", why);
}

static lshmoe_tl_ops_t fake_tl;

static void reset(lshmoe_dev_ws_t *ws, double timeout_s)
{
    memset(&fake_ops, 0, sizeof fake_ops);
    fake_ops.name = "fake";
    fake_ops.copy = fake_copy;
    fake_ops.query = fake_query;
    memset(&fake_tl, 0, sizeof fake_tl);
    fake_tl.size = sizeof fake_tl;
    fake_tl.version = LSHMOE_TL_OPS_VERSION;
    fake_tl.name = "fake";
    fake_tl.poll = fake_poll;
    fake_tl.abort = fake_abort;
    memset(ws, 0, sizeof *ws);
    ws->ops = &fake_ops;
    ws->tl_ops = &fake_tl;
    ws->tl = &fake_tl;
    ws->timeout_s = timeout_s;
    queries = copies = queries_at_copy = polls = aborts = 0;
    done_after = 0;
    query_error = poll_error = LSHMOE_OK;
    abort_why[0] = '\0';
}

static int has(const char *s, const char *part)
{
    return strstr(s, part) != NULL;
}

static void test_wait_returns_when_done(void)
{
    lshmoe_dev_ws_t ws;
    reset(&ws, 5.0);
    done_after = 0;
    CU_ASSERT_EQUAL(lshmoe_dev_wait(&ws, NULL, "x"), LSHMOE_OK);
    CU_ASSERT_EQUAL(queries, 1);
    reset(&ws, 5.0);
    done_after = 50; /* not done for a while, then done */
    CU_ASSERT_EQUAL(lshmoe_dev_wait(&ws, NULL, "x"), LSHMOE_OK);
    CU_ASSERT_EQUAL(queries, 51);
    CU_ASSERT_EQUAL(aborts, 0);
}

static void test_wait_times_out_and_aborts(void)
{
    lshmoe_dev_ws_t ws;
    reset(&ws, 0.2);
    done_after = -1;
    double t0 = lshmoe_now();
    lshmoe_status_t st = lshmoe_dev_wait(&ws, NULL, "encode: count read-back");
    double took = lshmoe_now() - t0;
    CU_ASSERT_EQUAL(st, LSHMOE_ERR_TIMEOUT);
    CU_ASSERT(took >= 0.2);
    CU_ASSERT(took < 5.0); /* the deadline, plus a nap at most: generous */
    CU_ASSERT(has(lshmoe_error_thread_msg(), "encode: count read-back"));
    CU_ASSERT(has(lshmoe_error_thread_msg(), "LSHMOE_TIMEOUT_S"));
    CU_ASSERT(has(lshmoe_error_thread_msg(), "aborted"));
    CU_ASSERT_EQUAL(aborts, 1);
    CU_ASSERT(has(abort_why, "encode: count read-back"));
    CU_ASSERT(polls > 0);
    /* the back-off naps: far fewer queries than a busy loop would make */
    CU_ASSERT(queries < 200000);
}

static void test_wait_without_transport(void)
{
    lshmoe_dev_ws_t ws;
    /* a transport without poll and abort (an older table): timeout only */
    reset(&ws, 0.05);
    fake_tl.size = (uint32_t)offsetof(lshmoe_tl_ops_t, poll);
    done_after = -1;
    CU_ASSERT_EQUAL(lshmoe_dev_wait(&ws, NULL, "w"), LSHMOE_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(aborts, 0);
    CU_ASSERT_EQUAL(polls, 0);
    CU_ASSERT(!has(lshmoe_error_thread_msg(), "aborted"));
    /* none at all */
    reset(&ws, 0.05);
    ws.tl_ops = NULL;
    done_after = -1;
    CU_ASSERT_EQUAL(lshmoe_dev_wait(&ws, NULL, "w"), LSHMOE_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(aborts, 0);
}

static void test_wait_reports_errors(void)
{
    lshmoe_dev_ws_t ws;
    /* an error of queued device work: as the query says, named */
    reset(&ws, 5.0);
    query_error = LSHMOE_ERR_CUDA;
    CU_ASSERT_EQUAL(lshmoe_dev_wait(&ws, NULL, "decode: header read-back"), LSHMOE_ERR_CUDA);
    CU_ASSERT(has(lshmoe_error_thread_msg(), "decode: header read-back"));
    CU_ASSERT(has(lshmoe_error_thread_msg(), "illegal address"));
    CU_ASSERT_EQUAL(aborts, 0);
    /* the transport's asynchronous error ends the wait before the
     * deadline and aborts the transport (its queued work would hang) */
    reset(&ws, 30.0);
    done_after = -1;
    poll_error = LSHMOE_ERR_NCCL;
    double t0 = lshmoe_now();
    CU_ASSERT_EQUAL(lshmoe_dev_wait(&ws, NULL, "decode: validation read-back"),
                    LSHMOE_ERR_NCCL);
    CU_ASSERT(lshmoe_now() - t0 < 10.0);
    CU_ASSERT(has(lshmoe_error_thread_msg(), "peer 3 failed"));
    CU_ASSERT(has(lshmoe_error_thread_msg(), "decode: validation read-back"));
    CU_ASSERT_EQUAL(aborts, 1);
    CU_ASSERT(has(abort_why, "peer 3 failed"));
}

static void test_read_back(void)
{
    lshmoe_dev_ws_t ws;
    reset(&ws, 5.0);
    done_after = 30;
    uint64_t src[4] = {1, 2, 3, 0x8000000000000000ull}, dst[4] = {0};
    CU_ASSERT_EQUAL(lshmoe_dev_read_back(&ws, dst, src, sizeof src, NULL, "r"), LSHMOE_OK);
    CU_ASSERT(memcmp(src, dst, sizeof src) == 0);
    CU_ASSERT_EQUAL(copies, 1);
    CU_ASSERT(queries_at_copy > done_after); /* copied once the stream was done */
    /* a stuck stream: nothing is copied */
    reset(&ws, 0.05);
    done_after = -1;
    memset(dst, 0, sizeof dst);
    CU_ASSERT_EQUAL(lshmoe_dev_read_back(&ws, dst, src, sizeof src, NULL, "r"),
                    LSHMOE_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(copies, 0);
    CU_ASSERT_EQUAL(dst[0], 0);
}

static void test_bind_reads_the_timeout(void)
{
    lshmoe_dev_ws_t ws;
    reset(&ws, 0.0);
    ws.tl_ops = NULL;
    ws.tl = NULL;
    setenv("LSHMOE_TIMEOUT_S", "0.25", 1);
    CU_ASSERT_EQUAL(lshmoe_dev_wait_bind(&ws, &fake_tl, &fake_tl), LSHMOE_OK);
    CU_ASSERT_DOUBLE_EQUAL(ws.timeout_s, 0.25, 1e-12);
    CU_ASSERT_PTR_EQUAL(ws.tl_ops, &fake_tl);
    /* bound: the environment is not read again */
    setenv("LSHMOE_TIMEOUT_S", "7", 1);
    CU_ASSERT_EQUAL(lshmoe_dev_wait_bind(&ws, &fake_tl, &fake_tl), LSHMOE_OK);
    CU_ASSERT_DOUBLE_EQUAL(ws.timeout_s, 0.25, 1e-12);
    /* another transport: bound again */
    CU_ASSERT_EQUAL(lshmoe_dev_wait_bind(&ws, &fake_tl, &ws), LSHMOE_OK);
    CU_ASSERT_DOUBLE_EQUAL(ws.timeout_s, 7.0, 1e-12);
    setenv("LSHMOE_TIMEOUT_S", "soon", 1);
    CU_ASSERT_EQUAL(lshmoe_dev_wait_bind(&ws, NULL, NULL), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT(has(lshmoe_error_thread_msg(), "LSHMOE_TIMEOUT_S"));
    unsetenv("LSHMOE_TIMEOUT_S");
}

static const lt_test_t tests[] = {
    {"test_wait_returns_when_done", test_wait_returns_when_done},
    {"test_wait_times_out_and_aborts", test_wait_times_out_and_aborts},
    {"test_wait_without_transport", test_wait_without_transport},
    {"test_wait_reports_errors", test_wait_reports_errors},
    {"test_read_back", test_read_back},
    {"test_bind_reads_the_timeout", test_bind_reads_the_timeout},
};

LT_MAIN("dev_wait", tests)
