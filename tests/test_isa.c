/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Every CPU ISA level this machine and build support gives the same bucket
 * keys as the scalar reference, bit for bit (kernels/cpu/x86/), on the same
 * data: fp32, fp16 and bf16, several hidden sizes, PAD and FOLD, packed
 * and mixed keys, and tokens that take the rare paths (zero, NaN, Inf,
 * huge, subnormal). The same for cluster means (bit for bit) and the
 * quality guard's sums (to 1e-9 relative: the SIMD levels add in another
 * order). Levels the CPU lacks are reported and left out; the test still
 * checks the scalar level and LSHMOE_CPU_ISA parsing.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "kernels/kernels.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"
#include "testutil.h"

#define NTOK 200

/* Tokens: clustered rows, then special ones at fixed places. */
static float *make_tokens(size_t hidden, uint64_t seed)
{
    float *x = malloc(NTOK * hidden * sizeof(float));
    CU_ASSERT_FATAL(x != NULL);
    lt_gen_clustered(x, NTOK, hidden, 7, 0.3, seed);
    memset(x + 3 * hidden, 0, hidden * sizeof(float));               /* zero   */
    x[5 * hidden + hidden / 2] = NAN;                                /* NaN    */
    x[6 * hidden] = INFINITY;                                        /* Inf    */
    for (size_t e = 0; e < hidden; e++) {
        x[7 * hidden + e] *= 1e30f;                                  /* huge   */
        x[8 * hidden + e] *= 1e-41f;                                 /* subnormal */
        x[9 * hidden + e] = -x[10 * hidden + e];                     /* negated */
    }
    x[11 * hidden] = -0.0f;
    return x;
}

static void hash_at(lshmoe_kn_isa_t isa, const lshmoe_kn_lsh_params_t *p, size_t hidden,
                    const void *tok, lshmoe_dtype_t dt, uint64_t *keys, size_t *nf)
{
    lshmoe_kn_hasher_t *h = NULL;
    CU_ASSERT_EQUAL_FATAL(lshmoe_kn_hasher_create(p, hidden, &h), LSHMOE_OK);
    size_t ws_size = lshmoe_kn_hash_ws_size(h);
    void *ws = aligned_alloc(64, ws_size);
    CU_ASSERT_FATAL(ws != NULL);
    CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force(isa), LSHMOE_OK);
    lshmoe_kn_hash(h, tok, dt, NTOK, keys, ws, nf);
    free(ws);
    lshmoe_kn_hasher_destroy(h);
}

static size_t checked_levels;

/* Hashes with every supported level; counts mismatching keys. */
static void compare_levels(const lshmoe_kn_lsh_params_t *p, size_t hidden,
                           const void *tok, lshmoe_dtype_t dt)
{
    uint64_t ref[NTOK], got[NTOK];
    size_t nf_ref = 0, nf = 0;
    hash_at(LSHMOE_KN_ISA_SCALAR, p, hidden, tok, dt, ref, &nf_ref);
    for (int isa = 1; isa < LSHMOE_KN_ISA_COUNT; isa++) {
        if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
            continue;
        memset(got, 0xa5, sizeof got);
        hash_at((lshmoe_kn_isa_t)isa, p, hidden, tok, dt, got, &nf);
        size_t bad = 0;
        for (size_t i = 0; i < NTOK; i++)
            bad += got[i] != ref[i];
        if (bad != 0 || nf != nf_ref)
            printf("\n  %s: %zu of %d keys differ (hidden %zu, dtype %d, reduce %d m %d, "
                   "L %d, cdim %d, rounds %d)", lshmoe_kn_isa_name((lshmoe_kn_isa_t)isa), bad,
                   NTOK, hidden, (int)dt, p->reduce, p->reduce_dim, p->num_hashes, p->cdim,
                   p->rounds);
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT_EQUAL(nf, nf_ref);
        checked_levels++;
    }
}

static void test_keys_identical_across_levels(void)
{
    static const size_t hiddens[] = {1, 5, 16, 100, 128, 1000, 1024, 1030};
    static const lshmoe_kn_lsh_params_t ps[] = {
        {.seed = 1, .num_hashes = 6, .cdim = 4, .reduce = LSHMOE_REDUCE_FOLD,
         .reduce_dim = 64, .rounds = 3},     /* the default */
        {.seed = 2, .num_hashes = 16, .cdim = 16, .reduce = LSHMOE_REDUCE_FOLD,
         .reduce_dim = 64, .rounds = 2},     /* mixed key, 4 rotations */
        {.seed = 3, .num_hashes = 4, .cdim = 2, .reduce = LSHMOE_REDUCE_FOLD,
         .reduce_dim = 16, .rounds = 1},
        {.seed = 4, .num_hashes = 8, .cdim = 8, .reduce = LSHMOE_REDUCE_FOLD,
         .reduce_dim = 128, .rounds = 3},
        {.seed = 5, .num_hashes = 6, .cdim = 4, .reduce = LSHMOE_REDUCE_FOLD,
         .reduce_dim = 2048, .rounds = 3},   /* m above most hidden sizes */
        {.seed = 6, .num_hashes = 6, .cdim = 4, .reduce = LSHMOE_REDUCE_PAD,
         .reduce_dim = 0, .rounds = 3},
        {.seed = 7, .num_hashes = 3, .cdim = 2, .reduce = LSHMOE_REDUCE_PAD,
         .reduce_dim = 0, .rounds = 1},
    };
    static const lshmoe_dtype_t dts[] = {LSHMOE_DTYPE_FP32, LSHMOE_DTYPE_FP16,
                                         LSHMOE_DTYPE_BF16};
    for (size_t hi = 0; hi < sizeof hiddens / sizeof hiddens[0]; hi++) {
        size_t hidden = hiddens[hi];
        float *x = make_tokens(hidden, 11 + hidden);
        /* +2 bytes: rows that are not float-aligned */
        unsigned char *buf = malloc(NTOK * hidden * sizeof(float) + 2);
        CU_ASSERT_FATAL(buf != NULL);
        for (size_t di = 0; di < sizeof dts / sizeof dts[0]; di++) {
            for (int shift = 0; shift <= 2; shift += 2) {
                void *tok = buf + shift;
                if (dts[di] == LSHMOE_DTYPE_FP32)
                    memcpy(tok, x, NTOK * hidden * sizeof(float));
                else
                    lt_to_dtype(x, NTOK * hidden, dts[di], tok);
                for (size_t pi = 0; pi < sizeof ps / sizeof ps[0]; pi++) {
                    lshmoe_kn_hasher_t *probe = NULL;
                    if (lshmoe_kn_hasher_create(&ps[pi], hidden, &probe) != LSHMOE_OK)
                        continue; /* cdim above the rotated dimension */
                    lshmoe_kn_hasher_destroy(probe);
                    compare_levels(&ps[pi], hidden, tok, dts[di]);
                }
            }
        }
        free(buf);
        free(x);
    }
    CU_ASSERT_EQUAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
    if (checked_levels == 0)
        printf("\n  only the scalar level exists on this CPU/build: nothing to compare");
    else
        printf("\n  %zu comparisons against the scalar keys ", checked_levels);
}

/* Clusters for the centroid and guard checks: token i in cluster
 * (i * 7) % nc (every cluster has several members), then the last tenth
 * of the tokens alone in clusters of their own. */
static void make_clusters(size_t n, size_t nc, uint32_t *cl, size_t *ncl_p)
{
    size_t alone = n / 10;
    for (size_t i = 0; i < n - alone; i++)
        cl[i] = (uint32_t)((i * 7) % nc);
    for (size_t i = n - alone; i < n; i++)
        cl[i] = (uint32_t)(nc + i - (n - alone));
    *ncl_p = nc + alone;
}

/* Equal to 1e-9 relative, or the same infinity (fp16 overflows the huge
 * token to Inf in its cluster's mean: both levels then sum Inf). */
static int close_to(double v, double ref)
{
    return v == ref || fabs(v - ref) <= 1e-9 * fabs(ref);
}

static void test_centroids_and_guard_across_levels(void)
{
    static const size_t hiddens[] = {1, 7, 16, 100, 1000, 1024};
    static const lshmoe_dtype_t dts[] = {LSHMOE_DTYPE_FP32, LSHMOE_DTYPE_FP16,
                                         LSHMOE_DTYPE_BF16};
    uint32_t cl[NTOK];
    size_t ncl;
    make_clusters(NTOK, 23, cl, &ncl);
    size_t compared = 0;
    for (size_t hi = 0; hi < sizeof hiddens / sizeof hiddens[0]; hi++) {
        size_t hidden = hiddens[hi];
        float *x = make_tokens(hidden, 5 + hidden);
        /* finite tokens only: the guard's sums are compared too */
        for (size_t e = 0; e < NTOK * hidden; e++)
            if (!isfinite(x[e]))
                x[e] = 1.0f;
        for (size_t di = 0; di < sizeof dts / sizeof dts[0]; di++) {
            size_t tb = hidden * (dts[di] == LSHMOE_DTYPE_FP32 ? 4 : 2);
            unsigned char *tok = malloc(NTOK * tb);
            unsigned char *ref = malloc(ncl * tb), *got = malloc(ncl * tb);
            uint32_t *sz_ref = malloc(ncl * sizeof(uint32_t)), *sz = malloc(ncl * sizeof(uint32_t));
            float *acc = malloc(ncl * hidden * sizeof(float));
            float *acc_ref = malloc(ncl * hidden * sizeof(float));
            CU_ASSERT_FATAL(tok && ref && got && sz_ref && sz && acc && acc_ref);
            if (dts[di] == LSHMOE_DTYPE_FP32)
                memcpy(tok, x, NTOK * tb);
            else
                lt_to_dtype(x, NTOK * hidden, dts[di], tok);
            double num_ref, den_ref;
            CU_ASSERT_EQUAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
            lshmoe_kn_centroids(tok, dts[di], hidden, NTOK, cl, ncl, ref, sz_ref, acc_ref);
            lshmoe_kn_guard_sums(tok, ref, dts[di], hidden, NTOK, cl, sz_ref, &num_ref, &den_ref);
            CU_ASSERT(num_ref > 0.0 && den_ref > 0.0 && !isnan(num_ref));
            for (int isa = 1; isa < LSHMOE_KN_ISA_COUNT; isa++) {
                if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
                    continue;
                CU_ASSERT_EQUAL(lshmoe_kn_isa_force((lshmoe_kn_isa_t)isa), LSHMOE_OK);
                memset(got, 0x5a, ncl * tb);
                memset(acc, 0x7f, ncl * hidden * sizeof(float)); /* garbage workspace */
                lshmoe_kn_centroids(tok, dts[di], hidden, NTOK, cl, ncl, got, sz, acc);
                CU_ASSERT_EQUAL(memcmp(got, ref, ncl * tb), 0);
                CU_ASSERT_EQUAL(memcmp(sz, sz_ref, ncl * sizeof(uint32_t)), 0);
                /* the fp32 means the rate-distortion encoder reads (acc) */
                for (size_t k = 0; k < ncl; k++)
                    if (sz_ref[k] > 1)
                        CU_ASSERT_EQUAL(memcmp(acc + k * hidden, acc_ref + k * hidden,
                                               hidden * sizeof(float)), 0);
                double num, den;
                lshmoe_kn_guard_sums(tok, ref, dts[di], hidden, NTOK, cl, sz_ref, &num, &den);
                if (!close_to(num, num_ref))
                    printf("\n  %s guard num %.17g, scalar %.17g (hidden %zu dtype %d)",
                           lshmoe_kn_isa_name((lshmoe_kn_isa_t)isa), num, num_ref, hidden,
                           (int)dts[di]);
                CU_ASSERT(close_to(num, num_ref));
                CU_ASSERT(close_to(den, den_ref));
                compared++;
            }
            free(tok); free(ref); free(got); free(sz_ref); free(sz); free(acc); free(acc_ref);
        }
        free(x);
    }
    CU_ASSERT_EQUAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
    printf("\n  %zu comparisons against the scalar rows and sums ", compared);
}

/* A coordinate that is -0.0 in every member of a cluster stays -0.0 in its
 * mean at every level (the sums start at -0.0, the identity of addition),
 * also through the fused centroid-and-guard kernel. */
static void test_centroid_negative_zero_across_levels(void)
{
    enum { N = 6, H = 43 }; /* 43: vector columns and a tail at every level */
    static const lshmoe_dtype_t dts[] = {LSHMOE_DTYPE_FP32, LSHMOE_DTYPE_FP16,
                                         LSHMOE_DTYPE_BF16};
    float x[N * H];
    uint32_t cl[N] = {0, 0, 1, 1, 1, 2};
    for (size_t e = 0; e < N * H; e++)
        x[e] = (e % H) % 3 == 0 ? -0.0f : 0.25f * (float)(e % 7);
    for (size_t di = 0; di < sizeof dts / sizeof dts[0]; di++) {
        size_t es = dts[di] == LSHMOE_DTYPE_FP32 ? 4 : 2;
        unsigned char tok[N * H * 4], ref[3 * H * 4], got[3 * H * 4];
        uint32_t sizes[3];
        float acc[3 * H];
        double num, den;
        if (es == 4)
            memcpy(tok, x, sizeof x);
        else
            lt_to_dtype(x, N * H, dts[di], tok);
        CU_ASSERT_EQUAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
        lshmoe_kn_centroids(tok, dts[di], H, N, cl, 3, ref, sizes, acc);
        for (size_t k = 0; k < 2; k++) /* the reference itself keeps the sign */
            CU_ASSERT(signbit(acc[k * H]) && acc[k * H] == 0.0f);
        for (int isa = 1; isa < LSHMOE_KN_ISA_COUNT; isa++) {
            if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
                continue;
            CU_ASSERT_EQUAL(lshmoe_kn_isa_force((lshmoe_kn_isa_t)isa), LSHMOE_OK);
            memset(got, 0x5a, sizeof got);
            lshmoe_kn_centroids(tok, dts[di], H, N, cl, 3, got, sizes, acc);
            CU_ASSERT_EQUAL(memcmp(got, ref, 3 * H * es), 0);
            memset(got, 0x5a, sizeof got);
            lshmoe_kn_centroids_guard(tok, dts[di], H, N, cl, 3, got, sizes, acc, &num, &den);
            CU_ASSERT_EQUAL(memcmp(got, ref, 3 * H * es), 0);
        }
    }
    CU_ASSERT_EQUAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
}

/* +Inf and -Inf in one cluster: the mean holds NaN, whose bits the SIMD
 * levels take from the reference's conversion (in a full chunk of 16 and in
 * the last, partial one). */
static void test_centroid_nan_mean_across_levels(void)
{
    enum { H = 37, N = 4 };
    static const lshmoe_dtype_t dts[] = {LSHMOE_DTYPE_FP32, LSHMOE_DTYPE_FP16,
                                         LSHMOE_DTYPE_BF16};
    float x[N * H];
    for (size_t e = 0; e < N * H; e++)
        x[e] = (float)e * 0.25f - 3.0f;
    x[3] = INFINITY;
    x[H + 3] = -INFINITY;
    x[2 * H + 20] = NAN;
    x[H - 1] = INFINITY;          /* and in the last, partial chunk of 16 */
    x[2 * H - 1] = -INFINITY;
    x[4 * H - 2] = NAN;
    const uint32_t cl[N] = {0, 0, 1, 1};
    for (size_t di = 0; di < sizeof dts / sizeof dts[0]; di++) {
        unsigned char tok[N * H * 4], ref[2 * H * 4], got[2 * H * 4];
        uint32_t sizes[2];
        float acc[2 * H];
        size_t tb = H * (dts[di] == LSHMOE_DTYPE_FP32 ? 4 : 2);
        if (dts[di] == LSHMOE_DTYPE_FP32)
            memcpy(tok, x, sizeof x);
        else
            lt_to_dtype(x, N * H, dts[di], tok);
        CU_ASSERT_EQUAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
        lshmoe_kn_centroids(tok, dts[di], H, N, cl, 2, ref, sizes, acc);
        for (int isa = 1; isa < LSHMOE_KN_ISA_COUNT; isa++) {
            if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
                continue;
            CU_ASSERT_EQUAL(lshmoe_kn_isa_force((lshmoe_kn_isa_t)isa), LSHMOE_OK);
            memset(got, 0x5a, sizeof got);
            lshmoe_kn_centroids(tok, dts[di], H, N, cl, 2, got, sizes, acc);
            CU_ASSERT_EQUAL(memcmp(got, ref, 2 * tb), 0);
            double num, den;
            memset(got, 0x5a, sizeof got);
            lshmoe_kn_centroids_guard(tok, dts[di], H, N, cl, 2, got, sizes, acc, &num, &den);
            CU_ASSERT_EQUAL(memcmp(got, ref, 2 * tb), 0);
        }
    }
    CU_ASSERT_EQUAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
}

/* The fused centroid + guard kernel at every level: rows bit for bit, sums
 * within 1e-5 of den (the AVX-512 level derives them from per-cluster
 * identities in fp32 dot products), on data inside its safe range and on
 * data with huge and tiny tokens (which take its exact fallback). */
static void test_fused_centroids_guard_across_levels(void)
{
    static const size_t hiddens[] = {1, 7, 100, 1024, 1030};
    static const lshmoe_dtype_t dts[] = {LSHMOE_DTYPE_FP32, LSHMOE_DTYPE_FP16,
                                         LSHMOE_DTYPE_BF16};
    uint32_t cl[NTOK];
    size_t ncl, compared = 0;
    make_clusters(NTOK, 23, cl, &ncl);
    for (size_t hi = 0; hi < sizeof hiddens / sizeof hiddens[0]; hi++) {
        for (int special = 0; special <= 1; special++) {
            size_t hidden = hiddens[hi];
            float *x = make_tokens(hidden, 77 + hidden);
            for (size_t e = 0; e < NTOK * hidden; e++)
                if (!isfinite(x[e]))
                    x[e] = 1.0f;
            if (!special) /* rows 7 and 8 (huge, subnormal) as ordinary ones */
                memcpy(x + 7 * hidden, x + 20 * hidden, 2 * hidden * sizeof(float));
            for (size_t di = 0; di < sizeof dts / sizeof dts[0]; di++) {
                size_t tb = hidden * (dts[di] == LSHMOE_DTYPE_FP32 ? 4 : 2);
                unsigned char *tok = malloc(NTOK * tb);
                unsigned char *ref = malloc(ncl * tb), *got = malloc(ncl * tb);
                uint32_t *sz = malloc(ncl * sizeof(uint32_t));
                float *acc = malloc(ncl * hidden * sizeof(float));
                CU_ASSERT_FATAL(tok && ref && got && sz && acc);
                if (dts[di] == LSHMOE_DTYPE_FP32)
                    memcpy(tok, x, NTOK * tb);
                else
                    lt_to_dtype(x, NTOK * hidden, dts[di], tok);
                double num_ref, den_ref;
                CU_ASSERT_EQUAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
                lshmoe_kn_centroids_guard(tok, dts[di], hidden, NTOK, cl, ncl, ref, sz, acc,
                                          &num_ref, &den_ref);
                for (int isa = 1; isa < LSHMOE_KN_ISA_COUNT; isa++) {
                    if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
                        continue;
                    CU_ASSERT_EQUAL(lshmoe_kn_isa_force((lshmoe_kn_isa_t)isa), LSHMOE_OK);
                    memset(got, 0x5a, ncl * tb);
                    memset(acc, 0x7f, ncl * hidden * sizeof(float));
                    double num, den;
                    lshmoe_kn_centroids_guard(tok, dts[di], hidden, NTOK, cl, ncl, got, sz, acc,
                                              &num, &den);
                    CU_ASSERT_EQUAL(memcmp(got, ref, ncl * tb), 0);
                    int ok = num == num_ref || fabs(num - num_ref) <= 1e-5 * den_ref;
                    ok = ok && (den == den_ref || fabs(den - den_ref) <= 1e-5 * den_ref);
                    if (!ok)
                        printf("\n  %s fused sums %.9g / %.9g, reference %.9g / %.9g "
                               "(hidden %zu dtype %d)", lshmoe_kn_isa_name((lshmoe_kn_isa_t)isa),
                               num, den, num_ref, den_ref, hidden, (int)dts[di]);
                    CU_ASSERT(ok);
                    compared++;
                }
                free(tok); free(ref); free(got); free(sz); free(acc);
            }
            free(x);
        }
    }
    CU_ASSERT_EQUAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
    printf("\n  %zu comparisons against the scalar rows and sums ", compared);
}

static void test_isa_env(void)
{
    CU_ASSERT_EQUAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
    CU_ASSERT_EQUAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_COUNT), LSHMOE_ERR_UNSUPPORTED);
    setenv("LSHMOE_CPU_ISA", "sse9", 1);
    CU_ASSERT_EQUAL(lshmoe_kn_isa_init(), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(lshmoe_error_thread_msg(), "LSHMOE_CPU_ISA"));
    setenv("LSHMOE_CPU_ISA", "scalar", 1);
    CU_ASSERT_EQUAL(lshmoe_kn_isa_init(), LSHMOE_OK);
    CU_ASSERT_EQUAL(lshmoe_kn_isa(), LSHMOE_KN_ISA_SCALAR);
    for (int isa = 1; isa < LSHMOE_KN_ISA_COUNT; isa++) {
        setenv("LSHMOE_CPU_ISA", lshmoe_kn_isa_name((lshmoe_kn_isa_t)isa), 1);
        lshmoe_status_t st = lshmoe_kn_isa_init();
        if (lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa)) {
            CU_ASSERT_EQUAL(st, LSHMOE_OK);
            CU_ASSERT_EQUAL(lshmoe_kn_isa(), (lshmoe_kn_isa_t)isa);
        } else {
            CU_ASSERT_EQUAL(st, LSHMOE_ERR_UNSUPPORTED);
        }
    }
    setenv("LSHMOE_CPU_ISA", "auto", 1);
    CU_ASSERT_EQUAL(lshmoe_kn_isa_init(), LSHMOE_OK);
    unsetenv("LSHMOE_CPU_ISA");
}

static const lt_test_t tests[] = {
    {"test_keys_identical_across_levels", test_keys_identical_across_levels},
    {"test_centroids_and_guard_across_levels", test_centroids_and_guard_across_levels},
    {"test_centroid_nan_mean_across_levels", test_centroid_nan_mean_across_levels},
    {"test_fused_centroids_guard_across_levels", test_fused_centroids_guard_across_levels},
    {"test_centroid_negative_zero_across_levels", test_centroid_negative_zero_across_levels},
    {"test_isa_env", test_isa_env},
};

LT_MAIN("isa", tests)
