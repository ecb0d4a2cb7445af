/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The fixed row-format modes (fp8, int8, int4, int4e, int2; native) on
 * device buffers: the decisions of lshmoe/codec_rd.c for a mode with one
 * candidate and no clustering, from the same values. The device codes
 * every token straight into the segment's rows and measures each row's
 * error and norm (bit for bit the CPU's), then sums them in the CPU's
 * order on one device thread; the host reads the four sums back in the one
 * wait of encoding and decides: a non-finite sum of norms sends the
 * segment down the LSH path (NaN/Inf tokens are never quantized), the
 * sampled estimate and the full measurement decide "coded" or RAW as the
 * sampled search does with one candidate.
 */
#include <math.h>
#include <string.h>

#include "kernels/common/quant_math.h"
#include "lshmoe/codec_device_int.h"
#include "lshmoe/codec_internal.h"
#include "lshmoe/codec_rd_int.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"
#include "lshmoe/dev_wait.h"

/* Read-back per segment: den, sse, sample sse, sample den (ordered_sums). */
#define RB_ROWS_BYTES (4 * sizeof(double))
/* The sampled search's stride (codec_rd_sample.c SAMPLE_TOKENS). */
#define ROWS_SAMPLE_TOKENS 32

int lshmoe_codec_dev_rows_fmt(const lshmoe_codec_t *codec)
{
    int L = -1, refine = 0, fmt = 0;
    int mode = codec->params.mode;
    if (mode == LSHMOE_CODEC_LSH || mode == LSHMOE_CODEC_BUDGET ||
        mode == LSHMOE_CODEC_BUDGET_ROWS)
        return -1;
    lshmoe_codec_mode_encoding(mode, &L, &refine, &fmt);
    return L == 0 ? fmt : -1;
}

/* The row-format segment's bytes and layout; 0 when it does not pay (the
 * candidate codec_rd.c does not list). */
static uint64_t rows_bytes(const enc_job_t *j, int fmt, lshmoe_wire_layout_t *lay)
{
    uint16_t flags = (uint16_t)(LSHMOE_WIRE_F_RAW | (fmt << LSHMOE_WIRE_FMT_SHIFT));
    if (fmt == LSHMOE_QM_NATIVE ||
        lshmoe_wire_layout(flags, j->es, j->hidden, j->ntokens, j->ntokens, lay))
        return 0;
    uint64_t len = LSHMOE_WIRE_HEADER_BYTES + lay->payload_bytes;
    if (len >= j->raw_len ||
        (double)j->token_bytes / (double)len < j->codec->params.min_ratio)
        return 0;
    return len;
}

/* codec_rd.c's try_comp: whether the rate-distortion encoder looks at the
 * segment at all (else it is RAW, NaN or not). */
static int rows_try(const enc_job_t *j)
{
    const lshmoe_codec_params_t *p = &j->codec->params;
    return p->compress && lshmoe_dtype_is_float(j->dtype) && j->ntokens > 0 &&
           j->ntokens >= p->min_tokens && (uint64_t)j->ntokens < ((uint64_t)1 << 32) &&
           p->mode != LSHMOE_CODEC_NATIVE;
}

/* The sampled search's answer for the one candidate (codec_rd_sample.c
 * lshmoe_rd_search_sample): measured when its estimate is within the
 * budget, or within LSHMOE_RD_SAMPLE_SLACK of it; accepted when the
 * measurement over every token is within the budget. Other searches
 * measure it at once. */
static int rows_fit(const lshmoe_codec_t *c, const double *sums, double limit)
{
    double b2 = c->params.max_error * c->params.max_error;
    if (c->params.search == LSHMOE_CODEC_SEARCH_SAMPLE) {
        double sse = sums[2], den = sums[3];
        double est = den > 0.0 ? sse / den : (sse > 0.0 ? INFINITY : 0.0);
        if (!(est <= b2) && !(est <= b2 * LSHMOE_RD_SAMPLE_SLACK * LSHMOE_RD_SAMPLE_SLACK))
            return 0;
    }
    return sums[1] <= limit;
}

/* Writes the decided segment (rows already in place when coded). */
static lshmoe_status_t rows_write(lshmoe_dev_ws_t *ws, const enc_job_t *j, lshmoe_dev_seg_t *s,
                                  int fmt, const double *sums, void *stage, void *stream)
{
    const lshmoe_kn_dev_ops_t *ops = ws->ops;
    lshmoe_codec_t *c = j->codec;
    lshmoe_wire_layout_t lay;
    uint8_t *seg = (uint8_t *)stage + s->off;
    int measure = c->params.error_guard != 0;
    double den = sums[0], sse = 0.0;
    int coded = rows_bytes(j, fmt, &lay) != 0;
    if (coded && measure) {
        double b = c->params.max_error;
        coded = rows_fit(c, sums, b * b * den);
        sse = sums[1];
    }
    double err = 0.0;
    if (coded) {
        uint16_t flags = (uint16_t)(LSHMOE_WIRE_F_RAW | (fmt << LSHMOE_WIRE_FMT_SHIFT));
        uint64_t rows_end = lay.rows_off + lay.rows_bytes;
        uint8_t hdr[LSHMOE_WIRE_HEADER_BYTES];
        LSHMOE_CHECK(ops->zero(seg + rows_end, (size_t)(lshmoe_pad8(rows_end) - rows_end),
                               stream));
        lshmoe_codec_dev_header(hdr, flags, j, j->ntokens, lay.payload_bytes);
        LSHMOE_CHECK(ops->seal(seg, hdr, (size_t)lay.payload_bytes, ws->checksum_ws.ptr,
                               stream));
        s->len = (size_t)(LSHMOE_WIRE_HEADER_BYTES + lay.payload_bytes);
        err = sse > 0.0 ? (den > 0.0 ? sqrt(sse / den) : INFINITY) : 0.0;
    } else {
        LSHMOE_CHECK(lshmoe_codec_dev_write_raw(ws, j, s, stage, stream));
    }
    /* the statistics codec_rd.c keeps (times and visited rows aside) */
    int chosen = coded ? lshmoe_codec_choice_id(0, 0, fmt) : 0;
    lshmoe_codec_stats_t *st = &s->cs;
    st->tokens += j->ntokens;
    st->rows += j->ntokens;
    st->bytes_in += j->token_bytes;
    st->bytes_wire += s->len;
    st->segments_compressed += coded ? 1u : 0u;
    st->segments_raw += coded ? 0u : 1u;
    st->choice_segments[chosen]++;
    st->last_choice = chosen;
    if (coded) {
        st->err_num += sse;
        st->err_den += den;
    }
    st->last_error = measure || !coded ? err : -1.0;
    return LSHMOE_OK;
}

lshmoe_status_t lshmoe_codec_dev_encode_rows(lshmoe_dev_ws_t *ws, lshmoe_codec_t *codec,
                                             lshmoe_dtype_t dtype, size_t hidden,
                                             lshmoe_dev_seg_t *segs, size_t nsegs, void *stage,
                                             unsigned char *lsh_p, void *stream)
{
    const lshmoe_kn_dev_ops_t *ops = ws->ops;
    int fmt = lshmoe_codec_dev_rows_fmt(codec);
    size_t total = 0;
    for (size_t i = 0; i < nsegs; i++)
        lsh_p[i] = 0;
    if (fmt < 0)
        return lshmoe_error(LSHMOE_ERR_INTERNAL, "device rows encode: not a row mode");
    LSHMOE_CHECK(lshmoe_buf_reserve(&ws->host_small, nsegs * RB_ROWS_BYTES + 64));
    LSHMOE_CHECK(lshmoe_dev_reserve(ws, &ws->small, nsegs * RB_ROWS_BYTES + 8, stream));
    for (size_t i = 0; i < nsegs; i++)
        total += segs[i].skip ? 0 : segs[i].ntokens;
    /* per token: the row's error and norm (guard_ws holds two doubles per
     * token, as for the LSH guard) */
    LSHMOE_CHECK(lshmoe_dev_reserve(ws, &ws->guard_ws, total * 16 + 16, stream));
    double *host_rb = ws->host_small.ptr;
    int any = 0;
    size_t o = 0;
    for (size_t i = 0; i < nsegs; i++) {
        lshmoe_dev_seg_t *s = &segs[i];
        size_t raw_len;
        if (s->skip)
            continue;
        LSHMOE_CHECK(lshmoe_codec_dev_check_seg(dtype, hidden, s, i, &raw_len));
        enc_job_t j = lshmoe_codec_dev_job(codec, s, dtype, hidden, raw_len);
        if (!rows_try(&j))
            continue;
        lshmoe_wire_layout_t lay;
        /* A segment whose coded rows do not pay is still looked at: its
         * NaN/Inf decide its path first (codec_rd.c widens the tokens
         * before it lists candidates), so only its norms are taken. Codes
         * go straight to the rows section; the RAW segment overwrites
         * them if the measurement says no. */
        int code = rows_bytes(&j, fmt, &lay) != 0;
        double *sse = (double *)ws->guard_ws.ptr + 2 * o, *norms = sse + s->ntokens;
        uint8_t *rows = (uint8_t *)stage + s->off + LSHMOE_WIRE_HEADER_BYTES;
        double *row_sse = code && codec->params.error_guard ? sse : NULL;
        LSHMOE_CHECK(ops->quant_rows_sse(fmt, s->tokens, dtype, hidden, s->ntokens,
                                         code ? rows : NULL, row_sse, norms, stream));
        size_t n = s->ntokens;
        size_t step = n > ROWS_SAMPLE_TOKENS ? n / ROWS_SAMPLE_TOKENS : 1;
        LSHMOE_CHECK(ops->ordered_sums(row_sse, norms, n, step,
                                       (double *)ws->small.ptr + 4 * i, stream));
        o += n;
        any = 1;
    }
    /* the seals below take it */
    LSHMOE_CHECK(lshmoe_dev_reserve(ws, &ws->checksum_ws, LSHMOE_KN_DEV_CHECKSUM_WS_BYTES,
                                    stream));
    /* The host wait of encoding (bounded): the sums decide each size. */
    if (any)
        LSHMOE_CHECK(lshmoe_dev_read_back(ws, host_rb, ws->small.ptr, nsegs * RB_ROWS_BYTES,
                                          stream, "encode: row-format sums read-back"));
    o = 0;
    for (size_t i = 0; i < nsegs; i++) {
        lshmoe_dev_seg_t *s = &segs[i];
        size_t raw_len;
        if (s->skip)
            continue;
        LSHMOE_CHECK(lshmoe_codec_max_bytes(dtype, hidden, s->ntokens, &raw_len));
        enc_job_t j = lshmoe_codec_dev_job(codec, s, dtype, hidden, raw_len);
        if (!rows_try(&j)) {
            LSHMOE_CHECK(lshmoe_codec_dev_write_raw(ws, &j, s, stage, stream));
            s->cs.tokens += j.ntokens;
            s->cs.rows += j.ntokens;
            s->cs.bytes_in += j.token_bytes;
            s->cs.bytes_wire += s->len;
            s->cs.segments_raw++;
            s->cs.choice_segments[0]++;
            s->cs.last_choice = 0;
            s->cs.last_error = 0.0;
            continue;
        }
        const double *sums = host_rb + 4 * i;
        if (!isfinite(sums[0])) {
            lsh_p[i] = 1; /* NaN/Inf: the LSH path, as codec_encode.c */
            continue;
        }
        LSHMOE_CHECK(rows_write(ws, &j, s, fmt, sums, stage, stream));
    }
    return LSHMOE_OK;
}
