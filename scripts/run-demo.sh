#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's first command: install what is missing, build, and run the
# main job. For now that is the demonstration on the in-process `self`
# transport (4 ranks, built-in clustered and Gaussian data): bytes saved
# and reconstruction error beside the plain all-to-all.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
lshmoe_install_missing
lshmoe_build "$LSHMOE_BUILD"
exec "$LSHMOE_BUILD/benchmarks/self_demo" "$@"
