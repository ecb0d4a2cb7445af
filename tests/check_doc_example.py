#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Checks that the C block under a heading of a Markdown file is, byte for
byte, a given source file (so the example in the docs is the one the tests
build and run).

usage: check_doc_example.py DOC.md "HEADING TEXT" FILE.c
Standard library only; any python3 works.
"""
import sys


def block_under(doc, heading):
    lines = open(doc, encoding="utf-8").read().split("\n")
    try:
        start = next(i for i, l in enumerate(lines)
                     if l.startswith("#") and heading in l)
    except StopIteration:
        sys.exit(f"{doc}: no heading containing {heading!r}")
    try:
        first = next(i for i in range(start + 1, len(lines))
                     if lines[i].startswith("```c"))
        last = next(i for i in range(first + 1, len(lines))
                    if lines[i].startswith("```"))
    except StopIteration:
        sys.exit(f"{doc}: no complete ```c block under {heading!r}")
    return "\n".join(lines[first + 1:last]) + "\n"


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    doc, heading, src = sys.argv[1:]
    block = block_under(doc, heading)
    code = open(src, encoding="utf-8").read()
    if block != code:
        a, b = block.split("\n"), code.split("\n")
        n = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
        sys.exit(f"{doc} ({heading!r}) differs from {src} at line {n + 1} of the file:\n"
                 f"  doc:  {a[n] if n < len(a) else '<end>'}\n"
                 f"  file: {b[n] if n < len(b) else '<end>'}")
    print(f"{doc}: the example under {heading!r} is {src} ({code.count(chr(10))} lines)")


if __name__ == "__main__":
    main()
