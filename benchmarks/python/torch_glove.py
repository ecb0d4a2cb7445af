#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""lshmoe.torch.all_to_all_single on real vectors, N processes (gloo):
bytes saved and error against dist.all_to_all_single in the same run, for
the forward exchange and for the gradient exchange compressed the same way,
and the Python binding's overhead per call against the C call's own time.

    PYTHONPATH=build/bindings/python python3 -m lshmoe.launch \\
        --nproc-per-node 4 benchmarks/python/torch_glove.py [--dtype bf16]

Data: benchmarks/data/cache/glove_stream.npy (16384 x 100 float32, the
GloVe token stream of docs/benchmarks.md); rank r takes rows
[r*T, (r+1)*T) with T = 16384 / N and sends T/N to each peer. Errors are
relative L2 over the rows received from other ranks (the own segment never
travels). Overhead = wall time of the Python call minus the C library's
own time_total_s for that call (lshmoe_stats_t), median over --calls.
Rank 0 prints one JSON object.
"""
import argparse
import json
import os
import statistics
import time

import numpy as np
import torch
import torch.distributed as dist

import lshmoe
import lshmoe.torch as lt

HERE = os.path.dirname(os.path.abspath(__file__))
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def remote_err(out, ref, r, per):
    mask = torch.ones(out.shape[0], dtype=torch.bool)
    mask[r * per:(r + 1) * per] = False
    a, b = out[mask].double(), ref[mask].double()
    return ((a - b).norm() / b.norm()).item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(HERE, "..", "data", "cache",
                                                   "glove_stream.npy"))
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--moe", action="store_true",
                    help="also run the MoE layer, exact and compressed (fp32)")
    a = ap.parse_args()
    dist.init_process_group("gloo")
    r, n = dist.get_rank(), dist.get_world_size()
    data = np.load(a.data)
    t = data.shape[0] // n
    per = t // n
    dt = DTYPES[a.dtype]
    x = torch.from_numpy(data[r * t:(r + 1) * t].copy()).to(dt)
    # gloo has no bf16/fp16 all-to-all: exchange the fp32 values and convert
    # back (exact: the conversion is per element).
    ref = torch.empty(x.shape, dtype=torch.float32)
    dist.all_to_all_single(ref, x.float())
    ref = ref.to(dt)

    # Forward, and the gradient of a loss through it, exact and compressed.
    w = torch.randn(x.shape[1], x.shape[1], generator=torch.Generator().manual_seed(1)) / 10
    res = {}
    for compress_bwd in (False, True):
        lt.configure(None, compress_backward=compress_bwd)
        xg = x.float().requires_grad_(True)
        out = torch.empty(x.shape, dtype=torch.float32)
        lt.all_to_all_single(out, xg)
        fwd = lt.context_for(None).stats(reset=True)
        # Loss: predict each received token's successor through a linear map.
        loss = ((out @ w - out.detach().roll(-1, 0)) ** 2).sum()
        loss.backward()
        bwd = lt.context_for(None, exact=not compress_bwd).stats(reset=True)
        gout = (2 * (out.detach() @ w - out.detach().roll(-1, 0)) @ w.T)
        gref = torch.empty_like(gout)
        dist.all_to_all_single(gref, gout)
        res["bwd_compressed" if compress_bwd else "bwd_exact"] = {
            "grad_rel_err": remote_err(xg.grad, gref, r, per),
            "ratio": bwd["bytes_in"] / max(bwd["bytes_wire"], 1)}
    # Forward in the requested dtype (the drop-in's real use).
    out = torch.empty_like(x)
    lt.configure(None)
    lt.all_to_all_single(out, x)
    fwd = lt.context_for(None).stats(reset=True)
    res["fwd"] = {"rel_err": remote_err(out, ref, r, per), "bytes_in": fwd["bytes_in"],
                  "bytes_wire": fwd["bytes_wire"],
                  "ratio": fwd["bytes_in"] / max(fwd["bytes_wire"], 1),
                  "plain_by_policy": fwd["calls_plain_policy"]}

    # The MoE layer on the same tokens (fp32): 2 experts per rank, top-2, the
    # exact layer and compressed ones with the same weights (seeded alike on
    # every rank), compensation none and residual; bytes of the dispatch
    # (sums over ranks) and the relative error of the output (mean).
    if a.moe:
        xf = x.float()
        torch.manual_seed(11)
        exact = lt.MoELayer(x.shape[1], 2 * x.shape[1], 2 * n, 2, compress=False)
        with torch.no_grad():
            ye = exact(xf)
        res["moe"] = {}
        for comp in ("none", "residual"):
            torch.manual_seed(11)
            layer = lt.MoELayer(x.shape[1], 2 * x.shape[1], 2 * n, 2, compress=True,
                                compensation=comp)
            with torch.no_grad():
                yc = layer(xf)
            ms = layer.last_pass.stats()
            res["moe"][comp] = {
                "rows_sent": ms["rows_sent"], "slots": ms["slots"],
                "bytes_plain": ms["bytes_remote_plain"],
                "bytes_dispatch": ms["bytes_remote_dispatch"],
                "centroid_rel_err": ms["centroid_rel_error"],
                "out_rel_err": ((yc - ye).norm() / ye.norm()).item()}

    # Overhead: Python wall time minus the C call's own time.
    def overhead(fn, ctx):
        samples = []
        for _ in range(a.calls):
            dist.barrier()
            s0 = ctx.stats()["time_total_s"]
            t0 = time.perf_counter()
            fn()
            wall = time.perf_counter() - t0
            samples.append((wall, ctx.stats()["time_total_s"] - s0))
        return {"wall_us": 1e6 * statistics.median(s[0] for s in samples),
                "c_us": 1e6 * statistics.median(s[1] for s in samples),
                "py_us": 1e6 * statistics.median(s[0] - s[1] for s in samples)}
    small = x[:8 * n].contiguous()
    osmall = torch.empty_like(small)
    ctx = lt.context_for(None)
    res["overhead_drop_in_small"] = overhead(lambda: lt.all_to_all_single(osmall, small), ctx)
    res["overhead_drop_in_glove"] = overhead(lambda: lt.all_to_all_single(out, x), ctx)
    res["overhead_alltoallv_small"] = overhead(
        lambda: ctx.alltoallv(small, [8] * n, osmall, [8] * n), ctx)

    # The plain exchange of the same fp32 tensors, for scale.
    def plain(t):
        o = torch.empty_like(t)
        samples = []
        for _ in range(a.calls):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_to_all_single(o, t)
            samples.append(time.perf_counter() - t0)
        return 1e6 * statistics.median(samples)
    res["torch_plain_fp32_small_us"] = plain(small.float())
    res["torch_plain_fp32_glove_us"] = plain(x.float())

    allres = [None] * n
    dist.all_gather_object(allres, res)
    if r == 0:
        def mean(path):
            vals = [rr for rr in allres]
            for k in path:
                vals = [v[k] for v in vals]
            return sum(vals) / len(vals)
        summary = {"ranks": n, "dtype": a.dtype, "tokens_per_rank": t, "hidden": x.shape[1],
                   "config": {k: v for k, v in lt.context_for(None).config._values.items()},
                   "fwd_ratio": sum(v["fwd"]["bytes_in"] for v in allres) /
                   sum(v["fwd"]["bytes_wire"] for v in allres),
                   "fwd_rel_err_mean": mean(["fwd", "rel_err"]),
                   "fwd_calls_plain_by_policy": sum(v["fwd"]["plain_by_policy"] for v in allres),
                   "bwd_exact_grad_rel_err": mean(["bwd_exact", "grad_rel_err"]),
                   "bwd_compressed_ratio": mean(["bwd_compressed", "ratio"]),
                   "bwd_compressed_grad_rel_err": mean(["bwd_compressed", "grad_rel_err"]),
                   "moe": ({c: {k: sum(v["moe"][c][k] for v in allres) /
                                    (1 if k.startswith(("rows", "slots", "bytes")) else n)
                                    for k in allres[0]["moe"][c]}
                            for c in allres[0]["moe"]} if a.moe else None),
                   "overhead_rank0": {k: v for k, v in res.items() if k.startswith(("overhead", "torch_plain"))},
                   "library": lshmoe.library_path}
        print(json.dumps(summary, indent=1, default=str))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
