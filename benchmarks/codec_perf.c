/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * codec_perf: the segment codec alone, no communication, on one core.
 * Encode and decode throughput (GB/s of token bytes) beside a memcpy of the
 * same bytes timed in the same run (the ceiling), plus the ratio and the
 * reconstruction error. Data: built-in clustered or Gaussian tokens, or a
 * 2-D float32/float16 .npy file (--data FILE.npy).
 *
 * Usage: codec_perf [--tokens N] [--hidden H] [--dtype fp32|fp16|bf16]
 *          [--hashes L] [--cdim C] [--reduce pad|fold] [--reduce-dim M]
 *          [--rounds R] [--residual-bits 0|4|8] [--data clustered|gaussian|FILE.npy]
 *          [--centers K] [--noise S] [--min-ratio R] [-n ITERS] [-w WARMUP]
 *
 * Defaults are the library's (hashes 6, cdim 4, fold 64, rounds 3, min
 * ratio 1.2: segments that compress less travel raw); --min-ratio 0 forces
 * clustering to show what it would cost on data that does not compress.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchmarks/npy.h"
#include "lshmoe/codec.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"
#include "lshmoe/common/timer.h"
#include "tests/datagen.h"

typedef struct opts {
    size_t         tokens, hidden, centers;
    double         noise;
    lshmoe_dtype_t dtype;
    const char    *data;
    int            iters, warmup;
    lshmoe_codec_params_t cp;
} opts_t;

static int parse(int argc, char **argv, opts_t *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            return -1;
        i++;
        if (!strcmp(a, "--tokens")) o->tokens = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--hidden")) o->hidden = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--hashes")) o->cp.lsh.num_hashes = atoi(v);
        else if (!strcmp(a, "--cdim")) o->cp.lsh.cdim = atoi(v);
        else if (!strcmp(a, "--reduce-dim")) o->cp.lsh.reduce_dim = atoi(v);
        else if (!strcmp(a, "--rounds")) o->cp.lsh.rounds = atoi(v);
        else if (!strcmp(a, "--residual-bits")) o->cp.residual_bits = atoi(v);
        else if (!strcmp(a, "--centers")) o->centers = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--noise")) o->noise = atof(v);
        else if (!strcmp(a, "--min-ratio")) o->cp.min_ratio = atof(v);
        else if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "-n")) o->iters = atoi(v);
        else if (!strcmp(a, "-w")) o->warmup = atoi(v);
        else if (!strcmp(a, "--reduce")) {
            if (!strcmp(v, "pad")) o->cp.lsh.reduce = LSHMOE_REDUCE_PAD;
            else if (!strcmp(v, "fold")) o->cp.lsh.reduce = LSHMOE_REDUCE_FOLD;
            else return -1;
        } else if (!strcmp(a, "--dtype")) {
            if (!strcmp(v, "fp32")) o->dtype = LSHMOE_DTYPE_FP32;
            else if (!strcmp(v, "fp16")) o->dtype = LSHMOE_DTYPE_FP16;
            else if (!strcmp(v, "bf16")) o->dtype = LSHMOE_DTYPE_BF16;
            else return -1;
        } else
            return -1;
    }
    if (o->tokens == 0 || o->hidden == 0 || o->iters < 1 || o->warmup < 0 || o->centers == 0)
        return -1;
    return 0;
}

/* Fills o->tokens x o->hidden floats; from a .npy the file decides both. */
static float *load_data(opts_t *o)
{
    if (!strcmp(o->data, "clustered") || !strcmp(o->data, "gaussian")) {
        float *x = malloc(o->tokens * o->hidden * sizeof(float));
        if (x == NULL)
            return NULL;
        if (!strcmp(o->data, "gaussian"))
            lt_gen_gaussian(x, o->tokens, o->hidden, 1);
        else
            lt_gen_clustered(x, o->tokens, o->hidden, o->centers, o->noise, 1);
        return x;
    }
    npy_matrix_t m;
    char err[256];
    if (npy_load(o->data, &m, err, sizeof err) != NPY_OK) {
        fprintf(stderr, "codec_perf: %s: %s\n", o->data, err);
        return NULL;
    }
    if (o->tokens > m.rows)
        o->tokens = m.rows;
    o->hidden = m.cols;
    return m.data;
}

static double gbps(size_t bytes, double s)
{
    return s > 0 ? (double)bytes / s / 1e9 : 0.0;
}

int main(int argc, char **argv)
{
    opts_t o = {.tokens = 8192, .hidden = 1024, .centers = 512, .noise = 0.05,
                .dtype = LSHMOE_DTYPE_FP32, .data = "clustered", .iters = 5, .warmup = 1,
                .cp = {.lsh = {.seed = 0x5eed, .num_hashes = 6, .cdim = 4,
                               .reduce = LSHMOE_REDUCE_FOLD, .reduce_dim = 64, .rounds = 3},
                       .compress = 1, .min_tokens = 16, .min_ratio = 1.2}};
    if (parse(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: see the comment at the top of benchmarks/codec_perf.c\n");
        return 2;
    }
    float *x = load_data(&o);
    if (x == NULL)
        return 1;
    size_t n = o.tokens, h = o.hidden, tb = h * lshmoe_dtype_size(o.dtype), bytes = n * tb;
    size_t cap;
    lshmoe_codec_t *codec = NULL;
    if (lshmoe_codec_max_bytes(o.dtype, h, n, &cap) != LSHMOE_OK ||
        lshmoe_codec_create(&o.cp, &codec) != LSHMOE_OK) {
        fprintf(stderr, "codec_perf: %s\n", lshmoe_error_thread_msg());
        return 1;
    }
    char *in = malloc(bytes), *wire = malloc(cap), *out = malloc(bytes), *copy = malloc(bytes);
    float *back = malloc(n * h * sizeof(float)), *ref = malloc(n * h * sizeof(float));
    if (!in || !wire || !out || !copy || !back || !ref) {
        fprintf(stderr, "codec_perf: out of memory\n");
        return 1;
    }
    lshmoe_row_from_f32(x, n * h, o.dtype, in);
    double t_enc = 0, t_dec = 0, t_cpy = 0;
    size_t len = 0;
    for (int it = 0; it < o.warmup + o.iters; it++) {
        double t0 = lshmoe_now();
        lshmoe_status_t st = lshmoe_codec_encode(codec, in, o.dtype, h, n, wire, cap, &len, NULL);
        double t1 = lshmoe_now();
        if (st == LSHMOE_OK)
            st = lshmoe_codec_decode(codec, wire, len, o.dtype, h, n, out, NULL);
        double t2 = lshmoe_now();
        memcpy(copy, in, bytes);
        double t3 = lshmoe_now();
        if (st != LSHMOE_OK) {
            fprintf(stderr, "codec_perf: %s: %s\n", lshmoe_status_name(st),
                    lshmoe_error_thread_msg());
            return 1;
        }
        if (it >= o.warmup) {
            t_enc += t1 - t0;
            t_dec += t2 - t1;
            t_cpy += t3 - t2;
        }
    }
    /* Error against the tokens as the sender held them (after rounding). */
    lshmoe_row_to_f32(out, o.dtype, n * h, back);
    lshmoe_row_to_f32(in, o.dtype, n * h, ref);
    double num = 0, den = 0, cos = 0;
    for (size_t i = 0; i < n; i++) {
        double dot = 0, na = 0, nb = 0;
        for (size_t k = 0; k < h; k++) {
            double a = back[i * h + k], b = ref[i * h + k];
            num += (a - b) * (a - b);
            den += b * b;
            dot += a * b;
            na += a * a;
            nb += b * b;
        }
        cos += dot / (sqrt(na * nb) + 1e-30);
    }
    printf("# lshmoe %s codec_perf: data %s, %zu tokens x %zu %s, hashes %d, cdim %d, %s %d, "
           "rounds %d, residual bits %d, min ratio %g, %d iters\n", lshmoe_version_string(), o.data, n, h,
           lshmoe_dtype_name(o.dtype), o.cp.lsh.num_hashes, o.cp.lsh.cdim,
           o.cp.lsh.reduce == LSHMOE_REDUCE_PAD ? "pad" : "fold", o.cp.lsh.reduce_dim,
           o.cp.lsh.rounds, o.cp.residual_bits, o.cp.min_ratio, o.iters);
    printf("%12s %12s %7s %9s %8s %10s %10s %10s\n", "bytes", "wire_bytes", "ratio", "rel_err",
           "cosine", "enc_GB/s", "dec_GB/s", "memcpy");
    printf("%12zu %12zu %7.2f %9.4f %8.4f %10.3f %10.3f %10.3f\n", bytes, len,
           (double)bytes / (double)len, den > 0 ? sqrt(num / den) : 0.0, cos / (double)n,
           gbps(bytes * (size_t)o.iters, t_enc), gbps(bytes * (size_t)o.iters, t_dec),
           gbps(bytes * (size_t)o.iters, t_cpy));
    lshmoe_codec_destroy(codec);
    free(x);
    free(in);
    free(wire);
    free(out);
    free(copy);
    free(back);
    free(ref);
    return 0;
}
