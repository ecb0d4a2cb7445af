/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The decoder against damaged and forged segments. Every mutated segment
 * is copied into a malloc of exactly its length (so AddressSanitizer sees
 * any read past it) and must be refused with LSHMOE_ERR_CORRUPT or
 * LSHMOE_ERR_MISMATCH, without writing one output byte. Forgeries fix the
 * checksum afterwards (as docs/wire-format.md defines it), so that the
 * checks behind the checksum are what refuses them. Seeds are fixed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lshmoe/codec.h"
#include "testutil.h"

#define HDR LSHMOE_WIRE_HEADER_BYTES
#define OUT_CAP (1u << 16)

typedef struct base {
    lshmoe_dtype_t dtype;
    size_t         hidden, ntokens;
    uint8_t       *seg;
    size_t         len;
} base_t;

enum { NBASES = 11 };
static base_t bases[NBASES];
static lshmoe_codec_t *codec;

static uint64_t rng_state;
static uint64_t rnd(void)
{
    return lt_hash64(0xF022, rng_state++);
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8); /* little-endian host */
    return v;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

/* The checksum as documented: header with a zeroed checksum field, hashed
 * with seed 0, seeds the hash of the payload. */
static void fix_checksum(uint8_t *seg, size_t len)
{
    uint8_t h[HDR];
    if (len < HDR)
        return;
    memcpy(h, seg, HDR);
    memset(h + 40, 0, 8);
    uint64_t s = lshmoe_wire_checksum(h, HDR, 0);
    s = lshmoe_wire_checksum(seg + HDR, len - HDR, s);
    memcpy(seg + 40, &s, 8);
}

/* Section offsets, computed here from the documented layout. */
typedef struct layout {
    size_t idx_off, isz, resid_off, stride, end;
} layout_t;

static size_t pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* Row format (flags bits 4-6) and the bytes of one row in it, from the
 * documented layouts. */
static int fmt_of(const base_t *b)
{
    return (get16(b->seg + 6) >> 4) & 7;
}

static size_t row_bytes(const base_t *b)
{
    size_t h = b->hidden;
    switch (fmt_of(b)) {
    case 1: return 4 * ((h + 127) / 128) + h;      /* FP8   */
    case 2: return 4 + h;                          /* INT8  */
    case 3: return 2 * ((h + 31) / 32) + (h + 1) / 2; /* INT4 */
    case 4: return 2 * ((h + 31) / 32) + (h + 3) / 4; /* INT2 */
    case 5: return (h + 31) / 32 + (h + 1) / 2;   /* INT4E */
    default: return h * lshmoe_dtype_size(b->dtype);
    }
}

static layout_t layout_of(const base_t *b, size_t nrows, size_t ntokens)
{
    layout_t l = {0};
    uint16_t f = get16(b->seg + 6);
    l.idx_off = HDR + pad8(nrows * row_bytes(b));
    l.isz = (f & LSHMOE_WIRE_F_IDX32) ? 4 : 2;
    l.resid_off = l.idx_off + pad8(ntokens * l.isz);
    l.stride = (f & LSHMOE_WIRE_F_RESID8) ? 4 + b->hidden
             : (f & LSHMOE_WIRE_F_RESID4) ? 4 + (b->hidden + 1) / 2 : 0;
    l.end = (f & LSHMOE_WIRE_F_RAW) ? l.idx_off : l.resid_off + pad8(ntokens * l.stride);
    return l;
}

static void make_base_mode(base_t *b, lshmoe_dtype_t dt, size_t hidden, size_t n,
                           int clustered, int bits, uint64_t seed, int mode)
{
    lshmoe_codec_params_t p = {
        .lsh = { .seed = 9, .num_hashes = 6, .cdim = 4,
                 .reduce = LSHMOE_REDUCE_FOLD, .reduce_dim = 64, .rounds = 3 },
        .compress = 1, .min_tokens = 1, .min_ratio = 1.0, .residual_bits = bits,
        .mode = mode,
    };
    lshmoe_codec_t *c = NULL;
    CU_ASSERT_FATAL(lshmoe_codec_create(&p, &c) == LSHMOE_OK);
    float *x = malloc(n * hidden * sizeof *x);
    void *tok = malloc(n * hidden * 8);
    if (clustered)
        lt_gen_clustered(x, n, hidden, 6, 0.05, seed);
    else
        lt_gen_gaussian(x, n, hidden, seed);
    if (dt == LSHMOE_DTYPE_FP32 || dt == LSHMOE_DTYPE_INT32)
        memcpy(tok, x, n * hidden * 4);
    else
        lt_to_dtype(x, n * hidden, dt, tok);
    size_t cap;
    CU_ASSERT_FATAL(lshmoe_codec_max_bytes(dt, hidden, n, &cap) == LSHMOE_OK);
    b->seg = malloc(cap);
    CU_ASSERT_FATAL(lshmoe_codec_encode(c, tok, dt, hidden, n, b->seg, cap,
                                        &b->len, NULL) == LSHMOE_OK);
    b->dtype = dt;
    b->hidden = hidden;
    b->ntokens = n;
    free(x);
    free(tok);
    lshmoe_codec_destroy(c);
}

static void make_base(base_t *b, lshmoe_dtype_t dt, size_t hidden, size_t n,
                      int clustered, int bits, uint64_t seed)
{
    make_base_mode(b, dt, hidden, n, clustered, bits, seed, LSHMOE_CODEC_LSH);
}

/* Base 5: base 0 rewritten with a 32-bit index (legal, if not what the
 * encoder writes for so few rows) to reach the u32 parsing path. */
static void make_idx32_base(base_t *dst, const base_t *src)
{
    size_t nrows = get64(src->seg + 24), n = src->ntokens;
    layout_t l = layout_of(src, nrows, n);
    *dst = *src;
    dst->len = l.idx_off + pad8(4 * n);
    dst->seg = calloc(1, dst->len);
    memcpy(dst->seg, src->seg, l.idx_off);
    for (size_t i = 0; i < n; i++) {
        uint32_t v = get16(src->seg + l.idx_off + 2 * i);
        memcpy(dst->seg + l.idx_off + 4 * i, &v, 4);
    }
    uint16_t f = LSHMOE_WIRE_F_IDX32;
    memcpy(dst->seg + 6, &f, 2);
    uint64_t payload = dst->len - HDR;
    memcpy(dst->seg + 32, &payload, 8);
    fix_checksum(dst->seg, dst->len);
}

static int decode_ok(const base_t *b, uint8_t *out)
{
    return lshmoe_codec_decode(codec, b->seg, b->len, b->dtype, b->hidden,
                               b->ntokens, out, NULL) == LSHMOE_OK;
}

static void test_codec_fuzz_bases_valid(void)
{
    lshmoe_codec_params_t p = {
        .lsh = { .seed = 9, .num_hashes = 6, .cdim = 4,
                 .reduce = LSHMOE_REDUCE_FOLD, .reduce_dim = 64, .rounds = 3 },
        .compress = 1, .min_tokens = 1, .min_ratio = 1.0, .residual_bits = 0,
    };
    CU_ASSERT_FATAL(lshmoe_codec_create(&p, &codec) == LSHMOE_OK);
    make_base(&bases[0], LSHMOE_DTYPE_FP32, 16, 128, 1, 0, 1);
    make_base(&bases[1], LSHMOE_DTYPE_FP16, 24, 96, 1, 8, 2);
    make_base(&bases[2], LSHMOE_DTYPE_BF16, 10, 80, 1, 4, 3);
    make_base(&bases[3], LSHMOE_DTYPE_BF16, 8, 32, 0, 0, 4);
    make_base(&bases[4], LSHMOE_DTYPE_INT32, 3, 21, 1, 0, 5);
    make_idx32_base(&bases[5], &bases[0]);
    /* every quantized row format, per token and as centroids; odd widths
     * leave unused code bits that must be zero */
    make_base_mode(&bases[6], LSHMOE_DTYPE_FP32, 16, 128, 1, 0, 6, LSHMOE_CODEC_FP8);
    make_base_mode(&bases[7], LSHMOE_DTYPE_FP16, 24, 96, 1, 0, 7, LSHMOE_CODEC_LSH_INT4);
    make_base_mode(&bases[8], LSHMOE_DTYPE_BF16, 11, 80, 1, 0, 8,
                   LSHMOE_CODEC_LSH_REFINE_INT4E);
    make_base_mode(&bases[9], LSHMOE_DTYPE_BF16, 13, 64, 0, 0, 9, LSHMOE_CODEC_INT2);
    make_base_mode(&bases[10], LSHMOE_DTYPE_FP32, 9, 40, 0, 0, 10, LSHMOE_CODEC_INT8);
    static const uint16_t want[NBASES] = { 0, LSHMOE_WIRE_F_RESID8,
        LSHMOE_WIRE_F_RESID4, LSHMOE_WIRE_F_RAW, LSHMOE_WIRE_F_RAW,
        LSHMOE_WIRE_F_IDX32, LSHMOE_WIRE_F_RAW | 0x10, 0x30, 0x50,
        LSHMOE_WIRE_F_RAW | 0x40, LSHMOE_WIRE_F_RAW | 0x20 };
    uint8_t *out = malloc(OUT_CAP), *ref = malloc(OUT_CAP);
    for (int k = 0; k < NBASES; k++) {
        CU_ASSERT_FATAL(get16(bases[k].seg + 6) == want[k]);
        /* one version, whatever the row format */
        CU_ASSERT(get16(bases[k].seg + 4) == LSHMOE_WIRE_VERSION);
        CU_ASSERT(layout_of(&bases[k], get64(bases[k].seg + 24),
                            bases[k].ntokens).end == bases[k].len);
        CU_ASSERT(decode_ok(&bases[k], out));
    }
    CU_ASSERT(decode_ok(&bases[0], ref) && decode_ok(&bases[5], out));
    CU_ASSERT(memcmp(ref, out, 128 * 16 * 4) == 0);
    free(out);
    free(ref);
}

/* One forged or damaged segment of `len` bytes; `buf` may be longer. */
static void expect_refused(const base_t *b, const uint8_t *buf, size_t len,
                           uint8_t *out, const uint8_t *sentinel, int kind)
{
    uint8_t *exact = malloc(len ? len : 1);
    CU_ASSERT_FATAL(exact != NULL);
    memcpy(exact, buf, len);
    lshmoe_status_t st = lshmoe_codec_decode(codec, exact, len, b->dtype,
                                             b->hidden, b->ntokens, out, NULL);
    CU_ASSERT(st == LSHMOE_ERR_CORRUPT || st == LSHMOE_ERR_MISMATCH);
    if (st != LSHMOE_ERR_CORRUPT && st != LSHMOE_ERR_MISMATCH)
        fprintf(stderr, "mutation kind %d accepted (status %d)\n", kind, (int)st);
    CU_ASSERT(memcmp(out, sentinel, OUT_CAP) == 0);
    free(exact);
}

/* Rebuilds base b with fewer rows or tokens, consistently sized. */
static size_t shrink(const base_t *b, uint8_t *dst, size_t nrows, size_t ntok)
{
    size_t r0 = get64(b->seg + 24);
    layout_t from = layout_of(b, r0, b->ntokens), to = layout_of(b, nrows, ntok);
    memset(dst, 0, to.end);
    memcpy(dst, b->seg, HDR + nrows * row_bytes(b));
    memcpy(dst + to.idx_off, b->seg + from.idx_off, ntok * to.isz);
    memcpy(dst + to.resid_off, b->seg + from.resid_off, ntok * to.stride);
    uint64_t v = nrows, t = ntok, payload = to.end - HDR;
    memcpy(dst + 16, &t, 8);
    memcpy(dst + 24, &v, 8);
    memcpy(dst + 32, &payload, 8);
    fix_checksum(dst, to.end);
    return to.end;
}

static void tamper_header(uint8_t *m, size_t len)
{
    static const int off[] = { 0, 4, 6, 8, 12, 16, 24, 32 };
    static const int width[] = { 4, 2, 2, 4, 4, 8, 8, 8 };
    int f = (int)(rnd() % 8);
    uint64_t old = 0, v;
    memcpy(&old, m + off[f], (size_t)width[f]);
    switch (rnd() % 6) {
    case 0: v = old + 1; break;
    case 1: v = old - 1; break;
    case 2: v = old ^ (1ull << (rnd() % (8u * (unsigned)width[f]))); break;
    case 3: v = rnd() % 70000; break;
    case 4: v = rnd(); break;
    default: v = (uint64_t)0 - (rnd() % 3); break;
    }
    if (v == old)
        v = old + 2;
    memcpy(m + off[f], &v, (size_t)width[f]);
    fix_checksum(m, len);
}

/*
 * A quantized row made invalid behind a valid checksum: a scale that is
 * not finite or negative (FP8/INT8 fp32, INT4/INT2 fp16), an FP8 NaN code,
 * or nonzero unused code bits at the end of a row of odd width. Returns 0
 * when the base offers none of these (native rows, even-width INT4E).
 */
static int forge_row(const base_t *b, uint8_t *m, size_t nrows)
{
    static const float bad32[] = { NAN, INFINITY, -INFINITY, -1e-3f, -7.0f };
    static const uint16_t bad16[] = { 0x7c00, 0x7e00, 0xfc00, 0x8001, 0xbc00 };
    int fmt = fmt_of(b);
    size_t h = b->hidden, rb = row_bytes(b);
    if (fmt == 0 || nrows == 0)
        return 0;
    uint8_t *row = m + HDR + (size_t)(rnd() % nrows) * rb;
    size_t per_byte = fmt == 4 ? 4 : 2;          /* codes per byte, low-bit formats */
    size_t scales = fmt == 1 ? 4 * ((h + 127) / 128) : fmt == 2 ? 4
                  : fmt == 5 ? (h + 31) / 32 : 2 * ((h + 31) / 32);
    int pick = (int)(rnd() % 2);
    if ((fmt == 1 || fmt == 2) && pick == 0) {
        memcpy(row, &bad32[rnd() % 5], 4);
    } else if (fmt == 1) {
        row[scales + (size_t)(rnd() % h)] = (rnd() % 2) ? 0x7f : 0xff;
    } else if ((fmt == 3 || fmt == 4) && (pick == 0 || h % per_byte == 0)) {
        uint16_t v = bad16[rnd() % 5];
        memcpy(row + 2 * (size_t)(rnd() % ((h + 31) / 32)), &v, 2);
    } else if (fmt >= 3 && h % per_byte != 0) {
        size_t used = h % per_byte, bits = 8 / per_byte;
        row[rb - 1] |= (uint8_t)(1u << (bits * used + rnd() % (8 - bits * used)));
    } else {
        return 0;
    }
    return 1;
}

static void test_codec_fuzz_mutations_refused(void)
{
    uint8_t *out = malloc(OUT_CAP), *sentinel = malloc(OUT_CAP);
    uint8_t *m = malloc(OUT_CAP);
    memset(sentinel, 0xA5, OUT_CAP);
    memset(out, 0xA5, OUT_CAP);
    rng_state = 1;
    for (int it = 0; it < 20000; it++) {
        const base_t *b = &bases[rnd() % NBASES];
        size_t len = b->len, nrows = get64(b->seg + 24);
        uint16_t flags = get16(b->seg + 6);
        int raw = (flags & LSHMOE_WIRE_F_RAW) != 0;
        layout_t l = layout_of(b, nrows, b->ntokens);
        int kind = (int)(rnd() % 10);
        memcpy(m, b->seg, len);
        switch (kind) {
        case 0: /* bit flips */
            for (uint64_t k = 1 + rnd() % 4; k > 0; k--) {
                uint64_t bit = rnd() % (8 * len);
                m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            }
            /* two flips of the same bit cancel: make sure one stays */
            if (memcmp(m, b->seg, len) == 0)
                m[0] ^= 1;
            break;
        case 1: /* byte overwrites, first one guaranteed different */
            for (uint64_t k = 1 + rnd() % 4; k > 0; k--) {
                size_t at = (size_t)(rnd() % len);
                m[at] = (uint8_t)(b->seg[at] ^ (1 + rnd() % 255));
            }
            break;
        case 2: /* truncation */
            len = (size_t)(rnd() % len);
            break;
        case 3: /* extension with junk, header untouched */
            for (size_t k = 1 + rnd() % 64; k > 0; k--)
                m[len++] = (uint8_t)rnd();
            break;
        case 4: /* a header field, checksum fixed */
            tamper_header(m, len);
            break;
        case 5: /* index entry out of range, checksum fixed */
            if (raw) {
                tamper_header(m, len);
                break;
            } else {
                size_t i = (size_t)(rnd() % b->ntokens);
                uint32_t v = (uint32_t)(nrows + rnd() % (l.isz == 2 ? 65536 - nrows : 1u << 31));
                memcpy(m + l.idx_off + l.isz * i, &v, l.isz);
                fix_checksum(m, len);
            }
            break;
        case 6: /* residual scale non-finite or negative, checksum fixed */
            if (l.stride == 0) {
                tamper_header(m, len);
            } else {
                static const float bad[] = { NAN, INFINITY, -INFINITY, -1e-3f, -7.0f };
                size_t i = (size_t)(rnd() % b->ntokens);
                memcpy(m + l.resid_off + l.stride * i, &bad[rnd() % 5], 4);
                fix_checksum(m, len);
            }
            break;
        case 7: { /* nonzero padding, checksum fixed */
            size_t pads[3], np = 0;
            size_t rows_end = HDR + nrows * row_bytes(b);
            if (rows_end % 8) pads[np++] = rows_end;
            if (!raw && (l.idx_off + b->ntokens * l.isz) % 8) pads[np++] = l.idx_off + b->ntokens * l.isz;
            if (l.stride && (l.resid_off + b->ntokens * l.stride) % 8)
                pads[np++] = l.resid_off + b->ntokens * l.stride;
            if (np == 0) {
                tamper_header(m, len);
                break;
            }
            m[pads[rnd() % np]] = (uint8_t)(1 + rnd() % 255);
            fix_checksum(m, len);
            break;
        }
        case 9: /* a coded row forged, checksum fixed */
            if (!forge_row(b, m, nrows))
                tamper_header(m, len);
            fix_checksum(m, len);
            break;
        default: /* consistent sizes, fewer rows or tokens: only the
                    index / count checks behind the size checks can tell */
            if (raw || nrows < 2) {
                tamper_header(m, len);
            } else if (rnd() % 2) {
                len = shrink(b, m, nrows - 1 - (size_t)(rnd() % (nrows - 1)), b->ntokens);
            } else {
                len = shrink(b, m, nrows, b->ntokens - 1 - (size_t)(rnd() % (b->ntokens - nrows)));
            }
            break;
        }
        expect_refused(b, m, len, out, sentinel, kind);
        /* the codec keeps working after any refusal */
        if (it % 997 == 0) {
            CU_ASSERT(decode_ok(&bases[it % NBASES], out));
            memset(out, 0xA5, OUT_CAP);
        }
    }
    free(m);
    free(out);
    free(sentinel);
}

/* Random headers with a valid magic, version and checksum over junk. */
static void test_codec_fuzz_random_headers_refused(void)
{
    uint8_t *out = malloc(OUT_CAP), *sentinel = malloc(OUT_CAP), *m = malloc(4096);
    memset(sentinel, 0xA5, OUT_CAP);
    memset(out, 0xA5, OUT_CAP);
    rng_state = 1u << 20;
    for (int it = 0; it < 2000; it++) {
        const base_t *b = &bases[rnd() % NBASES];
        size_t len = HDR + 8 * (size_t)(rnd() % 300);
        for (size_t i = 0; i < len; i++)
            m[i] = (uint8_t)rnd();
        uint32_t magic = LSHMOE_WIRE_MAGIC;
        /* mostly this version; now and then the previous one (refused) */
        uint16_t ver = (uint16_t)(LSHMOE_WIRE_VERSION - (rnd() % 4 == 0)),
                 flags = (uint16_t)(rnd() % 128);
        uint32_t dt = (uint32_t)(rnd() % 9), hidden = (uint32_t)(rnd() % 64);
        uint64_t ntok = rnd() % 200, nrows = rnd() % 200, payload = len - HDR;
        memcpy(m, &magic, 4);
        memcpy(m + 4, &ver, 2);
        memcpy(m + 6, &flags, 2);
        memcpy(m + 8, &dt, 4);
        memcpy(m + 12, &hidden, 4);
        memcpy(m + 16, &ntok, 8);
        memcpy(m + 24, &nrows, 8);
        memcpy(m + 32, &payload, 8);
        fix_checksum(m, len);
        expect_refused(b, m, len, out, sentinel, 100);
    }
    for (int k = 0; k < NBASES; k++)
        CU_ASSERT(decode_ok(&bases[k], out));
    free(m);
    free(out);
    free(sentinel);
}

static void test_codec_fuzz_cleanup(void)
{
    uint8_t *out = malloc(OUT_CAP);
    for (int k = 0; k < NBASES; k++) {
        CU_ASSERT(decode_ok(&bases[k], out));
        free(bases[k].seg);
    }
    free(out);
    lshmoe_codec_destroy(codec);
}

static const lt_test_t tests[] = {
    { "test_codec_fuzz_bases_valid", test_codec_fuzz_bases_valid },
    { "test_codec_fuzz_mutations_refused", test_codec_fuzz_mutations_refused },
    { "test_codec_fuzz_random_headers_refused", test_codec_fuzz_random_headers_refused },
    { "test_codec_fuzz_cleanup", test_codec_fuzz_cleanup },
};

LT_MAIN("codec_fuzz", tests)
