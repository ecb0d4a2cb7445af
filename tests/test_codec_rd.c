/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The row formats (kernels/common/quant_math.h, kernels/cpu/quant.c), the
 * refinement step and the rate-distortion encoder (lshmoe/codec_rd.c):
 * FP8 rounding against its definition, the scale codings, per-format
 * round trips, and the budget contract: every segment's reported error is
 * the error of what the decoder writes, and it is within the budget; a
 * segment nothing fits travels exact. Error = sqrt(sum |x - x'|^2 /
 * sum |x|^2) over the segment, as everywhere in lshmoe.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/common/quant_math.h"
#include "kernels/kernels.h"
#include "lshmoe/codec.h"
#include "lshmoe/codec_internal.h"
#include "lshmoe/common/dtype.h"
#include "testutil.h"

/* e4m3 value of a code, from the format's definition (bias 7, 3 mantissa
 * bits, subnormals at exponent 0, no Inf, S.1111.111 NaN). */
static double e4m3_ref(uint8_t c)
{
    int s = c >> 7, e = (c >> 3) & 15, m = c & 7;
    double v = e == 0 ? ldexp(m / 8.0, -6) : ldexp(1.0 + m / 8.0, e - 7);
    return s ? -v : v;
}

static void test_fp8_matches_definition(void)
{
    /* every code decodes to its defined value; NaN codes are NaN */
    for (int c = 0; c < 256; c++) {
        float v = lshmoe_qm_e4m3_to_f32((uint8_t)c);
        if ((c & 0x7f) == 0x7f) {
            CU_ASSERT(isnan(v));
            continue;
        }
        CU_ASSERT_EQUAL(v, (float)e4m3_ref((uint8_t)c));
        /* and re-encodes to itself (-0 included) */
        CU_ASSERT_EQUAL(lshmoe_qm_f32_to_e4m3(v), (uint8_t)c);
    }
    /* rounding: nearest, ties to even mantissa, on a grid of inputs */
    for (int i = -20000; i <= 20000; i++) {
        float x = (float)i * 0.0251f;
        uint8_t c = lshmoe_qm_f32_to_e4m3(x);
        double got = e4m3_ref(c), best = INFINITY;
        for (int k = 0; k < 256; k++) {
            if ((k & 0x7f) == 0x7f)
                continue;
            double d = fabs(e4m3_ref((uint8_t)k) - x);
            best = d < best ? d : best;
        }
        if (fabs(x) <= 448.0f) {
            CU_ASSERT(fabs(got - x) <= best);
        } else {
            CU_ASSERT_EQUAL(fabs(got), 448.0); /* saturates */
        }
    }
    CU_ASSERT_EQUAL(lshmoe_qm_f32_to_e4m3(1.0625f), 0x38);  /* tie -> even (1.0) */
    CU_ASSERT_EQUAL(lshmoe_qm_f32_to_e4m3(1.1875f), 0x3a);  /* tie -> even (1.25) */
    CU_ASSERT_EQUAL(lshmoe_qm_f32_to_e4m3(1e30f), 0x7e);
    CU_ASSERT_EQUAL(lshmoe_qm_f32_to_e4m3(-1e30f), 0xfe);
    CU_ASSERT_EQUAL(lshmoe_qm_f32_to_e4m3(1.5f / 512.0f), 0x02); /* subnormal tie */
    CU_ASSERT_EQUAL(lshmoe_qm_f32_to_e4m3(2.5f / 512.0f), 0x02);
}

static void test_scale_codings(void)
{
    /* fp16: the header's conversions agree with the library's */
    for (uint32_t h = 0; h < 65536; h++) {
        float a = lshmoe_kn_f16_to_f32((uint16_t)h), b = lshmoe_f16_to_f32((uint16_t)h);
        if (isnan(b)) {
            CU_ASSERT(isnan(a));
        } else {
            CU_ASSERT_EQUAL(memcmp(&a, &b, 4), 0);
        }
    }
    for (uint32_t i = 0; i < 200000; i++) {
        uint32_t u = (uint32_t)lt_hash64(77, i) & 0x7fffffffu;
        float f = lshmoe_kn_bits_f32(u);
        if (isnan(f))
            continue;
        CU_ASSERT_EQUAL(lshmoe_kn_f32_to_f16(f), lshmoe_f32_to_f16(f));
    }
    /* INT4E: every byte a value, strictly increasing, and its own code */
    float prev = 0.0f;
    CU_ASSERT_EQUAL(lshmoe_qm_e8_scale(0), 0.0f);
    for (int e = 1; e < 256; e++) {
        float s = lshmoe_qm_e8_scale((uint8_t)e);
        CU_ASSERT(isfinite(s) && s > prev);
        CU_ASSERT_EQUAL(lshmoe_qm_e8_of(s), (uint8_t)e);
        CU_ASSERT(fabs(s / ldexp(1.0, 0) - pow(2.0, (e - 160) / 4.0)) <=
                  1e-6 * pow(2.0, (e - 160) / 4.0));
        prev = s;
    }
}

/* Squared error of one row in fmt against the plain max-|x| scale of the
 * same format, coded here from the layout: the encoder's clipped-scale
 * search must never do worse than it. */
static double plain_low_sse(const float *x, size_t h, int fmt)
{
    double e = 0.0;
    for (size_t lo = 0; lo < h; lo += 32) {
        size_t n = h - lo < 32 ? h - lo : 32;
        float amax = 0.0f;
        for (size_t i = 0; i < n; i++)
            amax = fabsf(x[lo + i]) > amax ? fabsf(x[lo + i]) : amax;
        float s = fmt == LSHMOE_QM_INT4E ? lshmoe_qm_e8_scale(lshmoe_qm_e8_of(amax / 7.0f))
                : fmt == LSHMOE_QM_INT4 ? lshmoe_kn_f16_to_f32(lshmoe_kn_f32_to_f16(amax / 7.0f))
                : lshmoe_kn_f16_to_f32(lshmoe_kn_f32_to_f16(amax / 1.5f));
        for (size_t i = 0; i < n; i++) {
            double y;
            if (s == 0.0f)
                y = 0.0;
            else if (fmt == LSHMOE_QM_INT2)
                y = (fmin(fmax(floor(x[lo + i] / s), -2.0), 1.0) + 0.5) * s;
            else
                y = fmin(fmax(rint(x[lo + i] / s), -8.0), 7.0) * s;
            e += (x[lo + i] - y) * (x[lo + i] - y);
        }
    }
    return e;
}

static void test_row_formats_round_trip(void)
{
    static const size_t widths[] = {1, 2, 7, 31, 32, 33, 100, 128, 129, 257};
    static const int fmts[] = {LSHMOE_QM_FP8, LSHMOE_QM_INT8, LSHMOE_QM_INT4,
                               LSHMOE_QM_INT2, LSHMOE_QM_INT4E};
    float x[257], y[257];
    uint8_t row[2048];
    for (size_t w = 0; w < sizeof widths / sizeof *widths; w++) {
        size_t h = widths[w];
        for (int f = 0; f < 5; f++) {
            int fmt = fmts[f];
            for (int trial = 0; trial < 20; trial++) {
                double scale = trial == 0 ? 0.0 : pow(10.0, (trial % 10) - 5);
                for (size_t i = 0; i < h; i++)
                    x[i] = (float)(scale * lt_normal(1000 + (uint64_t)trial, i + 7 * h));
                memset(row, 0xCD, sizeof row);
                size_t rb = (size_t)lshmoe_qm_row_bytes(fmt, h);
                lshmoe_kn_quant_row(fmt, x, h, row);
                CU_ASSERT_EQUAL(row[rb], 0xCD); /* writes exactly its bytes */
                CU_ASSERT_EQUAL(lshmoe_kn_quant_row_check(fmt, row, h), 0);
                lshmoe_kn_dequant_row(fmt, row, h, y);
                double num = 0.0, den = 0.0, amax = 0.0;
                for (size_t i = 0; i < h; i++) {
                    CU_ASSERT(isfinite(y[i]));
                    num += (double)(x[i] - y[i]) * (x[i] - y[i]);
                    den += (double)x[i] * x[i];
                    amax = fabs(x[i]) > amax ? fabs(x[i]) : amax;
                }
                if (trial == 0) {
                    CU_ASSERT_EQUAL(num, 0.0); /* zeros stay zeros */
                    continue;
                }
                if (fmt == LSHMOE_QM_FP8) { /* 3 mantissa bits */
                    CU_ASSERT(sqrt(num / den) <= 0.0625);
                } else if (fmt == LSHMOE_QM_INT8) { /* half a step per element */
                    CU_ASSERT(sqrt(num / (double)h) <= amax / 254.0 * 1.0001);
                } else {
                    CU_ASSERT(num <= plain_low_sse(x, h, fmt) * (1.0 + 1e-5) + 1e-30);
                }
            }
        }
    }
}

/* ---- the encoder ------------------------------------------------------- */

typedef struct seg_result {
    size_t len;
    double err;      /* measured here from the decoded tokens */
    double reported; /* the codec's last_error */
    int    choice;
    int    exact;    /* decoded byte-identical to the input */
    uint16_t flags, version;
} seg_result_t;

static void run_codec(const lshmoe_codec_params_t *p, const void *tok, lshmoe_dtype_t dt,
                      size_t h, size_t n, seg_result_t *res)
{
    lshmoe_codec_t *c = NULL;
    size_t cap, es = lshmoe_dtype_size(dt);
    CU_ASSERT_FATAL(lshmoe_codec_create(p, &c) == LSHMOE_OK);
    CU_ASSERT_FATAL(lshmoe_codec_max_bytes(dt, h, n, &cap) == LSHMOE_OK);
    uint8_t *seg = malloc(cap), *out = malloc(n * h * es + 1);
    float *a = malloc(n * h * sizeof(float)), *b = malloc(n * h * sizeof(float));
    lshmoe_codec_stats_t st;
    memset(&st, 0, sizeof st);
    CU_ASSERT_FATAL(lshmoe_codec_encode(c, tok, dt, h, n, seg, cap, &res->len, &st) ==
                    LSHMOE_OK);
    CU_ASSERT_FATAL(lshmoe_codec_decode(c, seg, res->len, dt, h, n, out, NULL) == LSHMOE_OK);
    res->flags = (uint16_t)(seg[6] | seg[7] << 8);
    res->version = (uint16_t)(seg[4] | seg[5] << 8);
    res->choice = st.last_choice;
    res->reported = st.last_error;
    res->exact = memcmp(out, tok, n * h * es) == 0;
    if (lshmoe_dtype_is_float(dt)) {
        lshmoe_row_to_f32(tok, dt, n * h, a);
        lshmoe_row_to_f32(out, dt, n * h, b);
        double num = 0.0, den = 0.0;
        for (size_t i = 0; i < n * h; i++) {
            num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
            den += (double)a[i] * a[i];
        }
        res->err = num > 0.0 ? sqrt(num / den) : 0.0;
    }
    free(seg);
    free(out);
    free(a);
    free(b);
    lshmoe_codec_destroy(c);
}

static lshmoe_codec_params_t base_params(int mode, double budget)
{
    lshmoe_codec_params_t p = {
        .lsh = {.seed = 0x5eed, .num_hashes = 6, .cdim = 4,
                .reduce = LSHMOE_REDUCE_FOLD, .reduce_dim = 64, .rounds = 3},
        .compress = 1, .min_tokens = 1, .min_ratio = 1.0, .error_guard = 1,
        .max_error = budget, .mode = mode,
    };
    return p;
}

/* Random data of several kinds; the contract holds for every budget. */
static void test_budget_within_budget_random(void)
{
    static const double budgets[] = {0.0, 0.005, 0.01, 0.03, 0.1, 0.2, 0.3, 0.6};
    static const lshmoe_dtype_t dts[] = {LSHMOE_DTYPE_FP32, LSHMOE_DTYPE_FP16,
                                         LSHMOE_DTYPE_BF16};
    int chosen_kinds = 0, raw_seen = 0;
    for (int kind = 0; kind < 4; kind++) {
        size_t n = 64 + 97 * (size_t)kind, h = kind == 3 ? 37 : 48 + 16 * (size_t)kind;
        float *x = malloc(n * h * sizeof *x);
        void *tok = malloc(n * h * 4);
        if (kind == 0)
            lt_gen_gaussian(x, n, h, 11);
        else
            lt_gen_clustered(x, n, h, kind == 1 ? 8 : 40, kind == 2 ? 0.3 : 0.05, 12 + kind);
        for (size_t i = 0; kind == 3 && i < n * h; i++)
            x[i] *= (float)(1e-3 * (1 + (i / h) % 7)); /* tokens of different norms */
        for (size_t d = 0; d < 3; d++) {
            if (dts[d] == LSHMOE_DTYPE_FP32)
                memcpy(tok, x, n * h * 4);
            else
                lt_to_dtype(x, n * h, dts[d], tok);
            for (size_t k = 0; k < sizeof budgets / sizeof *budgets; k++) {
                lshmoe_codec_params_t p = base_params(LSHMOE_CODEC_BUDGET, budgets[k]);
                seg_result_t r;
                p.search = (int)(k % 4); /* sample, warm (no start: bisects), bisect, linear */
                run_codec(&p, tok, dts[d], h, n, &r);
                CU_ASSERT(r.err <= budgets[k] * (1.0 + 1e-9));
                /* reported = what the receiver gets */
                CU_ASSERT(fabs(r.err - r.reported) <= 1e-6 * (r.err + 1e-12));
                if (r.choice == 0) {
                    CU_ASSERT(r.exact);
                    CU_ASSERT(r.flags == LSHMOE_WIRE_F_RAW && r.version == LSHMOE_WIRE_VERSION);
                    raw_seen++;
                } else {
                    chosen_kinds |= 1 << (r.choice % LSHMOE_CODEC_NFMTS);
                }
            }
        }
        free(x);
        free(tok);
    }
    /* the contract was exercised, not dodged: both outcomes happened */
    CU_ASSERT(raw_seen > 0);
    CU_ASSERT(chosen_kinds != 0);
}

/* The warm search keeps a start across segments of one codec: a sequence
 * of segments of changing kind (structure, scale) and budgets still meets
 * the contract segment by segment, raw ones included. */
static void test_budget_warm_sequence(void)
{
    static const double budgets[] = {0.1, 0.1, 0.02, 0.3, 0.0, 0.05, 0.2, 0.1};
    size_t n = 160, h = 56;
    float *x = malloc(n * h * sizeof *x), *back = malloc(n * h * sizeof *back);
    uint16_t *tok = malloc(n * h * 2), *out = malloc(n * h * 2);
    size_t cap;
    CU_ASSERT_FATAL(lshmoe_codec_max_bytes(LSHMOE_DTYPE_BF16, h, n, &cap) == LSHMOE_OK);
    uint8_t *seg = malloc(cap);
    int raw = 0, coded = 0;
    for (int search = LSHMOE_CODEC_SEARCH_SAMPLE; search <= LSHMOE_CODEC_SEARCH_LINEAR; search++) {
        lshmoe_codec_t *c = NULL;
        for (int s = 0; s < 24; s++) {
            double budget = budgets[s % 8];
            lshmoe_codec_params_t p = base_params(LSHMOE_CODEC_BUDGET, budget);
            p.search = search;
            if (c == NULL)
                CU_ASSERT_FATAL(lshmoe_codec_create(&p, &c) == LSHMOE_OK);
            c->params.max_error = budget; /* one codec, budgets of the caller's choosing */
            if (s % 3 == 0)
                lt_gen_gaussian(x, n, h, 100 + (uint64_t)s);
            else
                lt_gen_clustered(x, n, h, 4 + 8 * (size_t)(s % 4), 0.1, 200 + (uint64_t)s);
            for (size_t i = 0; i < n * h; i++)
                x[i] *= (float)(1 + s % 5);
            lt_to_dtype(x, n * h, LSHMOE_DTYPE_BF16, tok);
            lshmoe_codec_stats_t st;
            size_t len;
            memset(&st, 0, sizeof st);
            CU_ASSERT_FATAL(lshmoe_codec_encode(c, tok, LSHMOE_DTYPE_BF16, h, n, seg, cap, &len,
                                                &st) == LSHMOE_OK);
            CU_ASSERT_FATAL(lshmoe_codec_decode(c, seg, len, LSHMOE_DTYPE_BF16, h, n, out,
                                                NULL) == LSHMOE_OK);
            lshmoe_row_to_f32(tok, LSHMOE_DTYPE_BF16, n * h, x);
            lshmoe_row_to_f32(out, LSHMOE_DTYPE_BF16, n * h, back);
            double num = 0.0, den = 0.0;
            for (size_t i = 0; i < n * h; i++) {
                num += ((double)x[i] - back[i]) * ((double)x[i] - back[i]);
                den += (double)x[i] * x[i];
            }
            double err = sqrt(num / den);
            CU_ASSERT(err <= budget * (1.0 + 1e-9));
            CU_ASSERT(fabs(err - st.last_error) <= 1e-6 * (err + 1e-12));
            if (st.last_choice == 0) {
                CU_ASSERT(memcmp(out, tok, n * h * 2) == 0);
                raw++;
            } else {
                coded++;
            }
        }
        lshmoe_codec_destroy(c);
    }
    CU_ASSERT(raw > 0 && coded > 0);
    free(x);
    free(back);
    free(tok);
    free(out);
    free(seg);
}

/* Budget 0 on structureless data: nothing fits, the segment is exact. */
static void test_budget_nothing_fits_is_exact(void)
{
    size_t n = 128, h = 64;
    float *x = malloc(n * h * sizeof *x);
    lt_gen_gaussian(x, n, h, 5);
    lshmoe_codec_params_t p = base_params(LSHMOE_CODEC_BUDGET, 0.0);
    seg_result_t r;
    run_codec(&p, x, LSHMOE_DTYPE_FP32, h, n, &r);
    CU_ASSERT(r.exact && r.choice == 0 && r.err == 0.0 && r.reported == 0.0);
    CU_ASSERT(r.flags == LSHMOE_WIRE_F_RAW);
    /* every fixed quantizer with a guard tighter than it can meet: exact */
    for (int mode = LSHMOE_CODEC_FP8; mode <= LSHMOE_CODEC_INT2; mode++) {
        p = base_params(mode, 1e-4);
        run_codec(&p, x, LSHMOE_DTYPE_FP32, h, n, &r);
        CU_ASSERT(r.exact && r.choice == 0);
    }
    free(x);
}

/* Every fixed mode round-trips, stays within its guard, and reports the
 * error the decoder's output has; integer dtypes are never lossy. */
static void test_fixed_modes(void)
{
    size_t n = 200, h = 40;
    float *x = malloc(n * h * sizeof *x);
    uint16_t *bf = malloc(n * h * 2);
    int32_t *ints = malloc(n * h * 4);
    lt_gen_clustered(x, n, h, 10, 0.05, 21);
    lt_to_dtype(x, n * h, LSHMOE_DTYPE_BF16, bf);
    for (size_t i = 0; i < n * h; i++)
        ints[i] = (int32_t)lt_hash64(3, i);
    for (int mode = LSHMOE_CODEC_NATIVE; mode <= LSHMOE_CODEC_LSH_REFINE_INT4E; mode++) {
        lshmoe_codec_params_t p = base_params(mode, 0.5);
        seg_result_t r;
        run_codec(&p, bf, LSHMOE_DTYPE_BF16, h, n, &r);
        CU_ASSERT(r.err <= 0.5);
        CU_ASSERT(fabs(r.err - r.reported) <= 1e-6 * (r.err + 1e-12));
        if (mode == LSHMOE_CODEC_NATIVE) {
            CU_ASSERT(r.exact && r.choice == 0);
        } else {
            CU_ASSERT(r.choice != 0 && r.len < n * h * 2); /* compressible data */
        }
        CU_ASSERT(r.version == LSHMOE_WIRE_VERSION);
        run_codec(&p, ints, LSHMOE_DTYPE_INT32, h, n, &r);
        CU_ASSERT(r.exact && r.flags == LSHMOE_WIRE_F_RAW);
    }
    free(x);
    free(bf);
    free(ints);
}

/* NaN/Inf tokens are never quantized: they arrive bit for bit (budget-rows:
 * the whole segment, which it never clusters). */
static void test_nonfinite_tokens_exact(void)
{
    size_t n = 96, h = 32;
    float *x = malloc(n * h * sizeof *x);
    lt_gen_clustered(x, n, h, 6, 0.02, 8);
    x[5 * h + 3] = NAN;
    x[40 * h] = -INFINITY;
    for (int mode = LSHMOE_CODEC_BUDGET; mode <= LSHMOE_CODEC_BUDGET_ROWS; mode++) {
        lshmoe_codec_params_t p = base_params(mode, 0.3);
        lshmoe_codec_t *c = NULL;
        size_t cap, len;
        CU_ASSERT_FATAL(lshmoe_codec_create(&p, &c) == LSHMOE_OK);
        CU_ASSERT_FATAL(lshmoe_codec_max_bytes(LSHMOE_DTYPE_FP32, h, n, &cap) == LSHMOE_OK);
        uint8_t *seg = malloc(cap);
        float *out = malloc(n * h * sizeof *out);
        CU_ASSERT_FATAL(lshmoe_codec_encode(c, x, LSHMOE_DTYPE_FP32, h, n, seg, cap, &len,
                                            NULL) == LSHMOE_OK);
        CU_ASSERT(((seg[6] >> 4) & 7) == 0); /* native rows only */
        CU_ASSERT_FATAL(lshmoe_codec_decode(c, seg, len, LSHMOE_DTYPE_FP32, h, n, out,
                                            NULL) == LSHMOE_OK);
        CU_ASSERT(memcmp(out + 5 * h, x + 5 * h, h * 4) == 0);
        CU_ASSERT(memcmp(out + 40 * h, x + 40 * h, h * 4) == 0);
        if (mode == LSHMOE_CODEC_BUDGET_ROWS) {  /* never clustered: raw */
            CU_ASSERT(seg[6] & 1);
            CU_ASSERT(memcmp(out, x, n * h * 4) == 0);
        }
        free(seg);
        free(out);
        lshmoe_codec_destroy(c);
    }
    free(x);
}

/* One Lloyd step never increases the clustering error: LSH + refinement
 * (native fp32 rows) against plain LSH with the same hash functions. */
static void test_refinement_reduces_error(void)
{
    int improved = 0;
    for (int trial = 0; trial < 6; trial++) {
        size_t n = 256 + 64 * (size_t)trial, h = 64;
        float *x = malloc(n * h * sizeof *x);
        lt_gen_clustered(x, n, h, 20 + 10 * (size_t)trial, 0.3, 30 + (uint64_t)trial);
        lshmoe_codec_params_t p = base_params(LSHMOE_CODEC_LSH, 1000.0);
        p.error_guard = 0;
        p.min_ratio = 0.0;
        seg_result_t plain, refined;
        run_codec(&p, x, LSHMOE_DTYPE_FP32, h, n, &plain);
        p.mode = LSHMOE_CODEC_LSH_REFINE;
        run_codec(&p, x, LSHMOE_DTYPE_FP32, h, n, &refined);
        CU_ASSERT(refined.err <= plain.err * (1.0 + 1e-5));
        CU_ASSERT(refined.len <= plain.len); /* clusters only empty */
        improved += refined.err < plain.err * 0.999;
        free(x);
    }
    CU_ASSERT(improved > 0);
}

/* Refinement needs packed keys; residuals combine only with LSH. */
static void test_params_refused(void)
{
    lshmoe_codec_t *c = NULL;
    lshmoe_codec_params_t p = base_params(LSHMOE_CODEC_LSH_REFINE, 0.1);
    p.lsh.num_hashes = 16;
    p.lsh.cdim = 16; /* 5 bits x 16 > 63 */
    CU_ASSERT(lshmoe_codec_create(&p, &c) == LSHMOE_ERR_INVALID_ARG && c == NULL);
    p = base_params(LSHMOE_CODEC_BUDGET, 0.1);
    p.residual_bits = 8;
    CU_ASSERT(lshmoe_codec_create(&p, &c) == LSHMOE_ERR_INVALID_ARG && c == NULL);
    p = base_params(99, 0.1);
    CU_ASSERT(lshmoe_codec_create(&p, &c) == LSHMOE_ERR_INVALID_ARG && c == NULL);
}

/*
 * The sampled search's stream memory: after a segment that went to a row
 * format, the next ones leave the clusterings out (codec_rd.c rows_only)
 * until a full search of the whole ladder, 8 segments after the previous
 * one, then 16, 32 and at most 64 while each confirms a row format; any
 * other pick starts again at 8. On data no clustering fits (Gaussian)
 * every segment still gets exactly what a fresh codec's full search gives
 * it, byte for byte; when the stream turns to clustered data the row
 * formats carry on, within the budget, until the next full search finds
 * the clustering, and it is kept from then on.
 * Schedule here: Gaussian 0-129 (full searches at 0, 8, 24, 56, 120),
 * clustered 130-189 (found by the full search at 184), Gaussian from 190
 * (a full search after the clusterings, then 8 and 16 apart: 198, 214).
 */
static void test_budget_rows_only_between_anchors(void)
{
    const size_t n = 256, h = 64;
    const double budget = 0.13;
    float *x = malloc(n * h * sizeof *x);
    uint16_t *tok = malloc(n * h * 2);
    size_t cap;
    CU_ASSERT_FATAL(x && tok);
    CU_ASSERT_FATAL(lshmoe_codec_max_bytes(LSHMOE_DTYPE_BF16, h, n, &cap) == LSHMOE_OK);
    uint8_t *seg = malloc(cap), *ref = malloc(cap);
    CU_ASSERT_FATAL(seg && ref);
    lshmoe_codec_params_t p = base_params(LSHMOE_CODEC_BUDGET, budget);
    lshmoe_codec_t *c = NULL;
    CU_ASSERT_FATAL(lshmoe_codec_create(&p, &c) == LSHMOE_OK);
    lshmoe_codec_stats_t st;
    memset(&st, 0, sizeof st);
    int first_clustered = -1, prev_L = 0, full_at[16], nfull = 0;
    for (int s = 0; s < 222; s++) {
        int clustered = s >= 130 && s < 190;
        if (clustered)
            lt_gen_clustered(x, n, h, 4, 0.02, 900 + (uint64_t)s);
        else
            lt_gen_gaussian(x, n, h, 800 + (uint64_t)s);
        lt_to_dtype(x, n * h, LSHMOE_DTYPE_BF16, tok);
        uint64_t before = st.segments_rows_only;
        size_t len, ref_len;
        CU_ASSERT_FATAL(lshmoe_codec_encode(c, tok, LSHMOE_DTYPE_BF16, h, n, seg, cap, &len,
                                            &st) == LSHMOE_OK);
        int choice = st.last_choice, L = lshmoe_codec_choice_l(choice);
        int hinted = st.segments_rows_only > before;
        CU_ASSERT(st.last_error <= budget * (1.0 + 1e-9));
        CU_ASSERT(choice != 0);
        CU_ASSERT(!hinted || prev_L == 0); /* rows only after a row format */
        /* full searches, less the clustered stream's (after a clustering) */
        if (!hinted && (prev_L == 0 || !clustered) && nfull < 16)
            full_at[nfull++] = s;
        prev_L = L;
        if (!clustered && (s < 40 || s % 5 == 0 || s >= 190)) {
            lshmoe_codec_t *fresh = NULL;
            CU_ASSERT_FATAL(lshmoe_codec_create(&p, &fresh) == LSHMOE_OK);
            CU_ASSERT_FATAL(lshmoe_codec_encode(fresh, tok, LSHMOE_DTYPE_BF16, h, n, ref, cap,
                                                &ref_len, NULL) == LSHMOE_OK);
            CU_ASSERT(ref_len == len && memcmp(ref, seg, len) == 0);
            CU_ASSERT_EQUAL(L, 0);
            lshmoe_codec_destroy(fresh);
        } else if (clustered && first_clustered < 0 && L > 0) {
            first_clustered = s;
        }
        if (clustered && s > first_clustered && first_clustered >= 0)
            CU_ASSERT(L > 0); /* a clustering, once found, is searched again */
    }
    /* full searches after a row format (or the first): 8, 16, 32, 64 apart
     * (capped: 120 -> 184), then the clusterings' own, then 8 and 16 apart
     * from the first Gaussian segment after them */
    const int want[] = {0, 8, 24, 56, 120, 184, 190, 198, 214};
    CU_ASSERT_EQUAL_FATAL(nfull, (int)(sizeof want / sizeof want[0]));
    for (int i = 0; i < nfull; i++)
        CU_ASSERT_EQUAL(full_at[i], want[i]);
    CU_ASSERT_EQUAL(first_clustered, 184); /* the first full search on the new data */
    lshmoe_codec_destroy(c);
    free(x);
    free(tok);
    free(seg);
    free(ref);
}

/* Encodes segment s of a stream: clustered bf16 tokens (seed 700 + s). */
static void encode_clustered(lshmoe_codec_t *c, int s, float *x, uint16_t *tok, size_t n,
                             size_t h, uint8_t *seg, size_t cap, size_t *len,
                             lshmoe_codec_stats_t *st)
{
    lt_gen_clustered(x, n, h, 4, 0.02, 700 + (uint64_t)s);
    lt_to_dtype(x, n * h, LSHMOE_DTYPE_BF16, tok);
    memset(st, 0, sizeof *st);
    CU_ASSERT_FATAL(lshmoe_codec_encode(c, tok, LSHMOE_DTYPE_BF16, h, n, seg, cap, len, st) ==
                    LSHMOE_OK);
}

/*
 * lshmoe_codec_set_rows_only (the adaptive policy's cheap search arm): on
 * data whose full search picks a clustering, a forced segment gets a row
 * format within the budget, found without the clusterings, and the
 * stream's memory is left alone: the segments after it are byte-equal to
 * those of a stream that never had the forced ones.
 */
static void test_budget_forced_rows_leave_the_stream_alone(void)
{
    const size_t n = 256, h = 64;
    const double budget = 0.13;
    float *x = malloc(n * h * sizeof *x);
    uint16_t *tok = malloc(n * h * 2);
    size_t cap, len, ref_len;
    CU_ASSERT_FATAL(x && tok);
    CU_ASSERT_FATAL(lshmoe_codec_max_bytes(LSHMOE_DTYPE_BF16, h, n, &cap) == LSHMOE_OK);
    uint8_t *seg = malloc(cap), *ref = malloc(cap);
    CU_ASSERT_FATAL(seg && ref);
    lshmoe_codec_params_t p = base_params(LSHMOE_CODEC_BUDGET, budget);
    lshmoe_codec_t *c = NULL, *plain = NULL;
    CU_ASSERT_FATAL(lshmoe_codec_create(&p, &c) == LSHMOE_OK);
    CU_ASSERT_FATAL(lshmoe_codec_create(&p, &plain) == LSHMOE_OK);
    lshmoe_codec_stats_t st, ref_st;
    int forced = 0;
    for (int s = 0; s < 20; s++) {
        int force = s % 3 == 1;
        lshmoe_codec_set_rows_only(c, force);
        encode_clustered(c, s, x, tok, n, h, seg, cap, &len, &st);
        lshmoe_codec_set_rows_only(c, 0);
        CU_ASSERT(st.last_error <= budget * (1.0 + 1e-9));
        if (force) {
            forced++;
            CU_ASSERT_EQUAL(st.segments_rows_only, 1u);
            CU_ASSERT_EQUAL(lshmoe_codec_choice_l(st.last_choice), 0);
            CU_ASSERT(st.last_choice != 0);
            continue;
        }
        encode_clustered(plain, s, x, tok, n, h, ref, cap, &ref_len, &ref_st);
        CU_ASSERT(lshmoe_codec_choice_l(st.last_choice) > 0);
        CU_ASSERT(ref_len == len && memcmp(ref, seg, len) == 0);
    }
    CU_ASSERT_EQUAL(forced, 7);
    /* other modes ignore it */
    lshmoe_codec_params_t q = base_params(LSHMOE_CODEC_LSH, budget);
    lshmoe_codec_t *lsh = NULL;
    CU_ASSERT_FATAL(lshmoe_codec_create(&q, &lsh) == LSHMOE_OK);
    lshmoe_codec_set_rows_only(lsh, 1);
    encode_clustered(lsh, 0, x, tok, n, h, seg, cap, &len, &st);
    CU_ASSERT_EQUAL(st.segments_rows_only, 0u);
    lshmoe_codec_destroy(lsh);
    lshmoe_codec_destroy(c);
    lshmoe_codec_destroy(plain);
    free(x);
    free(tok);
    free(seg);
    free(ref);
}

static const lt_test_t tests[] = {
    {"test_fp8_matches_definition", test_fp8_matches_definition},
    {"test_scale_codings", test_scale_codings},
    {"test_row_formats_round_trip", test_row_formats_round_trip},
    {"test_budget_within_budget_random", test_budget_within_budget_random},
    {"test_budget_warm_sequence", test_budget_warm_sequence},
    {"test_budget_rows_only_between_anchors", test_budget_rows_only_between_anchors},
    {"test_budget_forced_rows_leave_the_stream_alone",
     test_budget_forced_rows_leave_the_stream_alone},
    {"test_budget_nothing_fits_is_exact", test_budget_nothing_fits_is_exact},
    {"test_fixed_modes", test_fixed_modes},
    {"test_nonfinite_tokens_exact", test_nonfinite_tokens_exact},
    {"test_refinement_reduces_error", test_refinement_reduces_error},
    {"test_params_refused", test_params_refused},
};

LT_MAIN("codec_rd", tests)
