/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * LSHMOE_HD marks the static inline functions of kernels/common/ that the
 * CPU kernels (compiled as C) and the CUDA kernels (compiled by nvcc as
 * C++) share, so both backends run one source of the arithmetic: empty in
 * C, __host__ __device__ under nvcc. Guarded, so that any header of
 * kernels/common/ may define it first in the same way.
 */
#ifndef LSHMOE_KN_HD_H
#define LSHMOE_KN_HD_H

#ifndef LSHMOE_HD
#ifdef __CUDACC__
#define LSHMOE_HD __host__ __device__
#else
#define LSHMOE_HD
#endif
#endif

#endif /* LSHMOE_KN_HD_H */
