/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* Shared by the NCCL shim (shim_nccl.c) and its codec hook (nccl_codec.c). */
#ifndef LSHMOE_PRELOAD_NCCL_SHIM_H
#define LSHMOE_PRELOAD_NCCL_SHIM_H

#include "bindings/preload/nccl_group.h"
#include "bindings/preload/preload.h"

/* See nccl_codec.c. */
pl_reason_t pl_nccl_codec_try(const pl_config_t *cfg, const pl_nccl_a2a_t *a2a,
                              const pl_nccl_op_t *ops);

#endif /* LSHMOE_PRELOAD_NCCL_SHIM_H */
