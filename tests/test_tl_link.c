/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The link-shaping decorator: data passes through unchanged, every call
 * takes at least the modelled link time (and not much more), the core wraps
 * its transport only when LSHMOE_LINK_GBPS / LSHMOE_LINK_LATENCY_US ask for
 * it, and compression shows up as fewer bytes on the emulated wire. Rank
 * threads record what they saw; the main thread asserts (CUnit is not
 * thread-safe).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/CUnit.h>

#include "collectives/link/link.h"
#include "collectives/transport.h"
#include "lshmoe/common/error.h"
#include "lshmoe/ctx_int.h"
#include "testutil.h"

#define NR      4
#define TIMEOUT 20.0
/* Upper bound on a shaped call: generous, the CI machines have 2 cores. */
#define SLACK_FACTOR 1.5
#define SLACK_S      0.020

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void clear_link_env(void)
{
    unsetenv("LSHMOE_LINK_GBPS");
    unsetenv("LSHMOE_LINK_LATENCY_US");
}

/* Per-rank results of one scenario. */
typedef struct rank_out {
    int                    nfail;
    char                   why[256];
    double                 t[3];        /* measured seconds of the timed calls */
    double                 model[3];    /* the test's own model of them        */
    lshmoe_tl_link_stats_t ls;
    lshmoe_status_t        st;
    char                   msg[LSHMOE_ERRMSG_LEN];
    uint64_t               wire[2];
    const void            *ops_seen;
} rank_out_t;

typedef struct scenario {
    double     gbps, latency_us;
    rank_out_t out[NR];
} scenario_t;

static void expect(rank_out_t *o, int rank, int ok, const char *expr, int line)
{
    if (!ok && o->nfail++ == 0)
        snprintf(o->why, sizeof o->why, "rank %d, line %d: %s", rank, line, expr);
}
#define EXPECT(o, rank, cond) expect((o), (rank), (cond) ? 1 : 0, #cond, __LINE__)

static void assert_no_rank_failed(const scenario_t *s, int nranks)
{
    for (int r = 0; r < nranks; r++) {
        if (s->out[r].nfail)
            fprintf(stderr, "\n  %s\n", s->out[r].why);
        CU_ASSERT_EQUAL(s->out[r].nfail, 0);
    }
}

/* A self tl wrapped by the decorator with the scenario's settings. */
static int open_wrapped(lt_rank_ctx_t *rc, const scenario_t *s, rank_out_t *o,
                        const lshmoe_tl_ops_t **ops, void **tl)
{
    lshmoe_comm_desc_t d = lt_self_desc(rc);
    void *inner = NULL;
    lshmoe_status_t st = lshmoe_tl_self_ops.init(&d, &inner);
    EXPECT(o, rc->rank, st == LSHMOE_OK);
    if (st != LSHMOE_OK)
        return -1;
    st = lshmoe_tl_link_wrap(&lshmoe_tl_self_ops, inner, &d, s->gbps, s->latency_us, ops, tl);
    EXPECT(o, rc->rank, st == LSHMOE_OK);
    if (st != LSHMOE_OK) {
        lshmoe_tl_self_ops.finalize(inner);
        return -1;
    }
    EXPECT(o, rc->rank, *ops == &lshmoe_tl_link_ops);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* (1) Data passes through unchanged                                         */
/* ------------------------------------------------------------------------ */

/* Bytes from rank r to rank p: uneven, some zero, one rank sends nothing. */
static size_t pt_bytes(int r, int p)
{
    if (r == 2 || (r == 1 && p == 3))
        return 0;
    return (size_t)((r * 7 + p * 13 + 1) * 37 % 1000);
}

static unsigned char pt_byte(int r, int p, size_t k)
{
    return (unsigned char)(lt_hash64((uint64_t)(r * 64 + p), k) & 0xff);
}

static void passthrough_rank(lt_rank_ctx_t *rc)
{
    scenario_t *s = rc->arg;
    int me = rc->rank;
    rank_out_t *o = &s->out[me];
    const lshmoe_tl_ops_t *ops = NULL;
    void *tl = NULL;
    if (open_wrapped(rc, s, o, &ops, &tl) != 0)
        return;

    enum { GUARD = 16 };
    unsigned char *sendb[NR], *recvb[NR];
    const void *sp[NR];
    void *rp[NR];
    size_t sb[NR], rb[NR];
    for (int p = 0; p < NR; p++) {
        sb[p] = pt_bytes(me, p);
        rb[p] = pt_bytes(p, me);
        sendb[p] = malloc(sb[p] + 1);
        recvb[p] = malloc(rb[p] + GUARD);
        for (size_t k = 0; k < sb[p]; k++)
            sendb[p][k] = pt_byte(me, p, k);
        memset(recvb[p], 0xA5, rb[p] + GUARD);
        /* Pointers for zero sizes may be NULL (transport.h). */
        sp[p] = sb[p] ? sendb[p] : NULL;
        rp[p] = rb[p] ? recvb[p] : NULL;
    }
    EXPECT(o, me, ops->alltoallv(tl, sp, sb, rp, rb, NULL) == LSHMOE_OK);
    for (int p = 0; p < NR; p++) {
        int ok = 1;
        for (size_t k = 0; k < rb[p]; k++)
            ok &= recvb[p][k] == pt_byte(p, me, k);
        for (size_t k = 0; k < GUARD; k++)
            ok &= recvb[p][rb[p] + k] == 0xA5;
        EXPECT(o, me, ok);
        free(sendb[p]);
        free(recvb[p]);
    }

    /* alltoall and allgather forward too. */
    uint32_t a_send[NR], a_recv[NR], g_recv[NR];
    for (int p = 0; p < NR; p++)
        a_send[p] = (uint32_t)(me * 100 + p);
    EXPECT(o, me, ops->alltoall(tl, a_send, sizeof a_send[0], a_recv) == LSHMOE_OK);
    uint32_t mine = 0xC0DE0000u + (uint32_t)me;
    EXPECT(o, me, ops->allgather(tl, &mine, sizeof mine, g_recv) == LSHMOE_OK);
    for (int p = 0; p < NR; p++) {
        EXPECT(o, me, a_recv[p] == (uint32_t)(p * 100 + me));
        EXPECT(o, me, g_recv[p] == 0xC0DE0000u + (uint32_t)p);
    }
    lshmoe_tl_link_stats(tl, &o->ls);
    ops->finalize(tl); /* finalizes the inner self tl too (ASan checks) */
}

static void test_passthrough(void)
{
    clear_link_env();
    static scenario_t s;
    memset(&s, 0, sizeof s);
    s.gbps = 1000; /* shaped, but fast enough not to matter */
    CU_ASSERT_EQUAL_FATAL(lt_run_ranks(NR, TIMEOUT, passthrough_rank, &s), 0);
    assert_no_rank_failed(&s, NR);
    for (int r = 0; r < NR; r++)
        CU_ASSERT_EQUAL(s.out[r].ls.calls, 3);
}

/* The decorator is no transport of its own. */
static void test_ops_table(void)
{
    const lshmoe_tl_ops_t *ops = &lshmoe_tl_link_ops;
    lshmoe_comm_desc_t d = LSHMOE_COMM_DESC_INITIALIZER;
    void *tl = NULL;
    CU_ASSERT_EQUAL(ops->size, sizeof(lshmoe_tl_ops_t));
    CU_ASSERT_EQUAL(ops->version, LSHMOE_TL_OPS_VERSION);
    CU_ASSERT_STRING_EQUAL(ops->name, "link");
    CU_ASSERT_EQUAL(ops->probe(&d), 0);
    CU_ASSERT_EQUAL(ops->init(&d, &tl), LSHMOE_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NULL(tl);

    /* Bad arguments leave the caller's transport alone. */
    const lshmoe_tl_ops_t *out_ops = NULL;
    void *out_tl = NULL;
    int dummy = 0;
    d.nranks = 2;
    d.rank = 0;
    CU_ASSERT_EQUAL(lshmoe_tl_link_wrap(&lshmoe_tl_self_ops, &dummy, &d, -1, 0, &out_ops,
                                        &out_tl), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(lshmoe_tl_link_wrap(&lshmoe_tl_self_ops, &dummy, &d, NAN, 0, &out_ops,
                                        &out_tl), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(lshmoe_tl_link_wrap(&lshmoe_tl_self_ops, &dummy, &d, 1, INFINITY,
                                        &out_ops, &out_tl), LSHMOE_ERR_INVALID_ARG);
    d.rank = 2;
    CU_ASSERT_EQUAL(lshmoe_tl_link_wrap(&lshmoe_tl_self_ops, &dummy, &d, 1, 0, &out_ops,
                                        &out_tl), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(lshmoe_tl_link_wrap(NULL, &dummy, &d, 1, 0, &out_ops, &out_tl),
                    LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(out_ops);
    CU_ASSERT_PTR_NULL(out_tl);
}

/* ------------------------------------------------------------------------ */
/* (2) The delay model                                                       */
/* ------------------------------------------------------------------------ */

static void test_model_formula(void)
{
    /* 3 MB at 1 Gb/s = 24 ms; the larger direction counts. */
    CU_ASSERT_DOUBLE_EQUAL(lshmoe_tl_link_model_s(1, 0, 3, 3000000, 1000000), 0.024, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(lshmoe_tl_link_model_s(1, 0, 3, 1000000, 3000000), 0.024, 1e-12);
    /* Latency only (gbps 0 = infinite bandwidth): 3 messages of 2 ms. */
    CU_ASSERT_DOUBLE_EQUAL(lshmoe_tl_link_model_s(0, 2000, 3, 1u << 30, 1u << 30), 0.006,
                           1e-12);
    /* Both: 2 x 5 us + 5000 B at 10 Gb/s (4 us). */
    CU_ASSERT_DOUBLE_EQUAL(lshmoe_tl_link_model_s(10, 5, 2, 1000, 5000), 14e-6, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(lshmoe_tl_link_model_s(0, 0, 5, 1000, 5000), 0.0, 0.0);
}

#define KIB 1024u

/*
 * Call 0: alltoall, 1 MiB per peer. Call 1: alltoallv where rank r sends
 * (r+1) * 256 KiB to each peer, so rank 0 receives more than it sends and
 * rank 3 sends more than it receives (max(sent, recv) counts).
 *
 * Start-up costs (first touch of the buffers, threads that reach the
 * first collective at different times) are not the link's: on a loaded
 * 2-core machine they once made a first call take 69 ms against a 25 ms
 * model. So the buffers are touched and one untimed call runs first, and
 * each call is then timed DELAY_REPS times: the fastest repetition must
 * lie within the slack above the model (the link's own delay is what every
 * repetition shares), and every repetition must take at least the model
 * (checked on the fastest, which implies the others).
 */
#define DELAY_REPS 3

static void delay_rank(lt_rank_ctx_t *rc)
{
    scenario_t *s = rc->arg;
    int me = rc->rank;
    rank_out_t *o = &s->out[me];
    const lshmoe_tl_ops_t *ops = NULL;
    void *tl = NULL;
    if (open_wrapped(rc, s, o, &ops, &tl) != 0)
        return;
    const double bps = s->gbps * 1e9 / 8;

    size_t per_peer = 1024 * KIB;
    char *sendb = calloc(NR, per_peer), *recvb = calloc(NR, per_peer);
    memset(sendb, 1, NR * per_peer);
    memset(recvb, 0, NR * per_peer);
    EXPECT(o, me, ops->alltoall(tl, sendb, per_peer, recvb) == LSHMOE_OK); /* warm-up */
    o->t[0] = INFINITY;
    for (int rep = 0; rep < DELAY_REPS; rep++) {
        double t0 = now_s();
        EXPECT(o, me, ops->alltoall(tl, sendb, per_peer, recvb) == LSHMOE_OK);
        o->t[0] = fmin(o->t[0], now_s() - t0);
    }
    o->model[0] = (double)(per_peer * (NR - 1)) / bps;
    lshmoe_tl_link_stats(tl, &o->ls);
    EXPECT(o, me, fabs(o->ls.last_model_s - o->model[0]) < 1e-9);

    const void *sp[NR];
    void *rp[NR];
    size_t sb[NR], rb[NR], sent = 0, recvd = 0;
    for (int p = 0; p < NR; p++) {
        sb[p] = p == me ? 0 : (size_t)(me + 1) * 256 * KIB;
        rb[p] = p == me ? 0 : (size_t)(p + 1) * 256 * KIB;
        sp[p] = sendb + (size_t)p * per_peer;
        rp[p] = recvb + (size_t)p * per_peer;
        sent += sb[p];
        recvd += rb[p];
    }
    o->t[1] = INFINITY;
    for (int rep = 0; rep < DELAY_REPS; rep++) {
        double t0 = now_s();
        EXPECT(o, me, ops->alltoallv(tl, sp, sb, rp, rb, NULL) == LSHMOE_OK);
        o->t[1] = fmin(o->t[1], now_s() - t0);
    }
    o->model[1] = (double)(sent > recvd ? sent : recvd) / bps;
    lshmoe_tl_link_stats(tl, &o->ls);
    EXPECT(o, me, fabs(o->ls.last_model_s - o->model[1]) < 1e-9);
    free(sendb);
    free(recvb);
    ops->finalize(tl);
}

static void test_delay_bandwidth(void)
{
    clear_link_env();
    static scenario_t s;
    memset(&s, 0, sizeof s);
    s.gbps = 1;
    CU_ASSERT_EQUAL_FATAL(lt_run_ranks(NR, TIMEOUT, delay_rank, &s), 0);
    assert_no_rank_failed(&s, NR);
    for (int r = 0; r < NR; r++) {
        for (int k = 0; k < 2; k++) {
            const rank_out_t *o = &s.out[r];
            /* Never faster than the link; not much slower either (fastest
             * of DELAY_REPS repetitions after a warm-up). */
            CU_ASSERT(o->t[k] >= o->model[k]);
            CU_ASSERT(o->t[k] <= o->model[k] * SLACK_FACTOR + SLACK_S);
            if (r == 0 || r == NR - 1)
                printf("\n    rank %d call %d: fastest %.2f ms, model %.2f ms", r, k,
                       o->t[k] * 1e3, o->model[k] * 1e3);
        }
        CU_ASSERT_EQUAL(s.out[r].ls.calls, 1 + 2 * DELAY_REPS);
    }
    printf("\n  ");
    /* Rank 0 receives 9 x 256 KiB, rank 3 sends 12 x 256 KiB. */
    CU_ASSERT_DOUBLE_EQUAL(s.out[0].model[1], 9 * 256.0 * KIB * 8 / 1e9, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(s.out[3].model[1], 12 * 256.0 * KIB * 8 / 1e9, 1e-12);
}

/* A ring: each rank sends to the next only, so it has 2 non-empty peers
 * out of 3 (sends to one, receives from another). */
static void latency_rank(lt_rank_ctx_t *rc)
{
    scenario_t *s = rc->arg;
    int me = rc->rank;
    rank_out_t *o = &s->out[me];
    const lshmoe_tl_ops_t *ops = NULL;
    void *tl = NULL;
    if (open_wrapped(rc, s, o, &ops, &tl) != 0)
        return;
    char sendb[64] = {0}, recvb[64];
    const void *sp[NR] = {0};
    void *rp[NR] = {0};
    size_t sb[NR] = {0}, rb[NR] = {0};
    int next = (me + 1) % NR, prev = (me + NR - 1) % NR;
    sb[next] = sizeof sendb;
    sp[next] = sendb;
    rb[prev] = sizeof recvb;
    rp[prev] = recvb;
    double t0 = now_s();
    EXPECT(o, me, ops->alltoallv(tl, sp, sb, rp, rb, NULL) == LSHMOE_OK);
    o->t[0] = now_s() - t0;
    o->model[0] = 2 * s->latency_us * 1e-6;
    lshmoe_tl_link_stats(tl, &o->ls);
    ops->finalize(tl);
}

static void test_delay_latency(void)
{
    clear_link_env();
    static scenario_t s;
    memset(&s, 0, sizeof s);
    s.latency_us = 10000;
    CU_ASSERT_EQUAL_FATAL(lt_run_ranks(NR, TIMEOUT, latency_rank, &s), 0);
    assert_no_rank_failed(&s, NR);
    for (int r = 0; r < NR; r++) {
        const rank_out_t *o = &s.out[r];
        /* 2 x 10 ms: the empty peer adds no latency (3 peers would be 30). */
        CU_ASSERT_DOUBLE_EQUAL(o->ls.last_model_s, 0.020, 1e-12);
        CU_ASSERT(o->t[0] >= o->model[0]);
        CU_ASSERT(o->t[0] <= o->model[0] * SLACK_FACTOR + SLACK_S);
    }
}

/* ------------------------------------------------------------------------ */
/* (3) Off by default                                                        */
/* ------------------------------------------------------------------------ */

static void ctx_ops_rank(lt_rank_ctx_t *rc)
{
    scenario_t *s = rc->arg;
    rank_out_t *o = &s->out[rc->rank];
    lshmoe_comm_desc_t d = lt_self_desc(rc);
    lshmoe_ctx_t *ctx = NULL;
    o->st = lshmoe_ctx_create(&d, NULL, &ctx);
    if (o->st != LSHMOE_OK)
        return;
    o->ops_seen = ctx->tl_ops;
    lshmoe_ctx_destroy(ctx);
}

/* A wrap with 0 / 0 passes through without delay. */
static void zero_rank(lt_rank_ctx_t *rc)
{
    scenario_t *s = rc->arg;
    int me = rc->rank;
    rank_out_t *o = &s->out[me];
    const lshmoe_tl_ops_t *ops = NULL;
    void *tl = NULL;
    if (open_wrapped(rc, s, o, &ops, &tl) != 0)
        return;
    size_t per_peer = 256 * KIB;
    char *sendb = calloc(NR, per_peer), *recvb = calloc(NR, per_peer);
    double t0 = now_s();
    EXPECT(o, me, ops->alltoall(tl, sendb, per_peer, recvb) == LSHMOE_OK);
    o->t[0] = now_s() - t0;
    lshmoe_tl_link_stats(tl, &o->ls);
    free(sendb);
    free(recvb);
    ops->finalize(tl);
}

static void test_off_by_default(void)
{
    static scenario_t s;
    clear_link_env();
    memset(&s, 0, sizeof s);
    CU_ASSERT_EQUAL_FATAL(lt_run_ranks(2, TIMEOUT, ctx_ops_rank, &s), 0);
    for (int r = 0; r < 2; r++) {
        CU_ASSERT_EQUAL(s.out[r].st, LSHMOE_OK);
        CU_ASSERT_PTR_EQUAL(s.out[r].ops_seen, &lshmoe_tl_self_ops);
    }

    /* "0" set explicitly is off too; a positive value turns it on. */
    setenv("LSHMOE_LINK_GBPS", "0", 1);
    setenv("LSHMOE_LINK_LATENCY_US", "0", 1);
    memset(&s, 0, sizeof s);
    CU_ASSERT_EQUAL_FATAL(lt_run_ranks(2, TIMEOUT, ctx_ops_rank, &s), 0);
    for (int r = 0; r < 2; r++)
        CU_ASSERT_PTR_EQUAL(s.out[r].ops_seen, &lshmoe_tl_self_ops);
    setenv("LSHMOE_LINK_LATENCY_US", "1", 1);
    memset(&s, 0, sizeof s);
    CU_ASSERT_EQUAL_FATAL(lt_run_ranks(2, TIMEOUT, ctx_ops_rank, &s), 0);
    for (int r = 0; r < 2; r++) {
        CU_ASSERT_EQUAL(s.out[r].st, LSHMOE_OK);
        CU_ASSERT_PTR_EQUAL(s.out[r].ops_seen, &lshmoe_tl_link_ops);
    }
    clear_link_env();

    memset(&s, 0, sizeof s);
    CU_ASSERT_EQUAL_FATAL(lt_run_ranks(NR, TIMEOUT, zero_rank, &s), 0);
    assert_no_rank_failed(&s, NR);
    for (int r = 0; r < NR; r++) {
        CU_ASSERT_EQUAL(s.out[r].ls.last_model_s, 0.0);
        CU_ASSERT_EQUAL(s.out[r].ls.slept_s, 0.0);
        CU_ASSERT(s.out[r].t[0] < 0.5); /* a 1 MiB memcpy round, not a link */
    }
}

/* ------------------------------------------------------------------------ */
/* (4) End to end through the public API                                     */
/* ------------------------------------------------------------------------ */

#define E2E_HIDDEN 256
#define E2E_TOKENS 1024 /* per peer: 1 MiB of fp32 per peer */
#define E2E_GBPS   0.5

static void e2e_rank(lt_rank_ctx_t *rc)
{
    scenario_t *s = rc->arg;
    int me = rc->rank;
    rank_out_t *o = &s->out[me];
    lshmoe_comm_desc_t d = lt_self_desc(rc);
    const size_t row = E2E_HIDDEN, n = (size_t)NR * E2E_TOKENS;
    float *send = malloc(n * row * sizeof(float));
    float *recv = malloc(n * row * sizeof(float));
    size_t counts[NR], displs[NR];
    for (int p = 0; p < NR; p++) {
        counts[p] = E2E_TOKENS;
        displs[p] = (size_t)p * E2E_TOKENS;
    }
    lt_gen_clustered(send, n, row, 16, 0.01, 1000 + (uint64_t)me);

    for (int k = 0; k < 2; k++) {   /* 0: plain, 1: compressed */
        lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
        lshmoe_ctx_t *ctx = NULL;
        cfg.compress = k;
        lshmoe_status_t st = lshmoe_ctx_create(&d, &cfg, &ctx);
        EXPECT(o, me, st == LSHMOE_OK);
        if (st != LSHMOE_OK)
            break;
        EXPECT(o, me, ctx->tl_ops == &lshmoe_tl_link_ops);
        double t0 = now_s();
        st = lshmoe_alltoallv(ctx, send, counts, displs, recv, counts, displs,
                              LSHMOE_DTYPE_FP32, row, NULL);
        o->t[k] = now_s() - t0;
        EXPECT(o, me, st == LSHMOE_OK);
        lshmoe_stats_t stats = LSHMOE_STATS_INITIALIZER;
        EXPECT(o, me, lshmoe_stats_get(ctx, &stats) == LSHMOE_OK);
        o->wire[k] = stats.bytes_wire;
        /* What this rank sent is a lower bound of max(sent, received). */
        o->model[k] = (double)stats.bytes_wire * 8 / (E2E_GBPS * 1e9);
        lshmoe_ctx_destroy(ctx);
    }
    free(send);
    free(recv);
}

static void test_end_to_end(void)
{
    static scenario_t s;
    clear_link_env();
    memset(&s, 0, sizeof s);
    setenv("LSHMOE_LINK_GBPS", "0.5", 1);
    int rc = lt_run_ranks(NR, TIMEOUT, e2e_rank, &s);
    clear_link_env();
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    assert_no_rank_failed(&s, NR);
    double tp = 0, tc = 0;
    for (int r = 0; r < NR; r++) {
        const rank_out_t *o = &s.out[r];
        CU_ASSERT_EQUAL(o->wire[0], (uint64_t)(NR - 1) * E2E_TOKENS * E2E_HIDDEN * 4);
        CU_ASSERT(o->wire[1] < o->wire[0]);
        CU_ASSERT(o->t[0] >= o->model[0]);
        CU_ASSERT(o->t[1] >= o->model[1]);
        tp = fmax(tp, o->t[0]);
        tc = fmax(tc, o->t[1]);
    }
    printf("\n    e2e at %.1f Gb/s: plain %.1f ms (%llu B), compressed %.1f ms (%llu B), "
           "time ratio plain/compressed %.2f\n  ", E2E_GBPS, tp * 1e3,
           (unsigned long long)s.out[0].wire[0], tc * 1e3,
           (unsigned long long)s.out[0].wire[1], tp / tc);
}

/* ------------------------------------------------------------------------ */
/* (5) Invalid values                                                        */
/* ------------------------------------------------------------------------ */

static void create_rank(lt_rank_ctx_t *rc)
{
    scenario_t *s = rc->arg;
    rank_out_t *o = &s->out[rc->rank];
    lshmoe_comm_desc_t d = lt_self_desc(rc);
    lshmoe_ctx_t *ctx = NULL;
    o->st = lshmoe_ctx_create(&d, NULL, &ctx);
    snprintf(o->msg, sizeof o->msg, "%s", lshmoe_last_error(NULL));
    lshmoe_ctx_destroy(ctx);
}

static void expect_invalid(const char *var, const char *value)
{
    static scenario_t s;
    clear_link_env();
    memset(&s, 0, sizeof s);
    setenv(var, value, 1);
    int rc = lt_run_ranks(2, TIMEOUT, create_rank, &s);
    clear_link_env();
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    for (int r = 0; r < 2; r++) {
        CU_ASSERT_EQUAL(s.out[r].st, LSHMOE_ERR_INVALID_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(s.out[r].msg, var));
    }
}

static void test_invalid_values(void)
{
    expect_invalid("LSHMOE_LINK_GBPS", "-1");
    expect_invalid("LSHMOE_LINK_GBPS", "fast");
    expect_invalid("LSHMOE_LINK_GBPS", "100001");
    expect_invalid("LSHMOE_LINK_LATENCY_US", "-5");
    expect_invalid("LSHMOE_LINK_LATENCY_US", "nan");
}

static const lt_test_t tests[] = {
    {"ops table and wrap arguments", test_ops_table},
    {"data passes through unchanged", test_passthrough},
    {"model formula", test_model_formula},
    {"delay: bandwidth term, max(sent, recv)", test_delay_bandwidth},
    {"delay: latency counts non-empty peers", test_delay_latency},
    {"off by default, on when a value is positive", test_off_by_default},
    {"end to end: compression shortens the wire", test_end_to_end},
    {"invalid values fail context creation", test_invalid_values},
};

LT_MAIN("tl_link", tests)
