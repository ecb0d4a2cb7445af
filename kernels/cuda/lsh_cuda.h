/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The CUDA kernels' C interface (extern "C" launchers in the .cu files of kernels/cuda/;
 * no C++ type crosses it). Built only when nvcc is found
 * (LSHMOE_HAVE_CUDA); the CPU kernels of kernels.h are their oracle: keys,
 * grouping, centroids and expanded rows equal the CPU's bit for bit (see
 * docs/cuda.md for what is checked and how).
 *
 * Every device pointer is caller-owned device memory; token rows must be
 * aligned to their element size (cudaMalloc'd buffers always are). Every launcher is
 * stream-ordered on `stream` (a cudaStream_t; NULL = the legacy default
 * stream), returns as soon as the work is queued, never synchronises the
 * host and never allocates, except lshmoe_kn_cuda_hasher_create(). Not
 * collective. Thread-safe for distinct outputs. A launch or argument error
 * returns LSHMOE_ERR_CUDA or LSHMOE_ERR_INVALID_ARG with lshmoe_error()
 * detail; errors of the queued work surface at the caller's next
 * synchronisation.
 */
#ifndef LSHMOE_KN_LSH_CUDA_H
#define LSHMOE_KN_LSH_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "kernels/kernels.h" /* C declarations: kept inside extern "C" */

/* Number of usable CUDA devices; 0 when there is no device or driver
 * (never an error). Not stream-ordered; cheap after the first call. */
int lshmoe_kn_cuda_device_count(void);

/* 1 if `ptr` is CUDA device (or managed) memory, 0 for host memory or when
 * no CUDA device is usable. Not stream-ordered. */
int lshmoe_kn_cuda_ptr_is_device(const void *ptr);

/* Device copy of a hasher: the signs are drawn on the device from the seed
 * with kernels/common/lsh_math.h. Allocates (cudaMalloc) and synchronises
 * `stream` once. Largest rotated dimension: 4096 (a PAD of hidden > 4096
 * returns LSHMOE_ERR_UNSUPPORTED). Returns LSHMOE_ERR_INVALID_ARG for
 * parameters the CPU hasher rejects, LSHMOE_ERR_CUDA. */
typedef struct lshmoe_kn_cuda_hasher lshmoe_kn_cuda_hasher_t;

lshmoe_status_t lshmoe_kn_cuda_hasher_create(const lshmoe_kn_lsh_params_t *params,
                                             size_t hidden, void *stream,
                                             lshmoe_kn_cuda_hasher_t **hasher_p);
void lshmoe_kn_cuda_hasher_destroy(lshmoe_kn_cuda_hasher_t *hasher);

/* keys[i] (device) = lshmoe_kn_hash()'s key of token i (device rows).
 * Non-finite tokens get LSHMOE_KN_KEY_NONFINITE; not counted here. */
lshmoe_status_t lshmoe_kn_cuda_hash(const lshmoe_kn_cuda_hasher_t *hasher,
                                    const void *tokens, lshmoe_dtype_t dtype,
                                    size_t ntokens, uint64_t *keys, void *stream);

/* Workspace bytes lshmoe_kn_cuda_group() needs for ntokens (256-byte
 * aligned device memory). 0 when the size query itself fails. */
size_t lshmoe_kn_cuda_group_ws_size(size_t ntokens);

/*
 * Groups tokens by key exactly as lshmoe_kn_group(): cluster_of[i] numbers
 * clusters in order of first appearance, a non-finite key is a cluster of
 * its own. Also writes what the centroid kernel needs: sizes[k] (tokens of
 * cluster k), starts[k] (offset of cluster k in members), members (token
 * indices, cluster by cluster, each cluster in increasing token order), and
 * *nclusters (device uint32).
 * Every output has room for ntokens entries; entries >= nclusters of sizes
 * are 0. 1 <= ntokens < 2^31.
 */
lshmoe_status_t lshmoe_kn_cuda_group(const uint64_t *keys, size_t ntokens,
                                     uint32_t *cluster_of, uint32_t *sizes,
                                     uint32_t *starts, uint32_t *members,
                                     uint32_t *nclusters, void *ws, size_t ws_bytes,
                                     void *stream);

/*
 * lshmoe_kn_cuda_group() sorting only the low `key_bits` bits of each key
 * (1..64; lshmoe_kn_cuda_group() is key_bits 64), with 32-bit keys when
 * key_bits <= 32: fewer radix passes, the same outputs, provided the low
 * key_bits bits order the keys as whole keys do. That holds for every key
 * of a hasher with key_bits = lshmoe_kn_key_sort_bits(L, cdim)
 * (kernels/common/lsh_math.h), the non-finite key included; for other
 * keys the grouping is by the low bits only. Same workspace.
 */
lshmoe_status_t lshmoe_kn_cuda_group_bits(const uint64_t *keys, size_t ntokens, int key_bits,
                                          uint32_t *cluster_of, uint32_t *sizes,
                                          uint32_t *starts, uint32_t *members,
                                          uint32_t *nclusters, void *ws, size_t ws_bytes,
                                          void *stream);

/*
 * rows[k] = mean of cluster k's tokens as lshmoe_kn_centroids(): fp32
 * accumulation in increasing token order from -0.0f, one division, round to nearest
 * even; singletons copied bit for bit. Reads *nclusters on the device, so
 * no host synchronisation: max_clusters (>= the true count, e.g. ntokens)
 * sizes the launch.
 */
lshmoe_status_t lshmoe_kn_cuda_centroids(const void *tokens, lshmoe_dtype_t dtype,
                                         size_t hidden, const uint32_t *sizes,
                                         const uint32_t *starts,
                                         const uint32_t *members,
                                         const uint32_t *nclusters,
                                         size_t max_clusters, void *rows,
                                         void *stream);

/* out row i = rows[cluster_of[i]] (byte copy), as lshmoe_kn_expand(). */
lshmoe_status_t lshmoe_kn_cuda_expand(const void *rows, lshmoe_dtype_t dtype,
                                      size_t hidden, size_t ntokens,
                                      const uint32_t *cluster_of, void *out,
                                      void *stream);

/* ---- the wire side of the device codec (codec_wire.cu) ---------------- */

/* The quality guard's sums of lshmoe_kn_guard_sums() for rows on the
 * device: sums[0] = num, sums[1] = den (device doubles). tok_ws holds
 * 2 * ntokens doubles. Equal to the CPU's to rounding (another order of
 * additions within a token), not bit for bit. */
lshmoe_status_t lshmoe_kn_cuda_guard_sums(const void *tokens, const void *rows,
                                          lshmoe_dtype_t dtype, size_t hidden,
                                          size_t ntokens, const uint32_t *cluster_of,
                                          const uint32_t *sizes, double *tok_ws,
                                          double *sums, void *stream);

/* out[i] = keys[floor(i * ntokens / s)], i < s <= ntokens: the tokens the
 * codec's probe samples (lshmoe/codec_probe.c). */
lshmoe_status_t lshmoe_kn_cuda_sample_keys(const uint64_t *keys, size_t ntokens, size_t s,
                                           uint64_t *out, void *stream);

/* The wire index (u16 or u32 little-endian entries) then zeros, padded_bytes
 * in all. */
lshmoe_status_t lshmoe_kn_cuda_pack_index(const uint32_t *cluster_of, size_t ntokens,
                                          int idx32, void *dst, size_t padded_bytes,
                                          void *stream);

/* Writes `header` (48 host bytes, read before the call returns; its
 * checksum field is ignored) at seg (8-byte aligned, payload_bytes after
 * the header), then the segment's checksum into it. The payload's chunks
 * spread over the grid (partial sums in `ws`, LSHMOE_KN_DEV_CHECKSUM_WS_BYTES
 * of device scratch, 8-byte aligned, free in stream order), then a
 * one-block finaliser: two launches. */
lshmoe_status_t lshmoe_kn_cuda_seal(void *seg, const void *header, size_t payload_bytes,
                                    void *ws, void *stream);

/* ORs LSHMOE_KN_SEG_BAD_* into *bad (device u32, zeroed by the caller) for
 * a wrong checksum, nonzero padding or an index entry >= nrows. The header
 * itself was checked on the host (g describes it). `ws` as for
 * lshmoe_kn_cuda_seal(). */
lshmoe_status_t lshmoe_kn_cuda_check_segment(const void *seg, const lshmoe_kn_seg_t *g,
                                             uint32_t *bad, void *ws, void *stream);

/* Token t of out = row index[t] of the segment (raw: row t), row_bytes
 * each; writes nothing when *bad is nonzero on the device. */
lshmoe_status_t lshmoe_kn_cuda_unpack(const void *seg, const lshmoe_kn_seg_t *g,
                                      size_t row_bytes, const uint32_t *bad, void *out,
                                      void *stream);

/* Row i of dst (lshmoe_qm_row_bytes(fmt, hidden) bytes each) = row i of
 * `rows` (dtype, widened exactly to fp32) coded as lshmoe_kn_quant_row()
 * codes it, byte for byte (quant.cu); fmt LSHMOE_QM_FP8 .. INT4E (the
 * INT4E scale byte is a pure function of the scale's bits, no libm). */
lshmoe_status_t lshmoe_kn_cuda_quant_rows(int fmt, const void *rows, lshmoe_dtype_t dtype,
                                          size_t hidden, size_t nrows, void *dst,
                                          void *stream);

/* The fixed row formats of the device codec (quant.cu): rows coded as
 * lshmoe_kn_cuda_quant_rows() codes them, into dst (NULL: none), with
 * norms[i] = |x_i|^2 as lshmoe/codec_rd.c sums it and row_sse[i] (may be
 * NULL; needs dst) = lshmoe_kn_quant_row_sse()'s error, bit for bit. */
lshmoe_status_t lshmoe_kn_cuda_quant_rows_sse(int fmt, const void *tokens,
                                              lshmoe_dtype_t dtype, size_t hidden,
                                              size_t ntokens, void *dst, double *row_sse,
                                              double *norms, void *stream);

/* sums[0..3] (device) = the encoder's fp64 sums in its order: norms over
 * every token, row_sse over every token (0 without it), then both over
 * tokens step/2, step/2 + step, ... (one thread, quant.cu). */
lshmoe_status_t lshmoe_kn_cuda_ordered_sums(const double *row_sse, const double *norms,
                                            size_t ntokens, size_t step, double *sums,
                                            void *stream);

/* ORs LSHMOE_KN_SEG_BAD_ROW into *bad when a coded row (g->nrows rows at
 * g->rows_off) fails lshmoe_kn_quant_row_check() (dequant.cu). */
lshmoe_status_t lshmoe_kn_cuda_check_rows(const void *seg, const lshmoe_kn_seg_t *g, int fmt,
                                          size_t hidden, uint32_t *bad, void *stream);

/* Token t of out = its row (raw: t, else index[t]) decoded and rounded to
 * dtype as the CPU decoder does, bit for bit; writes nothing when *bad is
 * nonzero on the device (dequant.cu). */
lshmoe_status_t lshmoe_kn_cuda_dequant_expand(const void *seg, const lshmoe_kn_seg_t *g,
                                              int fmt, lshmoe_dtype_t dtype, size_t hidden,
                                              const uint32_t *bad, void *out, void *stream);

/* Coded residuals (residual.cu): lshmoe_kn_residual_encode()'s bytes,
 * the decoder's check of the scales and padding (LSHMOE_KN_SEG_BAD_RESID,
 * LSHMOE_KN_SEG_BAD_PAD into *bad), and lshmoe_kn_residual_decode() added
 * to the expanded rows in out, nothing written when *bad is nonzero. */
lshmoe_status_t lshmoe_kn_cuda_residual_encode(const void *tokens, const void *rows,
                                               lshmoe_dtype_t dtype, size_t hidden,
                                               size_t ntokens, const uint32_t *cluster_of,
                                               int bits, void *coded, void *stream);
lshmoe_status_t lshmoe_kn_cuda_residual_check(const void *seg, uint64_t resid_off,
                                              size_t ntokens, size_t hidden, int bits,
                                              uint32_t *bad, void *stream);
lshmoe_status_t lshmoe_kn_cuda_residual_decode(const void *seg, uint64_t resid_off,
                                               size_t ntokens, int bits, lshmoe_dtype_t dtype,
                                               size_t hidden, const uint32_t *bad, void *out,
                                               void *stream);

/* The ops table of LSHMOE_KN_MEM_CUDA (device.cu). */
extern const lshmoe_kn_dev_ops_t lshmoe_kn_cuda_dev_ops;

#ifdef __cplusplus
}
#endif

#endif /* LSHMOE_KN_LSH_CUDA_H */
