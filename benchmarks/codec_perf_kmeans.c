/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * codec_perf's slow k-means reference row (--kmeans ITERS), for comparison
 * only: per segment, Lloyd's k-means with as many clusters as the LSH row
 * before it produced there, so the two share a ratio and differ in error.
 * Initial centres: the tokens at i * n / k (deterministic). Centroids are
 * rounded to the dtype; bytes are counted as an LSH segment of the same
 * rows would be (header, rows, u16/u32 index, padding). Not the library's
 * code: nothing here is shipped.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchmarks/codec_perf.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/timer.h"

static size_t pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static double dist2(const float *a, const float *b, size_t h)
{
    double s = 0.0;
    for (size_t i = 0; i < h; i++) {
        double d = (double)a[i] - b[i];
        s += d * d;
    }
    return s;
}

/* k-means of n rows x (fp32); returns the squared error of the rounded
 * centroids. c: k * h floats, of: n, cnt: k, tmp: h * 8 bytes. */
static double kmeans(const float *x, size_t n, size_t h, size_t k, int iters,
                     lshmoe_dtype_t dt, float *c, uint32_t *of, uint32_t *cnt, void *tmp)
{
    for (size_t j = 0; j < k; j++)
        memcpy(c + j * h, x + (j * n / k) * h, h * sizeof *c);
    for (int it = 0; it <= iters; it++) {
        for (size_t i = 0; i < n; i++) {
            double best = INFINITY;
            for (size_t j = 0; j < k; j++) {
                double d = dist2(x + i * h, c + j * h, h);
                if (d < best) {
                    best = d;
                    of[i] = (uint32_t)j;
                }
            }
        }
        if (it == iters)
            break;
        /* new means; an empty cluster keeps its centre */
        memset(cnt, 0, k * sizeof *cnt);
        for (size_t i = 0; i < n; i++)
            cnt[of[i]]++;
        for (size_t j = 0; j < k; j++)
            if (cnt[j] > 0)
                memset(c + j * h, 0, h * sizeof *c);
        for (size_t i = 0; i < n; i++)
            for (size_t e = 0; e < h; e++)
                c[of[i] * h + e] += x[i * h + e];
        for (size_t j = 0; j < k; j++)
            for (size_t e = 0; cnt[j] > 0 && e < h; e++)
                c[j * h + e] /= (float)cnt[j];
    }
    double sse = 0.0;
    for (size_t j = 0; j < k; j++) { /* what a receiver would decode */
        lshmoe_row_from_f32(c + j * h, h, dt, tmp);
        lshmoe_row_to_f32(tmp, dt, h, c + j * h);
    }
    for (size_t i = 0; i < n; i++)
        sse += dist2(x + i * h, c + (size_t)of[i] * h, h);
    return sse;
}

int cp_kmeans_row(const bench_t *b, const opts_t *o, const size_t *rows_per_seg,
                  int hashes, int cdim, row_t *r)
{
    size_t h = b->h, es = lshmoe_dtype_size(o->dtype), maxn = 0;
    for (size_t s = 0; s < b->nseg; s++)
        maxn = b->seg_tok[s] > maxn ? b->seg_tok[s] : maxn;
    float *c = malloc(maxn * h * sizeof *c);
    uint32_t *of = malloc(maxn * sizeof *of), *cnt = malloc(maxn * sizeof *cnt);
    void *tmp = malloc(h * 8);
    if (!c || !of || !cnt || !tmp) {
        free(c);
        free(of);
        free(cnt);
        free(tmp);
        return cp_fail("out of memory for the k-means row");
    }
    memset(r, 0, sizeof *r);
    r->codec = -1;
    r->budget = -1.0;
    r->hashes = hashes;
    r->cdim = cdim;
    r->bytes = b->bytes;
    r->segments = b->nseg;
    double num = 0.0, den = 0.0, t0 = lshmoe_now();
    for (size_t s = 0, off = 0; s < b->nseg; off += b->seg_tok[s++]) {
        size_t n = b->seg_tok[s], k = rows_per_seg[s];
        const float *x = b->ref + off * h;
        for (size_t i = 0; i < n * h; i++)
            den += (double)x[i] * x[i];
        if (k == 0 || k >= n) { /* the LSH row sent it raw: so does this one */
            r->wire_bytes += 48 + pad8(n * h * es);
            r->raw_segments++;
            continue;
        }
        num += kmeans(x, n, h, k, o->kmeans, o->dtype, c, of, cnt, tmp);
        r->wire_bytes += 48 + pad8(k * h * es) + pad8(n * (k > 65536 ? 4 : 2));
    }
    double t = lshmoe_now() - t0;
    r->enc_gbps = t > 0 ? (double)b->bytes / t / 1e9 : 0.0;
    r->rel_err = den > 0 ? sqrt(num / den) : 0.0;
    r->cosine = NAN; /* not measured for the reference */
    snprintf(r->choices, sizeof r->choices, "k-means %d iterations, k = lsh%d rows", o->kmeans,
             hashes);
    free(c);
    free(of);
    free(cnt);
    free(tmp);
    return 0;
}
