/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* The row path's layout (bindings/preload/rows.c): two ranks prepare their
 * rows, a simulated exchange moves each segment's rows from the sender's
 * layout to the receiver's, and the receivers' buffers must then hold
 * exactly what was sent, with the gaps between segments untouched. */
#include <string.h>

#include "bindings/preload/rows.h"
#include "testutil.h"

#define B 4        /* elements per row (the preload uses 128) */
#define N 2        /* ranks */
#define CAP 256
#define GAP -7.0f  /* what the receive buffers hold where nothing lands */

typedef struct side {
    int       sc[N], sd[N], rc[N], rd[N];
    float     send[CAP], recv[CAP];
    size_t    cnt[4 * N];
    pl_rows_t rw;
} side_t;

static float value(int src, int dst, int i)
{
    return (float)(1000 * src + 100 * dst + i + 1);
}

/* counts[src][dst] elements; each segment starts `gap` elements after the
 * previous one ends, on both sides. */
static void setup(side_t *s, const int counts[N][N], int gap)
{
    for (int r = 0; r < N; r++) {
        int so = gap, ro = gap;
        for (int p = 0; p < N; p++) {
            s[r].sc[p] = counts[r][p];
            s[r].sd[p] = so;
            s[r].rc[p] = counts[p][r];
            s[r].rd[p] = ro;
            for (int i = 0; i < counts[r][p]; i++)
                s[r].send[so + i] = value(r, p, i);
            so += counts[r][p] + gap;
            ro += counts[p][r] + gap;
        }
        for (int i = 0; i < CAP; i++)
            s[r].recv[i] = GAP;
        CU_ASSERT_EQUAL_FATAL(pl_rows_prepare(&s[r].rw, B, N, s[r].send, s[r].sc, s[r].sd,
                                              s[r].recv, s[r].rc, s[r].rd, s[r].cnt), 0);
    }
}

/* What lshmoe_alltoallv does with the row counts, done by hand. */
static void exchange_and_check(side_t *s, const int counts[N][N])
{
    for (int src = 0; src < N; src++)
        for (int dst = 0; dst < N; dst++) {
            size_t rows = s[src].cnt[dst];
            CU_ASSERT_EQUAL_FATAL(rows, s[dst].cnt[2 * N + src]);
            memcpy(s[dst].rw.recv + s[dst].cnt[3 * N + src] * B,
                   s[src].rw.send + s[src].cnt[N + dst] * B, rows * B * sizeof(float));
        }
    for (int r = 0; r < N; r++) {
        pl_rows_finish(&s[r].rw, N, s[r].recv, s[r].rc, s[r].rd);
        int landed = 0;
        for (int p = 0; p < N; p++)
            for (int i = 0; i < counts[p][r]; i++) {
                CU_ASSERT_EQUAL(s[r].recv[s[r].rd[p] + i], value(p, r, i));
                landed++;
            }
        int gaps = 0;
        for (int i = 0; i < CAP; i++)
            gaps += s[r].recv[i] == GAP;
        CU_ASSERT_EQUAL(gaps, CAP - landed);  /* nothing written outside */
        pl_rows_free(&s[r].rw);
    }
}

static void test_rows_aligned_uses_caller_buffers(void)
{
    static const int counts[N][N] = {{8, 12}, {4, 0}};
    side_t s[N];
    setup(s, counts, 0);
    for (int r = 0; r < N; r++) {
        CU_ASSERT_PTR_EQUAL(s[r].rw.send, s[r].send);
        CU_ASSERT_PTR_EQUAL(s[r].rw.recv, s[r].recv);
        CU_ASSERT_PTR_NULL(s[r].rw.stage);
    }
    CU_ASSERT_EQUAL(s[0].cnt[1], 3);      /* 12 elements: 3 rows */
    CU_ASSERT_EQUAL(s[0].cnt[N + 1], 2);  /* displacement 8: row 2 */
    exchange_and_check(s, counts);
}

static void test_rows_unaligned_stage_with_zero_padding(void)
{
    /* odd counts, and displacements off the row grid (gap 3) */
    static const int counts[N][N] = {{5, 13}, {7, 0}};
    side_t s[N];
    setup(s, counts, 3);
    CU_ASSERT_PTR_NOT_NULL(s[0].rw.stage);
    CU_ASSERT_EQUAL(s[0].cnt[0], 2);      /* 5 elements: 2 rows */
    CU_ASSERT_EQUAL(s[0].cnt[1], 4);      /* 13 elements: 4 rows */
    CU_ASSERT_EQUAL(s[0].cnt[N + 1], 2);  /* packed after the 2 rows */
    /* the pad after each segment is zeros, so it codes exactly */
    for (int i = 5; i < 8; i++)
        CU_ASSERT_EQUAL(s[0].rw.send[i], 0.0f);
    for (int i = 8 + 13; i < 8 + 16; i++)
        CU_ASSERT_EQUAL(s[0].rw.send[i], 0.0f);
    exchange_and_check(s, counts);
}

static const lt_test_t tests[] = {
    {"test_rows_aligned_uses_caller_buffers", test_rows_aligned_uses_caller_buffers},
    {"test_rows_unaligned_stage_with_zero_padding", test_rows_unaligned_stage_with_zero_padding},
};

LT_MAIN("preload_rows", tests)
