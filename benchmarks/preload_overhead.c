/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * preload_overhead: what the LD_PRELOAD interposer costs a call it passes
 * through. An ordinary MPI program (it knows nothing of lshmoe) that times
 * `iters` MPI_Alltoall calls of `elems` elements per peer, of one kind:
 *   int     MPI_INT32_T: decided locally, no communication added
 *   odd     MPI_FLOAT, count no multiple of the token size, too small to
 *           compress (larger ones take the row path): one vote (a 16-byte
 *           allreduce) and the plain call
 *   small   MPI_FLOAT below LSHMOE_PRELOAD_MIN_BYTES: likewise
 * Run it with and without lshmoe-run (docs/benchmarks.md has the commands)
 * and compare the per-call times; rank 0 prints the median of `reps`
 * repetitions:  kind <k> elems <e> iters <n> us_per_call <median> (min <m>)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *kind = "int";
    int elems = 16, iters = 2000, reps = 7;
    MPI_Init(&argc, &argv);
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--kind") == 0)
            kind = argv[i + 1];
        else if (strcmp(argv[i], "--elems") == 0)
            elems = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--iters") == 0)
            iters = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[i + 1]);
    }
    int rank, n;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    if (elems < 1 || iters < 1 || reps < 1 || reps > 101 ||
        (strcmp(kind, "int") != 0 && strcmp(kind, "odd") != 0 && strcmp(kind, "small") != 0)) {
        if (rank == 0)
            fprintf(stderr, "usage: preload_overhead [--kind int|odd|small] [--elems E] "
                    "[--iters N] [--reps R]\n");
        MPI_Finalize();
        return 2;
    }
    MPI_Datatype t = strcmp(kind, "int") == 0 ? MPI_INT32_T : MPI_FLOAT;
    char *send = calloc((size_t)elems * (size_t)n, 4), *recv = calloc((size_t)elems * (size_t)n, 4);
    double times[101];
    for (int w = 0; w < 100; w++)  /* warm-up: connections, lazy set-up */
        MPI_Alltoall(send, elems, t, recv, elems, t, MPI_COMM_WORLD);
    for (int r = 0; r < reps; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        for (int i = 0; i < iters; i++)
            MPI_Alltoall(send, elems, t, recv, elems, t, MPI_COMM_WORLD);
        times[r] = (MPI_Wtime() - t0) / iters * 1e6;
    }
    qsort(times, (size_t)reps, sizeof times[0], cmp);
    if (rank == 0)
        printf("kind %s elems %d iters %d us_per_call %.3f (min %.3f)\n", kind, elems, iters,
               times[reps / 2], times[0]);
    free(send);
    free(recv);
    MPI_Finalize();
    return 0;
}
