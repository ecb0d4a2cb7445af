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
 * on every host, and data may be unaligned. The arithmetic (constants,
 * step, lane starts, tail, fold) is kernels/common/wire_checksum.h, shared
 * with the device packer and validator (kernels/cuda/codec_wire.cu).
 */
#include <stdint.h>
#include <string.h>

#include "kernels/common/wire_checksum.h"
#include "kernels/kernels.h"
#include "lshmoe/codec_internal.h"

uint64_t lshmoe_wire_checksum(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = data;
    uint64_t v[LSHMOE_WCK_LANES];

    for (int l = 0; l < LSHMOE_WCK_LANES; l++)
        v[l] = lshmoe_wck_lane_start(seed, l);
    size_t nstripes = len / LSHMOE_WCK_STRIPE;
    lshmoe_kn_checksum_stripes(p, nstripes, v);
    p += nstripes * LSHMOE_WCK_STRIPE;
    lshmoe_wck_tail(p, len - nstripes * LSHMOE_WCK_STRIPE, v);
    return lshmoe_wck_fold(v, len, seed);
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
