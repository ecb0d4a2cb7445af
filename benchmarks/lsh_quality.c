/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * lsh_quality: what the cross-polytope LSH kernels give on a token stream.
 * Cuts the tokens into segments (as the codec does per destination), hashes,
 * groups, takes centroids with the CPU kernels, and reports per
 * configuration: the token ratio (tokens / clusters), the byte ratio (fp32
 * rows vs 48-byte header + fp32 centroids + u16 index), the relative L2 error
 * of x_i ~ centroid, the mean cosine similarity and the hash throughput.
 * Families: reduction PAD/FOLD(m), rounds, and the kernel's block scheme vs L
 * independent one-function rotations, and hashing the tokens minus their
 * segment's mean ("-ctr"; the centroids stay means of the raw tokens).
 * See docs/algorithm.md.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"
#include "npy.h"

#define HDR_BYTES 48
#define MAXV 16

typedef struct family {
    const char *name;
    int reduce, m, rounds, indep, center;
} family_t;

static const family_t families[] = {
    {"pad-r3", LSHMOE_REDUCE_PAD, 0, 3, 0, 0},
    {"pad-r1", LSHMOE_REDUCE_PAD, 0, 1, 0, 0},
    {"fold32-r3", LSHMOE_REDUCE_FOLD, 32, 3, 0, 0},
    {"fold64-r3", LSHMOE_REDUCE_FOLD, 64, 3, 0, 0},
    {"fold128-r3", LSHMOE_REDUCE_FOLD, 128, 3, 0, 0},
    {"fold64-r1", LSHMOE_REDUCE_FOLD, 64, 1, 0, 0},
    {"pad-r3-indep", LSHMOE_REDUCE_PAD, 0, 3, 1, 0},
    {"fold64-r3-indep", LSHMOE_REDUCE_FOLD, 64, 3, 1, 0},
    {"pad-r3-ctr", LSHMOE_REDUCE_PAD, 0, 3, 0, 1},
    {"fold64-r3-ctr", LSHMOE_REDUCE_FOLD, 64, 3, 0, 1},
    {"fold64-r1-ctr", LSHMOE_REDUCE_FOLD, 64, 1, 0, 1},
};
#define NFAM ((int)(sizeof families / sizeof families[0]))

typedef struct opts {
    const char *npy;
    size_t gauss_n, gauss_d, segment, tp_tokens;
    uint64_t seed;
    int nseeds, csv, matrix, kmeans, throughput, tp_cdim, tp_L;
    int fam_on[NFAM];
    int cdims[MAXV], ncdims, Ls[MAXV], nLs, tp_hidden[MAXV], ntp;
    double targets[MAXV];
    int ntargets;
} opts_t;

typedef struct result {
    double ratio, bratio, err, errc, cos, gbps;
    double sd_ratio, sd_err;  /* across seeds */
    int valid;
} result_t;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *xalloc(size_t bytes)
{
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
    if (p == NULL) {
        fprintf(stderr, "lsh_quality: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double unif(uint64_t *s) /* (0, 1] */
{
    return ((double)(splitmix(s) >> 11) + 1.0) * 0x1.0p-53;
}

static float *gaussian(size_t n, size_t d, uint64_t seed)
{
    float *x = xalloc(n * d * sizeof *x);
    uint64_t s = seed;
    for (size_t i = 0; i < n * d; i++)
        x[i] = (float)(sqrt(-2.0 * log(unif(&s))) * cos(2 * M_PI * unif(&s)));
    return x;
}

static size_t next_pow2(size_t v)
{
    size_t p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

/* ---- metrics ----------------------------------------------------------- */

typedef struct acc {
    double num, den, denc, cos;
    size_t tokens, clusters, raw, wire;
} acc_t;

static void account(acc_t *a, const float *x, const float *rows, size_t n,
                    size_t d, const uint32_t *cl, size_t k)
{
    double *mu = calloc(d, sizeof *mu);
    if (mu == NULL)
        exit(1);
    for (size_t i = 0; i < n * d; i++)
        mu[i % d] += x[i] / (double)n;
    for (size_t i = 0; i < n * d; i++)
        a->denc += (x[i] - mu[i % d]) * (x[i] - mu[i % d]);
    free(mu);
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * d, *c = rows + (size_t)cl[i] * d;
        double e = 0, xx = 0, cc = 0, xc = 0;
        for (size_t j = 0; j < d; j++) {
            double df = (double)xi[j] - c[j];
            e += df * df;
            xx += (double)xi[j] * xi[j];
            cc += (double)c[j] * c[j];
            xc += (double)xi[j] * c[j];
        }
        a->num += e;
        a->den += xx;
        a->cos += (xx > 0 && cc > 0) ? xc / sqrt(xx * cc) : (xx == cc ? 1 : 0);
    }
    a->tokens += n;
    a->clusters += k;
    a->raw += n * d * 4;
    a->wire += HDR_BYTES + k * d * 4 + n * (n <= 65536 ? 2 : 4);
}

static void finish(const acc_t *a, result_t *r)
{
    r->ratio = (double)a->tokens / (double)a->clusters;
    r->bratio = (double)a->raw / (double)a->wire;
    r->err = a->den > 0 ? sqrt(a->num / a->den) : 0;
    r->errc = a->denc > 0 ? sqrt(a->num / a->denc) : 0;
    r->cos = a->cos / (double)a->tokens;
    r->valid = 1;
}

/* ---- one LSH configuration --------------------------------------------- */

typedef struct hashers {
    lshmoe_kn_hasher_t *h[MAXV];
    int nh;
    void *ws;
    uint64_t *sub; /* nh * segment keys (independent scheme) */
    float *xc;     /* centred segment (center), segment * d floats */
    double *mu;
    size_t d;
} hashers_t;

static int hashers_make(hashers_t *hs, const family_t *f, int cdim, int L,
                        uint64_t seed, size_t d, size_t seg)
{
    lshmoe_kn_lsh_params_t p = {seed, L, cdim, f->reduce,
                                f->m ? f->m : 64, f->rounds};
    size_t ws = 0;

    memset(hs, 0, sizeof *hs);
    hs->nh = f->indep ? L : 1;
    for (int i = 0; i < hs->nh; i++) {
        if (f->indep) {
            uint64_t s = seed + 0x632BE59BD9B4E019ull * (uint64_t)(i + 1);
            p.seed = splitmix(&s);
            p.num_hashes = 1;
        }
        lshmoe_status_t st = lshmoe_kn_hasher_create(&p, d, &hs->h[i]);
        if (st != LSHMOE_OK) {
            fprintf(stderr, "lsh_quality: %s cdim %d L %d: hasher_create: %s\n",
                    f->name, cdim, L, lshmoe_status_name(st));
            return -1;
        }
        size_t w = lshmoe_kn_hash_ws_size(hs->h[i]);
        ws = w > ws ? w : ws;
    }
    hs->ws = xalloc(ws);
    hs->sub = xalloc((size_t)hs->nh * seg * sizeof(uint64_t));
    hs->d = d;
    if (f->center) {
        hs->xc = xalloc(seg * d * sizeof(float));
        hs->mu = xalloc(d * sizeof(double));
    }
    return 0;
}

static void hashers_free(hashers_t *hs)
{
    for (int i = 0; i < hs->nh; i++)
        lshmoe_kn_hasher_destroy(hs->h[i]);
    free(hs->ws);
    free(hs->sub);
    free(hs->xc);
    free(hs->mu);
}

/* keys of n tokens; independent scheme: L one-function keys combined */
static void hash_seg(hashers_t *hs, const float *x, size_t n, uint64_t *keys)
{
    size_t nonfinite, d = hs->d;

    if (hs->xc != NULL) {  /* hash x - mean of the segment */
        memset(hs->mu, 0, d * sizeof(double));
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++)
                hs->mu[j] += x[i * d + j];
        for (size_t j = 0; j < d; j++)
            hs->mu[j] /= (double)n;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++)
                hs->xc[i * d + j] = (float)(x[i * d + j] - hs->mu[j]);
        x = hs->xc;
    }
    if (hs->nh == 1) {
        lshmoe_kn_hash(hs->h[0], x, LSHMOE_DTYPE_FP32, n, keys, hs->ws,
                       &nonfinite);
        return;
    }
    for (int j = 0; j < hs->nh; j++)
        lshmoe_kn_hash(hs->h[j], x, LSHMOE_DTYPE_FP32, n, hs->sub + j * n,
                       hs->ws, &nonfinite);
    for (size_t i = 0; i < n; i++) {
        uint64_t h = 0x243F6A8885A308D3ull;
        int bad = 0;
        for (int j = 0; j < hs->nh; j++) {
            uint64_t k = hs->sub[j * n + i];
            bad |= k == LSHMOE_KN_KEY_NONFINITE;
            h ^= k;
            h = splitmix(&h);
        }
        keys[i] = bad ? LSHMOE_KN_KEY_NONFINITE : h >> 1;
    }
}

/* Tokens whose L-tuple differs from their cluster's first token's: a
 * collision of the combined key (expected 0). */
static size_t tuple_collisions(const hashers_t *hs, size_t n,
                               const uint32_t *cl, uint32_t *first)
{
    size_t bad = 0, k = 0;
    for (size_t i = 0; i < n; i++) {
        if (cl[i] == k)
            first[k++] = (uint32_t)i;
        for (int j = 0; j < hs->nh; j++)
            if (hs->sub[j * n + i] != hs->sub[j * n + first[cl[i]]]) {
                bad++;
                break;
            }
    }
    return bad;
}

static int eval_lsh(const opts_t *o, const float *x, size_t n, size_t d,
                    const family_t *f, int cdim, int L, uint64_t seed,
                    int timeit, result_t *r)
{
    size_t seg = o->segment, nseg = (n + seg - 1) / seg, collisions = 0;
    hashers_t hs;
    acc_t a = {0};

    if (hashers_make(&hs, f, cdim, L, seed, d, seg) != 0)
        return -1;
    uint64_t *keys = xalloc(seg * sizeof *keys);
    uint32_t *cl = xalloc(seg * sizeof *cl), *sizes = xalloc(seg * 4);
    uint32_t *first = xalloc(seg * 4);
    float *rows = xalloc(seg * d * 4), *acc = xalloc(seg * d * 4);
    void *gws = xalloc(lshmoe_kn_group_ws_size(seg));

    for (size_t s = 0; s < nseg; s++) {
        size_t m = s + 1 < nseg ? seg : n - s * seg, k;
        const float *xs = x + s * seg * d;
        hash_seg(&hs, xs, m, keys);
        lshmoe_kn_group(keys, m, cl, &k, gws);
        if (hs.nh > 1)
            collisions += tuple_collisions(&hs, m, cl, first);
        lshmoe_kn_centroids(xs, LSHMOE_DTYPE_FP32, d, m, cl, k, rows, sizes,
                            acc);
        account(&a, xs, rows, m, d, cl, k);
    }
    finish(&a, r);
    if (collisions)
        fprintf(stderr, "lsh_quality: %s: %zu combined-key collisions\n",
                f->name, collisions);
    r->gbps = 0;
    if (timeit) {
        double t0 = now(), t;
        size_t reps = 0;
        do {
            for (size_t s = 0; s < nseg; s++) {
                size_t m = s + 1 < nseg ? seg : n - s * seg;
                hash_seg(&hs, x + s * seg * d, m, keys);
            }
            reps++;
            t = now() - t0;
        } while (t < 0.05);
        r->gbps = (double)reps * (double)(n * d * 4) / t * 1e-9;
    }
    free(keys); free(cl); free(sizes); free(first); free(rows); free(acc);
    free(gws);
    hashers_free(&hs);
    return 0;
}

/* ---- k-means reference: k-means++ init, 15 Lloyd iterations ----------- */

static double dist2(const float *a, const float *b, size_t d)
{
    double s = 0;
    for (size_t j = 0; j < d; j++) {
        double t = (double)a[j] - b[j];
        s += t * t;
    }
    return s;
}

static void eval_kmeans(const opts_t *o, const float *x, size_t n, size_t d,
                        double target, result_t *r)
{
    size_t seg = o->segment, nseg = (n + seg - 1) / seg;
    uint32_t *cl = xalloc(seg * 4);
    float *c = xalloc(seg * d * 4);
    double *best = xalloc(seg * sizeof(double)), *sum = xalloc(seg * d * 8);
    size_t *cnt = xalloc(seg * sizeof(size_t));
    uint64_t rng = o->seed ^ 0xA5A5A5A5u;
    acc_t a = {0};

    for (size_t s = 0; s < nseg; s++) {
        size_t m = s + 1 < nseg ? seg : n - s * seg;
        size_t k = (size_t)fmax(1.0, floor((double)m / target + 0.5));
        const float *xs = x + s * seg * d;
        memcpy(c, xs + (splitmix(&rng) % m) * d, d * 4);
        for (size_t i = 0; i < m; i++)
            best[i] = dist2(xs + i * d, c, d);
        for (size_t j = 1; j < k; j++) {      /* k-means++ seeding */
            double tot = 0, u, run = 0;
            size_t pick = m - 1;
            for (size_t i = 0; i < m; i++)
                tot += best[i];
            u = unif(&rng) * tot;
            for (size_t i = 0; i < m; i++)
                if ((run += best[i]) >= u) {
                    pick = i;
                    break;
                }
            memcpy(c + j * d, xs + pick * d, d * 4);
            for (size_t i = 0; i < m; i++)
                best[i] = fmin(best[i], dist2(xs + i * d, c + j * d, d));
        }
        for (int it = 0; it <= 15; it++) {
            for (size_t i = 0; i < m; i++) {
                double bd = INFINITY;
                for (size_t j = 0; j < k; j++) {
                    double dd = dist2(xs + i * d, c + j * d, d);
                    if (dd < bd) {
                        bd = dd;
                        cl[i] = (uint32_t)j;
                    }
                }
            }
            if (it == 15)
                break;
            memset(sum, 0, k * d * 8);
            memset(cnt, 0, k * sizeof *cnt);
            for (size_t i = 0; i < m; i++) {
                cnt[cl[i]]++;
                for (size_t t = 0; t < d; t++)
                    sum[cl[i] * d + t] += xs[i * d + t];
            }
            for (size_t j = 0; j < k; j++)
                for (size_t t = 0; cnt[j] && t < d; t++)
                    c[j * d + t] = (float)(sum[j * d + t] / (double)cnt[j]);
        }
        account(&a, xs, c, m, d, cl, k);
    }
    finish(&a, r);
    r->gbps = 0;
    free(cl); free(c); free(best); free(sum); free(cnt);
}

/* ---- frontier: best error at a target token ratio ---------------------- */

/* Interpolates the error of the curve res[0..nL) (one cdim, L ascending) at
 * ratio `t`, linear in log(ratio); NAN when t is outside the curve. */
static double at_ratio(const result_t *res, int nL, double t)
{
    for (int i = 0; i + 1 < nL; i++) {
        const result_t *a = &res[i], *b = &res[i + 1];
        if (!a->valid || !b->valid)
            continue;
        double hi = fmax(a->ratio, b->ratio), lo = fmin(a->ratio, b->ratio);
        if (t > hi || t < lo)
            continue;
        if (hi == lo)
            return fmin(a->err, b->err);
        double w = (log(t) - log(a->ratio)) / (log(b->ratio) - log(a->ratio));
        return a->err + w * (b->err - a->err);
    }
    return NAN;
}

/* ---- options ----------------------------------------------------------- */

static int parse_list(const char *s, int *v, int max)
{
    int n = 0;
    char *end;
    while (*s && n < max) {
        if (strncmp(s, "full", 4) == 0) {
            v[n++] = 0;
            s += 4;
        } else {
            long x = strtol(s, &end, 10);
            if (end == s || x < 0 || x > 1 << 20)
                return -1;
            v[n++] = (int)x;
            s = end;
        }
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return n;
}

static void usage(void)
{
    fprintf(stderr,
"usage: lsh_quality (--npy FILE | --gaussian N,D) [options]\n"
"  --segment N       tokens per segment (512)\n"
"  --seed S          hash seed (1); --seeds K averages seeds S..S+K-1 (1)\n"
"  --families LIST   pad-r3,pad-r1,fold32-r3,fold64-r3,fold128-r3,fold64-r1,\n"
"                    pad-r3-indep,fold64-r3-indep,pad-r3-ctr,fold64-r3-ctr,\n"
"                    fold64-r1-ctr (default: all)\n"
"  --cdims LIST      cross-polytope dims, 'full' = m (2,4,8,full)\n"
"  --hashes LIST     numbers of functions L (2,3,4,5,6,8,10)\n"
"  --targets LIST    token ratios of the frontier summary (2,3,4,5,8)\n"
"  --no-kmeans       skip the k-means reference\n"
"  --throughput LIST hash GB/s on Gaussian tokens of these hidden sizes\n"
"                    (e.g. 1024,4096; default none); --tp-tokens N (8192)\n"
"  --tp-config C,L   cdim and L of the throughput runs (4,6)\n"
"  --matrix          also print cdim x L matrices (ratio, error)\n"
"  --csv             CSV instead of tables\n");
}

static int parse_opts(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->segment = 512;
    o->seed = 1;
    o->nseeds = 1;
    o->kmeans = 1;
    o->tp_tokens = 8192;
    o->tp_cdim = 4;
    o->tp_L = 6;
    o->ncdims = parse_list("2,4,8,full", o->cdims, MAXV);
    o->nLs = parse_list("2,3,4,5,6,8,10", o->Ls, MAXV);
    for (int f = 0; f < NFAM; f++)
        o->fam_on[f] = 1;
    double dt[] = {2, 3, 4, 5, 8};
    memcpy(o->targets, dt, sizeof dt);
    o->ntargets = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int t[MAXV], n;
        if (!strcmp(a, "--csv")) { o->csv = 1; continue; }
        if (!strcmp(a, "--matrix")) { o->matrix = 1; continue; }
        if (!strcmp(a, "--no-kmeans")) { o->kmeans = 0; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); exit(0); }
        if (v == NULL) {
            fprintf(stderr, "lsh_quality: unknown option or missing value: %s\n", a);
            return -1;
        }
        i++;
        if (!strcmp(a, "--npy")) o->npy = v;
        else if (!strcmp(a, "--gaussian")) {
            unsigned long long nn, dd;
            if (sscanf(v, "%llu,%llu", &nn, &dd) != 2 || !nn || !dd
                || dd > 65536 || nn > (1ull << 26)) return -1;
            o->gauss_n = nn;
            o->gauss_d = dd;
        } else if (!strcmp(a, "--segment")) o->segment = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--tp-tokens")) o->tp_tokens = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--tp-config")) {
            if (sscanf(v, "%d,%d", &o->tp_cdim, &o->tp_L) != 2) return -1;
        } else if (!strcmp(a, "--seed")) o->seed = strtoull(v, NULL, 0);
        else if (!strcmp(a, "--seeds")) o->nseeds = atoi(v);
        else if (!strcmp(a, "--cdims")) o->ncdims = parse_list(v, o->cdims, MAXV);
        else if (!strcmp(a, "--hashes")) o->nLs = parse_list(v, o->Ls, MAXV);
        else if (!strcmp(a, "--throughput")) {
            o->ntp = parse_list(v, o->tp_hidden, MAXV);
            o->throughput = o->ntp > 0;
        } else if (!strcmp(a, "--targets")) {
            n = parse_list(v, t, MAXV);
            for (int j = 0; j < n; j++)
                o->targets[j] = t[j];
            o->ntargets = n;
        } else if (!strcmp(a, "--families")) {
            for (int f = 0; f < NFAM; f++)
                o->fam_on[f] = 0;
            char buf[512], *tok, *sp;
            snprintf(buf, sizeof buf, "%s", v);
            for (tok = strtok_r(buf, ",", &sp); tok; tok = strtok_r(NULL, ",", &sp)) {
                int f = 0;
                while (f < NFAM && strcmp(families[f].name, tok))
                    f++;
                if (f == NFAM) {
                    fprintf(stderr, "lsh_quality: unknown family %s\n", tok);
                    return -1;
                }
                o->fam_on[f] = 1;
            }
        } else {
            fprintf(stderr, "lsh_quality: unknown option %s\n", a);
            return -1;
        }
    }
    if ((o->npy == NULL) == (o->gauss_n == 0) || o->segment < 1
        || o->segment > 65536 || o->nseeds < 1 || o->nseeds > 64 || o->ncdims < 1 || o->nLs < 1
        || o->ntargets < 0 || o->tp_tokens < 1)
        return -1;
    for (int j = 0; j < o->nLs; j++)
        if (o->Ls[j] < 1 || o->Ls[j] > 16)
            return -1;
    return 0;
}

/* ---- main -------------------------------------------------------------- */

/* Mean over seeds (and the sample SD of ratio and error). */
static void combine(const result_t *r, int k, result_t *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < k; i++) {
        if (!r[i].valid)
            return;
        out->ratio += r[i].ratio / k;
        out->bratio += r[i].bratio / k;
        out->err += r[i].err / k;
        out->errc += r[i].errc / k;
        out->cos += r[i].cos / k;
    }
    for (int i = 0; k > 1 && i < k; i++) {
        out->sd_ratio += pow(r[i].ratio - out->ratio, 2) / (k - 1);
        out->sd_err += pow(r[i].err - out->err, 2) / (k - 1);
    }
    out->sd_ratio = sqrt(out->sd_ratio);
    out->sd_err = sqrt(out->sd_err);
    out->gbps = r[0].gbps;
    out->valid = 1;
}

static void print_row(const opts_t *o, const char *sec, const char *fam, int m,
                      int cdim, int L, size_t d, const result_t *r)
{
    if (o->csv)
        printf("%s,%s,%zu,%d,%d,%d,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.3f\n",
               sec, fam, d, m, cdim, L, r->ratio, r->sd_ratio, r->bratio,
               r->err, r->sd_err, r->errc, r->cos, r->gbps);
    else if (o->nseeds > 1 && strcmp(sec, "lsh") == 0)
        printf("%-16s %4d %5d %3d %7.2fx %5.2f %7.2fx %6.3f %5.3f %6.3f %6.3f "
               "%7.2f\n", fam, m, cdim, L, r->ratio, r->sd_ratio, r->bratio,
               r->err, r->sd_err, r->errc, r->cos, r->gbps);
    else
        printf("%-16s %4d %5d %3d %7.2fx %5s %7.2fx %6.3f %5s %6.3f %6.3f "
               "%7.2f\n", fam, m, cdim, L, r->ratio, "-", r->bratio, r->err,
               "-", r->errc, r->cos, r->gbps);
}

static void throughput(const opts_t *o, int cdim, int L)
{
    if (!o->csv)
        printf("\n# hash throughput, one core, best of 5: Gaussian fp32 tokens, "
               "%zu per run, segments of %zu,\n# cdim %d, L %d; memcpy of the "
               "same bytes for scale; -ctr families centre naively (double)\n"
               "%-16s %6s %9s %9s\n", o->tp_tokens, o->segment, cdim, L,
               "family", "hidden", "GB/s", "%memcpy");
    for (int h = 0; h < o->ntp; h++) {
        size_t d = (size_t)o->tp_hidden[h], n = o->tp_tokens;
        if (d < 1) continue;
        float *x = gaussian(n, d, 7), *y = xalloc(n * d * 4);
        double t0, t, mc = 0;
        size_t reps;
        memcpy(y, x, n * d * 4);  /* fault the pages in */
        for (int rep = 0; rep < 5; rep++) {
            t0 = now();
            reps = 0;
            do {
                memcpy(y, x, n * d * 4);
                __asm__ volatile("" ::"r"(y) : "memory");
                reps++;
                t = now() - t0;
            } while (t < 0.05);
            mc = fmax(mc, (double)reps * (double)(n * d * 4) / t * 1e-9);
        }
        if (o->csv)
            printf("throughput,memcpy,%zu,0,0,0,0,0,0,0,0,0,0,%.3f\n", d, mc);
        for (int f = 0; f < NFAM; f++) {
            const family_t *fa = &families[f];
            hashers_t hs;
            uint64_t *keys = xalloc(o->segment * 8);
            if (!o->fam_on[f]) { free(keys); continue; }
            if (hashers_make(&hs, fa, cdim, L, o->seed, d, o->segment) != 0) {
                free(keys);
                continue;
            }
            double best = 0;
            for (size_t s = 0; s < n; s += o->segment)  /* warm-up */
                hash_seg(&hs, x + s * d, n - s < o->segment ? n - s : o->segment,
                         keys);
            for (int rep = 0; rep < 5; rep++) {
                t0 = now();
                reps = 0;
                do {
                    for (size_t s = 0; s < n; s += o->segment) {
                        size_t m = n - s < o->segment ? n - s : o->segment;
                        hash_seg(&hs, x + s * d, m, keys);
                    }
                    reps++;
                    t = now() - t0;
                } while (t < 0.05);
                best = fmax(best, (double)reps * (double)(n * d * 4) / t * 1e-9);
            }
            int m = fa->m ? fa->m : (int)next_pow2(d);
            if (o->csv)
                printf("throughput,%s,%zu,%d,%d,%d,0,0,0,0,0,0,0,%.3f\n", fa->name, d,
                       m, cdim, L, best);
            else
                printf("%-16s %6zu %9.2f %8.1f%%\n", fa->name, d, best,
                       100 * best / mc);
            hashers_free(&hs);
            free(keys);
        }
        if (!o->csv)
            printf("%-16s %6zu %9.2f %8.1f%%\n", "memcpy", d, mc, 100.0);
        free(x);
        free(y);
    }
}

int main(int argc, char **argv)
{
    opts_t o;
    float *x;
    size_t n, d;
    char err[512];
    static result_t res[NFAM][MAXV][MAXV];

    if (parse_opts(argc, argv, &o) != 0) {
        usage();
        return 2;
    }
    if (o.npy) {
        npy_matrix_t mt;
        if (npy_load(o.npy, &mt, err, sizeof err) != NPY_OK) {
            fprintf(stderr, "lsh_quality: %s\n", err);
            return 1;
        }
        x = mt.data;
        n = mt.rows;
        d = mt.cols;
    } else {
        n = o.gauss_n;
        d = o.gauss_d;
        x = gaussian(n, d, 12345);
    }
    if (o.csv)
        printf("section,family,hidden,m,cdim,L,ratio,ratio_sd,byte_ratio,"
               "rel_err,rel_err_sd,err_vs_spread,cos,hash_gbps\n");
    else
        printf("# lsh_quality: %s%s: %zu tokens x %zu, segments of %zu, hash "
               "seeds %llu..%llu (mean, sd = across seeds)\n"
               "# ratio = tokens/clusters; bytes = raw fp32 / (%d-byte header "
               "+ fp32 centroids + u16 index)\n"
               "# err = relative L2 of x ~ centroid; err/spr = the same L2 over "
               "||x - segment mean|| (1 = no better\n# than sending the segment "
               "mean); cos = mean cosine(x, centroid); GB/s = hash throughput "
               "on\n# this data (fp32, one core, first seed)\n"
               "%-16s %4s %5s %3s %8s %5s %8s %6s %5s %6s %6s %7s\n",
               o.npy ? o.npy : "gaussian", o.npy ? "" : " i.i.d.", n, d,
               o.segment, (unsigned long long)o.seed,
               (unsigned long long)(o.seed + (uint64_t)o.nseeds - 1), HDR_BYTES,
               "family", "m", "cdim", "L", "ratio", "sd", "bytes", "err", "sd",
               "err/spr", "cos", "GB/s");
    for (int f = 0; f < NFAM; f++) {
        const family_t *fa = &families[f];
        int m = fa->m ? fa->m : (int)next_pow2(d);
        if (!o.fam_on[f])
            continue;
        for (int c = 0; c < o.ncdims; c++) {
            int cdim = o.cdims[c] ? o.cdims[c] : m;
            if (cdim > m)
                continue;
            for (int l = 0; l < o.nLs; l++) {
                result_t one[64];
                for (int s = 0; s < o.nseeds; s++)
                    if (eval_lsh(&o, x, n, d, fa, cdim, o.Ls[l],
                                 o.seed + (uint64_t)s, s == 0, &one[s]) != 0)
                        one[s].valid = 0;
                combine(one, o.nseeds, &res[f][c][l]);
                if (res[f][c][l].valid)
                    print_row(&o, "lsh", fa->name, m, cdim, o.Ls[l], d,
                              &res[f][c][l]);
            }
        }
        if (!o.csv)
            printf("\n");
    }
    if (o.matrix && !o.csv) {
        for (int f = 0; f < NFAM; f++) {
            int m = families[f].m ? families[f].m : (int)next_pow2(d);
            if (!o.fam_on[f])
                continue;
            printf("## %s (m %d): token ratio, error\n| cdim |", families[f].name, m);
            for (int l = 0; l < o.nLs; l++)
                printf(" L=%d |", o.Ls[l]);
            printf("\n|---|");
            for (int l = 0; l < o.nLs; l++)
                printf("---|");
            printf("\n");
            for (int c = 0; c < o.ncdims; c++) {
                if (!res[f][c][0].valid)
                    continue;
                if (o.cdims[c])
                    printf("| %d |", o.cdims[c]);
                else
                    printf("| full (%d) |", m);
                for (int l = 0; l < o.nLs; l++)
                    printf(" %.1fx, %.2f |", res[f][c][l].ratio, res[f][c][l].err);
                printf("\n");
            }
            printf("\n");
        }
    }
    /* reference points: the segment mean alone, k-means */
    result_t km[MAXV] = {{0}}, segmean;
    eval_kmeans(&o, x, n, d, (double)o.segment, &segmean);
    if (!o.csv)
        printf("# reference: one cluster per segment (its mean), k-means "
               "(k-means++ seeding, 15 Lloyd iterations)\n");
    print_row(&o, "ref", "segment-mean", 0, 0, 0, d, &segmean);
    for (int t = 0; o.kmeans && t < o.ntargets; t++) {
        char name[32];
        eval_kmeans(&o, x, n, d, o.targets[t], &km[t]);
        snprintf(name, sizeof name, "kmeans-%gx", o.targets[t]);
        print_row(&o, "ref", name, 0, 0, 0, d, &km[t]);
    }
    /* frontier summary */
    if (!o.csv && o.ntargets > 0) {
        printf("\n# error at a token ratio (interpolated along L, best cdim "
               "in brackets)\n%-16s", "family");
        for (int t = 0; t < o.ntargets; t++)
            printf(" %9.0fx", o.targets[t]);
        printf("\n");
        for (int f = 0; f < NFAM; f++) {
            if (!o.fam_on[f])
                continue;
            printf("%-16s", families[f].name);
            for (int t = 0; t < o.ntargets; t++) {
                double be = NAN;
                int bc = 0;
                for (int c = 0; c < o.ncdims; c++) {
                    double e = at_ratio(res[f][c], o.nLs, o.targets[t]);
                    if (!isnan(e) && (isnan(be) || e < be)) {
                        be = e;
                        bc = o.cdims[c] ? o.cdims[c]
                            : (families[f].m ? families[f].m : (int)next_pow2(d));
                    }
                }
                if (isnan(be))
                    printf(" %10s", "-");
                else
                    printf(" %4.2f (%3d)", be, bc);
            }
            printf("\n");
        }
        if (o.kmeans) {
            printf("%-16s", "k-means (15 it)");
            for (int t = 0; t < o.ntargets; t++)
                printf(" %4.2f %5s", km[t].err, "");
            printf("\n");
        }
    }
    if (o.throughput)
        throughput(&o, o.tp_cdim, o.tp_L);
    free(x);
    return 0;
}
