/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The segment codec on device memory: the segments of one call, encoded or
 * decoded together on one stream through the kernels' ops table
 * (kernels.h), writing and reading the wire bytes of codec_encode.c and
 * codec_decode.c (docs/wire-format.md), byte for byte. The host waits on
 * the stream once per batch: to read the cluster counts (and the guard's
 * sums and the probe's key sample) back, which decide each segment's size
 * (encode), and to read the headers and then the validation result back
 * (decode: twice). Encodes LSH mode (with or without coded residuals) and
 * the fixed row formats without clustering (codec_device_rows.c); anything
 * else is LSHMOE_ERR_UNSUPPORTED, "not yet" on the device. Decodes every
 * row format, clustered or not, and coded residuals.
 */
#ifndef LSHMOE_CODEC_DEVICE_H
#define LSHMOE_CODEC_DEVICE_H

#include "lshmoe/codec.h"
#include "lshmoe/dev_ws.h"

/* One segment of a batch. */
typedef struct lshmoe_dev_seg {
    int         skip;      /* not part of this batch (the rank's own)      */
    /* encode: in  tokens (device), ntokens; the segment goes to
     *             stage + off (8-byte aligned), cap bytes (max_bytes);
     *         out len, cs (this segment's stats)
     * decode: in  stage + off holds len wire bytes; ntokens expected,
     *             written to out (device); out cs                         */
    const void *tokens;
    void       *out;
    size_t      ntokens, off, cap, len;
    lshmoe_codec_stats_t cs;
} lshmoe_dev_seg_t;

/* Is the codec's configuration one the device encoder runs? LSHMOE_OK,
 * or LSHMOE_ERR_UNSUPPORTED naming what is not there yet. */
lshmoe_status_t lshmoe_codec_dev_supported(const lshmoe_codec_t *codec);

/* Encodes every segment not skipped into `stage` (device). On error the
 * message names the segment's index. A row format: one host wait, and a
 * second one when a segment holds NaN/Inf tokens (it takes the LSH path,
 * as on the CPU). */
lshmoe_status_t lshmoe_codec_dev_encode(lshmoe_dev_ws_t *ws, lshmoe_codec_t *codec,
                                        lshmoe_dtype_t dtype, size_t hidden,
                                        lshmoe_dev_seg_t *segs, size_t nsegs, void *stage,
                                        void *stream);

/* Validates and decodes every segment not skipped from `stage` (device):
 * LSHMOE_ERR_CORRUPT or LSHMOE_ERR_MISMATCH (first failing segment, its
 * index in the message) with no output written for a failing segment. */
lshmoe_status_t lshmoe_codec_dev_decode(lshmoe_dev_ws_t *ws, lshmoe_codec_t *codec,
                                        lshmoe_dtype_t dtype, size_t hidden,
                                        lshmoe_dev_seg_t *segs, size_t nsegs,
                                        const void *stage, void *stream);

#endif /* LSHMOE_CODEC_DEVICE_H */
