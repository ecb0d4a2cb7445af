/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * MoE mode on device buffers, private to lshmoe/moe_device*.c: a handle's
 * device state (moe_device.c: checks, dispatch, memory;
 * moe_device_combine.c: combine).
 */
#ifndef LSHMOE_MOE_DEVICE_H
#define LSHMOE_MOE_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "lshmoe/common/buf.h"
#include "lshmoe/dev_ws.h"

/* Payload regions on the device start on this boundary, so that the
 * kernels can use wide copies. */
#define MOE_DEV_ALIGN 256u

struct moe_dev {
    lshmoe_dev_ws_t  mem;        /* ops and hooks of the handle's memory    */
    void            *stream;     /* of the last call (for the final wait)   */
    int              uploaded;   /* the layout's tables are on the device   */
    lshmoe_dev_buf_t ent_tok;    /* u64 [nent]: token of each entry         */
    lshmoe_dev_buf_t slot_row;   /* u64 [ntok * topk]: entry or UINT64_MAX  */
    lshmoe_dev_buf_t gate;       /* f32 [ntok * topk]                       */
    lshmoe_dev_buf_t send, recv, junk;
    lshmoe_dev_buf_t bin, bout, bsize;
    lshmoe_dev_buf_t rows;       /* nrows x hidden: E(c) back at the owner  */
    lshmoe_dev_buf_t staged;     /* nent x hidden: the routed tokens        */
    lshmoe_dev_buf_t crows;      /* nrows x hidden: the centroids sent      */
    lshmoe_dev_buf_t ent_row;    /* u64 [nent]: global row of each entry    */
    lshmoe_dev_buf_t ent_coef;   /* f64 [nent]: its compensation factor     */
    lshmoe_buf_t     host;       /* host staging: tables, prefixes read back */
    lshmoe_buf_t     hx;         /* x on the host, for the host clustering  */
    lshmoe_buf_t     hsizes;     /* the peers' group sizes, read back       */
    size_t          *size_off;   /* [nranks] where a peer's group sizes are  */
    size_t          *size_cnt;   /* [nranks] how many                       */
};

static inline size_t moe_dev_round(size_t n)
{
    return (n + MOE_DEV_ALIGN - 1) & ~(size_t)(MOE_DEV_ALIGN - 1);
}

#endif /* LSHMOE_MOE_DEVICE_H */
