/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* lshmoe_kn_checksum_stripes() per ISA level (same lanes bit for bit),
 * private to kernels/cpu/. */
#ifndef LSHMOE_KERNELS_CPU_CHECKSUM_ISA_H
#define LSHMOE_KERNELS_CPU_CHECKSUM_ISA_H

#include "kernels/kernels.h"

#define LSHMOE_KN_CHECKSUM_ARGS                                                  \
    const void *data, size_t nstripes, uint64_t lanes[LSHMOE_WCK_LANES]

void lshmoe_kn_checksum_stripes_scalar(LSHMOE_KN_CHECKSUM_ARGS);
void lshmoe_kn_checksum_stripes_avx2(LSHMOE_KN_CHECKSUM_ARGS);
void lshmoe_kn_checksum_stripes_avx512(LSHMOE_KN_CHECKSUM_ARGS);

#endif /* LSHMOE_KERNELS_CPU_CHECKSUM_ISA_H */
