/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The wire checksum (wire format version 4): a 64-bit non-cryptographic
 * hash that catches corruption and truncation, not adversaries. The
 * decoder runs it over the whole segment before it writes anything, so
 * its speed bounds the decoder's. Within a chunk of LSHMOE_WCK_CHUNK
 * bytes it keeps 32 independent 64-bit lanes over 256-byte stripes with a
 * step made only of a 32x32->64 multiply, an add, a shift and xors
 * (kernels/cpu/checksum.c), which every SIMD level computes on all lanes
 * at once, bit for bit as the scalar reference does. At a chunk's end the
 * lanes are avalanched and added into 32 accumulators: the chunks are
 * independent, and a sum modulo 2^64 does not depend on the order of its
 * terms, so a GPU reduces the chunks of one segment over its whole grid in
 * any order and gets these bits. (Versions 1 and 2 used four lanes and a
 * 64x64 multiply, which no SIMD level below AVX-512 has and which chained
 * its latency; version 3 ran the 32 lanes over the whole input, one chain
 * per lane, which a GPU could only run on one warp per segment.)
 *
 * Why any change confined to one aligned 8-byte word is caught. The word
 * belongs to exactly one chunk c and one lane l of it (or to the tail,
 * which lshmoe_wck_tail() steps into lane j as a zero-padded word).
 * - Each lane step x = v ^ w; x += lo32(x) * M; v' = x ^ (x >> 29) is a
 *   bijection of v for a fixed word w and of w for a fixed v: the xor is
 *   invertible; x + lo32(x) * M has low half lo32(x) * (1 + M) mod 2^32
 *   with 1 + M odd, so the low half is recovered and then the high half;
 *   and a right xorshift is invertible. So lane l of chunk c leaves the
 *   step that reads the word in another state, every later step keeps it
 *   different, and it ends the chunk different.
 * - The avalanche is a bijection (xorshifts and multiplies by odd
 *   constants), so the term lane l of chunk c adds to accumulator l
 *   differs; every other term of every accumulator is unchanged, and
 *   adding a fixed value modulo 2^64 is a bijection, so accumulator l
 *   differs.
 * - The finaliser folds the accumulators in order through steps that are
 *   bijections both of the running hash and of the (avalanched)
 *   accumulator, so the result differs.
 * The length also enters the finaliser's first value, so a truncated
 * input folds from another start (caught with high probability, not with
 * certainty, since its accumulators differ too).
 * Chunks that trade places start their lanes from other values (the start
 * depends on the chunk's index through an avalanche), so a swap changes
 * the sum except with probability about 2^-64, like other corruption.
 *
 * Words are read little-endian: the value is a pure function of the bytes
 * on every host, and data may be unaligned. The arithmetic (constants,
 * step, chunk and lane starts, tail, chunk end, fold) is
 * kernels/common/wire_checksum.h, shared with the device packer and
 * validator (kernels/cuda/codec_wire.cu).
 */
#include <stdint.h>
#include <string.h>

#include "kernels/common/wire_checksum.h"
#include "kernels/kernels.h"
#include "lshmoe/codec_internal.h"

uint64_t lshmoe_wire_checksum(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = data;
    uint64_t acc[LSHMOE_WCK_LANES] = {0};

    /* whole chunks in the SIMD kernel, then the last partial one (its
     * whole stripes there too, then the tail) */
    size_t whole = len / LSHMOE_WCK_CHUNK;
    lshmoe_kn_checksum_chunks(p, whole, 0, seed, acc);
    size_t rest = len - whole * LSHMOE_WCK_CHUNK;
    if (rest > 0) {
        uint64_t v[LSHMOE_WCK_LANES];
        const uint64_t b = lshmoe_wck_chunk_base(seed, whole);
        const uint8_t *q = p + whole * LSHMOE_WCK_CHUNK;
        for (int l = 0; l < LSHMOE_WCK_LANES; l++)
            v[l] = lshmoe_wck_lane_start(b, l);
        size_t nstripes = rest / LSHMOE_WCK_STRIPE;
        lshmoe_kn_checksum_stripes(q, nstripes, v);
        lshmoe_wck_tail(q + nstripes * LSHMOE_WCK_STRIPE, rest - nstripes * LSHMOE_WCK_STRIPE,
                        v);
        lshmoe_wck_chunk_end(v, acc);
    }
    return lshmoe_wck_fold(acc, len, seed);
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
