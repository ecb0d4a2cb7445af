/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * lshmoe_alltoallv with the error budget (codec "budget", max_error in
 * lshmoe_config_t) on the self transport, 4 ranks: every segment a rank
 * receives is within the budget (measured here per sending peer against
 * the tokens that peer sent), compressible data does compress, and the
 * config fields resolve from the struct and from the environment.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lshmoe.h"
#include "lshmoe/common/dtype.h"
#include "testutil.h"

#define NR 4
#define HIDDEN 96
#define PER_PEER 300

typedef struct run {
    int             codec;       /* BUDGET or BUDGET_ROWS */
    double          budget;
    int             clustered;
    lshmoe_status_t st[NR];
    double          worst[NR];   /* largest per-segment error received */
    lshmoe_stats_t  stats[NR];
    lshmoe_config_t cfg[NR];
} run_t;

/* Token j from rank r to rank p, fp32, before the bf16 rounding. */
static float value(const run_t *u, int r, int p, size_t j, size_t k)
{
    uint64_t tok = ((uint64_t)r << 40) | ((uint64_t)p << 32) | j;
    if (!u->clustered)
        return (float)lt_normal(3, tok * HIDDEN + k);
    return (float)(lt_normal(4, (j % 24) * HIDDEN + k) + 0.1 * lt_normal(5, tok * HIDDEN + k));
}

static void run_rank(lt_rank_ctx_t *rc)
{
    run_t *u = rc->arg;
    int me = rc->rank;
    size_t tb = HIDDEN * 2, counts[NR], displs[NR];
    float row[HIDDEN];
    uint16_t *send = malloc(NR * PER_PEER * tb), *recv = malloc(NR * PER_PEER * tb);
    for (int p = 0; p < NR; p++) {
        counts[p] = PER_PEER;
        displs[p] = (size_t)p * PER_PEER;
        for (size_t j = 0; j < PER_PEER; j++) {
            for (size_t k = 0; k < HIDDEN; k++)
                row[k] = value(u, me, p, j, k);
            lshmoe_row_from_f32(row, HIDDEN, LSHMOE_DTYPE_BF16,
                                send + (displs[p] + j) * HIDDEN);
        }
    }
    lshmoe_comm_desc_t d = lt_self_desc(rc);
    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    cfg.codec = u->codec;
    cfg.max_error = u->budget;
    lshmoe_ctx_t *ctx = NULL;
    u->st[me] = lshmoe_ctx_create(&d, &cfg, &ctx);
    if (u->st[me] != LSHMOE_OK)
        goto out;
    u->st[me] = lshmoe_alltoallv(ctx, send, counts, displs, recv, counts, displs,
                                 LSHMOE_DTYPE_BF16, HIDDEN, NULL);
    if (u->st[me] != LSHMOE_OK)
        goto out;
    for (int p = 0; p < NR; p++) {
        double num = 0.0, den = 0.0;
        float want[HIDDEN], got[HIDDEN];
        for (size_t j = 0; j < PER_PEER; j++) {
            uint16_t w[HIDDEN];
            for (size_t k = 0; k < HIDDEN; k++)
                row[k] = value(u, p, me, j, k);
            lshmoe_row_from_f32(row, HIDDEN, LSHMOE_DTYPE_BF16, w);
            lshmoe_row_to_f32(w, LSHMOE_DTYPE_BF16, HIDDEN, want);
            lshmoe_row_to_f32(recv + (displs[p] + j) * HIDDEN, LSHMOE_DTYPE_BF16, HIDDEN, got);
            for (size_t k = 0; k < HIDDEN; k++) {
                num += ((double)want[k] - got[k]) * ((double)want[k] - got[k]);
                den += (double)want[k] * want[k];
            }
        }
        double e = sqrt(num / den);
        u->worst[me] = e > u->worst[me] ? e : u->worst[me];
    }
    u->stats[me].size = sizeof u->stats[me];
    lshmoe_stats_get(ctx, &u->stats[me]);
    u->cfg[me].size = sizeof u->cfg[me];
    lshmoe_ctx_get_config(ctx, &u->cfg[me]);
out:
    lshmoe_ctx_destroy(ctx);
    free(send);
    free(recv);
}

/*
 * Besides the budget: the error the senders' stats report is the error the
 * receivers measured (the largest segment error over all ranks agrees, up
 * to the encoder's fp32 row sums), and budget-rows never clusters (one
 * row per token).
 */
static void check_run(run_t *u, int expect_compressed)
{
    CU_ASSERT_EQUAL_FATAL(lt_run_ranks(NR, 20.0, run_rank, u), 0);
    double worst = 0.0, reported = 0.0;
    for (int r = 0; r < NR; r++) {
        const lshmoe_stats_t *s = &u->stats[r];
        CU_ASSERT_EQUAL(u->st[r], LSHMOE_OK);
        CU_ASSERT(u->worst[r] <= u->budget * (1.0 + 1e-9));
        CU_ASSERT_EQUAL(u->cfg[r].codec, u->codec);
        CU_ASSERT_EQUAL(u->cfg[r].max_error, u->budget);
        if (expect_compressed) {
            CU_ASSERT(s->bytes_wire * 2 < s->bytes_in);
            /* the search that built the rows is the packing's time */
            CU_ASSERT(s->time_pack_s > 0.0);
        }
        if (u->codec == LSHMOE_CODEC_BUDGET_ROWS)
            CU_ASSERT_EQUAL(s->clusters, s->tokens);
        CU_ASSERT(s->err_max <= u->budget * (1.0 + 1e-9));
        CU_ASSERT_EQUAL(s->segments_unmeasured, 0);
        if (s->segments_compressed > 0) {
            CU_ASSERT(s->err_ref > 0.0);
            CU_ASSERT(sqrt(s->err_sq / s->err_ref) <= s->err_max * (1.0 + 1e-9));
        }
        worst = u->worst[r] > worst ? u->worst[r] : worst;
        reported = s->err_max > reported ? s->err_max : reported;
        /* the ladder's choices: every compressed segment in one format */
        uint64_t by_fmt = 0, coded = 0;
        for (int f = 0; f < LSHMOE_ROW_FORMATS; f++)
            by_fmt += s->segments_by_format[f];
        for (int f = LSHMOE_ROW_FORMAT_FP8; f < LSHMOE_ROW_FORMATS; f++)
            coded += s->segments_by_format[f];
        CU_ASSERT_EQUAL(by_fmt, s->segments_compressed);
        CU_ASSERT(s->segments_grouped <= s->segments_compressed);
        CU_ASSERT(s->segments_refined <= s->segments_grouped);
        if (expect_compressed)
            CU_ASSERT(coded > 0); /* > 2x needs a quantized row format */
        if (u->budget == 0.0)
            CU_ASSERT_EQUAL(coded, 0); /* nothing lossy fits budget 0 */
    }
    CU_ASSERT(fabs(worst - reported) <= 1e-4 * (worst > 1.0 ? worst : 1.0));
}

static void test_budget_segments_within_budget(void)
{
    static const double budgets[] = {0.0, 0.02, 0.1, 0.3};
    static const int codecs[] = {LSHMOE_CODEC_BUDGET, LSHMOE_CODEC_BUDGET_ROWS};
    for (size_t b = 0; b < 4; b++)
        for (int i = 0; i < 4; i++) {
            run_t u;
            memset(&u, 0, sizeof u);
            u.codec = codecs[i / 2];
            u.budget = budgets[b];
            u.clustered = i % 2;
            /* budget 0: exact; 0.1 on Gaussian: int4 at best, > 2x */
            check_run(&u, budgets[b] >= 0.1);
            if (budgets[b] == 0.0)
                for (int r = 0; r < NR; r++)
                    CU_ASSERT_EQUAL(u.worst[r], 0.0);
        }
}

/* The lsh codec reports its quality guard's error in the same stats. */
static void test_lsh_reports_guard_error(void)
{
    run_t u;
    memset(&u, 0, sizeof u);
    u.codec = LSHMOE_CODEC_LSH;
    u.budget = 0.5;
    u.clustered = 1;
    check_run(&u, 0);
    for (int r = 0; r < NR; r++) {
        CU_ASSERT(u.stats[r].segments_compressed > 0);
        CU_ASSERT(u.stats[r].err_max > 0.0);
    }
}

/* The two new config fields: explicit values are checked; unset ones
 * come from LSHMOE_CODEC / LSHMOE_MAX_ERROR; a caller's older, smaller
 * struct (without them) resolves them from the environment. One rank;
 * the thread records, the main thread asserts. */
typedef struct cfg_probe {
    lshmoe_status_t st_old, st_new, st_bad_codec, st_bad_error, st_bad_env;
    lshmoe_config_t got_old, got_new;
    char            msg[256];
} cfg_probe_t;

static lshmoe_status_t create_get(lshmoe_comm_desc_t *d, const lshmoe_config_t *c,
                                  lshmoe_config_t *got)
{
    lshmoe_ctx_t *ctx = NULL;
    lshmoe_status_t st = lshmoe_ctx_create(d, c, &ctx);
    if (st == LSHMOE_OK && got != NULL) {
        got->size = sizeof *got;
        st = lshmoe_ctx_get_config(ctx, got);
    }
    lshmoe_ctx_destroy(ctx);
    return st;
}

static void probe_rank(lt_rank_ctx_t *rc)
{
    cfg_probe_t *pr = rc->arg;
    lshmoe_comm_desc_t d = lt_self_desc(rc);
    lshmoe_config_t old = LSHMOE_CONFIG_INITIALIZER, c = LSHMOE_CONFIG_INITIALIZER;
    /* an old caller: its struct ends before max_error */
    old.size = (uint32_t)offsetof(lshmoe_config_t, max_error);
    old.max_error = 0.9; /* beyond its size: must be ignored */
    old.codec = LSHMOE_CODEC_INT8;
    pr->st_old = create_get(&d, &old, &pr->got_old);
    c.codec = LSHMOE_CODEC_INT8;
    c.max_error = 0.05;
    pr->st_new = create_get(&d, &c, &pr->got_new);
    c.codec = 77;
    pr->st_bad_codec = create_get(&d, &c, NULL);
    c.codec = LSHMOE_CODEC_BUDGET;
    c.max_error = 1e9;
    pr->st_bad_error = create_get(&d, &c, NULL);
    setenv("LSHMOE_CODEC", "no-such-codec", 1);
    pr->st_bad_env = create_get(&d, &old, NULL);
    snprintf(pr->msg, sizeof pr->msg, "%s", lshmoe_last_error(NULL));
}

static void test_config_fields(void)
{
    lshmoe_config_t c = LSHMOE_CONFIG_INITIALIZER;
    CU_ASSERT_EQUAL(c.codec, LSHMOE_UNSET_INT);
    CU_ASSERT(c.max_error < 0.0);
    setenv("LSHMOE_CODEC", "lsh-refine-int4e", 1);
    setenv("LSHMOE_MAX_ERROR", "0.25", 1);
    cfg_probe_t pr;
    memset(&pr, 0, sizeof pr);
    CU_ASSERT_EQUAL_FATAL(lt_run_ranks(1, 20.0, probe_rank, &pr), 0);
    unsetenv("LSHMOE_CODEC");
    unsetenv("LSHMOE_MAX_ERROR");
    CU_ASSERT_EQUAL(pr.st_old, LSHMOE_OK);
    CU_ASSERT_EQUAL(pr.got_old.codec, LSHMOE_CODEC_LSH_REFINE_INT4E);
    CU_ASSERT_EQUAL(pr.got_old.max_error, 0.25);
    CU_ASSERT_EQUAL(pr.st_new, LSHMOE_OK);
    CU_ASSERT_EQUAL(pr.got_new.codec, LSHMOE_CODEC_INT8);
    CU_ASSERT_EQUAL(pr.got_new.max_error, 0.05);
    CU_ASSERT_EQUAL(pr.st_bad_codec, LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(pr.st_bad_error, LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(pr.st_bad_env, LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(pr.msg, "CODEC"));
}

static const lt_test_t tests[] = {
    {"test_budget_segments_within_budget", test_budget_segments_within_budget},
    {"test_lsh_reports_guard_error", test_lsh_reports_guard_error},
    {"test_config_fields", test_config_fields},
};

int main(void)
{
    setenv("LSHMOE_ADAPT", "0", 1); /* every call through the codec */
    return lt_run_suite("alltoallv_budget", tests, sizeof tests / sizeof *tests);
}
