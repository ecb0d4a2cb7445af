/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The adaptive policy's choice for a call whose float tokens could be
 * encoded. It compares what the two kinds of call have cost this rank,
 * measured end to end: whole-call seconds per remote token byte, one
 * running average for encoded calls and one for plain calls. A model
 * (codec cost + wire bytes / link speed) was tried first and dropped as the
 * judge: the data round of an encoded call also absorbs the peers' encode
 * skew, which, divided by the few wire bytes, made compression look
 * expensive even on a 1 Gb/s link. End-to-end times carry that skew in
 * both modes.
 *
 * Rules: the first encoded call is not sampled (hasher creation, first
 * touch of the buffers), so the first two calls encode (unless samples of
 * the data say it does not compress: then calls go plain until a sample
 * says otherwise, see before_encoded_sample); then ADAPT_FIRST_PLAIN plain
 * calls (each moving at least ADAPT_MIN_BYTES) measure the plain cost; from
 * then on the cheaper mode wins, and now and then (ADAPT_EXPLORE_MIN calls
 * after the preference is set, the interval doubling up to
 * ADAPT_EXPLORE_MAX while tries confirm it) the policy considers the other
 * mode. What a try costs decides how it is made:
 *  - Plain preferred: an encoded try is expensive exactly when it is
 *    pointless (data that does not compress, a link faster than the
 *    codec). The codec's share of the last encoded calls (their cost minus
 *    their wire bytes at the plain cost per byte) is the codec's measured
 *    cost per byte: when it alone reaches ADAPT_PAY_MARGIN x plain, no
 *    ratio can make encoding pay, and the call stays plain without even a
 *    sample. Otherwise the policy estimates the ratio the call would reach
 *    from samples of its segments (a few percent of one hash pass; for the
 *    budget codec the ladder's forecast, codec_rd_sample.c) and predicts
 *    the encoded cost: the codec's share plus the plain cost divided by
 *    the estimated ratio. Only a prediction under ADAPT_PAY_MARGIN x plain
 *    makes the call encode (ADAPT_DOUBT_MARGIN while the encoded estimate
 *    has fewer than ADAPT_SETTLED samples, see encoded_try_pays).
 *  - Encode preferred: the plain cost per byte is a property of the link
 *    and the load, not of the data, so it needs refreshing only now and
 *    then; while encoded calls cost under ADAPT_CLEAR_WIN x plain, a plain
 *    try waits the longest interval. While the plain estimate has fewer
 *    than ADAPT_SETTLED samples, a try is made only where it could flip
 *    the preference, were that estimate ADAPT_DOUBT_MARGIN x too high:
 *    from ADAPT_ENCODE_MARGIN / ADAPT_DOUBT_MARGIN x plain up.
 * Agreement: in an all-to-all a rank that encodes still waits for the
 * plain bytes of the others (and the other way round), so its own timings
 * only mean something when all ranks run the same mode. Each rank
 * therefore votes, in the metadata round of a call (two flag bits, no
 * round of its own), for the mode its rules choose; every rank hears the
 * same votes and runs the next call in the majority's mode, plain on a
 * tie (a call of both modes costs each rank the worse of the two: the
 * plain ranks wait for the encoding ones, which then wait for nothing
 * they gain; and it is not timed, see lshmoe_adapt_update), its own
 * without votes. A try is flagged in the vote, and a tie goes to the
 * side with more tries (then plain): seen on the 2-core host, load made
 * three of four ranks prefer plain from different calls on, and each
 * one's encoded try, joined only by the fourth rank's vote, tied and
 * lost, for good. A tried call gives every rank a sample, so a rank that
 * did not ask for it restarts its own interval. Each sender still flags
 * its segments, so a rank that differs is always decoded right.
 * Search arms: with the budget codec an encoded call also picks the full
 * search or the row formats only, from each one's measured encode time
 * and wire bytes (lshmoe_adapt_rows_arm, adapt.h); the encoded estimate
 * stands for the arm that runs.
 * Preference: encoding is preferred only while its calls cost under
 * ADAPT_ENCODE_MARGIN x plain on this rank: its own time understates the
 * collective's (a rank whose segments encode cheaply finishes before the
 * slowest one does), so a near tie goes to the mode that is never worse.
 */
#include <limits.h>

#include "lshmoe/adapt.h"
#include "lshmoe/common/log.h"

/* Adds a sample to an estimate: the smallest of the first ADAPT_SETTLED
 * samples (a loaded host only ever adds time to a call, so one slow call
 * must not stand for the mode while there are few), then an EWMA of
 * weight ADAPT_ALPHA from there. n counts the samples (saturating); NULL:
 * the EWMA from the first sample on. */
static void ewma(double *est, unsigned *n, double sample)
{
    if (*est < 0.0)
        *est = sample;
    else if (n != NULL && *n < ADAPT_SETTLED)
        *est = sample < *est ? sample : *est;
    else {
        /* One descheduled call read 4x its cost here and, at weight
         * ADAPT_ALPHA, flipped a clear preference on its own. A lasting
         * change still gets through: the bound grows with the estimate. */
        if (n != NULL && sample > ADAPT_SPIKE * *est)
            sample = ADAPT_SPIKE * *est;
        *est += ADAPT_ALPHA * (sample - *est);
    }
    if (n != NULL && *n < UINT_MAX)
        (*n)++;
}

/* The next interval between tries, after a try that confirmed the
 * preference: twice this one, at most ADAPT_EXPLORE_MAX calls. */
static unsigned doubled(unsigned every)
{
    return every < ADAPT_EXPLORE_MAX ? 2 * every : ADAPT_EXPLORE_MAX;
}

/* The codec's share of an encoded call, seconds per remote token byte:
 * the encoded calls' cost minus their wire bytes at the plain cost. */
double lshmoe_adapt_codec_s_per_byte(const lshmoe_adapt_t *a)
{
    double codec = a->comp_s_per_byte;
    if (a->comp_ratio > 0.0)
        codec -= a->plain_s_per_byte / a->comp_ratio;
    return codec < 0.0 ? 0.0 : codec;
}

/* Would an encoded call pay, judged from samples of this call's data? A
 * codec whose share alone costs ADAPT_PAY_MARGIN x plain cannot pay at any
 * ratio: then no sample is taken, and a try costs nothing. While the
 * encoded estimate rests on fewer than ADAPT_SETTLED samples (one noisy
 * call on a loaded host can read 1.5x its true cost, and a model fed only
 * that would never try again), the margin is ADAPT_DOUBT_MARGIN instead,
 * for data the samples say compresses: a real try then adds a sample. */
static int encoded_try_pays(const lshmoe_adapt_t *a, double min_ratio,
                            lshmoe_adapt_probe_fn_t probe, void *arg)
{
    int settled = a->comp_samples >= ADAPT_SETTLED;
    double margin = settled ? ADAPT_PAY_MARGIN : ADAPT_DOUBT_MARGIN;
    double codec = lshmoe_adapt_codec_s_per_byte(a);
    if (codec >= margin * a->plain_s_per_byte) {
        LSHMOE_DEBUG("adapt: codec %.3g s/B alone is over %.2f x plain %.3g s/B: no try",
                     codec, margin, a->plain_s_per_byte);
        return 0;
    }
    double ratio = probe(arg);
    if (ratio < 0.0)
        return 1; /* unpredictable: only a try tells, at the exploration
                     points, whose interval doubles */
    if (ratio == 0.0 || (!settled && ratio < min_ratio))
        return 0;
    double predicted = codec + a->plain_s_per_byte / ratio;
    LSHMOE_DEBUG("adapt: estimated ratio %.3g, predicted encoded %.3g s/B, plain %.3g s/B%s",
                 ratio, predicted, a->plain_s_per_byte, settled ? "" : " (unsettled)");
    return predicted < margin * a->plain_s_per_byte;
}

/*
 * No encoded call has been timed yet: encode while samples of the data say
 * it compresses (MIN_RATIO). Data that does not would only pay for the
 * probe, a copy and a checksum to end RAW, so it goes plain, and the probe
 * is repeated at the exploration points (interval doubling) in case the
 * data changes.
 */
static int before_encoded_sample(lshmoe_ctx_t *ctx, lshmoe_adapt_probe_fn_t probe, void *arg)
{
    lshmoe_adapt_t *a = &ctx->adapt;
    if (a->flat && ++a->since_explore < a->explore_every)
        return 1;
    a->since_explore = 0;
    double ratio = probe(arg);
    int flat = ratio >= 0.0 && ratio < ctx->cfg.min_ratio; /* < 0: the codec decides */
    if (flat && a->flat)
        a->explore_every = doubled(a->explore_every);
    if (!flat)
        a->explore_every = ADAPT_EXPLORE_MIN;
    a->flat = flat;
    return flat;
}

/* The budget codec's full search groups tokens, its rows arm has never
 * been timed (lshmoe_adapt_rows_arm), and could pay: only if the codec's
 * share, were the rows arm ADAPT_ARM_GAIN_MAX x cheaper to encode, would
 * be under ADAPT_PAY_MARGIN x plain (no try on a link far faster than
 * any search), judged on a settled plain estimate (a context's first
 * plain calls run slow: at 100 Gb/s they read 1.7x the later ones, which
 * was enough to pass). */
static int arm_untried(const lshmoe_adapt_t *a)
{
    return a->arm_grouped && a->arm_enc[0] >= 0.0 && a->arm_enc[1] < 0.0 &&
           a->plain_samples >= ADAPT_SETTLED &&
           lshmoe_adapt_codec_s_per_byte(a) / ADAPT_ARM_GAIN_MAX <
               ADAPT_PAY_MARGIN * a->plain_s_per_byte;
}

/* Each search arm's predicted cost of an encoded call, per remote token
 * byte: its encode time plus its wire bytes at the plain cost per byte. */
static void arm_costs(const lshmoe_adapt_t *a, double cost[2])
{
    for (int k = 0; k < 2; k++)
        cost[k] = a->arm_enc[k] + a->plain_s_per_byte / a->arm_ratio[k];
}

/* This rank's own choice (the rules above). */
static int own_choice(lshmoe_ctx_t *ctx, double remote_bytes, lshmoe_adapt_probe_fn_t probe,
                      void *probe_arg, int *explore_p)
{
    lshmoe_adapt_t *a = &ctx->adapt;
    *explore_p = 0;
    if (!a->on || remote_bytes < (double)ADAPT_MIN_BYTES)
        return 0;
    if (a->comp_s_per_byte < 0.0)
        return before_encoded_sample(ctx, probe, probe_arg);
    /* The first plain samples, two in a row: one plain call that ran 4x
     * long under load once made encoding look like a clear win at 10 Gb/s,
     * where it cost 2x plain, and no plain try came for the whole run. */
    if (a->plain_s_per_byte < 0.0 || a->plain_asked < ADAPT_FIRST_PLAIN) {
        /* counted when chosen, not when timed: the vote runs the call one
         * later, and counting samples made it three plain calls */
        a->plain_asked += a->plain_asked < ADAPT_FIRST_PLAIN;
        return 1;
    }
    int prefer_plain = !(a->comp_s_per_byte < ADAPT_ENCODE_MARGIN * a->plain_s_per_byte);
    if (a->prefer_plain != prefer_plain) { /* the preference flipped */
        a->prefer_plain = prefer_plain;
        a->explore_every = ADAPT_EXPLORE_MIN;
        a->since_explore = 0;
    }
    if (a->arm_wait > 0) {
        a->arm_wait--;
    } else if (prefer_plain && arm_untried(a)) {
        /* the encoded estimate is the full search's; the other search arm
         * has never run, and only a try can time it (asked once, again
         * ADAPT_EXPLORE_MIN calls later if the vote did not run it) */
        a->arm_wait = ADAPT_EXPLORE_MIN;
        *explore_p = 1;
        LSHMOE_DEBUG("rank %d adapt: encode (try of the untimed search arm)", ctx->rank);
        return 0;
    }
    int plain = prefer_plain;
    if (++a->since_explore >= a->explore_every) {
        a->since_explore = 0;
        /* if this try does not flip the preference, wait longer next time */
        unsigned next = doubled(a->explore_every);
        if (!prefer_plain) {
            /* a clear win waits the longest interval before a plain try.
             * Against an unsettled plain estimate, a try is worth its cost
             * only if it could flip the preference: if the estimate read
             * ADAPT_DOUBT_MARGIN x too high (load only adds time), would
             * encoding still cost under ADAPT_ENCODE_MARGIN x plain? */
            double win = a->plain_samples >= ADAPT_SETTLED
                             ? ADAPT_CLEAR_WIN
                             : ADAPT_ENCODE_MARGIN / ADAPT_DOUBT_MARGIN;
            int clear = a->comp_s_per_byte < win * a->plain_s_per_byte &&
                        a->explore_every < ADAPT_EXPLORE_MAX;
            if (clear)
                a->explore_every = ADAPT_EXPLORE_MAX;
            plain = !clear;
            if (!clear)
                a->explore_every = next;
        } else {
            plain = !encoded_try_pays(a, ctx->cfg.min_ratio, probe, probe_arg);
            a->explore_every = next;
        }
        *explore_p = plain != prefer_plain;
    }
    LSHMOE_DEBUG("rank %d adapt: encoded %.3g s/B, plain %.3g s/B: %s%s", ctx->rank,
                 a->comp_s_per_byte, a->plain_s_per_byte, plain ? "plain" : "encode",
                 *explore_p ? " (try)" : "");
    return plain;
}

int lshmoe_adapt_choose_plain(lshmoe_ctx_t *ctx, double remote_bytes,
                              lshmoe_adapt_probe_fn_t probe, void *probe_arg,
                              int *explore_p, int *vote_p)
{
    lshmoe_adapt_t *a = &ctx->adapt;
    int agreed = a->agreed;
    /* Another rank's try of the mode this rank does not prefer samples
     * that mode here too: this rank's own try waits a whole interval. */
    if (a->agreed_try && !a->voted_try && agreed != a->prefer_plain)
        a->since_explore = 0;
    a->agreed = -1;
    a->agreed_try = 0;
    a->voted_try = 0;
    *vote_p = LSHMOE_ADAPT_VOTE_NONE;
    int plain = own_choice(ctx, remote_bytes, probe, probe_arg, explore_p);
    if (!a->on || remote_bytes < (double)ADAPT_MIN_BYTES)
        return plain; /* small calls encode, and do not vote */
    *vote_p = plain ? LSHMOE_ADAPT_VOTE_PLAIN : LSHMOE_ADAPT_VOTE_ENCODE;
    if (*explore_p) {
        *vote_p |= LSHMOE_ADAPT_VOTE_TRY;
        a->voted_try = 1;
    }
    if (agreed >= 0 && agreed != plain) {
        plain = agreed;
        /* a try is the mode the averages do not prefer */
        *explore_p = a->comp_s_per_byte >= 0.0 && a->plain_s_per_byte >= 0.0 &&
                     plain != a->prefer_plain;
    }
    return plain;
}

void lshmoe_adapt_agree(lshmoe_ctx_t *ctx, int plain_votes, int encode_votes,
                        int plain_tries, int encode_tries)
{
    lshmoe_adapt_t *a = &ctx->adapt;
    if (encode_votes != plain_votes)
        a->agreed = encode_votes > plain_votes ? 0 : 1;
    else if (plain_votes > 0)
        a->agreed = encode_tries > plain_tries ? 0 : 1;
    else
        a->agreed = -1;
    a->agreed_try = (a->agreed == 0 && encode_tries > 0) || (a->agreed == 1 && plain_tries > 0);
}

void lshmoe_adapt_update(lshmoe_ctx_t *ctx, int codec_ok, int compressed, int uniform,
                         double remote_bytes, double wire_bytes, double t)
{
    lshmoe_adapt_t *a = &ctx->adapt;
    if (!a->on || !codec_ok || remote_bytes < (double)ADAPT_MIN_BYTES)
        return;
    if (compressed) {
        if (wire_bytes > 0.0) /* the data's ratio, whatever the others did */
            ewma(&a->comp_ratio, NULL, remote_bytes / wire_bytes);
        int sampled = a->comp_calls++ > 0 && uniform;
        if (sampled && a->comp_fresh > 0) {
            /* the first samples of the arm just switched to (see
             * lshmoe_adapt_update_arm) */
            a->comp_fresh--;
            if (t / remote_bytes < a->comp_s_per_byte)
                a->comp_s_per_byte = t / remote_bytes;
        } else if (sampled) {
            int was_preferred = a->plain_s_per_byte >= 0.0 &&
                                a->comp_s_per_byte < ADAPT_ENCODE_MARGIN * a->plain_s_per_byte;
            ewma(&a->comp_s_per_byte, &a->comp_samples, t / remote_bytes);
            /* This sample cost encoding the preference: slow calls in a
             * row (load) can do that, and the plain calls that follow
             * never correct it. The estimate is unsettled again: tries
             * judge it with the doubt margin, and the smallest of the
             * next samples stands for it (encoded_try_pays, ewma). */
            if (was_preferred && !(a->comp_s_per_byte < ADAPT_ENCODE_MARGIN * a->plain_s_per_byte))
                a->comp_samples = 0;
        }
    } else if (uniform) {
        ewma(&a->plain_s_per_byte, &a->plain_samples, t / remote_bytes);
    }
}

int lshmoe_adapt_rows_arm(lshmoe_ctx_t *ctx, uint64_t seq, int *try_p)
{
    lshmoe_adapt_t *a = &ctx->adapt;
    *try_p = 0;
    if (!a->on || a->plain_s_per_byte < 0.0 || a->arm_enc[0] < 0.0 || !a->arm_grouped)
        return 0;
    if (a->arm_enc[1] < 0.0) {
        *try_p = 1; /* the first sample of the rows arm */
        return 1;
    }
    double cost[2];
    arm_costs(a, cost);
    int rows = cost[1] < cost[0];
    if (rows != a->arm_rows) {
        a->arm_rows = rows;
        a->arm_every = ADAPT_EXPLORE_MIN;
        a->arm_since = 0;
    }
    /* A try makes the whole call as slow as its search: tried at the
     * calls whose number the interval divides, the ranks' tries fall on
     * the same calls (their intervals double alike), not one call each. */
    if (++a->arm_since >= a->arm_every && seq % a->arm_every == 0) {
        a->arm_since = 0;
        a->arm_every = doubled(a->arm_every);
        *try_p = 1;
        rows = !rows;
    }
    LSHMOE_DEBUG("rank %d adapt: full search %.3g s/B, rows %.3g s/B: %s%s", ctx->rank,
                 cost[0], cost[1], rows ? "rows" : "full", *try_p ? " (try)" : "");
    return rows;
}

void lshmoe_adapt_update_arm(lshmoe_ctx_t *ctx, int rows, double remote_bytes,
                             double wire_bytes, double encode_s, int grouped)
{
    lshmoe_adapt_t *a = &ctx->adapt;
    if (!a->on || remote_bytes < (double)ADAPT_MIN_BYTES || wire_bytes <= 0.0)
        return;
    if (!rows)
        a->arm_grouped = grouped;
    if (a->comp_calls == 0)
        return; /* set-up (hasher creation, first touch) is not the arm's cost */
    ewma(&a->arm_enc[rows], &a->arm_samples[rows], encode_s / remote_bytes);
    ewma(&a->arm_ratio[rows], NULL, remote_bytes / wire_bytes);
    if (a->arm_enc[0] < 0.0 || a->arm_enc[1] < 0.0 || a->plain_s_per_byte < 0.0 ||
        a->comp_s_per_byte < 0.0)
        return;
    /* The encoded estimate times the arm that ran; when the other one is
     * now predicted cheaper, the estimate moves by the predicted
     * difference (its next samples are that arm's): else plain, preferred
     * on the full search's cost, would keep the cheaper arm from ever
     * running. Never below that arm's own prediction: a whole call costs
     * at least its encode and its wire bytes, and an estimate moved too
     * low would encode where plain wins until samples pull it back up
     * (fewer than ADAPT_SETTLED samples only lower an estimate). Its
     * settledness stays: unsettling it would loosen the margin of encoded
     * tries where plain wins anyway (fast links). The predicted difference
     * counts each arm's encode once, but a whole call pays it more than
     * once on a loaded host (the peers' encode skew, shared cores): GloVe
     * at budget 0.3, 4 ranks on 2 cores, encoded 1.75 ms per call with
     * the full search and 0.65 ms with the rows, where the arms' costs
     * differed by 0.08 ms. So the next ADAPT_SETTLED samples of the arm
     * switched to may lower the estimate at once (comp_fresh): without
     * that, ranks voted plain for up to 8 calls while it came down. */
    double cost[2];
    arm_costs(a, cost);
    int best = cost[1] < cost[0];
    if (best != a->comp_arm) {
        double moved = a->comp_s_per_byte + cost[best] - cost[a->comp_arm];
        a->comp_s_per_byte = moved > cost[best] ? moved : cost[best];
        a->comp_arm = best;
        a->comp_fresh = ADAPT_SETTLED;
    }
}
