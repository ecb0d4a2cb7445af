/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Forgeries the mutation test (test_codec_fuzz.c) does not reach:
 * - a forged but valid segment (index entries re-pointed, checksum fixed):
 *   the decoder must accept it and write exactly what it describes;
 * - a segment of more than 2^16 rows with its 32-bit index, and the same
 *   segment damaged where only a 32-bit index can be wrong;
 * - the metadata record every data collective exchanges (both the
 *   transparent round and the MoE rounds use it): random mutations of four
 *   ranks' records must get the verdict the documented rules give, never a
 *   crash; and the public validate over the same forged segments.
 * Seeds are fixed.
 */
#include <stdlib.h>
#include <string.h>

#include "lshmoe/codec.h"
#include "lshmoe/codec_internal.h"
#include "lshmoe/meta.h"
#include "lshmoe_codec.h"
#include "testutil.h"

#define HDR LSHMOE_WIRE_HEADER_BYTES

static uint64_t pad8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

/* Writes a header for (flags, fp32, hidden, ntokens, nrows) and the
 * checksum over `len` bytes (the payload must be in place). */
static void seal(uint8_t *seg, size_t len, uint16_t flags, uint32_t hidden, uint64_t ntokens,
                 uint64_t nrows)
{
    lshmoe_wire_header_t h = {.magic = LSHMOE_WIRE_MAGIC, .version = lshmoe_wire_version_for(flags),
                              .flags = flags, .dtype = LSHMOE_DTYPE_FP32, .hidden = hidden,
                              .ntokens = ntokens, .nrows = nrows,
                              .payload_bytes = len - HDR};
    lshmoe_wire_header_write(&h, seg);
    uint64_t sum = lshmoe_wire_segment_checksum(seg, seg + HDR, len - HDR);
    lshmoe_put_le64(seg + 40, sum);
}

/* A compressed fp32 segment built by hand: nrows rows of `hidden` values
 * (row r holds r + k / 1000), and token t pointing at row pick(t). */
typedef struct forged {
    uint8_t *seg;
    size_t   len, idx_off;
    uint64_t nrows, ntokens;
    uint32_t hidden;
    int      idx32;
} forged_t;

static forged_t forge(uint64_t nrows, uint64_t ntokens, uint32_t hidden, int idx32,
                      uint64_t (*pick)(uint64_t t, uint64_t nrows))
{
    forged_t f = {.nrows = nrows, .ntokens = ntokens, .hidden = hidden, .idx32 = idx32};
    size_t isz = idx32 ? 4 : 2;
    f.idx_off = HDR + pad8(nrows * hidden * 4);
    f.len = f.idx_off + pad8(ntokens * isz);
    f.seg = calloc(1, f.len);
    for (uint64_t r = 0; r < nrows; r++)
        for (uint32_t k = 0; k < hidden; k++) {
            float v = (float)r + (float)k / 1000.0f;
            memcpy(f.seg + HDR + (r * hidden + k) * 4, &v, 4);
        }
    for (uint64_t t = 0; t < ntokens; t++) {
        uint64_t r = pick(t, nrows);
        if (idx32)
            lshmoe_put_le32(f.seg + f.idx_off + 4 * t, (uint32_t)r);
        else
            lshmoe_put_le16(f.seg + f.idx_off + 2 * t, (uint16_t)r);
    }
    seal(f.seg, f.len, idx32 ? LSHMOE_WIRE_F_IDX32 : 0, hidden, ntokens, nrows);
    return f;
}

static uint64_t pick_mod(uint64_t t, uint64_t nrows)
{
    return t % nrows;
}

static uint64_t pick_scrambled(uint64_t t, uint64_t nrows)
{
    return lt_hash64(0xF0F0, t) % nrows;
}

/* Decodes f and checks that token t is row pick(t), value by value. */
static int decodes_as(const forged_t *f, uint64_t (*pick)(uint64_t, uint64_t))
{
    size_t n = (size_t)(f->ntokens * f->hidden);
    float *out = malloc(n * sizeof *out + 1);
    int ok = lshmoe_codec_decode_rows(f->seg, f->len, LSHMOE_DTYPE_FP32, f->hidden,
                                      (size_t)f->ntokens, out, n * sizeof *out) == LSHMOE_OK;
    for (uint64_t t = 0; ok && t < f->ntokens; t++) {
        uint64_t r = pick(t, f->nrows);
        for (uint32_t k = 0; ok && k < f->hidden; k++)
            ok = out[t * f->hidden + k] == (float)r + (float)k / 1000.0f;
    }
    free(out);
    return ok;
}

/* Copies f into a buffer of exactly its length (ASan sees any overread). */
static lshmoe_status_t validate_exact(const forged_t *f)
{
    uint8_t *copy = malloc(f->len);
    memcpy(copy, f->seg, f->len);
    lshmoe_status_t st = lshmoe_codec_validate(copy, f->len, 0, NULL);
    free(copy);
    return st;
}

static void test_forge_valid_forgery_decodes_as_written(void)
{
    forged_t f = forge(37, 500, 12, 0, pick_scrambled);
    lshmoe_segment_info_t info = LSHMOE_SEGMENT_INFO_INITIALIZER;
    CU_ASSERT_EQUAL(lshmoe_codec_validate(f.seg, f.len, 0, &info), LSHMOE_OK);
    CU_ASSERT_EQUAL(info.nrows, 37);
    CU_ASSERT(decodes_as(&f, pick_scrambled));
    /* Re-point every entry and re-seal: still valid, now the other mapping. */
    for (uint64_t t = 0; t < f.ntokens; t++)
        lshmoe_put_le16(f.seg + f.idx_off + 2 * t, (uint16_t)pick_mod(t, f.nrows));
    seal(f.seg, f.len, 0, f.hidden, f.ntokens, f.nrows);
    CU_ASSERT(decodes_as(&f, pick_mod));
    /* One entry past the last row: refused, though the checksum is right. */
    lshmoe_put_le16(f.seg + f.idx_off + 2 * 123, (uint16_t)f.nrows);
    seal(f.seg, f.len, 0, f.hidden, f.ntokens, f.nrows);
    CU_ASSERT_EQUAL(validate_exact(&f), LSHMOE_ERR_CORRUPT);
    free(f.seg);
}

static void test_forge_more_than_2_16_rows(void)
{
    const uint64_t nrows = 65536 + 1500, ntok = nrows + 4000;
    forged_t f = forge(nrows, ntok, 1, 1, pick_mod);
    CU_ASSERT_EQUAL(validate_exact(&f), LSHMOE_OK);
    CU_ASSERT(decodes_as(&f, pick_mod)); /* rows past 2^16 are reached */
    /* An entry that only a 32-bit index can hold, one past the end. */
    lshmoe_put_le32(f.seg + f.idx_off + 4 * (ntok - 1), (uint32_t)nrows);
    seal(f.seg, f.len, LSHMOE_WIRE_F_IDX32, 1, ntok, nrows);
    CU_ASSERT_EQUAL(validate_exact(&f), LSHMOE_ERR_CORRUPT);
    lshmoe_put_le32(f.seg + f.idx_off + 4 * (ntok - 1), 0xFFFFFFFFu);
    seal(f.seg, f.len, LSHMOE_WIRE_F_IDX32, 1, ntok, nrows);
    CU_ASSERT_EQUAL(validate_exact(&f), LSHMOE_ERR_CORRUPT);
    /* The same rows claimed with a 16-bit index: refused (it cannot
     * address them), whatever the sizes say. */
    lshmoe_put_le32(f.seg + f.idx_off + 4 * (ntok - 1), 0);
    seal(f.seg, f.len, 0, 1, ntok, nrows);
    CU_ASSERT_EQUAL(validate_exact(&f), LSHMOE_ERR_CORRUPT);
    free(f.seg);
}

/* ------------------------------------------------------------------------ */
/* The metadata record                                                       */
/* ------------------------------------------------------------------------ */

#define MR 4

/* The documented order of checks, written independently of meta.c. */
static lshmoe_status_t oracle(const lshmoe_meta_t *in)
{
    for (int p = 0; p < MR; p++)
        if (in[p].magic != LSHMOE_META_MAGIC)
            return LSHMOE_ERR_CORRUPT;
    for (int p = 1; p < MR; p++)
        if (in[p].coll != in[0].coll)
            return LSHMOE_ERR_MISMATCH;
    for (int p = 0; p < MR; p++)
        if (in[p].status != 0)
            return LSHMOE_ERR_PEER;
    for (int p = 1; p < MR; p++)
        if (in[p].seq != in[0].seq || in[p].dtype != in[0].dtype ||
            in[p].hidden != in[0].hidden)
            return LSHMOE_ERR_MISMATCH;
    return LSHMOE_OK;
}

static void test_forge_metadata_records(void)
{
    static const lshmoe_coll_t colls[] = {LSHMOE_COLL_ALLTOALLV, LSHMOE_COLL_MOE_DISPATCH,
                                          LSHMOE_COLL_MOE_COMBINE,
                                          LSHMOE_COLL_MOE_COMBINE_BWD,
                                          LSHMOE_COLL_MOE_DISPATCH_BWD};
    int verdicts[4] = {0};
    for (uint64_t it = 0; it < 20000; it++) {
        lshmoe_coll_t coll = colls[it % 5];
        lshmoe_meta_t in[MR];
        for (int p = 0; p < MR; p++) {
            in[p] = lshmoe_meta_header(coll, 7, LSHMOE_DTYPE_BF16, 1024, LSHMOE_OK);
            in[p].bytes = lt_hash64(it, (uint64_t)p) % 100000;
            in[p].count = in[p].bytes / 2048;
        }
        /* 0 to 3 mutations: a random byte of a random record set to a
         * random value (body bytes included, which must not matter). */
        int nmut = (int)(lt_hash64(0x3E7A, it) % 4);
        for (int m = 0; m < nmut; m++) {
            uint64_t r = lt_hash64(0x3E7B, it * 8 + (uint64_t)m);
            uint8_t *rec = (uint8_t *)&in[r % MR];
            rec[(r >> 8) % sizeof(lshmoe_meta_t)] = (uint8_t)(r >> 32);
        }
        lshmoe_status_t want = oracle(in), got = lshmoe_meta_check(in, MR, 1);
        CU_ASSERT_EQUAL(got, want);
        if (got != want)
            break;
        verdicts[want == LSHMOE_OK ? 0 : want == LSHMOE_ERR_CORRUPT ? 1
                 : want == LSHMOE_ERR_PEER ? 2 : 3]++;
    }
    /* Every verdict was reached, so the oracle was not trivially agreeing. */
    for (int v = 0; v < 4; v++)
        CU_ASSERT(verdicts[v] > 0);
}

static const lt_test_t tests[] = {
    {"test_forge_valid_forgery_decodes_as_written", test_forge_valid_forgery_decodes_as_written},
    {"test_forge_more_than_2_16_rows", test_forge_more_than_2_16_rows},
    {"test_forge_metadata_records", test_forge_metadata_records},
};

LT_MAIN("forge", tests)
