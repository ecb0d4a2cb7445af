/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The one place a device codec plugs into the NCCL shim. It is offered each
 * recognised all-to-all of a group before the group is replayed; returning
 * PL_REASON_NONE means it has performed the exchange itself (its sends and
 * receives are then not replayed). This build has no device codec, so
 * every recognised all-to-all passes through, counted as "no-device-codec"
 * (or "dtype" / "disabled" when those come first).
 *
 * A device codec must take its decision the way the MPI path does, so that
 * every rank takes the same one: pl_policy_vote() on this rank's counts,
 * the votes combined across the communicator, then pl_policy_decide(),
 * which also says whether the call goes as tokens (PL_ACTION_LSH) or as
 * rows of PL_ROW_BLOCK elements (PL_ACTION_ROWS, no token size needed).
 * NCCL has no bitwise-OR reduction: spread the vote's 128 bits over 128
 * bytes and reduce them with ncclMax, which is OR for 0/1 values.
 */
#include "bindings/preload/nccl_shim.h"

pl_reason_t pl_nccl_codec_try(const pl_config_t *cfg, const pl_nccl_a2a_t *a2a,
                              const pl_nccl_op_t *ops)
{
    (void)ops;
    if (cfg->policy.disabled)
        return PL_REASON_DISABLED;
    if (!pl_nccl_dtype_is_codec_float(a2a->dtype))
        return PL_REASON_DTYPE;
    return PL_REASON_NO_CODEC;
}
