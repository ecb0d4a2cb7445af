/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * moe_perf's collective plumbing: failing the job, the control-context
 * barrier and allgather, contexts and layers, one pass and one timed
 * configuration, and the reduction of the per-rank statistics.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchmarks/moe_perf.h"
#include "lshmoe.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/timer.h"
#include "lshmoe_moe.h"

#ifndef BENCH_HAVE_MPI
#define BENCH_HAVE_MPI 0
#endif
#if BENCH_HAVE_MPI
#include <mpi.h>
#endif

/* Ends the whole job: MPI_Abort under MPI, the process on the self transport. */
void mp_die(const rank_state_t *s)
{
    fflush(NULL);
#if BENCH_HAVE_MPI
    if (s->sh->use_mpi)
        MPI_Abort(MPI_COMM_WORLD, 1);
#endif
    (void)s;
    _exit(1);
}

void mp_report(const rank_state_t *s, const char *what, lshmoe_status_t st,
               const lshmoe_ctx_t *ctx)
{
    const char *msg = lshmoe_last_error(ctx);
    if (ctx != NULL && (msg == NULL || !msg[0]))
        msg = lshmoe_last_error(NULL);
    fprintf(stderr, "moe_perf: rank %d: %s: %s: %s\n", s->me, what, lshmoe_status_name(st),
            msg ? msg : "");
    fflush(stderr);
}

void mp_fatal(const rank_state_t *s, const char *what, lshmoe_status_t st,
              const lshmoe_ctx_t *ctx)
{
    mp_report(s, what, st, ctx);
    mp_die(s);
}

void *mp_xmalloc(const rank_state_t *s, size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        mp_fatal(s, "allocating buffers", LSHMOE_ERR_NO_MEMORY, NULL);
    return p;
}

/* Everyone's `len`-byte record into out[n * len], over the control context. */
void mp_allgather(rank_state_t *s, const void *rec, size_t len, void *out)
{
    char *rep = mp_xmalloc(s, (size_t)s->n * len);
    for (int p = 0; p < s->n; p++)
        memcpy(rep + (size_t)p * len, rec, len);
    lshmoe_status_t st = lshmoe_alltoallv(s->ctl, rep, s->ones, s->iota, out, s->ones,
                                          s->iota, LSHMOE_DTYPE_BYTES, len, NULL);
    free(rep);
    if (st != LSHMOE_OK)
        mp_fatal(s, "control allgather", st, s->ctl);
}

void mp_barrier(rank_state_t *s)
{
    char b[1] = {0}, *out = mp_xmalloc(s, (size_t)s->n);
    mp_allgather(s, b, 1, out);
    free(out);
}

/* A global inconsistency every rank has seen alike: rank 0 reports it and
 * ends the job; the others wait in their next collective to be ended. */
void mp_global_fail(rank_state_t *s, const char *msg)
{
    if (s->me != 0)
        return;
    fprintf(stderr, "moe_perf: FAILED: %s\n", msg);
    mp_die(s);
}

/* world: 0 = control, 1 = exact, 2 = compressed. */
lshmoe_ctx_t *mp_make_ctx(rank_state_t *s, const lshmoe_comm_desc_t *desc0, int world,
                          int hashes)
{
    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    lshmoe_comm_desc_t d = *desc0;
    lshmoe_ctx_t *ctx = NULL;
    if (!s->sh->use_mpi && world > 0)
        d.native = s->sh->worlds[world - 1];
    cfg.compress = hashes > 0;
    if (hashes > 0) {
        cfg.num_hashes = hashes;
        cfg.cdim = s->o->cdim;
    }
    lshmoe_status_t st = lshmoe_ctx_create(&d, &cfg, &ctx);
    if (st != LSHMOE_OK)
        mp_fatal(s, "lshmoe_ctx_create", st, NULL);
    return ctx;
}

lshmoe_moe_t *mp_make_layer(rank_state_t *s, lshmoe_ctx_t *ctx, int comp)
{
    lshmoe_moe_config_t c = LSHMOE_MOE_CONFIG_INITIALIZER;
    lshmoe_moe_t *moe = NULL;
    c.num_experts = s->o->experts;
    c.topk = s->o->topk;
    c.dtype = s->o->dtype;
    c.hidden = s->h;
    c.compensation = comp;
    MP_CHECK(lshmoe_moe_create(ctx, &c, &moe), "lshmoe_moe_create", ctx);
    return moe;
}

/* Registers the experts; builds their weights on the first layer of a data set. */
void mp_attach_experts(rank_state_t *s, lshmoe_moe_t *moe, lshmoe_ctx_t *ctx)
{
    int count = 0;
    const int32_t *ids = NULL;
    MP_CHECK(lshmoe_moe_local_experts(moe, &count, &ids), "lshmoe_moe_local_experts", ctx);
    if (s->model.w == NULL &&
        mp_model_init(&s->model, s->h, s->o->experts, s->o->topk, s->o->dtype, s->o->diag,
                      s->o->sigma, s->o->bias, count, ids) != 0)
        mp_fatal(s, "building the experts", LSHMOE_ERR_NO_MEMORY, NULL);
    if (count != s->model.nlocal || (count > 0 && memcmp(ids, s->model.ids,
                                                         (size_t)count * sizeof *ids) != 0))
        mp_fatal(s, "local experts changed between layers of one placement",
                 LSHMOE_ERR_INTERNAL, NULL);
    MP_CHECK(lshmoe_moe_set_expert(moe, LSHMOE_MOE_ALL_EXPERTS, mp_expert_fwd, mp_expert_bwd,
                                   &s->model), "lshmoe_moe_set_expert", ctx);
}

/* One pass; times in t[0..MP_NTIMES): fwd, fwd+bwd, experts, cluster, exchange (s). */
static void run_pass(rank_state_t *s, lshmoe_moe_t *moe, lshmoe_ctx_t *ctx, void *y, void *dx,
                     float *dg, double *t, lshmoe_moe_stats_t *st)
{
    lshmoe_moe_handle_t *hd = NULL;
    lshmoe_status_t rc = lshmoe_moe_layout(moe, s->T, s->idx, s->gw, &hd);
    if (rc != LSHMOE_OK) {
        mp_report(s, "lshmoe_moe_layout", rc, ctx);
        /* join the dispatch so that the peers fail instead of waiting */
        lshmoe_moe_dispatch(moe, NULL, s->x, NULL);
        mp_die(s);
    }
    s->model.fwd_s = s->model.bwd_s = 0.0;
    mp_barrier(s);
    double t0 = lshmoe_now();
    MP_CHECK(lshmoe_moe_dispatch(moe, hd, s->x, NULL), "lshmoe_moe_dispatch", ctx);
    MP_CHECK(lshmoe_moe_combine(moe, hd, y, NULL), "lshmoe_moe_combine", ctx);
    double t1 = lshmoe_now();
    MP_CHECK(lshmoe_moe_combine_backward(moe, hd, s->dy, dg, NULL), "lshmoe_moe_combine_backward",
             ctx);
    MP_CHECK(lshmoe_moe_dispatch_backward(moe, hd, dx, NULL), "lshmoe_moe_dispatch_backward", ctx);
    double t2 = lshmoe_now();
    lshmoe_moe_stats_t mst = LSHMOE_MOE_STATS_INITIALIZER;
    MP_CHECK(lshmoe_moe_stats_get(hd, &mst), "lshmoe_moe_stats_get", ctx);
    lshmoe_moe_handle_destroy(hd);
    t[0] = t1 - t0;
    t[1] = t2 - t0;
    t[2] = s->model.fwd_s + s->model.bwd_s;
    t[3] = mst.time_cluster_s;
    t[4] = mst.time_exchange_s;
    if (st != NULL)
        *st = mst;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/*
 * -w untimed passes, the checked pass (outputs into y/dx/dg, statistics
 * into *st), and -n timed passes. The warm-up comes first so that SCALED
 * compensation is checked with the slope its earlier passes fitted; *tm gets, per quantity, the median over the timed
 * passes of the max over ranks, in ms (for the two totals also the
 * minimum). *nondet: whether the last timed pass's out/dx differ from the
 * checked pass's on this rank.
 */
void mp_run_config(rank_state_t *s, lshmoe_moe_t *moe, lshmoe_ctx_t *ctx, void *y, void *dx,
                   float *dg, lshmoe_moe_stats_t *st, mp_times_t *tm, int *nondet)
{
    const mp_opts_t *o = s->o;
    double t[MP_NTIMES];
    for (int i = 0; i < o->warmup; i++)
        run_pass(s, moe, ctx, s->y_tmp, s->dx_tmp, s->dg_tmp, t, NULL);
    run_pass(s, moe, ctx, y, dx, dg, t, st);
    size_t nt = (size_t)o->iters * MP_NTIMES;
    double *mine = mp_xmalloc(s, nt * sizeof(double));
    double *all = mp_xmalloc(s, (size_t)s->n * nt * sizeof(double));
    for (int i = 0; i < o->iters; i++)
        run_pass(s, moe, ctx, s->y_tmp, s->dx_tmp, s->dg_tmp, mine + (size_t)i * MP_NTIMES, NULL);
    size_t bytes = s->T * s->tb;
    *nondet = memcmp(y, s->y_tmp, bytes) != 0 || memcmp(dx, s->dx_tmp, bytes) != 0;
    mp_allgather(s, mine, nt * sizeof(double), all);
    double *col = mp_xmalloc(s, (size_t)o->iters * sizeof(double));
    double med[MP_NTIMES], lo[MP_NTIMES];
    for (int q = 0; q < MP_NTIMES; q++) {
        for (int i = 0; i < o->iters; i++) {
            double m = 0.0;
            for (int p = 0; p < s->n; p++)
                m = fmax(m, all[(size_t)p * nt + (size_t)i * MP_NTIMES + (size_t)q]);
            col[i] = m;
        }
        qsort(col, (size_t)o->iters, sizeof(double), cmp_double);
        lo[q] = 1e3 * col[0];
        med[q] = 1e3 * (o->iters % 2 ? col[o->iters / 2]
                                     : 0.5 * (col[o->iters / 2 - 1] + col[o->iters / 2]));
    }
    tm->fwd = med[0];
    tm->fb = med[1];
    tm->expert = med[2];
    tm->cluster = med[3];
    tm->exchange = med[4];
    tm->fwd_min = lo[0];
    tm->fb_min = lo[1];
    free(col);
    free(mine);
    free(all);
}

/* Sums |got - want|^2 and |want|^2 over n elements of dtype dt, row by row. */
static void err_acc(const void *got, const void *want, size_t n, lshmoe_dtype_t dt, float *ga,
                    float *gb, size_t h, double *num, double *den)
{
    size_t es = lshmoe_dtype_size(dt);
    for (size_t off = 0; off < n; off += h) {
        lshmoe_row_to_f32((const char *)got + off * es, dt, h, ga);
        lshmoe_row_to_f32((const char *)want + off * es, dt, h, gb);
        for (size_t k = 0; k < h; k++) {
            double d = (double)ga[k] - (double)gb[k];
            *num += d * d;
            *den += (double)gb[k] * gb[k];
        }
    }
}

/* This rank's record of the checked pass (errors against the exact pass's
 * buffers with with_err), gathered: sums over the ranks, cent_err the max. */
rank_rec_t mp_reduce(rank_state_t *s, const lshmoe_moe_stats_t *st, int with_err, int nondet)
{
    rank_rec_t r, *all = mp_xmalloc(s, (size_t)s->n * sizeof r), sum;
    memset(&r, 0, sizeof r);
    r.slots = (double)st->slots;
    r.rows_recv = (double)st->rows_received;
    r.slots_recv = (double)st->slots_received;
    r.rows_sent = (double)st->rows_sent;
    r.exp_cmp = (double)st->experts_compressed;
    r.exp_raw = (double)st->experts_raw;
    r.bytes_plain = (double)st->bytes_remote_plain;
    r.bytes_disp = (double)st->bytes_remote_dispatch;
    r.cent_err = st->centroid_rel_error;
    r.bytes_comb_plain = (double)st->bytes_remote_combine_plain;
    r.bytes_comb = (double)st->bytes_remote_combine;
    r.comb_err = st->combine_rel_error;
    r.nondet = nondet;
    char *seen = mp_xmalloc(s, (size_t)s->o->experts);
    memset(seen, 0, (size_t)s->o->experts);
    for (size_t i = 0; i < s->T * (size_t)s->o->topk; i++)
        if (s->idx[i] >= 0 && !seen[s->idx[i]]) {
            seen[s->idx[i]] = 1;
            r.routed += 1;
        }
    free(seen);
    if (with_err) {
        float *ga = mp_xmalloc(s, s->h * sizeof(float));
        float *gb = mp_xmalloc(s, s->h * sizeof(float));
        size_t n = s->T * s->h;
        err_acc(s->y, s->y_ex, n, s->o->dtype, ga, gb, s->h, &r.y_num, &r.y_den);
        err_acc(s->dx, s->dx_ex, n, s->o->dtype, ga, gb, s->h, &r.dx_num, &r.dx_den);
        for (size_t i = 0; i < s->T * (size_t)s->o->topk; i++) {
            double dd = (double)s->dg[i] - (double)s->dg_ex[i];
            r.dg_num += dd * dd;
            r.dg_den += (double)s->dg_ex[i] * s->dg_ex[i];
        }
        free(ga);
        free(gb);
    }
    mp_allgather(s, &r, sizeof r, all);
    memset(&sum, 0, sizeof sum);
    double *acc = (double *)&sum, cmax = 0.0, combmax = 0.0;
    for (int p = 0; p < s->n; p++) {
        const double *v = (const double *)&all[p];
        for (size_t k = 0; k < sizeof sum / sizeof(double); k++)
            acc[k] += v[k];
        cmax = fmax(cmax, all[p].cent_err);
        combmax = fmax(combmax, all[p].comb_err);
    }
    sum.cent_err = cmax;  /* a ratio: the max over ranks, not the sum */
    sum.comb_err = combmax;
    free(all);
    return sum;
}

/* Invariants of any pass: every slot is received once, every row sent is received. */
void mp_check_counts(rank_state_t *s, const rank_rec_t *g, const char *what)
{
    char msg[256];
    if (g->slots_recv != g->slots || g->rows_recv != g->rows_sent || g->rows_recv > g->slots) {
        snprintf(msg, sizeof msg, "%s: inconsistent statistics over the ranks: slots %.0f, "
                 "slots received %.0f, rows sent %.0f, rows received %.0f", what, g->slots,
                 g->slots_recv, g->rows_sent, g->rows_recv);
        mp_global_fail(s, msg);
    }
}

double mp_rel(double num, double den)
{
    return den > 0 ? sqrt(num / den) : sqrt(num);
}
