/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* Grouping, centroids, expansion and residual coding (kernels/cpu/). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "kernels/kernels.h"
#include "lshmoe/common/dtype.h"
#include "testutil.h"

#define NONF LSHMOE_KN_KEY_NONFINITE

static size_t group(const uint64_t *keys, size_t n, uint32_t *cl)
{
    /* Odd offset: the kernel must align its table itself. */
    unsigned char *ws = malloc(lshmoe_kn_group_ws_size(n) + 3);
    size_t nc = 12345;
    lshmoe_kn_group(keys, n, cl, &nc, ws + 3);
    free(ws);
    return nc;
}

static void test_group_first_appearance(void)
{
    const uint64_t keys[] = {5, 7, 5, NONF, 9, 7, NONF, 5, 0, (1ull << 63) - 1};
    const uint32_t want[] = {0, 1, 0, 2, 3, 1, 4, 0, 5, 6};
    uint32_t cl[10];
    CU_ASSERT_EQUAL(group(keys, 10, cl), 7);
    CU_ASSERT(memcmp(cl, want, sizeof want) == 0);
    CU_ASSERT_EQUAL(group(keys, 0, cl), 0);
}

/* Groups keys[0 .. n) and checks the numbering against a naive search;
 * returns the number of clusters. */
static size_t check_naive(const uint64_t *keys, size_t n)
{
    uint64_t *seen = malloc(n * 8);
    uint32_t *cl = malloc(n * 4);
    CU_ASSERT_FATAL(seen != NULL && cl != NULL);
    size_t nc = group(keys, n, cl), nseen = 0;
    for (size_t i = 0; i < n; i++) {
        size_t c = nseen;
        if (keys[i] != NONF)
            for (c = 0; c < nseen && seen[c] != keys[i]; c++)
                ;
        if (c == nseen)
            seen[nseen++] = keys[i];
        CU_ASSERT_EQUAL_FATAL(cl[i], c);
    }
    CU_ASSERT_EQUAL(nc, nseen);
    free(seen);
    free(cl);
    return nc;
}

/* Many tokens, many collisions in the table: agrees with a naive search. */
static void test_group_matches_naive(void)
{
    enum { N = 5000 };
    uint64_t *keys = malloc(N * 8);
    CU_ASSERT_FATAL(keys != NULL);
    for (size_t i = 0; i < N; i++) {
        uint64_t r = lt_hash64(3, i);
        /* few distinct keys differing only in high bits, some NONFINITE */
        keys[i] = (r % 17 == 0) ? NONF : (r % 300) << 40;
    }
    size_t nc = check_naive(keys, N);
    CU_ASSERT(nc > 300 && nc < 700);
    /* every key distinct (the table at its fullest), small packed-like keys */
    for (size_t i = 0; i < N; i++)
        keys[i] = (uint64_t)(N - i) * 3u;
    CU_ASSERT_EQUAL(check_naive(keys, N), N);
    /* keys that differ only in their lowest bits, repeated in runs */
    for (size_t i = 0; i < N; i++)
        keys[i] = (uint64_t)(lt_hash64(5, i / 3) % 64) | (1ull << 62);
    nc = check_naive(keys, N);
    CU_ASSERT_EQUAL(nc, 64);
    free(keys);
}

static void test_centroids_exact_mean(void)
{
    /* cluster 0: tokens 0, 2, 3; cluster 1: tokens 1, 4 */
    const float tok[5][3] = {{1, 2, 3}, {0.5f, -1, 10}, {3, 4, 5}, {-1, 0, 7},
                             {1.5f, 1, -10}};
    const uint32_t cl[5] = {0, 1, 0, 0, 1};
    const float want[2][3] = {{1, 2, 5}, {1, 0, 0}};
    const lshmoe_dtype_t dts[] = {LSHMOE_DTYPE_FP32, LSHMOE_DTYPE_FP16, LSHMOE_DTYPE_BF16};
    for (size_t d = 0; d < 3; d++) {
        unsigned char in[5 * 3 * 4], rows[2 * 3 * 4];
        float acc[2 * 3], got[2 * 3];
        uint32_t sizes[2];
        lt_to_dtype(&tok[0][0], 15, dts[d], in);
        lshmoe_kn_centroids(in, dts[d], 3, 5, cl, 2, rows, sizes, acc);
        lshmoe_row_to_f32(rows, dts[d], 6, got);
        CU_ASSERT(memcmp(got, want, sizeof want) == 0);
        CU_ASSERT(sizes[0] == 3 && sizes[1] == 2);
    }
}

static void test_centroids_round_to_nearest_even(void)
{
    /* bf16 mean of 1 and 1 + 2^-7 is 1 + 2^-8: a tie, rounds to even 1.0;
     * mean of 1 + 2^-7 and 1 + 2^-6 is 1 + 3 * 2^-8: tie, rounds up. */
    const float tok[4] = {1.0f, 1.0f + 0x1p-7f, 1.0f + 0x1p-7f, 1.0f + 0x1p-6f};
    const uint32_t cl[4] = {0, 0, 1, 1};
    uint16_t in[4], rows[2];
    float acc[2];
    uint32_t sizes[2];
    lt_to_dtype(tok, 4, LSHMOE_DTYPE_BF16, in);
    lshmoe_kn_centroids(in, LSHMOE_DTYPE_BF16, 1, 4, cl, 2, rows, sizes, acc);
    CU_ASSERT_EQUAL(rows[0], 0x3f80);
    CU_ASSERT_EQUAL(rows[1], 0x3f82);
}

/* Clusters of one token are byte copies: NaN payloads and -0 survive. */
static void test_centroids_singleton_byte_copy(void)
{
    const uint32_t f32[4] = {0x7fa00001u, 0xff800000u, 0x80000000u, 0x3f800000u};
    const uint16_t f16[4] = {0x7c01u, 0xfd55u, 0x8000u, 0x3c00u};
    const uint16_t b16[4] = {0x7f81u, 0xffc3u, 0x8000u, 0x3f80u};
    /* token 0 alone; tokens 1 and 2 together (and finite in the mix) */
    const uint32_t cl[3] = {0, 1, 1};
    float acc[2 * 4];
    uint32_t sizes[2];
    uint32_t rows32[8];
    uint16_t rows16[8], tok16[12];
    uint32_t tok32[12];
    for (size_t i = 0; i < 3; i++) {
        memcpy(tok32 + 4 * i, f32, sizeof f32);
        memcpy(tok16 + 4 * i, f16, sizeof f16);
    }
    /* Make token 1 and 2 finite so their mean is defined. */
    const float fin[8] = {1, 2, 3, 4, 3, 2, 1, 0};
    memcpy(tok32 + 4, fin, sizeof fin);
    lshmoe_kn_centroids(tok32, LSHMOE_DTYPE_FP32, 4, 3, cl, 2, rows32, sizes, acc);
    CU_ASSERT(memcmp(rows32, f32, sizeof f32) == 0);
    CU_ASSERT(sizes[0] == 1 && sizes[1] == 2);
    lt_to_dtype(fin, 8, LSHMOE_DTYPE_FP16, tok16 + 4);
    lshmoe_kn_centroids(tok16, LSHMOE_DTYPE_FP16, 4, 3, cl, 2, rows16, sizes, acc);
    CU_ASSERT(memcmp(rows16, f16, sizeof f16) == 0);
    memcpy(tok16, b16, sizeof b16);
    lt_to_dtype(fin, 8, LSHMOE_DTYPE_BF16, tok16 + 4);
    lshmoe_kn_centroids(tok16, LSHMOE_DTYPE_BF16, 4, 3, cl, 2, rows16, sizes, acc);
    CU_ASSERT(memcmp(rows16, b16, sizeof b16) == 0);
    float mean[4];
    lshmoe_row_to_f32(rows16 + 4, LSHMOE_DTYPE_BF16, 4, mean);
    CU_ASSERT(mean[0] == 2 && mean[1] == 2 && mean[2] == 2 && mean[3] == 2);
}

static void test_expand_copies_rows(void)
{
    const float rows[3][2] = {{1, 2}, {3, 4}, {5, 6}};
    const uint32_t cl[5] = {2, 0, 0, 1, 2};
    float out[5][2];
    lshmoe_kn_expand(rows, LSHMOE_DTYPE_FP32, 2, 5, cl, out);
    for (size_t i = 0; i < 5; i++)
        CU_ASSERT(memcmp(out[i], rows[cl[i]], sizeof rows[0]) == 0);
    uint16_t r16[3] = {0x7c01, 0x8000, 0x1234}, o16[5];
    lshmoe_kn_expand(r16, LSHMOE_DTYPE_BF16, 1, 5, cl, o16);
    for (size_t i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(o16[i], r16[cl[i]]);
}

static void test_residual_bytes(void)
{
    CU_ASSERT_EQUAL(lshmoe_kn_residual_bytes(1024, 8), 1028);
    CU_ASSERT_EQUAL(lshmoe_kn_residual_bytes(1024, 4), 516);
    CU_ASSERT_EQUAL(lshmoe_kn_residual_bytes(1023, 4), 516);
    CU_ASSERT_EQUAL(lshmoe_kn_residual_bytes(1, 4), 5);
    CU_ASSERT_EQUAL(lshmoe_kn_residual_bytes(1, 8), 5);
}

/* Exact layout: scale = max |r| / 7, q rounded, low nibble first, odd
 * tail nibble 0; int8 likewise with qmax 127. */
static void test_residual_int4_layout(void)
{
    const float row[5] = {0, 0, 0, 0, 0};
    const float tok[5] = {7, -7, 2.5f, -1.4f, 3.5f};  /* scale 1 */
    const uint32_t cl[1] = {0};
    unsigned char coded[16];
    float scratch[5], scale;
    lshmoe_kn_residual_encode(tok, row, LSHMOE_DTYPE_FP32, 5, 1, cl, 4, coded, scratch);
    memcpy(&scale, coded, 4);
    CU_ASSERT(scale == 1.0f);
    /* q = 7, -7, 2 (tie to even), -1, 4 (tie to even) */
    CU_ASSERT_EQUAL(coded[4], 0x97);  /* 7 | (-7 & 0xf) << 4 */
    CU_ASSERT_EQUAL(coded[5], 0xf2);  /* 2 | (-1 & 0xf) << 4 */
    CU_ASSERT_EQUAL(coded[6], 0x04);  /* 4, high nibble 0    */
    const float tok8[3] = {127, -63.5f, 0.25f};
    lshmoe_kn_residual_encode(tok8, row, LSHMOE_DTYPE_FP32, 3, 1, cl, 8, coded, scratch);
    memcpy(&scale, coded, 4);
    CU_ASSERT(scale == 1.0f);
    CU_ASSERT_EQUAL((int8_t)coded[4], 127);
    CU_ASSERT_EQUAL((int8_t)coded[5], -64);
    CU_ASSERT_EQUAL((int8_t)coded[6], 0);
    float out[3] = {0, 0, 0};
    lshmoe_kn_residual_decode(coded, LSHMOE_DTYPE_FP32, 3, 1, 8, out, scratch);
    CU_ASSERT(out[0] == 127 && out[1] == -64 && out[2] == 0);
}

/* Clusters some clustered tokens; fills cl, rows (dtype) and returns the
 * number of clusters. */
static size_t cluster_tokens(const void *tok, lshmoe_dtype_t dt, size_t n, size_t hidden,
                             const lshmoe_kn_lsh_params_t *p, uint32_t *cl, void *rows)
{
    lshmoe_kn_hasher_t *h = NULL;
    CU_ASSERT_EQUAL_FATAL(lshmoe_kn_hasher_create(p, hidden, &h), LSHMOE_OK);
    void *ws = aligned_alloc(64, lshmoe_kn_hash_ws_size(h));
    uint64_t *keys = malloc(n * 8);
    size_t nonfinite;
    lshmoe_kn_hash(h, tok, dt, n, keys, ws, &nonfinite);
    size_t nc = group(keys, n, cl);
    float *acc = malloc(nc * hidden * sizeof(float));
    uint32_t *sizes = malloc(nc * 4);
    lshmoe_kn_centroids(tok, dt, hidden, n, cl, nc, rows, sizes, acc);
    free(ws);
    free(keys);
    free(acc);
    free(sizes);
    lshmoe_kn_hasher_destroy(h);
    return nc;
}

/* Decoded residual error is at most scale / 2 per element (plus fp32 and,
 * for half types, the final rounding to dtype). */
static void test_residual_error_bounded(void)
{
    enum { N = 256, H = 300 };
    const lshmoe_dtype_t dts[] = {LSHMOE_DTYPE_FP32, LSHMOE_DTYPE_FP16, LSHMOE_DTYPE_BF16};
    const lshmoe_kn_lsh_params_t p = {.seed = 1, .num_hashes = 4, .cdim = 4,
                                      .reduce = LSHMOE_REDUCE_FOLD, .reduce_dim = 64,
                                      .rounds = 3};
    float *x = malloc(N * H * sizeof(float)), *xd = malloc(N * H * sizeof(float));
    float *rec = malloc(N * H * sizeof(float)), *scratch = malloc(H * sizeof(float));
    unsigned char *tok = malloc(N * H * 4), *rows = malloc(N * H * 4), *out = malloc(N * H * 4);
    unsigned char *coded = malloc(N * lshmoe_kn_residual_bytes(H, 8));
    uint32_t cl[N];
    lt_gen_clustered(x, N, H, 8, 0.2, 31);
    for (size_t d = 0; d < 3; d++) {
        lt_to_dtype(x, N * H, dts[d], tok);
        lshmoe_row_to_f32(tok, dts[d], N * H, xd);
        size_t nc = cluster_tokens(tok, dts[d], N, H, &p, cl, rows);
        CU_ASSERT(nc > 8 && nc < N / 2);
        for (int bits = 4; bits <= 8; bits += 4) {
            size_t stride = lshmoe_kn_residual_bytes(H, bits);
            lshmoe_kn_residual_encode(tok, rows, dts[d], H, N, cl, bits, coded, scratch);
            lshmoe_kn_expand(rows, dts[d], H, N, cl, out);
            double before = 0.0;
            lshmoe_row_to_f32(out, dts[d], N * H, rec);
            before = lt_rel_l2(rec, xd, N * H);
            lshmoe_kn_residual_decode(coded, dts[d], H, N, bits, out, scratch);
            lshmoe_row_to_f32(out, dts[d], N * H, rec);
            size_t nonzero = 0;
            for (size_t i = 0; i < N; i++) {
                float scale;
                memcpy(&scale, coded + i * stride, 4);
                CU_ASSERT_FATAL(scale >= 0.0f && isfinite(scale));
                nonzero += scale > 0.0f;
                for (size_t j = 0; j < H; j++) {
                    float v = rec[i * H + j], want = xd[i * H + j];
                    /* half an ulp of the dtype at |v| (0 for fp32) */
                    float ulp = dts[d] == LSHMOE_DTYPE_FP32 ? 0.0f
                              : ldexpf(fabsf(v) + 1e-30f, dts[d] == LSHMOE_DTYPE_FP16 ? -11 : -8);
                    float tol = scale * 0.5f * (1.0f + 1e-5f) + ulp + 1e-6f * fabsf(want);
                    CU_ASSERT_FATAL(fabsf(v - want) <= tol);
                }
            }
            CU_ASSERT(nonzero > N / 2);
            double after = lt_rel_l2(rec, xd, N * H);
            /* int8 removes nearly all of the error, int4 most of it */
            CU_ASSERT(after < before * (bits == 8 ? 0.05 : 0.3));
        }
    }
    free(x);
    free(xd);
    free(rec);
    free(scratch);
    free(tok);
    free(rows);
    free(out);
    free(coded);
}

/* A row equal to its token (singletons, NaN tokens) codes scale 0 and
 * all-zero payload, and decoding leaves the bytes untouched. */
static void test_residual_zero_when_exact(void)
{
    enum { N = 4, H = 33 };
    float x[N * H], scratch[H];
    uint32_t cl[N] = {0, 1, 2, 3};
    lt_gen_gaussian(x, N, H, 9);
    x[1 * H + 5] = NAN;
    x[2 * H + 0] = -INFINITY;
    x[3 * H + 7] = -0.0f;
    for (int bits = 4; bits <= 8; bits += 4) {
        size_t stride = lshmoe_kn_residual_bytes(H, bits);
        unsigned char coded[N * (4 + H)];
        memset(coded, 0xee, sizeof coded);
        lshmoe_kn_residual_encode(x, x, LSHMOE_DTYPE_FP32, H, N, cl, bits, coded, scratch);
        for (size_t i = 0; i < N * stride; i++)
            CU_ASSERT_EQUAL_FATAL(coded[i], 0);
        float out[N * H];
        memcpy(out, x, sizeof out);
        lshmoe_kn_residual_decode(coded, LSHMOE_DTYPE_FP32, H, N, bits, out, scratch);
        CU_ASSERT(memcmp(out, x, sizeof out) == 0);
    }
}

/* The honest operating points: clustered data compresses, Gaussian does not. */
static void test_cluster_ratio_on_clustered_and_gaussian(void)
{
    enum { N = 2048, H = 1024 };
    const lshmoe_kn_lsh_params_t p = {.seed = 7, .num_hashes = 6, .cdim = 4,
                                      .reduce = LSHMOE_REDUCE_FOLD, .reduce_dim = 64,
                                      .rounds = 3};
    float *x = malloc(N * H * sizeof(float)), *rows = malloc(N * H * sizeof(float));
    float *rec = malloc(N * H * sizeof(float));
    uint32_t *cl = malloc(N * 4);
    /* 64 centres, noise 0.05: measured 2048 tokens -> 188 clusters (ratio
     * 10.9), rel L2 0.048, i.e. the noise level: clusters never mix
     * centres (that would cost ~1.4 per mixed token), so < 0.1 holds too. */
    lt_gen_clustered(x, N, H, 64, 0.05, 17);
    size_t nc = cluster_tokens(x, LSHMOE_DTYPE_FP32, N, H, &p, cl, rows);
    lshmoe_kn_expand(rows, LSHMOE_DTYPE_FP32, H, N, cl, rec);
    CU_ASSERT((double)N / (double)nc > 2.0);
    CU_ASSERT(lt_rel_l2(rec, x, N * H) < 0.3);
    CU_ASSERT(lt_rel_l2(rec, x, N * H) < 0.1);
    /* i.i.d. Gaussian: 8^6 buckets, measured 2048 -> 2041 clusters. */
    lt_gen_gaussian(x, N, H, 18);
    nc = cluster_tokens(x, LSHMOE_DTYPE_FP32, N, H, &p, cl, rows);
    CU_ASSERT((double)N / (double)nc < 1.2);
    free(x);
    free(rows);
    free(rec);
    free(cl);
}

static const lt_test_t tests[] = {
    {"test_group_first_appearance", test_group_first_appearance},
    {"test_group_matches_naive", test_group_matches_naive},
    {"test_centroids_exact_mean", test_centroids_exact_mean},
    {"test_centroids_round_to_nearest_even", test_centroids_round_to_nearest_even},
    {"test_centroids_singleton_byte_copy", test_centroids_singleton_byte_copy},
    {"test_expand_copies_rows", test_expand_copies_rows},
    {"test_residual_bytes", test_residual_bytes},
    {"test_residual_int4_layout", test_residual_int4_layout},
    {"test_residual_error_bounded", test_residual_error_bounded},
    {"test_residual_zero_when_exact", test_residual_zero_when_exact},
    {"test_cluster_ratio_on_clustered_and_gaussian", test_cluster_ratio_on_clustered_and_gaussian},
};

LT_MAIN("cluster", tests)
