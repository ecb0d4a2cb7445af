/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The refinement step's distances (kernels/cpu/refine.c) per ISA level,
 * private to kernels/cpu/. Every level returns the scalar reference's
 * values bit for bit, for every input: the fp32 sum of refine.c's dist2
 * (8 lane partials in order, the halfway bound test on those partials
 * summed lane 0 to 7, the tail into s first, then the 8 lanes in order;
 * no FMA), so the step's clustering, cluster count and evaluation count
 * never depend on the level (test `refine`).
 */
#ifndef LSHMOE_KERNELS_CPU_REFINE_ISA_H
#define LSHMOE_KERNELS_CPU_REFINE_ISA_H

#include <stddef.h>

/*
 * Four distances at once: d[t] = dist2(a[t], b[t], n, bound[t]), rows of
 * n floats: the squared distance, or, where it stopped halfway because
 * its partial sum was already over bound[t], that partial sum (> bound[t];
 * INFINITY or NaN: no bound). The four sums are independent, so a level
 * may take their in-order lane sums together.
 */
#define LSHMOE_KN_REFINE_DIST4_ARGS                                                     \
    const float *const a[4], const float *const b[4], size_t n, const float bound[4],  \
    float d[4]

void lshmoe_kn_refine_dist4_scalar(LSHMOE_KN_REFINE_DIST4_ARGS);
void lshmoe_kn_refine_dist4_avx2(LSHMOE_KN_REFINE_DIST4_ARGS);

typedef void (*lshmoe_kn_refine_dist4_fn)(LSHMOE_KN_REFINE_DIST4_ARGS);

/* The kernel of the level lshmoe_kn_isa() chooses now (kernels/cpu/
 * dispatch.c), for a caller to keep through one refinement step: it runs
 * per four distances. AVX-512 gets the AVX2 kernel: a distance is 8 lanes,
 * one __m256, by definition. */
lshmoe_kn_refine_dist4_fn lshmoe_kn_refine_dist4_kernel(void);

#endif /* LSHMOE_KERNELS_CPU_REFINE_ISA_H */
