/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * How many rows would a segment have, judged from a sample of its tokens?
 * The encoder asks before hashing everything (a segment that cannot reach
 * MIN_RATIO then travels RAW for the price of the sample), and the adaptive
 * policy asks before it tries an encoded call (docs/api.md).
 *
 * Estimator: hash s tokens spread evenly over the segment and count the
 * pairs with equal keys, P. With k equally likely buckets a pair collides
 * with probability 1/k, so k ~ s(s-1)/2 / P, and n tokens then fill about
 * k (1 - exp(-n/k)) rows. P + 1 stands for P, so a sample without any
 * collision still allows k up to s(s-1)/2; with s = 3 sqrt(n) that bounds
 * the estimated ratio of structureless data at about 1.14 (below the
 * default MIN_RATIO 1.2), while data that does compress collides often
 * enough to be let through. Unequal bucket sizes make P larger than the
 * uniform model's, so the estimate errs towards "compresses": a wrong
 * guess costs a full hash, never a lost compression, except when a
 * compressible segment shows no collision at all by chance (for a true
 * ratio of 1.3 at n = 512, about e^-5).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/common/quant_math.h"
#include "lshmoe/codec_internal.h"
#include "lshmoe/codec_rd_int.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"

#define PROBE_MIN_SAMPLE 64
#define PROBE_BATCH      16   /* sampled tokens hashed per kernel call */

size_t lshmoe_codec_probe_sample(size_t ntokens)
{
    size_t s = (size_t)ceil(3.0 * sqrt((double)ntokens));
    return s < PROBE_MIN_SAMPLE ? PROBE_MIN_SAMPLE : s;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

size_t lshmoe_codec_probe_estimate(uint64_t *keys, size_t s, size_t ntokens)
{
    qsort(keys, s, sizeof *keys, cmp_u64);
    double pairs = 0.0;
    size_t distinct = 0;
    for (size_t i = 0, run = 1; i < s; i++, run++) {
        if (i + 1 < s && keys[i + 1] == keys[i])
            continue;
        if (keys[i] != LSHMOE_KN_KEY_NONFINITE) { /* such tokens stay alone */
            pairs += 0.5 * (double)run * (double)(run - 1);
            distinct++;
        } else {
            distinct += run;
        }
        run = 0;
    }
    if (s == ntokens)
        return distinct;
    double k = 0.5 * (double)s * (double)(s - 1) / (pairs + 1.0);
    double rows = k * -expm1(-(double)ntokens / k);
    return rows < 1.0 ? 1 : rows > (double)ntokens ? ntokens : (size_t)ceil(rows);
}

lshmoe_status_t lshmoe_codec_probe(lshmoe_codec_t *codec, const void *tokens,
                                   lshmoe_dtype_t dtype, size_t hidden, size_t ntokens,
                                   size_t *nrows_p)
{
    const lshmoe_kn_hasher_t *h;
    size_t s = lshmoe_codec_probe_sample(ntokens);
    size_t tb = hidden * lshmoe_dtype_size(dtype);

    *nrows_p = 0;
    if (ntokens == 0 || !lshmoe_dtype_is_float(dtype))
        return LSHMOE_OK;
    if (s >= ntokens)
        s = ntokens; /* small segment: every token, an exact count */
    LSHMOE_CHECK(lshmoe_codec_hasher(codec, hidden, &h));
    if (h == NULL)
        return LSHMOE_OK;
    LSHMOE_CHECK(lshmoe_buf_reserve(&codec->keys, s * sizeof(uint64_t)));
    LSHMOE_CHECK(lshmoe_buf_reserve(&codec->hash_ws, lshmoe_kn_hash_ws_size(h)));
    LSHMOE_CHECK(lshmoe_buf_reserve(&codec->probe_rows, PROBE_BATCH * tb));
    uint64_t *keys = codec->keys.ptr;
    char *rows = codec->probe_rows.ptr;
    /* The sampled tokens are copied side by side, PROBE_BATCH at a time,
     * so that the hash kernel sees a batch (its SIMD levels hash many
     * tokens at once far faster than one at a time). */
    for (size_t i0 = 0; i0 < s; i0 += PROBE_BATCH) {
        size_t nb = s - i0 < PROBE_BATCH ? s - i0 : PROBE_BATCH;
        for (size_t b = 0; b < nb; b++) {
            size_t t = (size_t)((double)(i0 + b) * (double)ntokens / (double)s);
            memcpy(rows + b * tb, (const char *)tokens + t * tb, tb);
        }
        lshmoe_kn_hash(h, rows, dtype, nb, keys + i0, codec->hash_ws.ptr, NULL);
    }
    *nrows_p = lshmoe_codec_probe_estimate(keys, s, ntokens);
    return LSHMOE_OK;
}

/* The budget ladder's forecast (codec_rd_sample.c) as a ratio: token
 * bytes / forecast segment bytes; RAW when nothing is forecast to fit. */
static lshmoe_status_t budget_ratio(lshmoe_codec_t *codec, const void *tokens,
                                    lshmoe_dtype_t dtype, size_t hidden, size_t ntokens,
                                    double *ratio_p)
{
    enc_job_t j = {.codec = codec, .tokens = tokens, .dtype = dtype,
                   .es = lshmoe_dtype_size(dtype), .hidden = hidden, .ntokens = ntokens};
    uint64_t bytes;
    if (lshmoe_codec_max_bytes(dtype, hidden, ntokens, &j.raw_len) != LSHMOE_OK)
        return LSHMOE_OK; /* too large to say: no estimate */
    j.token_bytes = ntokens * hidden * j.es; /* <= raw_len, so no overflow */
    LSHMOE_CHECK(lshmoe_rd_forecast(&j, 1.0, 1, &bytes, NULL, NULL));
    if (bytes == LSHMOE_RD_NO_FORECAST)
        return LSHMOE_OK;
    *ratio_p = (double)j.token_bytes / (double)(bytes ? bytes : j.raw_len);
    return LSHMOE_OK;
}

lshmoe_status_t lshmoe_codec_probe_ratio(lshmoe_codec_t *codec, const void *tokens,
                                         lshmoe_dtype_t dtype, size_t hidden,
                                         size_t ntokens, double *ratio_p)
{
    int mode = codec->params.mode, L = -1, refine = 0, fmt = LSHMOE_QM_NATIVE;
    *ratio_p = 0.0;
    if (ntokens == 0 || hidden == 0 || !lshmoe_dtype_is_float(dtype))
        return LSHMOE_OK;
    if (mode == LSHMOE_CODEC_BUDGET || mode == LSHMOE_CODEC_BUDGET_ROWS)
        return budget_ratio(codec, tokens, dtype, hidden, ntokens, ratio_p);
    if (mode != LSHMOE_CODEC_LSH)
        lshmoe_codec_mode_encoding(mode, &L, &refine, &fmt);
    double token_bytes = (double)(hidden * lshmoe_dtype_size(dtype));
    double row_bytes = fmt == LSHMOE_QM_NATIVE ? token_bytes
                                               : (double)lshmoe_qm_row_bytes(fmt, hidden);
    double rows = (double)ntokens;
    if (L != 0) {
        size_t est;
        LSHMOE_CHECK(lshmoe_codec_probe(codec, tokens, dtype, hidden, ntokens, &est));
        if (est == 0)
            return LSHMOE_OK;
        rows = (double)est;
    }
    *ratio_p = (double)ntokens * token_bytes / (rows * row_bytes);
    return LSHMOE_OK;
}
