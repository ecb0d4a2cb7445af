/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Cross-polytope LSH bucket keys (CPU reference; other backends must give
 * bit-identical keys, so every step below is specified exactly).
 *
 * Random signs: draw(seed, purpose, index) (splitmix64 finaliser; the
 * arithmetic shared with every backend is in kernels/common/lsh_math.h);
 * the sign is -1 when the top bit of the draw is set, else +1.
 *   fold sign of element i:               purpose 1, index i
 *   sign j of round k of rotation r:      purpose 2, index r<<40 | k<<32 | j
 *
 * Per token, math in fp32 (x converted exactly from fp16/bf16):
 *  1. reduce to m coordinates:
 *     PAD:  z = x, zero-padded to m = next_pow2(hidden);
 *     FOLD: z[j] = sum over i with i mod m = j, in increasing i, of
 *           s_i * x_i, starting from +0.0f (each addition rounded to fp32;
 *           s_i * x_i is exact, so FMA contraction cannot change it).
 *  2. rotation r = 0..R-1, R = ceil(L * cdim / m): y = z, then `rounds`
 *     times y = y * D(r, k) (elementwise signs), y = lshmoe_kn_fwht(y)
 *     (its exact operation order is specified in fwht.c).
 *  3. block g (g = 0..L-1) is block g mod (m / cdim) of rotation
 *     g / (m / cdim): j* = argmax |y_j| over its cdim coordinates (first
 *     maximum wins), value h_g = 2 * j* + (y_j* < 0).
 *  4. key: with b = log2(2 * cdim) bits per value and L * b <= 63,
 *     key = sum of h_g << (g * b) (exact); otherwise
 *     acc = 0x243f6a8885a308d3, acc = mix64(acc ^ (h_g | g << 16)) for each
 *     g in order, key = acc with the top bit cleared. Finite keys are
 *     < 2^63; a token with a NaN or Inf element gets
 *     LSHMOE_KN_KEY_NONFINITE.
 *
 * Overflow: if max |z| >= 2^64 (a finite token with huge values could
 * overflow the fold or the rotation), the token is first scaled by the power
 * of two 2^-e that brings max |x| into [0.5, 1) and hashed again. Scaling by
 * a power of two is exact, so this gives the key every smaller power-of-two
 * multiple of the token has: the key stays scale-invariant.
 *
 * Tokens must be rows of a float dtype (the caller validates); for any
 * other dtype nothing is written and *nonfinite_p is 0.
 *
 * Symmetry: every step is odd in x (sign flips are exact in fp32), so the
 * rotated vector of -x is exactly -y: for x and -x each block has the same
 * j* and the opposite sign bit, unless y_j* is exactly zero (then both
 * have sign bit 0, e.g. for the zero token whose key is 0).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/common/lsh_math.h"
#include "kernels/cpu/hash_isa.h"
#include "kernels/kernels.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"

#define CHUNK 16                        /* fixed inner trip count (see fold) */
#define MAX_HIDDEN ((size_t)1 << 24)
#define HUGE_BITS 0x5f800000u           /* fp32 bits of 2^64 */

struct lshmoe_kn_hasher {
    lshmoe_kn_lsh_params_t p;
    size_t hidden;
    size_t m;          /* rotated dimension                              */
    size_t m_ws;       /* m rounded up to CHUNK (workspace layout)       */
    size_t x_ws;       /* floats of the token copy (FOLD), CHUNK multiple */
    int    nrot;       /* R                                              */
    int    bits;       /* log2(2 * cdim)                                  */
    int    packed;     /* L * bits <= 63                                  */
    float *fold_sign;  /* hidden signs (FOLD only)                        */
    float *rot_sign;   /* nrot * rounds * m signs                         */
};

static int is_pow2(long v)
{
    return v > 0 && (v & (v - 1)) == 0;
}

static lshmoe_status_t check_params(const lshmoe_kn_lsh_params_t *p, size_t hidden)
{
    if (p->num_hashes < 1 || p->num_hashes > 16)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "lsh num_hashes %d is outside 1..16", p->num_hashes);
    if (!is_pow2(p->cdim) || p->cdim < 2 || p->cdim > 256)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "lsh cdim %d is not a power of two in 2..256", p->cdim);
    if (p->rounds < 1 || p->rounds > 3)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "lsh rounds %d is outside 1..3", p->rounds);
    if (p->reduce != LSHMOE_REDUCE_PAD && p->reduce != LSHMOE_REDUCE_FOLD)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "lsh reduce %d is neither pad nor fold", p->reduce);
    if (p->reduce == LSHMOE_REDUCE_FOLD &&
        (!is_pow2(p->reduce_dim) || p->reduce_dim < 16 || p->reduce_dim > 4096))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "lsh reduce_dim %d is not a power of two in 16..4096",
                            p->reduce_dim);
    if (hidden == 0 || hidden > MAX_HIDDEN)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "lsh hidden size %zu is outside 1..2^24", hidden);
    return LSHMOE_OK;
}

static size_t next_pow2(size_t v)
{
    size_t m = 1;
    while (m < v)
        m *= 2;
    return m;
}

static size_t round_up(size_t v, size_t to)
{
    return (v + to - 1) / to * to;
}

lshmoe_status_t lshmoe_kn_hasher_create(const lshmoe_kn_lsh_params_t *params,
                                        size_t hidden,
                                        lshmoe_kn_hasher_t **hasher_p)
{
    if (params == NULL || hasher_p == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "lsh hasher: null argument");
    *hasher_p = NULL;
    LSHMOE_CHECK(check_params(params, hidden));

    size_t m = params->reduce == LSHMOE_REDUCE_FOLD ? (size_t)params->reduce_dim
                                                    : next_pow2(hidden);
    if ((size_t)params->cdim > m)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "lsh cdim %d exceeds the rotated dimension %zu",
                            params->cdim, m);

    lshmoe_kn_hasher_t *h = calloc(1, sizeof *h);
    if (h == NULL)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "lsh hasher: out of memory");
    h->p = *params;
    h->hidden = hidden;
    h->m = m;
    h->m_ws = round_up(m, CHUNK);
    h->x_ws = params->reduce == LSHMOE_REDUCE_FOLD ? round_up(hidden, CHUNK) : 0;
    h->nrot = (int)(((size_t)params->num_hashes * (size_t)params->cdim + m - 1) / m);
    h->bits = lshmoe_kn_value_bits(params->cdim);
    h->packed = params->num_hashes * h->bits <= 63;

    size_t nrot_sign = (size_t)h->nrot * (size_t)params->rounds * m;
    h->rot_sign = malloc(nrot_sign * sizeof(float));
    if (params->reduce == LSHMOE_REDUCE_FOLD)
        h->fold_sign = malloc(hidden * sizeof(float));
    if (h->rot_sign == NULL ||
        (params->reduce == LSHMOE_REDUCE_FOLD && h->fold_sign == NULL)) {
        lshmoe_kn_hasher_destroy(h);
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY,
                            "lsh hasher: out of memory for %zu signs", nrot_sign + hidden);
    }
    for (int r = 0; r < h->nrot; r++)
        for (int k = 0; k < params->rounds; k++)
            for (size_t j = 0; j < m; j++)
                h->rot_sign[((size_t)r * (size_t)params->rounds + (size_t)k) * m + j] =
                    lshmoe_kn_rot_sign(params->seed, r, k, j);
    if (h->fold_sign != NULL)
        for (size_t i = 0; i < hidden; i++)
            h->fold_sign[i] = lshmoe_kn_fold_sign(params->seed, i);
    *hasher_p = h;
    return LSHMOE_OK;
}

void lshmoe_kn_hasher_destroy(lshmoe_kn_hasher_t *hasher)
{
    if (hasher == NULL)
        return;
    free(hasher->fold_sign);
    free(hasher->rot_sign);
    free(hasher);
}

size_t lshmoe_kn_hasher_dim(const lshmoe_kn_hasher_t *hasher)
{
    return hasher != NULL ? hasher->m : 0;
}

/* Layout: [token copy x_ws][z m_ws][y m_ws] floats, then, when the rotated
 * dimension suits the many-token SIMD kernels, their part
 * (LSHMOE_KN_LANES_WS_FLOATS); every part starts on a 64-byte boundary
 * because x_ws and m_ws are multiples of 16 floats. */
size_t lshmoe_kn_hash_ws_size(const lshmoe_kn_hasher_t *hasher)
{
    if (hasher == NULL)
        return 0;
    size_t lanes = hasher->m >= 16 && hasher->m <= LSHMOE_KN_LANES_MAX_M
                       ? LSHMOE_KN_LANES_WS_FLOATS(hasher->m) : 0;
    return (hasher->x_ws + 2 * hasher->m_ws + lanes) * sizeof(float);
}

/*
 * z = fold of x. The outer loop walks 16-slot groups of z and keeps their
 * accumulators in registers while it strides through the token; per slot
 * the additions still happen in increasing i (the documented order).
 */
static void fold(const float *restrict x, const float *restrict s, size_t hidden,
                 size_t m, float *restrict z)
{
    size_t full = hidden / m * m;
    for (size_t j = 0; j < m; j += CHUNK) {
        float acc[CHUNK];
        for (size_t k = 0; k < CHUNK; k++)
            acc[k] = 0.0f;
        for (size_t i = j; i < full; i += m)
            for (size_t k = 0; k < CHUNK; k++)
                acc[k] += s[i + k] * x[i + k];
        for (size_t k = 0; k < CHUNK; k++)
            z[j + k] = acc[k];
    }
    for (size_t i = full; i < hidden; i++)
        z[i - full] += s[i] * x[i];
}

/* fold() reading bf16 directly: the widening is a shift, cheap enough to
 * do in the inner loop, which saves a pass through a converted copy. */
static void fold_bf16(const unsigned char *restrict x, const float *restrict s,
                      size_t hidden, size_t m, float *restrict z)
{
    size_t full = hidden / m * m;
    for (size_t j = 0; j < m; j += CHUNK) {
        float acc[CHUNK];
        for (size_t k = 0; k < CHUNK; k++)
            acc[k] = 0.0f;
        for (size_t i = j; i < full; i += m) {
            for (size_t k = 0; k < CHUNK; k++) {
                uint16_t b;
                memcpy(&b, x + 2 * (i + k), sizeof b);
                acc[k] += s[i + k] * lshmoe_bf16_to_f32(b);
            }
        }
        for (size_t k = 0; k < CHUNK; k++)
            z[j + k] = acc[k];
    }
    for (size_t i = full; i < hidden; i++) {
        uint16_t b;
        memcpy(&b, x + 2 * i, sizeof b);
        z[i - full] += s[i] * lshmoe_bf16_to_f32(b);
    }
}

/* 1 if some |v_j| >= 2^64 or is NaN/Inf (integer compare on the bits). */
static int any_huge(const float *restrict v, size_t n)
{
    int32_t bad = 0;
    size_t i = 0;
    for (; i + CHUNK <= n; i += CHUNK) {
        for (size_t k = 0; k < CHUNK; k++) {
            uint32_t u;
            memcpy(&u, &v[i + k], sizeof u);
            bad |= (int32_t)(u & 0x7fffffffu) >= (int32_t)HUGE_BITS;
        }
    }
    for (; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], sizeof u);
        bad |= (int32_t)(u & 0x7fffffffu) >= (int32_t)HUGE_BITS;
    }
    return bad != 0;
}

static int any_nonfinite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return 1;
    return 0;
}

/* Scales a finite v by the power of two that brings max |v| into
 * [0.5, 1): exact (barring values that become subnormal). */
static void prescale(float *v, size_t n)
{
    float mx = 0.0f;
    for (size_t i = 0; i < n; i++)
        mx = fmaxf(mx, fabsf(v[i]));
    if (mx == 0.0f)
        return;
    int e;
    (void)frexpf(mx, &e);
    float f = ldexpf(1.0f, -e);
    for (size_t i = 0; i < n; i++)
        v[i] *= f;
}

static void mul_signs(float *restrict y, const float *restrict d, size_t m)
{
    size_t i = 0;
    for (; i + CHUNK <= m; i += CHUNK)
        for (size_t k = 0; k < CHUNK; k++)
            y[i + k] *= d[i + k];
    for (; i < m; i++)
        y[i] *= d[i];
}

/* Step 3-4 for the blocks of rotation r, whose rotated vector is y: the
 * shared block value and key packing (kernels/common/lsh_math.h), on the
 * running key of this key kind (packed keys start from 0, mixed ones from
 * LSHMOE_KN_KEY_MIX_INIT: lshmoe_kn_key_init()). */
void lshmoe_kn_key_rotation(const lshmoe_kn_hasher_t *h, int r, const float *y,
                            lshmoe_kn_keystate_t *ks)
{
    const int cdim = h->p.cdim, L = h->p.num_hashes;
    const int nblk = (int)(h->m / (size_t)cdim);
    uint64_t *key = h->packed ? &ks->key : &ks->acc;
    for (int b = 0, g = r * nblk; b < nblk && g < L; b++, g++) {
        unsigned v = lshmoe_kn_block_value(y + (size_t)b * (size_t)cdim, cdim);
        *key = lshmoe_kn_key_add(*key, h->packed, h->bits, g, v);
    }
}

uint64_t lshmoe_kn_key_final(const lshmoe_kn_hasher_t *h, const lshmoe_kn_keystate_t *ks)
{
    return lshmoe_kn_key_finish(h->packed ? ks->key : ks->acc, h->packed);
}
/* Steps 2-4 on a finite z (max |z| < 2^64). */
static uint64_t key_of(const lshmoe_kn_hasher_t *h, const float *z, float *y)
{
    const size_t m = h->m;
    const int rounds = h->p.rounds;
    lshmoe_kn_keystate_t ks = LSHMOE_KN_KEYSTATE_INIT;
    for (int r = 0; r < h->nrot; r++) {
        memcpy(y, z, m * sizeof(float));
        for (int k = 0; k < rounds; k++) {
            mul_signs(y, h->rot_sign + ((size_t)r * (size_t)rounds + (size_t)k) * m, m);
            lshmoe_kn_fwht(y, m);
        }
        lshmoe_kn_key_rotation(h, r, y, &ks);
    }
    return lshmoe_kn_key_final(h, &ks);
}

void lshmoe_kn_hash_scalar(const lshmoe_kn_hasher_t *hasher, const void *tokens,
                           lshmoe_dtype_t dtype, size_t ntokens, uint64_t *keys,
                           void *ws, size_t *nonfinite_p)
{
    size_t nonfinite = 0;
    if (hasher == NULL || !lshmoe_dtype_is_float(dtype)) {
        if (nonfinite_p != NULL)
            *nonfinite_p = 0;
        return;
    }
    const lshmoe_kn_hasher_t *h = hasher;
    const size_t hidden = h->hidden, m = h->m;
    const size_t esize = dtype == LSHMOE_DTYPE_FP32 ? 4 : 2;
    const int is_fold = h->p.reduce == LSHMOE_REDUCE_FOLD;
    float *xbuf = ws;
    float *z = xbuf + h->x_ws;
    float *y = z + h->m_ws;
    /* fp32 rows are folded in place when they are float-aligned. */
    const int direct = dtype == LSHMOE_DTYPE_FP32 &&
                       (uintptr_t)tokens % sizeof(float) == 0;

    for (size_t t = 0; t < ntokens; t++) {
        const unsigned char *row = (const unsigned char *)tokens + t * hidden * esize;
        if (is_fold && direct) {
            fold((const float *)(const void *)row, h->fold_sign, hidden, m, z);
        } else if (is_fold && dtype == LSHMOE_DTYPE_BF16) {
            fold_bf16(row, h->fold_sign, hidden, m, z);
        } else if (is_fold) {
            lshmoe_row_to_f32(row, dtype, hidden, xbuf);
            fold(xbuf, h->fold_sign, hidden, m, z);
        } else {
            lshmoe_row_to_f32(row, dtype, hidden, z);
            memset(z + hidden, 0, (m - hidden) * sizeof(float));
        }
        if (any_huge(z, m)) {
            /* Rare path: NaN/Inf in the token, or values so large that the
             * fold or the rotation could overflow. */
            float *xs = is_fold ? xbuf : z;
            lshmoe_row_to_f32(row, dtype, hidden, xs);
            if (any_nonfinite(xs, hidden)) {
                keys[t] = LSHMOE_KN_KEY_NONFINITE;
                nonfinite++;
                continue;
            }
            prescale(xs, hidden);
            if (is_fold)
                fold(xs, h->fold_sign, hidden, m, z);
        }
        keys[t] = key_of(h, z, y);
    }
    if (nonfinite_p != NULL)
        *nonfinite_p = nonfinite;
}

void lshmoe_kn_hasher_view(const lshmoe_kn_hasher_t *h, lshmoe_kn_hasher_view_t *v)
{
    *v = (lshmoe_kn_hasher_view_t){
        .hidden = h->hidden, .m = h->m, .fold = h->p.reduce == LSHMOE_REDUCE_FOLD,
        .nrot = h->nrot, .rounds = h->p.rounds,
        .fold_sign = h->fold_sign, .rot_sign = h->rot_sign,
        .cdim = h->p.cdim, .nhash = h->p.num_hashes, .bits = h->bits,
        .packed = h->packed, .lanes_ws = h->x_ws + 2 * h->m_ws};
}
