// SPDX-License-Identifier: Apache-2.0
// Copyright (c) 2026 the lshmoe authors

// lshmoe.h must compile as C++17 with -Wall -Wextra -pedantic -Werror and
// link against the C library (extern "C").
#include "lshmoe.h"

int main()
{
    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    lshmoe_comm_desc_t desc = LSHMOE_COMM_DESC_INITIALIZER;
    bool ok = cfg.size == sizeof cfg && desc.magic == LSHMOE_MAGIC &&
              lshmoe_get_version() == LSHMOE_VERSION_CODE &&
              lshmoe_status_name(LSHMOE_ERR_MPI)[0] == 'E';
    return ok ? 0 : 1;
}
