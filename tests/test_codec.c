/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Segment codec: exactness where the rules demand it (RAW, integer dtypes,
 * singletons, NaN/Inf), bounded error and real compression on clustered
 * data, honest RAW on structureless data, the policies, index widths,
 * caller mismatches, size bounds, parameter checks and counters.
 * Wire fields are read here by offset, independently of the codec's own
 * header code, as docs/wire-format.md lays them out.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lshmoe/codec.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"
#include "testutil.h"

static const lshmoe_dtype_t float_dtypes[] = {
    LSHMOE_DTYPE_FP32, LSHMOE_DTYPE_FP16, LSHMOE_DTYPE_BF16,
};

/* The operating point the design calibrates: 6 functions of cdim 4 on a
 * 64-coordinate sketch, 3 rounds. */
static lshmoe_codec_params_t params_default(void)
{
    lshmoe_codec_params_t p = {
        .lsh = { .seed = 0x5eed, .num_hashes = 6, .cdim = 4,
                 .reduce = LSHMOE_REDUCE_FOLD, .reduce_dim = 64, .rounds = 3 },
        .compress = 1, .min_tokens = 1, .min_ratio = 1.0, .residual_bits = 0,
    };
    return p;
}

/* A hash fine enough that distinct random tokens never share a bucket. */
static lshmoe_codec_params_t params_fine(void)
{
    lshmoe_codec_params_t p = params_default();
    p.lsh.num_hashes = 16;
    p.lsh.cdim = 64;
    p.lsh.reduce = LSHMOE_REDUCE_PAD;
    p.min_ratio = 0.0;
    return p;
}

static lshmoe_codec_t *make_codec(const lshmoe_codec_params_t *p)
{
    lshmoe_codec_t *c = NULL;
    CU_ASSERT_FATAL(lshmoe_codec_create(p, &c) == LSHMOE_OK);
    CU_ASSERT_FATAL(c != NULL);
    return c;
}

static uint16_t seg_flags(const uint8_t *seg)
{
    return (uint16_t)(seg[6] | (seg[7] << 8));
}

static uint64_t seg_nrows(const uint8_t *seg)
{
    uint64_t v;
    memcpy(&v, seg + 24, 8); /* little-endian host */
    return v;
}

/* Encodes into a fresh buffer of max_bytes; returns it (*len_p = length). */
static uint8_t *encode(lshmoe_codec_t *c, const void *tok, lshmoe_dtype_t dt,
                       size_t hidden, size_t n, size_t *len_p,
                       lshmoe_codec_stats_t *st)
{
    size_t cap = 0;
    CU_ASSERT_FATAL(lshmoe_codec_max_bytes(dt, hidden, n, &cap) == LSHMOE_OK);
    uint8_t *seg = malloc(cap);
    CU_ASSERT_FATAL(seg != NULL);
    CU_ASSERT_FATAL(lshmoe_codec_encode(c, tok, dt, hidden, n, seg, cap, len_p,
                                        st) == LSHMOE_OK);
    CU_ASSERT(*len_p <= cap);
    CU_ASSERT(*len_p % 8 == 0);
    return seg;
}

/* Encode + decode; returns the decoded tokens (caller frees). */
static void *roundtrip(lshmoe_codec_t *c, const void *tok, lshmoe_dtype_t dt,
                       size_t hidden, size_t n, size_t *len_p, uint16_t *flags_p)
{
    size_t len;
    uint8_t *seg = encode(c, tok, dt, hidden, n, &len, NULL);
    void *out = malloc(n * hidden * lshmoe_dtype_size(dt) + 1);
    CU_ASSERT_FATAL(out != NULL);
    CU_ASSERT(lshmoe_codec_decode(c, seg, len, dt, hidden, n, out, NULL) == LSHMOE_OK);
    if (len_p)
        *len_p = len;
    if (flags_p)
        *flags_p = seg_flags(seg);
    free(seg);
    return out;
}

/* Tokens in `dt` storage from floats. */
static void *as_dtype(const float *x, size_t count, lshmoe_dtype_t dt)
{
    void *b = malloc(count * lshmoe_dtype_size(dt));
    CU_ASSERT_FATAL(b != NULL);
    lt_to_dtype(x, count, dt, b);
    return b;
}

static double rel_err(const void *got, const void *want, lshmoe_dtype_t dt,
                      size_t count)
{
    float *a = malloc(count * sizeof *a), *b = malloc(count * sizeof *b);
    lshmoe_row_to_f32(got, dt, count, a);
    lshmoe_row_to_f32(want, dt, count, b);
    double e = lt_rel_l2(a, b, count);
    free(a);
    free(b);
    return e;
}

static void test_codec_uncompressed_roundtrip_exact(void)
{
    lshmoe_codec_params_t p = params_default();
    p.compress = 0;
    lshmoe_codec_t *c = make_codec(&p);
    const size_t n = 37, hidden = 13;
    for (int dt = 0; dt < LSHMOE_DTYPE_COUNT; dt++) {
        size_t bytes = n * hidden * lshmoe_dtype_size((lshmoe_dtype_t)dt);
        uint8_t *tok = malloc(bytes);
        /* three distinct rows of random bytes, repeated: compressible if
         * compression were on, and any bit pattern (NaNs included) */
        size_t row = bytes / n;
        for (size_t i = 0; i < bytes; i++)
            tok[i] = (uint8_t)lt_hash64((uint64_t)dt, i % (3 * row));
        size_t len, max;
        uint16_t flags;
        uint8_t *out = roundtrip(c, tok, (lshmoe_dtype_t)dt, hidden, n, &len, &flags);
        CU_ASSERT(memcmp(out, tok, bytes) == 0);
        CU_ASSERT(flags == LSHMOE_WIRE_F_RAW);
        CU_ASSERT(lshmoe_codec_max_bytes((lshmoe_dtype_t)dt, hidden, n, &max) == 0);
        CU_ASSERT(len == max);
        CU_ASSERT(len == LSHMOE_WIRE_HEADER_BYTES + ((bytes + 7) & ~(size_t)7));
        free(tok);
        free(out);
    }
    lshmoe_codec_destroy(c);
}

/* Number of distinct rows (bytewise). */
static size_t count_distinct(const uint8_t *tok, size_t n, size_t row)
{
    size_t d = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < i && memcmp(tok + i * row, tok + j * row, row) != 0)
            j++;
        d += j == i;
    }
    return d;
}

static void test_codec_all_distinct_exact(void)
{
    /* (a) every token distinct: one row per token can never be smaller than
     * RAW, so the codec must choose RAW (exact) even with min_ratio 0. */
    lshmoe_codec_params_t p = params_fine();
    p.lsh.cdim = 256;
    lshmoe_codec_t *c = make_codec(&p);
    const size_t n = 256, hidden = 256;
    float *x = malloc(n * hidden * sizeof *x);
    lt_gen_gaussian(x, n, hidden, 11);
    size_t len;
    uint16_t flags;
    float *out = roundtrip(c, x, LSHMOE_DTYPE_FP32, hidden, n, &len, &flags);
    CU_ASSERT(flags == LSHMOE_WIRE_F_RAW);
    CU_ASSERT(memcmp(out, x, n * hidden * sizeof *x) == 0);
    free(out);
    lshmoe_codec_destroy(c);

    /* (b) exact duplicates of distinct tokens in a compressed segment: every
     * cluster holds identical tokens, so its mean (fp32 sums of 16-bit
     * values: exact) is the token itself and the segment decodes exact. */
    p = params_fine();
    c = make_codec(&p);
    lt_gen_clustered(x, 512, 64, 24, 0.0, 12);
    for (int k = 1; k < 3; k++) {
        lshmoe_dtype_t dt = float_dtypes[k];
        uint8_t *tok = as_dtype(x, 512 * 64, dt);
        size_t seglen;
        uint8_t *seg = encode(c, tok, dt, 64, 512, &seglen, NULL);
        CU_ASSERT((seg_flags(seg) & LSHMOE_WIRE_F_RAW) == 0);
        CU_ASSERT(seg_nrows(seg) == count_distinct(tok, 512, 128));
        free(seg);
        uint8_t *dec = roundtrip(c, tok, dt, 64, 512, NULL, NULL);
        CU_ASSERT(memcmp(dec, tok, 512 * 128) == 0);
        free(dec);
        free(tok);
    }
    free(x);
    lshmoe_codec_destroy(c);
}

static void test_codec_integer_dtypes_raw_exact(void)
{
    lshmoe_codec_params_t p = params_default();
    p.min_ratio = 0.0;
    lshmoe_codec_t *c = make_codec(&p);
    const lshmoe_dtype_t ints[] = { LSHMOE_DTYPE_BYTES, LSHMOE_DTYPE_INT8,
        LSHMOE_DTYPE_INT32, LSHMOE_DTYPE_INT64, LSHMOE_DTYPE_UINT8 };
    lshmoe_codec_stats_t st = {0};
    for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
        const size_t n = 300, hidden = 16;
        size_t bytes = n * hidden * lshmoe_dtype_size(ints[k]), len;
        uint8_t *tok = malloc(bytes);
        /* two distinct rows: as compressible as data gets */
        for (size_t i = 0; i < bytes; i++)
            tok[i] = (uint8_t)((i / (bytes / n)) % 2 + i % 7);
        uint8_t *seg = encode(c, tok, ints[k], hidden, n, &len, &st);
        CU_ASSERT(seg_flags(seg) == LSHMOE_WIRE_F_RAW);
        uint8_t *out = malloc(bytes);
        CU_ASSERT(lshmoe_codec_decode(c, seg, len, ints[k], hidden, n, out, NULL) == 0);
        CU_ASSERT(memcmp(out, tok, bytes) == 0);
        free(out);
        free(seg);
        free(tok);
    }
    CU_ASSERT(st.segments_raw == 5);
    CU_ASSERT(st.segments_compressed == 0);
    lshmoe_codec_destroy(c);
}

/* Writes a non-finite value with a payload into element e of token i. */
static void put_special(uint8_t *tok, lshmoe_dtype_t dt, size_t hidden,
                        size_t i, size_t e, int kind)
{
    static const uint32_t f32[] = { 0x7fc0beefu, 0xff80dead, 0x7f800000u, 0xff800000u };
    static const uint16_t f16[] = { 0x7e0bu, 0xfc21u, 0x7c00u, 0xfc00u };
    static const uint16_t bf16[] = { 0x7fc5u, 0xff81u, 0x7f80u, 0xff80u };
    size_t es = lshmoe_dtype_size(dt);
    uint8_t *dst = tok + (i * hidden + e) * es;
    if (dt == LSHMOE_DTYPE_FP32)
        memcpy(dst, &f32[kind], 4);
    else
        memcpy(dst, dt == LSHMOE_DTYPE_FP16 ? &f16[kind] : &bf16[kind], 2);
}

static void test_codec_nonfinite_tokens_exact(void)
{
    const size_t n = 1024, hidden = 64, special[] = { 3, 100, 257, 600, 1023 };
    float *x = malloc(n * hidden * sizeof *x);
    lt_gen_clustered(x, n, hidden, 16, 0.05, 21);
    for (int bits = 0; bits <= 8; bits += 8) {
        lshmoe_codec_params_t p = params_default();
        p.residual_bits = bits;
        lshmoe_codec_t *c = make_codec(&p);
        for (int k = 0; k < 3; k++) {
            lshmoe_dtype_t dt = float_dtypes[k];
            size_t row = hidden * lshmoe_dtype_size(dt), len;
            uint8_t *tok = as_dtype(x, n * hidden, dt);
            for (size_t s = 0; s < 5; s++)
                put_special(tok, dt, hidden, special[s], (s * 7) % hidden, (int)(s % 4));
            lshmoe_codec_stats_t st = {0};
            uint8_t *seg = encode(c, tok, dt, hidden, n, &len, &st);
            CU_ASSERT((seg_flags(seg) & LSHMOE_WIRE_F_RAW) == 0);
            CU_ASSERT(st.tokens_nonfinite == 5);
            uint8_t *out = malloc(n * row);
            CU_ASSERT(lshmoe_codec_decode(c, seg, len, dt, hidden, n, out, NULL) == 0);
            for (size_t s = 0; s < 5; s++) {
                size_t i = special[s];
                CU_ASSERT(memcmp(out + i * row, tok + i * row, row) == 0);
                /* neutralise them so the error below covers the others */
                memset(out + i * row, 0, row);
                memset(tok + i * row, 0, row);
            }
            CU_ASSERT(rel_err(out, tok, dt, n * hidden) < 0.1);
            free(out);
            free(seg);
            free(tok);
        }
        lshmoe_codec_destroy(c);
    }
    free(x);
}

/*
 * 64 N(0,1) centers in 256 dims, noise 0.05: perfect clustering leaves a
 * relative error of 0.05 * sqrt(1 - 1/size) / sqrt(1 + 0.05^2) ~ 0.049.
 * Measured with the default params (L 6, cdim 4, fold 64, 3 rounds) on
 * seeds 1..5 and 31: 155 to 215 rows for 4096 tokens (LSH splits centers,
 * which costs ratio but not error), ratio 18x to 25x, error 0.048 to 0.049,
 * the same for fp32, fp16 and bf16 (measured against the input in its own
 * dtype). Merging just two centers would put error into their 2/64 of the
 * tokens at ~0.7 each: sqrt(0.049^2 + 0.5 * 2/64) ~ 0.13. So 0.06 fails on
 * any merge but not on rounding; ratio > 8 keeps a margin of 2x.
 */
static void test_codec_clustered_error_bounded(void)
{
    const size_t n = 4096, hidden = 256;
    lshmoe_codec_params_t p = params_default();
    lshmoe_codec_t *c = make_codec(&p);
    float *x = malloc(n * hidden * sizeof *x);
    lt_gen_clustered(x, n, hidden, 64, 0.05, 31);
    for (int k = 0; k < 3; k++) {
        lshmoe_dtype_t dt = float_dtypes[k];
        size_t len;
        uint16_t flags;
        void *tok = as_dtype(x, n * hidden, dt);
        void *out = roundtrip(c, tok, dt, hidden, n, &len, &flags);
        double ratio = (double)(n * hidden * lshmoe_dtype_size(dt)) / (double)len;
        double err = rel_err(out, tok, dt, n * hidden);
        CU_ASSERT(flags == 0);
        CU_ASSERT(ratio > 8.0);
        CU_ASSERT(err < 0.06);
        CU_ASSERT(err > 0.02); /* it is lossy: 0 would mean nothing merged */
        free(out);
        free(tok);
    }
    free(x);
    lshmoe_codec_destroy(c);
}

/* i.i.d. Gaussian tokens have nothing to share: with the default params
 * 2040 of 2048 tokens get a bucket of their own, the honest ratio is ~1.00,
 * and with the library's default floor (LSHMOE_MIN_RATIO 1.2) the codec
 * sends them RAW, exact. */
static void test_codec_gaussian_raw(void)
{
    const size_t n = 2048, hidden = 256;
    float *x = malloc(n * hidden * sizeof *x);
    lt_gen_gaussian(x, n, hidden, 41);
    lshmoe_codec_params_t p = params_default();
    p.min_ratio = 1.2;
    lshmoe_codec_t *c = make_codec(&p);
    size_t len, max;
    uint16_t flags;
    float *out = roundtrip(c, x, LSHMOE_DTYPE_FP32, hidden, n, &len, &flags);
    CU_ASSERT(flags == LSHMOE_WIRE_F_RAW);
    CU_ASSERT(lshmoe_codec_max_bytes(LSHMOE_DTYPE_FP32, hidden, n, &max) == 0);
    CU_ASSERT(len == max);
    CU_ASSERT(memcmp(out, x, n * hidden * sizeof *x) == 0);
    free(out);
    lshmoe_codec_destroy(c);

    /* with no floor at all, the ratio it reports is the honest ~1 */
    p.min_ratio = 0.0;
    c = make_codec(&p);
    out = roundtrip(c, x, LSHMOE_DTYPE_FP32, hidden, n, &len, &flags);
    CU_ASSERT((double)(n * hidden * sizeof *x) / (double)len < 1.02);
    free(out);
    free(x);
    lshmoe_codec_destroy(c);
}

static void test_codec_residual_reduces_error(void)
{
    const size_t n = 2048, hidden = 256;
    float *x = malloc(n * hidden * sizeof *x);
    lt_gen_clustered(x, n, hidden, 32, 0.05, 51);
    for (int k = 0; k < 3; k++) {
        lshmoe_dtype_t dt = float_dtypes[k];
        void *tok = as_dtype(x, n * hidden, dt);
        double err[3];
        for (int b = 0; b < 3; b++) {
            lshmoe_codec_params_t p = params_default();
            p.residual_bits = b * 4;
            lshmoe_codec_t *c = make_codec(&p);
            uint16_t flags;
            void *out = roundtrip(c, tok, dt, hidden, n, NULL, &flags);
            static const uint16_t want[] = { 0, LSHMOE_WIRE_F_RESID4, LSHMOE_WIRE_F_RESID8 };
            CU_ASSERT(flags == want[b]);
            err[b] = rel_err(out, tok, dt, n * hidden);
            free(out);
            lshmoe_codec_destroy(c);
        }
        /* 4 bits: |e| <= scale/2 = max|r|/14; 8 bits: max|r|/254.
         * Measured (all three dtypes): 0.049, 0.0061-0.0063, 0.0002-0.0004;
         * the asserts keep 1.5x to 5x of margin. */
        CU_ASSERT(err[0] > 0.03);
        CU_ASSERT(err[1] < err[0] / 5);
        CU_ASSERT(err[2] < err[1] / 5);
        CU_ASSERT(err[2] < err[0] / 50);
        free(tok);
    }
    free(x);
}

static void test_codec_min_tokens_policy(void)
{
    float *x = malloc(1000 * 64 * sizeof *x);
    lt_gen_clustered(x, 1000, 64, 8, 0.01, 61);
    lshmoe_codec_params_t p = params_default();
    p.min_tokens = 1000;
    lshmoe_codec_t *c = make_codec(&p);
    size_t len;
    uint8_t *seg = encode(c, x, LSHMOE_DTYPE_FP32, 64, 999, &len, NULL);
    CU_ASSERT(seg_flags(seg) == LSHMOE_WIRE_F_RAW);
    free(seg);
    seg = encode(c, x, LSHMOE_DTYPE_FP32, 64, 1000, &len, NULL);
    CU_ASSERT(seg_flags(seg) == 0);
    free(seg);
    free(x);
    lshmoe_codec_destroy(c);
}

static void test_codec_min_ratio_policy(void)
{
    const size_t n = 1024, hidden = 64;
    float *x = malloc(n * hidden * sizeof *x);
    lt_gen_clustered(x, n, hidden, 32, 0.05, 71);
    lshmoe_codec_params_t p = params_default();
    p.min_ratio = 0.0;
    lshmoe_codec_t *c = make_codec(&p);
    size_t len0, len;
    uint8_t *seg0 = encode(c, x, LSHMOE_DTYPE_FP32, hidden, n, &len0, NULL);
    double ratio = (double)(n * hidden * 4) / (double)len0;
    CU_ASSERT(seg_flags(seg0) == 0);
    CU_ASSERT(ratio > 1.5);
    lshmoe_codec_destroy(c);

    p.min_ratio = ratio * 0.999; /* just met: same compressed segment */
    c = make_codec(&p);
    uint8_t *seg = encode(c, x, LSHMOE_DTYPE_FP32, hidden, n, &len, NULL);
    CU_ASSERT(len == len0 && memcmp(seg, seg0, len) == 0);
    free(seg);
    lshmoe_codec_destroy(c);

    p.min_ratio = ratio * 1.001; /* just missed: RAW */
    c = make_codec(&p);
    seg = encode(c, x, LSHMOE_DTYPE_FP32, hidden, n, &len, NULL);
    CU_ASSERT(seg_flags(seg) == LSHMOE_WIRE_F_RAW);
    free(seg);
    free(seg0);
    free(x);
    lshmoe_codec_destroy(c);
}

static void test_codec_zero_tokens(void)
{
    lshmoe_codec_params_t p = params_default();
    lshmoe_codec_t *c = make_codec(&p);
    uint8_t seg[64];
    size_t len = 0, max = 0;
    lshmoe_codec_stats_t st = {0};
    CU_ASSERT(lshmoe_codec_max_bytes(LSHMOE_DTYPE_BF16, 512, 0, &max) == 0);
    CU_ASSERT(max == LSHMOE_WIRE_HEADER_BYTES);
    CU_ASSERT(lshmoe_codec_encode(c, NULL, LSHMOE_DTYPE_BF16, 512, 0, seg,
                                  sizeof seg, &len, &st) == LSHMOE_OK);
    CU_ASSERT(len == LSHMOE_WIRE_HEADER_BYTES);
    CU_ASSERT(seg_flags(seg) == LSHMOE_WIRE_F_RAW);
    CU_ASSERT(lshmoe_codec_decode(c, seg, len, LSHMOE_DTYPE_BF16, 512, 0, NULL,
                                  &st) == LSHMOE_OK);
    CU_ASSERT(st.segments_raw == 2 && st.tokens == 0 && st.bytes_wire == 2 * len);
    /* and a segment for 0 tokens is not one for 1 */
    CU_ASSERT(lshmoe_codec_decode(c, seg, len, LSHMOE_DTYPE_BF16, 512, 1, seg,
                                  NULL) == LSHMOE_ERR_MISMATCH);
    lshmoe_codec_destroy(c);
}

/* More than 65536 rows need the 32-bit index. 80000 distinct Gaussian
 * tokens of 16 dims, each sent twice: a fine PAD hash (16 functions of 32
 * vertices) separates nearly all of them, which gives ~80000 rows for
 * 160000 tokens, and 64-byte rows make that compressed (ratio ~1.8). */
static void test_codec_index_width(void)
{
    const size_t nd = 80000, n = 2 * nd, hidden = 16;
    float *x = malloc(n * hidden * sizeof *x);
    lt_gen_gaussian(x, nd, hidden, 81);
    memcpy(x + nd * hidden, x, nd * hidden * sizeof *x);
    lshmoe_codec_params_t p = params_fine();
    p.lsh.cdim = 16;
    lshmoe_codec_t *c = make_codec(&p);
    size_t len;
    uint8_t *seg = encode(c, x, LSHMOE_DTYPE_FP32, hidden, n, &len, NULL);
    CU_ASSERT(seg_flags(seg) == LSHMOE_WIRE_F_IDX32);
    CU_ASSERT(seg_nrows(seg) > 65536 && seg_nrows(seg) <= nd);
    float *out = malloc(n * hidden * sizeof *out);
    CU_ASSERT(lshmoe_codec_decode(c, seg, len, LSHMOE_DTYPE_FP32, hidden, n, out,
                                  NULL) == LSHMOE_OK);
    /* A row of two copies of one fp32 token is exact ((a + a) / 2 == a).
     * A row shared by k >= 2 distinct tokens (a rare hash collision; one
     * pair with these seeds) costs k - 1 rows and spoils its 2k <= 4(k - 1)
     * tokens: everything else must come back bit for bit. */
    size_t exact = 0, lost = nd - (size_t)seg_nrows(seg);
    for (size_t i = 0; i < n; i++)
        exact += memcmp(out + i * hidden, x + i * hidden, hidden * sizeof *x) == 0;
    CU_ASSERT(lost < 16);
    CU_ASSERT(exact >= n - 4 * lost);
    CU_ASSERT(lt_rel_l2(out, x, n * hidden) < 0.05);
    free(seg);

    /* 60000 distinct tokens, each twice: at most 65536 rows, u16 index */
    memcpy(x + 60000 * hidden, x, 60000 * hidden * sizeof *x);
    seg = encode(c, x, LSHMOE_DTYPE_FP32, hidden, 2 * 60000, &len, NULL);
    CU_ASSERT(seg_flags(seg) == 0);
    CU_ASSERT(seg_nrows(seg) <= 60000);
    free(seg);
    free(out);
    free(x);
    lshmoe_codec_destroy(c);
}

static void test_codec_mismatch(void)
{
    const size_t n = 64, hidden = 32;
    float *x = malloc(n * hidden * sizeof *x);
    lt_gen_clustered(x, n, hidden, 4, 0.01, 91);
    lshmoe_codec_params_t p = params_default();
    lshmoe_codec_t *c = make_codec(&p);
    size_t len;
    uint8_t *seg = encode(c, x, LSHMOE_DTYPE_FP32, hidden, n, &len, NULL);
    float *out = malloc(2 * n * hidden * sizeof *out);
    CU_ASSERT(lshmoe_codec_decode(c, seg, len, LSHMOE_DTYPE_BF16, hidden, n, out,
                                  NULL) == LSHMOE_ERR_MISMATCH);
    CU_ASSERT(strstr(lshmoe_error_thread_msg(), "expected dtype bf16") != NULL);
    CU_ASSERT(lshmoe_codec_decode(c, seg, len, LSHMOE_DTYPE_FP32, hidden / 2, n,
                                  out, NULL) == LSHMOE_ERR_MISMATCH);
    CU_ASSERT(strstr(lshmoe_error_thread_msg(), "expected hidden 16") != NULL);
    CU_ASSERT(lshmoe_codec_decode(c, seg, len, LSHMOE_DTYPE_FP32, hidden, n + 1,
                                  out, NULL) == LSHMOE_ERR_MISMATCH);
    CU_ASSERT(strstr(lshmoe_error_thread_msg(), "expected 65 tokens, got 64") != NULL);
    CU_ASSERT(lshmoe_codec_decode(c, seg, len, LSHMOE_DTYPE_FP32, hidden, n, out,
                                  NULL) == LSHMOE_OK);
    free(out);
    free(seg);
    free(x);
    lshmoe_codec_destroy(c);
}

static void test_codec_max_bytes_bound(void)
{
    lshmoe_codec_params_t p = params_default();
    p.residual_bits = 8;
    p.min_ratio = 0.0;
    lshmoe_codec_t *c = make_codec(&p);
    /* 8 bytes per element so that int64 reads stay inside */
    float *x = malloc(2 * 600 * 48 * sizeof *x);
    size_t max, len;
    for (int kind = 0; kind < 3; kind++) {
        if (kind == 0)
            lt_gen_gaussian(x, 1200, 48, 101);
        else
            lt_gen_clustered(x, 1200, 48, kind == 1 ? 3 : 200, 0.1, 102);
        for (int dt = 0; dt < LSHMOE_DTYPE_COUNT; dt++)
            for (size_t n = 0; n <= 600; n += 37) {
                for (size_t h = 1; h <= 48; h += 47) {
                    CU_ASSERT_FATAL(lshmoe_codec_max_bytes((lshmoe_dtype_t)dt, h, n,
                                                           &max) == 0);
                    free(encode(c, x, (lshmoe_dtype_t)dt, h, n, &len, NULL));
                    CU_ASSERT(len <= max);
                }
            }
    }
    CU_ASSERT(lshmoe_codec_max_bytes(LSHMOE_DTYPE_FP32, 1u << 20, SIZE_MAX / 2,
                                     &max) == LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT(lshmoe_codec_max_bytes(LSHMOE_DTYPE_FP32, 0, 1, &max) == LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT(lshmoe_codec_max_bytes(LSHMOE_DTYPE_COUNT, 1, 1, &max) == LSHMOE_ERR_INVALID_ARG);
    /* cap below max_bytes is refused even when the result would fit */
    uint8_t seg[4096];
    CU_ASSERT(lshmoe_codec_max_bytes(LSHMOE_DTYPE_FP32, 48, 20, &max) == 0);
    CU_ASSERT(lshmoe_codec_encode(c, x, LSHMOE_DTYPE_FP32, 48, 20, seg, max - 8,
                                  &len, NULL) == LSHMOE_ERR_INVALID_ARG);
    free(x);
    lshmoe_codec_destroy(c);
}

static void test_codec_create_bad_params(void)
{
    lshmoe_codec_t *c = (lshmoe_codec_t *)&c;
    for (int k = 0; k < 15; k++) {
        lshmoe_codec_params_t p = params_default();
        switch (k) {
        case 0: p.lsh.num_hashes = 0; break;
        case 1: p.lsh.num_hashes = 17; break;
        case 2: p.lsh.cdim = 1; break;
        case 3: p.lsh.cdim = 12; break;
        case 4: p.lsh.cdim = 512; break;
        case 5: p.lsh.reduce = 0; break;
        case 6: p.lsh.reduce_dim = 8; break;
        case 7: p.lsh.reduce_dim = 96; break;
        case 8: p.lsh.reduce_dim = 8192; break;
        case 9: p.lsh.rounds = 0; break;
        case 10: p.lsh.rounds = 4; break;
        case 11: p.residual_bits = 2; break;
        case 12: p.min_ratio = -0.5; break;
        case 13: p.min_ratio = NAN; break;
        case 14: p.lsh.cdim = 128; p.lsh.reduce_dim = 64; break;
        }
        CU_ASSERT(lshmoe_codec_create(&p, &c) == LSHMOE_ERR_INVALID_ARG);
        CU_ASSERT(c == NULL);
        CU_ASSERT(lshmoe_error_thread_msg()[0] != '\0');
    }
    CU_ASSERT(lshmoe_codec_create(NULL, &c) == LSHMOE_ERR_INVALID_ARG);
    lshmoe_codec_params_t p = params_default();
    CU_ASSERT(lshmoe_codec_create(&p, NULL) == LSHMOE_ERR_INVALID_ARG);
    p.lsh.reduce = LSHMOE_REDUCE_PAD; /* PAD ignores reduce_dim's size */
    p.lsh.cdim = 256;
    CU_ASSERT(lshmoe_codec_create(&p, &c) == LSHMOE_OK);
    lshmoe_codec_destroy(c);
    lshmoe_codec_destroy(NULL);
}

static void test_codec_stats_counters(void)
{
    const size_t n = 512, hidden = 64;
    float *x = malloc(n * hidden * sizeof *x);
    lt_gen_clustered(x, n, hidden, 8, 0.02, 111);
    lshmoe_codec_params_t p = params_default();
    lshmoe_codec_t *c = make_codec(&p);
    lshmoe_codec_stats_t es = {0}, ds = {0};
    size_t len1, len2;
    uint8_t *s1 = encode(c, x, LSHMOE_DTYPE_FP32, hidden, n, &len1, &es);
    uint8_t *s2 = encode(c, x, LSHMOE_DTYPE_INT32, hidden, n, &len2, &es);
    CU_ASSERT(es.tokens == 2 * n);
    CU_ASSERT(es.rows == seg_nrows(s1) + n);
    CU_ASSERT(seg_nrows(s1) < n);
    CU_ASSERT(es.bytes_in == 2 * n * hidden * 4);
    CU_ASSERT(es.bytes_wire == len1 + len2);
    CU_ASSERT(es.segments_compressed == 1 && es.segments_raw == 1);
    CU_ASSERT(es.tokens_nonfinite == 0);
    CU_ASSERT(es.time_hash_s > 0.0 && es.time_pack_s > 0.0);
    CU_ASSERT(es.time_unpack_s == 0.0);
    float *out = malloc(n * hidden * sizeof *out);
    CU_ASSERT(lshmoe_codec_decode(c, s1, len1, LSHMOE_DTYPE_FP32, hidden, n, out, &ds) == 0);
    CU_ASSERT(lshmoe_codec_decode(c, s2, len2, LSHMOE_DTYPE_INT32, hidden, n, out, &ds) == 0);
    CU_ASSERT(ds.tokens == es.tokens && ds.rows == es.rows);
    CU_ASSERT(ds.bytes_in == es.bytes_in && ds.bytes_wire == es.bytes_wire);
    CU_ASSERT(ds.segments_compressed == 1 && ds.segments_raw == 1);
    CU_ASSERT(ds.time_unpack_s > 0.0 && ds.time_hash_s == 0.0 && ds.time_pack_s == 0.0);
    /* a failed decode counts nothing */
    lshmoe_codec_stats_t before = ds;
    CU_ASSERT(lshmoe_codec_decode(c, s1, len1 - 8, LSHMOE_DTYPE_FP32, hidden, n,
                                  out, &ds) == LSHMOE_ERR_CORRUPT);
    CU_ASSERT(memcmp(&before, &ds, sizeof ds) == 0);
    free(out);
    free(s1);
    free(s2);
    free(x);
    lshmoe_codec_destroy(c);
}

/* Segments live inside larger buffers at arbitrary offsets. */
static void test_codec_unaligned_buffers(void)
{
    const size_t n = 300, hidden = 40;
    float *x = malloc(n * hidden * sizeof *x);
    lt_gen_clustered(x, n, hidden, 6, 0.05, 121);
    lshmoe_codec_params_t p = params_default();
    p.residual_bits = 4;
    lshmoe_codec_t *c = make_codec(&p);
    size_t len, len2, max;
    uint8_t *seg = encode(c, x, LSHMOE_DTYPE_FP32, hidden, n, &len, NULL);
    CU_ASSERT(seg_flags(seg) == LSHMOE_WIRE_F_RESID4);
    CU_ASSERT(lshmoe_codec_max_bytes(LSHMOE_DTYPE_FP32, hidden, n, &max) == 0);
    uint8_t *big = malloc(max + 8);
    for (size_t off = 1; off < 8; off += 2) {
        CU_ASSERT(lshmoe_codec_encode(c, x, LSHMOE_DTYPE_FP32, hidden, n, big + off,
                                      max, &len2, NULL) == 0);
        CU_ASSERT(len2 == len && memcmp(big + off, seg, len) == 0);
    }
    float *ref = malloc(n * hidden * sizeof *ref), *out = malloc(n * hidden * sizeof *out);
    CU_ASSERT(lshmoe_codec_decode(c, seg, len, LSHMOE_DTYPE_FP32, hidden, n, ref, NULL) == 0);
    for (size_t off = 1; off < 8; off++) {
        memcpy(big + off, seg, len);
        CU_ASSERT(lshmoe_codec_decode(c, big + off, len, LSHMOE_DTYPE_FP32, hidden, n,
                                      out, NULL) == 0);
        CU_ASSERT(memcmp(out, ref, n * hidden * sizeof *out) == 0);
    }
    free(ref);
    free(out);
    free(big);
    free(seg);
    free(x);
    lshmoe_codec_destroy(c);
}

/* More hidden sizes than cached hashers, interleaved: each segment equals
 * the one a fresh codec makes (cache eviction changes nothing). */
static void test_codec_hasher_cache_deterministic(void)
{
    static const size_t hs[] = { 32, 48, 64, 80, 96, 112 };
    const size_t n = 256;
    float *x = malloc(n * 112 * sizeof *x);
    lt_gen_clustered(x, n, 112, 5, 0.02, 131);
    lshmoe_codec_params_t p = params_default();
    lshmoe_codec_t *c = make_codec(&p);
    for (int rep = 0; rep < 3; rep++)
        for (size_t k = 0; k < 6; k++) {
            lshmoe_codec_t *fresh = make_codec(&p);
            size_t l1, l2;
            uint8_t *a = encode(c, x, LSHMOE_DTYPE_BF16, hs[(k * 5 + rep) % 6], n, &l1, NULL);
            uint8_t *b = encode(fresh, x, LSHMOE_DTYPE_BF16, hs[(k * 5 + rep) % 6], n, &l2, NULL);
            CU_ASSERT(seg_flags(a) == 0);
            CU_ASSERT(l1 == l2 && memcmp(a, b, l1) == 0);
            free(a);
            free(b);
            lshmoe_codec_destroy(fresh);
        }
    lshmoe_codec_destroy(c);
    /* PAD cannot hash 2-wide tokens with cdim 4: RAW, not an error */
    p.lsh.reduce = LSHMOE_REDUCE_PAD;
    c = make_codec(&p);
    size_t len;
    uint8_t *seg = encode(c, x, LSHMOE_DTYPE_FP32, 2, n, &len, NULL);
    CU_ASSERT(seg_flags(seg) == LSHMOE_WIRE_F_RAW);
    free(seg);
    free(x);
    lshmoe_codec_destroy(c);
}

static void test_codec_checksum_properties(void)
{
    uint8_t buf[200];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)lt_hash64(141, i);
    uint64_t h = lshmoe_wire_checksum(buf, 100, 7);
    CU_ASSERT(h == lshmoe_wire_checksum(buf, 100, 7));
    CU_ASSERT(h != lshmoe_wire_checksum(buf, 100, 8));
    /* same bytes at another address */
    memmove(buf + 3, buf, 100);
    CU_ASSERT(h == lshmoe_wire_checksum(buf + 3, 100, 7));
    memmove(buf, buf + 3, 100);
    /* every single-bit flip is seen */
    for (size_t b = 0; b < 800; b++) {
        buf[b / 8] ^= (uint8_t)(1u << (b % 8));
        CU_ASSERT(lshmoe_wire_checksum(buf, 100, 7) != h);
        buf[b / 8] ^= (uint8_t)(1u << (b % 8));
    }
    /* every length gives its own value, zeros included */
    uint8_t zero[80] = {0};
    uint64_t seen[81];
    for (size_t l = 0; l <= 80; l++) {
        seen[l] = lshmoe_wire_checksum(zero, l, 0);
        for (size_t m = 0; m < l; m++)
            CU_ASSERT(seen[m] != seen[l]);
    }
}

/* ---- quality guard (max_error) ---- */

/* Relative L2 error of a segment's reconstruction, in fp32. */
static double seg_err(lshmoe_codec_t *c, const float *x, size_t n, size_t hidden,
                      uint16_t *flags_p)
{
    float *out = roundtrip(c, x, LSHMOE_DTYPE_FP32, hidden, n, NULL, flags_p);
    double e = lt_rel_l2(out, x, n * hidden);
    free(out);
    return e;
}

/* 2 hash functions put structureless tokens into few buckets: the segment
 * "compresses" past min_ratio with an error near 1. The guard sends it RAW
 * (byte exact); without the guard it would have been compressed. */
static void test_codec_guard_gaussian_few_hashes_raw(void)
{
    const size_t n = 512, hidden = 64;
    float *x = malloc(n * hidden * sizeof *x);
    lt_gen_gaussian(x, n, hidden, 201);
    lshmoe_codec_params_t p = params_default();
    p.lsh.num_hashes = 2;
    p.min_ratio = 1.2;
    lshmoe_codec_t *off = make_codec(&p);
    uint16_t flags;
    double e = seg_err(off, x, n, hidden, &flags);
    CU_ASSERT(flags == 0);  /* the problem: compressed ... */
    CU_ASSERT(e > 0.5);     /* ... at an error the guard refuses */
    lshmoe_codec_destroy(off);

    p.error_guard = 1;
    p.max_error = 0.5;
    lshmoe_codec_t *c = make_codec(&p);
    lshmoe_codec_stats_t st = {0};
    size_t len;
    uint8_t *seg = encode(c, x, LSHMOE_DTYPE_FP32, hidden, n, &len, &st);
    CU_ASSERT(seg_flags(seg) == LSHMOE_WIRE_F_RAW);
    CU_ASSERT(st.segments_raw == 1 && st.segments_compressed == 0);
    CU_ASSERT(st.rows == n && st.tokens_nonfinite == 0);
    free(seg);
    CU_ASSERT(seg_err(c, x, n, hidden, &flags) == 0.0);
    CU_ASSERT(flags == LSHMOE_WIRE_F_RAW);
    /* half types take the same decision */
    void *h = as_dtype(x, n * hidden, LSHMOE_DTYPE_BF16);
    void *out = roundtrip(c, h, LSHMOE_DTYPE_BF16, hidden, n, NULL, &flags);
    CU_ASSERT(flags == LSHMOE_WIRE_F_RAW);
    CU_ASSERT(memcmp(out, h, n * hidden * 2) == 0);
    free(out);
    free(h);
    lshmoe_codec_destroy(c);
    free(x);
}

/* Clustered data keeps compressing with the default guard, fp32 and bf16;
 * NaN tokens (left out of the error) change nothing. */
static void test_codec_guard_clustered_compresses(void)
{
    const size_t n = 512, hidden = 64;
    float *x = malloc(n * hidden * sizeof *x);
    lt_gen_clustered(x, n, hidden, 8, 0.05, 202);
    lshmoe_codec_params_t p = params_default();
    p.min_ratio = 1.2;
    p.error_guard = 1;
    p.max_error = 0.5;
    lshmoe_codec_t *c = make_codec(&p);
    uint16_t flags;
    size_t len;
    CU_ASSERT(seg_err(c, x, n, hidden, &flags) < 0.15);
    CU_ASSERT(flags == 0);
    void *h = as_dtype(x, n * hidden, LSHMOE_DTYPE_BF16);
    void *out = roundtrip(c, h, LSHMOE_DTYPE_BF16, hidden, n, &len, &flags);
    CU_ASSERT(flags == 0);
    CU_ASSERT(rel_err(out, h, LSHMOE_DTYPE_BF16, n * hidden) < 0.15);
    CU_ASSERT(len * 4 < n * hidden * 2);
    free(out);
    free(h);
    for (size_t i = 3; i < n; i += 7)
        x[i * hidden + 5] = NAN;
    float *o2 = roundtrip(c, x, LSHMOE_DTYPE_FP32, hidden, n, NULL, &flags);
    CU_ASSERT(flags == 0);
    CU_ASSERT(isnan(o2[3 * hidden + 5]));
    free(o2);
    lshmoe_codec_destroy(c);
    free(x);
}

/* max_error 0: any error at all sends the segment RAW; singletons (exact)
 * have none. With residuals the guard is skipped. */
static void test_codec_guard_zero_and_residual(void)
{
    const size_t n = 512, hidden = 64;
    float *x = malloc(n * hidden * sizeof *x);
    lt_gen_clustered(x, n, hidden, 8, 0.05, 203);
    lshmoe_codec_params_t p = params_default();
    p.error_guard = 1;
    p.max_error = 0.0;
    lshmoe_codec_t *c = make_codec(&p);
    uint16_t flags;
    CU_ASSERT(seg_err(c, x, n, hidden, &flags) == 0.0);
    CU_ASSERT(flags == LSHMOE_WIRE_F_RAW);
    lshmoe_codec_destroy(c);

    /* a loose guard lets it through */
    p.max_error = 1000.0;
    c = make_codec(&p);
    CU_ASSERT(seg_err(c, x, n, hidden, &flags) > 0.0);
    CU_ASSERT(flags == 0);
    lshmoe_codec_destroy(c);

    /* residuals: the guard does not apply, even at 0 on Gaussian data */
    lt_gen_gaussian(x, n, hidden, 204);
    p = params_default();
    p.lsh.num_hashes = 2;
    p.residual_bits = 8;
    p.error_guard = 1;
    p.max_error = 0.0;
    c = make_codec(&p);
    CU_ASSERT(seg_err(c, x, n, hidden, &flags) < 0.05);
    CU_ASSERT(flags == LSHMOE_WIRE_F_RESID8);
    lshmoe_codec_destroy(c);
    free(x);
}

static void test_codec_guard_bad_params(void)
{
    static const double bad_err[] = { -0.1, 1000.5, NAN, INFINITY };
    lshmoe_codec_t *c = NULL;
    for (size_t i = 0; i < sizeof bad_err / sizeof bad_err[0]; i++) {
        lshmoe_codec_params_t p = params_default();
        p.error_guard = 1;
        p.max_error = bad_err[i];
        CU_ASSERT(lshmoe_codec_create(&p, &c) == LSHMOE_ERR_INVALID_ARG);
        CU_ASSERT(c == NULL);
    }
    lshmoe_codec_params_t p = params_default();
    p.error_guard = 2;
    CU_ASSERT(lshmoe_codec_create(&p, &c) == LSHMOE_ERR_INVALID_ARG);
    p.error_guard = 0; /* the range holds whether the guard is on or not */
    p.max_error = -1.0;
    CU_ASSERT(lshmoe_codec_create(&p, &c) == LSHMOE_ERR_INVALID_ARG);
}

static const lt_test_t tests[] = {
    { "test_codec_uncompressed_roundtrip_exact", test_codec_uncompressed_roundtrip_exact },
    { "test_codec_all_distinct_exact", test_codec_all_distinct_exact },
    { "test_codec_integer_dtypes_raw_exact", test_codec_integer_dtypes_raw_exact },
    { "test_codec_nonfinite_tokens_exact", test_codec_nonfinite_tokens_exact },
    { "test_codec_clustered_error_bounded", test_codec_clustered_error_bounded },
    { "test_codec_gaussian_raw", test_codec_gaussian_raw },
    { "test_codec_residual_reduces_error", test_codec_residual_reduces_error },
    { "test_codec_min_tokens_policy", test_codec_min_tokens_policy },
    { "test_codec_min_ratio_policy", test_codec_min_ratio_policy },
    { "test_codec_zero_tokens", test_codec_zero_tokens },
    { "test_codec_index_width", test_codec_index_width },
    { "test_codec_mismatch", test_codec_mismatch },
    { "test_codec_max_bytes_bound", test_codec_max_bytes_bound },
    { "test_codec_create_bad_params", test_codec_create_bad_params },
    { "test_codec_stats_counters", test_codec_stats_counters },
    { "test_codec_unaligned_buffers", test_codec_unaligned_buffers },
    { "test_codec_hasher_cache_deterministic", test_codec_hasher_cache_deterministic },
    { "test_codec_checksum_properties", test_codec_checksum_properties },
    { "test_codec_guard_gaussian_few_hashes_raw", test_codec_guard_gaussian_few_hashes_raw },
    { "test_codec_guard_clustered_compresses", test_codec_guard_clustered_compresses },
    { "test_codec_guard_zero_and_residual", test_codec_guard_zero_and_residual },
    { "test_codec_guard_bad_params", test_codec_guard_bad_params },
};

LT_MAIN("codec", tests)
