/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * What the per-ISA hash kernels share with the scalar reference
 * (lsh_hash.c), private to kernels/cpu/. A SIMD kernel reproduces the fold
 * and the rotation operation for operation (kernels/cpu/lsh_hash.c,
 * fwht.c: same additions in the same order per coordinate, no FMA
 * contraction), then hands each rotated vector to lshmoe_kn_key_rotation(),
 * so the argmax and the key packing are the reference's own code. Tokens
 * that take the rare path (NaN/Inf, or max |z| >= 2^64) are hashed by
 * lshmoe_kn_hash_scalar() one at a time.
 */
#ifndef LSHMOE_KERNELS_CPU_HASH_ISA_H
#define LSHMOE_KERNELS_CPU_HASH_ISA_H

#include "kernels/common/lsh_math.h"
#include "kernels/kernels.h"

/* Read-only view of a hasher's tables. */
typedef struct lshmoe_kn_hasher_view {
    size_t       hidden;
    size_t       m;          /* rotated dimension                          */
    int          fold;       /* reduce is FOLD                             */
    int          nrot;       /* rotations                                  */
    int          rounds;     /* (signs, FWHT) rounds per rotation          */
    const float *fold_sign;  /* hidden signs (+-1.0f), FOLD only           */
    const float *rot_sign;   /* [nrot][rounds][m] signs (+-1.0f)           */
    int          cdim;       /* coordinates per block                      */
    int          nhash;      /* L: blocks in all                           */
    int          bits;       /* bits of one block value                    */
    int          packed;     /* key kind: packed (1) or mixed (0)          */
    size_t       lanes_ws;   /* floats of the workspace before the part of
                                the many-token kernels (hash_lanes.h)      */
} lshmoe_kn_hasher_view_t;

/* The many-token SIMD kernels (kernels/cpu/x86/hash_lanes.h) hash up to
 * LSHMOE_KN_LANES tokens side by side, one per vector lane, when
 * 16 <= m <= LSHMOE_KN_LANES_MAX_M; lshmoe_kn_hash_ws_size() includes their
 * workspace (rows, two transposed copies, block values). */
#define LSHMOE_KN_LANES       16
#define LSHMOE_KN_LANES_MAX_M 128
#define LSHMOE_KN_LANES_WS_FLOATS(m) \
    (3 * LSHMOE_KN_LANES * (size_t)(m) + 16 * LSHMOE_KN_LANES)

void lshmoe_kn_hasher_view(const lshmoe_kn_hasher_t *h, lshmoe_kn_hasher_view_t *v);

/* Running key of one token, rotation by rotation. */
typedef struct lshmoe_kn_keystate {
    uint64_t key;   /* packed keys                                         */
    uint64_t acc;   /* mixed keys                                          */
} lshmoe_kn_keystate_t;
#define LSHMOE_KN_KEYSTATE_INIT {0, LSHMOE_KN_KEY_MIX_INIT}

/* Adds the blocks of rotation r (rotated vector y, m floats) to the key. */
void lshmoe_kn_key_rotation(const lshmoe_kn_hasher_t *h, int r, const float *y,
                            lshmoe_kn_keystate_t *ks);
uint64_t lshmoe_kn_key_final(const lshmoe_kn_hasher_t *h, const lshmoe_kn_keystate_t *ks);

/* lshmoe_kn_hash() per level; same contract. */
void lshmoe_kn_hash_scalar(const lshmoe_kn_hasher_t *hasher, const void *tokens,
                           lshmoe_dtype_t dtype, size_t ntokens, uint64_t *keys,
                           void *ws, size_t *nonfinite_p);
void lshmoe_kn_hash_avx2(const lshmoe_kn_hasher_t *hasher, const void *tokens,
                         lshmoe_dtype_t dtype, size_t ntokens, uint64_t *keys,
                         void *ws, size_t *nonfinite_p);
void lshmoe_kn_hash_avx512(const lshmoe_kn_hasher_t *hasher, const void *tokens,
                           lshmoe_dtype_t dtype, size_t ntokens, uint64_t *keys,
                           void *ws, size_t *nonfinite_p);

#endif /* LSHMOE_KERNELS_CPU_HASH_ISA_H */
