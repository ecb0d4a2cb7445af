/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/link/link.h"
#include "lshmoe/common/error.h"
#include "lshmoe/common/log.h"
#include "lshmoe/common/param.h"
#include "lshmoe/ctx_int.h"

/*
 * What every rank must agree on, exchanged at creation. A rank whose local
 * set-up failed still takes part, with its status, so the others fail with
 * LSHMOE_ERR_PEER instead of waiting for it.
 */
typedef struct ctx_fingerprint {
    int32_t  status;
    int32_t  lib_version;
    uint64_t seed;
    int32_t  compress;
    int32_t  num_hashes;
    int32_t  cdim;
    int32_t  reduce;
    int32_t  reduce_dim;
    int32_t  rounds;
} ctx_fingerprint_t;

int lshmoe_ctx_valid(const lshmoe_ctx_t *ctx)
{
    return ctx != NULL && ctx->magic == LSHMOE_CTX_MAGIC;
}

lshmoe_status_t lshmoe_ctx_enter(lshmoe_ctx_t *ctx, const char *what)
{
    if (__atomic_exchange_n(&ctx->in_use, 1, __ATOMIC_ACQUIRE) != 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "%s: the context is in use by another call (a context is used "
                            "by one thread at a time, and expert hooks must not call back "
                            "into it)", what);
    return LSHMOE_OK;
}

void lshmoe_ctx_leave(lshmoe_ctx_t *ctx)
{
    __atomic_store_n(&ctx->in_use, 0, __ATOMIC_RELEASE);
}

lshmoe_status_t lshmoe_ctx_fail(lshmoe_ctx_t *ctx, lshmoe_status_t st)
{
    if (LSHMOE_IS_ERR(st) && lshmoe_ctx_valid(ctx)) {
        strncpy(ctx->last_error, lshmoe_error_thread_msg(), sizeof ctx->last_error - 1);
        ctx->last_error[sizeof ctx->last_error - 1] = '\0';
    }
    return st;
}

/* Can this rank reach its peers through `comm` at all? Only then can it
 * tell them of a failure; without a usable descriptor it returns alone. */
static lshmoe_status_t check_desc(const lshmoe_comm_desc_t *comm)
{
    if (comm == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "communicator descriptor is NULL");
    if (comm->size < sizeof(lshmoe_comm_desc_t) || comm->magic != LSHMOE_MAGIC)
        return lshmoe_error(LSHMOE_ERR_NOT_INIT,
                            "communicator descriptor has size %u and magic 0x%x: fill it "
                            "with LSHMOE_COMM_DESC_INITIALIZER", comm->size, comm->magic);
    if (comm->nranks < 1 || comm->rank < 0 || comm->rank >= comm->nranks)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "rank %d is not in 0..%d",
                            comm->rank, comm->nranks - 1);
    return LSHMOE_OK;
}

/* This rank's own argument errors that still leave the communicator usable:
 * the rank joins the creation round with them so that its peers fail with
 * LSHMOE_ERR_PEER instead of waiting for it. */
static lshmoe_status_t check_own_args(int header_version, const lshmoe_comm_desc_t *comm,
                                      lshmoe_ctx_t **ctx_p)
{
    if (ctx_p == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "ctx_p is NULL");
    if (header_version > LSHMOE_VERSION_CODE)
        return lshmoe_error(LSHMOE_ERR_VERSION,
                            "program compiled against lshmoe header %d, library is %d",
                            header_version, LSHMOE_VERSION_CODE);
    if (comm->version > LSHMOE_VERSION_CODE)
        return lshmoe_error(LSHMOE_ERR_VERSION,
                            "communicator descriptor is from header version %u, newer "
                            "than library %d", comm->version, LSHMOE_VERSION_CODE);
    return LSHMOE_OK;
}

/* Compares every rank's fingerprint with this rank's. */
static lshmoe_status_t check_fingerprints(const lshmoe_ctx_t *ctx,
                                          const ctx_fingerprint_t *all)
{
    const ctx_fingerprint_t *me = &all[ctx->rank];
    for (int r = 0; r < ctx->nranks; r++) {
        if (all[r].status != LSHMOE_OK)
            return lshmoe_error(LSHMOE_ERR_PEER, "rank %d failed to create its context (%s)",
                                r, lshmoe_status_name((lshmoe_status_t)all[r].status));
    }
    for (int r = 0; r < ctx->nranks; r++) {
        const ctx_fingerprint_t *o = &all[r];
#define FP_CHECK_(field, label)                                                      \
        if (o->field != me->field)                                                   \
            return lshmoe_error(LSHMOE_ERR_MISMATCH,                                 \
                                "rank %d has %s %lld but rank %d has %lld: every rank "\
                                "must use the same value", r, label, (long long)o->field, \
                                ctx->rank, (long long)me->field)
        FP_CHECK_(lib_version, "library version");
        FP_CHECK_(seed, "seed");
        FP_CHECK_(compress, "compress");
        FP_CHECK_(num_hashes, "hashes");
        FP_CHECK_(cdim, "cdim");
        FP_CHECK_(reduce, "reduce");
        FP_CHECK_(reduce_dim, "reduce_dim");
        FP_CHECK_(rounds, "rounds");
#undef FP_CHECK_
    }
    return LSHMOE_OK;
}

/*
 * LSHMOE_ADAPT is environment-only (not in lshmoe_config_t, whose layout is
 * ABI). Like max_error it need not agree across ranks: both only steer what
 * this rank sends, and the receiver learns the result from each segment
 * (header, or the metadata round's PLAIN flag).
 */
static lshmoe_status_t init_adapt(lshmoe_ctx_t *ctx)
{
    long long adapt;
    LSHMOE_CHECK(lshmoe_param_int("ADAPT", &adapt));
    /* Negative estimates: no sample yet. */
    ctx->adapt = (lshmoe_adapt_t){.on = (int)adapt, .comp_s_per_byte = -1.0,
                                  .plain_s_per_byte = -1.0, .comp_ratio = -1.0,
                                  .agreed = -1,
                                  .explore_every = ADAPT_EXPLORE_MIN,
                                  .arm_enc = {-1.0, -1.0}, .arm_ratio = {-1.0, -1.0},
                                  .arm_every = ADAPT_EXPLORE_MIN};
    return LSHMOE_OK;
}

static lshmoe_status_t make_codec(lshmoe_ctx_t *ctx)
{
    lshmoe_codec_params_t cp;
    LSHMOE_CHECK(lshmoe_config_codec_params(&ctx->cfg, &cp));
    LSHMOE_CHECK(lshmoe_codec_create(&cp, &ctx->codec));
    /* Pool threads (LSHMOE_THREADS) each get a codec of their own: its
     * workspaces and its per-segment mode state (budget ladder, row
     * formats), never its parameters, differ. On the self transport all
     * ranks share this process's cores. */
    int threads;
    LSHMOE_CHECK(lshmoe_pool_threads_from_env(
        ctx->self_world ? ctx->nranks : 0, &threads));
    ctx->codecs = calloc((size_t)threads, sizeof *ctx->codecs);
    ctx->peer_warm = calloc((size_t)ctx->nranks, sizeof *ctx->peer_warm);
    if (ctx->codecs == NULL || ctx->peer_warm == NULL)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "cannot allocate %d codecs", threads);
    ctx->codecs[0] = ctx->codec;
    ctx->nthreads = 1;
    for (int t = 1; t < threads; t++) {
        LSHMOE_CHECK(lshmoe_codec_create(&cp, &ctx->codecs[t]));
        ctx->nthreads = t + 1;
    }
    return lshmoe_pool_create(threads, &ctx->pool);
}

static void ctx_free(lshmoe_ctx_t *ctx)
{
    if (ctx->tl != NULL)
        ctx->tl_ops->finalize(ctx->tl);
    lshmoe_pool_destroy(ctx->pool);
    for (int t = 1; t < ctx->nthreads; t++)
        lshmoe_codec_destroy(ctx->codecs[t]);
    free(ctx->codecs);
    free(ctx->peer_warm);
    lshmoe_codec_destroy(ctx->codec);
    lshmoe_buf_free(&ctx->jobs);
    lshmoe_buf_free(&ctx->send_stage);
    lshmoe_buf_free(&ctx->recv_stage);
    lshmoe_buf_free(&ctx->meta);
    lshmoe_buf_free(&ctx->ptrs);
    lshmoe_dev_ws_release(&ctx->dev, ctx->dev.ops ? ctx->dev.ops->default_stream : NULL);
    lshmoe_buf_free(&ctx->dev_segs);
    ctx->magic = 0;
    free(ctx);
}

lshmoe_status_t lshmoe_ctx_create_v(int header_version, const lshmoe_comm_desc_t *comm,
                                    const lshmoe_config_t *cfg, lshmoe_ctx_t **ctx_p)
{
    lshmoe_status_t st;
    lshmoe_error_clear();
    LSHMOE_CHECK(check_desc(comm));
    lshmoe_status_t own = check_own_args(header_version, comm, ctx_p);
    char own_msg[LSHMOE_ERRMSG_LEN];
    snprintf(own_msg, sizeof own_msg, "%s", lshmoe_error_thread_msg());

    lshmoe_ctx_t *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "cannot allocate a context");
    ctx->magic = LSHMOE_CTX_MAGIC;
    ctx->rank = comm->rank;
    ctx->nranks = comm->nranks;
    ctx->stats.size = sizeof ctx->stats;

    /* The transport comes first: without it this rank cannot tell the
     * others that its configuration failed. */
    LSHMOE_CHECK_GOTO(lshmoe_tl_select(cfg ? cfg->transport : NULL, comm, &ctx->tl_ops),
                      st, err_free);
    LSHMOE_CHECK_GOTO(ctx->tl_ops->init(comm, &ctx->tl), st, err_free);
    ctx->self_world = strcmp(ctx->tl_ops->name, "self") == 0;

    /* The emulated cluster link (docs/benchmarks.md) wraps the transport.
     * A bad value is a local failure like a bad config: the peers hear of it
     * in the fingerprint round instead of waiting for this rank. */
    double link_gbps = 0, link_lat_us = 0;
    lshmoe_status_t local = own != LSHMOE_OK ? lshmoe_error(own, "%s", own_msg)
                                             : lshmoe_log_config_status();
    if (local == LSHMOE_OK)
        local = lshmoe_param_double("LINK_GBPS", &link_gbps);
    if (local == LSHMOE_OK)
        local = lshmoe_param_double("LINK_LATENCY_US", &link_lat_us);
    if (local == LSHMOE_OK && (link_gbps > 0 || link_lat_us > 0))
        local = lshmoe_tl_link_wrap(ctx->tl_ops, ctx->tl, comm, link_gbps, link_lat_us,
                                    &ctx->tl_ops, &ctx->tl);
    if (local == LSHMOE_OK)
        local = lshmoe_config_resolve(cfg, &ctx->cfg);
    if (local == LSHMOE_OK)
        local = make_codec(ctx);
    if (local == LSHMOE_OK)
        local = init_adapt(ctx);
    if (local == LSHMOE_OK)
        local = lshmoe_kn_isa_init(); /* LSHMOE_CPU_ISA: a bad value fails here */
    char local_msg[LSHMOE_ERRMSG_LEN];
    strncpy(local_msg, lshmoe_error_thread_msg(), sizeof local_msg - 1);
    local_msg[sizeof local_msg - 1] = '\0';

    ctx_fingerprint_t mine = {
        .status = local, .lib_version = LSHMOE_VERSION_CODE, .seed = ctx->cfg.seed,
        .compress = ctx->cfg.compress, .num_hashes = ctx->cfg.num_hashes,
        .cdim = ctx->cfg.cdim, .reduce = ctx->cfg.reduce,
        .reduce_dim = ctx->cfg.reduce_dim, .rounds = ctx->cfg.rounds};
    ctx_fingerprint_t *all = calloc((size_t)ctx->nranks, sizeof *all);
    if (all == NULL) {
        st = lshmoe_error(LSHMOE_ERR_NO_MEMORY, "cannot allocate %d fingerprints", ctx->nranks);
        goto err_free;
    }
    st = ctx->tl_ops->allgather(ctx->tl, &mine, sizeof mine, all);
    if (st == LSHMOE_OK) {
        if (local != LSHMOE_OK)
            st = lshmoe_error(local, "%s", local_msg); /* our own cause, not ERR_PEER */
        else
            st = check_fingerprints(ctx, all);
    }
    free(all);
    if (st != LSHMOE_OK)
        goto err_free;

    LSHMOE_INFO("rank %d/%d: transport %s, compress %d, hashes %d, cdim %d, reduce %s/%d, "
                "rounds %d, min tokens %d, min ratio %g, residual bits %d, adapt %d",
                ctx->rank,
                ctx->nranks, ctx->tl_ops->name, (int)ctx->cfg.compress,
                (int)ctx->cfg.num_hashes, (int)ctx->cfg.cdim,
                ctx->cfg.reduce == LSHMOE_REDUCE_PAD ? "pad" : "fold",
                (int)ctx->cfg.reduce_dim, (int)ctx->cfg.rounds, (int)ctx->cfg.min_tokens,
                ctx->cfg.min_ratio, (int)ctx->cfg.residual_bits, ctx->adapt.on);
    *ctx_p = ctx;
    return LSHMOE_OK;

err_free:
    {
        /* Keep the cause: freeing may overwrite the thread's message. */
        char msg[LSHMOE_ERRMSG_LEN];
        strncpy(msg, lshmoe_error_thread_msg(), sizeof msg - 1);
        msg[sizeof msg - 1] = '\0';
        ctx_free(ctx);
        return lshmoe_error(st, "%s", msg);
    }
}

void lshmoe_ctx_destroy(lshmoe_ctx_t *ctx)
{
    if (!lshmoe_ctx_valid(ctx))
        return;
    ctx_free(ctx);
}

lshmoe_status_t lshmoe_ctx_get_config(const lshmoe_ctx_t *ctx, lshmoe_config_t *cfg)
{
    if (!lshmoe_ctx_valid(ctx) || cfg == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "context or config is NULL or invalid");
    return lshmoe_copy_sized(cfg, &ctx->cfg, sizeof ctx->cfg, 3 * sizeof(uint32_t), "config",
                             "LSHMOE_CONFIG_INITIALIZER");
}

int lshmoe_ctx_rank(const lshmoe_ctx_t *ctx)
{
    return lshmoe_ctx_valid(ctx) ? ctx->rank : -1;
}

int lshmoe_ctx_nranks(const lshmoe_ctx_t *ctx)
{
    return lshmoe_ctx_valid(ctx) ? ctx->nranks : -1;
}

lshmoe_status_t lshmoe_stats_get(const lshmoe_ctx_t *ctx, lshmoe_stats_t *stats)
{
    if (!lshmoe_ctx_valid(ctx) || stats == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "context or stats is NULL or invalid");
    return lshmoe_copy_sized(stats, &ctx->stats, sizeof ctx->stats, 2 * sizeof(uint32_t),
                             "stats", "LSHMOE_STATS_INITIALIZER");
}

void lshmoe_stats_reset(lshmoe_ctx_t *ctx)
{
    if (!lshmoe_ctx_valid(ctx))
        return;
    memset(&ctx->stats, 0, sizeof ctx->stats);
    ctx->stats.size = sizeof ctx->stats;
}

const char *lshmoe_last_error(const lshmoe_ctx_t *ctx)
{
    if (ctx == NULL)
        return lshmoe_error_thread_msg();
    return lshmoe_ctx_valid(ctx) ? ctx->last_error : "invalid context handle";
}

lshmoe_status_t lshmoe_ctx_set_device_allocator(lshmoe_ctx_t *ctx,
                                                lshmoe_device_alloc_fn alloc_fn,
                                                lshmoe_device_free_fn free_fn, void *user)
{
    if (!lshmoe_ctx_valid(ctx))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "context is NULL or not a live context");
    if ((alloc_fn == NULL) != (free_fn == NULL))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "device allocator: set both functions or neither");
    LSHMOE_CHECK(lshmoe_ctx_enter(ctx, "lshmoe_ctx_set_device_allocator"));
    /* what the old functions allocated goes back to them */
    lshmoe_dev_ws_release(&ctx->dev, ctx->dev.ops ? ctx->dev.ops->default_stream : NULL);
    ctx->dev.alloc_fn = alloc_fn;
    ctx->dev.free_fn = free_fn;
    ctx->dev.user = user;
    lshmoe_ctx_leave(ctx);
    return LSHMOE_OK;
}
