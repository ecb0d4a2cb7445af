/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#include <stdlib.h>

#include "lshmoe/common/buf.h"
#include "lshmoe/common/error.h"

lshmoe_status_t lshmoe_buf_reserve(lshmoe_buf_t *buf, size_t bytes)
{
    if (bytes <= buf->cap)
        return LSHMOE_OK;
    /* Grow by at least 1.5x so slowly growing calls do not reallocate each
     * time; round to the 64-byte alignment aligned_alloc requires. */
    size_t want = bytes + bytes / 2;
    if (want < bytes)
        want = bytes;
    want = (want + 63) & ~(size_t)63;
    if (want < bytes)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "workspace of %zu bytes is too large", bytes);
    void *p = aligned_alloc(64, want);
    if (p == NULL)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "cannot allocate a workspace of %zu bytes", want);
    free(buf->ptr);
    buf->ptr = p;
    buf->cap = want;
    return LSHMOE_OK;
}

void lshmoe_buf_free(lshmoe_buf_t *buf)
{
    free(buf->ptr);
    buf->ptr = NULL;
    buf->cap = 0;
}

lshmoe_status_t lshmoe_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "size %zu x %zu overflows", a, b);
    *out = a * b;
    return LSHMOE_OK;
}
