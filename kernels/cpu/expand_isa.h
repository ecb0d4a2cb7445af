/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* lshmoe_kn_expand() per ISA level, private to kernels/cpu/: out row i =
 * rows[cluster_of[i]], `row_bytes` bytes each (>= 1), byte for byte at
 * every level; rows and out may be unaligned and must not overlap. */
#ifndef LSHMOE_KERNELS_CPU_EXPAND_ISA_H
#define LSHMOE_KERNELS_CPU_EXPAND_ISA_H

#include "kernels/kernels.h"

#define LSHMOE_KN_EXPAND_ARGS                                                    \
    const void *rows, size_t row_bytes, size_t ntokens, const uint32_t *cluster_of, \
    void *out

/* Element size of any dtype, integers and bytes included (expand copies
 * rows of every kind); 0 for an invalid value. */
size_t lshmoe_kn_elem_bytes(lshmoe_dtype_t dtype);

void lshmoe_kn_expand_scalar(LSHMOE_KN_EXPAND_ARGS);
void lshmoe_kn_expand_avx2(LSHMOE_KN_EXPAND_ARGS);
void lshmoe_kn_expand_avx512(LSHMOE_KN_EXPAND_ARGS);

#endif /* LSHMOE_KERNELS_CPU_EXPAND_ISA_H */
