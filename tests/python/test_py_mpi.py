# SPDX-License-Identifier: Apache-2.0
"""Under mpirun -np 4 with mpi4py: lshmoe.Context over MPI.COMM_WORLD (the
MPI transport, handle passed as lshmoe_mpi.h does): exact and compressed
all-to-all-v against mpi4py's own Alltoallv, a count mismatch raising with
the library's message, and (with torch) the exact MoE layer against the
reference."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyutil  # noqa: E402

pyutil.need("numpy", "mpi4py")

import numpy as np  # noqa: E402
from mpi4py import MPI  # noqa: E402

import lshmoe  # noqa: E402


def main():
    comm = MPI.COMM_WORLD
    r, n = comm.Get_rank(), comm.Get_size()
    rng = np.random.default_rng(10 + r)
    centers = rng.standard_normal((5, 48)).astype(np.float32)
    per = 40
    x = (centers[rng.integers(0, 5, n * per)] +
         0.01 * rng.standard_normal((n * per, 48))).astype(np.float32)
    ref = np.empty_like(x)
    comm.Alltoall(x, ref)

    exact = lshmoe.Context(comm, lshmoe.Config(compress=0))
    out = np.empty_like(x)
    exact.alltoallv(x, [per] * n, out, [per] * n)
    assert np.array_equal(out, ref)

    comp = lshmoe.Context(comm, lshmoe.Config(min_tokens=8))
    comp.alltoallv(x, [per] * n, out, [per] * n)
    err = np.linalg.norm(out - ref) / np.linalg.norm(ref)
    st = comp.stats()
    assert st["bytes_wire"] < st["bytes_in"] and 0 < err <= 0.5, (st, err)

    bad = [per] * n
    if r == 0:
        bad[1] = per + 1
    try:
        comp.alltoallv(x, [per] * n, np.empty((n * per + 1, 48), np.float32), bad)
        assert r != 0, "rank 0 expected one row more than rank 1 sends"
    except lshmoe.LshmoeError as e:
        assert e.name in ("ERR_MISMATCH", "ERR_PEER") and e.message, e
        if r == 0:
            assert e.name == "ERR_MISMATCH", e
    comm.Barrier()

    try:
        import torch
        import lshmoe.torch as lt
    except ImportError as e:
        print("rank %d: MoE part skipped: %s" % (r, e))
        torch = None
    if torch is not None:
        E, K, H, F = 8, 2, 32, 48
        torch.manual_seed(3)
        full = [lt._layer.make_expert(H, F) for _ in range(E)]
        m = lt.MoELayer(H, F, E, K, compress=False, context=exact)
        for j, e in enumerate(m.moe.local_experts):
            m.experts[j].load_state_dict(full[e].state_dict())
        xt = torch.from_numpy(x[:64, :H].copy())
        y = m(xt)
        refy = lt.reference_moe(xt, *m.route(xt), dict(enumerate(full)))
        assert torch.equal(y, refy), (y - refy).abs().max()
        y.sum().backward()
    comp.close()
    exact.close()
    print("rank %d: mpi checks passed (compressed error %.3f, wire %d of %d bytes)"
          % (r, err, st["bytes_wire"], st["bytes_in"]))


if __name__ == "__main__":
    main()
