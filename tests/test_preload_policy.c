/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* The preload's compression decision: local votes, their OR across ranks,
 * and the one action every rank then takes (bindings/preload/policy.c). */
#include <string.h>

#include "bindings/preload/policy.h"
#include "lshmoe.h"
#include "testutil.h"

static pl_policy_t policy(const char *hidden, size_t min_bytes)
{
    pl_policy_t p;
    char err[256];
    memset(&p, 0, sizeof p);
    p.min_bytes = min_bytes;
    p.row_mode = -1;  /* no row path (LSHMOE_CODEC=native) unless a test sets one */
    CU_ASSERT_EQUAL(pl_policy_parse_hidden(&p, hidden, err, sizeof err), 0);
    return p;
}

static pl_vote_t or_votes(pl_vote_t a, pl_vote_t b)
{
    return (pl_vote_t){a.reasons | b.reasons, a.misfit | b.misfit, a.fp | b.fp,
                       a.fp_not | b.fp_not};
}

/* Two ranks; counts in floats, 2 peers. */
static pl_vote_t vote(const pl_policy_t *p, int rank, pl_kind_t kind, int c0, int c1)
{
    int sc[2] = {c0, c1}, sd[2] = {0, c0};
    pl_shape_t s = {.nranks = 2, .rank = rank, .kind = kind, .elem_size = 4,
                    .send_counts = sc, .send_displs = sd, .recv_counts = sc,
                    .recv_displs = sd};
    return pl_policy_vote(p, &s);
}

static void test_policy_agreeing_ranks_compress_with_first_fitting_size(void)
{
    pl_policy_t p = policy("100,64", 0);
    pl_vote_t all = or_votes(vote(&p, 0, PL_KIND_FP32, 6400, 640),
                             vote(&p, 1, PL_KIND_FP32, 1280, 64));
    pl_decision_t d = pl_policy_decide(&p, all);
    CU_ASSERT_EQUAL(d.action, PL_ACTION_LSH);
    CU_ASSERT_EQUAL(d.hidden, 64);  /* 100 misfits on both ranks */
    pl_policy_t q = policy("64,32", 0);
    d = pl_policy_decide(&q, or_votes(vote(&q, 0, PL_KIND_FP32, 128, 64),
                                      vote(&q, 1, PL_KIND_FP32, 64, 64)));
    CU_ASSERT_EQUAL(d.hidden, 64);  /* both fit: the first listed wins */
}

static void test_policy_one_rank_misfit_passes_everywhere(void)
{
    pl_policy_t p = policy("64", 0);
    pl_vote_t ok = vote(&p, 0, PL_KIND_FP32, 128, 64);
    pl_vote_t odd = vote(&p, 1, PL_KIND_FP32, 128, 67);
    CU_ASSERT_EQUAL(pl_policy_decide(&p, ok).action, PL_ACTION_LSH);
    pl_decision_t d = pl_policy_decide(&p, or_votes(ok, odd));
    CU_ASSERT_EQUAL(d.action, PL_ACTION_PASS);
    CU_ASSERT_EQUAL(d.reason, PL_REASON_NOT_MULTIPLE);
    /* A displacement that is no multiple misfits too. */
    int sc[2] = {64, 64}, sd[2] = {0, 65};
    pl_shape_t s = {.nranks = 2, .rank = 0, .kind = PL_KIND_FP32, .elem_size = 4,
                    .send_counts = sc, .send_displs = sd, .recv_counts = sc,
                    .recv_displs = sc};
    CU_ASSERT_EQUAL(pl_policy_vote(&p, &s).misfit, 1u);
}

static void test_policy_small_or_derived_on_one_rank_passes_everywhere(void)
{
    pl_policy_t p = policy("64", 4096);
    /* Rank 0 sends 64 floats (256 bytes) to its one peer: below 4096. */
    pl_vote_t small = vote(&p, 0, PL_KIND_FP32, 64000, 64);
    pl_vote_t big = vote(&p, 1, PL_KIND_FP32, 6400, 6400);
    pl_decision_t d = pl_policy_decide(&p, or_votes(small, big));
    CU_ASSERT_EQUAL(d.action, PL_ACTION_PASS);
    CU_ASSERT_EQUAL(d.reason, PL_REASON_SMALL);
    /* Its own segment does not count: 64000 floats to itself are local. */
    CU_ASSERT_EQUAL(pl_policy_decide(&p, big).action, PL_ACTION_LSH);
    d = pl_policy_decide(&p, or_votes(vote(&p, 0, PL_KIND_FP32_DERIVED, 6400, 6400), big));
    CU_ASSERT_EQUAL(d.reason, PL_REASON_DERIVED);
}

static void test_policy_config_mismatch_and_no_size(void)
{
    pl_policy_t a = policy("64", 0), b = policy("100", 0), none = policy("", 0);
    pl_decision_t d = pl_policy_decide(&a, or_votes(vote(&a, 0, PL_KIND_FP32, 6400, 6400),
                                                    vote(&b, 1, PL_KIND_FP32, 6400, 6400)));
    CU_ASSERT_EQUAL(d.action, PL_ACTION_PASS);
    CU_ASSERT_EQUAL(d.reason, PL_REASON_CONFIG);
    d = pl_policy_decide(&none, vote(&none, 0, PL_KIND_FP32, 6400, 6400));
    CU_ASSERT_EQUAL(d.reason, PL_REASON_NO_HIDDEN);
    /* A malformed variable on one rank: every rank passes. */
    pl_policy_t bad = policy("64", 0);
    bad.config_error = 1;
    d = pl_policy_decide(&a, or_votes(vote(&a, 0, PL_KIND_FP32, 6400, 6400),
                                      vote(&bad, 1, PL_KIND_FP32, 6400, 6400)));
    CU_ASSERT_EQUAL(d.reason, PL_REASON_CONFIG);
    /* A rank that could not describe its call (out of memory) votes error. */
    d = pl_policy_decide(&a, or_votes(vote(&a, 0, PL_KIND_FP32, 6400, 6400),
                                      pl_policy_vote(&a, NULL)));
    CU_ASSERT_EQUAL(d.reason, PL_REASON_ERROR);
    none.disabled = 1;
    CU_ASSERT_EQUAL(pl_policy_decide(&none, (pl_vote_t){0, 0, 0, ~0u}).reason,
                    PL_REASON_DISABLED);
}

/* With a row mode, calls no token size fits go to the row path on every
 * rank; a fitting size still wins; a rank with another row mode (another
 * LSHMOE_CODEC) makes every rank pass. */
static void test_policy_rows_when_no_token_size_fits(void)
{
    pl_policy_t none = policy("", 0), h64 = policy("64", 0);
    none.row_mode = h64.row_mode = LSHMOE_CODEC_BUDGET_ROWS;
    pl_decision_t d = pl_policy_decide(&none, or_votes(vote(&none, 0, PL_KIND_FP32, 100, 7),
                                                       vote(&none, 1, PL_KIND_FP32, 3, 9)));
    CU_ASSERT_EQUAL(d.action, PL_ACTION_ROWS);
    CU_ASSERT_EQUAL(d.hidden, PL_ROW_BLOCK);
    d = pl_policy_decide(&h64, or_votes(vote(&h64, 0, PL_KIND_FP32, 128, 64),
                                        vote(&h64, 1, PL_KIND_FP32, 128, 67)));
    CU_ASSERT_EQUAL(d.action, PL_ACTION_ROWS);   /* 67 misfits on rank 1 */
    d = pl_policy_decide(&h64, or_votes(vote(&h64, 0, PL_KIND_FP32, 128, 64),
                                        vote(&h64, 1, PL_KIND_FP32, 128, 640)));
    CU_ASSERT_EQUAL(d.action, PL_ACTION_LSH);
    CU_ASSERT_EQUAL(d.hidden, 64);
    /* pass reasons still win over the row path */
    pl_policy_t small = none;
    small.min_bytes = 4096;
    d = pl_policy_decide(&small, vote(&small, 0, PL_KIND_FP32, 64, 64));
    CU_ASSERT_EQUAL(d.reason, PL_REASON_SMALL);
    /* rank 1 has another row mode: the fingerprints differ */
    pl_policy_t fp8 = none;
    fp8.row_mode = LSHMOE_CODEC_FP8;
    d = pl_policy_decide(&none, or_votes(vote(&none, 0, PL_KIND_FP32, 6400, 6400),
                                         vote(&fp8, 1, PL_KIND_FP32, 6400, 6400)));
    CU_ASSERT_EQUAL(d.action, PL_ACTION_PASS);
    CU_ASSERT_EQUAL(d.reason, PL_REASON_CONFIG);
    /* the mapping from LSHMOE_CODEC */
    CU_ASSERT_EQUAL(pl_policy_row_mode(LSHMOE_CODEC_LSH), LSHMOE_CODEC_BUDGET_ROWS);
    CU_ASSERT_EQUAL(pl_policy_row_mode(LSHMOE_CODEC_BUDGET), LSHMOE_CODEC_BUDGET_ROWS);
    CU_ASSERT_EQUAL(pl_policy_row_mode(LSHMOE_CODEC_LSH_REFINE_INT4E),
                    LSHMOE_CODEC_BUDGET_ROWS);
    CU_ASSERT_EQUAL(pl_policy_row_mode(LSHMOE_CODEC_FP8), LSHMOE_CODEC_FP8);
    CU_ASSERT_EQUAL(pl_policy_row_mode(LSHMOE_CODEC_INT4E), LSHMOE_CODEC_INT4E);
    CU_ASSERT_EQUAL(pl_policy_row_mode(LSHMOE_CODEC_NATIVE), -1);
}

static void test_policy_parse_hidden(void)
{
    pl_policy_t p;
    char err[256];
    memset(&p, 0, sizeof p);
    CU_ASSERT_EQUAL(pl_policy_parse_hidden(&p, "768,1024,100", err, sizeof err), 0);
    CU_ASSERT_EQUAL(p.nhidden, 3);
    CU_ASSERT_EQUAL(p.hidden[2], 100);
    const char *bad[] = {"0", "12x", "-5", ",", "64,,32", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL(pl_policy_parse_hidden(&p, bad[i], err, sizeof err), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "LSHMOE_HIDDEN"));
    }
    CU_ASSERT_STRING_EQUAL(pl_reason_name(PL_REASON_NOT_MULTIPLE), "not-multiple");
}

static const lt_test_t tests[] = {
    {"test_policy_agreeing_ranks_compress_with_first_fitting_size",
     test_policy_agreeing_ranks_compress_with_first_fitting_size},
    {"test_policy_one_rank_misfit_passes_everywhere",
     test_policy_one_rank_misfit_passes_everywhere},
    {"test_policy_small_or_derived_on_one_rank_passes_everywhere",
     test_policy_small_or_derived_on_one_rank_passes_everywhere},
    {"test_policy_config_mismatch_and_no_size", test_policy_config_mismatch_and_no_size},
    {"test_policy_rows_when_no_token_size_fits", test_policy_rows_when_no_token_size_fits},
    {"test_policy_parse_hidden", test_policy_parse_hidden},
};

LT_MAIN("preload_policy", tests)
