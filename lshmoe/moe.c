/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * MoE layer: configuration, expert placement, hooks, and the collective
 * check that every rank describes the same layer.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/common/quant_math.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"
#include "lshmoe/common/param.h"
#include "lshmoe/moe_int.h"

/* What every rank must agree on, plus its status so that a rank with bad
 * arguments fails everyone instead of leaving them waiting. */
typedef struct moe_fingerprint {
    int32_t  status;
    int32_t  nexp, topk, dtype, comp, pad;
    uint64_t hidden;
    uint64_t placement;  /* hash of the owner map */
} moe_fingerprint_t;

static lshmoe_status_t check_config(const lshmoe_moe_config_t *cfg, int nranks)
{
    if (cfg == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "MoE config is NULL");
    if (cfg->size < sizeof(lshmoe_moe_config_t) || cfg->magic != LSHMOE_MAGIC)
        return lshmoe_error(LSHMOE_ERR_NOT_INIT, "MoE config not initialised: fill it with "
                            "LSHMOE_MOE_CONFIG_INITIALIZER");
    if (cfg->version > LSHMOE_VERSION_CODE)
        return lshmoe_error(LSHMOE_ERR_VERSION, "MoE config from header %u, library %d",
                            cfg->version, LSHMOE_VERSION_CODE);
    if (cfg->num_experts < 1 || cfg->num_experts > MOE_MAX_EXPERTS)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "num_experts %d is not in 1..%d",
                            (int)cfg->num_experts, MOE_MAX_EXPERTS);
    if (cfg->topk < 1 || cfg->topk > MOE_MAX_TOPK)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "topk %d is not in 1..%d",
                            (int)cfg->topk, MOE_MAX_TOPK);
    if (!lshmoe_dtype_is_float(cfg->dtype))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "MoE tokens must be fp32, fp16 or "
                            "bf16, not %s", lshmoe_dtype_name(cfg->dtype));
    if (cfg->hidden == 0 || cfg->hidden > MOE_MAX_HIDDEN)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "hidden %zu is not in 1..%u",
                            cfg->hidden, MOE_MAX_HIDDEN);
    if (cfg->compensation != LSHMOE_UNSET_INT && cfg->compensation != LSHMOE_COMP_NONE &&
        cfg->compensation != LSHMOE_COMP_RESIDUAL && cfg->compensation != LSHMOE_COMP_SCALED)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "compensation %d is not NONE, RESIDUAL "
                            "or SCALED", (int)cfg->compensation);
    if (cfg->expert_rank == NULL && cfg->num_experts % nranks != 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "%d experts do not split evenly over "
                            "%d ranks: pass expert_rank", (int)cfg->num_experts, nranks);
    if (cfg->expert_rank != NULL)
        for (int e = 0; e < cfg->num_experts; e++)
            if (cfg->expert_rank[e] < 0 || cfg->expert_rank[e] >= nranks)
                return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "expert_rank[%d] = %d is not a "
                                    "rank of 0..%d", e, (int)cfg->expert_rank[e], nranks - 1);
    return LSHMOE_OK;
}

/* Owner map, the (owner, id) order and each rank's span of it. */
static lshmoe_status_t build_placement(lshmoe_moe_t *m, const int32_t *map)
{
    int E = m->nexp, R = m->nranks;
    m->owner = malloc((size_t)E * sizeof *m->owner);
    m->pos_of = malloc((size_t)E * sizeof *m->pos_of);
    m->order = malloc((size_t)E * sizeof *m->order);
    m->rank_off = calloc((size_t)R + 1, sizeof *m->rank_off);
    m->alpha = malloc((size_t)E * sizeof *m->alpha);
    if (!m->owner || !m->pos_of || !m->order || !m->rank_off || !m->alpha)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "MoE placement tables (%d experts)", E);
    for (int e = 0; e < E; e++) {
        m->alpha[e] = NAN; /* no fit yet */
        m->owner[e] = map != NULL ? map[e] : e / (E / R);
        m->rank_off[m->owner[e] + 1]++;
    }
    for (int r = 0; r < R; r++)
        m->rank_off[r + 1] += m->rank_off[r];
    int *fill = calloc((size_t)R, sizeof *fill);
    if (fill == NULL)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "MoE placement tables");
    for (int e = 0; e < E; e++) { /* ascending ids within each rank */
        int pos = m->rank_off[m->owner[e]] + fill[m->owner[e]]++;
        m->order[pos] = e;
        m->pos_of[e] = pos;
    }
    free(fill);
    m->nlocal = m->rank_off[m->rank + 1] - m->rank_off[m->rank];
    size_t nl = m->nlocal > 0 ? (size_t)m->nlocal : 1;
    m->fwd = calloc(nl, sizeof *m->fwd);
    m->bwd = calloc(nl, sizeof *m->bwd);
    m->user = calloc(nl, sizeof *m->user);
    if (!m->fwd || !m->bwd || !m->user)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "MoE hook tables");
    return LSHMOE_OK;
}

static uint64_t placement_hash(const lshmoe_moe_t *m)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a over the owner map */
    for (int e = 0; e < m->nexp; e++) {
        h ^= (uint64_t)(uint32_t)m->owner[e];
        h *= 0x100000001b3ull;
    }
    return h;
}

static lshmoe_status_t agree(lshmoe_moe_t *m, lshmoe_status_t local)
{
    moe_fingerprint_t mine = {.status = local};
    if (local == LSHMOE_OK)
        mine = (moe_fingerprint_t){.status = 0, .nexp = m->nexp, .topk = m->topk,
                                   .dtype = (int32_t)m->dtype, .comp = m->comp,
                                   .hidden = m->hidden, .placement = placement_hash(m)};
    moe_fingerprint_t *all = calloc((size_t)m->nranks, sizeof *all);
    if (all == NULL)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "MoE fingerprints");
    const lshmoe_ctx_t *ctx = m->ctx;
    lshmoe_status_t st = ctx->tl_ops->allgather(ctx->tl, &mine, sizeof mine, all);
    if (st == LSHMOE_OK && local != LSHMOE_OK)
        st = local;
    for (int r = 0; st == LSHMOE_OK && r < m->nranks; r++) {
        const moe_fingerprint_t *o = &all[r];
        const char *what = o->status != 0 ? NULL
                           : o->nexp != mine.nexp ? "num_experts"
                           : o->topk != mine.topk ? "topk"
                           : o->dtype != mine.dtype ? "dtype"
                           : o->hidden != mine.hidden ? "hidden"
                           : o->comp != mine.comp ? "compensation"
                           : o->placement != mine.placement ? "expert placement" : "";
        if (what == NULL)
            st = lshmoe_error(LSHMOE_ERR_PEER, "rank %d failed lshmoe_moe_create (%s)", r,
                              lshmoe_status_name((lshmoe_status_t)o->status));
        else if (what[0] != '\0')
            st = lshmoe_error(LSHMOE_ERR_MISMATCH, "rank %d creates the MoE layer with "
                              "another %s than rank %d", r, what, m->rank);
    }
    free(all);
    return st;
}

static void moe_free(lshmoe_moe_t *m)
{
    lshmoe_kn_hasher_destroy(m->hasher);
    free(m->owner);
    free(m->pos_of);
    free(m->order);
    free(m->rank_off);
    free(m->alpha);
    free(m->fwd);
    free(m->bwd);
    free(m->user);
    lshmoe_buf_free(&m->meta);
    lshmoe_buf_free(&m->ptrs);
    lshmoe_buf_free(&m->junk);
    m->magic = 0;
    free(m);
}

/* The hasher for this layer's hidden size; a size the parameters cannot
 * hash (cdim above what PAD gives a tiny token) leaves it NULL: raw. */
static lshmoe_status_t make_hasher(lshmoe_moe_t *m)
{
    const lshmoe_config_t *c = &m->ctx->cfg;
    m->max_error = c->max_error;
    m->row_fmt = LSHMOE_QM_NATIVE;
    if (!c->compress)
        return LSHMOE_OK;
    if (!moe_codec_supported(c->codec))
        return lshmoe_error(LSHMOE_ERR_UNSUPPORTED, "LSHMOE_CODEC %d: the refinement step is "
                            "not yet available in MoE mode (use lsh, budget, a row format, "
                            "or lsh with a row format)", c->codec);
    m->row_fmt = moe_codec_row_fmt(c->codec);
    if (!moe_codec_clusters(c->codec))
        return LSHMOE_OK; /* rows travel one per token, in the row format */
    lshmoe_kn_lsh_params_t p = {.seed = c->seed, .num_hashes = c->num_hashes,
                                .cdim = c->cdim, .reduce = c->reduce,
                                .reduce_dim = c->reduce_dim, .rounds = c->rounds};
    lshmoe_status_t st = lshmoe_kn_hasher_create(&p, m->hidden, &m->hasher);
    if (st == LSHMOE_ERR_INVALID_ARG) {
        lshmoe_error_clear();
        m->hasher = NULL;
        return LSHMOE_OK;
    }
    return st;
}

static lshmoe_status_t moe_create_held(lshmoe_ctx_t *ctx, const lshmoe_moe_config_t *cfg,
                                       lshmoe_moe_t **moe_p)
{
    /* the caller (the public wrapper below) checked the handle */
    lshmoe_error_clear();
    lshmoe_moe_t *m = calloc(1, sizeof *m);
    if (m == NULL)
        return lshmoe_ctx_fail(ctx, lshmoe_error(LSHMOE_ERR_NO_MEMORY, "MoE layer"));
    m->magic = LSHMOE_MOE_MAGIC;
    m->ctx = ctx;
    m->rank = ctx->rank;
    m->nranks = ctx->nranks;
    /* A NULL moe_p is this rank's own error: it still joins the creation
     * round so that the peers fail instead of waiting for it. */
    lshmoe_status_t local = moe_p == NULL
        ? lshmoe_error(LSHMOE_ERR_INVALID_ARG, "lshmoe_moe_create: moe_p is NULL")
        : check_config(cfg, ctx->nranks);
    if (local == LSHMOE_OK) {
        m->nexp = cfg->num_experts;
        m->topk = cfg->topk;
        m->dtype = cfg->dtype;
        m->hidden = cfg->hidden;
        m->tb = cfg->hidden * lshmoe_dtype_size(cfg->dtype);
        m->comp = cfg->compensation == LSHMOE_UNSET_INT ? ctx->cfg.compensation
                                                        : cfg->compensation;
        local = build_placement(m, cfg->expert_rank);
    }
    if (local == LSHMOE_OK)
        local = make_hasher(m);
    lshmoe_status_t st = agree(m, local);
    if (st != LSHMOE_OK) {
        moe_free(m);
        return lshmoe_ctx_fail(ctx, st);
    }
    *moe_p = m;
    return LSHMOE_OK;
}

void lshmoe_moe_destroy(lshmoe_moe_t *moe)
{
    if (moe != NULL && moe->magic == LSHMOE_MOE_MAGIC)
        moe_free(moe);
}

static int moe_valid(const lshmoe_moe_t *m)
{
    return m != NULL && m->magic == LSHMOE_MOE_MAGIC;
}

lshmoe_status_t lshmoe_moe_local_experts(const lshmoe_moe_t *moe, int *count_p,
                                         const int32_t **ids_p)
{
    if (!moe_valid(moe))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "MoE layer is NULL or invalid");
    if (count_p == NULL || ids_p == NULL)
        return lshmoe_ctx_fail(moe->ctx, lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                               "lshmoe_moe_local_experts: %s is NULL",
                               count_p == NULL ? "count_p" : "ids_p"));
    *count_p = moe->nlocal;
    *ids_p = moe->order + moe->rank_off[moe->rank];
    return LSHMOE_OK;
}

lshmoe_status_t lshmoe_moe_set_expert(lshmoe_moe_t *moe, int expert,
                                      lshmoe_moe_expert_fn fwd,
                                      lshmoe_moe_expert_bwd_fn bwd, void *user)
{
    if (!moe_valid(moe))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "MoE layer is NULL or invalid");
    if (expert == LSHMOE_MOE_ALL_EXPERTS) {
        moe->fwd_all = fwd;
        moe->bwd_all = bwd;
        moe->user_all = user;
        return LSHMOE_OK;
    }
    if (expert < 0 || expert >= moe->nexp || moe->owner[expert] != moe->rank)
        return lshmoe_ctx_fail(moe->ctx, lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                               "expert %d is not one of rank %d's experts", expert,
                               moe->rank));
    int j = moe->pos_of[expert] - moe->rank_off[moe->rank];
    moe->fwd[j] = fwd;
    moe->bwd[j] = bwd;
    moe->user[j] = user;
    return LSHMOE_OK;
}

lshmoe_status_t lshmoe_moe_set_token_hook(lshmoe_moe_t *moe, lshmoe_moe_token_fn fn,
                                          void *user)
{
    if (!moe_valid(moe))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "MoE layer is NULL or invalid");
    moe->token_fn = fn;
    moe->token_user = user;
    return LSHMOE_OK;
}

lshmoe_status_t moe_check_handle(const lshmoe_moe_t *moe, const lshmoe_moe_handle_t *h,
                                 moe_state_t need, const char *what)
{
    static const char *const step[] = {"lshmoe_moe_layout", "lshmoe_moe_dispatch",
                                       "lshmoe_moe_combine", "lshmoe_moe_combine_backward"};
    if (h == NULL || h->magic != LSHMOE_HANDLE_MAGIC)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "%s: handle is NULL or not live", what);
    if (h->moe != moe)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "%s: the handle belongs to another "
                            "MoE layer", what);
    if (h->state < need)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "%s: the handle has not been through "
                            "%s yet", what, step[need]);
    return LSHMOE_OK;
}

lshmoe_status_t moe_check_call(const lshmoe_moe_t *moe, const lshmoe_moe_handle_t *h,
                               moe_state_t need, const void *buf, const char *buf_name,
                               const void *stream, const char *what, int *dev_p)
{
    LSHMOE_CHECK(moe_check_handle(moe, h, need, what));
    if (dev_p != NULL)
        *dev_p = 0;
    if (dev_p == NULL && h->on_dev)
        return lshmoe_error(LSHMOE_ERR_UNSUPPORTED, "%s: the handle was dispatched from "
                            "device memory, and this call has no device path in this "
                            "version", what);
    /* A rank without tokens may pass NULL: its stream says which path. */
    lshmoe_kn_mem_t kind = buf != NULL ? lshmoe_kn_mem_kind(buf)
                           : stream != NULL ? LSHMOE_KN_MEM_CUDA : LSHMOE_KN_MEM_HOST;
    if (kind == LSHMOE_KN_MEM_HOST) {
        if (stream != NULL)
            return lshmoe_error(LSHMOE_ERR_UNSUPPORTED, "%s: a stream with host buffers: "
                                "pass stream NULL, or device buffers", what);
        if (buf == NULL && h->ntok > 0)
            return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "%s: %s is NULL with %zu tokens",
                                what, buf_name, h->ntok);
        return LSHMOE_OK;
    }
    if (dev_p == NULL)
        return lshmoe_error(LSHMOE_ERR_UNSUPPORTED, "%s: %s is %s memory: this call has no "
                            "device path in this version; pass host buffers", what, buf_name,
                            lshmoe_kn_mem_name(kind));
    if (buf == NULL && h->ntok > 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "%s: %s is NULL with %zu tokens", what,
                            buf_name, h->ntok);
    LSHMOE_CHECK(moe_dev_check(moe, kind, what));
    *dev_p = 1;
    return LSHMOE_OK;
}

const char *moe_op_name(uint32_t op)
{
    switch (op) {
    case MOE_OP_DISPATCH: return "dispatch";
    case MOE_OP_COMBINE: return "combine";
    case MOE_OP_COMBINE_BWD: return "combine_backward";
    case MOE_OP_DISPATCH_BWD: return "dispatch_backward";
    default: return "an unknown collective";
    }
}

void moe_store_f64(const double *src, size_t n, lshmoe_dtype_t dtype, float *tmp,
                   void *dst)
{
    for (size_t i = 0; i < n; i++)
        tmp[i] = (float)src[i];
    lshmoe_row_from_f32(tmp, n, dtype, dst);
}

/* The context is claimed for the whole call (lshmoe_ctx_enter). */
lshmoe_status_t lshmoe_moe_create(lshmoe_ctx_t *ctx, const lshmoe_moe_config_t *cfg,
                                  lshmoe_moe_t **moe_p)
{
    if (!lshmoe_ctx_valid(ctx))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "context is NULL or not a live context");
    LSHMOE_CHECK(lshmoe_ctx_enter(ctx, "lshmoe_moe_create"));
    lshmoe_status_t st = moe_create_held(ctx, cfg, moe_p);
    lshmoe_ctx_leave(ctx);
    return st;
}
