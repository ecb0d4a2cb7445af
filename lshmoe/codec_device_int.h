/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Private to the device segment codec (codec_device.c: the LSH path and
 * decoding; codec_device_rows.c: the fixed row formats): the pieces both
 * encoders write segments with.
 */
#ifndef LSHMOE_CODEC_DEVICE_INT_H
#define LSHMOE_CODEC_DEVICE_INT_H

#include "lshmoe/codec_device.h"
#include "lshmoe/codec_internal.h"

/* The encode job of segment s (tokens on the device; out unused). */
enc_job_t lshmoe_codec_dev_job(lshmoe_codec_t *codec, const lshmoe_dev_seg_t *s,
                               lshmoe_dtype_t dtype, size_t hidden, size_t raw_len);

/* Segment i's room and alignment in the stage; *raw_len_p its RAW size.
 * LSHMOE_ERR_INVALID_ARG naming the segment. */
lshmoe_status_t lshmoe_codec_dev_check_seg(lshmoe_dtype_t dtype, size_t hidden,
                                           const lshmoe_dev_seg_t *s, size_t i,
                                           size_t *raw_len_p);

/* The 48 header bytes of a segment, checksum left for the device (seal). */
void lshmoe_codec_dev_header(uint8_t *hdr, uint16_t flags, const enc_job_t *j, size_t nrows,
                             uint64_t payload);

/* Queues the RAW segment of j at s (tokens, zero padding, header,
 * checksum); sets s->len. Statistics are the caller's. */
lshmoe_status_t lshmoe_codec_dev_write_raw(lshmoe_dev_ws_t *ws, const enc_job_t *j,
                                           lshmoe_dev_seg_t *s, void *stage, void *stream);

/* The row format of a fixed mode without clustering (LSHMOE_QM_NATIVE ..
 * INT4E), or -1 for any other mode. */
int lshmoe_codec_dev_rows_fmt(const lshmoe_codec_t *codec);

/* Encodes the segments not skipped in the codec's fixed row format,
 * deciding as codec_rd.c does; one host wait. lsh_p[i] = 1 for a segment
 * left to the LSH path (NaN/Inf tokens), which the caller encodes. */
lshmoe_status_t lshmoe_codec_dev_encode_rows(lshmoe_dev_ws_t *ws, lshmoe_codec_t *codec,
                                             lshmoe_dtype_t dtype, size_t hidden,
                                             lshmoe_dev_seg_t *segs, size_t nsegs, void *stage,
                                             unsigned char *lsh_p, void *stream);

#endif /* LSHMOE_CODEC_DEVICE_INT_H */
