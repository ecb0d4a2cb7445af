#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""An ordinary mpi4py program (it knows nothing of lshmoe): comm.Alltoall and
comm.Alltoallv on numpy buffers of int32, float64 and float32, with uneven
counts. Every value is a function of (case, sender, receiver), so each rank
checks what it received and prints, per case,
  case <name> rank <r> exact|lossy err <max relative L2> sum <hex>
Integer and float64 cases must be exact; float32 cases within
LSHMOE_MAX_ERROR (default 0.5) per segment. Token size 64 floats (one case
adds 3 floats to one segment per rank, so no token size divides it).

With --glove PATH it instead sends the GloVe token stream (float32
[N, 100]): rank r owns rows [r*N/size, (r+1)*N/size) and sends an uneven
share to every peer (comm.Alltoallv), then reports the relative L2 error of
what it received (over all remote segments, and the worst segment).
"""
import argparse
import hashlib
import os
import sys

import numpy as np
from mpi4py import MPI

H = 64
comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
budget = float(os.environ.get("LSHMOE_MAX_ERROR") or 0.5)
failures = 0


def say(line):
    """One write per line, so mpiexec never splices two ranks' lines."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def data(case, src, dst, n, dtype):
    """n elements src sends dst: tokens of H near one of four prototypes."""
    rng = np.random.default_rng([case, src, dst])
    if np.dtype(dtype).kind == "i":
        return rng.integers(-2**31, 2**31, n, dtype=np.int64).astype(dtype)
    protos = rng.standard_normal((4, H))
    toks = protos[rng.integers(0, 4, n // H)] + 0.02 * rng.standard_normal((n // H, H))
    out = np.concatenate([toks.reshape(-1), rng.standard_normal(n % H)])
    return out.astype(dtype)


def tokens(case, src, dst):
    return 96 + 32 * ((src + 2 * dst + case) % 3)


def check(name, case, recv, counts, displs, dtype, exact):
    global failures
    worst, lossy = 0.0, False
    for p in range(size):
        got = recv[displs[p]:displs[p] + counts[p]]
        want = data(case, p, rank, counts[p], dtype)
        if got.tobytes() != want.tobytes():
            lossy = True
        den = float(np.sum(want.astype(np.float64) ** 2))
        if den > 0:
            worst = max(worst, float(np.sqrt(np.sum((got.astype(np.float64) - want) ** 2) / den)))
    if (exact and lossy) or worst > budget * 1.001 + 1e-6:
        print("rank %d case %s: %s (max segment error %.4f)" %
              (rank, name, "not byte-exact" if exact and lossy else "over budget", worst),
              file=sys.stderr)
        failures += 1
    digest = hashlib.sha1(recv.tobytes()).hexdigest()[:16]
    say("case %s rank %d %s err %.6f sum %s" % (name, rank, "lossy" if lossy else "exact",
                                                 worst, digest))


def alltoall(name, case, dtype, mpitype, exact):
    n = tokens(case, 0, 0) * H
    send = np.concatenate([data(case, rank, p, n, dtype) for p in range(size)])
    recv = np.zeros(n * size, dtype=dtype)
    comm.Alltoall([send, mpitype], [recv, mpitype])
    check(name, case, recv, [n] * size, [p * n for p in range(size)], dtype, exact)


def alltoallv(name, case, dtype, mpitype, exact, odd=0):
    sc = [tokens(case, rank, p) * H + (odd if p == (rank + 1) % size else 0)
          for p in range(size)]
    rc = [tokens(case, p, rank) * H + (odd if rank == (p + 1) % size else 0)
          for p in range(size)]
    sd = np.concatenate([[0], np.cumsum(sc)[:-1]]).astype(int).tolist()
    rd = np.concatenate([[0], np.cumsum(rc)[:-1]]).astype(int).tolist()
    send = np.concatenate([data(case, rank, p, sc[p], dtype) for p in range(size)])
    recv = np.zeros(sum(rc), dtype=dtype)
    comm.Alltoallv([send, (sc, sd), mpitype], [recv, (rc, rd), mpitype])
    check(name, case, recv, rc, rd, dtype, exact)


def glove(path):
    stream = np.load(path).astype(np.float32)
    n, hidden = stream.shape
    per = n // size
    mine = stream[rank * per:(rank + 1) * per]
    # An uneven split, like an MoE router's: shares 1:2:3:... of the rows.
    def split(src):
        w = np.array([(src + p) % size + 1 for p in range(size)], dtype=np.float64)
        c = np.floor(w / w.sum() * per).astype(int)
        c[-1] += per - c.sum()
        return c
    sc = split(rank)
    rc = np.array([split(p)[rank] for p in range(size)])
    sdisp = np.concatenate([[0], np.cumsum(sc)[:-1]])
    rdisp = np.concatenate([[0], np.cumsum(rc)[:-1]])
    recv = np.zeros((rc.sum(), hidden), dtype=np.float32)
    comm.Alltoallv([mine, ((sc * hidden).tolist(), (sdisp * hidden).tolist()), MPI.FLOAT],
                   [recv, ((rc * hidden).tolist(), (rdisp * hidden).tolist()), MPI.FLOAT])
    num = den = 0.0
    worst = 0.0
    for p in range(size):
        if p == rank:
            continue
        src = stream[p * per:(p + 1) * per]
        want = src[sum(split(p)[:rank]):sum(split(p)[:rank]) + rc[p]].astype(np.float64)
        got = recv[rdisp[p]:rdisp[p] + rc[p]].astype(np.float64)
        a, b = float(np.sum((got - want) ** 2)), float(np.sum(want ** 2))
        num, den = num + a, den + b
        worst = max(worst, (a / b) ** 0.5)
    say("glove rank %d tokens_received %d err %.4f worst_segment %.4f"
        % (rank, int(rc.sum() - rc[rank]), (num / den) ** 0.5, worst))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--glove")
    args = ap.parse_args()
    if args.glove:
        glove(args.glove)
        return 0
    alltoall("int32_a2a", 1, np.int32, MPI.INT32_T, True)
    alltoall("float32_a2a", 2, np.float32, MPI.FLOAT, False)
    alltoallv("float32_a2av", 3, np.float32, MPI.FLOAT, False)
    alltoallv("float64_a2av", 4, np.float64, MPI.DOUBLE, True)
    # no multiple of the token size on any rank: coded in rows, not LSH
    alltoallv("float32_odd_a2av", 5, np.float32, MPI.FLOAT, False, odd=3)
    return 1 if comm.allreduce(failures) else 0


if __name__ == "__main__":
    sys.exit(main())
