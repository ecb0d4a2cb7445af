/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#include "npy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPY_MAX_HEADER (1u << 20) /* numpy itself refuses much less */

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

float npy_half_to_float(unsigned short h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;
    float f;

    if (exp == 0x1fu) {                 /* Inf / NaN, payload kept */
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {              /* normal */
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    } else if (man == 0) {              /* signed zero */
        bits = sign;
    } else {                            /* subnormal: normalise */
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while ((man & 0x400u) == 0);
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ffu) << 13);
    }
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* ---- the header: a Python dict literal --------------------------------- */

typedef struct cursor {
    const char *p, *end;
} cursor_t;

static void skip_ws(cursor_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n'
                             || *c->p == '\r'))
        c->p++;
}

static int eat(cursor_t *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted string without escapes into out (cap bytes); 0 on failure. */
static int parse_str(cursor_t *c, char *out, size_t cap)
{
    char q;
    size_t n = 0;

    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return 0;
    q = *c->p++;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= cap)
            return 0;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return 0;
    c->p++;
    out[n] = '\0';
    return 1;
}

static int parse_word(cursor_t *c, const char *word)
{
    size_t n = strlen(word);

    skip_ws(c);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return 0;
    c->p += n;
    return 1;
}

/* A tuple of non-negative integers, e.g. "(16384, 100)" or "(5,)". */
static int parse_shape(cursor_t *c, uint64_t *dims, int cap, int *ndim)
{
    *ndim = 0;
    if (!eat(c, '('))
        return 0;
    for (;;) {
        uint64_t v = 0;
        int digits = 0;

        if (eat(c, ')'))
            return 1;
        skip_ws(c);
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (v > (UINT64_MAX - 9) / 10)
                return 0;
            v = v * 10 + (uint64_t)(*c->p++ - '0');
            digits++;
        }
        if (c->p < c->end && *c->p == 'L')  /* Python 2 longs */
            c->p++;
        if (digits == 0 || *ndim >= cap)
            return 0;
        dims[(*ndim)++] = v;
        if (!eat(c, ',')) {
            return eat(c, ')');
        }
    }
}

static uint32_t rd_le(const unsigned char *p, int n)
{
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

int npy_parse(const void *buf, size_t len, npy_matrix_t *m, char *err,
              size_t errlen)
{
    const unsigned char *b = buf;
    size_t hlen, hstart, esize, count, nbytes;
    char key[32], descr[32] = "";
    int have_descr = 0, have_order = 0, have_shape = 0, fortran = 0, ndim = 0;
    uint64_t dims[8];
    cursor_t c;

    if (m == NULL)
        return fail(err, errlen, NPY_ERR_INVALID_ARG, "npy: NULL output");
    memset(m, 0, sizeof *m);
    if (buf == NULL && len > 0)
        return fail(err, errlen, NPY_ERR_INVALID_ARG, "npy: NULL buffer");
    if (len < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
        return fail(err, errlen, NPY_ERR_FORMAT, "not a .npy file (bad magic)");
    if (b[6] == 1) {
        hlen = rd_le(b + 8, 2);
        hstart = 10;
    } else if (b[6] == 2 || b[6] == 3) {
        if (len < 12)
            return fail(err, errlen, NPY_ERR_FORMAT, "truncated .npy preamble");
        hlen = rd_le(b + 8, 4);
        hstart = 12;
    } else {
        return fail(err, errlen, NPY_ERR_UNSUPPORTED,
                    "unsupported .npy format version %u.%u", b[6], b[7]);
    }
    if (hlen > NPY_MAX_HEADER || hlen > len - hstart)
        return fail(err, errlen, NPY_ERR_FORMAT,
                    "header length %zu exceeds the file (%zu bytes)", hlen, len);

    c.p = (const char *)b + hstart;
    c.end = c.p + hlen;
    if (!eat(&c, '{'))
        return fail(err, errlen, NPY_ERR_FORMAT, "header is not a dict");
    while (!eat(&c, '}')) {
        if (!parse_str(&c, key, sizeof key) || !eat(&c, ':'))
            return fail(err, errlen, NPY_ERR_FORMAT, "malformed header dict");
        if (strcmp(key, "descr") == 0 && !have_descr) {
            if (!parse_str(&c, descr, sizeof descr))
                return fail(err, errlen, NPY_ERR_UNSUPPORTED,
                            "header: 'descr' is not a simple dtype string");
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0 && !have_order) {
            if (parse_word(&c, "True"))
                fortran = 1;
            else if (!parse_word(&c, "False"))
                return fail(err, errlen, NPY_ERR_FORMAT,
                            "header: bad 'fortran_order'");
            have_order = 1;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            if (!parse_shape(&c, dims, 8, &ndim))
                return fail(err, errlen, NPY_ERR_FORMAT, "header: bad 'shape'");
            have_shape = 1;
        } else {
            return fail(err, errlen, NPY_ERR_FORMAT,
                        "header: unexpected or repeated key '%s'", key);
        }
        if (!eat(&c, ',')) {
            if (!eat(&c, '}'))
                return fail(err, errlen, NPY_ERR_FORMAT, "malformed header dict");
            break;
        }
    }
    if (!have_descr || !have_order || !have_shape)
        return fail(err, errlen, NPY_ERR_FORMAT,
                    "header lacks 'descr', 'fortran_order' or 'shape'");
    if (strcmp(descr, "<f4") == 0)
        esize = 4;
    else if (strcmp(descr, "<f2") == 0)
        esize = 2;
    else
        return fail(err, errlen, NPY_ERR_UNSUPPORTED,
                    "dtype '%s' unsupported (need '<f4' or '<f2')", descr);
    if (fortran)
        return fail(err, errlen, NPY_ERR_UNSUPPORTED,
                    "Fortran-order arrays unsupported");
    if (ndim != 2)
        return fail(err, errlen, NPY_ERR_UNSUPPORTED,
                    "need a 2-D array, got %d-D", ndim);
    if (dims[0] == 0 || dims[1] == 0)
        return fail(err, errlen, NPY_ERR_UNSUPPORTED, "empty array (%llu x %llu)",
                    (unsigned long long)dims[0], (unsigned long long)dims[1]);
    if (dims[0] > SIZE_MAX / dims[1]
        || dims[0] * dims[1] > SIZE_MAX / sizeof(float))
        return fail(err, errlen, NPY_ERR_FORMAT, "shape (%llu, %llu) overflows",
                    (unsigned long long)dims[0], (unsigned long long)dims[1]);
    count = (size_t)(dims[0] * dims[1]);
    nbytes = count * esize;
    if (len - hstart - hlen != nbytes)
        return fail(err, errlen, NPY_ERR_FORMAT,
                    "data is %zu bytes, shape (%zu, %zu) of %s needs %zu",
                    len - hstart - hlen, (size_t)dims[0], (size_t)dims[1],
                    descr, nbytes);

    m->data = malloc(count * sizeof(float));
    if (m->data == NULL)
        return fail(err, errlen, NPY_ERR_NO_MEMORY,
                    "out of memory for %zu floats", count);
    const unsigned char *d = b + hstart + hlen;
    for (size_t i = 0; i < count; i++) {
        if (esize == 4) {
            uint32_t u = rd_le(d + 4 * i, 4);
            memcpy(&m->data[i], &u, sizeof u);
        } else {
            m->data[i] = npy_half_to_float((unsigned short)rd_le(d + 2 * i, 2));
        }
    }
    m->rows = (size_t)dims[0];
    m->cols = (size_t)dims[1];
    m->src_bits = (int)esize * 8;
    return NPY_OK;
}

int npy_load(const char *path, npy_matrix_t *m, char *err, size_t errlen)
{
    FILE *f;
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc;

    if (m == NULL || path == NULL)
        return fail(err, errlen, NPY_ERR_INVALID_ARG, "npy: NULL argument");
    memset(m, 0, sizeof *m);
    f = fopen(path, "rb");
    if (f == NULL)
        return fail(err, errlen, NPY_ERR_IO, "%s: %s", path, strerror(errno));
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : (size_t)1 << 20;
            unsigned char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return fail(err, errlen, NPY_ERR_NO_MEMORY,
                            "%s: out of memory reading the file", path);
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return fail(err, errlen, NPY_ERR_IO, "%s: read error", path);
    }
    fclose(f);
    rc = npy_parse(buf, len, m, err, errlen);
    free(buf);
    if (rc != NPY_OK && err != NULL && errlen > 0) {
        /* prefix the file name */
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%s", err);
        snprintf(err, errlen, "%s: %s", path, tmp);
    }
    return rc;
}

void npy_free(npy_matrix_t *m)
{
    if (m == NULL)
        return;
    free(m->data);
    memset(m, 0, sizeof *m);
}
