/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Wire checksum bulk loop with AVX2 (kernels/cpu/checksum.c is the
 * reference): the 32 lanes in eight registers, one 32-byte load each per
 * stripe. vpmuludq multiplies the low 32 bits of every 64-bit lane into a
 * 64-bit product, which is exactly the reference's
 * (x & 0xFFFFFFFF) * LSHMOE_WCK_MUL. x86 is little-endian, so the
 * loads are the reference's words.
 */
#include <immintrin.h>

#include "kernels/cpu/checksum_isa.h"

#define NREG (LSHMOE_WCK_LANES / 4)

static inline __m256i step(__m256i v, const unsigned char *p, __m256i k)
{
    __m256i x = _mm256_xor_si256(v, _mm256_loadu_si256((const __m256i *)p));
    x = _mm256_add_epi64(x, _mm256_mul_epu32(x, k));
    return _mm256_xor_si256(x, _mm256_srli_epi64(x, 29));
}

void lshmoe_kn_checksum_stripes_avx2(const void *data, size_t nstripes,
                                     uint64_t lanes[LSHMOE_WCK_LANES])
{
    const unsigned char *p = data;
    const __m256i k = _mm256_set1_epi64x((long long)LSHMOE_WCK_MUL);
    __m256i v[NREG];

    for (int r = 0; r < NREG; r++)
        v[r] = _mm256_loadu_si256((const __m256i *)(lanes + 4 * r));
    for (size_t s = 0; s < nstripes; s++, p += LSHMOE_WCK_STRIPE)
        for (int r = 0; r < NREG; r++) /* unrolled: the registers stay put */
            v[r] = step(v[r], p + 32 * r, k);
    for (int r = 0; r < NREG; r++)
        _mm256_storeu_si256((__m256i *)(lanes + 4 * r), v[r]);
}
