/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * A small reader for numpy .npy files, for the benchmarks: 2-D, C order,
 * little-endian float32 ('<f4') or float16 ('<f2'), format versions 1.0,
 * 2.0 and 3.0. The data comes back as a malloc'd float32 array (fp16 is
 * widened exactly). Every malformed input is an error with a message, never
 * a crash: bad magic, unknown version, header that is not the dict numpy
 * writes, other dtypes, Fortran order, shapes that are not 2-D or are empty,
 * size overflows, truncated or over-long data.
 */
#ifndef LSHMOE_BENCH_NPY_H
#define LSHMOE_BENCH_NPY_H

#include <stddef.h>

enum {
    NPY_OK              = 0,
    NPY_ERR_IO          = -1,  /* cannot open or read the file             */
    NPY_ERR_FORMAT      = -2,  /* not a well-formed .npy                   */
    NPY_ERR_UNSUPPORTED = -3,  /* well-formed, but not 2-D <f4/<f2 C order */
    NPY_ERR_NO_MEMORY   = -4,
    NPY_ERR_INVALID_ARG = -5   /* NULL output pointer                      */
};

typedef struct npy_matrix {
    float  *data;  /* rows * cols floats, row-major; free() it */
    size_t  rows;
    size_t  cols;
    int     src_bits;  /* 32 or 16: the element type in the file */
} npy_matrix_t;

/*
 * Reads `path` into *m. On error returns a negative NPY_ERR_* code, leaves
 * *m zeroed and writes a one-line message (naming the file) into err
 * (errlen bytes, always terminated; err may be NULL).
 */
int npy_load(const char *path, npy_matrix_t *m, char *err, size_t errlen);

/* Same, from `len` bytes in memory (the whole file). */
int npy_parse(const void *buf, size_t len, npy_matrix_t *m, char *err,
              size_t errlen);

/* Frees m->data and zeroes *m. NULL is ignored. */
void npy_free(npy_matrix_t *m);

/* Widens an IEEE binary16 value to float (exact; subnormals, Inf, NaN). */
float npy_half_to_float(unsigned short h);

#endif /* LSHMOE_BENCH_NPY_H */
