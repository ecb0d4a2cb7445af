/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * codec_perf's shared types, and its options and output (codec_perf_io.c),
 * kept apart from the timing loop (codec_perf.c) as bench_args.c is for
 * alltoall_perf.
 */
#ifndef LSHMOE_BENCH_CODEC_PERF_H
#define LSHMOE_BENCH_CODEC_PERF_H

#include <stddef.h>

#include "lshmoe/codec.h"

#define MAX_LIST 64  /* entries of --hashes / --cdims (ranges expanded) */

typedef struct opts {
    size_t         tokens, hidden, centers, segment;  /* segment 0: one segment */
    int            tokens_set, hidden_set;
    double         noise;
    lshmoe_dtype_t dtype;
    const char    *data, *json;
    int            iters, warmup;
    int            hashes[MAX_LIST], cdims[MAX_LIST];
    size_t         nhashes, ncdims;
    lshmoe_codec_params_t cp;  /* lsh.num_hashes / lsh.cdim set per row */
    int            codecs[MAX_LIST];   /* lshmoe_codec_mode_t, --codecs    */
    size_t         ncodecs;
    double         budgets[MAX_LIST];  /* --max-error: budget-mode rows     */
    size_t         nbudgets;
    int            kmeans;             /* --kmeans: Lloyd iterations of the
                                          reference row (0: no such row)   */
} opts_t;

/* The name of a codec mode ("lsh", "budget", "int4", ...), from the
 * LSHMOE_CODEC parameter's choices; its index in them is the mode. */
const char *cp_codec_name(int mode, char *buf, size_t n);

/* One table / JSON row: totals over all segments of the data set. */
typedef struct row {
    int    codec;              /* lshmoe_codec_mode_t; -1: k-means reference */
    double budget;             /* max_error of the row (guard or budget)    */
    double passes;             /* search: token rows visited / tokens       */
    double refine_evals;       /* refinement distance evaluations / token   */
    char   choices[320];       /* budget: "name:segments ..." by count      */
    int    hashes, cdim;
    size_t bytes, wire_bytes, segments, raw_segments;
    double rel_err, cosine, enc_gbps, dec_gbps, memcpy_gbps;
} row_t;

/* Buffers shared by every row: the tokens as the sender holds them (already
 * rounded to the dtype) and where each segment starts in them and on the
 * wire. Every segment gets its own worst-case wire slot, as it would in a
 * send buffer, so that a segment's length never depends on another's. */
typedef struct bench {
    size_t  n, h, tb, bytes, nseg, wire_cap;
    char   *in, *out, *copy, *wire;
    float  *ref, *back;  /* in and out widened to float, for the error */
    size_t *seg_tok, *wire_off, *wire_len;
} bench_t;

/* The k-means reference row (codec_perf_kmeans.c): per segment, k-means
 * with rows_per_seg[s] clusters (0 or >= the segment's tokens: raw),
 * o->kmeans Lloyd iterations. Returns 0, or -1 after printing why. */
int cp_kmeans_row(const bench_t *b, const opts_t *o, const size_t *rows_per_seg,
                  int hashes, int cdim, row_t *r);

/* Parses argv into *o (which holds the defaults). Returns 0, 1 after -h
 * (usage on stdout), or -1 after printing one line to stderr. */
int cp_parse(int argc, char **argv, opts_t *o);

/* Prints "codec_perf: <message>" as one line to stderr; returns -1. */
int cp_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The '#' preamble and column header, then one row; both flush stdout. */
void cp_print_preamble(const opts_t *o, const bench_t *b);
void cp_print_row(const row_t *r);

/* Writes the JSON document (schema in docs/benchmarks.md) to o->json.
 * Returns 0, or -1 with errno set. */
int cp_write_json(const opts_t *o, const bench_t *b, int argc, char **argv,
                  const row_t *rows, size_t nrows);

#endif /* LSHMOE_BENCH_CODEC_PERF_H */
