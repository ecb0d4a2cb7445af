/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Row formats of MoE payloads: the rows dispatch sends to an expert
 * (centroids or tokens) and the expert outputs combine sends back travel,
 * one block per (peer, expert), in one of the codec's row formats
 * (kernels/common/quant_math.h): the one a fixed LSHMOE_CODEC names, or
 * under LSHMOE_CODEC=budget the fewest bytes whose error over the block is
 * within LSHMOE_MAX_ERROR.
 *
 * The sender keeps the rows as the receiver decodes them, so that the
 * owner's compensation (x - c) and the SCALED fit use the centroid the
 * expert really saw. Quantization is a straight-through step in the
 * backward pass (docs/algorithm.md, "MoE mode and the row formats"): the
 * exact derivative of rounding is zero almost everywhere, which would
 * stop every gradient at the exchange.
 */
#include <math.h>
#include <string.h>

#include "kernels/common/quant_math.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"
#include "lshmoe/moe_int.h"

int moe_codec_row_fmt(int codec)
{
    switch (codec) {
    case LSHMOE_CODEC_BUDGET:
        return MOE_FMT_BUDGET;
    case LSHMOE_CODEC_FP8:
    case LSHMOE_CODEC_LSH_FP8:
        return LSHMOE_QM_FP8;
    case LSHMOE_CODEC_INT8:
    case LSHMOE_CODEC_LSH_INT8:
        return LSHMOE_QM_INT8;
    case LSHMOE_CODEC_INT4:
    case LSHMOE_CODEC_LSH_INT4:
        return LSHMOE_QM_INT4;
    case LSHMOE_CODEC_INT2:
        return LSHMOE_QM_INT2;
    case LSHMOE_CODEC_INT4E:
        return LSHMOE_QM_INT4E;
    default: /* LSH, NATIVE */
        return LSHMOE_QM_NATIVE;
    }
}

int moe_codec_clusters(int codec)
{
    return codec == LSHMOE_CODEC_LSH || codec == LSHMOE_CODEC_BUDGET ||
           codec == LSHMOE_CODEC_LSH_FP8 || codec == LSHMOE_CODEC_LSH_INT8 ||
           codec == LSHMOE_CODEC_LSH_INT4;
}

int moe_codec_supported(int codec)
{
    return codec != LSHMOE_CODEC_LSH_REFINE && codec != LSHMOE_CODEC_LSH_REFINE_INT8 &&
           codec != LSHMOE_CODEC_LSH_REFINE_INT4 && codec != LSHMOE_CODEC_LSH_REFINE_INT4E;
}

size_t moe_row_bytes(const lshmoe_moe_t *m, int fmt)
{
    return fmt == LSHMOE_QM_NATIVE ? m->tb : (size_t)lshmoe_qm_row_bytes(fmt, m->hidden);
}

/* Codes n rows (dtype) into `code` in fmt and decodes them back into `dec`
 * (dtype), through fp32 exactly as the receiver does. */
static void code_rows(const lshmoe_moe_t *m, int fmt, const char *rows, size_t n,
                      uint8_t *code, char *dec, float *f)
{
    size_t rb = moe_row_bytes(m, fmt);
    for (size_t r = 0; r < n; r++) {
        lshmoe_row_to_f32(rows + r * m->tb, m->dtype, m->hidden, f);
        lshmoe_kn_quant_row(fmt, f, m->hidden, code + r * rb);
        lshmoe_kn_dequant_row(fmt, code + r * rb, m->hidden, f);
        lshmoe_row_from_f32(f, m->hidden, m->dtype, dec + r * m->tb);
    }
}

/* Squared error of nref reference rows against the rows that stand for
 * them (ref i -> rows[map[i]], map NULL: ref i -> rows[i]), and their
 * squared norm. */
static void block_error(const lshmoe_moe_t *m, const char *ref, size_t nref,
                        const uint32_t *map, const char *rows, float *xf, float *cf,
                        double *num, double *den)
{
    size_t H = m->hidden;
    double en = 0.0, ed = 0.0;
    for (size_t i = 0; i < nref; i++) {
        lshmoe_row_to_f32(ref + i * m->tb, m->dtype, H, xf);
        lshmoe_row_to_f32(rows + (size_t)(map ? map[i] : i) * m->tb, m->dtype, H, cf);
        double ne = 0.0, nx = 0.0;
        for (size_t d = 0; d < H; d++) {
            double e = (double)xf[d] - (double)cf[d];
            ne += e * e;
            nx += (double)xf[d] * (double)xf[d];
        }
        if (!isfinite(nx)) /* a NaN/Inf token travels alone and exact */
            continue;
        en += ne;
        ed += nx;
    }
    *num = en;
    *den = ed;
}

static int rows_finite(const lshmoe_moe_t *m, const char *rows, size_t n, float *f)
{
    for (size_t r = 0; r < n; r++) {
        lshmoe_row_to_f32(rows + r * m->tb, m->dtype, m->hidden, f);
        for (size_t d = 0; d < m->hidden; d++)
            if (!isfinite(f[d]))
                return 0;
    }
    return 1;
}

/* Does an error num/den fit the layer's budget? (0/0: an all-zero block) */
static int fits(const lshmoe_moe_t *m, double num, double den)
{
    if (!isfinite(num) || !isfinite(den))
        return 0;
    return num == 0.0 || (den > 0.0 && sqrt(num / den) <= m->max_error);
}

int moe_rows_code(const lshmoe_moe_t *m, int want, char *rows, size_t n, const char *ref,
                  size_t nref, const uint32_t *map, uint8_t *code, char *dec, float *scratch,
                  double *num, double *den)
{
    float *xf = scratch, *cf = scratch + m->hidden;
    int cand[LSHMOE_QM_COUNT], nc = 0;
    if (n > 0 && want != LSHMOE_QM_NATIVE && rows_finite(m, rows, n, xf)) {
        if (want != MOE_FMT_BUDGET) {
            cand[nc++] = want;
        } else {
            /* every format smaller than the dtype, fewest bytes first: the
             * first that fits is the smallest that fits */
            for (int f = 1; f < LSHMOE_QM_COUNT; f++) {
                size_t rb = moe_row_bytes(m, f);
                if (rb >= m->tb)
                    continue;
                int k = nc++;
                while (k > 0 && moe_row_bytes(m, cand[k - 1]) > rb) {
                    cand[k] = cand[k - 1];
                    k--;
                }
                cand[k] = f;
            }
        }
    }
    for (int c = 0; c < nc; c++) {
        code_rows(m, cand[c], rows, n, code, dec, xf);
        double en, ed;
        block_error(m, ref, nref, map, dec, xf, cf, &en, &ed);
        if (fits(m, en, ed)) {
            memcpy(rows, dec, n * m->tb);
            *num += en;
            *den += ed;
            return cand[c];
        }
    }
    memcpy(code, rows, n * m->tb);
    double en, ed;
    block_error(m, ref, nref, map, rows, xf, cf, &en, &ed);
    *num += en;
    *den += ed;
    return LSHMOE_QM_NATIVE;
}

lshmoe_status_t moe_rows_decode(const lshmoe_moe_t *m, int fmt, const uint8_t *src, size_t n,
                                char *dst, float *f, int peer, const char *what)
{
    if (fmt == LSHMOE_QM_NATIVE) {
        memcpy(dst, src, n * m->tb);
        return LSHMOE_OK;
    }
    size_t rb = moe_row_bytes(m, fmt);
    for (size_t r = 0; r < n; r++) {
        if (lshmoe_kn_quant_row_check(fmt, src + r * rb, m->hidden) != 0)
            return lshmoe_error(LSHMOE_ERR_CORRUPT, "MoE %s payload from rank %d: row %zu "
                                "of row format %d has an invalid scale or code", what, peer,
                                r, fmt);
        lshmoe_kn_dequant_row(fmt, src + r * rb, m->hidden, f);
        lshmoe_row_from_f32(f, m->hidden, m->dtype, dst + r * m->tb);
    }
    return LSHMOE_OK;
}
