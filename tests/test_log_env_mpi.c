/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * A bad LSHMOE_LOG_LEVEL on one rank of an MPI job (meson runs it with
 * mpiexec -n 4). Rank 0 sets a value that is not a level, the others set
 * an upper-case level, which must be accepted: rank 0 must fail context
 * creation with LSHMOE_ERR_INVALID_ARG naming the variable, the others
 * with LSHMOE_ERR_PEER, and nobody may hang (alarm() turns a hang into a
 * failed test). Log set-up runs once per process, so this test has a
 * process of its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include "lshmoe.h"
#include "lshmoe_mpi.h"
#include "testutil.h"

static int me, fails;

#define EXPECT(cond)                                                          \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "rank %d: %s:%d: %s\n", me, __FILE__, __LINE__, #cond); \
            fails++;                                                          \
        }                                                                     \
    } while (0)

int main(int argc, char **argv)
{
    if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
        fprintf(stderr, "MPI_Init failed: skipped\n");
        return LT_EXIT_SKIP;
    }
    MPI_Comm world = MPI_COMM_WORLD;
    MPI_Comm_rank(world, &me);
    /* Before the first lshmoe call: the level is read once per process. */
    setenv("LSHMOE_LOG_LEVEL", me == 0 ? "WARNING" : "NONE", 1);
    alarm(30); /* a deadlock becomes SIGALRM, i.e. a failed test */

    lshmoe_comm_desc_t d;
    EXPECT(lshmoe_comm_desc_from_mpi(&world, &d) == LSHMOE_OK);
    for (int round = 0; round < 2; round++) { /* the second call fails the same way */
        lshmoe_ctx_t *ctx = NULL;
        lshmoe_status_t st = lshmoe_ctx_create(&d, NULL, &ctx);
        const char *msg = lshmoe_last_error(NULL);
        if (me == 0) {
            EXPECT(st == LSHMOE_ERR_INVALID_ARG);
            EXPECT(strstr(msg, "LSHMOE_LOG_LEVEL") != NULL);
        } else {
            EXPECT(st == LSHMOE_ERR_PEER);
            EXPECT(strstr(msg, "rank 0") != NULL);
        }
        EXPECT(ctx == NULL);
        lshmoe_ctx_destroy(ctx);
    }
    int all = 0;
    MPI_Allreduce(&fails, &all, 1, MPI_INT, MPI_SUM, world);
    if (me == 0)
        printf("log_env_mpi: %d failure(s)\n", all);
    MPI_Finalize();
    return all == 0 ? 0 : 1;
}
