/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Combine's exchange with coded rows: the expert side codes each (peer,
 * local expert) block of outputs in the layer's row format (moe_rows.c;
 * under the budget, the fewest bytes whose error over the block is within
 * max_error, measured against the exact outputs it holds), one metadata
 * round announces the sizes, and each owner validates and decodes the
 * rows into h->rows, where compensation reads them.
 *
 * Payload per peer: u8 row format per local expert of the sender (padded
 * to 8), then each expert's rows in its format, in dispatch row order.
 */
#include <math.h>
#include <string.h>

#include "kernels/common/quant_math.h"
#include "lshmoe/common/error.h"
#include "lshmoe/common/timer.h"
#include "lshmoe/moe_int.h"

/* Expert side: codes the payload of every peer into h->cwire; off[p] and
 * bytes[p] locate it. */
static lshmoe_status_t code_outputs(lshmoe_moe_t *m, lshmoe_moe_handle_t *h, const char *batch,
                                    size_t *off, size_t *bytes)
{
    size_t L = (size_t)m->nlocal, R = (size_t)m->nranks, pre = moe_fmt_prefix_bytes(L);
    size_t cap = 0, max_blk = 1;
    for (size_t p = 0; p < R; p++) {
        cap += pre + (h->peer_brow_off[p + 1] - h->peer_brow_off[p]) * m->tb;
        for (size_t j = 0; j < L; j++)
            if (h->recv_rows[p * L + j] > max_blk)
                max_blk = h->recv_rows[p * L + j];
    }
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->cwire, cap + 1));
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->qdec, 2 * max_blk * m->tb + 1));
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->fscratch, 2 * m->hidden * sizeof(float) + 64));
    char *copy = h->qdec.ptr, *dec = copy + max_blk * m->tb;
    double num = 0.0, den = 0.0;
    uint64_t remote = 0, plain = 0;
    size_t o = 0;
    for (size_t p = 0; p < R; p++) {
        char *base = (char *)h->cwire.ptr + o, *w = base + pre;
        memset(base, 0, pre);
        for (size_t j = 0; j < L; j++) {
            size_t n = h->recv_rows[p * L + j];
            /* the outputs the expert wrote stay as they are: code a copy */
            memcpy(copy, batch + moe_batch_row(m, h, (int)p, (int)j) * m->tb, n * m->tb);
            int fmt = moe_rows_code(m, m->row_fmt, copy, n, batch + moe_batch_row(m, h,
                                    (int)p, (int)j) * m->tb, n, NULL, (uint8_t *)w, dec,
                                    h->fscratch.ptr, &num, &den);
            base[j] = (char)fmt;
            w += n * moe_row_bytes(m, fmt);
        }
        off[p] = o;
        bytes[p] = (size_t)(w - base);
        o += (bytes[p] + 7u) & ~(size_t)7u;
        if ((int)p != m->rank) {
            remote += bytes[p];
            plain += (h->peer_brow_off[p + 1] - h->peer_brow_off[p]) * m->tb;
        }
    }
    h->stats.bytes_remote_combine = remote;
    h->stats.bytes_remote_combine_plain = plain;
    h->stats.combine_rel_error = den > 0.0 ? sqrt(num / den) : 0.0;
    return LSHMOE_OK;
}

/* Owner side: checks peer p's payload of len bytes and decodes it into
 * h->rows. */
static lshmoe_status_t decode_outputs(lshmoe_moe_t *m, lshmoe_moe_handle_t *h, int p,
                                      const char *buf, size_t len)
{
    size_t L = (size_t)(m->rank_off[p + 1] - m->rank_off[p]), pre = moe_fmt_prefix_bytes(L);
    if (len < pre)
        return lshmoe_error(LSHMOE_ERR_CORRUPT, "MoE combine payload from rank %d has %zu "
                            "bytes, less than its %zu-byte header", p, len, pre);
    size_t need = pre;
    for (size_t j = 0; j < L; j++) {
        uint8_t fmt = (uint8_t)buf[j];
        int pos = m->rank_off[p] + (int)j;
        if (fmt >= LSHMOE_QM_COUNT)
            return lshmoe_error(LSHMOE_ERR_CORRUPT, "MoE combine payload from rank %d: "
                                "unknown row format %u", p, (unsigned)fmt);
        need += (h->row_off[pos + 1] - h->row_off[pos]) * moe_row_bytes(m, fmt);
    }
    if (need != len)
        return lshmoe_error(LSHMOE_ERR_CORRUPT, "MoE combine payload from rank %d has %zu "
                            "bytes, its rows and formats make %zu", p, len, need);
    const char *src = buf + pre;
    for (size_t j = 0; j < L; j++) {
        int pos = m->rank_off[p] + (int)j, fmt = (uint8_t)buf[j];
        size_t n = h->row_off[pos + 1] - h->row_off[pos];
        LSHMOE_CHECK(moe_rows_decode(m, fmt, (const uint8_t *)src, n,
                                     (char *)h->rows.ptr + h->row_off[pos] * m->tb,
                                     h->fscratch.ptr, p, "combine"));
        src += n * moe_row_bytes(m, fmt);
    }
    return LSHMOE_OK;
}

lshmoe_status_t moe_return_outputs(lshmoe_moe_t *moe, lshmoe_moe_handle_t *h,
                                   const void *batch)
{
    size_t R = (size_t)moe->nranks;
    lshmoe_status_t local = lshmoe_buf_reserve(&h->work, 6 * R * sizeof(void *));
    const void **sp = h->work.ptr;
    void **rp = (void **)(sp + R);
    size_t *sb = (size_t *)(rp + R), *off = sb + R, *roff = off + R;
    if (local == LSHMOE_OK)
        local = code_outputs(moe, h, batch, off, sb);
    if (local == LSHMOE_OK)
        local = lshmoe_buf_reserve(&h->rows, h->nrows * moe->tb + 1);
    moe_meta_t *in = NULL;
    LSHMOE_CHECK(moe_meta_round(moe, MOE_OP_COMBINE, h->seq, local, sb, &in));
    /* receive what each peer announced; decode_outputs checks it */
    size_t total = moe_round_layout(R, h->cwire.ptr, off, in, 8, sp, roff);
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->recv, total + 1));
    for (size_t p = 0; p < R; p++)
        rp[p] = (char *)h->recv.ptr + roff[p];
    double t0 = lshmoe_now();
    lshmoe_status_t st = moe_data_round(moe, MOE_OP_COMBINE, h->seq, in, sp, sb, rp, NULL);
    h->stats.time_exchange_s += lshmoe_now() - t0;
    for (size_t p = 0; st == LSHMOE_OK && p < R; p++)
        st = decode_outputs(moe, h, (int)p, rp[p], in[p].bytes);
    return st;
}
