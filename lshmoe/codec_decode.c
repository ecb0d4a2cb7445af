/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Segment decoder. A segment comes from another process over a network, so
 * it is validated completely before the first output byte is written:
 * header fields, exact sizes (overflow-checked), zero padding, checksum,
 * then the caller's expectations, every index entry and every residual
 * scale. Only then are the rows expanded. Each failure names its cause.
 * The input may be unaligned: all wire reads go through memcpy.
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/common/quant_math.h"
#include "lshmoe/codec_internal.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"
#include "lshmoe/common/timer.h"

#define CORRUPT(...) lshmoe_error(LSHMOE_ERR_CORRUPT, "wire segment: " __VA_ARGS__)

/* Checks the header on its own: fields, their consistency, exact sizes. */
static lshmoe_status_t check_header(const lshmoe_wire_header_t *h, size_t len,
                                    lshmoe_wire_layout_t *lay)
{
    uint16_t f = h->flags;

    if (h->magic != LSHMOE_WIRE_MAGIC)
        return CORRUPT("bad magic 0x%08" PRIx32 " (expected 0x%08x)", h->magic,
                       LSHMOE_WIRE_MAGIC);
    if (h->version >= 1 && h->version <= 3)
        return CORRUPT("version %u segment: written by an older lshmoe with the "
                       "previous checksum (this library reads version %u)",
                       (unsigned)h->version, LSHMOE_WIRE_VERSION);
    if (h->version != LSHMOE_WIRE_VERSION)
        return CORRUPT("unsupported version %u (this library reads version %u)",
                       (unsigned)h->version, LSHMOE_WIRE_VERSION);
    if (f & ~LSHMOE_WIRE_F_KNOWN)
        return CORRUPT("unknown flag bits 0x%04x", (unsigned)(f & ~LSHMOE_WIRE_F_KNOWN));
    int fmt = lshmoe_wire_fmt(f);
    if (fmt >= LSHMOE_QM_COUNT)
        return CORRUPT("unknown row format %d", fmt);
    if (fmt != LSHMOE_QM_NATIVE && (f & (LSHMOE_WIRE_F_RESID8 | LSHMOE_WIRE_F_RESID4)))
        return CORRUPT("residuals with quantized rows (format %d)", fmt);
    if ((f & LSHMOE_WIRE_F_RAW) &&
        (f & (LSHMOE_WIRE_F_IDX32 | LSHMOE_WIRE_F_RESID8 | LSHMOE_WIRE_F_RESID4)))
        return CORRUPT("raw segment with index or residual flags 0x%04x",
                       (unsigned)f);
    if ((f & LSHMOE_WIRE_F_RESID8) && (f & LSHMOE_WIRE_F_RESID4))
        return CORRUPT("both 8-bit and 4-bit residual flags set");
    if (h->dtype >= (uint32_t)LSHMOE_DTYPE_COUNT)
        return CORRUPT("invalid dtype %" PRIu32, h->dtype);
    if ((!(f & LSHMOE_WIRE_F_RAW) || fmt != LSHMOE_QM_NATIVE) &&
        !lshmoe_dtype_is_float((lshmoe_dtype_t)h->dtype))
        return CORRUPT("compressed segment of non-float dtype %s",
                       lshmoe_dtype_name((lshmoe_dtype_t)h->dtype));
    if (h->hidden == 0)
        return CORRUPT("hidden size 0");
    if (h->nrows > h->ntokens)
        return CORRUPT("%" PRIu64 " rows for %" PRIu64 " tokens", h->nrows,
                       h->ntokens);
    if (h->ntokens > 0 && h->nrows == 0)
        return CORRUPT("no rows for %" PRIu64 " tokens", h->ntokens);
    if ((f & LSHMOE_WIRE_F_RAW) && h->nrows != h->ntokens)
        return CORRUPT("raw segment with %" PRIu64 " rows for %" PRIu64 " tokens",
                       h->nrows, h->ntokens);
    if (!(f & LSHMOE_WIRE_F_RAW) && !(f & LSHMOE_WIRE_F_IDX32) &&
        h->nrows > LSHMOE_WIRE_IDX16_MAX_ROWS)
        return CORRUPT("16-bit index cannot address %" PRIu64 " rows", h->nrows);
    if (lshmoe_wire_layout(f, lshmoe_dtype_size((lshmoe_dtype_t)h->dtype),
                           h->hidden, h->ntokens, h->nrows, lay))
        return CORRUPT("sizes overflow (%" PRIu64 " tokens, %" PRIu64
                       " rows, hidden %" PRIu32 ")", h->ntokens, h->nrows,
                       h->hidden);
    if (h->payload_bytes != lay->payload_bytes)
        return CORRUPT("payload_bytes %" PRIu64 " but the header describes %" PRIu64,
                       h->payload_bytes, lay->payload_bytes);
    if (len - LSHMOE_WIRE_HEADER_BYTES != lay->payload_bytes)
        return CORRUPT("segment is %zu bytes but the header describes %" PRIu64,
                       len, LSHMOE_WIRE_HEADER_BYTES + lay->payload_bytes);
    return LSHMOE_OK;
}

/* Padding after a section must be zero: the format is canonical, and a
 * stray byte there means the writer and reader disagree on the layout. */
static lshmoe_status_t check_pad(const uint8_t *seg, uint64_t off,
                                 uint64_t bytes, const char *section)
{
    for (uint64_t i = off + bytes; i < lshmoe_pad8(off + bytes); i++)
        if (seg[i] != 0)
            return CORRUPT("nonzero padding byte at offset %" PRIu64 " after %s",
                           i, section);
    return LSHMOE_OK;
}

static lshmoe_status_t check_expected(const lshmoe_wire_header_t *h,
                                      lshmoe_dtype_t dtype, size_t hidden,
                                      size_t ntokens)
{
    if (h->dtype != (uint32_t)dtype)
        return lshmoe_error(LSHMOE_ERR_MISMATCH,
                            "wire segment: expected dtype %s, got %s",
                            lshmoe_dtype_name(dtype),
                            lshmoe_dtype_name((lshmoe_dtype_t)h->dtype));
    if (h->hidden != hidden)
        return lshmoe_error(LSHMOE_ERR_MISMATCH,
                            "wire segment: expected hidden %zu, got %" PRIu32,
                            hidden, h->hidden);
    if (h->ntokens != ntokens)
        return lshmoe_error(LSHMOE_ERR_MISMATCH,
                            "wire segment: expected %zu tokens, got %" PRIu64,
                            ntokens, h->ntokens);
    return LSHMOE_OK;
}

/* Copies the index into cluster_of (aligned, u32), checking each entry. */
static lshmoe_status_t load_index(const uint8_t *src, int idx32, size_t n,
                                  uint64_t nrows, uint32_t *cluster_of)
{
    uint32_t bad = 0;

    /* Check in bulk and report afterwards: keeps the loop branch-light. */
    for (size_t i = 0; i < n; i++) {
        uint32_t v = idx32 ? lshmoe_get_le32(src + 4 * i)
                           : lshmoe_get_le16(src + 2 * i);
        cluster_of[i] = v;
        bad |= (uint64_t)v >= nrows;
    }
    if (!bad)
        return LSHMOE_OK;
    for (size_t i = 0; i < n; i++)
        if ((uint64_t)cluster_of[i] >= nrows)
            return CORRUPT("index entry %zu is %" PRIu32 ", not below %" PRIu64
                           " rows", i, cluster_of[i], nrows);
    return LSHMOE_ERR_INTERNAL;
}

static lshmoe_status_t check_scales(const uint8_t *src, size_t n, uint64_t stride)
{
    for (size_t i = 0; i < n; i++) {
        float s;
        memcpy(&s, src + i * stride, sizeof s);
        if (!isfinite(s) || s < 0.0f)
            return CORRUPT("residual scale of token %zu is %g", i, (double)s);
    }
    return LSHMOE_OK;
}

static lshmoe_status_t check_args(const lshmoe_codec_t *codec, const void *in,
                                  lshmoe_dtype_t dtype, size_t hidden,
                                  size_t ntokens, const void *out)
{
    if (codec == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "codec decode: codec is NULL");
    if (in == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "codec decode: in is NULL");
    if (out == NULL && ntokens > 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "codec decode: out is NULL for %zu tokens", ntokens);
    if (lshmoe_dtype_size(dtype) == 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "codec decode: invalid dtype %d", (int)dtype);
    if (hidden == 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "codec decode: hidden is 0");
    return LSHMOE_OK;
}

/* Padding and checksum. */
static lshmoe_status_t validate_bytes(const uint8_t *seg, size_t len,
                                      const lshmoe_wire_header_t *h,
                                      const lshmoe_wire_layout_t *lay)
{
    int raw = (h->flags & LSHMOE_WIRE_F_RAW) != 0;
    const uint8_t *payload = seg + LSHMOE_WIRE_HEADER_BYTES;

    LSHMOE_CHECK(check_pad(seg, lay->rows_off, lay->rows_bytes, "rows"));
    if (!raw) {
        LSHMOE_CHECK(check_pad(seg, lay->idx_off, lay->idx_bytes, "index"));
        if (lay->resid_bytes > 0)
            LSHMOE_CHECK(check_pad(seg, lay->resid_off, lay->resid_bytes,
                                   "residuals"));
    }
    uint64_t sum = lshmoe_wire_segment_checksum(seg, payload,
                                                len - LSHMOE_WIRE_HEADER_BYTES);
    if (sum != h->checksum)
        return CORRUPT("checksum 0x%016" PRIx64 " does not match the data "
                       "(0x%016" PRIx64 ")", h->checksum, sum);
    return LSHMOE_OK;
}

/* Index entries and residual scales: what the checksum cannot vouch for,
 * since a buggy or hostile sender computes a matching checksum. */
/* Every coded row: scales finite and >= 0, no NaN code, zero pad bits. */
static lshmoe_status_t check_rows(const uint8_t *rows, int fmt, uint64_t nrows,
                                  uint32_t hidden)
{
    size_t stride = (size_t)lshmoe_qm_row_bytes(fmt, hidden);
    static const char *why[] = {"", "a scale that is not finite and >= 0",
                                "an FP8 NaN code", "nonzero unused code bits",
                                "an unknown format"};
    for (uint64_t k = 0; k < nrows; k++) {
        int bad = lshmoe_kn_quant_row_check(fmt, rows + k * stride, hidden);
        if (bad)
            return CORRUPT("row %" PRIu64 " (format %d) has %s", k, fmt,
                           why[bad < 5 ? bad : 4]);
    }
    return LSHMOE_OK;
}

static lshmoe_status_t validate_content(lshmoe_codec_t *codec,
                                        const uint8_t *seg,
                                        const lshmoe_wire_header_t *h,
                                        const lshmoe_wire_layout_t *lay)
{
    int fmt = lshmoe_wire_fmt(h->flags);
    if (fmt != LSHMOE_QM_NATIVE)
        LSHMOE_CHECK(check_rows(seg + lay->rows_off, fmt, h->nrows, h->hidden));
    if ((h->flags & LSHMOE_WIRE_F_RAW) || h->ntokens == 0)
        return LSHMOE_OK;

    /* ntokens fits size_t: the layout said the index does. */
    size_t n = (size_t)h->ntokens;
    LSHMOE_CHECK(lshmoe_buf_reserve(&codec->cluster_of, n * sizeof(uint32_t)));
    LSHMOE_CHECK(load_index(seg + lay->idx_off,
                            (h->flags & LSHMOE_WIRE_F_IDX32) != 0, n, h->nrows,
                            codec->cluster_of.ptr));
    if (lay->resid_bytes > 0)
        LSHMOE_CHECK(check_scales(seg + lay->resid_off, n, lay->resid_stride));
    return LSHMOE_OK;
}

/* Quantized rows: each decoded and rounded to the dtype in one kernel;
 * clustered segments then expand the rounded rows. */
static lshmoe_status_t write_quantized(lshmoe_codec_t *codec, const uint8_t *seg,
                                       const lshmoe_wire_header_t *h,
                                       const lshmoe_wire_layout_t *lay,
                                       lshmoe_dtype_t dtype, size_t hidden,
                                       size_t n, void *out)
{
    int fmt = lshmoe_wire_fmt(h->flags);
    size_t stride = (size_t)lshmoe_qm_row_bytes(fmt, hidden);
    size_t rb = hidden * lshmoe_dtype_size(dtype), fb, nrows = (size_t)h->nrows;
    int raw = (h->flags & LSHMOE_WIRE_F_RAW) != 0;
    uint8_t *dst = out;

    LSHMOE_CHECK(lshmoe_mul_size(hidden, sizeof(float), &fb));
    LSHMOE_CHECK(lshmoe_buf_reserve(&codec->scratch, fb));
    if (!raw) {
        size_t tb;
        LSHMOE_CHECK(lshmoe_mul_size(nrows, rb, &tb));
        LSHMOE_CHECK(lshmoe_buf_reserve(&codec->nrows_tmp, tb));
        dst = codec->nrows_tmp.ptr;
    }
    float *y = codec->scratch.ptr;
    const uint8_t *rows = seg + lay->rows_off;
    for (size_t k = 0; k < nrows; k++)
        lshmoe_kn_dequant_row_to(fmt, rows + k * stride, hidden, dtype, dst + k * rb, y);
    if (!raw)
        lshmoe_kn_expand(dst, dtype, hidden, n, codec->cluster_of.ptr, out);
    return LSHMOE_OK;
}

static lshmoe_status_t write_tokens(lshmoe_codec_t *codec, const uint8_t *seg,
                                    const lshmoe_wire_header_t *h,
                                    const lshmoe_wire_layout_t *lay,
                                    lshmoe_dtype_t dtype, size_t hidden,
                                    size_t n, void *out)
{
    if (n == 0)
        return LSHMOE_OK;
    if (lshmoe_wire_fmt(h->flags) != LSHMOE_QM_NATIVE)
        return write_quantized(codec, seg, h, lay, dtype, hidden, n, out);
    if (h->flags & LSHMOE_WIRE_F_RAW) {
        memcpy(out, seg + lay->rows_off, (size_t)lay->rows_bytes);
        return LSHMOE_OK;
    }
    int bits = (h->flags & LSHMOE_WIRE_F_RESID8) ? 8
             : (h->flags & LSHMOE_WIRE_F_RESID4) ? 4 : 0;
    if (bits != 0) {
        size_t rs;
        /* residual kernels: one token's `hidden` floats */
        LSHMOE_CHECK(lshmoe_mul_size(hidden, sizeof(float), &rs));
        LSHMOE_CHECK(lshmoe_buf_reserve(&codec->scratch, rs));
    }
    lshmoe_kn_expand(seg + lay->rows_off, dtype, hidden, n,
                     codec->cluster_of.ptr, out);
    if (bits != 0)
        lshmoe_kn_residual_decode(seg + lay->resid_off, dtype, hidden, n, bits,
                                  out, codec->scratch.ptr);
    return LSHMOE_OK;
}

lshmoe_status_t lshmoe_codec_decode(lshmoe_codec_t *codec, const void *in,
                                    size_t len, lshmoe_dtype_t dtype,
                                    size_t hidden, size_t ntokens, void *out,
                                    lshmoe_codec_stats_t *st)
{
    const uint8_t *seg = in;
    lshmoe_wire_header_t h;
    lshmoe_wire_layout_t lay;

    LSHMOE_CHECK(check_args(codec, in, dtype, hidden, ntokens, out));
    double t0 = lshmoe_now();
    if (len < LSHMOE_WIRE_HEADER_BYTES)
        return CORRUPT("%zu bytes, shorter than the %u-byte header", len,
                       LSHMOE_WIRE_HEADER_BYTES);
    lshmoe_wire_header_read(seg, &h);
    LSHMOE_CHECK(check_header(&h, len, &lay));
    LSHMOE_CHECK(validate_bytes(seg, len, &h, &lay));
    /* Checked once the segment is known intact, so that a damaged count
     * reads as corruption and a well-formed surprise as a mismatch. */
    LSHMOE_CHECK(check_expected(&h, dtype, hidden, ntokens));
    LSHMOE_CHECK(validate_content(codec, seg, &h, &lay));
    LSHMOE_CHECK(write_tokens(codec, seg, &h, &lay, dtype, hidden, ntokens, out));

    if (st != NULL) {
        int raw = (h.flags & LSHMOE_WIRE_F_RAW) != 0;
        st->tokens += ntokens;
        st->rows += h.nrows;
        st->bytes_in += (uint64_t)ntokens * hidden * lshmoe_dtype_size(dtype);
        st->bytes_wire += len;
        st->segments_compressed += raw ? 0u : 1u;
        st->segments_raw += raw ? 1u : 0u;
        st->time_unpack_s += lshmoe_now() - t0;
    }
    return LSHMOE_OK;
}

lshmoe_status_t lshmoe_codec_check_header(const uint8_t *hdr, size_t len,
                                          lshmoe_wire_header_t *h, lshmoe_wire_layout_t *lay)
{
    if (len < LSHMOE_WIRE_HEADER_BYTES)
        return CORRUPT("%zu bytes, shorter than the %u-byte header", len,
                       LSHMOE_WIRE_HEADER_BYTES);
    lshmoe_wire_header_read(hdr, h);
    return check_header(h, len, lay);
}

lshmoe_status_t lshmoe_codec_check_expected(const lshmoe_wire_header_t *h,
                                            lshmoe_dtype_t dtype, size_t hidden,
                                            size_t ntokens)
{
    return check_expected(h, dtype, hidden, ntokens);
}
