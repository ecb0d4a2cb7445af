/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Sender side of dispatch: the tokens routed to each destination expert are
 * staged, hashed and grouped (the paper's choice: per destination expert,
 * after gating), and each group's centroid is written straight into the
 * payload for the expert's rank. An expert's tokens travel one by one
 * instead (raw: groups of one) when there are fewer than min_tokens of
 * them, when grouping would save less than min_ratio, or when the centroid
 * error exceeds LSHMOE_MAX_ERROR; tokens with NaN/Inf always form groups of
 * one (the kernels give them a key of their own). Each expert's rows then
 * travel in the row format the codec asks for (moe_rows.c); the owner
 * keeps them as the expert decodes them, in h->crows.
 */
#include <math.h>
#include <string.h>

#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"
#include "lshmoe/common/timer.h"
#include "lshmoe/moe_int.h"

/* Payload regions sized for the worst case (every entry raw), so that each
 * expert's rows can be written in place as soon as they are known. */
static lshmoe_status_t reserve_payloads(const lshmoe_moe_t *m, lshmoe_moe_handle_t *h)
{
    size_t off = 0;
    for (int p = 0; p < m->nranks; p++) {
        size_t nl = (size_t)(m->rank_off[p + 1] - m->rank_off[p]);
        size_t ne = h->ent_off[m->rank_off[p + 1]] - h->ent_off[m->rank_off[p]];
        h->prefix[p] = moe_prefix_bytes(nl);
        h->send_off[p] = off;
        /* keep every payload 8-byte aligned */
        off += (h->prefix[p] + ne * (m->tb + sizeof(uint32_t)) + 7u) & ~(size_t)7u;
    }
    return lshmoe_buf_reserve(&h->send, off + 1);
}

/* Bucket keys of every entry. Without a pre-hash hook the entries of one
 * token are copies of it, so each token is hashed once. */
static lshmoe_status_t hash_entries(const lshmoe_moe_t *m, lshmoe_moe_handle_t *h,
                                    const void *x, size_t max_ne)
{
    size_t n = h->nent, T = h->ntok;
    size_t ws = lshmoe_kn_hash_ws_size(m->hasher);
    size_t gws = lshmoe_kn_group_ws_size(max_ne);
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->work, (ws > gws ? ws : gws) + 64));
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->keys, (n + T + 1) * sizeof(uint64_t)));
    uint64_t *keys = h->keys.ptr, *tok_keys = keys + n;
    size_t nonfinite;
    if (m->token_fn != NULL) {
        lshmoe_kn_hash(m->hasher, h->staged.ptr, m->dtype, n, keys, h->work.ptr, &nonfinite);
        return LSHMOE_OK;
    }
    lshmoe_kn_hash(m->hasher, x, m->dtype, T, tok_keys, h->work.ptr, &nonfinite);
    for (size_t i = 0; i < n; i++)
        keys[i] = tok_keys[h->ent_slot[i] / (size_t)m->topk];
    return LSHMOE_OK;
}

/* Squared error of the n entries' centroids and squared norm of the
 * entries (finite ones; groups of one have no error). */
static void centroid_error(const lshmoe_moe_t *m, const char *tokens, const char *rows,
                           const uint32_t *cluster_of, const uint32_t *sizes, size_t n,
                           int with_error, float *xf, float *cf, double *num, double *den)
{
    size_t H = m->hidden;
    for (size_t i = 0; i < n; i++) {
        lshmoe_row_to_f32(tokens + i * m->tb, m->dtype, H, xf);
        double nx = 0.0, ne = 0.0;
        for (size_t d = 0; d < H; d++)
            nx += (double)xf[d] * xf[d];
        if (!isfinite(nx))
            continue;
        if (with_error && sizes[cluster_of[i]] > 1) {
            lshmoe_row_to_f32(rows + (size_t)cluster_of[i] * m->tb, m->dtype, H, cf);
            for (size_t d = 0; d < H; d++)
                ne += ((double)xf[d] - cf[d]) * ((double)xf[d] - cf[d]);
        }
        *num += ne;
        *den += nx;
    }
}

/* Groups one expert's n entries (starting at entry a) and writes its rows
 * at `dst`; returns the number of rows. */
static size_t group_expert(const lshmoe_moe_t *m, lshmoe_moe_handle_t *h, size_t a, size_t n,
                           char *dst, uint32_t *sizes)
{
    const char *tok = (const char *)h->staged.ptr + a * m->tb;
    uint32_t *cl = h->cluster_of + a;
    float *xf = h->fscratch.ptr, *cf = xf + m->hidden, *acc = cf + m->hidden;
    size_t nc = n;
    int grouped = 0;
    double en = 0.0, ed = -1.0; /* ed < 0: token norms not summed yet */
    if (m->hasher != NULL && n >= (size_t)m->ctx->cfg.min_tokens && n >= 2) {
        lshmoe_kn_group((const uint64_t *)h->keys.ptr + a, n, cl, &nc, h->work.ptr);
        grouped = (double)n >= m->ctx->cfg.min_ratio * (double)nc;
    }
    if (grouped) {
        lshmoe_kn_centroids(tok, m->dtype, m->hidden, n, cl, nc, dst, sizes, acc);
        ed = 0.0;
        centroid_error(m, tok, dst, cl, sizes, n, 1, xf, cf, &en, &ed);
        grouped = !(ed > 0.0 && sqrt(en / ed) > m->max_error);
        if (grouped) {
            h->stats.experts_compressed++;
            return nc;
        }
    }
    for (size_t i = 0; i < n; i++) {
        cl[i] = (uint32_t)i;
        sizes[i] = 1;
    }
    memcpy(dst, tok, n * m->tb);
    if (n > 0)
        h->stats.experts_raw++;
    return n;
}

/* Codes the nc rows of the expert at pos (h->crows from row r) into the
 * payload at `w` under the layer's row format; returns the format and
 * adds the rows' bytes to *w. */
static int code_expert(const lshmoe_moe_t *m, lshmoe_moe_handle_t *h, int pos, size_t r,
                       size_t nc, char **w, double *num, double *den)
{
    size_t a = h->ent_off[pos], n = h->ent_off[pos + 1] - a;
    char *rows = (char *)h->crows.ptr + r * m->tb;
    int fmt = moe_rows_code(m, m->row_fmt, rows, nc, (const char *)h->staged.ptr + a * m->tb,
                            n, h->cluster_of + a, (uint8_t *)*w, h->qdec.ptr,
                            h->fscratch.ptr, num, den);
    *w += nc * moe_row_bytes(m, fmt);
    return fmt;
}

/* Copies each entry's token row into h->staged and runs the pre-hash hook. */
static lshmoe_status_t stage(const lshmoe_moe_t *m, lshmoe_moe_handle_t *h, const char *x)
{
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->staged, h->nent * m->tb + 1));
    char *st = h->staged.ptr;
    for (size_t i = 0; i < h->nent; i++)
        memcpy(st + i * m->tb, x + (h->ent_slot[i] / (size_t)m->topk) * m->tb, m->tb);
    if (m->token_fn == NULL)
        return LSHMOE_OK;
    for (int pos = 0; pos < m->nexp; pos++) {
        size_t a = h->ent_off[pos], n = h->ent_off[pos + 1] - a;
        if (n > 0 && m->token_fn(LSHMOE_MOE_HOOK_PRE_HASH, m->order[pos], st + a * m->tb, n,
                                 m->token_user) != 0)
            return lshmoe_error(LSHMOE_ERR_CALLBACK, "the PRE_HASH token hook failed for "
                                "expert %d", m->order[pos]);
    }
    return LSHMOE_OK;
}

lshmoe_status_t moe_cluster(lshmoe_moe_t *m, lshmoe_moe_handle_t *h, const void *x)
{
    double t0 = lshmoe_now();
    size_t max_ne = 1;
    for (int pos = 0; pos < m->nexp; pos++)
        if (h->ent_off[pos + 1] - h->ent_off[pos] > max_ne)
            max_ne = h->ent_off[pos + 1] - h->ent_off[pos];
    LSHMOE_CHECK(stage(m, h, x));
    LSHMOE_CHECK(reserve_payloads(m, h));
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->fscratch, (max_ne + 2) * m->hidden * sizeof(float)));
    if (m->hasher != NULL)
        LSHMOE_CHECK(hash_entries(m, h, x, max_ne));

    LSHMOE_CHECK(lshmoe_buf_reserve(&h->crows, h->nent * m->tb + 1));
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->qdec, max_ne * m->tb + 1));
    double num = 0.0, den = 0.0;
    h->stats.experts_compressed = h->stats.experts_raw = 0;
    h->row_off[0] = 0;
    for (int p = 0; p < m->nranks; p++) {
        char *base = (char *)h->send.ptr + h->send_off[p];
        char *w = base + h->prefix[p];
        size_t r0 = h->row_off[m->rank_off[p]];
        size_t nl = (size_t)(m->rank_off[p + 1] - m->rank_off[p]);
        h->peer_row_off[p] = r0;
        memset(base, 0, h->prefix[p]); /* padding included */
        for (int pos = m->rank_off[p]; pos < m->rank_off[p + 1]; pos++) {
            size_t a = h->ent_off[pos], n = h->ent_off[pos + 1] - a;
            size_t r = h->row_off[pos];
            size_t nc = group_expert(m, h, a, n, (char *)h->crows.ptr + r * m->tb,
                                     h->row_size + r);
            h->row_off[pos + 1] = r + nc;
            size_t j = (size_t)(pos - m->rank_off[p]);
            uint32_t c32 = (uint32_t)nc | (nc == n ? MOE_ROWS_RAW : 0u);
            memcpy(base + j * sizeof c32, &c32, sizeof c32);
            uint8_t fmt = (uint8_t)code_expert(m, h, pos, r, nc, &w, &num, &den);
            memcpy(base + nl * sizeof c32 + j, &fmt, 1);
        }
        /* group sizes of the grouped experts only: raw rows are all 1 */
        char *sizes = w;
        for (int pos = m->rank_off[p]; pos < m->rank_off[p + 1]; pos++) {
            size_t r = h->row_off[pos], nc = h->row_off[pos + 1] - r;
            if (nc == h->ent_off[pos + 1] - h->ent_off[pos])
                continue;
            memcpy(sizes, h->row_size + r, nc * sizeof(uint32_t));
            sizes += nc * sizeof(uint32_t);
        }
        h->send_bytes[p] = (size_t)(sizes - base);
    }
    h->nrows = h->row_off[m->nexp];
    h->peer_row_off[m->nranks] = h->nrows;
    h->stats.rows_sent = h->nrows;
    h->stats.centroid_rel_error = den > 0.0 ? sqrt(num / den) : 0.0;
    h->stats.bytes_remote_plain = 0;
    h->stats.bytes_remote_dispatch = 0;
    for (int p = 0; p < m->nranks; p++)
        if (p != m->rank) {
            h->stats.bytes_remote_plain += h->per_rank[p] * m->tb;
            h->stats.bytes_remote_dispatch += h->send_bytes[p];
        }
    h->stats.time_cluster_s += lshmoe_now() - t0;
    return LSHMOE_OK;
}

const void *moe_centroid_base(const lshmoe_moe_t *m, const lshmoe_moe_handle_t *h, int pos)
{
    return (const char *)h->crows.ptr + h->row_off[pos] * m->tb;
}
