/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Wire checksum bulk loops with AVX2 (kernels/cpu/checksum.c is the
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

/* The low 64 bits of a * k for a 64-bit constant k (klo, khi its halves in
 * every lane): AVX2 has no 64x64 multiply, so three 32x32->64 ones. */
static inline __m256i mul64(__m256i a, __m256i klo, __m256i khi)
{
    __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), klo),
                                     _mm256_mul_epu32(a, khi));
    return _mm256_add_epi64(_mm256_mul_epu32(a, klo), _mm256_slli_epi64(cross, 32));
}

static inline __m256i xorshr(__m256i h, int r)
{
    return _mm256_xor_si256(h, _mm256_srli_epi64(h, r));
}

/* lshmoe_wck_avalanche() on every lane. */
static inline __m256i avalanche(__m256i h, const __m256i k[4])
{
    h = mul64(xorshr(h, 31), k[0], k[1]);
    h = mul64(xorshr(h, 29), k[2], k[3]);
    return xorshr(h, 32);
}

void lshmoe_kn_checksum_chunks_avx2(const void *data, size_t nchunks, uint64_t first,
                                    uint64_t seed, uint64_t acc[LSHMOE_WCK_LANES])
{
    const unsigned char *p = data;
    const __m256i k = _mm256_set1_epi64x((long long)LSHMOE_WCK_MUL);
    const __m256i ka[4] = {_mm256_set1_epi64x((long long)(LSHMOE_WCK3 & 0xFFFFFFFFull)),
                           _mm256_set1_epi64x((long long)(LSHMOE_WCK3 >> 32)),
                           _mm256_set1_epi64x((long long)(LSHMOE_WCK4 & 0xFFFFFFFFull)),
                           _mm256_set1_epi64x((long long)(LSHMOE_WCK4 >> 32))};
    uint64_t lane_k[LSHMOE_WCK_LANES];
    __m256i v[NREG];

    for (int l = 0; l < LSHMOE_WCK_LANES; l++)
        lane_k[l] = lshmoe_wck_lane_start(0, l);
    for (size_t c = 0; c < nchunks; c++) {
        const __m256i b = _mm256_set1_epi64x((long long)lshmoe_wck_chunk_base(seed, first + c));
        for (int r = 0; r < NREG; r++)
            v[r] = _mm256_xor_si256(b, _mm256_loadu_si256((const __m256i *)(lane_k + 4 * r)));
        for (int s = 0; s < LSHMOE_WCK_CHUNK_STRIPES; s++, p += LSHMOE_WCK_STRIPE)
            for (int r = 0; r < NREG; r++)
                v[r] = step(v[r], p + 32 * r, k);
        for (int r = 0; r < NREG; r++) {
            __m256i *a = (__m256i *)(acc + 4 * r);
            _mm256_storeu_si256(a, _mm256_add_epi64(_mm256_loadu_si256(a),
                                                    avalanche(v[r], ka)));
        }
    }
}
