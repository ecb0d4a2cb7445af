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
# usage: install_check.sh BUILD_DIR SOURCE_DIR WITH_PYTHON(0|1)
set -euo pipefail
build=$1
src=$2
with_python=${3:-1}
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
# Paths as installed (without the sysroot prefix pkgconf adds to variables).
incdir=$(PKG_CONFIG_SYSROOT_DIR= pkg-config --variable=includedir lshmoe)
libdir=$(PKG_CONFIG_SYSROOT_DIR= pkg-config --variable=libdir lshmoe)
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
if [ "$with_python" = 1 ]; then
    init=$(find "$dest" -path '*/lshmoe/__init__.py' | head -n 1)
    if [ -z "$init" ]; then
        echo "FAIL: the Python package was not installed"
        exit 1
    fi
    # The installed copy looks for the library in the installed libdir (a
    # destdir install is not at its prefix, so point it there explicitly),
    # and works against the installed library.
    pkgdir=$(dirname "$(dirname "$init")")
    grep -q "LIBDIR = \"$libdir\"" "$pkgdir/lshmoe/_libpath.py" || {
        echo "FAIL: installed _libpath.py does not name $libdir"; exit 1; }
    LSHMOE_LIBRARY="$dest$libdir/$soname" PYTHONPATH="$pkgdir" /usr/bin/python3 -c '
import lshmoe
with lshmoe.Context(None, lshmoe.Config(compress=0)) as c:
    assert c.nranks == 1
print("installed python package:", lshmoe.version(), lshmoe.library_path)'
fi

# Build and run the example exactly as a user would.
cc -std=c11 -Wall -Werror -o "$dest/example_moe" "$src/tests/example_moe.c" \
    $(pkg-config --cflags --libs lshmoe) -pthread
LD_LIBRARY_PATH="$dest$libdir" "$dest/example_moe"
echo "installed tree OK: headers in $incdir, $soname, lshmoe.pc; example_moe built and ran"
