/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The wire checksum's arithmetic (wire format version 4, docs/wire-format.md)
 * as LSHMOE_HD code: the one definition of its constants, lane step, chunk
 * and lane starts, tail, chunk end and finaliser. lshmoe/codec_checksum.c
 * (CPU, with the SIMD bulk loops of kernels/cpu/) and
 * kernels/cuda/codec_wire.cu (the device packer and validator) both build
 * the value from these functions, so a segment sealed on either side
 * checks on the other, bit for bit.
 *
 * Shape: the input is cut into chunks of LSHMOE_WCK_CHUNK bytes (the last
 * one may be shorter). In each chunk, LSHMOE_WCK_LANES independent 64-bit
 * lanes run over stripes of LSHMOE_WCK_STRIPE bytes (lane l takes the
 * little-endian word at byte 8*l of every stripe) from starts that depend
 * on the seed, the lane and the chunk's index; the last chunk also takes
 * the tail (a partial stripe). At a chunk's end each lane goes through the
 * avalanche and is added, modulo 2^64, into one of 32 accumulators. The
 * lanes of a chunk are independent chains, so a CPU runs them in SIMD
 * registers and a GPU on one warp (thread l = lane l, loads coalesced);
 * the chunks are independent of each other and their sum does not depend
 * on the order of the additions, so a GPU spreads them over the whole grid
 * and still gets the same bits. The fold of the accumulators is
 * sequential and short. lshmoe/codec_checksum.c explains why it catches
 * every change confined to one aligned 8-byte word.
 */
#ifndef LSHMOE_KN_WIRE_CHECKSUM_H
#define LSHMOE_KN_WIRE_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/common/hd.h"

#define LSHMOE_WCK_LANES  32
#define LSHMOE_WCK_STRIPE (8 * LSHMOE_WCK_LANES)
/* Stripes per chunk. The trade-off: a GPU gets one warp per chunk (more
 * chunks, more warps in flight on one segment), a CPU pays an avalanche
 * and an add per lane at every chunk's end (fewer chunks, less of it);
 * docs/wire-format.md gives the measurement behind the value. */
#define LSHMOE_WCK_CHUNK_STRIPES 128
#define LSHMOE_WCK_CHUNK (LSHMOE_WCK_STRIPE * LSHMOE_WCK_CHUNK_STRIPES)

/* Odd constants from the hexadecimal digits of pi and e. */
#define LSHMOE_WCK1 0x243F6A8885A308D3ull
#define LSHMOE_WCK2 0x13198A2E03707345ull
#define LSHMOE_WCK3 0xA4093822299F31D1ull
#define LSHMOE_WCK4 0xB7E151628AED2A6Bull
/* The lane step's multiplier: even, so that 1 + MUL is odd and the step is
 * a bijection; the high half of the golden ratio. */
#define LSHMOE_WCK_MUL 0x9E3779B8ull

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

/* One lane step: a 32x32->64 multiply, an add, a shift and xors (what SIMD
 * units and GPUs do natively). */
static inline LSHMOE_HD uint64_t lshmoe_wck_step(uint64_t v, uint64_t w)
{
    uint64_t x = v ^ w;
    x += (x & 0xFFFFFFFFull) * LSHMOE_WCK_MUL;
    return x ^ (x >> 29);
}

/* Spreads every input bit over the whole word (a bijection). */
static inline LSHMOE_HD uint64_t lshmoe_wck_avalanche(uint64_t h)
{
    h ^= h >> 31;
    h *= LSHMOE_WCK3;
    h ^= h >> 29;
    h *= LSHMOE_WCK4;
    h ^= h >> 32;
    return h;
}

/* The part of chunk c's lane starts shared by its lanes: the avalanche
 * makes the starts of two chunks unrelated, so that chunks that trade
 * places do not add up to the same sum. */
static inline LSHMOE_HD uint64_t lshmoe_wck_chunk_base(uint64_t seed, uint64_t c)
{
    return lshmoe_wck_avalanche(seed ^ ((c + 1) * LSHMOE_WCK2));
}

/* Lane l's start in the chunk of base b: (l + 1) * WCK1 differ for every
 * l since WCK1 is odd. */
static inline LSHMOE_HD uint64_t lshmoe_wck_lane_start(uint64_t b, int l)
{
    return b ^ ((uint64_t)(l + 1) * LSHMOE_WCK1);
}

/* The tail, a partial stripe of n < LSHMOE_WCK_STRIPE bytes at p: word j
 * into lane j, the last partial word zero-padded (the length, in the fold,
 * tells trailing zeros apart). */
static inline LSHMOE_HD void lshmoe_wck_tail(const uint8_t *p, size_t n,
                                             uint64_t v[LSHMOE_WCK_LANES])
{
    int l = 0;
    for (; n >= 8; n -= 8, p += 8, l++)
        v[l] = lshmoe_wck_step(v[l], lshmoe_wck_read64(p));
    if (n > 0) {
        uint8_t last[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (size_t i = 0; i < n; i++)
            last[i] = p[i];
        v[l] = lshmoe_wck_step(v[l], lshmoe_wck_read64(last));
    }
}

/* A chunk's end: lane l, avalanched, added into accumulator l. */
static inline LSHMOE_HD void lshmoe_wck_chunk_end(const uint64_t v[LSHMOE_WCK_LANES],
                                                  uint64_t acc[LSHMOE_WCK_LANES])
{
    for (int l = 0; l < LSHMOE_WCK_LANES; l++)
        acc[l] += lshmoe_wck_avalanche(v[l]);
}

/* Chunk c, its n <= LSHMOE_WCK_CHUNK bytes at p (fewer only for the last
 * chunk, whose partial stripe is the tail), on one thread, added into acc. */
static inline LSHMOE_HD void lshmoe_wck_chunk(const uint8_t *p, size_t n, uint64_t seed,
                                              uint64_t c, uint64_t acc[LSHMOE_WCK_LANES])
{
    uint64_t v[LSHMOE_WCK_LANES];
    const uint64_t b = lshmoe_wck_chunk_base(seed, c);
    for (int l = 0; l < LSHMOE_WCK_LANES; l++)
        v[l] = lshmoe_wck_lane_start(b, l);
    for (; n >= LSHMOE_WCK_STRIPE; n -= LSHMOE_WCK_STRIPE, p += LSHMOE_WCK_STRIPE)
        for (int l = 0; l < LSHMOE_WCK_LANES; l++)
            v[l] = lshmoe_wck_step(v[l], lshmoe_wck_read64(p + 8 * l));
    lshmoe_wck_tail(p, n, v);
    lshmoe_wck_chunk_end(v, acc);
}

/* The value from the accumulators (after every chunk), the input's length
 * and the seed. Accumulators enter in order through a rotation and
 * alternating multipliers, so that swapping two lanes' sums does not
 * cancel out. The length enters as len + 1, so that an empty input with
 * seed 0 (no chunk: every accumulator 0) does not hash to 0. */
static inline LSHMOE_HD uint64_t lshmoe_wck_fold(const uint64_t acc[LSHMOE_WCK_LANES],
                                                 size_t len, uint64_t seed)
{
    uint64_t h = lshmoe_wck_avalanche(((uint64_t)len + 1) * LSHMOE_WCK4 ^ seed);
    for (int l = 0; l < LSHMOE_WCK_LANES; l++)
        h = (lshmoe_wck_rotl(h, 23) ^ lshmoe_wck_avalanche(acc[l])) *
            ((l & 1) ? LSHMOE_WCK2 : LSHMOE_WCK1);
    return lshmoe_wck_avalanche(h);
}

/* The whole checksum on one thread, chunk after chunk (the reference
 * shape; the device uses it for the 48-byte header, which seeds the
 * payload's). An empty input has no chunk: the accumulators stay 0. */
static inline LSHMOE_HD uint64_t lshmoe_wck_checksum(const uint8_t *p, size_t len,
                                                     uint64_t seed)
{
    uint64_t acc[LSHMOE_WCK_LANES];
    for (int l = 0; l < LSHMOE_WCK_LANES; l++)
        acc[l] = 0;
    for (uint64_t c = 0; (size_t)c * LSHMOE_WCK_CHUNK < len; c++) {
        size_t n = len - (size_t)c * LSHMOE_WCK_CHUNK;
        lshmoe_wck_chunk(p + (size_t)c * LSHMOE_WCK_CHUNK,
                         n < LSHMOE_WCK_CHUNK ? n : LSHMOE_WCK_CHUNK, seed, c, acc);
    }
    return lshmoe_wck_fold(acc, len, seed);
}

#endif /* LSHMOE_KN_WIRE_CHECKSUM_H */
