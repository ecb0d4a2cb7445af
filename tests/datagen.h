/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Deterministic data for tests and benchmarks. Everything is a pure function
 * of (seed, index), so a receiver can recompute what a sender sent, and a
 * benchmark's data set is the same on every run and every machine.
 */
#ifndef LSHMOE_DATAGEN_H
#define LSHMOE_DATAGEN_H

#include <stddef.h>
#include <stdint.h>

#include "lshmoe.h"

/* Counter-based generator: the same (seed, index) always gives the same
 * value, so a receiver can recompute what a sender sent. */
uint64_t lt_hash64(uint64_t seed, uint64_t index);
/* Uniform in [0, 1). */
double lt_uniform(uint64_t seed, uint64_t index);
/* Standard normal (Box-Muller over two counter draws). */
double lt_normal(uint64_t seed, uint64_t index);

/* ntokens x hidden i.i.d. N(0, 1) floats: no structure to exploit. */
void lt_gen_gaussian(float *out, size_t ntokens, size_t hidden, uint64_t seed);

/*
 * ntokens x hidden floats around `ncenters` random centers (N(0,1) each):
 * token i = center[c_i] + noise * N(0,1), with c_i drawn uniformly. noise
 * 0 gives exact duplicates.
 */
void lt_gen_clustered(float *out, size_t ntokens, size_t hidden,
                      size_t ncenters, double noise, uint64_t seed);

/* Is `name` a built-in data set ("clustered" or "gaussian")? */
int lt_gen_is_builtin(const char *name);

/* A malloc'd ntokens x hidden array of the built-in data set `name`
 * (clustered: ncenters, noise); the caller frees it. NULL when `name` is
 * not built in or memory runs out. */
float *lt_gen_named(const char *name, size_t ntokens, size_t hidden, size_t ncenters,
                    double noise, uint64_t seed);

/* Relative L2 error ||a - b|| / ||b|| over n floats. */
double lt_rel_l2(const float *a, const float *b, size_t n);

/* Converts n floats to fp16/bf16 storage (via lshmoe/common/dtype.h). */
void lt_to_dtype(const float *src, size_t n, lshmoe_dtype_t dtype, void *dst);

#endif /* LSHMOE_DATAGEN_H */
