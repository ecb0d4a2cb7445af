# SPDX-License-Identifier: Apache-2.0
"""One process: the binding against the C library (self transport, and a
one-rank torch.distributed group for the drop-in): round trips, every
error path raising with the library's message, gradchecks, and
MoELayer(compress=False) against the plain PyTorch reference."""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyutil  # noqa: E402

pyutil.need("numpy", "torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

import lshmoe  # noqa: E402
import lshmoe.torch as lt  # noqa: E402


def clustered(ntokens, hidden, centers=4, noise=0.01, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(centers, hidden, generator=g)
    pick = torch.randint(0, centers, (ntokens,), generator=g)
    return (c[pick] + noise * torch.randn(ntokens, hidden, generator=g)).to(dtype)


class ConfigAndContext(unittest.TestCase):
    def test_config_fields_round_trip(self):
        ctx = lshmoe.Context(None, lshmoe.Config(num_hashes=4, cdim=8, reduce="pad",
                                                 compensation="none", min_ratio=1.5))
        c = ctx.config
        self.assertEqual((c.num_hashes, c.cdim, c.reduce, c.compensation, c.min_ratio),
                         (4, 8, 1, 0, 1.5))
        self.assertEqual((ctx.rank, ctx.nranks), (0, 1))

    def test_config_struct_matches_the_library(self):
        # lshmoe_config_init writes sizeof(lshmoe_config_t) as the library
        # was built: the ctypes mirror must have the same size, or new C
        # fields would be out of Python's reach.
        import ctypes
        buf = (ctypes.c_uint8 * 4096)()
        self.assertEqual(lshmoe._lib.lib.lshmoe_config_init(buf), 0)
        size = ctypes.c_uint32.from_buffer(buf).value
        self.assertEqual(size, ctypes.sizeof(lshmoe._lib.ConfigStruct))

    def test_config_budget_fields(self):
        ctx = lshmoe.Context(None, lshmoe.Config(codec="budget", max_error=0.1))
        self.assertEqual((ctx.config.codec, ctx.config.max_error), (1, 0.1))

    def test_config_rejects_before_c(self):
        with self.assertRaises(AttributeError):
            lshmoe.Config(hashes=3)
        with self.assertRaises(TypeError):
            lshmoe.Config(cdim="4")
        with self.assertRaises(ValueError):
            lshmoe.Config(reduce="zip").to_c()

    def test_library_errors_carry_name_and_message(self):
        cases = [(dict(cdim=3), "ERR_INVALID_ARG", "power of two"),
                 (dict(num_hashes=99), "ERR_INVALID_ARG", "HASHES"),
                 (dict(transport="nccl"), "ERR_INVALID_ARG", "cannot serve"),
                 (dict(transport="carrier-pigeon"), "ERR_INVALID_ARG", "unknown transport")]
        for fields, name, text in cases:
            with self.assertRaises(lshmoe.LshmoeError) as cm:
                lshmoe.Context(None, lshmoe.Config(**fields))
            self.assertEqual(cm.exception.name, name, fields)
            self.assertIn(text, cm.exception.message, fields)
            self.assertLess(cm.exception.status, 0)

    def test_bad_comm_type(self):
        with self.assertRaises(TypeError):
            lshmoe.Context(object())

    def test_closed_context(self):
        ctx = lshmoe.Context()
        ctx.close()
        with self.assertRaises(ValueError):
            ctx.rank


class AllToAllV(unittest.TestCase):
    def setUp(self):
        self.ctx = lshmoe.Context(None, lshmoe.Config(compress=1, min_tokens=0))

    def test_numpy_and_torch_round_trip(self):
        x = np.random.default_rng(1).standard_normal((40, 24)).astype(np.float32)
        y = np.zeros_like(x)
        self.ctx.alltoallv(x, [40], y, [40])
        np.testing.assert_array_equal(x, y)  # the own segment never travels: exact
        t = torch.arange(30, dtype=torch.int64).view(10, 3)
        u = torch.zeros_like(t)
        self.ctx.alltoallv(t, [10], u, [10])
        self.assertTrue(torch.equal(t, u))
        d = torch.randn(5, 7, dtype=torch.float64)
        e = torch.zeros_like(d)
        self.ctx.alltoallv(d, [5], e, [5])
        self.assertTrue(torch.equal(d, e))

    def test_argument_errors_before_c(self):
        x = np.zeros((4, 2), np.float32)
        with self.assertRaises(TypeError):
            self.ctx.alltoallv([1, 2], [1], x, [1])
        with self.assertRaises(ValueError):
            self.ctx.alltoallv(x, [4, 0], x.copy(), [4])           # wrong rank count
        with self.assertRaises(ValueError):
            self.ctx.alltoallv(x, [5], np.zeros((5, 2), np.float32), [5])  # past the end
        with self.assertRaises(ValueError):
            self.ctx.alltoallv(x, [4], np.zeros((4, 2), np.float16), [4])  # dtype
        with self.assertRaises(ValueError):
            self.ctx.alltoallv(x[:, :1], [4], np.zeros((4, 1), np.float32), [4])
        with self.assertRaises(ValueError):
            self.ctx.alltoallv(torch.zeros(4, 2, device="meta"), [4], torch.zeros(4, 2), [4])

    def test_library_error_from_alltoallv(self):
        x = np.zeros((4, 2), np.float32)
        y = np.zeros((4, 2), np.float32)
        with self.assertRaises(lshmoe.LshmoeError) as cm:
            self.ctx.alltoallv(x, [4], y, [3])  # the own segment: 4 sent, 3 expected
        self.assertEqual(cm.exception.name, "ERR_MISMATCH")
        self.assertTrue(cm.exception.message)


def loopback(rank=0, nranks=1, fail=None):
    """One rank's own collectives: everything comes back to itself."""
    import ctypes

    def a2av(send, sbytes, recv, rbytes):
        if fail:
            raise RuntimeError(fail)
        ctypes.memmove(recv, send, sum(sbytes))

    def ag(send, nbytes, recv):
        ctypes.memmove(recv, send, nbytes)
    return lshmoe.UserComm(rank, nranks, a2av, ag)


class UserCommFromPython(unittest.TestCase):
    def test_round_trip(self):
        ctx = lshmoe.Context(loopback(), lshmoe.Config(min_tokens=0))
        x = clustered(64, 32).numpy()
        y = np.zeros_like(x)
        ctx.alltoallv(x, [64], y, [64])
        np.testing.assert_array_equal(x, y)

    def test_failing_callback_raises_with_its_text(self):
        ctx = lshmoe.Context(loopback(fail="the network is on fire"))
        x = np.zeros((4, 8), np.float32)
        with self.assertRaises(lshmoe.LshmoeError) as cm:
            ctx.alltoallv(x, [4], x.copy(), [4])
        self.assertEqual(cm.exception.name, "ERR_CALLBACK")
        self.assertIn("RuntimeError: the network is on fire", cm.exception.message)

    def test_rank_out_of_range(self):
        with self.assertRaises(lshmoe.LshmoeError) as cm:
            lshmoe.Context(loopback(rank=3, nranks=2))
        self.assertEqual(cm.exception.name, "ERR_INVALID_ARG")


class DropIn(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        dist.init_process_group("gloo", init_method="file://" + os.path.join(cls.tmp, "store"),
                                rank=0, world_size=1)

    @classmethod
    def tearDownClass(cls):
        dist.destroy_process_group()

    def test_matches_torch(self):
        x = torch.randn(12, 5)
        out, ref = torch.empty_like(x), torch.empty_like(x)
        lt.all_to_all_single(out, x)
        dist.all_to_all_single(ref, x)
        self.assertTrue(torch.equal(out, ref))
        self.assertIsNotNone(lt.all_to_all_single(out, x, async_op=True).wait())

    def test_errors(self):
        x = torch.randn(4, 3)
        with self.assertRaises(TypeError):
            lt.all_to_all_single(torch.empty(4, 3, dtype=torch.float16), x)
        with self.assertRaises(ValueError):
            lt.all_to_all_single(torch.empty(4, 2), x)
        with self.assertRaises(ValueError):
            lt.all_to_all_single(torch.empty(4, 3), x, input_split_sizes=[3])
        with self.assertRaises(ValueError):
            lt.all_to_all_single(torch.empty(4, 3, device="meta"), x)
        with self.assertRaises(TypeError):
            lt.all_to_all_single(torch.empty(4, 3), x.numpy())

    def test_gradcheck_float64(self):
        # float64 has no lshmoe codec: it travels exact, so gradcheck sees
        # the exact exchange and its reverse.
        x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)

        def f(inp):
            out = torch.empty(6, 3, dtype=torch.float64)
            lt.all_to_all_single(out, inp)
            return out * torch.arange(1.0, 7.0, dtype=torch.float64).view(6, 1)
        self.assertTrue(torch.autograd.gradcheck(f, (x,)))

    def test_backward_is_the_reverse_exchange(self):
        x = torch.randn(8, 4, requires_grad=True)
        out = torch.empty(8, 4)
        lt.all_to_all_single(out, x)
        g = torch.randn(8, 4)
        out.backward(g)
        self.assertTrue(torch.equal(x.grad, g))


class MoE(unittest.TestCase):
    E, K, H, F, T = 4, 2, 16, 24, 64

    def layer(self, compress, seed=3, **kw):
        torch.manual_seed(seed)
        cfg = lshmoe.Config(min_tokens=2, num_hashes=2, cdim=2, min_ratio=1.0)
        return lt.MoELayer(self.H, self.F, self.E, self.K, compress=compress, config=cfg, **kw)

    def test_exact_layer_equals_reference(self):
        m = self.layer(False)
        x = torch.randn(self.T, self.H)
        y = m(x)
        idx, gates = m.route(x)
        experts = {e: m.experts[j] for j, e in enumerate(m.moe.local_experts)}
        ref = lt.reference_moe(x, idx, gates, experts)
        self.assertTrue(torch.equal(y, ref), (y - ref).abs().max())
        # Gradients agree too (to fp32 rounding: the orders of sums differ).
        y.sum().backward()
        gl = [p.grad.clone() for p in m.parameters()]
        m.zero_grad()
        lt.reference_moe(x, *m.route(x), experts).sum().backward()
        for a, p in zip(gl, m.parameters()):
            torch.testing.assert_close(a, p.grad, rtol=1e-4, atol=1e-5)

    def test_compressed_within_reported_error(self):
        exact, comp = self.layer(False), self.layer(True)
        x = clustered(self.T, self.H, centers=3, noise=0.05, seed=5)
        ye, yc = exact(x), comp(x)
        st = comp.last_pass.stats()
        self.assertLess(st["rows_sent"], st["slots"])  # it did compress
        err = st["centroid_rel_error"]
        # Per slot |E(c) + (x - c) - E(x)| <= (Lip(E) + 1) |x - c|; gates are
        # softmax probabilities (sum <= 1); so the whole output differs by at
        # most (L + 1) * err * sqrt(sum over slots |x_t|^2).
        lip = max(torch.linalg.matrix_norm(e[0].weight, 2) * 1.13 *
                  torch.linalg.matrix_norm(e[2].weight, 2) for e in comp.experts)
        bound = (lip + 1) * err * (x.norm() * self.K ** 0.5)
        diff = (yc - ye).norm()
        self.assertGreater(err, 0)
        self.assertLessEqual(diff.item(), bound.item())

    def test_gradcheck_dispatch_combine(self):
        ctx = lshmoe.Context(None, lshmoe.Config(min_tokens=2, num_hashes=2, cdim=2,
                                                 min_ratio=1.0))
        moe = lt.MoE(ctx, 2, 2, 4, dtype=torch.float64)
        x = clustered(6, 4, centers=2, noise=0.001, seed=2, dtype=torch.float64)
        x.requires_grad_(True)
        idx = torch.tensor([[0, 1]] * 6, dtype=torch.int32)
        w = torch.rand(6, 2, dtype=torch.float64, requires_grad=True)
        a = torch.randn(4, 4, dtype=torch.float64)
        seen = []

        def f(xx, ww):
            p = moe.layout(idx, ww)
            xs = lt.MoEDispatch.apply(p, xx)
            seen.append(p.stats()["rows_sent"])
            ys = [torch.tanh(xs[0] @ a), xs[1] * 2.0]
            return lt.MoECombine.apply(p, ww, *ys)
        # The C layer computes in fp32: finite differences need a step and
        # tolerances above fp32 rounding.
        self.assertTrue(torch.autograd.gradcheck(f, (x, w), eps=1e-3, atol=2e-3, rtol=2e-3))
        self.assertLess(min(seen), 12)  # the checked passes did compress

    def test_moe_errors(self):
        ctx = lshmoe.Context()
        with self.assertRaises(lshmoe.LshmoeError) as cm:
            lt.MoE(ctx, 0, 2, 4)
        self.assertEqual(cm.exception.name, "ERR_INVALID_ARG")
        self.assertTrue(cm.exception.message)
        moe = lt.MoE(ctx, 2, 1, 4)
        with self.assertRaises(lshmoe.LshmoeError) as cm:
            moe.layout(torch.tensor([[5]], dtype=torch.int32), torch.ones(1, 1))
        self.assertIn("5", cm.exception.message)
        with self.assertRaises(TypeError):
            moe.layout(torch.zeros(1, 1), torch.ones(1, 1))
        with self.assertRaises(ValueError):
            moe.layout(torch.zeros(1, 2, dtype=torch.int32), torch.ones(1, 2))
        p = moe.layout(torch.zeros(3, 1, dtype=torch.int32), torch.ones(3, 1))
        with self.assertRaises(ValueError):
            lt.MoEDispatch.apply(p, torch.zeros(3, 5))
        with self.assertRaises(ValueError):
            lt.MoEDispatch.apply(p, torch.zeros(3, 4, device="meta"))
        xs = lt.MoEDispatch.apply(p, torch.zeros(3, 4))
        with self.assertRaises(ValueError):
            lt.MoECombine.apply(p, torch.ones(3, 1), xs[0][:, :2], xs[1])


if __name__ == "__main__":
    pyutil.run(__name__)
