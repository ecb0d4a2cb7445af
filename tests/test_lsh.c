/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* FWHT and cross-polytope LSH keys (kernels/cpu/fwht.c, lsh_hash.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "kernels/kernels.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"
#include "testutil.h"

#define NTOK 512
#define HIDDEN 1024

static lshmoe_kn_lsh_params_t params(int reduce, int m, int L, int cdim, int rounds,
                                     uint64_t seed)
{
    lshmoe_kn_lsh_params_t p = {.seed = seed, .num_hashes = L, .cdim = cdim,
                                .reduce = reduce, .reduce_dim = m, .rounds = rounds};
    return p;
}

/* Hashes n tokens with a freshly made hasher and a workspace of exactly the
 * advertised size (ASan catches overruns). Returns the nonfinite count. */
static size_t hash_with(const lshmoe_kn_lsh_params_t *p, size_t hidden,
                        const void *tok, lshmoe_dtype_t dt, size_t n, uint64_t *keys)
{
    lshmoe_kn_hasher_t *h = NULL;
    CU_ASSERT_EQUAL_FATAL(lshmoe_kn_hasher_create(p, hidden, &h), LSHMOE_OK);
    size_t ws_size = lshmoe_kn_hash_ws_size(h);
    CU_ASSERT_FATAL(ws_size % 64 == 0 && ws_size > 0);
    void *ws = aligned_alloc(64, ws_size);
    CU_ASSERT_FATAL(ws != NULL);
    size_t nonfinite = 12345;
    lshmoe_kn_hash(h, tok, dt, n, keys, ws, &nonfinite);
    free(ws);
    lshmoe_kn_hasher_destroy(h);
    return nonfinite;
}

static float *gaussian(size_t n, size_t hidden, uint64_t seed)
{
    float *x = malloc(n * hidden * sizeof(float));
    CU_ASSERT_FATAL(x != NULL);
    lt_gen_gaussian(x, n, hidden, seed);
    return x;
}

/* ---- FWHT ---------------------------------------------------------------- */

static void test_fwht_matches_naive(void)
{
    for (size_t n = 1; n <= 1024; n *= 2) {
        float *v = gaussian(1, n, 3 + n);
        double *ref = calloc(n, sizeof(double));
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < n; j++) {
                int odd = __builtin_popcountll(i & j) & 1;
                ref[i] += odd ? -(double)v[j] : (double)v[j];
            }
            ref[i] /= sqrt((double)n);
        }
        lshmoe_kn_fwht(v, n);
        double err = 0.0, norm = 0.0;
        for (size_t i = 0; i < n; i++) {
            err += (v[i] - ref[i]) * (v[i] - ref[i]);
            norm += ref[i] * ref[i];
        }
        CU_ASSERT(sqrt(err / norm) < 1e-6);
        free(v);
        free(ref);
    }
}

static void test_fwht_involution(void)
{
    /* n = 4^k with small integers: every step is exact, so H(H v) == v. */
    const size_t exact_n[] = {4, 16, 64, 256, 1024, 4096};
    for (size_t t = 0; t < sizeof exact_n / sizeof exact_n[0]; t++) {
        size_t n = exact_n[t];
        float *v = malloc(n * sizeof(float)), *w = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++)
            v[i] = w[i] = (float)((int)(lt_hash64(n, i) % 201) - 100);
        lshmoe_kn_fwht(w, n);
        CU_ASSERT(memcmp(v, w, n * sizeof(float)) != 0);
        lshmoe_kn_fwht(w, n);
        CU_ASSERT(memcmp(v, w, n * sizeof(float)) == 0);
        free(v);
        free(w);
    }
    /* Other sizes: equal up to rounding. */
    for (size_t n = 2; n <= 4096; n *= 4) {
        float *v = gaussian(1, n, n), *w = gaussian(1, n, n);
        lshmoe_kn_fwht(w, n);
        lshmoe_kn_fwht(w, n);
        CU_ASSERT(lt_rel_l2(w, v, n) < 1e-6);
        free(v);
        free(w);
    }
}

/* ---- the key, step by step from the specification in lsh_hash.c --------- */

static uint64_t spec_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float spec_sign(uint64_t seed, uint64_t purpose, uint64_t index)
{
    uint64_t d = spec_mix64(spec_mix64(seed ^ (purpose * 0x9e3779b97f4a7c15ull)) +
                            index * 0xd1b54a32d192ed03ull);
    return (d >> 63) ? -1.0f : 1.0f;
}

/* A deliberately plain implementation of the documented algorithm (the
 * executable specification for other backends). */
static uint64_t spec_key(const lshmoe_kn_lsh_params_t *p, const float *x, size_t hidden)
{
    size_t m = 1;
    if (p->reduce == LSHMOE_REDUCE_FOLD)
        m = (size_t)p->reduce_dim;
    else
        while (m < hidden)
            m *= 2;
    float *z = calloc(m, sizeof(float)), *y = malloc(m * sizeof(float));
    for (size_t i = 0; i < hidden; i++) {
        if (p->reduce == LSHMOE_REDUCE_FOLD)
            z[i % m] += spec_sign(p->seed, 1, i) * x[i];
        else
            z[i] = x[i];
    }
    int bits = 1;
    while ((1 << bits) < 2 * p->cdim)
        bits++;
    int packed = p->num_hashes * bits <= 63;
    uint64_t key = 0, acc = 0x243f6a8885a308d3ull;
    size_t nblk = m / (size_t)p->cdim;
    for (int g = 0; g < p->num_hashes; g++) {
        uint64_t r = (uint64_t)g / nblk, b = (uint64_t)g % nblk;
        if (b == 0) {
            memcpy(y, z, m * sizeof(float));
            for (int k = 0; k < p->rounds; k++) {
                for (size_t j = 0; j < m; j++)
                    y[j] *= spec_sign(p->seed, 2, r << 40 | (uint64_t)k << 32 | j);
                lshmoe_kn_fwht(y, m);
            }
        }
        const float *blk = y + b * (size_t)p->cdim;
        int best = 0;
        for (int j = 1; j < p->cdim; j++)
            if (fabsf(blk[j]) > fabsf(blk[best]))
                best = j;
        uint64_t v = 2u * (unsigned)best + (blk[best] < 0.0f);
        if (packed)
            key |= v << (g * bits);
        else
            acc = spec_mix64(acc ^ (v | (uint64_t)g << 16));
    }
    free(z);
    free(y);
    return packed ? key : acc & (UINT64_MAX >> 1);
}

static void test_lsh_matches_spec(void)
{
    const lshmoe_kn_lsh_params_t ps[] = {
        params(LSHMOE_REDUCE_FOLD, 64, 6, 4, 3, 11),
        params(LSHMOE_REDUCE_FOLD, 16, 6, 8, 2, 12),   /* 3 rotations       */
        params(LSHMOE_REDUCE_FOLD, 256, 16, 256, 1, 13), /* mixed key       */
        params(LSHMOE_REDUCE_PAD, 0, 4, 2, 3, 14),
    };
    const size_t hiddens[] = {1000, 1024, 1024, 777};
    enum { N = 64 };
    uint64_t keys[N];
    for (size_t t = 0; t < sizeof ps / sizeof ps[0]; t++) {
        float *x = gaussian(N, hiddens[t], 100 + t);
        hash_with(&ps[t], hiddens[t], x, LSHMOE_DTYPE_FP32, N, keys);
        for (size_t i = 0; i < N; i++)
            CU_ASSERT_EQUAL(keys[i], spec_key(&ps[t], x + i * hiddens[t], hiddens[t]));
        free(x);
    }
}

/* ---- properties ------------------------------------------------------------ */

static void test_lsh_deterministic_per_seed(void)
{
    float *x = gaussian(NTOK, HIDDEN, 1);
    uint64_t *a = malloc(NTOK * 8), *b = malloc(NTOK * 8), *c = malloc(NTOK * 8);
    lshmoe_kn_lsh_params_t p = params(LSHMOE_REDUCE_FOLD, 64, 6, 4, 3, 42);
    hash_with(&p, HIDDEN, x, LSHMOE_DTYPE_FP32, NTOK, a);
    hash_with(&p, HIDDEN, x, LSHMOE_DTYPE_FP32, NTOK, b);
    CU_ASSERT(memcmp(a, b, NTOK * 8) == 0);
    p.seed = 43;
    hash_with(&p, HIDDEN, x, LSHMOE_DTYPE_FP32, NTOK, c);
    size_t differ = 0;
    for (size_t i = 0; i < NTOK; i++)
        differ += a[i] != c[i];
    CU_ASSERT(differ > NTOK * 9 / 10);
    free(x);
    free(a);
    free(b);
    free(c);
}

static void test_lsh_positive_scaling_invariant(void)
{
    /* 0.5 is exact; 3 and 1e3 round the inputs, which could in principle
     * flip a near-tie, but not on these tokens; 2^70 takes the rescaling
     * path, 2^-60 is tiny. */
    const float scales[] = {0.5f, 3.0f, 1e3f, 0x1p70f, 0x1p-60f};
    const int reduces[] = {LSHMOE_REDUCE_FOLD, LSHMOE_REDUCE_PAD};
    float *x = gaussian(NTOK, HIDDEN, 2);
    float *xs = malloc(NTOK * HIDDEN * sizeof(float));
    uint64_t *a = malloc(NTOK * 8), *b = malloc(NTOK * 8);
    for (size_t r = 0; r < 2; r++) {
        lshmoe_kn_lsh_params_t p = params(reduces[r], 64, 6, 4, 3, 5);
        hash_with(&p, HIDDEN, x, LSHMOE_DTYPE_FP32, NTOK, a);
        for (size_t s = 0; s < sizeof scales / sizeof scales[0]; s++) {
            for (size_t i = 0; i < NTOK * HIDDEN; i++)
                xs[i] = x[i] * scales[s];
            CU_ASSERT_EQUAL(hash_with(&p, HIDDEN, xs, LSHMOE_DTYPE_FP32, NTOK, b), 0);
            CU_ASSERT(memcmp(a, b, NTOK * 8) == 0);
        }
    }
    free(x);
    free(xs);
    free(a);
    free(b);
}

/* Finite tokens near FLT_MAX would overflow the fold and the rotation: they
 * must still get the key of their (exactly) scaled-down copies. */
static void test_lsh_huge_finite_tokens(void)
{
    enum { N = 64 };
    float *x = gaussian(N, HIDDEN, 13);
    float *big = malloc(N * HIDDEN * sizeof(float));
    uint64_t a[N], b[N];
    for (size_t i = 0; i < N; i++) {
        float mx = 0.0f;
        for (size_t j = 0; j < HIDDEN; j++)
            mx = fmaxf(mx, fabsf(x[i * HIDDEN + j]));
        int e;
        frexpf(mx, &e);
        for (size_t j = 0; j < HIDDEN; j++) {
            x[i * HIDDEN + j] = ldexpf(x[i * HIDDEN + j], -e); /* max in [0.5, 1) */
            big[i * HIDDEN + j] = ldexpf(x[i * HIDDEN + j], 127);
        }
    }
    for (int reduce = LSHMOE_REDUCE_PAD; reduce <= LSHMOE_REDUCE_FOLD; reduce++) {
        lshmoe_kn_lsh_params_t p = params(reduce, 64, 6, 4, 3, 4);
        hash_with(&p, HIDDEN, x, LSHMOE_DTYPE_FP32, N, a);
        CU_ASSERT_EQUAL(hash_with(&p, HIDDEN, big, LSHMOE_DTYPE_FP32, N, b), 0);
        CU_ASSERT(memcmp(a, b, sizeof a) == 0);
    }
    free(x);
    free(big);
}

/* For x and -x every block has the same argmax and the opposite sign bit
 * (no exact zeros in Gaussian data); the zero token has key 0 either way. */
static void test_lsh_negation_flips_signs(void)
{
    float *x = gaussian(NTOK, HIDDEN, 3);
    float *nx = malloc(NTOK * HIDDEN * sizeof(float));
    uint64_t *a = malloc(NTOK * 8), *b = malloc(NTOK * 8);
    for (size_t i = 0; i < NTOK * HIDDEN; i++)
        nx[i] = -x[i];
    for (int reduce = LSHMOE_REDUCE_PAD; reduce <= LSHMOE_REDUCE_FOLD; reduce++) {
        lshmoe_kn_lsh_params_t p = params(reduce, 64, 6, 4, 3, 9);
        hash_with(&p, HIDDEN, x, LSHMOE_DTYPE_FP32, NTOK, a);
        hash_with(&p, HIDDEN, nx, LSHMOE_DTYPE_FP32, NTOK, b);
        /* 3 bits per block, sign in the lowest: -x flips bits 0, 3, ... 15 */
        for (size_t i = 0; i < NTOK; i++)
            CU_ASSERT_EQUAL(b[i], a[i] ^ 0111111ull);
    }
    memset(x, 0, HIDDEN * sizeof(float));
    memset(nx, 0, HIDDEN * sizeof(float));
    nx[0] = -0.0f;
    lshmoe_kn_lsh_params_t p = params(LSHMOE_REDUCE_FOLD, 64, 6, 4, 3, 9);
    hash_with(&p, HIDDEN, x, LSHMOE_DTYPE_FP32, 1, a);
    hash_with(&p, HIDDEN, nx, LSHMOE_DTYPE_FP32, 1, b);
    CU_ASSERT_EQUAL(a[0], 0);
    CU_ASSERT_EQUAL(b[0], 0);
    free(x);
    free(nx);
    free(a);
    free(b);
}

static void test_lsh_identical_tokens_share_key(void)
{
    enum { N = 256 };
    float *x = malloc(N * HIDDEN * sizeof(float));
    uint64_t keys[N];
    lt_gen_clustered(x, N, HIDDEN, 8, 0.0, 77); /* noise 0: duplicates */
    lshmoe_kn_lsh_params_t p = params(LSHMOE_REDUCE_FOLD, 64, 6, 4, 3, 1);
    hash_with(&p, HIDDEN, x, LSHMOE_DTYPE_FP32, N, keys);
    size_t pairs = 0;
    for (size_t i = 0; i < N; i++) {
        for (size_t j = i + 1; j < N; j++) {
            int same = memcmp(x + i * HIDDEN, x + j * HIDDEN, HIDDEN * sizeof(float)) == 0;
            if (same) {
                pairs++;
                CU_ASSERT_EQUAL(keys[i], keys[j]);
            }
        }
    }
    CU_ASSERT(pairs > N); /* the property was exercised */
    free(x);
}

/* Groups keys and returns the number of clusters; cl receives ids. */
static size_t group(const uint64_t *keys, size_t n, uint32_t *cl)
{
    void *ws = malloc(lshmoe_kn_group_ws_size(n));
    size_t nc = 0;
    lshmoe_kn_group(keys, n, cl, &nc, ws);
    free(ws);
    return nc;
}

/* Tokens that share a key under L functions share it under L' < L: the L'
 * functions are the first L' blocks of the L-hasher. Checked as "cluster
 * under L determines the cluster under L'" on data with real clusters. */
static void test_lsh_more_functions_refine(void)
{
    enum { N = 1024 };
    struct { int m, cdim, L; } cases[] = {
        {64, 4, 12},   /* one rotation                          */
        {16, 8, 6},    /* three rotations of two blocks          */
        {256, 256, 8}, /* mixed (non-packed) key under L = 8     */
    };
    float *x = malloc(N * HIDDEN * sizeof(float));
    lt_gen_clustered(x, N, HIDDEN, 16, 0.1, 5);
    uint64_t *kl = malloc(N * 8), *ks = malloc(N * 8);
    uint32_t *cl = malloc(N * 4), *cs = malloc(N * 4), *map = malloc(N * 4);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        lshmoe_kn_lsh_params_t p = params(LSHMOE_REDUCE_FOLD, cases[c].m, cases[c].L,
                                          cases[c].cdim, 2, 21);
        hash_with(&p, HIDDEN, x, LSHMOE_DTYPE_FP32, N, kl);
        size_t ncl = group(kl, N, cl);
        CU_ASSERT(ncl < N / 2); /* shared keys exist: not vacuous */
        for (int l = 1; l < cases[c].L; l++) {
            lshmoe_kn_lsh_params_t q = p;
            q.num_hashes = l;
            hash_with(&q, HIDDEN, x, LSHMOE_DTYPE_FP32, N, ks);
            size_t ncs = group(ks, N, cs);
            CU_ASSERT(ncs <= ncl);
            if (l == 1)
                CU_ASSERT(ncs < ncl); /* fewer functions really merge */
            memset(map, 0xff, N * 4);
            for (size_t i = 0; i < N; i++) {
                if (map[cl[i]] == UINT32_MAX)
                    map[cl[i]] = cs[i];
                CU_ASSERT_EQUAL_FATAL(map[cl[i]], cs[i]);
            }
        }
    }
    free(x);
    free(kl);
    free(ks);
    free(cl);
    free(cs);
    free(map);
}

static void test_lsh_nonfinite_tokens(void)
{
    enum { N = 16 };
    const float bad[] = {NAN, INFINITY, -INFINITY};
    const lshmoe_dtype_t dts[] = {LSHMOE_DTYPE_FP32, LSHMOE_DTYPE_FP16, LSHMOE_DTYPE_BF16};
    float *x = gaussian(N, HIDDEN, 8);
    float *xb = malloc(N * HIDDEN * sizeof(float));
    uint64_t ref[N], keys[N];
    unsigned char *raw = malloc(N * HIDDEN * sizeof(float));
    for (int reduce = LSHMOE_REDUCE_PAD; reduce <= LSHMOE_REDUCE_FOLD; reduce++) {
        lshmoe_kn_lsh_params_t p = params(reduce, 64, 6, 4, 3, 3);
        for (size_t d = 0; d < 3; d++) {
            lt_to_dtype(x, N * HIDDEN, dts[d], raw);
            hash_with(&p, HIDDEN, raw, dts[d], N, ref);
            memcpy(xb, x, N * HIDDEN * sizeof(float));
            xb[1 * HIDDEN + 0] = bad[0];        /* first element   */
            xb[5 * HIDDEN + 517] = bad[1];      /* middle          */
            xb[9 * HIDDEN + HIDDEN - 1] = bad[2]; /* last element  */
            xb[12 * HIDDEN + 3] = bad[1];       /* Inf and -Inf    */
            xb[12 * HIDDEN + 3 + 64] = bad[2];  /* in the same slot */
            lt_to_dtype(xb, N * HIDDEN, dts[d], raw);
            CU_ASSERT_EQUAL(hash_with(&p, HIDDEN, raw, dts[d], N, keys), 4);
            for (size_t i = 0; i < N; i++) {
                int is_bad = i == 1 || i == 5 || i == 9 || i == 12;
                CU_ASSERT_EQUAL(keys[i], is_bad ? LSHMOE_KN_KEY_NONFINITE : ref[i]);
            }
        }
    }
    free(x);
    free(xb);
    free(raw);
}

static void expect_invalid(lshmoe_kn_lsh_params_t p, size_t hidden)
{
    lshmoe_kn_hasher_t *h = (lshmoe_kn_hasher_t *)(uintptr_t)16; /* must be reset */
    lshmoe_error_clear();
    CU_ASSERT_EQUAL(lshmoe_kn_hasher_create(&p, hidden, &h), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(h);
    const char *msg = lshmoe_error_thread_msg();
    CU_ASSERT(msg[0] != '\0' && strchr(msg, '=') == NULL);
}

static void test_lsh_invalid_params(void)
{
    const lshmoe_kn_lsh_params_t ok = params(LSHMOE_REDUCE_FOLD, 64, 6, 4, 3, 1);
    lshmoe_kn_lsh_params_t p;
    p = ok; p.cdim = 128;                 expect_invalid(p, 1024); /* cdim > m */
    p = ok; p.cdim = 6;                   expect_invalid(p, 1024);
    p = ok; p.cdim = 1;                   expect_invalid(p, 1024);
    p = ok; p.cdim = 512;                 expect_invalid(p, 1024);
    p = ok;                               expect_invalid(p, 0);
    p = ok;                               expect_invalid(p, ((size_t)1 << 24) + 1);
    p = ok; p.num_hashes = 0;             expect_invalid(p, 1024);
    p = ok; p.num_hashes = 17;            expect_invalid(p, 1024);
    p = ok; p.rounds = 0;                 expect_invalid(p, 1024);
    p = ok; p.rounds = 4;                 expect_invalid(p, 1024);
    p = ok; p.reduce_dim = 48;            expect_invalid(p, 1024);
    p = ok; p.reduce_dim = 8;             expect_invalid(p, 1024);
    p = ok; p.reduce = 7;                 expect_invalid(p, 1024);
    p = ok; p.reduce = LSHMOE_REDUCE_PAD; expect_invalid(p, 1);    /* m = 1 < 4 */
    p = ok; p.reduce = LSHMOE_REDUCE_PAD; expect_invalid(p, 2);    /* m = 2 < 4 */
    CU_ASSERT_EQUAL(lshmoe_kn_hasher_create(NULL, 1024, NULL), LSHMOE_ERR_INVALID_ARG);

    lshmoe_kn_hasher_t *h = NULL;
    p = ok; p.reduce = LSHMOE_REDUCE_PAD; p.cdim = 4;
    CU_ASSERT_EQUAL(lshmoe_kn_hasher_create(&p, 4, &h), LSHMOE_OK);
    CU_ASSERT_EQUAL(lshmoe_kn_hasher_dim(h), 4);
    lshmoe_kn_hasher_destroy(h);
    p = ok; p.reduce = LSHMOE_REDUCE_PAD;
    CU_ASSERT_EQUAL(lshmoe_kn_hasher_create(&p, 1000, &h), LSHMOE_OK);
    CU_ASSERT_EQUAL(lshmoe_kn_hasher_dim(h), 1024);
    lshmoe_kn_hasher_destroy(h);
    CU_ASSERT_EQUAL(lshmoe_kn_hasher_create(&ok, 1000, &h), LSHMOE_OK);
    CU_ASSERT_EQUAL(lshmoe_kn_hasher_dim(h), 64);
    lshmoe_kn_hasher_destroy(h);
}

/* fp16/bf16 tokens hash like their exact fp32 conversions; an unaligned
 * fp32 buffer hashes like an aligned one. */
static void test_lsh_half_dtypes_match_fp32(void)
{
    const lshmoe_dtype_t dts[] = {LSHMOE_DTYPE_FP16, LSHMOE_DTYPE_BF16};
    float *x = gaussian(NTOK, HIDDEN, 4);
    float *back = malloc(NTOK * HIDDEN * sizeof(float));
    unsigned char *raw = malloc(NTOK * HIDDEN * sizeof(float) + 1);
    uint64_t *a = malloc(NTOK * 8), *b = malloc(NTOK * 8);
    for (int reduce = LSHMOE_REDUCE_PAD; reduce <= LSHMOE_REDUCE_FOLD; reduce++) {
        lshmoe_kn_lsh_params_t p = params(reduce, 128, 6, 4, 3, 6);
        for (size_t d = 0; d < 2; d++) {
            lt_to_dtype(x, NTOK * HIDDEN, dts[d], raw);
            lshmoe_row_to_f32(raw, dts[d], NTOK * HIDDEN, back);
            hash_with(&p, HIDDEN, raw, dts[d], NTOK, a);
            hash_with(&p, HIDDEN, back, LSHMOE_DTYPE_FP32, NTOK, b);
            CU_ASSERT(memcmp(a, b, NTOK * 8) == 0);
        }
        hash_with(&p, HIDDEN, x, LSHMOE_DTYPE_FP32, NTOK, a);
        memcpy(raw + 1, x, NTOK * HIDDEN * sizeof(float));
        hash_with(&p, HIDDEN, raw + 1, LSHMOE_DTYPE_FP32, NTOK, b);
        CU_ASSERT(memcmp(a, b, NTOK * 8) == 0);
    }
    free(x);
    free(back);
    free(raw);
    free(a);
    free(b);
}

static void test_lsh_keys_below_2_63(void)
{
    struct { int m, cdim, L; int packed; } cases[] = {
        {64, 4, 6, 1},      /* 18 bits            */
        {64, 64, 9, 1},     /* 63 bits: still packed */
        {64, 8, 16, 0},     /* 64 bits: mixed     */
        {4096, 256, 16, 0}, /* 144 bits: mixed    */
    };
    enum { N = 512 };
    float *x = gaussian(N, 600, 10);
    uint64_t keys[N];
    uint32_t cl[N];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        lshmoe_kn_lsh_params_t p = params(LSHMOE_REDUCE_FOLD, cases[c].m, cases[c].L,
                                          cases[c].cdim, 1, 8);
        hash_with(&p, 600, x, LSHMOE_DTYPE_FP32, N, keys);
        uint64_t all_or = 0;
        for (size_t i = 0; i < N; i++) {
            CU_ASSERT(keys[i] < (1ull << 63));
            all_or |= keys[i];
        }
        /* Gaussian tokens in so many buckets: nearly all keys distinct. */
        CU_ASSERT(group(keys, N, cl) > N * 9 / 10);
        /* Mixed keys use the high bits; packed ones never reach bit 63. */
        if (!cases[c].packed)
            CU_ASSERT(all_or >> 60 != 0);
    }
    free(x);
}

/* Tiny PAD sizes (m < 16) take the scalar FWHT path. */
static void test_lsh_tiny_pad(void)
{
    enum { N = 64 };
    float *x = gaussian(N, 5, 12);
    uint64_t keys[N];
    lshmoe_kn_lsh_params_t p = params(LSHMOE_REDUCE_PAD, 0, 3, 2, 3, 2);
    hash_with(&p, 5, x, LSHMOE_DTYPE_FP32, N, keys);
    for (size_t i = 0; i < N; i++)
        CU_ASSERT_EQUAL(keys[i], spec_key(&p, x + i * 5, 5));
    free(x);
}

static const lt_test_t tests[] = {
    {"test_fwht_matches_naive", test_fwht_matches_naive},
    {"test_fwht_involution", test_fwht_involution},
    {"test_lsh_matches_spec", test_lsh_matches_spec},
    {"test_lsh_deterministic_per_seed", test_lsh_deterministic_per_seed},
    {"test_lsh_positive_scaling_invariant", test_lsh_positive_scaling_invariant},
    {"test_lsh_huge_finite_tokens", test_lsh_huge_finite_tokens},
    {"test_lsh_negation_flips_signs", test_lsh_negation_flips_signs},
    {"test_lsh_identical_tokens_share_key", test_lsh_identical_tokens_share_key},
    {"test_lsh_more_functions_refine", test_lsh_more_functions_refine},
    {"test_lsh_nonfinite_tokens", test_lsh_nonfinite_tokens},
    {"test_lsh_invalid_params", test_lsh_invalid_params},
    {"test_lsh_half_dtypes_match_fp32", test_lsh_half_dtypes_match_fp32},
    {"test_lsh_keys_below_2_63", test_lsh_keys_below_2_63},
    {"test_lsh_tiny_pad", test_lsh_tiny_pad},
};

LT_MAIN("lsh", tests)
