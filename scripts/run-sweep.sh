#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what is missing (scripts/setup.sh), builds ./build, then runs the
# mpirun benchmark sweep (benchmarks/sweep.py) with a grid sized to finish in
# a few minutes on a 2-core machine. Results land in ./out/sweep (override
# with SWEEP_OUT). Arguments replace the default grid, e.g.
#       bash scripts/run-sweep.sh --quick
#       bash scripts/run-sweep.sh --data clustered --hashes 6 --links 1,10
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

lshmoe_install_missing
lshmoe_build "$LSHMOE_BUILD"

# Without arguments: both data sets, hashes 2,6,10, links 1..400 Gb/s, 512
# bf16 tokens of width 1024 per peer, -n 20 -w 5 (about 40 s of runs on 2
# cores, after the build). With arguments: sweep.py's own
# defaults plus what you give (see /usr/bin/python3 benchmarks/sweep.py -h).
if [ $# -eq 0 ]; then
    set -- --np 4 --data clustered --data gaussian --hashes 2,6,10 \
           --links 1,10,25,100,400 --tokens 512 --hidden 1024 --dtype bf16 -n 20 -w 5
fi
# Debian's interpreter: the one apt gave numpy and matplotlib.
exec /usr/bin/python3 "$LSHMOE_ROOT/benchmarks/sweep.py" \
    --build "$LSHMOE_BUILD" --out "${SWEEP_OUT:-$LSHMOE_ROOT/out/sweep}" "$@"
