/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* lshmoe_kn_guard_sums() per ISA level, private to kernels/cpu/. */
#ifndef LSHMOE_KERNELS_CPU_GUARD_ISA_H
#define LSHMOE_KERNELS_CPU_GUARD_ISA_H

#include "kernels/kernels.h"

#define LSHMOE_KN_GUARD_ARGS                                                     \
    const void *tokens, const void *rows, lshmoe_dtype_t dtype, size_t hidden,   \
    size_t ntokens, const uint32_t *cluster_of, const uint32_t *sizes,           \
    double *num_p, double *den_p

void lshmoe_kn_guard_sums_scalar(LSHMOE_KN_GUARD_ARGS);
void lshmoe_kn_guard_sums_avx2(LSHMOE_KN_GUARD_ARGS);
void lshmoe_kn_guard_sums_avx512(LSHMOE_KN_GUARD_ARGS);

#endif /* LSHMOE_KERNELS_CPU_GUARD_ISA_H */
