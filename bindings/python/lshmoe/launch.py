# SPDX-License-Identifier: Apache-2.0
"""Starts N local processes the env:// way torchrun does.

    python3 -m lshmoe.launch --nproc-per-node 4 train.py [args...]
    python3 -m lshmoe.launch --nproc-per-node 4 -m package.module [args...]

Each child gets RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR
(127.0.0.1) and MASTER_PORT (a free port), so
torch.distributed.init_process_group(backend, init_method="env://") works
unchanged. Where `python3 -m torch.distributed.run` works, use it instead:
nothing in the script changes. One node only. If a child fails, the others
are terminated and the launcher exits with the first failing status.
"""
import argparse
import os
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m lshmoe.launch", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nproc-per-node", "--nproc_per_node", type=int, required=True)
    ap.add_argument("--master-port", "--master_port", type=int, default=0,
                    help="default: a free port")
    ap.add_argument("-m", dest="module", action="store_true",
                    help="run the target as a module (python -m)")
    ap.add_argument("target")
    ap.add_argument("args", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    n = a.nproc_per_node
    if n < 1:
        ap.error("--nproc-per-node must be >= 1")
    port = a.master_port or free_port()
    cmd = [sys.executable] + (["-m"] if a.module else []) + [a.target] + a.args
    procs = []
    for r in range(n):
        env = dict(os.environ, RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(n),
                   LOCAL_WORLD_SIZE=str(n), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        procs.append(subprocess.Popen(cmd, env=env))
    status = 0
    live = list(procs)
    while live:
        for p in list(live):
            rc = p.poll()
            if rc is None:
                continue
            live.remove(p)
            if rc != 0 and status == 0:
                status = rc
                sys.stderr.write("lshmoe.launch: rank %d exited with %d; stopping the "
                                 "others\n" % (procs.index(p), rc))
                for q in live:
                    q.terminate()
        time.sleep(0.05)
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main())
