# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 the lshmoe authors
"""A small byte-level MoE transformer language model whose expert exchange
runs through lshmoe, for the training study (moe_lm_train.py).

Expert parallelism: every rank holds num_experts / nranks experts of each MoE
layer; everything else is replicated (data parallel, the trainer all-reduces
its gradients). Two ways to move the tokens, both through the binding:

- "a2a": the all-to-all a drop-in user writes, dispatch and combine as two
  all-to-all-v calls of lshmoe (Context.alltoallv, the call under
  lshmoe.torch.all_to_all_single). The dispatch and the combine each have
  their own context, so each can have its own codec (the drop-in has one
  configuration per process); the backward exchanges are exact, as the
  drop-in's default.
- "moe": lshmoe's MoE mode (MoEDispatch / MoECombine): centroids per
  destination expert, the experts compute on centroids, compensation on the
  owner, the library's own backward.

Every context runs over a CountingComm: the bytes lshmoe hands to the
transport for other ranks, and the time the transport takes, are counted by
phase. Those are the bytes that really move, metadata included.
"""
import math
import time

import torch
import torch.distributed as dist
from torch import nn

import lshmoe
import lshmoe.torch as lt
from lshmoe._usercomm import TorchComm

# What the exchange functions are doing right now: the label the counting
# communicators file their bytes and time under.
PHASE = {"name": "setup"}


class Meter:
    """Bytes (to other ranks) and seconds, by phase, for this rank."""

    def __init__(self):
        self.bytes, self.seconds = {}, {}

    def add(self, table, key, v):
        table[key] = table.get(key, 0) + v

    def reset(self):
        self.bytes.clear()
        self.seconds.clear()


METER = Meter()


class CountingComm(TorchComm):
    """TorchComm that counts what it moves: the sum of the send sizes to
    other ranks, under the current PHASE, and the wall time of the call."""

    def _t_alltoallv(self, send, sbytes, recv, rbytes):
        t0 = time.perf_counter()
        super()._t_alltoallv(send, sbytes, recv, rbytes)
        ph = PHASE["name"]
        METER.add(METER.bytes, ph, sum(sbytes) - sbytes[self.rank])
        METER.add(METER.seconds, "xchg_" + ph, time.perf_counter() - t0)

    def _t_allgather(self, send, nbytes, recv):
        t0 = time.perf_counter()
        super()._t_allgather(send, nbytes, recv)
        ph = PHASE["name"]
        METER.add(METER.bytes, ph, nbytes * (self.nranks - 1))
        METER.add(METER.seconds, "xchg_" + ph, time.perf_counter() - t0)


def counted_context(config):
    return lshmoe.Context(CountingComm(None), config)


class _Phase:
    """Labels the exchanges inside and times the lshmoe call as a whole."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.prev = PHASE["name"]
        PHASE["name"] = self.name
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        METER.add(METER.seconds, "lshmoe_" + self.name, time.perf_counter() - self.t0)
        PHASE["name"] = self.prev


class _A2A(torch.autograd.Function):
    """lshmoe all-to-all-v with autograd: forward through ctx_fwd, backward
    (the reverse exchange of the gradients) through ctx_bwd."""

    @staticmethod
    def forward(fctx, x, ctxs, send_counts, recv_counts, phase):
        out = torch.empty((sum(recv_counts), x.shape[1]), dtype=x.dtype)
        with _Phase(phase):
            ctxs[0].alltoallv(x.detach().contiguous(), send_counts, out, recv_counts)
        fctx.meta = (ctxs[1], send_counts, recv_counts, phase)
        return out

    @staticmethod
    def backward(fctx, g):
        ctx_bwd, send_counts, recv_counts, phase = fctx.meta
        gin = torch.empty((sum(send_counts), g.shape[1]), dtype=g.dtype)
        with _Phase(phase + "_bwd"):
            ctx_bwd.alltoallv(g.contiguous(), recv_counts, gin, send_counts)
        return gin, None, None, None, None


class _TimedDispatch(lt.MoEDispatch):
    @staticmethod
    def forward(ctx, p, x):
        with _Phase("dispatch"):
            return lt.MoEDispatch.forward(ctx, p, x)

    @staticmethod
    def backward(ctx, *grads):
        with _Phase("dispatch_bwd"):
            return lt.MoEDispatch.backward(ctx, *grads)


class _TimedCombine(lt.MoECombine):
    @staticmethod
    def forward(ctx, p, w, *ys):
        with _Phase("combine"):
            return lt.MoECombine.forward(ctx, p, w, *ys)

    @staticmethod
    def backward(ctx, dy):
        with _Phase("combine_bwd"):
            return lt.MoECombine.backward(ctx, dy)


def make_expert(hidden, ffn):
    return nn.Sequential(nn.Linear(hidden, ffn), nn.GELU(), nn.Linear(ffn, hidden))


class ExpertParallelMoE(nn.Module):
    """Router (softmax, top-k), num_experts MLP experts of which this rank
    holds a contiguous block, and the exchange. `exchange` is a dict made by
    make_exchange(); exchange["exact"] is used when self.exact_eval is set."""

    def __init__(self, hidden, ffn, num_experts, topk, exchange, moe_objs=None):
        super().__init__()
        self.hidden, self.num_experts, self.topk = hidden, num_experts, topk
        self.rank, self.nranks = dist.get_rank(), dist.get_world_size()
        self.per_rank = num_experts // self.nranks
        self.router = nn.Linear(hidden, num_experts, bias=False)
        # All experts are built (same RNG stream on every rank, so the
        # initial weights do not depend on the rank), this rank keeps its own.
        every = [make_expert(hidden, ffn) for _ in range(num_experts)]
        first = self.rank * self.per_rank
        self.experts = nn.ModuleList(every[first:first + self.per_rank])
        self.xch = exchange
        self.moe_objs = moe_objs  # (compressed MoE, exact MoE) for the "moe" path
        self.exact_eval = False
        self.aux_loss = torch.zeros(())

    def forward(self, x):
        probs = torch.softmax(self.router(x), dim=-1)
        gates, idx = probs.topk(self.topk, dim=-1)
        # Switch-style balance loss: fraction routed times mean probability.
        frac = torch.bincount(idx.flatten(), minlength=self.num_experts).float() / idx.numel()
        self.aux_loss = self.num_experts * (frac * probs.mean(0)).sum()
        if self.moe_objs is not None:
            return self._moe_mode(x, idx, gates)
        return self._a2a(x, idx, gates)

    def _moe_mode(self, x, idx, gates):
        moe = self.moe_objs[1] if self.exact_eval else self.moe_objs[0]
        p = moe.layout(idx.to(torch.int32), gates)
        xs = _TimedDispatch.apply(p, x)
        ys = [e(xj) for e, xj in zip(self.experts, xs)]
        return _TimedCombine.apply(p, gates, *ys)

    def _a2a(self, x, idx, gates):
        n, k = idx.shape
        ctx = self.xch["exact"] if self.exact_eval else self.xch
        e = idx.flatten()
        order = torch.sort(e, stable=True)[1]
        tok = order // k
        per_expert = torch.bincount(e, minlength=self.num_experts)
        # Integer counts travel exact through torch (metadata, never lossy).
        recv_pe = torch.empty_like(per_expert)
        t0 = time.perf_counter()
        dist.all_to_all_single(recv_pe, per_expert)
        dt = time.perf_counter() - t0  # an exchange, though not lshmoe's
        METER.add(METER.seconds, "xchg_counts", dt)
        METER.add(METER.seconds, "lshmoe_counts", dt)
        METER.add(METER.bytes, "counts", per_expert.numel() * 8 * (self.nranks - 1) // self.nranks)
        send_counts = per_expert.view(self.nranks, self.per_rank).sum(1).tolist()
        recv_grid = recv_pe.view(self.nranks, self.per_rank)
        recv_counts = recv_grid.sum(1).tolist()
        xs = _A2A.apply(x[tok], (ctx["dispatch"], ctx["dispatch_bwd"]),
                        send_counts, recv_counts, "dispatch")
        # Received rows: by source rank, within it by local expert.
        sizes = recv_grid.flatten().tolist()
        pieces = list(xs.split(sizes))
        outs = [None] * len(pieces)
        for j, expert in enumerate(self.experts):
            sel = [s * self.per_rank + j for s in range(self.nranks)]
            rows = torch.cat([pieces[i] for i in sel])
            y = expert(rows) if rows.shape[0] else rows
            for i, part in zip(sel, y.split([sizes[i] for i in sel])):
                outs[i] = part
        ys = torch.cat(outs)
        back = _A2A.apply(ys, (ctx["combine"], ctx["combine_bwd"]),
                          recv_counts, send_counts, "combine")
        slot_out = torch.empty_like(back)
        slot_out = slot_out.index_copy(0, order, back)
        return (slot_out.view(n, k, -1) * gates.unsqueeze(-1)).sum(1)


class Block(nn.Module):
    def __init__(self, d, heads, moe):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.moe = moe

    def forward(self, x, mask):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        b, t, d = x.shape
        return x + self.moe(self.ln2(x).reshape(b * t, d)).view(b, t, d)


class MoELM(nn.Module):
    """Byte-level causal LM: embedding + positions, blocks of attention and
    an expert-parallel MoE FFN, final norm, tied output projection."""

    def __init__(self, d, heads, layers, ctx_len, moes):
        super().__init__()
        self.tok = nn.Embedding(256, d)
        # Small, as the logits use the same matrix (tied): loss starts at ln 256.
        nn.init.normal_(self.tok.weight, std=0.02)
        self.pos = nn.Parameter(torch.zeros(ctx_len, d))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(Block(d, heads, m) for m in moes[:layers])
        self.ln = nn.LayerNorm(d)
        mask = torch.full((ctx_len, ctx_len), float("-inf")).triu(1)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.tok(idx) + self.pos[:t]
        for blk in self.blocks:
            x = blk(x, self.mask[:t, :t])
        return self.ln(x) @ self.tok.weight.t()

    def aux_loss(self):
        return sum(b.moe.aux_loss for b in self.blocks) / len(self.blocks)

    def set_exact_eval(self, on):
        for b in self.blocks:
            b.moe.exact_eval = on


def cosine_lr(step, steps, base, warmup):
    if step < warmup:
        return base * (step + 1) / warmup
    f = (step - warmup) / max(1, steps - warmup)
    return base * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * f)))
