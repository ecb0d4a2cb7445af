/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datagen.h"
#include "lshmoe/common/dtype.h"
#include "moe_pass.h"

moe_pass_opts_t moe_opts_default(void)
{
    moe_pass_opts_t o;
    memset(&o, 0, sizeof o);
    o.callbacks = 1;
    o.backward = 1;
    o.compensation = LSHMOE_COMP_RESIDUAL;
    o.hook = MOE_HOOK_NONE;
    o.fail_fwd = -1;
    o.fail_bwd = -1;
    return o;
}

lshmoe_config_t moe_ctx_config(int compress)
{
    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    cfg.compress = compress;
    /* The defaults send segments under 16 tokens raw; the tests' segments
     * (one rank's slots for one expert) hold 10..40, and must cluster. */
    cfg.min_tokens = 4;
    cfg.seed = 0x5eed;
    return cfg;
}

lshmoe_moe_config_t moe_layer_config(const moe_prob_t *p, int32_t compensation)
{
    lshmoe_moe_config_t c = LSHMOE_MOE_CONFIG_INITIALIZER;
    c.num_experts = p->E;
    c.topk = p->K;
    c.dtype = p->dtype;
    c.hidden = p->H;
    c.expert_rank = p->expert_rank;
    c.compensation = compensation;
    return c;
}

/* ------------------------------------------------------------------------ */
/* Callbacks                                                                 */
/* ------------------------------------------------------------------------ */

static void note(int *bad, char *why, size_t len, const char *what)
{
    if ((*bad)++ == 0)
        snprintf(why, len, "%s", what);
}

static int cb_fwd(int expert, const void *in, void *out, size_t rows, void *user,
                  void *stream)
{
    moe_cb_user_t *u = user;
    u->fwd_calls++;
    if (expert == u->fail_fwd)
        return 5;
    if (stream != NULL || expert < 0 || expert >= u->ex->E ||
        (rows > 0 && (in == NULL || out == NULL))) {
        note(&u->bad, u->why, sizeof u->why, "fwd: bad expert, pointer or stream");
        return 0; /* recorded; failing here would hide what follows */
    }
    moe_expert_fwd_rows(u->ex, expert, in, out, rows);
    return 0;
}

static int cb_bwd(int expert, const void *in, const void *grad_out, void *grad_in,
                  size_t rows, void *user, void *stream)
{
    moe_cb_user_t *u = user;
    u->bwd_calls++;
    if (expert == u->fail_bwd)
        return 6;
    if (stream != NULL || expert < 0 || expert >= u->ex->E ||
        (rows > 0 && (in == NULL || grad_out == NULL || grad_in == NULL))) {
        note(&u->bad, u->why, sizeof u->why, "bwd: bad expert, pointer or stream");
        return 0;
    }
    moe_expert_bwd_rows(u->ex, expert, grad_out, grad_in, rows);
    return 0;
}

/* Slot index (t*K+s) of row j of expert e on this rank, token order, or
 * -1 past the last. */
static long slot_of_row(const moe_hook_state_t *hs, int e, size_t j)
{
    size_t K = (size_t)hs->p->K;
    for (size_t i = 0; i < hs->in->n * K; i++)
        if (hs->in->idx[i] == e && j-- == 0)
            return (long)i;
    return -1;
}

static size_t slots_of(const moe_hook_state_t *hs, int e)
{
    size_t c = 0;
    for (size_t i = 0; i < hs->in->n * (size_t)hs->p->K; i++)
        c += hs->in->idx[i] == e;
    return c;
}

/* PRE_HASH: the rows must be this rank's tokens routed to e, in order. */
static int hook_pre(moe_hook_state_t *hs, int e, char *rows, size_t nrows)
{
    size_t tb = moe_tb(hs->p), K = (size_t)hs->p->K;
    hs->calls_pre[e]++;
    if (hs->kind == MOE_HOOK_FAIL_PRE)
        return 3;
    if (nrows != slots_of(hs, e)) {
        note(&hs->bad, hs->why, sizeof hs->why, "pre-hash: row count is not the routed slots");
        return 0;
    }
    char *tmp = malloc(tb);
    for (size_t j = 0; j < nrows; j++) {
        long i = slot_of_row(hs, e, j);
        const char *x = (const char *)hs->in->x + (size_t)i / K * tb;
        if (memcmp(rows + j * tb, x, tb) != 0)
            note(&hs->bad, hs->why, sizeof hs->why, "pre-hash: a row is not the routed token");
        if (hs->kind == MOE_HOOK_PRE_SCALE) {
            moe_pre_scale_row(hs->ex, e, rows + j * tb, tmp);
            memcpy(rows + j * tb, tmp, tb);
        }
    }
    free(tmp);
    return 0;
}

/* POST_RECONSTRUCT: one fp32 row per routed slot, token order. */
static int hook_post(moe_hook_state_t *hs, int e, float *rows, size_t nrows)
{
    size_t H = hs->p->H;
    hs->calls_post[e]++;
    if (hs->kind == MOE_HOOK_FAIL_POST)
        return 4;
    if (nrows != slots_of(hs, e)) {
        note(&hs->bad, hs->why, sizeof hs->why, "post: row count is not the routed slots");
        return 0;
    }
    for (size_t j = 0; j < nrows; j++) {
        float *r = rows + j * H;
        for (size_t h = 0; hs->kind == MOE_HOOK_POST_X2 && h < H; h++)
            r[h] *= MOE_POST_SCALE;
        if (hs->yslot != NULL)
            memcpy(hs->yslot + (size_t)slot_of_row(hs, e, j) * H, r, H * sizeof(float));
    }
    return 0;
}

static int token_hook(lshmoe_moe_hook_point_t where, int expert, void *rows, size_t nrows,
                      void *user)
{
    moe_hook_state_t *hs = user;
    if (expert < 0 || expert >= hs->p->E || (nrows > 0 && rows == NULL)) {
        note(&hs->bad, hs->why, sizeof hs->why, "hook: bad expert or NULL rows");
        return 0;
    }
    if (where == LSHMOE_MOE_HOOK_PRE_HASH)
        return hook_pre(hs, expert, rows, nrows);
    if (where == LSHMOE_MOE_HOOK_POST_RECONSTRUCT)
        return hook_post(hs, expert, rows, nrows);
    note(&hs->bad, hs->why, sizeof hs->why, "hook: unknown hook point");
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The pass                                                                  */
/* ------------------------------------------------------------------------ */

/* Records the first failure; returns whether the pass goes on. */
static int step(moe_rank_res_t *r, lshmoe_ctx_t *ctx, const char *name, lshmoe_status_t st)
{
    if (st == LSHMOE_OK)
        return 1;
    if (r->st == LSHMOE_OK) {
        r->st = st;
        snprintf(r->step, sizeof r->step, "%s", name);
        snprintf(r->msg, sizeof r->msg, "%s", lshmoe_last_error(ctx));
    }
    return 0;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    return lt_hash64(h, v);
}

/* Checks the batch list against the layer; with fill, computes the expert
 * outputs the way the callbacks would. */
static void visit_batches(lshmoe_moe_handle_t *h, const moe_experts_t *ex, int fill,
                          moe_rank_res_t *r)
{
    const lshmoe_moe_batch_t *b = NULL;
    int n = -1;
    if (lshmoe_moe_batches(h, &b, &n) != LSHMOE_OK || n != r->nlocal || (n > 0 && !b)) {
        note(&r->batch_bad, r->batch_why, sizeof r->batch_why, "batches: status or count");
        return;
    }
    uint64_t sig = 7;
    for (int j = 0; j < n; j++) {
        size_t rows = b[j].rows, sum = 0;
        if (b[j].local != j || b[j].expert != r->local_ids[j])
            note(&r->batch_bad, r->batch_why, sizeof r->batch_why, "batch: expert/local");
        if (rows > 0 && (!b[j].in || !b[j].out || !b[j].cluster_size)) {
            note(&r->batch_bad, r->batch_why, sizeof r->batch_why, "batch: NULL buffer");
            continue;
        }
        sig = mix(mix(sig, (uint64_t)b[j].expert), rows);
        for (size_t k = 0; k < rows; k++) {
            if (b[j].cluster_size[k] == 0)
                note(&r->batch_bad, r->batch_why, sizeof r->batch_why, "batch: empty group");
            sum += b[j].cluster_size[k];
            if (b[j].cluster_size[k] > r->max_cluster)
                r->max_cluster = b[j].cluster_size[k];
            sig = mix(sig, b[j].cluster_size[k]);
        }
        r->batch_rows[j] = rows;
        r->batch_slots[j] = sum;
        if (fill)
            moe_expert_fwd_rows(ex, b[j].expert, b[j].in, b[j].out, rows);
    }
    r->cluster_sig = sig;
}

/* Caller-filled backward: grad_in = J^T grad_out for every batch. */
static void fill_grad_in(lshmoe_moe_handle_t *h, const moe_experts_t *ex, moe_rank_res_t *r)
{
    const lshmoe_moe_batch_t *b = NULL;
    int n = -1;
    if (lshmoe_moe_batches(h, &b, &n) != LSHMOE_OK || n != r->nlocal) {
        note(&r->batch_bad, r->batch_why, sizeof r->batch_why, "batches after backward");
        return;
    }
    for (int j = 0; j < n; j++) {
        if (b[j].rows > 0 && (!b[j].grad_out || !b[j].grad_in)) {
            note(&r->batch_bad, r->batch_why, sizeof r->batch_why, "batch: NULL grad");
            continue;
        }
        moe_expert_bwd_rows(ex, b[j].expert, b[j].grad_out, b[j].grad_in, b[j].rows);
    }
}

static void setup_res(const moe_prob_t *p, const moe_experts_t *ex, const moe_inputs_t *in,
                      const moe_pass_opts_t *o, moe_rank_res_t *r)
{
    size_t n = in->n, K = (size_t)p->K;
    memset(r, 0, sizeof *r);
    r->st = LSHMOE_OK;
    r->y = malloc(n * moe_tb(p) + 1);
    r->dx = malloc(n * moe_tb(p) + 1);
    r->dgates = malloc(n * K * sizeof(float) + 1);
    memset(r->y, 0x5a, n * moe_tb(p));  /* unwritten output shows */
    memset(r->dx, 0x5a, n * moe_tb(p));
    memset(r->dgates, 0x5a, n * K * sizeof(float));
    r->stats = (lshmoe_moe_stats_t)LSHMOE_MOE_STATS_INITIALIZER;
    r->hook = (moe_hook_state_t){.p = p, .ex = ex, .in = in, .kind = o->hook};
    if (o->hook == MOE_HOOK_CAPTURE || o->hook == MOE_HOOK_POST_X2)
        r->hook.yslot = calloc(n * K * p->H + 1, sizeof(float));
    r->cb = (moe_cb_user_t){.ex = ex, .fail_fwd = o->fail_fwd, .fail_bwd = o->fail_bwd};
}

static lshmoe_status_t fresh_forward(lshmoe_ctx_t *ctx, lshmoe_moe_t *moe,
                                     const moe_inputs_t *in, void *y);

/* Registrations, warm-up passes and the layout; returns the handle or NULL (the failure
 * is recorded, and dispatch(NULL) already told the peers). */
/* A catch-all that must never run: per-expert registrations win. */
static int cb_fwd_never(int expert, const void *in, void *out, size_t rows, void *user,
                        void *stream)
{
    moe_cb_user_t *u = user;
    (void)expert, (void)in, (void)out, (void)rows, (void)stream;
    note(&u->bad, u->why, sizeof u->why, "the catch-all fwd ran for a registered expert");
    return 9;
}

static int cb_bwd_never(int expert, const void *in, const void *grad_out, void *grad_in,
                        size_t rows, void *user, void *stream)
{
    moe_cb_user_t *u = user;
    (void)expert, (void)in, (void)grad_out, (void)grad_in, (void)rows, (void)stream;
    note(&u->bad, u->why, sizeof u->why, "the catch-all bwd ran for a registered expert");
    return 9;
}

static lshmoe_status_t register_fns(lshmoe_moe_t *moe, const moe_pass_opts_t *o,
                                    moe_rank_res_t *r)
{
    lshmoe_status_t st = LSHMOE_OK;
    if (!o->callbacks)
        return LSHMOE_OK;
    if (o->regs == 0)
        return lshmoe_moe_set_expert(moe, LSHMOE_MOE_ALL_EXPERTS, cb_fwd, cb_bwd, &r->cb);
    if (o->regs == 1)
        st = lshmoe_moe_set_expert(moe, LSHMOE_MOE_ALL_EXPERTS, cb_fwd_never, cb_bwd_never,
                                   &r->cb);
    for (int j = 0; j < r->nlocal && st == LSHMOE_OK; j++)
        st = lshmoe_moe_set_expert(moe, r->local_ids[j], cb_fwd, cb_bwd, &r->cb);
    if (o->regs == 2 && st == LSHMOE_OK)
        st = lshmoe_moe_set_expert(moe, LSHMOE_MOE_ALL_EXPERTS, cb_fwd_never, cb_bwd_never,
                                   &r->cb);
    return st;
}

/* Registrations, warm-up passes and the layout; returns the handle or NULL
 * (the failure is recorded, and dispatch(NULL) already told the peers). */
static lshmoe_moe_handle_t *prepare(lshmoe_ctx_t *ctx, lshmoe_moe_t *moe,
                                    const moe_inputs_t *in, const moe_pass_opts_t *o,
                                    moe_rank_res_t *r)
{
    lshmoe_moe_handle_t *h = NULL;
    const int32_t *ids = NULL;
    if (!step(r, ctx, "local_experts", lshmoe_moe_local_experts(moe, &r->nlocal, &ids)))
        goto fail;
    for (int j = 0; j < r->nlocal && j < MOE_MAX_E; j++)
        r->local_ids[j] = ids[j];
    if (!step(r, ctx, "set_expert", register_fns(moe, o, r)))
        goto fail;
    if (o->hook != MOE_HOOK_NONE &&
        !step(r, ctx, "set_token_hook", lshmoe_moe_set_token_hook(moe, token_hook, &r->hook)))
        goto fail;
    for (int i = 0; i < o->warmup; i++) /* every rank runs as many */
        if (!step(r, ctx, "warm-up pass",
                  fresh_forward(ctx, moe, o->warm_in ? o->warm_in : in, r->y)))
            return NULL; /* it failed in a collective: the peers know */
    if (!step(r, ctx, "layout", lshmoe_moe_layout(moe, in->n, in->n ? in->idx : NULL,
                                                  in->n ? in->w : NULL, &h)))
        goto fail;
    if (!step(r, ctx, "layout_counts", lshmoe_moe_layout_counts(h, r->per_rank, r->per_expert)))
        goto fail;
    return h;
fail:
    lshmoe_moe_handle_destroy(h);
    lshmoe_moe_dispatch(moe, NULL, in->x, NULL); /* the peers must not wait */
    return NULL;
}

void moe_run_pass(lshmoe_ctx_t *ctx, const moe_prob_t *p, const moe_experts_t *ex,
                  const moe_inputs_t *in, const moe_pass_opts_t *o, moe_rank_res_t *r)
{
    setup_res(p, ex, in, o, r);
    if (p->E > MOE_MAX_E || p->nranks > MOE_MAX_RANKS) { /* same on every rank */
        r->st = LSHMOE_ERR_INTERNAL;
        snprintf(r->step, sizeof r->step, "test setup");
        snprintf(r->msg, sizeof r->msg, "raise MOE_MAX_E / MOE_MAX_RANKS in moe_ref.h");
        return;
    }
    lshmoe_moe_t *moe = NULL;
    lshmoe_moe_config_t mc = moe_layer_config(p, o->compensation);
    int32_t *map = NULL;
    if (o->scribble_map && p->expert_rank != NULL) {
        map = malloc((size_t)p->E * sizeof(int32_t));
        memcpy(map, p->expert_rank, (size_t)p->E * sizeof(int32_t));
        mc.expert_rank = map;
    }
    lshmoe_status_t st = lshmoe_moe_create(ctx, &mc, &moe);
    if (map != NULL) { /* the layer must have copied it */
        for (int e = 0; e < p->E; e++)
            map[e] = -7;
        free(map);
    }
    if (!step(r, ctx, "create", st))
        return;
    lshmoe_moe_handle_t *h = prepare(ctx, moe, in, o, r);
    if (h == NULL)
        goto out;
    if (o->redispatch && /* other tokens first: the second dispatch must replace them */
        !step(r, ctx, "first dispatch", lshmoe_moe_dispatch(moe, h, in->dy, NULL)))
        goto out;
    if (!step(r, ctx, "dispatch", lshmoe_moe_dispatch(moe, h, in->x, NULL)))
        goto out;
    visit_batches(h, ex, !o->callbacks, r);
    if (!step(r, ctx, "combine", lshmoe_moe_combine(moe, h, r->y, NULL)))
        goto out;
    if (!step(r, ctx, "stats_get", lshmoe_moe_stats_get(h, &r->stats)) || !o->backward)
        goto out;
    if (!step(r, ctx, "combine_backward",
              lshmoe_moe_combine_backward(moe, h, in->dy, o->dgates_null ? NULL : r->dgates,
                                          NULL)))
        goto out;
    if (!o->callbacks)
        fill_grad_in(h, ex, r);
    step(r, ctx, "dispatch_backward", lshmoe_moe_dispatch_backward(moe, h, r->dx, NULL));
out:
    lshmoe_moe_handle_destroy(h);
    lshmoe_moe_destroy(moe);
}

void moe_res_free(moe_rank_res_t *r)
{
    free(r->y);
    free(r->dx);
    free(r->dgates);
    free(r->hook.yslot);
    r->y = r->dx = NULL;
    r->dgates = NULL;
    r->hook.yslot = NULL;
}

/* ------------------------------------------------------------------------ */
/* Comparison with the reference                                             */
/* ------------------------------------------------------------------------ */

static float elem_f32(const void *buf, lshmoe_dtype_t dt, size_t i)
{
    float f = 0.0f;
    lshmoe_row_to_f32((const char *)buf + i * lshmoe_dtype_size(dt), dt, 1, &f);
    return f;
}

/* Counts a differing buffer and says where it first differs: element i
 * of row i / per_row. */
static int diff(const char *name, const void *got, const void *want, size_t nelem,
                lshmoe_dtype_t dt, size_t per_row, char *why, size_t len, int nbad)
{
    size_t es = lshmoe_dtype_size(dt);
    long d = moe_first_diff(got, want, nelem * es);
    if (d < 0)
        return nbad;
    size_t i = (size_t)d / es;
    if (nbad == 0)
        snprintf(why, len, "%s differs first at row %zu element %zu: got %.9g want %.9g", name,
                 i / per_row, i % per_row, (double)elem_f32(got, dt, i),
                 (double)elem_f32(want, dt, i));
    return nbad + 1;
}

int moe_compare_reference(const moe_prob_t *p, const moe_experts_t *ex,
                          const moe_inputs_t *in, const moe_rank_res_t *r, int pre, int post,
                          int bwd, char *why, size_t len)
{
    size_t n = in->n, K = (size_t)p->K, H = p->H;
    void *y = malloc(n * moe_tb(p) + 1), *dx = malloc(n * moe_tb(p) + 1);
    float *ys = malloc(n * K * H * sizeof(float) + 1);
    float *dg = malloc(n * K * sizeof(float) + 1);
    int nbad = 0;
    why[0] = '\0';
    moe_ref_forward(p, ex, in, pre, post, y, ys);
    nbad = diff("out", r->y, y, n * H, p->dtype, H, why, len, nbad);
    if (bwd) {
        moe_ref_backward(p, ex, in, ys, dg, dx);
        nbad = diff("dgates", r->dgates, dg, n * K, LSHMOE_DTYPE_FP32, K, why, len, nbad);
        nbad = diff("dx", r->dx, dx, n * H, p->dtype, H, why, len, nbad);
    }
    free(y);
    free(dx);
    free(ys);
    free(dg);
    return nbad;
}

/* ------------------------------------------------------------------------ */
/* Mismatched handles                                                        */
/* ------------------------------------------------------------------------ */

static lshmoe_status_t fresh_forward(lshmoe_ctx_t *ctx, lshmoe_moe_t *moe,
                                     const moe_inputs_t *in, void *y)
{
    lshmoe_moe_handle_t *h = NULL;
    lshmoe_status_t st = lshmoe_moe_layout(moe, in->n, in->idx, in->w, &h);
    if (st != LSHMOE_OK) {
        lshmoe_moe_dispatch(moe, NULL, in->x, NULL);
        return st;
    }
    st = lshmoe_moe_dispatch(moe, h, in->x, NULL);
    if (st == LSHMOE_OK)
        st = lshmoe_moe_combine(moe, h, y, NULL);
    (void)ctx;
    lshmoe_moe_handle_destroy(h);
    return st;
}

void moe_flow_mismatched_handles(lshmoe_ctx_t *ctx, const moe_prob_t *p,
                                 const moe_experts_t *ex, const moe_inputs_t *in, int odd,
                                 void *y, moe_mismatch_res_t *res)
{
    moe_cb_user_t cb = {.ex = ex, .fail_fwd = -1, .fail_bwd = -1};
    lshmoe_moe_config_t mc = moe_layer_config(p, LSHMOE_COMP_RESIDUAL);
    lshmoe_moe_t *moe = NULL;
    lshmoe_moe_handle_t *h1 = NULL, *h2 = NULL;
    int me = lshmoe_ctx_rank(ctx);

    memset(res, 0, sizeof *res);
    res->st_combine = res->st_after = LSHMOE_ERR_INTERNAL; /* "not reached" */
    if (lshmoe_moe_create(ctx, &mc, &moe) != LSHMOE_OK) {
        snprintf(res->msg, sizeof res->msg, "create: %s", lshmoe_last_error(ctx));
        return;
    }
    lshmoe_moe_set_expert(moe, LSHMOE_MOE_ALL_EXPERTS, cb_fwd, cb_bwd, &cb);
    /* Two layouts of the same routing: only the dispatch tells them apart. */
    lshmoe_status_t s1 = lshmoe_moe_layout(moe, in->n, in->idx, in->w, &h1);
    lshmoe_status_t s2 = lshmoe_moe_layout(moe, in->n, in->idx, in->w, &h2);
    s1 = lshmoe_moe_dispatch(moe, s1 == LSHMOE_OK ? h1 : NULL, in->x, NULL);
    s2 = lshmoe_moe_dispatch(moe, s2 == LSHMOE_OK ? h2 : NULL, in->x, NULL);
    if (s1 != LSHMOE_OK || s2 != LSHMOE_OK) {
        snprintf(res->msg, sizeof res->msg, "dispatch: %s", lshmoe_last_error(ctx));
        goto out;
    }
    res->st_combine = lshmoe_moe_combine(moe, me == odd ? h2 : h1, y, NULL);
    snprintf(res->msg, sizeof res->msg, "%s", lshmoe_last_error(ctx));
    res->st_after = fresh_forward(ctx, moe, in, y);
out:
    lshmoe_moe_handle_destroy(h1);
    lshmoe_moe_handle_destroy(h2);
    lshmoe_moe_destroy(moe);
}
