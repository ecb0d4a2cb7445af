/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* codec_perf's command line, table and JSON document (see codec_perf.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchmarks/bench_args.h"
#include "benchmarks/codec_perf.h"
#include "lshmoe/common/param.h"

static void usage(FILE *f, const char *prog)
{
    fprintf(f,
        "usage: %s [options]\n"
        "data:\n"
        "  --data D            clustered|gaussian|FILE.npy (default clustered); a .npy\n"
        "                      (2-D float32/float16, C order) sets hidden and the tokens\n"
        "  --tokens N          tokens (default 8192; a .npy: all rows; suffixes K, M)\n"
        "  --hidden H          elements per token (default 1024)\n"
        "  --dtype T           fp32|fp16|bf16 (default fp32)\n"
        "  --centers K         clustered: centers (default 512)\n"
        "  --noise S           clustered: noise std around the centers (default 0.05)\n"
        "  --segment N         cut the tokens into segments of N (default 0: one segment)\n"
        "codec (one row per cdim x hashes):\n"
        "  --hashes LIST       hash functions L, e.g. 6, 1-10 or 2,6,10 (1..16; default 6)\n"
        "  --cdims LIST        cross-polytope dims, powers of two 2..256, e.g. 4 or 2-16\n"
        "                      (a range takes the powers of two in it; default 4)\n"
        "  --cdim C            same as --cdims C\n"
        "  --reduce pad|fold   default fold\n"
        "  --reduce-dim M      fold width, power of two 16..4096 (default 64)\n"
        "  --rounds R          1..3 (default 3)\n"
        "  --residual-bits B   0|4|8 (default 0)\n"
        "  --min-ratio R       segments compressing less travel raw (default 1.2)\n"
        "  --codecs LIST       encodings, e.g. lsh,int8,int4,lsh-int8,budget (default lsh;\n"
        "                      the names of LSHMOE_CODEC; `all` = every one)\n"
        "  --max-error LIST    budget rows, e.g. 0.01,0.03,0.1 (default 0.1); with\n"
        "                      --guard also the guard of the fixed encodings\n"
        "  --guard 0|1         fixed encodings: a segment over the error travels raw (0)\n"
        "  --kmeans ITERS      after each lsh row, a slow k-means reference row with\n"
        "                      its row count per segment (0: none; default 0)\n"
        "  --search S          budget: sample (default: estimate on a sample, measure\n"
        "                      the pick in full), warm (from the previous segment's\n"
        "                      choice), bisect (monotone chains, bisected) or linear\n"
        "                      (every encoding in byte order; for comparison)\n"
        "timing and output:\n"
        "  -n ITERS            timed iterations, median reported (default 5)\n"
        "  -w WARMUP           untimed iterations first (default 1)\n"
        "  -J FILE             also write the rows as one JSON document\n"
        "  -h, --help          this text\n", prog);
}

static int is_pow2(long v)
{
    return v > 0 && (v & (v - 1)) == 0;
}

/*
 * "6", "1-10", "2,6,10", "1-3,8" -> values in [lo, hi], in the order given.
 * With pow2, every value must be a power of two and a range a-b stands for
 * the powers of two from a to b. Returns -1 on anything malformed.
 */
static int parse_list(const char *s, long lo, long hi, int pow2, int *out, size_t *n)
{
    char buf[256];
    if (strlen(s) >= sizeof buf || *s == '\0')
        return -1;
    strcpy(buf, s);
    *n = 0;
    /* Not strtok: it would skip empty items, and "2,,6" is a typo. */
    for (char *tok = buf, *next; tok != NULL; tok = next) {
        next = strchr(tok, ',');
        if (next != NULL)
            *next++ = '\0';
        long a, b;
        char *dash = strchr(tok + 1, '-');  /* tok + 1: a leading '-' is a sign */
        if (dash != NULL)
            *dash = '\0';
        if (bench_parse_long(tok, lo, hi, &a) != 0 ||
            (dash ? bench_parse_long(dash + 1, lo, hi, &b) : (b = a, 0)) != 0 || b < a)
            return -1;
        if (pow2 && (!is_pow2(a) || !is_pow2(b)))
            return -1;
        for (long v = a; v <= b; v = pow2 ? v * 2 : v + 1) {
            if (*n == MAX_LIST)
                return -1;
            out[(*n)++] = (int)v;
        }
    }
    return *n > 0 ? 0 : -1;
}

const char *cp_codec_name(int mode, char *buf, size_t n)
{
    const lshmoe_param_desc_t *p = lshmoe_param_find("CODEC");
    const char *c = p->range;
    for (int i = 0; i < mode && c != NULL; i++) {
        c = strchr(c, '|');
        c = c ? c + 1 : NULL;
    }
    if (c == NULL || n == 0)
        return "?";
    size_t len = strcspn(c, "|");
    if (len >= n)
        len = n - 1;
    memcpy(buf, c, len);
    buf[len] = '\0';
    return buf;
}

static int parse_codecs(const char *s, opts_t *o)
{
    const lshmoe_param_desc_t *p = lshmoe_param_find("CODEC");
    char buf[512];
    int nmodes = 1;
    for (const char *c = p->range; *c; c++)
        nmodes += *c == '|';
    if (!strcmp(s, "all")) {
        for (int m = 0; m < nmodes; m++)
            o->codecs[m] = m;
        o->ncodecs = (size_t)nmodes;
        return 0;
    }
    if (strlen(s) >= sizeof buf || *s == '\0')
        return -1;
    strcpy(buf, s);
    o->ncodecs = 0;
    for (char *tok = buf, *next; tok != NULL; tok = next) {
        next = strchr(tok, ',');
        if (next != NULL)
            *next++ = '\0';
        int idx;
        if (o->ncodecs == MAX_LIST || lshmoe_param_parse_choice(p, tok, &idx) != LSHMOE_OK)
            return -1;
        o->codecs[o->ncodecs++] = idx;
    }
    return 0;
}

static int parse_budgets(const char *s, opts_t *o)
{
    char buf[512];
    if (strlen(s) >= sizeof buf || *s == '\0')
        return -1;
    strcpy(buf, s);
    o->nbudgets = 0;
    for (char *tok = buf, *next; tok != NULL; tok = next) {
        next = strchr(tok, ',');
        if (next != NULL)
            *next++ = '\0';
        double d;
        if (o->nbudgets == MAX_LIST || bench_parse_double(tok, 0.0, 1000.0, &d) != 0)
            return -1;
        o->budgets[o->nbudgets++] = d;
    }
    return 0;
}

int cp_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("codec_perf: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

/* Returns 0, 1 after -h, or -1 after printing one line to stderr. */
int cp_parse(int argc, char **argv, opts_t *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout, argv[0]);
            return 1;
        }
        if (i + 1 >= argc)
            return cp_fail("unknown option or missing value: '%s' (-h for help)", a);
        const char *v = argv[++i];
        long l;
        double d;
        size_t z;
#define BAD() cp_fail("bad value for %s: '%s'", a, v)
        if (!strcmp(a, "--tokens")) {
            if (bench_parse_size(v, &z) != 0 || z == 0 || z > ((size_t)1 << 24)) return BAD();
            o->tokens = z;
            o->tokens_set = 1;
        } else if (!strcmp(a, "--segment")) {
            if (bench_parse_size(v, &z) != 0 || z > ((size_t)1 << 24)) return BAD();
            o->segment = z;
        } else if (!strcmp(a, "--hidden")) {
            if (bench_parse_long(v, 1, 65536, &l) != 0) return BAD();
            o->hidden = (size_t)l;
            o->hidden_set = 1;
        } else if (!strcmp(a, "--hashes")) {
            if (parse_list(v, 1, 16, 0, o->hashes, &o->nhashes) != 0)
                return cp_fail("bad value for --hashes: '%s' (e.g. 6, 1-10, 2,6,10; 1..16)", v);
        } else if (!strcmp(a, "--cdims") || !strcmp(a, "--cdim")) {
            if (parse_list(v, 2, 256, 1, o->cdims, &o->ncdims) != 0)
                return cp_fail("bad value for %s: '%s' (powers of two 2..256, e.g. 4, 2-16, 2,8)",
                            a, v);
        } else if (!strcmp(a, "--reduce-dim")) {
            if (bench_parse_long(v, 16, 4096, &l) != 0 || !is_pow2(l))
                return cp_fail("bad value for --reduce-dim: '%s' (power of two 16..4096)", v);
            o->cp.lsh.reduce_dim = (int)l;
        } else if (!strcmp(a, "--rounds")) {
            if (bench_parse_long(v, 1, 3, &l) != 0) return BAD();
            o->cp.lsh.rounds = (int)l;
        } else if (!strcmp(a, "--residual-bits")) {
            if (bench_parse_long(v, 0, 8, &l) != 0 || (l != 0 && l != 4 && l != 8))
                return cp_fail("bad value for --residual-bits: '%s' (0, 4 or 8)", v);
            o->cp.residual_bits = (int)l;
        } else if (!strcmp(a, "--centers")) {
            if (bench_parse_long(v, 1, 1L << 24, &l) != 0) return BAD();
            o->centers = (size_t)l;
        } else if (!strcmp(a, "--noise")) {
            if (bench_parse_double(v, 0.0, 1e6, &d) != 0) return BAD();
            o->noise = d;
        } else if (!strcmp(a, "--codecs")) {
            if (parse_codecs(v, o) != 0)
                return cp_fail("bad value for --codecs: '%s' (names of LSHMOE_CODEC, "
                               "comma-separated, or all)", v);
        } else if (!strcmp(a, "--max-error")) {
            if (parse_budgets(v, o) != 0)
                return cp_fail("bad value for --max-error: '%s' (e.g. 0.03 or 0.01,0.1)", v);
            o->cp.max_error = o->budgets[0];
        } else if (!strcmp(a, "--kmeans")) {
            if (bench_parse_long(v, 0, 1000, &l) != 0) return BAD();
            o->kmeans = (int)l;
        } else if (!strcmp(a, "--search")) {
            if (!strcmp(v, "bisect")) o->cp.search = LSHMOE_CODEC_SEARCH_BISECT;
            else if (!strcmp(v, "linear")) o->cp.search = LSHMOE_CODEC_SEARCH_LINEAR;
            else if (!strcmp(v, "warm")) o->cp.search = LSHMOE_CODEC_SEARCH_WARM;
            else if (!strcmp(v, "sample")) o->cp.search = LSHMOE_CODEC_SEARCH_SAMPLE;
            else return BAD();
        } else if (!strcmp(a, "--guard")) {
            if (bench_parse_long(v, 0, 1, &l) != 0) return BAD();
            o->cp.error_guard = (int)l;
        } else if (!strcmp(a, "--min-ratio")) {
            if (bench_parse_double(v, 0.0, 1e6, &d) != 0) return BAD();
            o->cp.min_ratio = d;
        } else if (!strcmp(a, "-n")) {
            if (bench_parse_long(v, 1, 1000000, &l) != 0) return BAD();
            o->iters = (int)l;
        } else if (!strcmp(a, "-w")) {
            if (bench_parse_long(v, 0, 1000000, &l) != 0) return BAD();
            o->warmup = (int)l;
        } else if (!strcmp(a, "-J")) {
            o->json = v;
        } else if (!strcmp(a, "--data")) {
            if (*v == '\0') return BAD();
            o->data = v;
        } else if (!strcmp(a, "--reduce")) {
            if (!strcmp(v, "pad")) o->cp.lsh.reduce = LSHMOE_REDUCE_PAD;
            else if (!strcmp(v, "fold")) o->cp.lsh.reduce = LSHMOE_REDUCE_FOLD;
            else return BAD();
        } else if (!strcmp(a, "--dtype")) {
            if (!strcmp(v, "fp32")) o->dtype = LSHMOE_DTYPE_FP32;
            else if (!strcmp(v, "fp16")) o->dtype = LSHMOE_DTYPE_FP16;
            else if (!strcmp(v, "bf16")) o->dtype = LSHMOE_DTYPE_BF16;
            else return BAD();
        } else {
            return cp_fail("unknown option '%s' (-h for help)", a);
        }
#undef BAD
    }
    return 0;
}

void cp_print_preamble(const opts_t *o, const bench_t *b)
{
    const lshmoe_kn_lsh_params_t *l = &o->cp.lsh;
    printf("# lshmoe %s codec_perf: one thread, no communication\n", lshmoe_version_string());
    printf("# data %s: %zu tokens x %zu %s = %zu bytes, %zu segment(s) of <= %zu tokens\n",
           o->data, b->n, b->h, lshmoe_dtype_name(o->dtype), b->bytes, b->nseg, b->seg_tok[0]);
    printf("# reduce %s %d, rounds %d, residual bits %d, min ratio %g; "
           "%d warm-up + %d timed iterations, medians\n",
           l->reduce == LSHMOE_REDUCE_PAD ? "pad" : "fold", l->reduce_dim, l->rounds,
           o->cp.residual_bits, o->cp.min_ratio, o->warmup, o->iters);
    printf("#%-15s %6s %4s %6s %12s %12s %7s %9s %8s %9s %9s %9s %9s %6s  %s\n", "codec",
           "budget", "cdim", "hashes", "bytes", "wire_bytes", "ratio", "rel_err", "cosine",
           "enc_GB/s", "dec_GB/s", "memcpy", "raw/segs", "passes", "choices");
    fflush(stdout);
}

void cp_print_row(const row_t *r)
{
    char segs[48];
    snprintf(segs, sizeof segs, "%zu/%zu", r->raw_segments, r->segments);
    char name[32], budget[16];
    if (r->codec < 0)
        snprintf(name, sizeof name, "kmeans");
    else
        cp_codec_name(r->codec, name, sizeof name);
    if (r->budget >= 0.0)
        snprintf(budget, sizeof budget, "%.3g", r->budget);
    else
        snprintf(budget, sizeof budget, "-");
    printf(" %-15s %6s %4d %6d %12zu %12zu %7.2f %9.2e %8.4f %9.3f %9.3f %9.3f %9s %6.2f  %s\n",
           name, budget, r->cdim, r->hashes, r->bytes, r->wire_bytes,
           (double)r->bytes / (double)r->wire_bytes, r->rel_err, r->cosine, r->enc_gbps,
           r->dec_gbps, r->memcpy_gbps, segs, r->passes, r->choices);
    fflush(stdout);  /* one row at a time: long runs show progress */
}

/* ,"key":number (null for NaN/Inf) */
static void json_num(FILE *f, const char *key, double v)
{
    fprintf(f, ",\"%s\":", key);
    bench_json_num(f, v);
}

int cp_write_json(const opts_t *o, const bench_t *b, int argc, char **argv,
                      const row_t *rows, size_t nrows)
{
    FILE *f = fopen(o->json, "w");
    if (f == NULL)
        return -1;
    const lshmoe_kn_lsh_params_t *l = &o->cp.lsh;
    fputs("{\"tool\":\"codec_perf\",\"version\":", f);
    bench_json_str(f, lshmoe_version_string());
    fputs(",\"argv\":[", f);
    for (int i = 0; i < argc; i++) {
        if (i)
            fputc(',', f);
        bench_json_str(f, argv[i]);
    }
    fputs("],\"data\":", f);
    bench_json_str(f, o->data);
    fprintf(f, ",\"dtype\":\"%s\",\"tokens\":%zu,\"hidden\":%zu,\"segment\":%zu",
            lshmoe_dtype_name(o->dtype), b->n, b->h, b->seg_tok[0]);
    json_num(f, "min_ratio", o->cp.min_ratio);
    fprintf(f, ",\"iters\":%d,\"warmup\":%d,\"rows\":[", o->iters, o->warmup);
    for (size_t i = 0; i < nrows; i++) {
        const row_t *r = &rows[i];
        char name[32];
        fprintf(f, "%s{\"codec\":", i ? "," : "");
        bench_json_str(f, r->codec < 0 ? "kmeans" : cp_codec_name(r->codec, name, sizeof name));
        json_num(f, "max_error", r->budget >= 0.0 ? r->budget : NAN);
        json_num(f, "passes", r->passes);
        json_num(f, "refine_evals", r->refine_evals);
        fputs(",\"choices\":", f);
        bench_json_str(f, r->choices);
        fprintf(f, ",\"hashes\":%d,\"cdim\":%d,\"reduce\":\"%s\",\"reduce_dim\":%d,"
                "\"rounds\":%d,\"residual_bits\":%d,\"bytes\":%zu,\"wire_bytes\":%zu",
                r->hashes, r->cdim,
                l->reduce == LSHMOE_REDUCE_PAD ? "pad" : "fold", l->reduce_dim, l->rounds,
                o->cp.residual_bits, r->bytes, r->wire_bytes);
        json_num(f, "ratio", (double)r->bytes / (double)r->wire_bytes);
        json_num(f, "rel_err", r->rel_err);
        json_num(f, "cosine", r->cosine);
        json_num(f, "enc_gbps", r->enc_gbps);
        json_num(f, "dec_gbps", r->dec_gbps);
        json_num(f, "memcpy_gbps", r->memcpy_gbps);
        fprintf(f, ",\"raw_segments\":%zu,\"segments\":%zu}", r->raw_segments, r->segments);
    }
    fputs("]}\n", f);
    int bad = ferror(f);
    return fclose(f) != 0 || bad ? -1 : 0;
}
