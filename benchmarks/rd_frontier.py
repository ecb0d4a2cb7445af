#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 the lshmoe authors
"""The rate-distortion frontier of the segment codec, per data set.

Run it with Debian's interpreter (numpy/matplotlib are optional: without
matplotlib there is no plot):

    /usr/bin/python3 benchmarks/rd_frontier.py                  # GloVe stream + Gaussian
    /usr/bin/python3 benchmarks/rd_frontier.py --data glove --data words=/tmp/words.npy

For every data set it runs codec_perf (one thread, no communication) twice:

1. every fixed encoding without a guard, LSH ones over --hashes: the points
   of the error-vs-ratio plot (OUT/error_vs_ratio_<data>.png);
2. the budget mode at each --budgets value, and beside it, at the same
   budgets, every fixed quantizer with the same guard (a segment over the
   budget travels raw): "the best fixed quantizer at the same budget".

It writes OUT/frontier.md (one table per data set: ratio, error, the
ladder's choices, encode/decode GB/s beside memcpy in the same run, search
passes, and the best fixed quantizer), OUT/frontier.json and the raw
codec_perf JSON under OUT/raw/. Error = relative L2 over all tokens,
sqrt(sum |x - x'|^2 / sum |x|^2); the budget bounds it per segment.
Exit status: 0, or 2 when a codec_perf run failed.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ALIASES = {"glove": os.path.join(HERE, "data", "cache", "glove_stream.npy")}
QUANTIZERS = ["fp8", "int8", "int4", "int4e", "int2"]
LSH_CODECS = ["lsh", "lsh-int8", "lsh-int4", "lsh-refine", "lsh-refine-int8",
              "lsh-refine-int4e"]


def run_perf(args, data, extra, tag):
    exe = os.path.join(args.build, "benchmarks", "codec_perf")
    raw = os.path.join(args.out, "raw", "%s_%s.json" % (data[0], tag))
    cmd = [exe, "--dtype", args.dtype, "--segment", str(args.segment),
           "-n", str(args.iters), "-w", "1", "-J", raw] + data[1] + extra
    print("+ " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        return None
    with open(raw) as f:
        return json.load(f)


def data_args(spec, tokens):
    name, _, path = spec.partition("=")
    if name == "gaussian" and not path:
        return name, ["--data", "gaussian", "--tokens", str(tokens), "--hidden", "100"]
    path = path or ALIASES.get(name, name)
    if not os.path.exists(path):
        return name, None
    return name, ["--data", path]


def best_fixed(rows, budget):
    """The fixed quantizer with the highest ratio at this guard."""
    best = None
    for r in rows:
        if r["codec"] in QUANTIZERS and abs(r["max_error"] - budget) < 1e-12:
            if best is None or r["ratio"] > best["ratio"]:
                best = r
    return best


def table(name, rows, budgets):
    out = ["### %s" % name, "",
           "| budget | ratio | error | ladder's choices (segments) | enc GB/s | dec GB/s "
           "| memcpy GB/s | passes | best fixed quantizer, same budget |",
           "|---|---|---|---|---|---|---|---|---|"]
    for b in budgets:
        r = next((x for x in rows if x["codec"] == "budget" and
                  abs(x["max_error"] - b) < 1e-12), None)
        if r is None:
            continue
        f = best_fixed(rows, b)
        if f is None or f["ratio"] < 1.0001:
            fixed = "none fits (raw)"
        else:
            fixed = "%s %.2fx at %.3f" % (f["codec"], f["ratio"], f["rel_err"])
        if f is not None and r["ratio"] + 1e-9 < f["ratio"]:
            fixed += " (better than budget)"
        out.append("| %g | %.2fx | %.3f | %s | %.3f | %.2f | %.1f | %.1f | %s |" % (
            b, r["ratio"], r["rel_err"], r["choices"].replace(",", ", "), r["enc_gbps"],
            r["dec_gbps"], r["memcpy_gbps"], r["passes"], fixed))
    return "\n".join(out) + "\n"


def plot(args, name, points, budget_rows):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no matplotlib: no plot", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(8, 5.5))
    by = {}
    for r in points:
        by.setdefault(r["codec"], []).append(r)
    for codec, rs in sorted(by.items()):
        rs.sort(key=lambda r: r["ratio"])
        style = "s" if codec in QUANTIZERS else "o-"
        ax.plot([r["ratio"] for r in rs], [r["rel_err"] for r in rs], style, label=codec,
                markersize=5)
    bs = sorted(budget_rows, key=lambda r: r["ratio"])
    ax.plot([r["ratio"] for r in bs], [r["rel_err"] for r in bs], "k*-", markersize=11,
            label="budget (ladder)")
    ax.set_xscale("log")
    ax.set_xlabel("ratio (token bytes / wire bytes, every byte counted)")
    ax.set_ylabel("relative L2 error")
    ax.set_title("%s: %s, segments of %d tokens" % (name, args.dtype, args.segment))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    path = os.path.join(args.out, "error_vs_ratio_%s.png" % name)
    fig.savefig(path, dpi=110)
    print("wrote " + path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "frontier"))
    ap.add_argument("--data", action="append",
                    help="glove, gaussian, or NAME=FILE.npy (repeatable; default glove, gaussian)")
    ap.add_argument("--budgets", default="0.01,0.03,0.1,0.2,0.3")
    ap.add_argument("--hashes", default="2,3,4,5,6,8,10,12")
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--segment", type=int, default=512)
    ap.add_argument("--tokens", type=int, default=16384, help="gaussian: tokens")
    ap.add_argument("-n", "--iters", type=int, default=3)
    args = ap.parse_args()
    budgets = [float(b) for b in args.budgets.split(",")]
    os.makedirs(os.path.join(args.out, "raw"), exist_ok=True)
    md = ["# Rate-distortion frontier", "",
          "codec_perf, one thread, %s, segments of %d tokens; medians of %d runs. "
          "GB/s are token bytes per second; memcpy is timed in the same loop. "
          "passes = token rows visited by the ladder's error evaluations / tokens." %
          (args.dtype, args.segment, args.iters), ""]
    result, rc = {}, 0
    for spec in args.data or ["glove", "gaussian"]:
        name, dargs = data_args(spec, args.tokens)
        if dargs is None:
            print("%s: no file, skipped (see docs/benchmarks.md for the GloVe stream)" % name,
                  file=sys.stderr)
            continue
        pts = run_perf(args, (name, dargs), ["--codecs", ",".join(QUANTIZERS + LSH_CODECS),
                                             "--hashes", args.hashes], "points")
        bud = run_perf(args, (name, dargs), ["--codecs", ",".join(QUANTIZERS + ["budget"]),
                                             "--max-error", args.budgets, "--guard", "1"],
                       "budget")
        if pts is None or bud is None:
            rc = 2
            continue
        result[name] = {"points": pts["rows"], "budget": bud["rows"]}
        md.append(table(name, bud["rows"], budgets))
        plot(args, name, pts["rows"], [r for r in bud["rows"] if r["codec"] == "budget"])
    with open(os.path.join(args.out, "frontier.json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(args.out, "frontier.md"), "w") as f:
        f.write("\n".join(md))
    print("\n".join(md))
    return rc


if __name__ == "__main__":
    sys.exit(main())
