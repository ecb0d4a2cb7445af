/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * codec_perf: the segment codec alone, no communication, on one core.
 * For every (cdim, hashes) pair it reports encode and decode throughput
 * (GB/s of token bytes) beside a memcpy of the same bytes timed in the same
 * loop (the ceiling any codec is compared with), the compression ratio and
 * the reconstruction error. Data: built-in clustered or Gaussian tokens, or
 * a 2-D float32/float16 .npy file (--data FILE.npy). `codec_perf -h` lists
 * the flags; docs/benchmarks.md ("codec_perf") has the columns, the JSON
 * schema (-J) and measured numbers.
 *
 * Defaults are the library's (hashes 6, cdim 4, fold 64, rounds 3, min
 * ratio 1.2: segments that compress less travel raw); --min-ratio 0 forces
 * clustering to show what it would cost on data that does not compress.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchmarks/bench_args.h"
#include "benchmarks/codec_perf.h"
#include "benchmarks/codec_perf_cuda.h"
#include "benchmarks/npy.h"
#include "lshmoe/codec.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"
#include "lshmoe/common/timer.h"
#include "tests/datagen.h"


/* o->tokens x o->hidden floats; from a .npy the file decides the width and
 * (without --tokens) the count. NULL after printing why (exit 1). */
static float *load_data(opts_t *o)
{
    if (lt_gen_is_builtin(o->data)) {
        float *x = lt_gen_named(o->data, o->tokens, o->hidden, o->centers, o->noise, 1);
        if (x == NULL)
            return cp_fail("out of memory for %zu x %zu tokens", o->tokens, o->hidden), NULL;
        return x;
    }
    npy_matrix_t m;
    char err[512];
    if (npy_load(o->data, &m, err, sizeof err) != NPY_OK)
        return cp_fail("%s", err), NULL;
    if (o->hidden_set && o->hidden != m.cols)
        fprintf(stderr, "codec_perf: note: %s has %zu columns; --hidden %zu ignored\n",
                o->data, m.cols, o->hidden);
    /* Cycling rows to reach --tokens would add exact duplicates, which
     * compress unrealistically well: take the first rows instead. */
    if (o->tokens_set && o->tokens > m.rows)
        fprintf(stderr, "codec_perf: note: %s has only %zu rows; using them all\n",
                o->data, m.rows);
    if (!o->tokens_set || o->tokens > m.rows)
        o->tokens = m.rows;
    o->hidden = m.cols;
    return m.data;
}

static double gbps(size_t bytes, double s)
{
    return s > 0 ? (double)bytes / s / 1e9 : 0.0;
}

/* Cuts the tokens into segments and allocates every buffer. The buffers
 * are written once here so that page faults land outside the timed loop
 * even with -w 0. Returns -1 after printing why. */
static int bench_init(bench_t *b, const opts_t *o, const float *x)
{
    memset(b, 0, sizeof *b);
    b->n = o->tokens;
    b->h = o->hidden;
    b->tb = b->h * lshmoe_dtype_size(o->dtype);
    b->bytes = b->n * b->tb;
    size_t seg = o->segment && o->segment < b->n ? o->segment : b->n;
    b->nseg = (b->n + seg - 1) / seg;
    b->seg_tok = calloc(b->nseg, sizeof(size_t));
    b->wire_off = calloc(b->nseg, sizeof(size_t));
    b->wire_len = calloc(b->nseg, sizeof(size_t));
    if (!b->seg_tok || !b->wire_off || !b->wire_len)
        return cp_fail("out of memory");
    for (size_t s = 0; s < b->nseg; s++) {
        size_t cap;
        b->seg_tok[s] = s + 1 < b->nseg ? seg : b->n - s * seg;
        if (lshmoe_codec_max_bytes(o->dtype, b->h, b->seg_tok[s], &cap) != LSHMOE_OK)
            return cp_fail("%s", lshmoe_error_thread_msg());
        b->wire_off[s] = b->wire_cap;
        b->wire_cap += cap;
    }
    b->in = malloc(b->bytes);
    b->out = malloc(b->bytes);
    b->copy = malloc(b->bytes);
    b->wire = malloc(b->wire_cap);
    b->ref = malloc(b->n * b->h * sizeof(float));
    b->back = malloc(b->n * b->h * sizeof(float));
    if (!b->in || !b->out || !b->copy || !b->wire || !b->ref || !b->back)
        return cp_fail("out of memory for %zu bytes of tokens", b->bytes);
    lshmoe_row_from_f32(x, b->n * b->h, o->dtype, b->in);
    /* The error is measured against the tokens as the sender holds them,
     * after rounding to the dtype, so bf16 rounding is not counted as loss. */
    lshmoe_row_to_f32(b->in, o->dtype, b->n * b->h, b->ref);
    memset(b->out, 0, b->bytes);
    memset(b->copy, 0, b->bytes);
    memset(b->wire, 0, b->wire_cap);
    return 0;
}

static void bench_free(bench_t *b)
{
    free(b->in);
    free(b->out);
    free(b->copy);
    free(b->wire);
    free(b->ref);
    free(b->back);
    free(b->seg_tok);
    free(b->wire_off);
    free(b->wire_len);
}

/* Relative L2 error and mean per-token cosine of b->out against b->ref. */
static void measure_error(bench_t *b, lshmoe_dtype_t dtype, row_t *r)
{
    size_t n = b->n, h = b->h;
    lshmoe_row_to_f32(b->out, dtype, n * h, b->back);
    double num = 0, den = 0, cos = 0;
    for (size_t i = 0; i < n; i++) {
        const float *p = b->back + i * h, *q = b->ref + i * h;
        double dot = 0, na = 0, nb = 0;
        for (size_t k = 0; k < h; k++) {
            double a = p[k], c = q[k];
            num += (a - c) * (a - c);
            dot += a * c;
            na += a * a;
            nb += c * c;
        }
        den += nb;
        /* two zero tokens are identical, not orthogonal */
        cos += na == 0 && nb == 0 ? 1.0 : dot / (sqrt(na * nb) + 1e-300);
    }
    r->rel_err = den > 0 ? sqrt(num / den) : (num > 0 ? INFINITY : 0.0);
    r->cosine = n ? cos / (double)n : 1.0;
}

/*
 * One row: -w untimed then -n timed iterations, each one memcpy, encode and
 * decode pass over every segment, timed separately in the same iteration so
 * that all three see the same machine state. Returns -1 after printing the
 * library's message.
 */
/* "name:segments" of every encoding the last pass chose, most used first. */
static void summarise_choices(const lshmoe_codec_stats_t *st, char *out, size_t cap)
{
    uint64_t left[LSHMOE_CODEC_NCHOICES];
    size_t used = 0;
    memcpy(left, st->choice_segments, sizeof left);
    out[0] = '\0';
    for (;;) {
        int best = -1;
        for (int i = 0; i < LSHMOE_CODEC_NCHOICES; i++)
            if (left[i] > 0 && (best < 0 || left[i] > left[best]))
                best = i;
        if (best < 0)
            break;
        char name[32];
        lshmoe_codec_choice_name(best, name, sizeof name);
        int w = snprintf(out + used, cap - used, "%s%s:%llu", used ? "," : "", name,
                         (unsigned long long)left[best]);
        if (w < 0 || (size_t)w >= cap - used)
            break;
        used += (size_t)w;
        left[best] = 0;
    }
}

static int run_row(bench_t *b, const opts_t *o, int mode, int hashes, int cdim,
                   double budget, row_t *r)
{
    lshmoe_codec_params_t cp = o->cp;
    cp.lsh.num_hashes = hashes > 0 ? hashes : cp.lsh.num_hashes;
    cp.lsh.cdim = cdim;
    cp.mode = mode;
    if (budget >= 0.0)
        cp.max_error = budget;
    lshmoe_codec_t *codec = NULL;
    if (lshmoe_codec_create(&cp, &codec) != LSHMOE_OK)
        return cp_fail("hashes %d, cdim %d: %s", hashes, cdim, lshmoe_error_thread_msg());
    double *t = malloc(3 * (size_t)o->iters * sizeof(double));
    if (t == NULL) {
        lshmoe_codec_destroy(codec);
        return cp_fail("out of memory");
    }
    double *t_cpy = t, *t_enc = t + o->iters, *t_dec = t + 2 * o->iters;
    lshmoe_codec_stats_t st;
    lshmoe_status_t rc = LSHMOE_OK;
    for (int it = 0; it < o->warmup + o->iters && rc == LSHMOE_OK; it++) {
        memset(&st, 0, sizeof st);
        double t0 = lshmoe_now();
        for (size_t s = 0, off = 0; s < b->nseg; off += b->seg_tok[s++] * b->tb)
            memcpy(b->copy + off, b->in + off, b->seg_tok[s] * b->tb);
        double t1 = lshmoe_now();
        for (size_t s = 0, off = 0; s < b->nseg && rc == LSHMOE_OK;
             off += b->seg_tok[s++] * b->tb) {
            size_t cap = (s + 1 < b->nseg ? b->wire_off[s + 1] : b->wire_cap) - b->wire_off[s];
            rc = lshmoe_codec_encode(codec, b->in + off, o->dtype, b->h, b->seg_tok[s],
                                     b->wire + b->wire_off[s], cap, &b->wire_len[s], &st);
        }
        double t2 = lshmoe_now();
        for (size_t s = 0, off = 0; s < b->nseg && rc == LSHMOE_OK;
             off += b->seg_tok[s++] * b->tb)
            rc = lshmoe_codec_decode(codec, b->wire + b->wire_off[s], b->wire_len[s],
                                     o->dtype, b->h, b->seg_tok[s], b->out + off, NULL);
        double t3 = lshmoe_now();
        if (it >= o->warmup) {
            t_cpy[it - o->warmup] = t1 - t0;
            t_enc[it - o->warmup] = t2 - t1;
            t_dec[it - o->warmup] = t3 - t2;
        }
    }
    lshmoe_codec_destroy(codec);
    if (rc != LSHMOE_OK) {
        free(t);
        return cp_fail("hashes %d, cdim %d: %s: %s", hashes, cdim, lshmoe_status_name(rc),
                    lshmoe_error_thread_msg());
    }
    memset(r, 0, sizeof *r);
    r->codec = mode;
    r->budget = budget;
    r->passes = (double)st.search_tokens / (double)b->n;
    r->refine_evals = (double)st.refine_evals / (double)b->n;
    summarise_choices(&st, r->choices, sizeof r->choices);
    r->hashes = hashes;
    r->cdim = cdim;
    r->bytes = b->bytes;
    for (size_t s = 0; s < b->nseg; s++)
        r->wire_bytes += b->wire_len[s];
    r->segments = b->nseg;
    r->raw_segments = (size_t)st.segments_raw;  /* of the last pass; all are alike */
    r->memcpy_gbps = gbps(b->bytes, bench_median(t_cpy, o->iters));
    r->enc_gbps = gbps(b->bytes, bench_median(t_enc, o->iters));
    r->dec_gbps = gbps(b->bytes, bench_median(t_dec, o->iters));
    free(t);
    measure_error(b, o->dtype, r);
    return 0;
}

/* The k-means row beside the LSH row just run: as many clusters per
 * segment as its segments have rows (read from their headers). */
static int kmeans_beside(const bench_t *b, const opts_t *o, int hashes, int cdim, row_t *r)
{
    size_t *k = calloc(b->nseg, sizeof *k);
    if (k == NULL)
        return cp_fail("out of memory");
    for (size_t s = 0; s < b->nseg; s++) {
        const unsigned char *seg = (const unsigned char *)b->wire + b->wire_off[s];
        uint16_t flags = (uint16_t)(seg[6] | seg[7] << 8);
        uint64_t nrows;
        memcpy(&nrows, seg + 24, sizeof nrows); /* little-endian host */
        k[s] = (flags & LSHMOE_WIRE_F_RAW) ? 0 : (size_t)nrows;
    }
    int rc = cp_kmeans_row(b, o, k, hashes, cdim, r);
    free(k);
    return rc;
}

/* A mode without hashing (native, fp8, ...) is one row; LSH modes one per
 * cdim x hashes; budget mode one per cdim x --max-error value. */
static int run_codec(bench_t *b, const opts_t *o, int mode, row_t *rows, size_t *nrows)
{
    int hashing = mode != LSHMOE_CODEC_BUDGET && mode != LSHMOE_CODEC_NATIVE &&
                  mode != LSHMOE_CODEC_FP8 && mode != LSHMOE_CODEC_INT8 &&
                  mode != LSHMOE_CODEC_INT4 && mode != LSHMOE_CODEC_INT2 &&
                  mode != LSHMOE_CODEC_INT4E;
    /* fixed encodings: with --guard, one row per --max-error value */
    size_t nguard = o->cp.error_guard ? o->nbudgets : 1;
    for (size_t g = 0; g < nguard; g++) {
        double guard = o->cp.error_guard ? o->budgets[g] : -1.0;
        if (mode != LSHMOE_CODEC_BUDGET && !hashing) {
            if (run_row(b, o, mode, 0, o->cdims[0], guard, &rows[*nrows]))
                return 1;
            cp_print_row(&rows[(*nrows)++]);
            continue;
        }
        for (size_t c = 0; c < o->ncdims; c++) {
            size_t n = mode == LSHMOE_CODEC_BUDGET ? o->nbudgets : o->nhashes;
            for (size_t k = 0; k < n; k++) {
                int rc = mode == LSHMOE_CODEC_BUDGET
                       ? run_row(b, o, mode, 0, o->cdims[c], o->budgets[k], &rows[*nrows])
                       : run_row(b, o, mode, o->hashes[k], o->cdims[c], guard, &rows[*nrows]);
                if (rc)
                    return 1;
                cp_print_row(&rows[(*nrows)++]);
                if (o->kmeans > 0 && mode == LSHMOE_CODEC_LSH && guard < 0.0) {
                    if (kmeans_beside(b, o, o->hashes[k], o->cdims[c], &rows[*nrows]))
                        return 1;
                    cp_print_row(&rows[(*nrows)++]);
                }
            }
        }
        if (mode == LSHMOE_CODEC_BUDGET)
            break; /* the budgets are its rows already */
    }
    return 0;
}

/* --device cuda hands the whole run to codec_perf_cuda.c. */
static int wants_device(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--device"))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (wants_device(argc, argv)) {
#if BENCH_HAVE_CUDA
        return codec_perf_cuda_main(argc, argv);
#else
        return cp_fail("--device cuda: this build has no CUDA kernels (nvcc not found)"), 1;
#endif
    }
    opts_t o = {.tokens = 8192, .hidden = 1024, .centers = 512, .noise = 0.05,
                .dtype = LSHMOE_DTYPE_FP32, .data = "clustered", .iters = 5, .warmup = 1,
                .hashes = {6}, .nhashes = 1, .cdims = {4}, .ncdims = 1,
                .codecs = {LSHMOE_CODEC_LSH}, .ncodecs = 1,
                .budgets = {0.1}, .nbudgets = 1,
                .cp = {.lsh = {.seed = 0x5eed, .num_hashes = 6, .cdim = 4,
                               .reduce = LSHMOE_REDUCE_FOLD, .reduce_dim = 64, .rounds = 3},
                       .compress = 1, .min_tokens = 16, .min_ratio = 1.2}};
    int p = cp_parse(argc, argv, &o);
    if (p != 0)
        return p > 0 ? 0 : 2;
    /* A cross-polytope cannot be wider than the vector it hashes: the fold
     * width, or with pad the next power of two of the hidden size (known
     * only once a .npy is read, so this is checked after loading). */
    float *x = load_data(&o);
    if (x == NULL)
        return 1;
    size_t m = (size_t)o.cp.lsh.reduce_dim;
    if (o.cp.lsh.reduce == LSHMOE_REDUCE_PAD)
        for (m = 1; m < o.hidden; m *= 2) {}
    for (size_t i = 0; i < o.ncdims; i++)
        if ((size_t)o.cdims[i] > m) {
            free(x);
            cp_fail("bad value for --cdims: %d is wider than the %zu coordinates hashed "
                 "(%s)", o.cdims[i], m, o.cp.lsh.reduce == LSHMOE_REDUCE_PAD ?
                 "next power of two of hidden" : "--reduce-dim");
            return 2;
        }
    /* Fail on an unwritable -J before the run, not after it. */
    if (o.json != NULL) {
        FILE *f = fopen(o.json, "w");
        if (f == NULL) {
            free(x);
            cp_fail("cannot write %s: %s", o.json, strerror(errno));
            return 1;
        }
        fclose(f);
    }
    bench_t b = {0};
    row_t *rows = calloc(2 * o.ncodecs * o.ncdims * (o.nhashes + 1) * (o.nbudgets + 1) + 1,
                         sizeof *rows);
    int rc = rows == NULL ? cp_fail("out of memory") : bench_init(&b, &o, x);
    free(x);
    rc = rc != 0;
    size_t nrows = 0;
    if (rc == 0) {
        cp_print_preamble(&o, &b);
        for (size_t k = 0; k < o.ncodecs && rc == 0; k++)
            rc = run_codec(&b, &o, o.codecs[k], rows, &nrows);
    }
    if (rc == 0 && o.json != NULL && cp_write_json(&o, &b, argc, argv, rows, nrows) != 0) {
        cp_fail("cannot write %s: %s", o.json, strerror(errno));
        rc = 1;
    }
    bench_free(&b);
    free(rows);
    return rc;
}
