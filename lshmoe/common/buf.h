/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Grow-only scratch buffers: the data path reserves what a call needs and
 * keeps it, so steady-state calls allocate nothing.
 */
#ifndef LSHMOE_COMMON_BUF_H
#define LSHMOE_COMMON_BUF_H

#include <stddef.h>

#include "lshmoe.h"

typedef struct lshmoe_buf {
    void  *ptr;
    size_t cap;
} lshmoe_buf_t;

/* Makes buf->ptr hold at least `bytes` (64-byte aligned; contents are not
 * kept). Returns LSHMOE_OK or LSHMOE_ERR_NO_MEMORY (with a message). */
lshmoe_status_t lshmoe_buf_reserve(lshmoe_buf_t *buf, size_t bytes);
void lshmoe_buf_free(lshmoe_buf_t *buf);

/*
 * Copies a versioned struct (its first field: uint32_t size) out to a
 * caller whose header may be older or newer: min(dst->size, src_size)
 * bytes, dst->size kept. Returns LSHMOE_ERR_NOT_INIT (naming `what` and
 * the `initializer` to use) when dst->size is below min_size.
 */
lshmoe_status_t lshmoe_copy_sized(void *dst, const void *src, size_t src_size,
                                  size_t min_size, const char *what,
                                  const char *initializer);

/* a * b, or LSHMOE_ERR_INVALID_ARG when it overflows size_t. */
lshmoe_status_t lshmoe_mul_size(size_t a, size_t b, size_t *out);

#endif /* LSHMOE_COMMON_BUF_H */
