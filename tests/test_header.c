/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* lshmoe.h and lshmoe_moe.h must compile on their own as strict C11 (and
 * as C++, in test_header_cpp.cpp): meson builds this file with -std=c11
 * -pedantic -Werror. Running it checks that the initializers fill what
 * they claim. */
#include "lshmoe_moe.h"
#include "lshmoe_codec.h"

int main(void)
{
    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    lshmoe_comm_desc_t desc = LSHMOE_COMM_DESC_INITIALIZER;
    lshmoe_stats_t stats = LSHMOE_STATS_INITIALIZER;
    lshmoe_moe_config_t moe = LSHMOE_MOE_CONFIG_INITIALIZER;
    lshmoe_moe_stats_t moe_stats = LSHMOE_MOE_STATS_INITIALIZER;
    int ok = cfg.size == sizeof cfg && cfg.magic == LSHMOE_MAGIC &&
             cfg.transport == NULL && cfg.min_ratio < 0.0 &&
             cfg.residual_bits == LSHMOE_UNSET_INT &&
             desc.size == sizeof desc && stats.size == sizeof stats &&
             moe.size == sizeof moe && moe.magic == LSHMOE_MAGIC &&
             moe.expert_rank == NULL && moe.compensation == LSHMOE_UNSET_INT &&
             moe_stats.size == sizeof moe_stats && moe_stats.time_exchange_s == 0.0 &&
             lshmoe_get_version() == LSHMOE_VERSION_CODE;
    return ok ? 0 : 1;
}
