#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 the lshmoe authors
"""The training study: trains the byte-level MoE LM of moe_lm.py once per
exchange method (4 processes under lshmoe.launch, one launch for all runs),
then writes the table, the loss curves and the JSON behind them.

    PYTHONPATH=build/bindings/python /usr/bin/python3 benchmarks/python/training_study.py \\
        --text benchmarks/data/cache/sotu.txt --results benchmarks/results

Outputs in --results: training_study.json (every run, the summary, the
command, the versions), training_study.md (the table), training_study.png
(validation loss curves). One JSON per run goes to --results/training_study_runs;
a run whose JSON is there is not trained again (delete it to rerun), so an
interrupted study resumes. --report-only rebuilds the outputs from those.
"""
import argparse
import glob
import json
import math
import os
import platform
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# Ordered so that an interrupted study still has the reference, the noise
# floor and one point of each family early.
DEFAULT_RUNS = ("exact:0,fp8:0,lsh6-residual:0,exact:1,budget-0.1:0,int4:0,exact:2,lsh4-residual:0,"
                "lsh6-none:0,lsh4-none:0,lsh-fp8:0,budget-0.05:0,budget-0.2:0,exact:3,exact:4,"
                "lsh6-residual:1,lsh6-none:1,budget-0.1:1,lsh6-residual:2,lsh6-none:2,budget-0.1:2")
DESCRIBE = {
    "exact": "exact (fp32, compress 0)",
    "fp8": "FP8 dispatch, exact combine",
    "int4": "int4 dispatch, exact combine",
    "lsh-fp8": "LSH x FP8 centroids dispatch (6 functions), exact combine",
    "lsh4-none": "MoE mode, LSH 4 functions, no compensation",
    "lsh4-residual": "MoE mode, LSH 4 functions, residual compensation",
    "lsh6-none": "MoE mode, LSH 6 functions, no compensation",
    "lsh6-residual": "MoE mode, LSH 6 functions, residual compensation",
    "budget-0.05": "error budget 0.05, dispatch and combine",
    "budget-0.1": "error budget 0.1, dispatch and combine",
    "budget-0.2": "error budget 0.2, dispatch and combine",
}


def train(a, raw_dir, passthrough):
    cmd = [sys.executable, "-m", "lshmoe.launch", "--nproc-per-node", str(a.nproc),
           os.path.join(HERE, "moe_lm_train.py"), "--text", a.text, "--out-dir", raw_dir,
           "--runs", a.runs] + passthrough
    if a.activations:
        cmd += ["--save-activations", a.activations]
    print("training_study: " + " ".join(cmd), flush=True)
    return subprocess.call(cmd)


def summarize(runs):
    exact = [r["final_val_loss"] for r in runs if r["method"] == "exact"]
    mean = statistics.mean(exact) if exact else float("nan")
    sd = statistics.stdev(exact) if len(exact) > 1 else float("nan")
    eb = [r["bytes_per_step"] for r in runs if r["method"] == "exact"]
    ref_bytes = statistics.mean(b["dispatch"] + b["combine"] for b in eb) if eb else float("nan")
    exact_by_seed = {r["seed"]: r["final_val_loss"] for r in runs if r["method"] == "exact"}
    rows = []
    for r in runs:
        b, t = r["bytes_per_step"], r["time_per_step_s"]
        loss = r["final_val_loss"]
        d = loss - mean
        fwd = b["dispatch"] + b["combine"]
        rows.append({
            "method": r["method"], "seed": r["seed"], "what": DESCRIBE.get(r["method"], ""),
            "val_loss": loss, "ppl": math.exp(loss),
            "val_loss_exact_dispatch": r["final_val_loss_exact_dispatch"],
            "delta": d, "delta_sd": d / sd if sd and sd == sd and sd > 0 else None,
            "delta_pct": 100.0 * d / mean,
            # against the exact run with the same initial weights and data
            "delta_paired_pct": (100.0 * (loss / exact_by_seed[r["seed"]] - 1.0)
                                 if r["seed"] in exact_by_seed else None),
            "delta_exact_dispatch_pct": 100.0 * (r["final_val_loss_exact_dispatch"] - mean) / mean,
            "within_1pct": d <= 0.01 * mean,  # not worse than exact by more than 1%
            "dispatch_B": b["dispatch"], "combine_B": b["combine"],
            "backward_B": b["dispatch_bwd"] + b["combine_bwd"],
            "total_B": fwd + b["dispatch_bwd"] + b["combine_bwd"],
            "fwd_fraction_of_exact": fwd / ref_bytes,
            "t_total": t["total"], "t_compute": t["compute"], "t_codec": t["lshmoe_codec"],
            "t_exchange": t["exchange"], "t_allreduce": t["dp_allreduce"]})
    methods = []
    for m in dict.fromkeys(x["method"] for x in rows):
        mine = [x for x in rows if x["method"] == m]
        loss = statistics.mean(x["val_loss"] for x in mine)
        paired = [x["delta_paired_pct"] for x in mine if x["delta_paired_pct"] is not None]
        methods.append({
            "method": m, "seeds": len(mine), "val_loss": loss,
            "val_loss_exact_dispatch": statistics.mean(x["val_loss_exact_dispatch"]
                                                       for x in mine),
            "delta_pct": 100.0 * (loss - mean) / mean,
            "delta_sd": (loss - mean) / sd if sd and sd == sd and sd > 0 else None,
            "delta_paired_pct": statistics.mean(paired) if paired else None,
            "within_1pct": loss - mean <= 0.01 * mean,
            "fwd_B": statistics.mean(x["dispatch_B"] + x["combine_B"] for x in mine),
            "total_B": statistics.mean(x["total_B"] for x in mine)})
    within = [x for x in methods if x["within_1pct"] and x["method"] != "exact"]
    best = min(within, key=lambda x: x["fwd_B"]) if within else None
    best_t = min(within, key=lambda x: x["total_B"]) if within else None
    return {"exact_mean": mean, "exact_sd": sd, "exact_seeds": len(exact),
            "exact_fwd_bytes_per_step": ref_bytes, "rows": rows, "methods": methods,
            "fewest_bytes_within_1pct": best["method"] if best else None,
            "fewest_total_bytes_within_1pct": best_t["method"] if best_t else None}


def table(s):
    h = ("| method | seed | val loss | ppl | vs exact mean | in seed sd | vs exact, same seed "
         "| val loss, exact dispatch "
         "| dispatch B/step | combine B/step | fwd bytes vs exact | backward B/step "
         "| step s: compute / codec / exchange / allreduce |\n"
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    out = []
    for x in s["rows"]:
        sd = "%+.1f" % x["delta_sd"] if x["delta_sd"] is not None else "-"
        pp = "%+.2f%%" % x["delta_paired_pct"] if x["delta_paired_pct"] is not None else "-"
        out.append("| %s | %d | %.4f | %.2f | %+.2f%% | %s | %s | %.4f (%+.2f%%) | %.0f | %.0f "
                   "| %.3f | %.0f | %.2f: %.2f / %.3f / %.2f / %.3f |" % (
                       x["method"], x["seed"], x["val_loss"], x["ppl"], x["delta_pct"], sd, pp,
                       x["val_loss_exact_dispatch"], x["delta_exact_dispatch_pct"],
                       x["dispatch_B"], x["combine_B"], x["fwd_fraction_of_exact"],
                       x["backward_B"], x["t_total"], x["t_compute"], x["t_codec"],
                       x["t_exchange"], x["t_allreduce"]))
    h2 = ("\n| method | seeds | mean val loss | vs exact mean | in seed sd | vs exact, same "
          "seeds | within 1% | fwd B/step | fwd+bwd B/step |\n|---|---|---|---|---|---|---|---|---|\n")
    out2 = []
    for x in s["methods"]:
        out2.append("| %s | %d | %.4f | %+.2f%% | %s | %s | %s | %.0f | %.0f |" % (
            x["method"], x["seeds"], x["val_loss"], x["delta_pct"],
            "%+.1f" % x["delta_sd"] if x["delta_sd"] is not None else "-",
            "%+.2f%%" % x["delta_paired_pct"] if x["delta_paired_pct"] is not None else "-",
            "yes" if x["within_1pct"] else "no", x["fwd_B"], x["total_B"]))
    return h + "\n".join(out) + "\n" + h2 + "\n".join(out2) + "\n"


def plot(runs, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(13, 5))
    colors = plt.get_cmap("tab20").colors
    dashes = ["-", "--", ":", "-.", (0, (5, 1, 1, 1))]
    ncomp = 0
    for r in runs:
        steps = [p[0] for p in r["val_curve"]]
        loss = [p[1] for p in r["val_curve"]]
        if r["method"] == "exact":  # the seeds in black, one dash pattern each
            style = dict(color="black", lw=1.6, ls=dashes[r["seed"] % len(dashes)])
        else:
            style = dict(color=colors[ncomp % len(colors)], lw=1)
            ncomp += 1
        label = "%s (seed %d)" % (r["method"], r["seed"])
        for axis in ax:
            axis.plot(steps, loss, label=label, **style)
    ax[0].set_title("validation loss (own exchange)")
    last = [p[1] for r in runs for p in r["val_curve"][len(r["val_curve"]) // 2:]]
    if last:
        ax[1].set_ylim(min(last) - 0.02, max(last) + 0.02)
        ax[1].set_xlim(runs[0]["val_curve"][len(runs[0]["val_curve"]) // 2][0], None)
    ax[1].set_title("second half, zoomed")
    for axis in ax:
        axis.set_xlabel("step")
        axis.set_ylabel("val loss (nats/byte)")
    ax[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text", required=True)
    ap.add_argument("--results", default=os.path.join(HERE, "..", "results"))
    ap.add_argument("--runs", default=DEFAULT_RUNS)
    ap.add_argument("--nproc", type=int, default=4)
    ap.add_argument("--activations", help="directory for the exact model's MoE inputs")
    ap.add_argument("--report-only", action="store_true")
    a, passthrough = ap.parse_known_args()
    raw_dir = os.path.join(a.results, "training_study_runs")
    os.makedirs(raw_dir, exist_ok=True)
    if not a.report_only:
        rc = train(a, raw_dir, passthrough)
        if rc != 0:
            print("training_study: training exited with %d; reporting what finished" % rc,
                  flush=True)
    order = {r: i for i, r in enumerate(a.runs.split(","))}
    runs = [json.load(open(f)) for f in glob.glob(os.path.join(raw_dir, "*.json"))]
    runs.sort(key=lambda r: order.get("%s:%d" % (r["method"], r["seed"]), 1 << 30))
    if not runs:
        print("training_study: no run finished")
        return 1
    s = summarize(runs)
    missing = [r for r in a.runs.split(",") if r not in
               {"%s:%d" % (x["method"], x["seed"]) for x in runs}]
    doc = {"reproduce": "bash scripts/run-training-study.sh",
           "command": " ".join([sys.executable] + sys.argv),
           "trainer_command": ("python3 -m lshmoe.launch --nproc-per-node %d "
                               "benchmarks/python/moe_lm_train.py --text TEXT --out-dir DIR "
                               "--runs METHOD:SEED (defaults for everything else)" % a.nproc),
           "environment": "LSHMOE_ADAPT=0 LSHMOE_LOG_LEVEL=none (set by the script)",
           "runs_requested": a.runs,
           "runs_missing": missing, "versions": runs[0]["versions"],
           "host": {"machine": platform.machine(), "cpus": os.cpu_count()},
           "summary": s, "runs": runs}
    with open(os.path.join(a.results, "training_study.json"), "w") as f:
        json.dump(doc, f, indent=1)
    with open(os.path.join(a.results, "training_study.md"), "w") as f:
        f.write("Exact: mean %.4f, seed sd %.4f over %d seeds. Within 1%% of exact, the "
                "fewest forward bytes: %s; the fewest bytes forward and backward: %s. "
                "Missing runs: %s.\n\n" % (
                    s["exact_mean"], s["exact_sd"], s["exact_seeds"],
                    s["fewest_bytes_within_1pct"], s["fewest_total_bytes_within_1pct"],
                    ", ".join(missing) or "none"))
        f.write(table(s))
    plot(runs, os.path.join(a.results, "training_study.png"))
    print(table(s))
    print("training_study: exact %.4f +- %.4f; fewest bytes within 1%%: %s; missing: %s" % (
        s["exact_mean"], s["exact_sd"], s["fewest_bytes_within_1pct"],
        ", ".join(missing) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
