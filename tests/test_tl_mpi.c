/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The mpi transport under mpiexec (meson runs it with -n 4): the ops table
 * byte by byte, the chunked point-to-point path on a tiny chunk size, and
 * lshmoe_alltoallv end to end over MPI_COMM_WORLD, failures included.
 *
 * Every rank runs every test. An assertion that fails on one rank must not
 * make it skip a collective the others enter, so no test uses a _FATAL
 * assertion before its last collective. Only rank 0 prints CUnit's report;
 * the other ranks print their own failures, and every rank exits with the
 * same status (the failure counts are summed over all ranks).
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <mpi.h>

#include "collectives/mpi/mpi_int.h"
#include "collectives/transport.h"
#include "lshmoe.h"
#include "lshmoe/common/error.h"
#include "lshmoe_mpi.h"
#include "testutil.h"

#define HIDDEN 64

static int me, nr;
/* lshmoe keeps the address of the MPI_Comm during ctx creation only, but a
 * file-scope handle keeps every descriptor's `native` trivially valid. */
static MPI_Comm world;

/* Byte i of what rank src sends rank dst. */
static uint8_t f(int src, int dst, size_t i)
{
    return (uint8_t)lt_hash64((uint64_t)src * 1009u + (uint64_t)dst, i);
}

static void fill(uint8_t *buf, int src, int dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = f(src, dst, i);
}

static int check(const uint8_t *buf, int src, int dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (buf[i] != f(src, dst, i))
            return 0;
    return 1;
}

/* Opens the mpi transport on MPI_COMM_WORLD through the registry. */
static void *tl_open(const lshmoe_tl_ops_t **ops)
{
    lshmoe_comm_desc_t d;
    void *tl = NULL;

    *ops = NULL;
    CU_ASSERT_EQUAL(lshmoe_comm_desc_from_mpi(&world, &d), LSHMOE_OK);
    CU_ASSERT_EQUAL(d.rank, me);
    CU_ASSERT_EQUAL(d.nranks, nr);
    CU_ASSERT_EQUAL(lshmoe_tl_select(NULL, &d, ops), LSHMOE_OK);
    CU_ASSERT(*ops == &lshmoe_tl_mpi_ops);
    if (*ops == NULL || (*ops)->init(&d, &tl) != LSHMOE_OK) {
        CU_FAIL("mpi transport init failed");
        fprintf(stderr, "rank %d: %s\n", me, lshmoe_error_thread_msg());
        return NULL;
    }
    return tl;
}

/* ------------------------------------------------------------------------ */
/* Transport level                                                           */
/* ------------------------------------------------------------------------ */

static void gather_and_check(const lshmoe_tl_ops_t *ops, void *tl, size_t bytes)
{
    size_t all = (size_t)nr * bytes;
    uint8_t *send = calloc(1, bytes + 1), *recv = calloc(1, all + 1);
    fill(send, me, 0, bytes);
    CU_ASSERT_EQUAL(ops->allgather(tl, send, bytes, recv), LSHMOE_OK);
    for (int p = 0; p < nr; p++)
        CU_ASSERT(check(recv + (size_t)p * bytes, p, 0, bytes));
    /* In place: this rank's block already sits in recv. */
    memset(recv, 0, all);
    fill(recv + (size_t)me * bytes, me, 0, bytes);
    CU_ASSERT_EQUAL(ops->allgather(tl, recv + (size_t)me * bytes, bytes, recv), LSHMOE_OK);
    for (int p = 0; p < nr; p++)
        CU_ASSERT(check(recv + (size_t)p * bytes, p, 0, bytes));

    uint8_t *s2 = calloc(1, all + 1);
    for (int p = 0; p < nr; p++)
        fill(s2 + (size_t)p * bytes, me, p, bytes);
    memset(recv, 0, all);
    CU_ASSERT_EQUAL(ops->alltoall(tl, s2, bytes, recv), LSHMOE_OK);
    for (int p = 0; p < nr; p++)
        CU_ASSERT(check(recv + (size_t)p * bytes, p, me, bytes));
    free(send);
    free(recv);
    free(s2);
}

static void test_tl_mpi_allgather_alltoall(void)
{
    const lshmoe_tl_ops_t *ops;
    void *tl = tl_open(&ops);
    if (tl == NULL)
        return;
    gather_and_check(ops, tl, 37);
    gather_and_check(ops, tl, 0);
    CU_ASSERT_EQUAL(ops->allgather(tl, NULL, 0, NULL), LSHMOE_OK);
    ops->finalize(tl);
}

/* Bytes rank src sends rank dst: uneven, zero for some peers and for some
 * ranks' own segment. */
static size_t v_size(int src, int dst)
{
    if ((src + 2 * dst) % 3 == 0)
        return 0;
    return 100 + 37 * (size_t)src + 11 * (size_t)dst;
}

/*
 * One alltoallv with per-peer buffers (NULL for zero sizes). Rank `bad`
 * expects `delta` more bytes from rank 0 than rank 0 sends. Returns the
 * status; *exact says whether every peer's bytes arrived intact.
 */
static lshmoe_status_t run_v(const lshmoe_tl_ops_t *ops, void *tl, int bad, long delta,
                             int *exact)
{
    const void **sp = calloc(nr, sizeof(*sp));
    void **rp = calloc(nr, sizeof(*rp));
    size_t *sb = calloc(nr, sizeof(*sb)), *rb = calloc(nr, sizeof(*rb));

    for (int p = 0; p < nr; p++) {
        sb[p] = v_size(me, p);
        rb[p] = v_size(p, me);
        if (me == bad && p == 0)
            rb[p] = (size_t)((long)rb[p] + delta);
        if (sb[p] > 0) {
            uint8_t *b = malloc(sb[p]);
            fill(b, me, p, sb[p]);
            sp[p] = b;
        }
        if (rb[p] > 0)
            rp[p] = calloc(1, rb[p] + 16);
    }
    lshmoe_status_t st = ops->alltoallv(tl, sp, sb, rp, rb, NULL);
    *exact = 1;
    for (int p = 0; p < nr; p++) {
        if (!(me == bad && p == 0) && !check(rp[p], p, me, v_size(p, me)))
            *exact = 0;
        free((void *)sp[p]);
        free(rp[p]);
    }
    free(sp);
    free(rp);
    free(sb);
    free(rb);
    return st;
}

static void test_tl_mpi_alltoallv_uneven_with_zeros(void)
{
    const lshmoe_tl_ops_t *ops;
    int exact = 0;
    void *tl = tl_open(&ops);
    if (tl == NULL)
        return;
    for (int round = 0; round < 3; round++) { /* no crosstalk between calls */
        CU_ASSERT_EQUAL(run_v(ops, tl, -1, 0, &exact), LSHMOE_OK);
        CU_ASSERT(exact);
    }
    size_t z[64] = {0};
    void *np[64] = {NULL};
    int stream;
    CU_ASSERT_EQUAL(ops->alltoallv(tl, (const void *const *)np, z, np, z, &stream),
                    LSHMOE_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(ops->alltoallv(tl, (const void *const *)np, z, np, z, NULL), LSHMOE_OK);
    ops->finalize(tl);
}

/* The > INT_MAX path, on a chunk size small enough that every peer's bytes
 * split into many messages, with remainders and exact multiples. */
static void test_tl_mpi_chunking(void)
{
    const lshmoe_tl_ops_t *ops;
    int exact = 0;
    void *tl = tl_open(&ops);
    if (tl == NULL)
        return;
    const size_t chunks[] = {1, 4, 7, 111};
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        CU_ASSERT_EQUAL(lshmoe_tl_mpi_set_chunk_bytes(chunks[i]), chunks[i]);
        CU_ASSERT_EQUAL(run_v(ops, tl, -1, 0, &exact), LSHMOE_OK);
        CU_ASSERT(exact);
        /* allgather/alltoall larger than a chunk take the same path */
        gather_and_check(ops, tl, 37);
    }
    CU_ASSERT_EQUAL(lshmoe_tl_mpi_set_chunk_bytes(SIZE_MAX), (size_t)INT_MAX);
    CU_ASSERT_EQUAL(lshmoe_tl_mpi_set_chunk_bytes(0), LSHMOE_TL_MPI_CHUNK_DEFAULT);
    ops->finalize(tl);
}

/* Sizes that disagree (the core never produces them: it exchanges counts
 * first) still fail cleanly: too little posted is MPI's truncation, too
 * much is a short count; both name the sender. */
static void test_tl_mpi_size_mismatch_names_peer(void)
{
    const lshmoe_tl_ops_t *ops;
    int exact = 0;
    void *tl = tl_open(&ops);
    if (tl == NULL)
        return;
    for (int sign = -1; sign <= 1; sign += 2) {
        lshmoe_status_t st = run_v(ops, tl, 1, 5 * sign, &exact);
        if (me == 1) {
            CU_ASSERT_EQUAL(st, LSHMOE_ERR_MISMATCH);
            CU_ASSERT_PTR_NOT_NULL(strstr(lshmoe_error_thread_msg(), "rank 0"));
        } else {
            CU_ASSERT_EQUAL(st, LSHMOE_OK);
            CU_ASSERT(exact);
        }
        /* the next call is clean everywhere */
        CU_ASSERT_EQUAL(run_v(ops, tl, -1, 0, &exact), LSHMOE_OK);
        CU_ASSERT(exact);
    }
    ops->finalize(tl);
}

static void test_tl_mpi_probe_and_init_checks(void)
{
    lshmoe_comm_desc_t d;
    void *tl = NULL;

    CU_ASSERT_EQUAL(lshmoe_comm_desc_from_mpi(&world, &d), LSHMOE_OK);
    CU_ASSERT(lshmoe_tl_mpi_ops.probe(&d));
    d.kind = LSHMOE_COMM_AUTO;  /* an unknown native could be anything */
    CU_ASSERT(!lshmoe_tl_mpi_ops.probe(&d));
    d.kind = LSHMOE_COMM_MPI;
    d.native = NULL;
    CU_ASSERT(!lshmoe_tl_mpi_ops.probe(&d));
    CU_ASSERT_EQUAL(lshmoe_tl_mpi_ops.init(&d, &tl), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(lshmoe_comm_desc_from_mpi(NULL, &d), LSHMOE_ERR_INVALID_ARG);

    /* Rank 1 claims to be rank 2: it fails naming both numbers, the others
     * fail naming it, and nobody waits. */
    CU_ASSERT_EQUAL(lshmoe_comm_desc_from_mpi(&world, &d), LSHMOE_OK);
    if (me == 1)
        d.rank = 2;
    lshmoe_status_t st = lshmoe_tl_mpi_ops.init(&d, &tl);
    const char *msg = lshmoe_error_thread_msg();
    if (me == 1) {
        CU_ASSERT_EQUAL(st, LSHMOE_ERR_INVALID_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, "rank 2 of"));
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, "rank 1 of"));
    } else {
        CU_ASSERT_EQUAL(st, LSHMOE_ERR_PEER);
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, "rank 1"));
    }
    if (st == LSHMOE_OK)
        lshmoe_tl_mpi_ops.finalize(tl);
}

/* ------------------------------------------------------------------------ */
/* End to end through the public API                                         */
/* ------------------------------------------------------------------------ */

/* Tokens from rank r to rank p: uneven, an empty remote segment, and a rank
 * that sends nobody else anything. */
static size_t count(int r, int p)
{
    if (r == 3 && p == 1)
        return 0;
    if (r == 2)
        return p == 2 ? 7 : 0;
    return (size_t)(40 + 23 * r + 11 * p);
}

/* Segment r -> p: 8 tight clusters when clustered, else Gaussian. */
static void gen(float *out, int r, int p, int clustered)
{
    uint64_t seed = 1000u + (uint64_t)r * 16u + (uint64_t)p;
    if (clustered)
        lt_gen_clustered(out, count(r, p), HIDDEN, 8, 0.05, seed);
    else
        lt_gen_gaussian(out, count(r, p), HIDDEN, seed);
}

typedef struct e2e {
    int             compress, clustered, bad_count_rank;
    lshmoe_status_t st, st_after;
    char            msg[LSHMOE_ERRMSG_LEN];
    int             exact;
    double          err;
    lshmoe_stats_t  stats;
} e2e_t;

static void run_e2e(e2e_t *e, const lshmoe_config_t *cfg_in)
{
    const size_t tb = HIDDEN * sizeof(float);
    size_t sc[64], sd[64], rc[64], rd[64], stot = 0, rtot = 0;
    for (int p = 0; p < nr; p++) {
        sc[p] = count(me, p);
        sd[p] = stot;
        stot += sc[p];
        rc[p] = count(p, me);
        rd[p] = rtot;
        rtot += rc[p];
    }
    float *send = malloc(stot * tb + 1), *recv = malloc((rtot + 1) * tb);
    float *want = malloc(rtot * tb + 1);
    for (int p = 0; p < nr; p++) {
        gen(send + sd[p] * HIDDEN, me, p, e->clustered);
        gen(want + rd[p] * HIDDEN, p, me, e->clustered);
    }
    lshmoe_comm_desc_t d;
    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    if (cfg_in != NULL)
        cfg = *cfg_in;
    cfg.compress = e->compress;
    lshmoe_ctx_t *ctx = NULL;
    e->stats = (lshmoe_stats_t)LSHMOE_STATS_INITIALIZER;
    CU_ASSERT_EQUAL(lshmoe_comm_desc_from_mpi(&world, &d), LSHMOE_OK);
    e->st = lshmoe_ctx_create(&d, &cfg, &ctx);
    snprintf(e->msg, sizeof(e->msg), "%s", lshmoe_last_error(NULL));
    if (e->st != LSHMOE_OK)
        goto out;
    size_t rc2[64];
    memcpy(rc2, rc, sizeof(rc2));
    /* One fewer, not one more: one more would make the receive range
     * overlap the next peer's, which is refused before any exchange. */
    if (me == e->bad_count_rank)
        rc2[0]--;
    memset(recv, 0x5a, rtot * tb);
    e->st = lshmoe_alltoallv(ctx, send, sc, sd, recv, rc2, rd, LSHMOE_DTYPE_FP32, HIDDEN,
                             NULL);
    snprintf(e->msg, sizeof(e->msg), "%s", lshmoe_last_error(ctx));
    if (e->st == LSHMOE_OK) {
        e->exact = memcmp(recv, want, rtot * tb) == 0;
        e->err = lt_rel_l2(recv, want, rtot * HIDDEN);
    }
    /* After any failure the context still works. */
    e->st_after = lshmoe_alltoallv(ctx, send, sc, sd, recv, rc, rd, LSHMOE_DTYPE_FP32, HIDDEN,
                                   NULL);
    lshmoe_stats_get(ctx, &e->stats);
out:
    if (e->st != LSHMOE_OK)
        fprintf(stderr, "rank %d (expected?): %s: %s\n", me, lshmoe_status_name(e->st),
                e->msg);
    lshmoe_ctx_destroy(ctx);
    free(send);
    free(recv);
    free(want);
}

static e2e_t e2e_base(int compress, int clustered)
{
    e2e_t e;
    memset(&e, 0, sizeof(e));
    e.compress = compress;
    e.clustered = clustered;
    e.bad_count_rank = -1;
    return e;
}

static void test_tl_mpi_e2e_uncompressed_is_exact(void)
{
    for (int clustered = 0; clustered <= 1; clustered++) {
        e2e_t e = e2e_base(0, clustered);
        run_e2e(&e, NULL);
        CU_ASSERT_EQUAL(e.st, LSHMOE_OK);
        CU_ASSERT_EQUAL(e.st_after, LSHMOE_OK);
        CU_ASSERT(e.exact);
        CU_ASSERT_EQUAL(e.stats.bytes_wire, e.stats.bytes_in);
    }
}

static void test_tl_mpi_e2e_clusters_compress_with_bounded_error(void)
{
    e2e_t e = e2e_base(1, 1);
    run_e2e(&e, NULL);
    CU_ASSERT_EQUAL(e.st, LSHMOE_OK);
    CU_ASSERT_EQUAL(e.st_after, LSHMOE_OK);
    /* noise 0.05 around unit-variance centers (same bound as the self
     * transport's end-to-end test) */
    CU_ASSERT(e.err < 0.15);
    if (me != 2) /* rank 2 sends nothing remote */
        CU_ASSERT(e.stats.bytes_wire < e.stats.bytes_in);
    CU_ASSERT(e.stats.segments_compressed > 0 || me == 2);
}

static void test_tl_mpi_e2e_count_mismatch_names_rank0(void)
{
    e2e_t e = e2e_base(1, 1);
    e.bad_count_rank = 1; /* expects one token fewer from rank 0 */
    run_e2e(&e, NULL);
    if (me == 1) {
        CU_ASSERT_EQUAL(e.st, LSHMOE_ERR_MISMATCH);
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "rank 0"));
    } else {
        CU_ASSERT_EQUAL(e.st, LSHMOE_OK);
    }
    CU_ASSERT_EQUAL(e.st_after, LSHMOE_OK);
}

static void test_tl_mpi_e2e_config_mismatch(void)
{
    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    cfg.seed = me == nr - 1 ? 999 : 1234; /* the last rank hashes differently */
    e2e_t e = e2e_base(1, 1);
    run_e2e(&e, &cfg);
    CU_ASSERT_EQUAL(e.st, LSHMOE_ERR_MISMATCH);

    cfg = (lshmoe_config_t)LSHMOE_CONFIG_INITIALIZER;
    if (me == 2)
        cfg.cdim = 3; /* not a power of two: only rank 2 knows */
    e = e2e_base(1, 1);
    run_e2e(&e, &cfg);
    if (me == 2) {
        CU_ASSERT_EQUAL(e.st, LSHMOE_ERR_INVALID_ARG);
    } else {
        CU_ASSERT_EQUAL(e.st, LSHMOE_ERR_PEER);
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "rank 2"));
    }
}

/* lshmoe's messages travel on its duplicate: a wildcard receive the user
 * posted on MPI_COMM_WORLD before the call must not catch any of them. */
static void test_tl_mpi_traffic_stays_off_user_comm(void)
{
    MPI_Request req = MPI_REQUEST_NULL;
    int got = -1, flag = 0;
    if (me == 0)
        MPI_Irecv(&got, 1, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG, world, &req);
    e2e_t e = e2e_base(0, 0);
    run_e2e(&e, NULL);
    CU_ASSERT_EQUAL(e.st, LSHMOE_OK);
    CU_ASSERT(e.exact);
    if (me == 0) {
        MPI_Test(&req, &flag, MPI_STATUS_IGNORE);
        CU_ASSERT(!flag);
    }
    /* Only now may the user's own message come (else it could be what
     * completed the receive above). */
    MPI_Barrier(world);
    if (me == 1) {
        int v = 4242;
        MPI_Send(&v, 1, MPI_INT, 0, 5, world);
    }
    if (me == 0) {
        MPI_Wait(&req, MPI_STATUS_IGNORE);
        CU_ASSERT_EQUAL(got, 4242);
    }
}

/* ------------------------------------------------------------------------ */
/* main: CUnit on every rank, one report, one exit status                   */
/* ------------------------------------------------------------------------ */

static const lt_test_t tests[] = {
    {"test_tl_mpi_allgather_alltoall", test_tl_mpi_allgather_alltoall},
    {"test_tl_mpi_alltoallv_uneven_with_zeros", test_tl_mpi_alltoallv_uneven_with_zeros},
    {"test_tl_mpi_chunking", test_tl_mpi_chunking},
    {"test_tl_mpi_size_mismatch_names_peer", test_tl_mpi_size_mismatch_names_peer},
    {"test_tl_mpi_probe_and_init_checks", test_tl_mpi_probe_and_init_checks},
    {"test_tl_mpi_e2e_uncompressed_is_exact", test_tl_mpi_e2e_uncompressed_is_exact},
    {"test_tl_mpi_e2e_clusters_compress_with_bounded_error",
     test_tl_mpi_e2e_clusters_compress_with_bounded_error},
    {"test_tl_mpi_e2e_count_mismatch_names_rank0", test_tl_mpi_e2e_count_mismatch_names_rank0},
    {"test_tl_mpi_e2e_config_mismatch", test_tl_mpi_e2e_config_mismatch},
    {"test_tl_mpi_traffic_stays_off_user_comm", test_tl_mpi_traffic_stays_off_user_comm},
};

/* Runs the suite on this rank; returns its failure count (1 on a CUnit
 * error). Ranks other than 0 stay silent except for their failures. */
static int run_suite(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("tl_mpi", NULL, NULL);
    for (size_t i = 0; s != NULL && i < sizeof(tests) / sizeof(tests[0]); i++)
        if (CU_add_test(s, tests[i].name, tests[i].fn) == NULL)
            s = NULL;
    if (s == NULL) {
        fprintf(stderr, "rank %d: CUnit: %s\n", me, CU_get_error_msg());
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(me == 0 ? CU_BRM_VERBOSE : CU_BRM_SILENT);
    CU_basic_run_tests();
    int fails = (int)CU_get_number_of_failures();
    if (CU_get_number_of_tests_run() != sizeof(tests) / sizeof(tests[0]))
        fails++;
    if (me != 0)
        for (CU_pFailureRecord r = CU_get_failure_list(); r != NULL; r = r->pNext)
            fprintf(stderr, "rank %d: %s: %s:%u: %s\n", me,
                    r->pTest ? r->pTest->pName : "?", r->strFileName ? r->strFileName : "?",
                    r->uiLineNumber, r->strCondition ? r->strCondition : "?");
    CU_cleanup_registry();
    return fails;
}

int main(int argc, char **argv)
{
    if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
        fprintf(stderr, "MPI_Init failed: skipping the mpi suite\n");
        return LT_EXIT_SKIP;
    }
    world = MPI_COMM_WORLD;
    MPI_Comm_rank(world, &me);
    MPI_Comm_size(world, &nr);
    if (nr < 3 || nr > 64) {
        /* The failure scenarios name ranks 0..2; a singleton run (no
         * mpiexec) has nothing to test. */
        if (me == 0)
            fprintf(stderr, "tl_mpi needs 3..64 ranks (mpiexec -n 4), got %d: skipped\n", nr);
        MPI_Finalize();
        return LT_EXIT_SKIP;
    }
    int mine = run_suite(), all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_SUM, world);
    if (me == 0)
        printf("tl_mpi: %d failure(s) over %d ranks\n", all, nr);
    MPI_Finalize();
    return all == 0 ? 0 : 1;
}
