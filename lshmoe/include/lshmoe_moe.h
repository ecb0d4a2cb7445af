/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * lshmoe MoE mode: the explicit API for Mixture-of-Experts trainers.
 *
 *   layout -> dispatch -> experts -> combine        (forward)
 *   combine_backward -> experts' backward -> dispatch_backward   (backward)
 *
 * On the sender, the tokens routed to each destination expert are hashed
 * (cross-polytope LSH, the context's parameters) and grouped by bucket; one
 * centroid per group travels, with the group's size. Each rank's experts
 * compute on centroids only, so expert rows are saved as well as bytes.
 * Combine brings the centroid outputs back, and the token's owner expands
 * them with compensation (docs/algorithm.md, "MoE mode"):
 *
 *   y_ts  = E_e(c_k) + rho_e * (x_t - c_k)  (no term for groups of one)
 *   out_t = sum over slots s of gate_ts * y_ts
 *
 * rho_e is 1 for LSHMOE_COMP_RESIDUAL (the paper's Eq. 5), 0 for NONE, and
 * for SCALED this rank's running estimate of expert e's slope (1 until
 * there is one): after each combine, the least-squares slope (with
 * intercept) of E over every (centroid, output) row pair this rank sent
 * to e and got back, if there were at least 2 and it is finite, enters
 * the estimate as new = 0.7 old + 0.3 fit (the first fit replaces the 1).
 * It is used from the next pass on, so rho_e is a constant within a pass.
 *
 * The backward pass is the exact gradient of that forward (the rounding of
 * a centroid to the token dtype is taken as the identity). With the
 * context's compress = 0 every group has one token, and dispatch/combine
 * are exactly the standard MoE exchange.
 *
 * Numerics, so that references can be written bit for bit: y_ts is formed
 * in fp64 and kept as fp32; out_t is summed in fp64 in slot order and
 * rounded to fp32, then to the token dtype; gate gradients are fp64 dot
 * products rounded to fp32; dx_t is summed in fp64 in slot order, then
 * rounded the same way as out_t.
 *
 * Memory: host buffers (every `stream` NULL), or, for dispatch and combine,
 * CUDA device buffers over the nccl transport ("Device buffers" below).
 * Policies: MoE mode does not use the adaptive policy of lshmoe_alltoallv
 * (LSHMOE_ADAPT); tokens with NaN/Inf are never averaged (groups of one).
 * Threads: an lshmoe_moe_t and its handles are used by one thread at a time,
 * the thread that drives the context's rank. The collectives enforce it: a
 * call while another call holds the layer's context (another thread, or an
 * expert hook calling back) returns LSHMOE_ERR_INVALID_ARG at once (message
 * in lshmoe_last_error(NULL)) without joining the collective.
 *
 * Device buffers (docs/cuda.md, "MoE mode on device buffers"). x of
 * lshmoe_moe_dispatch() and y of lshmoe_moe_combine() may be CUDA device
 * memory when the context runs over the nccl transport. Both calls are then
 * stream-ordered on `stream` (a cudaStream_t; NULL = the legacy default
 * stream): the gathers, the exchange and the gate-weighted sum are queued
 * on it, and the host waits for it only where it must learn a count (in
 * dispatch: the peers' row counts, which size the batches; in combine: the
 * peers' row-format bytes, checked before y is written). y is complete in
 * stream order when combine returns, equal to the host path's bit for bit.
 * The batches (in, out, cluster_size)
 * are device memory owned by the handle, ready in the order of dispatch's
 * stream; the expert functions get device pointers and the stream, and must
 * queue their work on it (or synchronise before returning). grad_out and
 * grad_in are NULL. The layout stays a host computation (host topk arrays),
 * uploaded once per handle. Pass x and y in the same memory (else
 * LSHMOE_ERR_INVALID_ARG); a rank without tokens passes NULL and its stream.
 * With compress 1 (the lsh codec) the grouping itself is not on the device
 * yet: dispatch copies x to the host, waits, groups there as the host path
 * does (same groups, centroids and payloads) and uploads the payloads; the
 * rest stays on the device. Not yet on device buffers, each
 * LSHMOE_ERR_UNSUPPORTED with the reason: coded rows (LSHMOE_CODEC row
 * formats, budget, lsh with a row format), SCALED compensation with
 * compress 1, token hooks, other transports than nccl, and the backward
 * pass (combine_backward and dispatch_backward refuse device buffers and
 * any handle dispatched from device memory). Device memory comes from the context's allocator hooks
 * when set (lshmoe_ctx_set_device_allocator(), the hooks in place at the
 * handle's first device call) and is kept until lshmoe_moe_handle_destroy(),
 * which first waits for the stream of the handle's last device call: that
 * stream must still exist then.
 */
#ifndef LSHMOE_MOE_H
#define LSHMOE_MOE_H

#include "lshmoe.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lshmoe_moe lshmoe_moe_t;               /* one MoE layer      */
typedef struct lshmoe_moe_handle lshmoe_moe_handle_t; /* one routing / pass */

/* Expert id of a dropped slot in topk_idx. */
#define LSHMOE_MOE_DROPPED (-1)
/* lshmoe_moe_set_expert(): the functions serve every local expert. */
#define LSHMOE_MOE_ALL_EXPERTS (-1)

/* ------------------------------------------------------------------------ */
/* Layer                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct lshmoe_moe_config {
    uint32_t       size;         /* sizeof(lshmoe_moe_config_t)             */
    uint32_t       magic;        /* LSHMOE_MAGIC                            */
    uint32_t       version;      /* LSHMOE_VERSION_CODE                     */
    int32_t        num_experts;  /* E, 1..65536, over all ranks             */
    int32_t        topk;         /* K, slots per token, 1..64               */
    lshmoe_dtype_t dtype;        /* token dtype: FP32, FP16 or BF16         */
    size_t         hidden;       /* elements per token (experts map hidden
                                    to hidden), 1..2^24                     */
    const int32_t *expert_rank;  /* NULL: contiguous blocks (expert e on
                                    rank e / (E / nranks); E must be a
                                    multiple of nranks). Else E owner ranks;
                                    copied by lshmoe_moe_create()           */
    int32_t        compensation; /* LSHMOE_COMP_NONE, _RESIDUAL or _SCALED;
                                    LSHMOE_UNSET_INT = the context's
                                    (LSHMOE_COMPENSATION)                   */
} lshmoe_moe_config_t;

#define LSHMOE_MOE_CONFIG_INITIALIZER                                        \
    { sizeof(lshmoe_moe_config_t), LSHMOE_MAGIC, LSHMOE_VERSION_CODE, 0, 0,  \
      LSHMOE_DTYPE_BF16, 0, NULL, LSHMOE_UNSET_INT }

/*
 * Creates an MoE layer over a context. Collective over the context's ranks;
 * every rank passes the same num_experts, topk, dtype, hidden, placement
 * and compensation (checked: LSHMOE_ERR_MISMATCH naming a rank that
 * differs). Not stream-ordered. The context must outlive the layer.
 * [in]  cfg: read during the call only
 * [out] moe_p: set on success only; free with lshmoe_moe_destroy()
 * Returns LSHMOE_OK; LSHMOE_ERR_INVALID_ARG (NULL, field out of range,
 * owner rank out of range, E not a multiple of nranks without a map);
 * LSHMOE_ERR_NOT_INIT; LSHMOE_ERR_VERSION; LSHMOE_ERR_MISMATCH;
 * LSHMOE_ERR_NO_MEMORY; LSHMOE_ERR_TIMEOUT, LSHMOE_ERR_PEER and transport
 * errors. Message in lshmoe_last_error(ctx).
 */
LSHMOE_API lshmoe_status_t lshmoe_moe_create(lshmoe_ctx_t *ctx,
                                             const lshmoe_moe_config_t *cfg,
                                             lshmoe_moe_t **moe_p);

/* Frees a layer. NULL is ignored. Its handles must be destroyed first.
 * Not collective. */
LSHMOE_API void lshmoe_moe_destroy(lshmoe_moe_t *moe);

/*
 * The global ids of this rank's experts, ascending; local expert j is
 * ids[j]. *ids_p points into the layer (valid until it is destroyed).
 * Returns LSHMOE_OK or LSHMOE_ERR_INVALID_ARG. Not collective.
 */
LSHMOE_API lshmoe_status_t lshmoe_moe_local_experts(const lshmoe_moe_t *moe,
                                                    int *count_p,
                                                    const int32_t **ids_p);

/* ------------------------------------------------------------------------ */
/* Hooks                                                                     */
/* ------------------------------------------------------------------------ */

/*
 * Expert forward: out = E_expert(in), `rows` rows of `hidden` elements of
 * the layer's dtype each (the centroids this rank received for `expert`,
 * rank by rank). Must write every element of `out`; must not keep the
 * pointers. Returns 0 on success; anything else fails the collective that
 * ran it with LSHMOE_ERR_CALLBACK (its peers get LSHMOE_ERR_PEER).
 * stream: NULL on host buffers; on device buffers the call's stream (never
 * NULL: the legacy default stream's handle when the caller passed NULL),
 * with `in` and `out` device memory.
 */
typedef int (*lshmoe_moe_expert_fn)(int expert, const void *in, void *out,
                                    size_t rows, void *user, void *stream);

/*
 * Expert backward: grad_in = J_expert(in)^T grad_out, row by row, for the
 * same rows the forward saw (`in` is that forward's input). Same rules.
 */
typedef int (*lshmoe_moe_expert_bwd_fn)(int expert, const void *in,
                                        const void *grad_out, void *grad_in,
                                        size_t rows, void *user, void *stream);

/*
 * Registers the expert functions of one local expert (its global id), or of
 * every local expert with LSHMOE_MOE_ALL_EXPERTS (a per-expert registration
 * wins over the catch-all). fwd runs inside lshmoe_moe_combine() and bwd
 * inside lshmoe_moe_dispatch_backward(), before their exchanges, so that a
 * failure reaches every rank. A NULL function means "the caller fills that
 * batch buffer itself" (see lshmoe_moe_batch_t). Not collective.
 * Returns LSHMOE_OK or LSHMOE_ERR_INVALID_ARG (not a local expert).
 */
LSHMOE_API lshmoe_status_t lshmoe_moe_set_expert(lshmoe_moe_t *moe, int expert,
                                                 lshmoe_moe_expert_fn fwd,
                                                 lshmoe_moe_expert_bwd_fn bwd,
                                                 void *user);

/* Where a token hook runs. */
typedef enum lshmoe_moe_hook_point {
    /* Sender, in lshmoe_moe_dispatch(), before hashing (and also with
     * compress = 0). rows: one copy of the token per slot routed to
     * `expert` (token order, so a token with two slots on one expert
     * appears twice), layer dtype, writable.
     * What the hook leaves there is what is hashed, averaged into
     * centroids and used for the residual: it acts as if the caller had
     * changed x for this expert. The backward pass treats it as the
     * identity. */
    LSHMOE_MOE_HOOK_PRE_HASH = 0,
    /* Owner, in lshmoe_moe_combine(), after reconstruction and before the
     * gate-weighted sum. rows: y_ts of every slot routed to `expert` (token
     * order), fp32, writable. Gate gradients use what the hook leaves; the
     * rest of the backward pass treats the hook as the identity. It runs
     * after combine's last exchange: its failure fails this rank's
     * combine only (the peers' combine succeeds), and the handle stays
     * un-combined, so the next collective on it reports the failure to
     * the peers (LSHMOE_ERR_PEER) instead of leaving them waiting. */
    LSHMOE_MOE_HOOK_POST_RECONSTRUCT = 1
} lshmoe_moe_hook_point_t;

/*
 * Token hook: called once per expert that has rows at that point, on this
 * rank (never with 0 rows). Must not change the row count or keep the
 * pointer. Returns 0 on success; anything else fails the call with
 * LSHMOE_ERR_CALLBACK (for PRE_HASH, every peer's dispatch then fails with
 * LSHMOE_ERR_PEER).
 */
typedef int (*lshmoe_moe_token_fn)(lshmoe_moe_hook_point_t where, int expert,
                                   void *rows, size_t nrows, void *user);

/* Installs (or with NULL removes) the token hook. Not collective.
 * Returns LSHMOE_OK or LSHMOE_ERR_INVALID_ARG. */
LSHMOE_API lshmoe_status_t lshmoe_moe_set_token_hook(lshmoe_moe_t *moe,
                                                     lshmoe_moe_token_fn fn,
                                                     void *user);

/* ------------------------------------------------------------------------ */
/* Layout handle                                                             */
/* ------------------------------------------------------------------------ */

/*
 * Computes the layout of one routing: which (token, slot) goes to which
 * expert and rank, and counts per destination rank and expert. Local (not
 * collective). The handle then carries the pass: dispatch fills in the
 * groups, combine and the backward calls reuse them.
 * [in] topk_idx:     ntokens * topk expert ids (row-major, slot fastest),
 *                    LSHMOE_MOE_DROPPED for a dropped slot; copied
 * [in] topk_weights: ntokens * topk gate weights (finite fp32); copied
 * [out] handle_p:    set on success only; free with
 *                    lshmoe_moe_handle_destroy()
 * Returns LSHMOE_OK; LSHMOE_ERR_INVALID_ARG (NULL with ntokens > 0, expert
 * id out of range, non-finite weight, ntokens >= 2^31); LSHMOE_ERR_NO_MEMORY.
 * A rank whose layout failed should still call lshmoe_moe_dispatch() with
 * handle NULL: its peers then fail with LSHMOE_ERR_PEER instead of waiting.
 */
LSHMOE_API lshmoe_status_t lshmoe_moe_layout(lshmoe_moe_t *moe, size_t ntokens,
                                             const int32_t *topk_idx,
                                             const float *topk_weights,
                                             lshmoe_moe_handle_t **handle_p);

/* Frees a handle (and every batch buffer it owns, host or device; after a
 * device pass it first waits for that pass's stream). NULL is ignored. */
LSHMOE_API void lshmoe_moe_handle_destroy(lshmoe_moe_handle_t *handle);

/*
 * Routed slots per destination rank (nranks entries) and per expert
 * (num_experts entries), as counted by the layout; either may be NULL.
 * Returns LSHMOE_OK or LSHMOE_ERR_INVALID_ARG. Not collective.
 */
LSHMOE_API lshmoe_status_t lshmoe_moe_layout_counts(const lshmoe_moe_handle_t *handle,
                                                    size_t *per_rank,
                                                    size_t *per_expert);

/* ------------------------------------------------------------------------ */
/* Forward                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * One local expert's batch on this rank, owned by the handle. Pointers stay
 * valid until the next dispatch on the handle or its destruction. After a
 * dispatch from device memory, in, out and cluster_size are device memory
 * and grad_out, grad_in are NULL (no device backward yet).
 */
typedef struct lshmoe_moe_batch {
    int32_t         expert;        /* global expert id                        */
    int32_t         local;         /* index among this rank's experts         */
    size_t          rows;          /* centroid rows (0 is possible)           */
    const void     *in;            /* rows x hidden, after dispatch           */
    void           *out;           /* rows x hidden: the expert's output, for
                                      combine                                 */
    const uint32_t *cluster_size;  /* tokens behind each row                  */
    const void     *grad_out;      /* rows x hidden, after combine_backward   */
    void           *grad_in;       /* rows x hidden: J^T grad_out, for
                                      dispatch_backward                       */
} lshmoe_moe_batch_t;

/*
 * Dispatch: clusters the tokens bound for each expert and exchanges
 * centroids and group sizes. Collective. Host buffers: blocking. Device
 * buffers: stream-ordered on `stream`; waits for it for the peers' row
 * counts, for their group sizes when a peer sent groups, and, with
 * compress 1, for the copy of x the host groups (see "Device buffers").
 * [in] handle: from lshmoe_moe_layout() on this layer, or NULL to join the
 *              collective only to report a failed layout (returns
 *              LSHMOE_ERR_INVALID_ARG; peers get LSHMOE_ERR_PEER)
 * [in] x:      ntokens x hidden tokens of the layer's dtype, host or CUDA
 *              device memory; read during the call only, or on device until
 *              the call's work on `stream` is done (the handle keeps what
 *              combine needs)
 * [in] stream: NULL for host x; cudaStream_t or NULL (legacy default
 *              stream) for device x
 * Afterwards lshmoe_moe_batches() lists this rank's batches.
 * Returns LSHMOE_OK; LSHMOE_ERR_INVALID_ARG; LSHMOE_ERR_UNSUPPORTED (a
 * stream with host x; device x without the nccl transport, with coded
 * rows, SCALED compensation with compress 1, or a token hook); LSHMOE_ERR_CALLBACK (pre-hash hook);
 * LSHMOE_ERR_PEER; LSHMOE_ERR_CORRUPT (malformed payload from a peer);
 * LSHMOE_ERR_NO_MEMORY; LSHMOE_ERR_CUDA; LSHMOE_ERR_TIMEOUT and transport
 * errors.
 */
LSHMOE_API lshmoe_status_t lshmoe_moe_dispatch(lshmoe_moe_t *moe,
                                               lshmoe_moe_handle_t *handle,
                                               const void *x, void *stream);

/*
 * This rank's batches (one per local expert, in local order) after a
 * dispatch. *batches_p points into the handle. Returns LSHMOE_OK or
 * LSHMOE_ERR_INVALID_ARG (NULL, or no dispatch yet). Not collective.
 */
LSHMOE_API lshmoe_status_t lshmoe_moe_batches(lshmoe_moe_handle_t *handle,
                                              const lshmoe_moe_batch_t **batches_p,
                                              int *count_p);

/*
 * Combine: runs the registered expert forward functions on the batches
 * (others must have been filled by the caller), sends the outputs back and
 * writes out_t for every token (0 for a token whose slots are all dropped).
 * Collective. Every rank must combine the handle of the same dispatch
 * (else LSHMOE_ERR_MISMATCH naming the peer). Host buffers: blocking.
 * Device buffers (a handle dispatched from device memory): stream-ordered
 * on `stream`, the experts get it; waits once for it (the peers' row-format
 * bytes) before queuing the gate-weighted sum into y; y is the host path's
 * bit for bit.
 * [out] y: ntokens x hidden of the layer's dtype, caller-owned, in the
 *          memory x was in
 * [in] stream: as for lshmoe_moe_dispatch()
 * Returns LSHMOE_OK; LSHMOE_ERR_INVALID_ARG (NULL, handle not dispatched or
 * of another layer, y not in x's memory); LSHMOE_ERR_UNSUPPORTED (as for
 * dispatch); LSHMOE_ERR_CALLBACK; LSHMOE_ERR_MISMATCH; LSHMOE_ERR_PEER;
 * LSHMOE_ERR_CORRUPT; LSHMOE_ERR_NO_MEMORY; LSHMOE_ERR_CUDA; transport
 * errors.
 */
LSHMOE_API lshmoe_status_t lshmoe_moe_combine(lshmoe_moe_t *moe,
                                              lshmoe_moe_handle_t *handle,
                                              void *y, void *stream);

/* ------------------------------------------------------------------------ */
/* Backward                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * Backward of combine. Collective. Blocking. For each group, the gradient
 * of its expert output is the gate-weighted sum of its members' dy (one row
 * per group travels: the backward exchange is compressed too); it lands in
 * the batches' grad_out on the expert's rank.
 * [in]  dy:     ntokens x hidden of the layer's dtype (dL/dout)
 * [out] dgates: NULL, or ntokens * topk fp32: dL/dgate (0 for dropped slots)
 * Host memory only: device dy, a stream, or a handle dispatched from device
 * memory is LSHMOE_ERR_UNSUPPORTED (no device backward in this version).
 * Returns as lshmoe_moe_combine() (LSHMOE_ERR_INVALID_ARG also when the
 * handle was not combined).
 */
LSHMOE_API lshmoe_status_t lshmoe_moe_combine_backward(lshmoe_moe_t *moe,
                                                       lshmoe_moe_handle_t *handle,
                                                       const void *dy,
                                                       float *dgates,
                                                       void *stream);

/*
 * Backward of dispatch. Runs the registered expert backward functions (the
 * others' grad_in must have been filled by the caller), sends one gradient
 * per group back, and writes dL/dx through the centroid mean and the
 * residual path. Collective. Blocking.
 * [out] dx: ntokens x hidden of the layer's dtype, caller-owned
 * Host memory only, as lshmoe_moe_combine_backward().
 * Returns as lshmoe_moe_combine() (LSHMOE_ERR_INVALID_ARG also when
 * combine_backward has not run on the handle).
 */
LSHMOE_API lshmoe_status_t lshmoe_moe_dispatch_backward(lshmoe_moe_t *moe,
                                                        lshmoe_moe_handle_t *handle,
                                                        void *dx, void *stream);

/* ------------------------------------------------------------------------ */
/* Statistics                                                                */
/* ------------------------------------------------------------------------ */

/* What one handle's pass did on this rank. "Remote" excludes this rank's
 * own experts (their rows never leave the process). */
typedef struct lshmoe_moe_stats {
    uint32_t size;                /* sizeof(lshmoe_moe_stats_t)              */
    uint32_t reserved;
    uint64_t tokens;              /* ntokens of the layout                   */
    uint64_t slots;               /* routed (token, slot) pairs              */
    uint64_t rows_sent;           /* rows dispatched: centroids + raw tokens */
    uint64_t rows_received;       /* rows this rank's experts compute        */
    uint64_t slots_received;      /* the tokens those rows stand for         */
    uint64_t experts_compressed;  /* destination experts sent as centroids   */
    uint64_t experts_raw;         /* ... sent token by token (too few, ratio
                                     or error out of bounds, compress 0)     */
    uint64_t bytes_remote_plain;  /* remote token bytes a plain dispatch sends */
    uint64_t bytes_remote_dispatch; /* remote bytes this dispatch sent,
                                       counts and sizes included             */
    double   centroid_rel_error;  /* sqrt(sum |x - c|^2 / sum |x|^2) over the
                                     slots this rank sent                    */
    double   time_cluster_s;      /* hashing, grouping, centroids            */
    double   time_exchange_s;     /* transport, all four collectives         */
    /* Appended: combine, from this rank's experts (set by combine). */
    uint64_t bytes_remote_combine_plain; /* remote output bytes a plain
                                            combine sends                    */
    uint64_t bytes_remote_combine;  /* remote bytes this combine sent, row
                                       formats included                      */
    double   combine_rel_error;   /* sqrt(sum |o - o'|^2 / sum |o|^2) over the
                                     output rows sent, o' as the owner decodes
                                     them (0: all in the dtype)              */
} lshmoe_moe_stats_t;

#define LSHMOE_MOE_STATS_INITIALIZER { sizeof(lshmoe_moe_stats_t), 0, 0, 0, 0, 0, 0, \
                                       0, 0, 0, 0, 0.0, 0.0, 0.0, 0, 0, 0.0 }

/* Copies the handle's statistics. Not collective.
 * [out] stats: its size field must be set (initializer).
 * Returns LSHMOE_OK, LSHMOE_ERR_INVALID_ARG, LSHMOE_ERR_NOT_INIT. */
LSHMOE_API lshmoe_status_t lshmoe_moe_stats_get(const lshmoe_moe_handle_t *handle,
                                                lshmoe_moe_stats_t *stats);

#ifdef __cplusplus
}
#endif

#endif /* LSHMOE_MOE_H */
