/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The wire checksum: a 64-bit non-cryptographic hash that catches
 * corruption and truncation, not adversaries. It must run well above link
 * speed (it touches every wire byte twice: once per side), so the bulk loop
 * keeps four independent 64-bit lanes over 32-byte blocks, which lets the
 * multiplies of different lanes overlap.
 *
 * Each lane step v' = rotl(v ^ (w * K1), 29) * K2 is a bijection of v for a
 * fixed word w and of w for a fixed v (odd multipliers, xor and rotation
 * are invertible). Hence two inputs that differ in one word always leave
 * that lane in a different state, and every later step keeps it different:
 * any single-word change reaches the finaliser. The finaliser folds the
 * lanes, the tail and the length together and avalanches the result.
 *
 * Words are read little-endian through memcpy: the value is a pure function
 * of the bytes on every host, and data may be unaligned.
 */
#include <stdint.h>
#include <string.h>

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

static inline uint64_t read64(const uint8_t *p)
{
    return lshmoe_get_le64(p);
}

static inline uint64_t lane_step(uint64_t v, uint64_t w)
{
    return rotl64(v ^ (w * CK1), 29) * CK2;
}

/* Spreads every input bit over the whole word. */
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
    size_t n = len;
    uint64_t v0 = seed ^ CK1, v1 = seed + CK2, v2 = ~seed ^ CK3,
             v3 = seed - CK4;

    while (n >= 32) {
        v0 = lane_step(v0, read64(p));
        v1 = lane_step(v1, read64(p + 8));
        v2 = lane_step(v2, read64(p + 16));
        v3 = lane_step(v3, read64(p + 24));
        p += 32;
        n -= 32;
    }

    /* Lanes enter through different rotations so that swapping two lanes'
     * blocks does not cancel out. */
    uint64_t h = avalanche((uint64_t)len * CK4 ^ seed);
    h = (h ^ avalanche(v0)) * CK1;
    h = (rotl64(h, 17) ^ avalanche(v1)) * CK2;
    h = (rotl64(h, 23) ^ avalanche(v2)) * CK3;
    h = (rotl64(h, 37) ^ avalanche(v3)) * CK1;

    while (n >= 8) {
        h = lane_step(h ^ CK3, read64(p));
        p += 8;
        n -= 8;
    }
    if (n > 0) {
        uint8_t last[8] = {0};
        memcpy(last, p, n);
        /* n is in the length already; still tag the partial word with its
         * size so that trailing zero bytes are not interchangeable. */
        h = lane_step(h ^ (uint64_t)n, read64(last));
    }
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
