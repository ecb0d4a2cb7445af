/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * A rank that never calls a collective (and finalizes cleanly) under
 * mpiexec -n 4, with LSHMOE_TIMEOUT_S=2. The other ranks must fail with
 * LSHMOE_ERR_TIMEOUT naming the missing rank within the timeout plus a
 * margin, and the context must then refuse further calls at once. A fresh
 * context that the missing rank never creates times out the same way.
 * Each case breaks what it runs on, so this test has a process of its own;
 * alarm() turns a hang into a failed run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include "lshmoe.h"
#include "lshmoe_mpi.h"
#include "testutil.h"

#define TIMEOUT_S 2.0
#define MARGIN_S  6.0 /* a loaded 2-core machine runs 4 ranks */
#define MISSING   3

static int me, nr, fails;

#define EXPECT(cond)                                                          \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "rank %d: %s:%d: %s\n", me, __FILE__, __LINE__, #cond); \
            fails++;                                                          \
        }                                                                     \
    } while (0)

static int has(const char *msg, const char *part)
{
    return msg != NULL && strstr(msg, part) != NULL;
}

static lshmoe_status_t a2a(lshmoe_ctx_t *ctx)
{
    size_t cnt[16], dsp[16];
    float send[16 * 4], recv[16 * 4];
    for (int p = 0; p < nr; p++) {
        cnt[p] = 1;
        dsp[p] = (size_t)p;
    }
    for (int i = 0; i < nr * 4; i++)
        send[i] = (float)i;
    return lshmoe_alltoallv(ctx, send, cnt, dsp, recv, cnt, dsp, LSHMOE_DTYPE_FP32, 4, NULL);
}

int main(int argc, char **argv)
{
    if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
        fprintf(stderr, "MPI_Init failed: skipped\n");
        return LT_EXIT_SKIP;
    }
    MPI_Comm world = MPI_COMM_WORLD;
    MPI_Comm_rank(world, &me);
    MPI_Comm_size(world, &nr);
    if (nr != 4) {
        if (me == 0)
            fprintf(stderr, "timeout_mpi needs 4 ranks, got %d: skipped\n", nr);
        MPI_Finalize();
        return LT_EXIT_SKIP;
    }
    setenv("LSHMOE_TIMEOUT_S", "2", 1);
    alarm(30);

    lshmoe_comm_desc_t d;
    EXPECT(lshmoe_comm_desc_from_mpi(&world, &d) == LSHMOE_OK);
    lshmoe_ctx_t *ctx = NULL;
    EXPECT(lshmoe_ctx_create(&d, NULL, &ctx) == LSHMOE_OK);
    if (me != MISSING && ctx != NULL) {
        /* 1. A collective that rank 3 never calls. */
        double t0 = MPI_Wtime();
        lshmoe_status_t st = a2a(ctx);
        double t = MPI_Wtime() - t0;
        EXPECT(st == LSHMOE_ERR_TIMEOUT);
        EXPECT(has(lshmoe_last_error(ctx), "rank 3"));
        EXPECT(!has(lshmoe_last_error(ctx), "ranks"));
        EXPECT(t >= TIMEOUT_S * 0.9 && t < TIMEOUT_S + MARGIN_S);
        if (st != LSHMOE_ERR_TIMEOUT || !has(lshmoe_last_error(ctx), "rank 3"))
            fprintf(stderr, "rank %d: %s after %.2f s: %s\n", me, lshmoe_status_name(st), t,
                    lshmoe_last_error(ctx));
        /* 2. The context now refuses every call at once. */
        t0 = MPI_Wtime();
        st = a2a(ctx);
        t = MPI_Wtime() - t0;
        EXPECT(st == LSHMOE_ERR_TIMEOUT);
        EXPECT(has(lshmoe_last_error(ctx), "earlier timeout"));
        EXPECT(t < 1.0);
        lshmoe_ctx_destroy(ctx);

        /* 3. A context that rank 3 never creates. */
        lshmoe_ctx_t *ctx2 = NULL;
        t0 = MPI_Wtime();
        st = lshmoe_ctx_create(&d, NULL, &ctx2);
        t = MPI_Wtime() - t0;
        EXPECT(st == LSHMOE_ERR_TIMEOUT);
        EXPECT(ctx2 == NULL);
        EXPECT(t < TIMEOUT_S + MARGIN_S);
        if (st != LSHMOE_ERR_TIMEOUT)
            fprintf(stderr, "rank %d: ctx_create: %s after %.2f s: %s\n", me,
                    lshmoe_status_name(st), t, lshmoe_last_error(NULL));
    } else {
        lshmoe_ctx_destroy(ctx); /* rank 3 leaves without a word */
    }
    /* Failures reach rank 0 by point-to-point messages: rank 3 is in
     * MPI_Finalize, so no collective is left to sum them with. */
    int all = fails;
    if (me != 0) {
        MPI_Send(&fails, 1, MPI_INT, 0, 77, world);
    } else {
        for (int p = 1; p < nr; p++) {
            int f = 0;
            MPI_Recv(&f, 1, MPI_INT, p, 77, world, MPI_STATUS_IGNORE);
            all += f;
        }
        printf("timeout_mpi: %d failure(s)\n", all);
    }
    MPI_Finalize();
    return all == 0 ? 0 : 1;
}
