/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The segment codec on device memory (codec_device.h). The encoder makes
 * the decisions of codec_encode.c in the same order, from the same values:
 * the probe's estimate from the keys of the same sampled tokens, the
 * cluster count, the guard's error; only where those values live differs.
 * So it queues, for every segment at once, hashing, grouping, centroids
 * (straight into the segment's rows), the guard's sums and the key sample;
 * reads them back in one copy (the one host wait of encoding: the sizes of
 * the segments must be known on the host to size the exchange); then
 * queues each segment's index, coded residuals, padding, header and
 * checksum. The fixed row formats are codec_device_rows.c; segments with
 * NaN/Inf tokens come back here, as on the CPU.
 */
#include <stdio.h>
#include <string.h>

#include "kernels/common/lsh_math.h"
#include "kernels/common/quant_math.h"
#include "lshmoe/codec_device.h"
#include "lshmoe/codec_device_int.h"
#include "lshmoe/codec_internal.h"
#include "lshmoe/dev_wait.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"

/* Per segment in the read-back area (encode): the cluster count, the
 * guard's two sums, the probe's keys. */
#define RB_NCLUSTERS 0
#define RB_SUMS      8
#define RB_KEYS      32

lshmoe_status_t lshmoe_codec_dev_supported(const lshmoe_codec_t *codec)
{
    char name[32];
    if (codec->params.mode != LSHMOE_CODEC_LSH && lshmoe_codec_dev_rows_fmt(codec) < 0) {
        int L = -1, refine = 0, fmt = 0;
        if (codec->params.mode == LSHMOE_CODEC_BUDGET ||
            codec->params.mode == LSHMOE_CODEC_BUDGET_ROWS)
            snprintf(name, sizeof name, "budget");
        else {
            lshmoe_codec_mode_encoding(codec->params.mode, &L, &refine, &fmt);
            lshmoe_codec_choice_name(lshmoe_codec_choice_id(L < 0 ? 1 : L, refine, fmt), name,
                                     sizeof name);
        }
        return lshmoe_error(LSHMOE_ERR_UNSUPPORTED,
                            "codec mode %d (%s) does not run on device buffers yet: only "
                            "lsh and the row formats without clustering (native, fp8, "
                            "int8, int4, int4e, int2) do; LSH with coded or refined "
                            "centroids and the budget codecs take host buffers",
                            codec->params.mode, name);
    }
    return LSHMOE_OK;
}

static uint8_t *at(void *base, size_t off)
{
    return (uint8_t *)base + off;
}

enc_job_t lshmoe_codec_dev_job(lshmoe_codec_t *codec, const lshmoe_dev_seg_t *s,
                               lshmoe_dtype_t dtype, size_t hidden, size_t raw_len)
{
    enc_job_t j = {.codec = codec, .tokens = s->tokens, .dtype = dtype,
                   .es = lshmoe_dtype_size(dtype), .hidden = hidden, .ntokens = s->ntokens,
                   .raw_len = raw_len, .out = NULL};
    j.token_bytes = s->ntokens * hidden * j.es;
    return j;
}

/* codec_encode.c's cheap tests before hashing. */
static int may_compress(const enc_job_t *j)
{
    const lshmoe_codec_params_t *p = &j->codec->params;
    lshmoe_wire_layout_t lay;
    return p->compress && lshmoe_dtype_is_float(j->dtype) && j->ntokens > 0 &&
           j->ntokens >= p->min_tokens && (uint64_t)j->ntokens < ((uint64_t)1 << 32) &&
           lshmoe_codec_comp_pays(j, 1, &lay);
}

void lshmoe_codec_dev_header(uint8_t *hdr, uint16_t flags, const enc_job_t *j, size_t nrows,
                             uint64_t payload)
{
    lshmoe_wire_header_t h = {
        .magic = LSHMOE_WIRE_MAGIC, .version = lshmoe_wire_version_for(flags),
        .flags = flags, .dtype = (uint32_t)j->dtype, .hidden = (uint32_t)j->hidden,
        .ntokens = j->ntokens, .nrows = nrows, .payload_bytes = payload, .checksum = 0,
    };
    lshmoe_wire_header_write(&h, hdr);
}

/* Queues what the decisions need, for every segment that may compress. */
static lshmoe_status_t queue_analysis(lshmoe_dev_ws_t *ws, lshmoe_codec_t *codec,
                                      lshmoe_dtype_t dtype, size_t hidden,
                                      lshmoe_dev_seg_t *segs, size_t nsegs, void *stage,
                                      const int *tries, size_t per, void *stream)
{
    const lshmoe_kn_dev_ops_t *ops = ws->ops;
    size_t total = 0, gws = 0;
    for (size_t i = 0; i < nsegs; i++)
        if (tries[i]) {
            total += segs[i].ntokens;
            size_t g = ops->group_ws_size(segs[i].ntokens);
            gws = g > gws ? g : gws;
        }
    if (total == 0)
        return LSHMOE_OK;
    LSHMOE_CHECK(lshmoe_dev_reserve(ws, &ws->keys, total * 8, stream));
    LSHMOE_CHECK(lshmoe_dev_reserve(ws, &ws->cluster_of, total * 4, stream));
    LSHMOE_CHECK(lshmoe_dev_reserve(ws, &ws->sizes, total * 4, stream));
    LSHMOE_CHECK(lshmoe_dev_reserve(ws, &ws->starts, total * 4, stream));
    LSHMOE_CHECK(lshmoe_dev_reserve(ws, &ws->members, total * 4, stream));
    LSHMOE_CHECK(lshmoe_dev_reserve(ws, &ws->guard_ws, total * 16, stream));
    LSHMOE_CHECK(lshmoe_dev_reserve(ws, &ws->group_ws, gws, stream));
    const void *dh;
    LSHMOE_CHECK(lshmoe_dev_hasher(ws, &codec->params.lsh, hidden, stream, &dh));
    const int key_bits = lshmoe_kn_key_sort_bits(codec->params.lsh.num_hashes,
                                                 codec->params.lsh.cdim);
    size_t o = 0;
    for (size_t i = 0; i < nsegs; i++) {
        if (!tries[i])
            continue;
        lshmoe_dev_seg_t *s = &segs[i];
        size_t n = s->ntokens;
        uint64_t *keys = (uint64_t *)ws->keys.ptr + o;
        uint32_t *cl = (uint32_t *)ws->cluster_of.ptr + o, *sz = (uint32_t *)ws->sizes.ptr + o,
                 *st = (uint32_t *)ws->starts.ptr + o, *mb = (uint32_t *)ws->members.ptr + o;
        uint8_t *rb = at(ws->small.ptr, i * per);
        uint32_t *nc = (uint32_t *)(rb + RB_NCLUSTERS);
        void *rows = at(stage, s->off + LSHMOE_WIRE_HEADER_BYTES);
        LSHMOE_CHECK(ops->hash(dh, s->tokens, dtype, n, keys, stream));
        LSHMOE_CHECK(ops->group_bits(keys, n, key_bits, cl, sz, st, mb, nc, ws->group_ws.ptr,
                                     ws->group_ws.cap, stream));
        LSHMOE_CHECK(ops->centroids(s->tokens, dtype, hidden, sz, st, mb, nc, n, rows, stream));
        if (lshmoe_codec_guard_on(codec))
            LSHMOE_CHECK(ops->guard_sums(s->tokens, rows, dtype, hidden, n, cl, sz,
                                         (double *)ws->guard_ws.ptr + 2 * o,
                                         (double *)(rb + RB_SUMS), stream));
        size_t smp = lshmoe_codec_probe_sample(n);
        if (4 * smp <= n)
            LSHMOE_CHECK(ops->sample_keys(keys, n, smp, (uint64_t *)(rb + RB_KEYS), stream));
        o += n;
    }
    return LSHMOE_OK;
}

lshmoe_status_t lshmoe_codec_dev_write_raw(lshmoe_dev_ws_t *ws, const enc_job_t *j,
                                           lshmoe_dev_seg_t *s, void *stage, void *stream)
{
    const lshmoe_kn_dev_ops_t *ops = ws->ops;
    uint8_t hdr[LSHMOE_WIRE_HEADER_BYTES];
    uint8_t *seg = at(stage, s->off);
    uint64_t payload = j->raw_len - LSHMOE_WIRE_HEADER_BYTES;
    LSHMOE_CHECK(ops->copy(seg + LSHMOE_WIRE_HEADER_BYTES, s->tokens, j->token_bytes, stream));
    LSHMOE_CHECK(ops->zero(seg + LSHMOE_WIRE_HEADER_BYTES + j->token_bytes,
                           (size_t)(payload - j->token_bytes), stream));
    lshmoe_codec_dev_header(hdr, LSHMOE_WIRE_F_RAW, j, j->ntokens, payload);
    LSHMOE_CHECK(ops->seal(seg, hdr, (size_t)payload, ws->checksum_ws.ptr, stream));
    s->len = j->raw_len;
    return LSHMOE_OK;
}

lshmoe_status_t lshmoe_codec_dev_check_seg(lshmoe_dtype_t dtype, size_t hidden,
                                           const lshmoe_dev_seg_t *s, size_t i,
                                           size_t *raw_len_p)
{
    LSHMOE_CHECK(lshmoe_codec_max_bytes(dtype, hidden, s->ntokens, raw_len_p));
    if (s->cap < *raw_len_p || s->off % 8 != 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "device encode: segment %zu has "
                            "%zu bytes at offset %zu, needs %zu, 8-byte aligned", i,
                            s->cap, s->off, *raw_len_p);
    return LSHMOE_OK;
}

/* Decides one segment as codec_encode.c does and queues its bytes. */
static lshmoe_status_t write_segment(lshmoe_dev_ws_t *ws, const enc_job_t *j,
                                     lshmoe_dev_seg_t *s, int try_comp, const uint8_t *rb,
                                     const uint32_t *cluster_of, void *stage, void *stream)
{
    const lshmoe_kn_dev_ops_t *ops = ws->ops;
    lshmoe_codec_t *codec = j->codec;
    lshmoe_wire_layout_t lay;
    uint8_t hdr[LSHMOE_WIRE_HEADER_BYTES];
    uint8_t *seg = at(stage, s->off);
    size_t n = s->ntokens, nrows = 0;
    int probed_raw = 0;
    double err[3] = {0.0, 0.0, -1.0};

    if (try_comp) {
        size_t smp = lshmoe_codec_probe_sample(n);
        if (4 * smp <= n) {
            size_t est = lshmoe_codec_probe_estimate((uint64_t *)(rb + RB_KEYS), smp, n);
            probed_raw = est > 0 && !lshmoe_codec_comp_pays(j, est, &lay);
            try_comp = !probed_raw;
        }
    }
    if (try_comp) {
        uint32_t nc;
        memcpy(&nc, rb + RB_NCLUSTERS, sizeof nc);
        nrows = nc;
        try_comp = nrows > 0 && lshmoe_codec_comp_pays(j, nrows, &lay);
    }
    if (try_comp && lshmoe_codec_guard_on(codec)) {
        memcpy(err, rb + RB_SUMS, 2 * sizeof(double));
        err[2] = lshmoe_codec_centroid_error(err[0], err[1]);
        try_comp = err[2] <= codec->params.max_error;
    }
    if (try_comp) {
        uint16_t flags = lshmoe_codec_comp_flags(codec, nrows);
        uint64_t rows_end = lay.rows_off + lay.rows_bytes;
        LSHMOE_CHECK(ops->zero(seg + rows_end, (size_t)(lshmoe_pad8(rows_end) - rows_end),
                               stream));
        LSHMOE_CHECK(ops->pack_index(cluster_of, n, (flags & LSHMOE_WIRE_F_IDX32) != 0,
                                     seg + lay.idx_off, (size_t)lshmoe_pad8(lay.idx_bytes),
                                     stream));
        if (codec->params.residual_bits != 0) {
            /* against the rows as the receiver decodes them (in place) */
            uint64_t re = lay.resid_off + lay.resid_bytes;
            LSHMOE_CHECK(ops->residual_encode(j->tokens, seg + lay.rows_off, j->dtype,
                                              j->hidden, n, cluster_of,
                                              codec->params.residual_bits,
                                              seg + lay.resid_off, stream));
            LSHMOE_CHECK(ops->zero(seg + re, (size_t)(lshmoe_pad8(re) - re), stream));
        }
        lshmoe_codec_dev_header(hdr, flags, j, nrows, lay.payload_bytes);
        LSHMOE_CHECK(ops->seal(seg, hdr, (size_t)lay.payload_bytes, ws->checksum_ws.ptr,
                               stream));
        s->len = (size_t)(LSHMOE_WIRE_HEADER_BYTES + lay.payload_bytes);
    } else {
        LSHMOE_CHECK(lshmoe_codec_dev_write_raw(ws, j, s, stage, stream));
        nrows = n;
    }
    /* the statistics codec_encode.c keeps (non-finite tokens not counted) */
    lshmoe_codec_stats_t *st = &s->cs;
    st->tokens += n;
    st->rows += nrows;
    st->bytes_in += j->token_bytes;
    st->bytes_wire += s->len;
    st->segments_compressed += try_comp ? 1u : 0u;
    st->segments_raw += try_comp ? 0u : 1u;
    st->segments_probed_raw += probed_raw ? 1u : 0u;
    st->choice_segments[try_comp ? lshmoe_codec_choice_id(codec->params.lsh.num_hashes, 0, 0)
                                 : 0]++;
    if (try_comp && err[2] >= 0.0) {
        st->err_num += err[0];
        st->err_den += err[1];
    }
    st->last_error = try_comp ? err[2] : 0.0;
    return LSHMOE_OK;
}

/* The LSH path: every segment not skipped. */
static lshmoe_status_t encode_lsh(lshmoe_dev_ws_t *ws, lshmoe_codec_t *codec,
                                  lshmoe_dtype_t dtype, size_t hidden, lshmoe_dev_seg_t *segs,
                                  size_t nsegs, void *stage, void *stream)
{
    /* host_small: which segments may compress, then the read-back mirror */
    size_t smax = 0;
    for (size_t i = 0; i < nsegs; i++) {
        size_t smp = lshmoe_codec_probe_sample(segs[i].ntokens);
        smax = !segs[i].skip && smp > smax ? smp : smax;
    }
    size_t per = RB_KEYS + 8 * smax;
    size_t tb = (nsegs * sizeof(int) + 63) & ~(size_t)63;
    LSHMOE_CHECK(lshmoe_buf_reserve(&ws->host_small, tb + nsegs * per));
    LSHMOE_CHECK(lshmoe_dev_reserve(ws, &ws->small, nsegs * per + 8, stream));
    int *tries = ws->host_small.ptr;
    uint8_t *host_rb = at(ws->host_small.ptr, tb);
    for (size_t i = 0; i < nsegs; i++) {
        size_t raw_len;
        tries[i] = 0;
        if (segs[i].skip)
            continue;
        LSHMOE_CHECK(lshmoe_codec_dev_check_seg(dtype, hidden, &segs[i], i, &raw_len));
        enc_job_t j = lshmoe_codec_dev_job(codec, &segs[i], dtype, hidden, raw_len);
        const lshmoe_kn_hasher_t *h = NULL;
        if (may_compress(&j))
            LSHMOE_CHECK(lshmoe_codec_hasher(codec, hidden, &h)); /* NULL: RAW, as the CPU */
        tries[i] = h != NULL;
    }
    LSHMOE_CHECK(queue_analysis(ws, codec, dtype, hidden, segs, nsegs, stage, tries, per,
                                stream));
    LSHMOE_CHECK(lshmoe_dev_reserve(ws, &ws->checksum_ws, LSHMOE_KN_DEV_CHECKSUM_WS_BYTES,
                                    stream));
    /* The host wait of encoding: sizes decide the exchange. */
    LSHMOE_CHECK(lshmoe_dev_read_back(ws, host_rb, ws->small.ptr, nsegs * per, stream,
                                      "encode: count read-back"));
    size_t o = 0;
    for (size_t i = 0; i < nsegs; i++) {
        if (segs[i].skip)
            continue;
        size_t raw_len;
        LSHMOE_CHECK(lshmoe_codec_max_bytes(dtype, hidden, segs[i].ntokens, &raw_len));
        enc_job_t j = lshmoe_codec_dev_job(codec, &segs[i], dtype, hidden, raw_len);
        const uint32_t *cl = tries[i] ? (const uint32_t *)ws->cluster_of.ptr + o : NULL;
        LSHMOE_CHECK(write_segment(ws, &j, &segs[i], tries[i], host_rb + i * per, cl, stage,
                                   stream));
        o += tries[i] ? segs[i].ntokens : 0;
    }
    return LSHMOE_OK;
}

lshmoe_status_t lshmoe_codec_dev_encode(lshmoe_dev_ws_t *ws, lshmoe_codec_t *codec,
                                        lshmoe_dtype_t dtype, size_t hidden,
                                        lshmoe_dev_seg_t *segs, size_t nsegs, void *stage,
                                        void *stream)
{
    LSHMOE_CHECK(lshmoe_codec_dev_supported(codec));
    if (lshmoe_codec_dev_rows_fmt(codec) < 0)
        return encode_lsh(ws, codec, dtype, hidden, segs, nsegs, stage, stream);
    /* A row format; a segment with NaN/Inf tokens then takes the LSH path
     * (as on the CPU), in a second round: the others are skipped for it. */
    LSHMOE_CHECK(lshmoe_buf_reserve(&ws->host_flags, nsegs + 1));
    unsigned char *lsh = ws->host_flags.ptr;
    LSHMOE_CHECK(lshmoe_codec_dev_encode_rows(ws, codec, dtype, hidden, segs, nsegs, stage,
                                              lsh, stream));
    int any = 0;
    for (size_t i = 0; i < nsegs; i++)
        any |= lsh[i];
    if (!any)
        return LSHMOE_OK;
    for (size_t i = 0; i < nsegs; i++)
        if (!segs[i].skip && !lsh[i]) {
            segs[i].skip = 1;
            lsh[i] = 2; /* done: skipped for this round only */
        }
    lshmoe_status_t st = encode_lsh(ws, codec, dtype, hidden, segs, nsegs, stage, stream);
    for (size_t i = 0; i < nsegs; i++)
        if (lsh[i] == 2)
            segs[i].skip = 0;
    return st;
}

/* The device's view of a checked header. */
static lshmoe_kn_seg_t seg_view(const lshmoe_wire_header_t *h, const lshmoe_wire_layout_t *lay)
{
    lshmoe_kn_seg_t g;
    g.raw = (h->flags & LSHMOE_WIRE_F_RAW) != 0;
    g.idx32 = (h->flags & LSHMOE_WIRE_F_IDX32) != 0;
    g.rows_off = lay->rows_off;
    g.rows_bytes = lay->rows_bytes;
    g.idx_off = lshmoe_pad8(lay->rows_off + lay->rows_bytes);
    g.idx_bytes = g.raw ? 0 : lay->idx_bytes;
    g.payload_bytes = lay->payload_bytes;
    g.ntokens = h->ntokens;
    g.nrows = h->nrows;
    return g;
}

static lshmoe_status_t seg_fail(size_t i, lshmoe_status_t st)
{
    char msg[LSHMOE_ERRMSG_LEN];
    snprintf(msg, sizeof msg, "%s", lshmoe_error_thread_msg());
    return lshmoe_error(st, "segment %zu: %s", i, msg);
}

lshmoe_status_t lshmoe_codec_dev_decode(lshmoe_dev_ws_t *ws, lshmoe_codec_t *codec,
                                        lshmoe_dtype_t dtype, size_t hidden,
                                        lshmoe_dev_seg_t *segs, size_t nsegs,
                                        const void *stage, void *stream)
{
    const lshmoe_kn_dev_ops_t *ops = ws->ops;
    size_t hb = nsegs * LSHMOE_WIRE_HEADER_BYTES, row_bytes;
    (void)codec;
    LSHMOE_CHECK(lshmoe_mul_size(hidden, lshmoe_dtype_size(dtype), &row_bytes));
    LSHMOE_CHECK(lshmoe_dev_reserve(ws, &ws->small, hb + 4 * nsegs + 8, stream));
    LSHMOE_CHECK(lshmoe_buf_reserve(&ws->host_small, hb + 4 * nsegs + 8));
    uint8_t *hdrs = ws->host_small.ptr;
    uint32_t *bad = (uint32_t *)at(ws->small.ptr, hb);
    for (size_t i = 0; i < nsegs; i++)
        if (!segs[i].skip && segs[i].len >= LSHMOE_WIRE_HEADER_BYTES)
            LSHMOE_CHECK(ops->copy(at(ws->small.ptr, i * LSHMOE_WIRE_HEADER_BYTES),
                                   (const uint8_t *)stage + segs[i].off,
                                   LSHMOE_WIRE_HEADER_BYTES, stream));
    LSHMOE_CHECK(ops->zero(bad, 4 * nsegs, stream));
    LSHMOE_CHECK(lshmoe_dev_reserve(ws, &ws->checksum_ws, LSHMOE_KN_DEV_CHECKSUM_WS_BYTES,
                                    stream));
    /* first host wait of decoding: the headers decide the launches */
    LSHMOE_CHECK(lshmoe_dev_read_back(ws, hdrs, ws->small.ptr, hb, stream,
                                      "decode: header read-back"));
    for (size_t i = 0; i < nsegs; i++) {
        lshmoe_dev_seg_t *s = &segs[i];
        lshmoe_wire_header_t h;
        lshmoe_wire_layout_t lay;
        if (s->skip)
            continue;
        lshmoe_status_t st = lshmoe_codec_check_header(hdrs + i * LSHMOE_WIRE_HEADER_BYTES,
                                                       s->len, &h, &lay);
        /* before the checksum is known (the CPU decoder checks it first):
         * a count the caller does not expect must not size any launch */
        if (st == LSHMOE_OK)
            st = lshmoe_codec_check_expected(&h, dtype, hidden, s->ntokens);
        if (st != LSHMOE_OK)
            return seg_fail(i, st);
        lshmoe_kn_seg_t g = seg_view(&h, &lay);
        const uint8_t *seg = (const uint8_t *)stage + s->off;
        int fmt = lshmoe_wire_fmt(h.flags);
        int bits = (h.flags & LSHMOE_WIRE_F_RESID8) ? 8 : (h.flags & LSHMOE_WIRE_F_RESID4) ? 4 : 0;
        LSHMOE_CHECK(ops->check_segment(seg, &g, bad + i, ws->checksum_ws.ptr, stream));
        if (bits != 0) /* checked before the expansion, which it gates */
            LSHMOE_CHECK(ops->residual_check(seg, lay.resid_off, s->ntokens, hidden, bits,
                                             bad + i, stream));
        if (fmt == LSHMOE_QM_NATIVE) {
            LSHMOE_CHECK(ops->unpack(seg, &g, row_bytes, bad + i, s->out, stream));
            if (bits != 0)
                LSHMOE_CHECK(ops->residual_decode(seg, lay.resid_off, s->ntokens, bits, dtype,
                                                  hidden, bad + i, s->out, stream));
        } else {
            /* coded rows: checked as the CPU decoder checks them, then
             * decoded, rounded and expanded, gated on both checks */
            LSHMOE_CHECK(ops->check_rows(seg, &g, fmt, hidden, bad + i, stream));
            LSHMOE_CHECK(ops->dequant_expand(seg, &g, fmt, dtype, hidden, bad + i, s->out,
                                             stream));
        }
        s->cs.tokens += s->ntokens;
        s->cs.rows += h.nrows;
        s->cs.bytes_in += (uint64_t)s->ntokens * row_bytes;
        s->cs.bytes_wire += s->len;
        s->cs.segments_compressed += g.raw ? 0u : 1u;
        s->cs.segments_raw += g.raw ? 1u : 0u;
    }
    /* second host wait: the call reports a corrupt segment */
    uint32_t *hbad = (uint32_t *)(hdrs + hb);
    LSHMOE_CHECK(lshmoe_dev_read_back(ws, hbad, bad, 4 * nsegs, stream,
                                      "decode: validation read-back"));
    for (size_t i = 0; i < nsegs; i++) {
        uint32_t b = segs[i].skip ? 0 : hbad[i];
        if (b == 0)
            continue;
        return lshmoe_error(LSHMOE_ERR_CORRUPT, "segment %zu: wire segment: %s (nothing of it "
                            "was written)", i,
                            (b & LSHMOE_KN_SEG_BAD_CHECKSUM) ? "checksum does not match the data"
                            : (b & LSHMOE_KN_SEG_BAD_INDEX) ? "an index entry is not below the "
                                                              "row count"
                            : (b & LSHMOE_KN_SEG_BAD_ROW) ? "a coded row has a scale that is "
                                                            "not finite and >= 0, an FP8 NaN "
                                                            "code or nonzero unused code bits"
                            : (b & LSHMOE_KN_SEG_BAD_RESID) ? "a residual scale is not finite "
                                                              "and >= 0"
                                                            : "nonzero padding byte");
    }
    return LSHMOE_OK;
}
