/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * moe_perf: the MoE mode of lshmoe (lshmoe_moe.h) against the exact MoE
 * exchange, on the self transport (ranks as threads) or over MPI (mpirun).
 *
 * Per data set every rank makes its tokens, routes them with a fixed random
 * gate matrix (softmax, top-k) and registers linear experts. The exact pass
 * (a context with compress = 0) runs once checked, -w times untimed and -n
 * times timed; then, for each L (--hashes, one compressed context each) and
 * compensation, the compressed pass runs the same way on the same data and
 * routing. A pass is layout, dispatch, combine (forward), combine_backward
 * with dy ~ N(0,1), dispatch_backward (backward). Each row compares the
 * checked compressed pass with the checked exact pass: slots, expert rows,
 * remote dispatch bytes, errors of out, dx and the gate gradients, and the
 * median times. Flags: `moe_perf -h`.
 *
 * Columns (sums over the ranks unless noted):
 *   slots      routed (token, slot) pairs (lshmoe_moe_stats_t.slots)
 *   rows       expert rows computed: rows_received; saved = 1 - rows / slots
 *   cmp/raw    destination experts sent as centroids / token by token
 *   plain_B    bytes_remote_plain: what a plain dispatch sends off-rank
 *   lsh_B      bytes_remote_dispatch of the compressed pass; ratio = plain / lsh
 *   comb_x     plain / sent remote bytes of combine (expert outputs in the
 *              codec's row formats, LSHMOE_CODEC); comb_err the largest
 *              rank's combine_rel_error
 *   out_err    sqrt(sum |out - out_exact|^2 / sum |out_exact|^2) over all tokens
 *   dx_err     the same for dx (dy ~ N(0,1) per token; dgates error in JSON)
 *   fwd, fb    dispatch + combine, and that + combine_backward +
 *              dispatch_backward: per timed pass the max over ranks, then the
 *              median over -n passes, ms; *_ex the exact pass of the same data
 *              in the same run; *_x = compressed / exact
 * JSON (-J) adds per row the experts, cluster and exchange times and the
 * per-data-set exact pass with the reference check.
 *
 * Cross-rank steps (barrier, gathering results) are plain lshmoe_alltoallv
 * calls on a control context, as in alltoall_perf, so both transports share
 * one code path. Results print only after every configuration succeeded; a
 * failed lshmoe call prints lshmoe_last_error() and exits 1 on every rank.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchmarks/bench_args.h"
#include "benchmarks/moe_perf.h"
#include "lshmoe.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/timer.h"
#include "lshmoe_moe.h"
#include "tests/datagen.h"
#include "tests/ranks.h"

#ifndef BENCH_HAVE_MPI
#define BENCH_HAVE_MPI 0  /* meson defines it to 1 when MPI was found */
#endif

#if BENCH_HAVE_MPI
#include <mpi.h>

#include "lshmoe_mpi.h"
static MPI_Comm g_world;  /* the descriptor keeps its address */
#endif

#define SEED_DY     0xD7D7D7D7ull
#define NSAMPLE     4      /* tokens per rank in the reference check */

static void setup_data(rank_state_t *s, const mp_data_t *d)
{
    const mp_opts_t *o = s->o;
    s->h = d->hidden;
    s->T = o->tokens;
    s->tb = s->h * lshmoe_dtype_size(o->dtype);
    size_t bytes = s->T * s->tb, n = s->T * s->h;
    void **bufs[] = {&s->x, &s->dy, &s->y, &s->dx, &s->y_ex, &s->dx_ex, &s->y_tmp, &s->dx_tmp};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) {
        free(*bufs[i]);
        *bufs[i] = mp_xmalloc(s, bytes);
    }
    float **fb[] = {&s->dg, &s->dg_ex, &s->dg_tmp, &s->gw};
    for (size_t i = 0; i < sizeof fb / sizeof *fb; i++) {
        free(*fb[i]);
        *fb[i] = mp_xmalloc(s, s->T * (size_t)o->topk * sizeof(float));
    }
    free(s->idx);
    s->idx = mp_xmalloc(s, s->T * (size_t)o->topk * sizeof(int32_t));
    float *f = mp_xmalloc(s, n * sizeof(float));
    if (mp_gen_tokens(d, o, s->me, s->T, f) != 0)
        mp_fatal(s, "generating tokens", LSHMOE_ERR_NO_MEMORY, NULL);
    /* route what the layer sees: the tokens rounded to the dtype */
    lt_to_dtype(f, n, o->dtype, s->x);
    lshmoe_row_to_f32(s->x, o->dtype, n, f);
    if (mp_route(f, s->T, s->h, o->experts, o->topk, s->idx, s->gw) != 0)
        mp_fatal(s, "routing", LSHMOE_ERR_NO_MEMORY, NULL);
    lt_gen_gaussian(f, s->T, s->h, SEED_DY + (uint64_t)s->me);
    lt_to_dtype(f, n, o->dtype, s->dy);
    free(f);
}

static void run_exact(rank_state_t *s, int di)
{
    const mp_opts_t *o = s->o;
    lshmoe_moe_t *moe = mp_make_layer(s, s->exact, LSHMOE_UNSET_INT);
    mp_attach_experts(s, moe, s->exact);
    lshmoe_moe_stats_t st;
    mp_times_t tm;
    int nondet = 0;
    mp_run_config(s, moe, s->exact, s->y_ex, s->dx_ex, s->dg_ex, &st, &tm, &nondet);
    lshmoe_moe_destroy(moe);
    rank_rec_t g = mp_reduce(s, &st, 0, nondet);
    mp_check_counts(s, &g, "exact pass");
    if (g.rows_recv != g.slots || g.exp_cmp != 0)
        mp_global_fail(s, "exact pass (compress 0): expert rows differ from the slots, or "
                       "experts were sent compressed");
    if (g.nondet > 0 && s->me == 0)
        fprintf(stderr, "moe_perf: warning: exact pass on %s: a repeated pass gave other "
                "out/dx bytes on %.0f rank(s)\n", s->sh->data[di].label, g.nondet);
    mp_exact_t *e = &s->exact_res[di];
    memset(e, 0, sizeof *e);
    e->slots = g.slots;
    e->rows = g.rows_recv;
    e->bytes_plain = g.bytes_plain;
    e->bytes_dispatch = g.bytes_disp;
    e->t = tm;
    if (!o->check)
        return;
    mp_check_t c, *all = mp_xmalloc(s, (size_t)s->n * sizeof c);
    memset(&c, 0, sizeof c);
    if (mp_reference_check(&s->model, s->T, s->x, s->dy, s->idx, s->gw, s->y_ex, s->dx_ex,
                           s->dg_ex, NSAMPLE, &c) != 0)
        mp_fatal(s, "reference check", LSHMOE_ERR_NO_MEMORY, NULL);
    mp_allgather(s, &c, sizeof c, all);
    double *acc = (double *)&e->check;
    for (int p = 0; p < s->n; p++)
        for (size_t k = 0; k < sizeof c / sizeof(double); k++)
            acc[k] += ((const double *)&all[p])[k];
    free(all);
    e->checked = 1;
    e->y_err = mp_rel(e->check.y_num, e->check.y_den);
    e->dx_err = mp_rel(e->check.dx_num, e->check.dx_den);
    e->dg_err = mp_rel(e->check.dg_num, e->check.dg_den);
    double tol = o->dtype == LSHMOE_DTYPE_FP32 ? 1e-5 : 1e-2;
    if (!(e->y_err <= tol && e->dx_err <= tol && e->dg_err <= tol)) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s: the exact pass differs from the local reference "
                 "(relative error out %.3g, dx %.3g, dgates %.3g; tolerance %g)",
                 s->sh->data[di].label, e->y_err, e->dx_err, e->dg_err, tol);
        mp_global_fail(s, msg);
    }
}

static void run_compressed(rank_state_t *s, int di, int hashes, int comp)
{
    lshmoe_moe_t *moe = mp_make_layer(s, s->lsh, comp);
    mp_attach_experts(s, moe, s->lsh);
    lshmoe_moe_stats_t st;
    mp_row_t r;
    int nondet = 0;
    memset(&r, 0, sizeof r);
    mp_run_config(s, moe, s->lsh, s->y, s->dx, s->dg, &st, &r.t, &nondet);
    lshmoe_moe_destroy(moe);
    rank_rec_t g = mp_reduce(s, &st, 1, nondet);
    char what[128];
    snprintf(what, sizeof what, "%s, L = %d, %s", s->sh->data[di].label, hashes,
             mp_comp_name(comp));
    mp_check_counts(s, &g, what);
    if (g.bytes_plain != s->exact_res[di].bytes_plain || g.slots != s->exact_res[di].slots) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s: slots or plain bytes differ from the exact pass on the "
                 "same routing (%.0f vs %.0f slots, %.0f vs %.0f B)", what, g.slots,
                 s->exact_res[di].slots, g.bytes_plain, s->exact_res[di].bytes_plain);
        mp_global_fail(s, msg);
    }
    if (g.exp_cmp + g.exp_raw != g.routed && s->me == 0)
        fprintf(stderr, "moe_perf: warning: %s: %.0f experts compressed + %.0f raw, but the "
                "ranks route to %.0f (rank, expert) pairs\n", what, g.exp_cmp, g.exp_raw,
                g.routed);
    /* SCALED refines its slope on every pass: repeated passes differ */
    if (g.nondet > 0 && comp != LSHMOE_COMP_SCALED && s->me == 0)
        fprintf(stderr, "moe_perf: warning: %s: a repeated pass gave other out/dx bytes on "
                "%.0f rank(s)\n", what, g.nondet);
    r.data = di;
    r.hashes = hashes;
    r.cdim = (int)s->cfg.cdim;
    r.comp = comp;
    r.slots = g.slots;
    r.rows = g.rows_recv;
    r.rows_saved = g.slots > 0 ? 1.0 - g.rows_recv / g.slots : 0.0;
    r.slots_received = g.slots_recv;
    r.rows_sent = g.rows_sent;
    r.experts_compressed = g.exp_cmp;
    r.experts_raw = g.exp_raw;
    r.experts_routed = g.routed;
    r.bytes_plain = g.bytes_plain;
    r.bytes_dispatch = g.bytes_disp;
    r.bytes_ratio = g.bytes_disp > 0 ? g.bytes_plain / g.bytes_disp : NAN;
    r.centroid_err_max = g.cent_err;
    r.bytes_comb_plain = g.bytes_comb_plain;
    r.bytes_combine = g.bytes_comb;
    r.comb_ratio = g.bytes_comb > 0 ? g.bytes_comb_plain / g.bytes_comb : NAN;
    r.combine_err_max = g.comb_err;
    r.out_err = mp_rel(g.y_num, g.y_den);
    r.dx_err = mp_rel(g.dx_num, g.dx_den);
    r.dgates_err = mp_rel(g.dg_num, g.dg_den);
    r.ex = s->exact_res[di].t;
    if (s->me == 0)
        s->rows[s->nrows++] = r;
}

static void rank_main(shared_t *sh, const lshmoe_comm_desc_t *desc)
{
    const mp_opts_t *o = sh->o;
    rank_state_t s0, *s = &s0;
    memset(s, 0, sizeof *s);
    s->me = desc->rank;
    s->n = desc->nranks;
    s->sh = sh;
    s->o = o;
    s->ones = mp_xmalloc(s, (size_t)s->n * sizeof(size_t));
    s->iota = mp_xmalloc(s, (size_t)s->n * sizeof(size_t));
    for (int p = 0; p < s->n; p++) {
        s->ones[p] = 1;
        s->iota[p] = (size_t)p;
    }
    s->ctl = mp_make_ctx(s, desc, 0, 0);
    /* whether rank 0 can write -J, known to all before any work */
    int ok = 1, *oks = mp_xmalloc(s, (size_t)s->n * sizeof(int));
    if (s->me == 0 && o->json != NULL) {
        FILE *f = fopen(o->json, "w");
        ok = f != NULL;
        if (f)
            fclose(f);
        else
            fprintf(stderr, "moe_perf: cannot write %s\n", o->json);
    }
    mp_allgather(s, &ok, sizeof ok, oks);
    ok = oks[0];
    free(oks);
    if (!ok) {
        sh->exit_code = 1;
        lshmoe_ctx_destroy(s->ctl);
        free(s->ones);
        free(s->iota);
        return;
    }
    s->exact = mp_make_ctx(s, desc, 1, 0);
    size_t ncfg = (size_t)o->ndata * (size_t)o->nhashes * (size_t)o->ncomps;
    s->rows = mp_xmalloc(s, ncfg * sizeof *s->rows);
    double t_start = lshmoe_now();
    size_t done = 0;
    for (int di = 0; di < o->ndata; di++) {
        const mp_data_t *d = &sh->data[di];
        setup_data(s, d);
        run_exact(s, di);
        if (s->me == 0)
            fprintf(stderr, "moe_perf: %s: exact pass done (%.1f s)\n", d->label,
                    lshmoe_now() - t_start);
        for (int hi = 0; hi < o->nhashes; hi++) {
            s->lsh = mp_make_ctx(s, desc, 2, o->hashes[hi]);
            s->cfg = (lshmoe_config_t)LSHMOE_CONFIG_INITIALIZER;
            MP_CHECK(lshmoe_ctx_get_config(s->lsh, &s->cfg), "lshmoe_ctx_get_config", s->lsh);
            for (int ci = 0; ci < o->ncomps; ci++) {
                run_compressed(s, di, o->hashes[hi], o->comps[ci]);
                if (s->me == 0)
                    fprintf(stderr, "moe_perf: [%zu/%zu] %s, L = %d, %s done (%.1f s)\n",
                            ++done, ncfg, d->label, o->hashes[hi], mp_comp_name(o->comps[ci]),
                            lshmoe_now() - t_start);
            }
            lshmoe_ctx_destroy(s->lsh);
            s->lsh = NULL;
        }
        mp_model_free(&s->model);
    }
    if (s->me == 0) {
        mp_meta_t m = {sh->argc, sh->argv, sh->use_mpi ? "mpi" : "self", sh->mpi_lib, s->n, o,
                       sh->data, s->exact_res, &s->cfg,
                       bench_env_double("LSHMOE_LINK_GBPS"),
                       bench_env_double("LSHMOE_LINK_LATENCY_US")};
        mp_print_preamble(stdout, &m);
        for (int di = 0; di < o->ndata; di++)
            mp_print_exact(stdout, &m, di);
        mp_print_header(stdout);
        for (size_t i = 0; i < s->nrows; i++)
            mp_print_row(stdout, &m, &s->rows[i]);
        fflush(stdout);
        if (o->json != NULL && mp_write_json(o->json, &m, s->rows, s->nrows) != 0) {
            fprintf(stderr, "moe_perf: cannot write %s\n", o->json);
            sh->exit_code = 1;
        }
    }
    /* no rank leaves (and destroys its contexts) before rank 0 is done */
    mp_barrier(s);
    lshmoe_ctx_destroy(s->exact);
    lshmoe_ctx_destroy(s->ctl);
    void *bufs[] = {s->ones, s->iota, s->x, s->dy, s->y, s->dx, s->y_ex, s->dx_ex, s->y_tmp,
                    s->dx_tmp, s->dg, s->dg_ex, s->dg_tmp, s->gw, s->idx, s->rows};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        free(bufs[i]);
}

static void self_rank(lt_rank_ctx_t *rc)
{
    shared_t *sh = rc->arg;
    lshmoe_comm_desc_t desc = lt_self_desc(rc);
    shared_t mine = *sh;  /* only rank 0 writes the shared exit code */
    rank_main(rc->rank == 0 ? sh : &mine, &desc);
}

/* The data sets: a .npy is loaded once (shared read-only by the ranks). */
static int load_data(shared_t *sh, const mp_opts_t *o, char *err, size_t errlen)
{
    for (int i = 0; i < o->ndata; i++) {
        mp_data_t *d = &sh->data[i];
        d->spec = o->data[i];
        d->hidden = o->hidden;
        if (!strcmp(d->spec, "clustered") || !strcmp(d->spec, "gaussian")) {
            snprintf(d->label, sizeof d->label, "%s", d->spec);
            continue;
        }
        char nerr[200];
        if (npy_load(d->spec, &d->npy, nerr, sizeof nerr) != NPY_OK) {
            snprintf(err, errlen, "--data: %s", nerr);
            return -1;
        }
        if (d->npy.cols > MP_MAX_HIDDEN) {
            snprintf(err, errlen, "--data %s: %zu columns, at most %d", d->spec, d->npy.cols,
                     MP_MAX_HIDDEN);
            return -1;
        }
        d->hidden = d->npy.cols;
        const char *base = strrchr(d->spec, '/');
        base = base ? base + 1 : d->spec;
        size_t len = strcspn(base, ".");
        snprintf(d->label, sizeof d->label, "%.*s", (int)len, base);
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const size_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", NULL};
    static const char *const rank_vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", NULL};
    int lsize = bench_launcher_env(size_vars), lrank = bench_launcher_env(rank_vars);
    int talker = lrank <= 0;
    mp_opts_t o;
    char err[256];
    mp_opts_default(&o);
    int pr = mp_parse(argc, argv, &o, err, sizeof err);
    if (pr == 1) {
        mp_opts_free(&o);
        return 0;
    }
    if (pr == 0 && o.transport == BENCH_TR_DEFAULT)
        o.transport = BENCH_HAVE_MPI && lsize > 1 ? BENCH_TR_MPI : BENCH_TR_SELF;
    if (pr == 0 && o.transport == BENCH_TR_MPI && !BENCH_HAVE_MPI) {
        snprintf(err, sizeof err, "--transport mpi: this build has no MPI");
        pr = -1;
    }
    if (pr == 0 && o.transport == BENCH_TR_SELF && lsize > 1) {
        snprintf(err, sizeof err, "--transport self runs in one process, but %d were launched "
                 "(use --ranks N without mpirun)", lsize);
        pr = -1;
    }
    shared_t sh;
    memset(&sh, 0, sizeof sh);
    sh.o = &o;
    sh.argc = argc;
    sh.argv = argv;
    if (pr == 0)
        pr = load_data(&sh, &o, err, sizeof err);
    if (pr != 0) {
        if (talker)
            fprintf(stderr, "moe_perf: %s (see -h)\n", err);
        for (int i = 0; i < MP_MAX_DATA; i++)
            npy_free(&sh.data[i].npy);
        mp_opts_free(&o);
        return 2;
    }
    /* read by lshmoe_ctx_create(); set before the rank threads start */
    bench_set_env_double("LSHMOE_LINK_GBPS", o.link_gbps);
    bench_set_env_double("LSHMOE_LINK_LATENCY_US", o.link_latency_us);

    if (o.transport == BENCH_TR_SELF) {
        for (int w = 0; w < 2; w++)
            if (lshmoe_self_world_create(o.ranks, 600.0, &sh.worlds[w]) != LSHMOE_OK) {
                fprintf(stderr, "moe_perf: lshmoe_self_world_create: %s\n",
                        lshmoe_last_error(NULL));
                return 1;
            }
        if (lt_run_ranks(o.ranks, 600.0, self_rank, &sh) != 0) {
            fprintf(stderr, "moe_perf: cannot start %d rank threads\n", o.ranks);
            sh.exit_code = 1;
        }
        lshmoe_self_world_destroy(sh.worlds[0]);
        lshmoe_self_world_destroy(sh.worlds[1]);
    }
#if BENCH_HAVE_MPI
    else {
        sh.use_mpi = 1;
        if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
            fprintf(stderr, "moe_perf: MPI_Init failed\n");
            return 1;
        }
        char lib[MPI_MAX_LIBRARY_VERSION_STRING];
        int len = 0;
        MPI_Get_library_version(lib, &len);
        lib[strcspn(lib, "\n,")] = '\0';
        snprintf(sh.mpi_lib, sizeof sh.mpi_lib, "%s", lib);
        g_world = MPI_COMM_WORLD;
        lshmoe_comm_desc_t desc;
        if (lshmoe_comm_desc_from_mpi(&g_world, &desc) != LSHMOE_OK) {
            fprintf(stderr, "moe_perf: lshmoe_comm_desc_from_mpi failed\n");
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        rank_main(&sh, &desc);
        MPI_Finalize();
    }
#endif
    for (int i = 0; i < MP_MAX_DATA; i++)
        npy_free(&sh.data[i].npy);
    mp_opts_free(&o);
    return sh.exit_code;
}
