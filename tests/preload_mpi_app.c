/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * An ordinary MPI program that knows nothing of lshmoe: MPI_Alltoall and
 * MPI_Alltoallv on int32, double and float with uneven counts, plus the
 * cases the preload must leave alone (MPI_IN_PLACE, derived types, one
 * rank below the minimum size), and counts that are no multiple of the
 * token size on one rank only (the row path on every rank). tests/preload_check.py runs it without the preload,
 * with it, and with it disabled.
 *
 * Every value is a pure function of (case, sender, receiver, index), so each
 * rank knows what it must receive. It checks and prints, per case, one line
 *   case <name> rank <r> exact|lossy err <max relative L2> sum <fnv1a hex>
 * Cases marked exact must arrive bit for bit, or the program fails (exit 1);
 * float cases must stay within LSHMOE_MAX_ERROR (default 0.5) per segment.
 * Token size 64 floats (run it with LSHMOE_HIDDEN=64).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#define H 64  /* floats per token */

static int rank, nranks;
static double budget = 0.5;
static int failures;

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t key(int c, int src, int dst, uint64_t i)
{
    return mix(((uint64_t)c << 56) ^ ((uint64_t)src << 44) ^ ((uint64_t)dst << 32) ^ i);
}

static double unit(uint64_t k)  /* in [-1, 1) */
{
    return (double)(mix(k) >> 11) / (double)(1ull << 52) - 1.0;
}

/* Float element i of what src sends dst in case c: tokens drawn from four
 * prototypes plus 2% noise, so they cluster (and compress). */
static float fval(int c, int src, int dst, uint64_t i)
{
    uint64_t tok = i / H, col = i % H;
    uint64_t proto = mix(key(c, src, dst, tok)) % 4;
    return (float)(unit(key(c, src, dst, (1ull << 40) + proto * H + col)) +
                   0.02 * unit(key(c, src, dst, i)));
}

static int32_t ival(int c, int src, int dst, uint64_t i)
{
    return (int32_t)mix(key(c, src, dst, i));
}

static double dval(int c, int src, int dst, uint64_t i)
{
    return unit(key(c, src, dst, i)) * 1e6;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* Counts in elements: uneven per pair (96, 128 or 160 tokens), or two
 * tokens when not `big`. */
static int fcount(int c, int src, int dst, int big)
{
    int tokens = big ? 96 + 32 * ((src + 2 * dst + c) % 3) : 2;
    return tokens * H;
}

typedef enum { T_FLOAT, T_INT, T_DOUBLE } kind_t;

/* Fills send buffer and displacements for sending `sc[p]` elements to p. */
static void *fill(kind_t k, int c, const int *sc, int *sd, size_t *total)
{
    size_t esz = k == T_FLOAT ? 4 : k == T_INT ? 4 : 8, off = 0;
    for (int p = 0; p < nranks; p++) {
        sd[p] = (int)off;
        off += (size_t)sc[p];
    }
    char *buf = malloc(off * esz + 1);
    for (int p = 0; p < nranks; p++)
        for (int i = 0; i < sc[p]; i++) {
            void *at = buf + ((size_t)sd[p] + (size_t)i) * esz;
            if (k == T_FLOAT) { float v = fval(c, rank, p, (uint64_t)i); memcpy(at, &v, 4); }
            if (k == T_INT) { int32_t v = ival(c, rank, p, (uint64_t)i); memcpy(at, &v, 4); }
            if (k == T_DOUBLE) { double v = dval(c, rank, p, (uint64_t)i); memcpy(at, &v, 8); }
        }
    *total = off;
    return buf;
}

/* Checks what arrived from every p; prints the case line. */
static void check(const char *name, kind_t k, int c, int exact, const void *recv,
                  const int *rc, const int *rd)
{
    size_t esz = k == T_DOUBLE ? 8 : 4;
    double worst = 0.0;
    int lossy = 0;
    uint64_t h = 0xcbf29ce484222325ull;
    for (int p = 0; p < nranks; p++) {
        const char *seg = (const char *)recv + (size_t)rd[p] * esz;
        h = fnv(h, seg, (size_t)rc[p] * esz);
        double num = 0.0, den = 0.0;
        for (int i = 0; i < rc[p]; i++) {
            const char *at = seg + (size_t)i * esz;
            int same;
            if (k == T_FLOAT) {
                float got, want = fval(c, p, rank, (uint64_t)i);
                memcpy(&got, at, 4);
                same = memcmp(&got, &want, 4) == 0;
                num += ((double)got - want) * ((double)got - want);
                den += (double)want * want;
            } else if (k == T_INT) {
                int32_t want = ival(c, p, rank, (uint64_t)i);
                same = memcmp(at, &want, 4) == 0;
            } else {
                double want = dval(c, p, rank, (uint64_t)i);
                same = memcmp(at, &want, 8) == 0;
            }
            lossy |= !same;
        }
        double err = den > 0 ? sqrt(num / den) : 0.0;
        if (err > worst)
            worst = err;
    }
    int bad = (exact && lossy) || worst > budget * 1.001 + 1e-6;
    if (bad) {
        fprintf(stderr, "rank %d case %s: %s (max segment error %.4f, budget %.3f)\n", rank,
                name, exact && lossy ? "not byte-exact" : "error over budget", worst, budget);
        failures++;
    }
    printf("case %s rank %d %s err %.6f sum %016llx\n", name, rank, lossy ? "lossy" : "exact",
           worst, (unsigned long long)h);
}

/* One all-to-all(v) case: `v` chooses MPI_Alltoallv. `odd_rank` sends a
 * count that is no multiple of H to its right neighbour; `small_rank` sends
 * two tokens per peer. */
static void run_case(const char *name, int c, kind_t k, int v, int exact, int odd_rank,
                     int small_rank, MPI_Comm comm)
{
    int n = nranks, me = rank;
    int sc[64] = {0}, sd[64] = {0}, rc[64] = {0}, rd[64] = {0};
    for (int p = 0; p < n; p++) {
        int uniform = fcount(c, 0, 0, 1);
        sc[p] = v ? fcount(c, me, p, me != small_rank) : uniform;
        rc[p] = v ? fcount(c, p, me, p != small_rank) : uniform;
        if (odd_rank >= 0 && me == odd_rank && p == (me + 1) % n)
            sc[p] += 3;
        if (odd_rank >= 0 && p == odd_rank && me == (p + 1) % n)
            rc[p] += 3;
    }
    size_t stotal, rtotal = 0;
    void *send = fill(k, c, sc, sd, &stotal);
    for (int p = 0; p < n; p++) {
        rd[p] = (int)rtotal;
        rtotal += (size_t)rc[p];
    }
    size_t esz = k == T_DOUBLE ? 8 : 4;
    void *recv = calloc(rtotal + 1, esz);
    MPI_Datatype t = k == T_FLOAT ? MPI_FLOAT : k == T_INT ? MPI_INT32_T : MPI_DOUBLE;
    if (v)
        MPI_Alltoallv(send, sc, sd, t, recv, rc, rd, t, comm);
    else
        MPI_Alltoall(send, sc[0], t, recv, rc[0], t, comm);
    check(name, k, c, exact, recv, rc, rd);
    free(send);
    free(recv);
}

/* MPI_IN_PLACE: the receive buffer holds the data to send. */
static void run_in_place(int c)
{
    int sc[64], sd[64];
    for (int p = 0; p < nranks; p++)
        sc[p] = fcount(c, 0, 0, 1);
    size_t total;
    float *buf = fill(T_FLOAT, c, sc, sd, &total);
    /* Slot p holds what this rank sends p; afterwards, what p sent here
     * (which check() expects). */
    MPI_Alltoall(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, sc[0], MPI_FLOAT, MPI_COMM_WORLD);
    check("inplace_float", T_FLOAT, c, 1, buf, sc, sd);
    free(buf);
}

/* Derived type: tokens as MPI_Type_contiguous(H, MPI_FLOAT); with `mixed`,
 * only rank 0 uses the derived type and the others MPI_FLOAT (legal: the
 * type signatures match). */
static void run_derived(const char *name, int c, int mixed)
{
    MPI_Datatype tok;
    MPI_Type_contiguous(H, MPI_FLOAT, &tok);
    MPI_Type_commit(&tok);
    int sc[64], sd[64], rc[64], rd[64], tc[64], tsd[64], trc[64], trd[64];
    for (int p = 0; p < nranks; p++) {
        sc[p] = fcount(c, rank, p, 1);
        rc[p] = fcount(c, p, rank, 1);
    }
    size_t stotal, rtotal = 0;
    float *send = fill(T_FLOAT, c, sc, sd, &stotal);
    for (int p = 0; p < nranks; p++) {
        rd[p] = (int)rtotal;
        rtotal += (size_t)rc[p];
        tc[p] = sc[p] / H;
        tsd[p] = sd[p] / H;
        trc[p] = rc[p] / H;
        trd[p] = rd[p] / H;
    }
    float *recv = calloc(rtotal + 1, sizeof(float));
    if (!mixed || rank == 0)
        MPI_Alltoallv(send, tc, tsd, tok, recv, trc, trd, tok, MPI_COMM_WORLD);
    else
        MPI_Alltoallv(send, sc, sd, MPI_FLOAT, recv, rc, rd, MPI_FLOAT, MPI_COMM_WORLD);
    check(name, T_FLOAT, c, 1, recv, rc, rd);
    MPI_Type_free(&tok);
    free(send);
    free(recv);
}

/* A sub-communicator used and freed: its lshmoe context must go with it. */
static void run_split(int c)
{
    MPI_Comm half;
    MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &half);
    int wr = rank, wn = nranks;
    MPI_Comm_rank(half, &rank);
    MPI_Comm_size(half, &nranks);
    /* One peer only: 24 KiB or more to it (the check runs with
     * LSHMOE_PRELOAD_MIN_BYTES=16384). */
    char name[64];
    snprintf(name, sizeof name, "split%d_float_v", wr % 2);
    run_case(name, c, T_FLOAT, 1, 0, -1, -1, half);
    snprintf(name, sizeof name, "split%d_float_v_again", wr % 2);
    run_case(name, c + 1, T_FLOAT, 1, 0, -1, -1, half);
    MPI_Comm_free(&half);
    rank = wr;
    nranks = wn;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    const char *b = getenv("LSHMOE_MAX_ERROR");
    if (b != NULL && b[0] != '\0')
        budget = atof(b);
    if (nranks > 64)
        MPI_Abort(MPI_COMM_WORLD, 2);

    run_case("float_a2a", 1, T_FLOAT, 0, 0, -1, -1, MPI_COMM_WORLD);
    run_case("float_a2av", 2, T_FLOAT, 1, 0, -1, -1, MPI_COMM_WORLD);
    run_case("int32_a2a", 3, T_INT, 0, 1, -1, -1, MPI_COMM_WORLD);
    run_case("int32_a2av", 4, T_INT, 1, 1, -1, -1, MPI_COMM_WORLD);
    run_case("double_a2av", 5, T_DOUBLE, 1, 1, -1, -1, MPI_COMM_WORLD);
    run_in_place(6);
    run_derived("derived_float", 7, 0);
    run_derived("derived_mixed_float", 8, 1);
    /* Rank 1 alone sends a count that is no multiple of H: every rank must
     * still take the same decision (the row path instead of LSH), or this
     * would hang. */
    run_case("odd_on_one_rank_float", 9, T_FLOAT, 1, 0, 1, -1, MPI_COMM_WORLD);
    /* Rank 2 alone is below the minimum size: likewise. */
    run_case("small_on_one_rank_float", 10, T_FLOAT, 1, 1, -1, 2, MPI_COMM_WORLD);
    run_split(11);
    run_case("float_a2av_last", 13, T_FLOAT, 1, 0, -1, -1, MPI_COMM_WORLD);

    int all = 0;
    MPI_Allreduce(&failures, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    fflush(stdout);
    MPI_Finalize();
    return all ? 1 : 0;
}
