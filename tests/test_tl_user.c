/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The "user" transport (LSHMOE_COMM_USER): lshmoe over collectives a caller
 * supplies. The harness here is such a caller: NR threads exchanging
 * through a shared board and a pthread barrier, independent of lshmoe's own
 * self transport. Checked: compressed and exact all-to-all-v give exactly
 * what the self transport gives; the link decorator wraps the user
 * transport; a failing callback becomes LSHMOE_ERR_CALLBACK with the
 * caller's message on the failing rank and LSHMOE_ERR_PEER on the others;
 * bad descriptors fail with a message; scattered pointers are staged.
 * Rank threads record what they saw; the main thread asserts.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "collectives/transport.h"
#include "lshmoe/common/error.h"
#include "lshmoe/ctx_int.h"
#include "testutil.h"

#define NR      4
#define HIDDEN  64
#define PER     96  /* tokens per peer */
#define MSG_LEN 512

/* ---- the harness: a caller's own collectives -------------------------- */

typedef struct board_slot {
    const unsigned char *send;
    const size_t        *send_bytes;
    const size_t        *send_displs;
    size_t               bytes;      /* allgather */
    int                  failed;     /* this rank's callback failed */
} board_slot_t;

typedef struct harness {
    pthread_barrier_t bar;
    board_slot_t      slot[NR];
    int               fail_rank;     /* -1: nobody fails */
    int               fail_on_call;  /* fail the n-th alltoallv of fail_rank */
    int               calls[NR];
} harness_t;

typedef struct hrank {
    harness_t *h;
    int        rank;
} hrank_t;

/* Every rank learns whether any rank failed, and fails with the right code. */
static int h_finish(hrank_t *me, char *errbuf, size_t errlen)
{
    harness_t *h = me->h;
    int culprit = -1;
    for (int p = 0; p < NR; p++)
        if (h->slot[p].failed)
            culprit = p;
    pthread_barrier_wait(&h->bar);
    if (culprit < 0)
        return 0;
    if (culprit == me->rank) {
        snprintf(errbuf, errlen, "harness: injected failure at rank %d", me->rank);
        return 1;
    }
    snprintf(errbuf, errlen, "harness: rank %d failed", culprit);
    return LSHMOE_ERR_PEER;
}

static int h_alltoallv(void *user, const void *send, const size_t *send_bytes,
                       const size_t *send_displs, void *recv, const size_t *recv_bytes,
                       const size_t *recv_displs, void *stream, char *errbuf,
                       size_t errlen)
{
    hrank_t *me = user;
    harness_t *h = me->h;
    board_slot_t *mine = &h->slot[me->rank];
    (void)stream;
    int n = ++h->calls[me->rank];
    mine->failed = me->rank == h->fail_rank && n == h->fail_on_call;
    mine->send = send;
    mine->send_bytes = send_bytes;
    mine->send_displs = send_displs;
    pthread_barrier_wait(&h->bar);
    int any_failed = 0;
    for (int p = 0; p < NR; p++)
        any_failed |= h->slot[p].failed;
    for (int p = 0; p < NR && !any_failed; p++) {
        const board_slot_t *s = &h->slot[p];
        size_t b = s->send_bytes[me->rank];
        if (b != recv_bytes[p]) {
            snprintf(errbuf, errlen, "harness: size mismatch from %d", p);
            return 1;
        }
        if (b > 0)
            memcpy((unsigned char *)recv + recv_displs[p], s->send + s->send_displs[me->rank], b);
    }
    return h_finish(me, errbuf, errlen);
}

static int h_allgather(void *user, const void *send, size_t bytes, void *recv,
                       char *errbuf, size_t errlen)
{
    hrank_t *me = user;
    harness_t *h = me->h;
    h->slot[me->rank].send = send;
    h->slot[me->rank].bytes = bytes;
    h->slot[me->rank].failed = 0;
    pthread_barrier_wait(&h->bar);
    for (int p = 0; p < NR; p++)
        memcpy((unsigned char *)recv + (size_t)p * bytes, h->slot[p].send, bytes);
    return h_finish(me, errbuf, errlen);
}

/* ---- a run: every rank does one all-to-all-v over a given comm -------- */

typedef struct run {
    harness_t          h;
    int                use_self;   /* the reference: lshmoe's self transport */
    int                compress;
    lshmoe_self_world_t *world;
    float              out[NR][NR * PER * HIDDEN];
    lshmoe_status_t    st[NR];
    char               msg[NR][MSG_LEN];
    const char        *tl_name[NR];
    uint64_t           wire[NR];
} run_t;

static float *input_of(int rank)
{
    float *x = malloc(sizeof(float) * NR * PER * HIDDEN);
    lt_gen_clustered(x, NR * PER, HIDDEN, 6, 0.01, 1000 + (uint64_t)rank);
    return x;
}

static void rank_run(lt_rank_ctx_t *rc)
{
    run_t *R = rc->arg;
    int me = rc->rank;
    hrank_t hr = { &R->h, me };
    lshmoe_user_comm_t uc = LSHMOE_USER_COMM_INITIALIZER;
    lshmoe_comm_desc_t d = LSHMOE_COMM_DESC_INITIALIZER;
    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    lshmoe_ctx_t *ctx = NULL;
    size_t counts[NR], displs[NR];
    float *x = input_of(me);

    uc.alltoallv = h_alltoallv;
    uc.allgather = h_allgather;
    uc.user = &hr;
    if (R->use_self) {
        d = lt_self_desc(rc);
    } else {
        d.kind = LSHMOE_COMM_USER;
        d.native = &uc;
        d.rank = me;
        d.nranks = NR;
    }
    cfg.compress = R->compress;
    for (int p = 0; p < NR; p++) {
        counts[p] = PER;
        displs[p] = (size_t)p * PER;
    }
    R->st[me] = lshmoe_ctx_create(&d, &cfg, &ctx);
    if (R->st[me] == LSHMOE_OK) {
        R->tl_name[me] = ctx->tl_ops->name;
        R->st[me] = lshmoe_alltoallv(ctx, x, counts, displs, R->out[me], counts, displs,
                                     LSHMOE_DTYPE_FP32, HIDDEN, NULL);
        snprintf(R->msg[me], MSG_LEN, "%s", lshmoe_last_error(ctx));
        lshmoe_stats_t s = LSHMOE_STATS_INITIALIZER;
        lshmoe_stats_get(ctx, &s);
        R->wire[me] = s.bytes_wire;
        lshmoe_ctx_destroy(ctx);
    } else {
        snprintf(R->msg[me], MSG_LEN, "%s", lshmoe_last_error(NULL));
    }
    free(x);
}

static run_t *run_new(int use_self, int compress, int fail_rank, int fail_on_call)
{
    run_t *R = calloc(1, sizeof *R);
    R->use_self = use_self;
    R->compress = compress;
    R->h.fail_rank = fail_rank;
    R->h.fail_on_call = fail_on_call;
    pthread_barrier_init(&R->h.bar, NULL, NR);
    CU_ASSERT_FATAL(lt_run_ranks(NR, 20.0, rank_run, R) == 0);
    pthread_barrier_destroy(&R->h.bar);
    return R;
}

/* The same exchange over the user transport and over self: identical. */
static void check_same_as_self(int compress)
{
    run_t *u = run_new(0, compress, -1, 0);
    run_t *s = run_new(1, compress, -1, 0);
    for (int r = 0; r < NR; r++) {
        CU_ASSERT_EQUAL(u->st[r], LSHMOE_OK);
        CU_ASSERT_EQUAL(s->st[r], LSHMOE_OK);
        if (u->st[r] != LSHMOE_OK)
            fprintf(stderr, "rank %d: %s\n", r, u->msg[r]);
        CU_ASSERT_STRING_EQUAL(u->tl_name[r], "user");
        CU_ASSERT_EQUAL(memcmp(u->out[r], s->out[r], sizeof u->out[r]), 0);
        CU_ASSERT_EQUAL(u->wire[r], s->wire[r]);
    }
    if (!compress) {
        /* Exact: rank r's block from p is p's segment for r. */
        for (int p = 0; p < NR; p++) {
            float *x = input_of(p);
            for (int r = 0; r < NR; r++)
                CU_ASSERT_EQUAL(memcmp(u->out[r] + (size_t)p * PER * HIDDEN,
                                       x + (size_t)r * PER * HIDDEN,
                                       sizeof(float) * PER * HIDDEN), 0);
            free(x);
        }
    } else {
        /* Clustered data compresses: fewer bytes than the plain tokens. */
        CU_ASSERT(u->wire[0] < (uint64_t)(NR - 1) * PER * HIDDEN * sizeof(float));
    }
    free(u);
    free(s);
}

static void test_tl_user_exact_matches_self(void) { check_same_as_self(0); }
static void test_tl_user_compressed_matches_self(void) { check_same_as_self(1); }

static void test_tl_user_link_decorator_wraps(void)
{
    setenv("LSHMOE_LINK_LATENCY_US", "1", 1);
    run_t *u = run_new(0, 1, -1, 0);
    unsetenv("LSHMOE_LINK_LATENCY_US");
    for (int r = 0; r < NR; r++) {
        CU_ASSERT_EQUAL(u->st[r], LSHMOE_OK);
        CU_ASSERT_STRING_EQUAL(u->tl_name[r], "link");
    }
    free(u);
}

/* Context creation makes one allgather; the all-to-all-v then makes its
 * own calls. Failing rank 2's first alltoallv fails the data call. */
static void test_tl_user_failing_callback(void)
{
    run_t *u = run_new(0, 1, 2, 1);
    for (int r = 0; r < NR; r++) {
        if (r == 2) {
            CU_ASSERT_EQUAL(u->st[r], LSHMOE_ERR_CALLBACK);
            CU_ASSERT(strstr(u->msg[r], "harness: injected failure at rank 2") != NULL);
        } else {
            CU_ASSERT_EQUAL(u->st[r], LSHMOE_ERR_PEER);
            CU_ASSERT(strstr(u->msg[r], "harness: rank 2 failed") != NULL);
        }
        if (u->st[r] == LSHMOE_OK)
            fprintf(stderr, "rank %d unexpectedly succeeded\n", r);
    }
    free(u);
}

/* Descriptors the transport refuses, each with a message. */
static void test_tl_user_bad_descriptors(void)
{
    lshmoe_user_comm_t uc;
    lshmoe_comm_desc_t d = LSHMOE_COMM_DESC_INITIALIZER;
    lshmoe_ctx_t *ctx = NULL;

    CU_ASSERT_EQUAL(lshmoe_user_comm_init(NULL), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(lshmoe_user_comm_init(&uc), LSHMOE_OK);
    CU_ASSERT_EQUAL(uc.size, sizeof uc);
    CU_ASSERT_EQUAL(uc.magic, LSHMOE_MAGIC);
    d.kind = LSHMOE_COMM_USER;
    d.rank = 0;
    d.nranks = 1;

    d.native = NULL;
    CU_ASSERT_EQUAL(lshmoe_ctx_create(&d, NULL, &ctx), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT(strstr(lshmoe_last_error(NULL), "native is NULL") != NULL);

    d.native = &uc;  /* initialised, but no functions */
    CU_ASSERT_EQUAL(lshmoe_ctx_create(&d, NULL, &ctx), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT(strstr(lshmoe_last_error(NULL), "alltoallv function is NULL") != NULL);

    uc.alltoallv = h_alltoallv;
    uc.allgather = h_allgather;
    uc.magic = 0;
    CU_ASSERT_EQUAL(lshmoe_ctx_create(&d, NULL, &ctx), LSHMOE_ERR_NOT_INIT);
    CU_ASSERT(strstr(lshmoe_last_error(NULL), "LSHMOE_USER_COMM_INITIALIZER") != NULL);

    uc.magic = LSHMOE_MAGIC;
    uc.version = LSHMOE_VERSION_CODE + 1;
    CU_ASSERT_EQUAL(lshmoe_ctx_create(&d, NULL, &ctx), LSHMOE_ERR_VERSION);

    /* A user communicator handed to a transport by name is refused. */
    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    uc.version = LSHMOE_VERSION_CODE;
    cfg.transport = "self";
    CU_ASSERT_EQUAL(lshmoe_ctx_create(&d, &cfg, &ctx), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT(ctx == NULL);
}

/* Scattered send/recv pointers are staged through contiguous buffers. The
 * callback echoes block p of send into block p of recv, so rank 0 of a
 * 2-rank group can be driven alone. */
static int echo_alltoallv(void *user, const void *send, const size_t *send_bytes,
                          const size_t *send_displs, void *recv, const size_t *recv_bytes,
                          const size_t *recv_displs, void *stream, char *errbuf,
                          size_t errlen)
{
    (void)user; (void)stream;
    for (int p = 0; p < 2; p++) {
        if (send_bytes[p] != recv_bytes[p]) {
            snprintf(errbuf, errlen, "echo: block %d sizes differ", p);
            return 1;
        }
        memcpy((unsigned char *)recv + recv_displs[p],
               (const unsigned char *)send + send_displs[p], send_bytes[p]);
    }
    return 0;
}

static void test_tl_user_stages_scattered_pointers(void)
{
    lshmoe_user_comm_t uc = LSHMOE_USER_COMM_INITIALIZER;
    lshmoe_comm_desc_t d = LSHMOE_COMM_DESC_INITIALIZER;
    const lshmoe_tl_ops_t *ops = NULL;
    void *tl = NULL;
    /* Separate arrays: not back to back, so both directions are staged. */
    static char a[8] = "abcdefg", c[5] = "wxyz", b[8], e[5];

    uc.alltoallv = echo_alltoallv;
    uc.allgather = h_allgather;
    d.kind = LSHMOE_COMM_USER;
    d.native = &uc;
    d.rank = 0;
    d.nranks = 2;
    CU_ASSERT_FATAL(lshmoe_tl_select(NULL, &d, &ops) == LSHMOE_OK);
    CU_ASSERT_STRING_EQUAL(ops->name, "user");
    CU_ASSERT_FATAL(ops->init(&d, &tl) == LSHMOE_OK);
    const void *sp[2] = { c, a };  /* reversed order: never contiguous */
    void *rp[2] = { e, b };
    size_t sb[2] = { 5, 8 }, rb[2] = { 5, 8 };
    CU_ASSERT_EQUAL(ops->alltoallv(tl, sp, sb, rp, rb, NULL), LSHMOE_OK);
    CU_ASSERT_STRING_EQUAL(b, "abcdefg");
    CU_ASSERT_STRING_EQUAL(e, "wxyz");
    /* A size the callback rejects comes back as ERR_CALLBACK with its text. */
    rb[1] = 7;
    CU_ASSERT_EQUAL(ops->alltoallv(tl, sp, sb, rp, rb, NULL), LSHMOE_ERR_CALLBACK);
    CU_ASSERT(strstr(lshmoe_error_thread_msg(), "echo: block 1 sizes differ") != NULL);
    ops->finalize(tl);
}

static const lt_test_t tests[] = {
    { "test_tl_user_exact_matches_self", test_tl_user_exact_matches_self },
    { "test_tl_user_compressed_matches_self", test_tl_user_compressed_matches_self },
    { "test_tl_user_link_decorator_wraps", test_tl_user_link_decorator_wraps },
    { "test_tl_user_failing_callback", test_tl_user_failing_callback },
    { "test_tl_user_bad_descriptors", test_tl_user_bad_descriptors },
    { "test_tl_user_stages_scattered_pointers", test_tl_user_stages_scattered_pointers },
};

LT_MAIN("tl_user", tests)
