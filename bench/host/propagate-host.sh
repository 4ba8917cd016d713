#!/usr/bin/env bash
# bench/host/propagate-host.sh BUILD_DIR SCENARIO_DIR COUNT
#
# Propagation on this machine's own CPU: policy file renamed into the
# watched directory -> rule in force in the kernel. The host kernel refuses
# BPF-LSM, so bulwarkd runs in its degraded mode, where network rules are
# still enforced for real (cgroup connect programs reading the same policy
# maps): the rule denies UDP connects to 127.0.0.1:9 and the probe is such a
# connect, until it fails with EPERM (and, lifted, succeeds again). Beside
# it the guest's policy set (10, 1,000 and 10,000 rules and an Audit one,
# from gen-policies.py in SCENARIO_DIR) and 500 more cgroups, as in the
# guest. Prints "BENCH: propagate_host ..." and "BENCH: propagate_host_parts ...".
set -euo pipefail
build=$(cd "$1" && pwd)
scenario=$2
count=${3:-50}
. "$(dirname "$0")/lib.sh"
find_cgroup2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bulwark-prop.XXXXXX")
top=bulwark-prop-$$
agent=
cleanup() {
    [ -n "$agent" ] && kill "$agent" 2>/dev/null && wait "$agent" 2>/dev/null
    find "$cgroot/$top" -depth -type d -exec rmdir {} + 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/policies"
for w in unselected r10 r1000 r10000 audit; do mkdir -p "$cgroot/$top/bench/$w"; done
for i in $(seq 0 499); do mkdir -p "$cgroot/$top/foot/w$i"; done
sed "s|cgroup: /bench/|cgroup: /$top/bench/|" "$scenario/micro/inventory.yaml" >"$tmp/inventory.yaml"
cp "$scenario"/micro/policies/*.yaml "$tmp/policies/"
policy() { # policy PORT: the toggled policy, denying UDP to 127.0.0.1:PORT
    cat <<EOF2
apiVersion: bulwark.dev/v1alpha1
kind: ClusterBulwarkPolicy
metadata: {name: propagate}
spec:
  mode: Block
  podSelector: {matchLabels: {set: r10}}
  network: {deny: [{cidr: 127.0.0.1/32, ports: ["$1"], protocol: UDP}]}
EOF2
}
policy 9 >"$tmp/on.yaml"
policy 10 >"$tmp/off.yaml"
cp "$tmp/off.yaml" "$tmp/policies/propagate.yaml"
"$build/agent/bulwarkd" --policy-dir "$tmp/policies" --inventory "$tmp/inventory.yaml" --cgroup-root "$cgroot" \
    --hook-socket none --journald false --syslog false --events-file "$tmp/events.jsonl" \
    --status-file "$tmp/status" 2>"$tmp/err" &
agent=$!
wait_applied "$tmp/status" "$tmp/err" 3000
p=$("$build/bench/bulwark-bench" --cgroup "$cgroot/$top/bench/r10" propagate "$tmp/policies" "$tmp/on.yaml" \
    "$tmp/off.yaml" udp:127.0.0.1:9 "$count" 100 2>"$tmp/samples.txt" | tr '\n' ' ') ||
    { cat "$tmp/samples.txt" >&2; exit 1; }
echo "BENCH: propagate_host probe_us=100 $p"
med() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print 0 }'; }
grep '"event":"applied"' "$tmp/events.jsonl" | tail -n +2 >"$tmp/applied.jsonl"
parts=""
for f in apply_us parse_us plan_us publish_us compiled; do
    parts="$parts $f=$(sed -n "s/.*\"$f\":\([0-9]*\).*/\1/p" "$tmp/applied.jsonl" | med)"
done
parts="$parts walks=$(grep -c '"walked":1' "$tmp/applied.jsonl" || true)"
parts="$parts apply_max_us=$(sed -n 's/.*"apply_us":\([0-9]*\).*/\1/p' "$tmp/applied.jsonl" | sort -n | tail -1)"
echo "BENCH: propagate_host_parts applies=$(wc -l <"$tmp/applied.jsonl")$parts"
# BENCH_SAMPLES=1: each change and each apply, for bench/propagation-trace.py.
if [ -n "${BENCH_SAMPLES:-}" ]; then
    sed 's/^/PROPTRACE: /' "$tmp/samples.txt" "$tmp/applied.jsonl"
fi
