/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The encoder's sample probe (lshmoe/codec_probe.c): structureless segments
 * go RAW without being hashed in full, compressible ones are never stopped
 * by it, and the row estimate follows the real row count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "kernels/common/quant_math.h"
#include "lshmoe/codec_internal.h"
#include "lshmoe/common/error.h"
#include "testutil.h"

#define HIDDEN 128

static lshmoe_codec_t *codec_mode(int mode)
{
    lshmoe_codec_params_t p = {.mode = mode,
        .lsh = {.seed = 0x5eed, .num_hashes = 6, .cdim = 4, .reduce = LSHMOE_REDUCE_FOLD,
                .reduce_dim = 64, .rounds = 3},
        .compress = 1, .min_tokens = 16, .min_ratio = 1.2, .error_guard = 1, .max_error = 0.5};
    lshmoe_codec_t *c = NULL;
    CU_ASSERT_EQUAL_FATAL(lshmoe_codec_create(&p, &c), LSHMOE_OK);
    return c;
}

static lshmoe_codec_t *codec(void)
{
    return codec_mode(LSHMOE_CODEC_LSH);
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

/* The ratio the policy predicts per codec mode: a row format alone is its
 * format's ratio whatever the data (structureless tokens included), LSH on
 * structureless tokens stays under MIN_RATIO, LSH with a row format
 * multiplies the two (budget: test_probe_budget_forecast). */
static void test_probe_ratio_follows_codec_mode(void)
{
    enum { N = 2048 };
    float *x = malloc((size_t)N * HIDDEN * sizeof(float));
    CU_ASSERT_FATAL(x != NULL);
    lt_gen_gaussian(x, N, HIDDEN, 5);
    double tb = HIDDEN * 4.0, r_lsh, r;
    lshmoe_codec_t *c = codec();
    CU_ASSERT_EQUAL(lshmoe_codec_probe_ratio(c, x, LSHMOE_DTYPE_FP32, HIDDEN, N, &r_lsh),
                    LSHMOE_OK);
    CU_ASSERT(r_lsh > 0.0 && r_lsh < 1.2);
    lshmoe_codec_destroy(c);
    static const struct { int mode, fmt; } fixed[] = {
        {LSHMOE_CODEC_INT8, LSHMOE_QM_INT8}, {LSHMOE_CODEC_FP8, LSHMOE_QM_FP8},
        {LSHMOE_CODEC_INT4, LSHMOE_QM_INT4}, {LSHMOE_CODEC_INT2, LSHMOE_QM_INT2}};
    for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++) {
        c = codec_mode(fixed[k].mode);
        CU_ASSERT_EQUAL(lshmoe_codec_probe_ratio(c, x, LSHMOE_DTYPE_FP32, HIDDEN, N, &r),
                        LSHMOE_OK);
        CU_ASSERT_DOUBLE_EQUAL(r, tb / (double)lshmoe_qm_row_bytes(fixed[k].fmt, HIDDEN),
                               1e-12);
        CU_ASSERT(r > 1.2); /* so the policy does not send it plain */
        lshmoe_codec_destroy(c);
    }
    c = codec_mode(LSHMOE_CODEC_NATIVE);
    CU_ASSERT_EQUAL(lshmoe_codec_probe_ratio(c, x, LSHMOE_DTYPE_FP32, HIDDEN, N, &r), LSHMOE_OK);
    CU_ASSERT_DOUBLE_EQUAL(r, 1.0, 1e-12);
    lshmoe_codec_destroy(c);
    c = codec_mode(LSHMOE_CODEC_LSH_INT8); /* same hash parameters: same sample */
    CU_ASSERT_EQUAL(lshmoe_codec_probe_ratio(c, x, LSHMOE_DTYPE_FP32, HIDDEN, N, &r), LSHMOE_OK);
    CU_ASSERT_DOUBLE_EQUAL(r, r_lsh * tb / (double)lshmoe_qm_row_bytes(LSHMOE_QM_INT8, HIDDEN),
                           1e-9 * r);
    lshmoe_codec_destroy(c);
    free(x);
}

static lshmoe_codec_t *budget_codec(double max_error)
{
    lshmoe_codec_params_t p = {.mode = LSHMOE_CODEC_BUDGET,
        .lsh = {.seed = 0x5eed, .num_hashes = 6, .cdim = 4, .reduce = LSHMOE_REDUCE_FOLD,
                .reduce_dim = 64, .rounds = 3},
        .compress = 1, .min_tokens = 16, .min_ratio = 1.2, .error_guard = 1,
        .max_error = max_error, .search = LSHMOE_CODEC_SEARCH_SAMPLE};
    lshmoe_codec_t *c = NULL;
    CU_ASSERT_EQUAL_FATAL(lshmoe_codec_create(&p, &c), LSHMOE_OK);
    return c;
}

/* The budget codec's forecast: on structureless tokens, budgets that a row
 * format meets forecast that format's ratio (the encoder's real choice,
 * within its header), and a budget nothing meets forecasts RAW, where the
 * encoder bails out after the sample: far fewer token rows visited than
 * one pass, and byte-exact RAW. */
static void test_probe_budget_forecast(void)
{
    enum { N = 2048 };
    float *x = malloc((size_t)N * HIDDEN * sizeof(float));
    CU_ASSERT_FATAL(x != NULL);
    lt_gen_gaussian(x, N, HIDDEN, 5);
    static const double budgets[] = {0.02, 0.3};
    for (size_t b = 0; b < 2; b++) {
        lshmoe_codec_t *c = budget_codec(budgets[b]);
        double r;
        CU_ASSERT_EQUAL(lshmoe_codec_probe_ratio(c, x, LSHMOE_DTYPE_FP32, HIDDEN, N, &r),
                        LSHMOE_OK);
        lshmoe_codec_stats_t st = encode(c, x, N);
        double real = (double)st.bytes_in / (double)st.bytes_wire;
        fprintf(stderr, "budget %.2f: forecast ratio %.3f, encoded %.3f\n", budgets[b], r,
                real);
        CU_ASSERT(st.segments_compressed == 1);
        CU_ASSERT(r > 1.2 && r >= 0.9 * real && r <= 1.25 * real);
        CU_ASSERT_EQUAL(st.segments_probed_raw, 0);
        lshmoe_codec_destroy(c);
    }
    lshmoe_codec_t *c = budget_codec(0.001); /* int8 is ~0.01 on Gaussian rows */
    double r;
    CU_ASSERT_EQUAL(lshmoe_codec_probe_ratio(c, x, LSHMOE_DTYPE_FP32, HIDDEN, N, &r), LSHMOE_OK);
    CU_ASSERT(r > 0.0 && r < 1.2);
    lshmoe_codec_stats_t st = encode(c, x, N);
    CU_ASSERT_EQUAL(st.segments_raw, 1);
    CU_ASSERT_EQUAL(st.segments_probed_raw, 1);
    CU_ASSERT(st.search_tokens < N / 4);
    size_t raw;
    CU_ASSERT_EQUAL(lshmoe_codec_max_bytes(LSHMOE_DTYPE_FP32, HIDDEN, N, &raw), LSHMOE_OK);
    CU_ASSERT_EQUAL(st.bytes_wire, raw);
    lshmoe_codec_destroy(c);
    free(x);
}

static const lt_test_t tests[] = {
    {"test_probe_stops_structureless_segments", test_probe_stops_structureless_segments},
    {"test_probe_passes_compressible_segments", test_probe_passes_compressible_segments},
    {"test_probe_estimate_follows_rows", test_probe_estimate_follows_rows},
    {"test_probe_ratio_follows_codec_mode", test_probe_ratio_follows_codec_mode},
    {"test_probe_budget_forecast", test_probe_budget_forecast},
};

LT_MAIN("probe", tests)
