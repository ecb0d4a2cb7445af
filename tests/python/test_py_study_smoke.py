# SPDX-License-Identifier: Apache-2.0
"""Smoke test of the training study's trainer (benchmarks/python/
moe_lm_train.py): a few steps on 4 processes under lshmoe.launch, for the
exact exchange, FP8 dispatch and MoE mode with LSH. Checks that the loss
goes down, that lshmoe's bytes are counted (exact: the backward moves as
many bytes as the forward; compressed: fewer than exact) and that the time
split adds up. Text: the licence texts every Debian has (no download).

    test_py_study_smoke.py TRAINER"""
import glob
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyutil  # noqa: E402

pyutil.need("torch", "numpy")

TRAINER = sys.argv.pop(1) if len(sys.argv) > 1 else None
RUNS = "exact:0,fp8:0,lsh6-residual:0"


class StudySmoke(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        texts = sorted(glob.glob("/usr/share/common-licenses/*"))
        data = b"".join(open(t, "rb").read() for t in texts if os.path.isfile(t))
        if len(data) < 100000:
            print("SKIP: fewer than 100 kB of text in /usr/share/common-licenses")
            sys.exit(pyutil.SKIP)
        cls.tmp = tempfile.TemporaryDirectory()
        text = os.path.join(cls.tmp.name, "text.txt")
        with open(text, "wb") as f:
            f.write(data)
        out = os.path.join(cls.tmp.name, "runs")
        env = dict(os.environ, LSHMOE_ADAPT="0")
        cmd = [sys.executable, "-m", "lshmoe.launch", "--nproc-per-node", "4", TRAINER,
               "--text", text, "--out-dir", out, "--runs", RUNS, "--steps", "12",
               "--batch", "4", "--ctx", "32", "--eval-every", "6", "--eval-batches", "2",
               "--final-eval-batches", "2", "--lr", "1e-2"]
        subprocess.run(cmd, check=True, env=env, timeout=240)
        cls.res = {}
        for r in RUNS.split(","):
            m, s = r.split(":")
            with open(os.path.join(out, "%s_seed%s.json" % (m, s))) as f:
                cls.res[m] = json.load(f)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_loss_decreases(self):
        for m, r in self.res.items():
            tl = r["train_loss"]
            self.assertLess(sum(tl[-3:]) / 3, tl[0] - 0.3, m)
            self.assertLess(r["val_curve"][-1][1], r["val_curve"][0][1] - 0.3, m)

    def test_bytes_counted(self):
        ex = self.res["exact"]["bytes_per_step"]
        self.assertGreater(ex["dispatch"], 0)
        # Exact both ways: the backward moves the forward's rows back.
        self.assertEqual(ex["dispatch"], ex["dispatch_bwd"])
        self.assertEqual(ex["combine"], ex["combine_bwd"])
        fp8 = self.res["fp8"]["bytes_per_step"]
        # FP8: one byte per element plus scales and headers, against four.
        self.assertLess(fp8["dispatch"], 0.4 * fp8["combine"])
        self.assertGreater(fp8["dispatch"], 0.2 * fp8["combine"])
        lsh = self.res["lsh6-residual"]["bytes_per_step"]
        self.assertGreater(lsh["dispatch"], 0)
        self.assertLess(lsh["dispatch"], ex["dispatch"])

    def test_time_split(self):
        for m, r in self.res.items():
            t = r["time_per_step_s"]
            parts = t["compute"] + t["lshmoe_codec"] + t["exchange"] + t["dp_allreduce"]
            self.assertAlmostEqual(parts, t["total"], delta=1e-9, msg=m)
            self.assertGreater(t["exchange"], 0.0, m)


if __name__ == "__main__":
    if not TRAINER:
        print("usage: test_py_study_smoke.py TRAINER")
        sys.exit(2)
    pyutil.run(__name__)
