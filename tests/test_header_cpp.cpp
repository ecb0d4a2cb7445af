// SPDX-License-Identifier: Apache-2.0
// Copyright (c) 2026 the lshmoe authors

// lshmoe.h and lshmoe_moe.h must compile as C++17 with -Wall -Wextra -pedantic -Werror and
// link against the C library (extern "C").
#include "lshmoe_moe.h"
#include "lshmoe_codec.h"

int main()
{
    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    lshmoe_comm_desc_t desc = LSHMOE_COMM_DESC_INITIALIZER;
    lshmoe_moe_config_t moe = LSHMOE_MOE_CONFIG_INITIALIZER;
    bool ok = cfg.size == sizeof cfg && desc.magic == LSHMOE_MAGIC &&
              moe.size == sizeof moe && moe.expert_rank == nullptr &&
              lshmoe_get_version() == LSHMOE_VERSION_CODE &&
              lshmoe_status_name(LSHMOE_ERR_MPI)[0] == 'E';
    return ok ? 0 : 1;
}
