/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The adaptive policy of lshmoe_alltoallv (LSHMOE_ADAPT, docs/api.md
 * "Adaptive policy"): per call, should this rank's float segments travel
 * plain instead of encoded? Private to lshmoe/; the state lives in the
 * context (lshmoe_adapt_t, ctx_int.h). Not thread-safe: one call at a
 * time per context, like the all-to-all itself.
 */
#ifndef LSHMOE_ADAPT_H
#define LSHMOE_ADAPT_H

#include "lshmoe/ctx_int.h"

/* The ratio (remote token bytes / wire bytes) this call's segments would
 * reach if encoded, estimated from samples (lshmoe_codec_probe_ratio);
 * called by the policy only when it considers trying an encoded call.
 * 0: no estimate (no try); negative: the codec's mode cannot predict it,
 * so the policy encodes before any encoded call is timed and tries
 * encoding at every exploration point where the codec's measured cost
 * leaves room (the interval doubling while plain stays cheaper). */
typedef double (*lshmoe_adapt_probe_fn_t)(void *arg);

/* What a rank's policy asks for the next call (travels in the metadata
 * round of this one): NONE, or ENCODE or PLAIN, with TRY or'ed in when
 * that is the mode the rank's averages do not prefer (an exploration). */
enum {
    LSHMOE_ADAPT_VOTE_NONE = 0,
    LSHMOE_ADAPT_VOTE_ENCODE = 1,
    LSHMOE_ADAPT_VOTE_PLAIN = 2,
    LSHMOE_ADAPT_VOTE_TRY = 4
};

/* 1 = send this call's segments plain: the mode the ranks agreed on in the
 * previous call's votes (lshmoe_adapt_agree), or this rank's own choice
 * when there was no vote. `remote_bytes`: token bytes this rank sends to
 * the other ranks in the call. *explore_p = 1 when the call runs the mode
 * this rank's averages do not prefer (counted in the stats); *vote_p: this
 * rank's vote for the next call. */
int lshmoe_adapt_choose_plain(lshmoe_ctx_t *ctx, double remote_bytes,
                              lshmoe_adapt_probe_fn_t probe, void *probe_arg,
                              int *explore_p, int *vote_p);

/* Every rank's votes of this call (all ranks see the same counts; the
 * tries are counted among the votes too): the next call runs the mode
 * more ranks voted for; on a tie, the mode more of them voted for as a
 * try (so that a rank whose estimate went stale can still measure the
 * other mode when half the others prefer it), else plain (a call of both
 * modes costs each rank the worse of them); without votes, each rank's
 * own choice. */
void lshmoe_adapt_agree(lshmoe_ctx_t *ctx, int plain_votes, int encode_votes,
                        int plain_tries, int encode_tries);

/* The codec's measured share of an encoded call, in seconds per remote
 * token byte (>= 0; meaningful once both modes were timed): what the
 * policy compares with ADAPT_PAY_MARGIN x the plain cost before it asks
 * the probe. */
double lshmoe_adapt_codec_s_per_byte(const lshmoe_adapt_t *a);

/* Feeds the policy from a successful call; `codec_ok`: its tokens could
 * have been encoded, `compressed`: they were (then `wire_bytes` is what
 * this rank sent for them), `uniform`: every other rank ran the call in
 * the same mode, `t`: the call's wall time on this rank. A call whose
 * ranks ran both modes (a tied vote) is not timed: its plain ranks wait
 * for the encoding ones, which would make plain look dear and keep
 * encoding where it loses. */
void lshmoe_adapt_update(lshmoe_ctx_t *ctx, int codec_ok, int compressed, int uniform,
                         double remote_bytes, double wire_bytes, double t);

/*
 * For an encoded call of a BUDGET codec: 1 = search only the row formats
 * this call (lshmoe_codec_set_rows_only), 0 = the full search. The full
 * search sends the fewest bytes within the budget, but finding a
 * clustering costs encode time that a fast link may not pay back (GloVe
 * at budget 0.3, 4 ranks on 2 cores at 1 Gb/s: the clusterings took the
 * encoded call from under to over the plain one's time). Each arm's cost
 * per remote token byte is predicted as its measured encode time plus
 * its wire bytes at the plain calls' cost per byte; the cheaper arm runs,
 * and the other is tried now and then (4 encoded calls after the
 * preference is set, the interval doubling up to 256 while tries confirm
 * it). The full search runs while there is no plain estimate, no full
 * sample, or while the last full search grouped nothing (then the two are
 * one search: the codec's own memory already leaves the clusterings out
 * of a stream whose rows win). *try_p = 1 when the arm is the one the
 * estimates do not prefer: its call is not timed for the encoded mode, on
 * any rank (the caller flags it in the metadata), and it is made only at
 * a call whose number `seq` (the same on every rank) the interval
 * divides, so that the ranks' tries fall on the same calls. The receiver
 * needs no word of the arm itself: segments describe themselves.
 */
int lshmoe_adapt_rows_arm(lshmoe_ctx_t *ctx, uint64_t seq, int *try_p);

/* Feeds the arm of an encoded call (`rows` as lshmoe_adapt_rows_arm said)
 * from its encode wall time `encode_s`, its remote token bytes and wire
 * bytes, and whether any of its segments was grouped. Call it before
 * lshmoe_adapt_update (the context's first encoded call is not sampled). */
void lshmoe_adapt_update_arm(lshmoe_ctx_t *ctx, int rows, double remote_bytes,
                             double wire_bytes, double encode_s, int grouped);

#endif /* LSHMOE_ADAPT_H */
