/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Row expansion with AVX2 (kernels/cpu/cluster.c is the reference): out
 * row i = rows[cluster_of[i]]. A call to memcpy per row costs its dispatch
 * on every row, and for rows of a few KiB glibc switches to `rep movsb`,
 * which expanded hidden-1024 bf16 rows slower than plain vector moves on
 * the development machine (codec_stages, docs/benchmarks.md). Rows of 32
 * bytes or more are copied in 32-byte moves: a first one at the row's
 * start, the others stored to 32-byte-aligned addresses, the last ending
 * exactly at the row's end (moves may overlap, writing the same bytes
 * twice); shorter rows go through memcpy.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cpu/expand_isa.h"

static inline void copy_row(unsigned char *d, const unsigned char *s, size_t n)
{
    /* a first move of 32 bytes, then moves that store to 32-byte-aligned
     * addresses from the first boundary after d (they may rewrite a few of
     * its bytes): a store that straddles two cache lines costs two */
    _mm256_storeu_si256((__m256i *)d, _mm256_loadu_si256((const __m256i *)s));
    size_t k = 32 - ((uintptr_t)d & 31u);
    for (; k + 128 <= n; k += 128) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(s + k));
        __m256i b = _mm256_loadu_si256((const __m256i *)(s + k + 32));
        __m256i c = _mm256_loadu_si256((const __m256i *)(s + k + 64));
        __m256i e = _mm256_loadu_si256((const __m256i *)(s + k + 96));
        _mm256_store_si256((__m256i *)(d + k), a);
        _mm256_store_si256((__m256i *)(d + k + 32), b);
        _mm256_store_si256((__m256i *)(d + k + 64), c);
        _mm256_store_si256((__m256i *)(d + k + 96), e);
    }
    for (; k + 32 <= n; k += 32)
        _mm256_store_si256((__m256i *)(d + k), _mm256_loadu_si256((const __m256i *)(s + k)));
    if (k < n)
        _mm256_storeu_si256((__m256i *)(d + n - 32),
                            _mm256_loadu_si256((const __m256i *)(s + n - 32)));
}

void lshmoe_kn_expand_avx2(const void *rows, size_t row_bytes, size_t ntokens,
                           const uint32_t *cluster_of, void *out)
{
    if (row_bytes < 32) {
        lshmoe_kn_expand_scalar(rows, row_bytes, ntokens, cluster_of, out);
        return;
    }
    const unsigned char *src = rows;
    unsigned char *dst = out;
    for (size_t i = 0; i < ntokens; i++)
        copy_row(dst + i * row_bytes, src + (size_t)cluster_of[i] * row_bytes, row_bytes);
}
