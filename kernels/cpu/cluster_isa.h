/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* lshmoe_kn_centroids() per ISA level (same contract, bit-identical rows),
 * private to kernels/cpu/. */
#ifndef LSHMOE_KERNELS_CPU_CLUSTER_ISA_H
#define LSHMOE_KERNELS_CPU_CLUSTER_ISA_H

#include <string.h>

#include "kernels/kernels.h"

#define LSHMOE_KN_CENTROIDS_ARGS                                                 \
    const void *tokens, lshmoe_dtype_t dtype, size_t hidden, size_t ntokens,     \
    const uint32_t *cluster_of, size_t nclusters, void *rows, uint32_t *sizes,   \
    float *acc

/* A cluster's sum starts at -0.0f, as in the reference: the identity of
 * addition, so a coordinate that is -0.0 in every member keeps its sign. */
static inline void lshmoe_kn_acc_clear(float *a, size_t n)
{
    for (size_t k = 0; k < n; k++)
        a[k] = -0.0f;
}

/* sizes[c] = the members of cluster c; the sums of the clusters of two or
 * more start from -0.0f (a cluster of one is its token, copied). */
static inline void lshmoe_kn_sizes_clear(const uint32_t *cluster_of, size_t ntokens,
                                         size_t nclusters, size_t hidden, uint32_t *sizes,
                                         float *acc)
{
    memset(sizes, 0, nclusters * sizeof *sizes);
    for (size_t i = 0; i < ntokens; i++)
        sizes[cluster_of[i]]++;
    for (size_t c = 0; c < nclusters; c++)
        if (sizes[c] > 1)
            lshmoe_kn_acc_clear(acc + c * hidden, hidden);
}

/* The fused kernels' member lists, by counting sort: sizes[c] = members of
 * cluster c, end[c] = one past its last member in mem[], mem[] = token
 * indices cluster after cluster, each cluster's in token order. */
static inline void lshmoe_kn_member_lists(const uint32_t *cluster_of, size_t ntokens,
                                          size_t nclusters, uint32_t *sizes, uint32_t *end,
                                          uint32_t *mem)
{
    memset(sizes, 0, nclusters * sizeof *sizes);
    for (size_t i = 0; i < ntokens; i++)
        sizes[cluster_of[i]]++;
    uint32_t run = 0;
    for (size_t c = 0; c < nclusters; c++) {
        end[c] = run;
        run += sizes[c];
    }
    for (size_t i = 0; i < ntokens; i++)
        mem[end[cluster_of[i]]++] = (uint32_t)i;
}

void lshmoe_kn_centroids_scalar(LSHMOE_KN_CENTROIDS_ARGS);
void lshmoe_kn_centroids_avx2(LSHMOE_KN_CENTROIDS_ARGS);
void lshmoe_kn_centroids_avx512(LSHMOE_KN_CENTROIDS_ARGS);
/* lshmoe_kn_centroids_guard() with AVX-512 and AVX2: one pass (the scalar
 * level runs its centroid and guard kernels one after the other). */
void lshmoe_kn_centroids_guard_avx512(LSHMOE_KN_CENTROIDS_ARGS, double *num_p, double *den_p);
void lshmoe_kn_centroids_guard_avx2(LSHMOE_KN_CENTROIDS_ARGS, double *num_p, double *den_p);

#endif /* LSHMOE_KERNELS_CPU_CLUSTER_ISA_H */
