/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The row path's layout: an fp32 all-to-all(v) whose token size is unknown
 * travels as rows of `block` elements (PL_ROW_BLOCK), so that lshmoe's row
 * formats can code it. Pure C (no MPI), so the unit tests reach it.
 *
 * A segment of c elements becomes ceil(c / block) rows. When every
 * non-empty segment of one direction already starts and ends on a row
 * boundary, that direction uses the caller's buffer as it is. Otherwise
 * its segments are copied into one staging buffer, each padded with zeros
 * to whole rows (zeros code exactly in every row format, so the padding
 * adds no error, only a few coded bytes). Sender and receiver agree on the
 * row counts without talking: MPI requires the receiver's count from a
 * peer to equal the count that peer sends.
 */
#ifndef LSHMOE_PRELOAD_ROWS_H
#define LSHMOE_PRELOAD_ROWS_H

#include <stddef.h>

typedef struct pl_rows {
    size_t  block;          /* elements per row                            */
    size_t *cnt;            /* 4 * nranks row counts and displacements:
                               send counts, send displs, recv counts, recv
                               displs (caller-owned)                        */
    const float *send;      /* what lshmoe sends from: the caller's buffer
                               or the staging copy                          */
    float  *recv;           /* where lshmoe writes                          */
    float  *stage;          /* owned; NULL when neither direction stages    */
    int     stage_recv;     /* recv is in stage: pl_rows_finish copies out  */
} pl_rows_t;

/*
 * Fills r for one call (counts and displacements in elements, MPI
 * semantics; cnt has room for 4 * nranks entries) and stages the send
 * segments when they are not row-aligned.
 * Returns 0, or -1 when the staging buffer cannot be allocated or its size
 * overflows (r->send and r->recv are then NULL, cnt is filled).
 */
int pl_rows_prepare(pl_rows_t *r, size_t block, int nranks, const float *sbuf,
                    const int *sc, const int *sd, float *rbuf, const int *rc,
                    const int *rd, size_t *cnt);

/* Copies the received rows out to the caller's buffer when they were
 * staged (only the rc[p] real elements of each segment). */
void pl_rows_finish(const pl_rows_t *r, int nranks, float *rbuf, const int *rc,
                    const int *rd);

/* Frees the staging buffer; r may be zeroed or prepared. */
void pl_rows_free(pl_rows_t *r);

#endif /* LSHMOE_PRELOAD_ROWS_H */
