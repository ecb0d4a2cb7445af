/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Internals of the NCCL transport that the registry and tests reach. Not
 * installed, not exported from the shared library (hidden visibility).
 */
#ifndef LSHMOE_TL_NCCL_INT_H
#define LSHMOE_TL_NCCL_INT_H

#include "collectives/transport.h"

/* The table the registry lists when lshmoe is built with NCCL. */
extern const lshmoe_tl_ops_t lshmoe_tl_nccl_ops;

#endif /* LSHMOE_TL_NCCL_INT_H */
