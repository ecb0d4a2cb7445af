/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#include <stdint.h>
#include <stdlib.h>

#include "lshmoe/a2a_ranges.h"
#include "lshmoe/common/error.h"

/* One non-empty range of bytes, as addresses, and the rank it serves. */
typedef struct byte_range {
    uintptr_t lo, hi; /* [lo, hi) */
    int       peer;
} byte_range_t;

static int by_start(const void *a, const void *b)
{
    const byte_range_t *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Non-empty ranges of one direction, sorted by start; returns how many. */
static size_t collect(const void *base, const size_t *counts, const size_t *displs, int n,
                      size_t tb, byte_range_t *out)
{
    size_t k = 0;
    for (int p = 0; p < n; p++) {
        if (counts[p] == 0 || tb == 0)
            continue;
        uintptr_t lo = (uintptr_t)base + displs[p] * tb;
        out[k++] = (byte_range_t){.lo = lo, .hi = lo + counts[p] * tb, .peer = p};
    }
    qsort(out, k, sizeof *out, by_start);
    return k;
}

lshmoe_status_t lshmoe_a2a_check_overlap(const void *send, const size_t *send_counts,
                                         const size_t *send_displs, const void *recv,
                                         const size_t *recv_counts,
                                         const size_t *recv_displs, int n, size_t tb)
{
    byte_range_t *r = malloc(2 * (size_t)n * sizeof *r + 1);
    if (r == NULL)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "cannot allocate %d ranges", 2 * n);
    byte_range_t *s = r + n;
    size_t nr = collect(recv, recv_counts, recv_displs, n, tb, r);
    size_t ns = collect(send, send_counts, send_displs, n, tb, s);
    lshmoe_status_t st = LSHMOE_OK;
    /* Sorted by start, receive ranges overlap iff one starts before its
     * predecessor ends. */
    for (size_t i = 1; i < nr && st == LSHMOE_OK; i++)
        if (r[i].lo < r[i - 1].hi)
            st = lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                              "the receive ranges for ranks %d and %d overlap (recv_displs "
                              "and recv_counts must give disjoint ranges)",
                              r[i - 1].peer, r[i].peer);
    /* Both lists sorted and the receive ranges disjoint: one merge pass
     * finds any send range that meets a receive range. */
    for (size_t i = 0, j = 0; i < ns && j < nr && st == LSHMOE_OK;) {
        if (s[i].hi <= r[j].lo)
            i++;
        else if (r[j].hi <= s[i].lo)
            j++;
        else
            st = lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                              "the send range for rank %d overlaps the receive range for "
                              "rank %d: send and recv must not alias (in-place all-to-all "
                              "is not supported; use separate buffers)",
                              s[i].peer, r[j].peer);
    }
    free(r);
    return st;
}
