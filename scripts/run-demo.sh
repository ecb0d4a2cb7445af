#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's first command: install what is missing, build, and run the
# main job, the mpirun benchmark sweep. This name is kept for the README and
# CI; the work is done by scripts/run-sweep.sh (same arguments). The former
# in-process demonstration is ./build/benchmarks/self_demo.
exec bash "$(dirname "${BASH_SOURCE[0]}")/run-sweep.sh" "$@"
