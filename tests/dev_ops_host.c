/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The device ops table in host memory (dev_ops_host.h): each method does
 * what kernels/cuda/lsh_cuda.h documents for its launcher, with the CPU
 * kernels. Scratch memory is allocated per call: this is a test double,
 * not a backend.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/common/quant_math.h"
#include "lshmoe/codec_internal.h"
#include "lshmoe/codec_rd_int.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"
#include "tests/dev_ops_host.h"

static long live;

/* The emulation refuses what the CUDA launchers refuse (or what would
 * fault on the device): a segment not 8-byte aligned for seal and
 * check_segment, rows not aligned to their element for the kernels that
 * load and store whole elements. Without this the host test would pass
 * with pointers the device rejects. */
static int misaligned(const void *p, size_t a)
{
    return p == NULL || (uintptr_t)p % a != 0;
}

static size_t elem_of(lshmoe_dtype_t dtype)
{
    return dtype == LSHMOE_DTYPE_FP32 ? 4 : 2;
}

long dev_ops_host_live(void)
{
    return live;
}

static lshmoe_status_t h_alloc(size_t bytes, void **ptr_p)
{
    void *p = aligned_alloc(256, (bytes + 255) & ~(size_t)255);
    if (p == NULL)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "host ops: %zu bytes", bytes);
    live++;
    *ptr_p = p;
    return LSHMOE_OK;
}

static void h_free(void *ptr)
{
    if (ptr != NULL)
        live--;
    free(ptr);
}

static lshmoe_status_t h_copy(void *dst, const void *src, size_t bytes, void *stream)
{
    (void)stream;
    if (bytes > 0)
        memcpy(dst, src, bytes);
    return LSHMOE_OK;
}

static lshmoe_status_t h_zero(void *dst, size_t bytes, void *stream)
{
    (void)stream;
    if (bytes > 0)
        memset(dst, 0, bytes);
    return LSHMOE_OK;
}

static lshmoe_status_t h_sync(void *stream)
{
    (void)stream;
    return LSHMOE_OK;
}

/* Every method has finished when it returns. */
static lshmoe_status_t h_query(void *stream, int *done_p)
{
    (void)stream;
    *done_p = 1;
    return LSHMOE_OK;
}

/* A CPU hasher with its workspace. */
typedef struct h_hasher {
    lshmoe_kn_hasher_t *h;
    void               *ws;
} h_hasher_t;

static lshmoe_status_t h_hasher_create(const lshmoe_kn_lsh_params_t *params, size_t hidden,
                                       void *stream, void **hasher_p)
{
    (void)stream;
    h_hasher_t *hh = calloc(1, sizeof *hh);
    if (hh == NULL)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "host ops: hasher");
    lshmoe_status_t st = lshmoe_kn_hasher_create(params, hidden, &hh->h);
    if (st != LSHMOE_OK) {
        free(hh);
        return st;
    }
    hh->ws = aligned_alloc(64, (lshmoe_kn_hash_ws_size(hh->h) + 63) & ~(size_t)63);
    *hasher_p = hh;
    return LSHMOE_OK;
}

static void h_hasher_destroy(void *hasher)
{
    h_hasher_t *hh = hasher;
    lshmoe_kn_hasher_destroy(hh->h);
    free(hh->ws);
    free(hh);
}

static lshmoe_status_t h_hash(const void *hasher, const void *tokens, lshmoe_dtype_t dtype,
                              size_t ntokens, uint64_t *keys, void *stream)
{
    const h_hasher_t *hh = hasher;
    size_t nonfinite;
    (void)stream;
    lshmoe_kn_hash(hh->h, tokens, dtype, ntokens, keys, hh->ws, &nonfinite);
    return LSHMOE_OK;
}

static size_t h_group_ws_size(size_t ntokens)
{
    return lshmoe_kn_group_ws_size(ntokens);
}

/* lshmoe_kn_group, then the members lists the device kernel also gives:
 * a counting sort, so each cluster's members are in increasing order. */
static lshmoe_status_t h_group(const uint64_t *keys, size_t ntokens, uint32_t *cluster_of,
                               uint32_t *sizes, uint32_t *starts, uint32_t *members,
                               uint32_t *nclusters, void *ws, size_t ws_bytes, void *stream)
{
    size_t nc = 0;
    (void)ws_bytes;
    (void)stream;
    lshmoe_kn_group(keys, ntokens, cluster_of, &nc, ws);
    uint32_t *fill = calloc(ntokens + 1, sizeof *fill);
    if (fill == NULL)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "host ops: group");
    memset(sizes, 0, ntokens * sizeof *sizes);
    for (size_t i = 0; i < ntokens; i++)
        sizes[cluster_of[i]]++;
    for (size_t k = 0, o = 0; k < nc; k++) {
        starts[k] = (uint32_t)o;
        o += sizes[k];
    }
    for (size_t i = 0; i < ntokens; i++) {
        uint32_t k = cluster_of[i];
        members[starts[k] + fill[k]++] = (uint32_t)i;
    }
    free(fill);
    *nclusters = (uint32_t)nc;
    return LSHMOE_OK;
}

/* Grouping does not depend on how the keys are sorted: the CPU kernel
 * numbers clusters in order of first appearance either way. */
static lshmoe_status_t h_group_bits(const uint64_t *keys, size_t ntokens, int key_bits,
                                    uint32_t *cluster_of, uint32_t *sizes, uint32_t *starts,
                                    uint32_t *members, uint32_t *nclusters, void *ws,
                                    size_t ws_bytes, void *stream)
{
    (void)key_bits;
    return h_group(keys, ntokens, cluster_of, sizes, starts, members, nclusters, ws, ws_bytes,
                   stream);
}

static lshmoe_status_t h_centroids(const void *tokens, lshmoe_dtype_t dtype, size_t hidden,
                                   const uint32_t *sizes, const uint32_t *starts,
                                   const uint32_t *members, const uint32_t *nclusters,
                                   size_t max_clusters, void *rows, void *stream)
{
    size_t nc = *nclusters, n = 0;
    (void)max_clusters;
    (void)stream;
    for (size_t k = 0; k < nc; k++)
        n += sizes[k];
    uint32_t *of = malloc((n + 1) * sizeof *of), *sz = malloc((nc + 1) * sizeof *sz);
    float *acc = malloc((nc * hidden + 1) * sizeof *acc);
    if (of == NULL || sz == NULL || acc == NULL) {
        free(of);
        free(sz);
        free(acc);
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "host ops: centroids");
    }
    for (size_t k = 0; k < nc; k++)
        for (size_t m = 0; m < sizes[k]; m++)
            of[members[starts[k] + m]] = (uint32_t)k;
    lshmoe_kn_centroids(tokens, dtype, hidden, n, of, nc, rows, sz, acc);
    free(of);
    free(sz);
    free(acc);
    return LSHMOE_OK;
}

static lshmoe_status_t h_guard_sums(const void *tokens, const void *rows, lshmoe_dtype_t dtype,
                                    size_t hidden, size_t ntokens, const uint32_t *cluster_of,
                                    const uint32_t *sizes, double *tok_ws, double *sums,
                                    void *stream)
{
    (void)tok_ws;
    (void)stream;
    lshmoe_kn_guard_sums(tokens, rows, dtype, hidden, ntokens, cluster_of, sizes, &sums[0],
                         &sums[1]);
    return LSHMOE_OK;
}

/* The tokens lshmoe_codec_probe() samples, by its own formula. */
static lshmoe_status_t h_sample_keys(const uint64_t *keys, size_t ntokens, size_t s,
                                     uint64_t *out, void *stream)
{
    (void)stream;
    for (size_t i = 0; i < s; i++)
        out[i] = keys[(size_t)((double)i * (double)ntokens / (double)s)];
    return LSHMOE_OK;
}

static lshmoe_status_t h_pack_index(const uint32_t *cluster_of, size_t ntokens, int idx32,
                                    void *dst, size_t padded_bytes, void *stream)
{
    uint8_t *d = dst;
    size_t w = idx32 ? 4 : 2;
    (void)stream;
    for (size_t i = 0; i < ntokens; i++) {
        if (idx32)
            lshmoe_put_le32(d + 4 * i, cluster_of[i]);
        else
            lshmoe_put_le16(d + 2 * i, (uint16_t)cluster_of[i]);
    }
    memset(d + w * ntokens, 0, padded_bytes - w * ntokens);
    return LSHMOE_OK;
}

static lshmoe_status_t h_seal(void *seg, const void *header, size_t payload_bytes, void *ws,
                              void *stream)
{
    if (misaligned(seg, 8) || header == NULL || misaligned(ws, 8))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "host ops: seal: segment or workspace "
                            "not 8-byte aligned");
    uint8_t *s = seg;
    (void)ws;
    (void)stream;
    memcpy(s, header, LSHMOE_WIRE_HEADER_BYTES);
    uint64_t sum = lshmoe_wire_segment_checksum(s, s + LSHMOE_WIRE_HEADER_BYTES, payload_bytes);
    lshmoe_put_le64(s + LSHMOE_WIRE_OFF_CHECKSUM, sum);
    return LSHMOE_OK;
}

static int pad_bad(const uint8_t *seg, uint64_t off, uint64_t bytes)
{
    for (uint64_t i = off + bytes; i < lshmoe_pad8(off + bytes); i++)
        if (seg[i] != 0)
            return 1;
    return 0;
}

static lshmoe_status_t h_check_segment(const void *seg, const lshmoe_kn_seg_t *g, uint32_t *bad,
                                       void *ws, void *stream)
{
    if (misaligned(seg, 8) || misaligned(ws, 8))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "host ops: check segment: segment or "
                            "workspace not 8-byte aligned");
    const uint8_t *s = seg;
    (void)ws;
    (void)stream;
    if (pad_bad(s, g->rows_off, g->rows_bytes) || (!g->raw && pad_bad(s, g->idx_off,
                                                                      g->idx_bytes)))
        *bad |= LSHMOE_KN_SEG_BAD_PAD;
    uint64_t sum = lshmoe_wire_segment_checksum(s, s + LSHMOE_WIRE_HEADER_BYTES,
                                                (size_t)g->payload_bytes);
    if (sum != lshmoe_get_le64(s + LSHMOE_WIRE_OFF_CHECKSUM))
        *bad |= LSHMOE_KN_SEG_BAD_CHECKSUM;
    for (uint64_t t = 0; !g->raw && t < g->ntokens; t++) {
        uint64_t k = g->idx32 ? lshmoe_get_le32(s + g->idx_off + 4 * t)
                              : lshmoe_get_le16(s + g->idx_off + 2 * t);
        if (k >= g->nrows)
            *bad |= LSHMOE_KN_SEG_BAD_INDEX;
    }
    return LSHMOE_OK;
}

/* The row of token t. */
static uint64_t row_of(const uint8_t *s, const lshmoe_kn_seg_t *g, uint64_t t)
{
    if (g->raw)
        return t;
    return g->idx32 ? lshmoe_get_le32(s + g->idx_off + 4 * t)
                    : lshmoe_get_le16(s + g->idx_off + 2 * t);
}

static lshmoe_status_t h_unpack(const void *seg, const lshmoe_kn_seg_t *g, size_t row_bytes,
                                const uint32_t *bad, void *out, void *stream)
{
    const uint8_t *s = seg;
    (void)stream;
    if (*bad)
        return LSHMOE_OK;
    for (uint64_t t = 0; t < g->ntokens; t++)
        memcpy((uint8_t *)out + t * row_bytes, s + g->rows_off + row_of(s, g, t) * row_bytes,
               row_bytes);
    return LSHMOE_OK;
}

static lshmoe_status_t h_quant_rows_sse(int fmt, const void *tokens, lshmoe_dtype_t dtype,
                                        size_t hidden, size_t ntokens, void *dst,
                                        double *row_sse, double *norms, void *stream)
{
    if (ntokens > 0 && misaligned(tokens, elem_of(dtype)))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "host ops: quant sse: tokens not aligned");
    size_t stride = (size_t)lshmoe_qm_row_bytes(fmt, hidden), tb = hidden * lshmoe_dtype_size(dtype);
    float *x = malloc(2 * hidden * sizeof *x);
    (void)stream;
    if (x == NULL)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "host ops: quant rows");
    for (size_t i = 0; i < ntokens; i++) {
        uint8_t *d = dst != NULL ? (uint8_t *)dst + i * stride : NULL;
        lshmoe_row_to_f32((const uint8_t *)tokens + i * tb, dtype, hidden, x);
        norms[i] = lshmoe_rd_sq_norm(x, hidden);
        if (d != NULL && row_sse != NULL)
            row_sse[i] = lshmoe_kn_quant_row_sse(fmt, x, hidden, dtype, d, x + hidden);
        else if (d != NULL)
            lshmoe_kn_quant_row(fmt, x, hidden, d);
    }
    free(x);
    return LSHMOE_OK;
}

static lshmoe_status_t h_ordered_sums(const double *row_sse, const double *norms, size_t ntokens,
                                      size_t step, double *sums, void *stream)
{
    (void)stream;
    lshmoe_qm_ordered_sums(row_sse, norms, ntokens, step, sums);
    return LSHMOE_OK;
}

static lshmoe_status_t h_check_rows(const void *seg, const lshmoe_kn_seg_t *g, int fmt,
                                    size_t hidden, uint32_t *bad, void *stream)
{
    size_t stride = (size_t)lshmoe_qm_row_bytes(fmt, hidden);
    (void)stream;
    for (uint64_t k = 0; k < g->nrows; k++)
        if (lshmoe_kn_quant_row_check(fmt, (const uint8_t *)seg + g->rows_off + k * stride,
                                      hidden))
            *bad |= LSHMOE_KN_SEG_BAD_ROW;
    return LSHMOE_OK;
}

static lshmoe_status_t h_dequant_expand(const void *seg, const lshmoe_kn_seg_t *g, int fmt,
                                        lshmoe_dtype_t dtype, size_t hidden,
                                        const uint32_t *bad, void *out, void *stream)
{
    const uint8_t *s = seg;
    if (g->ntokens > 0 && misaligned(out, elem_of(dtype)))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "host ops: dequant: out not aligned");
    size_t stride = (size_t)lshmoe_qm_row_bytes(fmt, hidden), rb = hidden * lshmoe_dtype_size(dtype);
    (void)stream;
    if (*bad)
        return LSHMOE_OK;
    float *y = malloc(hidden * sizeof *y);
    if (y == NULL)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "host ops: dequant");
    for (uint64_t t = 0; t < g->ntokens; t++) {
        lshmoe_kn_dequant_row(fmt, s + g->rows_off + row_of(s, g, t) * stride, hidden, y);
        lshmoe_row_from_f32(y, hidden, dtype, (uint8_t *)out + t * rb);
    }
    free(y);
    return LSHMOE_OK;
}

static lshmoe_status_t h_residual_encode(const void *tokens, const void *rows,
                                         lshmoe_dtype_t dtype, size_t hidden, size_t ntokens,
                                         const uint32_t *cluster_of, int bits, void *coded,
                                         void *stream)
{
    if (ntokens > 0 && (misaligned(tokens, elem_of(dtype)) || misaligned(rows, elem_of(dtype))))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "host ops: residual encode: not aligned");
    float *scratch = malloc((hidden + 1) * sizeof *scratch);
    (void)stream;
    if (scratch == NULL)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "host ops: residuals");
    lshmoe_kn_residual_encode(tokens, rows, dtype, hidden, ntokens, cluster_of, bits, coded,
                              scratch);
    free(scratch);
    return LSHMOE_OK;
}

static lshmoe_status_t h_residual_check(const void *seg, uint64_t resid_off, size_t ntokens,
                                        size_t hidden, int bits, uint32_t *bad, void *stream)
{
    const uint8_t *r = (const uint8_t *)seg + resid_off;
    size_t stride = lshmoe_kn_residual_bytes(hidden, bits);
    (void)stream;
    for (size_t i = 0; i < ntokens; i++) {
        float s;
        memcpy(&s, r + i * stride, sizeof s);
        if (!isfinite(s) || s < 0.0f)
            *bad |= LSHMOE_KN_SEG_BAD_RESID;
    }
    if (pad_bad(r, 0, ntokens * stride))
        *bad |= LSHMOE_KN_SEG_BAD_PAD;
    return LSHMOE_OK;
}

static lshmoe_status_t h_residual_decode(const void *seg, uint64_t resid_off, size_t ntokens,
                                         int bits, lshmoe_dtype_t dtype, size_t hidden,
                                         const uint32_t *bad, void *out, void *stream)
{
    (void)stream;
    if (ntokens > 0 && misaligned(out, elem_of(dtype)))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "host ops: residual decode: out not aligned");
    if (*bad)
        return LSHMOE_OK;
    float *scratch = malloc((hidden + 1) * sizeof *scratch);
    if (scratch == NULL)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "host ops: residuals");
    lshmoe_kn_residual_decode((const uint8_t *)seg + resid_off, dtype, hidden, ntokens, bits,
                              out, scratch);
    free(scratch);
    return LSHMOE_OK;
}

const lshmoe_kn_dev_ops_t dev_ops_host = {
    .name = "host emulation",
    .default_stream = NULL,
    .alloc = h_alloc,
    .free = h_free,
    .copy = h_copy,
    .zero = h_zero,
    .sync = h_sync,
    .hasher_create = h_hasher_create,
    .hasher_destroy = h_hasher_destroy,
    .hash = h_hash,
    .group_ws_size = h_group_ws_size,
    .group = h_group,
    .centroids = h_centroids,
    .guard_sums = h_guard_sums,
    .sample_keys = h_sample_keys,
    .pack_index = h_pack_index,
    .seal = h_seal,
    .check_segment = h_check_segment,
    .unpack = h_unpack,
    /* MoE mode's gather and combine: not used by the segment codec */
    .query = h_query,
    .group_bits = h_group_bits,
    .quant_rows_sse = h_quant_rows_sse,
    .ordered_sums = h_ordered_sums,
    .check_rows = h_check_rows,
    .dequant_expand = h_dequant_expand,
    .residual_encode = h_residual_encode,
    .residual_check = h_residual_check,
    .residual_decode = h_residual_decode,
};
