/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The adaptive policy (LSHMOE_ADAPT) and the quality guard end to end, on
 * the self transport with 4 ranks: off means every call encodes; on a link
 * far faster than the codec (the unshaped self copy) the policy goes plain;
 * on a slow emulated link it keeps compressing; plain and codec segments
 * mix in one call and every receiver routes each correctly. Timings are
 * only compared in direction, with margins of 10x or more, so a loaded
 * 2-core machine does not flip them. Rank threads record; main asserts
 * (CUnit is not thread-safe).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lshmoe.h"
#include "lshmoe/adapt.h"
#include "lshmoe/codec_internal.h" /* LSHMOE_CODEC_RATIO_UNKNOWN */
#include "lshmoe/ctx_int.h" /* white-box: read and steer the estimates */
#include "testutil.h"

#define NR 4
#define MAXCALLS 24

typedef struct spec {
    size_t tokens;    /* per (sender, receiver) pair                        */
    size_t hidden;
    size_t centers;   /* clustered data: centers per call                   */
    int    ncalls;
    int    alternate; /* odd calls carry structureless data                 */
    int    mixed;     /* rank 0 forced plain, the others with the policy off */
    /* results */
    lshmoe_status_t st[NR];
    char            msg[NR][256];
    int             plain[NR][MAXCALLS];        /* policy chose plain        */
    uint64_t        comp[NR][MAXCALLS];         /* segments compressed       */
    int             exact[NR][MAXCALLS][NR];    /* [receiver][call][sender]  */
    double          err[NR][MAXCALLS][NR];
    double          comp_cost[NR], plain_cost[NR]; /* final s/B per mode */
    lshmoe_stats_t  stats[NR];
} spec_t;

static int structureless(const spec_t *s, int call)
{
    return s->alternate && (call % 2) == 1;
}

/* Token j from rank r to rank p in call `call`: near one of `centers`
 * centers (noise std 0.05), or i.i.d. uniform with unit variance. Uniform
 * draws are cheap, so 24 calls of megabytes stay fast under sanitizers. */
static void fill_token(const spec_t *s, int call, int r, int p, size_t j, float *dst)
{
    uint64_t tok = ((uint64_t)call << 48) | ((uint64_t)r << 40) | ((uint64_t)p << 32) | j;
    const double a = sqrt(12.0);
    if (structureless(s, call)) {
        for (size_t k = 0; k < s->hidden; k++)
            dst[k] = (float)(a * (lt_uniform(7, tok * s->hidden + k) - 0.5));
        return;
    }
    uint64_t c = lt_hash64(5 + (uint64_t)call, tok) % s->centers;
    for (size_t k = 0; k < s->hidden; k++)
        dst[k] = (float)(a * (lt_uniform(9 + (uint64_t)call, c * s->hidden + k) - 0.5) +
                         0.05 * a * (lt_uniform(11, tok * s->hidden + k) - 0.5));
}

/* Rank 0 believes the codec is hopelessly slow; the others never adapt. */
static void force_mixed(lshmoe_ctx_t *ctx, int me)
{
    lshmoe_adapt_t *a = &ctx->adapt;
    if (me != 0) {
        a->on = 0;
        return;
    }
    a->comp_s_per_byte = 1e-3;   /* encoded calls: 1 ms per byte */
    a->plain_s_per_byte = 1e-12; /* plain calls: free             */
}

static void run_rank(lt_rank_ctx_t *rc)
{
    spec_t *s = rc->arg;
    int me = rc->rank;
    size_t tb = s->hidden * sizeof(float), n = s->tokens;
    size_t counts[NR], displs[NR];
    for (int p = 0; p < NR; p++) {
        counts[p] = n;
        displs[p] = (size_t)p * n;
    }
    float *send = malloc(NR * n * tb), *recv = malloc(NR * n * tb);
    float *want = malloc(NR * n * tb);
    lshmoe_comm_desc_t d = lt_self_desc(rc);
    lshmoe_ctx_t *ctx = NULL;
    s->st[me] = lshmoe_ctx_create(&d, NULL, &ctx);
    if (s->st[me] != LSHMOE_OK) {
        snprintf(s->msg[me], sizeof s->msg[me], "create: %s", lshmoe_last_error(NULL));
        goto out;
    }
    if (s->mixed)
        force_mixed(ctx, me);
    lshmoe_stats_t prev = LSHMOE_STATS_INITIALIZER, now = LSHMOE_STATS_INITIALIZER;
    for (int call = 0; call < s->ncalls; call++) {
        for (int p = 0; p < NR; p++)
            for (size_t j = 0; j < n; j++) {
                fill_token(s, call, me, p, j, send + (displs[p] + j) * s->hidden);
                fill_token(s, call, p, me, j, want + (displs[p] + j) * s->hidden);
            }
        s->st[me] = lshmoe_alltoallv(ctx, send, counts, displs, recv, counts, displs,
                                     LSHMOE_DTYPE_FP32, s->hidden, NULL);
        if (s->st[me] != LSHMOE_OK) {
            snprintf(s->msg[me], sizeof s->msg[me], "call %d: %s", call,
                     lshmoe_last_error(ctx));
            break;
        }
        lshmoe_stats_get(ctx, &now);
        s->plain[me][call] = now.calls_plain_policy > prev.calls_plain_policy;
        s->comp[me][call] = now.segments_compressed - prev.segments_compressed;
        prev = now;
        for (int p = 0; p < NR; p++) {
            const float *got = recv + displs[p] * s->hidden, *ref = want + displs[p] * s->hidden;
            s->exact[me][call][p] = memcmp(got, ref, n * tb) == 0;
            s->err[me][call][p] = lt_rel_l2(got, ref, n * s->hidden);
        }
    }
    s->comp_cost[me] = ctx->adapt.comp_s_per_byte;
    s->plain_cost[me] = ctx->adapt.plain_s_per_byte;
    lshmoe_stats_get(ctx, &s->stats[me]);
out:
    lshmoe_ctx_destroy(ctx);
    free(send);
    free(recv);
    free(want);
}

static void run(spec_t *s)
{
    for (int r = 0; r < NR; r++)
        s->stats[r] = (lshmoe_stats_t)LSHMOE_STATS_INITIALIZER;
    CU_ASSERT_EQUAL_FATAL(lt_run_ranks(NR, 120.0, run_rank, s), 0);
    for (int r = 0; r < NR; r++) {
        if (s->st[r] != LSHMOE_OK)
            fprintf(stderr, "rank %d: %s: %s\n", r, lshmoe_status_name(s->st[r]), s->msg[r]);
        CU_ASSERT_EQUAL(s->st[r], LSHMOE_OK);
    }
}

static spec_t *new_spec(size_t tokens, size_t hidden, size_t centers, int ncalls)
{
    spec_t *s = calloc(1, sizeof *s);
    CU_ASSERT_FATAL(s != NULL);
    s->tokens = tokens;
    s->hidden = hidden;
    s->centers = centers;
    s->ncalls = ncalls;
    return s;
}

/* Every call's data arrived: exact from plain senders and for structureless
 * calls (the guard sends those RAW), within the centroid error otherwise. */
static void assert_delivered(const spec_t *s)
{
    for (int call = 0; call < s->ncalls; call++)
        for (int r = 0; r < NR; r++)
            for (int p = 0; p < NR; p++) {
                if (p == r || s->plain[p][call] || structureless(s, call))
                    CU_ASSERT_TRUE(s->exact[r][call][p]);
                CU_ASSERT_TRUE(s->err[r][call][p] < 0.15);
            }
}

static void test_adapt_off_always_compresses(void)
{
    setenv("LSHMOE_ADAPT", "0", 1);
    spec_t *s = new_spec(256, 128, 8, 8);
    run(s);
    unsetenv("LSHMOE_ADAPT");
    for (int r = 0; r < NR; r++) {
        CU_ASSERT_EQUAL(s->stats[r].calls_plain_policy, 0);
        for (int call = 0; call < s->ncalls; call++)
            CU_ASSERT_EQUAL(s->comp[r][call], NR - 1);
    }
    assert_delivered(s);
    free(s);
}

/* End to end, kept small: the self transport copies at memory speed, ~10x
 * to 100x faster per byte than the codec. The decisions themselves are
 * tested on injected costs (test_adapt_injected_*); here only what no
 * load can flip: the first two calls encode, every call is delivered
 * right whatever each rank chose, and the policy, once it has timed both
 * modes, sends some call plain (on a 2-core host about half of the 40
 * rank-calls that could be plain are, one rank descheduled during a
 * timing keeps compressing; any one is enough here). */
static void test_adapt_fast_link_goes_plain(void)
{
    spec_t *s = new_spec(512, 256, 8, 12);
    run(s);
    uint64_t total = 0;
    for (int r = 0; r < NR; r++) {
        total += s->stats[r].calls_plain_policy;
        for (int call = 0; call < 2; call++) { /* the first two always encode */
            CU_ASSERT_FALSE(s->plain[r][call]);
            CU_ASSERT_EQUAL(s->comp[r][call], NR - 1);
        }
    }
    fprintf(stderr, "%llu of 40 calls plain by policy\n", (unsigned long long)total);
    CU_ASSERT_TRUE(total >= 1);
    assert_delivered(s);
    free(s);
}

/* 0.02 Gb/s: 400 ns per byte on the link, far above the codec's cost even
 * under sanitizers on a loaded 2-core host (at 0.05 Gb/s, 160 ns/B, an
 * ASan run at load 15 timed the codec above the link and went plain):
 * compression always pays. 32 centers
 * keep compressed exchanges above the 64 KiB that time the link. */
static void test_adapt_slow_link_keeps_compressing(void)
{
    setenv("LSHMOE_LINK_GBPS", "0.02", 1);
    spec_t *s = new_spec(512, 256, 32, 8);
    run(s);
    unsetenv("LSHMOE_LINK_GBPS");
    for (int r = 0; r < NR; r++) {
        /* In 8 calls: the two plain timings (calls 2 and 3) and at most
         * one try of the other mode go plain; plain measures ~400 ns/B
         * here, so every other call compresses. */
        CU_ASSERT_TRUE(s->stats[r].calls_plain_policy <= 3);
        CU_ASSERT_TRUE(s->comp_cost[r] > 0.0); /* encoded calls were timed */
        CU_ASSERT_TRUE(s->stats[r].bytes_in > 2 * s->stats[r].bytes_wire);
        for (int call = 0; call < s->ncalls; call++)
            if (!s->plain[r][call])
                CU_ASSERT_EQUAL(s->comp[r][call], NR - 1);
    }
    assert_delivered(s);
    free(s);
}

/* Plain and codec segments in the same call: rank 0 sends plain (its
 * estimates are forced), ranks 1-3 encode (policy off); data alternates
 * between clustered and structureless. Each receiver must copy rank 0's
 * segment and decode the others'. */
static void test_adapt_mixed_plain_and_codec_segments(void)
{
    spec_t *s = new_spec(128, 64, 8, 20);
    s->alternate = 1;
    s->mixed = 1;
    run(s);
    CU_ASSERT_TRUE(s->stats[0].calls_plain_policy >= 15); /* every 16th explores */
    for (int r = 1; r < NR; r++)
        CU_ASSERT_EQUAL(s->stats[r].calls_plain_policy, 0);
    for (int call = 0; call < s->ncalls; call += 2) /* clustered calls */
        for (int r = 1; r < NR; r++)
            CU_ASSERT_EQUAL(s->comp[r][call], NR - 1);
    assert_delivered(s);
    free(s);
}

/* The guard end to end: 2 hash functions would "compress" structureless
 * tokens past MIN_RATIO; with the default MAX_ERROR they travel RAW. */
static void test_adapt_guard_end_to_end(void)
{
    setenv("LSHMOE_ADAPT", "0", 1);
    setenv("LSHMOE_HASHES", "2", 1);
    spec_t *s = new_spec(512, 64, 8, 2);
    s->alternate = 1;
    run(s);
    unsetenv("LSHMOE_HASHES");
    unsetenv("LSHMOE_ADAPT");
    for (int r = 0; r < NR; r++) {
        CU_ASSERT_EQUAL(s->comp[r][1], 0); /* structureless call: all RAW */
        for (int p = 0; p < NR; p++)
            CU_ASSERT_TRUE(s->exact[r][1][p]);
    }
    free(s);
}

static void expect_create_fails(const char *var, const char *value)
{
    setenv(var, value, 1);
    lshmoe_comm_desc_t d = LSHMOE_COMM_DESC_INITIALIZER;
    d.kind = LSHMOE_COMM_SELF;
    d.rank = 0;
    d.nranks = 1;
    lshmoe_ctx_t *ctx = NULL;
    CU_ASSERT_EQUAL(lshmoe_ctx_create(&d, NULL, &ctx), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(lshmoe_last_error(NULL), var));
    unsetenv(var);
}

static void test_adapt_bad_env_values(void)
{
    expect_create_fails("LSHMOE_ADAPT", "2");
    expect_create_fails("LSHMOE_ADAPT", "yes");
    expect_create_fails("LSHMOE_MAX_ERROR", "-0.5");
    expect_create_fails("LSHMOE_MAX_ERROR", "1001");
}

/* ---- the policy's exploration rules alone (adapt.c), no timing --------- */

typedef struct probe_stub {
    double ratio;  /* what the sample probe reports */
    int    calls;  /* how often the policy asked     */
} probe_stub_t;

static double stub_probe(void *arg)
{
    probe_stub_t *p = arg;
    p->calls++;
    return p->ratio;
}

/* A context holding only the policy's state, with both estimates set and
 * settled (ADAPT_SETTLED samples each, where one is set). */
static lshmoe_ctx_t *policy_ctx(double comp, double plain, double comp_ratio)
{
    lshmoe_ctx_t *ctx = calloc(1, sizeof *ctx);
    CU_ASSERT_FATAL(ctx != NULL);
    ctx->adapt = (lshmoe_adapt_t){.on = 1, .comp_s_per_byte = comp, .plain_s_per_byte = plain,
                                  .comp_calls = 2, .explore_every = ADAPT_EXPLORE_MIN,
                                  .comp_ratio = comp_ratio, .agreed = -1,
                                  .comp_samples = comp < 0.0 ? 0 : ADAPT_SETTLED,
                                  .plain_samples = plain < 0.0 ? 0 : ADAPT_SETTLED,
                                  .plain_asked = plain < 0.0 ? 0 : ADAPT_FIRST_PLAIN,
                                  .arm_enc = {-1.0, -1.0}, .arm_ratio = {-1.0, -1.0},
                                  .arm_every = ADAPT_EXPLORE_MIN};
    return ctx;
}

/* Counts encoded and exploring decisions over n calls of 1 MiB. */
static void decide(lshmoe_ctx_t *ctx, probe_stub_t *stub, int n, int *encoded, int *explored,
                   int *first_encoded)
{
    *encoded = *explored = 0;
    *first_encoded = -1;
    for (int i = 0; i < n; i++) {
        int ex, vote;
        int plain = lshmoe_adapt_choose_plain(ctx, 1 << 20, stub_probe, stub, &ex, &vote);
        CU_ASSERT_EQUAL(vote & ~LSHMOE_ADAPT_VOTE_TRY,
                        plain ? LSHMOE_ADAPT_VOTE_PLAIN : LSHMOE_ADAPT_VOTE_ENCODE);
        CU_ASSERT_EQUAL((vote & LSHMOE_ADAPT_VOTE_TRY) != 0, ex); /* no votes: own choice */
        *encoded += !plain;
        *explored += ex;
        if (!plain && *first_encoded < 0)
            *first_encoded = i;
    }
}

/* Plain preferred, a cheap codec: data the sample says does not compress
 * is never encoded (the probe runs only at the exploration points, whose
 * interval doubles); data that compresses well gets a try at the first
 * exploration point. */
static void test_adapt_try_only_when_samples_say_it_pays(void)
{
    /* encoded calls cost 1.1x plain at ratio 1: the codec is 0.1x plain */
    lshmoe_ctx_t *ctx = policy_ctx(1.1e-9, 1e-9, 1.0);
    probe_stub_t flat = {.ratio = 1.0};
    int enc, ex, first;
    decide(ctx, &flat, 300, &enc, &ex, &first);
    CU_ASSERT_EQUAL(enc, 0);
    CU_ASSERT_EQUAL(ex, 0);
    CU_ASSERT(flat.calls >= 4 && flat.calls <= 8); /* at calls 4, 12, 28, 60, 124, 252 */
    free(ctx);

    ctx = policy_ctx(1.1e-9, 1e-9, 1.0);
    probe_stub_t good = {.ratio = 4.0};
    decide(ctx, &good, 4, &enc, &ex, &first);
    CU_ASSERT_EQUAL(enc, 1);
    CU_ASSERT_EQUAL(ex, 1);
    CU_ASSERT_EQUAL(first, ADAPT_EXPLORE_MIN - 1);
    free(ctx);

    /* an expensive codec: even a high ratio does not pay */
    ctx = policy_ctx(50e-9, 1e-9, 1.0);
    decide(ctx, &good, 300, &enc, &ex, &first);
    CU_ASSERT_EQUAL(enc, 0);
    free(ctx);
}

/* Encode preferred by a wide margin: no plain try for ADAPT_EXPLORE_MAX
 * calls; a narrow margin keeps the short interval. */
static void test_adapt_clear_win_delays_plain_tries(void)
{
    probe_stub_t stub = {.ratio = 4.0};
    int enc, ex, first;
    lshmoe_ctx_t *ctx = policy_ctx(0.2e-9, 1e-9, 5.0);
    decide(ctx, &stub, ADAPT_EXPLORE_MAX, &enc, &ex, &first);
    CU_ASSERT_EQUAL(enc, ADAPT_EXPLORE_MAX);
    CU_ASSERT_EQUAL(ex, 0);
    CU_ASSERT_EQUAL(stub.calls, 0);
    decide(ctx, &stub, 20, &enc, &ex, &first);
    CU_ASSERT_EQUAL(ex, 1); /* the link's cost is refreshed now and then */
    free(ctx);

    ctx = policy_ctx(0.8e-9, 1e-9, 5.0);
    decide(ctx, &stub, 12, &enc, &ex, &first);
    CU_ASSERT_EQUAL(ex, 2); /* tries at calls 4 and 12 */
    CU_ASSERT_EQUAL(enc, 10);
    free(ctx);
}

/* Encode preferred against a plain estimate of two samples: a plain try
 * only where it could flip the preference if that sample read
 * ADAPT_DOUBT_MARGIN x too high, i.e. from 0.9 / 1.5 = 0.6x plain up.
 * At 0.55x no try for ADAPT_EXPLORE_MAX calls; at 0.65x the short
 * interval, until the plain estimate settles. */
static void test_adapt_unsettled_plain_tried_only_if_it_could_flip(void)
{
    probe_stub_t stub = {.ratio = 4.0};
    int enc, ex, first;
    lshmoe_ctx_t *ctx = policy_ctx(0.55e-9, 1e-9, 5.0);
    ctx->adapt.plain_samples = ADAPT_FIRST_PLAIN;
    decide(ctx, &stub, ADAPT_EXPLORE_MAX, &enc, &ex, &first);
    CU_ASSERT_EQUAL(enc, ADAPT_EXPLORE_MAX);
    CU_ASSERT_EQUAL(ex, 0);
    free(ctx);

    ctx = policy_ctx(0.65e-9, 1e-9, 5.0);
    ctx->adapt.plain_samples = ADAPT_FIRST_PLAIN;
    decide(ctx, &stub, 12, &enc, &ex, &first);
    CU_ASSERT_EQUAL(ex, 2); /* tries at calls 4 and 12 */
    CU_ASSERT_EQUAL(enc, 10);
    free(ctx);
}

/* No encoded call timed yet: structureless data (per the samples) goes
 * plain from the first call, and the probe runs only at the doubling
 * exploration points; data that compresses is encoded. */
static void test_adapt_flat_data_never_encoded(void)
{
    int enc, ex, first;
    lshmoe_ctx_t *ctx = policy_ctx(-1.0, -1.0, -1.0);
    ctx->cfg.min_ratio = 1.2;
    probe_stub_t flat = {.ratio = 1.05};
    decide(ctx, &flat, 100, &enc, &ex, &first);
    CU_ASSERT_EQUAL(enc, 0);
    CU_ASSERT(flat.calls >= 4 && flat.calls <= 6); /* calls 0, 4, 12, 28, 60 */
    probe_stub_t good = {.ratio = 3.0};
    decide(ctx, &good, 64, &enc, &ex, &first);
    CU_ASSERT(enc >= 1);                  /* at the next probe */
    CU_ASSERT_EQUAL(good.calls, enc);     /* each encoded call probed first */
    free(ctx);
}

/* A ratio the probe cannot predict ("unknown"): never sent plain on an
 * estimate before any encoded call, and with plain preferred each
 * exploration point where the codec's measured share leaves room is an
 * encoded try (the interval doubling: calls 4, 12, 28, 60 of 64). A codec
 * whose share alone is over the margin gets no try, and no probe. */
static void test_adapt_unknown_ratio_left_to_the_codec(void)
{
    int enc, ex, first;
    lshmoe_ctx_t *ctx = policy_ctx(-1.0, -1.0, -1.0);
    ctx->cfg.min_ratio = 1.2;
    probe_stub_t unknown = {.ratio = LSHMOE_CODEC_RATIO_UNKNOWN};
    decide(ctx, &unknown, 20, &enc, &ex, &first);
    CU_ASSERT_EQUAL(enc, 20);
    free(ctx);
    /* plain preferred; codec share 0.6 - 0.5 / 2 = 0.35 < 0.9 x 0.5 */
    ctx = policy_ctx(0.6e-9, 0.5e-9, 2.0);
    unknown.calls = 0;
    decide(ctx, &unknown, 64, &enc, &ex, &first);
    CU_ASSERT(enc >= 3 && enc <= 5);
    CU_ASSERT_EQUAL(ex, enc);
    CU_ASSERT_EQUAL(unknown.calls, enc);
    free(ctx);
    /* codec share 1.0 - 0.5 / 2 = 0.75 >= 0.45: no try, no probe */
    ctx = policy_ctx(1.0e-9, 0.5e-9, 2.0);
    unknown.calls = 0;
    decide(ctx, &unknown, 300, &enc, &ex, &first);
    CU_ASSERT_EQUAL(enc, 0);
    CU_ASSERT_EQUAL(ex, 0);
    CU_ASSERT_EQUAL(unknown.calls, 0);
    free(ctx);
}

/* ---- the policy's whole life on injected costs, no wall time ----------- */

/*
 * A call's cost as the policy would time it, in seconds per remote token
 * byte, from a model instead of a clock: plain = the link's cost; encoded
 * = the codec's cost plus the link's over the ratio. Each sample is
 * scaled by a deterministic jitter in [1/jitter, jitter], standing in for
 * a loaded machine.
 */
typedef struct cost_model {
    double link, codec, ratio, jitter;
    double spike; /* > 0: the first timed encoded call costs this many times more */
    double plain_spike; /* > 0: the same for the first plain call */
} cost_model_t;

/* Runs n calls of 1 MiB from a fresh policy state, feeding each call's
 * modelled time back (lshmoe_adapt_update). Counts encoded calls, tries
 * and probes; *late_enc: encoded calls after the first `warm` calls. */
static void simulate(const cost_model_t *m, int n, int warm, int *enc, int *late_enc,
                     int *tries, int *probes)
{
    lshmoe_ctx_t *ctx = policy_ctx(-1.0, -1.0, -1.0);
    ctx->cfg.min_ratio = 1.2;
    ctx->adapt.comp_calls = 0; /* as a new context: the first encoded call is not timed */
    probe_stub_t stub = {.ratio = m->ratio};
    const double bytes = 1 << 20;
    *enc = *late_enc = *tries = 0;
    for (int i = 0; i < n; i++) {
        int ex, vote;
        int plain = lshmoe_adapt_choose_plain(ctx, bytes, stub_probe, &stub, &ex, &vote);
        double j = exp(log(m->jitter) * (2.0 * lt_uniform(11, (uint64_t)i) - 1.0));
        double per_byte = plain ? m->link : m->codec + m->link / m->ratio;
        if (!plain && *enc == 1 && m->spike > 0.0) /* the first encoded call is not timed */
            per_byte *= m->spike;
        if (plain && i - *enc == 0 && m->plain_spike > 0.0)
            per_byte *= m->plain_spike;
        lshmoe_adapt_update(ctx, 1, !plain, 1, bytes, plain ? bytes : bytes / m->ratio,
                            per_byte * bytes * j);
        *enc += !plain;
        *late_enc += !plain && i >= warm;
        *tries += ex;
    }
    *probes = stub.calls;
    free(ctx);
}

/* A link far faster than the codec (the sweep at 100 Gb/s with the budget
 * codec on the CPU): after the two encoded warm-up calls every call is
 * plain, and no probe is taken once the codec's cost is known, even with
 * every timing off by up to 2x either way. */
static void test_adapt_injected_fast_link_never_encodes(void)
{
    cost_model_t m = {.link = 0.1e-9, .codec = 5e-9, .ratio = 4.0, .jitter = 2.0};
    int enc, late, tries, probes;
    simulate(&m, 300, 2, &enc, &late, &tries, &probes);
    CU_ASSERT_EQUAL(enc, 2);
    CU_ASSERT_EQUAL(late, 0);
    CU_ASSERT_EQUAL(tries, 0);
    CU_ASSERT_EQUAL(probes, 2); /* the two calls before any encoded timing */
}

/* A link far slower than the codec: encoding wins by far; plain calls are
 * the first plain timing and the rare refresh of the link's cost. */
static void test_adapt_injected_slow_link_keeps_encoding(void)
{
    cost_model_t m = {.link = 400e-9, .codec = 5e-9, .ratio = 4.0, .jitter = 1.5};
    int enc, late, tries, probes;
    simulate(&m, 300, 0, &enc, &late, &tries, &probes);
    /* plain: call 2, then one try per 256 calls (encoding wins by far
     * more than an unsettled plain estimate could be off) */
    CU_ASSERT(enc >= 297);
    CU_ASSERT(tries <= 2);
}

/* A codec cheap enough but data that does not compress (ratio 1): no
 * encoded call after the warm-up, the probe alone says so at each
 * exploration point. With data that compresses, the same link and codec
 * encode (0.2 + 1 / 4 = 0.45 x plain). */
static void test_adapt_injected_ratio_decides(void)
{
    cost_model_t m = {.link = 1e-9, .codec = 0.2e-9, .ratio = 1.0, .jitter = 1.25};
    int enc, late, tries, probes;
    simulate(&m, 300, 0, &enc, &late, &tries, &probes);
    CU_ASSERT_EQUAL(enc, 0); /* flat from the first sample: never encoded */
    CU_ASSERT(probes >= 4 && probes <= 8);
    m.ratio = 4.0;
    simulate(&m, 300, 0, &enc, &late, &tries, &probes);
    CU_ASSERT(enc >= 295);
}

/* Encoding pays (0.82x plain), but the first timed encoded call reads
 * 1.5x its cost (one unlucky call on a loaded host): 1.23x plain. A single
 * sample must not shut encoding out for good. While the encoded estimate
 * is unsettled, an exploration point makes a real try (the samples say
 * the data compresses, and the prediction is under 1.5x plain); the tries'
 * samples correct the mean, and encoding wins from then on. Without a
 * spike the policy encodes throughout. */
static void test_adapt_injected_unlucky_sample_recovers(void)
{
    cost_model_t m = {.link = 1e-9, .codec = 0.55e-9, .ratio = 3.7, .jitter = 1.05,
                      .spike = 1.5};
    int enc, late, tries, probes;
    simulate(&m, 300, 40, &enc, &late, &tries, &probes);
    printf("%d encoded, %d of them after call 40, %d tries ", enc, late, tries);
    CU_ASSERT(late >= 250);
    /* tries of each mode at the short intervals until its estimate is
     * settled, then the doubling intervals */
    CU_ASSERT(tries >= 1 && tries <= 12);
    m.spike = 0.0;
    simulate(&m, 300, 40, &enc, &late, &tries, &probes);
    CU_ASSERT(enc >= 290);
}

/* Encoding costs 2x plain (a 10 Gb/s link), but the first plain call runs
 * 4x long (load): with one plain timing encoding looked like a clear win
 * (0.5x), and no plain try came for 256 calls. The second plain timing
 * settles it: plain from then on. */
static void test_adapt_slow_first_plain_call_does_not_decide(void)
{
    cost_model_t m = {.link = 1e-9, .codec = 1.75e-9, .ratio = 4.0, .jitter = 1.1,
                      .plain_spike = 4.0};
    int enc, late, tries, probes;
    simulate(&m, 300, 10, &enc, &late, &tries, &probes);
    printf("%d encoded, %d after call 10 ", enc, late);
    CU_ASSERT(late <= 8);
}

/* A call whose ranks ran both modes (a tied vote) times neither mode: its
 * plain ranks waited for the encoding ones. The ratio it reached is still
 * the data's. A call of one mode is timed as usual. */
static void test_adapt_mixed_call_not_timed(void)
{
    const double mib = 1 << 20;
    lshmoe_ctx_t *ctx = policy_ctx(1e-9, 2e-9, 2.0);
    lshmoe_adapt_update(ctx, 1, 0, 0, mib, mib, 10.0 * 2e-9 * mib); /* plain, mixed */
    CU_ASSERT_EQUAL(ctx->adapt.plain_s_per_byte, 2e-9);
    CU_ASSERT_EQUAL(ctx->adapt.plain_samples, ADAPT_SETTLED);
    lshmoe_adapt_update(ctx, 1, 1, 0, mib, mib / 4.0, 10.0 * 1e-9 * mib); /* encoded, mixed */
    CU_ASSERT_EQUAL(ctx->adapt.comp_s_per_byte, 1e-9);
    CU_ASSERT_EQUAL(ctx->adapt.comp_samples, ADAPT_SETTLED);
    CU_ASSERT(ctx->adapt.comp_ratio > 2.0); /* moved towards 4 */
    lshmoe_adapt_update(ctx, 1, 0, 1, mib, mib, 3e-9 * mib); /* plain, every rank */
    CU_ASSERT(ctx->adapt.plain_s_per_byte > 2e-9);
    CU_ASSERT_EQUAL(ctx->adapt.plain_samples, ADAPT_SETTLED + 1);
    lshmoe_adapt_update(ctx, 1, 1, 1, mib, mib / 4.0, 0.5e-9 * mib); /* encoded, every rank */
    CU_ASSERT(ctx->adapt.comp_s_per_byte < 1e-9);
    free(ctx);
}

/* The votes of a call decide the next one on every rank: a majority
 * overrides a rank's own choice (and counts as a try when it is the mode
 * its averages do not prefer); a tie goes to the side with more tries,
 * else plain (a call of both modes costs every rank the worse of them);
 * no votes leave each rank its own choice. */
static void test_adapt_majority_vote_decides_next_call(void)
{
    probe_stub_t stub = {.ratio = 4.0};
    int ex, vote;
    lshmoe_ctx_t *ctx = policy_ctx(0.2e-9, 1e-9, 5.0); /* prefers encoding */
    CU_ASSERT_FALSE(lshmoe_adapt_choose_plain(ctx, 1 << 20, stub_probe, &stub, &ex, &vote));
    lshmoe_adapt_agree(ctx, 3, 1, 0, 0);
    CU_ASSERT_TRUE(lshmoe_adapt_choose_plain(ctx, 1 << 20, stub_probe, &stub, &ex, &vote));
    CU_ASSERT_EQUAL(ex, 1);
    CU_ASSERT_EQUAL(vote, LSHMOE_ADAPT_VOTE_ENCODE); /* its own vote is unchanged */
    lshmoe_adapt_agree(ctx, 2, 2, 0, 0);
    CU_ASSERT_TRUE(lshmoe_adapt_choose_plain(ctx, 1 << 20, stub_probe, &stub, &ex, &vote));
    CU_ASSERT_EQUAL(ex, 1);
    CU_ASSERT_EQUAL(vote, LSHMOE_ADAPT_VOTE_ENCODE);
    lshmoe_adapt_agree(ctx, 0, 0, 0, 0);
    CU_ASSERT_FALSE(lshmoe_adapt_choose_plain(ctx, 1 << 20, stub_probe, &stub, &ex, &vote));
    CU_ASSERT_EQUAL(ex, 0);
    /* a vote holds for one call only */
    lshmoe_adapt_agree(ctx, 4, 0, 0, 0);
    CU_ASSERT_TRUE(lshmoe_adapt_choose_plain(ctx, 1 << 20, stub_probe, &stub, &ex, &vote));
    CU_ASSERT_FALSE(lshmoe_adapt_choose_plain(ctx, 1 << 20, stub_probe, &stub, &ex, &vote));
    /* a tie goes to the side with more tries, else plain; a try does
     * not beat a majority */
    lshmoe_adapt_agree(ctx, 2, 2, 0, 1);
    CU_ASSERT_FALSE(lshmoe_adapt_choose_plain(ctx, 1 << 20, stub_probe, &stub, &ex, &vote));
    CU_ASSERT_EQUAL(ex, 0);
    lshmoe_adapt_agree(ctx, 2, 2, 1, 1);
    CU_ASSERT_TRUE(lshmoe_adapt_choose_plain(ctx, 1 << 20, stub_probe, &stub, &ex, &vote));
    lshmoe_adapt_agree(ctx, 1, 3, 1, 0);
    CU_ASSERT_FALSE(lshmoe_adapt_choose_plain(ctx, 1 << 20, stub_probe, &stub, &ex, &vote));
    /* small calls encode and do not vote */
    lshmoe_adapt_agree(ctx, 4, 0, 0, 0);
    CU_ASSERT_FALSE(lshmoe_adapt_choose_plain(ctx, 1024, stub_probe, &stub, &ex, &vote));
    CU_ASSERT_EQUAL(vote, LSHMOE_ADAPT_VOTE_NONE);
    free(ctx);
}

/* Another rank's try of the mode this rank does not prefer gives this
 * rank its sample too: its own try waits a whole interval from there,
 * so that the ranks' tries fall together instead of adding up. A rank
 * votes a try when its own rules make one. */
static void test_adapt_others_try_restarts_the_interval(void)
{
    probe_stub_t stub = {.ratio = 4.0};
    int ex, vote, tries = 0;
    lshmoe_ctx_t *ctx = policy_ctx(0.95e-9, 1e-9, 2.0); /* prefers plain */
    CU_ASSERT_TRUE(lshmoe_adapt_choose_plain(ctx, 1 << 20, stub_probe, &stub, &ex, &vote));
    CU_ASSERT_TRUE(lshmoe_adapt_choose_plain(ctx, 1 << 20, stub_probe, &stub, &ex, &vote));
    CU_ASSERT_EQUAL(ctx->adapt.since_explore, 2u);
    lshmoe_adapt_agree(ctx, 2, 2, 0, 1); /* another rank's encoded try */
    CU_ASSERT_FALSE(lshmoe_adapt_choose_plain(ctx, 1 << 20, stub_probe, &stub, &ex, &vote));
    CU_ASSERT_EQUAL(ex, 1);
    CU_ASSERT_EQUAL(vote, LSHMOE_ADAPT_VOTE_PLAIN);
    CU_ASSERT_EQUAL(ctx->adapt.since_explore, 1u); /* restarted, then this call */
    for (int i = 0; i < (int)ADAPT_EXPLORE_MIN - 1; i++) {
        lshmoe_adapt_choose_plain(ctx, 1 << 20, stub_probe, &stub, &ex, &vote);
        tries += (vote & LSHMOE_ADAPT_VOTE_TRY) != 0;
        if (vote & LSHMOE_ADAPT_VOTE_TRY)
            CU_ASSERT_EQUAL(vote & ~LSHMOE_ADAPT_VOTE_TRY, LSHMOE_ADAPT_VOTE_ENCODE);
    }
    CU_ASSERT_EQUAL(tries, 1); /* its own, ADAPT_EXPLORE_MIN calls after the other's */
    free(ctx);
}

/* One call that reads 4.5x its cost (a descheduled rank) moves a settled
 * estimate at most as a 2x sample would, and does not flip a clear
 * preference; a lasting rise still does, within a few calls. */
static void test_adapt_one_slow_call_does_not_flip(void)
{
    const double mib = 1 << 20;
    probe_stub_t stub = {.ratio = 4.0};
    int ex, vote;
    lshmoe_ctx_t *ctx = policy_ctx(0.5e-9, 1e-9, 3.7);
    lshmoe_adapt_update(ctx, 1, 1, 1, mib, mib / 3.7, 4.5 * 0.5e-9 * mib);
    CU_ASSERT_DOUBLE_EQUAL(ctx->adapt.comp_s_per_byte, 0.65e-9, 1e-15);
    CU_ASSERT_FALSE(lshmoe_adapt_choose_plain(ctx, mib, stub_probe, &stub, &ex, &vote));
    int calls = 0;
    while (calls < 20 && !lshmoe_adapt_choose_plain(ctx, mib, stub_probe, &stub, &ex, &vote)) {
        lshmoe_adapt_update(ctx, 1, 1, 1, mib, mib / 3.7, 3.0e-9 * mib);
        calls++;
    }
    CU_ASSERT(calls >= 2 && calls <= 6);
    free(ctx);
}

/*
 * Four ranks' policies on injected costs, voting as lshmoe_alltoallv has
 * them vote: each call runs the mode agreed in the previous call's
 * metadata round (a rank's own choice when there was none), a call of
 * both modes costs every rank the worse of them, and each rank times its
 * own part. Encoding costs half of plain (the GloVe stream at 1 Gb/s); a
 * load burst makes rank r's encoded calls among calls from + stagger * r
 * to 4 calls later read `burst` x their cost (r = 0, 1, 2); the probe
 * reports `probe`. Returns the calls after `warm` that every rank
 * encoded.
 */
static int simulate_ranks(double burst, int from, int stagger, double probe, int n, int warm)
{
    enum { R = 4 };
    const cost_model_t m = {.link = 1e-9, .codec = 0.23e-9, .ratio = 3.7, .jitter = 1.2};
    const double bytes = 1 << 20;
    lshmoe_ctx_t *ctx[R];
    probe_stub_t stub[R];
    for (int r = 0; r < R; r++) {
        ctx[r] = policy_ctx(-1.0, -1.0, -1.0);
        ctx[r]->cfg.min_ratio = 1.2;
        ctx[r]->adapt.comp_calls = 0;
        stub[r] = (probe_stub_t){.ratio = probe};
    }
    int all_encoded = 0;
    for (int i = 0; i < n; i++) {
        int plain[R], vote[R], ex, votes[2] = {0, 0}, tries[2] = {0, 0}, nplain = 0;
        for (int r = 0; r < R; r++) {
            plain[r] = lshmoe_adapt_choose_plain(ctx[r], bytes, stub_probe, &stub[r], &ex,
                                                 &vote[r]);
            int enc = (vote[r] & LSHMOE_ADAPT_VOTE_ENCODE) != 0;
            votes[enc]++;
            tries[enc] += (vote[r] & LSHMOE_ADAPT_VOTE_TRY) != 0;
            nplain += plain[r];
        }
        int uniform = nplain == 0 || nplain == R;
        double enc_cost = m.codec + m.link / m.ratio;
        for (int r = 0; r < R; r++) {
            lshmoe_adapt_agree(ctx[r], votes[0], votes[1], tries[0], tries[1]);
            double per_byte = uniform ? (plain[r] ? m.link : enc_cost)
                                      : fmax(m.link, enc_cost);
            per_byte *= exp(log(m.jitter) *
                            (2.0 * lt_uniform(13, (uint64_t)i * R + (uint64_t)r) - 1.0));
            if (!plain[r] && r < 3 && i >= from + stagger * r && i < from + stagger * r + 5)
                per_byte *= burst;
            lshmoe_adapt_update(ctx[r], 1, !plain[r], uniform, bytes,
                                plain[r] ? bytes : bytes / m.ratio, per_byte * bytes);
        }
        all_encoded += i >= warm && nplain == 0;
    }
    for (int r = 0; r < R; r++)
        free(ctx[r]);
    return all_encoded;
}

/* A load burst over three ranks' encoded calls makes them prefer plain
 * for a while; they must come back to encoding, which costs half of
 * plain. Seen on the 2-core host before: three ranks came to prefer
 * plain, and 55% of the calls after went plain, for good. Bursts on
 * the same calls with a sampled ratio (an LSH codec), and bursts three
 * calls apart with a ratio the probe cannot predict (the budget codec). */
static void test_adapt_injected_load_burst_does_not_stick(void)
{
    int quiet = simulate_ranks(1.0, 100, 0, 3.7, 600, 200);
    int together = simulate_ranks(4.5, 100, 0, 3.7, 600, 200);
    int apart = simulate_ranks(4.5, 100, 3, LSHMOE_CODEC_RATIO_UNKNOWN, 600, 200);
    printf("%d, %d and %d of 400 calls encoded ", quiet, together, apart);
    CU_ASSERT(quiet >= 390);
    CU_ASSERT(together >= 390);
    CU_ASSERT(apart >= 390);
}

/* Runs n encoded calls of 1 MiB through the search arms, feeding each
 * arm's modelled encode time (s/B) and ratio back; counts rows-arm calls
 * and tries. `grouped`: the full search groups tokens. */
static void run_arms(lshmoe_ctx_t *ctx, int n, const double enc[2], const double ratio[2],
                     int grouped, int *rows_calls, int *tries)
{
    const double mib = 1 << 20;
    *rows_calls = *tries = 0;
    for (int i = 0; i < n; i++) {
        int t;
        int rows = lshmoe_adapt_rows_arm(ctx, (uint64_t)i + 1, &t);
        lshmoe_adapt_update_arm(ctx, rows, mib, mib / ratio[rows], enc[rows] * mib,
                                grouped);
        *rows_calls += rows;
        *tries += t;
    }
}

/*
 * The budget codec's search arms: on a link whose bytes cost 8 ns each
 * (1 Gb/s), a full search at 5 ns/B for ratio 9.5 loses to the row
 * formats at 1.3 ns/B for ratio 3.7 (5.8 against 3.5 ns/B), so the rows
 * arm runs, with full tries at doubling intervals; at 80 ns/B (0.1 Gb/s)
 * the full search wins (13.4 against 23). No plain estimate, or a full
 * search that groups nothing: always the full search, no try.
 */
static void test_adapt_search_arm_follows_the_link(void)
{
    const double enc[2] = {5e-9, 1.3e-9}, ratio[2] = {9.5, 3.7};
    int rows, tries;
    lshmoe_ctx_t *ctx = policy_ctx(4e-9, 8e-9, 5.0);
    lshmoe_adapt_update_arm(ctx, 0, 1 << 20, (1 << 20) / 9.5, 5e-9 * (1 << 20), 1);
    run_arms(ctx, 300, enc, ratio, 1, &rows, &tries);
    printf("1 Gb/s: %d of 300 calls rows, %d tries; ", rows, tries);
    CU_ASSERT(rows >= 290);
    CU_ASSERT(tries >= 5 && tries <= 9); /* the first rows call, then 4, 12, 28, ... */
    free(ctx);

    ctx = policy_ctx(40e-9, 80e-9, 5.0);
    lshmoe_adapt_update_arm(ctx, 0, 1 << 20, (1 << 20) / 9.5, 5e-9 * (1 << 20), 1);
    run_arms(ctx, 300, enc, ratio, 1, &rows, &tries);
    printf("0.1 Gb/s: %d rows, %d tries ", rows, tries);
    CU_ASSERT(rows >= 1 && rows <= 9); /* the first sample, then the tries */
    CU_ASSERT_EQUAL(rows, tries);
    free(ctx);

    ctx = policy_ctx(4e-9, -1.0, 5.0); /* no plain estimate yet */
    run_arms(ctx, 50, enc, ratio, 1, &rows, &tries);
    CU_ASSERT_EQUAL(rows, 0);
    free(ctx);
    ctx = policy_ctx(4e-9, 8e-9, 5.0); /* the full search picks row formats */
    run_arms(ctx, 50, enc, ratio, 0, &rows, &tries);
    CU_ASSERT_EQUAL(rows + tries, 0);
    free(ctx);
}

/* One rank's policy and search arms on injected costs, 100 encoded-or-
 * plain calls of 1 MiB: plain costs `link` per byte, an encoded call its
 * arm's encode time plus its wire bytes at `link`. `spike`: the first
 * timed full-search encode reads that many times its cost. Counts the
 * calls from 10 on that encoded (with the rows arm), and plain calls
 * before 20; *first_rows: the first call of the rows arm. */
static void simulate_arms(double link, const double enc[2], const double ratio[2],
                          double spike, int *enc_late, int *rows_late, int *plain_early,
                          int *first_rows)
{
    const double bytes = 1 << 20;
    lshmoe_ctx_t *ctx = policy_ctx(-1.0, -1.0, -1.0);
    ctx->cfg.min_ratio = 1.2;
    ctx->adapt.comp_calls = 0;
    probe_stub_t stub = {.ratio = LSHMOE_CODEC_RATIO_UNKNOWN};
    int full_calls = 0;
    *enc_late = *rows_late = *plain_early = 0;
    *first_rows = -1;
    for (int i = 0; i < 100; i++) {
        int ex, vote, arm_try = 0, rows = 0;
        int plain = lshmoe_adapt_choose_plain(ctx, bytes, stub_probe, &stub, &ex, &vote);
        double per_byte = link;
        if (!plain) {
            rows = lshmoe_adapt_rows_arm(ctx, (uint64_t)i + 1, &arm_try);
            double e = enc[rows];
            if (!rows && ++full_calls == 2) /* the first timed one */
                e *= spike;
            lshmoe_adapt_update_arm(ctx, rows, bytes, bytes / ratio[rows], e * bytes, 1);
            per_byte = e + link / ratio[rows];
        }
        lshmoe_adapt_update(ctx, 1, !plain, !arm_try, bytes,
                            plain ? bytes : bytes / ratio[rows], per_byte * bytes);
        if (!plain && rows && *first_rows < 0)
            *first_rows = i;
        *enc_late += i >= 10 && !plain;
        *rows_late += i >= 10 && !plain && rows;
        *plain_early += i < 20 && plain;
    }
    free(ctx);
}

/*
 * The policy and the search arms together (the GloVe stream at budget
 * 0.3, 4 ranks on 2 cores, 1 Gb/s): the full search's encoded call costs
 * 0.98x plain, so plain is preferred after the first plain call; the rows
 * arm's call would cost 0.46x. The untried arm earns an encoded try once
 * the plain estimate is settled, its sample moves the encoded estimate
 * (without that move, 5 of the first 20 calls went plain), and encoding
 * with the rows arm wins from then on. On a link where both arms lose to plain (0.6 and 1.6x
 * plain), a first full-search timing 4x too high must not move the
 * encoded estimate below what the rows arm itself costs: plain stays. On
 * a link far faster than any search the rows arm is not even tried.
 */
static void test_adapt_cheaper_arm_wins_over_plain(void)
{
    const double enc[2] = {7e-9, 1.5e-9}, ratio[2] = {9.5, 3.7};
    int enc_late, rows_late, plain_early, first_rows;
    simulate_arms(8e-9, enc, ratio, 1.0, &enc_late, &rows_late, &plain_early, &first_rows);
    printf("rows arm first at call %d, %d of calls 10-99, %d of calls 0-19 plain; ",
           first_rows, rows_late, plain_early);
    CU_ASSERT(first_rows >= 2 && first_rows <= 5);
    CU_ASSERT(plain_early <= 3); /* the plain timings until plain is settled */
    CU_ASSERT(rows_late >= 85);

    const double enc_fast[2] = {3e-9, 1.3e-9}, ratio_fast[2] = {3.9, 3.77};
    simulate_arms(1e-9, enc_fast, ratio_fast, 4.0, &enc_late, &rows_late, &plain_early,
                  &first_rows);
    printf("losing arms: %d of calls 10-99 encoded; ", enc_late);
    CU_ASSERT(enc_late <= 6);

    /* a link 50x faster than the full search: the rows arm, even 5x
     * cheaper, cannot pay, and is never tried */
    simulate_arms(0.1e-9, enc_fast, ratio_fast, 1.0, &enc_late, &rows_late, &plain_early,
                  &first_rows);
    printf("fast link: rows arm first at %d ", first_rows);
    CU_ASSERT_EQUAL(first_rows, -1);
    CU_ASSERT_EQUAL(enc_late, 0);
}

/*
 * A switch to the cheaper arm lets its first samples set the encoded
 * estimate. The arms' predicted costs count each one's encode once; on the
 * 2-core host (GloVe at budget 0.3, 4 ranks, 1 Gb/s) a whole call with the
 * full search cost 1.14e-8 s/B against 0.42e-8 with the rows, while the
 * prediction put the arms 0.05e-8 apart. Moved by that alone, the
 * estimate stayed above plain (0.83e-8) for several calls of the rows
 * arm, and the rank voted plain. Samples of the arm that did not switch
 * keep the average's weight.
 */
static void test_adapt_arm_switch_takes_the_new_arms_samples(void)
{
    const double mib = 1 << 20;
    probe_stub_t stub = {.ratio = 4.0};
    int ex, vote;
    lshmoe_ctx_t *ctx = policy_ctx(1.14e-8, 0.83e-8, 9.5); /* full-search calls: plain wins */
    lshmoe_adapt_update_arm(ctx, 0, mib, mib / 9.5, 3.2e-9 * mib, 1);
    lshmoe_adapt_update_arm(ctx, 1, mib, mib / 3.7, 0.7e-9 * mib, 1); /* rows: cheaper */
    CU_ASSERT_EQUAL(ctx->adapt.comp_arm, 1);
    CU_ASSERT(ctx->adapt.comp_s_per_byte > 1e-8); /* moved by the prediction only */
    lshmoe_adapt_update(ctx, 1, 1, 1, mib, mib / 3.7, 0.42e-8 * mib);
    CU_ASSERT_DOUBLE_EQUAL(ctx->adapt.comp_s_per_byte, 0.42e-8, 1e-15);
    CU_ASSERT_EQUAL(ctx->adapt.comp_samples, ADAPT_SETTLED);
    lshmoe_adapt_agree(ctx, 0, 0, 0, 0);
    CU_ASSERT_FALSE(lshmoe_adapt_choose_plain(ctx, mib, stub_probe, &stub, &ex, &vote));
    /* a higher sample does not raise it while the switch is fresh, */
    lshmoe_adapt_update(ctx, 1, 1, 1, mib, mib / 3.7, 0.6e-8 * mib);
    CU_ASSERT_DOUBLE_EQUAL(ctx->adapt.comp_s_per_byte, 0.42e-8, 1e-15);
    lshmoe_adapt_update(ctx, 1, 1, 1, mib, mib / 3.7, 0.42e-8 * mib);
    /* then samples count with the average's weight again */
    lshmoe_adapt_update(ctx, 1, 1, 1, mib, mib / 3.7, 0.62e-8 * mib);
    CU_ASSERT_DOUBLE_EQUAL(ctx->adapt.comp_s_per_byte,
                           0.42e-8 + ADAPT_ALPHA * (0.62e-8 - 0.42e-8), 1e-15);
    free(ctx);
}

/* Every rank's arm tries fall on the same calls: a try makes the whole
 * call as slow as the full search, so four ranks trying at four
 * different calls cost four slow calls. Two ranks whose preference for
 * the rows arm began three calls apart try together. */
static void test_adapt_arm_tries_fall_on_the_same_calls(void)
{
    const double enc[2] = {5e-9, 1.3e-9}, ratio[2] = {9.5, 3.7}, mib = 1 << 20;
    lshmoe_ctx_t *ctx[2];
    int tried[2][300] = {{0}}, tries = 0, together = 0;
    for (int k = 0; k < 2; k++) {
        ctx[k] = policy_ctx(4e-9, 8e-9, 5.0);
        lshmoe_adapt_update_arm(ctx[k], 0, mib, mib / 9.5, 5e-9 * mib, 1);
        for (int i = 0; i < 300; i++) {
            int t = 0, rows = 0;
            if (k == 0 || i >= 3) /* the second rank's first arm call is call 3 */
                rows = lshmoe_adapt_rows_arm(ctx[k], (uint64_t)i + 1, &t);
            lshmoe_adapt_update_arm(ctx[k], rows, mib, mib / ratio[rows], enc[rows] * mib, 1);
            tried[k][i] = t;
        }
        free(ctx[k]);
    }
    for (int i = 10; i < 300; i++) {
        tries += tried[0][i] + tried[1][i];
        together += tried[0][i] && tried[1][i];
    }
    printf("%d tries after call 10, %d calls with both ", tries, together);
    CU_ASSERT(tries >= 6);
    CU_ASSERT_EQUAL(2 * together, tries);
}

static const lt_test_t tests[] = {
    {"test_adapt_off_always_compresses", test_adapt_off_always_compresses},
    {"test_adapt_fast_link_goes_plain", test_adapt_fast_link_goes_plain},
    {"test_adapt_slow_link_keeps_compressing", test_adapt_slow_link_keeps_compressing},
    {"test_adapt_mixed_plain_and_codec_segments", test_adapt_mixed_plain_and_codec_segments},
    {"test_adapt_guard_end_to_end", test_adapt_guard_end_to_end},
    {"test_adapt_bad_env_values", test_adapt_bad_env_values},
    {"test_adapt_try_only_when_samples_say_it_pays", test_adapt_try_only_when_samples_say_it_pays},
    {"test_adapt_clear_win_delays_plain_tries", test_adapt_clear_win_delays_plain_tries},
    {"test_adapt_unsettled_plain_tried_only_if_it_could_flip",
     test_adapt_unsettled_plain_tried_only_if_it_could_flip},
    {"test_adapt_flat_data_never_encoded", test_adapt_flat_data_never_encoded},
    {"test_adapt_unknown_ratio_left_to_the_codec", test_adapt_unknown_ratio_left_to_the_codec},
    {"test_adapt_majority_vote_decides_next_call", test_adapt_majority_vote_decides_next_call},
    {"test_adapt_others_try_restarts_the_interval", test_adapt_others_try_restarts_the_interval},
    {"test_adapt_one_slow_call_does_not_flip", test_adapt_one_slow_call_does_not_flip},
    {"test_adapt_search_arm_follows_the_link", test_adapt_search_arm_follows_the_link},
    {"test_adapt_cheaper_arm_wins_over_plain", test_adapt_cheaper_arm_wins_over_plain},
    {"test_adapt_arm_switch_takes_the_new_arms_samples",
     test_adapt_arm_switch_takes_the_new_arms_samples},
    {"test_adapt_arm_tries_fall_on_the_same_calls", test_adapt_arm_tries_fall_on_the_same_calls},
    {"test_adapt_injected_load_burst_does_not_stick",
     test_adapt_injected_load_burst_does_not_stick},
    {"test_adapt_mixed_call_not_timed", test_adapt_mixed_call_not_timed},
    {"test_adapt_injected_fast_link_never_encodes", test_adapt_injected_fast_link_never_encodes},
    {"test_adapt_injected_slow_link_keeps_encoding", test_adapt_injected_slow_link_keeps_encoding},
    {"test_adapt_injected_ratio_decides", test_adapt_injected_ratio_decides},
    {"test_adapt_injected_unlucky_sample_recovers", test_adapt_injected_unlucky_sample_recovers},
    {"test_adapt_slow_first_plain_call_does_not_decide",
     test_adapt_slow_first_plain_call_does_not_decide},
};

LT_MAIN("adapt", tests)
