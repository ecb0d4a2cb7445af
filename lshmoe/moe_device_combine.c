/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * lshmoe_moe_combine on device buffers (moe_device.c has the overview):
 * the experts run on the device batches with the caller's stream, their
 * outputs go back in the host path's combine payloads (rows in the token
 * dtype), and the owner's reconstruction and gate-weighted sum run in the
 * moe_combine kernel.
 */
#include <string.h>

#include "kernels/common/quant_math.h"
#include "lshmoe/common/error.h"
#include "lshmoe/common/timer.h"
#include "lshmoe/dev_wait.h"
#include "lshmoe/moe_device.h"
#include "lshmoe/moe_int.h"

/* Expert side: each peer's combine payload (u8 NATIVE per local expert,
 * padded, then its rows of every local expert) at d->send. */
static lshmoe_status_t build_combine(lshmoe_moe_t *m, lshmoe_moe_handle_t *h, size_t *soff,
                                     size_t *sbytes, void *stream)
{
    struct moe_dev *d = h->dev;
    const lshmoe_kn_dev_ops_t *ops = d->mem.ops;
    size_t L = (size_t)m->nlocal, R = (size_t)m->nranks, pre = moe_fmt_prefix_bytes(L);
    size_t off = 0;
    uint64_t remote = 0;
    for (size_t p = 0; p < R; p++) {
        soff[p] = off;
        sbytes[p] = pre + (h->peer_brow_off[p + 1] - h->peer_brow_off[p]) * m->tb;
        off += moe_dev_round(sbytes[p]);
        remote += (int)p != m->rank ? sbytes[p] - pre : 0;
    }
    LSHMOE_CHECK(lshmoe_dev_reserve(&d->mem, &d->send, off + 1, stream));
    for (size_t p = 0; p < R; p++) {
        char *w = (char *)d->send.ptr + soff[p];
        LSHMOE_CHECK(ops->zero(w, pre, stream)); /* NATIVE is 0 */
        w += pre;
        for (size_t j = 0; j < L; j++) {
            size_t n = h->recv_rows[p * L + j];
            const char *src = (const char *)d->bout.ptr +
                              moe_batch_row(m, h, (int)p, (int)j) * m->tb;
            LSHMOE_CHECK(ops->copy(w, src, n * m->tb, stream));
            w += n * m->tb;
        }
    }
    h->stats.bytes_remote_combine = h->stats.bytes_remote_combine_plain = remote;
    h->stats.combine_rel_error = 0.0;
    return LSHMOE_OK;
}

/* Owner side: checks every peer's combine payload (sizes from the layout,
 * row formats read back: the host waits here so that a malformed payload
 * fails the call before y is written) and moves its rows to d->rows. */
static lshmoe_status_t take_outputs(lshmoe_moe_t *m, lshmoe_moe_handle_t *h,
                                    const moe_meta_t *in, char *const *rp, void *stream)
{
    struct moe_dev *d = h->dev;
    const lshmoe_kn_dev_ops_t *ops = d->mem.ops;
    size_t R = (size_t)m->nranks, hoff = 0;
    for (size_t p = 0; p < R; p++) {
        size_t L = (size_t)(m->rank_off[p + 1] - m->rank_off[p]);
        size_t need = moe_fmt_prefix_bytes(L) +
                      (h->peer_row_off[p + 1] - h->peer_row_off[p]) * m->tb;
        if (in[p].bytes != need)
            return lshmoe_error(LSHMOE_ERR_CORRUPT, "MoE combine payload from rank %zu has "
                                "%llu bytes, its rows in the token dtype make %zu", p,
                                (unsigned long long)in[p].bytes, need);
        hoff += moe_fmt_prefix_bytes(L);
    }
    LSHMOE_CHECK(lshmoe_buf_reserve(&d->host, hoff + 1));
    /* first the exchange, bounded: a copy to pageable memory blocks */
    LSHMOE_CHECK(lshmoe_dev_wait(&d->mem, stream, "MoE combine: exchange"));
    hoff = 0;
    for (size_t p = 0; p < R; p++) {
        size_t pre = moe_fmt_prefix_bytes((size_t)(m->rank_off[p + 1] - m->rank_off[p]));
        LSHMOE_CHECK(ops->copy((char *)d->host.ptr + hoff, rp[p], pre, stream));
        hoff += pre;
    }
    LSHMOE_CHECK(lshmoe_dev_wait(&d->mem, stream, "MoE combine: row format read-back"));
    hoff = 0;
    for (size_t p = 0; p < R; p++) {
        size_t L = (size_t)(m->rank_off[p + 1] - m->rank_off[p]);
        const uint8_t *fmt = (const uint8_t *)d->host.ptr + hoff;
        for (size_t j = 0; j < L; j++)
            if (fmt[j] != LSHMOE_QM_NATIVE)
                return lshmoe_error(LSHMOE_ERR_CORRUPT, "MoE combine payload from rank %zu: "
                                    "row format %u for its local expert %zu; device buffers "
                                    "take rows in the token dtype only", p,
                                    (unsigned)fmt[j], j);
        hoff += moe_fmt_prefix_bytes(L);
    }
    LSHMOE_CHECK(lshmoe_dev_reserve(&d->mem, &d->rows, h->nrows * m->tb + 1, stream));
    for (size_t p = 0; p < R; p++) {
        size_t L = (size_t)(m->rank_off[p + 1] - m->rank_off[p]);
        LSHMOE_CHECK(ops->copy((char *)d->rows.ptr + h->peer_row_off[p] * m->tb,
                               rp[p] + moe_fmt_prefix_bytes(L),
                               (h->peer_row_off[p + 1] - h->peer_row_off[p]) * m->tb, stream));
    }
    return LSHMOE_OK;
}

lshmoe_status_t moe_dev_combine(lshmoe_moe_t *m, lshmoe_moe_handle_t *h, void *y,
                                void *stream)
{
    const lshmoe_kn_dev_ops_t *ops = lshmoe_kn_dev_ops(LSHMOE_KN_MEM_CUDA);
    stream = stream != NULL ? stream : ops->default_stream;
    size_t R = (size_t)m->nranks;
    h->dev->stream = stream;
    lshmoe_status_t local = lshmoe_buf_reserve(&h->work, 5 * R * sizeof(void *));
    const void **sp = h->work.ptr;
    char **rp = (char **)(sp + R);
    size_t *sb = (size_t *)(rp + R), *soff = sb + R, *roff = soff + R;
    if (local == LSHMOE_OK)
        local = moe_run_experts(m, h, 0, stream);
    if (local == LSHMOE_OK)
        local = build_combine(m, h, soff, sb, stream);
    moe_meta_t *in = NULL;
    LSHMOE_CHECK(moe_meta_round(m, MOE_OP_COMBINE, h->seq, local, sb, &in));
    struct moe_dev *d = h->dev;
    size_t total = moe_round_layout(R, d->send.ptr, soff, in, MOE_DEV_ALIGN, sp, roff);
    LSHMOE_CHECK(lshmoe_dev_reserve(&d->mem, &d->recv, total + 1, stream));
    for (size_t p = 0; p < R; p++)
        rp[p] = (char *)d->recv.ptr + roff[p];
    double t0 = lshmoe_now();
    LSHMOE_CHECK(moe_data_round_dev(m, MOE_OP_COMBINE, h->seq, in, sp, sb, (void *const *)rp,
                                    NULL, stream, &d->mem, &d->junk));
    LSHMOE_CHECK(take_outputs(m, h, in, rp, stream));
    h->stats.time_exchange_s += lshmoe_now() - t0;
    return ops->moe_combine(d->rows.ptr, m->dtype, m->hidden, h->ntok, m->topk,
                            d->slot_row.ptr, d->gate.ptr, d->ent_row.ptr, d->ent_coef.ptr,
                            d->staged.ptr, d->crows.ptr, y, stream);
}
