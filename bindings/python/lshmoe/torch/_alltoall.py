# SPDX-License-Identifier: Apache-2.0
"""all_to_all_single with torch.distributed's signature and semantics.

Floating tensors of fp32/fp16/bf16 are compressed by lshmoe (transparent
mode: a received token is its cluster's centroid, plus the coded residual
when configured); every other dtype (integers, bool, float64, complex)
travels byte-exact. The collective runs over the caller's own process
group through lshmoe's bring-your-own-communicator kind, so nothing else
in the job changes.

Backward: an all-to-all of the output gradients the other way (the
transpose of the exchange; the compression is taken as the identity, a
straight-through estimator). By default that gradient exchange is exact:
see docs/python.md for the measurement behind the choice, and
configure(compress_backward=True) to compress it too.
"""
import torch
import torch.distributed as dist

from .._config import Config
from .._context import Context

_state = {"config": None, "compress_backward": False, "contexts": {}}


def configure(config=None, compress_backward=False):
    """Sets the lshmoe.Config for contexts created from now on (None: from
    the LSHMOE_* environment), and whether backward compresses. Contexts
    already made stay (they are per group, created collectively)."""
    if config is not None and not isinstance(config, Config):
        raise TypeError("config must be an lshmoe.Config")
    _state["config"] = config
    _state["compress_backward"] = bool(compress_backward)
    _state["contexts"] = {}


def context_for(group=None, exact=False):
    """The lshmoe.Context this module uses for `group` (created on first use:
    collective over the group). exact=True: the compress=0 context."""
    key = (id(group) if group is not None else None, exact)
    ctx = _state["contexts"].get(key)
    if ctx is None:
        base = _state["config"]
        cfg = Config(**{k: v for k, v in (base._values.items() if base else [])})
        if exact:
            cfg.compress = 0
        ctx = Context(group if group is not None else "torch", cfg)
        ctx._group_ref = group
        _state["contexts"][key] = ctx
    return ctx


def _splits(sizes, rows, n, name):
    if sizes is None or len(sizes) == 0:
        if rows % n != 0:
            raise ValueError("%s is None and dim 0 (%d) is not divisible by the group "
                             "size %d" % (name, rows, n))
        return [rows // n] * n
    sizes = [int(s) for s in sizes]
    if len(sizes) != n:
        raise ValueError("%s has %d entries, the group has %d ranks" % (name, len(sizes), n))
    if sum(sizes) != rows:
        raise ValueError("%s sums to %d, dim 0 is %d" % (name, sum(sizes), rows))
    return sizes


def _check(output, input):
    for t, name in ((output, "output"), (input, "input")):
        if not isinstance(t, torch.Tensor):
            raise TypeError("%s must be a torch.Tensor, not %s" % (name, type(t).__name__))
        if t.device.type != "cpu":
            raise ValueError("%s is on %s: lshmoe handles CPU tensors in this version "
                             "(the CUDA codec is not built); it never copies to the host "
                             "silently" % (name, t.device))
    if output.dtype != input.dtype:
        raise TypeError("output dtype %s differs from input dtype %s" % (output.dtype, input.dtype))
    if output.dim() == 0 or input.dim() == 0 or output.shape[1:] != input.shape[1:]:
        raise ValueError("output and input need dim >= 1 and the same shape past dim 0 "
                         "(%s vs %s)" % (tuple(output.shape), tuple(input.shape)))


def _exchange(ctx, out, inp, out_splits, in_splits):
    ctx.alltoallv(inp.contiguous(), in_splits, out, out_splits)


class _AllToAll(torch.autograd.Function):
    @staticmethod
    def forward(fctx, inp, out_shape, out_splits, in_splits, group):
        out = torch.empty(out_shape, dtype=inp.dtype)
        _exchange(context_for(group), out, inp.detach(), out_splits, in_splits)
        fctx.splits = (out_splits, in_splits, tuple(inp.shape), group)
        return out

    @staticmethod
    def backward(fctx, grad):
        out_splits, in_splits, in_shape, group = fctx.splits
        gin = torch.empty(in_shape, dtype=grad.dtype)
        ctx = context_for(group, exact=not _state["compress_backward"])
        _exchange(ctx, gin, grad.contiguous(), in_splits, out_splits)
        return gin, None, None, None, None


class _Done:
    """What async_op=True returns: the exchange already completed."""

    def wait(self, timeout=None):
        return True

    def is_completed(self):
        return True


def all_to_all_single(output, input, output_split_sizes=None, input_split_sizes=None,
                      group=None, async_op=False):
    """torch.distributed.all_to_all_single, compressed by lshmoe.

    Splits input along dim 0 by input_split_sizes (equal parts if None),
    sends part p to rank p of `group` (None: the default group) and writes
    what rank p sent into output's part p (output_split_sizes). Collective.
    With async_op=True the call still completes before returning and hands
    back an already-completed work object. If input requires grad, output
    becomes part of the graph (its backward is the reverse all-to-all).
    Raises TypeError/ValueError for bad tensors or splits (before any
    communication), lshmoe.LshmoeError when the exchange fails.
    """
    _check(output, input)
    if not dist.is_initialized():
        raise ValueError("torch.distributed is not initialised: call "
                         "torch.distributed.init_process_group() first")
    n = dist.get_world_size(group)
    in_splits = _splits(input_split_sizes, input.shape[0], n, "input_split_sizes")
    out_splits = _splits(output_split_sizes, output.shape[0], n, "output_split_sizes")
    if not output.is_contiguous():
        raise ValueError("output must be contiguous")
    if torch.is_grad_enabled() and input.requires_grad:
        res = _AllToAll.apply(input, tuple(output.shape), out_splits, in_splits, group)
        output.copy_(res)
    else:
        _exchange(context_for(group), output, input.detach(), out_splits, in_splits)
    return _Done() if async_op else None
