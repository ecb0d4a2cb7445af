/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The pass handle: the layout of one routing (validated, counted, entries
 * sorted by destination expert), its accessors and its destruction.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lshmoe/common/error.h"
#include "lshmoe/moe_int.h"

static lshmoe_status_t check_routing(const lshmoe_moe_t *m, size_t ntok,
                                     const int32_t *idx, const float *gate)
{
    if (ntok >= ((size_t)1 << 31))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "ntokens %zu is not below 2^31", ntok);
    if (ntok > 0 && (idx == NULL || gate == NULL))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "topk_idx or topk_weights is NULL with "
                            "%zu tokens", ntok);
    size_t n = ntok * (size_t)m->topk;
    for (size_t i = 0; i < n; i++) {
        if (idx[i] != LSHMOE_MOE_DROPPED && (idx[i] < 0 || idx[i] >= m->nexp))
            return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "topk_idx[%zu] (token %zu, slot %zu) "
                                "= %d is not an expert of 0..%d or LSHMOE_MOE_DROPPED", i,
                                i / (size_t)m->topk, i % (size_t)m->topk, (int)idx[i],
                                m->nexp - 1);
        if (!isfinite(gate[i]))
            return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "topk_weights[%zu] (token %zu, slot "
                                "%zu) is not finite", i, i / (size_t)m->topk,
                                i % (size_t)m->topk);
    }
    return LSHMOE_OK;
}

/* Every array of the handle whose size follows from the layer and ntok. */
static lshmoe_status_t alloc_tables(const lshmoe_moe_t *m, lshmoe_moe_handle_t *h)
{
    size_t E = (size_t)m->nexp, R = (size_t)m->nranks, L = (size_t)m->nlocal;
    size_t ns = h->ntok * (size_t)m->topk + 1; /* + 1: never malloc(0) */
    h->idx = malloc(ns * sizeof *h->idx);
    h->gate = malloc(ns * sizeof *h->gate);
    h->slot_ent = malloc(ns * sizeof *h->slot_ent);
    h->ent_slot = malloc(ns * sizeof *h->ent_slot);
    h->cluster_of = malloc(ns * sizeof *h->cluster_of);
    h->row_size = malloc(ns * sizeof *h->row_size);
    h->ent_off = calloc(E + 1, sizeof *h->ent_off);
    h->row_off = calloc(E + 1, sizeof *h->row_off);
    h->rho = calloc(E, sizeof *h->rho);
    h->per_expert = calloc(E, sizeof *h->per_expert);
    h->per_rank = calloc(R, sizeof *h->per_rank);
    h->peer_row_off = calloc(R + 1, sizeof *h->peer_row_off);
    h->send_off = calloc(R, sizeof *h->send_off);
    h->send_bytes = calloc(R, sizeof *h->send_bytes);
    h->prefix = calloc(R, sizeof *h->prefix);
    h->recv_rows = calloc(R * L + 1, sizeof *h->recv_rows);
    h->peer_brow_off = calloc(R + 1, sizeof *h->peer_brow_off);
    h->batch_off = calloc(L + 1, sizeof *h->batch_off);
    h->batches = calloc(L + 1, sizeof *h->batches);
    if (!h->idx || !h->gate || !h->slot_ent || !h->ent_slot || !h->cluster_of ||
        !h->row_size || !h->ent_off || !h->row_off || !h->rho || !h->per_expert || !h->per_rank ||
        !h->peer_row_off || !h->send_off || !h->send_bytes || !h->prefix ||
        !h->recv_rows || !h->peer_brow_off || !h->batch_off || !h->batches)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "MoE handle tables for %zu tokens",
                            h->ntok);
    return LSHMOE_OK;
}

/* Counting sort of the routed slots by expert position; within an expert
 * they stay in (token, slot) order. */
static void sort_entries(const lshmoe_moe_t *m, lshmoe_moe_handle_t *h)
{
    size_t ns = h->ntok * (size_t)m->topk;
    for (size_t i = 0; i < ns; i++) {
        int e = h->idx[i];
        if (e == LSHMOE_MOE_DROPPED)
            continue;
        h->per_expert[e]++;
        h->per_rank[m->owner[e]]++;
        h->ent_off[m->pos_of[e] + 1]++;
    }
    for (int pos = 0; pos < m->nexp; pos++)
        h->ent_off[pos + 1] += h->ent_off[pos];
    h->nent = h->ent_off[m->nexp];
    /* row_off is free until dispatch: use it as the fill cursor */
    memcpy(h->row_off, h->ent_off, (size_t)m->nexp * sizeof *h->row_off);
    for (size_t i = 0; i < ns; i++) {
        int e = h->idx[i];
        if (e == LSHMOE_MOE_DROPPED) {
            h->slot_ent[i] = SIZE_MAX;
            continue;
        }
        size_t k = h->row_off[m->pos_of[e]]++;
        h->ent_slot[k] = i;
        h->slot_ent[i] = k;
    }
    memset(h->row_off, 0, ((size_t)m->nexp + 1) * sizeof *h->row_off);
}

lshmoe_status_t lshmoe_moe_layout(lshmoe_moe_t *moe, size_t ntokens, const int32_t *topk_idx,
                                  const float *topk_weights, lshmoe_moe_handle_t **handle_p)
{
    if (moe == NULL || moe->magic != LSHMOE_MOE_MAGIC)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "MoE layer is NULL or invalid");
    lshmoe_error_clear();
    /* Every failure with a live layer sets its own message in the context,
     * so lshmoe_last_error(ctx) never shows an earlier call's. */
    if (handle_p == NULL)
        return lshmoe_ctx_fail(moe->ctx, lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                                                      "lshmoe_moe_layout: handle_p is NULL"));
    lshmoe_status_t st = check_routing(moe, ntokens, topk_idx, topk_weights);
    if (st != LSHMOE_OK)
        return lshmoe_ctx_fail(moe->ctx, st);
    lshmoe_moe_handle_t *h = calloc(1, sizeof *h);
    if (h == NULL)
        return lshmoe_ctx_fail(moe->ctx, lshmoe_error(LSHMOE_ERR_NO_MEMORY, "MoE handle"));
    h->magic = LSHMOE_HANDLE_MAGIC;
    h->moe = moe;
    h->ntok = ntokens;
    st = alloc_tables(moe, h);
    if (st != LSHMOE_OK) {
        lshmoe_moe_handle_destroy(h);
        return lshmoe_ctx_fail(moe->ctx, st);
    }
    size_t ns = ntokens * (size_t)moe->topk;
    if (ns > 0) {
        memcpy(h->idx, topk_idx, ns * sizeof *h->idx);
        memcpy(h->gate, topk_weights, ns * sizeof *h->gate);
    }
    sort_entries(moe, h);
    h->stats = (lshmoe_moe_stats_t)LSHMOE_MOE_STATS_INITIALIZER;
    h->stats.tokens = ntokens;
    h->stats.slots = h->nent;
    *handle_p = h;
    return LSHMOE_OK;
}

void lshmoe_moe_handle_destroy(lshmoe_moe_handle_t *h)
{
    if (h == NULL || h->magic != LSHMOE_HANDLE_MAGIC)
        return;
    moe_dev_free(h);
    void *tables[] = {h->idx, h->gate, h->slot_ent, h->ent_slot, h->cluster_of,
                      h->row_size, h->ent_off, h->row_off, h->rho, h->per_expert, h->per_rank,
                      h->peer_row_off, h->send_off, h->send_bytes, h->prefix,
                      h->recv_rows, h->peer_brow_off, h->batch_off, h->batches};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        free(tables[i]);
    lshmoe_buf_t *bufs[] = {&h->staged, &h->send, &h->keys, &h->work, &h->rows, &h->y,
                            &h->dxacc, &h->fscratch, &h->recv, &h->bin, &h->bout,
                            &h->bgout, &h->bgin, &h->bsize, &h->crows, &h->qdec,
                            &h->cwire};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        lshmoe_buf_free(bufs[i]);
    h->magic = 0;
    free(h);
}

lshmoe_status_t lshmoe_moe_layout_counts(const lshmoe_moe_handle_t *h, size_t *per_rank,
                                         size_t *per_expert)
{
    if (h == NULL || h->magic != LSHMOE_HANDLE_MAGIC)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "handle is NULL or not live");
    if (per_rank != NULL)
        memcpy(per_rank, h->per_rank, (size_t)h->moe->nranks * sizeof *per_rank);
    if (per_expert != NULL)
        memcpy(per_expert, h->per_expert, (size_t)h->moe->nexp * sizeof *per_expert);
    return LSHMOE_OK;
}

lshmoe_status_t lshmoe_moe_batches(lshmoe_moe_handle_t *h, const lshmoe_moe_batch_t **batches_p,
                                   int *count_p)
{
    if (h == NULL || h->magic != LSHMOE_HANDLE_MAGIC || batches_p == NULL || count_p == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "handle or an output is NULL");
    if (h->state < MOE_ST_DISPATCHED)
        return lshmoe_ctx_fail(h->moe->ctx, lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                               "the handle has not been dispatched"));
    *batches_p = h->batches;
    *count_p = h->moe->nlocal;
    return LSHMOE_OK;
}

lshmoe_status_t lshmoe_moe_stats_get(const lshmoe_moe_handle_t *h, lshmoe_moe_stats_t *stats)
{
    if (h == NULL || h->magic != LSHMOE_HANDLE_MAGIC || stats == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "handle or stats is NULL");
    return lshmoe_copy_sized(stats, &h->stats, sizeof h->stats, 2 * sizeof(uint32_t),
                             "MoE stats", "LSHMOE_MOE_STATS_INITIALIZER");
}
