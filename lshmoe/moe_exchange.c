/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The two rounds every MoE collective is made of, and the expert side's
 * copies between batches and per-peer payloads.
 *
 * As in lshmoe_alltoallv, the metadata round carries every rank's status to
 * every rank, so a failure anywhere makes all ranks skip the data round
 * together (nobody waits for a rank that gave up). Disagreements a receiver
 * can only see in the metadata (another collective, another dispatch,
 * another size) do not stop the data round: the sender cannot know of them,
 * so the receiver takes the bytes into scratch and fails afterwards, naming
 * the peer.
 */
#include <string.h>

#include "lshmoe/common/error.h"
#include "lshmoe/common/timer.h"
#include "lshmoe/moe_int.h"

lshmoe_status_t moe_meta_round(lshmoe_moe_t *moe, moe_op_t op, uint64_t seq,
                               lshmoe_status_t local, const size_t *send_bytes,
                               moe_meta_t **meta_in_p)
{
    size_t R = (size_t)moe->nranks;
    /* Without its scratch this rank cannot even tell the others it failed. */
    LSHMOE_CHECK(lshmoe_buf_reserve(&moe->meta, 2 * R * sizeof(moe_meta_t)));
    moe_meta_t *out = moe->meta.ptr, *in = out + R;
    for (size_t p = 0; p < R; p++) {
        out[p] = lshmoe_meta_header((lshmoe_coll_t)op, seq, moe->dtype, moe->hidden, local);
        out[p].bytes = local == LSHMOE_OK ? send_bytes[p] : 0;
    }
    const lshmoe_ctx_t *ctx = moe->ctx;
    LSHMOE_CHECK(ctx->tl_ops->alltoall(ctx->tl, out, sizeof *out, in));
    if (local != LSHMOE_OK)
        return local;
    /* Another collective, another dispatch, another layer's dtype or
     * hidden: every rank sees it in the headers and fails here. */
    LSHMOE_CHECK(lshmoe_meta_check(in, (int)R, 1));
    *meta_in_p = in;
    return LSHMOE_OK;
}

/* The data round on host (ws NULL) or device buffers (on `stream`, junk
 * in `dev_junk` of `ws`). */
static lshmoe_status_t data_round(lshmoe_moe_t *moe, moe_op_t op, uint64_t seq,
                                  const moe_meta_t *meta_in, const void *const *send_ptrs,
                                  const size_t *send_bytes, void *const *recv_ptrs,
                                  const size_t *recv_expect, void *stream,
                                  lshmoe_dev_ws_t *ws, lshmoe_dev_buf_t *dev_junk)
{
    size_t R = (size_t)moe->nranks;
    LSHMOE_CHECK(lshmoe_buf_reserve(&moe->ptrs, 2 * R * sizeof(void *)));
    void **rptr = moe->ptrs.ptr;
    size_t *rbytes = (size_t *)(rptr + R);
    int bad = -1;
    size_t junk = 0;
    for (size_t p = 0; p < R; p++) {
        rptr[p] = recv_ptrs[p];
        rbytes[p] = meta_in[p].bytes;
        int agrees = meta_in[p].coll == op && meta_in[p].seq == seq &&
                     (recv_expect == NULL || meta_in[p].bytes == recv_expect[p]);
        if (!agrees) {
            if (bad < 0)
                bad = (int)p;
            rptr[p] = NULL; /* placed in scratch below */
            junk += (meta_in[p].bytes + 63u) & ~(size_t)63u;
        }
    }
    if (bad >= 0) {
        /* one slice per disagreeing peer: receives must not overlap */
        char *base;
        if (ws != NULL) {
            LSHMOE_CHECK(lshmoe_dev_reserve(ws, dev_junk, junk + 1, stream));
            base = dev_junk->ptr;
        } else {
            LSHMOE_CHECK(lshmoe_buf_reserve(&moe->junk, junk + 1));
            base = moe->junk.ptr;
        }
        size_t off = 0;
        for (size_t p = 0; p < R; p++)
            if (rptr[p] == NULL) {
                rptr[p] = base + off;
                off += (meta_in[p].bytes + 63u) & ~(size_t)63u;
            }
    }
    const lshmoe_ctx_t *ctx = moe->ctx;
    LSHMOE_CHECK(ctx->tl_ops->alltoallv(ctx->tl, send_ptrs, send_bytes,
                                        (void *const *)rptr, rbytes, stream));
    if (bad < 0)
        return LSHMOE_OK;
    const moe_meta_t *m = &meta_in[bad];
    if (m->coll != op || m->seq != seq)
        return lshmoe_error(LSHMOE_ERR_MISMATCH, "rank %d is in the %s of dispatch #%llu "
                            "while rank %d is in the %s of dispatch #%llu: every rank must "
                            "pass the handle of the same dispatch", bad, moe_op_name(m->coll),
                            (unsigned long long)m->seq, moe->rank, moe_op_name(op),
                            (unsigned long long)seq);
    return lshmoe_error(LSHMOE_ERR_MISMATCH, "rank %d sends %llu bytes in this %s, rank %d "
                        "expects %zu", bad, (unsigned long long)m->bytes, moe_op_name(op),
                        moe->rank, recv_expect[bad]);
}

size_t moe_round_layout(size_t nranks, const void *send_base, const size_t *send_off,
                        const moe_meta_t *meta_in, size_t align, const void **send_ptrs,
                        size_t *recv_off)
{
    size_t total = 0;
    for (size_t p = 0; p < nranks; p++) {
        send_ptrs[p] = (const char *)send_base + send_off[p];
        recv_off[p] = total;
        total += (size_t)((meta_in[p].bytes + (align - 1)) & ~(uint64_t)(align - 1));
    }
    return total;
}

lshmoe_status_t moe_data_round(lshmoe_moe_t *moe, moe_op_t op, uint64_t seq,
                               const moe_meta_t *meta_in, const void *const *send_ptrs,
                               const size_t *send_bytes, void *const *recv_ptrs,
                               const size_t *recv_expect)
{
    return data_round(moe, op, seq, meta_in, send_ptrs, send_bytes, recv_ptrs, recv_expect,
                      NULL, NULL, NULL);
}

lshmoe_status_t moe_data_round_dev(lshmoe_moe_t *moe, moe_op_t op, uint64_t seq,
                                   const moe_meta_t *meta_in, const void *const *send_ptrs,
                                   const size_t *send_bytes, void *const *recv_ptrs,
                                   const size_t *recv_expect, void *stream,
                                   lshmoe_dev_ws_t *ws, lshmoe_dev_buf_t *junk)
{
    return data_round(moe, op, seq, meta_in, send_ptrs, send_bytes, recv_ptrs, recv_expect,
                      stream, ws, junk);
}

lshmoe_status_t moe_exchange(lshmoe_moe_t *moe, moe_op_t op, uint64_t seq,
                             lshmoe_status_t local, const void *const *send_ptrs,
                             const size_t *send_bytes, void *const *recv_ptrs,
                             const size_t *recv_expect)
{
    moe_meta_t *in = NULL;
    LSHMOE_CHECK(moe_meta_round(moe, op, seq, local, send_bytes, &in));
    return moe_data_round(moe, op, seq, in, send_ptrs, send_bytes, recv_ptrs, recv_expect);
}

size_t moe_batch_row(const lshmoe_moe_t *moe, const lshmoe_moe_handle_t *h, int p, int j)
{
    size_t r = h->batch_off[j];
    for (int q = 0; q < p; q++)
        r += h->recv_rows[(size_t)q * (size_t)moe->nlocal + (size_t)j];
    return r;
}

void moe_batch_gather(const lshmoe_moe_t *moe, const lshmoe_moe_handle_t *h,
                      const void *batch, int p, void *peer_rows)
{
    char *dst = peer_rows;
    for (int j = 0; j < moe->nlocal; j++) {
        size_t n = h->recv_rows[(size_t)p * (size_t)moe->nlocal + (size_t)j];
        if (n == 0)
            continue;
        memcpy(dst, (const char *)batch + moe_batch_row(moe, h, p, j) * moe->tb, n * moe->tb);
        dst += n * moe->tb;
    }
}

void moe_batch_scatter(const lshmoe_moe_t *moe, const lshmoe_moe_handle_t *h,
                       const void *peer_rows, int p, void *batch)
{
    const char *src = peer_rows;
    for (int j = 0; j < moe->nlocal; j++) {
        size_t n = h->recv_rows[(size_t)p * (size_t)moe->nlocal + (size_t)j];
        if (n == 0)
            continue;
        memcpy((char *)batch + moe_batch_row(moe, h, p, j) * moe->tb, src, n * moe->tb);
        src += n * moe->tb;
    }
}

/* Per-peer send/recv pointers and sizes (the layer's `ptrs` buffer is
 * the data round's own). */
typedef struct peer_io {
    const void **sp;
    size_t      *sb;
    void       **rp;
    size_t      *rb;
} peer_io_t;

static lshmoe_status_t peer_io(size_t R, lshmoe_buf_t *buf, peer_io_t *io)
{
    LSHMOE_CHECK(lshmoe_buf_reserve(buf, 4 * R * sizeof(void *)));
    io->sp = buf->ptr;
    io->sb = (size_t *)(io->sp + R);
    io->rp = (void **)(io->sb + R);
    io->rb = (size_t *)(io->rp + R);
    return LSHMOE_OK;
}

lshmoe_status_t moe_fail_round(lshmoe_moe_t *moe, moe_op_t op, lshmoe_status_t local)
{
    moe_meta_t *in = NULL;
    return moe_meta_round(moe, op, 0, local, NULL, &in);
}

/*
 * Rows between the owners' h->rows (dispatch row order) and the expert
 * side's batch buffers, staged per peer in h->recv: from_batch (expert
 * side -> owners: combine, dispatch backward) or to_batch (owners ->
 * expert side: combine backward); the other is NULL.
 */
static lshmoe_status_t move_rows(lshmoe_moe_t *moe, lshmoe_moe_handle_t *h, moe_op_t op,
                                 const void *from_batch, void *to_batch)
{
    size_t R = (size_t)moe->nranks;
    int to_owner = from_batch != NULL;
    peer_io_t io;
    lshmoe_status_t local = peer_io(R, &h->work, &io);
    if (local == LSHMOE_OK)
        local = lshmoe_buf_reserve(&h->recv, h->nbrows * moe->tb + 1);
    if (local == LSHMOE_OK)
        local = lshmoe_buf_reserve(&h->rows, h->nrows * moe->tb + 1);
    if (local != LSHMOE_OK)
        return moe_fail_round(moe, op, local);
    for (size_t p = 0; p < R; p++) {
        char *stage = (char *)h->recv.ptr + h->peer_brow_off[p] * moe->tb;
        size_t stage_bytes = (h->peer_brow_off[p + 1] - h->peer_brow_off[p]) * moe->tb;
        char *rows = (char *)h->rows.ptr + h->peer_row_off[p] * moe->tb;
        size_t rows_bytes = (h->peer_row_off[p + 1] - h->peer_row_off[p]) * moe->tb;
        if (to_owner)
            moe_batch_gather(moe, h, from_batch, (int)p, stage);
        io.sp[p] = to_owner ? stage : rows;
        io.sb[p] = to_owner ? stage_bytes : rows_bytes;
        io.rp[p] = to_owner ? rows : stage;
        io.rb[p] = to_owner ? rows_bytes : stage_bytes;
    }
    double t0 = lshmoe_now();
    lshmoe_status_t st = moe_exchange(moe, op, h->seq, LSHMOE_OK, io.sp, io.sb, io.rp, io.rb);
    h->stats.time_exchange_s += lshmoe_now() - t0;
    if (st != LSHMOE_OK || to_owner)
        return st;
    for (size_t p = 0; p < R; p++)
        moe_batch_scatter(moe, h, io.rp[p], (int)p, to_batch);
    return LSHMOE_OK;
}

lshmoe_status_t moe_return_rows(lshmoe_moe_t *moe, lshmoe_moe_handle_t *h, moe_op_t op,
                                const void *batch)
{
    if (op == MOE_OP_COMBINE) /* outputs travel in the row formats */
        return moe_return_outputs(moe, h, batch);
    return move_rows(moe, h, op, batch, NULL);
}

lshmoe_status_t moe_send_rows(lshmoe_moe_t *moe, lshmoe_moe_handle_t *h, moe_op_t op,
                              void *batch)
{
    return move_rows(moe, h, op, NULL, batch);
}
