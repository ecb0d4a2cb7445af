/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The metadata record every data collective (lshmoe_alltoallv and the four
 * MoE calls) sends each peer before its data, and the checks of its common
 * header. One layout for all of them, so that ranks in different
 * collectives still exchange records of one size, and one header checked
 * before anything else is read, so that such ranks fail instead of reading
 * each other's fields (docs/wire-format.md, "Metadata record").
 *
 * Every rank receives every rank's header, and the header holds only what
 * a rank says of itself (not of the peer it sends to), so all ranks reach
 * the same verdict from the same records: they all fail, together, before
 * the data round.
 */
#ifndef LSHMOE_META_H
#define LSHMOE_META_H

#include <stdint.h>

#include "lshmoe.h"

#define LSHMOE_META_MAGIC 0x4C534D44u /* "LSMD" */

/* Which collective a record belongs to. Values are wire format. */
typedef enum lshmoe_coll {
    LSHMOE_COLL_ALLTOALLV        = 1,
    LSHMOE_COLL_MOE_DISPATCH     = 2,
    LSHMOE_COLL_MOE_COMBINE      = 3,
    LSHMOE_COLL_MOE_COMBINE_BWD  = 4,
    LSHMOE_COLL_MOE_DISPATCH_BWD = 5
} lshmoe_coll_t;

typedef struct lshmoe_meta {
    /* common header */
    uint32_t magic;   /* LSHMOE_META_MAGIC                                  */
    uint32_t coll;    /* lshmoe_coll_t                                      */
    uint64_t seq;     /* alltoallv: call number on the context; MoE: the
                         dispatch the call belongs to                       */
    int32_t  dtype;   /* lshmoe_dtype_t of the tokens                       */
    int32_t  status;  /* the sender's own status before the exchange        */
    uint64_t hidden;  /* elements per token                                 */
    /* per-peer body */
    uint64_t count;   /* alltoallv: tokens for this peer; MoE: 0            */
    uint64_t bytes;   /* payload bytes for this peer                        */
    uint32_t flags;   /* alltoallv: META_F_* (alltoallv.c); MoE: 0          */
    uint32_t reserved;
} lshmoe_meta_t;

/* The header fields of a record (the body is zeroed). */
lshmoe_meta_t lshmoe_meta_header(lshmoe_coll_t coll, uint64_t seq, lshmoe_dtype_t dtype,
                                 uint64_t hidden, lshmoe_status_t status);

/*
 * Checks the headers of in[0..nranks-1] (rank p's record to this rank) in
 * this order: magic (LSHMOE_ERR_CORRUPT), collective kind (MISMATCH: "rank 0
 * called alltoallv #3 while rank 1 called moe dispatch #4"), each rank's
 * status (LSHMOE_ERR_PEER naming the rank), then sequence number, dtype and
 * hidden against rank 0's (MISMATCH). `check_seq` 0 skips the sequence
 * number. LSHMOE_OK when all agree.
 */
lshmoe_status_t lshmoe_meta_check(const lshmoe_meta_t *in, int nranks, int check_seq);

/* "alltoallv", "moe dispatch", ... */
const char *lshmoe_coll_name(uint32_t coll);

#endif /* LSHMOE_META_H */
