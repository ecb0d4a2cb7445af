#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Checks the layering of the built library by its symbols: every lshmoe_*
symbol that an object of lshmoe/common/ needs is defined in common/; one of
collectives/ or kernels/ in its own layer or common/ (they never use each
other, nor the core above them).

usage: check_layering.py NM LIBLSHMOE_STATIC.a
Standard library only; any python3 works.
"""
import re
import subprocess
import sys


def layer(member):
    # meson names an object after its source (.._kernels_cpu_fwht.c.o);
    # objects built by custom targets (nvcc) keep their folder (../kernels/x.o)
    m = re.search(r"(?:^|_|/)(collectives|kernels)[_/]", member)
    if m:
        return m.group(1)
    # objects of a static library built in that directory (the x86 SIMD
    # kernels, one library per ISA level, linked whole into the core)
    m = re.search(r"/(collectives|kernels)/[^/]+\.a\.p/", member)
    if m:
        return m.group(1)
    if re.search(r"(?:^|/)common_", member):
        return "common"
    return "core"


ALLOWED = {"common": {"common"}, "collectives": {"common", "collectives"},
           "kernels": {"common", "kernels"}}


def main():
    nm, archive = sys.argv[1], sys.argv[2]
    out = subprocess.run([nm, "-A", archive], check=True, capture_output=True,
                         text=True).stdout
    defined, needed = {}, []
    for line in out.splitlines():
        parts = line.split(":")
        if len(parts) < 3:
            continue
        member, rest = parts[-2], parts[-1].split()
        if len(rest) == 2 and rest[0] == "U":
            if rest[1].startswith("lshmoe_"):
                needed.append((member, rest[1]))
        elif len(rest) == 3 and rest[1] in "TDBRC" and rest[2].startswith("lshmoe_"):
            defined[rest[2]] = member
    bad = []
    for member, sym in needed:
        lo = layer(member)
        if lo == "core" or sym not in defined:
            continue
        hi = layer(defined[sym])
        if hi not in ALLOWED[lo]:
            bad.append("%s (%s) uses %s from %s (%s)" % (member, lo, sym, defined[sym], hi))
    for b in bad:
        print("layering:", b)
    checked = sum(1 for m, _ in needed if layer(m) != "core")
    if checked == 0:
        print("layering: no lower-layer symbol references found in %s" % archive)
        return 1
    print("layering: %d references from common/, collectives/, kernels/ checked, %d "
          "reach up" % (checked, len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
