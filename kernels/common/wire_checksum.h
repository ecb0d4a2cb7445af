/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The wire checksum's arithmetic (docs/wire-format.md) as LSHMOE_HD code,
 * so the device packer and validator compute the value
 * lshmoe_wire_checksum() (lshmoe/codec_checksum.c) computes, bit for bit:
 * the same constants, lane step, lane order and finaliser. Each of the
 * four lanes is a sequential chain over every fourth 64-bit word, so the
 * checksum of n bytes takes n / 32 dependent steps whatever the hardware:
 * on a GPU it runs on one thread and is the slowest part of a segment
 * (measured by codec_perf --device cuda, docs/cuda.md).
 */
#ifndef LSHMOE_KN_WIRE_CHECKSUM_H
#define LSHMOE_KN_WIRE_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/common/hd.h"

#define LSHMOE_WCK1 0x243F6A8885A308D3ull
#define LSHMOE_WCK2 0x13198A2E03707345ull
#define LSHMOE_WCK3 0xA4093822299F31D1ull
#define LSHMOE_WCK4 0xB7E151628AED2A6Bull

static inline LSHMOE_HD uint64_t lshmoe_wck_rotl(uint64_t v, unsigned r)
{
    return (v << r) | (v >> (64u - r));
}

/* Little-endian word at p (any alignment), byte by byte. */
static inline LSHMOE_HD uint64_t lshmoe_wck_read64(const uint8_t *p)
{
    uint64_t w = 0;
    for (int i = 7; i >= 0; i--)
        w = (w << 8) | p[i];
    return w;
}

static inline LSHMOE_HD uint64_t lshmoe_wck_step(uint64_t v, uint64_t w)
{
    return lshmoe_wck_rotl(v ^ (w * LSHMOE_WCK1), 29) * LSHMOE_WCK2;
}

static inline LSHMOE_HD uint64_t lshmoe_wck_avalanche(uint64_t h)
{
    h ^= h >> 31;
    h *= LSHMOE_WCK3;
    h ^= h >> 29;
    h *= LSHMOE_WCK4;
    h ^= h >> 32;
    return h;
}

/* The four lanes' start from the seed. */
static inline LSHMOE_HD void lshmoe_wck_init(uint64_t seed, uint64_t v[4])
{
    v[0] = seed ^ LSHMOE_WCK1;
    v[1] = seed + LSHMOE_WCK2;
    v[2] = ~seed ^ LSHMOE_WCK3;
    v[3] = seed - LSHMOE_WCK4;
}

/* Folds the lanes and the bytes after the last whole 32-byte block
 * (tail, tail_len < 32) into the value; len is the whole input's length. */
static inline LSHMOE_HD uint64_t lshmoe_wck_finish(const uint64_t v[4], const uint8_t *tail,
                                                   size_t tail_len, size_t len, uint64_t seed)
{
    uint64_t h = lshmoe_wck_avalanche((uint64_t)len * LSHMOE_WCK4 ^ seed);
    h = (h ^ lshmoe_wck_avalanche(v[0])) * LSHMOE_WCK1;
    h = (lshmoe_wck_rotl(h, 17) ^ lshmoe_wck_avalanche(v[1])) * LSHMOE_WCK2;
    h = (lshmoe_wck_rotl(h, 23) ^ lshmoe_wck_avalanche(v[2])) * LSHMOE_WCK3;
    h = (lshmoe_wck_rotl(h, 37) ^ lshmoe_wck_avalanche(v[3])) * LSHMOE_WCK1;
    size_t n = tail_len;
    while (n >= 8) {
        h = lshmoe_wck_step(h ^ LSHMOE_WCK3, lshmoe_wck_read64(tail));
        tail += 8;
        n -= 8;
    }
    if (n > 0) {
        uint8_t last[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (size_t i = 0; i < n; i++)
            last[i] = tail[i];
        h = lshmoe_wck_step(h ^ (uint64_t)n, lshmoe_wck_read64(last));
    }
    return lshmoe_wck_avalanche(h);
}

/* lshmoe_wire_checksum(data, len, seed), on one thread. */
static inline LSHMOE_HD uint64_t lshmoe_wck_checksum(const uint8_t *p, size_t len,
                                                     uint64_t seed)
{
    uint64_t v[4];
    size_t n = len;
    lshmoe_wck_init(seed, v);
    while (n >= 32) {
        for (int l = 0; l < 4; l++)
            v[l] = lshmoe_wck_step(v[l], lshmoe_wck_read64(p + 8 * l));
        p += 32;
        n -= 32;
    }
    return lshmoe_wck_finish(v, p, n, len, seed);
}

#endif /* LSHMOE_KN_WIRE_CHECKSUM_H */
