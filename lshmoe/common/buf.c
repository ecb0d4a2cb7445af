/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#include <stdlib.h>
#include <string.h>

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

lshmoe_status_t lshmoe_copy_sized(void *dst, const void *src, size_t src_size,
                                  size_t min_size, const char *what,
                                  const char *initializer)
{
    uint32_t caller_size;
    memcpy(&caller_size, dst, sizeof caller_size);
    if (caller_size < min_size)
        return lshmoe_error(LSHMOE_ERR_NOT_INIT, "%s size %u is too small: fill it with %s",
                            what, caller_size, initializer);
    memcpy(dst, src, caller_size < src_size ? caller_size : src_size);
    memcpy(dst, &caller_size, sizeof caller_size);
    return LSHMOE_OK;
}
