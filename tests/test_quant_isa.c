/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Every CPU ISA level this machine and build support codes rows exactly as
 * the scalar reference does (kernels/cpu/quant.c): the same bytes (scales
 * and codes) for FP8, int8, int4, int4e and int2, the same decoded floats,
 * and the same "code and measure" results (decoded row rounded to the
 * dtype, squared error) bit for bit, on rows that take the rare paths:
 * Gaussian, heavy-tailed (a few huge channels), ties of the rounding,
 * all-zero, negative zero, subnormal and near-overflow values, at hidden
 * sizes that are and are not multiples of the vector widths and blocks.
 * The measured row must be what the decoder writes (dequantized, then
 * lshmoe_row_from_f32), and the error its squared distance (1e-5
 * relative; fp32 lane sums also drop squares below 2^-149 and read an
 * error past the fp32 range as Inf).
 * Levels the CPU lacks are reported and left out.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "kernels/common/quant_math.h"
#include "kernels/kernels.h"
#include "lshmoe/common/dtype.h"
#include "testutil.h"

#define NROWS 4

enum { K_GAUSS, K_HEAVY, K_TIES, K_ZERO, K_NEGZERO, K_SUBNORMAL, K_HUGE, K_MIXED, K_LATTICE,
       K_COUNT };
static const char *const kind_names[] = {"gaussian", "heavy-tailed", "ties", "zero",
                                         "negative-zero", "subnormal", "near-overflow",
                                         "mixed-magnitude", "lattice"};
static const int fmts[] = {LSHMOE_QM_FP8, LSHMOE_QM_INT8, LSHMOE_QM_INT4, LSHMOE_QM_INT4E,
                           LSHMOE_QM_INT2};
static const size_t hiddens[] = {1, 7, 8, 33, 45, 56, 63, 100, 129, 1000, 1024, 4100};
static const lshmoe_dtype_t dtypes[] = {LSHMOE_DTYPE_FP32, LSHMOE_DTYPE_FP16,
                                        LSHMOE_DTYPE_BF16};

static size_t compared, mismatches;

/* nrows rows of one kind. */
static float *make_kind_rows(int kind, size_t nrows, size_t h, uint64_t seed)
{
    float *x = malloc(nrows * h * sizeof(float));
    CU_ASSERT_FATAL(x != NULL);
    lt_gen_gaussian(x, nrows, h, seed);
    for (size_t i = 0; i < nrows * h; i++) {
        size_t blk = i / 32; /* the low-bit block, counted over the rows */
        switch (kind) {
        case K_HEAVY:
            if (i % 97 == 5 || i % 331 == 17)
                x[i] *= 1000.0f;
            break;
        case K_TIES: /* quarter steps: x / scale lands on .5 often */
            x[i] = (float)((int)(x[i] * 8.0f) % 17) * 0.25f;
            break;
        case K_ZERO:
            x[i] = 0.0f;
            break;
        case K_NEGZERO: /* -0 everywhere in row 0, mixed in the others */
            x[i] = (i < h || i % 3 == 0) ? -0.0f : x[i];
            break;
        case K_SUBNORMAL:
            x[i] *= 1e-40f;
            break;
        case K_HUGE:
            x[i] *= 1e37f;
            if (i % 13 == 0)
                x[i] = (x[i] < 0.0f ? -3.4e38f : 3.4e38f);
            break;
        case K_MIXED: /* neighbouring blocks (and lanes) take different
                       * paths: 1e-44 .. 1e37, all-zero, one huge element */
            x[i] *= blk % 11 == 3 ? 0.0f : powf(10.0f, (float)((blk * 37) % 82) - 44.0f);
            if (blk % 7 == 2 && i % 32 == 5)
                x[i] = 3.0e38f;
            break;
        case K_LATTICE: /* halves up to max|x| = 35 (times 2^-2 .. 2^2):
                         * the int4 scales 5, 4.5, 4, 3.5 are exact, and
                         * so are their errors, which often tie */
            x[i] = (i % 32 == blk % 32 ? 35.0f : (float)((int)(x[i] * 12.0f) % 71) * 0.5f) *
                   ldexpf(1.0f, (int)(blk % 5) - 2);
            break;
        default:
            break;
        }
    }
    return x;
}

/* NROWS rows of one kind. */
static float *make_rows(int kind, size_t h, uint64_t seed)
{
    return make_kind_rows(kind, NROWS, h, seed);
}

static void report(const char *what, int fmt, size_t h, int kind, lshmoe_kn_isa_t isa,
                   lshmoe_dtype_t dt)
{
    mismatches++;
    if (mismatches <= 10)
        printf("\n  %s differs: level %s, format %d, hidden %zu, %s rows, dtype %s",
               what, lshmoe_kn_isa_name(isa), fmt, h, kind_names[kind], lshmoe_dtype_name(dt));
}

/* Everything one level computes for the rows: coded bytes, decoded
 * floats, and per dtype the measured rows and errors. */
typedef struct out {
    uint8_t *code, *code_sse;
    float   *dec, *meas;
    double   sse[NROWS * 3];
} out_t;

static void run_level(lshmoe_kn_isa_t isa, int fmt, const float *x, size_t h, out_t *o)
{
    size_t rb = (size_t)lshmoe_qm_row_bytes(fmt, h);
    CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force(isa), LSHMOE_OK);
    for (size_t r = 0; r < NROWS; r++) {
        lshmoe_kn_quant_row(fmt, x + r * h, h, o->code + r * rb);
        lshmoe_kn_dequant_row(fmt, o->code + r * rb, h, o->dec + r * h);
        for (size_t d = 0; d < 3; d++) {
            size_t at = d * NROWS + r;
            o->sse[at] = lshmoe_kn_quant_row_sse(fmt, x + r * h, h, dtypes[d],
                                                 o->code_sse + at * rb, o->meas + at * h);
        }
    }
}

static void out_alloc(out_t *o, size_t rb, size_t h)
{
    /* 0xa5 fill: a byte a level forgets to write shows up as a difference */
    o->code = malloc(NROWS * rb);
    o->code_sse = malloc(3 * NROWS * rb);
    o->dec = malloc(NROWS * h * sizeof(float));
    o->meas = malloc(3 * NROWS * h * sizeof(float));
    CU_ASSERT_FATAL(o->code && o->code_sse && o->dec && o->meas);
    memset(o->code, 0xa5, NROWS * rb);
    memset(o->code_sse, 0xa5, 3 * NROWS * rb);
}

static void out_free(out_t *o)
{
    free(o->code);
    free(o->code_sse);
    free(o->dec);
    free(o->meas);
}

/* The reference's own results against the decoder: the measured row is
 * what lshmoe_row_from_f32 makes of the decoded row, the coded bytes are
 * those of lshmoe_kn_quant_row, the error is the row's squared distance. */
static void check_reference(int fmt, const float *x, size_t h, const out_t *o, int kind)
{
    size_t rb = (size_t)lshmoe_qm_row_bytes(fmt, h);
    float *w = malloc(h * sizeof(float));
    uint16_t *half = malloc(h * sizeof(uint16_t));
    CU_ASSERT_FATAL(w != NULL && half != NULL);
    for (size_t d = 0; d < 3; d++)
        for (size_t r = 0; r < NROWS; r++) {
            size_t at = d * NROWS + r;
            if (memcmp(o->code_sse + at * rb, o->code + r * rb, rb) != 0)
                report("fused code", fmt, h, kind, LSHMOE_KN_ISA_SCALAR, dtypes[d]);
            CU_ASSERT_EQUAL(lshmoe_kn_quant_row_check(fmt, o->code + r * rb, h), 0);
            if (dtypes[d] == LSHMOE_DTYPE_FP32) {
                memcpy(w, o->dec + r * h, h * sizeof(float));
            } else {
                lshmoe_row_from_f32(o->dec + r * h, h, dtypes[d], half);
                lshmoe_row_to_f32(half, dtypes[d], h, w);
            }
            if (memcmp(w, o->meas + at * h, h * sizeof(float)) != 0)
                report("measured row vs decoder", fmt, h, kind, LSHMOE_KN_ISA_SCALAR,
                       dtypes[d]);
            double s = 0.0;
            for (size_t i = 0; i < h; i++) {
                double e = (double)x[r * h + i] - w[i];
                s += e * e;
            }
            /* fp32 lane sums: 1e-5 relative, plus the squares of subnormal
             * differences that fp32 cannot hold (under 2^-149 each); an
             * error past the fp32 range reads as Inf (it fits no budget) */
            double tol = 1e-5 * s + (double)h * 0x1p-148;
            int ok = fabs(s - o->sse[at]) <= tol || (isinf(o->sse[at]) && s >= 0.99 * FLT_MAX);
            if (!ok)
                report("error vs fp64 sum", fmt, h, kind, LSHMOE_KN_ISA_SCALAR, dtypes[d]);
            compared++;
        }
    free(half);
    free(w);
}

static void compare(lshmoe_kn_isa_t isa, int fmt, size_t h, int kind, const out_t *ref,
                    const out_t *got)
{
    size_t rb = (size_t)lshmoe_qm_row_bytes(fmt, h);
    if (memcmp(ref->code, got->code, NROWS * rb) != 0)
        report("code", fmt, h, kind, isa, LSHMOE_DTYPE_FP32);
    if (memcmp(ref->dec, got->dec, NROWS * h * sizeof(float)) != 0)
        report("decoded row", fmt, h, kind, isa, LSHMOE_DTYPE_FP32);
    for (size_t d = 0; d < 3; d++) {
        size_t at = d * NROWS;
        if (memcmp(ref->code_sse + at * rb, got->code_sse + at * rb, NROWS * rb) != 0)
            report("fused code", fmt, h, kind, isa, dtypes[d]);
        if (memcmp(ref->meas + at * h, got->meas + at * h, NROWS * h * sizeof(float)) != 0)
            report("measured row", fmt, h, kind, isa, dtypes[d]);
        if (memcmp(ref->sse + at, got->sse + at, NROWS * sizeof(double)) != 0)
            report("error", fmt, h, kind, isa, dtypes[d]);
    }
    compared++;
}

static void test_rows_identical_across_levels(void)
{
    size_t levels = 0;
    mismatches = 0;
    for (int isa = 1; isa < LSHMOE_KN_ISA_COUNT; isa++)
        if (lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
            levels++;
    for (size_t hi = 0; hi < sizeof hiddens / sizeof hiddens[0]; hi++)
        for (int kind = 0; kind < K_COUNT; kind++) {
            size_t h = hiddens[hi];
            float *x = make_rows(kind, h, 1000 + 17 * hi + (uint64_t)kind);
            for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
                size_t rb = (size_t)lshmoe_qm_row_bytes(fmts[f], h);
                out_t ref, got;
                out_alloc(&ref, rb, h);
                run_level(LSHMOE_KN_ISA_SCALAR, fmts[f], x, h, &ref);
                check_reference(fmts[f], x, h, &ref, kind);
                for (int isa = 1; isa < LSHMOE_KN_ISA_COUNT; isa++) {
                    if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
                        continue;
                    out_alloc(&got, rb, h);
                    run_level((lshmoe_kn_isa_t)isa, fmts[f], x, h, &got);
                    compare((lshmoe_kn_isa_t)isa, fmts[f], h, kind, &ref, &got);
                    out_free(&got);
                }
                out_free(&ref);
            }
            free(x);
        }
    printf("\n  %zu SIMD level(s) against the scalar reference, %zu comparisons ", levels,
           compared);
    CU_ASSERT_EQUAL(mismatches, 0);
}

/* Decoding of every byte value: all 256 e4m3 codes (NaN codes included,
 * which no encoder writes but a decoder may be handed before the check),
 * every nibble and 2-bit pair, under odd scales. */
static void test_decode_every_code(void)
{
    const size_t h = 300;
    mismatches = 0;
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
        int fmt = fmts[f];
        size_t rb = (size_t)lshmoe_qm_row_bytes(fmt, h);
        size_t sb = (size_t)lshmoe_qm_scale_bytes(fmt, h);
        uint8_t *row = malloc(rb);
        float *ref = malloc(h * sizeof(float)), *got = malloc(h * sizeof(float));
        CU_ASSERT_FATAL(row && ref && got);
        for (size_t i = 0; i < rb; i++)
            row[i] = (uint8_t)(i * 7 + 3);
        for (size_t i = sb; i < rb; i++)
            row[i] = (uint8_t)(i - sb);
        if (fmt == LSHMOE_QM_FP8 || fmt == LSHMOE_QM_INT8)
            for (size_t b = 0; b < sb / 4; b++)
                lshmoe_qm_put_f32(row + 4 * b, 0.37f + (float)b * 1e-3f);
        else if (fmt != LSHMOE_QM_INT4E)
            for (size_t b = 0; b < sb / 2; b++)
                lshmoe_qm_put_f16(row + 2 * b, (uint16_t)(0x1000 + 0x0513 * b));
        CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
        lshmoe_kn_dequant_row(fmt, row, h, ref);
        for (int isa = 1; isa < LSHMOE_KN_ISA_COUNT; isa++) {
            if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
                continue;
            CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force((lshmoe_kn_isa_t)isa), LSHMOE_OK);
            memset(got, 0x5a, h * sizeof(float));
            lshmoe_kn_dequant_row(fmt, row, h, got);
            if (memcmp(ref, got, h * sizeof(float)) != 0)
                report("decoded code sweep", fmt, h, K_GAUSS, (lshmoe_kn_isa_t)isa,
                       LSHMOE_DTYPE_FP32);
        }
        free(row);
        free(ref);
        free(got);
    }
    CU_ASSERT_EQUAL(mismatches, 0);
}

/* The batched coder's search (lshmoe_kn_low_block_errors_n) on the first
 * n elements of a block, whole and partial (whose sum takes the n % 8
 * last elements first), at every level against the scalar reference. */
static void check_block_errors_n(int fmt, const float *x, int kind)
{
    static const size_t ns[] = {1, 4, 7, 8, 9, 17, 31, 32};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        float ref[4] = {0}, got[4];
        CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
        int nref = lshmoe_kn_low_block_errors_n(fmt, x, ns[k], ref);
        for (int isa = 1; isa < LSHMOE_KN_ISA_COUNT; isa++) {
            if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
                continue;
            CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force((lshmoe_kn_isa_t)isa), LSHMOE_OK);
            memcpy(got, ref, sizeof got);
            int ngot = lshmoe_kn_low_block_errors_n(fmt, x, ns[k], got);
            if (ngot != nref || memcmp(ref, got, (size_t)nref * sizeof(float)) != 0)
                report("batched block errors", fmt, ns[k], kind, (lshmoe_kn_isa_t)isa,
                       LSHMOE_DTYPE_FP32);
        }
    }
}

/* The errors of a low-bit block's candidate scales decide which scale is
 * kept, so every level must sum them in the reference's order, bit for
 * bit (a different order changes the codes only on near-ties, which the
 * rows above rarely hit). */
static void test_block_errors_across_levels(void)
{
    const int low[] = {LSHMOE_QM_INT4, LSHMOE_QM_INT4E, LSHMOE_QM_INT2};
    const size_t nblocks = NROWS * 32; /* rows of 32: one block each */
    mismatches = 0;
    for (int kind = 0; kind < K_COUNT; kind++) {
        float *x = malloc(nblocks * 32 * sizeof(float));
        CU_ASSERT_FATAL(x != NULL);
        for (size_t r = 0; r < nblocks; r += NROWS) {
            float *rows = make_rows(kind, 32, 5000 + r + 131 * (uint64_t)kind);
            memcpy(x + r * 32, rows, NROWS * 32 * sizeof(float));
            free(rows);
        }
        for (size_t f = 0; f < 3; f++)
            for (size_t blk = 0; blk < nblocks; blk++) {
                float ref[4] = {0}, got[4];
                CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
                int nref = lshmoe_kn_low_block_errors(low[f], x + blk * 32, ref);
                CU_ASSERT(nref >= (kind == K_ZERO || kind == K_NEGZERO || kind == K_MIXED ? 0 : 1) && nref <= 4);
                for (int isa = 1; isa < LSHMOE_KN_ISA_COUNT; isa++) {
                    if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
                        continue;
                    CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force((lshmoe_kn_isa_t)isa), LSHMOE_OK);
                    memcpy(got, ref, sizeof got);
                    int ngot = lshmoe_kn_low_block_errors(low[f], x + blk * 32, got);
                    if (ngot != nref || memcmp(ref, got, (size_t)nref * sizeof(float)) != 0)
                        report("block errors", low[f], 32, kind, (lshmoe_kn_isa_t)isa,
                               LSHMOE_DTYPE_FP32);
                }
                check_block_errors_n(low[f], x + blk * 32, kind);
            }
        free(x);
    }
    CU_ASSERT_EQUAL(mismatches, 0);
}

/*
 * The batched coder (lshmoe_kn_quant_rows_sse) against the one-row scalar
 * reference, row by row: the same bytes, measured rows and errors at every
 * level, for 1..40 rows (so that blocks of consecutive rows share the
 * vector lanes, and the last group is partial), widths with and without
 * a partial block, padded strides (the padding must stay untouched), and
 * the codes-only and errors-dropped calls.
 */
static const size_t batch_widths[] = {1, 31, 32, 33, 64, 100, 127, 1024};

/* Blocks of x (nblocks whole blocks) whose reference errors tie between
 * two different scale codes, and (*repeats_p) blocks where a clip scale
 * repeats the code before it (the reference leaves it out; a level that
 * measures it must not let it win): the data must exercise both rules.
 * INT4E's distinct codes differ by factors 2^(k/4), 0 < k < 4, so their
 * errors practically never tie: there a repeat is the tie. */
static size_t count_ties(int fmt, const float *x, size_t nblocks, size_t *repeats_p)
{
    size_t ties = 0;
    CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
    for (size_t b = 0; b < nblocks; b++) {
        float e[4];
        int n = lshmoe_kn_low_block_errors(fmt, x + 32 * b, e);
        *repeats_p += n > 0 && n < 4;
        int tie = 0;
        for (int c = 1; c < n; c++)
            for (int k = 0; k < c; k++)
                tie |= e[c] == e[k];
        ties += (size_t)tie;
    }
    return ties;
}

static void check_batch(lshmoe_kn_isa_t isa, int fmt, const float *x, size_t nrows, size_t h,
                        lshmoe_dtype_t dt, int kind)
{
    const size_t rb = (size_t)lshmoe_qm_row_bytes(fmt, h), xs = h + 3, ds = rb + 5;
    float *xp = malloc(nrows * xs * sizeof(float)), *yr = malloc(nrows * h * sizeof(float));
    float *yg = malloc(nrows * h * sizeof(float));
    uint8_t *ref = malloc(nrows * rb), *got = malloc(nrows * ds), *only = malloc(nrows * ds);
    double sr[40], sg[40];
    CU_ASSERT_FATAL(xp && yr && yg && ref && got && only && nrows <= 40);
    for (size_t r = 0; r < nrows; r++) {
        memcpy(xp + r * xs, x + r * h, h * sizeof(float));
        for (size_t i = h; i < xs; i++)
            xp[r * xs + i] = 1e30f; /* padding: never a row's element */
    }
    CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
    for (size_t r = 0; r < nrows; r++)
        sr[r] = lshmoe_kn_quant_row_sse(fmt, x + r * h, h, dt, ref + r * rb, yr + r * h);
    CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force(isa), LSHMOE_OK);
    memset(got, 0xa5, nrows * ds);
    memset(only, 0x5a, nrows * ds);
    memset(yg, 0xa5, nrows * h * sizeof(float));
    lshmoe_kn_quant_rows_sse(fmt, xp, xs, nrows, h, dt, got, ds, yg, sg);
    lshmoe_kn_quant_rows_sse(fmt, xp, xs, nrows, h, dt, only, ds, NULL, NULL);
    int bad_code = 0, bad_pad = 0;
    for (size_t r = 0; r < nrows; r++) {
        bad_code |= memcmp(ref + r * rb, got + r * ds, rb) != 0;
        bad_code |= memcmp(ref + r * rb, only + r * ds, rb) != 0;
        for (size_t i = rb; i < ds; i++)
            bad_pad |= got[r * ds + i] != 0xa5 || only[r * ds + i] != 0x5a;
    }
    if (bad_code)
        report("batched code", fmt, h, kind, isa, dt);
    if (bad_pad)
        report("batched padding", fmt, h, kind, isa, dt);
    if (memcmp(yr, yg, nrows * h * sizeof(float)) != 0)
        report("batched measured row", fmt, h, kind, isa, dt);
    if (memcmp(sr, sg, nrows * sizeof(double)) != 0)
        report("batched error", fmt, h, kind, isa, dt);
    /* errors dropped: the same measured rows */
    memset(yg, 0xa5, nrows * h * sizeof(float));
    lshmoe_kn_quant_rows_sse(fmt, xp, xs, nrows, h, dt, got, ds, yg, NULL);
    if (memcmp(yr, yg, nrows * h * sizeof(float)) != 0)
        report("batched measured row (no errors)", fmt, h, kind, isa, dt);
    compared++;
    free(xp);
    free(yr);
    free(yg);
    free(ref);
    free(got);
    free(only);
}

static void test_batched_rows_across_levels(void)
{
    const int low[] = {LSHMOE_QM_INT4, LSHMOE_QM_INT4E, LSHMOE_QM_INT2};
    size_t ties[3] = {0}, repeats[3] = {0};
    mismatches = 0;
    compared = 0;
    for (size_t wi = 0; wi < sizeof batch_widths / sizeof batch_widths[0]; wi++)
        for (int kind = 0; kind < K_COUNT; kind++) {
            size_t h = batch_widths[wi];
            float *x = make_kind_rows(kind, 40, h, 9000 + 31 * wi + (uint64_t)kind);
            for (size_t f = 0; f < 3; f++) {
                if (h % 32 == 0)
                    ties[f] += count_ties(low[f], x, 40 * h / 32, &repeats[f]);
                for (size_t nrows = 1; nrows <= 40; nrows += h >= 1024 ? 13 : 1)
                    for (int isa = 0; isa < LSHMOE_KN_ISA_COUNT; isa++) {
                        if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
                            continue;
                        /* every dtype on a few row counts, fp32 on all */
                        for (size_t d = 0; d < 3; d++)
                            if (d == 0 || nrows % 9 == 1)
                                check_batch((lshmoe_kn_isa_t)isa, low[f], x, nrows, h,
                                            dtypes[d], kind);
                    }
            }
            /* the other formats run the one-row kernels: once each */
            for (int isa = 0; isa < LSHMOE_KN_ISA_COUNT; isa++)
                if (lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa)) {
                    check_batch((lshmoe_kn_isa_t)isa, LSHMOE_QM_FP8, x, 17, h,
                                LSHMOE_DTYPE_BF16, kind);
                    check_batch((lshmoe_kn_isa_t)isa, LSHMOE_QM_INT8, x, 17, h,
                                LSHMOE_DTYPE_FP16, kind);
                }
            free(x);
        }
    printf("\n  %zu batched comparisons; blocks with tied scale errors: int4 %zu, int4e %zu, "
           "int2 %zu; with repeated codes: %zu, %zu, %zu ",
           compared, ties[0], ties[1], ties[2], repeats[0], repeats[1], repeats[2]);
    CU_ASSERT(ties[0] > 0 && ties[2] > 0 && repeats[1] > 0);
    CU_ASSERT_EQUAL(mismatches, 0);
    CU_ASSERT_EQUAL(lshmoe_kn_isa_init(), LSHMOE_OK);
}

/* lshmoe_kn_row_sq_dist: same value at every level, close to fp64. */
static void test_sq_dist_across_levels(void)
{
    mismatches = 0;
    for (size_t hi = 0; hi < sizeof hiddens / sizeof hiddens[0]; hi++) {
        size_t h = hiddens[hi];
        float *a = malloc(2 * h * sizeof(float));
        CU_ASSERT_FATAL(a != NULL);
        lt_gen_gaussian(a, 2, h, 77 + hi);
        double exact = 0.0;
        for (size_t i = 0; i < h; i++)
            exact += ((double)a[i] - a[h + i]) * ((double)a[i] - a[h + i]);
        CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force(LSHMOE_KN_ISA_SCALAR), LSHMOE_OK);
        double ref = lshmoe_kn_row_sq_dist(a, a + h, h);
        CU_ASSERT(fabs(ref - exact) <= 1e-5 * exact);
        for (int isa = 1; isa < LSHMOE_KN_ISA_COUNT; isa++) {
            if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa))
                continue;
            CU_ASSERT_EQUAL_FATAL(lshmoe_kn_isa_force((lshmoe_kn_isa_t)isa), LSHMOE_OK);
            double got = lshmoe_kn_row_sq_dist(a, a + h, h);
            if (memcmp(&got, &ref, sizeof got) != 0)
                report("row distance", 0, h, K_GAUSS, (lshmoe_kn_isa_t)isa, LSHMOE_DTYPE_FP32);
        }
        free(a);
    }
    CU_ASSERT_EQUAL(mismatches, 0);
    CU_ASSERT_EQUAL(lshmoe_kn_isa_init(), LSHMOE_OK); /* back to the CPU's best */
}

static const lt_test_t tests[] = {
    {"test_rows_identical_across_levels", test_rows_identical_across_levels},
    {"test_decode_every_code", test_decode_every_code},
    {"test_block_errors_across_levels", test_block_errors_across_levels},
    {"test_sq_dist_across_levels", test_sq_dist_across_levels},
    {"test_batched_rows_across_levels", test_batched_rows_across_levels},
};

LT_MAIN("quant_isa", tests)
