/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * One refinement step after LSH grouping: every token moves to the nearest
 * centroid among its own cluster and the clusters whose hash tuple differs
 * from its own in exactly one of the L positions (a Lloyd step restricted
 * to hash neighbours), then clusters are renumbered in order of first
 * appearance. Candidates are found per cluster, not per token, by
 * rewriting one b-bit field of the packed key and looking the result up in
 * a small open-addressing table: L * (2c - 1) lookups per cluster, and
 * distance evaluations only for neighbours that exist (a few per token on
 * real data, where most tuples are empty).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/kernels.h"

#define NONE UINT32_MAX

static size_t slots_for(size_t n)
{
    size_t s = 16;
    while (s < 2 * n)
        s *= 2;
    return s;
}

static uint64_t mix(uint64_t k)
{
    k = (k ^ (k >> 33)) * 0xff51afd7ed558ccdull;
    return k ^ (k >> 29);
}

/* Workspace: the key table, each cluster's key, its members (a counting
 * sort of the tokens), each token's decision, and one cluster's neighbour
 * list of max_nb = L * (2^bits - 1) entries: O(tokens + max_nb), so wide
 * polytopes cannot blow it up. */
size_t lshmoe_kn_refine_ws_size(size_t ntokens, size_t nclusters, size_t max_nb)
{
    size_t slots = slots_for(nclusters);
    return slots * (sizeof(uint64_t) + sizeof(uint32_t)) +
           nclusters * (sizeof(uint64_t) + sizeof(uint32_t)) +
           (nclusters + 1) * sizeof(size_t) + 2 * ntokens * sizeof(uint32_t) +
           max_nb * sizeof(uint32_t) + 64;
}

/* Squared distance in 8 independent partial sums, so that gcc vectorises
 * it without reassociating (no -ffast-math). With a bound (INFINITY: none)
 * it may stop halfway, returning a value > bound that is no larger than
 * the full sum: the lane partials summed so far, in the final order.
 * That can only decide "not nearer" when the full sum would have too:
 * adding non-negative terms never makes a rounded sum smaller, and the
 * rounded sum is monotone in each operand, so the full result (the tail
 * and the rest of each lane added on) is >= the bound returned, > bound.
 * Most neighbours a token is tested against are much farther than its
 * own centroid. */
static float dist2(const float *restrict a, const float *restrict b, size_t n, float bound)
{
    float part[8] = {0};
    size_t i = 0, half = n / 16 * 8;
    for (; i < half; i += 8)
        for (size_t k = 0; k < 8; k++) {
            float d = a[i + k] - b[i + k];
            part[k] += d * d;
        }
    if (half > 0 && bound < INFINITY) {
        float lb = 0.0f;
        for (size_t k = 0; k < 8; k++)
            lb += part[k];
        if (lb > bound)
            return lb;
    }
    for (; i + 8 <= n; i += 8)
        for (size_t k = 0; k < 8; k++) {
            float d = a[i + k] - b[i + k];
            part[k] += d * d;
        }
    float s = 0.0f;
    for (; i < n; i++) {
        float d = a[i] - b[i];
        s += d * d;
    }
    for (size_t k = 0; k < 8; k++)
        s += part[k];
    return s;
}

static uint32_t lookup(const uint64_t *tkey, const uint32_t *tid, size_t mask,
                       uint64_t k)
{
    size_t s = (size_t)mix(k) & mask;
    while (tid[s] != NONE) {
        if (tkey[s] == k)
            return tid[s];
        s = (s + 1) & mask;
    }
    return NONE;
}

size_t lshmoe_kn_refine(const float *x, size_t hidden, size_t ntokens,
                        const uint64_t *keys, int L, int bits,
                        const float *centroids, size_t nclusters,
                        uint32_t *cluster_of, void *ws, uint64_t *evals_p)
{
    const size_t slots = slots_for(nclusters), mask = slots - 1;
    const uint64_t vals = (uint64_t)1 << bits, field = vals - 1;
    uintptr_t p = ((uintptr_t)ws + 7u) & ~(uintptr_t)7u;
    uint64_t *tkey = (uint64_t *)p;
    uint64_t *ckey = tkey + slots;
    size_t *start = (size_t *)(ckey + nclusters);   /* nclusters + 1 */
    uint32_t *tid = (uint32_t *)(start + nclusters + 1);
    uint32_t *remap = tid + slots;                 /* nclusters */
    uint32_t *order = remap + nclusters;           /* ntokens: by cluster */
    uint32_t *choice = order + ntokens;            /* ntokens: new cluster */
    uint32_t *nb = choice + ntokens;               /* max_nb */
    uint64_t evals = 0;

    /* each cluster's key (key -> cluster) and member count */
    for (size_t s = 0; s < slots; s++)
        tid[s] = NONE;
    for (size_t c = 0; c <= nclusters; c++)
        start[c] = 0;
    for (size_t i = 0; i < ntokens; i++) {
        uint32_t c = cluster_of[i];
        if (start[c + 1]++ > 0)
            continue;
        ckey[c] = keys[i];
        if (keys[i] == LSHMOE_KN_KEY_NONFINITE)
            continue;
        size_t s = (size_t)mix(keys[i]) & mask;
        while (tid[s] != NONE)
            s = (s + 1) & mask;
        tkey[s] = keys[i];
        tid[s] = c;
    }
    /* members by cluster (counting sort; remap is the fill cursor) */
    for (size_t c = 0; c < nclusters; c++) {
        start[c + 1] += start[c];
        remap[c] = (uint32_t)start[c];
    }
    for (size_t i = 0; i < ntokens; i++)
        order[remap[cluster_of[i]]++] = (uint32_t)i;

    /* per cluster: its neighbours (one field rewritten), then the Lloyd
     * step of its members against them; decisions use the old clustering */
    for (size_t c = 0; c < nclusters; c++) {
        size_t m = 0;
        uint64_t k = ckey[c];
        for (int g = 0; g < L && k != LSHMOE_KN_KEY_NONFINITE; g++) {
            unsigned sh = (unsigned)(g * bits);
            uint64_t own = (k >> sh) & field;
            for (uint64_t v = 0; v < vals; v++) {
                if (v == own)
                    continue;
                uint32_t j = lookup(tkey, tid, mask, (k & ~(field << sh)) | v << sh);
                if (j != NONE)
                    nb[m++] = j;
            }
        }
        for (size_t t = start[c]; t < start[c + 1]; t++) {
            uint32_t i = order[t], arg = (uint32_t)c;
            if (m > 0) {
                const float *xi = x + (size_t)i * hidden;
                float best = dist2(xi, centroids + c * hidden, hidden, INFINITY);
                for (size_t q = 0; q < m; q++) {
                    float d = dist2(xi, centroids + (size_t)nb[q] * hidden, hidden, best);
                    if (d < best) {
                        best = d;
                        arg = nb[q];
                    }
                }
                evals += 1 + m;
            }
            choice[i] = arg;
        }
    }
    /* clusters that lost every token disappear; first-appearance order */
    size_t next = 0;
    for (size_t c = 0; c < nclusters; c++)
        remap[c] = NONE;
    for (size_t i = 0; i < ntokens; i++) {
        uint32_t c = choice[i];
        if (remap[c] == NONE)
            remap[c] = (uint32_t)next++;
        cluster_of[i] = remap[c];
    }
    if (evals_p != NULL)
        *evals_p += evals;
    return next;
}
