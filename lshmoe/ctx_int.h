/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* The context object, private to lshmoe/. */
#ifndef LSHMOE_CTX_INT_H
#define LSHMOE_CTX_INT_H

#include "collectives/transport.h"
#include "lshmoe.h"
#include "lshmoe/codec.h"
#include "lshmoe/common/buf.h"
#include "lshmoe/common/error.h"
#include "lshmoe/dev_ws.h"
#include "lshmoe/pool.h"

#define LSHMOE_CTX_MAGIC 0x4C534358u /* "LSCX": catches use of a freed or bogus handle */

/*
 * The adaptive policy's running estimates (LSHMOE_ADAPT, docs/api.md
 * "Adaptive policy"), per rank and context. Each estimate is an EWMA
 * that starts from the smallest of its first ADAPT_SETTLED samples,
 * negative while no sample has been taken. Not reset by
 * lshmoe_stats_reset(): they describe the machine, not the counters.
 */
#define ADAPT_ALPHA         0.3           /* EWMA weight of a new sample          */
#define ADAPT_EXPLORE_MIN   4u            /* calls between tries of the other mode... */
#define ADAPT_EXPLORE_MAX   256u          /* ...doubling while the tries confirm  */
#define ADAPT_MIN_BYTES     (64u * 1024u) /* remote bytes a timing sample needs   */
#define ADAPT_PAY_MARGIN    0.9           /* an encoded try must be predicted to
                                             cost under 0.9x a plain call       */
#define ADAPT_CLEAR_WIN     0.7           /* encoded calls under 0.7x plain: tries
                                             of plain wait the longest interval */
#define ADAPT_ENCODE_MARGIN 0.9           /* encoding preferred only under 0.9x
                                             plain (own time understates the
                                             collective's, adapt.c)           */
#define ADAPT_ARM_GAIN_MAX  5.0           /* rows-only encodes up to ~5x faster
                                             than the full search (GloVe at
                                             budget 0.3: 4.6x)                */
#define ADAPT_FIRST_PLAIN   2u            /* plain calls timed before comparing  */
#define ADAPT_SETTLED       3u            /* samples before an estimate is trusted
                                             to rule out a try on its own        */
#define ADAPT_SPIKE         2.0           /* a settled estimate takes a sample as
                                             at most 2x itself                 */
#define ADAPT_DOUBT_MARGIN  1.5           /* an unsettled estimate still earns a
                                             real try up to 1.5x plain          */

typedef struct lshmoe_adapt {
    int      on;               /* LSHMOE_ADAPT at context creation          */
    double   comp_s_per_byte;  /* whole-call seconds per remote token byte,
                                  calls that encoded                       */
    double   plain_s_per_byte; /* the same for calls sent plain            */
    uint64_t comp_calls;       /* encoded calls seen (the first is not sampled) */
    unsigned comp_samples;     /* samples in comp_s_per_byte, saturating   */
    unsigned plain_samples;    /* samples in plain_s_per_byte, saturating  */
    unsigned plain_asked;      /* plain calls chosen to time plain (<= 2)  */
    unsigned since_explore;    /* calls since the other mode was last tried */
    unsigned explore_every;    /* calls between such tries (4 .. 256)       */
    int      prefer_plain;     /* the mode the averages prefer now          */
    double   comp_ratio;       /* remote token bytes / wire bytes of encoded
                                  calls (EWMA; negative: none yet)          */
    int      flat;             /* before any encoded sample: the last probe
                                  found the data below MIN_RATIO            */
    int      agreed;           /* mode the ranks' votes chose for the next
                                  call: 1 plain, 0 encode, -1 none          */
    int      agreed_try;       /* ... and it is a rank's try                */
    int      voted_try;        /* this rank's last vote was a try           */
    /* The budget codec's search in encoded calls (lshmoe_adapt_rows_arm):
     * [0] full (clusterings too), [1] the row formats only. */
    double   arm_enc[2];       /* encode seconds per remote token byte      */
    double   arm_ratio[2];     /* remote token bytes / wire bytes           */
    unsigned arm_samples[2];
    int      arm_rows;         /* the arm the estimates prefer now          */
    int      arm_grouped;      /* the last full search grouped tokens       */
    int      comp_arm;         /* the arm comp_s_per_byte stands for        */
    unsigned comp_fresh;       /* encoded samples that may still only lower
                                  comp_s_per_byte (after an arm switch)     */
    unsigned arm_wait;         /* calls before the untimed arm is asked again */
    unsigned arm_since;        /* encoded calls since the other arm's try   */
    unsigned arm_every;        /* ... between its tries (4 .. 256)          */
} lshmoe_adapt_t;

struct lshmoe_ctx {
    uint32_t               magic;
    int                    rank;
    int                    nranks;
    lshmoe_config_t        cfg;      /* resolved: every field set, transport NULL */
    const lshmoe_tl_ops_t *tl_ops;
    void                  *tl;
    lshmoe_codec_t        *codec;
    /* LSHMOE_THREADS: codec work of a call split over peers; codecs[t] is
     * pool thread t's (codecs[0] == codec, the caller's) */
    lshmoe_pool_t         *pool;
    lshmoe_codec_t       **codecs;
    int                    nthreads;
    /* the budget search's warm start per destination rank (one stream of
     * segments each, whichever thread encodes them) */
    lshmoe_codec_warm_t   *peer_warm;
    int                    self_world; /* self transport: ranks share cores */
    lshmoe_stats_t         stats;
    lshmoe_adapt_t         adapt;
    char                   last_error[LSHMOE_ERRMSG_LEN];
    uint64_t               a2a_calls; /* lshmoe_alltoallv calls joined (metadata seq) */
    int                    in_use;    /* a collective runs on it (atomic)    */
    /* alltoallv scratch, grow-only */
    lshmoe_buf_t           send_stage;
    lshmoe_buf_t           recv_stage;
    lshmoe_buf_t           meta;     /* per-peer metadata, both directions   */
    lshmoe_buf_t           ptrs;     /* per-peer pointers and sizes          */
    lshmoe_buf_t           jobs;     /* per-peer codec job results           */
    /* device data path (codec_device.c): workspace and hashers, grow-only */
    lshmoe_dev_ws_t        dev;
    lshmoe_buf_t           dev_segs; /* per-peer device codec segments      */
};

/* Resolves `user` (NULL = all unset) into a complete config: explicit
 * values are range-checked, unset ones come from LSHMOE_* or defaults. */
lshmoe_status_t lshmoe_config_resolve(const lshmoe_config_t *user,
                                      lshmoe_config_t *out);

/* The segment codec's parameters for a resolved config (codec mode and
 * error budget included): one place for contexts and the public codec API
 * alike. */
lshmoe_status_t lshmoe_config_codec_params(const lshmoe_config_t *c, lshmoe_codec_params_t *cp);

/* Records the thread's last error message in the context and returns st. */
lshmoe_status_t lshmoe_ctx_fail(lshmoe_ctx_t *ctx, lshmoe_status_t st);

/* Is ctx a live context? */
int lshmoe_ctx_valid(const lshmoe_ctx_t *ctx);

/*
 * The one-thread-at-a-time contract, enforced: a collective claims the
 * context with an atomic flag for its whole duration. A second call while
 * it is claimed (another thread, or an expert hook calling back into the
 * library) gets LSHMOE_ERR_INVALID_ARG with the message in the thread's
 * last error only: the context's own belongs to the call that holds it.
 * One atomic exchange per call; never blocks.
 */
lshmoe_status_t lshmoe_ctx_enter(lshmoe_ctx_t *ctx, const char *what);
void lshmoe_ctx_leave(lshmoe_ctx_t *ctx);

#endif /* LSHMOE_CTX_INT_H */
