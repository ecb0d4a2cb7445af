/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Configuration and context creation: resolution order (explicit, env,
 * default), misuse (NULL, zeroed struct, bad magic, newer versions,
 * out-of-range values) and ranks that disagree. Rank threads only record
 * results; the main thread asserts (CUnit is not thread-safe).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lshmoe.h"
#include "lshmoe_build_config.h"
#include "testutil.h"

#define MAXR 8

typedef struct rank_result {
    lshmoe_status_t st;
    char            msg[512];
} rank_result_t;

/* Per-rank config tweak applied by create_on_ranks. */
typedef struct create_args {
    void (*tweak)(int rank, lshmoe_config_t *cfg);
    rank_result_t res[MAXR];
} create_args_t;

static void create_rank(lt_rank_ctx_t *rc)
{
    create_args_t *a = rc->arg;
    lshmoe_comm_desc_t d = lt_self_desc(rc);
    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    if (a->tweak)
        a->tweak(rc->rank, &cfg);
    lshmoe_ctx_t *ctx = NULL;
    a->res[rc->rank].st = lshmoe_ctx_create(&d, &cfg, &ctx);
    snprintf(a->res[rc->rank].msg, sizeof a->res[rc->rank].msg, "%s", lshmoe_last_error(NULL));
    lshmoe_ctx_destroy(ctx);
}

static void create_on_ranks(int nranks, create_args_t *a)
{
    CU_ASSERT_EQUAL_FATAL(lt_run_ranks(nranks, 10.0, create_rank, a), 0);
}

static lshmoe_comm_desc_t single_rank(void)
{
    lshmoe_comm_desc_t d = LSHMOE_COMM_DESC_INITIALIZER;
    d.kind = LSHMOE_COMM_SELF;
    d.rank = 0;
    d.nranks = 1;
    return d;
}

static void test_config_init_and_null_arguments(void)
{
    CU_ASSERT_EQUAL(lshmoe_config_init(NULL), LSHMOE_ERR_INVALID_ARG);
    lshmoe_config_t c;
    memset(&c, 0xab, sizeof c);
    CU_ASSERT_EQUAL(lshmoe_config_init(&c), LSHMOE_OK);
    CU_ASSERT_EQUAL(c.size, sizeof c);
    CU_ASSERT_EQUAL(c.magic, LSHMOE_MAGIC);
    CU_ASSERT_EQUAL(c.num_hashes, LSHMOE_UNSET_INT);
    CU_ASSERT_EQUAL(c.seed, LSHMOE_UNSET_U64);
    CU_ASSERT_PTR_NULL(c.transport);

    lshmoe_comm_desc_t d = single_rank();
    lshmoe_ctx_t *ctx = (lshmoe_ctx_t *)0x1;
    CU_ASSERT_EQUAL(lshmoe_ctx_create(&d, NULL, NULL), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(lshmoe_ctx_create(NULL, NULL, &ctx), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_EQUAL(ctx, (lshmoe_ctx_t *)0x1); /* outputs set on success only */
    CU_ASSERT_TRUE(strlen(lshmoe_last_error(NULL)) > 0);
}

static void test_config_zeroed_or_bad_magic_is_not_init(void)
{
    lshmoe_comm_desc_t d = single_rank();
    lshmoe_ctx_t *ctx = NULL;
    lshmoe_config_t zero;
    memset(&zero, 0, sizeof zero);
    CU_ASSERT_EQUAL(lshmoe_ctx_create(&d, &zero, &ctx), LSHMOE_ERR_NOT_INIT);
    CU_ASSERT_PTR_NOT_NULL(strstr(lshmoe_last_error(NULL), "LSHMOE_CONFIG_INITIALIZER"));
    lshmoe_config_t bad = LSHMOE_CONFIG_INITIALIZER;
    bad.magic = 0x12345678;
    CU_ASSERT_EQUAL(lshmoe_ctx_create(&d, &bad, &ctx), LSHMOE_ERR_NOT_INIT);
    CU_ASSERT_PTR_NULL(ctx);

    lshmoe_comm_desc_t zd;
    memset(&zd, 0, sizeof zd);
    CU_ASSERT_EQUAL(lshmoe_ctx_create(&zd, NULL, &ctx), LSHMOE_ERR_NOT_INIT);
    lshmoe_comm_desc_t r = single_rank();
    r.rank = 1;
    CU_ASSERT_EQUAL(lshmoe_ctx_create(&r, NULL, &ctx), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(ctx);
}

static void test_config_newer_versions_are_refused(void)
{
    lshmoe_comm_desc_t d = single_rank();
    lshmoe_ctx_t *ctx = NULL;
    CU_ASSERT_EQUAL(lshmoe_ctx_create_v(LSHMOE_VERSION_CODE + 1, &d, NULL, &ctx),
                    LSHMOE_ERR_VERSION);
    lshmoe_config_t c = LSHMOE_CONFIG_INITIALIZER;
    c.version = LSHMOE_VERSION_CODE + 100;
    CU_ASSERT_EQUAL(lshmoe_ctx_create(&d, &c, &ctx), LSHMOE_ERR_VERSION);
    CU_ASSERT_PTR_NULL(ctx);
}

static void test_config_out_of_range_values_are_refused(void)
{
    lshmoe_comm_desc_t d = single_rank();
    lshmoe_ctx_t *ctx = NULL;
    /* the field each case breaks; the message must name it */
    static const char *const field[] = {"HASHES", "CDIM", "CDIM", "ROUNDS",
                                        "RESIDUAL_BITS", "REDUCE", "CDIM", "MIN_RATIO"};
    for (size_t i = 0; i < sizeof field / sizeof field[0]; i++) {
        lshmoe_config_t c = LSHMOE_CONFIG_INITIALIZER;
        switch (i) {
        case 0: c.num_hashes = 0; break;
        case 1: c.cdim = 3; break;
        case 2: c.cdim = 512; break;
        case 3: c.rounds = 4; break;
        case 4: c.residual_bits = 5; break;
        case 5: c.reduce = 7; break;
        case 6: c.cdim = 128; c.reduce = LSHMOE_REDUCE_FOLD; c.reduce_dim = 64; break;
        case 7: c.min_ratio = 1e9; break;
        }
        CU_ASSERT_EQUAL(lshmoe_ctx_create(&d, &c, &ctx), LSHMOE_ERR_INVALID_ARG);
        CU_ASSERT_PTR_NULL(ctx);
        if (strstr(lshmoe_last_error(NULL), field[i]) == NULL) {
            fprintf(stderr, "case %zu: message '%s' does not name %s\n", i,
                    lshmoe_last_error(NULL), field[i]);
            CU_FAIL("error message does not name the field");
        }
    }
}

static void test_config_resolution_order(void)
{
    lshmoe_comm_desc_t d = single_rank();
    lshmoe_ctx_t *ctx = NULL;
    lshmoe_config_t got = LSHMOE_CONFIG_INITIALIZER;

    /* defaults */
    CU_ASSERT_EQUAL_FATAL(lshmoe_ctx_create(&d, NULL, &ctx), LSHMOE_OK);
    CU_ASSERT_EQUAL(lshmoe_ctx_get_config(ctx, &got), LSHMOE_OK);
    CU_ASSERT_EQUAL(got.num_hashes, 6);
    CU_ASSERT_EQUAL(got.compress, 1);
    CU_ASSERT_EQUAL(got.seed, 0x5eed);
    CU_ASSERT_EQUAL(got.reduce, LSHMOE_REDUCE_FOLD);
    CU_ASSERT_EQUAL(got.residual_bits, 0);
    CU_ASSERT_EQUAL(got.compensation, LSHMOE_COMP_RESIDUAL);
    CU_ASSERT_EQUAL(lshmoe_ctx_rank(ctx), 0);
    CU_ASSERT_EQUAL(lshmoe_ctx_nranks(ctx), 1);
    lshmoe_ctx_destroy(ctx);

    /* the environment fills unset fields; explicit fields win */
    setenv("LSHMOE_HASHES", "8", 1);
    setenv("LSHMOE_REDUCE", "pad", 1);
    setenv("LSHMOE_CDIM", "8", 1);
    lshmoe_config_t c = LSHMOE_CONFIG_INITIALIZER;
    c.cdim = 2;
    CU_ASSERT_EQUAL_FATAL(lshmoe_ctx_create(&d, &c, &ctx), LSHMOE_OK);
    CU_ASSERT_EQUAL(lshmoe_ctx_get_config(ctx, &got), LSHMOE_OK);
    CU_ASSERT_EQUAL(got.num_hashes, 8);
    CU_ASSERT_EQUAL(got.reduce, LSHMOE_REDUCE_PAD);
    CU_ASSERT_EQUAL(got.cdim, 2);
    lshmoe_ctx_destroy(ctx);

    /* a bad environment value is an error naming the variable, not a default */
    setenv("LSHMOE_HASHES", "lots", 1);
    CU_ASSERT_EQUAL(lshmoe_ctx_create(&d, NULL, &ctx), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(lshmoe_last_error(NULL), "LSHMOE_HASHES"));
    unsetenv("LSHMOE_HASHES");
    unsetenv("LSHMOE_REDUCE");
    unsetenv("LSHMOE_CDIM");
}

static void test_config_older_smaller_struct_gets_defaults(void)
{
    /* A caller built against a header whose config ended after `seed`. */
    lshmoe_comm_desc_t d = single_rank();
    lshmoe_config_t c = LSHMOE_CONFIG_INITIALIZER;
    c.size = (uint32_t)offsetof(lshmoe_config_t, num_hashes);
    c.seed = 77;
    c.num_hashes = 0; /* beyond the caller's size: must be ignored */
    lshmoe_ctx_t *ctx = NULL;
    CU_ASSERT_EQUAL_FATAL(lshmoe_ctx_create(&d, &c, &ctx), LSHMOE_OK);
    lshmoe_config_t got = LSHMOE_CONFIG_INITIALIZER;
    CU_ASSERT_EQUAL(lshmoe_ctx_get_config(ctx, &got), LSHMOE_OK);
    CU_ASSERT_EQUAL(got.seed, 77);
    CU_ASSERT_EQUAL(got.num_hashes, 6);
    lshmoe_ctx_destroy(ctx);
}

static void tweak_seed(int rank, lshmoe_config_t *c)
{
    c->seed = rank == 2 ? 99 : 1;
}

static void tweak_hashes(int rank, lshmoe_config_t *c)
{
    c->num_hashes = rank == 0 ? 4 : 6;
}

static void tweak_bad_cdim_on_rank1(int rank, lshmoe_config_t *c)
{
    if (rank == 1)
        c->cdim = 3;
}

static void tweak_none(int rank, lshmoe_config_t *c)
{
    (void)rank;
    c->seed = 5;
}

static void test_config_ranks_must_agree(void)
{
    create_args_t a = {.tweak = tweak_seed};
    create_on_ranks(3, &a);
    for (int r = 0; r < 3; r++) {
        CU_ASSERT_EQUAL(a.res[r].st, LSHMOE_ERR_MISMATCH);
        CU_ASSERT_PTR_NOT_NULL(strstr(a.res[r].msg, "seed"));
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(a.res[0].msg, "rank 2"));

    create_args_t b = {.tweak = tweak_hashes};
    create_on_ranks(2, &b);
    for (int r = 0; r < 2; r++) {
        CU_ASSERT_EQUAL(b.res[r].st, LSHMOE_ERR_MISMATCH);
        CU_ASSERT_PTR_NOT_NULL(strstr(b.res[r].msg, "hashes"));
    }

    create_args_t ok = {.tweak = tweak_none};
    create_on_ranks(4, &ok);
    for (int r = 0; r < 4; r++)
        CU_ASSERT_EQUAL(ok.res[r].st, LSHMOE_OK);
}

static void test_config_local_failure_reaches_every_rank(void)
{
    /* Rank 1's bad value must not leave ranks 0 and 2 waiting. */
    create_args_t a = {.tweak = tweak_bad_cdim_on_rank1};
    create_on_ranks(3, &a);
    CU_ASSERT_EQUAL(a.res[1].st, LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.res[1].msg, "CDIM"));
    CU_ASSERT_EQUAL(a.res[0].st, LSHMOE_ERR_PEER);
    CU_ASSERT_EQUAL(a.res[2].st, LSHMOE_ERR_PEER);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.res[0].msg, "rank 1"));
}

static void test_config_unknown_or_unbuilt_transport(void)
{
    lshmoe_comm_desc_t d = single_rank();
    lshmoe_ctx_t *ctx = NULL;
    lshmoe_config_t c = LSHMOE_CONFIG_INITIALIZER;
    c.transport = "bogus";
    CU_ASSERT_EQUAL(lshmoe_ctx_create(&d, &c, &ctx), LSHMOE_ERR_INVALID_ARG);
    c.transport = "mpi"; /* contradicts the descriptor's kind SELF */
    CU_ASSERT_EQUAL(lshmoe_ctx_create(&d, &c, &ctx), LSHMOE_ERR_INVALID_ARG);
    lshmoe_comm_desc_t m = d;
    m.kind = LSHMOE_COMM_NCCL;
#if LSHMOE_HAVE_NCCL_TL
    /* Built: a descriptor without an NCCL communicator is refused. */
    m.native = NULL;
    CU_ASSERT_EQUAL(lshmoe_ctx_create(&m, NULL, &ctx), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(lshmoe_last_error(NULL), "NCCL"));
#else
    /* Known, not built in this configuration. */
    CU_ASSERT_EQUAL(lshmoe_ctx_create(&m, NULL, &ctx), LSHMOE_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(lshmoe_last_error(NULL), "not built"));
#endif
    CU_ASSERT_PTR_NULL(ctx);
}

static void test_config_stats_and_handles(void)
{
    lshmoe_comm_desc_t d = single_rank();
    lshmoe_ctx_t *ctx = NULL;
    CU_ASSERT_EQUAL_FATAL(lshmoe_ctx_create(&d, NULL, &ctx), LSHMOE_OK);
    lshmoe_stats_t s = LSHMOE_STATS_INITIALIZER;
    CU_ASSERT_EQUAL(lshmoe_stats_get(ctx, &s), LSHMOE_OK);
    CU_ASSERT_EQUAL(s.calls, 0);
    lshmoe_stats_t z;
    memset(&z, 0, sizeof z);
    CU_ASSERT_EQUAL(lshmoe_stats_get(ctx, &z), LSHMOE_ERR_NOT_INIT);
    CU_ASSERT_EQUAL(lshmoe_stats_get(NULL, &s), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(lshmoe_ctx_get_config(NULL, NULL), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(lshmoe_ctx_rank(NULL), -1);
    CU_ASSERT_STRING_EQUAL(lshmoe_last_error(ctx), "");
    lshmoe_ctx_destroy(ctx);
    lshmoe_ctx_destroy(NULL);
}

static const lt_test_t tests[] = {
    {"test_config_init_and_null_arguments", test_config_init_and_null_arguments},
    {"test_config_zeroed_or_bad_magic_is_not_init", test_config_zeroed_or_bad_magic_is_not_init},
    {"test_config_newer_versions_are_refused", test_config_newer_versions_are_refused},
    {"test_config_out_of_range_values_are_refused", test_config_out_of_range_values_are_refused},
    {"test_config_resolution_order", test_config_resolution_order},
    {"test_config_older_smaller_struct_gets_defaults",
     test_config_older_smaller_struct_gets_defaults},
    {"test_config_ranks_must_agree", test_config_ranks_must_agree},
    {"test_config_local_failure_reaches_every_rank", test_config_local_failure_reaches_every_rank},
    {"test_config_unknown_or_unbuilt_transport", test_config_unknown_or_unbuilt_transport},
    {"test_config_stats_and_handles", test_config_stats_and_handles},
};

LT_MAIN("config", tests)
