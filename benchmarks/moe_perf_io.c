/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* moe_perf's options, table and JSON (see moe_perf.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchmarks/bench_args.h"
#include "benchmarks/moe_perf.h"

void mp_opts_default(mp_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->transport = BENCH_TR_DEFAULT;
    o->ranks = 4;
    o->experts = 16;
    o->topk = 2;
    o->tokens = 2048;
    o->hidden = 1024;
    o->dtype = LSHMOE_DTYPE_BF16;
    o->data[0] = "clustered";
    o->ndata = 1;
    o->centers = 512;
    o->noise = 0.05;
    o->hashes[0] = 6;
    o->nhashes = 1;
    o->comps[0] = LSHMOE_COMP_RESIDUAL;
    o->ncomps = 1;
    o->cdim = LSHMOE_UNSET_INT;
    o->diag = 1.0;
    o->sigma = 0.5;
    o->bias = 0.02;
    o->iters = 3;
    o->warmup = 1;
    o->check = 1;
    o->link_gbps = o->link_latency_us = -1.0;
}

void mp_opts_free(mp_opts_t *o)
{
    free(o->data_buf);
    o->data_buf = NULL;
}

const char *mp_comp_name(int comp)
{
    return comp == LSHMOE_COMP_NONE       ? "none"
           : comp == LSHMOE_COMP_RESIDUAL ? "residual"
           : comp == LSHMOE_COMP_SCALED   ? "scaled"
                                          : "?";
}

static void usage(FILE *f, const char *prog)
{
    fprintf(f,
        "usage: %s [options]\n"
        "MoE mode (lshmoe_moe.h) against the exact exchange: for each data set, L and\n"
        "compensation, one row of slots, expert rows, remote dispatch bytes, output and dx\n"
        "error against the exact pass, and forward / forward+backward time.\n"
        "layer:\n"
        "  --experts E          experts over all ranks (default 16; a multiple of the ranks)\n"
        "  --topk K             slots per token (default 2)\n"
        "  --tokens T           tokens per rank (default 2048)\n"
        "  --hidden H           synthetic data width (default 1024; a .npy sets its own)\n"
        "  --dtype T            fp32|fp16|bf16 (default bf16)\n"
        "  --expert-sigma S     expert W = D I + S/sqrt(H) N(0,1) (default 0.5)\n"
        "  --expert-diag D      the D above (default 1: experts near the identity)\n"
        "  --expert-bias B      expert bias std (default 0.02)\n"
        "data:\n"
        "  --data LIST          clustered|gaussian|FILE.npy, comma-separated (default clustered)\n"
        "  --centers K          clustered: centers of the whole data set (default 512)\n"
        "  --noise S            clustered: noise std around N(0,1) centers (default 0.05)\n"
        "lshmoe (one context per L; the rest: LSHMOE_* environment, then defaults;\n"
        "  LSHMOE_CODEC and LSHMOE_MAX_ERROR set the row formats of dispatch and combine):\n"
        "  --hashes LIST        num_hashes values, e.g. 2,6,10 (1..16; default 6)\n"
        "  --cdim C             cross-polytope dimension (power of two 2..256)\n"
        "  --compensation LIST  of none, residual, scaled (default residual); scaled\n"
        "                       fits its slope on earlier passes: its checked pass\n"
        "                       comes after the -w warm-up passes\n"
        "timing:\n"
        "  -n ITERS             timed passes per configuration (default 3; medians)\n"
        "  -w WARMUP            untimed passes after the checked one (default 1)\n"
        "  -c 0|1               check the exact pass against a local reference (default 1)\n"
        "  -J FILE              also write JSON to FILE (rank 0)\n"
        "transport:\n"
        "  --transport T        self|mpi (default mpi under mpirun with > 1 rank)\n"
        "  --ranks N            self transport: rank threads (1..64, default 4)\n"
        "  --link-gbps G        emulated link Gb/s per rank (LSHMOE_LINK_GBPS; 0 = off)\n"
        "  --link-latency-us U  emulated per-message latency (LSHMOE_LINK_LATENCY_US)\n"
        "  -h, --help           this text\n", prog);
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Splits a comma list in place; empty items are errors. */
static int split(char *s, char **items, int max)
{
    int n = 0;
    for (char *p = s;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (*p == '\0' || n == max)
            return -1;
        items[n++] = p;
        if (!comma)
            return n;
        p = comma + 1;
    }
}

int mp_parse(int argc, char **argv, mp_opts_t *o, char *err, size_t errlen)
{
    const bench_launch_opts_t lo = {&o->transport, &o->ranks, &o->ranks_set, &o->link_gbps,
                                    &o->link_latency_us};
    int launch;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout, argv[0]);
            return 1;
        }
        if (i + 1 >= argc)
            return fail(err, errlen, "unknown option or missing value: '%s'", a);
        const char *v = argv[++i];
        long l;
        double d;
        char buf[256], *items[MP_MAX_HASHES + 1];
#define BAD() fail(err, errlen, "bad value for %s: '%s'", a, v)
        if (!strcmp(a, "-n")) {
            if (bench_parse_long(v, 1, MP_MAX_ITERS, &l) != 0) return BAD();
            o->iters = (int)l;
        } else if (!strcmp(a, "-w")) {
            if (bench_parse_long(v, 0, 1000, &l) != 0) return BAD();
            o->warmup = (int)l;
        } else if (!strcmp(a, "-c")) {
            if (bench_parse_long(v, 0, 1, &l) != 0) return BAD();
            o->check = (int)l;
        } else if (!strcmp(a, "-J")) {
            o->json = v;
        } else if (!strcmp(a, "--experts")) {
            if (bench_parse_long(v, 1, 65536, &l) != 0) return BAD();
            o->experts = (int)l;
        } else if (!strcmp(a, "--topk")) {
            if (bench_parse_long(v, 1, 64, &l) != 0) return BAD();
            o->topk = (int)l;
        } else if (!strcmp(a, "--tokens")) {
            if (bench_parse_long(v, 1, 1L << 22, &l) != 0) return BAD();
            o->tokens = (size_t)l;
        } else if (!strcmp(a, "--hidden")) {
            if (bench_parse_long(v, 1, MP_MAX_HIDDEN, &l) != 0) return BAD();
            o->hidden = (size_t)l;
        } else if (!strcmp(a, "--dtype")) {
            if (!strcmp(v, "fp32")) o->dtype = LSHMOE_DTYPE_FP32;
            else if (!strcmp(v, "fp16")) o->dtype = LSHMOE_DTYPE_FP16;
            else if (!strcmp(v, "bf16")) o->dtype = LSHMOE_DTYPE_BF16;
            else return BAD();
        } else if (!strcmp(a, "--expert-sigma")) {
            if (bench_parse_double(v, 0.0, 100.0, &d) != 0) return BAD();
            o->sigma = d;
        } else if (!strcmp(a, "--expert-diag")) {
            if (bench_parse_double(v, -100.0, 100.0, &d) != 0) return BAD();
            o->diag = d;
        } else if (!strcmp(a, "--expert-bias")) {
            if (bench_parse_double(v, 0.0, 100.0, &d) != 0) return BAD();
            o->bias = d;
        } else if (!strcmp(a, "--data")) {
            free(o->data_buf);
            o->data_buf = strdup(v);
            if (o->data_buf == NULL)
                return fail(err, errlen, "out of memory");
            char *d_items[MP_MAX_DATA];
            int n = split(o->data_buf, d_items, MP_MAX_DATA);
            if (n < 0)
                return fail(err, errlen, "bad value for --data: '%s' (comma list of at most "
                            "%d items, none empty)", v, MP_MAX_DATA);
            for (int k = 0; k < n; k++)
                o->data[k] = d_items[k];
            o->ndata = n;
        } else if (!strcmp(a, "--centers")) {
            if (bench_parse_long(v, 1, 1L << 24, &l) != 0) return BAD();
            o->centers = (size_t)l;
        } else if (!strcmp(a, "--noise")) {
            if (bench_parse_double(v, 0.0, 1e6, &d) != 0) return BAD();
            o->noise = d;
        } else if (!strcmp(a, "--hashes") || !strcmp(a, "--compensation")) {
            int hashes = a[2] == 'h';
            snprintf(buf, sizeof buf, "%s", v);
            int n = strlen(v) < sizeof buf ? split(buf, items, hashes ? MP_MAX_HASHES : 3) : -1;
            if (n < 0)
                return BAD();
            for (int k = 0; k < n; k++) {
                if (hashes) {
                    if (bench_parse_long(items[k], 1, 16, &l) != 0)
                        return fail(err, errlen, "bad value for --hashes: '%s' (1..16)", v);
                    o->hashes[k] = (int)l;
                } else if (!strcmp(items[k], "none")) {
                    o->comps[k] = LSHMOE_COMP_NONE;
                } else if (!strcmp(items[k], "residual")) {
                    o->comps[k] = LSHMOE_COMP_RESIDUAL;
                } else if (!strcmp(items[k], "scaled")) {
                    o->comps[k] = LSHMOE_COMP_SCALED;
                } else {
                    return fail(err, errlen, "bad value for --compensation: '%s' "
                                "(a list of none, residual, scaled)", v);
                }
            }
            *(hashes ? &o->nhashes : &o->ncomps) = n;
        } else if (!strcmp(a, "--cdim")) {
            if (bench_parse_long(v, 2, 256, &l) != 0 || (l & (l - 1)) != 0)
                return fail(err, errlen, "bad value for --cdim: '%s' (power of two 2..256)", v);
            o->cdim = (int)l;
        } else if ((launch = bench_parse_launch_opt(a, v, &lo)) != 0) {
            if (launch < 0) return BAD();
        } else {
            return fail(err, errlen, "unknown option '%s'", a);
        }
#undef BAD
    }
    if (o->topk > o->experts)
        return fail(err, errlen, "--topk %d is more than --experts %d", o->topk, o->experts);
    if (o->transport == BENCH_TR_MPI && o->ranks_set)
        return fail(err, errlen, "--ranks applies to the self transport only "
                                 "(mpirun -np sets the MPI ranks)");
    return 0;
}

/* ---- table ---- */

void mp_print_preamble(FILE *f, const mp_meta_t *m)
{
    const mp_opts_t *o = m->o;
    const lshmoe_config_t *c = m->cfg;
    fprintf(f, "# moe_perf: lshmoe %s, transport %s, %d ranks\n", lshmoe_version_string(),
            m->transport, m->ranks);
    if (m->mpi_lib != NULL && m->mpi_lib[0])
        fprintf(f, "# MPI library: %s\n", m->mpi_lib);
    fprintf(f, "# layer: %d experts (%d per rank), top-%d, %zu tokens per rank, %s; linear "
            "experts W = %g I + %g/sqrt(H) N(0,1), bias std %g\n", o->experts,
            o->experts / m->ranks, o->topk, o->tokens, lshmoe_dtype_name(o->dtype), o->diag,
            o->sigma, o->bias);
    fprintf(f, "# router: logits = rmsnorm(x) Wg (Wg ~ N(0,1/H), same on all ranks), softmax, "
            "top-%d, gates renormalised\n", o->topk);
    fprintf(f, "# lshmoe config (last compressed context): cdim %d, reduce %s %d, rounds %d, "
            "seed %llu, min tokens %d, min ratio %g, codec %d (LSHMOE_CODEC), max error %g\n",
            (int)c->cdim, c->reduce == LSHMOE_REDUCE_PAD ? "pad" : "fold", (int)c->reduce_dim,
            (int)c->rounds, (unsigned long long)c->seed, (int)c->min_tokens, c->min_ratio,
            (int)c->codec, c->max_error);
    if (m->link_gbps > 0 || m->link_latency_us > 0)
        fprintf(f, "# link emulation: %g Gb/s per rank, %g us per message\n", m->link_gbps,
                m->link_latency_us);
    else
        fprintf(f, "# link emulation: off\n");
    fprintf(f, "# iters %d (medians), warmup %d, reference check %s\n", o->iters, o->warmup,
            o->check ? "on" : "off");
}

void mp_print_exact(FILE *f, const mp_meta_t *m, int d)
{
    const mp_data_t *ds = &m->data[d];
    const mp_exact_t *e = &m->exact[d];
    if (ds->npy.data != NULL)
        fprintf(f, "# data %s: %s (%zu rows x %zu; rank r takes rows [r*T, (r+1)*T)%s)\n",
                ds->label, ds->spec, ds->npy.rows, ds->npy.cols,
                m->o->tokens * (size_t)m->ranks > ds->npy.rows ? ", wrapping" : "");
    else if (!strcmp(ds->spec, "gaussian"))
        fprintf(f, "# data %s: i.i.d. N(0,1), hidden %zu\n", ds->label, ds->hidden);
    else
        fprintf(f, "# data %s: %zu centers, noise %g, hidden %zu; rank r takes tokens "
                "[r*T, (r+1)*T) of one set\n", ds->label, m->o->centers, m->o->noise,
                ds->hidden);
    fprintf(f, "#   exact pass (compress 0): %.0f slots, %.0f expert rows, remote dispatch "
            "%.0f B (plain %.0f B); fwd %.1f ms, fwd+bwd %.1f ms (experts %.1f ms)\n",
            e->slots, e->rows, e->bytes_dispatch, e->bytes_plain, e->t.fwd, e->t.fb,
            e->t.expert);
    if (e->checked)
        fprintf(f, "#   reference check, %.0f tokens: out %.0f/%.0f elements not bit-identical "
                "(rel %.2e), dx rel %.2e, dgates rel %.2e\n", e->check.tokens,
                e->check.y_diff_elems, e->check.elems, e->y_err, e->dx_err, e->dg_err);
}

void mp_print_header(FILE *f)
{
    static const char fmt[] =
        "#%-13s %5s %2s %-8s %7s %7s %6s %7s %10s %10s %6s %8s %8s %8s %8s %6s %8s %8s %6s "
        "%6s %8s\n";
    fprintf(f, fmt, "data", "H", "L", "comp", "slots", "rows", "saved", "cmp/raw", "plain_B",
            "lsh_B", "ratio", "out_err", "dx_err", "fwd_ex", "fwd", "fwd_x", "fb_ex", "fb",
            "fb_x", "comb_x", "comb_err");
    fprintf(f, fmt, "", "", "", "", "", "", "", "experts", "(remote)", "(remote)", "", "", "",
            "(ms)", "(ms)", "", "(ms)", "(ms)", "", "", "");
}

/* A fixed-width number, "-" where it is undefined (no remote bytes, ...). */
static const char *num(char *buf, size_t len, const char *fmt, double v)
{
    if (isfinite(v))
        snprintf(buf, len, fmt, v);
    else
        snprintf(buf, len, "-");
    return buf;
}

void mp_print_row(FILE *f, const mp_meta_t *m, const mp_row_t *r)
{
    char cr[32], b1[32], b2[32], b3[32], b4[32];
    snprintf(cr, sizeof cr, "%.0f/%.0f", r->experts_compressed, r->experts_raw);
    fprintf(f, " %-13s %5zu %2d %-8s %7.0f %7.0f %5.1f%% %7s %10.0f %10.0f %6s %8.2e %8.2e "
            "%8.1f %8.1f %6s %8.1f %8.1f %6s %6s %8.2e\n",
            m->data[r->data].label, m->data[r->data].hidden, r->hashes, mp_comp_name(r->comp),
            r->slots, r->rows, 100.0 * r->rows_saved, cr, r->bytes_plain, r->bytes_dispatch,
            num(b1, sizeof b1, "%.2f", r->bytes_ratio), r->out_err, r->dx_err, r->ex.fwd,
            r->t.fwd, num(b2, sizeof b2, "%.2f", r->ex.fwd > 0 ? r->t.fwd / r->ex.fwd : NAN),
            r->ex.fb, r->t.fb, num(b3, sizeof b3, "%.2f", r->ex.fb > 0 ? r->t.fb / r->ex.fb : NAN),
            num(b4, sizeof b4, "%.2f", r->comb_ratio), r->combine_err_max);
}

/* ---- JSON ---- */


static void jkey(FILE *f, const char *k, double v)
{
    fprintf(f, ",\"%s\":", k);
    bench_json_num(f, v);
}

static void jtimes(FILE *f, const char *k, const mp_times_t *t)
{
    fprintf(f, ",\"%s\":{\"fwd_ms\":", k);
    bench_json_num(f, t->fwd);
    jkey(f, "fwd_bwd_ms", t->fb);
    jkey(f, "fwd_ms_min", t->fwd_min);
    jkey(f, "fwd_bwd_ms_min", t->fb_min);
    jkey(f, "expert_ms", t->expert);
    jkey(f, "cluster_ms", t->cluster);
    jkey(f, "exchange_ms", t->exchange);
    fputc('}', f);
}

int mp_write_json(const char *path, const mp_meta_t *m, const mp_row_t *rows, size_t nrows)
{
    const mp_opts_t *o = m->o;
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    bench_json_head(f, "moe_perf", m->argc, m->argv);
    fputs(",\"transport\":", f);
    bench_json_str(f, m->transport);
    fprintf(f, ",\"ranks\":%d,\"experts\":%d,\"topk\":%d,\"tokens_per_rank\":%zu,\"dtype\":\"%s\"",
            m->ranks, o->experts, o->topk, o->tokens, lshmoe_dtype_name(o->dtype));
    jkey(f, "expert_diag", o->diag);
    jkey(f, "expert_sigma", o->sigma);
    jkey(f, "expert_bias", o->bias);
    fprintf(f, ",\"iters\":%d,\"warmup\":%d", o->iters, o->warmup);
    fprintf(f, ",\"config\":{\"cdim\":%d,\"reduce\":\"%s\",\"reduce_dim\":%d,\"rounds\":%d,"
            "\"min_tokens\":%d", (int)m->cfg->cdim,
            m->cfg->reduce == LSHMOE_REDUCE_PAD ? "pad" : "fold", (int)m->cfg->reduce_dim,
            (int)m->cfg->rounds, (int)m->cfg->min_tokens);
    jkey(f, "min_ratio", m->cfg->min_ratio);
    fputc('}', f);
    jkey(f, "link_gbps", m->link_gbps);
    jkey(f, "link_latency_us", m->link_latency_us);
    fputs(",\"datasets\":[", f);
    for (int d = 0; d < o->ndata; d++) {
        const mp_exact_t *e = &m->exact[d];
        fprintf(f, "%s{\"label\":", d ? "," : "");
        bench_json_str(f, m->data[d].label);
        fputs(",\"spec\":", f);
        bench_json_str(f, m->data[d].spec);
        fprintf(f, ",\"hidden\":%zu", m->data[d].hidden);
        if (!strcmp(m->data[d].spec, "clustered")) {
            fprintf(f, ",\"centers\":%zu", o->centers);
            jkey(f, "noise", o->noise);
        }
        jkey(f, "slots", e->slots);
        jkey(f, "rows", e->rows);
        jkey(f, "bytes_plain", e->bytes_plain);
        jkey(f, "bytes_dispatch", e->bytes_dispatch);
        jtimes(f, "exact", &e->t);
        if (e->checked) {
            fputs(",\"reference_check\":{\"tokens\":", f);
            bench_json_num(f, e->check.tokens);
            jkey(f, "out_elems_not_bit_identical", e->check.y_diff_elems);
            jkey(f, "out_rel_err", e->y_err);
            jkey(f, "dx_rel_err", e->dx_err);
            jkey(f, "dgates_rel_err", e->dg_err);
            fputc('}', f);
        } else {
            fputs(",\"reference_check\":null", f);
        }
        fputc('}', f);
    }
    fputs("],\"rows\":[", f);
    for (size_t i = 0; i < nrows; i++) {
        const mp_row_t *r = &rows[i];
        fprintf(f, "%s{\"data\":", i ? "," : "");
        bench_json_str(f, m->data[r->data].label);
        fprintf(f, ",\"hidden\":%zu,\"hashes\":%d,\"cdim\":%d,\"compensation\":\"%s\"",
                m->data[r->data].hidden, r->hashes, r->cdim, mp_comp_name(r->comp));
        jkey(f, "slots", r->slots);
        jkey(f, "rows", r->rows);
        jkey(f, "rows_saved", r->rows_saved);
        jkey(f, "slots_received", r->slots_received);
        jkey(f, "rows_sent", r->rows_sent);
        jkey(f, "experts_compressed", r->experts_compressed);
        jkey(f, "experts_raw", r->experts_raw);
        jkey(f, "experts_routed", r->experts_routed);
        jkey(f, "bytes_remote_plain", r->bytes_plain);
        jkey(f, "bytes_remote_dispatch", r->bytes_dispatch);
        jkey(f, "bytes_ratio", r->bytes_ratio);
        jkey(f, "centroid_rel_error_max", r->centroid_err_max);
        jkey(f, "bytes_remote_combine_plain", r->bytes_comb_plain);
        jkey(f, "bytes_remote_combine", r->bytes_combine);
        jkey(f, "combine_ratio", r->comb_ratio);
        jkey(f, "combine_rel_error_max", r->combine_err_max);
        jkey(f, "out_rel_err", r->out_err);
        jkey(f, "dx_rel_err", r->dx_err);
        jkey(f, "dgates_rel_err", r->dgates_err);
        jtimes(f, "time", &r->t);
        jtimes(f, "time_exact", &r->ex);
        jkey(f, "fwd_rel", r->ex.fwd > 0 ? r->t.fwd / r->ex.fwd : NAN);
        jkey(f, "fwd_bwd_rel", r->ex.fb > 0 ? r->t.fb / r->ex.fb : NAN);
        fputc('}', f);
    }
    fputs("]}\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return -1;
    return 0;
}
