/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* lshmoe_kn_checksum_stripes() and lshmoe_kn_checksum_chunks() per ISA
 * level (same lanes and sums bit for bit), private to kernels/cpu/. */
#ifndef LSHMOE_KERNELS_CPU_CHECKSUM_ISA_H
#define LSHMOE_KERNELS_CPU_CHECKSUM_ISA_H

#include "kernels/kernels.h"

#define LSHMOE_KN_CHECKSUM_ARGS                                                  \
    const void *data, size_t nstripes, uint64_t lanes[LSHMOE_WCK_LANES]

void lshmoe_kn_checksum_stripes_scalar(LSHMOE_KN_CHECKSUM_ARGS);
void lshmoe_kn_checksum_stripes_avx2(LSHMOE_KN_CHECKSUM_ARGS);
void lshmoe_kn_checksum_stripes_avx512(LSHMOE_KN_CHECKSUM_ARGS);

#define LSHMOE_KN_CHECKSUM_CHUNKS_ARGS                                           \
    const void *data, size_t nchunks, uint64_t first, uint64_t seed,             \
        uint64_t acc[LSHMOE_WCK_LANES]

void lshmoe_kn_checksum_chunks_scalar(LSHMOE_KN_CHECKSUM_CHUNKS_ARGS);
void lshmoe_kn_checksum_chunks_avx2(LSHMOE_KN_CHECKSUM_CHUNKS_ARGS);
void lshmoe_kn_checksum_chunks_avx512(LSHMOE_KN_CHECKSUM_CHUNKS_ARGS);

#endif /* LSHMOE_KERNELS_CPU_CHECKSUM_ISA_H */
