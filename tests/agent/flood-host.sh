#!/usr/bin/env bash
# flood-host.sh BUILD_DIR: a workload making audited events as fast as it
# can must not keep bulwarkd from a policy change (found by bench/: the
# agent read the ring buffer until it was empty, which under a flood is
# never). Runs on this host in the degraded mode (its file tracepoint makes
# the events; the ring buffer and the agent's loop are the same as with
# BPF-LSM), scoped to a cgroup the test makes.
set -uo pipefail
build=$(cd "$1" && pwd)
cgroot=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[ -n "$cgroot" ] || { echo "no cgroup2 mount; failing"; echo "0 passed, 1 failed"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bulwark-flood.XXXXXX")
cg=$cgroot/bulwark-flood-$$
trap 'kill $(jobs -p) 2>/dev/null; wait; rmdir "$cg" 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir -p "$cg" "$tmp/policies" "$tmp/data"
echo x >"$tmp/data/file"
pass=0 fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
ko() { echo "FAIL $*"; fail=$((fail + 1)); }
cat >"$tmp/inventory.yaml" <<EOF2
namespaces: [{name: t}]
workloads: [{cgroup: /bulwark-flood-$$, namespace: t, pod: flood, labels: {app: flood}}]
EOF2
cat >"$tmp/policies/audit.yaml" <<EOF2
apiVersion: bulwark.dev/v1alpha1
kind: ClusterBulwarkPolicy
metadata: {name: audit-data}
spec:
  mode: Audit
  podSelector: {matchLabels: {app: flood}}
  files: {deny: [{prefix: $tmp/data/}]}
EOF2
gen() { sed -n 's/^generation //p' "$tmp/status" 2>/dev/null; }
"$build/agent/bulwarkd" --policy-dir "$tmp/policies" --inventory "$tmp/inventory.yaml" --cgroup-root "$cgroot" \
    --hook-socket none --journald false --syslog false --rate-limit 0 --events-file "$tmp/events.jsonl" \
    --status-file "$tmp/status" 2>"$tmp/err" &
agent=$!
for _ in $(seq 1 500); do [ "$(gen)" = 1 ] && break; sleep 0.02; done
[ "$(gen)" = 1 ] && ok "agent applied its policies" || ko "agent applied its policies"
"$build/bench/bulwark-bench" --cgroup "$cg" load "$tmp/data/file" 30 >"$tmp/load.out" &
flood=$!
# The flood is on when events pour in.
for _ in $(seq 1 500); do [ -s "$tmp/events.jsonl" ] && break; sleep 0.02; done
[ -s "$tmp/events.jsonl" ] && ok "the flood makes events" || ko "the flood makes events"
sed 's/mode: Audit/mode: Block/' "$tmp/policies/audit.yaml" >"$tmp/policies/.new" && mv "$tmp/policies/.new" "$tmp/policies/audit.yaml"
t0=$(date +%s%N)
for _ in $(seq 1 1000); do [ "$(gen)" = 2 ] && break; sleep 0.01; done
t1=$(date +%s%N)
if [ "$(gen)" = 2 ] && kill -0 "$flood" 2>/dev/null; then
    ok "the policy change applied during the flood ($(((t1 - t0) / 1000000)) ms)"
else
    ko "the policy change applied during the flood (generation $(gen))"
fi
kill "$flood"; wait "$flood" 2>/dev/null
kill -TERM "$agent" && wait "$agent" && ok "agent exits cleanly" || ko "agent exits cleanly"
[ "$fail" -eq 0 ] || cat "$tmp/err"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
