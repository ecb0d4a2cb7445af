/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Wire checksum bulk loops with AVX-512 (kernels/cpu/checksum.c is the
 * reference): the 32 lanes in four registers, one 64-byte load each per
 * stripe; vpmuludq as in the AVX2 version (the low 32 bits of every 64-bit
 * lane times the constant, a 64-bit product).
 */
#include <immintrin.h>

#include "kernels/cpu/checksum_isa.h"

#define NREG (LSHMOE_WCK_LANES / 8)

static inline __m512i step(__m512i v, const unsigned char *p, __m512i k)
{
    __m512i x = _mm512_xor_si512(v, _mm512_loadu_si512((const void *)p));
    x = _mm512_add_epi64(x, _mm512_mul_epu32(x, k));
    return _mm512_xor_si512(x, _mm512_srli_epi64(x, 29));
}

void lshmoe_kn_checksum_stripes_avx512(const void *data, size_t nstripes,
                                       uint64_t lanes[LSHMOE_WCK_LANES])
{
    const unsigned char *p = data;
    const __m512i k = _mm512_set1_epi64((long long)LSHMOE_WCK_MUL);
    __m512i v[NREG];

    for (int r = 0; r < NREG; r++)
        v[r] = _mm512_loadu_si512((const void *)(lanes + 8 * r));
    for (size_t s = 0; s < nstripes; s++, p += LSHMOE_WCK_STRIPE)
        for (int r = 0; r < NREG; r++) /* unrolled: the registers stay put */
            v[r] = step(v[r], p + 64 * r, k);
    for (int r = 0; r < NREG; r++)
        _mm512_storeu_si512((void *)(lanes + 8 * r), v[r]);
}

static inline __m512i xorshr(__m512i h, unsigned r)
{
    return _mm512_xor_si512(h, _mm512_srli_epi64(h, r));
}

/* lshmoe_wck_avalanche() on every lane (vpmullq: AVX-512DQ, which this
 * level requires). */
static inline __m512i avalanche(__m512i h, __m512i k3, __m512i k4)
{
    h = _mm512_mullo_epi64(xorshr(h, 31), k3);
    h = _mm512_mullo_epi64(xorshr(h, 29), k4);
    return xorshr(h, 32);
}

void lshmoe_kn_checksum_chunks_avx512(const void *data, size_t nchunks, uint64_t first,
                                      uint64_t seed, uint64_t acc[LSHMOE_WCK_LANES])
{
    const unsigned char *p = data;
    const __m512i k = _mm512_set1_epi64((long long)LSHMOE_WCK_MUL);
    const __m512i k3 = _mm512_set1_epi64((long long)LSHMOE_WCK3);
    const __m512i k4 = _mm512_set1_epi64((long long)LSHMOE_WCK4);
    uint64_t lane_k[LSHMOE_WCK_LANES];
    __m512i v[NREG], a[NREG];

    for (int l = 0; l < LSHMOE_WCK_LANES; l++)
        lane_k[l] = lshmoe_wck_lane_start(0, l);
    for (int r = 0; r < NREG; r++)
        a[r] = _mm512_loadu_si512((const void *)(acc + 8 * r));
    for (size_t c = 0; c < nchunks; c++) {
        const __m512i b = _mm512_set1_epi64((long long)lshmoe_wck_chunk_base(seed, first + c));
        for (int r = 0; r < NREG; r++)
            v[r] = _mm512_xor_si512(b, _mm512_loadu_si512((const void *)(lane_k + 8 * r)));
        for (int s = 0; s < LSHMOE_WCK_CHUNK_STRIPES; s++, p += LSHMOE_WCK_STRIPE)
            for (int r = 0; r < NREG; r++)
                v[r] = step(v[r], p + 64 * r, k);
        for (int r = 0; r < NREG; r++)
            a[r] = _mm512_add_epi64(a[r], avalanche(v[r], k3, k4));
    }
    for (int r = 0; r < NREG; r++)
        _mm512_storeu_si512((void *)(acc + 8 * r), a[r]);
}
