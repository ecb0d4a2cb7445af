/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The wire checksum (wire format version 3): a 64-bit non-cryptographic
 * hash that catches corruption and truncation, not adversaries. The
 * decoder runs it over the whole segment before it writes anything, so
 * its speed bounds the decoder's: the bulk loop keeps 32 independent
 * 64-bit lanes over 256-byte stripes with a step made only of a 32x32->64
 * multiply, an add, a shift and xors (kernels/cpu/checksum.c), which every
 * SIMD level computes on all lanes at once, bit for bit as the scalar
 * reference does. (Versions 1 and 2 used four lanes and a 64x64 multiply,
 * which no SIMD level below AVX-512 has and which chained its latency.)
 *
 * Each lane step x = v ^ w; x += lo32(x) * M; v' = x ^ (x >> 29) is a
 * bijection of v for a fixed word w and of w for a fixed v: the xor is
 * invertible; x + lo32(x) * M has low half lo32(x) * (1 + M) mod 2^32 with
 * 1 + M odd, so the low half is recovered and then the high half; and a
 * right xorshift is invertible. Hence two inputs that differ in one
 * aligned word always leave that lane in a different state, and every
 * later step keeps it different. The finaliser folds the lanes in order
 * through steps that are bijections both of the running hash and of the
 * (avalanched) lane, so a lane that differs makes the result differ: any
 * change confined to one aligned 8-byte word is caught with certainty.
 * The finaliser also takes the length, and avalanches the result.
 *
 * Words are read little-endian: the value is a pure function of the bytes
 * on every host, and data may be unaligned.
 */
#include <stdint.h>
#include <string.h>

#include "kernels/kernels.h"
#include "lshmoe/codec_internal.h"

/* Odd constants from the hexadecimal digits of pi and e. */
#define CK1 0x243F6A8885A308D3ull
#define CK2 0x13198A2E03707345ull
#define CK3 0xA4093822299F31D1ull
#define CK4 0xB7E151628AED2A6Bull

static inline uint64_t rotl64(uint64_t v, unsigned r)
{
    return (v << r) | (v >> (64u - r));
}

/* Spreads every input bit over the whole word (a bijection). */
static inline uint64_t avalanche(uint64_t h)
{
    h ^= h >> 31;
    h *= CK3;
    h ^= h >> 29;
    h *= CK4;
    h ^= h >> 32;
    return h;
}

uint64_t lshmoe_wire_checksum(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = data;
    uint64_t v[LSHMOE_KN_CKSUM_LANES];

    /* distinct starts: (l + 1) * CK1 differ for every l since CK1 is odd */
    for (int l = 0; l < LSHMOE_KN_CKSUM_LANES; l++)
        v[l] = seed ^ ((uint64_t)(l + 1) * CK1);
    size_t nstripes = len / LSHMOE_KN_CKSUM_STRIPE;
    lshmoe_kn_checksum_stripes(p, nstripes, v);
    p += nstripes * LSHMOE_KN_CKSUM_STRIPE;
    size_t n = len - nstripes * LSHMOE_KN_CKSUM_STRIPE;

    /* The tail is a partial stripe: word j into lane j, the last partial
     * word zero-padded (the length, below, tells trailing zeros apart). */
    int l = 0;
    for (; n >= 8; n -= 8, p += 8, l++)
        v[l] = lshmoe_kn_cksum_step(v[l], lshmoe_get_le64(p));
    if (n > 0) {
        uint8_t last[8] = {0};
        memcpy(last, p, n);
        v[l] = lshmoe_kn_cksum_step(v[l], lshmoe_get_le64(last));
    }

    /* Lanes enter in order through a rotation and alternating multipliers,
     * so that swapping two lanes' words does not cancel out. */
    uint64_t h = avalanche((uint64_t)len * CK4 ^ seed);
    for (l = 0; l < LSHMOE_KN_CKSUM_LANES; l++)
        h = (rotl64(h, 23) ^ avalanche(v[l])) * ((l & 1) ? CK2 : CK1);
    return avalanche(h);
}

uint64_t lshmoe_wire_segment_checksum(const uint8_t *hdr, const void *payload,
                                      size_t payload_bytes)
{
    uint8_t h[LSHMOE_WIRE_HEADER_BYTES];

    memcpy(h, hdr, sizeof h);
    memset(h + LSHMOE_WIRE_OFF_CHECKSUM, 0, 8);
    uint64_t hs = lshmoe_wire_checksum(h, sizeof h, 0);
    return lshmoe_wire_checksum(payload, payload_bytes, hs);
}
