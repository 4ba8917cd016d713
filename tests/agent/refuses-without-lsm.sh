#!/usr/bin/env bash
# refuses-without-lsm.sh BULWARKD: on this host, whose kernel lists the BPF
# LSM but refuses BPF-LSM programs (see shared/PLATFORM.md), bulwarkd must
# exit with a clear message instead of pretending to enforce. On a kernel
# that accepts them it must say "enforcing"; either way it never stays silent.
set -uo pipefail
bulwarkd=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/policies"
timeout -s TERM 20 "$bulwarkd" --policy-dir "$dir/policies" >"$dir/out" 2>"$dir/err"
rc=$?
cat "$dir/err"
if grep -q '"state":"enforcing"' "$dir/out"; then
    echo "kernel accepted BPF-LSM programs: agent enforcing (rc=$rc after SIGTERM)"
    [ "$rc" -eq 0 ] && echo "1 passed, 0 failed" && exit 0
    echo "0 passed, 1 failed"; exit 1
fi
if [ "$rc" -eq 1 ] && grep -qE '^bulwarkd: cannot enforce: (the BPF LSM is not active|the kernel refused to load the BPF-LSM programs)' "$dir/err"; then
    echo "1 passed, 0 failed"; exit 0
fi
echo "unexpected: rc=$rc"; echo "0 passed, 1 failed"; exit 1
