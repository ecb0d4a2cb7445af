/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * checksum_perf: the wire checksum (lshmoe_wire_checksum) on one core, per
 * CPU ISA level, beside memcpy of the same bytes and beside the previous
 * wire version's checksum (version 3: the same 32 lanes run over the whole
 * input with no chunks), all three timed in the same iteration so that a
 * load spike hits each of them. Version 3 is rebuilt here from the same
 * kernels (lshmoe_kn_checksum_stripes over every stripe, then the tail and
 * the fold): its work exactly, though not its value (the fold of version 4
 * takes the length plus one). Reported: GB/s (median over
 * the iterations, thread CPU time), and the current version's speed as a
 * fraction of version 3's. Sizes: one in cache (768 KiB) and one that is
 * not (32 MiB) by default. docs/benchmarks.md ("checksum_perf") has the
 * command and the results.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchmarks/bench_args.h"
#include "kernels/common/wire_checksum.h"
#include "kernels/kernels.h"
#include "lshmoe/codec.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Version 3's work: lanes from the seed over every stripe of the input. */
static uint64_t checksum_v3(const uint8_t *p, size_t len, uint64_t seed)
{
    uint64_t v[LSHMOE_WCK_LANES];
    for (int l = 0; l < LSHMOE_WCK_LANES; l++)
        v[l] = lshmoe_wck_lane_start(seed, l);
    size_t ns = len / LSHMOE_WCK_STRIPE;
    lshmoe_kn_checksum_stripes(p, ns, v);
    lshmoe_wck_tail(p + ns * LSHMOE_WCK_STRIPE, len - ns * LSHMOE_WCK_STRIPE, v);
    return lshmoe_wck_fold(v, len, seed);
}

enum { T_MEMCPY, T_V3, T_V4, T_N };

/* Median seconds of each of T_N over `iters` iterations on len bytes. */
static int time_level(const uint8_t *src, uint8_t *dst, size_t len, int iters, double med[T_N],
                      uint64_t *sink)
{
    double *t = malloc((size_t)T_N * (size_t)iters * sizeof *t);
    if (t == NULL)
        return 1;
    for (int it = -1; it < iters; it++) {
        /* the two checksums take turns going first: the one after the
         * memcpy finds the caches in another state */
        const int v4_first = it % 2 != 0;
        double t0 = cpu_now();
        memcpy(dst, src, len);
        double t1 = cpu_now();
        *sink ^= v4_first ? lshmoe_wire_checksum(src, len, (uint64_t)it)
                          : checksum_v3(src, len, (uint64_t)it);
        double t2 = cpu_now();
        *sink ^= v4_first ? checksum_v3(src, len, (uint64_t)it)
                          : lshmoe_wire_checksum(src, len, (uint64_t)it);
        double t3 = cpu_now();
        *sink ^= dst[len / 2];
        if (it < 0)
            continue;
        t[T_MEMCPY * iters + it] = t1 - t0;
        t[T_V3 * iters + it] = v4_first ? t3 - t2 : t2 - t1;
        t[T_V4 * iters + it] = v4_first ? t2 - t1 : t3 - t2;
    }
    for (int k = 0; k < T_N; k++)
        med[k] = bench_median(t + k * iters, iters);
    free(t);
    return 0;
}

int main(int argc, char **argv)
{
    size_t sizes[8] = {768 * 1024, 32 * 1024 * 1024};
    int nsizes = 2, iters = 21;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc)
            iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--bytes") && i + 1 < argc && nsizes < 8) {
            if (nsizes == 2 && sizes[0] == 768 * 1024)
                nsizes = 0; /* the first --bytes replaces the defaults */
            sizes[nsizes++] = (size_t)strtoull(argv[++i], NULL, 0);
        } else {
            printf("usage: checksum_perf [-n ITERS] [--bytes N]...\n"
                   "  wire checksum GB/s per CPU ISA level beside memcpy and the previous\n"
                   "  wire version's checksum (defaults: 768 KiB and 32 MiB, 21 iterations)\n");
            return strcmp(argv[i], "-h") && strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (iters < 1 || nsizes == 0)
        return 2;
    size_t maxb = 0;
    for (int s = 0; s < nsizes; s++)
        maxb = sizes[s] > maxb ? sizes[s] : maxb;
    uint8_t *src = malloc(maxb + 1), *dst = malloc(maxb + 1);
    if (src == NULL || dst == NULL)
        return 1;
    for (size_t i = 0; i < maxb; i++)
        src[i] = (uint8_t)(i * 2654435761u >> 13);
    memset(dst, 0, maxb);

    uint64_t sink = 0;
    printf("# wire checksum version %u (chunks of %d bytes), one core, thread CPU time, "
           "median of %d\n", LSHMOE_WIRE_VERSION, LSHMOE_WCK_CHUNK, iters);
    printf("%-7s %10s %10s %10s %10s %8s\n", "isa", "bytes", "memcpy", "v3_GB/s", "GB/s",
           "vs_v3");
    for (int isa = 0; isa < LSHMOE_KN_ISA_COUNT; isa++) {
        if (!lshmoe_kn_isa_supported((lshmoe_kn_isa_t)isa)) {
            printf("%-7s (not supported by this CPU or build)\n",
                   lshmoe_kn_isa_name((lshmoe_kn_isa_t)isa));
            continue;
        }
        if (lshmoe_kn_isa_force((lshmoe_kn_isa_t)isa) != LSHMOE_OK)
            return 1;
        for (int s = 0; s < nsizes; s++) {
            double med[T_N];
            if (time_level(src, dst, sizes[s], iters, med, &sink))
                return 1;
            double gb = (double)sizes[s] * 1e-9;
            printf("%-7s %10zu %10.1f %10.1f %10.1f %8.3f\n",
                   lshmoe_kn_isa_name((lshmoe_kn_isa_t)isa), sizes[s], gb / med[T_MEMCPY],
                   gb / med[T_V3], gb / med[T_V4], med[T_V3] / med[T_V4]);
            printf("RESULT checksum isa=%s bytes=%zu memcpy_gbs=%.2f v3_gbs=%.2f gbs=%.2f "
                   "vs_v3=%.3f\n", lshmoe_kn_isa_name((lshmoe_kn_isa_t)isa), sizes[s],
                   gb / med[T_MEMCPY], gb / med[T_V3], gb / med[T_V4],
                   med[T_V3] / med[T_V4]);
        }
    }
    fprintf(stderr, "(sink %llx)\n", (unsigned long long)sink);
    free(src);
    free(dst);
    return 0;
}
