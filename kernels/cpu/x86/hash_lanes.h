/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Cross-polytope LSH keys of many tokens at once, one token per vector
 * lane. Included (once) by hash_avx2.c and hash_avx512.c, which first
 * define the vector operations listed below; compiled with their flags and
 * -ffp-contract=off.
 *
 * Why: with a small rotated dimension (m <= 128; the default fold is 64)
 * the per-token kernels spend most of the hash on shuffles (the FWHT stages
 * inside a register) and on the unpredictable branches of the block argmax.
 * With a token per lane, every butterfly of every stage is a vertical add
 * and subtract of two vectors, the argmax a vertical compare and select,
 * and nothing is shuffled except one transposition of the folded vectors.
 *
 * Bit identity with the reference (lsh_hash.c, fwht.c): a lane sees the
 * operations of its token in the reference, in the same order.
 *  - fold: the ISA file's per-token fold, the one its per-token kernel uses;
 *  - transposition and zero lanes: moves only;
 *  - each round: y_j * d_j (done as the first pass loads y), the stages
 *    h = 1, 2, ..., m/2 in increasing order, then y_j * s. The scale of a
 *    round that is not the last is applied with the next round's signs,
 *    (y_j * s) * d_j as y_j * (s d_j): the same value bit for bit, since
 *    d_j = +-1 makes s d_j exact and negation commutes with rounding to
 *    nearest; the last round scales, as its last pass stores y, only the
 *    coordinates its blocks in the key read (the others are dead). A pass
 *    through memory applies up to three consecutive
 *    stages h, 2h, 4h to groups of 8 coordinates j + k h (k = 0..7); a
 *    butterfly of those stages pairs two coordinates of the same group, so
 *    the groups are independent and each coordinate receives exactly the
 *    additions of the reference, stage by stage;
 *  - argmax: |y_j| > best in increasing j (the first maximum wins), then the
 *    sign test y_j* < 0, as lshmoe_kn_block_value() does;
 *  - key: lshmoe_kn_key_add() and lshmoe_kn_key_finish() per token, or,
 *    for packed keys of at most 31 bits, the same bit fields ORed together
 *    in all lanes at once (hl_pack_keys).
 * Tokens whose folded vector is huge or not finite (any_huge) are hashed
 * by the reference one at a time, as in the per-token kernels; their lanes
 * are zeroed and ignored (lanes never mix).
 *
 * The includer defines:
 *   HL_LANES                  lanes per vector (8 or 16)
 *   hl_vec, hl_mask           a vector of floats and a lane mask
 *   hl_load, hl_store         unaligned
 *   hl_set1, hl_zero, hl_add, hl_sub, hl_mul, hl_abs
 *   hl_gt(a, b)               a > b (false for NaN)
 *   hl_sel(m, a, b)           lanes of b where m is set, else of a
 *   hl_unpacklo32, hl_unpackhi32, hl_unpacklo64, hl_unpackhi64
 *                             interleave the low / high 32- or 64-bit
 *                             elements of two vectors in each 128-bit block
 *   hl_transpose_blocks(b, cols)
 *                             the last step of hl_transpose (below): moves
 *                             the 128-bit blocks of b into place
 *   hl_pack_keys(vals, L, bits, out)
 *                             out[t] = OR over g < L of (unsigned)vals[g][t]
 *                             << (g * bits), for L * bits <= 31: the packed
 *                             key (lshmoe_kn_key_add's sum of disjoint bit
 *                             fields) of every lane at once
 *   fold(row, dtype, signs, hidden, m, z)
 *                             as in the per-token kernel; returns
 *                             any_huge(z, m)
 *   any_huge(z, m)            1 if some |z_j| >= 2^64 or is NaN
 */
#ifndef LSHMOE_KERNELS_CPU_X86_HASH_LANES_H
#define LSHMOE_KERNELS_CPU_X86_HASH_LANES_H

#include <string.h>

#include "kernels/common/lsh_math.h"
#include "kernels/cpu/hash_isa.h"

#define HL_INLINE static inline __attribute__((always_inline))

/*
 * One pass over the m coordinate vectors: stages h, 2h, ... (nst of them,
 * 1 to 3) from src into dst (which may be src). With `sign`, each loaded
 * coordinate j is first multiplied by d[j] * ld (the round's signs times
 * ld: 1, or the previous round's scale, see hl_rotate); with `last`, each
 * stored coordinate below `used` is multiplied by sc and the others are
 * not stored (nothing reads them).
 */
HL_INLINE void hl_pass(const float *src, float *dst, size_t m, size_t h, const int nst,
                       const int sign, const float *d, float ld, const int last,
                       size_t used, hl_vec sc)
{
    const size_t n = (size_t)1 << nst, span = h << nst;
    for (size_t i = 0; i < m; i += span) {
        for (size_t j = i; j < i + h; j++) {
            hl_vec v[8];
            for (size_t k = 0; k < n; k++) {
                v[k] = hl_load(src + (j + k * h) * HL_LANES);
                if (sign)
                    v[k] = hl_mul(v[k], hl_set1(d[j + k * h] * ld));
            }
            for (size_t st = 1; st < n; st *= 2) {
                for (size_t k = 0; k < n; k++) {
                    if (k & st)
                        continue;
                    hl_vec a = v[k], b = v[k + st];
                    v[k] = hl_add(a, b);
                    v[k + st] = hl_sub(a, b);
                }
            }
            for (size_t k = 0; k < n; k++) {
                if (!last)
                    hl_store(dst + (j + k * h) * HL_LANES, v[k]);
                else if (j + k * h < used)
                    hl_store(dst + (j + k * h) * HL_LANES, hl_mul(v[k], sc));
            }
        }
    }
}

/* Stages h .. m/2 of one round after the first pass, three at a time;
 * the last pass of the last round applies the scale (see hl_rotate). */
static void hl_round_rest(float *y, size_t m, size_t h, int final, size_t used, hl_vec sc)
{
    for (; h < m; h <<= 3) {
        size_t left = m / h; /* 2^(stages left) */
        if (left > 8)
            hl_pass(y, y, m, h, 3, 0, NULL, 1.0f, 0, m, sc);
        else if (left == 8 && final)
            hl_pass(y, y, m, h, 3, 0, NULL, 1.0f, 1, used, sc);
        else if (left == 8)
            hl_pass(y, y, m, h, 3, 0, NULL, 1.0f, 0, m, sc);
        else if (left == 4 && final)
            hl_pass(y, y, m, h, 2, 0, NULL, 1.0f, 1, used, sc);
        else if (left == 4)
            hl_pass(y, y, m, h, 2, 0, NULL, 1.0f, 0, m, sc);
        else if (final)
            hl_pass(y, y, m, h, 1, 0, NULL, 1.0f, 1, used, sc);
        else
            hl_pass(y, y, m, h, 1, 0, NULL, 1.0f, 0, m, sc);
    }
}

/*
 * y = rotation r of the transposed folded vectors z (m >= 16, so a round
 * takes at least two passes), of which only coordinates < used are
 * needed. The reference scales each round's output by sc and the next
 * round multiplies it by its signs d: (y * sc) * d is y * (sc * d) bit for
 * bit (d = +-1: negation commutes with rounding to nearest, and sc * d is
 * exact), so a round's scale is applied with the next round's signs, one
 * multiply instead of two; the last round scales the coordinates used.
 */
static void hl_rotate(const float *z, const float *sg, int rounds, size_t m, size_t used,
                      float *y)
{
    const float s = lshmoe_kn_fwht_scale(m);
    const hl_vec sc = hl_set1(s);
    for (int k = 0; k < rounds; k++, sg += m) {
        hl_pass(k == 0 ? z : y, y, m, 1, 3, 1, sg, k == 0 ? 1.0f : s, 0, m, sc);
        hl_round_rest(y, m, 8, k == rounds - 1, used, sc);
    }
}

/* Block values of rotation r into vals[g * HL_LANES + lane]. */
static void hl_blocks(const lshmoe_kn_hasher_view_t *v, int r, const float *y, float *vals)
{
    const int nblk = (int)(v->m / (size_t)v->cdim);
    const hl_vec zero = hl_zero(), one = hl_set1(1.0f);
    for (int b = 0, g = r * nblk; b < nblk && g < v->nhash; b++, g++) {
        const float *yb = y + (size_t)b * (size_t)v->cdim * HL_LANES;
        hl_vec best_y = hl_load(yb), best_a = hl_abs(best_y), best_j = zero;
        for (int j = 1; j < v->cdim; j++) {
            hl_vec yj = hl_load(yb + (size_t)j * HL_LANES), aj = hl_abs(yj);
            hl_mask gt = hl_gt(aj, best_a);
            best_a = hl_sel(gt, best_a, aj);
            best_y = hl_sel(gt, best_y, yj);
            best_j = hl_sel(gt, best_j, hl_set1((float)j));
        }
        hl_vec neg = hl_sel(hl_gt(zero, best_y), zero, one);
        hl_store(vals + (size_t)g * HL_LANES, hl_add(hl_add(best_j, best_j), neg));
    }
}

/* cols[j * HL_LANES + t] = rows[t * stride + j] for t, j < HL_LANES: an
 * HL_LANES x HL_LANES tile transposed. After the two unpack steps, b[4 i + c]
 * holds, in 128-bit block L, rows 4 i .. 4 i + 3 at column 4 L + c. */
static void hl_transpose(const float *rows, size_t stride, float *cols)
{
    hl_vec r[HL_LANES], a[HL_LANES], b[HL_LANES];
    for (size_t t = 0; t < HL_LANES; t++)
        r[t] = hl_load(rows + t * stride);
    for (size_t i = 0; i < HL_LANES; i += 2) {
        a[i] = hl_unpacklo32(r[i], r[i + 1]);
        a[i + 1] = hl_unpackhi32(r[i], r[i + 1]);
    }
    for (size_t i = 0; i < HL_LANES; i += 4) {
        b[i] = hl_unpacklo64(a[i], a[i + 2]);
        b[i + 1] = hl_unpackhi64(a[i], a[i + 2]);
        b[i + 2] = hl_unpacklo64(a[i + 1], a[i + 3]);
        b[i + 3] = hl_unpackhi64(a[i + 1], a[i + 3]);
    }
    hl_transpose_blocks(b, cols);
}

/* How far ahead of the row being folded its successors are prefetched.
 * The rows are read in order, but on the development machine the hardware
 * prefetcher alone left the fold of width-1024 bf16 rows waiting on memory:
 * asking for the row 12 KiB ahead made the hash 8-15% faster and the whole
 * encoder 5-10% (codec_stages, alternating runs; distances of 4 and 24 KiB
 * did no better); rows already in cache (width 100) did not change. */
#define HL_PREFETCH_BYTES 12288u

/* The cache lines of the row `ahead` rows after `row`, if it is one of the
 * `left` rows the call still has after this one. */
static inline void hl_prefetch_row(const unsigned char *row, size_t row_bytes, size_t ahead,
                                   size_t left)
{
    if (ahead > left)
        return;
    const char *p = (const char *)row + ahead * row_bytes;
    for (size_t k = 0; k < row_bytes; k += 64)
        _mm_prefetch(p + k, _MM_HINT_T0);
}

/*
 * Keys of nt <= HL_LANES consecutive tokens (rows of `hidden` elements of
 * es bytes from `tokens`, of which the call has `avail` >= nt); lanes nt..
 * are zero. Returns how many of them had a NaN or Inf.
 */
static size_t hl_batch(const lshmoe_kn_hasher_t *hasher, const lshmoe_kn_hasher_view_t *v,
                       const unsigned char *tokens, size_t avail, lshmoe_dtype_t dt,
                       size_t es, size_t nt, uint64_t *keys, float *ws)
{
    const size_t m = v->m, row_bytes = v->hidden * es;
    float *rows = ws + v->lanes_ws;
    float *z = rows + LSHMOE_KN_LANES * m, *y = z + LSHMOE_KN_LANES * m;
    float *vals = y + LSHMOE_KN_LANES * m;
    unsigned rare = 0;
    size_t nonfinite = 0;

    for (size_t t = 0; t < HL_LANES; t++) {
        float *zr = rows + t * m;
        if (t >= nt) {
            memset(zr, 0, m * sizeof(float));
            continue;
        }
        const unsigned char *row = tokens + t * row_bytes;
        hl_prefetch_row(row, row_bytes, (HL_PREFETCH_BYTES + row_bytes - 1) / row_bytes,
                        avail - 1 - t);
        int huge;
        if (v->fold) {
            huge = fold(row, dt, v->fold_sign, v->hidden, m, zr);
        } else {
            lshmoe_row_to_f32(row, dt, v->hidden, zr);
            memset(zr + v->hidden, 0, (m - v->hidden) * sizeof(float));
            huge = any_huge(zr, m);
        }
        if (huge) {
            rare |= 1u << t;
            memset(zr, 0, m * sizeof(float));
        }
    }
    for (size_t j = 0; j < m; j += HL_LANES)
        hl_transpose(rows + j, m, z + j * HL_LANES);
    for (int r = 0; r < v->nrot; r++) {
        /* the coordinates of the blocks of this rotation that are in the key */
        size_t used = (size_t)(v->nhash - r * (int)(m / (size_t)v->cdim)) * (size_t)v->cdim;
        hl_rotate(z, v->rot_sign + (size_t)r * (size_t)v->rounds * m, v->rounds, m,
                  used < m ? used : m, y);
        hl_blocks(v, r, y, vals);
    }
    uint64_t packed[HL_LANES];
    const int pack32 = v->packed && v->nhash * v->bits <= 31;
    if (pack32)
        hl_pack_keys(vals, v->nhash, v->bits, packed);
    for (size_t t = 0; t < nt; t++) {
        if (pack32 && !(rare & (1u << t))) {
            keys[t] = packed[t];
            continue;
        }
        if (rare & (1u << t)) {
            size_t nf = 0;
            /* the reference's workspace lies before the lanes' part */
            lshmoe_kn_hash_scalar(hasher, tokens + t * row_bytes, dt, 1, keys + t, ws, &nf);
            nonfinite += nf;
            continue;
        }
        uint64_t key = lshmoe_kn_key_init(v->packed);
        for (int g = 0; g < v->nhash; g++)
            key = lshmoe_kn_key_add(key, v->packed, v->bits, g,
                                    (unsigned)vals[(size_t)g * HL_LANES + t]);
        keys[t] = lshmoe_kn_key_finish(key, v->packed);
    }
    return nonfinite;
}

/* Does the many-token path take this hasher? */
static int hl_fits(const lshmoe_kn_hasher_view_t *v)
{
    return v->m >= 16 && v->m <= LSHMOE_KN_LANES_MAX_M;
}

/* A last batch of fewer tokens runs in lanes when it fills a quarter of
 * them; below that, the per-token kernel is cheaper. */
#define HL_MIN_BATCH (HL_LANES / 4)

#endif /* LSHMOE_KERNELS_CPU_X86_HASH_LANES_H */
