/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Status names and strings. They live in the bottom layer because every
 * layer formats messages with them (common/error.c, the transports), and
 * common/ includes nothing above it.
 */
#include "lshmoe.h"

const char *lshmoe_status_name(lshmoe_status_t status)
{
    switch (status) {
#define STATUS_NAME_(name, value, text) case LSHMOE_##name: return #name;
    LSHMOE_STATUS_MAP(STATUS_NAME_)
#undef STATUS_NAME_
    }
    return "UNKNOWN";
}

const char *lshmoe_status_string(lshmoe_status_t status)
{
    switch (status) {
#define STATUS_TEXT_(name, value, text) case LSHMOE_##name: return text;
    LSHMOE_STATUS_MAP(STATUS_TEXT_)
#undef STATUS_TEXT_
    }
    return "unknown status";
}
