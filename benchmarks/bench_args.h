/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Command-line options of alltoall_perf (nccl-tests letters plus lshmoe's
 * own), its process-level helpers and its output (table and JSON), kept
 * apart from the benchmark loop so that the loop stays readable.
 * Parsing never touches MPI: it runs before MPI_Init, on every process, and
 * every process reaches the same verdict from the same argv.
 */
#ifndef LSHMOE_BENCH_ARGS_H
#define LSHMOE_BENCH_ARGS_H

#include <stddef.h>
#include <stdio.h>

#include "lshmoe.h"

typedef enum bench_transport {
    BENCH_TR_DEFAULT = 0,  /* mpi under a launcher with > 1 process, else self */
    BENCH_TR_SELF    = 1,
    BENCH_TR_MPI     = 2
} bench_transport_t;

typedef struct bench_opts {
    /* sizes: bytes per peer (-b/-e/-f) or a fixed token count (--tokens) */
    size_t            min_bytes, max_bytes;
    double            factor;
    size_t            tokens;          /* 0 = derive from -b/-e/-f          */
    size_t            hidden;
    int               hidden_set;      /* --hidden given (a .npy overrides)  */
    lshmoe_dtype_t    dtype;
    int               iters, warmup, check;
    const char       *json;            /* -J FILE or NULL                   */
    int               hashes, cdim, residual_bits;  /* LSHMOE_UNSET_INT = library's */
    const char       *data;            /* "clustered", "gaussian" or a path */
    size_t            centers;
    double            noise;
    int               baseline;
    bench_transport_t transport;
    int               ranks;           /* self transport only                */
    int               ranks_set;
    double            link_gbps, link_latency_us;   /* < 0 = not given       */
} bench_opts_t;

/*
 * The options every multi-rank benchmark shares: --transport self|mpi,
 * --ranks N (self only), --link-gbps G and --link-latency-us U (the
 * emulated link). Returns 1 when `a` is one of them and `v` is valid (the
 * field is set), -1 when `a` is one of them and `v` is not, 0 when `a` is
 * another option.
 */
typedef struct bench_launch_opts {
    bench_transport_t *transport;
    int               *ranks, *ranks_set;
    double            *link_gbps, *link_latency_us;
} bench_launch_opts_t;

int bench_parse_launch_opt(const char *a, const char *v, const bench_launch_opts_t *o);

/* Fills *o with the defaults listed in the usage text. */
void bench_opts_default(bench_opts_t *o);

/*
 * Parses argv into *o. Returns 0 on success, 1 if -h/--help was given
 * (usage printed to stdout), -1 on a bad flag or value: then a one-line
 * message naming it has been written into err (errlen bytes).
 */
int bench_parse(int argc, char **argv, bench_opts_t *o, char *err, size_t errlen);

/* Writes the usage text to `f` (a FILE *, kept as void * so that this
 * header needs no <stdio.h>). */
void bench_usage(void *f, const char *prog);

/* "1048576" -> 1048576, "1M" -> 1048576, "32K", "2G": nccl-tests' suffixes.
 * Returns 0 or -1 on a malformed value. */
int bench_parse_size(const char *s, size_t *out);

/* Strict numbers in [lo, hi] (0, or -1 for junk, trailing text or out of
 * range): atoi's silent 0 on "abc" would turn a typo into another run. */
int bench_parse_long(const char *s, long lo, long hi, long *out);
int bench_parse_double(const char *s, double lo, double hi, double *out);

/* JSON output: a string with RFC 8259 escapes; a number, NaN/Inf as null. */
/* Opens a benchmark's JSON object: {"tool", "version", "argv", "env" (every
 * LSHMOE_* variable in force); the caller appends ",..." and the "}". */
void bench_json_head(FILE *f, const char *tool, int argc, char **argv);
void bench_json_str(FILE *f, const char *s);
void bench_json_num(FILE *f, double v);

/* Token counts per peer of the sweep (-b..-e by -f, rounded down to whole
 * tokens of tb bytes, sizes below one token and repeats dropped), or the one
 * --tokens value. Returns how many were written to out (at most max). */
size_t bench_sizes(const bench_opts_t *o, size_t tb, size_t *out, size_t max);

/* Value of the first of the NULL-terminated env `names` that is set
 * (atoi), -1 if none: the launcher's process count or rank. */
int bench_launcher_env(const char *const *names);

/* getenv(name) as a double, 0 if unset. */
double bench_env_double(const char *name);

/* The median of v[0..n) (n > 0), sorting v in place. Benchmarks report
 * medians, not means: on a shared machine one descheduled iteration would
 * otherwise move the whole row. */
double bench_median(double *v, int n);

/* setenv(name, v) unless v < 0 (flag not given: keep the environment). */
void bench_set_env_double(const char *name, double v);

/* ---- output: the table on stdout and the JSON document (rank 0) ---- */

/* One result row, already reduced over the ranks (see docs/benchmarks.md,
 * "alltoall_perf", for every field). */
typedef struct bench_row {
    int            lsh;          /* 0 = plain, 1 = lshmoe                   */
    size_t         bytes;        /* per rank, all peers, original bytes     */
    size_t         tokens;       /* per peer                                */
    lshmoe_dtype_t dtype;
    size_t         hidden;
    double         time_us, algbw, busbw, wire_bytes, ratio, eff_bw;
    int            checked;      /* 0: rel_err, cosine, wrong are unknown   */
    double         rel_err, cosine;
    long long      wrong;
    double         hash_us, pack_us, exchange_us, unpack_us;
    double         speedup;      /* < 0 = none (null in JSON)               */
    /* segments per call, sums over the ranks (lshmoe_stats_t): compressed
     * ones by row format, grouped, refined; and raw ones */
    double         seg_by_format[LSHMOE_ROW_FORMATS], seg_grouped, seg_refined, seg_raw;
} bench_row_t;

/* What the preamble and the JSON header say about the run. */
typedef struct bench_meta {
    int                    argc;
    char                 **argv;
    const char            *transport;  /* "self" or "mpi" */
    int                    ranks;
    const lshmoe_config_t *cfg;        /* resolved by the compressed context */
    const char            *data;
    double                 link_gbps, link_latency_us;  /* effective values */
} bench_meta_t;

/* The column header line of the table (after the '#' preamble). */
void bench_print_header(void *f);
void bench_print_row(void *f, const bench_row_t *r);

/* Writes the whole JSON document (schema in docs/benchmarks.md) to path.
 * Returns 0, or -1 with errno set if the file cannot be written. */
int bench_write_json(const char *path, const bench_meta_t *m, const bench_row_t *rows,
                     size_t nrows);

#endif /* LSHMOE_BENCH_ARGS_H */
