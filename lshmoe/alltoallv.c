/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * lshmoe_alltoallv in transparent mode.
 *
 * One round of metadata precedes the data: every rank sends every peer
 * {its local status, the tokens it sends, the bytes it sends}. Because every
 * rank hears from every rank, a local failure (bad argument, encode error)
 * reaches all of them, and all skip the data round together: nobody waits
 * forever for a rank that gave up. A count disagreement between two ranks
 * is detected by the receiver, which still receives what the peer sends
 * (it knows the byte size) into scratch memory and then fails naming the
 * peer: no overflow, no hang.
 *
 * The rank's own segment never travels: it is copied exactly. Non-float
 * dtypes and compress = 0 take the plain path (user buffers straight to the
 * transport, byte-identical to a plain all-to-all); float tokens with
 * compression go through the segment codec, unless the adaptive policy
 * (LSHMOE_ADAPT, docs/api.md) has measured plain calls to cost this rank
 * less per byte than encoded ones, in which case this call's segments from
 * this rank go plain too. Each segment's kind travels in the metadata
 * round (flag PLAIN), so every sender decides for itself and every receiver
 * still knows which of its segments to decode (docs/wire-format.md).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "lshmoe/a2a_ranges.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"
#include "lshmoe/common/log.h"
#include "lshmoe/common/timer.h"
#include "lshmoe/adapt.h"
#include "lshmoe/codec_device.h"
#include "lshmoe/codec_internal.h"
#include "lshmoe/dev_wait.h"
#include "lshmoe/ctx_int.h"
#include "lshmoe/meta.h"

/* The metadata record is the one every data collective shares (meta.h):
 * count = tokens for the peer, bytes = their wire bytes, flags below. */
typedef lshmoe_meta_t peer_meta_t;

/* The segment is the sender's tokens as they are (ntokens * token bytes),
 * not a codec segment: the receiver copies it instead of decoding it. */
#define META_F_PLAIN 0x1u
/* The sender's adaptive policy votes for the mode of the next call
 * (adapt.c); neither bit: no vote. */
#define META_F_VOTE_ENCODE 0x2u
#define META_F_VOTE_PLAIN  0x4u
/* ... and that vote is a try of the mode its averages do not prefer. */
#define META_F_VOTE_TRY    0x8u
/* The sender's encoder runs the search arm its averages do not prefer
 * (lshmoe_adapt_rows_arm): the call is as slow as that search, so no rank
 * takes its time for the encoded mode's cost. */
#define META_F_ARM_TRY     0x10u


/* Per-call view of the arguments and the scratch carved from the context. */
typedef struct a2a_call {
    lshmoe_ctx_t  *ctx;
    const char    *send;
    const size_t  *send_counts, *send_displs;
    char          *recv;
    const size_t  *recv_counts, *recv_displs;
    lshmoe_dtype_t dtype;
    size_t         hidden;
    size_t         token_bytes;
    int            codec_ok;     /* float tokens with compress on            */
    int            compressed;   /* this rank encodes its segments this call */
    int            policy_plain; /* ... would have, but the policy said plain */
    int            explored;     /* the policy tried its non-preferred mode   */
    int            arm_try;      /* ... or its non-preferred search arm        */
    int            peer_arm_try; /* ... and another rank did that             */
    int            vote;         /* the policy's vote for the next call        */
    peer_meta_t   *meta_out, *meta_in;
    const void   **send_ptrs;
    size_t        *send_bytes;
    void         **recv_ptrs;
    size_t        *recv_bytes;
    size_t        *recv_offs;    /* codec path: offset of peer p in recv_stage */
    /* device buffers: the kernels' ops (NULL for host memory), the stream */
    const lshmoe_kn_dev_ops_t *dev;
    void          *stream;
} a2a_call_t;

/* Tokens [displ, displ + count) of tb bytes each must be addressable. */
static lshmoe_status_t check_range(const char *dir, int p, size_t count, size_t displ,
                                   size_t tb)
{
    size_t end;
    if (count + displ < count || lshmoe_mul_size(count + displ, tb, &end) != LSHMOE_OK)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "%s range for rank %d (displ %zu, count %zu) overflows", dir, p,
                            displ, count);
    return LSHMOE_OK;
}

/* Host or device buffers, worked out once per call: sets c->dev and
 * c->stream for device memory. */
static lshmoe_status_t check_memory(a2a_call_t *c, void *stream)
{
    lshmoe_kn_mem_t ks = lshmoe_kn_mem_kind(c->send), kr = lshmoe_kn_mem_kind(c->recv);
    lshmoe_kn_mem_t kind = c->send != NULL ? ks : kr;
    if (c->send != NULL && c->recv != NULL && ks != kr)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "send is %s memory but recv is %s "
                            "memory: pass both in the same memory", lshmoe_kn_mem_name(ks),
                            lshmoe_kn_mem_name(kr));
    if (kind == LSHMOE_KN_MEM_HOST) {
        if (stream != NULL)
            return lshmoe_error(LSHMOE_ERR_UNSUPPORTED, "a stream with host buffers: pass "
                                "stream NULL, or device buffers");
        return LSHMOE_OK;
    }
    c->dev = lshmoe_kn_dev_ops(kind);
    if (c->dev == NULL)
        return lshmoe_error(LSHMOE_ERR_UNSUPPORTED, "%s memory: no kernels for it in this "
                            "build", lshmoe_kn_mem_name(kind));
    if (strcmp(c->ctx->tl_ops->name, "nccl") != 0)
        return lshmoe_error(LSHMOE_ERR_UNSUPPORTED, "%s buffers need the nccl transport; "
                            "this context uses %s", lshmoe_kn_mem_name(kind),
                            c->ctx->tl_ops->name);
    c->stream = stream != NULL ? stream : c->dev->default_stream;
    c->ctx->dev.ops = c->dev;
    /* the device waits are bounded and abort this transport (dev_wait.h) */
    return lshmoe_dev_wait_bind(&c->ctx->dev, c->ctx->tl_ops, c->ctx->tl);
}

static lshmoe_status_t check_args(a2a_call_t *c, void *stream)
{
    LSHMOE_CHECK(check_memory(c, stream));
    if ((unsigned)c->dtype >= LSHMOE_DTYPE_COUNT)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "dtype %d is not valid", (int)c->dtype);
    if (c->hidden == 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "hidden is 0");
    if (c->send_counts == NULL || c->send_displs == NULL || c->recv_counts == NULL ||
        c->recv_displs == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "a counts or displacements array is NULL");
    size_t tb;
    LSHMOE_CHECK(lshmoe_mul_size(c->hidden, lshmoe_dtype_size(c->dtype), &tb));
    for (int p = 0; p < c->ctx->nranks; p++) {
        LSHMOE_CHECK(check_range("send", p, c->send_counts[p], c->send_displs[p], tb));
        LSHMOE_CHECK(check_range("recv", p, c->recv_counts[p], c->recv_displs[p], tb));
        if (c->send_counts[p] > 0 && c->send == NULL)
            return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "send is NULL with %zu tokens for "
                                "rank %d", c->send_counts[p], p);
        if (c->recv_counts[p] > 0 && c->recv == NULL)
            return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "recv is NULL with %zu tokens from "
                                "rank %d", c->recv_counts[p], p);
    }
    int me = c->ctx->rank;
    LSHMOE_CHECK(lshmoe_a2a_check_overlap(c->send, c->send_counts, c->send_displs, c->recv,
                                          c->recv_counts, c->recv_displs, c->ctx->nranks,
                                          tb));
    if (c->send_counts[me] != c->recv_counts[me])
        return lshmoe_error(LSHMOE_ERR_MISMATCH, "rank %d sends itself %zu tokens but "
                            "expects %zu", me, c->send_counts[me], c->recv_counts[me]);
    return LSHMOE_OK;
}

/* Carves the per-peer arrays out of the context's scratch. */
static lshmoe_status_t carve_scratch(a2a_call_t *c)
{
    size_t n = (size_t)c->ctx->nranks;
    LSHMOE_CHECK(lshmoe_buf_reserve(&c->ctx->meta, 2 * n * sizeof(peer_meta_t)));
    LSHMOE_CHECK(lshmoe_buf_reserve(&c->ctx->ptrs, 5 * n * sizeof(void *)));
    c->meta_out = c->ctx->meta.ptr;
    c->meta_in = c->meta_out + n;
    memset(c->meta_out, 0, 2 * n * sizeof(peer_meta_t));
    /* Zero sizes and NULL pointers for every slot not set below, the
     * rank's own included: it never travels. */
    memset(c->ctx->ptrs.ptr, 0, 5 * n * sizeof(void *));
    c->send_ptrs = (const void **)c->ctx->ptrs.ptr;
    c->send_bytes = (size_t *)(c->send_ptrs + n);
    c->recv_ptrs = (void **)(c->send_bytes + n);
    c->recv_bytes = (size_t *)(c->recv_ptrs + n);
    c->recv_offs = c->recv_bytes + n;
    return LSHMOE_OK;
}

static void add_codec_stats(lshmoe_stats_t *s, const lshmoe_codec_stats_t *cs)
{
    s->clusters += cs->rows;
    s->segments_compressed += cs->segments_compressed;
    s->segments_raw += cs->segments_raw;
    s->tokens_nonfinite += cs->tokens_nonfinite;
    s->time_hash_s += cs->time_hash_s;
    /* the rate-distortion search builds the candidates' rows and writes
     * the segment: packing, by the public field's definition */
    s->time_pack_s += cs->time_pack_s + cs->time_search_s;
    s->time_unpack_s += cs->time_unpack_s;
    s->err_sq += cs->err_num;
    s->err_ref += cs->err_den;
    /* choice id = (L * 2 + refine) * NFMTS + format (codec.h); 0 is RAW */
    for (int id = 1; id < LSHMOE_CODEC_NCHOICES; id++) {
        uint64_t n = cs->choice_segments[id];
        s->segments_by_format[id % LSHMOE_CODEC_NFMTS] += n;
        s->segments_grouped += lshmoe_codec_choice_l(id) > 0 ? n : 0;
        s->segments_refined += (id / LSHMOE_CODEC_NFMTS) % 2 ? n : 0;
    }
}

/* Per segment: the largest measured error, and encoded segments whose
 * error was not measured. `before` is the segment count before encoding. */
static void note_segment_error(lshmoe_stats_t *s, const lshmoe_codec_stats_t *cs,
                               uint64_t before)
{
    if (cs->segments_compressed == before)
        return;
    if (cs->last_error < 0.0)
        s->segments_unmeasured++;
    else if (cs->last_error > s->err_max)
        s->err_max = cs->last_error;
}

/* One peer's codec work in a call (run on any pool thread). Its stats
 * are its own: they are summed in rank order afterwards, so the totals
 * (fp64 error sums included) and the per-segment error do not depend on
 * the thread count. */
typedef struct codec_job {
    lshmoe_status_t      st;
    size_t               off, cap, len;  /* encode: slot in send_stage */
    lshmoe_codec_stats_t cs;             /* this segment's encode/decode */
    char                 msg[LSHMOE_ERRMSG_LEN];
} codec_job_t;

typedef struct codec_run {
    a2a_call_t  *c;
    codec_job_t *job;       /* per peer */
    int          rows_only; /* encode: the budget search's rows arm (adapt.h) */
} codec_run_t;

/* Per-peer job results and stats, zeroed. */
static lshmoe_status_t codec_run_init(a2a_call_t *c, codec_run_t *run)
{
    lshmoe_ctx_t *ctx = c->ctx;
    size_t jb = (size_t)ctx->nranks * sizeof(codec_job_t);
    LSHMOE_CHECK(lshmoe_buf_reserve(&ctx->jobs, jb));
    memset(ctx->jobs.ptr, 0, jb);
    run->c = c;
    run->job = ctx->jobs.ptr;
    run->rows_only = 0;
    return LSHMOE_OK;
}

/* The first failed peer (in rank order, so the message does not depend on
 * the thread count), with its message; LSHMOE_OK if none. */
static lshmoe_status_t codec_run_status(const codec_run_t *run, const char *what)
{
    for (int p = 0; p < run->c->ctx->nranks; p++)
        if (run->job[p].st != LSHMOE_OK)
            return lshmoe_error(run->job[p].st, "%s rank %d: %s", what, p, run->job[p].msg);
    return LSHMOE_OK;
}

/* The peers' stats summed in rank order (what add_codec_stats reads). */
static void codec_run_stats(const codec_run_t *run, lshmoe_codec_stats_t *sum)
{
    memset(sum, 0, sizeof *sum);
    for (int p = 0; p < run->c->ctx->nranks; p++) {
        const lshmoe_codec_stats_t *cs = &run->job[p].cs;
        sum->rows += cs->rows;
        sum->segments_compressed += cs->segments_compressed;
        sum->segments_raw += cs->segments_raw;
        sum->tokens_nonfinite += cs->tokens_nonfinite;
        sum->time_hash_s += cs->time_hash_s;
        sum->time_pack_s += cs->time_pack_s;
        sum->time_search_s += cs->time_search_s;
        sum->time_unpack_s += cs->time_unpack_s;
        sum->err_num += cs->err_num;
        sum->err_den += cs->err_den;
        for (int id = 0; id < LSHMOE_CODEC_NCHOICES; id++)
            sum->choice_segments[id] += cs->choice_segments[id];
    }
}

static void encode_job(void *arg, size_t p, int slot)
{
    codec_run_t *run = arg;
    a2a_call_t *c = run->c;
    codec_job_t *j = &run->job[p];
    if ((int)p == c->ctx->rank)
        return;
    lshmoe_codec_t *codec = c->ctx->codecs[slot];
    lshmoe_codec_warm_swap(codec, &c->ctx->peer_warm[p]); /* this peer's stream */
    lshmoe_codec_set_rows_only(codec, run->rows_only);
    j->st = lshmoe_codec_encode(codec, c->send + c->send_displs[p] * c->token_bytes, c->dtype,
                                c->hidden, c->send_counts[p],
                                (char *)c->ctx->send_stage.ptr + j->off, j->cap, &j->len,
                                &j->cs);
    lshmoe_codec_set_rows_only(codec, 0);
    lshmoe_codec_warm_swap(codec, &c->ctx->peer_warm[p]);
    if (j->st != LSHMOE_OK)
        snprintf(j->msg, sizeof j->msg, "%s", lshmoe_error_thread_msg());
}

/* The device codec over every remote segment (codec_device.c): one batch
 * on the call's stream, in the calling thread; results in run->job. */
static lshmoe_status_t dev_segs(a2a_call_t *c, lshmoe_dev_seg_t **segs_p)
{
    size_t n = (size_t)c->ctx->nranks, bytes;
    LSHMOE_CHECK(lshmoe_mul_size(n, sizeof(lshmoe_dev_seg_t), &bytes));
    LSHMOE_CHECK(lshmoe_buf_reserve(&c->ctx->dev_segs, bytes));
    memset(c->ctx->dev_segs.ptr, 0, bytes);
    *segs_p = c->ctx->dev_segs.ptr;
    return LSHMOE_OK;
}

static lshmoe_status_t dev_encode(a2a_call_t *c, codec_run_t *run, void *stage)
{
    lshmoe_dev_seg_t *segs;
    LSHMOE_CHECK(dev_segs(c, &segs));
    for (int p = 0; p < c->ctx->nranks; p++) {
        segs[p].skip = p == c->ctx->rank;
        segs[p].tokens = c->send + c->send_displs[p] * c->token_bytes;
        segs[p].ntokens = c->send_counts[p];
        segs[p].off = run->job[p].off;
        segs[p].cap = run->job[p].cap;
    }
    LSHMOE_CHECK(lshmoe_codec_dev_encode(&c->ctx->dev, c->ctx->codec, c->dtype, c->hidden, segs,
                                         (size_t)c->ctx->nranks, stage, c->stream));
    for (int p = 0; p < c->ctx->nranks; p++) {
        run->job[p].len = segs[p].len;
        run->job[p].cs = segs[p].cs;
    }
    return LSHMOE_OK;
}

static lshmoe_status_t dev_decode(a2a_call_t *c)
{
    lshmoe_ctx_t *ctx = c->ctx;
    lshmoe_dev_seg_t *segs;
    LSHMOE_CHECK(dev_segs(c, &segs));
    for (int p = 0; p < ctx->nranks; p++) {
        segs[p].skip = p == ctx->rank || (c->meta_in[p].flags & META_F_PLAIN);
        segs[p].out = c->recv + c->recv_displs[p] * c->token_bytes;
        segs[p].ntokens = c->recv_counts[p];
        segs[p].off = segs[p].skip ? 0 : c->recv_offs[p];
        segs[p].len = c->recv_bytes[p];
    }
    lshmoe_status_t st = lshmoe_codec_dev_decode(&ctx->dev, ctx->codec, c->dtype, c->hidden,
                                                 segs, (size_t)ctx->nranks,
                                                 ctx->dev.recv_stage.ptr, c->stream);
    if (st != LSHMOE_OK)
        return lshmoe_error(st, "segment from a peer: %s", lshmoe_error_thread_msg());
    return LSHMOE_OK;
}

/* Bytes this rank sends to the other ranks in this call. */
static size_t wire_bytes_sent(const a2a_call_t *c)
{
    size_t b = 0;
    for (int p = 0; p < c->ctx->nranks; p++)
        b += c->send_bytes[p];
    return b;
}

/* Token bytes this rank sends to the other ranks in this call. */
static double remote_token_bytes(const a2a_call_t *c)
{
    double b = 0.0;
    for (int p = 0; p < c->ctx->nranks; p++)
        if (p != c->ctx->rank)
            b += (double)c->send_counts[p] * (double)c->token_bytes;
    return b;
}

/* Encodes every remote segment into its own slot of send_stage (sized for
 * the worst case, so the pool's threads never share bytes, and each
 * segment's bytes do not depend on the thread count); fills meta_out. */
static lshmoe_status_t encode_all(a2a_call_t *c)
{
    lshmoe_ctx_t *ctx = c->ctx;
    codec_run_t run;
    size_t total = 0;
    double t_encode = -1.0; /* host encode wall time of a BUDGET codec: the
                               search arms' sample (adapt.h) */
    LSHMOE_CHECK(codec_run_init(c, &run));
    for (int p = 0; p < ctx->nranks; p++) {
        size_t b;
        if (p == ctx->rank)
            continue;
        LSHMOE_CHECK(lshmoe_codec_max_bytes(c->dtype, c->hidden, c->send_counts[p], &b));
        if (total + b < total)
            return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "staging size overflows");
        run.job[p].off = total;
        run.job[p].cap = b;
        total += b;
    }
    void *stage;
    if (c->dev != NULL) {
        LSHMOE_CHECK(lshmoe_dev_reserve(&ctx->dev, &ctx->dev.send_stage, total, c->stream));
        stage = ctx->dev.send_stage.ptr;
        LSHMOE_CHECK(dev_encode(c, &run, stage));
    } else {
        LSHMOE_CHECK(lshmoe_buf_reserve(&ctx->send_stage, total));
        stage = ctx->send_stage.ptr;
        int arms = ctx->codec->params.mode == LSHMOE_CODEC_BUDGET;
        if (arms)
            run.rows_only = lshmoe_adapt_rows_arm(ctx, ctx->a2a_calls + 1, &c->arm_try);
        double t0 = lshmoe_now();
        lshmoe_pool_run(ctx->pool, (size_t)ctx->nranks, encode_job, &run);
        if (arms)
            t_encode = lshmoe_now() - t0;
        LSHMOE_CHECK(codec_run_status(&run, "encoding the segment for"));
    }
    for (int p = 0; p < ctx->nranks; p++) {
        c->meta_out[p].count = c->send_counts[p];
        if (p == ctx->rank)
            continue;
        c->send_ptrs[p] = (char *)stage + run.job[p].off;
        c->send_bytes[p] = run.job[p].len;
        c->meta_out[p].bytes = run.job[p].len;
        note_segment_error(&ctx->stats, &run.job[p].cs, 0);
        c->meta_out[p].flags = 0;
    }
    lshmoe_codec_stats_t cs;
    codec_run_stats(&run, &cs);
    uint64_t grouped_before = ctx->stats.segments_grouped;
    add_codec_stats(&ctx->stats, &cs);
    if (t_encode >= 0.0)
        lshmoe_adapt_update_arm(ctx, run.rows_only, remote_token_bytes(c),
                                (double)wire_bytes_sent(c), t_encode,
                                ctx->stats.segments_grouped > grouped_before);
    return LSHMOE_OK;
}

/* Plain path: point the transport at the user's buffers. */
static void plain_send_setup(a2a_call_t *c)
{
    for (int p = 0; p < c->ctx->nranks; p++) {
        c->meta_out[p].count = c->send_counts[p];
        if (p == c->ctx->rank)
            continue;
        c->send_ptrs[p] = c->send + c->send_displs[p] * c->token_bytes;
        c->send_bytes[p] = c->send_counts[p] * c->token_bytes;
        c->meta_out[p].bytes = c->send_bytes[p];
        c->meta_out[p].flags = META_F_PLAIN;
    }
}

/*
 * Where each peer's data lands: a plain segment of the expected size goes
 * straight into the user's buffer, a codec segment into scratch for the
 * decoder. Returns the first peer whose token count (or, for a plain
 * segment, byte count) disagrees with recv_counts (or -1); that peer's
 * bytes still land, in scratch, so the exchange completes for everyone.
 */
static lshmoe_status_t recv_setup(a2a_call_t *c, int *bad_peer_p)
{
    lshmoe_ctx_t *ctx = c->ctx;
    size_t stage = 0;
    *bad_peer_p = -1;
    for (int p = 0; p < ctx->nranks; p++) {
        if (p == ctx->rank)
            continue;
        const peer_meta_t *m = &c->meta_in[p];
        int fits = m->count == c->recv_counts[p];
        if (m->flags & META_F_PLAIN) /* a peer with another hidden or dtype */
            fits = fits && m->bytes == c->recv_counts[p] * c->token_bytes;
        int direct = (m->flags & META_F_PLAIN) && fits;
        if (!fits && *bad_peer_p < 0)
            *bad_peer_p = p;
        c->recv_offs[p] = direct ? SIZE_MAX : stage;
        if (!direct)
            stage += (c->meta_in[p].bytes + 7) & ~(size_t)7;
    }
    char *base;
    if (c->dev != NULL) {
        LSHMOE_CHECK(lshmoe_dev_reserve(&ctx->dev, &ctx->dev.recv_stage, stage, c->stream));
        base = ctx->dev.recv_stage.ptr;
    } else {
        LSHMOE_CHECK(lshmoe_buf_reserve(&ctx->recv_stage, stage));
        base = ctx->recv_stage.ptr;
    }
    for (int p = 0; p < ctx->nranks; p++) {
        c->recv_bytes[p] = p == ctx->rank ? 0 : c->meta_in[p].bytes;
        if (p == ctx->rank)
            c->recv_ptrs[p] = NULL;
        else if (c->recv_offs[p] == SIZE_MAX)
            c->recv_ptrs[p] = c->recv + c->recv_displs[p] * c->token_bytes;
        else
            c->recv_ptrs[p] = base + c->recv_offs[p];
    }
    return LSHMOE_OK;
}

static void decode_job(void *arg, size_t p, int slot)
{
    codec_run_t *run = arg;
    a2a_call_t *c = run->c;
    codec_job_t *j = &run->job[p];
    if ((int)p == c->ctx->rank || (c->meta_in[p].flags & META_F_PLAIN))
        return; /* plain segments landed in place (recv_setup) */
    j->st = lshmoe_codec_decode(c->ctx->codecs[slot], c->recv_ptrs[p], c->recv_bytes[p],
                                c->dtype, c->hidden, c->recv_counts[p],
                                c->recv + c->recv_displs[p] * c->token_bytes, &j->cs);
    if (j->st != LSHMOE_OK)
        snprintf(j->msg, sizeof j->msg, "%s", lshmoe_error_thread_msg());
}

static lshmoe_status_t decode_all(a2a_call_t *c)
{
    lshmoe_ctx_t *ctx = c->ctx;
    codec_run_t run;
    if (c->dev != NULL)
        return dev_decode(c);
    LSHMOE_CHECK(codec_run_init(c, &run));
    lshmoe_pool_run(ctx->pool, (size_t)ctx->nranks, decode_job, &run);
    lshmoe_codec_stats_t cs;
    codec_run_stats(&run, &cs);
    ctx->stats.time_unpack_s += cs.time_unpack_s;
    return codec_run_status(&run, "segment from");
}

static lshmoe_status_t exchange(a2a_call_t *c, lshmoe_status_t local)
{
    lshmoe_ctx_t *ctx = c->ctx;
    /* The header first: a rank in another collective, or with another
     * dtype, fails every rank here, before any data moves. */
    uint32_t vote = (c->vote & LSHMOE_ADAPT_VOTE_PLAIN)    ? META_F_VOTE_PLAIN
                  : (c->vote & LSHMOE_ADAPT_VOTE_ENCODE)   ? META_F_VOTE_ENCODE : 0u;
    if (vote != 0u && (c->vote & LSHMOE_ADAPT_VOTE_TRY))
        vote |= META_F_VOTE_TRY;
    uint64_t seq = ++ctx->a2a_calls;
    for (int p = 0; p < ctx->nranks; p++) {
        lshmoe_meta_t *m = &c->meta_out[p];
        lshmoe_meta_t h = lshmoe_meta_header(LSHMOE_COLL_ALLTOALLV, seq, c->dtype, c->hidden,
                                             local);
        h.count = m->count;
        h.bytes = m->bytes;
        h.flags = m->flags | (local == LSHMOE_OK ? vote : 0u) |
                  (local == LSHMOE_OK && c->arm_try ? META_F_ARM_TRY : 0u);
        *m = h;
    }
    LSHMOE_CHECK(ctx->tl_ops->alltoall(ctx->tl, c->meta_out, sizeof(peer_meta_t), c->meta_in));
    if (local != LSHMOE_OK)
        return local;
    LSHMOE_CHECK(lshmoe_meta_check(c->meta_in, ctx->nranks, 1));
    /* Every rank hears the same votes (a rank's vote is the same in every
     * record it sends), so every rank agrees on the next call's mode
     * without a round of its own. */
    int votes[2] = {0, 0}, tries[2] = {0, 0}; /* [plain], [encode] */
    for (int p = 0; p < ctx->nranks; p++) {
        uint32_t f = c->meta_in[p].flags;
        if (p != ctx->rank && (f & META_F_ARM_TRY))
            c->peer_arm_try = 1;
        if (!(f & (META_F_VOTE_PLAIN | META_F_VOTE_ENCODE)))
            continue;
        int enc = (f & META_F_VOTE_PLAIN) == 0;
        votes[enc]++;
        tries[enc] += (f & META_F_VOTE_TRY) != 0;
    }
    lshmoe_adapt_agree(ctx, votes[0], votes[1], tries[0], tries[1]);
    int bad_peer;
    LSHMOE_CHECK(recv_setup(c, &bad_peer));
    LSHMOE_CHECK(ctx->tl_ops->alltoallv(ctx->tl, (const void *const *)c->send_ptrs,
                                        c->send_bytes, (void *const *)c->recv_ptrs,
                                        c->recv_bytes, c->stream));
    if (bad_peer >= 0 && c->meta_in[bad_peer].count == c->recv_counts[bad_peer])
        return lshmoe_error(LSHMOE_ERR_MISMATCH, "rank %d sent %zu tokens in %llu bytes, "
                            "not %zu tokens of %zu bytes: hidden or dtype differ", bad_peer,
                            c->recv_counts[bad_peer],
                            (unsigned long long)c->meta_in[bad_peer].bytes,
                            c->recv_counts[bad_peer], c->token_bytes);
    if (bad_peer >= 0)
        return lshmoe_error(LSHMOE_ERR_MISMATCH, "rank %d sent %llu tokens but recv_counts[%d] "
                            "is %zu", bad_peer,
                            (unsigned long long)c->meta_in[bad_peer].count, bad_peer,
                            c->recv_counts[bad_peer]);
    return LSHMOE_OK;
}

/* The ratio this call's remote segments would reach if encoded, from the
 * codec's estimate for its mode (a sample probe for the LSH modes; adapt.c
 * calls it before an encoded try): remote token bytes / estimated bytes.
 * LSHMOE_CODEC_RATIO_UNKNOWN in budget mode, 0 when nothing can be said. */
static double probe_ratio(void *arg)
{
    const a2a_call_t *c = arg;
    double bytes = 0.0, wire = 0.0;
    for (int p = 0; p < c->ctx->nranks; p++) {
        size_t n = c->send_counts[p];
        double r;
        if (p == c->ctx->rank || n == 0)
            continue;
        if (lshmoe_codec_probe_ratio(c->ctx->codec, c->send + c->send_displs[p] * c->token_bytes,
                                     c->dtype, c->hidden, n, &r) != LSHMOE_OK)
            return 0.0; /* out of memory: no estimate, no try */
        if (r == LSHMOE_CODEC_RATIO_UNKNOWN)
            return LSHMOE_CODEC_RATIO_UNKNOWN;
        double b = (double)n * (double)c->token_bytes;
        bytes += b;
        wire += r > 0.0 ? b / r : b;
    }
    return wire > 0.0 ? bytes / wire : 0.0;
}

/* Did every other rank run this call in this rank's mode (all plain, or
 * all codec segments)? Each rank's records to all peers carry its mode. */
static int modes_agree(const a2a_call_t *c)
{
    uint32_t mine = c->compressed ? 0u : META_F_PLAIN;
    for (int p = 0; p < c->ctx->nranks; p++)
        if (p != c->ctx->rank && (c->meta_in[p].flags & META_F_PLAIN) != mine)
            return 0;
    return 1;
}

static void count_sent(a2a_call_t *c)
{
    lshmoe_stats_t *s = &c->ctx->stats;
    for (int p = 0; p < c->ctx->nranks; p++) {
        if (p == c->ctx->rank)
            continue;
        s->tokens += c->send_counts[p];
        s->bytes_in += c->send_counts[p] * c->token_bytes;
        s->bytes_wire += c->send_bytes[p];
        if (!c->compressed)
            s->clusters += c->send_counts[p];
    }
    s->calls++;
    s->calls_plain_policy += c->policy_plain ? 1u : 0u;
    s->calls_explored += c->explored ? 1u : 0u;
}

static lshmoe_status_t alltoallv_held(lshmoe_ctx_t *ctx, const void *send,
                                      const size_t *send_counts, const size_t *send_displs,
                                      void *recv, const size_t *recv_counts,
                                      const size_t *recv_displs, lshmoe_dtype_t dtype,
                                      size_t hidden, void *stream)
{
    /* the caller (the public wrapper below) checked the handle */
    lshmoe_error_clear();
    double t0 = lshmoe_now();
    a2a_call_t c = {.ctx = ctx, .send = send, .send_counts = send_counts,
                    .send_displs = send_displs, .recv = recv, .recv_counts = recv_counts,
                    .recv_displs = recv_displs, .dtype = dtype, .hidden = hidden};
    /* Without its scratch this rank cannot even tell the others it failed. */
    LSHMOE_CHECK(lshmoe_ctx_fail(ctx, carve_scratch(&c)));

    lshmoe_status_t local = check_args(&c, stream);
    if (local == LSHMOE_OK) {
        c.token_bytes = hidden * lshmoe_dtype_size(dtype);
        c.codec_ok = ctx->cfg.compress && lshmoe_dtype_is_float(dtype);
        /* the adaptive policy's probe reads tokens on the host: off on the device */
        c.policy_plain = c.codec_ok && c.dev == NULL &&
                         lshmoe_adapt_choose_plain(ctx, remote_token_bytes(&c), probe_ratio,
                                                   &c, &c.explored, &c.vote);
        c.compressed = c.codec_ok && !c.policy_plain;
        if (c.compressed && c.dev != NULL)
            local = lshmoe_codec_dev_supported(ctx->codec);
        if (c.compressed && local == LSHMOE_OK)
            local = encode_all(&c);
        else
            plain_send_setup(&c);
    }
    /* A local failure still takes part in the metadata round (with zero
     * sizes) so that every rank learns of it. */
    if (local != LSHMOE_OK)
        memset(c.meta_out, 0, (size_t)ctx->nranks * sizeof(peer_meta_t));
    double t1 = lshmoe_now();
    lshmoe_status_t st = exchange(&c, local);
    double t2 = lshmoe_now();
    ctx->stats.time_exchange_s += t2 - t1;
    if (st != LSHMOE_OK)
        return lshmoe_ctx_fail(ctx, st);

    /* Routed by each peer's flag: a peer may send codec segments while
     * this rank sent plain, and the other way round. */
    st = decode_all(&c);
    if (st == LSHMOE_OK && send_counts[ctx->rank] > 0 && c.dev != NULL)
        st = c.dev->copy(c.recv + recv_displs[ctx->rank] * c.token_bytes,
                         c.send + send_displs[ctx->rank] * c.token_bytes,
                         send_counts[ctx->rank] * c.token_bytes, c.stream);
    else if (st == LSHMOE_OK && send_counts[ctx->rank] > 0)
        memmove(c.recv + recv_displs[ctx->rank] * c.token_bytes,
                c.send + send_displs[ctx->rank] * c.token_bytes,
                send_counts[ctx->rank] * c.token_bytes);
    if (st != LSHMOE_OK)
        return lshmoe_ctx_fail(ctx, st);
    count_sent(&c);
    double t_call = lshmoe_now() - t0;
    /* a try of the other search arm, here or elsewhere, is not the
     * encoded mode's cost */
    lshmoe_adapt_update(ctx, c.codec_ok, c.compressed,
                        modes_agree(&c) && !c.arm_try && !c.peer_arm_try,
                        remote_token_bytes(&c), (double)wire_bytes_sent(&c), t_call);
    ctx->stats.time_total_s += t_call;
    return LSHMOE_OK;
}

/* The context is claimed for the whole call (lshmoe_ctx_enter). */
lshmoe_status_t lshmoe_alltoallv(lshmoe_ctx_t *ctx, const void *send,
                                 const size_t *send_counts, const size_t *send_displs,
                                 void *recv, const size_t *recv_counts,
                                 const size_t *recv_displs, lshmoe_dtype_t dtype,
                                 size_t hidden, void *stream)
{
    if (!lshmoe_ctx_valid(ctx))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "context is NULL or not a live context");
    LSHMOE_CHECK(lshmoe_ctx_enter(ctx, "lshmoe_alltoallv"));
    lshmoe_status_t st = alltoallv_held(ctx, send, send_counts, send_displs, recv,
                                        recv_counts, recv_displs, dtype, hidden, stream);
    lshmoe_ctx_leave(ctx);
    return st;
}
