/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The segment codec from outside the library: encode the tokens bound for
 * one peer into one wire segment (docs/wire-format.md), decode it into a
 * caller buffer, and validate a wire buffer that came from anywhere (a
 * file, a network, a fuzzer). No call here is collective, and none needs
 * a communicator.
 *
 * The decoder treats its input as hostile: every header field, size,
 * padding byte, the checksum, every index entry and every residual scale
 * is checked before the first output byte is written, and a bad segment
 * is LSHMOE_ERR_CORRUPT with the reason in lshmoe_last_error(NULL), never a
 * crash, an out-of-bounds access or a hang.
 *
 * Messages of failures are in lshmoe_last_error(NULL) (thread-local), or
 * lshmoe_last_error(ctx) for lshmoe_codec_encode_rows() with a context.
 */
#ifndef LSHMOE_CODEC_PUBLIC_H
#define LSHMOE_CODEC_PUBLIC_H

#include <stddef.h>
#include <stdint.h>

#include "lshmoe.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What lshmoe_codec_validate() read from a valid segment. Versioned: set
 * `size` (LSHMOE_SEGMENT_INFO_INITIALIZER does); fields past a smaller
 * caller's size are not written. */
typedef struct lshmoe_segment_info {
    uint32_t       size;           /* sizeof(lshmoe_segment_info_t)           */
    uint32_t       flags;          /* the header's flag bits (wire-format.md) */
    lshmoe_dtype_t dtype;          /* token dtype                             */
    uint64_t       hidden;         /* elements per token                      */
    uint64_t       ntokens;        /* tokens the segment decodes to           */
    uint64_t       nrows;          /* rows carried (centroids or raw tokens)  */
    uint64_t       segment_bytes;  /* whole segment, header included          */
    uint64_t       decoded_bytes;  /* ntokens * hidden * element size         */
} lshmoe_segment_info_t;

#define LSHMOE_SEGMENT_INFO_INITIALIZER                                      \
    { sizeof(lshmoe_segment_info_t), 0, LSHMOE_DTYPE_FP32, 0, 0, 0, 0, 0 }

/*
 * Largest segment that encoding `ntokens` tokens of `hidden` elements of
 * `dtype` can produce, whatever the configuration: size `out` of
 * lshmoe_codec_encode_rows() with it. Not collective; thread-safe.
 * [out] bytes_p: set on success only
 * Returns LSHMOE_OK; LSHMOE_ERR_INVALID_ARG (NULL bytes_p, bad dtype,
 * hidden 0, or a size that overflows).
 */
LSHMOE_API lshmoe_status_t lshmoe_codec_max_encoded_bytes(lshmoe_dtype_t dtype, size_t hidden,
                                                          size_t ntokens, size_t *bytes_p);

/*
 * Encodes `ntokens` rows of `hidden` elements of `dtype` into one segment,
 * exactly as lshmoe_alltoallv() would for one peer: float tokens are
 * clustered (and may carry coded residuals); integer dtypes, small or
 * incompressible segments and segments beyond the error guard travel RAW,
 * byte-exact. Not collective.
 * The configuration comes from `ctx` (its resolved config) when ctx is
 * non-NULL, else from `cfg` resolved like lshmoe_ctx_create() resolves it
 * (NULL cfg: every field from the environment or its default).
 * Thread safety: with a context, the context is claimed for the call (a
 * call while another call holds it: LSHMOE_ERR_INVALID_ARG); without one,
 * thread-safe (each call builds its own encoder, which costs a hasher set-up
 * per call).
 * [in]  tokens: caller-owned, ntokens * hidden * element size bytes, read
 *               during the call (may be NULL when ntokens is 0)
 * [out] out:    caller-owned, `cap` bytes (>= lshmoe_codec_max_encoded_bytes)
 * [out] len_p:  segment length (a multiple of 8), set on success only
 * Returns LSHMOE_OK; LSHMOE_ERR_INVALID_ARG (NULL pointer, bad dtype,
 * hidden 0, cap too small, invalid config, busy context);
 * LSHMOE_ERR_NOT_INIT / LSHMOE_ERR_VERSION (config struct); LSHMOE_ERR_NO_MEMORY.
 */
LSHMOE_API lshmoe_status_t lshmoe_codec_encode_rows(lshmoe_ctx_t *ctx,
                                                    const lshmoe_config_t *cfg,
                                                    const void *tokens, lshmoe_dtype_t dtype,
                                                    size_t hidden, size_t ntokens, void *out,
                                                    size_t cap, size_t *len_p);

/*
 * Decodes one segment of exactly `len` bytes that must hold `ntokens`
 * tokens of (dtype, hidden) into `out`. Validates everything first (see
 * the top of this header); `out` is untouched unless the call succeeds.
 * Not collective; thread-safe.
 * [in]  in:  caller-owned, `len` bytes, read during the call; any alignment
 * [out] out: caller-owned, `out_bytes` bytes (>= ntokens * hidden * size)
 * Returns LSHMOE_OK; LSHMOE_ERR_INVALID_ARG (NULL pointer, bad dtype,
 * hidden 0, out_bytes too small); LSHMOE_ERR_CORRUPT (the reason is in the
 * message); LSHMOE_ERR_MISMATCH (a valid segment of another dtype, hidden
 * or token count); LSHMOE_ERR_NO_MEMORY.
 */
LSHMOE_API lshmoe_status_t lshmoe_codec_decode_rows(const void *in, size_t len,
                                                    lshmoe_dtype_t dtype, size_t hidden,
                                                    size_t ntokens, void *out,
                                                    size_t out_bytes);

/*
 * Checks that `len` bytes at `in` are one valid segment, with every check
 * the decoder makes, and reports what it holds. The segment is decoded
 * into scratch memory of its decoded size, which is first compared with
 * `max_decoded_bytes` (0: no limit) so that a small forged buffer cannot
 * make it allocate without bound. Not collective; thread-safe.
 * [in]  in:   caller-owned, `len` bytes, read during the call; any alignment
 * [out] info: NULL, or caller-owned with `size` set; written on success only
 * Returns LSHMOE_OK; LSHMOE_ERR_CORRUPT (the reason is in the message);
 * LSHMOE_ERR_INVALID_ARG (NULL `in` with len > 0, a decoded size above
 * max_decoded_bytes, info->size too small); LSHMOE_ERR_NO_MEMORY.
 */
LSHMOE_API lshmoe_status_t lshmoe_codec_validate(const void *in, size_t len,
                                                 size_t max_decoded_bytes,
                                                 lshmoe_segment_info_t *info);

#ifdef __cplusplus
}
#endif

#endif /* LSHMOE_CODEC_PUBLIC_H */
