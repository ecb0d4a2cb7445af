/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchmarks/bench_args.h"

void bench_opts_default(bench_opts_t *o)
{
    memset(o, 0, sizeof *o);
    /* 1 MiB per peer = 512 bf16 tokens of width 1024: big enough that the
     * payload, not the per-call overhead, sets the time on an emulated link. */
    o->min_bytes = o->max_bytes = (size_t)1 << 20;
    o->factor = 2.0;
    o->hidden = 1024;
    o->dtype = LSHMOE_DTYPE_BF16;
    o->iters = 20;
    o->warmup = 5;
    o->check = 1;
    o->hashes = o->cdim = o->residual_bits = LSHMOE_UNSET_INT;
    o->data = "clustered";
    o->centers = 32;
    o->noise = 0.1;
    o->ranks = 4;
    o->link_gbps = o->link_latency_us = -1.0;
}

void bench_usage(void *fp, const char *prog)
{
    FILE *f = fp;
    fprintf(f,
        "usage: %s [options]\n"
        "sizes (bytes of token data per peer, rounded down to whole tokens):\n"
        "  -b MIN            smallest size (default 1M; suffixes K, M, G)\n"
        "  -e MAX            largest size (default 1M)\n"
        "  -f FACTOR         multiply the size by FACTOR each step (default 2)\n"
        "  --tokens N        N tokens per peer, one size (overrides -b/-e/-f)\n"
        "timing:\n"
        "  -n ITERS          timed iterations (default 20)\n"
        "  -w WARMUP         untimed warm-up iterations (default 5)\n"
        "  -c 0|1            check results in a separate untimed call after the timed ones\n"
        "                    (default 1)\n"
        "  -J FILE           also write the rows as JSON to FILE (rank 0)\n"
        "tokens:\n"
        "  --hidden H        elements per token (default 1024; a .npy sets it)\n"
        "  --dtype T         fp32|fp16|bf16 (default bf16)\n"
        "  --data D          clustered|gaussian|FILE.npy (default clustered)\n"
        "  --centers K       clustered: centers per segment (default 32)\n"
        "  --noise S         clustered: noise std around unit centers (default 0.1)\n"
        "lshmoe configuration (default: LSHMOE_* environment, then library default):\n"
        "  --hashes L        cross-polytope hash functions (1..16)\n"
        "  --cdim C          cross-polytope dimension (power of two, 2..256)\n"
        "  --residual-bits B 0|4|8\n"
        "  --baseline        also time the plain all-to-all (compress 0)\n"
        "transport:\n"
        "  --transport T     self|mpi (default mpi under mpirun with > 1 rank)\n"
        "  --ranks N         self transport: rank threads (1..64, default 4)\n"
        "  --link-gbps G     emulated link Gb/s per rank (sets LSHMOE_LINK_GBPS; 0 = off)\n"
        "  --link-latency-us U  emulated per-message latency (LSHMOE_LINK_LATENCY_US)\n"
        "  -h, --help        this text\n", prog);
}

int bench_parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    if (s == NULL || *s == '\0' || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s)
        return -1;
    unsigned shift = 0;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: return -1;
    }
    if (*end != '\0' || v > (~0ull >> shift))
        return -1;
    *out = (size_t)(v << shift);
    return 0;
}

/* Strict integer in [lo, hi]: atoi's silent 0 on "abc" would turn a typo
 * into a different experiment. */
int bench_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int bench_parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

int bench_parse_launch_opt(const char *a, const char *v, const bench_launch_opts_t *o)
{
    long l;
    double d;
    if (!strcmp(a, "--transport")) {
        if (!strcmp(v, "self")) *o->transport = BENCH_TR_SELF;
        else if (!strcmp(v, "mpi")) *o->transport = BENCH_TR_MPI;
        else return -1;
    } else if (!strcmp(a, "--ranks")) {
        if (bench_parse_long(v, 1, 64, &l) != 0) return -1;
        *o->ranks = (int)l;
        *o->ranks_set = 1;
    } else if (!strcmp(a, "--link-gbps")) {
        if (bench_parse_double(v, 0.0, 1e6, &d) != 0) return -1;
        *o->link_gbps = d;
    } else if (!strcmp(a, "--link-latency-us")) {
        if (bench_parse_double(v, 0.0, 1e9, &d) != 0) return -1;
        *o->link_latency_us = d;
    } else {
        return 0;
    }
    return 1;
}

int bench_parse(int argc, char **argv, bench_opts_t *o, char *err, size_t errlen)
{
    const bench_launch_opts_t lo = {&o->transport, &o->ranks, &o->ranks_set, &o->link_gbps,
                                    &o->link_latency_us};
    int launch;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            bench_usage(stdout, argv[0]);
            return 1;
        }
        if (!strcmp(a, "--baseline")) {
            o->baseline = 1;
            continue;
        }
        if (i + 1 >= argc)
            return fail(err, errlen, "unknown option or missing value: '%s'", a);
        const char *v = argv[++i];
        long l;
        double d;
#define BAD() fail(err, errlen, "bad value for %s: '%s'", a, v)
        if (!strcmp(a, "-b") || !strcmp(a, "-e")) {
            size_t s;
            if (bench_parse_size(v, &s) != 0 || s == 0)
                return BAD();
            *(a[1] == 'b' ? &o->min_bytes : &o->max_bytes) = s;
        } else if (!strcmp(a, "-f")) {
            if (bench_parse_double(v, 1.0 + 1e-9, 1e6, &o->factor) != 0)
                return fail(err, errlen, "bad value for -f: '%s' (need a factor > 1)", v);
        } else if (!strcmp(a, "-n")) {
            if (bench_parse_long(v, 1, 1000000, &l) != 0) return BAD();
            o->iters = (int)l;
        } else if (!strcmp(a, "-w")) {
            if (bench_parse_long(v, 0, 1000000, &l) != 0) return BAD();
            o->warmup = (int)l;
        } else if (!strcmp(a, "-c")) {
            if (bench_parse_long(v, 0, 1, &l) != 0) return BAD();
            o->check = (int)l;
        } else if (!strcmp(a, "-J")) {
            o->json = v;
        } else if (!strcmp(a, "--tokens")) {
            if (bench_parse_long(v, 1, 1L << 24, &l) != 0) return BAD();
            o->tokens = (size_t)l;
        } else if (!strcmp(a, "--hidden")) {
            if (bench_parse_long(v, 1, 65536, &l) != 0) return BAD();
            o->hidden = (size_t)l;
            o->hidden_set = 1;
        } else if (!strcmp(a, "--dtype")) {
            if (!strcmp(v, "fp32")) o->dtype = LSHMOE_DTYPE_FP32;
            else if (!strcmp(v, "fp16")) o->dtype = LSHMOE_DTYPE_FP16;
            else if (!strcmp(v, "bf16")) o->dtype = LSHMOE_DTYPE_BF16;
            else return BAD();
        } else if (!strcmp(a, "--hashes")) {
            if (bench_parse_long(v, 1, 16, &l) != 0) return BAD();
            o->hashes = (int)l;
        } else if (!strcmp(a, "--cdim")) {
            if (bench_parse_long(v, 2, 256, &l) != 0 || (l & (l - 1)) != 0)
                return fail(err, errlen, "bad value for --cdim: '%s' (power of two 2..256)", v);
            o->cdim = (int)l;
        } else if (!strcmp(a, "--residual-bits")) {
            if (bench_parse_long(v, 0, 8, &l) != 0 || (l != 0 && l != 4 && l != 8))
                return fail(err, errlen, "bad value for --residual-bits: '%s' (0, 4 or 8)", v);
            o->residual_bits = (int)l;
        } else if (!strcmp(a, "--data")) {
            o->data = v;
        } else if (!strcmp(a, "--centers")) {
            if (bench_parse_long(v, 1, 1L << 24, &l) != 0) return BAD();
            o->centers = (size_t)l;
        } else if (!strcmp(a, "--noise")) {
            if (bench_parse_double(v, 0.0, 1e6, &d) != 0) return BAD();
            o->noise = d;
        } else if ((launch = bench_parse_launch_opt(a, v, &lo)) != 0) {
            if (launch < 0) return BAD();
        } else {
            return fail(err, errlen, "unknown option '%s'", a);
        }
#undef BAD
    }
    if (o->min_bytes > o->max_bytes)
        return fail(err, errlen, "-b %zu is larger than -e %zu", o->min_bytes, o->max_bytes);
    if (o->transport == BENCH_TR_MPI && o->ranks_set)
        return fail(err, errlen, "--ranks applies to the self transport only "
                                 "(mpirun -np sets the MPI ranks)");
    return 0;
}

/* ---- process-level helpers ---- */

/* Token counts per peer of the sweep: -b..-e by -f, or --tokens. */
size_t bench_sizes(const bench_opts_t *o, size_t tb, size_t *out, size_t max)
{
    if (o->tokens)
        return out[0] = o->tokens, 1;
    size_t k = 0;
    for (double b = (double)o->min_bytes; b <= (double)o->max_bytes && k < max; b *= o->factor) {
        size_t t = (size_t)b / tb;  /* rounded down to whole tokens */
        if (t > 0 && (k == 0 || out[k - 1] != t))
            out[k++] = t;
    }
    return k;
}

double bench_env_double(const char *name)
{
    const char *v = getenv(name);
    return v ? atof(v) : 0.0;
}

/* Process count and rank that a launcher (mpirun, mpiexec) gave us, so that
 * the transport default and argument errors need no MPI_Init. */
int bench_launcher_env(const char *const *names)
{
    for (; *names; names++) {
        const char *v = getenv(*names);
        if (v != NULL)
            return atoi(v);
    }
    return -1;
}

void bench_set_env_double(const char *name, double v)
{
    if (v < 0)
        return;  /* not given: keep what the environment says */
    char buf[64];
    snprintf(buf, sizeof buf, "%.17g", v);
    setenv(name, buf, 1);
}

/* ---- output ---- */

void bench_print_header(void *fp)
{
    fprintf(fp, "#%6s %12s %8s %5s %6s %11s %8s %8s %12s %7s %8s %9s %7s %6s %9s %9s %11s %9s %7s\n",
            "mode", "bytes", "tokens", "dtype", "hidden", "time_us", "algbw", "busbw",
            "wire_bytes", "ratio", "eff_bw", "rel_err", "cosine", "wrong", "hash_us",
            "pack_us", "exchange_us", "unpack_us", "speedup");
    fprintf(fp, "#%6s %12s %8s %5s %6s %11s %8s %8s %12s %7s %8s %9s %7s %6s %9s %9s %11s %9s %7s\n",
            "", "(B)", "(/peer)", "", "", "(us)", "(GB/s)", "(GB/s)", "(B)", "", "(GB/s)", "",
            "", "", "(us)", "(us)", "(us)", "(us)", "");
}

void bench_print_row(void *fp, const bench_row_t *r)
{
    FILE *f = fp;
    fprintf(f, " %6s %12zu %8zu %5s %6zu %11.1f %8.3f %8.3f %12.0f %7.2f %8.3f ",
            r->lsh ? "lshmoe" : "plain", r->bytes, r->tokens, lshmoe_dtype_name(r->dtype),
            r->hidden, r->time_us, r->algbw, r->busbw, r->wire_bytes, r->ratio, r->eff_bw);
    if (r->checked)
        fprintf(f, "%9.2e %7.4f %6lld ", r->rel_err, r->cosine, r->wrong);
    else
        fprintf(f, "%9s %7s %6s ", "n/a", "n/a", "n/a");
    fprintf(f, "%9.1f %9.1f %11.1f %9.1f ", r->hash_us, r->pack_us, r->exchange_us,
            r->unpack_us);
    if (r->speedup >= 0)
        fprintf(f, "%7.2f\n", r->speedup);
    else
        fprintf(f, "%7s\n", "-");
    fflush(f);
}

/* JSON string with the escapes RFC 8259 requires. */
void bench_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* A JSON number; NaN and Inf are not JSON, so they become null. */
void bench_json_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.9g", v);
    else
        fputs("null", f);
}

extern char **environ;

void bench_json_head(FILE *f, const char *tool, int argc, char **argv)
{
    fputs("{\"tool\":", f);
    bench_json_str(f, tool);
    fputs(",\"version\":", f);
    bench_json_str(f, lshmoe_version_string());
    fputs(",\"argv\":[", f);
    for (int i = 0; i < argc; i++) {
        if (i)
            fputc(',', f);
        bench_json_str(f, argv[i]);
    }
    /* Every LSHMOE_* parameter in force, so a JSON file alone says how the
     * library was configured (the --link-* flags show up here too). */
    fputs("],\"env\":{", f);
    int first = 1;
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (strncmp(*e, "LSHMOE_", 7) != 0 || eq == NULL)
            continue;
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(eq - *e), *e);
        if (!first)
            fputc(',', f);
        first = 0;
        bench_json_str(f, key);
        fputc(':', f);
        bench_json_str(f, eq + 1);
    }
    fputc('}', f);
}

int bench_write_json(const char *path, const bench_meta_t *m, const bench_row_t *rows,
                     size_t nrows)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    bench_json_head(f, "alltoall_perf", m->argc, m->argv);
    fputs(",\"transport\":", f);
    bench_json_str(f, m->transport);
    fprintf(f, ",\"ranks\":%d,\"config\":{\"hashes\":%d,\"cdim\":%d,\"reduce\":", m->ranks,
            (int)m->cfg->num_hashes, (int)m->cfg->cdim);
    bench_json_str(f, m->cfg->reduce == LSHMOE_REDUCE_PAD ? "pad" : "fold");
    fprintf(f, ",\"reduce_dim\":%d,\"rounds\":%d,\"residual_bits\":%d,\"min_ratio\":",
            (int)m->cfg->reduce_dim, (int)m->cfg->rounds, (int)m->cfg->residual_bits);
    bench_json_num(f, m->cfg->min_ratio);
    fputs("},\"data\":", f);
    bench_json_str(f, m->data);
    fputs(",\"link_gbps\":", f);
    fprintf(f, "%.6f", m->link_gbps);
    fputs(",\"link_latency_us\":", f);
    fprintf(f, "%.6f", m->link_latency_us);
    fputs(",\"rows\":[", f);
    for (size_t i = 0; i < nrows; i++) {
        const bench_row_t *r = &rows[i];
        fprintf(f, "%s{\"mode\":\"%s\",\"bytes\":%zu,\"tokens\":%zu,\"dtype\":\"%s\","
                "\"hidden\":%zu,\"time_us\":", i ? "," : "", r->lsh ? "lshmoe" : "plain",
                r->bytes, r->tokens, lshmoe_dtype_name(r->dtype), r->hidden);
        bench_json_num(f, r->time_us);
        fputs(",\"algbw\":", f);
        bench_json_num(f, r->algbw);
        fputs(",\"busbw\":", f);
        bench_json_num(f, r->busbw);
        fputs(",\"wire_bytes\":", f);
        bench_json_num(f, r->wire_bytes);
        fputs(",\"ratio\":", f);
        bench_json_num(f, r->ratio);
        fputs(",\"eff_bw\":", f);
        bench_json_num(f, r->eff_bw);
        /* -c 0: no check ran, so these are unknown, not zero */
        fputs(",\"rel_err\":", f);
        bench_json_num(f, r->checked ? r->rel_err : NAN);
        fputs(",\"cosine\":", f);
        bench_json_num(f, r->checked ? r->cosine : NAN);
        if (r->checked)
            fprintf(f, ",\"wrong\":%lld", r->wrong);
        else
            fputs(",\"wrong\":null", f);
        fputs(",\"hash_us\":", f);
        bench_json_num(f, r->hash_us);
        fputs(",\"pack_us\":", f);
        bench_json_num(f, r->pack_us);
        fputs(",\"exchange_us\":", f);
        bench_json_num(f, r->exchange_us);
        fputs(",\"unpack_us\":", f);
        bench_json_num(f, r->unpack_us);
        fputs(",\"speedup\":", f);
        bench_json_num(f, r->speedup >= 0 ? r->speedup : NAN);
        fputs(",\"segments_by_format\":[", f);
        for (int k = 0; k < LSHMOE_ROW_FORMATS; k++) {
            if (k > 0)
                fputc(',', f);
            bench_json_num(f, r->seg_by_format[k]);
        }
        fputs("],\"segments_grouped\":", f);
        bench_json_num(f, r->seg_grouped);
        fputs(",\"segments_refined\":", f);
        bench_json_num(f, r->seg_refined);
        fputs(",\"segments_raw\":", f);
        bench_json_num(f, r->seg_raw);
        fputc('}', f);
    }
    fputs("]}\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return -1;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
