/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * codec_stages: where the encoder's time goes, per CPU ISA level, on one
 * core. For each level (LSHMOE_CPU_ISA values; those the CPU lacks are
 * skipped with a note) it times, over every segment of the data set, the
 * kernels the encoder runs (hash = fold + rotation + argmax + key, group,
 * centroids, guard), the whole encoder (lshmoe_codec_encode, guard on) and
 * the decoder, each beside a memcpy of the same token bytes timed in the
 * same iteration. Reported: median ns per token and the stage's throughput
 * as a percentage of memcpy's (100 = as fast as a copy). Ratios, not
 * absolute times, are what compare across runs on a shared machine. Time
 * is the thread's CPU time by default (--clock cpu): on a host shared with
 * other jobs it leaves out the time the thread waited for a core, which
 * wall time (--clock wall) counts; both see cache misses.
 * docs/benchmarks.md ("codec_stages") has the commands and results.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchmarks/bench_args.h"
#include "benchmarks/npy.h"
#include "kernels/kernels.h"
#include "lshmoe/codec.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"
#include "lshmoe/common/timer.h"
#include "tests/datagen.h"

enum { ST_MEMCPY, ST_HASH, ST_GROUP, ST_CENTROIDS, ST_GUARD, ST_ENCODE, ST_DECODE, ST_N };
static const char *const stage_names[ST_N] = {
    "memcpy", "hash", "group", "centroids", "guard", "encode+guard", "decode"};

typedef struct sopts {
    const char    *data;
    size_t         tokens, hidden, segment, centers;
    double         noise;
    lshmoe_dtype_t dtype;
    int            iters, warmup;
    const char    *isa;   /* "all" or one level name */
    int            cpu_clock;  /* 1: thread CPU time, 0: wall time */
} sopts_t;

typedef struct sbench {
    size_t   n, h, tb, nseg, seg;
    char    *in, *copy, *out, *wire, *rows;
    size_t  *wire_len, wire_cap;
    uint64_t *keys;
    uint32_t *cl, *sizes;
    size_t  *ncl;          /* clusters per segment (from the group stage) */
    float   *acc;
    void    *hash_ws, *group_ws;
} sbench_t;

static int g_cpu_clock = 1;

/* Seconds on the clock --clock chose. */
static double now(void)
{
    if (!g_cpu_clock)
        return lshmoe_now();
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fail(const char *msg)
{
    fprintf(stderr, "codec_stages: %s\n", msg);
    return 1;
}

static int usage(void)
{
    printf("usage: codec_stages [--data clustered|gaussian|FILE.npy] [--tokens N] [--hidden H]\n"
           "                    [--segment N] [--dtype fp32|fp16|bf16] [--centers K]\n"
           "                    [--noise S] [--isa all|scalar|avx2|avx512] [-n ITERS] [-w WARMUP]\n"
           "                    [--clock cpu|wall]\n"
           "Defaults: clustered, 4096 tokens, hidden 1024, segment 512, bf16, 512 centers,\n"
           "noise 0.05, all levels, -n 15 -w 2, thread CPU time; library defaults for the\n"
           "codec.\n");
    return 0;
}

static int parse(int argc, char **argv, sopts_t *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return usage(), 1;
        if (v == NULL)
            return fail("every option takes a value (see -h)"), -1;
        i++;
        if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--tokens")) o->tokens = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--hidden")) o->hidden = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--segment")) o->segment = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--centers")) o->centers = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--noise")) o->noise = strtod(v, NULL);
        else if (!strcmp(a, "--isa")) o->isa = v;
        else if (!strcmp(a, "--clock")) {
            if (strcmp(v, "cpu") && strcmp(v, "wall"))
                return fail("--clock is cpu or wall"), -1;
            o->cpu_clock = !strcmp(v, "cpu");
        }
        else if (!strcmp(a, "-n")) o->iters = atoi(v);
        else if (!strcmp(a, "-w")) o->warmup = atoi(v);
        else if (!strcmp(a, "--dtype")) {
            if (!strcmp(v, "fp32")) o->dtype = LSHMOE_DTYPE_FP32;
            else if (!strcmp(v, "fp16")) o->dtype = LSHMOE_DTYPE_FP16;
            else if (!strcmp(v, "bf16")) o->dtype = LSHMOE_DTYPE_BF16;
            else return fail("--dtype is fp32, fp16 or bf16"), -1;
        } else {
            return fail("unknown option (see -h)"), -1;
        }
    }
    if (o->tokens == 0 || o->hidden == 0 || o->iters < 1 || o->warmup < 0 || o->segment == 0)
        return fail("--tokens, --hidden, --segment and -n must be positive"), -1;
    return 0;
}

/* Token floats: built-in generators or a 2-D .npy (its width wins). */
static float *load(sopts_t *o)
{
    if (lt_gen_is_builtin(o->data))
        return lt_gen_named(o->data, o->tokens, o->hidden, o->centers, o->noise, 1);
    npy_matrix_t m;
    char err[512];
    if (npy_load(o->data, &m, err, sizeof err) != NPY_OK) {
        fprintf(stderr, "codec_stages: %s\n", err);
        return NULL;
    }
    o->hidden = m.cols;
    if (o->tokens > m.rows)
        o->tokens = m.rows;
    return m.data;
}

static size_t seg_len(const sbench_t *b, size_t s)
{
    return s + 1 < b->nseg ? b->seg : b->n - s * b->seg;
}

static int setup(sbench_t *b, const sopts_t *o, const float *x, const lshmoe_kn_hasher_t *h)
{
    memset(b, 0, sizeof *b);
    b->n = o->tokens;
    b->h = o->hidden;
    b->tb = b->h * lshmoe_dtype_size(o->dtype);
    b->seg = o->segment < b->n ? o->segment : b->n;
    b->nseg = (b->n + b->seg - 1) / b->seg;
    if (lshmoe_codec_max_bytes(o->dtype, b->h, b->seg, &b->wire_cap) != LSHMOE_OK)
        return fail(lshmoe_error_thread_msg());
    b->in = malloc(b->n * b->tb);
    b->copy = malloc(b->n * b->tb);
    b->out = malloc(b->n * b->tb);
    b->rows = malloc(b->n * b->tb);
    b->wire = malloc(b->nseg * b->wire_cap);
    b->wire_len = calloc(b->nseg, sizeof(size_t));
    b->ncl = calloc(b->nseg, sizeof(size_t));
    b->keys = malloc(b->n * sizeof(uint64_t));
    b->cl = malloc(b->n * sizeof(uint32_t));
    b->sizes = malloc(b->n * sizeof(uint32_t));
    b->acc = malloc(b->seg * b->h * sizeof(float));
    b->hash_ws = aligned_alloc(64, (lshmoe_kn_hash_ws_size(h) + 63) / 64 * 64);
    b->group_ws = malloc(lshmoe_kn_group_ws_size(b->seg));
    if (!b->in || !b->copy || !b->out || !b->rows || !b->wire || !b->wire_len || !b->ncl ||
        !b->keys || !b->cl || !b->sizes || !b->acc || !b->hash_ws || !b->group_ws)
        return fail("out of memory");
    if (o->dtype == LSHMOE_DTYPE_FP32)
        memcpy(b->in, x, b->n * b->tb);
    else
        lt_to_dtype(x, b->n * b->h, o->dtype, b->in);
    /* touch every page before timing */
    memset(b->copy, 0, b->n * b->tb);
    memset(b->out, 0, b->n * b->tb);
    memset(b->rows, 0, b->n * b->tb);
    memset(b->wire, 0, b->nseg * b->wire_cap);
    memset(b->acc, 0, b->seg * b->h * sizeof(float));
    return 0;
}

/* One stage over every segment; returns the seconds it took. */
static double run_stage(int st, sbench_t *b, const sopts_t *o, const lshmoe_kn_hasher_t *h,
                        lshmoe_codec_t *codec, int *err)
{
    double t0 = now();
    if (st == ST_MEMCPY) {
        memcpy(b->copy, b->in, b->n * b->tb);
        return now() - t0;
    }
    for (size_t s = 0; s < b->nseg; s++) {
        size_t n = seg_len(b, s), off = s * b->seg;
        const char *tok = b->in + off * b->tb;
        char *rows = b->rows + off * b->tb;
        switch (st) {
        case ST_HASH:
            lshmoe_kn_hash(h, tok, o->dtype, n, b->keys + off, b->hash_ws, NULL);
            break;
        case ST_GROUP:
            lshmoe_kn_group(b->keys + off, n, b->cl + off, &b->ncl[s], b->group_ws);
            break;
        case ST_CENTROIDS:
            lshmoe_kn_centroids(tok, o->dtype, b->h, n, b->cl + off, b->ncl[s], rows,
                                b->sizes + off, b->acc);
            break;
        case ST_GUARD: {
            double num, den;
            lshmoe_kn_guard_sums(tok, rows, o->dtype, b->h, n, b->cl + off, b->sizes + off,
                                 &num, &den);
            break;
        }
        case ST_ENCODE:
            *err |= lshmoe_codec_encode(codec, tok, o->dtype, b->h, n,
                                        b->wire + s * b->wire_cap, b->wire_cap,
                                        &b->wire_len[s], NULL) != LSHMOE_OK;
            break;
        case ST_DECODE:
            *err |= lshmoe_codec_decode(codec, b->wire + s * b->wire_cap, b->wire_len[s],
                                        o->dtype, b->h, n, b->out + off * b->tb,
                                        NULL) != LSHMOE_OK;
            break;
        }
    }
    return now() - t0;
}

/* Every stage at one ISA level; prints its rows. */
static int run_level(lshmoe_kn_isa_t isa, sbench_t *b, const sopts_t *o,
                     const lshmoe_codec_params_t *cp, const lshmoe_kn_hasher_t *h)
{
    lshmoe_codec_t *codec = NULL;
    if (lshmoe_kn_isa_force(isa) != LSHMOE_OK || lshmoe_codec_create(cp, &codec) != LSHMOE_OK)
        return fail(lshmoe_error_thread_msg());
    double *t = calloc((size_t)ST_N * (size_t)o->iters, sizeof(double));
    double *memcpy_t = calloc((size_t)ST_N * (size_t)o->iters, sizeof(double));
    if (t == NULL || memcpy_t == NULL)
        return fail("out of memory");
    int err = 0;
    for (int it = -o->warmup; it < o->iters; it++) {
        for (int st = ST_MEMCPY; st < ST_N; st++) {
            /* each stage beside its own memcpy, so a load spike hits both */
            double tm = run_stage(ST_MEMCPY, b, o, h, codec, &err);
            double ts = run_stage(st, b, o, h, codec, &err);
            if (it >= 0) {
                t[st * o->iters + it] = ts;
                memcpy_t[st * o->iters + it] = tm;
            }
        }
    }
    size_t wire = 0;
    for (size_t s = 0; s < b->nseg; s++)
        wire += b->wire_len[s];
    for (int st = ST_MEMCPY; st < ST_N && !err; st++) {
        double ts = bench_median(t + st * o->iters, o->iters);
        double tm = bench_median(memcpy_t + st * o->iters, o->iters);
        printf("%-7s %-13s %10.1f %10.1f %9.1f%%\n", lshmoe_kn_isa_name(isa), stage_names[st],
               ts / (double)b->n * 1e9, tm / (double)b->n * 1e9, 100.0 * tm / ts);
    }
    printf("%-7s ratio %.3f (token bytes / wire bytes)\n", lshmoe_kn_isa_name(isa),
           (double)(b->n * b->tb) / (double)wire);
    free(t);
    free(memcpy_t);
    lshmoe_codec_destroy(codec);
    return err ? fail("encode or decode failed") : 0;
}

int main(int argc, char **argv)
{
    sopts_t o = {.data = "clustered", .tokens = 4096, .hidden = 1024, .segment = 512,
                 .centers = 512, .noise = 0.05, .dtype = LSHMOE_DTYPE_BF16, .iters = 15,
                 .warmup = 2, .isa = "all", .cpu_clock = 1};
    int rc = parse(argc, argv, &o);
    if (rc != 0)
        return rc < 0 ? 1 : 0;
    g_cpu_clock = o.cpu_clock;
    float *x = load(&o);
    if (x == NULL)
        return fail("cannot load the data");
    /* the library's defaults (docs/env.md), guard on */
    lshmoe_codec_params_t cp = {
        .lsh = {.seed = 0x5eed, .num_hashes = 6, .cdim = 4, .reduce = LSHMOE_REDUCE_FOLD,
                .reduce_dim = 64, .rounds = 3},
        .compress = 1, .min_tokens = 16, .min_ratio = 1.2, .residual_bits = 0,
        .error_guard = 1, .max_error = 0.5};
    lshmoe_kn_hasher_t *h = NULL;
    sbench_t b;
    if (lshmoe_kn_hasher_create(&cp.lsh, o.hidden, &h) != LSHMOE_OK)
        return fail(lshmoe_error_thread_msg());
    if (setup(&b, &o, x, h) != 0)
        return 1;
    printf("# data %s: %zu tokens x %zu %s, segments of %zu; median of %d (warmup %d), "
           "%s time\n", o.data, b.n, b.h, o.dtype == LSHMOE_DTYPE_FP32 ? "fp32"
                           : o.dtype == LSHMOE_DTYPE_FP16 ? "fp16" : "bf16",
           b.seg, o.iters, o.warmup, o.cpu_clock ? "thread CPU" : "wall");
    printf("%-7s %-13s %10s %10s %10s\n", "isa", "stage", "ns/token", "memcpy_ns", "%memcpy");
    for (int isa = 0; isa < LSHMOE_KN_ISA_COUNT && rc == 0; isa++) {
        const char *name = lshmoe_kn_isa_name((lshmoe_kn_isa_t)isa);
        if (strcmp(o.isa, "all") && strcmp(o.isa, name))
            continue;
        if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa)) {
            printf("# %s: not available on this CPU/build, skipped\n", name);
            continue;
        }
        rc = run_level((lshmoe_kn_isa_t)isa, &b, &o, &cp, h);
    }
    lshmoe_kn_hasher_destroy(h);
    return rc;
}
