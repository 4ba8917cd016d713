#!/usr/bin/env bash
# The whole test suite: host unit tests (plain and ASan/UBSan) and the guest
# tests under a real BPF-LSM kernel. Installs what is missing first. The last
# line is "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build
rc=0
meson test -C build --print-errorlogs "$@" || rc=$?
log=build/meson-logs/testlog.json
if [ -f "$log" ]; then
    ok=$(grep -cE '"result": "(OK|EXPECTEDFAIL)"' "$log" || true)
    bad=$(grep -cE '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" || true)
    echo "$ok passed, $bad failed"
fi
exit $rc
