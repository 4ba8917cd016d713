#!/usr/bin/env bash
# modes-host.sh BUILD_DIR: the enforcing-against-degraded scenario
# (tests/guest/modes/guest-test.sh) on this host, whose kernel lists the BPF
# LSM but refuses BPF-LSM programs (shared/PLATFORM.md): bulwarkd must say
# "degraded" and do what the degraded mode promises, case by case. The guest
# runs the same script and must say "enforcing" (guest-modes).
#
# The workloads are cgroups the scenario makes under the cgroup2 mount, so
# its policies reach nothing else on this machine.
set -uo pipefail
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cgroot=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[ -n "$cgroot" ] || { echo "no cgroup2 mount: cannot scope the test's policies; failing"; echo "0 passed, 1 failed"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bulwark-modes.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
export PATH="$build/agent:$build/tests/guest:$PATH"
export SCENARIO_DIR=$here/../guest CGROOT=$cgroot T=$tmp/t AUTO_STATE=${AUTO_STATE:-degraded}
export AGENT_OUT=$tmp/events.jsonl AGENT_ERR=$tmp/agent.err AGENT_STATUS=$tmp/status
out=$tmp/log
sh "$here/../guest/modes/guest-test.sh" >"$out" 2>&1
rc=$?
cat "$out"
passed=$(grep -c 'BULWARK-TEST: PASS' "$out")
failed=$(grep -c 'BULWARK-TEST: FAIL' "$out")
[ "$rc" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
echo "$passed passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
