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
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

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

static const lt_test_t tests[] = {
    {"test_refine_matches_reference", test_refine_matches_reference},
};

LT_MAIN("refine", tests)
