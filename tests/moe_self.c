/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "moe_check.h"
#include "moe_self.h"
#include "ranks.h"

moe_world_t *moe_world_new(const moe_prob_t *p, const moe_experts_t *ex, int compress)
{
    moe_world_t *w = calloc(1, sizeof *w);
    w->p = p;
    w->ex = ex;
    w->compress = compress;
    w->ctx_comp = LSHMOE_UNSET_INT;
    w->ctx_codec = LSHMOE_UNSET_INT;
    w->ctx_max_error = LSHMOE_UNSET_DOUBLE;
    for (int r = 0; r < MOE_NR; r++) {
        w->opts[r] = moe_opts_default();
        moe_inputs_gen(p, r, &w->in[r]);
    }
    return w;
}

static void rank_main(lt_rank_ctx_t *rc)
{
    moe_world_t *w = rc->arg;
    int me = rc->rank;
    lshmoe_comm_desc_t d = lt_self_desc(rc);
    lshmoe_config_t cfg = moe_ctx_config(w->compress);
    cfg.compensation = w->ctx_comp;
    cfg.codec = w->ctx_codec;
    cfg.max_error = w->ctx_max_error;
    lshmoe_ctx_t *ctx = NULL;
    w->st_ctx[me] = lshmoe_ctx_create(&d, &cfg, &ctx);
    if (w->st_ctx[me] != LSHMOE_OK) {
        fprintf(stderr, "rank %d: ctx: %s\n", me, lshmoe_last_error(NULL));
        return;
    }
    moe_run_pass(ctx, w->p, w->ex, &w->in[me], &w->opts[me], &w->res[me]);
    lshmoe_ctx_destroy(ctx);
}

int moe_world_run(moe_world_t *w)
{
    for (int r = 0; r < MOE_NR; r++) {
        moe_res_free(&w->res[r]);
        memset(&w->res[r], 0, sizeof w->res[r]);
        w->res[r].st = LSHMOE_ERR_INTERNAL; /* a rank that never ran shows */
        w->st_ctx[r] = LSHMOE_ERR_INTERNAL;
    }
    if (lt_run_ranks(MOE_NR, 30.0, rank_main, w) != 0)
        return -1;
    for (int r = 0; r < MOE_NR; r++) { /* the cause, for whoever reads a failure */
        const moe_rank_res_t *x = &w->res[r];
        if (x->st != LSHMOE_OK)
            fprintf(stderr, "rank %d: %s: %s: %s\n", r, x->step, lshmoe_status_name(x->st),
                    x->msg);
        if (x->hook.bad || x->cb.bad || x->batch_bad)
            fprintf(stderr, "rank %d: hook %s / callback %s / batches %s\n", r, x->hook.why,
                    x->cb.why, x->batch_why);
    }
    return 0;
}

void moe_world_free(moe_world_t *w)
{
    if (w == NULL)
        return;
    for (int r = 0; r < MOE_NR; r++) {
        moe_res_free(&w->res[r]);
        moe_inputs_free(&w->in[r]);
    }
    free(w);
}

void moe_world_check_reference(const moe_world_t *w, int pre, int post, int bwd)
{
    for (int r = 0; r < MOE_NR; r++)
        moe_check_reference(w->p, w->ex, &w->in[r], &w->res[r], r, pre, post, bwd);
}

/* Identity experts, RESIDUAL, dyadic gates summing to 1: y_ts = c + (x - c)
 * is x exactly in fp64 (x - c is exact: both in the token dtype and
 * close), and so is the gate-weighted sum, which the reference's identity
 * expert gives too. */
void moe_world_check_identity(const moe_world_t *w, int pre)
{
    moe_world_check_reference(w, pre, 0, 0);
}

static void check_counts(const moe_world_t *w, int plain)
{
    size_t slots_e[MOE_MAX_E];
    uint64_t sent = 0, rows = 0, slots = 0;
    moe_expert_slots_all(w->p, slots_e);
    for (int r = 0; r < MOE_NR; r++) {
        moe_check_counts(w->p, &w->in[r], &w->res[r], r, slots_e, plain);
        sent += w->res[r].stats.rows_sent;
        rows += w->res[r].stats.rows_received;
        slots += w->res[r].stats.slots_received;
    }
    CU_ASSERT_EQUAL(sent, rows);
    if (!plain)
        CU_ASSERT(rows < slots);
}

void moe_world_check_plain(const moe_world_t *w)
{
    check_counts(w, 1);
}

void moe_world_check_clustered(const moe_world_t *w)
{
    check_counts(w, 0);
}

/* ------------------------------------------------------------------------ */
/* Numerical tests                                                           */
/* ------------------------------------------------------------------------ */

/* Clustered fp32 tokens, experts W = I + noise * G / sqrt(H). */
moe_prob_t moe_prob_numeric(moe_expert_kind_t kind, size_t ntok, double noise)
{
    moe_prob_t p = moe_prob_default(MOE_NR, 8, 2, 64, LSHMOE_DTYPE_FP32, ntok);
    p.data = MOE_X_CLUSTERED;
    p.kind = kind;
    p.w_diag = 1.0;
    p.w_noise = noise;
    p.b_scale = 0.1;
    return p;
}

moe_world_t *moe_world_numeric(const moe_prob_t *p, const moe_experts_t *ex, int compress,
                               int32_t comp, moe_hook_kind_t hook, int backward)
{
    moe_world_t *w = moe_world_new(p, ex, compress);
    for (int r = 0; r < MOE_NR; r++) {
        w->opts[r].compensation = comp;
        w->opts[r].hook = hook;
        w->opts[r].backward = backward;
    }
    return w;
}

/* SCALED fits rho_e on earlier passes: one warm-up pass, always on the
 * base inputs, so that every run of a comparison uses the same rho_e. */
void moe_world_warm_like(moe_world_t *w, const moe_world_t *base)
{
    for (int r = 0; r < MOE_NR; r++) {
        w->opts[r].warmup = base->opts[r].warmup;
        w->opts[r].warm_in = base->opts[r].warmup ? &base->in[r] : NULL;
    }
}

int moe_world_all_ok(const moe_world_t *w)
{
    int ok = 1;
    for (int r = 0; r < MOE_NR; r++) {
        CU_ASSERT_EQUAL(w->res[r].st, LSHMOE_OK);
        CU_ASSERT_EQUAL(w->res[r].hook.bad, 0);
        ok &= w->res[r].st == LSHMOE_OK;
    }
    return ok;
}

/* Did b group the tokens as a did? (rows per rank and cluster sizes) */
int moe_world_same_grouping(const moe_world_t *a, const moe_world_t *b)
{
    for (int r = 0; r < MOE_NR; r++)
        if (a->res[r].stats.rows_sent != b->res[r].stats.rows_sent ||
            a->res[r].stats.rows_received != b->res[r].stats.rows_received ||
            a->res[r].cluster_sig != b->res[r].cluster_sig)
            return 0;
    return 1;
}

int moe_world_clusters_formed(const moe_world_t *w)
{
    uint64_t rows = 0, slots = 0;
    for (int r = 0; r < MOE_NR; r++) {
        rows += w->res[r].stats.rows_received;
        slots += w->res[r].stats.slots_received;
    }
    return rows < slots;
}

double moe_norm2(const float *a, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * a[i];
    return s;
}
