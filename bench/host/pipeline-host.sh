#!/usr/bin/env bash
# bench/host/pipeline-host.sh BUILD_DIR SECONDS
#
# The event pipeline's throughput on this machine's own CPU (the guest's
# emulated CPU cannot offer 100,000 events/s, let alone take them). The
# host kernel refuses BPF-LSM, so bulwarkd runs in its degraded mode here:
# its file tracepoint judges each open against the same policy maps and
# emits the same event on the same ring buffer; from there on (reading,
# decoding, the sink queue, the JSON file) everything is what runs under
# BPF-LSM. An Audit policy on a cgroup this script makes gives an event per
# open of one file; bulwark-bench opens it as fast as it can. Prints one
# "BENCH: pipeline sink=file-host ..." line: opens made, lines written, every
# counted loss, and the agent's CPU time; then, with the flood over, one
# "BENCH: latency sink=file-host wait=notify ..." line: LAT_COUNT (default
# 300) single opens, each timed until its line is readable in the file.
set -euo pipefail
build=$(cd "$1" && pwd)
secs=${2:-3}
. "$(dirname "$0")/lib.sh"
find_cgroup2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bulwark-pipeline.XXXXXX")
cg=$cgroot/bulwark-pipeline-$$
agent=
cleanup() {
    [ -n "$agent" ] && kill "$agent" 2>/dev/null && wait "$agent" 2>/dev/null
    rmdir "$cg" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$cg" "$tmp/policies" "$tmp/data"
echo x >"$tmp/data/file"
cat >"$tmp/inventory.yaml" <<EOF2
namespaces: [{name: bench}]
workloads: [{cgroup: /bulwark-pipeline-$$, namespace: bench, pod: load, labels: {app: load}}]
EOF2
cat >"$tmp/policies/audit.yaml" <<EOF2
apiVersion: bulwark.dev/v1alpha1
kind: ClusterBulwarkPolicy
metadata: {name: audit-load}
spec:
  mode: Audit
  podSelector: {matchLabels: {app: load}}
  files: {deny: [{prefix: $tmp/data/}]}
EOF2
"$build/agent/bulwarkd" --policy-dir "$tmp/policies" --inventory "$tmp/inventory.yaml" --cgroup-root "$cgroot" \
    --hook-socket none --journald false --syslog false --rate-limit 0 --health-interval 0 \
    --events-file "$tmp/events.jsonl" --events-file-max-bytes 4294967296 --status-file "$tmp/status" 2>"$tmp/err" &
agent=$!
wait_applied "$tmp/status" "$tmp/err"
cpu() { awk '{ print $14 + $15 }' "/proc/$agent/stat"; }
c0=$(cpu)
out=$("$build/bench/bulwark-bench" --cgroup "$cg" load "$tmp/data/file" "$secs")
ops=$(echo "$out" | sed -n 's/^ops //p')
seconds=$(echo "$out" | sed -n 's/^seconds //p')
# Settled: the health record written after everything before it (SIGUSR1
# asks for one; once two in a row count the same written total, the queue
# was empty in between).
health() { grep '"event":"health"' "$tmp/events.jsonl" | tail -1; }
last=
for _ in $(seq 1 200); do
    n=$(grep -c '"event":"health"' "$tmp/events.jsonl" || true)
    kill -USR1 "$agent"
    for _ in $(seq 1 500); do [ "$(grep -c '"event":"health"' "$tmp/events.jsonl" || true)" -gt "$n" ] && break; sleep 0.01; done
    h=$(health)
    w=$(echo "$h" | sed -n 's/.*"sink_file":"[a-z]* written=\([0-9]*\).*/\1/p')
    [ -n "$w" ] && [ "$w" = "$((last + 1))" ] 2>/dev/null && break
    last=$w
done
c1=$(cpu)
num() { echo "$h" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
sinkf=$(echo "$h" | sed -n 's/.*"sink_file":"[a-z]* written=[0-9]* dropped_full=\([0-9]*\) dropped_down=\([0-9]*\).*/\1 \2/p')
written=$(grep -c '"hook":"file"' "$tmp/events.jsonl" || true)
rss=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$agent/status")
echo "BENCH: pipeline sink=file-host ops=$ops seconds=$seconds written=$written kernel_dropped=$(num events_dropped) suppressed=$(num suppressed_total) sink_dropped_full=${sinkf% *} sink_dropped_down=${sinkf#* } audited=$(num audited) read=$(num events_read) cpu_ticks=$((c1 - c0)) rss_kb=$rss"
lat=$("$build/bench/bulwark-bench" --cgroup "$cg" latency "$tmp/events.jsonl" "$tmp/data/file" "${LAT_COUNT:-300}" 1000 notify | tr '\n' ' ')
echo "BENCH: latency sink=file-host wait=notify $lat"
