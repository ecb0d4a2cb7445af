/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * lshmoe: all-to-all for Mixture-of-Experts training that sends one centroid
 * per cluster of similar tokens (cross-polytope LSH) instead of every token.
 *
 * ABI rules
 *  - Every struct that crosses this API starts with `uint32_t size` (and the
 *    config and communicator descriptors with `magic` and `version`). Fill
 *    them with the *_INITIALIZER macros or the *_init() functions.
 *  - Fields are only ever appended; enum and status values never change.
 *  - Libraries with the same major version are ABI-compatible.
 *  - This header includes no CUDA, NCCL or MPI header: communicators and
 *    streams travel as `void *`.
 *
 * Errors: every function that can fail returns lshmoe_status_t (0 = ok,
 * negative = error) and leaves a readable message in lshmoe_last_error().
 * The library never prints to stdout, never exits and never aborts on bad
 * input.
 */
#ifndef LSHMOE_H
#define LSHMOE_H

#include <stddef.h>
#include <stdint.h>

#include "lshmoe_version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define LSHMOE_API __attribute__((visibility("default")))
#else
#define LSHMOE_API
#endif

/* ------------------------------------------------------------------------ */
/* Version                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * Version of the loaded library as LSHMOE_VERSION_CODE packs it
 * (major * 10000 + minor * 100 + patch). Compare it with the
 * LSHMOE_VERSION_CODE of the header you compiled against.
 * Not collective; thread-safe; cannot fail.
 */
LSHMOE_API int lshmoe_get_version(void);

/* Version string of the loaded library, e.g. "0.1.0". Static storage. */
LSHMOE_API const char *lshmoe_version_string(void);

/* ------------------------------------------------------------------------ */
/* Status codes                                                              */
/* ------------------------------------------------------------------------ */

/*
 * One list generates the enum and the name/string functions. Values are ABI:
 * never renumbered, only appended. -20..-39 are backend failures (detail in
 * lshmoe_last_error()).
 */
#define LSHMOE_STATUS_MAP(X)                                                 \
    X(OK,               0,  "success")                                      \
    X(ERR_INVALID_ARG,  -1, "invalid argument")                             \
    X(ERR_NO_MEMORY,    -2, "out of memory")                                \
    X(ERR_UNSUPPORTED,  -3, "not supported by this build or backend")       \
    X(ERR_VERSION,      -4, "header/library or struct version mismatch")    \
    X(ERR_NOT_INIT,     -5, "struct not initialised (bad size or magic)")   \
    X(ERR_MISMATCH,     -6, "ranks disagree (configuration or counts)")     \
    X(ERR_CORRUPT,      -7, "corrupt or truncated wire data")               \
    X(ERR_TIMEOUT,      -8, "timed out waiting for peer ranks")             \
    X(ERR_PEER,         -9, "a peer rank failed this collective")           \
    X(ERR_CALLBACK,     -10, "a user callback (expert or hook) failed")     \
    X(ERR_CUDA,         -20, "CUDA error")                                  \
    X(ERR_NCCL,         -21, "NCCL error")                                  \
    X(ERR_MPI,          -22, "MPI error")                                   \
    X(ERR_TRANSPORT,    -23, "transport failure")                           \
    X(ERR_INTERNAL,     -99, "internal error (a bug in lshmoe)")

typedef enum lshmoe_status {
#define LSHMOE_STATUS_ENUM_(name, value, text) LSHMOE_##name = (value),
    LSHMOE_STATUS_MAP(LSHMOE_STATUS_ENUM_)
#undef LSHMOE_STATUS_ENUM_
} lshmoe_status_t;

#define LSHMOE_IS_ERR(s)         ((s) < 0)
#define LSHMOE_IS_BACKEND_ERR(s) ((s) <= -20 && (s) >= -39)

/* "ERR_MPI" for LSHMOE_ERR_MPI; "UNKNOWN" for a value not in the list.
 * Static storage; thread-safe. */
LSHMOE_API const char *lshmoe_status_name(lshmoe_status_t status);

/* "MPI error" for LSHMOE_ERR_MPI; "unknown status" otherwise. Static storage;
 * thread-safe. */
LSHMOE_API const char *lshmoe_status_string(lshmoe_status_t status);

/* ------------------------------------------------------------------------ */
/* Small enums                                                               */
/* ------------------------------------------------------------------------ */

/*
 * Element types. Only the floating-point types are ever compressed. Integer
 * types and LSHMOE_DTYPE_BYTES always travel byte-exact: indices, counts and
 * metadata are never lossy-compressed.
 */
typedef enum lshmoe_dtype {
    LSHMOE_DTYPE_FP32  = 0,
    LSHMOE_DTYPE_FP16  = 1,
    LSHMOE_DTYPE_BF16  = 2,
    LSHMOE_DTYPE_BYTES = 3,  /* opaque bytes; `hidden` counts bytes */
    LSHMOE_DTYPE_INT8  = 4,
    LSHMOE_DTYPE_INT32 = 5,
    LSHMOE_DTYPE_INT64 = 6,
    LSHMOE_DTYPE_UINT8 = 7,
    LSHMOE_DTYPE_COUNT
} lshmoe_dtype_t;

/* Size of one element in bytes, 0 for an invalid dtype. */
LSHMOE_API size_t lshmoe_dtype_size(lshmoe_dtype_t dtype);

/* "fp32", "bf16", ...; "invalid" for an invalid dtype. */
LSHMOE_API const char *lshmoe_dtype_name(lshmoe_dtype_t dtype);

/* How a token of `hidden` elements is reduced to m coordinates before the
 * rotation (see docs/algorithm.md). */
typedef enum lshmoe_reduce {
    LSHMOE_REDUCE_PAD  = 1,  /* zero-pad to next_pow2(hidden): exact, O(d log d) */
    LSHMOE_REDUCE_FOLD = 2   /* random-sign sketch to reduce_dim coords: O(d)   */
} lshmoe_reduce_t;

/* What the receiver adds to a token's centroid. */
typedef enum lshmoe_compensation {
    LSHMOE_COMP_NONE     = 0,  /* token = centroid                             */
    LSHMOE_COMP_RESIDUAL = 1,  /* token = centroid + residual: in transparent
                                  mode the residual travels coded in
                                  residual_bits bits per element (0 = none) */
    LSHMOE_COMP_SCALED   = 2   /* MoE mode only (lshmoe_moe_config_t):
                                  E(c) + alpha_e * residual, alpha_e fitted
                                  per expert on earlier passes             */
} lshmoe_compensation_t;

/*
 * How float segments are encoded (LSHMOE_CODEC; docs/algorithm.md, "Row
 * formats and the error budget"). Values are ABI: only append.
 */
typedef enum lshmoe_codec_mode {
    LSHMOE_CODEC_LSH        = 0,   /* LSH clusters, centroids in the dtype  */
    LSHMOE_CODEC_BUDGET     = 1,   /* per segment, the fewest bytes whose
                                      error is within max_error (ladder)    */
    LSHMOE_CODEC_NATIVE     = 2,   /* every token as given (exact)          */
    LSHMOE_CODEC_FP8        = 3,   /* e4m3, fp32 scale per 128 elements     */
    LSHMOE_CODEC_INT8       = 4,   /* int8, fp32 scale per token            */
    LSHMOE_CODEC_INT4       = 5,   /* int4, fp16 scale per 32 elements      */
    LSHMOE_CODEC_INT2       = 6,   /* 2-bit, fp16 scale per 32 elements     */
    LSHMOE_CODEC_LSH_FP8    = 7,   /* LSH clusters, centroids in FP8        */
    LSHMOE_CODEC_LSH_INT8   = 8,   /* LSH clusters, centroids in int8       */
    LSHMOE_CODEC_LSH_INT4   = 9,   /* LSH clusters, centroids in int4       */
    LSHMOE_CODEC_LSH_REFINE = 10,  /* LSH + one near-tuple refinement step  */
    LSHMOE_CODEC_LSH_REFINE_INT8 = 11,
    LSHMOE_CODEC_LSH_REFINE_INT4 = 12,
    LSHMOE_CODEC_INT4E      = 13,  /* int4, one-byte exponent scale per 32  */
    LSHMOE_CODEC_LSH_REFINE_INT4E = 14,
    LSHMOE_CODEC_BUDGET_ROWS = 15  /* as BUDGET, among the row formats only
                                      (no clustering): for float data whose
                                      token size is unknown (the preload)  */
} lshmoe_codec_mode_t;

/* Row formats of a segment's rows (lshmoe_stats_t.segments_by_format;
 * the wire format's values, docs/wire-format.md). */
#define LSHMOE_ROW_FORMAT_NATIVE 0   /* the caller's dtype                  */
#define LSHMOE_ROW_FORMAT_FP8    1
#define LSHMOE_ROW_FORMAT_INT8   2
#define LSHMOE_ROW_FORMAT_INT4   3
#define LSHMOE_ROW_FORMAT_INT2   4
#define LSHMOE_ROW_FORMAT_INT4E  5
#define LSHMOE_ROW_FORMATS       8   /* array size (room for more)          */

/* Communicator kinds for lshmoe_comm_desc_t. */
typedef enum lshmoe_comm_kind {
    LSHMOE_COMM_AUTO = 0,  /* pick from LSHMOE_TRANSPORT, else by probing  */
    LSHMOE_COMM_SELF = 1,  /* ranks are threads of this process            */
    LSHMOE_COMM_MPI  = 2,  /* native points to an MPI_Comm                 */
    LSHMOE_COMM_NCCL = 3,  /* native is an ncclComm_t                      */
    LSHMOE_COMM_USER = 4   /* native points to an lshmoe_user_comm_t: the
                              caller supplies the collectives            */
} lshmoe_comm_kind_t;

/* ------------------------------------------------------------------------ */
/* Configuration                                                             */
/* ------------------------------------------------------------------------ */

#define LSHMOE_MAGIC         0x4C53484Du          /* "LSHM" */
#define LSHMOE_UNSET_INT     INT32_MIN            /* use env var, then default */
#define LSHMOE_UNSET_U64     UINT64_MAX
#define LSHMOE_UNSET_DOUBLE  (-1.0)               /* any negative value      */

/*
 * Context configuration. Every field left UNSET is resolved from its
 * LSHMOE_* environment variable, then from the built-in default (see
 * docs/env.md or `lshmoe_info`). The hashing fields (seed, num_hashes, cdim,
 * reduce, reduce_dim, rounds) must resolve to the same values on every rank:
 * lshmoe_ctx_create() checks this and fails with LSHMOE_ERR_MISMATCH.
 */
typedef struct lshmoe_config {
    uint32_t    size;          /* sizeof(lshmoe_config_t); never moves      */
    uint32_t    magic;         /* LSHMOE_MAGIC; never moves                 */
    uint32_t    version;       /* LSHMOE_VERSION_CODE of the caller's header */
    int32_t     compress;      /* 1 = compress float tokens, 0 = exact plain
                                  all-to-all (LSHMOE_COMPRESS)              */
    uint64_t    seed;          /* hash seed (LSHMOE_SEED)                   */
    int32_t     num_hashes;    /* L: cross-polytope functions, 1..16
                                  (LSHMOE_HASHES)                           */
    int32_t     cdim;          /* cross-polytope dimension, power of two
                                  2..256 (LSHMOE_CDIM)                      */
    int32_t     reduce;        /* lshmoe_reduce_t (LSHMOE_REDUCE)           */
    int32_t     reduce_dim;    /* m for LSHMOE_REDUCE_FOLD, power of two
                                  16..4096 (LSHMOE_REDUCE_DIM)              */
    int32_t     rounds;        /* rounds of random signs + Hadamard, 1..3
                                  (LSHMOE_ROUNDS)                           */
    int32_t     min_tokens;    /* segments with fewer tokens travel raw
                                  (LSHMOE_MIN_TOKENS)                       */
    double      min_ratio;     /* segments that would compress less than
                                  this travel raw (LSHMOE_MIN_RATIO)        */
    int32_t     compensation;  /* lshmoe_compensation_t (LSHMOE_COMPENSATION) */
    int32_t     residual_bits; /* 0, 4 or 8 (LSHMOE_RESIDUAL_BITS)          */
    const char *transport;     /* "self", "mpi", ...; NULL = from the
                                  communicator kind / LSHMOE_TRANSPORT.
                                  Not kept after lshmoe_ctx_create().       */
    double      max_error;     /* error budget: relative L2 over a segment,
                                  sqrt(sum |x - x'|^2 / sum |x|^2); a segment
                                  over it travels exact (LSHMOE_MAX_ERROR) */
    int32_t     codec;         /* lshmoe_codec_mode_t (LSHMOE_CODEC)        */
    /* new fields are appended here */
} lshmoe_config_t;

#define LSHMOE_CONFIG_INITIALIZER                                            \
    { sizeof(lshmoe_config_t), LSHMOE_MAGIC, LSHMOE_VERSION_CODE,            \
      LSHMOE_UNSET_INT, LSHMOE_UNSET_U64, LSHMOE_UNSET_INT, LSHMOE_UNSET_INT, \
      LSHMOE_UNSET_INT, LSHMOE_UNSET_INT, LSHMOE_UNSET_INT, LSHMOE_UNSET_INT, \
      LSHMOE_UNSET_DOUBLE, LSHMOE_UNSET_INT, LSHMOE_UNSET_INT, NULL,           \
      LSHMOE_UNSET_DOUBLE, LSHMOE_UNSET_INT }

/*
 * Fills *cfg with LSHMOE_CONFIG_INITIALIZER (for bindings that cannot use
 * the macro). Not collective; thread-safe.
 * Returns LSHMOE_OK, or LSHMOE_ERR_INVALID_ARG if cfg is NULL.
 */
LSHMOE_API lshmoe_status_t lshmoe_config_init(lshmoe_config_t *cfg);

/* ------------------------------------------------------------------------ */
/* Communicators                                                             */
/* ------------------------------------------------------------------------ */

/* A group of in-process ranks for the "self" transport (one thread each). */
typedef struct lshmoe_self_world lshmoe_self_world_t;

/*
 * Creates a world of `nranks` in-process ranks (1..4096). Each rank is then
 * driven by its own thread, with a descriptor {kind SELF, native = world,
 * rank r, nranks}. Each synchronisation step of a collective (there are
 * two per collective) waits at most timeout_s seconds for the other ranks
 * (<= 0: LSHMOE_TIMEOUT_S, or its older name LSHMOE_SELF_TIMEOUT_S), then
 * fails with LSHMOE_ERR_TIMEOUT naming the ranks that did not arrive; the world is then broken and every later
 * collective on it fails at once with LSHMOE_ERR_TIMEOUT.
 * Not collective; thread-safe.
 * [out] world_p: owned by the caller, freed with lshmoe_self_world_destroy()
 *                after every context on it was destroyed.
 * Returns LSHMOE_OK, LSHMOE_ERR_INVALID_ARG, LSHMOE_ERR_NO_MEMORY.
 */
LSHMOE_API lshmoe_status_t lshmoe_self_world_create(int nranks, double timeout_s,
                                                    lshmoe_self_world_t **world_p);

/* Frees a world. NULL is ignored. Call after all its contexts are gone. */
LSHMOE_API void lshmoe_self_world_destroy(lshmoe_self_world_t *world);

/*
 * Hands the caller's communicator to lshmoe without this header knowing its
 * type. For MPI, native points to an MPI_Comm; for NCCL it is the
 * ncclComm_t; for SELF it is an lshmoe_self_world_t (or NULL for a single
 * rank); for USER it points to an lshmoe_user_comm_t (below).
 * rank/nranks: this rank and the group size.
 */
typedef struct lshmoe_comm_desc {
    uint32_t           size;     /* sizeof(lshmoe_comm_desc_t) */
    uint32_t           magic;    /* LSHMOE_MAGIC               */
    uint32_t           version;  /* LSHMOE_VERSION_CODE        */
    lshmoe_comm_kind_t kind;
    void              *native;
    int                rank;
    int                nranks;
} lshmoe_comm_desc_t;

#define LSHMOE_COMM_DESC_INITIALIZER                                         \
    { sizeof(lshmoe_comm_desc_t), LSHMOE_MAGIC, LSHMOE_VERSION_CODE,         \
      LSHMOE_COMM_AUTO, NULL, -1, 0 }

/*
 * Bring your own communicator (kind LSHMOE_COMM_USER): the caller supplies
 * the collectives as functions, so lshmoe runs over any collective it
 * already has (torch.distributed, a framework's own, a test harness).
 *
 * Both functions are collective over the caller's group: lshmoe calls them
 * on every rank in the same order, from the thread that called lshmoe.
 * They move plain bytes and must block until the receive buffer is filled
 * and the send buffer may be reused. They return 0 on success; on failure
 * they return LSHMOE_ERR_PEER when another rank is at fault, anything else
 * non-zero for their own failure (reported as LSHMOE_ERR_CALLBACK), and may
 * write a NUL-terminated message of at most errlen bytes into errbuf; the
 * lshmoe call then fails with that status and the message in
 * lshmoe_last_error(). They must not call lshmoe on the same context.
 */

/*
 * Byte all-to-all-v (MPI_Alltoallv of bytes): send_bytes[p] bytes from
 * send + send_displs[p] go to rank p, which stores them at
 * recv + recv_displs[p]; recv_bytes[p] bytes come from rank p. Arrays have
 * nranks entries, displacements are in bytes, and every rank's
 * recv_bytes[p] equals what p sends it (lshmoe exchanges the sizes first).
 * send/recv may be NULL when every size is 0. stream: NULL for host memory.
 */
typedef int (*lshmoe_user_alltoallv_fn)(void *user, const void *send,
                                        const size_t *send_bytes,
                                        const size_t *send_displs, void *recv,
                                        const size_t *recv_bytes,
                                        const size_t *recv_displs, void *stream,
                                        char *errbuf, size_t errlen);

/* All-gather of bytes: recv (nranks * bytes) = every rank's `bytes` bytes
 * of send, in rank order. */
typedef int (*lshmoe_user_allgather_fn)(void *user, const void *send,
                                        size_t bytes, void *recv,
                                        char *errbuf, size_t errlen);

typedef struct lshmoe_user_comm {
    uint32_t                 size;      /* sizeof(lshmoe_user_comm_t)     */
    uint32_t                 magic;     /* LSHMOE_MAGIC                   */
    uint32_t                 version;   /* LSHMOE_VERSION_CODE            */
    uint32_t                 reserved;
    lshmoe_user_alltoallv_fn alltoallv; /* required                        */
    lshmoe_user_allgather_fn allgather; /* required                        */
    void                    *user;      /* passed to both, never touched   */
    /* new fields are appended here */
} lshmoe_user_comm_t;

#define LSHMOE_USER_COMM_INITIALIZER                                         \
    { sizeof(lshmoe_user_comm_t), LSHMOE_MAGIC, LSHMOE_VERSION_CODE, 0,      \
      NULL, NULL, NULL }

/*
 * Fills *uc with LSHMOE_USER_COMM_INITIALIZER (for bindings that cannot use
 * the macro). Hand it over as {kind LSHMOE_COMM_USER, native = uc, rank,
 * nranks}; lshmoe_ctx_create() copies it, so only the functions and the
 * user pointer must outlive the context. Not collective; thread-safe.
 * Returns LSHMOE_OK, or LSHMOE_ERR_INVALID_ARG if uc is NULL.
 */
LSHMOE_API lshmoe_status_t lshmoe_user_comm_init(lshmoe_user_comm_t *uc);

/* ------------------------------------------------------------------------ */
/* Context                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct lshmoe_ctx lshmoe_ctx_t;

/*
 * Creates a context over a communicator. Collective: every rank of the
 * communicator calls it with configurations that resolve to the same hashing
 * parameters. Not stream-ordered. Thread-safe across different contexts; a
 * context is then used by one thread at a time.
 * [in]  header_version: pass LSHMOE_VERSION_CODE (lshmoe_ctx_create() does)
 * [in]  comm: read during the call only; the native communicator must
 *             outlive the context
 * [in]  cfg:  NULL = every field unset; read during the call only
 * [out] ctx_p: set on success only; free with lshmoe_ctx_destroy()
 * Returns LSHMOE_OK; LSHMOE_ERR_INVALID_ARG (NULL or out-of-range field,
 * unknown transport); LSHMOE_ERR_NOT_INIT (size/magic wrong: the struct was
 * not filled with its initializer); LSHMOE_ERR_VERSION (header newer than
 * library); LSHMOE_ERR_MISMATCH (ranks resolved different hashing
 * parameters); LSHMOE_ERR_UNSUPPORTED (transport not built);
 * LSHMOE_ERR_NO_MEMORY; LSHMOE_ERR_PEER (another rank failed its own
 * part); LSHMOE_ERR_TIMEOUT (a rank did not join within LSHMOE_TIMEOUT_S)
 * and transport errors. A rank whose own arguments are bad (ctx_p NULL,
 * newer header or descriptor version, bad config) still joins the creation
 * round whenever `comm` is usable, so the peers fail with
 * LSHMOE_ERR_PEER instead of waiting for it.
 * On failure the message is in lshmoe_last_error(NULL).
 */
LSHMOE_API lshmoe_status_t lshmoe_ctx_create_v(int header_version,
                                               const lshmoe_comm_desc_t *comm,
                                               const lshmoe_config_t *cfg,
                                               lshmoe_ctx_t **ctx_p);

static inline lshmoe_status_t lshmoe_ctx_create(const lshmoe_comm_desc_t *comm,
                                                const lshmoe_config_t *cfg,
                                                lshmoe_ctx_t **ctx_p)
{
    return lshmoe_ctx_create_v(LSHMOE_VERSION_CODE, comm, cfg, ctx_p);
}

/* Frees a context. NULL is ignored. Not collective. */
LSHMOE_API void lshmoe_ctx_destroy(lshmoe_ctx_t *ctx);

/*
 * The configuration the context resolved (every field set). Not collective.
 * [out] cfg: caller-owned; its size field must be set (initializer).
 * Returns LSHMOE_OK, LSHMOE_ERR_INVALID_ARG, LSHMOE_ERR_NOT_INIT.
 */
LSHMOE_API lshmoe_status_t lshmoe_ctx_get_config(const lshmoe_ctx_t *ctx,
                                                 lshmoe_config_t *cfg);

/* This context's rank and group size (never fails on a valid context). */
LSHMOE_API int lshmoe_ctx_rank(const lshmoe_ctx_t *ctx);
LSHMOE_API int lshmoe_ctx_nranks(const lshmoe_ctx_t *ctx);

/* ------------------------------------------------------------------------ */
/* Data path                                                                 */
/* ------------------------------------------------------------------------ */

/*
 * All-to-all with MPI_Alltoallv semantics over tokens of `hidden` elements of
 * `dtype`: rank r sends send_counts[p] tokens starting at token
 * send_displs[p] of `send` to rank p, and receives recv_counts[p] tokens
 * from rank p at token recv_displs[p] of `recv`. Counts and displacements
 * are in tokens. Every received token is written (transparent mode): float
 * tokens are reconstructed from their cluster's centroid (plus the coded
 * residual when configured); tokens with NaN/Inf, integer dtypes, the
 * rank's own segment and segments that would not compress travel exact.
 * With compress = 0 the result is byte-identical to the plain all-to-all.
 *
 * Collective over the context's ranks. Host buffers: blocking, `stream`
 * must be NULL. CUDA device buffers (send and recv both; the context's
 * transport must be "nccl"): the codec runs on the device on `stream` (a
 * cudaStream_t; NULL = the legacy default stream), and the call returns
 * when every received segment is validated and expanded; the copy of the
 * rank's own segment is still queued on `stream` then. The host waits on
 * the stream three times per call (reading cluster counts back to size the
 * exchange, the received headers, the validation result; a fourth when a
 * row-format segment holds NaN/Inf tokens; docs/cuda.md), each at most
 * LSHMOE_TIMEOUT_S seconds: past it (a peer failed after the count
 * exchange, say) the NCCL communicator is aborted and this call and every
 * later one on the context return LSHMOE_ERR_TIMEOUT naming the wait
 * (LSHMOE_ERR_NCCL when NCCL reports the failure first). On device
 * buffers, the lsh codec (with or without coded residuals) and the row
 * formats without clustering (native, fp8, int8, int4, int4e, int2) run,
 * writing the same wire bytes as on host buffers; LSH with coded or
 * refined centroids and the budget codecs are LSHMOE_ERR_UNSUPPORTED
 * naming the mode (segments in every row format are decoded); the
 * adaptive policy is off. Not thread-safe on one context: a call
 * on a context that another call is using (another thread, or an MoE
 * expert hook calling back) returns LSHMOE_ERR_INVALID_ARG at once, with
 * the message in lshmoe_last_error(NULL), and does not join the collective.
 * Counts are exchanged and checked: if a rank's recv_counts[p] differs from
 * what p sends, it fails with LSHMOE_ERR_MISMATCH naming p (no overflow, no
 * hang); if any rank fails before the exchange, every rank returns
 * LSHMOE_ERR_PEER naming it.
 * [in]  send, send_counts, send_displs: caller-owned, read during the call
 * [out] recv: caller-owned; only the addressed tokens are written
 * [in]  recv_counts, recv_displs: caller-owned
 * The receive ranges must be disjoint, and no send range may overlap a
 * receive range (send == recv is not an in-place all-to-all): either is
 * LSHMOE_ERR_INVALID_ARG naming the two ranks, on this rank, and
 * LSHMOE_ERR_PEER on the others.
 * Returns LSHMOE_OK; LSHMOE_ERR_INVALID_ARG (NULL pointer with a non-zero
 * count, bad dtype, hidden 0, overlapping or overflowing ranges);
 * LSHMOE_ERR_INVALID_ARG also when one of send and recv is device memory
 * and the other host memory; LSHMOE_ERR_UNSUPPORTED (non-NULL stream with
 * host buffers; device buffers over a transport other than nccl, or with a
 * codec mode the device path does not run yet); LSHMOE_ERR_CUDA
 * (device path); LSHMOE_ERR_MISMATCH;
 * LSHMOE_ERR_PEER; LSHMOE_ERR_CORRUPT; LSHMOE_ERR_NO_MEMORY;
 * LSHMOE_ERR_TIMEOUT and transport errors (over a user communicator:
 * LSHMOE_ERR_CALLBACK or LSHMOE_ERR_PEER from the caller's functions).
 */
LSHMOE_API lshmoe_status_t lshmoe_alltoallv(lshmoe_ctx_t *ctx,
                                            const void *send,
                                            const size_t *send_counts,
                                            const size_t *send_displs,
                                            void *recv,
                                            const size_t *recv_counts,
                                            const size_t *recv_displs,
                                            lshmoe_dtype_t dtype, size_t hidden,
                                            void *stream);

/*
 * Device memory for a context's device data path. By default lshmoe takes
 * its device workspace with cudaMalloc and keeps it, grow-only, for the
 * context's life (no allocation per call once the sizes settle). A
 * framework with its own caching allocator (PyTorch) can own that memory
 * instead: alloc_fn(user, bytes, stream, &ptr) returns 0 and sets *ptr to
 * device memory usable on `stream` (the stream of the call that needs it),
 * nonzero when it cannot; free_fn(user, ptr, bytes, stream) takes back a
 * pointer alloc_fn gave, once no work queued before on `stream` uses it.
 * lshmoe calls them from inside lshmoe_alltoallv and
 * lshmoe_ctx_destroy/this setter only, on the thread that called those.
 * Setting them (or NULL, NULL to go back to cudaMalloc) first frees the
 * workspace held now with the functions that allocated it, after waiting
 * for the device. Not collective; not stream-ordered; not thread-safe on
 * one context (no call may be running on it).
 * [in] user: passed to both, never touched
 * Returns LSHMOE_OK; LSHMOE_ERR_INVALID_ARG (invalid context, exactly one
 * of the two functions NULL, or a call running on the context).
 */
typedef int (*lshmoe_device_alloc_fn)(void *user, size_t bytes, void *stream, void **ptr_p);
typedef void (*lshmoe_device_free_fn)(void *user, void *ptr, size_t bytes, void *stream);
LSHMOE_API lshmoe_status_t lshmoe_ctx_set_device_allocator(lshmoe_ctx_t *ctx,
                                                           lshmoe_device_alloc_fn alloc_fn,
                                                           lshmoe_device_free_fn free_fn,
                                                           void *user);

/* ------------------------------------------------------------------------ */
/* Introspection                                                             */
/* ------------------------------------------------------------------------ */

/*
 * Cumulative statistics of one context since creation or the last reset.
 * "Remote" bytes exclude the rank's own segment (it never travels).
 */
typedef struct lshmoe_stats {
    uint32_t size;              /* sizeof(lshmoe_stats_t)                    */
    uint32_t reserved;
    uint64_t calls;             /* lshmoe_alltoallv calls that succeeded     */
    uint64_t bytes_in;          /* remote token bytes the caller handed in   */
    uint64_t bytes_wire;        /* bytes this rank sent, headers included    */
    uint64_t tokens;            /* remote tokens sent                        */
    uint64_t clusters;          /* rows sent (centroids + raw tokens)        */
    uint64_t segments_compressed;
    uint64_t segments_raw;      /* float segments sent raw by policy         */
    uint64_t tokens_nonfinite;  /* tokens with NaN/Inf sent exact            */
    double   time_hash_s;       /* hashing and grouping                      */
    double   time_pack_s;       /* centroids, row search, wire format        */
    double   time_exchange_s;   /* transport                                 */
    double   time_unpack_s;     /* validation and reconstruction             */
    double   time_total_s;
    /* Appended (older callers pass a smaller size and never see it). */
    uint64_t calls_plain_policy; /* calls whose float tokens the adaptive
                                    policy (LSHMOE_ADAPT) sent plain         */
    /* Appended: the error of what this rank encoded (docs/algorithm.md,
     * "The error"), over its encoded remote segments whose error the
     * encoder measured. Achieved error: sqrt(err_sq / err_ref). */
    double   err_sq;            /* sum |x - x'|^2                            */
    double   err_ref;           /* sum |x|^2 of the same segments            */
    double   err_max;           /* largest error of one such segment         */
    uint64_t segments_unmeasured; /* encoded segments whose error was not
                                    measured (lsh codec with coded residuals) */
    /* Appended: the encodings segments_compressed travelled in. By row
     * format of their rows (LSHMOE_ROW_FORMAT_*: 0 the dtype, 1 FP8, 2
     * int8, 3 int4, 4 int2, 5 int4e; the rest stay 0), and how many of
     * them were LSH groups, and refined groups. With LSHMOE_CODEC=budget
     * these are the ladder's choices. */
    uint64_t segments_by_format[LSHMOE_ROW_FORMATS];
    uint64_t segments_grouped;
    uint64_t segments_refined;
    /* Appended. */
    uint64_t calls_explored;     /* calls run in the mode this rank's policy
                                    did not prefer (an encoded call while
                                    plain was cheaper, or the reverse: its
                                    own tries and those the ranks' vote
                                    chose)                                   */
} lshmoe_stats_t;

#define LSHMOE_STATS_INITIALIZER { sizeof(lshmoe_stats_t), 0, 0, 0, 0, 0, 0, 0, 0, 0, \
                                   0.0, 0.0, 0.0, 0.0, 0.0, 0, 0.0, 0.0, 0.0, 0, {0}, 0, 0, 0 }

/*
 * Copies the context's statistics. Not collective.
 * [out] stats: caller-owned; its size field must be set (initializer).
 * Returns LSHMOE_OK, LSHMOE_ERR_INVALID_ARG, LSHMOE_ERR_NOT_INIT.
 */
LSHMOE_API lshmoe_status_t lshmoe_stats_get(const lshmoe_ctx_t *ctx,
                                            lshmoe_stats_t *stats);

/* Zeroes the context's statistics. NULL is ignored. Not collective. */
LSHMOE_API void lshmoe_stats_reset(lshmoe_ctx_t *ctx);

/*
 * The message of the last failed call: on a context, of the last call on
 * that context; with NULL, of the last failed call on this thread (context
 * creation included). "" if none. The string stays valid until the next
 * call on the same context or thread. Thread-safe.
 */
LSHMOE_API const char *lshmoe_last_error(const lshmoe_ctx_t *ctx);

#ifdef __cplusplus
}
#endif

#endif /* LSHMOE_H */
