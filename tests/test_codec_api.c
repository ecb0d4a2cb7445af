/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The public codec API (lshmoe_codec.h) through the shared library's
 * symbols only: sizes, encode with a config and with a context, decode
 * into a caller buffer, validate, and the errors each documents.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lshmoe.h"
#include "lshmoe_codec.h"
#include "testutil.h"

#define H 32
#define N 96

/* Three distinct tokens, each repeated: compresses to three rows. */
static void dup_tokens(float *x)
{
    for (size_t t = 0; t < N; t++)
        for (size_t k = 0; k < H; k++)
            x[t * H + k] = (float)((t % 3) * 7 + k) * 0.01f - 0.1f;
}

static void test_codec_api_roundtrip_and_validate(void)
{
    float x[N * H], y[N * H];
    dup_tokens(x);
    size_t cap = 0, len = 0;
    CU_ASSERT_EQUAL(lshmoe_codec_max_encoded_bytes(LSHMOE_DTYPE_FP32, H, N, &cap), LSHMOE_OK);
    CU_ASSERT(cap >= sizeof x);
    unsigned char *seg = malloc(cap);
    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    CU_ASSERT_EQUAL(lshmoe_codec_encode_rows(NULL, &cfg, x, LSHMOE_DTYPE_FP32, H, N, seg, cap,
                                             &len), LSHMOE_OK);
    CU_ASSERT(len > 0 && len < sizeof x / 4); /* duplicates: compressed */
    lshmoe_segment_info_t info = LSHMOE_SEGMENT_INFO_INITIALIZER;
    CU_ASSERT_EQUAL(lshmoe_codec_validate(seg, len, 0, &info), LSHMOE_OK);
    CU_ASSERT_EQUAL(info.dtype, LSHMOE_DTYPE_FP32);
    CU_ASSERT_EQUAL(info.hidden, H);
    CU_ASSERT_EQUAL(info.ntokens, N);
    CU_ASSERT_EQUAL(info.nrows, 3);
    CU_ASSERT_EQUAL(info.segment_bytes, len);
    CU_ASSERT_EQUAL(info.decoded_bytes, sizeof x);
    CU_ASSERT_EQUAL(lshmoe_codec_decode_rows(seg, len, LSHMOE_DTYPE_FP32, H, N, y, sizeof y),
                    LSHMOE_OK);
    /* means of equal rows: only the rounding of the fp32 sums */
    for (size_t i = 0; i < N * H; i++)
        CU_ASSERT(fabsf(x[i] - y[i]) <= 1e-6f * (1.0f + fabsf(x[i])));

    /* The documented failures. */
    CU_ASSERT_EQUAL(lshmoe_codec_decode_rows(seg, len, LSHMOE_DTYPE_FP32, H, N, y,
                                             sizeof y - 1), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(lshmoe_codec_decode_rows(seg, len, LSHMOE_DTYPE_FP32, H, N - 1, y,
                                             sizeof y), LSHMOE_ERR_MISMATCH);
    CU_ASSERT_EQUAL(lshmoe_codec_validate(seg, len - 8, 0, &info), LSHMOE_ERR_CORRUPT);
    CU_ASSERT_EQUAL(lshmoe_codec_validate(seg, 10, 0, NULL), LSHMOE_ERR_CORRUPT);
    CU_ASSERT_EQUAL(lshmoe_codec_validate(seg, len, 100, NULL), LSHMOE_ERR_INVALID_ARG);
    seg[len - 1] ^= 1; /* the checksum catches a flipped bit */
    CU_ASSERT_EQUAL(lshmoe_codec_validate(seg, len, 0, NULL), LSHMOE_ERR_CORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(lshmoe_last_error(NULL), "wire segment"));
    CU_ASSERT_EQUAL(lshmoe_codec_encode_rows(NULL, &cfg, x, LSHMOE_DTYPE_FP32, H, N, seg,
                                             cap - 1, &len), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(lshmoe_codec_max_encoded_bytes(LSHMOE_DTYPE_FP32, 0, N, &cap),
                    LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(lshmoe_codec_validate(NULL, 8, 0, NULL), LSHMOE_ERR_INVALID_ARG);
    lshmoe_config_t bad = cfg;
    bad.magic = 0;
    CU_ASSERT_EQUAL(lshmoe_codec_encode_rows(NULL, &bad, x, LSHMOE_DTYPE_FP32, H, N, seg, cap,
                                             &len), LSHMOE_ERR_NOT_INIT);
    free(seg);
}

/* With a context: its config (here compress 0, so RAW and exact) and its
 * error text. Integer tokens always travel RAW. */
static void test_codec_api_context_and_raw(void)
{
    lshmoe_comm_desc_t d = LSHMOE_COMM_DESC_INITIALIZER;
    d.rank = 0;
    d.nranks = 1;
    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    cfg.compress = 0;
    lshmoe_ctx_t *ctx = NULL;
    CU_ASSERT_EQUAL_FATAL(lshmoe_ctx_create(&d, &cfg, &ctx), LSHMOE_OK);
    float x[N * H], y[N * H];
    dup_tokens(x);
    x[5] = -0.0f;
    x[6] = NAN;
    size_t cap = 0, len = 0;
    CU_ASSERT_EQUAL(lshmoe_codec_max_encoded_bytes(LSHMOE_DTYPE_FP32, H, N, &cap), LSHMOE_OK);
    unsigned char *seg = malloc(cap);
    CU_ASSERT_EQUAL(lshmoe_codec_encode_rows(ctx, NULL, x, LSHMOE_DTYPE_FP32, H, N, seg, cap,
                                             &len), LSHMOE_OK);
    lshmoe_segment_info_t info = LSHMOE_SEGMENT_INFO_INITIALIZER;
    CU_ASSERT_EQUAL(lshmoe_codec_validate(seg, len, 0, &info), LSHMOE_OK);
    CU_ASSERT_EQUAL(info.nrows, N); /* raw */
    CU_ASSERT_EQUAL(lshmoe_codec_decode_rows(seg, len, LSHMOE_DTYPE_FP32, H, N, y, sizeof y),
                    LSHMOE_OK);
    CU_ASSERT_EQUAL(memcmp(x, y, sizeof x), 0); /* byte-exact, -0.0 and NaN included */
    CU_ASSERT_EQUAL(lshmoe_codec_encode_rows(ctx, NULL, NULL, LSHMOE_DTYPE_FP32, H, N, seg,
                                             cap, &len), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(lshmoe_last_error(ctx), "tokens"));

    int32_t ints[N * H];
    for (size_t i = 0; i < N * H; i++)
        ints[i] = (int32_t)(i % 5);
    CU_ASSERT_EQUAL(lshmoe_codec_encode_rows(NULL, NULL, ints, LSHMOE_DTYPE_INT32, H, N, seg,
                                             cap, &len), LSHMOE_OK);
    CU_ASSERT_EQUAL(lshmoe_codec_validate(seg, len, 0, &info), LSHMOE_OK);
    CU_ASSERT_EQUAL(info.dtype, LSHMOE_DTYPE_INT32);
    CU_ASSERT_EQUAL(info.nrows, N);
    free(seg);
    lshmoe_ctx_destroy(ctx);
}

static const lt_test_t tests[] = {
    {"test_codec_api_roundtrip_and_validate", test_codec_api_roundtrip_and_validate},
    {"test_codec_api_context_and_raw", test_codec_api_context_and_raw},
};

LT_MAIN("codec_api", tests)
