/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The public codec API (lshmoe_codec.h) over the internal entry points of
 * lshmoe/codec.h. Only those entry points and the segment header are used
 * here, so new row formats and encoder strategies inside the codec reach
 * users through these calls without changing them.
 */
#include <stdlib.h>
#include <string.h>

#include "lshmoe/codec_internal.h"
#include "lshmoe/common/buf.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"
#include "lshmoe/ctx_int.h"
#include "lshmoe_codec.h"

static lshmoe_status_t check_shape(lshmoe_dtype_t dtype, size_t hidden, size_t ntokens,
                                   size_t *decoded_p)
{
    if ((unsigned)dtype >= LSHMOE_DTYPE_COUNT)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "codec: dtype %d is not valid", (int)dtype);
    if (hidden == 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "codec: hidden is 0");
    size_t row;
    LSHMOE_CHECK(lshmoe_mul_size(hidden, lshmoe_dtype_size(dtype), &row));
    return lshmoe_mul_size(row, ntokens, decoded_p);
}

lshmoe_status_t lshmoe_codec_max_encoded_bytes(lshmoe_dtype_t dtype, size_t hidden,
                                               size_t ntokens, size_t *bytes_p)
{
    size_t decoded;
    lshmoe_error_clear();
    if (bytes_p == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "codec: bytes_p is NULL");
    LSHMOE_CHECK(check_shape(dtype, hidden, ntokens, &decoded));
    return lshmoe_codec_max_bytes(dtype, hidden, ntokens, bytes_p);
}

/* A codec of the default configuration: decoding reads every parameter it
 * needs from the segment, so any valid configuration serves. */
static lshmoe_status_t decoder(lshmoe_codec_t **codec_p)
{
    lshmoe_config_t cfg;
    lshmoe_codec_params_t cp;
    LSHMOE_CHECK(lshmoe_config_resolve(NULL, &cfg));
    LSHMOE_CHECK(lshmoe_config_codec_params(&cfg, &cp));
    return lshmoe_codec_create(&cp, codec_p);
}

static lshmoe_status_t encode_with(lshmoe_codec_t *codec, const void *tokens,
                                   lshmoe_dtype_t dtype, size_t hidden, size_t ntokens,
                                   void *out, size_t cap, size_t *len_p)
{
    size_t decoded, need;
    LSHMOE_CHECK(check_shape(dtype, hidden, ntokens, &decoded));
    if (out == NULL || len_p == NULL || (tokens == NULL && ntokens > 0))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "codec encode: %s is NULL",
                            out == NULL ? "out" : len_p == NULL ? "len_p" : "tokens");
    LSHMOE_CHECK(lshmoe_codec_max_bytes(dtype, hidden, ntokens, &need));
    if (cap < need)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "codec encode: cap %zu is below the "
                            "%zu bytes lshmoe_codec_max_encoded_bytes() gives", cap, need);
    return lshmoe_codec_encode(codec, tokens, dtype, hidden, ntokens, out, cap, len_p, NULL);
}

lshmoe_status_t lshmoe_codec_encode_rows(lshmoe_ctx_t *ctx, const lshmoe_config_t *cfg,
                                         const void *tokens, lshmoe_dtype_t dtype,
                                         size_t hidden, size_t ntokens, void *out,
                                         size_t cap, size_t *len_p)
{
    lshmoe_error_clear();
    if (ctx != NULL) {
        if (!lshmoe_ctx_valid(ctx))
            return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "codec encode: ctx is not a live "
                                "context");
        LSHMOE_CHECK(lshmoe_ctx_enter(ctx, "lshmoe_codec_encode_rows"));
        lshmoe_status_t st = encode_with(ctx->codec, tokens, dtype, hidden, ntokens, out, cap,
                                         len_p);
        lshmoe_ctx_leave(ctx);
        return lshmoe_ctx_fail(ctx, st);
    }
    lshmoe_config_t resolved;
    lshmoe_codec_params_t cp;
    lshmoe_codec_t *codec = NULL;
    LSHMOE_CHECK(lshmoe_config_resolve(cfg, &resolved));
    LSHMOE_CHECK(lshmoe_config_codec_params(&resolved, &cp));
    LSHMOE_CHECK(lshmoe_codec_create(&cp, &codec));
    lshmoe_status_t st = encode_with(codec, tokens, dtype, hidden, ntokens, out, cap, len_p);
    lshmoe_codec_destroy(codec);
    return st;
}

lshmoe_status_t lshmoe_codec_decode_rows(const void *in, size_t len, lshmoe_dtype_t dtype,
                                         size_t hidden, size_t ntokens, void *out,
                                         size_t out_bytes)
{
    size_t decoded;
    lshmoe_error_clear();
    LSHMOE_CHECK(check_shape(dtype, hidden, ntokens, &decoded));
    if (in == NULL || (out == NULL && decoded > 0))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "codec decode: %s is NULL",
                            in == NULL ? "in" : "out");
    if (out_bytes < decoded)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "codec decode: out holds %zu bytes, "
                            "%zu tokens need %zu", out_bytes, ntokens, decoded);
    lshmoe_codec_t *codec = NULL;
    LSHMOE_CHECK(decoder(&codec));
    lshmoe_status_t st = lshmoe_codec_decode(codec, in, len, dtype, hidden, ntokens, out, NULL);
    lshmoe_codec_destroy(codec);
    return st;
}

lshmoe_status_t lshmoe_codec_validate(const void *in, size_t len, size_t max_decoded_bytes,
                                      lshmoe_segment_info_t *info)
{
    lshmoe_error_clear();
    if (in == NULL && len > 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "codec validate: in is NULL");
    if (info != NULL && info->size < 2 * sizeof(uint32_t))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "codec validate: info->size is %u: fill "
                            "it with LSHMOE_SEGMENT_INFO_INITIALIZER", info->size);
    if (len < LSHMOE_WIRE_HEADER_BYTES)
        return lshmoe_error(LSHMOE_ERR_CORRUPT, "wire segment: %zu bytes, shorter than its "
                            "%u-byte header", len, LSHMOE_WIRE_HEADER_BYTES);
    /* The header says what to expect; the decoder then checks the header
     * itself, and everything else, against the bytes. */
    lshmoe_wire_header_t h;
    lshmoe_wire_header_read(in, &h);
    if (h.dtype >= (uint32_t)LSHMOE_DTYPE_COUNT || h.hidden == 0 || h.ntokens > SIZE_MAX)
        return lshmoe_error(LSHMOE_ERR_CORRUPT, "wire segment: header has dtype %u, hidden "
                            "%u and %llu tokens", (unsigned)h.dtype, (unsigned)h.hidden,
                            (unsigned long long)h.ntokens);
    lshmoe_dtype_t dtype = (lshmoe_dtype_t)h.dtype;
    size_t decoded;
    if (check_shape(dtype, h.hidden, (size_t)h.ntokens, &decoded) != LSHMOE_OK)
        return lshmoe_error(LSHMOE_ERR_CORRUPT, "wire segment: %llu tokens of hidden %u "
                            "overflow", (unsigned long long)h.ntokens, (unsigned)h.hidden);
    if (max_decoded_bytes > 0 && decoded > max_decoded_bytes)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "codec validate: the segment decodes to "
                            "%zu bytes, above the limit of %zu", decoded, max_decoded_bytes);
    void *scratch = malloc(decoded + 1);
    if (scratch == NULL)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "codec validate: cannot allocate %zu "
                            "bytes to decode into", decoded);
    lshmoe_status_t st = lshmoe_codec_decode_rows(in, len, dtype, h.hidden, (size_t)h.ntokens,
                                                  scratch, decoded);
    free(scratch);
    if (st != LSHMOE_OK || info == NULL)
        return st;
    lshmoe_segment_info_t got = {.size = sizeof got, .flags = h.flags, .dtype = dtype,
                                 .hidden = h.hidden, .ntokens = h.ntokens, .nrows = h.nrows,
                                 .segment_bytes = len, .decoded_bytes = decoded};
    return lshmoe_copy_sized(info, &got, sizeof got, 2 * sizeof(uint32_t), "segment info",
                             "LSHMOE_SEGMENT_INFO_INITIALIZER");
}
