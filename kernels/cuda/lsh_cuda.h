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

#ifdef __cplusplus
}
#endif

#endif /* LSHMOE_KN_LSH_CUDA_H */
