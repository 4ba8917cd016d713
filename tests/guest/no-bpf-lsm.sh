#!/usr/bin/env bash
# no-bpf-lsm.sh BUILD_DIR: boots the guest kernel with the BPF LSM left out
# of lsm= and checks that (1) the guest run fails rather than skipping, and
# (2) bulwarkd runs degraded, saying so and why, and does what the degraded
# mode promises (tests/guest/modes in its degraded form), and (3) refuses to
# start with --bpf-lsm required, naming the missing LSM.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log=$(mktemp "${TMPDIR:-/tmp}/bulwark-no-bpf-lsm.XXXXXX")
trap 'rm -f "$log"' EXIT
rc=0
# The scenario's extra script must sit at the root of the image.
stage_hook=$here/no-bpf-lsm
GUEST_APPEND="lsm=lockdown,capability,landlock" GUEST_LOG=$log \
    "$here/run-scenario.sh" "$1" "$stage_hook" >/dev/null 2>&1 || rc=$?
pass=0 fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
ko() { echo "FAIL $*"; fail=$((fail + 1)); }
[ "$rc" -ne 0 ] && ok "a guest without the BPF LSM fails the run (rc=$rc)" || ko "a guest without the BPF LSM fails the run"
grep -q 'BULWARK-GUEST: FAIL no bpf LSM' "$log" && ok "the harness names the missing LSM" || ko "the harness names the missing LSM"
grep -q 'NO-BPF-LSM: required: bulwarkd exit=1' "$log" && ok "--bpf-lsm required: bulwarkd exits 1" ||
    ko "--bpf-lsm required: bulwarkd exits 1"
grep -q 'NO-BPF-LSM: required: stderr: bulwarkd: cannot enforce: the BPF LSM is not active (active LSMs: lockdown,capability,landlock)' "$log" &&
    ok "--bpf-lsm required: says the BPF LSM is not active and which LSMs are" || ko "--bpf-lsm required: refusal message"
grep -q 'NO-BPF-LSM: modes: first line: bulwarkd: degraded: the BPF LSM is not active (active LSMs: lockdown,capability,landlock)' "$log" &&
    ok "auto: the first line says degraded and why" || ko "auto: the first line says degraded and why"
mp=$(grep -c 'NO-BPF-LSM: modes: BULWARK-TEST: PASS' "$log" || true)
mf=$(grep -c 'NO-BPF-LSM: modes: BULWARK-TEST: FAIL' "$log" || true)
[ "$mp" -gt 50 ] && [ "$mf" -eq 0 ] && ok "the degraded scenario on this kernel ($mp checks)" ||
    ko "the degraded scenario on this kernel ($mp passed, $mf failed)"
[ "$fail" -eq 0 ] || sed -n '/NO-BPF-LSM\|BULWARK-GUEST/p' "$log"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
