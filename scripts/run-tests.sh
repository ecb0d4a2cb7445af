#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's second command (and CI's): install what is missing, build,
# run every test suite, then rebuild with AddressSanitizer and
# UndefinedBehaviorSanitizer and run the fast suite again. Ends with the
# line "N passed, N failed, N skipped" counted from meson's test logs of
# both runs; exits non-zero if anything failed or nothing ran.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
lshmoe_install_missing

status=0
lshmoe_build "$LSHMOE_BUILD"
rm -f "$LSHMOE_BUILD/meson-logs/testlog.json"
meson test -C "$LSHMOE_BUILD" --print-errorlogs --num-processes 2 || status=1

asan="$LSHMOE_BUILD-asan"
if [ "${LSHMOE_SKIP_SANITIZERS:-0}" != 1 ]; then
    # The sanitizer pass runs CPU code only: nvcc's kernels (the gpu suite,
    # which needs a device) are left out to keep CI's build short.
    lshmoe_build "$asan" -Db_sanitize=address,undefined -Db_lundef=false -Dcuda=disabled
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        meson test -C "$asan" --suite fast --print-errorlogs --num-processes 2 || status=1
fi

# Count results from meson's JSON test logs (Debian's python3 is always
# there: meson needs it).
/usr/bin/python3 - "$LSHMOE_BUILD" "$asan" <<'PY' || status=1
import json, os, sys
passed = failed = skipped = 0
for d in sys.argv[1:]:
    log = os.path.join(d, "meson-logs", "testlog.json")
    if not os.path.exists(log):
        continue
    for line in open(log):
        r = json.loads(line).get("result", "")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(0 if passed > 0 and failed == 0 else 1)
PY
exit $status
