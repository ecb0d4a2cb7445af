/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * lshmoe_moe_dispatch: the sender groups (moe_cluster.c), one metadata
 * round announces each payload's size, the payloads travel, and each
 * expert's rank validates them and lays the rows out as one batch per
 * local expert, peer by peer.
 */
#include <string.h>

#include "kernels/common/quant_math.h"
#include "lshmoe/common/error.h"
#include "lshmoe/common/timer.h"
#include "lshmoe/moe_int.h"

/* Expert j's row count and row format in a dispatch payload's prefix. */
static void prefix_entry(const char *buf, size_t L, size_t j, uint32_t *c, uint8_t *fmt)
{
    memcpy(c, buf + j * sizeof *c, sizeof *c);
    memcpy(fmt, buf + L * sizeof *c + j, 1);
}

lshmoe_status_t moe_parse_prefix(const lshmoe_moe_t *m, lshmoe_moe_handle_t *h, int p,
                                 const char *pre, size_t len, int native_only,
                                 size_t *row_bytes_p, size_t *sized_p)
{
    size_t L = (size_t)m->nlocal;
    size_t prefix = moe_prefix_bytes(L);
    if (len < prefix)
        return lshmoe_error(LSHMOE_ERR_CORRUPT, "MoE dispatch payload from rank %d has %zu "
                            "bytes, less than its %zu-byte header", p, len, prefix);
    size_t rows = 0, sized = 0, row_bytes = 0, left = len - prefix;
    for (size_t j = 0; j < L; j++) {
        uint32_t c;
        uint8_t fmt;
        prefix_entry(pre, L, j, &c, &fmt);
        size_t n = c & ~MOE_ROWS_RAW;
        if (native_only && fmt != LSHMOE_QM_NATIVE)
            return lshmoe_error(LSHMOE_ERR_CORRUPT, "MoE dispatch payload from rank %d: "
                                "local expert %zu's rows are in row format %u, and device "
                                "buffers take rows in the token dtype only", p, j,
                                (unsigned)fmt);
        if (fmt >= LSHMOE_QM_COUNT)
            return lshmoe_error(LSHMOE_ERR_CORRUPT, "MoE dispatch payload from rank %d: "
                                "unknown row format %u", p, (unsigned)fmt);
        /* n * rb could wrap for a hostile prefix (up to 65536 counts of
         * 2^31 rows): bound n by the bytes left first, then it is exact. */
        size_t rb = moe_row_bytes(m, fmt);
        if (n > left / rb)
            return lshmoe_error(LSHMOE_ERR_CORRUPT, "MoE dispatch payload from rank %d: %zu "
                                "rows announced for local expert %zu, %zu bytes received", p,
                                n, j, len);
        left -= n * rb;
        row_bytes += n * rb;
        h->recv_rows[(size_t)p * L + j] = n;
        rows += n;
        sized += (c & MOE_ROWS_RAW) ? 0 : n;
    }
    if (left / sizeof(uint32_t) < sized || left != sized * sizeof(uint32_t))
        return lshmoe_error(LSHMOE_ERR_CORRUPT, "MoE dispatch payload from rank %d: %zu rows "
                            "announced, %zu bytes received", p, rows, len);
    *row_bytes_p = row_bytes;
    *sized_p = sized;
    return LSHMOE_OK;
}

/* Checks peer p's payload (len bytes) and records its row counts. Nothing
 * in it is trusted: formats must be known, counts must add up to exactly
 * the bytes received and every group size must be at least 1 (the coded
 * rows themselves are checked as they are decoded). */
static lshmoe_status_t parse_payload(const lshmoe_moe_t *m, lshmoe_moe_handle_t *h, int p,
                                     const char *buf, size_t len)
{
    size_t row_bytes, sized;
    LSHMOE_CHECK(moe_parse_prefix(m, h, p, buf, len, 0, &row_bytes, &sized));
    const char *sizes = buf + moe_prefix_bytes((size_t)m->nlocal) + row_bytes;
    for (size_t r = 0; r < sized; r++) {
        uint32_t s;
        memcpy(&s, sizes + r * sizeof s, sizeof s);
        if (s == 0)
            return lshmoe_error(LSHMOE_ERR_CORRUPT, "MoE dispatch payload from rank %d: "
                                "a row stands for 0 tokens", p);
    }
    return LSHMOE_OK;
}

void moe_batch_offsets(const lshmoe_moe_t *m, lshmoe_moe_handle_t *h)
{
    size_t L = (size_t)m->nlocal, R = (size_t)m->nranks;
    h->peer_brow_off[0] = 0;
    for (size_t p = 0; p < R; p++) {
        size_t n = 0;
        for (size_t j = 0; j < L; j++)
            n += h->recv_rows[p * L + j];
        h->peer_brow_off[p + 1] = h->peer_brow_off[p] + n;
    }
    h->batch_off[0] = 0;
    for (size_t j = 0; j < L; j++) {
        size_t n = 0;
        for (size_t p = 0; p < R; p++)
            n += h->recv_rows[p * L + j];
        h->batch_off[j + 1] = h->batch_off[j] + n;
    }
    h->nbrows = h->batch_off[L];
}

void moe_batch_describe(const lshmoe_moe_t *m, lshmoe_moe_handle_t *h, char *bin, char *bout,
                        uint32_t *bsize, char *bgout, char *bgin)
{
    const int32_t *ids = m->order + m->rank_off[m->rank];
    for (size_t j = 0; j < (size_t)m->nlocal; j++) {
        size_t o = h->batch_off[j] * m->tb;
        h->batches[j] = (lshmoe_moe_batch_t){
            .expert = ids[j], .local = (int32_t)j,
            .rows = h->batch_off[j + 1] - h->batch_off[j],
            .in = bin + o, .out = bout + o, .cluster_size = bsize + h->batch_off[j],
            .grad_out = bgout != NULL ? bgout + o : NULL,
            .grad_in = bgin != NULL ? bgin + o : NULL};
    }
}

/* Offsets of every peer and batch, buffers, and the batch descriptors. */
static lshmoe_status_t lay_out_batches(lshmoe_moe_t *m, lshmoe_moe_handle_t *h)
{
    moe_batch_offsets(m, h);
    size_t bytes = h->nbrows * m->tb + 1;
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->bin, bytes));
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->bout, bytes));
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->bgout, bytes));
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->bgin, bytes));
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->bsize, (h->nbrows + 1) * sizeof(uint32_t)));
    moe_batch_describe(m, h, h->bin.ptr, h->bout.ptr, h->bsize.ptr, h->bgout.ptr, h->bgin.ptr);
    return LSHMOE_OK;
}

/* Decodes each peer's rows and moves them and the group sizes into the
 * batches. */
static lshmoe_status_t fill_batches(lshmoe_moe_t *m, lshmoe_moe_handle_t *h,
                                    char *const *payload)
{
    size_t L = (size_t)m->nlocal;
    size_t prefix = moe_prefix_bytes(L);
    uint32_t *bsize = h->bsize.ptr;
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->fscratch, m->hidden * sizeof(float) + 64));
    for (int p = 0; p < m->nranks; p++) {
        const char *rows = payload[p] + prefix;
        for (size_t j = 0; j < L; j++) {
            uint32_t c;
            uint8_t fmt;
            prefix_entry(payload[p], L, j, &c, &fmt);
            size_t cnt = c & ~MOE_ROWS_RAW;
            char *dst = (char *)h->bin.ptr + moe_batch_row(m, h, p, (int)j) * m->tb;
            LSHMOE_CHECK(moe_rows_decode(m, fmt, (const uint8_t *)rows, cnt, dst,
                                         h->fscratch.ptr, p, "dispatch"));
            rows += cnt * moe_row_bytes(m, fmt);
        }
        /* sizes of the grouped experts follow, in (expert, row) order */
        const char *sizes = rows;
        for (size_t j = 0; j < L; j++) {
            uint32_t c;
            uint8_t fmt;
            prefix_entry(payload[p], L, j, &c, &fmt);
            size_t cnt = c & ~MOE_ROWS_RAW;
            size_t dst = moe_batch_row(m, h, p, (int)j);
            if (c & MOE_ROWS_RAW) {
                for (size_t r = 0; r < cnt; r++)
                    bsize[dst + r] = 1;
                continue;
            }
            memcpy(bsize + dst, sizes, cnt * sizeof(uint32_t));
            sizes += cnt * sizeof(uint32_t);
        }
    }
    uint64_t slots = 0;
    for (size_t r = 0; r < h->nbrows; r++)
        slots += bsize[r];
    h->stats.rows_received = h->nbrows;
    h->stats.slots_received = slots;
    return LSHMOE_OK;
}

/* Data round with payload sizes learnt from the metadata. */
static lshmoe_status_t receive(lshmoe_moe_t *m, lshmoe_moe_handle_t *h, const moe_meta_t *in)
{
    size_t R = (size_t)m->nranks;
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->work, 3 * R * sizeof(void *)));
    const void **sp = h->work.ptr;
    char **rp = (char **)(sp + R);
    size_t *off = (size_t *)(rp + R);
    size_t total = moe_round_layout(R, h->send.ptr, h->send_off, in, 8, sp, off);
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->recv, total + 1));
    for (size_t p = 0; p < R; p++)
        rp[p] = (char *)h->recv.ptr + off[p];
    double t0 = lshmoe_now();
    lshmoe_status_t st = moe_data_round(m, MOE_OP_DISPATCH, h->seq, in, sp, h->send_bytes,
                                        (void *const *)rp, NULL);
    h->stats.time_exchange_s += lshmoe_now() - t0;
    if (st != LSHMOE_OK)
        return st;
    for (size_t p = 0; p < R; p++)
        LSHMOE_CHECK(parse_payload(m, h, (int)p, rp[p], in[p].bytes));
    LSHMOE_CHECK(lay_out_batches(m, h));
    return fill_batches(m, h, rp);
}

static lshmoe_status_t moe_dispatch_held(lshmoe_moe_t *moe, lshmoe_moe_handle_t *handle,
                                         const void *x, void *stream)
{
    /* the caller (the public wrapper below) checked the handle */
    lshmoe_error_clear();
    uint64_t seq = ++moe->seq; /* every rank counts every dispatch */
    lshmoe_status_t local = LSHMOE_OK;
    int dev = 0;
    if (handle == NULL)
        local = lshmoe_error(LSHMOE_ERR_INVALID_ARG, "dispatch without a handle (this "
                             "rank's layout failed)");
    else
        local = moe_check_call(moe, handle, MOE_ST_LAYOUT, x, "x", stream,
                               "lshmoe_moe_dispatch", &dev);
    if (local == LSHMOE_OK) {
        handle->state = MOE_ST_LAYOUT;
        handle->seq = seq;
        handle->on_dev = dev;
        handle->stats.time_exchange_s = handle->stats.time_cluster_s = 0.0;
        if (dev) { /* the same rounds, on the device (moe_device.c) */
            lshmoe_status_t st = moe_dev_dispatch(moe, handle, x, stream);
            if (st != LSHMOE_OK)
                return lshmoe_ctx_fail(moe->ctx, st);
            handle->state = MOE_ST_DISPATCHED;
            return LSHMOE_OK;
        }
        local = moe_cluster(moe, handle, x);
    }
    moe_meta_t *in = NULL;
    lshmoe_status_t st = moe_meta_round(moe, MOE_OP_DISPATCH, seq, local,
                                        local == LSHMOE_OK ? handle->send_bytes : NULL, &in);
    if (st == LSHMOE_OK)
        st = receive(moe, handle, in);
    if (st != LSHMOE_OK)
        return lshmoe_ctx_fail(moe->ctx, st);
    handle->state = MOE_ST_DISPATCHED;
    return LSHMOE_OK;
}

/* The context is claimed for the whole call (lshmoe_ctx_enter). */
lshmoe_status_t lshmoe_moe_dispatch(lshmoe_moe_t *moe, lshmoe_moe_handle_t *handle,
                                    const void *x, void *stream)
{
    if (moe == NULL || moe->magic != LSHMOE_MOE_MAGIC)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "MoE layer is NULL or invalid");
    LSHMOE_CHECK(lshmoe_ctx_enter(moe->ctx, "lshmoe_moe_dispatch"));
    lshmoe_status_t st = moe_dispatch_held(moe, handle, x, stream);
    lshmoe_ctx_leave(moe->ctx);
    return st;
}
