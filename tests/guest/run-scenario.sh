#!/usr/bin/env bash
# run-scenario.sh BUILD_DIR SCENARIO_DIR
#
# Boots the Debian guest kernel (real BPF LSM) with bulwarkd, bulwark-probe,
# the repository's policies/ and one scenario (SCENARIO_DIR/guest-test.sh plus
# whatever files sit beside it, staged under /scenario), and passes only if
# every check in the guest passed. Each check prints "BULWARK-TEST: PASS|FAIL
# name"; the last line printed here is "N passed, N failed".
#
# Environment: BULWARK_GUEST_CACHE (kernel cache), GUEST_LOG, GUEST_TIMEOUT.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
[ $# -eq 2 ] || { echo "usage: $0 BUILD_DIR SCENARIO_DIR" >&2; exit 2; }
build=$(cd "$1" && pwd)
scenario=$(cd "$2" && pwd)
name=$(basename "$scenario")

for f in "$build/agent/bulwarkd" "$build/tests/guest/bulwark-probe" "$build/oci-hook/bulwark-oci-hook" \
    "$scenario/guest-test.sh"; do
    [ -e "$f" ] || { echo "$0: missing $f (build first)" >&2; exit 2; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bulwark-$name.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
stage=$tmp/stage
mkdir -p "$stage/usr/bin" "$stage/scenario" "$stage/policies"
install -m 755 "$build/agent/bulwarkd" "$stage/usr/bin/bulwarkd"
install -m 755 "$build/tests/guest/bulwark-probe" "$stage/usr/bin/bulwark-probe"
install -m 755 "$build/oci-hook/bulwark-oci-hook" "$stage/usr/bin/bulwark-oci-hook"
cp -a "$scenario/." "$stage/scenario/"
install -m 755 "$scenario/guest-test.sh" "$stage/guest-test.sh"
[ -f "$scenario/guest-no-bpf-lsm.sh" ] && install -m 755 "$scenario/guest-no-bpf-lsm.sh" "$stage/guest-no-bpf-lsm.sh"
install -m 644 "$here/lib.sh" "$stage/scenario/lib.sh"
cp -a "$repo/policies/." "$stage/policies/"
# A scenario may bring more into the image (daemons, their modules).
[ -x "$scenario/stage.sh" ] && "$scenario/stage.sh" "$stage"

cache=${BULWARK_GUEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bulwark/guest-kernel}
kernel=$("$here/fetch-kernel.sh" "$cache")
"$here/make-initramfs.sh" "$tmp/init.cpio.gz" "$stage" >&2
log=${GUEST_LOG:-$tmp/console.log}
rc=0
GUEST_LOG=$log "$here/run-qemu.sh" "$kernel" "$tmp/init.cpio.gz" "${GUEST_TIMEOUT:-600}" || rc=$?
passed=$(grep -c 'BULWARK-TEST: PASS' "$log" || true)
failed=$(grep -c 'BULWARK-TEST: FAIL' "$log" || true)
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    failed=1 # the guest died or never reported: that is a failure, never a skip
fi
echo "$name: $passed passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
