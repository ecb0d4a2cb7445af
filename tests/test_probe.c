/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The encoder's sample probe (lshmoe/codec_probe.c): structureless segments
 * go RAW without being hashed in full, compressible ones are never stopped
 * by it, and the row estimate follows the real row count.
 */
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "lshmoe/codec_internal.h"
#include "lshmoe/common/error.h"
#include "testutil.h"

#define HIDDEN 128

static lshmoe_codec_t *codec(void)
{
    lshmoe_codec_params_t p = {
        .lsh = {.seed = 0x5eed, .num_hashes = 6, .cdim = 4, .reduce = LSHMOE_REDUCE_FOLD,
                .reduce_dim = 64, .rounds = 3},
        .compress = 1, .min_tokens = 16, .min_ratio = 1.2, .error_guard = 1, .max_error = 0.5};
    lshmoe_codec_t *c = NULL;
    CU_ASSERT_EQUAL_FATAL(lshmoe_codec_create(&p, &c), LSHMOE_OK);
    return c;
}

/* Encodes n tokens; returns the stats. */
static lshmoe_codec_stats_t encode(lshmoe_codec_t *c, const float *x, size_t n)
{
    size_t cap, len;
    lshmoe_codec_stats_t st;
    memset(&st, 0, sizeof st);
    CU_ASSERT_EQUAL_FATAL(lshmoe_codec_max_bytes(LSHMOE_DTYPE_FP32, HIDDEN, n, &cap), LSHMOE_OK);
    void *out = malloc(cap);
    CU_ASSERT_FATAL(out != NULL);
    CU_ASSERT_EQUAL(lshmoe_codec_encode(c, x, LSHMOE_DTYPE_FP32, HIDDEN, n, out, cap, &len, &st),
                    LSHMOE_OK);
    free(out);
    return st;
}

static void test_probe_stops_structureless_segments(void)
{
    static const size_t sizes[] = {256, 512, 4096};
    lshmoe_codec_t *c = codec();
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        float *x = malloc(sizes[k] * HIDDEN * sizeof(float));
        CU_ASSERT_FATAL(x != NULL);
        lt_gen_gaussian(x, sizes[k], HIDDEN, 3 + k);
        lshmoe_codec_stats_t st = encode(c, x, sizes[k]);
        CU_ASSERT_EQUAL(st.segments_raw, 1);
        CU_ASSERT_EQUAL(st.segments_probed_raw, 1);
        free(x);
    }
    lshmoe_codec_destroy(c);
}

/* Compressible data across ratios near MIN_RATIO and far above it: the
 * probe lets every segment through to the full hash. */
static void test_probe_passes_compressible_segments(void)
{
    static const size_t centers[] = {8, 64, 256};
    lshmoe_codec_t *c = codec();
    for (size_t k = 0; k < sizeof centers / sizeof centers[0]; k++) {
        enum { N = 512 };
        float *x = malloc((size_t)N * HIDDEN * sizeof(float));
        CU_ASSERT_FATAL(x != NULL);
        lt_gen_clustered(x, N, HIDDEN, centers[k], 0.0, 5 + k);
        lshmoe_codec_stats_t st = encode(c, x, N);
        CU_ASSERT_EQUAL(st.segments_probed_raw, 0);
        CU_ASSERT_EQUAL(st.segments_compressed, 1);
        free(x);
    }
    lshmoe_codec_destroy(c);
}

/* The estimate against the real row count: within a factor of two over a
 * range of cluster counts, exact for a segment smaller than the sample. */
static void test_probe_estimate_follows_rows(void)
{
    static const size_t centers[] = {16, 128, 1024, 3000};
    enum { N = 4096 };
    lshmoe_codec_t *c = codec();
    float *x = malloc((size_t)N * HIDDEN * sizeof(float));
    CU_ASSERT_FATAL(x != NULL);
    for (size_t k = 0; k < sizeof centers / sizeof centers[0]; k++) {
        lt_gen_clustered(x, N, HIDDEN, centers[k], 0.0, 9 + k);
        size_t est = 0;
        CU_ASSERT_EQUAL(lshmoe_codec_probe(c, x, LSHMOE_DTYPE_FP32, HIDDEN, N, &est),
                        LSHMOE_OK);
        lshmoe_codec_stats_t st = encode(c, x, N);
        size_t rows = st.segments_compressed ? (size_t)st.rows : N;
        printf(" [%zu centers: est %zu rows %zu]", centers[k], est, rows);
        CU_ASSERT(est > 0);
        CU_ASSERT(2 * est >= rows && est <= 2 * rows);
    }
    lt_gen_clustered(x, 40, HIDDEN, 10, 0.0, 1);
    size_t est = 0;
    CU_ASSERT_EQUAL(lshmoe_codec_probe(c, x, LSHMOE_DTYPE_FP32, HIDDEN, 40, &est), LSHMOE_OK);
    CU_ASSERT(est >= 1 && est <= 10);
    free(x);
    lshmoe_codec_destroy(c);
}

static const lt_test_t tests[] = {
    {"test_probe_stops_structureless_segments", test_probe_stops_structureless_segments},
    {"test_probe_passes_compressible_segments", test_probe_passes_compressible_segments},
    {"test_probe_estimate_follows_rows", test_probe_estimate_follows_rows},
};

LT_MAIN("probe", tests)
