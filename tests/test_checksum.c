/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The wire checksum (lshmoe/codec_checksum.c, docs/wire-format.md): the
 * same value at every CPU ISA level this machine has, for every length
 * from 0 to 300 bytes, a spread of longer ones and lengths around chunk
 * boundaries, at every start alignment; every change confined to one
 * aligned 8-byte word is seen, also across chunks; two chunks that trade
 * places are seen; known values pin the definition (they change only with
 * the wire version); segments of the versions with a previous checksum
 * are refused by name.
 */
#include <stdlib.h>
#include <string.h>

#include "kernels/common/wire_checksum.h"
#include "kernels/kernels.h"
#include "lshmoe/codec.h"
#include "lshmoe/codec_internal.h"
#include "lshmoe_codec.h"
#include "testutil.h"

#define CK LSHMOE_WCK_CHUNK
#define BUF (5 * CK + 600)

static void fill(uint8_t *buf, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)lt_hash64(seed, i);
}

/* Lengths around chunk boundaries: one chunk less a word, a byte; one
 * chunk; one chunk and a byte, a word, a stripe, a stripe and a word;
 * several chunks with and without a tail. */
static const size_t around_chunks[] = {
    CK - 8, CK - 1, CK, CK + 1, CK + 8, CK + 256, CK + 264, 2 * CK - 256, 2 * CK,
    2 * CK + 5, 3 * CK + 300, 4 * CK, 5 * CK + 513};
#define NAROUND (sizeof around_chunks / sizeof around_chunks[0])

/* Lengths checked: all of 0..300, every 37th up to 4100, then the above. */
static size_t nth_len(size_t k)
{
    if (k <= 300)
        return k;
    if (k < 301 + 3800 / 37)
        return 300 + (k - 300) * 37;
    return around_chunks[k - (301 + 3800 / 37)];
}
#define NLENS (301 + 3800 / 37 + NAROUND)

static void test_checksum_same_at_every_level(void)
{
    uint8_t *buf = malloc(BUF);
    uint64_t *ref = malloc(NLENS * 8 * 2 * sizeof(uint64_t));
    static const uint64_t seeds[2] = {0, 0x0123456789ABCDEFull};
    CU_ASSERT_FATAL(buf != NULL && ref != NULL);
    fill(buf, BUF, 11);

    CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
    for (size_t k = 0; k < NLENS; k++)
        for (int off = 0; off < 8; off++)
            for (int s = 0; s < 2; s++)
                ref[(k * 8 + off) * 2 + s] =
                    lshmoe_wire_checksum(buf + off, nth_len(k), seeds[s]);
    /* the same bytes at another alignment hash the same */
    for (size_t k = 0; k < NLENS; k++) {
        memmove(buf + 5, buf, nth_len(k));
        CU_ASSERT(lshmoe_wire_checksum(buf + 5, nth_len(k), 0) == ref[k * 16]);
        fill(buf, BUF, 11);
    }

    int levels = 0;
    for (int isa = 1; isa < LSHMOE_KN_ISA_COUNT; isa++) {
        if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
            continue;
        levels++;
        CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force((lshmoe_kn_isa_t)isa), LSHMOE_OK);
        size_t bad = 0;
        for (size_t k = 0; k < NLENS; k++)
            for (int off = 0; off < 8; off++)
                for (int s = 0; s < 2; s++)
                    bad += lshmoe_wire_checksum(buf + off, nth_len(k), seeds[s]) !=
                           ref[(k * 8 + off) * 2 + s];
        CU_ASSERT_EQUAL(bad, 0);
        /* the bulk kernels alone, lane by lane and sum by sum */
        for (size_t nc = 0; nc <= (BUF - 8) / CK; nc++)
            for (int off = 0; off < 8; off += 7) {
                uint64_t a[LSHMOE_WCK_LANES], b[LSHMOE_WCK_LANES];
                for (int l = 0; l < LSHMOE_WCK_LANES; l++)
                    a[l] = b[l] = lt_hash64(nc, (uint64_t)l);
                lshmoe_kn_checksum_chunks(buf + off, nc, 3 + nc, 0xfeed, a);
                CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
                lshmoe_kn_checksum_chunks(buf + off, nc, 3 + nc, 0xfeed, b);
                CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force((lshmoe_kn_isa_t)isa), LSHMOE_OK);
                CU_ASSERT(memcmp(a, b, sizeof a) == 0);
            }
        for (size_t ns = 0; ns <= 4200 / LSHMOE_WCK_STRIPE; ns++)
            for (int off = 0; off < 8; off++) {
                uint64_t a[LSHMOE_WCK_LANES], b[LSHMOE_WCK_LANES];
                for (int l = 0; l < LSHMOE_WCK_LANES; l++)
                    a[l] = b[l] = lt_hash64(ns, (uint64_t)l);
                lshmoe_kn_checksum_stripes(buf + off, ns, a);
                CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
                lshmoe_kn_checksum_stripes(buf + off, ns, b);
                CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force((lshmoe_kn_isa_t)isa), LSHMOE_OK);
                CU_ASSERT(memcmp(a, b, sizeof a) == 0);
            }
    }
    if (levels == 0)
        printf("(no SIMD level on this CPU/build: scalar only) ");
    CU_ASSERT_EQUAL(lshmoe_kn_isa_init(), LSHMOE_OK);
    free(ref);
    free(buf);
}

/* 1 when replacing the aligned word at w of buf[0..len) (the last one
 * possibly partial) by other bytes leaves the checksum h; buf restored. */
static int misses_word_change(uint8_t *buf, size_t len, size_t w, uint64_t seed, uint64_t h)
{
    size_t end = w + 8 < len ? w + 8 : len;
    uint8_t keep[8];
    memcpy(keep, buf + w, end - w);
    /* a nonzero xor on one byte at least: the word differs */
    for (size_t i = w; i < end; i++)
        buf[i] ^= (uint8_t)(lt_hash64(len, i) | (i == w));
    int missed = lshmoe_wire_checksum(buf, len, seed) == h;
    memcpy(buf + w, keep, end - w);
    return missed;
}

/* Every aligned word (the last one possibly partial) replaced by other
 * bytes, and every single bit flipped, at every level. */
static void test_checksum_single_word_changes(void)
{
    uint8_t buf[1100];
    static const size_t longer[] = {255, 256, 257, 511, 512, 513, 1031};

    for (int isa = 0; isa < LSHMOE_KN_ISA_COUNT; isa++) {
        if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
            continue;
        CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force((lshmoe_kn_isa_t)isa), LSHMOE_OK);
        size_t missed = 0;
        for (size_t k = 1; k <= 200 + sizeof longer / sizeof longer[0]; k++) {
            size_t len = k <= 200 ? k : longer[k - 201];
            fill(buf, len, 5 + len);
            uint64_t h = lshmoe_wire_checksum(buf, len, 3);
            for (size_t w = 0; w < len; w += 8)
                missed += (size_t)misses_word_change(buf, len, w, 3, h);
            if (len <= 300)
                for (size_t b = 0; b < 8 * len; b++) {
                    buf[b / 8] ^= (uint8_t)(1u << (b % 8));
                    missed += lshmoe_wire_checksum(buf, len, 3) == h;
                    buf[b / 8] ^= (uint8_t)(1u << (b % 8));
                }
            CU_ASSERT(lshmoe_wire_checksum(buf, len, 3) == h);
        }
        CU_ASSERT_EQUAL(missed, 0);
    }
    CU_ASSERT_EQUAL(lshmoe_kn_isa_init(), LSHMOE_OK);
}

/* Around chunk boundaries (one chunk less a byte, one chunk, one chunk and
 * a word, two chunks and a tail), at every level: every aligned word (the
 * last one possibly partial) replaced by other bytes; every bit flipped of
 * the first and last words of each chunk, of the first and last words of
 * its first and last stripes, of the tail and of every 509th word. */
static void test_checksum_single_word_changes_across_chunks(void)
{
    static const size_t lens[] = {CK - 1, CK, CK + 8, 2 * CK + 300};
    uint8_t *buf = malloc(BUF);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);

    for (int isa = 0; isa < LSHMOE_KN_ISA_COUNT; isa++) {
        if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
            continue;
        CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force((lshmoe_kn_isa_t)isa), LSHMOE_OK);
        size_t missed = 0, words = 0, bits = 0;
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            size_t len = lens[k];
            fill(buf, len, 77 + len);
            uint64_t h = lshmoe_wire_checksum(buf, len, 9);
            for (size_t w = 0; w < len; w += 8) {
                size_t end = w + 8 < len ? w + 8 : len;
                missed += (size_t)misses_word_change(buf, len, w, 9, h);
                words++;
                size_t in_stripe = w % LSHMOE_WCK_STRIPE, in_chunk = w % CK;
                int edge_stripe = in_chunk < LSHMOE_WCK_STRIPE ||
                                  in_chunk >= CK - LSHMOE_WCK_STRIPE;
                int edge = (edge_stripe && (in_stripe == 0 ||
                                            in_stripe == LSHMOE_WCK_STRIPE - 8)) ||
                           in_chunk < 8 || in_chunk >= CK - 8 ||
                           w >= len / LSHMOE_WCK_STRIPE * LSHMOE_WCK_STRIPE ||
                           (w / 8) % 509 == 0;
                for (size_t b = 8 * w; edge && b < 8 * end; b++) {
                    buf[b / 8] ^= (uint8_t)(1u << (b % 8));
                    missed += lshmoe_wire_checksum(buf, len, 9) == h;
                    bits++;
                    buf[b / 8] ^= (uint8_t)(1u << (b % 8));
                }
            }
            CU_ASSERT(lshmoe_wire_checksum(buf, len, 9) == h);
        }
        CU_ASSERT_EQUAL(missed, 0);
        CU_ASSERT(words > (2 * CK + 300) / 8 && bits > 64 * 40);
    }
    CU_ASSERT_EQUAL(lshmoe_kn_isa_init(), LSHMOE_OK);
    free(buf);
}

/* Two whole chunks of different bytes that trade places, and the last
 * whole chunk with the partial one's bytes moved before it: another
 * value, at every level (each chunk's lanes start from its index). */
static void test_checksum_swapped_chunks(void)
{
    const size_t len = 4 * CK + 300;
    uint8_t *buf = malloc(len), *tmp = malloc(CK);
    CU_ASSERT_FATAL(buf != NULL && tmp != NULL);
    static const size_t pairs[][2] = {{0, 1}, {1, 2}, {0, 3}, {2, 3}};

    for (int isa = 0; isa < LSHMOE_KN_ISA_COUNT; isa++) {
        if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
            continue;
        CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force((lshmoe_kn_isa_t)isa), LSHMOE_OK);
        fill(buf, len, 4242);
        uint64_t h = lshmoe_wire_checksum(buf, len, 0);
        for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
            uint8_t *a = buf + pairs[k][0] * CK, *b = buf + pairs[k][1] * CK;
            CU_ASSERT_FATAL(memcmp(a, b, CK) != 0);
            memcpy(tmp, a, CK);
            memcpy(a, b, CK);
            memcpy(b, tmp, CK);
            CU_ASSERT(lshmoe_wire_checksum(buf, len, 0) != h);
            memcpy(b, a, CK);
            memcpy(a, tmp, CK);
            CU_ASSERT(lshmoe_wire_checksum(buf, len, 0) == h);
        }
        /* the same bytes in another order: the tail moved to the front */
        memmove(buf + 300, buf, 4 * CK);
        fill(buf, 300, 1);
        uint64_t moved = lshmoe_wire_checksum(buf, len, 0);
        CU_ASSERT(moved != h);
    }
    CU_ASSERT_EQUAL(lshmoe_kn_isa_init(), LSHMOE_OK);
    free(tmp);
    free(buf);
}

/* Pinned values: bytes i -> (i * 31 + 7) & 0xff. They were computed by this
 * library's scalar reference and agree with an independent implementation
 * written from docs/wire-format.md; if they change, the wire changed. */
static void test_checksum_known_values(void)
{
    static const struct {
        size_t   len;
        uint64_t seed, sum;
    } kat[] = {
        {0, 0, 0x2F76CDD0568640ABull},       {7, 0, 0x9DD714847D4C6DF3ull},
        {48, 0, 0x85D6192BAD6CDB93ull},      {256, 0, 0x920FB6C3B28CCB81ull},
        {300, 0x5eed, 0x5E39665D9807E73Eull}, {1000, 1, 0xF5589D3C23337958ull},
        {32768, 0, 0xCE27C6B59AC06F27ull},   {32769, 2, 0x225E01F2391E5DA7ull},
        {100000, 0x0123456789ABCDEFull, 0x4341C14912FAAC6Full},
    };
    static uint8_t buf[100000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)((i * 31 + 7) & 0xff);
    for (int isa = 0; isa < LSHMOE_KN_ISA_COUNT; isa++) {
        if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
            continue;
        CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force((lshmoe_kn_isa_t)isa), LSHMOE_OK);
        for (size_t k = 0; k < sizeof kat / sizeof kat[0]; k++)
            CU_ASSERT_EQUAL(lshmoe_wire_checksum(buf, kat[k].len, kat[k].seed), kat[k].sum);
    }
    CU_ASSERT_EQUAL(lshmoe_kn_isa_init(), LSHMOE_OK);
}

/* The one-thread form in kernels/common/wire_checksum.h (what the device
 * runs on a segment's header, and the shape its warps split) gives the
 * library's value: every length 0..300, every 37th to 4100 and the
 * lengths around chunk boundaries, at odd start offsets, two seeds. */
static void test_checksum_shared_header_form(void)
{
    uint8_t *buf = malloc(BUF);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    fill(buf, BUF, 0xc0ffee);
    size_t bad = 0;
    for (size_t k = 0; k < NLENS; k++)
        for (size_t off = 0; off < 8; off += 3)
            for (uint64_t seed = 0; seed < 2; seed++) {
                size_t len = nth_len(k);
                if (lshmoe_wck_checksum(buf + off, len, seed * 0x9e37) !=
                    lshmoe_wire_checksum(buf + off, len, seed * 0x9e37))
                    bad++;
            }
    CU_ASSERT_EQUAL(bad, 0);
    free(buf);
}

/* A raw fp32 segment of 3 tokens x 4, sealed as `version`. */
static void seal_raw(uint8_t *seg, size_t len, uint16_t version)
{
    lshmoe_wire_header_t h = {.magic = LSHMOE_WIRE_MAGIC, .version = version,
                              .flags = LSHMOE_WIRE_F_RAW, .dtype = LSHMOE_DTYPE_FP32,
                              .hidden = 4, .ntokens = 3, .nrows = 3,
                              .payload_bytes = len - LSHMOE_WIRE_HEADER_BYTES};
    lshmoe_wire_header_write(&h, seg);
    lshmoe_put_le64(seg + LSHMOE_WIRE_OFF_CHECKSUM,
                    lshmoe_wire_segment_checksum(seg, seg + LSHMOE_WIRE_HEADER_BYTES,
                                                 len - LSHMOE_WIRE_HEADER_BYTES));
}

static void test_checksum_old_versions_refused(void)
{
    enum { LEN = LSHMOE_WIRE_HEADER_BYTES + 48 };
    uint8_t seg[LEN];
    float out[12], sentinel[12];
    for (int i = 0; i < 12; i++) {
        float v = (float)i - 2.5f;
        memcpy(seg + LSHMOE_WIRE_HEADER_BYTES + 4 * i, &v, 4);
        sentinel[i] = -7.0f;
    }
    seal_raw(seg, LEN, LSHMOE_WIRE_VERSION);
    CU_ASSERT_EQUAL(lshmoe_codec_decode_rows(seg, LEN, LSHMOE_DTYPE_FP32, 4, 3, out,
                                             sizeof out), LSHMOE_OK);
    CU_ASSERT(out[11] == 8.5f);
    for (uint16_t v = 1; v <= 5; v++) {
        if (v == LSHMOE_WIRE_VERSION)
            continue;
        seal_raw(seg, LEN, v);
        memcpy(out, sentinel, sizeof out);
        CU_ASSERT_EQUAL(lshmoe_codec_decode_rows(seg, LEN, LSHMOE_DTYPE_FP32, 4, 3, out,
                                                 sizeof out), LSHMOE_ERR_CORRUPT);
        const char *msg = lshmoe_last_error(NULL);
        CU_ASSERT(strstr(msg, v < LSHMOE_WIRE_VERSION ? "older lshmoe"
                                                       : "unsupported version") != NULL);
        CU_ASSERT(memcmp(out, sentinel, sizeof out) == 0);
    }
}

static const lt_test_t tests[] = {
    {"test_checksum_same_at_every_level", test_checksum_same_at_every_level},
    {"test_checksum_single_word_changes", test_checksum_single_word_changes},
    {"test_checksum_single_word_changes_across_chunks",
     test_checksum_single_word_changes_across_chunks},
    {"test_checksum_swapped_chunks", test_checksum_swapped_chunks},
    {"test_checksum_known_values", test_checksum_known_values},
    {"test_checksum_shared_header_form", test_checksum_shared_header_form},
    {"test_checksum_old_versions_refused", test_checksum_old_versions_refused},
};

LT_MAIN("checksum", tests)
