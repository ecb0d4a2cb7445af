/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The SIMD levels hash batches of tokens side by side, one token per vector
 * lane (kernels/cpu/x86/hash_lanes.h), when the rotated dimension is 16 to
 * 128, and the rest of a call one token at a time. Their keys must be the
 * scalar reference's bit for bit whatever the batching, so every level is
 * compared with the reference on every run of consecutive tokens ending at
 * the last one (lengths 1..N: full and partial batches, the per-token tail,
 * and every special token in every lane position), for rotated dimensions
 * 16, 32, 64, 128 (and 256, which stays per token), fold and pad, packed
 * and mixed keys, one to four rotations, three dtypes. The tokens include
 * exact ties (one-hot and small-integer tokens; with one round a one-hot
 * token ties every coordinate, checked below), zero and -0 tokens, NaN, Inf,
 * huge and subnormal ones, and a negated token.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "kernels/kernels.h"
#include "lshmoe/common/dtype.h"
#include "testutil.h"

#define N 67 /* 4 batches of 16 (8 of 8) and 3 tokens */

/* Token i: clustered rows with special ones spread over the lanes. */
static float *make_tokens(size_t hidden)
{
    float *x = malloc(N * hidden * sizeof(float));
    CU_ASSERT_FATAL(x != NULL);
    lt_gen_clustered(x, N, hidden, 5, 0.3, 1000 + hidden);
    for (size_t i = 0; i < N; i++) {
        float *r = x + i * hidden;
        switch (i % 11) {
        case 1: /* one-hot: ties everywhere after one round */
            memset(r, 0, hidden * sizeof(float));
            r[(i * 7) % hidden] = (i & 2) ? -2.0f : 0.5f;
            break;
        case 4: /* small integers: many exact ties */
            for (size_t e = 0; e < hidden; e++)
                r[e] = (float)((int)((e * 5 + i) % 5) - 2);
            break;
        case 6:
            memset(r, 0, hidden * sizeof(float));
            if (i & 1)
                for (size_t e = 0; e < hidden; e++)
                    r[e] = -0.0f;
            break;
        case 8:
            r[(i * 3) % hidden] = (i & 1) ? NAN : -INFINITY;
            break;
        case 9:
            for (size_t e = 0; e < hidden; e++)
                r[e] *= (i & 1) ? 1e30f : 1e-41f; /* huge / subnormal */
            break;
        case 10:
            for (size_t e = 0; e < hidden; e++)
                r[e] = -r[e - 3 * hidden]; /* negated clustered token */
            break;
        default:
            break;
        }
    }
    return x;
}

typedef struct hcase {
    lshmoe_kn_lsh_params_t p;
    size_t hidden;
} hcase_t;

static void hash_n(const lshmoe_kn_hasher_t *h, const unsigned char *tok, lshmoe_dtype_t dt,
                   size_t n, uint64_t *keys, size_t *nf)
{
    void *ws = aligned_alloc(64, (lshmoe_kn_hash_ws_size(h) + 63) / 64 * 64);
    CU_ASSERT_FATAL(ws != NULL);
    lshmoe_kn_hash(h, tok, dt, n, keys, ws, nf);
    free(ws);
}

/* Counts reference/level comparisons that were made. */
static size_t compared;

static void check_case(const hcase_t *c, lshmoe_dtype_t dt, const unsigned char *tok,
                       size_t tb)
{
    lshmoe_kn_hasher_t *h = NULL;
    CU_ASSERT_EQUAL_FATAL(lshmoe_kn_hasher_create(&c->p, c->hidden, &h), LSHMOE_OK);
    uint64_t ref[N], got[N];
    size_t nf_ref, nf_got;
    CU_ASSERT_EQUAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
    hash_n(h, tok, dt, N, ref, &nf_ref);
    CU_ASSERT(nf_ref >= 2); /* the NaN and Inf tokens */
    for (int isa = 1; isa < LSHMOE_KN_ISA_COUNT; isa++) {
        if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
            continue;
        CU_ASSERT_EQUAL(lshmoe_kn_isa_force((lshmoe_kn_isa_t)isa), LSHMOE_OK);
        size_t bad_runs = 0;
        for (size_t n = 1; n <= N; n++) {
            size_t first = N - n, nf_want = 0;
            memset(got, 0xa5, sizeof got);
            hash_n(h, tok + first * tb, dt, n, got, &nf_got);
            for (size_t i = 0; i < n; i++)
                nf_want += ref[first + i] == LSHMOE_KN_KEY_NONFINITE;
            if (memcmp(got, ref + first, n * sizeof(uint64_t)) != 0 || nf_got != nf_want) {
                if (bad_runs++ == 0)
                    printf("\n  %s: keys of tokens %zu..%d differ (hidden %zu dtype %d "
                           "reduce %d m %d L %d cdim %d rounds %d)",
                           lshmoe_kn_isa_name((lshmoe_kn_isa_t)isa), first, N - 1, c->hidden,
                           (int)dt, c->p.reduce, c->p.reduce_dim, c->p.num_hashes, c->p.cdim,
                           c->p.rounds);
            }
            compared++;
        }
        CU_ASSERT_EQUAL(bad_runs, 0);
    }
    lshmoe_kn_hasher_destroy(h);
}

static void test_lanes_match_reference(void)
{
#define FOLD(m, L, cd, r) {.seed = 0x77 + (m) + (L), .num_hashes = (L), .cdim = (cd), \
                           .reduce = LSHMOE_REDUCE_FOLD, .reduce_dim = (m), .rounds = (r)}
#define PAD(L, cd, r) {.seed = 0x99 + (L), .num_hashes = (L), .cdim = (cd), \
                       .reduce = LSHMOE_REDUCE_PAD, .reduce_dim = 0, .rounds = (r)}
    static const hcase_t cases[] = {
        {FOLD(64, 6, 4, 3), 100},   /* the default */
        {FOLD(64, 6, 4, 3), 1024},
        {FOLD(64, 6, 4, 3), 37},    /* hidden below m */
        {FOLD(16, 4, 2, 1), 100},
        {FOLD(32, 8, 4, 2), 130},
        {FOLD(128, 8, 8, 3), 100},
        {FOLD(64, 16, 16, 2), 64},  /* mixed key, four rotations */
        {FOLD(16, 12, 4, 3), 300},  /* three rotations of 16 */
        {FOLD(32, 10, 4, 2), 77},   /* a last rotation with 2 of 8 blocks */
        {FOLD(256, 6, 4, 3), 100},  /* above the lanes' range */
        {PAD(6, 4, 3), 100},        /* m = 128 */
        {PAD(3, 2, 1), 16},         /* m = 16 */
        {PAD(5, 8, 2), 33},         /* m = 64 */
    };
    static const lshmoe_dtype_t dts[] = {LSHMOE_DTYPE_FP32, LSHMOE_DTYPE_FP16,
                                         LSHMOE_DTYPE_BF16};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        size_t hidden = cases[ci].hidden;
        float *x = make_tokens(hidden);
        unsigned char *tok = malloc(N * hidden * sizeof(float));
        CU_ASSERT_FATAL(tok != NULL);
        for (size_t di = 0; di < sizeof dts / sizeof dts[0]; di++) {
            size_t tb = hidden * (dts[di] == LSHMOE_DTYPE_FP32 ? 4 : 2);
            if (dts[di] == LSHMOE_DTYPE_FP32)
                memcpy(tok, x, N * tb);
            else
                lt_to_dtype(x, N * hidden, dts[di], tok);
            check_case(&cases[ci], dts[di], tok, tb);
        }
        free(tok);
        free(x);
    }
    CU_ASSERT_EQUAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
    printf("\n  %zu runs compared with the reference ", compared);
#undef FOLD
#undef PAD
}

/*
 * The data does reach the tie rule: with one round, a one-hot token folds
 * to +-e_k and rotates to H D e_k, whose coordinates all have magnitude
 * 1/sqrt(m) (exact for m = 16 and 64), so every block is a tie and takes
 * its first coordinate: every block value is 0 or 1. Checked for the
 * reference and, through the comparison above, for every level.
 */
static void test_one_hot_ties(void)
{
    static const int ms[] = {16, 64};
    for (size_t mi = 0; mi < 2; mi++) {
        lshmoe_kn_lsh_params_t p = {.seed = 5, .num_hashes = 6, .cdim = 4,
                                    .reduce = LSHMOE_REDUCE_FOLD, .reduce_dim = ms[mi],
                                    .rounds = 1};
        enum { H = 100, T = 40 };
        float x[T * H];
        uint64_t keys[T];
        memset(x, 0, sizeof x);
        for (size_t i = 0; i < T; i++)
            x[i * H + (i * 13) % H] = (i & 1) ? -3.0f : 0.25f;
        lshmoe_kn_hasher_t *h = NULL;
        CU_ASSERT_EQUAL_FATAL(lshmoe_kn_hasher_create(&p, H, &h), LSHMOE_OK);
        for (int isa = 0; isa < LSHMOE_KN_ISA_COUNT; isa++) {
            if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
                continue;
            CU_ASSERT_EQUAL(lshmoe_kn_isa_force((lshmoe_kn_isa_t)isa), LSHMOE_OK);
            size_t nf;
            hash_n(h, (const unsigned char *)x, LSHMOE_DTYPE_FP32, T, keys, &nf);
            for (size_t i = 0; i < T; i++)
                for (int g = 0; g < 6; g++) /* 3 bits per value (cdim 4) */
                    CU_ASSERT((keys[i] >> (3 * g) & 7u) < 2u);
        }
        lshmoe_kn_hasher_destroy(h);
    }
    CU_ASSERT_EQUAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
}

static const lt_test_t tests[] = {
    {"test_lanes_match_reference", test_lanes_match_reference},
    {"test_one_hot_ties", test_one_hot_ties},
};

LT_MAIN("hash_lanes", tests)
