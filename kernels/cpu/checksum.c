/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The bulk loops of the wire checksum, scalar reference (lshmoe/codec_checksum.c
 * has the whole hash and why it catches what it catches): the stripes of
 * one chunk, and whole chunks with their ends. The step,
 * lshmoe_wck_step(), is a 32x32->64-bit multiply, an add, a shift and
 * xors: what SSE2, AVX2, AVX-512 and NEON do on every 64-bit lane at once
 * (a 64x64 multiply they lack), and the 32 independent lanes hide the
 * multiply's latency.
 */
#include <string.h>

#include "kernels/cpu/checksum_isa.h"

/* Lanes are independent, so they may be advanced a group at a time over a
 * block of stripes that stays in L1: a group's state then fits in the
 * registers (all 32 lanes at once did not, and ran a third slower). */
#define GROUP 8
#define BLOCK 32 /* stripes: 8 KiB */

/* Little-endian word at any address: the value is a pure function of the
 * bytes on every host. */
static inline uint64_t load_le64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* Lanes [g, g + GROUP) over `ns` stripes from p. */
static void group_steps(const unsigned char *p, size_t ns, int g, uint64_t *lanes)
{
    uint64_t v[GROUP];
    memcpy(v, lanes + g, sizeof v);
    for (size_t s = 0; s < ns; s++, p += LSHMOE_WCK_STRIPE)
        for (int l = 0; l < GROUP; l++)
            v[l] = lshmoe_wck_step(v[l], load_le64(p + 8 * (g + l)));
    memcpy(lanes + g, v, sizeof v);
}

void lshmoe_kn_checksum_stripes_scalar(const void *data, size_t nstripes,
                                       uint64_t lanes[LSHMOE_WCK_LANES])
{
    const unsigned char *p = data;

    for (size_t s = 0; s < nstripes; s += BLOCK) {
        size_t ns = nstripes - s < BLOCK ? nstripes - s : BLOCK;
        for (int g = 0; g < LSHMOE_WCK_LANES; g += GROUP)
            group_steps(p + s * LSHMOE_WCK_STRIPE, ns, g, lanes);
    }
}

void lshmoe_kn_checksum_chunks_scalar(const void *data, size_t nchunks, uint64_t first,
                                      uint64_t seed, uint64_t acc[LSHMOE_WCK_LANES])
{
    const unsigned char *p = data;
    uint64_t v[LSHMOE_WCK_LANES];

    for (size_t c = 0; c < nchunks; c++, p += LSHMOE_WCK_CHUNK) {
        const uint64_t b = lshmoe_wck_chunk_base(seed, first + c);
        for (int l = 0; l < LSHMOE_WCK_LANES; l++)
            v[l] = lshmoe_wck_lane_start(b, l);
        lshmoe_kn_checksum_stripes_scalar(p, LSHMOE_WCK_CHUNK_STRIPES, v);
        lshmoe_wck_chunk_end(v, acc);
    }
}
