/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Compute kernels behind one ops table indexed by memory kind. The CPU
 * kernels (kernels/cpu/) are the reference and the test oracle: any other
 * backend must produce bit-identical bucket keys and identical grouping.
 *
 * Kernels never allocate on their own in the data path: callers pass
 * workspaces sized with the *_ws_size() functions. They report errors with
 * lshmoe_error() (lshmoe/common/error.h).
 */
#ifndef LSHMOE_KERNELS_H
#define LSHMOE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/common/wire_checksum.h"
#include "lshmoe.h"

/* Bucket key of a token with NaN/Inf: never produced by hashing a finite
 * token (finite keys are < 2^63). */
#define LSHMOE_KN_KEY_NONFINITE UINT64_MAX

/* Cross-polytope LSH parameters (resolved, validated by the caller). */
typedef struct lshmoe_kn_lsh_params {
    uint64_t seed;
    int      num_hashes;  /* L, 1..16                                      */
    int      cdim;        /* c, power of two, 2..256                       */
    int      reduce;      /* LSHMOE_REDUCE_PAD or LSHMOE_REDUCE_FOLD        */
    int      reduce_dim;  /* m for FOLD, power of two 16..4096             */
    int      rounds;      /* 1..3 rounds of (random signs, Hadamard)       */
} lshmoe_kn_lsh_params_t;

/*
 * A hasher holds everything drawn from the seed for one hidden size: the
 * fold signs (FOLD), and for each rotation the `rounds` sign vectors. The
 * rotated vector has m coordinates (m = reduce_dim for FOLD, next_pow2(hidden)
 * for PAD); it is cut into m / cdim blocks, one cross-polytope each, and
 * ceil(L * cdim / m) independent rotations give L blocks in all.
 */
typedef struct lshmoe_kn_hasher lshmoe_kn_hasher_t;

/* Returns LSHMOE_ERR_INVALID_ARG (cdim > m, hidden 0 or > 2^24, bad field)
 * or LSHMOE_ERR_NO_MEMORY. */
lshmoe_status_t lshmoe_kn_hasher_create(const lshmoe_kn_lsh_params_t *params,
                                        size_t hidden,
                                        lshmoe_kn_hasher_t **hasher_p);
void lshmoe_kn_hasher_destroy(lshmoe_kn_hasher_t *hasher);

/* The m the hasher rotates (reduce_dim or next_pow2(hidden)). */
size_t lshmoe_kn_hasher_dim(const lshmoe_kn_hasher_t *hasher);

/* Bytes of workspace lshmoe_kn_hash() needs (per call, any ntokens). */
size_t lshmoe_kn_hash_ws_size(const lshmoe_kn_hasher_t *hasher);

/*
 * keys[i] = bucket key of token i (row i of `tokens`, `hidden` elements of a
 * float dtype, rows contiguous). Tokens with any NaN/Inf element get
 * LSHMOE_KN_KEY_NONFINITE; *nonfinite_p counts them. Keys are a pure
 * function of (params, hidden, token values): bit-identical across runs,
 * ranks and backends. Positive scaling of a token never changes its key.
 * `ws` must hold lshmoe_kn_hash_ws_size() bytes, 64-byte aligned.
 * `dtype` must be a float dtype (the caller validates: nothing is written
 * for others and *nonfinite_p is 0).
 */
void lshmoe_kn_hash(const lshmoe_kn_hasher_t *hasher, const void *tokens,
                    lshmoe_dtype_t dtype, size_t ntokens, uint64_t *keys,
                    void *ws, size_t *nonfinite_p);

/* Workspace bytes lshmoe_kn_group() needs for ntokens tokens (any
 * alignment: the kernel aligns inside it). */
size_t lshmoe_kn_group_ws_size(size_t ntokens);

/*
 * Groups tokens by key. cluster_of[i] = cluster of token i; clusters are
 * numbered 0..n-1 in order of first appearance (deterministic). Every token
 * with key LSHMOE_KN_KEY_NONFINITE gets a cluster of its own.
 * *nclusters_p = number of clusters. ntokens < 2^32.
 */
void lshmoe_kn_group(const uint64_t *keys, size_t ntokens, uint32_t *cluster_of,
                     size_t *nclusters_p, void *ws);

/*
 * rows[k] = mean of the tokens of cluster k, accumulated in fp32 (`acc`:
 * nclusters * hidden floats of workspace) and rounded to `dtype` (nearest
 * even). Clusters of one token are copied byte for byte (exact, NaN payloads
 * included). sizes[k] = number of tokens in cluster k. On return acc row k
 * holds the fp32 mean of cluster k when it has two or more tokens (at every
 * ISA level); rows of clusters of one are unspecified (the SIMD levels
 * never read those tokens into acc).
 */
void lshmoe_kn_centroids(const void *tokens, lshmoe_dtype_t dtype, size_t hidden,
                         size_t ntokens, const uint32_t *cluster_of,
                         size_t nclusters, void *rows, uint32_t *sizes,
                         float *acc);

/*
 * The sums of the codec's quality guard for tokens grouped into `rows`
 * (nclusters rows of `hidden` elements of `dtype`, as the receiver will
 * decode them; sizes as lshmoe_kn_centroids() gives them), in fp64:
 * *den_p = sum of ||x_i||^2 over tokens whose squared norm is finite,
 * *num_p = sum of ||x_i - rows[cluster_of[i]]||^2 over those of them in
 * clusters of two or more (a token alone is sent exactly). SIMD levels
 * agree with the scalar reference to rounding, not bit for bit. One pass
 * over the tokens, no workspace; a non-float dtype gives 0 and 0.
 */
void lshmoe_kn_guard_sums(const void *tokens, const void *rows, lshmoe_dtype_t dtype,
                          size_t hidden, size_t ntokens, const uint32_t *cluster_of,
                          const uint32_t *sizes, double *num_p, double *den_p);

/*
 * lshmoe_kn_centroids() and lshmoe_kn_guard_sums() of the resulting rows
 * in one call (same arguments and workspace, but `acc` is only workspace
 * here: its contents on return are unspecified). The rows are
 * bit-identical at every ISA level; the sums agree with
 * lshmoe_kn_guard_sums() to a few times 1e-6 of *den_p per token of the
 * largest cluster (AVX-512 sums each cluster in registers, cluster after
 * cluster, and derives the sums from per-cluster identities; see
 * kernels/cpu/x86/centroids_guard_avx512.c).
 */
void lshmoe_kn_centroids_guard(const void *tokens, lshmoe_dtype_t dtype, size_t hidden,
                               size_t ntokens, const uint32_t *cluster_of, size_t nclusters,
                               void *rows, uint32_t *sizes, float *acc, double *num_p,
                               double *den_p);

/* `tokens`, `rows` and `out` of the centroid and expand kernels may be
 * unaligned (rows are read and written with memcpy or unaligned moves).
 * out row i = rows[cluster_of[i]] (byte copy, the same at every ISA level;
 * rows and out must not overlap). cluster_of[i] < nrows is the caller's
 * duty (the codec validates before calling). */
void lshmoe_kn_expand(const void *rows, lshmoe_dtype_t dtype, size_t hidden,
                      size_t ntokens, const uint32_t *cluster_of, void *out);

/*
 * Residual coding for transparent mode. Token i's residual
 * r = x_i - rows[cluster_of[i]] (in fp32, after the row was rounded to
 * dtype) is coded as one fp32 scale (max |r| / qmax) followed by
 * `hidden` signed integers of `bits` bits (8: int8, qmax 127; 4: two per
 * byte, low nibble first, qmax 7), rounded to nearest. Singleton clusters
 * and non-finite tokens have zero residual by construction. `scratch`
 * holds `hidden` floats (encode and decode).
 */
size_t lshmoe_kn_residual_bytes(size_t hidden, int bits); /* per token */

void lshmoe_kn_residual_encode(const void *tokens, const void *rows,
                               lshmoe_dtype_t dtype, size_t hidden,
                               size_t ntokens, const uint32_t *cluster_of,
                               int bits, void *coded, float *scratch);

/* out row i += decoded residual i, in fp32, rounded back to dtype. The
 * caller has already expanded rows into out. A non-finite scale is treated
 * as corrupt by the codec before this is called. */
void lshmoe_kn_residual_decode(const void *coded, lshmoe_dtype_t dtype,
                               size_t hidden, size_t ntokens, int bits,
                               void *out, float *scratch);

/* Memory kinds the kernels dispatch on (kernels/mem_kind.c). */
typedef enum lshmoe_kn_mem {
    LSHMOE_KN_MEM_HOST = 0,
    LSHMOE_KN_MEM_CUDA = 1,
    LSHMOE_KN_MEM_COUNT
} lshmoe_kn_mem_t;

/* The kind of memory `ptr` points to: LSHMOE_KN_MEM_CUDA for CUDA device
 * or managed memory (cudaPointerGetAttributes; only in builds with the
 * CUDA kernels and when a device is usable), else LSHMOE_KN_MEM_HOST
 * (NULL included). Work it out once per call, never per token. */
lshmoe_kn_mem_t lshmoe_kn_mem_kind(const void *ptr);
const char *lshmoe_kn_mem_name(lshmoe_kn_mem_t kind);

/*
 * One codec segment as the device validator and unpacker see it (the host
 * read and checked its header first: lshmoe/codec_device.c). Offsets are
 * from the segment start (docs/wire-format.md).
 */
typedef struct lshmoe_kn_seg {
    uint64_t rows_off, rows_bytes;  /* rows_bytes before padding            */
    uint64_t idx_off, idx_bytes;    /* idx_off = end of the padded rows     */
    uint64_t payload_bytes;         /* everything after the header          */
    uint64_t ntokens, nrows;
    int      raw, idx32;
} lshmoe_kn_seg_t;

/* Device scratch the seal and check_segment methods take (`ws`, 8-byte
 * aligned): one partial sum of the wire checksum per lane and per block of
 * the chunk kernel. Used in stream order: one workspace serves every
 * segment of a stream, one after the other. */
#define LSHMOE_KN_DEV_CHECKSUM_WS_BYTES ((size_t)128 * 1024)

/* Bits of a device validation result (0: the segment is intact). */
#define LSHMOE_KN_SEG_BAD_CHECKSUM 0x1u
#define LSHMOE_KN_SEG_BAD_PAD      0x2u
#define LSHMOE_KN_SEG_BAD_INDEX    0x4u
#define LSHMOE_KN_SEG_BAD_ROW      0x8u  /* a coded row fails its check      */
#define LSHMOE_KN_SEG_BAD_RESID    0x10u /* a residual scale not finite, >= 0 */

/*
 * The kernels of a device memory kind, for the core's device data path
 * (lshmoe/codec_device.c), which calls nothing else of the device: the
 * core has no #ifdef for CUDA. Every method but alloc, free, sync, query and
 * hasher_create/destroy is stream-ordered on `stream` and returns once the
 * work is queued; errors of queued work surface at the next sync or query. Each
 * method does what the launcher of the same name in kernels/cuda/lsh_cuda.h
 * documents. Pointers are device memory unless said otherwise.
 */
typedef struct lshmoe_kn_dev_ops {
    const char *name;
    /* what a NULL stream means (the legacy default stream) */
    void *default_stream;
    lshmoe_status_t (*alloc)(size_t bytes, void **ptr_p);   /* not stream-ordered */
    void (*free)(void *ptr);                                /* not stream-ordered */
    /* bytes between any two of host and device memory */
    lshmoe_status_t (*copy)(void *dst, const void *src, size_t bytes, void *stream);
    lshmoe_status_t (*zero)(void *dst, size_t bytes, void *stream);
    lshmoe_status_t (*sync)(void *stream);                  /* waits for the stream */
    lshmoe_status_t (*hasher_create)(const lshmoe_kn_lsh_params_t *params, size_t hidden,
                                     void *stream, void **hasher_p);
    void (*hasher_destroy)(void *hasher);
    lshmoe_status_t (*hash)(const void *hasher, const void *tokens, lshmoe_dtype_t dtype,
                            size_t ntokens, uint64_t *keys, void *stream);
    size_t (*group_ws_size)(size_t ntokens);
    lshmoe_status_t (*group)(const uint64_t *keys, size_t ntokens, uint32_t *cluster_of,
                             uint32_t *sizes, uint32_t *starts, uint32_t *members,
                             uint32_t *nclusters, void *ws, size_t ws_bytes, void *stream);
    lshmoe_status_t (*centroids)(const void *tokens, lshmoe_dtype_t dtype, size_t hidden,
                                 const uint32_t *sizes, const uint32_t *starts,
                                 const uint32_t *members, const uint32_t *nclusters,
                                 size_t max_clusters, void *rows, void *stream);
    lshmoe_status_t (*guard_sums)(const void *tokens, const void *rows, lshmoe_dtype_t dtype,
                                  size_t hidden, size_t ntokens, const uint32_t *cluster_of,
                                  const uint32_t *sizes, double *tok_ws, double *sums,
                                  void *stream);
    lshmoe_status_t (*sample_keys)(const uint64_t *keys, size_t ntokens, size_t s,
                                   uint64_t *out, void *stream);
    lshmoe_status_t (*pack_index)(const uint32_t *cluster_of, size_t ntokens, int idx32,
                                  void *dst, size_t padded_bytes, void *stream);
    lshmoe_status_t (*seal)(void *seg, const void *header, size_t payload_bytes, void *ws,
                            void *stream);
    lshmoe_status_t (*check_segment)(const void *seg, const lshmoe_kn_seg_t *g,
                                     uint32_t *bad, void *ws, void *stream);
    lshmoe_status_t (*unpack)(const void *seg, const lshmoe_kn_seg_t *g, size_t row_bytes,
                              const uint32_t *bad, void *out, void *stream);
    /* MoE mode (lshmoe/moe_device.c; kernels/cuda/moe_cuda.h) */
    lshmoe_status_t (*moe_gather)(const void *src, size_t row_bytes, size_t nrows,
                                  const uint64_t *src_row, void *out, void *stream);
    lshmoe_status_t (*moe_combine)(const void *rows, lshmoe_dtype_t dtype, size_t hidden,
                                   size_t ntok, int topk, const uint64_t *slot_ent,
                                   const float *gate, const uint64_t *ent_row,
                                   const double *ent_coef, const void *xs, const void *cs,
                                   void *out, void *stream);
    /* Has every piece of work queued on `stream` finished? Never blocks:
     * LSHMOE_OK with *done_p 1 (finished) or 0 (not yet), or the error of
     * queued work (as sync reports it). The core's bounded waits poll it
     * (lshmoe/dev_wait.c) instead of calling sync. */
    lshmoe_status_t (*query)(void *stream, int *done_p);
    /* group, sorting only the low key_bits bits of the keys
     * (lshmoe_kn_key_sort_bits() of the hasher: fewer radix passes) */
    lshmoe_status_t (*group_bits)(const uint64_t *keys, size_t ntokens, int key_bits,
                                  uint32_t *cluster_of, uint32_t *sizes, uint32_t *starts,
                                  uint32_t *members, uint32_t *nclusters, void *ws,
                                  size_t ws_bytes, void *stream);
    /* ---- row formats (LSHMOE_QM_FP8 .. INT4E) ---- */
    /* Row i of dst (lshmoe_qm_row_bytes(fmt, hidden) bytes each, any
     * alignment) = token i coded as lshmoe_kn_quant_row(); norms[i] = its
     * |x|^2 summed as lshmoe/codec_rd.c sums it; row_sse (may be NULL)[i]
     * = lshmoe_kn_quant_row_sse()'s error of the row: bit for bit. dst
     * NULL (then row_sse NULL too): the norms only. */
    lshmoe_status_t (*quant_rows_sse)(int fmt, const void *tokens, lshmoe_dtype_t dtype,
                                      size_t hidden, size_t ntokens, void *dst,
                                      double *row_sse, double *norms, void *stream);
    /* sums[0] = norms summed in token order from 0.0, sums[1] = row_sse
     * likewise (0 when row_sse is NULL), sums[2] and sums[3] = row_sse and
     * norms of tokens step/2, step/2 + step, ... (step >= 1): the
     * encoder's fp64 sums in its own order, so its decisions are the
     * CPU's bit for bit. */
    lshmoe_status_t (*ordered_sums)(const double *row_sse, const double *norms, size_t ntokens,
                                    size_t step, double *sums, void *stream);
    /* ORs LSHMOE_KN_SEG_BAD_ROW into *bad when a coded row of the segment
     * fails lshmoe_kn_quant_row_check() (g->nrows rows at g->rows_off). */
    lshmoe_status_t (*check_rows)(const void *seg, const lshmoe_kn_seg_t *g, int fmt,
                                  size_t hidden, uint32_t *bad, void *stream);
    /* Token t of out = row (raw: t, else index[t]) decoded as
     * lshmoe_kn_dequant_row() and rounded to dtype as the CPU decoder
     * does; writes nothing when *bad is nonzero on the device. */
    lshmoe_status_t (*dequant_expand)(const void *seg, const lshmoe_kn_seg_t *g, int fmt,
                                      lshmoe_dtype_t dtype, size_t hidden,
                                      const uint32_t *bad, void *out, void *stream);
    /* ---- coded residuals (bits 8 or 4) ---- */
    /* coded (lshmoe_kn_residual_bytes(hidden, bits) per token, any
     * alignment) = lshmoe_kn_residual_encode() of the tokens against
     * rows[cluster_of[i]], byte for byte. */
    lshmoe_status_t (*residual_encode)(const void *tokens, const void *rows,
                                       lshmoe_dtype_t dtype, size_t hidden, size_t ntokens,
                                       const uint32_t *cluster_of, int bits, void *coded,
                                       void *stream);
    /* ORs LSHMOE_KN_SEG_BAD_RESID into *bad for a scale that is not finite
     * and >= 0, LSHMOE_KN_SEG_BAD_PAD for nonzero padding after the
     * section (ntokens residuals at seg + resid_off). */
    lshmoe_status_t (*residual_check)(const void *seg, uint64_t resid_off, size_t ntokens,
                                      size_t hidden, int bits, uint32_t *bad, void *stream);
    /* out (expanded rows) += the decoded residuals as
     * lshmoe_kn_residual_decode() adds them; nothing when *bad != 0. */
    lshmoe_status_t (*residual_decode)(const void *seg, uint64_t resid_off, size_t ntokens,
                                       int bits, lshmoe_dtype_t dtype, size_t hidden,
                                       const uint32_t *bad, void *out, void *stream);
} lshmoe_kn_dev_ops_t;

/* The ops of a device memory kind; NULL for host memory (the CPU kernels
 * above are called directly) and for a kind this build lacks. */
const lshmoe_kn_dev_ops_t *lshmoe_kn_dev_ops(lshmoe_kn_mem_t kind);

/* In-place normalised fast Walsh-Hadamard transform of n = 2^k floats
 * (H / sqrt(n), so it is its own inverse). */
void lshmoe_kn_fwht(float *v, size_t n);

/*
 * Row quantizers (formats and layouts: kernels/common/quant_math.h,
 * docs/wire-format.md). `x` is one finite fp32 row; `dst`/`src` hold
 * lshmoe_qm_row_bytes(fmt, hidden) bytes at any alignment. fmt is one of
 * LSHMOE_QM_FP8/INT8/INT4/INT2/INT4E (others: nothing is written). Every
 * ISA level writes the same bytes and the same floats as the scalar
 * reference (kernels/cpu/quant.c): the wire does not depend on the CPU.
 */
void lshmoe_kn_quant_row(int fmt, const float *x, size_t hidden, uint8_t *dst);
void lshmoe_kn_dequant_row(int fmt, const uint8_t *src, size_t hidden, float *y);

/*
 * Decodes one coded row straight to the dtype: the bytes of
 * lshmoe_kn_dequant_row() followed by lshmoe_row_from_f32(), bit for bit,
 * without the fp32 row in between (the decoder's hot loop for row
 * formats). dst: hidden elements of dtype (LSHMOE_DTYPE_FP32/FP16/BF16),
 * any alignment; scratch: hidden floats the scalar level decodes into
 * (the SIMD levels leave it alone). Other formats: nothing is written.
 */
void lshmoe_kn_dequant_row_to(int fmt, const uint8_t *src, size_t hidden, lshmoe_dtype_t dtype,
                              void *dst, float *scratch);

/* 0 when a coded row is valid (scales finite and >= 0, no e4m3 NaN code,
 * unused trailing code bits zero); nonzero otherwise. */
int lshmoe_kn_quant_row_check(int fmt, const uint8_t *src, size_t hidden);

/*
 * Codes row x as lshmoe_kn_quant_row() does (into dst, the same bytes) and
 * measures it: y (hidden floats, caller-owned) receives what a receiver
 * holds for the row, lshmoe_kn_dequant_row() rounded to `dtype` (fp32: as
 * decoded; fp16/bf16: rounded to nearest even and widened back), and the
 * return value is sum_i (x_i - y_i)^2 as lshmoe_kn_row_sq_dist(x, y) sums
 * it. One pass per row instead of code, decode, round and distance
 * passes. Same bytes and same error, bit for bit, at every ISA level.
 * Other formats (NATIVE, unknown): nothing is written, returns 0.
 */
double lshmoe_kn_quant_row_sse(int fmt, const float *x, size_t hidden, lshmoe_dtype_t dtype,
                               uint8_t *dst, float *y);

/*
 * lshmoe_kn_quant_row_sse() on nrows rows at once, for short rows: the
 * low-bit formats (INT4, INT4E, INT2) search the clip scales of the whole
 * 32-element blocks of all the rows together, one block per vector lane,
 * so that rows of a few blocks (hidden 100: three) still fill the lanes.
 * Row r is read at x + r * x_stride (floats, x_stride >= hidden) and coded
 * at dst + r * dst_stride (bytes, dst_stride >= lshmoe_qm_row_bytes(fmt,
 * hidden); the rows must not overlap); y receives row r's measured row at
 * y + r * hidden (nrows * hidden floats, caller scratch) and sse[r] its
 * error. Bytes, y and sse[r] are bit for bit those of
 * lshmoe_kn_quant_row_sse() on row r alone, at every ISA level. y NULL: the
 * rows are only coded (the bytes of lshmoe_kn_quant_row(); sse is not
 * written); sse NULL: y is written, the errors are not kept. Other formats
 * run the one-row kernel per row; NATIVE or unknown: nothing is written,
 * sse[r] = 0.
 * x is only read; x, dst, y and sse must not overlap one another.
 * Not collective, not stream-ordered (host memory, caller's thread);
 * thread-safe on distinct buffers; x, dst, y and sse stay the caller's.
 */
void lshmoe_kn_quant_rows_sse(int fmt, const float *x, size_t x_stride, size_t nrows,
                              size_t hidden, lshmoe_dtype_t dtype, uint8_t *dst,
                              size_t dst_stride, float *y, double *sse);

/*
 * Squared distance of two fp32 rows in a fixed order: 8 fp32 partial sums
 * (lane k: elements i = k mod 8 of the whole groups of 8, in order), then
 * in fp64 the last n mod 8 elements and the partials in lane order. Every
 * ISA level returns the same value bit for bit. Relative to the exact sum
 * the error is below about (n / 8) * 2^-24 (the fp32 partials), i.e.
 * about 3e-5 for n = 4096 in the worst case, far less on typical rows.
 */
double lshmoe_kn_row_sq_dist(const float *a, const float *b, size_t n);

/*
 * The squared errors e[c] of the candidate scales a low-bit encoder
 * (LSHMOE_QM_INT4/INT4E/INT2) tries on one whole block of 32 elements x,
 * in the order it tries them; returns how many (0 for an all-zero block,
 * at most 4). The encoder keeps the first smallest, so every ISA level
 * must give these bit for bit: exposed for the test that checks it.
 */
int lshmoe_kn_low_block_errors(int fmt, const float *x, float *e);

/*
 * The same for the search of lshmoe_kn_quant_rows_sse(): the errors it
 * measures for one block of n (1 .. 32) elements x (n < 32: a row's
 * partial last block), to be the reference's bit for bit (the scalar
 * level: the reference's). For the test.
 */
int lshmoe_kn_low_block_errors_n(int fmt, const float *x, size_t n, float *e);

/*
 * One refinement step after grouping (kernels/cpu/refine.c): token i (fp32
 * row x[i]) moves to the nearest of `centroids` among its cluster and the
 * clusters whose key differs from its own in one of the L fields of `bits`
 * bits (packed keys: key = sum h_g << (g * bits)); clusters are then
 * renumbered in order of first appearance. Returns the new cluster count;
 * *evals_p (may be NULL) is increased by the distance evaluations made.
 * Tokens with key LSHMOE_KN_KEY_NONFINITE stay where they are. `ws` holds
 * lshmoe_kn_refine_ws_size(ntokens, nclusters, L * (2^bits - 1)) bytes.
 */
size_t lshmoe_kn_refine_ws_size(size_t ntokens, size_t nclusters, size_t max_nb);
size_t lshmoe_kn_refine(const float *x, size_t hidden, size_t ntokens,
                        const uint64_t *keys, int L, int bits,
                        const float *centroids, size_t nclusters,
                        uint32_t *cluster_of, void *ws, uint64_t *evals_p);

/*
 * Instruction-set level of the CPU kernels (LSHMOE_CPU_ISA). Every level
 * gives bit-identical bucket keys; the scalar kernels are the reference.
 * The level is process-wide: chosen once from the CPU's features the first
 * time a kernel runs, or set by lshmoe_kn_isa_init() (context creation) or
 * lshmoe_kn_isa_force() (tests, benchmarks). Thread-safe; changing the
 * level while kernels run on other threads is allowed (each call reads it
 * once) but makes no sense outside tests.
 */
typedef enum lshmoe_kn_isa {
    LSHMOE_KN_ISA_SCALAR = 0,
    LSHMOE_KN_ISA_AVX2   = 1,   /* AVX2 + FMA + F16C                         */
    LSHMOE_KN_ISA_AVX512 = 2,   /* AVX-512 F/BW/VL/DQ                        */
    LSHMOE_KN_ISA_COUNT
} lshmoe_kn_isa_t;

/* The level in use (chosen on first use). */
lshmoe_kn_isa_t lshmoe_kn_isa(void);
/* Sets the level from LSHMOE_CPU_ISA (auto: the best the CPU has).
 * Returns LSHMOE_ERR_INVALID_ARG for a malformed value and
 * LSHMOE_ERR_UNSUPPORTED for a level this CPU or build lacks. */
lshmoe_status_t lshmoe_kn_isa_init(void);
/* Forces a level; LSHMOE_ERR_UNSUPPORTED if it is not available. */
lshmoe_status_t lshmoe_kn_isa_force(lshmoe_kn_isa_t isa);
/* 1 if this CPU and build can run `isa`. */
int lshmoe_kn_isa_supported(lshmoe_kn_isa_t isa);
/* "scalar", "avx2", "avx512" ("unknown" otherwise). */
const char *lshmoe_kn_isa_name(lshmoe_kn_isa_t isa);

/*
 * Bulk loop of the wire checksum (lshmoe/codec_checksum.c defines the whole
 * hash): LSHMOE_WCK_LANES independent 64-bit lanes over stripes of
 * LSHMOE_WCK_STRIPE bytes; lane l of a stripe takes the little-endian
 * word at byte 8*l through lshmoe_wck_step(). Every ISA level gives
 * the same lanes bit for bit; `data` may have any alignment. Thread-safe.
 * The step and the constants are kernels/common/wire_checksum.h.
 */
void lshmoe_kn_checksum_stripes(const void *data, size_t nstripes,
                                uint64_t lanes[LSHMOE_WCK_LANES]);

/*
 * Whole chunks of the wire checksum: for each of the `nchunks` chunks of
 * LSHMOE_WCK_CHUNK bytes from `data` (any alignment), numbered from
 * `first`, runs the lanes from lshmoe_wck_chunk_base(seed, number) over
 * the chunk's stripes and adds each lane, avalanched, into acc[l]
 * (lshmoe_wck_chunk() of kernels/common/wire_checksum.h without a tail).
 * Every ISA level gives the same sums bit for bit. Thread-safe.
 */
void lshmoe_kn_checksum_chunks(const void *data, size_t nchunks, uint64_t first,
                               uint64_t seed, uint64_t acc[LSHMOE_WCK_LANES]);

#endif /* LSHMOE_KERNELS_H */
