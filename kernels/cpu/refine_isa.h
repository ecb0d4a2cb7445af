/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The refinement step's distance loops (kernels/cpu/refine.c) per ISA
 * level, private to kernels/cpu/. Every level makes the same decisions as
 * the scalar reference for every input, bit for bit: each distance is the
 * reference's fp32 sum (8 lane partials in order, the halfway bound test
 * on those partials summed lane 0 to 7, the tail into s first, then the 8
 * lanes in order; no FMA), so the returned clustering, cluster count and
 * evaluation count never depend on the level (test `refine`).
 */
#ifndef LSHMOE_KERNELS_CPU_REFINE_ISA_H
#define LSHMOE_KERNELS_CPU_REFINE_ISA_H

#include <stddef.h>
#include <stdint.h>

/*
 * The members of one cluster (distinct token indices members[0 ..
 * nmembers), rows x + i * hidden) against centroid rows nb[0 .. nnb) of
 * `centroids` (rows `hidden` floats apart), each member meeting them in
 * that order:
 * - choice == NULL: the members' own centroid, nnb == 1: best[i] = the
 *   distance (no bound);
 * - else the neighbours: where a distance is below best[i] (which bounds
 *   it, so it may stop halfway), best[i] = it and choice[i] = nb[v]; ties
 *   keep the earlier candidate.
 */
#define LSHMOE_KN_REFINE_MEMBERS_ARGS                                                   \
    const float *x, size_t hidden, const uint32_t *members, size_t nmembers,          \
    const float *centroids, const uint32_t *nb, size_t nnb, float *best,              \
    uint32_t *choice

void lshmoe_kn_refine_members_scalar(LSHMOE_KN_REFINE_MEMBERS_ARGS);
void lshmoe_kn_refine_members_avx2(LSHMOE_KN_REFINE_MEMBERS_ARGS);

/* The level lshmoe_kn_isa() chose (kernels/cpu/dispatch.c); AVX-512 runs
 * the AVX2 loop: a distance is 8 lanes, one __m256, by definition. */
void lshmoe_kn_refine_members(LSHMOE_KN_REFINE_MEMBERS_ARGS);

#endif /* LSHMOE_KERNELS_CPU_REFINE_ISA_H */
