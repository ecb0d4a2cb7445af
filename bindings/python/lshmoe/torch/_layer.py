# SPDX-License-Identifier: Apache-2.0
"""MoELayer: a small Mixture-of-Experts layer over lshmoe's MoE mode, and
the plain PyTorch reference it is tested against. Written to be copied."""
import torch
import torch.distributed as dist
from torch import nn

from .._config import Config
from .._context import Context
from ._moe import MoE, MoECombine, MoEDispatch


def make_expert(hidden, ffn_hidden):
    """One expert: Linear -> GELU -> Linear (hidden -> hidden)."""
    return nn.Sequential(nn.Linear(hidden, ffn_hidden), nn.GELU(), nn.Linear(ffn_hidden, hidden))


class MoELayer(nn.Module):
    """Router (linear, softmax), top-k gates, experts as MLPs, dispatch and
    combine through lshmoe.

    Each rank holds its local experts only (contiguous blocks: expert e on
    rank e // (num_experts // nranks)); self.experts[j] is global expert
    self.moe.local_experts[j]. compress=False gives the exact layer (every
    group is one token). context: an lshmoe.Context to use; None makes one
    over `group` (a torch.distributed group, or the default group when
    torch.distributed is initialised, else this process alone) with
    `config` and compress. Input x: [ntokens, hidden] CPU tensor.
    self.last_pass holds the latest pass (its .stats() has the bytes sent
    and the centroid error).
    """

    def __init__(self, hidden, ffn_hidden, num_experts, topk, compress=True, context=None,
                 group=None, config=None, compensation=None, dtype=torch.float32):
        super().__init__()
        if context is None:
            cfg = Config(**(config._values if config is not None else {}))
            cfg.compress = int(bool(compress))
            comm = group if group is not None else (
                "torch" if dist.is_available() and dist.is_initialized() else None)
            context = Context(comm, cfg)
        self.context = context
        self.topk = topk
        self.moe = MoE(context, num_experts, topk, hidden, dtype=dtype,
                       compensation=compensation)
        self.router = nn.Linear(hidden, num_experts, bias=False)
        self.experts = nn.ModuleList(make_expert(hidden, ffn_hidden)
                                     for _ in self.moe.local_experts)
        self.last_pass = None

    def route(self, x):
        """Top-k expert ids (int32) and gates (softmax probabilities)."""
        probs = torch.softmax(self.router(x), dim=-1)
        gates, idx = probs.topk(self.topk, dim=-1)
        return idx.to(torch.int32), gates

    def forward(self, x):
        idx, gates = self.route(x)
        p = self.moe.layout(idx, gates)
        xs = MoEDispatch.apply(p, x)
        ys = [expert(xj) for expert, xj in zip(self.experts, xs)]
        self.last_pass = p
        return MoECombine.apply(p, gates, *ys)


def reference_moe(x, idx, gates, experts):
    """The exact MoE in plain PyTorch, with the numerics lshmoe_moe.h
    documents: each expert sees its slots' tokens in token order, the
    gate-weighted sum runs in fp64 in slot order and is rounded to fp32.
    experts: a dict global id -> module (all experts, one process)."""
    ntokens, k = idx.shape
    y = [[None] * k for _ in range(ntokens)]
    for e, expert in experts.items():
        slots = [(t, s) for t in range(ntokens) for s in range(k) if int(idx[t, s]) == e]
        if not slots:
            continue
        rows = expert(torch.stack([x[t] for t, _ in slots]))
        for i, (t, s) in enumerate(slots):
            y[t][s] = rows[i]
    out = []
    for t in range(ntokens):
        acc = torch.zeros(x.shape[1], dtype=torch.float64)
        for s in range(k):
            if y[t][s] is not None:
                acc = acc + gates[t, s].to(torch.float32).double() * y[t][s].double()
        out.append(acc.float())
    return torch.stack(out)
