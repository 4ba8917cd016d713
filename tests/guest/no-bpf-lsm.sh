#!/usr/bin/env bash
# no-bpf-lsm.sh BUILD_DIR: boots the guest kernel with the BPF LSM left out
# of lsm= and checks that (1) the guest run fails rather than skipping, and
# (2) bulwarkd refuses to start, naming the missing LSM.
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
grep -q 'NO-BPF-LSM: bulwarkd exit=1' "$log" && ok "bulwarkd exits 1" || ko "bulwarkd exits 1"
grep -q 'NO-BPF-LSM: stderr: bulwarkd: cannot enforce: the BPF LSM is not active (active LSMs: lockdown,capability,landlock)' "$log" &&
    ok "bulwarkd says the BPF LSM is not active and which LSMs are" || ko "bulwarkd's refusal message"
grep -q 'NO-BPF-LSM: stdout: .*"state":"enforcing"' "$log" && ko "bulwarkd never claims to enforce" || ok "bulwarkd never claims to enforce"
[ "$fail" -eq 0 ] || sed -n '/NO-BPF-LSM\|BULWARK-GUEST/p' "$log"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
