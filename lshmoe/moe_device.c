/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * MoE mode on device buffers: dispatch and combine with x, y, the batches,
 * the payloads and the rows in device memory, over the nccl transport,
 * stream-ordered on the caller's stream. The kernels are reached through
 * the device ops table only (moe_gather, moe_combine, copy, zero, query).
 *
 * The same rounds and the same wire payloads as the host path (moe_int.h),
 * so a rank on device buffers and a rank on host buffers can share a pass.
 * Rows travel in the token dtype (the NATIVE row format).
 *
 * Without clustering (compress 0) every expert's rows travel raw and the
 * sender's side runs on the device: the moe_gather kernel copies the rows
 * routed to each expert straight into the payloads. With clustering the
 * grouping is not on the device yet: the host copies x back, runs the host
 * path's clustering (moe_cluster.c: the same decisions, centroids and
 * payload bytes) and uploads the payloads and centroids. Either way the
 * owner's reconstruction and gate-weighted sum run on the device (kernel
 * moe_combine), in the host's order of operations: y equals the host
 * path's bit for bit. Row formats, SCALED compensation, token hooks and the
 * backward pass are refused (LSHMOE_ERR_UNSUPPORTED) before any round.
 *
 * The host waits for the stream (docs/cuda.md): with clustering, for the
 * copy of x it groups; in dispatch for the peers' row counts (they size
 * the batches the host describes to the expert functions) and, when a peer
 * sent groups, for their sizes (checked, and counted in the statistics);
 * in combine for the peers' row-format bytes (a malformed payload must
 * fail the call before y is written).
 *
 * The layout's tables are uploaded once per layout: the token of each
 * routed entry (the gather's index) and the entry and gate of each slot.
 * Each dispatch uploads each entry's row and compensation factor. Device
 * memory is the handle's, grown on demand through the context's allocator
 * hooks, and kept until the handle is destroyed.
 */
#include <stdlib.h>
#include <string.h>

#include "kernels/common/quant_math.h"
#include "lshmoe/common/error.h"
#include "lshmoe/common/timer.h"
#include "lshmoe/dev_wait.h"
#include "lshmoe/moe_device.h"
#include "lshmoe/moe_int.h"

lshmoe_status_t moe_dev_check(const lshmoe_moe_t *m, lshmoe_kn_mem_t kind, const char *what)
{
    const lshmoe_ctx_t *ctx = m->ctx;
    if (lshmoe_kn_dev_ops(kind) == NULL)
        return lshmoe_error(LSHMOE_ERR_UNSUPPORTED, "%s: %s memory: no kernels for it in "
                            "this build", what, lshmoe_kn_mem_name(kind));
    if (strcmp(ctx->tl_ops->name, "nccl") != 0)
        return lshmoe_error(LSHMOE_ERR_UNSUPPORTED, "%s: %s buffers need the nccl transport; "
                            "this context uses %s", what, lshmoe_kn_mem_name(kind),
                            ctx->tl_ops->name);
    if (m->hasher != NULL && m->comp == LSHMOE_COMP_SCALED)
        return lshmoe_error(LSHMOE_ERR_UNSUPPORTED, "%s: SCALED compensation on device "
                            "buffers is not in this version: use RESIDUAL or NONE, compress "
                            "0, or host buffers", what);
    if (m->row_fmt != LSHMOE_QM_NATIVE)
        return lshmoe_error(LSHMOE_ERR_UNSUPPORTED, "%s: coded rows (LSHMOE_CODEC %d) on "
                            "device buffers are not in this version: create the context "
                            "with compress 0, or pass host buffers", what, ctx->cfg.codec);
    if (m->token_fn != NULL)
        return lshmoe_error(LSHMOE_ERR_UNSUPPORTED, "%s: token hooks on device buffers are "
                            "not in this version: remove the hook, or pass host buffers",
                            what);
    return LSHMOE_OK;
}

/* The handle's device state, created on its first device call. */
static lshmoe_status_t dev_state(lshmoe_moe_t *m, lshmoe_moe_handle_t *h, void *stream)
{
    if (h->dev == NULL) {
        h->dev = calloc(1, sizeof *h->dev);
        if (h->dev != NULL) {
            h->dev->size_off = calloc((size_t)m->nranks, sizeof(size_t));
            h->dev->size_cnt = calloc((size_t)m->nranks, sizeof(size_t));
        }
        if (h->dev == NULL || h->dev->size_off == NULL || h->dev->size_cnt == NULL) {
            moe_dev_free(h);
            return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "MoE device state");
        }
        const lshmoe_dev_ws_t *cws = &m->ctx->dev;
        h->dev->mem.ops = lshmoe_kn_dev_ops(LSHMOE_KN_MEM_CUDA);
        /* the context's hooks, kept with the memory they allocate */
        h->dev->mem.alloc_fn = cws->alloc_fn;
        h->dev->mem.free_fn = cws->free_fn;
        h->dev->mem.user = cws->user;
    }
    h->dev->stream = stream;
    /* the host waits of MoE mode are bounded as the codec's (dev_wait.h) */
    return lshmoe_dev_wait_bind(&h->dev->mem, m->ctx->tl_ops, m->ctx->tl);
}

/* Uploads the layout's gather and combine tables (once per layout). */
static lshmoe_status_t upload_layout(const lshmoe_moe_t *m, lshmoe_moe_handle_t *h,
                                     void *stream)
{
    struct moe_dev *d = h->dev;
    if (d->uploaded)
        return LSHMOE_OK;
    size_t K = (size_t)m->topk, ns = h->ntok * K;
    size_t n = h->nent > ns ? h->nent : ns;
    const lshmoe_kn_dev_ops_t *ops = d->mem.ops;
    LSHMOE_CHECK(lshmoe_buf_reserve(&d->host, (n + 1) * sizeof(uint64_t)));
    LSHMOE_CHECK(lshmoe_dev_reserve(&d->mem, &d->ent_tok, (h->nent + 1) * sizeof(uint64_t),
                                    stream));
    LSHMOE_CHECK(lshmoe_dev_reserve(&d->mem, &d->slot_row, (ns + 1) * sizeof(uint64_t),
                                    stream));
    LSHMOE_CHECK(lshmoe_dev_reserve(&d->mem, &d->gate, (ns + 1) * sizeof(float), stream));
    uint64_t *tab = d->host.ptr;
    /* Each copy from pageable memory has read its source when it returns,
     * so one host table serves all three. */
    for (size_t i = 0; i < h->nent; i++)
        tab[i] = h->ent_slot[i] / K;
    LSHMOE_CHECK(ops->copy(d->ent_tok.ptr, tab, h->nent * sizeof *tab, stream));
    for (size_t i = 0; i < ns; i++)
        tab[i] = h->slot_ent[i] == SIZE_MAX ? UINT64_MAX : (uint64_t)h->slot_ent[i];
    LSHMOE_CHECK(ops->copy(d->slot_row.ptr, tab, ns * sizeof *tab, stream));
    LSHMOE_CHECK(ops->copy(d->gate.ptr, h->gate, ns * sizeof *h->gate, stream));
    d->uploaded = 1;
    return LSHMOE_OK;
}

/* The owner's rows of a raw pass: one per entry, in entry order. */
static void raw_rows(const lshmoe_moe_t *m, lshmoe_moe_handle_t *h)
{
    for (int pos = 0; pos <= m->nexp; pos++)
        h->row_off[pos] = h->ent_off[pos];
    for (int pos = 0; pos < m->nexp; pos++)
        for (size_t i = h->ent_off[pos]; i < h->ent_off[pos + 1]; i++) {
            h->cluster_of[i] = (uint32_t)(i - h->ent_off[pos]);
            h->row_size[i] = 1;
        }
    h->nrows = h->nent;
    for (int p = 0; p <= m->nranks; p++)
        h->peer_row_off[p] = h->ent_off[m->rank_off[p]];
}

/* Clustering from a host copy of x (not on the device yet): the host
 * path's moe_cluster() writes the payloads into h->send, which go up in
 * one copy at the same offsets, and the centroids into h->crows. */
static lshmoe_status_t cluster_on_host(lshmoe_moe_t *m, lshmoe_moe_handle_t *h, const void *x,
                                       void *stream)
{
    struct moe_dev *d = h->dev;
    const lshmoe_kn_dev_ops_t *ops = d->mem.ops;
    size_t R = (size_t)m->nranks;
    LSHMOE_CHECK(lshmoe_buf_reserve(&d->hx, h->ntok * m->tb + 1));
    /* the host groups these rows */
    LSHMOE_CHECK(lshmoe_dev_read_back(&d->mem, d->hx.ptr, x, h->ntok * m->tb, stream,
                                      "MoE dispatch: tokens for the host's grouping"));
    LSHMOE_CHECK(moe_cluster(m, h, d->hx.ptr));
    size_t total = h->send_off[R - 1] + h->send_bytes[R - 1];
    LSHMOE_CHECK(lshmoe_dev_reserve(&d->mem, &d->send, total + 1, stream));
    LSHMOE_CHECK(ops->copy(d->send.ptr, h->send.ptr, total, stream));
    LSHMOE_CHECK(lshmoe_dev_reserve(&d->mem, &d->crows, h->nrows * m->tb + 1, stream));
    return ops->copy(d->crows.ptr, h->crows.ptr, h->nrows * m->tb, stream);
}

/* Each entry's global row and compensation factor (the host's rho: 1 for
 * RESIDUAL, 0 for NONE, in groups of more than one; else 0), and, when a
 * factor is not 0, the routed tokens on the device (the residual path). */
static lshmoe_status_t upload_rows(const lshmoe_moe_t *m, lshmoe_moe_handle_t *h, const void *x,
                                   void *stream)
{
    struct moe_dev *d = h->dev;
    const lshmoe_kn_dev_ops_t *ops = d->mem.ops;
    size_t n = h->nent;
    LSHMOE_CHECK(lshmoe_buf_reserve(&d->host, (n + 1) * sizeof(uint64_t)));
    LSHMOE_CHECK(lshmoe_dev_reserve(&d->mem, &d->ent_row, (n + 1) * sizeof(uint64_t), stream));
    LSHMOE_CHECK(lshmoe_dev_reserve(&d->mem, &d->ent_coef, (n + 1) * sizeof(double), stream));
    uint64_t *row = d->host.ptr;
    for (int pos = 0; pos < m->nexp; pos++)
        for (size_t i = h->ent_off[pos]; i < h->ent_off[pos + 1]; i++)
            row[i] = h->row_off[pos] + h->cluster_of[i];
    /* the copy has read its pageable source when it returns */
    LSHMOE_CHECK(ops->copy(d->ent_row.ptr, row, n * sizeof *row, stream));
    double *coef = d->host.ptr, rho = m->comp == LSHMOE_COMP_RESIDUAL ? 1.0 : 0.0;
    int any = 0;
    for (int pos = 0; pos < m->nexp; pos++)
        for (size_t i = h->ent_off[pos]; i < h->ent_off[pos + 1]; i++) {
            coef[i] = h->row_size[h->row_off[pos] + h->cluster_of[i]] > 1 ? rho : 0.0;
            any |= coef[i] != 0.0;
        }
    LSHMOE_CHECK(ops->copy(d->ent_coef.ptr, coef, n * sizeof *coef, stream));
    if (!any)
        return LSHMOE_OK;
    LSHMOE_CHECK(lshmoe_dev_reserve(&d->mem, &d->staged, n * m->tb + 1, stream));
    return ops->moe_gather(x, m->tb, n, d->ent_tok.ptr, d->staged.ptr, stream);
}

/* Sender side: each peer's payload (prefix, then its entries' rows gathered
 * from x) at d->send + send_off[p]. */
static lshmoe_status_t build_dispatch(lshmoe_moe_t *m, lshmoe_moe_handle_t *h, const void *x,
                                      void *stream)
{
    struct moe_dev *d = h->dev;
    const lshmoe_kn_dev_ops_t *ops = d->mem.ops;
    size_t off = 0, maxpre = 8;
    for (int p = 0; p < m->nranks; p++) {
        size_t nl = (size_t)(m->rank_off[p + 1] - m->rank_off[p]);
        size_t ne = h->ent_off[m->rank_off[p + 1]] - h->ent_off[m->rank_off[p]];
        h->prefix[p] = moe_prefix_bytes(nl);
        maxpre = h->prefix[p] > maxpre ? h->prefix[p] : maxpre;
        h->send_off[p] = off;
        h->send_bytes[p] = h->prefix[p] + ne * m->tb;
        off += moe_dev_round(h->send_bytes[p]);
    }
    LSHMOE_CHECK(lshmoe_dev_reserve(&d->mem, &d->send, off + 1, stream));
    LSHMOE_CHECK(lshmoe_buf_reserve(&d->host, maxpre));
    h->stats.experts_compressed = h->stats.experts_raw = 0;
    for (int p = 0; p < m->nranks; p++) {
        char *pre = d->host.ptr, *base = (char *)d->send.ptr + h->send_off[p];
        size_t nl = (size_t)(m->rank_off[p + 1] - m->rank_off[p]);
        memset(pre, 0, h->prefix[p]); /* row formats NATIVE (0), padding */
        for (size_t j = 0; j < nl; j++) {
            int pos = m->rank_off[p] + (int)j;
            size_t n = h->ent_off[pos + 1] - h->ent_off[pos];
            uint32_t c32 = (uint32_t)n | MOE_ROWS_RAW;
            memcpy(pre + j * sizeof c32, &c32, sizeof c32);
            h->stats.experts_raw += n > 0;
        }
        LSHMOE_CHECK(ops->copy(base, pre, h->prefix[p], stream));
        size_t e0 = h->ent_off[m->rank_off[p]];
        size_t ne = h->ent_off[m->rank_off[p + 1]] - e0;
        LSHMOE_CHECK(ops->moe_gather(x, m->tb, ne, (const uint64_t *)d->ent_tok.ptr + e0,
                                     base + h->prefix[p], stream));
    }
    return LSHMOE_OK;
}

/* Checks a peer's dispatch prefix (read back into `pre`) against the bytes
 * it announced, records its row counts and where its group sizes are. Rows
 * in the token dtype only (NATIVE): anything else is a peer on another
 * configuration or a forged payload. */
static lshmoe_status_t parse_prefix(const lshmoe_moe_t *m, lshmoe_moe_handle_t *h, int p,
                                    const char *pre, size_t len)
{
    size_t row_bytes, sized;
    LSHMOE_CHECK(moe_parse_prefix(m, h, p, pre, len, 1, &row_bytes, &sized));
    h->dev->size_off[p] = moe_prefix_bytes((size_t)m->nlocal) + row_bytes;
    h->dev->size_cnt[p] = sized;
    return LSHMOE_OK;
}

/* The peers' group sizes (read back: the host waits), each at least 1. */
static lshmoe_status_t read_sizes(const lshmoe_moe_t *m, lshmoe_moe_handle_t *h,
                                  char *const *rp, void *stream)
{
    struct moe_dev *d = h->dev;
    size_t R = (size_t)m->nranks, total = 0;
    for (size_t p = 0; p < R; p++)
        total += d->size_cnt[p];
    if (total == 0)
        return LSHMOE_OK;
    LSHMOE_CHECK(lshmoe_buf_reserve(&d->hsizes, total * sizeof(uint32_t)));
    uint32_t *s = d->hsizes.ptr;
    /* first the exchange, bounded: a copy to pageable memory blocks */
    LSHMOE_CHECK(lshmoe_dev_wait(&d->mem, stream, "MoE dispatch: group sizes"));
    for (size_t p = 0, o = 0; p < R; o += d->size_cnt[p], p++)
        LSHMOE_CHECK(d->mem.ops->copy(s + o, rp[p] + d->size_off[p],
                                      d->size_cnt[p] * sizeof *s, stream));
    LSHMOE_CHECK(lshmoe_dev_wait(&d->mem, stream, "MoE dispatch: group sizes read-back"));
    for (size_t p = 0, o = 0; p < R; o += d->size_cnt[p], p++)
        for (size_t r = 0; r < d->size_cnt[p]; r++)
            if (s[o + r] == 0)
                return lshmoe_error(LSHMOE_ERR_CORRUPT, "MoE dispatch payload from rank %zu: "
                                    "a row stands for 0 tokens", p);
    return LSHMOE_OK;
}

/* The batches' device buffers and descriptors (grad buffers: none, the
 * backward pass has no device path yet), and their group sizes: 1 for raw
 * rows, else the sizes read back, in each peer's (expert, row) order;
 * `pre` holds every peer's prefix. */
static lshmoe_status_t dev_batches(lshmoe_moe_t *m, lshmoe_moe_handle_t *h, const char *pre,
                                   void *stream)
{
    struct moe_dev *d = h->dev;
    size_t L = (size_t)m->nlocal;
    moe_batch_offsets(m, h);
    size_t bytes = h->nbrows * m->tb + 1;
    LSHMOE_CHECK(lshmoe_dev_reserve(&d->mem, &d->bin, bytes, stream));
    LSHMOE_CHECK(lshmoe_dev_reserve(&d->mem, &d->bout, bytes, stream));
    LSHMOE_CHECK(lshmoe_dev_reserve(&d->mem, &d->bsize, (h->nbrows + 1) * sizeof(uint32_t),
                                    stream));
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->bsize, (h->nbrows + 1) * sizeof(uint32_t)));
    uint32_t *bs = h->bsize.ptr;
    const uint32_t *sizes = d->hsizes.ptr;
    size_t pb = moe_prefix_bytes(L);
    uint64_t slots = 0;
    for (int p = 0; p < m->nranks; p++)
        for (size_t j = 0; j < L; j++) {
            uint32_t c;
            memcpy(&c, pre + (size_t)p * pb + j * sizeof c, sizeof c);
            size_t n = h->recv_rows[(size_t)p * L + j];
            uint32_t *dst = bs + moe_batch_row(m, h, p, (int)j);
            for (size_t r = 0; r < n; r++)
                dst[r] = (c & MOE_ROWS_RAW) ? 1u : *sizes++;
            for (size_t r = 0; r < n; r++)
                slots += dst[r];
        }
    LSHMOE_CHECK(d->mem.ops->copy(d->bsize.ptr, bs, h->nbrows * sizeof *bs, stream));
    moe_batch_describe(m, h, d->bin.ptr, d->bout.ptr, d->bsize.ptr, NULL, NULL);
    h->stats.rows_received = h->nbrows;
    h->stats.slots_received = slots;
    return LSHMOE_OK;
}

/* Receives the dispatch payloads, reads their prefixes back (the host
 * waits here: the batch sizes must be known on the host) and moves each
 * (peer, expert) block of rows into its batch. */
static lshmoe_status_t dev_receive(lshmoe_moe_t *m, lshmoe_moe_handle_t *h, const moe_meta_t *in,
                                   void *stream)
{
    struct moe_dev *d = h->dev;
    const lshmoe_kn_dev_ops_t *ops = d->mem.ops;
    size_t R = (size_t)m->nranks, L = (size_t)m->nlocal, pre = moe_prefix_bytes(L);
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->work, 3 * R * sizeof(void *)));
    const void **sp = h->work.ptr;
    char **rp = (char **)(sp + R);
    size_t *off = (size_t *)(rp + R);
    size_t total = moe_round_layout(R, d->send.ptr, h->send_off, in, MOE_DEV_ALIGN, sp, off);
    LSHMOE_CHECK(lshmoe_dev_reserve(&d->mem, &d->recv, total + 1, stream));
    for (size_t p = 0; p < R; p++)
        rp[p] = (char *)d->recv.ptr + off[p];
    double t0 = lshmoe_now();
    LSHMOE_CHECK(moe_data_round_dev(m, MOE_OP_DISPATCH, h->seq, in, sp, h->send_bytes,
                                    (void *const *)rp, NULL, stream, &d->mem, &d->junk));
    for (size_t p = 0; p < R; p++)
        if (in[p].bytes < pre)
            return lshmoe_error(LSHMOE_ERR_CORRUPT, "MoE dispatch payload from rank %zu has "
                                "%llu bytes, less than its %zu-byte header", p,
                                (unsigned long long)in[p].bytes, pre);
    LSHMOE_CHECK(lshmoe_buf_reserve(&d->host, R * pre + 1));
    /* first the exchange, bounded: a copy to pageable memory blocks */
    LSHMOE_CHECK(lshmoe_dev_wait(&d->mem, stream, "MoE dispatch: exchange"));
    for (size_t p = 0; p < R; p++)
        LSHMOE_CHECK(ops->copy((char *)d->host.ptr + p * pre, rp[p], pre, stream));
    LSHMOE_CHECK(lshmoe_dev_wait(&d->mem, stream, "MoE dispatch: prefix read-back"));
    h->stats.time_exchange_s += lshmoe_now() - t0;
    for (size_t p = 0; p < R; p++)
        LSHMOE_CHECK(parse_prefix(m, h, (int)p, (const char *)d->host.ptr + p * pre,
                                  in[p].bytes));
    LSHMOE_CHECK(read_sizes(m, h, rp, stream));
    LSHMOE_CHECK(dev_batches(m, h, d->host.ptr, stream));
    for (size_t p = 0; p < R; p++) {
        const char *src = rp[p] + pre;
        for (size_t j = 0; j < L; j++) {
            size_t n = h->recv_rows[p * L + j];
            char *dst = (char *)d->bin.ptr + moe_batch_row(m, h, (int)p, (int)j) * m->tb;
            LSHMOE_CHECK(ops->copy(dst, src, n * m->tb, stream));
            src += n * m->tb;
        }
    }
    return LSHMOE_OK;
}

lshmoe_status_t moe_dev_dispatch(lshmoe_moe_t *m, lshmoe_moe_handle_t *h, const void *x,
                                 void *stream)
{
    const lshmoe_kn_dev_ops_t *ops = lshmoe_kn_dev_ops(LSHMOE_KN_MEM_CUDA);
    stream = stream != NULL ? stream : ops->default_stream;
    double t0 = lshmoe_now();
    lshmoe_status_t local = dev_state(m, h, stream);
    if (local == LSHMOE_OK)
        local = upload_layout(m, h, stream);
    if (local == LSHMOE_OK && m->hasher != NULL) {
        local = cluster_on_host(m, h, x, stream); /* sets the statistics */
    } else if (local == LSHMOE_OK) {
        raw_rows(m, h);
        local = build_dispatch(m, h, x, stream);
        h->stats.rows_sent = h->nrows;
        h->stats.centroid_rel_error = 0.0;
        h->stats.bytes_remote_plain = h->stats.bytes_remote_dispatch = 0;
        for (int p = 0; p < m->nranks; p++)
            if (p != m->rank) {
                h->stats.bytes_remote_plain += h->per_rank[p] * m->tb;
                h->stats.bytes_remote_dispatch += h->send_bytes[p];
            }
        h->stats.time_cluster_s += lshmoe_now() - t0;
    }
    if (local == LSHMOE_OK)
        local = upload_rows(m, h, x, stream);
    moe_meta_t *in = NULL;
    LSHMOE_CHECK(moe_meta_round(m, MOE_OP_DISPATCH, h->seq, local,
                                local == LSHMOE_OK ? h->send_bytes : NULL, &in));
    return dev_receive(m, h, in, stream);
}

void moe_dev_free(lshmoe_moe_handle_t *h)
{
    struct moe_dev *d = h->dev;
    if (d == NULL)
        return;
    /* Queued work may still use the memory: wait for it, bounded, without
     * aborting the transport (which may be gone); memory that work still
     * holds after the timeout is left allocated, never freed under it. */
    d->mem.tl_ops = NULL;
    d->mem.tl = NULL;
    int idle = d->mem.ops == NULL || d->stream == NULL ||
               lshmoe_dev_wait(&d->mem, d->stream, "MoE handle destruction") == LSHMOE_OK;
    lshmoe_dev_buf_t *bufs[] = {&d->ent_tok, &d->slot_row, &d->gate, &d->send, &d->recv,
                                &d->junk,    &d->bin,      &d->bout, &d->bsize, &d->rows,
                                &d->staged,  &d->crows,    &d->ent_row, &d->ent_coef};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0] && idle; i++)
        lshmoe_dev_buf_release(&d->mem, bufs[i], d->stream);
    lshmoe_buf_free(&d->host);
    lshmoe_buf_free(&d->hx);
    lshmoe_buf_free(&d->hsizes);
    free(d->size_off);
    free(d->size_cnt);
    free(d);
    h->dev = NULL;
}
