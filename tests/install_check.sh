#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# The installed tree is complete and usable: `meson install --destdir` into
# a temporary directory, then build the docs' C examples (tests/example_moe.c,
# the complete MoE example of docs/api.md, and the README's API snippet)
# with nothing but
#   cc example.c $(pkg-config --cflags --libs lshmoe)
# against it, and run them. PKG_CONFIG_SYSROOT_DIR points pkg-config's -I/-L
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

# The README's "API in ten lines": its #include lines on top, the rest in a
# main() that supplies what the snippet leaves to the reader (one rank,
# world NULL, 4 bf16 tokens of 8 elements).
snippet=$(awk '/^## The API in ten lines/ {f=1; next} f && /^```c/ {b=1; next}
               b && /^```/ {exit} b {print}' "$src/README.md")
if [ -z "$snippet" ]; then
    echo "FAIL: no C block under 'The API in ten lines' in README.md"
    exit 1
fi
{
    echo '#include <stdint.h>'
    echo '#include <stdio.h>'
    printf '%s\n' "$snippet" | grep '^#include'
    echo 'int main(void) {'
    echo '    void *world = NULL; int r = 0, n = 1; size_t hidden = 8;'
    echo '    uint16_t send[32] = {0}, recv[32];'
    echo '    size_t send_counts[1] = {4}, send_displs[1] = {0};'
    echo '    size_t recv_counts[1] = {4}, recv_displs[1] = {0};'
    printf '%s\n' "$snippet" | grep -v '^#include'
    echo '    return recv[0] == send[0] ? 0 : 1;'
    echo '}'
} > "$dest/readme_api.c"
cc -std=c11 -Wall -Werror -o "$dest/readme_api" "$dest/readme_api.c" \
    $(pkg-config --cflags --libs lshmoe)
LD_LIBRARY_PATH="$dest$libdir" "$dest/readme_api"
echo "installed tree OK: headers in $incdir, $soname, lshmoe.pc; example_moe and the README's API snippet built and ran"
