/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * One refinement step after LSH grouping: every token moves to the nearest
 * centroid among its own cluster and the clusters whose hash tuple differs
 * from its own in exactly one of the L positions (a Lloyd step restricted
 * to hash neighbours), then clusters are renumbered in order of first
 * appearance. Candidates are found per cluster, not per token. Fields of
 * up to 16 values (cross-polytopes up to 8 dimensions) go field by field:
 * the clusters whose keys agree outside field g share one row of a small
 * open-addressing table, indexed by their value of g: L lookups per
 * cluster. Wider fields rewrite one field of the packed key and look the
 * result up among whole keys: L * (2c - 1) lookups per cluster, most of
 * them misses. Distances are evaluated only for neighbours that exist,
 * and stop halfway once they cannot win. The distance loops run at the
 * CPU's ISA level (refine_isa.h; dist2 below is the reference they
 * reproduce bit for bit).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cpu/refine_isa.h"
#include "kernels/kernels.h"

#define NONE UINT32_MAX

static size_t slots_for(size_t n)
{
    size_t s = 16;
    while (s < 2 * n)
        s *= 2;
    return s;
}

static uint64_t mix(uint64_t k)
{
    k = (k ^ (k >> 33)) * 0xff51afd7ed558ccdull;
    return k ^ (k >> 29);
}

/* Fields of at most this many values take the field-major loop
 * (step_by_field): its rows hold 2^bits entries per cluster. */
#define FIELD_MAX_VALS 16

/* Workspace: the key table, each cluster's key, its members (a counting
 * sort of the tokens), each token's decision, and one cluster's neighbour
 * list of max_nb = L * (2^bits - 1) entries: O(tokens + max_nb), so wide
 * polytopes cannot blow it up; each token's best distance so far; for
 * narrow fields (2^bits <= FIELD_MAX_VALS, where max_nb + 1 >= 2^bits)
 * also step_by_field's rows and row index per cluster: O(tokens + 16
 * clusters). */
size_t lshmoe_kn_refine_ws_size(size_t ntokens, size_t nclusters, size_t max_nb)
{
    size_t slots = slots_for(nclusters);
    size_t row_vals = max_nb + 1 < FIELD_MAX_VALS ? max_nb + 1 : FIELD_MAX_VALS;
    return slots * (sizeof(uint64_t) + sizeof(uint32_t)) +
           nclusters * (sizeof(uint64_t) + sizeof(uint32_t)) +
           (nclusters + 1) * sizeof(size_t) + 2 * ntokens * sizeof(uint32_t) +
           max_nb * sizeof(uint32_t) + nclusters * (row_vals + 1) * sizeof(uint32_t) +
           ntokens * sizeof(float) + 64;
}

/* Squared distance in 8 independent partial sums, so that gcc vectorises
 * it without reassociating (no -ffast-math). With a bound (INFINITY: none)
 * it may stop halfway, returning a value > bound that is no larger than
 * the full sum: the lane partials summed so far, in the final order.
 * That can only decide "not nearer" when the full sum would have too:
 * adding non-negative terms never makes a rounded sum smaller, and the
 * rounded sum is monotone in each operand, so the full result (the tail
 * and the rest of each lane added on) is >= the bound returned, > bound.
 * Most neighbours a token is tested against are much farther than its
 * own centroid. */
static float dist2(const float *restrict a, const float *restrict b, size_t n, float bound)
{
    float part[8] = {0};
    size_t i = 0, half = n / 16 * 8;
    for (; i < half; i += 8)
        for (size_t k = 0; k < 8; k++) {
            float d = a[i + k] - b[i + k];
            part[k] += d * d;
        }
    if (half > 0 && bound < INFINITY) {
        float lb = 0.0f;
        for (size_t k = 0; k < 8; k++)
            lb += part[k];
        if (lb > bound)
            return lb;
    }
    for (; i + 8 <= n; i += 8)
        for (size_t k = 0; k < 8; k++) {
            float d = a[i + k] - b[i + k];
            part[k] += d * d;
        }
    float s = 0.0f;
    for (; i < n; i++) {
        float d = a[i] - b[i];
        s += d * d;
    }
    for (size_t k = 0; k < 8; k++)
        s += part[k];
    return s;
}

/* The scalar level of the four-distance kernel (refine_isa.h). */
void lshmoe_kn_refine_dist4_scalar(LSHMOE_KN_REFINE_DIST4_ARGS)
{
    for (int t = 0; t < 4; t++)
        d[t] = dist2(a[t], b[t], n, bound[t]);
}

/*
 * The (token, candidate) pairs of the step, in the order the reference
 * meets them, evaluated four at a time (most clusters have one to three
 * members and one or two neighbours per field: pairs fill the kernel's
 * lanes where one cluster's would not). A pair is bounded by its token's
 * best when its batch starts, not after the batch's earlier pairs, as a
 * one-at-a-time loop would be; the decisions are the same: a bound only
 * stops a distance whose partial sum is over it, the full distance is
 * never below that partial sum (dist2), and a token's best only falls, so
 * a pair stopped by the older bound would not have been below the newer
 * one either, and a pair that was not stopped carries the reference's
 * full distance into the in-order comparison. A token's own distance
 * comes first and is unbounded; best[] starts at INFINITY, so a pair
 * whose own distance is in the same batch is unbounded too.
 */
typedef struct pairs {
    const float *x, *centroids;
    size_t       hidden;
    float       *best;          /* per token: the best distance so far     */
    uint32_t    *choice;        /* per token: its candidate at that best   */
    lshmoe_kn_refine_dist4_fn dist4;
    const float *a[4], *b[4];   /* the queued pairs' rows                  */
    float        bound[4];      /* their tokens' best when queued          */
    uint32_t     tok[4], cand[4];
    int          own[4];        /* the pair is the token's own centroid    */
    int          k;             /* pairs queued                            */
    int          direct;        /* scalar level: each pair at once, with
                                 * the bound its earlier pairs left (the
                                 * reference loop; no batch to fill)      */
} pairs_t;

/* One pair's outcome: distance d of token i to candidate `cand`. */
static inline void pairs_take(pairs_t *q, uint32_t i, uint32_t cand, int own, float d)
{
    if (own) {
        q->best[i] = d;
    } else if (d < q->best[i]) {
        q->best[i] = d;
        q->choice[i] = cand;
    }
}

/* Evaluates the queued pairs; their outcomes in queue order. A bound read
 * when its pair was queued is the one at the batch's start: nothing is
 * decided between a batch's first pair and its flush. */
static void pairs_flush(pairs_t *q)
{
    float d[4];
    if (q->k == 0)
        return;
    for (int t = q->k; t < 4; t++) { /* spare lanes repeat the last pair */
        q->a[t] = q->a[q->k - 1];
        q->b[t] = q->b[q->k - 1];
        q->bound[t] = q->bound[q->k - 1];
    }
    q->dist4(q->a, q->b, q->hidden, q->bound, d);
    for (int t = 0; t < q->k; t++)
        pairs_take(q, q->tok[t], q->cand[t], q->own[t], d[t]);
    q->k = 0;
}

/* Queues the pairs of `members` (n tokens) with candidates nb[0 .. m), in
 * the reference's order: candidate by candidate, each against every
 * member. own: nb[0] is the members' own centroid (m == 1). */
static void pairs_push(pairs_t *q, const uint32_t *members, size_t n, const uint32_t *nb,
                       size_t m, int own)
{
    for (size_t v = 0; v < m; v++)
        for (size_t t = 0; t < n; t++) {
            uint32_t i = members[t];
            const float *xi = q->x + (size_t)i * q->hidden;
            const float *row = q->centroids + (size_t)nb[v] * q->hidden;
            float bound = own ? INFINITY : q->best[i];
            if (q->direct) {
                pairs_take(q, i, nb[v], own, dist2(xi, row, q->hidden, bound));
                continue;
            }
            q->a[q->k] = xi;
            q->b[q->k] = row;
            q->bound[q->k] = bound;
            q->tok[q->k] = i;
            q->cand[q->k] = nb[v];
            q->own[q->k] = own;
            if (++q->k == 4)
                pairs_flush(q);
        }
}

static uint32_t lookup(const uint64_t *tkey, const uint32_t *tid, size_t mask,
                       uint64_t k)
{
    size_t s = (size_t)mix(k) & mask;
    while (tid[s] != NONE) {
        if (tkey[s] == k)
            return tid[s];
        s = (s + 1) & mask;
    }
    return NONE;
}

/* What lshmoe_kn_refine's two loops share: the clusters' keys and
 * members, each token's decision, the key table's arrays. */
typedef struct step {
    const float    *x, *centroids;
    size_t          hidden, nclusters, slots;
    int             L, bits;
    const uint64_t *ckey;
    const size_t   *start;       /* members of c: order[start[c] .. start[c + 1]) */
    const uint32_t *order;
    uint32_t       *choice;      /* per token: its cluster so far             */
    uint64_t       *tkey;
    uint32_t       *tid;
} step_t;

/*
 * The Lloyd step for narrow fields, field-major: per field g, the clusters
 * whose keys agree outside g share one row of 2^bits entries (indexed by
 * their value of g), found with one table lookup per cluster instead of
 * 2^bits - 1 lookups of whole keys, most of which miss. Each token meets
 * its candidates in the cluster-major loop's order (its own centroid, then
 * field 0's neighbours by value, field 1's, ...), with the same running
 * best, so it makes the same choices and the same evaluations. flag: one
 * byte-sized flag per cluster (own distances computed), rows and rowof:
 * workspace; q: the pairs' queue. Returns the evaluations.
 */
static uint64_t step_by_field(const step_t *st, uint32_t *rows, uint32_t *rowof, uint32_t *flag,
                              pairs_t *q)
{
    const size_t mask = st->slots - 1;
    const uint64_t vals = (uint64_t)1 << st->bits, field = vals - 1;
    uint64_t evals = 0;
    for (size_t c = 0; c < st->nclusters; c++)
        flag[c] = 0;
    for (int g = 0; g < st->L; g++) {
        unsigned sh = (unsigned)(g * st->bits);
        uint32_t nrow = 0;
        for (size_t s = 0; s < st->slots; s++)
            st->tid[s] = NONE;
        for (size_t c = 0; c < st->nclusters; c++) {
            uint64_t k = st->ckey[c];
            rowof[c] = NONE;
            if (k == LSHMOE_KN_KEY_NONFINITE)
                continue;
            uint64_t mk = k & ~(field << sh);
            size_t s = (size_t)mix(mk) & mask;
            while (st->tid[s] != NONE && st->tkey[s] != mk)
                s = (s + 1) & mask;
            if (st->tid[s] == NONE) {
                st->tkey[s] = mk;
                st->tid[s] = nrow;
                for (uint64_t v = 0; v < vals; v++)
                    rows[(size_t)nrow * vals + v] = NONE;
                nrow++;
            }
            rowof[c] = st->tid[s];
            rows[(size_t)rowof[c] * vals + ((k >> sh) & field)] = (uint32_t)c;
        }
        for (size_t c = 0; c < st->nclusters; c++) {
            if (rowof[c] == NONE)
                continue;
            const uint32_t *row = rows + (size_t)rowof[c] * vals;
            uint64_t own = (st->ckey[c] >> sh) & field;
            uint32_t nb[FIELD_MAX_VALS], own_c = (uint32_t)c;
            size_t m = 0;
            for (uint64_t v = 0; v < vals; v++)
                if (v != own && row[v] != NONE)
                    nb[m++] = row[v];
            if (m == 0)
                continue;
            size_t lo = st->start[c], hi = st->start[c + 1];
            if (!flag[c]) { /* the first neighbour: own distances first */
                flag[c] = 1;
                pairs_push(q, st->order + lo, hi - lo, &own_c, 1, 1);
                evals += hi - lo;
            }
            pairs_push(q, st->order + lo, hi - lo, nb, m, 0);
            evals += (hi - lo) * m;
        }
    }
    pairs_flush(q);
    return evals;
}

size_t lshmoe_kn_refine(const float *x, size_t hidden, size_t ntokens,
                        const uint64_t *keys, int L, int bits,
                        const float *centroids, size_t nclusters,
                        uint32_t *cluster_of, void *ws, uint64_t *evals_p)
{
    const size_t slots = slots_for(nclusters), mask = slots - 1;
    const uint64_t vals = (uint64_t)1 << bits, field = vals - 1;
    uintptr_t p = ((uintptr_t)ws + 7u) & ~(uintptr_t)7u;
    uint64_t *tkey = (uint64_t *)p;
    uint64_t *ckey = tkey + slots;
    size_t *start = (size_t *)(ckey + nclusters);   /* nclusters + 1 */
    uint32_t *tid = (uint32_t *)(start + nclusters + 1);
    uint32_t *remap = tid + slots;                 /* nclusters */
    uint32_t *order = remap + nclusters;           /* ntokens: by cluster */
    uint32_t *choice = order + ntokens;            /* ntokens: new cluster */
    uint32_t *nb = choice + ntokens;               /* max_nb */
    const size_t max_nb = (size_t)L * (size_t)field;
    const int by_field = vals <= FIELD_MAX_VALS && L > 0;
    uint32_t *rows = nb + max_nb;                  /* nclusters x vals (by_field) */
    uint32_t *rowof = rows + (by_field ? nclusters * vals : 0); /* nclusters */
    float *tok_best = (float *)(rowof + nclusters); /* ntokens */
    uint64_t evals = 0;

    /* each cluster's key (key -> cluster) and member count */
    for (size_t s = 0; s < slots; s++)
        tid[s] = NONE;
    for (size_t c = 0; c <= nclusters; c++)
        start[c] = 0;
    for (size_t i = 0; i < ntokens; i++) {
        uint32_t c = cluster_of[i];
        if (start[c + 1]++ > 0)
            continue;
        ckey[c] = keys[i];
        if (keys[i] == LSHMOE_KN_KEY_NONFINITE || by_field)
            continue;
        size_t s = (size_t)mix(keys[i]) & mask;
        while (tid[s] != NONE)
            s = (s + 1) & mask;
        tkey[s] = keys[i];
        tid[s] = c;
    }
    /* members by cluster (counting sort; remap is the fill cursor) */
    for (size_t c = 0; c < nclusters; c++) {
        start[c + 1] += start[c];
        remap[c] = (uint32_t)start[c];
    }
    for (size_t i = 0; i < ntokens; i++)
        order[remap[cluster_of[i]]++] = (uint32_t)i;

    pairs_t q = {.x = x, .centroids = centroids, .hidden = hidden, .best = tok_best,
                 .choice = choice, .dist4 = lshmoe_kn_refine_dist4_kernel(), .k = 0};
    q.direct = q.dist4 == lshmoe_kn_refine_dist4_scalar;
    for (size_t i = 0; i < ntokens; i++) {
        choice[i] = cluster_of[i];
        tok_best[i] = INFINITY;
    }
    if (by_field) {
        step_t st = {x, centroids, hidden, nclusters, slots, L, bits, ckey, start, order,
                     choice, tkey, tid};
        evals = step_by_field(&st, rows, rowof, remap, &q);
    }
    /* per cluster: its neighbours (one field rewritten), then the Lloyd
     * step of its members against them; decisions use the old clustering */
    for (size_t c = 0; c < nclusters && !by_field; c++) {
        size_t m = 0;
        uint64_t k = ckey[c];
        for (int g = 0; g < L && k != LSHMOE_KN_KEY_NONFINITE; g++) {
            unsigned sh = (unsigned)(g * bits);
            uint64_t own = (k >> sh) & field;
            for (uint64_t v = 0; v < vals; v++) {
                if (v == own)
                    continue;
                uint32_t j = lookup(tkey, tid, mask, (k & ~(field << sh)) | v << sh);
                if (j != NONE)
                    nb[m++] = j;
            }
        }
        uint32_t own_c = (uint32_t)c;
        if (m == 0)
            continue;
        /* the queue copies nb's entries: it may be rewritten next cluster */
        pairs_push(&q, order + start[c], start[c + 1] - start[c], &own_c, 1, 1);
        pairs_push(&q, order + start[c], start[c + 1] - start[c], nb, m, 0);
        evals += (start[c + 1] - start[c]) * (1 + m);
    }
    pairs_flush(&q);
    /* clusters that lost every token disappear; first-appearance order */
    size_t next = 0;
    for (size_t c = 0; c < nclusters; c++)
        remap[c] = NONE;
    for (size_t i = 0; i < ntokens; i++) {
        uint32_t c = choice[i];
        if (remap[c] == NONE)
            remap[c] = (uint32_t)next++;
        cluster_of[i] = remap[c];
    }
    if (evals_p != NULL)
        *evals_p += evals;
    return next;
}
