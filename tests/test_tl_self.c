/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The self transport and the transport registry. Every collective test runs
 * N threads, one tl each over one shared world. CUnit is not thread-safe,
 * so rank threads only record what they saw (rs_expect) and the main
 * thread asserts after joining them.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/CUnit.h>

#include "collectives/transport.h"
#include "lshmoe/common/error.h"
#include "lshmoe_build_config.h"
#include "testutil.h"

#define MAX_RANKS 8
#define GUARD     16    /* bytes past every recv block that must stay intact */
#define GUARD_B   0xA5

static const lshmoe_tl_ops_t *const ops = &lshmoe_tl_self_ops;

/* ------------------------------------------------------------------------ */
/* Harness                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct rank_state rank_state_t;
typedef void (*rank_body_t)(rank_state_t *rs);

struct rank_state {
    int                  rank, nranks;
    lshmoe_self_world_t *world;
    const void          *arg;         /* per test, shared, read-only */
    void                *tl;
    lshmoe_status_t      st[2];       /* results of the timed calls */
    char                 msg[2][LSHMOE_ERRMSG_LEN];
    double               t0[2], t1[2];
    int                  nfail;
    char                 why[256];    /* first failed expectation */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    nanosleep(&ts, NULL);
}

static void rs_expect(rank_state_t *rs, int ok, const char *expr, int line)
{
    if (!ok && rs->nfail++ == 0)
        snprintf(rs->why, sizeof(rs->why), "rank %d of %d, line %d: %s",
                 rs->rank, rs->nranks, line, expr);
}
#define RS_EXPECT(rs, cond) rs_expect((rs), (cond) ? 1 : 0, #cond, __LINE__)

/* Runs call k's timing and message capture around a collective. */
#define RS_TIMED(rs, k, call)                                                \
    do {                                                                     \
        (rs)->t0[k] = now_s();                                               \
        (rs)->st[k] = (call);                                                \
        (rs)->t1[k] = now_s();                                               \
        snprintf((rs)->msg[k], LSHMOE_ERRMSG_LEN, "%s",                      \
                 lshmoe_error_thread_msg());                                 \
    } while (0)

typedef struct {
    rank_state_t *rs;
    rank_body_t   body;
} thread_arg_t;

static void *rank_thread(void *p)
{
    thread_arg_t *ta = p;
    rank_state_t *rs = ta->rs;
    lshmoe_comm_desc_t desc = LSHMOE_COMM_DESC_INITIALIZER;

    desc.kind = LSHMOE_COMM_SELF;
    desc.native = rs->world;
    desc.rank = rs->rank;
    desc.nranks = rs->nranks;
    lshmoe_status_t st = ops->init(&desc, &rs->tl);
    RS_EXPECT(rs, st == LSHMOE_OK);
    if (st != LSHMOE_OK)
        return NULL;
    ta->body(rs);
    ops->finalize(rs->tl);
    return NULL;
}

/* N threads over one world; asserts that no rank recorded a failure. */
static void run_world(int nranks, double timeout_s, rank_body_t body,
                      const void *arg, rank_state_t *rs)
{
    lshmoe_self_world_t *world = NULL;
    pthread_t th[MAX_RANKS];
    thread_arg_t ta[MAX_RANKS];

    CU_ASSERT_FATAL(nranks <= MAX_RANKS);
    CU_ASSERT_EQUAL_FATAL(lshmoe_self_world_create(nranks, timeout_s, &world),
                          LSHMOE_OK);
    memset(rs, 0, sizeof(*rs) * (size_t)nranks);
    for (int r = 0; r < nranks; r++) {
        rs[r].rank = r;
        rs[r].nranks = nranks;
        rs[r].world = world;
        rs[r].arg = arg;
        ta[r].rs = &rs[r];
        ta[r].body = body;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[r], NULL, rank_thread, &ta[r]), 0);
    }
    for (int r = 0; r < nranks; r++)
        pthread_join(th[r], NULL);
    lshmoe_self_world_destroy(world);
    for (int r = 0; r < nranks; r++) {
        if (rs[r].nfail != 0)
            fprintf(stderr, "\n  %d failure(s), first: %s\n", rs[r].nfail, rs[r].why);
        CU_ASSERT_EQUAL(rs[r].nfail, 0);
    }
}

/* ------------------------------------------------------------------------ */
/* Deterministic data                                                        */
/* ------------------------------------------------------------------------ */

/* Byte i of what src sends to dst in round `round` (dst MAX_RANKS: allgather). */
static uint8_t pat(int round, int src, int dst, size_t i)
{
    uint64_t seed = (uint64_t)round * 1000003u + (uint64_t)src * 4099u + (uint64_t)dst;
    return (uint8_t)lt_hash64(seed, i);
}

/* Bytes src sends to dst in alltoallv round `round`: uneven, a sixth zero. */
static size_t vsize(int round, int src, int dst)
{
    return (size_t)((src * 7 + dst * 3 + round * 5) % 6) * 11;
}

static int bytes_ok(const uint8_t *buf, int round, int src, int dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (buf[i] != pat(round, src, dst, i))
            return 0;
    return 1;
}

static int guard_ok(const uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (buf[i] != GUARD_B)
            return 0;
    return 1;
}

static int has(const char *msg, const char *what)
{
    return strstr(msg, what) != NULL;
}

/* One allgather of `bytes` per rank; `send`/`recv` hold n * max bytes. */
static void do_allgather(rank_state_t *rs, int round, size_t bytes,
                         uint8_t *send, uint8_t *recv)
{
    int n = rs->nranks;
    for (size_t i = 0; i < bytes; i++)
        send[i] = pat(round, rs->rank, MAX_RANKS, i);
    memset(recv, GUARD_B, (size_t)n * bytes + GUARD);
    lshmoe_status_t st = ops->allgather(rs->tl, bytes ? send : NULL, bytes,
                                        bytes ? recv : NULL);
    RS_EXPECT(rs, st == LSHMOE_OK);
    for (int p = 0; p < n; p++)
        RS_EXPECT(rs, bytes_ok(recv + (size_t)p * bytes, round, p, MAX_RANKS, bytes));
    RS_EXPECT(rs, guard_ok(recv + (size_t)n * bytes, GUARD));
}

static void do_alltoall(rank_state_t *rs, int round, size_t bytes,
                        uint8_t *send, uint8_t *recv)
{
    int n = rs->nranks;
    for (int p = 0; p < n; p++)
        for (size_t i = 0; i < bytes; i++)
            send[(size_t)p * bytes + i] = pat(round, rs->rank, p, i);
    memset(recv, GUARD_B, (size_t)n * bytes + GUARD);
    lshmoe_status_t st = ops->alltoall(rs->tl, send, bytes, recv);
    RS_EXPECT(rs, st == LSHMOE_OK);
    for (int p = 0; p < n; p++)
        RS_EXPECT(rs, bytes_ok(recv + (size_t)p * bytes, round, p, rs->rank, bytes));
    RS_EXPECT(rs, guard_ok(recv + (size_t)n * bytes, GUARD));
}

/*
 * One alltoallv with vsize() counts. With arenas (stride bytes per peer)
 * the blocks live there; without, every block is its own allocation and
 * zero-size blocks are NULL pointers.
 */
static void do_alltoallv(rank_state_t *rs, int round, uint8_t *sarena,
                         uint8_t *rarena, size_t stride)
{
    int n = rs->nranks, me = rs->rank;
    const void *sp[MAX_RANKS] = { NULL };
    void *rp[MAX_RANKS] = { NULL };
    size_t sb[MAX_RANKS] = { 0 }, rb[MAX_RANKS] = { 0 };

    for (int p = 0; p < n; p++) {
        sb[p] = vsize(round, me, p);
        rb[p] = vsize(round, p, me);
        uint8_t *s = sarena ? sarena + (size_t)p * stride : (sb[p] ? malloc(sb[p]) : NULL);
        uint8_t *r = rarena ? rarena + (size_t)p * stride : (rb[p] ? malloc(rb[p] + GUARD) : NULL);
        for (size_t i = 0; i < sb[p]; i++)
            s[i] = pat(round, me, p, i);
        if (r != NULL)
            memset(r, GUARD_B, rb[p] + (rarena ? 0 : GUARD));
        sp[p] = s;
        rp[p] = r;
    }
    lshmoe_status_t st = ops->alltoallv(rs->tl, sp, sb, rp, rb, NULL);
    RS_EXPECT(rs, st == LSHMOE_OK);
    for (int p = 0; p < n; p++) {
        RS_EXPECT(rs, bytes_ok(rp[p], round, p, me, rb[p]));
        if (!rarena && rp[p] != NULL)
            RS_EXPECT(rs, guard_ok((uint8_t *)rp[p] + rb[p], GUARD));
        if (!sarena)
            free((void *)sp[p]);
        if (!rarena)
            free(rp[p]);
    }
}

/* ------------------------------------------------------------------------ */
/* Collectives                                                               */
/* ------------------------------------------------------------------------ */

static const int sizes_n[] = { 1, 2, 3, 4, 7 };
#define NSIZES (sizeof(sizes_n) / sizeof(sizes_n[0]))

static void body_allgather(rank_state_t *rs)
{
    static const size_t bytes[] = { 0, 1, 37, 4096 };
    uint8_t *send = malloc(4096), *recv = malloc(MAX_RANKS * 4096 + GUARD);
    for (size_t k = 0; k < sizeof(bytes) / sizeof(bytes[0]); k++)
        do_allgather(rs, (int)k, bytes[k], send, recv);
    free(send);
    free(recv);
}

static void test_tl_self_allgather_contents(void)
{
    rank_state_t rs[MAX_RANKS];
    for (size_t k = 0; k < NSIZES; k++)
        run_world(sizes_n[k], 10.0, body_allgather, NULL, rs);
}

static void body_alltoall(rank_state_t *rs)
{
    static const size_t bytes[] = { 0, 1, 37, 1000 };
    uint8_t *send = malloc(MAX_RANKS * 1000), *recv = malloc(MAX_RANKS * 1000 + GUARD);
    for (size_t k = 0; k < sizeof(bytes) / sizeof(bytes[0]); k++)
        do_alltoall(rs, (int)k, bytes[k], send, recv);
    free(send);
    free(recv);
}

static void test_tl_self_alltoall_contents(void)
{
    rank_state_t rs[MAX_RANKS];
    for (size_t k = 0; k < NSIZES; k++)
        run_world(sizes_n[k], 10.0, body_alltoall, NULL, rs);
}

static void body_alltoallv(rank_state_t *rs)
{
    /* Six rounds walk every residue of vsize(), so every pair sees a zero
     * (NULL pointers on both sides) and several non-zero sizes. */
    for (int round = 0; round < 6; round++)
        do_alltoallv(rs, round, NULL, NULL, 0);
}

static void test_tl_self_alltoallv_uneven_with_zeros(void)
{
    rank_state_t rs[MAX_RANKS];
    for (size_t k = 0; k < NSIZES; k++)
        run_world(sizes_n[k], 10.0, body_alltoallv, NULL, rs);
}

static void body_many_rounds(rank_state_t *rs)
{
    /* The same buffers every round, refilled as soon as a call returns: a
     * peer still reading (no closing barrier) or a stale post would show
     * up as the previous round's pattern. */
    const size_t stride = 64;
    uint8_t *send = malloc(MAX_RANKS * stride), *recv = malloc(MAX_RANKS * stride + GUARD);
    for (int round = 0; round < 50; round++) {
        switch (round % 3) {
        case 0: do_allgather(rs, round, 1 + (size_t)round % stride, send, recv); break;
        case 1: do_alltoall(rs, round, 1 + (size_t)(round * 7) % stride, send, recv); break;
        default: do_alltoallv(rs, round, send, recv, stride); break;
        }
    }
    free(send);
    free(recv);
}

static void test_tl_self_many_rounds_no_crosstalk(void)
{
    rank_state_t rs[MAX_RANKS];
    run_world(4, 10.0, body_many_rounds, NULL, rs);
    run_world(7, 10.0, body_many_rounds, NULL, rs);
}

static void test_tl_self_single_rank_without_world(void)
{
    lshmoe_comm_desc_t desc = LSHMOE_COMM_DESC_INITIALIZER;
    rank_state_t rs;
    uint8_t send[MAX_RANKS * 64], recv[MAX_RANKS * 64 + GUARD];

    desc.nranks = 1;
    desc.rank = 0;
    memset(&rs, 0, sizeof(rs));
    rs.nranks = 1;
    CU_ASSERT_EQUAL_FATAL(ops->init(&desc, &rs.tl), LSHMOE_OK);
    do_allgather(&rs, 1, 33, send, recv);
    do_alltoall(&rs, 2, 17, send, recv);
    for (int round = 0; round < 6; round++)
        do_alltoallv(&rs, round, NULL, NULL, 0);
    /* In place: the rank's contribution already sits in its recv slot. */
    for (size_t i = 0; i < 20; i++)
        recv[i] = pat(9, 0, MAX_RANKS, i);
    CU_ASSERT_EQUAL(ops->allgather(rs.tl, recv, 20, recv), LSHMOE_OK);
    CU_ASSERT(bytes_ok(recv, 9, 0, MAX_RANKS, 20));
    ops->finalize(rs.tl);
    if (rs.nfail)
        fprintf(stderr, "\n  %s\n", rs.why);
    CU_ASSERT_EQUAL(rs.nfail, 0);
}

/* ------------------------------------------------------------------------ */
/* Failures                                                                  */
/* ------------------------------------------------------------------------ */

/* Rank 1 sends 16 bytes to rank 0, which expects 12; every other pair
 * agrees on 8. Then a correct round on the same world. */
static void body_size_mismatch(rank_state_t *rs)
{
    int n = rs->nranks, me = rs->rank;
    uint8_t sbuf[MAX_RANKS][16], rbuf[MAX_RANKS][16 + GUARD];
    const void *sp[MAX_RANKS];
    void *rp[MAX_RANKS];
    size_t sb[MAX_RANKS], rb[MAX_RANKS];

    for (int p = 0; p < n; p++) {
        sb[p] = (me == 1 && p == 0) ? 16 : 8;
        rb[p] = (me == 0 && p == 1) ? 12 : 8;
        for (size_t i = 0; i < sb[p]; i++)
            sbuf[p][i] = pat(0, me, p, i);
        memset(rbuf[p], GUARD_B, sizeof(rbuf[p]));
        sp[p] = sbuf[p];
        rp[p] = rbuf[p];
    }
    RS_TIMED(rs, 0, ops->alltoallv(rs->tl, sp, sb, rp, rb, NULL));
    for (int p = 0; p < n; p++) {
        if (me == 0 && p == 1)
            RS_EXPECT(rs, guard_ok(rbuf[p], sizeof(rbuf[p]))); /* untouched */
        else
            RS_EXPECT(rs, bytes_ok(rbuf[p], 0, p, me, 8) &&
                          guard_ok(rbuf[p] + 8, sizeof(rbuf[p]) - 8));
    }
    do_alltoallv(rs, 1, NULL, NULL, 0);
}

static void test_tl_self_size_mismatch_names_peer(void)
{
    rank_state_t rs[MAX_RANKS];
    run_world(3, 10.0, body_size_mismatch, NULL, rs);
    CU_ASSERT_EQUAL(rs[0].st[0], LSHMOE_ERR_MISMATCH);
    CU_ASSERT(has(rs[0].msg[0], "peer rank 1"));
    CU_ASSERT(has(rs[0].msg[0], "16") && has(rs[0].msg[0], "12"));
    CU_ASSERT_EQUAL(rs[1].st[0], LSHMOE_OK);
    CU_ASSERT_EQUAL(rs[2].st[0], LSHMOE_OK);
    /* Nobody waited for the timeout. */
    for (int r = 0; r < 3; r++)
        CU_ASSERT(rs[r].t1[0] - rs[r].t0[0] < 5.0);
}

/* Rank 0 passes a stream, rank 1 a NULL send buffer: each fails its own
 * check, and the others learn who failed instead of waiting for them. */
static void body_bad_args(rank_state_t *rs)
{
    uint8_t buf[64] = { 0 }, out[4 * 64];
    const void *sp[MAX_RANKS] = { buf, buf, buf };
    void *rp[MAX_RANKS] = { out, out + 8, out + 16 };
    size_t sz[MAX_RANKS] = { 8, 8, 8 };

    RS_TIMED(rs, 0, ops->alltoallv(rs->tl, sp, sz, rp, sz,
                                   rs->rank == 0 ? (void *)buf : NULL));
    RS_TIMED(rs, 1, ops->allgather(rs->tl, rs->rank == 1 ? NULL : buf, 8, out));
    do_allgather(rs, 3, 8, buf, out);
}

static void test_tl_self_bad_args_fail_peers_fast(void)
{
    rank_state_t rs[MAX_RANKS];
    run_world(3, 10.0, body_bad_args, NULL, rs);
    CU_ASSERT_EQUAL(rs[0].st[0], LSHMOE_ERR_UNSUPPORTED);
    CU_ASSERT(has(rs[0].msg[0], "stream"));
    CU_ASSERT_EQUAL(rs[1].st[1], LSHMOE_ERR_INVALID_ARG);
    for (int r = 1; r < 3; r++) {
        CU_ASSERT_EQUAL(rs[r].st[0], LSHMOE_ERR_PEER);
        CU_ASSERT(has(rs[r].msg[0], "peer rank 0"));
    }
    for (int r = 0; r < 3; r += 2) {
        CU_ASSERT_EQUAL(rs[r].st[1], LSHMOE_ERR_PEER);
        CU_ASSERT(has(rs[r].msg[1], "peer rank 1"));
    }
    for (int r = 0; r < 3; r++)
        CU_ASSERT(rs[r].t1[1] - rs[r].t0[0] < 5.0);
}

/* Rank 0 calls allgather while rank 1 calls alltoall. */
static void body_op_mismatch(rank_state_t *rs)
{
    uint8_t send[2 * 8] = { 0 }, recv[2 * 8 + GUARD];
    if (rs->rank == 0)
        RS_TIMED(rs, 0, ops->allgather(rs->tl, send, 8, recv));
    else
        RS_TIMED(rs, 0, ops->alltoall(rs->tl, send, 8, recv));
    do_alltoall(rs, 4, 8, send, recv);
}

static void test_tl_self_op_mismatch(void)
{
    rank_state_t rs[MAX_RANKS];
    run_world(2, 10.0, body_op_mismatch, NULL, rs);
    CU_ASSERT_EQUAL(rs[0].st[0], LSHMOE_ERR_MISMATCH);
    CU_ASSERT(has(rs[0].msg[0], "peer rank 1"));
    CU_ASSERT_EQUAL(rs[1].st[0], LSHMOE_ERR_MISMATCH);
    CU_ASSERT(has(rs[1].msg[0], "peer rank 0"));
}

/*
 * Rank 2 never joins the first collective. Rank 1 joins 0.1 s after rank 0,
 * so when rank 0 times out rank 1 is still waiting and must be released.
 * After a thread barrier all three call again on the broken world.
 */
typedef struct {
    pthread_barrier_t after;
    int               call_first; /* whether rank 2 calls in round 2 */
} timeout_arg_t;

static void body_timeout(rank_state_t *rs)
{
    timeout_arg_t *a = (timeout_arg_t *)rs->arg;
    uint8_t send[3 * 8] = { 0 }, recv[3 * 8];

    if (rs->rank == 1)
        sleep_s(0.1);
    if (rs->rank != 2)
        RS_TIMED(rs, 0, ops->allgather(rs->tl, send, 8, recv));
    pthread_barrier_wait(&a->after);
    RS_TIMED(rs, 1, ops->alltoall(rs->tl, send, 8, recv));
}

static void run_timeout(rank_state_t *rs)
{
    timeout_arg_t a;
    pthread_barrier_init(&a.after, NULL, 3);
    run_world(3, 0.3, body_timeout, &a, rs);
    pthread_barrier_destroy(&a.after);
}

static void test_tl_self_timeout_names_missing_rank(void)
{
    rank_state_t rs[MAX_RANKS];
    run_timeout(rs);
    for (int r = 0; r < 2; r++) {
        CU_ASSERT_EQUAL(rs[r].st[0], LSHMOE_ERR_TIMEOUT);
        CU_ASSERT(has(rs[r].msg[0], "rank 2 did not arrive"));
    }
    /* Rank 0 waited the configured 0.3 s, not much more. */
    double waited = rs[0].t1[0] - rs[0].t0[0];
    CU_ASSERT(waited >= 0.29 && waited < 1.5);
    /* Rank 1 was released when rank 0 broke the world, not after its own
     * 0.3 s. */
    CU_ASSERT(rs[1].t1[0] - rs[1].t0[0] < 0.27);
    CU_ASSERT(rs[1].t1[0] - rs[0].t1[0] < 0.1);
}

static void test_tl_self_broken_world_fails_fast(void)
{
    rank_state_t rs[MAX_RANKS];
    run_timeout(rs);
    for (int r = 0; r < 3; r++) {
        CU_ASSERT_EQUAL(rs[r].st[1], LSHMOE_ERR_TIMEOUT);
        CU_ASSERT(has(rs[r].msg[1], "broken"));
        CU_ASSERT(has(rs[r].msg[1], "rank 2 did not arrive"));
        CU_ASSERT(rs[r].t1[1] - rs[r].t0[1] < 0.1);
    }
}

static void body_default_timeout(rank_state_t *rs)
{
    uint8_t send[8] = { 0 }, recv[2 * 8];
    if (rs->rank == 0)
        RS_TIMED(rs, 0, ops->allgather(rs->tl, send, 8, recv));
}

static void test_tl_self_default_timeout_from_param(void)
{
    rank_state_t rs[MAX_RANKS];
    lshmoe_self_world_t *w = (lshmoe_self_world_t *)&rs; /* sentinel */

    setenv("LSHMOE_SELF_TIMEOUT_S", "not-a-number", 1);
    CU_ASSERT_EQUAL(lshmoe_self_world_create(2, 0.0, &w), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT(has(lshmoe_error_thread_msg(), "LSHMOE_SELF_TIMEOUT_S"));
    CU_ASSERT(w == (lshmoe_self_world_t *)&rs);

    /* timeout_s 0 takes LSHMOE_SELF_TIMEOUT_S: 0.3 s rather than 120 s. */
    setenv("LSHMOE_SELF_TIMEOUT_S", "0.3", 1);
    run_world(2, 0.0, body_default_timeout, NULL, rs);
    unsetenv("LSHMOE_SELF_TIMEOUT_S");
    CU_ASSERT_EQUAL(rs[0].st[0], LSHMOE_ERR_TIMEOUT);
    CU_ASSERT(has(rs[0].msg[0], "rank 1 did not arrive"));
    CU_ASSERT(rs[0].t1[0] - rs[0].t0[0] < 1.5);
}

/* ------------------------------------------------------------------------ */
/* Descriptors, probe, ops table                                             */
/* ------------------------------------------------------------------------ */

static lshmoe_comm_desc_t self_desc(lshmoe_self_world_t *w, int rank, int nranks)
{
    lshmoe_comm_desc_t d = LSHMOE_COMM_DESC_INITIALIZER;
    d.kind = LSHMOE_COMM_SELF;
    d.native = w;
    d.rank = rank;
    d.nranks = nranks;
    return d;
}

static void test_tl_self_invalid_desc(void)
{
    lshmoe_self_world_t *w = NULL;
    void *sentinel = &w, *tl = sentinel, *tl2 = NULL;
    lshmoe_comm_desc_t d;
    int not_a_world = 0;

    CU_ASSERT_EQUAL(lshmoe_self_world_create(0, 1.0, &w), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(lshmoe_self_world_create(4097, 1.0, &w), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(lshmoe_self_world_create(2, NAN, &w), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(lshmoe_self_world_create(2, 1.0, NULL), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL_FATAL(lshmoe_self_world_create(3, 1.0, &w), LSHMOE_OK);

    d = self_desc(w, -1, 3);
    CU_ASSERT_EQUAL(ops->init(&d, &tl), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT(has(lshmoe_error_thread_msg(), "rank -1"));
    d = self_desc(w, 3, 3);
    CU_ASSERT_EQUAL(ops->init(&d, &tl), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT(has(lshmoe_error_thread_msg(), "rank 3"));
    d = self_desc(w, 0, 4);
    CU_ASSERT_EQUAL(ops->init(&d, &tl), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT(has(lshmoe_error_thread_msg(), "nranks 4"));
    d = self_desc(NULL, 0, 3);
    CU_ASSERT_EQUAL(ops->init(&d, &tl), LSHMOE_ERR_INVALID_ARG);
    d = self_desc((lshmoe_self_world_t *)&not_a_world, 0, 3);
    CU_ASSERT_EQUAL(ops->init(&d, &tl), LSHMOE_ERR_INVALID_ARG);
    d = self_desc(w, 0, 3);
    d.kind = LSHMOE_COMM_MPI;
    CU_ASSERT_EQUAL(ops->init(&d, &tl), LSHMOE_ERR_INVALID_ARG);
    d = self_desc(w, 0, 3);
    d.magic = 0;
    CU_ASSERT_EQUAL(ops->init(&d, &tl), LSHMOE_ERR_NOT_INIT);
    d = self_desc(w, 0, 3);
    d.size = 8;
    CU_ASSERT_EQUAL(ops->init(&d, &tl), LSHMOE_ERR_NOT_INIT);
    CU_ASSERT_EQUAL(ops->init(NULL, &tl), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(ops->init(&d, NULL), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT(tl == sentinel); /* *tl_p set on success only */

    /* One live tl per rank slot; finalize frees the slot. */
    d = self_desc(w, 1, 3);
    CU_ASSERT_EQUAL_FATAL(ops->init(&d, &tl), LSHMOE_OK);
    CU_ASSERT_EQUAL(ops->init(&d, &tl2), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT(has(lshmoe_error_thread_msg(), "rank 1"));
    CU_ASSERT(has(lshmoe_error_thread_msg(), "already bound"));
    CU_ASSERT(tl2 == NULL);
    d = self_desc(w, 2, 3);
    CU_ASSERT_EQUAL_FATAL(ops->init(&d, &tl2), LSHMOE_OK);
    ops->finalize(tl);
    d = self_desc(w, 1, 3);
    CU_ASSERT_EQUAL(ops->init(&d, &tl), LSHMOE_OK);
    ops->finalize(tl);
    ops->finalize(tl2);
    ops->finalize(NULL);
    lshmoe_self_world_destroy(w);
    lshmoe_self_world_destroy(NULL);
}

static void test_tl_self_probe(void)
{
    lshmoe_self_world_t *w = NULL;
    CU_ASSERT_EQUAL_FATAL(lshmoe_self_world_create(2, 1.0, &w), LSHMOE_OK);
    lshmoe_comm_desc_t d = self_desc(w, 0, 2);

    CU_ASSERT(ops->probe(&d));
    d.kind = LSHMOE_COMM_MPI;
    CU_ASSERT(!ops->probe(&d));
    d.kind = LSHMOE_COMM_AUTO;
    CU_ASSERT(!ops->probe(&d));            /* native could be anything */
    d.native = NULL;
    CU_ASSERT(!ops->probe(&d));            /* 2 ranks need a world */
    d.nranks = 1;
    CU_ASSERT(ops->probe(&d));
    CU_ASSERT(!ops->probe(NULL));
    lshmoe_self_world_destroy(w);
}

static void test_tl_self_ops_table(void)
{
    CU_ASSERT_EQUAL(ops->size, sizeof(lshmoe_tl_ops_t));
    CU_ASSERT_EQUAL(ops->version, LSHMOE_TL_OPS_VERSION);
    CU_ASSERT_STRING_EQUAL(ops->name, "self");
    CU_ASSERT(LSHMOE_TL_HAS(ops, probe));
    CU_ASSERT(LSHMOE_TL_HAS(ops, init));
    CU_ASSERT(LSHMOE_TL_HAS(ops, finalize));
    CU_ASSERT(LSHMOE_TL_HAS(ops, allgather));
    CU_ASSERT(LSHMOE_TL_HAS(ops, alltoall));
    CU_ASSERT(LSHMOE_TL_HAS(ops, alltoallv));
}

/* ------------------------------------------------------------------------ */
/* Registry                                                                  */
/* ------------------------------------------------------------------------ */

static void test_tl_self_registry_by_name(void)
{
    const lshmoe_tl_ops_t *sel = NULL;
    lshmoe_comm_desc_t d = self_desc(NULL, 0, 1);

    CU_ASSERT_EQUAL(lshmoe_tl_select("self", NULL, &sel), LSHMOE_OK);
    CU_ASSERT(sel == &lshmoe_tl_self_ops);
    sel = NULL;
    /* mpi and nccl are built or not depending on the configuration. */
    CU_ASSERT_EQUAL(lshmoe_tl_select("mpi", NULL, &sel),
                    LSHMOE_HAVE_MPI ? LSHMOE_OK : LSHMOE_ERR_UNSUPPORTED);
    sel = NULL;
    CU_ASSERT_EQUAL(lshmoe_tl_select("nccl", NULL, &sel),
                    LSHMOE_HAVE_NCCL_TL ? LSHMOE_OK : LSHMOE_ERR_UNSUPPORTED);
    if (!LSHMOE_HAVE_NCCL_TL)
        CU_ASSERT(has(lshmoe_error_thread_msg(), "not built"));
    sel = NULL;
    CU_ASSERT_EQUAL(lshmoe_tl_select("bogus", NULL, &sel), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT(has(lshmoe_error_thread_msg(), "bogus"));
    CU_ASSERT(sel == NULL);
    CU_ASSERT_EQUAL(lshmoe_tl_select("self", NULL, NULL), LSHMOE_ERR_INVALID_ARG);

    /* By kind when no name; a name must not contradict the kind. */
    CU_ASSERT_EQUAL(lshmoe_tl_select(NULL, &d, &sel), LSHMOE_OK);
    CU_ASSERT(sel == &lshmoe_tl_self_ops);
    d.kind = LSHMOE_COMM_NCCL;
    CU_ASSERT_EQUAL(lshmoe_tl_select(NULL, &d, &sel),
                    LSHMOE_HAVE_NCCL_TL ? LSHMOE_OK : LSHMOE_ERR_UNSUPPORTED);
    if (!LSHMOE_HAVE_NCCL_TL)
        CU_ASSERT(has(lshmoe_error_thread_msg(), "not built"));
    sel = NULL;
    d.kind = (lshmoe_comm_kind_t)99;
    CU_ASSERT_EQUAL(lshmoe_tl_select(NULL, &d, &sel), LSHMOE_ERR_INVALID_ARG);
    d.kind = LSHMOE_COMM_MPI;
    CU_ASSERT_EQUAL(lshmoe_tl_select("self", &d, &sel), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(lshmoe_tl_select(NULL, NULL, &sel), LSHMOE_ERR_INVALID_ARG);
}

static void test_tl_self_registry_env(void)
{
    const lshmoe_tl_ops_t *sel = NULL;
    lshmoe_self_world_t *w = NULL;
    lshmoe_comm_desc_t one = LSHMOE_COMM_DESC_INITIALIZER;  /* auto, 1 rank */
    lshmoe_comm_desc_t two = LSHMOE_COMM_DESC_INITIALIZER;  /* auto, world */
    char *saved = getenv("LSHMOE_TRANSPORT");
    saved = saved ? strdup(saved) : NULL;

    CU_ASSERT_EQUAL_FATAL(lshmoe_self_world_create(2, 1.0, &w), LSHMOE_OK);
    one.rank = 0;
    one.nranks = 1;
    two.native = w;
    two.rank = 0;
    two.nranks = 2;

    unsetenv("LSHMOE_TRANSPORT");
    CU_ASSERT_EQUAL(lshmoe_tl_select(NULL, &one, &sel), LSHMOE_OK);  /* probed */
    CU_ASSERT(sel == &lshmoe_tl_self_ops);
    CU_ASSERT_EQUAL(lshmoe_tl_select(NULL, &two, &sel), LSHMOE_ERR_UNSUPPORTED);

    setenv("LSHMOE_TRANSPORT", "self", 1);
    sel = NULL;
    CU_ASSERT_EQUAL(lshmoe_tl_select(NULL, &two, &sel), LSHMOE_OK);
    CU_ASSERT(sel == &lshmoe_tl_self_ops);

    /* Where nccl is built the environment picks it (its init, not run
     * here, would then refuse a non-NCCL communicator). */
    setenv("LSHMOE_TRANSPORT", "nccl", 1);
    CU_ASSERT_EQUAL(lshmoe_tl_select(NULL, &two, &sel),
                    LSHMOE_HAVE_NCCL_TL ? LSHMOE_OK : LSHMOE_ERR_UNSUPPORTED);
    if (!LSHMOE_HAVE_NCCL_TL) {
        CU_ASSERT(has(lshmoe_error_thread_msg(), "LSHMOE_TRANSPORT"));
        CU_ASSERT(has(lshmoe_error_thread_msg(), "not built"));
    }
    /* A name or an explicit kind comes before the environment. */
    CU_ASSERT_EQUAL(lshmoe_tl_select("self", &two, &sel), LSHMOE_OK);
    two.kind = LSHMOE_COMM_SELF;
    CU_ASSERT_EQUAL(lshmoe_tl_select(NULL, &two, &sel), LSHMOE_OK);
    two.kind = LSHMOE_COMM_AUTO;

    setenv("LSHMOE_TRANSPORT", "bogus", 1);
    CU_ASSERT_EQUAL(lshmoe_tl_select(NULL, &two, &sel), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT(has(lshmoe_error_thread_msg(), "bogus"));

    setenv("LSHMOE_TRANSPORT", "auto", 1);
    CU_ASSERT_EQUAL(lshmoe_tl_select(NULL, &one, &sel), LSHMOE_OK);
    CU_ASSERT_EQUAL(lshmoe_tl_select(NULL, &two, &sel), LSHMOE_ERR_UNSUPPORTED);

    if (saved) {
        setenv("LSHMOE_TRANSPORT", saved, 1);
        free(saved);
    } else {
        unsetenv("LSHMOE_TRANSPORT");
    }
    lshmoe_self_world_destroy(w);
}

static void test_tl_self_registry_list(void)
{
    const lshmoe_tl_info_t *list = NULL;
    size_t n = lshmoe_tl_list(&list);
    int seen = 0;

    CU_ASSERT_FATAL(list != NULL);
    CU_ASSERT_EQUAL(n, 4);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].name, "self") == 0) {
            seen |= 1;
            CU_ASSERT(list[i].built);
            CU_ASSERT(list[i].why_not == NULL);
        } else if (strcmp(list[i].name, "mpi") == 0) {
            seen |= 2;
            CU_ASSERT_EQUAL(list[i].built, LSHMOE_HAVE_MPI);
            CU_ASSERT(list[i].built ? list[i].why_not == NULL
                                    : has(list[i].why_not, "not built"));
        } else if (strcmp(list[i].name, "nccl") == 0) {
            seen |= 4;
            CU_ASSERT_EQUAL(list[i].built, LSHMOE_HAVE_NCCL_TL);
            CU_ASSERT(list[i].built ? list[i].why_not == NULL
                                    : has(list[i].why_not, "not built"));
        } else if (strcmp(list[i].name, "user") == 0) {
            seen |= 8;
            CU_ASSERT(list[i].built);
            CU_ASSERT(list[i].why_not == NULL);
        }
    }
    CU_ASSERT_EQUAL(seen, 15);
    CU_ASSERT_EQUAL(lshmoe_tl_list(NULL), n);
}

static const lt_test_t tests[] = {
    { "test_tl_self_allgather_contents", test_tl_self_allgather_contents },
    { "test_tl_self_alltoall_contents", test_tl_self_alltoall_contents },
    { "test_tl_self_alltoallv_uneven_with_zeros", test_tl_self_alltoallv_uneven_with_zeros },
    { "test_tl_self_many_rounds_no_crosstalk", test_tl_self_many_rounds_no_crosstalk },
    { "test_tl_self_single_rank_without_world", test_tl_self_single_rank_without_world },
    { "test_tl_self_size_mismatch_names_peer", test_tl_self_size_mismatch_names_peer },
    { "test_tl_self_bad_args_fail_peers_fast", test_tl_self_bad_args_fail_peers_fast },
    { "test_tl_self_op_mismatch", test_tl_self_op_mismatch },
    { "test_tl_self_timeout_names_missing_rank", test_tl_self_timeout_names_missing_rank },
    { "test_tl_self_broken_world_fails_fast", test_tl_self_broken_world_fails_fast },
    { "test_tl_self_default_timeout_from_param", test_tl_self_default_timeout_from_param },
    { "test_tl_self_invalid_desc", test_tl_self_invalid_desc },
    { "test_tl_self_probe", test_tl_self_probe },
    { "test_tl_self_ops_table", test_tl_self_ops_table },
    { "test_tl_self_registry_by_name", test_tl_self_registry_by_name },
    { "test_tl_self_registry_env", test_tl_self_registry_env },
    { "test_tl_self_registry_list", test_tl_self_registry_list },
};

LT_MAIN("tl_self", tests)
