/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Row expansion with AVX-512 (kernels/cpu/cluster.c is the reference): out
 * row i = rows[cluster_of[i]], as the AVX2 version explains, in 64-byte
 * moves; the last partial move of a row is a masked load and store
 * (AVX-512BW), so rows of any length take no branch to memcpy and never
 * touch a byte outside the row. Stores are aligned (copy_row).
 */
#include <immintrin.h>
#include <stdint.h>

#include "kernels/cpu/expand_isa.h"

/* n bytes, n < 64, as one masked move. */
static inline void copy_part(unsigned char *d, const unsigned char *s, size_t n)
{
    __mmask64 m = n ? ~0ull >> (64 - n) : 0;
    _mm512_mask_storeu_epi8(d, m, _mm512_maskz_loadu_epi8(m, s));
}

/* The stores go to 64-byte-aligned addresses (a first masked move up to the
 * boundary): a store that straddles two cache lines costs two, and with
 * the rows of a call laid end to end in the caller's buffer (malloc gives
 * 16-byte alignment) every unaligned store of a row would straddle. The
 * loads from the segment may straddle; they are cheaper. */
static inline void copy_row(unsigned char *d, const unsigned char *s, size_t n)
{
    size_t k = (size_t)(-(uintptr_t)d & 63u);
    if (k >= n) {
        copy_part(d, s, n);
        return;
    }
    copy_part(d, s, k);
    for (; k + 256 <= n; k += 256) {
        __m512i a = _mm512_loadu_si512((const void *)(s + k));
        __m512i b = _mm512_loadu_si512((const void *)(s + k + 64));
        __m512i c = _mm512_loadu_si512((const void *)(s + k + 128));
        __m512i e = _mm512_loadu_si512((const void *)(s + k + 192));
        _mm512_store_si512((void *)(d + k), a);
        _mm512_store_si512((void *)(d + k + 64), b);
        _mm512_store_si512((void *)(d + k + 128), c);
        _mm512_store_si512((void *)(d + k + 192), e);
    }
    for (; k + 64 <= n; k += 64)
        _mm512_store_si512((void *)(d + k), _mm512_loadu_si512((const void *)(s + k)));
    copy_part(d + k, s + k, n - k);
}

void lshmoe_kn_expand_avx512(const void *rows, size_t row_bytes, size_t ntokens,
                             const uint32_t *cluster_of, void *out)
{
    const unsigned char *src = rows;
    unsigned char *dst = out;
    for (size_t i = 0; i < ntokens; i++)
        copy_row(dst + i * row_bytes, src + (size_t)cluster_of[i] * row_bytes, row_bytes);
}
