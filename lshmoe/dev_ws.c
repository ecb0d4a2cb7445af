/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* The context's device workspace (dev_ws.h). */
#include <string.h>

#include "lshmoe/common/error.h"
#include "lshmoe/dev_wait.h"
#include "lshmoe/dev_ws.h"

static void dev_free(lshmoe_dev_ws_t *ws, lshmoe_dev_buf_t *buf, void *stream)
{
    if (buf->ptr == NULL)
        return;
    if (ws->free_fn != NULL)
        ws->free_fn(ws->user, buf->ptr, buf->cap, stream);
    else
        ws->ops->free(buf->ptr);
    ws->bytes -= buf->cap;
    buf->ptr = NULL;
    buf->cap = 0;
}

lshmoe_status_t lshmoe_dev_reserve(lshmoe_dev_ws_t *ws, lshmoe_dev_buf_t *buf, size_t bytes,
                                   void *stream)
{
    if (bytes <= buf->cap && buf->ptr != NULL)
        return LSHMOE_OK;
    /* Grow by half again at least, so a slowly growing size settles. */
    size_t want = buf->cap + buf->cap / 2;
    want = want > bytes ? want : bytes;
    want = (want + 255) & ~(size_t)255;
    dev_free(ws, buf, stream);
    void *p = NULL;
    if (ws->alloc_fn != NULL) {
        if (ws->alloc_fn(ws->user, want, stream, &p) != 0 || p == NULL)
            return lshmoe_error(LSHMOE_ERR_NO_MEMORY,
                                "device allocator hook refused %zu bytes", want);
    } else {
        LSHMOE_CHECK(ws->ops->alloc(want, &p));
    }
    buf->ptr = p;
    buf->cap = want;
    ws->bytes += want;
    ws->allocs++;
    return LSHMOE_OK;
}

lshmoe_status_t lshmoe_dev_hasher(lshmoe_dev_ws_t *ws, const lshmoe_kn_lsh_params_t *params,
                                  size_t hidden, void *stream, const void **hasher_p)
{
    for (int i = 0; i < LSHMOE_DEV_HASHERS; i++)
        if (ws->hashers[i].hasher != NULL && ws->hashers[i].hidden == hidden) {
            *hasher_p = ws->hashers[i].hasher;
            return LSHMOE_OK;
        }
    unsigned slot = ws->next_hasher++ % LSHMOE_DEV_HASHERS;
    /* Queued hashing may still read the hasher replaced, and creating one
     * synchronises the stream (its signs are drawn there): both must not
     * wait for queued work that never ends, so wait, bounded, first. */
    LSHMOE_CHECK(lshmoe_dev_wait(ws, stream, "a device hasher"));
    if (ws->hashers[slot].hasher != NULL) {
        ws->ops->hasher_destroy(ws->hashers[slot].hasher);
        ws->hashers[slot].hasher = NULL;
    }
    void *h = NULL;
    LSHMOE_CHECK(ws->ops->hasher_create(params, hidden, stream, &h));
    ws->hashers[slot].hasher = h;
    ws->hashers[slot].hidden = hidden;
    *hasher_p = h;
    return LSHMOE_OK;
}

void lshmoe_dev_buf_release(lshmoe_dev_ws_t *ws, lshmoe_dev_buf_t *buf, void *stream)
{
    if (ws->ops != NULL)
        dev_free(ws, buf, stream);
}

void lshmoe_dev_ws_release(lshmoe_dev_ws_t *ws, void *stream)
{
    if (ws->ops == NULL)
        return;
    /* The transport may be gone already (context destruction): nothing to
     * abort. Memory that work still queued after the timeout may use is
     * forgotten (left allocated), never freed under that work. */
    ws->tl_ops = NULL;
    ws->tl = NULL;
    const int idle = lshmoe_dev_wait(ws, stream, "releasing the device workspace") ==
                     LSHMOE_OK;
    lshmoe_dev_buf_t *bufs[] = {&ws->send_stage, &ws->recv_stage, &ws->keys, &ws->cluster_of,
                                &ws->sizes,      &ws->starts,     &ws->members, &ws->guard_ws,
                                &ws->group_ws,   &ws->small,      &ws->checksum_ws};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        if (idle) {
            dev_free(ws, bufs[i], stream);
        } else {
            ws->bytes -= bufs[i]->cap;
            bufs[i]->ptr = NULL;
            bufs[i]->cap = 0;
        }
    }
    for (int i = 0; i < LSHMOE_DEV_HASHERS; i++) {
        if (idle && ws->hashers[i].hasher != NULL)
            ws->ops->hasher_destroy(ws->hashers[i].hasher);
        ws->hashers[i].hasher = NULL;
    }
    lshmoe_buf_free(&ws->host_small);
    lshmoe_buf_free(&ws->host_flags);
}
