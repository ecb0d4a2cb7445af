# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 the lshmoe authors
"""Train the byte-level MoE LM of moe_lm.py with one exchange method; one run
of the training study. Run it under the repository's launcher:

    PYTHONPATH=build/bindings/python LSHMOE_ADAPT=0 /usr/bin/python3 -m lshmoe.launch \\
        --nproc-per-node 4 benchmarks/python/moe_lm_train.py --method fp8 \\
        --text benchmarks/data/cache/sotu.txt --out run.json

--method picks how the MoE layers exchange tokens (METHODS below). The data
order (--data-seed) is the same for every method; --seed sets the initial
weights (the same on every rank). Rank 0 writes the JSON: validation-loss
curve, final validation loss with the method's own exchange and with the
exact exchange, bytes per training step by phase (all ranks, counted by the
communicator under lshmoe), and the time per step split into compute, codec
and exchange.
"""
import argparse
import json
import math
import os
import platform
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lshmoe  # noqa: E402
import lshmoe.torch as lt  # noqa: E402
import moe_lm  # noqa: E402

EXACT = {"compress": 0}
# name -> path ("a2a": two all-to-alls of lshmoe, "moe": MoE mode), the
# configuration of the dispatch and of the combine (a2a), or of the MoE
# context and its compensation (moe).
METHODS = {
    "exact": ("a2a", EXACT, EXACT),
    "fp8": ("a2a", {"codec": "fp8"}, EXACT),
    "int4": ("a2a", {"codec": "int4"}, EXACT),
    "lsh-fp8": ("a2a", {"codec": "lsh-fp8"}, EXACT),
    "lsh4-none": ("moe", {"num_hashes": 4}, "none"),
    "lsh4-residual": ("moe", {"num_hashes": 4}, "residual"),
    "lsh6-none": ("moe", {"num_hashes": 6}, "none"),
    "lsh6-residual": ("moe", {"num_hashes": 6}, "residual"),
}
for _b in ("0.05", "0.1", "0.2"):
    _c = {"codec": "budget", "max_error": float(_b)}
    METHODS["budget-" + _b] = ("a2a", _c, _c)


def config(fields):
    return lshmoe.Config(**dict({"compress": 1}, **fields))


def build(a, rank):
    """The model for a.method, with identical initial weights on every rank
    and for every method (the contexts are made before the seed is set)."""
    path, c1, c2 = METHODS[a.method]
    exact = moe_lm.counted_context(config(EXACT))
    xch, moe_objs = None, None
    if path == "a2a":
        d = exact if c1 is EXACT else moe_lm.counted_context(config(c1))
        c = d if c2 is c1 else (exact if c2 is EXACT else moe_lm.counted_context(config(c2)))
        ex = {"dispatch": exact, "dispatch_bwd": exact, "combine": exact, "combine_bwd": exact}
        xch = {"dispatch": d, "dispatch_bwd": exact, "combine": c, "combine_bwd": exact,
               "exact": ex}
    else:
        cctx = moe_lm.counted_context(config(c1))
        moe_objs = [(lt.MoE(cctx, a.experts, a.topk, a.dim, compensation=c2),
                     lt.MoE(exact, a.experts, a.topk, a.dim, compensation="none"))
                    for _ in range(a.layers)]
    torch.manual_seed(a.seed)
    moes = [moe_lm.ExpertParallelMoE(a.dim, a.ffn, a.experts, a.topk, xch,
                                     moe_objs[i] if moe_objs else None)
            for i in range(a.layers)]
    return moe_lm.MoELM(a.dim, a.heads, a.layers, a.ctx, moes)


def batch(data, gen, world, rank, bsz, ctx):
    """This rank's slice of one global batch drawn from gen."""
    starts = torch.randint(0, data.numel() - ctx - 1, (world * bsz,), generator=gen)
    mine = starts[rank * bsz:(rank + 1) * bsz]
    rows = torch.stack([data[s:s + ctx + 1] for s in mine.tolist()]).long()
    return rows[:, :-1], rows[:, 1:]


def evaluate(model, val, a, world, rank, exact, n=None):
    """Mean validation loss over the first n (default a.eval_batches) of the
    fixed evaluation batches, all ranks."""
    saved = (dict(moe_lm.METER.bytes), dict(moe_lm.METER.seconds))
    model.set_exact_eval(exact)
    gen = torch.Generator().manual_seed(4321)
    tot = torch.zeros(2, dtype=torch.float64)
    with torch.no_grad():
        for _ in range(n or a.eval_batches):
            x, y = batch(val, gen, world, rank, a.batch, a.ctx)
            loss = F.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1))
            tot += torch.tensor([loss.item() * y.numel(), y.numel()], dtype=torch.float64)
    dist.all_reduce(tot)
    model.set_exact_eval(False)
    moe_lm.METER.bytes, moe_lm.METER.seconds = saved
    return float(tot[0] / tot[1])


def save_activations(model, val, a, world, rank, nbatches=2):
    """Writes the MoE layers' input tokens (after the norm: what the dispatch
    sends) on the first validation batches, gathered from every rank, as
    fp32 .npy files plus manifest.json in a.save_activations (rank 0)."""
    import numpy as np
    taps = [[] for _ in model.blocks]
    hooks = [b.moe.register_forward_pre_hook(
        lambda mod, inp, i=i: taps[i].append(inp[0].detach().clone()))
        for i, b in enumerate(model.blocks)]
    gen = torch.Generator().manual_seed(4321)
    with torch.no_grad():
        for _ in range(nbatches):
            model(batch(val, gen, world, rank, a.batch, a.ctx)[0])
    for h in hooks:
        h.remove()
    files = []
    for i, t in enumerate(taps):
        mine = torch.cat(t).float().contiguous()
        every = [torch.empty_like(mine) for _ in range(world)]
        dist.all_gather(every, mine)
        if rank == 0:
            os.makedirs(a.save_activations, exist_ok=True)
            name = "moe_lm_layer%d.npy" % i
            arr = torch.cat(every).numpy()
            np.save(os.path.join(a.save_activations, name), arr)
            files.append({"file": name, "layer": i, "shape": list(arr.shape),
                          "dtype": "float32"})
    if rank == 0:
        man = {"what": "MoE-layer inputs (after the layer norm, the rows the dispatch "
                       "sends) of the exact model trained by moe_lm_train.py, on "
                       "validation text; rows in rank order, then token order",
               "model": {k: getattr(a, k) for k in ("dim", "ffn", "heads", "layers",
                                                     "experts", "topk", "ctx", "batch",
                                                     "steps", "lr")},
               "text": os.path.basename(a.text), "files": files}
        with open(os.path.join(a.save_activations, "manifest.json"), "w") as f:
            json.dump(man, f, indent=1)


def sync_grads(model, world):
    """Average the replicated parameters' gradients over the ranks; expert
    gradients already hold every rank's tokens (through the exchange), so
    they are only scaled to the mean loss."""
    shared = [p for n, p in model.named_parameters() if ".experts." not in n]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in shared]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    off = 0
    for p, g in zip(shared, grads):
        p.grad = flat[off:off + g.numel()].view_as(g).clone()
        off += g.numel()
    for n, p in model.named_parameters():
        if ".experts." in n and p.grad is not None:
            p.grad /= world


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="exact:0",
                    help="comma-separated METHOD:SEED, trained one after the other")
    ap.add_argument("--text", required=True, help="the corpus, read as bytes")
    ap.add_argument("--out-dir", help="one JSON per run (rank 0); runs whose JSON "
                    "exists are skipped")
    ap.add_argument("--save-activations", help="exact:0 writes its MoE inputs here")
    ap.add_argument("--data-seed", type=int, default=1234, help="data order")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=8, help="sequences per rank")
    ap.add_argument("--ctx", type=int, default=64, help="bytes per sequence")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--ffn", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--topk", type=int, default=2)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--aux", type=float, default=0.01, help="balance-loss weight")
    ap.add_argument("--eval-every", type=int, default=20)
    ap.add_argument("--eval-batches", type=int, default=3, help="per curve point")
    ap.add_argument("--final-eval-batches", type=int, default=12)
    ap.add_argument("--val-frac", type=float, default=0.05)
    a = ap.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method="env://")
    rank, world = dist.get_rank(), dist.get_world_size()
    if a.experts % world:
        raise SystemExit("--experts must be a multiple of the number of processes")
    with open(a.text, "rb") as f:
        raw = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8)
    cut = int(raw.numel() * (1.0 - a.val_frac))
    runs = [r.split(":") for r in a.runs.split(",")]
    for r in runs:
        if r[0] not in METHODS or len(r) != 2 or not r[1].isdigit():
            raise SystemExit("--runs: %r is not METHOD:SEED (methods: %s)"
                             % (":".join(r), ", ".join(sorted(METHODS))))
    if a.out_dir and rank == 0:
        os.makedirs(a.out_dir, exist_ok=True)
    for i, (method, seed) in enumerate(runs):
        out = os.path.join(a.out_dir, "%s_seed%s.json" % (method, seed)) if a.out_dir else None
        if out and os.path.exists(out):
            if rank == 0:
                print("[%d/%d] %s seed %s: done before (%s)" % (i + 1, len(runs), method,
                                                                seed, out), flush=True)
            continue
        res = one_run(a, method, int(seed), raw[:cut], raw[cut:], rank, world)
        if rank == 0:
            print("[%d/%d] %s seed %s: val loss %.4f (exact dispatch %.4f), dispatch %.0f "
                  "B/step, combine %.0f B/step, %.2f s/step, %.0f s"
                  % (i + 1, len(runs), method, seed, res["final_val_loss"],
                     res["final_val_loss_exact_dispatch"], res["bytes_per_step"]["dispatch"],
                     res["bytes_per_step"]["combine"], res["time_per_step_s"]["total"],
                     res["wall_s"]), flush=True)
            if out:
                with open(out + ".tmp", "w") as f:
                    json.dump(res, f, indent=1)
                os.replace(out + ".tmp", out)
    dist.barrier()
    dist.destroy_process_group()


def one_run(a, method, seed, train, val, rank, world):
    """Trains one model; returns the result dict (the same on every rank
    except for what only rank 0 needs)."""
    a.method, a.seed = method, seed
    model = build(a, rank)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(a.data_seed)
    curve, train_curve = [], []
    moe_lm.METER.reset()
    t_step = t_ar = 0.0
    t_start = time.perf_counter()
    for step in range(a.steps):
        if step % a.eval_every == 0:
            curve.append((step, evaluate(model, val, a, world, rank, exact=False)))
        for grp in opt.param_groups:
            grp["lr"] = moe_lm.cosine_lr(step, a.steps, a.lr, warmup=a.steps // 20 + 1)
        x, y = batch(train, gen, world, rank, a.batch, a.ctx)
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1))
        (loss + a.aux * model.aux_loss()).backward()
        t1 = time.perf_counter()
        sync_grads(model, world)
        t_ar += time.perf_counter() - t1
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        t_step += time.perf_counter() - t0
        train_curve.append(loss.item())
        if not math.isfinite(train_curve[-1]):
            raise SystemExit("rank %d: loss is %s at step %d" % (rank, train_curve[-1], step))
    wall = time.perf_counter() - t_start
    final_own = evaluate(model, val, a, world, rank, exact=False, n=a.final_eval_batches)
    final_exact = evaluate(model, val, a, world, rank, exact=True, n=a.final_eval_batches)
    curve.append((a.steps, evaluate(model, val, a, world, rank, exact=False)))

    # Bytes: sum over ranks; seconds: mean over ranks. Per training step.
    m = moe_lm.METER
    phases = ["dispatch", "combine", "dispatch_bwd", "combine_bwd", "counts"]
    keys = sorted(m.seconds)
    vec = torch.tensor([m.bytes.get(p, 0) for p in phases] +
                       [m.seconds.get(k, 0.0) for k in keys] + [t_step, t_ar],
                       dtype=torch.float64)
    dist.all_reduce(vec)
    nb = len(phases)
    bytes_per_step = {p: float(vec[i]) / a.steps for i, p in enumerate(phases)}
    sec = {k: float(vec[nb + i]) / world / a.steps for i, k in enumerate(keys)}
    step_s = float(vec[-2]) / world / a.steps
    ar_s = float(vec[-1]) / world / a.steps
    lshmoe_s = sum(v for k, v in sec.items() if k.startswith("lshmoe_"))
    xchg_s = sum(v for k, v in sec.items() if k.startswith("xchg_"))
    if a.save_activations and method == "exact" and seed == 0:
        save_activations(model, val, a, world, rank)  # after the meter is read
    return {
        "method": method, "path": METHODS[method][0],
        "dispatch_config": METHODS[method][1], "combine_config": METHODS[method][2],
        "seed": seed, "args": {k: v for k, v in vars(a).items() if k not in ("runs", "method")},
        "world": world,
        "final_val_loss": final_own, "final_val_loss_exact_dispatch": final_exact,
        "val_curve": curve, "train_loss": train_curve,
        "bytes_per_step": bytes_per_step,
        "time_per_step_s": {"total": step_s, "lshmoe_codec": lshmoe_s - xchg_s,
                            "exchange": xchg_s, "dp_allreduce": ar_s,
                            "compute": step_s - lshmoe_s - ar_s},
        "time_detail_s": sec, "wall_s": wall,
        "versions": {"lshmoe": lshmoe.version(), "torch": torch.__version__,
                     "python": platform.python_version()},
    }


if __name__ == "__main__":
    main()
