/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bindings/preload/rows.h"

/* 1 if every non-empty segment starts and ends on a row boundary. */
static int aligned(size_t block, int n, const int *counts, const int *displs)
{
    for (int p = 0; p < n; p++)
        if (counts[p] > 0 &&
            ((size_t)counts[p] % block != 0 || (size_t)displs[p] % block != 0))
            return 0;
    return 1;
}

/* Row counts of one direction into cnt[0..n) and displacements into
 * cnt[n..2n): the caller's own (aligned) or packed one after the other
 * (staged). Returns the rows of the packed layout. */
static size_t layout(size_t block, int n, const int *counts, const int *displs,
                     int staged, size_t *cnt)
{
    size_t rows = 0;
    for (int p = 0; p < n; p++) {
        size_t c = ((size_t)counts[p] + block - 1) / block;
        cnt[p] = c;
        cnt[n + p] = staged ? rows : (c > 0 ? (size_t)displs[p] / block : 0);
        rows += c;
    }
    return rows;
}

int pl_rows_prepare(pl_rows_t *r, size_t block, int nranks, const float *sbuf,
                    const int *sc, const int *sd, float *rbuf, const int *rc,
                    const int *rd, size_t *cnt)
{
    int n = nranks;
    int stage_send = !aligned(block, n, sc, sd);
    int stage_recv = !aligned(block, n, rc, rd);
    size_t send_rows = layout(block, n, sc, sd, stage_send, cnt);
    size_t recv_rows = layout(block, n, rc, rd, stage_recv, cnt + 2 * (size_t)n);
    size_t rows = (stage_send ? send_rows : 0) + (stage_recv ? recv_rows : 0);

    memset(r, 0, sizeof *r);
    r->block = block;
    r->cnt = cnt;
    if (rows > 0) {
        if (rows > SIZE_MAX / block / sizeof(float) ||
            (r->stage = malloc(rows * block * sizeof(float))) == NULL)
            return -1;
    }
    r->send = sbuf;
    r->recv = rbuf;
    if (stage_send) {
        float *dst = r->stage;
        for (int p = 0; p < n; p++) {
            size_t len = (size_t)sc[p], padded = cnt[p] * block;
            if (len > 0)
                memcpy(dst, sbuf + sd[p], len * sizeof(float));
            memset(dst + len, 0, (padded - len) * sizeof(float));
            dst += padded;
        }
        r->send = r->stage;
    }
    if (stage_recv) {
        r->recv = r->stage + (stage_send ? send_rows * block : 0);
        r->stage_recv = 1;
    }
    return 0;
}

void pl_rows_finish(const pl_rows_t *r, int nranks, float *rbuf, const int *rc,
                    const int *rd)
{
    if (!r->stage_recv)
        return;
    const size_t *rdispl_rows = r->cnt + 3 * (size_t)nranks;
    for (int p = 0; p < nranks; p++)
        if (rc[p] > 0)
            memcpy(rbuf + rd[p], r->recv + rdispl_rows[p] * r->block,
                   (size_t)rc[p] * sizeof(float));
}

void pl_rows_free(pl_rows_t *r)
{
    free(r->stage);
    r->stage = NULL;
}
