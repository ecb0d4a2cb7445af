/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * MoE mode, private to lshmoe/moe*.c: the layer, the pass handle and the
 * helpers the four collectives share.
 *
 * Two views of one pass. The *owner* of tokens (every rank) keeps its
 * routed (token, slot) pairs, "entries", sorted by destination expert in
 * expert order (owner rank, then expert id), so that the rows bound for one
 * rank, and within it for one expert, are contiguous. Each entry belongs to
 * a group ("row") of its expert; rows are numbered globally in the same
 * order. The *expert* side (every rank) keeps one batch per local expert,
 * made of the rows every peer sent it, peer by peer.
 *
 * Wire payloads (per peer, all collectives after one metadata round):
 *   dispatch:            u32 rows per local expert of the receiver, with
 *                        MOE_ROWS_RAW set when they are the tokens
 *                        themselves, then u8 row format (LSHMOE_QM_*) per
 *                        local expert (padded to 8 bytes); each expert's
 *                        rows in its format; u32 group size per row of
 *                        the experts without RAW
 *   combine:             u8 row format per local expert of the sender
 *                        (padded to 8 bytes); each expert's output rows
 *                        in its format (same row order as dispatch)
 *   backwards:           rows x hidden in the dtype (same row order)
 */
#ifndef LSHMOE_MOE_INT_H
#define LSHMOE_MOE_INT_H

#include <stdint.h>

#include "kernels/kernels.h"
#include "lshmoe/common/buf.h"
#include "lshmoe/ctx_int.h"
#include "lshmoe/meta.h"
#include "lshmoe_moe.h"

#define LSHMOE_MOE_MAGIC    0x4C534D45u /* "LSME" */
#define LSHMOE_HANDLE_MAGIC 0x4C534D48u /* "LSMH" */

#define MOE_MAX_EXPERTS 65536
#define MOE_MAX_TOPK    64
#define MOE_MAX_HIDDEN  (1u << 24)
#define MOE_ALPHA_EWMA  0.3   /* weight of a new SCALED fit              */

/* Flag in a dispatch row count: every row is one token (no sizes sent). */
#define MOE_ROWS_RAW 0x80000000u

/* Which collective a metadata round belongs to (checked across ranks, also
 * against lshmoe_alltoallv: the values are the common header's). */
typedef enum moe_op {
    MOE_OP_DISPATCH = LSHMOE_COLL_MOE_DISPATCH,
    MOE_OP_COMBINE = LSHMOE_COLL_MOE_COMBINE,
    MOE_OP_COMBINE_BWD = LSHMOE_COLL_MOE_COMBINE_BWD,
    MOE_OP_DISPATCH_BWD = LSHMOE_COLL_MOE_DISPATCH_BWD
} moe_op_t;

/* How far a handle's pass went. */
typedef enum moe_state {
    MOE_ST_LAYOUT = 0,
    MOE_ST_DISPATCHED,
    MOE_ST_COMBINED,
    MOE_ST_COMBINE_BWD
} moe_state_t;

/* One rank's metadata to one peer: the record every data collective shares
 * (meta.h); coll = moe_op_t, seq = the dispatch the call belongs to, bytes
 * = payload bytes that follow. */
typedef lshmoe_meta_t moe_meta_t;

struct lshmoe_moe {
    uint32_t       magic;
    lshmoe_ctx_t  *ctx;
    int            rank, nranks;
    int            nexp, topk;
    lshmoe_dtype_t dtype;
    size_t         hidden;
    size_t         tb;            /* bytes per token                        */
    int            comp;          /* lshmoe_compensation_t                  */
    int32_t       *owner;         /* [nexp] owner rank of each expert       */
    int32_t       *pos_of;        /* [nexp] position of an expert in order  */
    int32_t       *order;         /* [nexp] experts by (owner, id)          */
    int           *rank_off;      /* [nranks + 1] a rank's span of order    */
    int            nlocal;        /* this rank's experts: order[rank_off[rank]..] */
    /* hooks: per local expert, then the catch-all */
    lshmoe_moe_expert_fn     *fwd;
    lshmoe_moe_expert_bwd_fn *bwd;
    void                    **user;
    lshmoe_moe_expert_fn      fwd_all;
    lshmoe_moe_expert_bwd_fn  bwd_all;
    void                     *user_all;
    lshmoe_moe_token_fn       token_fn;
    void                     *token_user;
    /* SCALED compensation: per expert (id), this rank's running fit of
     * the slope of E over its centroids; NaN until the first fit */
    double                   *alpha;
    /* clustering */
    lshmoe_kn_hasher_t *hasher;   /* NULL: compress 0 or not hashable: raw  */
    double              max_error;
    int                 row_fmt;  /* payload row format: LSHMOE_QM_* or
                                     MOE_FMT_BUDGET (moe_rows.c)          */
    uint64_t            seq;      /* dispatches so far (lockstep on ranks)  */
    /* exchange scratch, grow-only */
    lshmoe_buf_t meta;            /* 2 * nranks moe_meta_t                  */
    lshmoe_buf_t ptrs;            /* per-peer pointers and sizes            */
    lshmoe_buf_t junk;            /* payloads that disagree land here       */
};

struct lshmoe_moe_handle {
    uint32_t      magic;
    lshmoe_moe_t *moe;
    moe_state_t   state;
    uint64_t      seq;
    size_t        ntok;
    int32_t      *idx;            /* [ntok * topk] copies                    */
    float        *gate;
    /* owner side: layout */
    size_t        nent;           /* routed slots                            */
    size_t       *ent_off;        /* [nexp + 1] by expert position           */
    size_t       *ent_slot;       /* [nent] t * topk + s                     */
    size_t       *slot_ent;       /* [ntok * topk] entry, SIZE_MAX if dropped */
    size_t       *per_rank;       /* [nranks] routed slots per rank          */
    size_t       *per_expert;     /* [nexp] by expert id                     */
    /* owner side: after dispatch */
    uint32_t     *cluster_of;     /* [nent] row of the entry within its expert */
    size_t       *row_off;        /* [nexp + 1] by position: global row index */
    uint32_t     *row_size;       /* [nent] (first nrows used) members per row */
    size_t        nrows;
    size_t       *peer_row_off;   /* [nranks + 1]                            */
    size_t       *send_off;       /* [nranks] payload offsets in `send`      */
    size_t       *send_bytes;     /* [nranks]                                */
    size_t       *prefix;         /* [nranks] count-prefix bytes per peer    */
    lshmoe_buf_t  staged;         /* [nent] token rows as hashed (hook applied) */
    lshmoe_buf_t  send;           /* dispatch payloads; centroids stay here  */
    lshmoe_buf_t  keys;           /* u64 per entry or token                  */
    lshmoe_buf_t  work;           /* kernel workspaces                       */
    lshmoe_buf_t  rows;           /* nrows x hidden: E(c), then A, then B    */
    lshmoe_buf_t  y;              /* nent x hidden fp32 reconstructed outputs */
    lshmoe_buf_t  dxacc;          /* ntok x hidden fp64 residual-path grads  */
    double       *rho;            /* [nexp] by position: compensation factor
                                     of this pass (set by combine)           */
    lshmoe_buf_t  fscratch;       /* float / double rows                     */
    lshmoe_buf_t  crows;          /* nrows x hidden: the dispatched rows as
                                     the experts decode them (centroids)    */
    lshmoe_buf_t  qdec;           /* candidate rows decoded (moe_rows.c)     */
    lshmoe_buf_t  cwire;          /* coded combine payloads                  */
    /* expert side */
    size_t       *recv_rows;      /* [nranks * nlocal] rows from p for j     */
    size_t       *peer_brow_off;  /* [nranks + 1] rows per peer, all experts */
    size_t       *batch_off;      /* [nlocal + 1]                            */
    size_t        nbrows;
    lshmoe_buf_t  recv;           /* dispatch payloads; later per-peer staging */
    lshmoe_buf_t  bin, bout, bgout, bgin, bsize;
    lshmoe_moe_batch_t *batches;  /* [nlocal]                                */
    lshmoe_moe_stats_t  stats;
    /* device path (moe_device.c): set when the last dispatch took device
     * memory; then the batches, payloads and rows live in `dev` */
    int                 on_dev;
    struct moe_dev     *dev;
};

/* Is the handle live and of this layer? (sets the error when not) */
lshmoe_status_t moe_check_handle(const lshmoe_moe_t *moe,
                                 const lshmoe_moe_handle_t *h, moe_state_t need,
                                 const char *what);

/* moe_check_handle(), then the memory of the token buffer `buf` (named
 * buf_name): host memory needs stream NULL and buf non-NULL when the handle
 * has tokens; device memory (or buf NULL with a stream) needs dev_p (NULL:
 * the call has no device path yet, LSHMOE_ERR_UNSUPPORTED) and what
 * moe_dev_check() asks. *dev_p is set to 1 for the device path, else 0. */
lshmoe_status_t moe_check_call(const lshmoe_moe_t *moe, const lshmoe_moe_handle_t *h,
                               moe_state_t need, const void *buf, const char *buf_name,
                               const void *stream, const char *what, int *dev_p);

/* Number of `op` as a word, for messages. */
const char *moe_op_name(uint32_t op);

/*
 * Metadata round: tells every peer this rank's status and the payload
 * bytes it is about to send (zero when `local` is an error), and hears
 * theirs in meta_in[nranks]. Returns `local` if it is an error,
 * LSHMOE_ERR_PEER naming a failed peer, or the transport's error: in each
 * of those cases every rank skips the data round.
 */
lshmoe_status_t moe_meta_round(lshmoe_moe_t *moe, moe_op_t op, uint64_t seq,
                               lshmoe_status_t local, const size_t *send_bytes,
                               moe_meta_t **meta_in_p);

/*
 * Data round after a successful metadata round. recv_expect (NULL: accept
 * what the peers announced) gives the bytes this rank expects from each
 * peer; a peer whose op, dispatch or size disagrees is still received (into
 * scratch, so every rank completes the round) and the call then fails with
 * LSHMOE_ERR_MISMATCH naming it.
 */
lshmoe_status_t moe_data_round(lshmoe_moe_t *moe, moe_op_t op, uint64_t seq,
                               const moe_meta_t *meta_in,
                               const void *const *send_ptrs, const size_t *send_bytes,
                               void *const *recv_ptrs, const size_t *recv_expect);

/*
 * The layout of a data round over one send buffer and one receive buffer:
 * send_ptrs[p] = send_base + send_off[p], and recv_off[p] where peer p's
 * bytes (as meta_in announced them) start in the receive buffer, each on an
 * `align` boundary (a power of two). Returns the receive buffer's size.
 */
size_t moe_round_layout(size_t nranks, const void *send_base, const size_t *send_off,
                        const moe_meta_t *meta_in, size_t align, const void **send_ptrs,
                        size_t *recv_off);

/* moe_data_round() on device buffers: the exchange is queued on `stream`
 * (not waited for), and the bytes of a disagreeing peer land in `junk`,
 * device memory of `ws`. */
lshmoe_status_t moe_data_round_dev(lshmoe_moe_t *moe, moe_op_t op, uint64_t seq,
                                   const moe_meta_t *meta_in, const void *const *send_ptrs,
                                   const size_t *send_bytes, void *const *recv_ptrs,
                                   const size_t *recv_expect, void *stream,
                                   lshmoe_dev_ws_t *ws, lshmoe_dev_buf_t *junk);

/* Both rounds, with the byte counts known on both sides. */
lshmoe_status_t moe_exchange(lshmoe_moe_t *moe, moe_op_t op, uint64_t seq,
                             lshmoe_status_t local, const void *const *send_ptrs,
                             const size_t *send_bytes, void *const *recv_ptrs,
                             const size_t *recv_expect);

/* Sender side of dispatch: stages, hashes and groups the entries of every
 * destination expert and writes the dispatch payloads into h->send. */
lshmoe_status_t moe_cluster(lshmoe_moe_t *moe, lshmoe_moe_handle_t *h, const void *x);

/* Bytes of a dispatch payload's prefix for a receiver with nlocal
 * experts (u32 count and u8 row format each, padded to 8). */
static inline size_t moe_prefix_bytes(size_t nlocal)
{
    return (nlocal * (sizeof(uint32_t) + 1u) + 7u) & ~(size_t)7u;
}

/* Bytes of a combine payload's prefix (u8 row format per expert). */
static inline size_t moe_fmt_prefix_bytes(size_t nlocal)
{
    return (nlocal + 7u) & ~(size_t)7u;
}

/* Row formats of the payloads (moe_rows.c). */
#define MOE_FMT_BUDGET (-1)   /* per block, the fewest bytes within max_error */

/* The payload row format of an LSHMOE_CODEC value: LSHMOE_QM_* or
 * MOE_FMT_BUDGET. */
int moe_codec_row_fmt(int codec);
/* Does the codec group tokens (LSH family, budget)? */
int moe_codec_clusters(int codec);
/* 0 for the codecs MoE mode does not offer yet (refinement). */
int moe_codec_supported(int codec);
/* Bytes of one row in fmt (NATIVE: the dtype's). */
size_t moe_row_bytes(const lshmoe_moe_t *m, int fmt);

/*
 * Codes a block of n rows (dtype) that stands for nref reference rows
 * `ref` (ref i -> rows[map[i]]; map NULL: identity) in the format `want`
 * (LSHMOE_QM_* or MOE_FMT_BUDGET: the smallest format whose error over the
 * block is within max_error). A fixed format over the budget, a block with
 * NaN/Inf, and a budget nothing fits travel NATIVE. Writes the coded rows
 * to `code` (n * moe_row_bytes() bytes), replaces `rows` by the rows as the
 * receiver decodes them, uses `dec` (n rows) and `scratch` (2 hidden
 * floats), adds the block's squared error and squared norm (finite
 * references only) to *num / *den, and returns the format.
 */
int moe_rows_code(const lshmoe_moe_t *m, int want, char *rows, size_t n, const char *ref,
                  size_t nref, const uint32_t *map, uint8_t *code, char *dec, float *scratch,
                  double *num, double *den);

/* Validates and decodes n rows of fmt into dst (dtype); f: hidden floats.
 * LSHMOE_ERR_CORRUPT names the peer and `what` (dispatch, combine). */
lshmoe_status_t moe_rows_decode(const lshmoe_moe_t *m, int fmt, const uint8_t *src, size_t n,
                                char *dst, float *f, int peer, const char *what);

/* Combine's exchange with coded output rows (moe_combine_wire.c): the
 * expert side codes `batch` (bout) per (peer, expert), the owners decode
 * into h->rows. */
lshmoe_status_t moe_return_outputs(lshmoe_moe_t *moe, lshmoe_moe_handle_t *h,
                                   const void *batch);

/* Expert side, after dispatch's parse: peer_brow_off, batch_off and nbrows
 * from recv_rows. */
/* Expert side: checks peer p's dispatch prefix `pre` against the len
 * bytes it sent (len at least the prefix, formats known, row counts that
 * add up with the group sizes to exactly len; native_only: rows in the
 * token dtype only, as device buffers take them) and records its row
 * counts in h->recv_rows. *row_bytes_p = bytes of rows after the prefix,
 * *sized_p = group sizes (u32) after them. LSHMOE_ERR_CORRUPT otherwise. */
lshmoe_status_t moe_parse_prefix(const lshmoe_moe_t *m, lshmoe_moe_handle_t *h, int p,
                                 const char *pre, size_t len, int native_only,
                                 size_t *row_bytes_p, size_t *sized_p);

void moe_batch_offsets(const lshmoe_moe_t *m, lshmoe_moe_handle_t *h);

/* Expert side, after moe_batch_offsets(): the batch descriptors over the
 * batch buffers (bgout, bgin NULL: no gradient buffers). */
void moe_batch_describe(const lshmoe_moe_t *m, lshmoe_moe_handle_t *h, char *bin, char *bout,
                        uint32_t *bsize, char *bgout, char *bgin);

/* The device path (moe_device.c). Is device memory of `kind` usable for
 * MoE mode with this layer (kernels built, nccl transport, a mode the
 * device path has)? LSHMOE_ERR_UNSUPPORTED naming what is missing. */
lshmoe_status_t moe_dev_check(const lshmoe_moe_t *m, lshmoe_kn_mem_t kind, const char *what);
/* Dispatch and combine on device buffers, after moe_check_call(); the
 * same rounds as the host path, on `stream`. */
lshmoe_status_t moe_dev_dispatch(lshmoe_moe_t *m, lshmoe_moe_handle_t *h, const void *x,
                                 void *stream);
lshmoe_status_t moe_dev_combine(lshmoe_moe_t *m, lshmoe_moe_handle_t *h, void *y,
                                void *stream);
/* Frees the handle's device memory (waits for its stream first). */
void moe_dev_free(lshmoe_moe_handle_t *h);

/* Expert side: where peer p's rows start inside local batch j. */
size_t moe_batch_row(const lshmoe_moe_t *moe, const lshmoe_moe_handle_t *h, int p, int j);

/* Expert side: the rows of peer p for every local expert, contiguous in
 * `peer_rows` (rows x tb), copied from / to the batch buffer `batch`. */
void moe_batch_gather(const lshmoe_moe_t *moe, const lshmoe_moe_handle_t *h,
                      const void *batch, int p, void *peer_rows);
void moe_batch_scatter(const lshmoe_moe_t *moe, const lshmoe_moe_handle_t *h,
                       const void *peer_rows, int p, void *batch);

/* Runs the forward (bwd 0) or backward (bwd 1) function registered for
 * each local expert with rows, handing them `stream` (NULL on the host
 * path); LSHMOE_ERR_CALLBACK if one fails. */
lshmoe_status_t moe_run_experts(lshmoe_moe_t *m, lshmoe_moe_handle_t *h, int bwd,
                                void *stream);

/* Joins a collective only to report this rank's failure `local`
 * (returns it; the peers get LSHMOE_ERR_PEER). */
lshmoe_status_t moe_fail_round(lshmoe_moe_t *moe, moe_op_t op, lshmoe_status_t local);

/* Expert side -> owners: sends `batch` (bout or bgin) back, the owners
 * receive into h->rows (combine, dispatch backward). */
lshmoe_status_t moe_return_rows(lshmoe_moe_t *moe, lshmoe_moe_handle_t *h, moe_op_t op,
                                const void *batch);

/* Owners -> expert side: sends h->rows, the experts' ranks receive into
 * `batch` (combine backward). */
lshmoe_status_t moe_send_rows(lshmoe_moe_t *moe, lshmoe_moe_handle_t *h, moe_op_t op,
                              void *batch);

/* Owner side: the first centroid row this rank dispatched to the expert at
 * position `pos` (its rows follow, tb bytes apart). */
const void *moe_centroid_base(const lshmoe_moe_t *m, const lshmoe_moe_handle_t *h, int pos);

/* Rounds `n` fp64 values to the layer's dtype (through fp32, as the header
 * documents); `tmp` holds n floats. */
void moe_store_f64(const double *src, size_t n, lshmoe_dtype_t dtype, float *tmp,
                   void *dst);

#endif /* LSHMOE_MOE_INT_H */
