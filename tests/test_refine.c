/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The refinement step (kernels/cpu/refine.c) against a brute-force
 * reference written from its definition: every token moves to the nearest
 * centroid among its own cluster's and those of the clusters whose key
 * differs from its own in exactly one b-bit field (ties: the earlier
 * candidate, own first, then fields and values in ascending order;
 * distances summed as lshmoe_kn_refine documents them), then clusters are
 * renumbered in order of first appearance. The kernel may stop a distance
 * early when it can no longer win; the decisions must be exactly the
 * reference's. Dense keys (few bits, many clusters) give every cluster
 * many neighbours; duplicated centroids give exact ties; widths below 16
 * never stop early, the others can. Fields of 2 bits take the kernel's
 * field-major loop, fields of 5 bits its cluster-major one.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "kernels/cpu/refine_isa.h"
#include "kernels/kernels.h"
#include "testutil.h"

/* The squared distance in the kernel's order: 8 lane partials over the
 * whole groups of 8, the tail elements, then the lanes in order. */
static float ref_dist(const float *a, const float *b, size_t n)
{
    float part[8] = {0}, s = 0.0f;
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t k = 0; k < 8; k++) {
            float d = a[i + k] - b[i + k];
            part[k] += d * d;
        }
    for (; i < n; i++) {
        float d = a[i] - b[i];
        s += d * d;
    }
    for (size_t k = 0; k < 8; k++)
        s += part[k];
    return s;
}

static size_t ref_refine(const float *x, size_t h, size_t n, const uint64_t *keys, int L,
                         int bits, const float *cent, size_t nc, uint32_t *of)
{
    uint64_t *ckey = malloc(nc * sizeof *ckey);
    uint32_t *choice = malloc(n * sizeof *choice), *remap = malloc(nc * sizeof *remap);
    uint64_t field = ((uint64_t)1 << bits) - 1;
    CU_ASSERT_FATAL(ckey != NULL && choice != NULL && remap != NULL);
    for (size_t i = 0; i < n; i++)
        ckey[of[i]] = keys[i];
    for (size_t i = 0; i < n; i++) {
        uint32_t c = of[i], arg = c;
        float best = ref_dist(x + i * h, cent + (size_t)c * h, h);
        for (int g = 0; g < L; g++) {
            unsigned sh = (unsigned)(g * bits);
            for (uint64_t v = 0; v <= field; v++) {
                uint64_t want = (ckey[c] & ~(field << sh)) | v << sh;
                if (v == ((ckey[c] >> sh) & field))
                    continue;
                for (size_t j = 0; j < nc; j++) {
                    if (ckey[j] != want)
                        continue;
                    float d = ref_dist(x + i * h, cent + j * h, h);
                    if (d < best) {
                        best = d;
                        arg = (uint32_t)j;
                    }
                }
            }
        }
        choice[i] = arg;
    }
    size_t next = 0;
    for (size_t c = 0; c < nc; c++)
        remap[c] = UINT32_MAX;
    for (size_t i = 0; i < n; i++) {
        if (remap[choice[i]] == UINT32_MAX)
            remap[choice[i]] = (uint32_t)next++;
        of[i] = remap[choice[i]];
    }
    free(ckey);
    free(choice);
    free(remap);
    return next;
}

static void test_refine_matches_reference(void)
{
    static const size_t hs[] = {5, 15, 16, 24, 100, 129};
    size_t checked = 0, moved = 0;
    for (size_t hi = 0; hi < sizeof hs / sizeof hs[0]; hi++)
        for (int trial = 0; trial < 6; trial++) {
            const size_t h = hs[hi], n = 300;
            /* 2-bit fields take the field-major loop, 5-bit ones the
             * cluster-major one */
            const int L = 3 + trial % 2, bits = trial < 4 ? 2 : 5;
            size_t nc = 0;
            float *x = malloc(n * h * sizeof *x);
            uint64_t *keys = malloc(n * sizeof *keys);
            uint32_t *of = malloc(n * sizeof *of), *want = malloc(n * sizeof *want);
            CU_ASSERT_FATAL(x != NULL && keys != NULL && of != NULL && want != NULL);
            lt_gen_gaussian(x, n, h, 1000 + 10 * hi + (uint64_t)trial);
            /* every field one of 4 values: dense keys, many neighbours */
            for (size_t i = 0; i < n; i++) {
                keys[i] = 0;
                for (int g = 0; g < L; g++)
                    keys[i] |= (lt_hash64(77 + (uint64_t)trial, i * 16 + (uint64_t)g) % 4)
                               << (g * bits);
            }
            void *gws = malloc(lshmoe_kn_group_ws_size(n));
            CU_ASSERT_FATAL(gws != NULL);
            lshmoe_kn_group(keys, n, of, &nc, gws);
            free(gws);
            /* centroids: noisy tokens of each cluster; every 5th copies the
             * one before it (exact ties) */
            float *cent = malloc(nc * h * sizeof *cent);
            CU_ASSERT_FATAL(cent != NULL);
            for (size_t i = n; i-- > 0;)
                memcpy(cent + (size_t)of[i] * h, x + i * h, h * sizeof *cent);
            for (size_t c = 0; c < nc; c++)
                for (size_t e = 0; e < h; e++) {
                    if (c % 5 == 4)
                        cent[c * h + e] = cent[(c - 1) * h + e];
                    else
                        cent[c * h + e] *= 0.5f;
                }
            memcpy(want, of, n * sizeof *of);
            size_t want_nc = ref_refine(x, h, n, keys, L, bits, cent, nc, want);
            size_t max_nb = (size_t)L * (((size_t)1 << bits) - 1);
            void *ws = malloc(lshmoe_kn_refine_ws_size(n, nc, max_nb));
            CU_ASSERT_FATAL(ws != NULL);
            size_t got_nc = lshmoe_kn_refine(x, h, n, keys, L, bits, cent, nc, of, ws, NULL);
            CU_ASSERT(got_nc == want_nc);
            CU_ASSERT(memcmp(of, want, n * sizeof *of) == 0);
            moved += want_nc < nc;
            checked++;
            free(ws);
            free(cent);
            free(x);
            free(keys);
            free(of);
            free(want);
        }
    CU_ASSERT(checked == 36);
    CU_ASSERT(moved > 0); /* the step changed clusterings, not only kept them */
}

/*
 * One case for the levels test: n tokens of width h, L fields of `bits`
 * bits each taking one of `nv` values (few: dense keys, many neighbours),
 * grouped; centroids from the members, some copied from the cluster
 * before (exact ties), some pushed far away (distances that stop halfway
 * once h >= 16), some tokens equal to their centroid (distance 0). With
 * `odd`: two tokens with the non-finite key, and finite-key tokens with a
 * huge, an infinite or a NaN element (infinite and NaN distances and
 * bounds: the kernel must agree on every input).
 */
typedef struct lv_case {
    size_t    h, n, nc;
    int       L, bits;
    float    *x, *cent;
    uint64_t *keys;
    uint32_t *of;        /* the grouping, before the step */
} lv_case_t;

static void lv_make(lv_case_t *k, size_t h, int L, int bits, uint64_t nv, int odd, uint64_t seed)
{
    const size_t n = 160;
    k->h = h;
    k->n = n;
    k->L = L;
    k->bits = bits;
    k->x = malloc(n * h * sizeof *k->x);
    k->keys = malloc(n * sizeof *k->keys);
    k->of = malloc(n * sizeof *k->of);
    CU_ASSERT_FATAL(k->x != NULL && k->keys != NULL && k->of != NULL);
    lt_gen_clustered(k->x, n, h, 12, 0.4, seed);
    for (size_t i = 0; i < n; i++) {
        k->keys[i] = 0;
        for (int g = 0; g < L; g++)
            k->keys[i] |= (lt_hash64(seed, i * 64 + (uint64_t)g) % nv) << (g * bits);
    }
    if (odd) {
        k->keys[7] = LSHMOE_KN_KEY_NONFINITE;
        k->keys[90] = LSHMOE_KN_KEY_NONFINITE;
        k->x[7 * h] = NAN;
        k->x[11 * h + h / 2] = 1e30f;  /* squares to infinity */
        k->x[12 * h + h - 1] = INFINITY;
        k->x[13 * h] = NAN;
        k->x[14 * h + h / 3] = -3e19f; /* a large but finite square */
    }
    void *gws = malloc(lshmoe_kn_group_ws_size(n));
    CU_ASSERT_FATAL(gws != NULL);
    lshmoe_kn_group(k->keys, n, k->of, &k->nc, gws);
    free(gws);
    k->cent = malloc(k->nc * h * sizeof *k->cent);
    CU_ASSERT_FATAL(k->cent != NULL);
    for (size_t i = n; i-- > 0;)
        memcpy(k->cent + (size_t)k->of[i] * h, k->x + i * h, h * sizeof *k->cent);
    for (size_t c = 0; c < k->nc; c++)
        for (size_t e = 0; e < h; e++) {
            float *v = k->cent + c * h + e;
            if (c % 7 == 3)
                *v = v[-(ptrdiff_t)h];        /* the cluster before's centroid */
            else if (c % 5 == 1)
                *v += 4.0f;                   /* far: neighbours that stop halfway */
            else if (c % 3 != 0)
                *v *= 0.9f;                   /* near, not equal */
        }                                     /* c % 3 == 0: a member's own row */
}

static void lv_free(lv_case_t *k)
{
    free(k->x);
    free(k->cent);
    free(k->keys);
    free(k->of);
}

/* The step at one level: the clustering it leaves, its return value and
 * evaluation count. */
static size_t lv_run(const lv_case_t *k, lshmoe_kn_isa_t isa, uint32_t *of, uint64_t *evals)
{
    size_t max_nb = (size_t)k->L * (((size_t)1 << k->bits) - 1);
    void *ws = malloc(lshmoe_kn_refine_ws_size(k->n, k->nc, max_nb));
    CU_ASSERT_FATAL(ws != NULL);
    CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force(isa), LSHMOE_OK);
    memcpy(of, k->of, k->n * sizeof *of);
    *evals = 0;
    size_t nc = lshmoe_kn_refine(k->x, k->h, k->n, k->keys, k->L, k->bits, k->cent, k->nc, of,
                                 ws, evals);
    free(ws);
    return nc;
}

/*
 * Every ISA level this CPU and build have (the SIMD distance loops,
 * kernels/cpu/x86/refine_*.c) against the scalar level, which the test
 * above checks against the definition: the same clustering, cluster count
 * and evaluation count, for widths 1 to 300 (multiples of 8 and 16 and
 * the others: tails of 1 to 7 elements, halfway tests after 0 to 18
 * groups of 8), fields of 2 to 8 bits (both of the step's loops), dense
 * and sparse keys, and odd values.
 */
static void test_refine_levels_agree(void)
{
    lshmoe_kn_isa_t orig = lshmoe_kn_isa();
    size_t levels = 0, cases = 0, bad = 0, changed = 0, merged = 0;
    for (int isa = 1; isa < LSHMOE_KN_ISA_COUNT; isa++)
        levels += lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa) != 0;
    for (size_t h = 1; h <= 300; h += h < 40 ? 1 : h < 140 ? 5 : 23) {
        for (int bits = 2; bits <= 8; bits++) {
            int L = 2 + (int)((h + (size_t)bits) % 4); /* 2..5 fields: L * bits <= 40 */
            uint64_t nv = bits == 2 ? 4 : 3 + (h + (size_t)bits) % 3;
            int odd = (h + (size_t)bits) % 3 == 0;
            lv_case_t k;
            lv_make(&k, h, L, bits, nv, odd, 5000 + 16 * h + (uint64_t)bits);
            uint32_t *ref = malloc(k.n * sizeof *ref), *got = malloc(k.n * sizeof *got);
            CU_ASSERT_FATAL(ref != NULL && got != NULL);
            uint64_t ref_evals, got_evals;
            size_t ref_nc = lv_run(&k, LSHMOE_KN_ISA_SCALAR, ref, &ref_evals);
            merged += ref_nc < k.nc;
            changed += memcmp(k.of, ref, k.n * sizeof *ref) != 0;
            for (int isa = 1; isa < LSHMOE_KN_ISA_COUNT; isa++) {
                if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
                    continue;
                memset(got, 0xa5, k.n * sizeof *got);
                size_t got_nc = lv_run(&k, (lshmoe_kn_isa_t)isa, got, &got_evals);
                if (got_nc != ref_nc || got_evals != ref_evals ||
                    memcmp(got, ref, k.n * sizeof *got) != 0) {
                    if (bad++ < 10)
                        printf("\n  %s: h %zu, L %d, bits %d: clusters %zu vs %zu, evals "
                               "%llu vs %llu", lshmoe_kn_isa_name((lshmoe_kn_isa_t)isa), h,
                               L, bits, got_nc, ref_nc, (unsigned long long)got_evals,
                               (unsigned long long)ref_evals);
                }
            }
            cases++;
            free(ref);
            free(got);
            lv_free(&k);
        }
    }
    CU_ASSERT_EQUAL(lshmoe_kn_isa_force(orig), LSHMOE_OK);
    printf("\n  %zu SIMD level(s) against the scalar one, %zu cases, %zu changed by the "
           "step, %zu with fewer clusters ", levels, cases, changed, merged);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(changed > cases / 2); /* the step moved tokens, not only kept them */
}

/*
 * The four-distance kernel itself (kernels/cpu/refine_isa.h) at every
 * level, bit for bit, where the clusterings above see only decisions: the
 * full sums (any other order of the lanes or the tail, or a fused
 * multiply-add, changes their last bits) and the partial sums returned
 * where the halfway test stops (any other order of its lane sum changes
 * them), for widths 1 to 300, under bounds that mix lanes that stop with
 * lanes that do not: the distance itself, 1 to 3 ulps above it, one
 * below, 0, half and 0.9 of it, INFINITY and NaN. The odd rows equal their
 * partner past the first half of the groups of 8, so their halfway sum is
 * their whole distance: bounds within ulps of it decide there.
 */
static void test_refine_dist4_bitwise(void)
{
    enum { NROW = 6, NKIND = 10 };
    lshmoe_kn_isa_t orig = lshmoe_kn_isa();
    size_t bad = 0, cases = 0, stops = 0;
    for (size_t h = 1; h <= 300; h++) {
        float *a = malloc(NROW * h * sizeof *a), *b = malloc(NROW * h * sizeof *b);
        CU_ASSERT_FATAL(a != NULL && b != NULL);
        lt_gen_clustered(a, NROW, h, 2, 0.5, 90000 + h);
        lt_gen_clustered(b, NROW, h, 2, 0.5, 190000 + h);
        size_t half = h / 16 * 8;
        for (size_t r = 1; r < NROW; r += 2)
            memcpy(a + r * h + half, b + r * h + half, (h - half) * sizeof *a);
        for (size_t first = 0; first < NROW; first++) {
            const float *ar[4], *br[4];
            float full[4], bound[4], ref[4], got[4];
            for (int t = 0; t < 4; t++) { /* lanes 2 and 3 may repeat a pair */
                size_t r = (first + (size_t)t * (t < 3 ? 1 : 2)) % NROW;
                ar[t] = a + r * h;
                br[t] = b + r * h;
                bound[t] = INFINITY;
            }
            CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
            lshmoe_kn_refine_dist4_kernel()(ar, br, h, bound, full);
            for (int kind = 0; kind < NKIND; kind++) {
                for (int t = 0; t < 4; t++) {
                    float f = full[t], up = f;
                    int k = (kind + t) % NKIND;
                    for (int u = 0; u < k && k <= 3; u++) /* kinds 1..3: ulps above */
                        up = nextafterf(up, INFINITY);
                    switch (k) {
                    case 0: case 1: case 2: case 3: bound[t] = up; break;
                    case 4: bound[t] = nextafterf(f, -INFINITY); break;
                    case 5: bound[t] = 0.0f; break;
                    case 6: bound[t] = 0.5f * f; break;
                    case 7: bound[t] = 0.9f * f; break;
                    case 8: bound[t] = INFINITY; break;
                    default: bound[t] = NAN; break;
                    }
                }
                CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
                lshmoe_kn_refine_dist4_kernel()(ar, br, h, bound, ref);
                for (int t = 0; t < 4; t++)
                    stops += memcmp(&ref[t], &full[t], sizeof ref[t]) != 0;
                for (int isa = 1; isa < LSHMOE_KN_ISA_COUNT; isa++) {
                    if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
                        continue;
                    CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force((lshmoe_kn_isa_t)isa), LSHMOE_OK);
                    memset(got, 0x5a, sizeof got);
                    lshmoe_kn_refine_dist4_kernel()(ar, br, h, bound, got);
                    if (memcmp(got, ref, sizeof got) != 0 && bad++ < 10)
                        printf("\n  %s: h %zu, kind %d: %a %a %a %a vs %a %a %a %a",
                               lshmoe_kn_isa_name((lshmoe_kn_isa_t)isa), h, kind, got[0],
                               got[1], got[2], got[3], ref[0], ref[1], ref[2], ref[3]);
                    cases++;
                }
            }
        }
        free(a);
        free(b);
    }
    CU_ASSERT_EQUAL(lshmoe_kn_isa_force(orig), LSHMOE_OK);
    printf("\n  %zu calls compared, %zu distances stopped halfway ", cases, stops);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(stops > 1000); /* the halfway test returned partial sums */
}

static const lt_test_t tests[] = {
    {"test_refine_matches_reference", test_refine_matches_reference},
    {"test_refine_levels_agree", test_refine_levels_agree},
    {"test_refine_dist4_bitwise", test_refine_dist4_bitwise},
};

LT_MAIN("refine", tests)
