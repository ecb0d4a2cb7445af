/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Private to the codec (codec.c, codec_encode.c, codec_decode.c,
 * codec_checksum.c): the codec object, the header layout and the section
 * arithmetic that encoder and decoder must agree on byte for byte.
 */
#ifndef LSHMOE_CODEC_INTERNAL_H
#define LSHMOE_CODEC_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "lshmoe/codec.h"
#include "lshmoe/common/buf.h"

/* Hashers kept per codec. A codec usually sees one or two hidden sizes
 * (tokens and, say, gradients of another width); four covers that without
 * a search worth optimising. */
#define LSHMOE_CODEC_HASHERS 4

typedef struct lshmoe_codec_hasher_slot {
    size_t              hidden;   /* 0 = empty slot                         */
    lshmoe_kn_hasher_t *hasher;   /* NULL: this hidden size cannot be hashed
                                     with the codec's params (sent RAW)      */
    uint64_t            used;     /* codec clock at last use (LRU)          */
} lshmoe_codec_hasher_slot_t;

struct lshmoe_codec {
    lshmoe_codec_params_t      params;
    lshmoe_codec_hasher_slot_t slots[LSHMOE_CODEC_HASHERS];
    uint64_t                   clock;
    /* grow-only workspaces */
    lshmoe_buf_t keys;        /* u64 per token                              */
    lshmoe_buf_t cluster_of;  /* u32 per token                              */
    lshmoe_buf_t group_ws;
    lshmoe_buf_t hash_ws;
    lshmoe_buf_t acc;         /* fp32 per row element (centroid sums)        */
    lshmoe_buf_t sizes;       /* u32 per row                                */
    lshmoe_buf_t scratch;     /* residual kernels, unaligned fallbacks       */
    /* rate-distortion encoder (codec_rd.c) and quantized-row decoding */
    lshmoe_buf_t xf;          /* the segment's tokens in fp32                */
    lshmoe_buf_t keys_l;      /* keys cut to L functions                     */
    lshmoe_buf_t qrows;       /* candidate rows as the receiver decodes them */
    lshmoe_buf_t nrows_tmp;   /* native centroid rows; decoded rows (decode) */
    lshmoe_buf_t refine_ws;
    int          ladder_bits; /* bits per hash value in a packed key         */
    int          warm_id;     /* choice id of the last budget segment (0 raw) */
    int          warm_valid;  /* warm_id is set                              */
    uint64_t     warm_count;  /* WARM: segments searched; SAMPLE: segments
                                 since the last full search (re-anchoring)  */
    uint64_t     warm_every;  /* full searches of a rows stream this many
                                 segments apart (0: WARM_REANCHOR)           */
    int          rows_forced; /* lshmoe_codec_set_rows_only (BUDGET only)    */
    lshmoe_buf_t sample_ws;   /* sampled estimates of the budget search      */
    lshmoe_buf_t norms;       /* fp64 |x|^2 per token of the segment         */
    lshmoe_buf_t probe_rows;  /* sampled tokens gathered for the probe       */
    lshmoe_buf_t groups_l;    /* u32 per token and ladder L: the grouping by
                                 L functions, kept for the segment's search */
};

/* One segment being encoded (codec_encode.c, codec_rd.c). */
typedef struct enc_job {
    lshmoe_codec_t *codec;
    const void     *tokens;
    lshmoe_dtype_t  dtype;
    size_t          es, hidden, ntokens, token_bytes, raw_len;
    uint8_t        *out;
} enc_job_t;

/* Shared by both encoders: zero padding after a section, the header with
 * its checksum, the RAW segment (returns its length). */
void lshmoe_codec_zero_pad(uint8_t *seg, uint64_t off, uint64_t bytes);
void lshmoe_codec_finish_header(uint8_t *seg, uint16_t flags, const enc_job_t *j,
                                size_t nrows, uint64_t payload_bytes);
size_t lshmoe_codec_write_raw(const enc_job_t *j);

/*
 * The rate-distortion encoder (every mode but LSH). Writes the segment and
 * sets *len_p, or sets *len_p = 0 when the segment holds NaN/Inf tokens:
 * those are never quantized, and the caller encodes it the LSH way
 * (native rows, non-finite tokens alone and exact) under the guard.
 */
lshmoe_status_t lshmoe_codec_encode_rd(const enc_job_t *j, size_t *len_p,
                                       lshmoe_codec_stats_t *st);

/* The L values the budget ladder tries with this codec's cdim (ascending;
 * only those whose packed key fits 63 bits). Returns the count (<= 16). */
int lshmoe_codec_ladder_l(const lshmoe_codec_t *c, int *ls);

/* Row format of a header's flags. */
static inline int lshmoe_wire_fmt(uint16_t flags)
{
    return (flags & LSHMOE_WIRE_FMT_MASK) >> LSHMOE_WIRE_FMT_SHIFT;
}

/* The version a segment with these flags is written as: since the
 * checksum changed (versions 3 and 4), every segment is of the one
 * version. */
static inline uint16_t lshmoe_wire_version_for(uint16_t flags)
{
    (void)flags;
    return LSHMOE_WIRE_VERSION;
}

/* Header field offsets (bytes from the segment start). */
enum {
    LSHMOE_WIRE_OFF_MAGIC    = 0,   /* u32 */
    LSHMOE_WIRE_OFF_VERSION  = 4,   /* u16 */
    LSHMOE_WIRE_OFF_FLAGS    = 6,   /* u16 */
    LSHMOE_WIRE_OFF_DTYPE    = 8,   /* u32 */
    LSHMOE_WIRE_OFF_HIDDEN   = 12,  /* u32 */
    LSHMOE_WIRE_OFF_NTOKENS  = 16,  /* u64 */
    LSHMOE_WIRE_OFF_NROWS    = 24,  /* u64 */
    LSHMOE_WIRE_OFF_PAYLOAD  = 32,  /* u64 */
    LSHMOE_WIRE_OFF_CHECKSUM = 40   /* u64 */
};

#define LSHMOE_WIRE_F_KNOWN                                                  \
    (LSHMOE_WIRE_F_RAW | LSHMOE_WIRE_F_IDX32 | LSHMOE_WIRE_F_RESID8 |        \
     LSHMOE_WIRE_F_RESID4 | LSHMOE_WIRE_FMT_MASK)

/* Rows a u16 index can address. */
#define LSHMOE_WIRE_IDX16_MAX_ROWS 65536u

typedef struct lshmoe_wire_header {
    uint32_t magic;
    uint16_t version;
    uint16_t flags;
    uint32_t dtype;
    uint32_t hidden;
    uint64_t ntokens;
    uint64_t nrows;
    uint64_t payload_bytes;
    uint64_t checksum;
} lshmoe_wire_header_t;

/* Where each section lies, as offsets from the segment start. */
typedef struct lshmoe_wire_layout {
    uint64_t rows_off, rows_bytes;    /* rows_bytes before padding          */
    uint64_t idx_off, idx_bytes;      /* 0 bytes when RAW                   */
    uint64_t resid_off, resid_bytes;  /* 0 bytes without RESID4/8           */
    uint64_t resid_stride;            /* coded bytes per token              */
    uint64_t payload_bytes;           /* everything after the header        */
} lshmoe_wire_layout_t;

/*
 * Computes the layout for a header's (flags, element size, hidden, ntokens,
 * nrows). Returns 0, or -1 when a size overflows 64 bits or size_t. Every
 * section starts at a multiple of 8 and is zero-padded to one.
 */
int lshmoe_wire_layout(uint16_t flags, size_t elem_size, uint64_t hidden,
                       uint64_t ntokens, uint64_t nrows,
                       lshmoe_wire_layout_t *lay);

/* Segment checksum (docs/wire-format.md): the header with its checksum
 * field zeroed is hashed with seed 0, and that value seeds the hash of the
 * payload. `hdr` is the 48 header bytes as they are on the wire. */
uint64_t lshmoe_wire_segment_checksum(const uint8_t *hdr, const void *payload,
                                      size_t payload_bytes);

void lshmoe_wire_header_write(const lshmoe_wire_header_t *h, uint8_t *dst);
void lshmoe_wire_header_read(const uint8_t *src, lshmoe_wire_header_t *h);

/*
 * Returns the cached hasher for `hidden` (creating it on first use). *h_p
 * is NULL when the codec's LSH params cannot hash tokens of this width
 * (e.g. PAD with next_pow2(hidden) < cdim): such segments travel RAW.
 * Returns LSHMOE_ERR_NO_MEMORY (or another hard error) otherwise.
 */
lshmoe_status_t lshmoe_codec_hasher(lshmoe_codec_t *codec, size_t hidden,
                                    const lshmoe_kn_hasher_t **h_p);

/* Little-endian field access through memcpy: wire data may be unaligned. */
static inline int lshmoe_wire_host_is_le(void)
{
    return __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
}

static inline void lshmoe_put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void lshmoe_put_le32(uint8_t *p, uint32_t v)
{
    if (lshmoe_wire_host_is_le()) {
        memcpy(p, &v, 4);
        return;
    }
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void lshmoe_put_le64(uint8_t *p, uint64_t v)
{
    if (lshmoe_wire_host_is_le()) {
        memcpy(p, &v, 8);
        return;
    }
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t lshmoe_get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t lshmoe_get_le32(const uint8_t *p)
{
    uint32_t v;
    if (lshmoe_wire_host_is_le()) {
        memcpy(&v, p, 4);
        return v;
    }
    v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline uint64_t lshmoe_get_le64(const uint8_t *p)
{
    uint64_t v;
    if (lshmoe_wire_host_is_le()) {
        memcpy(&v, p, 8);
        return v;
    }
    v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline uint64_t lshmoe_pad8(uint64_t n)
{
    return (n + 7u) & ~(uint64_t)7u;
}

/*
 * Estimated rows of a segment (codec_probe.c), from a sample of
 * lshmoe_codec_probe_sample(ntokens) tokens spread over it (every token,
 * and then an exact count, when that is not fewer than ntokens). Uses the
 * codec's keys and hash workspace. *nrows_p = 0 when the segment cannot be
 * hashed (not a float dtype, no hasher for this hidden size, no tokens).
 * Returns LSHMOE_OK or LSHMOE_ERR_NO_MEMORY.
 */
size_t lshmoe_codec_probe_sample(size_t ntokens);
lshmoe_status_t lshmoe_codec_probe(lshmoe_codec_t *codec, const void *tokens,
                                   lshmoe_dtype_t dtype, size_t hidden, size_t ntokens,
                                   size_t *nrows_p);

/* The one encoding of a fixed mode (any mode but LSH and BUDGET): L hash
 * functions (0: no clustering, -1: the codec's num_hashes), refinement,
 * row format (LSHMOE_QM_*). */
void lshmoe_codec_mode_encoding(int mode, int *L, int *refine, int *fmt);

/*
 * The ratio (token bytes / row bytes; headers and cluster indices left
 * out) the codec's mode would give a float segment (codec_probe.c):
 *  - LSH: ntokens / the rows lshmoe_codec_probe() estimates;
 *  - a row format without clustering (FP8, INT8, INT4, INT2, INT4E,
 *    NATIVE): the format's own ratio, exact, nothing hashed;
 *  - LSH with a row format: both;
 *  - BUDGET, BUDGET_ROWS: the ladder's forecast from a sample of the
 *    tokens (lshmoe_rd_forecast, codec_rd_sample.c: row formats' errors
 *    on every (n / 32)-th token, rows of the clustering from key
 *    collisions); about 1 (RAW) when nothing is forecast to fit.
 * 0 when it cannot be estimated (no hasher for this hidden size, no
 * tokens, NaN/Inf in the sample). LSHMOE_CODEC_RATIO_UNKNOWN (negative)
 * is no longer returned by any mode; callers still treat it as "only an
 * encoded call tells". Returns LSHMOE_OK or LSHMOE_ERR_NO_MEMORY.
 */
#define LSHMOE_CODEC_RATIO_UNKNOWN (-1.0)
lshmoe_status_t lshmoe_codec_probe_ratio(lshmoe_codec_t *codec, const void *tokens,
                                         lshmoe_dtype_t dtype, size_t hidden,
                                         size_t ntokens, double *ratio_p);

/* The encoder's decisions, shared with the device encoder (codec_device.c)
 * so that both write the same bytes (codec_encode.c): the flags of a
 * compressed segment of nrows rows; whether it pays (fills *lay when it
 * does); whether the quality guard is on; the guard's error from its sums. */
uint16_t lshmoe_codec_comp_flags(const lshmoe_codec_t *c, size_t nrows);
int lshmoe_codec_comp_pays(const enc_job_t *j, size_t nrows, lshmoe_wire_layout_t *lay);
int lshmoe_codec_guard_on(const lshmoe_codec_t *c);
double lshmoe_codec_centroid_error(double num, double den);

/* The probe's row estimate from the keys of its sample (s of them, in the
 * order lshmoe_codec_probe() draws them; sorted in place) for a segment of
 * ntokens tokens (codec_probe.c). */
size_t lshmoe_codec_probe_estimate(uint64_t *keys, size_t s, size_t ntokens);

/* The decoder's header checks (codec_decode.c), for a decoder that reads
 * the header apart from the payload (codec_device.c): fields, consistency
 * and exact sizes for a segment of len bytes; then, once the segment is
 * known intact, the caller's expectations (LSHMOE_ERR_MISMATCH). */
lshmoe_status_t lshmoe_codec_check_header(const uint8_t *hdr, size_t len,
                                          lshmoe_wire_header_t *h, lshmoe_wire_layout_t *lay);
lshmoe_status_t lshmoe_codec_check_expected(const lshmoe_wire_header_t *h,
                                            lshmoe_dtype_t dtype, size_t hidden,
                                            size_t ntokens);

#endif /* LSHMOE_CODEC_INTERNAL_H */
