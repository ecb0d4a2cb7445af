# SPDX-License-Identifier: Apache-2.0
"""4 processes, torch.distributed with gloo, started by lshmoe.launch (the
env:// variables torchrun sets). Every rank runs the checks; a failure on
any rank fails the launcher. The drop-in against dist.all_to_all_single
(compressed floats within the guard, everything else exact, exact with
compress=0), its backward against the reverse exchange, the MoE layer
across ranks against the reference, and a count mismatch raising with the
library's message."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyutil  # noqa: E402

pyutil.need("torch", "numpy")

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

import lshmoe  # noqa: E402
import lshmoe.torch as lt  # noqa: E402


def tokens(rank, n, hidden=64):
    g = torch.Generator().manual_seed(100 + rank)
    c = torch.randn(6, hidden, generator=g)
    return c[torch.randint(0, 6, (n,), generator=g)] + 0.02 * torch.randn(n, hidden, generator=g)


def splits_for(rank, n):
    # Uneven, with a zero: rank r sends (r + p) % 3 * 20 rows to p.
    return [((rank + p) % 3) * 20 for p in range(n)]


def check_drop_in(r, n):
    send = splits_for(r, n)
    recv = [splits_for(p, n)[r] for p in range(n)]
    x = tokens(r, sum(send))
    out, ref = torch.empty(sum(recv), 64), torch.empty(sum(recv), 64)
    lt.configure(lshmoe.Config(min_tokens=8, num_hashes=2, cdim=2))
    lt.all_to_all_single(out, x, recv, send)
    dist.all_to_all_single(ref, x, recv, send)
    err = ((out - ref).norm() / ref.norm()).item()
    st = lt.context_for(None).stats()
    assert st["bytes_wire"] < st["bytes_in"], st
    assert 0 < err <= 0.5, err  # LSHMOE_MAX_ERROR's guard, default 0.5
    # Integers and float64 travel exact.
    for dt in (torch.int64, torch.int8, torch.float64, torch.bool):
        xi = (x * 10).to(dt)
        oi = torch.empty(sum(recv), 64, dtype=dt)
        lt.all_to_all_single(oi, xi, recv, send)
        # gloo has no bool all-to-all: convert torch's exact float result.
        assert torch.equal(oi, (ref * 10).to(dt)), dt
    # compress = 0: byte-identical to torch.
    lt.configure(lshmoe.Config(compress=0))
    lt.all_to_all_single(out, x, recv, send)
    assert torch.equal(out, ref)
    # Default equal splits.
    y = torch.empty(8 * n, 64)
    yr = torch.empty(8 * n, 64)
    lt.all_to_all_single(y, x[:8 * n])
    dist.all_to_all_single(yr, x[:8 * n])
    assert torch.equal(y, yr)
    print("rank %d: drop-in ok (compressed error %.3f, wire %d of %d bytes)"
          % (r, err, st["bytes_wire"], st["bytes_in"]))


def check_backward(r, n):
    lt.configure(lshmoe.Config(min_tokens=8))
    send = splits_for(r, n)
    recv = [splits_for(p, n)[r] for p in range(n)]
    x = tokens(r, sum(send)).requires_grad_(True)
    out = torch.empty(sum(recv), 64)
    lt.all_to_all_single(out, x, recv, send)
    g = tokens(50 + r, sum(recv))
    out.backward(g)
    want = torch.empty(sum(send), 64)
    dist.all_to_all_single(want, g, send, recv)
    assert torch.equal(x.grad, want)  # exact reverse exchange by default


def check_moe_layer(r, n):
    E, K, H, F, T = 8, 2, 32, 48, 96
    torch.manual_seed(7)  # same router and experts on every rank
    m = lt.MoELayer(H, F, E, K, compress=False)
    torch.manual_seed(7)
    full = [lt._layer.make_expert(H, F) for _ in range(E)]
    m.router.weight.data.copy_(torch.randn(E, H, generator=torch.Generator().manual_seed(9)))
    for j, e in enumerate(m.moe.local_experts):
        m.experts[j].load_state_dict(full[e].state_dict())
    x = tokens(r, T, H)
    y = m(x)
    ref = lt.reference_moe(x, *m.route(x), dict(enumerate(full)))
    assert torch.equal(y, ref), (y - ref).abs().max()
    y.pow(2).sum().backward()
    print("rank %d: exact MoE layer bit-equal to the reference" % r)


def check_mismatch(r, n):
    lt.configure(None)
    send = [4] * n
    recv = [4] * n
    if r == 0:
        recv[1] = 5  # rank 1 sends 4
    x = tokens(r, sum(send), 16)
    out = torch.empty(sum(recv), 16)
    try:
        lt.all_to_all_single(out, x, recv, send)
    except lshmoe.LshmoeError as e:
        if r == 0:
            assert e.name == "ERR_MISMATCH" and "1" in e.message, e
        else:
            assert e.name in ("ERR_PEER", "ERR_MISMATCH"), e
        print("rank %d: mismatch raised %s: %s" % (r, e.name, e.message))
        return
    assert r != 0, "rank 0 expected 5 rows from rank 1, which sends 4"


def main():
    dist.init_process_group("gloo")
    r, n = dist.get_rank(), dist.get_world_size()
    for check in (check_drop_in, check_backward, check_moe_layer, check_mismatch):
        check(r, n)
        dist.barrier()
    dist.destroy_process_group()
    print("rank %d: all checks passed" % r)


if __name__ == "__main__":
    main()
