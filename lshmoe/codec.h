/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The segment codec: turns the tokens bound for one peer into one wire
 * segment and back. Wire format (all fields little-endian; see
 * docs/wire-format.md):
 *
 *   header (LSHMOE_WIRE_HEADER_BYTES)
 *   rows      nrows * row bytes                centroids or raw tokens, in
 *                                              the dtype or a row format
 *                                              (flags bits 4-6)
 *   (zero padding to a multiple of 8)
 *   index     ntokens * (2 or 4) bytes          absent when RAW
 *   (zero padding to a multiple of 8)
 *   residuals ntokens * lshmoe_kn_residual_bytes()   only with RESID4/8
 *   (zero padding to a multiple of 8)
 *
 * The decoder validates everything (magic, version, flags, dtype, hidden,
 * counts, sizes, checksum, every coded row's scales and codes, every
 * index < nrows, residual scales finite)
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
/* Version 1: rows in the dtype. Version 2 added the row format field
 * (flags bits 4-6). Version 3 replaced the checksum with one that SIMD
 * computes; version 4 cut it into chunks that a GPU spreads over its grid
 * (lshmoe/codec_checksum.c). Version 4 is the only version this library
 * writes or reads: a version 1, 2 or 3 segment is refused by name. */
#define LSHMOE_WIRE_VERSION      4u
#define LSHMOE_WIRE_HEADER_BYTES 48u

/* Header flags */
#define LSHMOE_WIRE_F_RAW    0x1u  /* rows are the tokens; no index        */
#define LSHMOE_WIRE_F_IDX32  0x2u  /* index entries are uint32 (else u16) */
#define LSHMOE_WIRE_F_RESID8 0x4u  /* 8-bit coded residuals follow         */
#define LSHMOE_WIRE_F_RESID4 0x8u  /* 4-bit coded residuals follow         */
/* Row format (kernels/common/quant_math.h LSHMOE_QM_*). */
#define LSHMOE_WIRE_FMT_SHIFT 4
#define LSHMOE_WIRE_FMT_MASK  0x70u

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
    /*
     * lshmoe_codec_mode_t (lshmoe.h). 0, LSH, is what the codec did before
     * modes existed (and what a zero-initialised struct gives). BUDGET
     * picks per segment the smallest encoding whose measured error is
     * within max_error (codec_rd.c), hashing with its own ladder of L (the
     * lsh.num_hashes given is ignored); a fixed mode uses one encoding, and
     * with error_guard sends RAW a segment over max_error. BUDGET_ROWS is
     * BUDGET among the row formats only (no hash, no clustering: the rows
     * need not be tokens). Residuals
     * (residual_bits) combine with LSH only.
     */
    int    mode;
    /* BUDGET, how the ladder is searched (codec_rd.c): */
    int    search;         /* LSHMOE_CODEC_SEARCH_*                        */
} lshmoe_codec_params_t;

/* Budget searches. SAMPLE (the default): estimate the candidates' errors
 * on a deterministic sample of the segment's tokens (for a clustering: on
 * every member of a sample of its clusters), walk the byte order and
 * measure in full, over every token, the first candidate whose estimate is
 * within the budget; accept it only if that full measurement is (a miss:
 * walk on; estimates a little over the budget get a second walk; nothing
 * measured fits: RAW). About one full measurement per segment. After a
 * segment that took a row format, the next segments of the stream search
 * the row formats only, the whole ladder 8, then 16, 32 and at most 64
 * segments apart while it keeps finding a row format (codec_rd.c
 * rows_only; the stream's state is the warm start below). WARM: start
 * from the encoding the previous segment of this codec got (raw: from the
 * largest candidate), walk down the byte order while candidates fit and up
 * while they do not; a few evaluations, may miss a smaller fit elsewhere;
 * the first and every 8th segment bisect instead, so that a stale start
 * does not stick. BISECT: bisect the ladder's monotone chains. LINEAR:
 * every encoding in byte order until one fits (the exact optimum of the
 * ladder; for comparison). */
#define LSHMOE_CODEC_SEARCH_SAMPLE 0
#define LSHMOE_CODEC_SEARCH_WARM   1
#define LSHMOE_CODEC_SEARCH_BISECT 2
#define LSHMOE_CODEC_SEARCH_LINEAR 3

/* Encodings a segment can travel in: clustering with L hash functions (0 =
 * none), one refinement step or not, and the row format (LSHMOE_QM_*).
 * Id = (L * 2 + refine) * LSHMOE_QM_COUNT + fmt; id 0 is RAW, the exact
 * segment. */
#define LSHMOE_CODEC_MAX_L     16
#define LSHMOE_CODEC_NFMTS     6   /* LSHMOE_QM_COUNT */
#define LSHMOE_CODEC_NCHOICES  ((LSHMOE_CODEC_MAX_L + 1) * 2 * LSHMOE_CODEC_NFMTS)

static inline int lshmoe_codec_choice_id(int L, int refine, int fmt)
{
    return (L * 2 + refine) * LSHMOE_CODEC_NFMTS + fmt;
}

/* The L of a choice id (0: a row format, or RAW). */
static inline int lshmoe_codec_choice_l(int id)
{
    return id / (2 * LSHMOE_CODEC_NFMTS);
}

/* "raw", "int4", "lsh6+r/int8", ... into buf (always terminated). */
void lshmoe_codec_choice_name(int id, char *buf, size_t n);

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
    /* Encoder, rate-distortion modes (everything but LSH; err_num, err_den
     * and last_error also for LSH when its quality guard measured them): */
    double   time_search_s;   /* hashing excluded: evaluating candidates    */
    uint64_t search_tokens;   /* token rows visited by error evaluations;
                                 / tokens = passes over the data            */
    uint64_t refine_evals;    /* distance evaluations of refinement steps   */
    double   err_num, err_den;  /* sum |x - x'|^2 and sum |x|^2 over the
                                   segments whose error was measured        */
    uint64_t choice_segments[LSHMOE_CODEC_NCHOICES];
    /* The last segment encoded (overwritten, not added): */
    int      last_choice;     /* choice id                                  */
    double   last_error;      /* its measured error; -1 when not measured  */
    uint64_t segments_probed_raw; /* of segments_raw: a sample of the tokens
                                     showed MIN_RATIO out of reach (budget:
                                     nothing on the ladder within the
                                     budget at or above it), so the rest
                                     were never hashed nor searched       */
    uint64_t segments_rows_only;  /* budget segments searched among the row
                                     formats only (the stream's previous
                                     segment took one, codec_rd.c)        */
} lshmoe_codec_stats_t;

/*
 * The budget search's warm start (codec_rd.c) as one stream of segments
 * sees it. A caller that spreads one stream's segments over several codecs
 * (the pool's threads, one codec each) keeps one per stream, zeroed at
 * first, and swaps it in before and out after each encode, so that a
 * segment's bytes do not depend on which codec encoded it.
 */
typedef struct lshmoe_codec_warm {
    int      id, valid;
    uint64_t count, every;
} lshmoe_codec_warm_t;

/* A codec owns its hashers (one per hidden size seen, cached) and grow-only
 * workspaces. One codec is used by one thread at a time. */
typedef struct lshmoe_codec lshmoe_codec_t;

/* Exchanges the codec's warm start with *w. Not thread-safe per codec. */
void lshmoe_codec_warm_swap(lshmoe_codec_t *codec, lshmoe_codec_warm_t *w);

/* on = 1: the next encodes of a BUDGET codec search the row formats only
 * (no hash, no grouping: the ladder of BUDGET_ROWS) and leave the stream's
 * warm start as it was, so that the full search resumes where it stopped
 * once this is 0 again (the default). The adaptive policy's cheaper arm
 * when the link is fast for what the clusterings save (adapt.c). No effect
 * in other modes. Not thread-safe per codec. */
void lshmoe_codec_set_rows_only(lshmoe_codec_t *codec, int on);

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
