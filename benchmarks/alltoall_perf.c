/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * alltoall_perf: lshmoe_alltoallv timed like nccl-tests' alltoall_perf, on
 * the self transport (ranks as threads) or over MPI (mpirun). For each size
 * it warms up, times -n calls each behind a barrier, checks one untimed
 * call against the data every receiver recomputes on its own, and prints
 * one row per mode (plain with --baseline, then lshmoe) reduced over the
 * ranks. Flags and columns: `alltoall_perf -h` and docs/benchmarks.md.
 *
 * One code path serves both transports: every cross-rank step (barrier,
 * gathering the per-rank results and host names) is a plain lshmoe_alltoallv
 * on a control context, so the self transport needs no shared-memory
 * reductions and the MPI build needs no MPI calls besides init/abort.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchmarks/alltoall_perf_nccl.h"
#include "benchmarks/bench_args.h"
#include "benchmarks/npy.h"
#include "lshmoe.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/timer.h"
#include "tests/datagen.h"
#include "tests/ranks.h"

#ifndef BENCH_HAVE_MPI
#define BENCH_HAVE_MPI 0  /* meson defines it to 1 when MPI was found */
#endif

#if BENCH_HAVE_MPI
#include <mpi.h>

#include "lshmoe_mpi.h"
/* lshmoe keeps the address of the MPI_Comm during lshmoe_ctx_create(); a
 * file-scope handle keeps the descriptor's `native` valid throughout. */
static MPI_Comm g_world;
#endif

/* State shared by every rank of this process (one rank under MPI). */
typedef struct shared {
    const bench_opts_t *o;
    int                 argc;
    char              **argv;
    int                 use_mpi;
    npy_matrix_t        npy;       /* --data FILE.npy, else empty */
    size_t              hidden;
    char                mpi_lib[256];
    int                 exit_code;  /* written by rank 0 only */
    /* The self transport binds one live context per rank and world, so the
     * plain and the compressed context each get a world of their own (the
     * control context uses the one lt_run_ranks() made). */
    lshmoe_self_world_t *worlds[2];
} shared_t;

/* One rank's view. */
typedef struct rank_state {
    int            me, n;
    shared_t      *sh;
    lshmoe_ctx_t  *ctl, *plain, *lsh;
    size_t        *ones, *iota;     /* counts/displs for the control calls */
    size_t        *counts, *displs; /* data calls: stride = max tokens    */
    size_t         maxtok, tb;      /* tokens per peer (max), token bytes  */
    char          *send, *recv, *expect;
    float         *fbuf, *ga, *gb;
} rank_state_t;

/*
 * A failed lshmoe call cannot be recovered in a benchmark: the other ranks
 * are in (or will enter) a collective this rank will never reach. Print the
 * reason and take the whole job down, so that every rank exits non-zero:
 * MPI_Abort under MPI, _exit() of the one process on the self transport.
 */
static void fatal(const rank_state_t *s, const char *what, lshmoe_status_t st,
                  const lshmoe_ctx_t *ctx)
{
    fprintf(stderr, "alltoall_perf: rank %d: %s: %s: %s\n", s->me, what,
            lshmoe_status_name(st), lshmoe_last_error(ctx));
    fflush(NULL);
#if BENCH_HAVE_MPI
    if (s->sh->use_mpi)
        MPI_Abort(MPI_COMM_WORLD, 1);
#endif
    _exit(1);
}

static void *xmalloc(const rank_state_t *s, size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        fatal(s, "allocating buffers", LSHMOE_ERR_NO_MEMORY, NULL);
    return p;
}

/* Everyone's `len`-byte record into out[n * len], over the control context. */
static void allgather(rank_state_t *s, const void *rec, size_t len, void *out)
{
    char *rep = xmalloc(s, (size_t)s->n * len);
    for (int p = 0; p < s->n; p++)
        memcpy(rep + (size_t)p * len, rec, len);
    lshmoe_status_t st = lshmoe_alltoallv(s->ctl, rep, s->ones, s->iota, out, s->ones,
                                          s->iota, LSHMOE_DTYPE_BYTES, len, NULL);
    free(rep);
    if (st != LSHMOE_OK)
        fatal(s, "control allgather", st, s->ctl);
}

/* A 1-byte all-to-all: no rank leaves before every rank has entered. */
static void barrier(rank_state_t *s)
{
    char b[1] = {0};
    char *out = xmalloc(s, (size_t)s->n);
    allgather(s, b, 1, out);
    free(out);
}

/*
 * Segment src -> dst, ntok tokens as fp32. A pure function of (src, dst, j),
 * so the receiver recomputes it for the check without any communication,
 * and token j is the same whatever ntok is (one generation serves every
 * size of a sweep).
 */
static void gen_segment(const shared_t *sh, int src, int dst, size_t ntok, float *out)
{
    const bench_opts_t *o = sh->o;
    uint64_t seed = ((uint64_t)(unsigned)src << 32 | (unsigned)dst) + 1u;
    size_t h = sh->hidden;
    if (sh->npy.data != NULL) {
        /* rows cycled from a per-segment start, so segments differ */
        size_t start = (size_t)(lt_hash64(seed, 0) % sh->npy.rows);
        for (size_t j = 0; j < ntok; j++)
            memcpy(out + j * h, sh->npy.data + ((start + j) % sh->npy.rows) * h,
                   h * sizeof(float));
    } else if (!strcmp(o->data, "gaussian")) {
        lt_gen_gaussian(out, ntok, h, seed);
    } else {
        lt_gen_clustered(out, ntok, h, o->centers, o->noise, seed);
    }
}

/* Per-rank raw numbers for one mode at one size; gathered, then reduced. */
typedef struct rank_rec {
    double hash_s, pack_s, exch_s, unpack_s, bytes_in, wire;
    double err_num, err_den, cos_sum, checked_tokens, wrong;
    double calls, calls_plain, calls_explored;  /* the policy's decisions */
    double seg_fmt[LSHMOE_ROW_FORMATS], seg_grouped, seg_refined, seg_raw; /* per call */
} rank_rec_t;

/* The adaptive policy's decisions in the timed calls of one row, summed
 * over the ranks (each rank counts its own calls). */
typedef struct policy_count {
    double calls, plain, explored;
} policy_count_t;

/* Compares recv with expect for `tok` tokens per peer. */
static void check(rank_state_t *s, int lsh, size_t tok, rank_rec_t *rec)
{
    size_t h = s->sh->hidden;
    lshmoe_dtype_t dt = s->sh->o->dtype;
    for (int p = 0; p < s->n; p++)
        for (size_t j = 0; j < tok; j++) {
            size_t off = s->displs[p] * s->tb + j * s->tb;
            const char *got = s->recv + off, *want = s->expect + off;
            rec->checked_tokens += 1;
            lshmoe_row_to_f32(got, dt, h, s->ga);
            lshmoe_row_to_f32(want, dt, h, s->gb);
            double dot = 0, na = 0, nb = 0, num = 0;
            for (size_t k = 0; k < h; k++) {
                double a = s->ga[k], b = s->gb[k];
                num += (a - b) * (a - b);
                dot += a * b;
                na += a * a;
                nb += b * b;
            }
            double c = dot / (sqrt(na * nb) + 1e-30);
            rec->err_num += num;
            rec->err_den += nb;
            rec->cos_sum += c;
            if (lsh)
                rec->wrong += !(c >= 0.5);  /* informational; NaN counts */
            else  /* plain must be byte-identical: anything else is a bug */
                rec->wrong += memcmp(got, want, s->tb) != 0;
        }
}

/* One mode (plain or lshmoe) over one row: its context, this rank's
 * record, the library's statistics around the timed calls and this rank's
 * time of each timed call. */
typedef struct mode_run {
    lshmoe_ctx_t  *ctx;
    int            lsh;
    size_t         tok;
    rank_rec_t     rec;
    lshmoe_stats_t a, b;
    double        *call_s;
} mode_run_t;

static void call_mode(rank_state_t *s, const mode_run_t *m, const char *what)
{
    for (int p = 0; p < s->n; p++)
        s->counts[p] = m->tok;
    lshmoe_status_t st = lshmoe_alltoallv(m->ctx, s->send, s->counts, s->displs, s->recv,
                                          s->counts, s->displs, s->sh->o->dtype,
                                          s->sh->hidden, NULL);
    if (st != LSHMOE_OK)
        fatal(s, what, st, m->ctx);
}

static void stats_get(rank_state_t *s, const mode_run_t *m, lshmoe_stats_t *st)
{
    lshmoe_status_t rc = lshmoe_stats_get(m->ctx, st);
    if (rc != LSHMOE_OK)
        fatal(s, "lshmoe_stats_get", rc, m->ctx);
}

/* The warm-up calls of one mode. */
static void warm_up_mode(rank_state_t *s, mode_run_t *m)
{
    const bench_opts_t *o = s->sh->o;
    memset(&m->rec, 0, sizeof m->rec);
    for (int it = 0; it < o->warmup; it++)
        call_mode(s, m, "warm-up lshmoe_alltoallv");
}

/* The checked call of one mode, after its timed ones: the adaptive policy
 * times plain calls early in a context's life, so a check right after the
 * warm-up could meet a plain call where the timed calls encode, and report
 * no error for a lossy exchange. */
static void check_mode(rank_state_t *s, mode_run_t *m)
{
    if (!s->sh->o->check)
        return;
    /* poison first, so a token the call did not write cannot pass */
    memset(s->recv, 0xA5, (size_t)s->n * s->maxtok * s->tb);
    call_mode(s, m, "checked lshmoe_alltoallv");
    check(s, m->lsh, m->tok, &m->rec);
}

/*
 * The timed calls of both modes, interleaved: call i of the plain mode and
 * call i of lshmoe run back to back, each behind a barrier, the plain one
 * first in even pairs and second in odd ones. A host whose speed drifts
 * (other jobs, frequency) then slows both modes alike, and the speedup is
 * taken per pair (reduce_mode); timing all plain calls and then all
 * lshmoe calls made two identical modes differ by 0.66x-2.1x on a shared
 * 2-core host. `plain` is NULL without --baseline.
 */
static void time_modes(rank_state_t *s, mode_run_t *plain, mode_run_t *lsh)
{
    const bench_opts_t *o = s->sh->o;
    mode_run_t *m[2] = {plain, lsh};
    const lshmoe_stats_t init = LSHMOE_STATS_INITIALIZER;
    for (int k = 0; k < 2; k++)
        if (m[k] != NULL) {
            m[k]->a = m[k]->b = init; /* lshmoe_stats_get() checks the header */
            stats_get(s, m[k], &m[k]->a);
        }
    for (int it = 0; it < o->iters; it++) {
        for (int k = 0; k < 2; k++) {
            mode_run_t *cur = m[k ^ (it & 1)];
            if (cur == NULL)
                continue;
            barrier(s);
            double t0 = lshmoe_now();
            call_mode(s, cur, "timed lshmoe_alltoallv");
            cur->call_s[it] = lshmoe_now() - t0;
        }
    }
    for (int k = 0; k < 2; k++)
        if (m[k] != NULL)
            stats_get(s, m[k], &m[k]->b);
}

/* The reduced row of one mode; coll_s[i] = call i's time on its slowest
 * rank (the collective's time). `policy`, if not NULL, receives the
 * policy's decisions in the timed calls. */
static bench_row_t reduce_mode(rank_state_t *s, mode_run_t *m, double *coll_s,
                               policy_count_t *policy)
{
    const bench_opts_t *o = s->sh->o;
    const lshmoe_stats_t *a = &m->a, *b = &m->b;
    rank_rec_t rec = m->rec;
    double k = 1.0 / o->iters;
    rec.hash_s = (b->time_hash_s - a->time_hash_s) * k;
    rec.pack_s = (b->time_pack_s - a->time_pack_s) * k;
    rec.exch_s = (b->time_exchange_s - a->time_exchange_s) * k;
    rec.unpack_s = (b->time_unpack_s - a->time_unpack_s) * k;
    rec.bytes_in = (double)(b->bytes_in - a->bytes_in) * k;
    rec.wire = (double)(b->bytes_wire - a->bytes_wire) * k;
    rec.calls = (double)(b->calls - a->calls);
    rec.calls_plain = (double)(b->calls_plain_policy - a->calls_plain_policy);
    rec.calls_explored = (double)(b->calls_explored - a->calls_explored);
    for (int f = 0; f < LSHMOE_ROW_FORMATS; f++)
        rec.seg_fmt[f] = (double)(b->segments_by_format[f] - a->segments_by_format[f]) * k;
    rec.seg_grouped = (double)(b->segments_grouped - a->segments_grouped) * k;
    rec.seg_refined = (double)(b->segments_refined - a->segments_refined) * k;
    rec.seg_raw = (double)(b->segments_raw - a->segments_raw) * k;

    rank_rec_t *all = xmalloc(s, (size_t)s->n * sizeof *all);
    double *times = xmalloc(s, (size_t)s->n * (size_t)o->iters * sizeof *times);
    allgather(s, &rec, sizeof rec, all);
    allgather(s, m->call_s, (size_t)o->iters * sizeof *times, times);
    bench_row_t r;
    memset(&r, 0, sizeof r);
    /* a call takes as long as its slowest rank; the row's time is the
     * median call (one descheduled call must not decide it) */
    for (int it = 0; it < o->iters; it++) {
        coll_s[it] = 0.0;
        for (int p = 0; p < s->n; p++)
            coll_s[it] = fmax(coll_s[it], times[(size_t)p * (size_t)o->iters + (size_t)it]);
    }
    double *sorted = xmalloc(s, (size_t)o->iters * sizeof *sorted);
    memcpy(sorted, coll_s, (size_t)o->iters * sizeof *sorted);
    r.time_us = bench_median(sorted, o->iters) * 1e6;
    free(sorted);
    free(times);
    double in = 0, wire = 0, num = 0, den = 0, cs = 0, ct = 0, wrong = 0;
    for (int p = 0; p < s->n; p++) {
        r.hash_us = fmax(r.hash_us, all[p].hash_s * 1e6);
        r.pack_us = fmax(r.pack_us, all[p].pack_s * 1e6);
        r.exchange_us = fmax(r.exchange_us, all[p].exch_s * 1e6);
        r.unpack_us = fmax(r.unpack_us, all[p].unpack_s * 1e6);
        in += all[p].bytes_in;
        wire += all[p].wire;
        num += all[p].err_num;
        den += all[p].err_den;
        cs += all[p].cos_sum;
        ct += all[p].checked_tokens;
        wrong += all[p].wrong;
        if (policy != NULL) {
            policy->calls += all[p].calls;
            policy->plain += all[p].calls_plain;
            policy->explored += all[p].calls_explored;
        }
        for (int f = 0; f < LSHMOE_ROW_FORMATS; f++)
            r.seg_by_format[f] += all[p].seg_fmt[f];
        r.seg_grouped += all[p].seg_grouped;
        r.seg_refined += all[p].seg_refined;
        r.seg_raw += all[p].seg_raw;
    }
    free(all);
    r.lsh = m->lsh;
    r.tokens = m->tok;
    r.dtype = o->dtype;
    r.hidden = s->sh->hidden;
    r.bytes = (size_t)s->n * m->tok * s->tb;
    r.algbw = r.time_us > 0 ? (double)r.bytes / r.time_us * 1e-3 : 0.0;
    r.busbw = r.algbw * (s->n - 1) / s->n;
    r.eff_bw = r.algbw;
    r.wire_bytes = wire / s->n;
    r.ratio = wire > 0 ? in / wire : 1.0;  /* remote bytes in / bytes sent */
    r.checked = o->check;
    r.rel_err = den > 0 ? sqrt(num / den) : 0.0;
    r.cosine = ct > 0 ? cs / ct : 0.0;
    r.wrong = (long long)wrong;
    r.speedup = -1.0;
    return r;
}

/* The median over pairs of plain call i's time / lshmoe call i's time. */
static double pair_speedup(const double *plain_s, const double *lsh_s, int n, double *tmp)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (lsh_s[i] > 0)
            tmp[k++] = plain_s[i] / lsh_s[i];
    return k > 0 ? bench_median(tmp, k) : -1.0;
}

/* world: 0 = control, 1 = plain, 2 = compressed (self transport only). */
static lshmoe_ctx_t *make_ctx(rank_state_t *s, const lshmoe_comm_desc_t *desc0, int world,
                              int compress)
{
    const bench_opts_t *o = s->sh->o;
    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    lshmoe_comm_desc_t d = *desc0, *desc = &d;
    lshmoe_ctx_t *ctx = NULL;
    if (!s->sh->use_mpi && world > 0)
        d.native = s->sh->worlds[world - 1];
    /* The lshmoe row leaves `compress` to LSHMOE_COMPRESS (default 1), so
     * LSHMOE_COMPRESS=0 measures the library's exact path against plain. */
    if (!compress)
        cfg.compress = 0;
    if (compress) {
        cfg.num_hashes = o->hashes;
        cfg.cdim = o->cdim;
        cfg.residual_bits = o->residual_bits;
    }
    lshmoe_status_t st = lshmoe_ctx_create(desc, &cfg, &ctx);
    if (st != LSHMOE_OK)
        fatal(s, "lshmoe_ctx_create", st, NULL);
    return ctx;
}

#define NAME_LEN 64

static void preamble(rank_state_t *s, const lshmoe_config_t *cfg, const char (*hosts)[NAME_LEN],
                     double gbps, double lat)
{
    const bench_opts_t *o = s->sh->o;
    printf("# alltoall_perf: lshmoe %s, transport %s, %d ranks\n", lshmoe_version_string(),
           s->sh->use_mpi ? "mpi" : "self", s->n);
    if (s->sh->use_mpi)
        printf("# MPI library: %s\n", s->sh->mpi_lib);
    printf("# config: hashes %d, cdim %d, reduce %s %d, rounds %d, residual bits %d, "
           "min ratio %g\n", (int)cfg->num_hashes, (int)cfg->cdim,
           cfg->reduce == LSHMOE_REDUCE_PAD ? "pad" : "fold", (int)cfg->reduce_dim,
           (int)cfg->rounds, (int)cfg->residual_bits, cfg->min_ratio);
    if (s->sh->npy.data != NULL)
        printf("# data: %s (%zu rows x %zu, cycled per segment)\n", o->data, s->sh->npy.rows,
               s->sh->npy.cols);
    else if (!strcmp(o->data, "gaussian"))
        printf("# data: gaussian (i.i.d. N(0,1))\n");
    else
        printf("# data: clustered (%zu centers per segment, noise %g)\n", o->centers, o->noise);
    if (gbps > 0 || lat > 0)
        printf("# link emulation: %g Gb/s per rank, %g us per message\n", gbps, lat);
    else
        printf("# link emulation: off\n");
    printf("# iters %d, warmup %d, check %d\n# rank map:", o->iters, o->warmup, o->check);
    for (int p = 0; p < s->n; p++)
        printf(" %d:%s", p, hosts[p]);
    printf("\n");
}

static void rank_main_desc(shared_t *sh, const lshmoe_comm_desc_t *desc)
{
    const bench_opts_t *o = sh->o;
    rank_state_t s0, *s = &s0;
    memset(s, 0, sizeof *s);
    s->me = desc->rank;
    s->n = desc->nranks;
    s->sh = sh;
    s->ones = xmalloc(s, (size_t)s->n * sizeof(size_t));
    s->iota = xmalloc(s, (size_t)s->n * sizeof(size_t));
    for (int p = 0; p < s->n; p++) {
        s->ones[p] = 1;
        s->iota[p] = (size_t)p;
    }
    s->ctl = make_ctx(s, desc, 0, 0);
    if (o->baseline)
        s->plain = make_ctx(s, desc, 1, 0);
    s->lsh = make_ctx(s, desc, 2, 1);

    /* Host names for the rank map, and whether rank 0 can write -J. */
    struct { char host[NAME_LEN]; int json_ok; } mine, *all = xmalloc(s, (size_t)s->n * sizeof mine);
    memset(&mine, 0, sizeof mine);
    gethostname(mine.host, sizeof mine.host - 1);
    mine.json_ok = 1;
    if (s->me == 0 && o->json != NULL) {
        FILE *f = fopen(o->json, "w");
        mine.json_ok = f != NULL;
        if (f)
            fclose(f);
        else
            fprintf(stderr, "alltoall_perf: cannot write %s\n", o->json);
    }
    allgather(s, &mine, sizeof mine, all);
    if (!all[0].json_ok) {
        sh->exit_code = 1;
        goto out;
    }
    char (*hosts)[NAME_LEN] = xmalloc(s, (size_t)s->n * NAME_LEN);
    for (int p = 0; p < s->n; p++)
        memcpy(hosts[p], all[p].host, NAME_LEN);

    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    lshmoe_ctx_get_config(s->lsh, &cfg);
    double gbps = bench_env_double("LSHMOE_LINK_GBPS");
    double lat = bench_env_double("LSHMOE_LINK_LATENCY_US");
    s->tb = sh->hidden * lshmoe_dtype_size(o->dtype);
    size_t toks[64], nsz = bench_sizes(o, s->tb, toks, 64);
    if (s->me == 0) {
        preamble(s, &cfg, (const char (*)[NAME_LEN])hosts, gbps, lat);
        if (nsz == 0)
            printf("# no size in -b..-e holds a whole token of %zu bytes\n", s->tb);
        bench_print_header(stdout);
    }
    free(hosts);
    for (size_t i = 0; i < nsz; i++)
        s->maxtok = toks[i] > s->maxtok ? toks[i] : s->maxtok;

    /* Send and expected data for the largest size; smaller sizes use each
     * segment's first tokens, which are the same tokens (see gen_segment). */
    size_t seg = s->maxtok * s->tb;
    if (s->maxtok > 0 && seg / s->maxtok != s->tb)
        fatal(s, "buffer size overflows", LSHMOE_ERR_INVALID_ARG, NULL);
    s->counts = xmalloc(s, (size_t)s->n * sizeof(size_t));
    s->displs = xmalloc(s, (size_t)s->n * sizeof(size_t));
    s->send = xmalloc(s, (size_t)s->n * seg);
    s->recv = xmalloc(s, (size_t)s->n * seg);
    s->expect = o->check ? xmalloc(s, (size_t)s->n * seg) : NULL;
    s->fbuf = xmalloc(s, s->maxtok * sh->hidden * sizeof(float));
    s->ga = xmalloc(s, sh->hidden * sizeof(float));
    s->gb = xmalloc(s, sh->hidden * sizeof(float));
    for (int p = 0; p < s->n; p++) {
        s->displs[p] = (size_t)p * s->maxtok;
        gen_segment(sh, s->me, p, s->maxtok, s->fbuf);
        lt_to_dtype(s->fbuf, s->maxtok * sh->hidden, o->dtype, s->send + (size_t)p * seg);
        if (o->check) {
            gen_segment(sh, p, s->me, s->maxtok, s->fbuf);
            lt_to_dtype(s->fbuf, s->maxtok * sh->hidden, o->dtype, s->expect + (size_t)p * seg);
        }
    }

    bench_row_t *rows = xmalloc(s, 2 * (nsz ? nsz : 1) * sizeof *rows);
    size_t nrows = 0;
    long long plain_wrong = 0;
    size_t ni = (size_t)o->iters;
    double *call_s = xmalloc(s, 5 * ni * sizeof *call_s); /* 2 modes, 2 reduced, scratch */
    for (size_t i = 0; i < nsz; i++) {
        mode_run_t mp = {.ctx = s->plain, .lsh = 0, .tok = toks[i], .call_s = call_s};
        mode_run_t ml = {.ctx = s->lsh, .lsh = 1, .tok = toks[i], .call_s = call_s + ni};
        if (o->baseline)
            warm_up_mode(s, &mp);
        warm_up_mode(s, &ml);
        time_modes(s, o->baseline ? &mp : NULL, &ml);
        if (o->baseline)
            check_mode(s, &mp);
        check_mode(s, &ml);
        double *plain_coll = call_s + 2 * ni, *lsh_coll = call_s + 3 * ni;
        if (o->baseline) {
            bench_row_t r = reduce_mode(s, &mp, plain_coll, NULL);
            plain_wrong += r.checked ? r.wrong : 0;
            rows[nrows++] = r;
            if (s->me == 0)
                bench_print_row(stdout, &r);
        }
        policy_count_t pc = {0, 0, 0};
        bench_row_t r = reduce_mode(s, &ml, lsh_coll, &pc);
        if (!cfg.compress)
            pc.plain = pc.calls; /* LSHMOE_COMPRESS=0: nothing is encoded */
        if (o->baseline)
            r.speedup = pair_speedup(plain_coll, lsh_coll, o->iters, call_s + 4 * ni);
        rows[nrows++] = r;
        if (s->me == 0) {
            bench_print_row(stdout, &r);
            /* rank-calls: each rank counts its own (docs/api.md) */
            printf("#   policy, timed calls x ranks: %.0f encoded, %.0f plain, %.0f of them "
                   "explored\n", pc.calls - pc.plain, pc.plain, pc.explored);
        }
    }
    if (plain_wrong != 0) {
        if (s->me == 0)
            fprintf(stderr, "alltoall_perf: FAILED: %lld plain tokens arrived different from "
                    "what was sent\n", plain_wrong);
        sh->exit_code = 1;
    }
    if (s->me == 0 && o->json != NULL) {
        bench_meta_t m = {sh->argc, sh->argv, sh->use_mpi ? "mpi" : "self", s->n, &cfg,
                          o->data, gbps, lat};
        if (bench_write_json(o->json, &m, rows, nrows) != 0) {
            fprintf(stderr, "alltoall_perf: cannot write %s\n", o->json);
            sh->exit_code = 1;
        }
    }
    free(rows);
    free(call_s);
out:
    /* every rank's exit status must agree: plain_wrong and json_ok are
     * global (reduced or gathered), so exit_code is the same everywhere */
    free(all);
    lshmoe_ctx_destroy(s->lsh);
    lshmoe_ctx_destroy(s->plain);
    lshmoe_ctx_destroy(s->ctl);
    free(s->ones);
    free(s->iota);
    free(s->counts);
    free(s->displs);
    free(s->send);
    free(s->recv);
    free(s->expect);
    free(s->fbuf);
    free(s->ga);
    free(s->gb);
}

static void self_rank(lt_rank_ctx_t *rc)
{
    shared_t *sh = rc->arg;
    lshmoe_comm_desc_t desc = lt_self_desc(rc);
    /* only rank 0 writes sh->exit_code; the others compute the same value */
    shared_t mine = *sh;
    rank_main_desc(rc->rank == 0 ? sh : &mine, &desc);
}

/* --transport nccl hands the whole run to alltoall_perf_nccl.c. */
static int wants_nccl(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--transport") && !strcmp(argv[i + 1], "nccl"))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (wants_nccl(argc, argv)) {
#if BENCH_HAVE_NCCL
        return alltoall_perf_nccl_main(argc, argv);
#else
        fprintf(stderr, "alltoall_perf: --transport nccl: this build has no NCCL transport\n");
        return 1;
#endif
    }
    static const char *const size_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", NULL};
    static const char *const rank_vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", NULL};
    int lsize = bench_launcher_env(size_vars), lrank = bench_launcher_env(rank_vars);
    int talker = lrank <= 0;  /* one process prints argument errors */
    bench_opts_t o;
    char err[256];
    bench_opts_default(&o);
    int pr = bench_parse(argc, argv, &o, err, sizeof err);
    if (pr == 1)
        return 0;
    if (pr == 0 && o.transport == BENCH_TR_DEFAULT)
        o.transport = BENCH_HAVE_MPI && lsize > 1 ? BENCH_TR_MPI : BENCH_TR_SELF;
    if (pr == 0 && o.transport == BENCH_TR_MPI && !BENCH_HAVE_MPI) {
        snprintf(err, sizeof err, "--transport mpi: this build has no MPI");
        pr = -1;
    }
    if (pr == 0 && o.transport == BENCH_TR_SELF && lsize > 1) {
        snprintf(err, sizeof err, "--transport self runs in one process, but %d were "
                 "launched (use --ranks N without mpirun)", lsize);
        pr = -1;
    }
    shared_t sh;
    memset(&sh, 0, sizeof sh);
    sh.o = &o;
    sh.argc = argc;
    sh.argv = argv;
    sh.hidden = o.hidden;
    if (pr == 0 && strcmp(o.data, "clustered") && strcmp(o.data, "gaussian")) {
        char nerr[200];
        if (npy_load(o.data, &sh.npy, nerr, sizeof nerr) != NPY_OK) {
            snprintf(err, sizeof err, "--data: %s", nerr);
            pr = -1;
        } else {
            sh.hidden = sh.npy.cols;  /* the file decides the width */
        }
    }
    if (pr != 0) {
        if (talker)
            fprintf(stderr, "alltoall_perf: %s (see -h)\n", err);
        return 2;
    }
    /* Read by lshmoe_ctx_create(), so set before any context exists (and
     * before the rank threads start: setenv is not thread-safe). */
    bench_set_env_double("LSHMOE_LINK_GBPS", o.link_gbps);
    bench_set_env_double("LSHMOE_LINK_LATENCY_US", o.link_latency_us);

    if (o.transport == BENCH_TR_SELF) {
        sh.use_mpi = 0;
        for (int w = 0; w < 2; w++)
            if (lshmoe_self_world_create(o.ranks, 600.0, &sh.worlds[w]) != LSHMOE_OK) {
                fprintf(stderr, "alltoall_perf: lshmoe_self_world_create: %s\n",
                        lshmoe_last_error(NULL));
                return 1;
            }
        if (lt_run_ranks(o.ranks, 600.0, self_rank, &sh) != 0) {
            fprintf(stderr, "alltoall_perf: cannot start %d rank threads\n", o.ranks);
            sh.exit_code = 1;
        }
        lshmoe_self_world_destroy(sh.worlds[0]);
        lshmoe_self_world_destroy(sh.worlds[1]);
    }
#if BENCH_HAVE_MPI
    else {
        sh.use_mpi = 1;
        if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
            fprintf(stderr, "alltoall_perf: MPI_Init failed\n");
            return 1;
        }
        char lib[MPI_MAX_LIBRARY_VERSION_STRING];
        int len = 0;
        MPI_Get_library_version(lib, &len);
        lib[strcspn(lib, "\n,")] = '\0';  /* first line, up to the first comma */
        snprintf(sh.mpi_lib, sizeof sh.mpi_lib, "%s", lib);
        g_world = MPI_COMM_WORLD;
        lshmoe_comm_desc_t desc;
        if (lshmoe_comm_desc_from_mpi(&g_world, &desc) != LSHMOE_OK) {
            fprintf(stderr, "alltoall_perf: lshmoe_comm_desc_from_mpi failed\n");
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        rank_main_desc(&sh, &desc);
        MPI_Finalize();
    }
#endif
    npy_free(&sh.npy);
    return sh.exit_code;
}
