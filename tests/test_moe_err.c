/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * MoE mode failures on the self transport with 4 ranks: bad arguments and
 * configurations, ranks that disagree, calls out of order, failing
 * callbacks. Every failure must reach every rank without a hang, leave a
 * message in lshmoe_last_error(ctx), and leave the context usable: each
 * scenario ends with a clean pass checked against the dense reference.
 * Rank threads record (status got, status wanted); the main thread asserts.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lshmoe_moe.h"
#include "moe_self.h"
#include "ranks.h"
#include "testutil.h"

#define MAX_REC 48
#define WANT_OK_OR_PEER ((lshmoe_status_t)1) /* either is correct */
#define NO_MSG 0
#define MSG 1

typedef struct rec {
    char            what[64];
    lshmoe_status_t got, want;
    int             need_msg;  /* a failure must leave lshmoe_last_error(ctx) */
    char            msg[200];
} rec_t;

typedef struct err_world err_world_t;
typedef void (*scenario_fn)(err_world_t *w, lshmoe_ctx_t *ctx, int me);

struct err_world {
    scenario_fn          fn;
    int                  odd;          /* the rank that behaves differently */
    const moe_prob_t    *p;
    const moe_experts_t *ex;
    moe_inputs_t         in[MOE_NR];
    rec_t                rec[MOE_NR][MAX_REC];
    int                  nrec[MOE_NR];
    moe_rank_res_t       clean[MOE_NR]; /* the pass after the scenario      */
    void                *y[MOE_NR];     /* forward output of flows that have one */
};

static void expect(err_world_t *w, int me, lshmoe_ctx_t *ctx, const char *what,
                   lshmoe_status_t got, lshmoe_status_t want, int need_msg)
{
    if (w->nrec[me] >= MAX_REC)
        return;
    rec_t *r = &w->rec[me][w->nrec[me]++];
    snprintf(r->what, sizeof r->what, "%s", what);
    r->got = got;
    r->want = want;
    r->need_msg = need_msg && got != LSHMOE_OK;
    snprintf(r->msg, sizeof r->msg, "%s", got != LSHMOE_OK && ctx ? lshmoe_last_error(ctx) : "");
}

static void expect_true(err_world_t *w, int me, const char *what, int cond)
{
    expect(w, me, NULL, what, cond ? LSHMOE_OK : LSHMOE_ERR_INTERNAL, LSHMOE_OK, NO_MSG);
}

static void rank_main(lt_rank_ctx_t *rc)
{
    err_world_t *w = rc->arg;
    int me = rc->rank;
    lshmoe_comm_desc_t d = lt_self_desc(rc);
    lshmoe_config_t cfg = moe_ctx_config(0);
    lshmoe_ctx_t *ctx = NULL;
    lshmoe_status_t st = lshmoe_ctx_create(&d, &cfg, &ctx);
    expect(w, me, NULL, "ctx_create", st, LSHMOE_OK, NO_MSG);
    if (st != LSHMOE_OK)
        return;
    w->fn(w, ctx, me);
    moe_pass_opts_t o = moe_opts_default();
    moe_run_pass(ctx, w->p, w->ex, &w->in[me], &o, &w->clean[me]);
    lshmoe_ctx_destroy(ctx);
}

/* Runs scenario fn on 4 ranks and asserts every record and the clean pass
 * that follows it. */
static void run(scenario_fn fn, int odd)
{
    moe_prob_t p = moe_prob_default(MOE_NR, 8, 2, 32, LSHMOE_DTYPE_FP32, 24);
    moe_experts_t *ex = moe_experts_new(&p);
    err_world_t *w = calloc(1, sizeof *w);
    char why[512];
    w->fn = fn;
    w->odd = odd;
    w->p = &p;
    w->ex = ex;
    for (int r = 0; r < MOE_NR; r++) {
        moe_inputs_gen(&p, r, &w->in[r]);
        w->y[r] = malloc(w->in[r].n * moe_tb(&p) + 1);
    }
    CU_ASSERT_EQUAL_FATAL(lt_run_ranks(MOE_NR, 30.0, rank_main, w), 0);
    for (int r = 0; r < MOE_NR; r++) {
        for (int i = 0; i < w->nrec[r]; i++) {
            const rec_t *x = &w->rec[r][i];
            int ok = x->want == WANT_OK_OR_PEER ? x->got == LSHMOE_OK || x->got == LSHMOE_ERR_PEER
                                                : x->got == x->want;
            if (!ok || (x->need_msg && x->msg[0] == '\0'))
                fprintf(stderr, "rank %d: %s: got %s, want %s; message \"%s\"\n", r, x->what,
                        lshmoe_status_name(x->got), lshmoe_status_name(x->want), x->msg);
            CU_ASSERT(ok);
            if (x->need_msg)
                CU_ASSERT(x->msg[0] != '\0');
        }
        CU_ASSERT_EQUAL(w->clean[r].st, LSHMOE_OK);
        if (w->clean[r].st != LSHMOE_OK)
            fprintf(stderr, "rank %d, clean pass: %s: %s: %s\n", r, w->clean[r].step,
                    lshmoe_status_name(w->clean[r].st), w->clean[r].msg);
        else if (moe_compare_reference(&p, ex, &w->in[r], &w->clean[r], 0, 0, 1, why,
                                       sizeof why) != 0)
            CU_FAIL(why);
        moe_res_free(&w->clean[r]);
        moe_inputs_free(&w->in[r]);
        free(w->y[r]);
    }
    free(w);
    moe_experts_free(ex);
}

static lshmoe_moe_t *make_moe(err_world_t *w, lshmoe_ctx_t *ctx, int me)
{
    lshmoe_moe_config_t mc = moe_layer_config(w->p, LSHMOE_COMP_RESIDUAL);
    lshmoe_moe_t *moe = NULL;
    expect(w, me, ctx, "moe_create", lshmoe_moe_create(ctx, &mc, &moe), LSHMOE_OK, MSG);
    return moe;
}

/* ------------------------------------------------------------------------ */
/* Invalid routing: the failing rank reports through dispatch(NULL)          */
/* ------------------------------------------------------------------------ */

static void bad_ids(err_world_t *w, lshmoe_ctx_t *ctx, int me)
{
    const int32_t bad[] = {8 /* == E */, -2, 1 << 20};
    lshmoe_moe_t *moe = make_moe(w, ctx, me);
    if (moe == NULL)
        return;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        moe_inputs_t *in = &w->in[me];
        int32_t keep = in->idx[5];
        lshmoe_moe_handle_t *sentinel = (lshmoe_moe_handle_t *)&w->odd, *h = sentinel;
        if (me == w->odd)
            in->idx[5] = bad[i];
        lshmoe_status_t st = lshmoe_moe_layout(moe, in->n, in->idx, in->w, &h);
        in->idx[5] = keep;
        expect(w, me, ctx, "layout", st, me == w->odd ? LSHMOE_ERR_INVALID_ARG : LSHMOE_OK, MSG);
        if (me == w->odd)
            expect_true(w, me, "handle untouched on failure", h == sentinel);
        if (h == sentinel)
            h = NULL;
        st = lshmoe_moe_dispatch(moe, me == w->odd ? NULL : h, in->x, NULL);
        expect(w, me, ctx, "dispatch after a failed layout", st,
               me == w->odd ? LSHMOE_ERR_INVALID_ARG : LSHMOE_ERR_PEER, MSG);
        lshmoe_moe_handle_destroy(h);
    }
    lshmoe_moe_destroy(moe);
}

static void test_moe_err_invalid_expert_id_reaches_peers(void)
{
    run(bad_ids, 1);
    run(bad_ids, 3);
}

/* ------------------------------------------------------------------------ */
/* Bad layer configurations (every rank passes the same one)                 */
/* ------------------------------------------------------------------------ */

static const int32_t owner_too_big[8] = {0, 1, 2, 3, 4, 0, 1, 2};
static const int32_t owner_negative[8] = {0, 1, 2, 3, -1, 0, 1, 2};

typedef struct bad_cfg {
    const char     *what;
    lshmoe_status_t want;
    void          (*edit)(lshmoe_moe_config_t *c);
} bad_cfg_t;

static void topk0(lshmoe_moe_config_t *c) { c->topk = 0; }
static void topk65(lshmoe_moe_config_t *c) { c->topk = 65; }
static void e0(lshmoe_moe_config_t *c) { c->num_experts = 0; }
static void ebig(lshmoe_moe_config_t *c) { c->num_experts = 65537; c->expert_rank = NULL; }
static void e6(lshmoe_moe_config_t *c) { c->num_experts = 6; } /* not a multiple of 4 */
static void h0(lshmoe_moe_config_t *c) { c->hidden = 0; }
static void hbig(lshmoe_moe_config_t *c) { c->hidden = ((size_t)1 << 24) + 1; }
static void dt_int(lshmoe_moe_config_t *c) { c->dtype = LSHMOE_DTYPE_INT32; }
static void dt_bytes(lshmoe_moe_config_t *c) { c->dtype = LSHMOE_DTYPE_BYTES; }
static void dt_bad(lshmoe_moe_config_t *c) { c->dtype = (lshmoe_dtype_t)42; }
static void map_big(lshmoe_moe_config_t *c) { c->expert_rank = owner_too_big; }
static void map_neg(lshmoe_moe_config_t *c) { c->expert_rank = owner_negative; }
static void comp_bad(lshmoe_moe_config_t *c) { c->compensation = 7; }
static void size0(lshmoe_moe_config_t *c) { c->size = 0; }
static void magic(lshmoe_moe_config_t *c) { c->magic = 0x12345678u; }
static void newer(lshmoe_moe_config_t *c) { c->version = LSHMOE_VERSION_CODE + 10000; }

static const bad_cfg_t bad_cfgs[] = {
    {"topk 0", LSHMOE_ERR_INVALID_ARG, topk0},
    {"topk 65", LSHMOE_ERR_INVALID_ARG, topk65},
    {"num_experts 0", LSHMOE_ERR_INVALID_ARG, e0},
    {"num_experts 65537", LSHMOE_ERR_INVALID_ARG, ebig},
    {"num_experts 6 on 4 ranks, no map", LSHMOE_ERR_INVALID_ARG, e6},
    {"hidden 0", LSHMOE_ERR_INVALID_ARG, h0},
    {"hidden 2^24+1", LSHMOE_ERR_INVALID_ARG, hbig},
    {"dtype int32", LSHMOE_ERR_INVALID_ARG, dt_int},
    {"dtype bytes", LSHMOE_ERR_INVALID_ARG, dt_bytes},
    {"dtype 42", LSHMOE_ERR_INVALID_ARG, dt_bad},
    {"owner rank 4 of 4", LSHMOE_ERR_INVALID_ARG, map_big},
    {"owner rank -1", LSHMOE_ERR_INVALID_ARG, map_neg},
    {"compensation 7", LSHMOE_ERR_INVALID_ARG, comp_bad},
    {"size 0", LSHMOE_ERR_NOT_INIT, size0},
    {"bad magic", LSHMOE_ERR_NOT_INIT, magic},
    {"newer major version", LSHMOE_ERR_VERSION, newer},
};

static void bad_configs(err_world_t *w, lshmoe_ctx_t *ctx, int me)
{
    lshmoe_moe_t *sentinel = (lshmoe_moe_t *)&w->odd, *moe = sentinel;
    for (size_t i = 0; i < sizeof bad_cfgs / sizeof bad_cfgs[0]; i++) {
        lshmoe_moe_config_t mc = moe_layer_config(w->p, LSHMOE_COMP_RESIDUAL);
        bad_cfgs[i].edit(&mc);
        expect(w, me, ctx, bad_cfgs[i].what, lshmoe_moe_create(ctx, &mc, &moe), bad_cfgs[i].want,
               MSG);
        expect_true(w, me, "moe_p untouched on failure", moe == sentinel);
    }
    lshmoe_moe_config_t mc = moe_layer_config(w->p, LSHMOE_COMP_RESIDUAL);
    expect(w, me, ctx, "NULL cfg", lshmoe_moe_create(ctx, NULL, &moe), LSHMOE_ERR_INVALID_ARG,
           MSG);
    expect(w, me, ctx, "NULL moe_p", lshmoe_moe_create(ctx, &mc, NULL), LSHMOE_ERR_INVALID_ARG,
           MSG);
    expect(w, me, NULL, "NULL ctx", lshmoe_moe_create(NULL, &mc, &moe), LSHMOE_ERR_INVALID_ARG,
           NO_MSG);
}

static void test_moe_err_bad_layer_config(void)
{
    run(bad_configs, -1);
}

/* ------------------------------------------------------------------------ */
/* Ranks that disagree                                                       */
/* ------------------------------------------------------------------------ */

static const int32_t map_a[8] = {0, 0, 1, 1, 2, 2, 3, 3}; /* = contiguous */
static const int32_t map_b[8] = {1, 0, 0, 1, 2, 2, 3, 3};

static void differ(err_world_t *w, lshmoe_ctx_t *ctx, int me, const char *what,
                   void (*edit)(lshmoe_moe_config_t *c))
{
    lshmoe_moe_config_t mc = moe_layer_config(w->p, LSHMOE_COMP_RESIDUAL);
    lshmoe_moe_t *moe = NULL;
    if (me == w->odd)
        edit(&mc);
    lshmoe_status_t st = lshmoe_moe_create(ctx, &mc, &moe);
    expect(w, me, ctx, what, st, LSHMOE_ERR_MISMATCH, MSG);
    /* the others name the rank that differs */
    char want[32];
    snprintf(want, sizeof want, "rank %d", w->odd);
    if (me != w->odd)
        expect_true(w, me, what, strstr(lshmoe_last_error(ctx), want) != NULL);
    if (st == LSHMOE_OK)
        lshmoe_moe_destroy(moe);
}

static void hidden48(lshmoe_moe_config_t *c) { c->hidden = 48; }
static void topk3(lshmoe_moe_config_t *c) { c->topk = 3; }
static void e16(lshmoe_moe_config_t *c) { c->num_experts = 16; }
static void bf16(lshmoe_moe_config_t *c) { c->dtype = LSHMOE_DTYPE_BF16; }
static void comp_none(lshmoe_moe_config_t *c) { c->compensation = LSHMOE_COMP_NONE; }
static void placed(lshmoe_moe_config_t *c) { c->expert_rank = map_b; }

static void mismatched_configs(err_world_t *w, lshmoe_ctx_t *ctx, int me)
{
    differ(w, ctx, me, "hidden differs", hidden48);
    differ(w, ctx, me, "topk differs", topk3);
    differ(w, ctx, me, "num_experts differs", e16);
    differ(w, ctx, me, "dtype differs", bf16);
    differ(w, ctx, me, "compensation differs", comp_none);
    differ(w, ctx, me, "placement differs", placed);
    /* the same placement, once as a map and once implied: no mismatch */
    lshmoe_moe_config_t mc = moe_layer_config(w->p, LSHMOE_COMP_RESIDUAL);
    lshmoe_moe_t *moe = NULL;
    if (me == w->odd)
        mc.expert_rank = map_a;
    expect(w, me, ctx, "explicit map equal to the contiguous one",
           lshmoe_moe_create(ctx, &mc, &moe), LSHMOE_OK, MSG);
    lshmoe_moe_destroy(moe);
}

static void test_moe_err_ranks_disagree_on_config(void)
{
    run(mismatched_configs, 3);
    run(mismatched_configs, 0);
}

/* ------------------------------------------------------------------------ */
/* Handles                                                                   */
/* ------------------------------------------------------------------------ */

static void mismatched_handles(err_world_t *w, lshmoe_ctx_t *ctx, int me)
{
    moe_mismatch_res_t m;
    moe_flow_mismatched_handles(ctx, w->p, w->ex, &w->in[me], w->odd, w->y[me], &m);
    expect(w, me, NULL, "combine of another dispatch's handle", m.st_combine,
           LSHMOE_ERR_MISMATCH, NO_MSG);
    expect_true(w, me, "message after the mismatch", m.msg[0] != '\0');
    expect(w, me, NULL, "a fresh pass after the mismatch", m.st_after, LSHMOE_OK, NO_MSG);
    /* the fresh pass's output, compared here as the reference says */
    void *ref = malloc(w->in[me].n * moe_tb(w->p) + 1);
    moe_ref_forward(w->p, w->ex, &w->in[me], 0, 0, ref, NULL);
    expect_true(w, me, "fresh pass equals the reference",
                moe_first_diff(ref, w->y[me], w->in[me].n * moe_tb(w->p)) < 0);
    free(ref);
}

static void test_moe_err_mismatched_handles(void)
{
    run(mismatched_handles, 2);
}

/* Calls out of order, on every rank alike, then the right order. */
static void out_of_order(err_world_t *w, lshmoe_ctx_t *ctx, int me)
{
    lshmoe_moe_t *moe = make_moe(w, ctx, me), *other = make_moe(w, ctx, me);
    const moe_inputs_t *in = &w->in[me];
    lshmoe_moe_handle_t *h = NULL;
    const lshmoe_moe_batch_t *b = NULL;
    float *dg = malloc(in->n * 2 * sizeof(float) + 1);
    void *dx = malloc(in->n * moe_tb(w->p) + 1);
    int n = 0, stream = 0;
    if (moe == NULL || other == NULL)
        goto out;
    expect(w, me, ctx, "set_expert(NULL, NULL)",
           lshmoe_moe_set_expert(moe, LSHMOE_MOE_ALL_EXPERTS, NULL, NULL, NULL), LSHMOE_OK, MSG);
    expect(w, me, ctx, "layout", lshmoe_moe_layout(moe, in->n, in->idx, in->w, &h), LSHMOE_OK,
           MSG);
    expect(w, me, ctx, "batches before dispatch", lshmoe_moe_batches(h, &b, &n),
           LSHMOE_ERR_INVALID_ARG, MSG);
    expect(w, me, ctx, "combine before dispatch", lshmoe_moe_combine(moe, h, w->y[me], NULL),
           LSHMOE_ERR_INVALID_ARG, MSG);
    expect(w, me, ctx, "dispatch with a stream", lshmoe_moe_dispatch(moe, h, in->x, &stream),
           LSHMOE_ERR_UNSUPPORTED, MSG);
    expect(w, me, ctx, "dispatch", lshmoe_moe_dispatch(moe, h, in->x, NULL), LSHMOE_OK, MSG);
    expect(w, me, ctx, "combine_backward before combine",
           lshmoe_moe_combine_backward(moe, h, in->dy, dg, NULL), LSHMOE_ERR_INVALID_ARG, MSG);
    expect(w, me, ctx, "dispatch_backward before combine",
           lshmoe_moe_dispatch_backward(moe, h, dx, NULL), LSHMOE_ERR_INVALID_ARG, MSG);
    expect(w, me, ctx, "combine on another layer's handle",
           lshmoe_moe_combine(other, h, w->y[me], NULL), LSHMOE_ERR_INVALID_ARG, MSG);
    /* no functions registered: the caller fills the batches */
    if (lshmoe_moe_batches(h, &b, &n) == LSHMOE_OK)
        for (int j = 0; j < n; j++)
            moe_expert_fwd_rows(w->ex, b[j].expert, b[j].in, b[j].out, b[j].rows);
    expect(w, me, ctx, "combine with a stream", lshmoe_moe_combine(moe, h, w->y[me], &stream),
           LSHMOE_ERR_UNSUPPORTED, MSG);
    expect(w, me, ctx, "combine", lshmoe_moe_combine(moe, h, w->y[me], NULL), LSHMOE_OK, MSG);
    expect(w, me, ctx, "combine_backward with a stream",
           lshmoe_moe_combine_backward(moe, h, in->dy, dg, &stream), LSHMOE_ERR_UNSUPPORTED,
           MSG);
    expect(w, me, ctx, "dispatch_backward before combine_backward",
           lshmoe_moe_dispatch_backward(moe, h, dx, NULL), LSHMOE_ERR_INVALID_ARG, MSG);
    void *ref = malloc(in->n * moe_tb(w->p) + 1);
    moe_ref_forward(w->p, w->ex, in, 0, 0, ref, NULL);
    expect_true(w, me, "forward after the refused calls equals the reference",
                moe_first_diff(ref, w->y[me], in->n * moe_tb(w->p)) < 0);
    free(ref);
out:
    lshmoe_moe_handle_destroy(h);
    lshmoe_moe_destroy(moe);
    lshmoe_moe_destroy(other);
    free(dg);
    free(dx);
}

static void test_moe_err_calls_out_of_order(void)
{
    run(out_of_order, -1);
}

/* ------------------------------------------------------------------------ */
/* Failing callbacks                                                         */
/* ------------------------------------------------------------------------ */

/* One pass with rank `odd` failing at `how`; the failing rank gets
 * ERR_CALLBACK from `step`, the others ERR_PEER from the same call. */
static void failing(err_world_t *w, lshmoe_ctx_t *ctx, int me, moe_pass_opts_t o,
                    const char *step, lshmoe_status_t peers)
{
    moe_rank_res_t r;
    if (me != w->odd) {
        o.fail_fwd = o.fail_bwd = -1;
        o.hook = o.hook == MOE_HOOK_FAIL_PRE || o.hook == MOE_HOOK_FAIL_POST ? MOE_HOOK_NONE
                                                                             : o.hook;
    }
    moe_run_pass(ctx, w->p, w->ex, &w->in[me], &o, &r);
    char what[64];
    snprintf(what, sizeof what, "failing %s: status", step);
    lshmoe_status_t want = me == w->odd ? LSHMOE_ERR_CALLBACK : peers;
    expect(w, me, NULL, what, r.st, want, NO_MSG);
    snprintf(what, sizeof what, "failing %s: message", step);
    expect_true(w, me, what, r.st == LSHMOE_OK || r.msg[0] != '\0');
    if (r.st != LSHMOE_OK) {
        snprintf(what, sizeof what, "failing %s: the call that failed", step);
        expect_true(w, me, what, strcmp(r.step, step) == 0);
    }
    moe_res_free(&r);
}

static void failing_callbacks(err_world_t *w, lshmoe_ctx_t *ctx, int me)
{
    /* contiguous placement, E 8 on 4 ranks: rank q owns 2q and 2q+1 */
    int mine = 2 * w->odd + 1;
    moe_pass_opts_t o = moe_opts_default();
    o.fail_fwd = mine;
    failing(w, ctx, me, o, "combine", LSHMOE_ERR_PEER);
    o = moe_opts_default();
    o.fail_bwd = mine;
    failing(w, ctx, me, o, "dispatch_backward", LSHMOE_ERR_PEER);
    o = moe_opts_default();
    o.hook = MOE_HOOK_FAIL_PRE;
    failing(w, ctx, me, o, "dispatch", LSHMOE_ERR_PEER);
    /* POST_RECONSTRUCT runs after combine's last exchange: the peers may
     * already have finished; no backward follows (they would wait). */
    o = moe_opts_default();
    o.hook = MOE_HOOK_FAIL_POST;
    o.backward = 0;
    failing(w, ctx, me, o, "combine", WANT_OK_OR_PEER);
}

static void test_moe_err_failing_callbacks(void)
{
    run(failing_callbacks, 1);
    run(failing_callbacks, 2);
}

/* ------------------------------------------------------------------------ */
/* Local argument checks                                                     */
/* ------------------------------------------------------------------------ */

static void local_args(err_world_t *w, lshmoe_ctx_t *ctx, int me)
{
    lshmoe_moe_t *moe = make_moe(w, ctx, me);
    const moe_inputs_t *in = &w->in[me];
    lshmoe_moe_handle_t *sentinel = (lshmoe_moe_handle_t *)&w->odd, *h = sentinel;
    float *wt = malloc(in->n * 2 * sizeof(float) + 1);
    if (moe == NULL)
        goto out;
    int other = (2 * me + 2) % 8; /* the next rank's expert */
    expect(w, me, ctx, "set_expert, not local",
           lshmoe_moe_set_expert(moe, other, NULL, NULL, NULL), LSHMOE_ERR_INVALID_ARG, MSG);
    expect(w, me, ctx, "set_expert, out of range",
           lshmoe_moe_set_expert(moe, 8, NULL, NULL, NULL), LSHMOE_ERR_INVALID_ARG, MSG);
    expect(w, me, ctx, "layout, NULL ids", lshmoe_moe_layout(moe, in->n, NULL, in->w, &h),
           LSHMOE_ERR_INVALID_ARG, MSG);
    expect(w, me, ctx, "layout, NULL weights", lshmoe_moe_layout(moe, in->n, in->idx, NULL, &h),
           LSHMOE_ERR_INVALID_ARG, MSG);
    expect(w, me, ctx, "layout, 2^31 tokens",
           lshmoe_moe_layout(moe, (size_t)1 << 31, in->idx, in->w, &h), LSHMOE_ERR_INVALID_ARG,
           MSG);
    const float nonfinite[] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; k++) {
        memcpy(wt, in->w, in->n * 2 * sizeof(float));
        wt[7] = nonfinite[k];
        expect(w, me, ctx, "layout, non-finite weight",
               lshmoe_moe_layout(moe, in->n, in->idx, wt, &h), LSHMOE_ERR_INVALID_ARG, MSG);
    }
    expect_true(w, me, "handle untouched by failed layouts", h == sentinel);
    lshmoe_moe_stats_t bad = {0};
    expect(w, me, NULL, "stats_get, NULL handle", lshmoe_moe_stats_get(NULL, &bad),
           LSHMOE_ERR_INVALID_ARG, NO_MSG);
    expect(w, me, NULL, "batches, NULL handle", lshmoe_moe_batches(NULL, NULL, NULL),
           LSHMOE_ERR_INVALID_ARG, NO_MSG);
    expect(w, me, NULL, "local_experts, NULL", lshmoe_moe_local_experts(NULL, NULL, NULL),
           LSHMOE_ERR_INVALID_ARG, NO_MSG);
    expect(w, me, NULL, "layout_counts, NULL", lshmoe_moe_layout_counts(NULL, NULL, NULL),
           LSHMOE_ERR_INVALID_ARG, NO_MSG);
    h = NULL;
    expect(w, me, ctx, "layout, 0 tokens, NULL arrays", lshmoe_moe_layout(moe, 0, NULL, NULL, &h),
           LSHMOE_OK, MSG);
    expect(w, me, ctx, "stats_get, size 0", lshmoe_moe_stats_get(h, &bad), LSHMOE_ERR_NOT_INIT,
           MSG);
    lshmoe_moe_handle_destroy(h);
out:
    lshmoe_moe_destroy(moe);
    free(wt);
}

static void test_moe_err_local_arguments(void)
{
    run(local_args, -1);
}

static const lt_test_t tests[] = {
    {"test_moe_err_invalid_expert_id_reaches_peers", test_moe_err_invalid_expert_id_reaches_peers},
    {"test_moe_err_bad_layer_config", test_moe_err_bad_layer_config},
    {"test_moe_err_ranks_disagree_on_config", test_moe_err_ranks_disagree_on_config},
    {"test_moe_err_mismatched_handles", test_moe_err_mismatched_handles},
    {"test_moe_err_calls_out_of_order", test_moe_err_calls_out_of_order},
    {"test_moe_err_failing_callbacks", test_moe_err_failing_callbacks},
    {"test_moe_err_local_arguments", test_moe_err_local_arguments},
};

LT_MAIN("moe_err", tests)
