/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* lshmoe_kn_hash(): the level chosen by lshmoe_kn_isa() (kernels/cpu/isa.c). */
#include "kernels/cpu/hash_isa.h"
#include "kernels/kernels.h"
#include "lshmoe_build_config.h"

void lshmoe_kn_hash(const lshmoe_kn_hasher_t *hasher, const void *tokens,
                    lshmoe_dtype_t dtype, size_t ntokens, uint64_t *keys,
                    void *ws, size_t *nonfinite_p)
{
    switch (lshmoe_kn_isa()) {
#if LSHMOE_HAVE_X86_SIMD
    case LSHMOE_KN_ISA_AVX512:
        lshmoe_kn_hash_avx512(hasher, tokens, dtype, ntokens, keys, ws, nonfinite_p);
        return;
    case LSHMOE_KN_ISA_AVX2:
        lshmoe_kn_hash_avx2(hasher, tokens, dtype, ntokens, keys, ws, nonfinite_p);
        return;
#endif
    default:
        lshmoe_kn_hash_scalar(hasher, tokens, dtype, ntokens, keys, ws, nonfinite_p);
    }
}
