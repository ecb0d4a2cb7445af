# SPDX-License-Identifier: Apache-2.0
"""The C MoE mode (lshmoe_moe.h) as autograd Functions.

    moe  = MoE(context, num_experts, topk, hidden)
    p    = moe.layout(topk_idx, topk_weights)       # one routing, local
    xs   = MoEDispatch.apply(p, x)                  # centroids per local expert
    ys   = [expert_j(xs[j]) for j, ...]             # the caller's experts
    out  = MoECombine.apply(p, topk_weights, *ys)   # compensation + gate sum

Experts run in PyTorch on the received centroids (the C API's caller-filled
batches), so autograd differentiates them; backward calls the library's
exact backward: combine_backward hands each expert the gradient of its
centroid outputs (one row per group travels) and the gate gradients, and
dispatch_backward takes the experts' input gradients back to the tokens
through the centroid mean and the residual path. Every call is collective
over the context's ranks: every rank runs the same sequence.

The C layer computes in fp32, fp16 or bf16 (the dtype given to MoE);
float64 tensors are accepted for gradient checks and computed in fp32.
"""
import ctypes

import torch

from .. import _lib
from .._errors import check

_C_DTYPES = {torch.float32: _lib.DTYPE_FP32, torch.float16: _lib.DTYPE_FP16,
             torch.bfloat16: _lib.DTYPE_BF16, torch.float64: _lib.DTYPE_FP32}
_WIRE = {_lib.DTYPE_FP32: torch.float32, _lib.DTYPE_FP16: torch.float16,
         _lib.DTYPE_BF16: torch.bfloat16}


def _cpu(t, name):
    if not isinstance(t, torch.Tensor):
        raise TypeError("%s must be a torch.Tensor, not %s" % (name, type(t).__name__))
    if t.device.type != "cpu":
        raise ValueError("%s is on %s: the MoE mode handles CPU tensors in this version "
                         "(the CUDA codec is not built); it never copies silently"
                         % (name, t.device))
    return t


def _view(addr, rows, hidden, dtype):
    """A tensor over C memory (no copy); valid while the handle lives."""
    n = rows * hidden
    if n == 0:
        return torch.empty((rows, hidden), dtype=dtype)
    nbytes = n * torch.tensor([], dtype=dtype).element_size()
    buf = (ctypes.c_uint8 * nbytes).from_address(addr)
    return torch.frombuffer(buf, dtype=dtype).view(rows, hidden)


class MoE:
    """One lshmoe MoE layer (lshmoe_moe_t) over a Context. Collective to
    create; every rank passes the same arguments (checked by the library).

    dtype: the layer's token dtype (float32, float16, bfloat16; float64 is
    computed as float32). expert_rank: None (contiguous blocks) or the
    owner rank of each expert. compensation: None (the context's),
    "none", "residual" or "scaled".
    """

    def __init__(self, context, num_experts, topk, hidden, dtype=torch.float32,
                 expert_rank=None, compensation=None):
        if dtype not in _C_DTYPES:
            raise TypeError("dtype must be one of %s, not %s" % (list(_C_DTYPES), dtype))
        for v, name in ((num_experts, "num_experts"), (topk, "topk"), (hidden, "hidden")):
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError("%s must be an int" % name)
        comp = {None: _lib.UNSET_INT, "none": 0, "residual": 1, "scaled": 2}
        if compensation not in comp:
            raise ValueError("compensation must be None, 'none', 'residual' or 'scaled'")
        self.context = context
        self.num_experts, self.topk, self.hidden, self.dtype = num_experts, topk, hidden, dtype
        self.c_dtype = _C_DTYPES[dtype]
        self.wire = _WIRE[self.c_dtype]
        cfg = _lib.new_struct(_lib.MoEConfig, num_experts=num_experts, topk=topk,
                              dtype=self.c_dtype, hidden=hidden, compensation=comp[compensation])
        if expert_rank is not None:
            owners = [int(r) for r in expert_rank]
            if len(owners) != num_experts:
                raise ValueError("expert_rank has %d entries for %d experts"
                                 % (len(owners), num_experts))
            self._owners = (ctypes.c_int32 * num_experts)(*owners)
            cfg.expert_rank = self._owners
        self._handle = None
        h = ctypes.c_void_p()
        check(_lib.moe_create(context.handle, ctypes.byref(cfg), ctypes.byref(h)),
              "lshmoe_moe_create", context.handle)
        self._handle = h
        count, ids = ctypes.c_int(), ctypes.POINTER(ctypes.c_int32)()
        check(_lib.moe_local_experts(h, ctypes.byref(count), ctypes.byref(ids)),
              "lshmoe_moe_local_experts", context.handle)
        self.local_experts = [ids[i] for i in range(count.value)]

    def layout(self, topk_idx, topk_weights):
        """One routing (local, not collective): topk_idx [ntokens, topk]
        integer expert ids (-1 = dropped slot), topk_weights [ntokens, topk]
        floating gates. Returns the Pass that dispatch and combine share."""
        _cpu(topk_idx, "topk_idx")
        _cpu(topk_weights, "topk_weights")
        if topk_idx.dtype.is_floating_point or topk_idx.dtype == torch.bool:
            raise TypeError("topk_idx must be an integer tensor, not %s" % topk_idx.dtype)
        if not topk_weights.dtype.is_floating_point:
            raise TypeError("topk_weights must be floating, not %s" % topk_weights.dtype)
        if topk_idx.dim() != 2 or topk_idx.shape[1] != self.topk or \
                topk_weights.shape != topk_idx.shape:
            raise ValueError("topk_idx and topk_weights must both be [ntokens, %d], got %s "
                             "and %s" % (self.topk, tuple(topk_idx.shape),
                                         tuple(topk_weights.shape)))
        return _Pass(self, topk_idx.detach().to(torch.int32).contiguous(),
                     topk_weights.detach().to(torch.float32).contiguous())

    @property
    def handle(self):
        return self._handle

    def close(self):
        if self._handle is not None:
            _lib.moe_destroy(self._handle)
            self._handle = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


class _Pass:
    """One routing's handle (lshmoe_moe_handle_t), freed with the object."""

    def __init__(self, moe, idx, weights):
        self.moe = moe
        self.ntokens = idx.shape[0]
        self.idx, self.weights = idx, weights
        self._handle = None
        h = ctypes.c_void_p()
        check(_lib.moe_layout(moe.handle, self.ntokens, idx.data_ptr() or None,
                              weights.data_ptr() or None, ctypes.byref(h)),
              "lshmoe_moe_layout", moe.context.handle)
        self._handle = h

    def _check(self, st, call):
        check(st, call, self.moe.context.handle)

    def batches(self):
        arr, count = ctypes.POINTER(_lib.MoEBatch)(), ctypes.c_int()
        self._check(_lib.moe_batches(self._handle, ctypes.byref(arr), ctypes.byref(count)),
                    "lshmoe_moe_batches")
        return [arr[i] for i in range(count.value)]

    def stats(self):
        """This pass's lshmoe_moe_stats_t as a dict."""
        s = _lib.new_struct(_lib.MoEStats)
        self._check(_lib.moe_stats_get(self._handle, ctypes.byref(s)), "lshmoe_moe_stats_get")
        return {f[0]: getattr(s, f[0]) for f in _lib.MoEStats._fields_
                if f[0] not in ("size", "reserved")}

    def _tokens(self, t, name):
        _cpu(t, name)
        if not t.dtype.is_floating_point:
            raise TypeError("%s must be floating, not %s" % (name, t.dtype))
        if tuple(t.shape) != (self.ntokens, self.moe.hidden):
            raise ValueError("%s must be [%d, %d], got %s" % (name, self.ntokens,
                                                              self.moe.hidden, tuple(t.shape)))
        return t.detach().to(self.moe.wire).contiguous()

    def __del__(self):
        if getattr(self, "_handle", None) is not None:
            _lib.moe_handle_destroy(self._handle)
            self._handle = None


def _rows_of(t, b, hidden, name):
    if t is None:
        return None
    if tuple(t.shape) != (b.rows, hidden):
        raise ValueError("%s of expert %d must be [%d, %d], got %s"
                         % (name, b.expert, b.rows, hidden, tuple(t.shape)))
    return t


class MoEDispatch(torch.autograd.Function):
    """xs = MoEDispatch.apply(pass, x): the centroid rows each local expert
    receives (a tuple, local expert order; dtype of x). Collective."""

    @staticmethod
    def forward(ctx, p, x):
        if not isinstance(p, _Pass):
            raise TypeError("the first argument must be a pass from MoE.layout()")
        xc = p._tokens(x, "x")
        p._check(_lib.moe_dispatch(p.moe.handle, p._handle, xc.data_ptr() or None, None),
                 "lshmoe_moe_dispatch")
        ctx.p, ctx.x_dtype = p, x.dtype
        h = p.moe.hidden
        return tuple(_view(b.inp, b.rows, h, p.moe.wire).to(x.dtype, copy=True)
                     for b in p.batches())

    @staticmethod
    def backward(ctx, *grads):
        p, h = ctx.p, ctx.p.moe.hidden
        for b, g in zip(p.batches(), grads):
            dst = _view(b.grad_in, b.rows, h, p.moe.wire)
            if g is None:
                dst.zero_()
            else:
                dst.copy_(_rows_of(g, b, h, "gradient"))
        dx = torch.empty((p.ntokens, h), dtype=p.moe.wire)
        p._check(_lib.moe_dispatch_backward(p.moe.handle, p._handle,
                                            dx.data_ptr() or None, None),
                 "lshmoe_moe_dispatch_backward")
        return None, dx.to(ctx.x_dtype)


class MoECombine(torch.autograd.Function):
    """out = MoECombine.apply(pass, topk_weights, *ys): ys[j] is local expert
    j's output on xs[j]; out [ntokens, hidden] is each token's gate-weighted
    sum of its compensated expert outputs. topk_weights must be the values
    the pass was laid out with (its gradient comes from the library).
    Collective."""

    @staticmethod
    def forward(ctx, p, topk_weights, *ys):
        if not isinstance(p, _Pass):
            raise TypeError("the first argument must be a pass from MoE.layout()")
        if not torch.equal(topk_weights.detach().to(torch.float32), p.weights):
            raise ValueError("topk_weights differ from those the pass was laid out with")
        batches = p.batches()
        if len(ys) != len(batches):
            raise ValueError("%d expert outputs for %d local experts" % (len(ys), len(batches)))
        h = p.moe.hidden
        for b, y in zip(batches, ys):
            _cpu(y, "expert output")
            _view(b.out, b.rows, h, p.moe.wire).copy_(_rows_of(y, b, h, "output"))
        out = torch.empty((p.ntokens, h), dtype=p.moe.wire)
        p._check(_lib.moe_combine(p.moe.handle, p._handle, out.data_ptr() or None, None),
                 "lshmoe_moe_combine")
        ctx.p = p
        ctx.dtypes = (topk_weights.dtype, [y.dtype for y in ys])
        out_dtype = ys[0].dtype if ys else p.moe.wire
        return out.to(out_dtype)

    @staticmethod
    def backward(ctx, dy):
        p, h = ctx.p, ctx.p.moe.hidden
        w_dtype, y_dtypes = ctx.dtypes
        dyc = p._tokens(dy, "dy")
        dg = torch.empty((p.ntokens, p.moe.topk), dtype=torch.float32)
        p._check(_lib.moe_combine_backward(p.moe.handle, p._handle, dyc.data_ptr() or None,
                                           dg.data_ptr() or None, None),
                 "lshmoe_moe_combine_backward")
        gys = [_view(b.grad_out, b.rows, h, p.moe.wire).to(dt, copy=True)
               for b, dt in zip(p.batches(), y_dtypes)]
        return (None, dg.to(w_dtype)) + tuple(gys)
