#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Runs an unmodified MPI program several ways under `mpiexec -n 4` and
checks what the LD_PRELOAD interposer did:

  plain     without the preload: every case must arrive exact;
  disabled  `lshmoe-run --disable`: every buffer byte-identical to plain;
  hidden    `lshmoe-run -v --hidden 64 --max-error 0.3`: integer, double and
            pass-through cases byte-identical to plain, float cases within
            the budget (the program checks that), at least one buffer really
            lossy, and the per-communicator statistics (stderr) saying that
            calls were compressed with fewer bytes sent, both by LSH (counts
            that are multiples of 64) and on the row path (counts that are
            not, on one rank only), with the expected pass-through reasons,
            an achieved error within the budget, and that the re-entrancy
            guard forwarded lshmoe's own MPI calls;
  rows      `lshmoe-run -v --max-error 0.1` (no token size): every float
            case that is not passed for another reason is compressed on the
            row path (none by LSH), within the budget, with fewer bytes;
  (C program) rank 0 alone cannot create its lshmoe context, has a
            malformed LSHMOE_HIDDEN, or another LSHMOE_CODEC: every rank
            passes every call through, byte-identical to plain, and counts
            the reason.

The program prints `case <name> rank <r> exact|lossy err <e> sum <hex>` per
case and rank. Exit 0 pass, 1 fail, 77 skip (mpi4py absent for --python).
"""
import argparse
import os
import re
import subprocess
import sys

CASE = re.compile(r"case (\S+) rank (\d+) (exact|lossy) err ([0-9.]+) sum ([0-9a-f]{16})")
STATS = re.compile(r"^lshmoe-preload: rank (?P<rank>\d+) (?P<label>.+) \((\d+) ranks\): "
                   r"calls (\d+), compressed (?P<comp>\d+) \(lsh (?P<lsh>\d+), "
                   r"rows (?P<rows>\d+)\), passed (\d+) \((?P<why>.*)\), "
                   r"bytes (?P<before>\d+) -> (?P<after>\d+) .*, error (?P<err>[-0-9.]+)"
                   r"(?: \(segment max (?P<errmax>[0-9.]+)\))?")
GUARD = re.compile(r"^lshmoe-preload: pid \d+: (\d+) re-entrant calls forwarded$")

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def run(args, cmd, extra_env):
    env = dict(os.environ)
    env.update({"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                "OMPI_MCA_rmaps_base_oversubscribe": "1", "LSHMOE_ADAPT": "0",
                "LSHMOE_PRELOAD_MIN_BYTES": "16384"})
    env.update(extra_env)
    full = [args.mpiexec, "-n", "4"] + cmd
    print("running: " + " ".join(full), file=sys.stderr)
    p = subprocess.run(full, env=env, capture_output=True, text=True, timeout=240)
    if p.returncode != 0:
        fail("%s exited %d\n%s\n%s" % (" ".join(full), p.returncode, p.stdout[-3000:],
                                       p.stderr[-3000:]))
    cases = {}
    for m in CASE.finditer(p.stdout):
        cases[(m.group(1), int(m.group(2)))] = (m.group(3), float(m.group(4)), m.group(5))
    stats = [STATS.match(l) for l in p.stderr.splitlines()]
    guards = [GUARD.match(l) for l in p.stderr.splitlines()]
    return cases, [m for m in stats if m], [int(m.group(1)) for m in guards if m], p.stderr


def baseline(args, app, nexact):
    """The plain run, and the --disable run that must equal it."""
    plain, _, _, _ = run(args, app, {})
    if len(plain) < 4 or len({n for n, _ in plain}) < nexact:
        fail("plain run printed too few case lines: %d" % len(plain))
    for key, (kind, _, _) in plain.items():
        if kind != "exact":
            fail("plain run: %s on rank %d not exact" % key)
    disabled, dstats, _, _ = run(args, [args.launcher, "--disable", "--"] + app, {})
    if disabled != plain:
        fail("--disable run differs from the plain run: %s" %
             sorted(k for k in plain if disabled.get(k) != plain[k]))
    if dstats:
        fail("--disable run printed statistics: it should not intercept anything")
    return plain


def check(args, app, plain, flags, budget, exact_cases, reasons, split_label, paths):
    """One run under `lshmoe-run -v flags --max-error budget`. paths: which
    of "lsh" and "rows" must have compressed a call (the others none)."""
    what = "lshmoe-run %s" % " ".join(flags)
    launch = [args.launcher, "-v"] + flags + ["--max-error", str(budget), "--"]
    got, stats, guards, err = run(args, launch + app, {})
    if set(got) != set(plain):
        fail("%s: printed other cases than the plain run" % what)
    lossy = 0
    for key, (kind, e, s) in got.items():
        if key[0] in exact_cases and (kind != "exact" or s != plain[key][2]):
            fail("%s: %s on rank %d must pass through byte-exact" % ((what,) + key))
        if key[0] not in exact_cases and kind != "lossy":
            fail("%s: %s on rank %d was not compressed" % ((what,) + key))
        if kind == "lossy":
            lossy += 1
            if e > budget * 1.001:
                fail("%s: %s on rank %d error %g over the budget" % (what, key[0], key[1], e))
    if lossy == 0:
        fail("%s: no buffer was compressed (all arrived exact)" % what)

    world = [m for m in stats if m.group("label") == "MPI_COMM_WORLD"]
    if len(world) != 4:
        fail("%s: expected 4 MPI_COMM_WORLD stats lines, got %d:\n%s"
             % (what, len(world), err[-2000:]))
    seen = set()
    for m in world:
        comp, before, after = int(m.group("comp")), int(m.group("before")), int(m.group("after"))
        if comp < 1 or after >= before:
            fail("%s: rank %s: compressed %d, bytes %d -> %d"
                 % (what, m.group("rank"), comp, before, after))
        for path in ("lsh", "rows"):
            n = int(m.group(path))
            if (path in paths) != (n > 0):
                fail("%s: rank %s compressed %d calls by %s" % (what, m.group("rank"), n, path))
        # the achieved error the codec measured, never above the budget
        if m.group("errmax") is None or float(m.group("errmax")) > budget * 1.001 or \
                not 0 < float(m.group("err")) <= float(m.group("errmax")):
            fail("%s: rank %s reports error %s (segment max %s), budget %g"
                 % (what, m.group("rank"), m.group("err"), m.group("errmax"), budget))
        seen |= {r.split()[0] for r in m.group("why").split(", ") if r != "-"}
    for r in reasons:
        if r not in seen:
            fail("%s: no call passed through for reason '%s' (saw %s)" % (what, r, sorted(seen)))
    if split_label and not any(m.group("label") != "MPI_COMM_WORLD" and int(m.group("comp")) > 0
                               for m in stats):
        fail("%s: the sub-communicator never compressed" % what)
    if len(guards) != 4 or min(guards) < 1:
        fail("%s: re-entrancy guard counts %s: lshmoe's own MPI calls must have been "
             "forwarded at least once per process" % (what, guards))
    ratio = sum(int(m.group("before")) for m in world) / \
        max(1, sum(int(m.group("after")) for m in world))
    print("%s: %d lossy buffers, MPI_COMM_WORLD bytes ratio %.2fx, reasons %s"
          % (what, lossy, ratio, sorted(seen)), file=sys.stderr)


def check_rank0_failure(args, app, plain, var, value, reason):
    """Rank 0 alone has a bad setting (var=value): every rank must learn it,
    pass every call on communicators with rank 0 through (byte-identical to
    plain) and count `reason`, with no hang."""
    wrapped = ["sh", "-c", 'if [ "$OMPI_COMM_WORLD_RANK" = 0 ]; then export %s=%s; '
               'fi; exec "$@"' % (var, value), "sh"] + app
    got, stats, _, err = run(args, [args.launcher, "-v", "--hidden", "64", "--"] + wrapped,
                             {"LSHMOE_LOG_LEVEL": "none"})
    # The odd half of the split (world ranks 1 and 3) does not contain rank
    # 0: it compresses, as it should.
    differ = sorted(k for k in plain if got.get(k) != plain[k] and not k[0].startswith("split1"))
    if set(got) != set(plain) or differ:
        fail("%s=%s on rank 0: buffers differ from the plain run: %s" % (var, value, differ))
    world = [m for m in stats if m.group("label") == "MPI_COMM_WORLD"]
    if len(world) != 4 or any(int(m.group("comp")) != 0 or reason not in m.group("why")
                              for m in world):
        fail("%s=%s on rank 0: expected 4 ranks with compressed 0 and %s, got:\n%s"
             % (var, value, reason, err[-2000:]))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mpiexec", required=True)
    ap.add_argument("--launcher", required=True)
    ap.add_argument("--c-app")
    ap.add_argument("--python-app")
    args = ap.parse_args()
    if args.c_app:
        app = [args.c_app]
        exact = {"int32_a2a", "int32_a2av", "double_a2av", "inplace_float", "derived_float",
                 "derived_mixed_float", "small_on_one_rank_float"}
        plain = baseline(args, app, len(exact))
        check(args, app, plain, ["--hidden", "64"], 0.3, exact,
              ["in-place", "dtype", "derived-type", "small"], True, {"lsh", "rows"})
        check(args, app, plain, [], 0.1, exact,
              ["in-place", "dtype", "derived-type", "small"], True, {"rows"})
        check_rank0_failure(args, app, plain, "LSHMOE_HASHES", "99", "context-failed")
        check_rank0_failure(args, app, plain, "LSHMOE_HIDDEN", "12x", "config-mismatch")
        check_rank0_failure(args, app, plain, "LSHMOE_CODEC", "fp8", "config-mismatch")
    if args.python_app:
        probe = subprocess.run([sys.executable, "-c", "import mpi4py, numpy"],
                               capture_output=True, text=True)
        if probe.returncode != 0:
            print("SKIP: %s cannot import mpi4py/numpy (apt install python3-mpi4py)"
                  % sys.executable)
            return 77
        app = [sys.executable, args.python_app]
        exact = {"int32_a2a", "float64_a2av"}
        plain = baseline(args, app, len(exact))
        check(args, app, plain, ["--hidden", "64"], 0.3, exact, ["dtype"], False,
              {"lsh", "rows"})
        check(args, app, plain, [], 0.1, exact, ["dtype"], False, {"rows"})
    print("%d failures" % len(failures), file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
