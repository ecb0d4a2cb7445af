#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# The installed tree is complete and usable: `meson install --destdir` into
# a temporary directory, then build the docs' C example (tests/example_moe.c,
# the complete MoE example of docs/api.md) with nothing but
#   cc example_moe.c $(pkg-config --cflags --libs lshmoe)
# against it, and run it. PKG_CONFIG_SYSROOT_DIR points pkg-config's -I/-L
# into the temporary tree. Also checks that every public header, the
# soname link and the Python package were installed.
#
# usage: install_check.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
for tool in pkg-config cc; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP: $tool not found"
        exit 77
    fi
done
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --no-rebuild --destdir "$dest" --quiet >/dev/null

pc=$(find "$dest" -name lshmoe.pc | head -n 1)
if [ -z "$pc" ]; then
    echo "FAIL: lshmoe.pc was not installed"
    exit 1
fi
export PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_SYSROOT_DIR=$dest
incdir=$(pkg-config --variable=includedir lshmoe)
libdir=$(pkg-config --variable=libdir lshmoe)
for h in lshmoe.h lshmoe_moe.h lshmoe_version.h; do
    if [ ! -f "$dest$incdir/$h" ]; then
        echo "FAIL: $h not installed in $incdir"
        exit 1
    fi
done
if grep -q 'LSHMOE_HAVE_MPI 1' "$build/lshmoe_build_config.h" &&
   [ ! -f "$dest$incdir/lshmoe_mpi.h" ]; then
    echo "FAIL: MPI build without lshmoe_mpi.h installed"
    exit 1
fi
# The soname link the dynamic loader looks for, and the development link.
so=$(find "$dest$libdir" -maxdepth 1 -name 'liblshmoe.so.*' -type l | head -n 1)
if [ -z "$so" ] || [ ! -e "$dest$libdir/liblshmoe.so" ]; then
    echo "FAIL: liblshmoe.so and its soname link not both installed in $libdir"
    exit 1
fi
soname=$(objdump -p "$dest$libdir/liblshmoe.so" | awk '/SONAME/ {print $2}')
if [ ! -e "$dest$libdir/$soname" ]; then
    echo "FAIL: soname $soname has no file in $libdir"
    exit 1
fi
if [ -z "$(find "$dest" -path '*/lshmoe/__init__.py')" ]; then
    echo "FAIL: the Python package was not installed"
    exit 1
fi

# Build and run the example exactly as a user would.
cc -std=c11 -Wall -Werror -o "$dest/example_moe" "$src/tests/example_moe.c" \
    $(pkg-config --cflags --libs lshmoe) -pthread
LD_LIBRARY_PATH="$dest$libdir" "$dest/example_moe"
echo "installed tree OK: headers in $incdir, $soname, lshmoe.pc; example_moe built and ran"
