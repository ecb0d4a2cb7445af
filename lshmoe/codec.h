/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The segment codec: turns the tokens bound for one peer into one wire
 * segment and back. Wire format (all fields little-endian; see
 * docs/wire-format.md):
 *
 *   header (LSHMOE_WIRE_HEADER_BYTES)
 *   rows      nrows * hidden * dtype_size      centroids or raw tokens
 *   (zero padding to a multiple of 8)
 *   index     ntokens * (2 or 4) bytes          absent when RAW
 *   (zero padding to a multiple of 8)
 *   residuals ntokens * lshmoe_kn_residual_bytes()   only with RESID4/8
 *   (zero padding to a multiple of 8)
 *
 * The decoder validates everything (magic, version, flags, dtype, hidden,
 * counts, sizes, checksum, every index < nrows, residual scales finite)
 * before it writes a single output byte: a bad segment is
 * LSHMOE_ERR_CORRUPT, never a crash or an out-of-bounds access.
 */
#ifndef LSHMOE_CODEC_H
#define LSHMOE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "lshmoe.h"
#include "kernels/kernels.h"

#define LSHMOE_WIRE_MAGIC        0x5753484Cu  /* "LHSW" */
#define LSHMOE_WIRE_VERSION      1u
#define LSHMOE_WIRE_HEADER_BYTES 48u

/* Header flags */
#define LSHMOE_WIRE_F_RAW    0x1u  /* rows are the tokens; no index        */
#define LSHMOE_WIRE_F_IDX32  0x2u  /* index entries are uint32 (else u16) */
#define LSHMOE_WIRE_F_RESID8 0x4u  /* 8-bit coded residuals follow         */
#define LSHMOE_WIRE_F_RESID4 0x8u  /* 4-bit coded residuals follow         */

typedef struct lshmoe_codec_params {
    lshmoe_kn_lsh_params_t lsh;
    int    compress;       /* 0: every float segment travels RAW           */
    size_t min_tokens;     /* fewer tokens: RAW                            */
    double min_ratio;      /* raw bytes / encoded bytes below this: RAW    */
    int    residual_bits;  /* 0, 4, 8                                      */
    /*
     * Quality guard. With error_guard 1, a segment whose centroid
     * reconstruction error (relative L2 over its tokens, see
     * lshmoe_codec_encode) exceeds max_error travels RAW; max_error 0 sends
     * RAW anything with any error. Skipped with residual_bits > 0: the
     * residuals repair the error, so the centroid error says nothing about
     * what the receiver gets. error_guard 0 (what a zero-initialised struct
     * gives, so older callers keep their behaviour) turns the guard off.
     */
    int    error_guard;    /* 0 or 1                                       */
    double max_error;      /* 0..1000                                      */
} lshmoe_codec_params_t;

/* What one encode or decode did, added to the caller's totals. */
typedef struct lshmoe_codec_stats {
    uint64_t tokens;
    uint64_t rows;
    uint64_t bytes_in;        /* token bytes                              */
    uint64_t bytes_wire;      /* segment bytes                            */
    uint64_t segments_compressed;
    uint64_t segments_raw;
    uint64_t tokens_nonfinite;
    double   time_hash_s;
    double   time_pack_s;
    double   time_unpack_s;
    uint64_t segments_probed_raw; /* of segments_raw: a sample of the tokens
                                     showed MIN_RATIO out of reach, so the
                                     rest were never hashed               */
} lshmoe_codec_stats_t;

/* A codec owns its hashers (one per hidden size seen, cached) and grow-only
 * workspaces. One codec is used by one thread at a time. */
typedef struct lshmoe_codec lshmoe_codec_t;

/* Returns LSHMOE_ERR_INVALID_ARG or LSHMOE_ERR_NO_MEMORY. */
lshmoe_status_t lshmoe_codec_create(const lshmoe_codec_params_t *params,
                                    lshmoe_codec_t **codec_p);
void lshmoe_codec_destroy(lshmoe_codec_t *codec);

/* Upper bound of an encoded segment of ntokens tokens (the RAW size).
 * Returns LSHMOE_ERR_INVALID_ARG when it overflows. */
lshmoe_status_t lshmoe_codec_max_bytes(lshmoe_dtype_t dtype, size_t hidden,
                                       size_t ntokens, size_t *bytes_p);

/*
 * Encodes ntokens rows of `hidden` elements. Any dtype: non-float dtypes,
 * compress = 0, small or incompressible segments, and (with the quality
 * guard) segments whose error sqrt(sum ||x_i - c_k||^2 / sum ||x_i||^2)
 * exceeds max_error are written RAW (byte exact). In that error, tokens in
 * clusters of one contribute 0 to the numerator, and tokens with NaN/Inf
 * are left out of both sums. `out` holds `cap` bytes (>= lshmoe_codec_max_bytes()); *len_p is
 * the segment length (a multiple of 8). `st` may be NULL.
 */
lshmoe_status_t lshmoe_codec_encode(lshmoe_codec_t *codec, const void *tokens,
                                    lshmoe_dtype_t dtype, size_t hidden,
                                    size_t ntokens, void *out, size_t cap,
                                    size_t *len_p, lshmoe_codec_stats_t *st);

/*
 * Decodes one segment of exactly `len` bytes, which must describe
 * `ntokens` tokens of (dtype, hidden); writes them to `out`. Returns
 * LSHMOE_ERR_CORRUPT (with the reason) for anything invalid, and
 * LSHMOE_ERR_MISMATCH when the segment is valid but its dtype, hidden or
 * token count differs from what the caller expects. `st` may be NULL.
 */
lshmoe_status_t lshmoe_codec_decode(lshmoe_codec_t *codec, const void *in,
                                    size_t len, lshmoe_dtype_t dtype,
                                    size_t hidden, size_t ntokens, void *out,
                                    lshmoe_codec_stats_t *st);

/* 64-bit checksum used by the wire format (pure function of the bytes). */
uint64_t lshmoe_wire_checksum(const void *data, size_t len, uint64_t seed);

#endif /* LSHMOE_CODEC_H */
