/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * moe_perf: the MoE mode (lshmoe_moe.h) against the exact MoE exchange.
 * Shared between moe_perf.c (ranks, passes, reductions), moe_perf_model.c
 * (data, router, linear experts, the local reference) and moe_perf_io.c
 * (options, table, JSON). moe_perf.c's header comment has the procedure
 * and every column.
 */
#ifndef LSHMOE_MOE_PERF_H
#define LSHMOE_MOE_PERF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "benchmarks/bench_args.h"
#include "benchmarks/npy.h"
#include "lshmoe.h"
#include "lshmoe_moe.h"

#define MP_MAX_DATA   8
#define MP_MAX_HASHES 16
#define MP_MAX_ITERS  1000
#define MP_MAX_HIDDEN 8192  /* the experts are dense H x H fp32 matrices */
#define MP_LABEL_LEN  48

/* ---- options (moe_perf_io.c) ---- */

typedef struct mp_opts {
    bench_transport_t transport;
    int            ranks, ranks_set;
    int            experts, topk;
    size_t         tokens;         /* per rank                               */
    size_t         hidden;         /* synthetic data; a .npy sets its own    */
    lshmoe_dtype_t dtype;
    const char    *data[MP_MAX_DATA];
    int            ndata;
    size_t         centers;
    double         noise;
    int            hashes[MP_MAX_HASHES];
    int            nhashes;
    int            comps[3];       /* lshmoe_compensation_t                  */
    int            ncomps;
    int            cdim;           /* LSHMOE_UNSET_INT = the library's       */
    double         diag;           /* expert W = diag I + noise              */
    double         sigma, bias;    /* expert noise scale and bias std        */
    int            iters, warmup, check;
    const char    *json;
    double         link_gbps, link_latency_us;  /* < 0 = not given         */
    char          *data_buf;       /* the --data list, split in place        */
} mp_opts_t;

void mp_opts_default(mp_opts_t *o);
/* 0 ok, 1 help printed, -1 error (one line in err). */
int mp_parse(int argc, char **argv, mp_opts_t *o, char *err, size_t errlen);
void mp_opts_free(mp_opts_t *o);
const char *mp_comp_name(int comp);

/* ---- one data set, resolved in main() before the ranks start ---- */

typedef struct mp_data {
    const char  *spec;             /* as given to --data                     */
    char         label[MP_LABEL_LEN]; /* "clustered", "gaussian", file stem  */
    npy_matrix_t npy;              /* loaded .npy, else empty                */
    size_t       hidden;
} mp_data_t;

/* ---- the model of one rank (moe_perf_model.c) ---- */

typedef struct mp_model {
    size_t          h;
    int             nexp, topk;
    lshmoe_dtype_t  dt;
    double          diag, sigma, bias;
    int             nlocal;
    int32_t        *ids;           /* global ids of the local experts        */
    float         **w, **wt, **b;  /* per local expert: W, W^T (h x h), b    */
    /* scratch of the expert hooks (grown on demand) */
    float          *xa, *xb;
    size_t          cap_rows;
    double          fwd_s, bwd_s;  /* time inside the hooks                  */
    int             failed;        /* a hook ran out of memory               */
} mp_model_t;

/* Rank `me`'s tokens of data set d (fp32, ntok x h). 0 or -1 (memory). */
int mp_gen_tokens(const mp_data_t *d, const mp_opts_t *o, int me, size_t ntok, float *x);
/* Router: logits = rmsnorm(x) Wg, softmax, top-k, renormalised. 0 or -1. */
int mp_route(const float *x, size_t ntok, size_t h, int nexp, int topk, int32_t *idx,
             float *gw);
/* Weights of local experts ids[0..nlocal); 0 or -1 (out of memory). */
int mp_model_init(mp_model_t *m, size_t h, int nexp, int topk, lshmoe_dtype_t dt,
                  double diag, double sigma, double bias, int nlocal, const int32_t *ids);
void mp_model_free(mp_model_t *m);
/* The hooks, user = the mp_model_t. */
int mp_expert_fwd(int expert, const void *in, void *out, size_t rows, void *user,
                  void *stream);
int mp_expert_bwd(int expert, const void *in, const void *grad_out, void *grad_in,
                  size_t rows, void *user, void *stream);

/* Reference of the exact pass (compress 0) for a few tokens, computed
 * locally from the expert definitions with the numerics lshmoe_moe.h
 * specifies. Returns -1 on out of memory. */
typedef struct mp_check {
    double y_num, y_den, dx_num, dx_den, dg_num, dg_den;
    double y_diff_elems, elems;    /* y elements not bit-identical           */
    double tokens;
} mp_check_t;
int mp_reference_check(const mp_model_t *m, size_t ntok, const void *x, const void *dy,
                       const int32_t *idx, const float *gw, const void *y,
                       const void *dx, const float *dg, size_t nsample, mp_check_t *c);

/* ---- results (reduced over the ranks) ---- */

typedef struct mp_times {          /* medians over the timed iterations of
                                      the per-iteration max over ranks, ms  */
    double fwd, fb, expert, cluster, exchange;
    double fwd_min, fb_min;        /* the fastest timed pass (JSON only)     */
} mp_times_t;

typedef struct mp_row {
    int        data;               /* index into the data sets               */
    int        hashes, cdim, comp;
    double     slots, rows, rows_saved, slots_received, rows_sent;
    double     experts_compressed, experts_raw, experts_routed;
    double     bytes_plain, bytes_dispatch, bytes_ratio;
    double     centroid_err_max;
    double     out_err, dx_err, dgates_err;
    mp_times_t t, ex;              /* this pass, the exact pass              */
    /* combine: remote output bytes plain and as sent (row formats),
     * plain / sent, and the largest rank's combine_rel_error */
    double     bytes_comb_plain, bytes_combine, comb_ratio, combine_err_max;
} mp_row_t;

typedef struct mp_exact {          /* per data set                           */
    double     slots, rows, bytes_plain, bytes_dispatch;
    mp_times_t t;
    int        checked;
    mp_check_t check;
    double     y_err, dx_err, dg_err;  /* reference check, relative L2       */
} mp_exact_t;

typedef struct mp_meta {
    int                    argc;
    char                 **argv;
    const char            *transport;
    const char            *mpi_lib;
    int                    ranks;
    const mp_opts_t       *o;
    const mp_data_t       *data;
    const mp_exact_t      *exact;  /* [o->ndata]                             */
    const lshmoe_config_t *cfg;    /* a compressed context's resolved config */
    double                 link_gbps, link_latency_us;
} mp_meta_t;

void mp_print_preamble(FILE *f, const mp_meta_t *m);
void mp_print_exact(FILE *f, const mp_meta_t *m, int d);
void mp_print_header(FILE *f);
void mp_print_row(FILE *f, const mp_meta_t *m, const mp_row_t *r);
int mp_write_json(const char *path, const mp_meta_t *m, const mp_row_t *rows, size_t nrows);

/* ---- the ranks (moe_perf.c, moe_perf_pass.c) ---- */

#define MP_NTIMES 5  /* per timed pass: fwd, fwd+bwd, experts, cluster, exchange */

/* What every rank of this process shares (one rank under MPI). */
typedef struct shared {
    const mp_opts_t     *o;
    int                  argc;
    char               **argv;
    int                  use_mpi;
    char                 mpi_lib[256];
    mp_data_t            data[MP_MAX_DATA];
    lshmoe_self_world_t *worlds[2];  /* exact, compressed (self only) */
    int                  exit_code;  /* rank 0's */
} shared_t;

/* One rank's view. */
typedef struct rank_state {
    int                me, n;
    shared_t          *sh;
    const mp_opts_t   *o;
    lshmoe_ctx_t      *ctl, *exact, *lsh;
    size_t            *ones, *iota;
    /* the current data set */
    size_t             h, tb, T;
    void              *x, *dy, *y, *dx, *y_ex, *dx_ex, *y_tmp, *dx_tmp;
    float             *dg, *dg_ex, *dg_tmp, *gw;
    int32_t           *idx;
    mp_model_t         model;
    /* results, kept by rank 0 */
    mp_row_t          *rows;
    size_t             nrows;
    mp_exact_t         exact_res[MP_MAX_DATA];
    lshmoe_config_t    cfg;
} rank_state_t;

/* Per-rank numbers of one configuration; gathered and summed. */
typedef struct rank_rec {
    double slots, rows_recv, slots_recv, rows_sent, exp_cmp, exp_raw, bytes_plain, bytes_disp;
    double cent_err;
    double y_num, y_den, dx_num, dx_den, dg_num, dg_den;
    double nondet;
    double routed;  /* experts this rank routes at least one slot to */
    double bytes_comb_plain, bytes_comb, comb_err;  /* combine (comb_err: max) */
} rank_rec_t;

/* A failed lshmoe call ends the job (needs a rank_state_t *s in scope). */
#define MP_CHECK(call, what, ctx)                    \
    do {                                             \
        lshmoe_status_t st_ = (call);                \
        if (st_ != LSHMOE_OK)                        \
            mp_fatal(s, what, st_, ctx);             \
    } while (0)

/* Ends the whole job: MPI_Abort under MPI, the process on the self transport. */
void mp_die(const rank_state_t *s);
/* Prints a failed call with lshmoe_last_error(ctx) (the thread's if empty). */
void mp_report(const rank_state_t *s, const char *what, lshmoe_status_t st,
               const lshmoe_ctx_t *ctx);
/* mp_report(), then mp_die(). */
void mp_fatal(const rank_state_t *s, const char *what, lshmoe_status_t st,
              const lshmoe_ctx_t *ctx);
void *mp_xmalloc(const rank_state_t *s, size_t n);
/* Everyone's `len`-byte record into out[n * len], over the control context. */
void mp_allgather(rank_state_t *s, const void *rec, size_t len, void *out);
void mp_barrier(rank_state_t *s);
/* A failure every rank has seen alike: rank 0 reports it and ends the job. */
void mp_global_fail(rank_state_t *s, const char *msg);
/* world: 0 = control, 1 = exact, 2 = compressed; hashes 0 = compress 0. */
lshmoe_ctx_t *mp_make_ctx(rank_state_t *s, const lshmoe_comm_desc_t *desc0, int world,
                          int hashes);
lshmoe_moe_t *mp_make_layer(rank_state_t *s, lshmoe_ctx_t *ctx, int comp);
void mp_attach_experts(rank_state_t *s, lshmoe_moe_t *moe, lshmoe_ctx_t *ctx);
void mp_run_config(rank_state_t *s, lshmoe_moe_t *moe, lshmoe_ctx_t *ctx, void *y, void *dx,
                   float *dg, lshmoe_moe_stats_t *st, mp_times_t *tm, int *nondet);
rank_rec_t mp_reduce(rank_state_t *s, const lshmoe_moe_stats_t *st, int with_err, int nondet);
void mp_check_counts(rank_state_t *s, const rank_rec_t *g, const char *what);
double mp_rel(double num, double den);

#endif /* LSHMOE_MOE_PERF_H */
