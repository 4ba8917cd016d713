#!/usr/bin/env bash
# bench/host/check-host.sh BUILD_DIR SCENARIO_DIR ROUNDS
#
# The check's own cost on this machine's CPU: what bulwarkd's programs take
# per call to judge an operation at 10, 1,000 and 10,000 rules, without an
# emulator's spread (the guest's figures move 10-130% between rounds; a
# lookup's few hundred ns do not show through that). The host kernel
# refuses BPF-LSM, so bulwarkd runs in its degraded mode: its programs find
# the caller's rule set, look the name or address up in the same tries and
# call the same bw_decide() as the LSM programs (bpf/include/
# bulwark_policy.bpf.h); what differs is where the name comes from (the
# open's or exec's argument as passed, not bpf_d_path).
#
# The kernel times every call while kernel.bpf_stats_enabled is 1 (set for
# the run, put back after): run_time_ns / run_cnt of the programs, read
# around each of BATCHES batches (bulwark-bench progtime), the four
# configurations' cgroups taken in turn batch by batch; a configuration's
# figure in a round is its median batch. On a shared 2-CPU host a run's
# figure depended on which CPU it landed on and on when it ran (the same
# configuration 140 or 200 ns per check, round by round, with whole
# configurations run one after another): so every run on one CPU
# (CHECK_CPU, default the last), the configurations a few milliseconds
# apart, and the median batch, since the kernel's timer also counts a
# program's preemption. The calls of the host's other processes are
# included (a few per cent of them, nearly all outside every workload).
# Operations:
#   open       an allowed file next to the rules' directory (the guest's)
#   open_deep  an allowed name inside the rules' directory that shares a long
#              prefix with many rules (f1111x beside f1, f11..., f111...,
#              f1111): the longest walk down the trie the rule sets allow
#   exec       fork+exec of /bin/true
#   connect    a TCP connect to 127.0.0.1
# Prints "BENCH: check config=C op=O round=R calls=N ns=T mean=M min=L batches=B"
# lines: T the median batch, M all calls, L the fastest batch (ns per call).
set -euo pipefail
build=$(cd "$1" && pwd)
scenario=$2
rounds=${3:-5}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "check-host: ROUNDS must be a positive number, not '$rounds'" >&2; exit 2; }
n_open=${N_CHECK_OPEN:-50000}
n_exec=${N_CHECK_EXEC:-2000}
n_connect=${N_CHECK_CONNECT:-20000}
batches=${N_CHECK_BATCHES:-25}
cpu=${CHECK_CPU:-$(($(nproc) - 1))}
bench=$build/bench/bulwark-bench
. "$(dirname "$0")/lib.sh"
find_cgroup2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bulwark-check.XXXXXX")
cgname=bulwark-check-$$
cg=$cgroot/$cgname
configs=(unselected r10 r1000 r10000)
agent=
stats_before=$(cat /proc/sys/kernel/bpf_stats_enabled)
cleanup() {
    echo "$stats_before" >/proc/sys/kernel/bpf_stats_enabled
    [ -n "$agent" ] && kill "$agent" 2>/dev/null && wait "$agent" 2>/dev/null
    for c in "${configs[@]}"; do rmdir "$cg/$c" 2>/dev/null || true; done
    rmdir "$cg" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# The scenario's rule sets, their file rules moved from /srv/deny/ (the
# guest's) into this run's directory; the workloads into this run's cgroups.
mkdir -p "$tmp/policies" "$tmp/deny" "$tmp/bench"
for c in r10 r1000 r10000; do
    sed "s#/srv/deny/#$tmp/deny/#" "$scenario/micro/policies/$c.yaml" >"$tmp/policies/$c.yaml"
done
grep -q "path: $tmp/deny/f1$" "$tmp/policies/r10.yaml" || { echo "check-host: the rules were not moved to $tmp/deny/" >&2; exit 1; }
sed "s#cgroup: /bench/#cgroup: /$cgname/#" "$scenario/micro/inventory.yaml" >"$tmp/inventory.yaml"
for c in "${configs[@]}"; do mkdir -p "$cg/$c"; done
echo x >"$tmp/bench/allowed"
# No set has a rule for f1111x (an exact rule's key ends with its NUL); at
# 10,000 rules finding that out walks past the branches at f, f1, f11, f111.
echo x >"$tmp/deny/f1111x"

"$build/agent/bulwarkd" --policy-dir "$tmp/policies" --inventory "$tmp/inventory.yaml" --cgroup-root "$cgroot" \
    --hook-socket none --journald false --syslog false --health-interval 0 --status-file "$tmp/status" 2>"$tmp/err" &
agent=$!
wait_applied "$tmp/status" "$tmp/err"
grep -q '^state degraded' "$tmp/status" || { echo "check-host: expected the degraded mode:" >&2; cat "$tmp/status" >&2; exit 1; }

echo 1 >/proc/sys/kernel/bpf_stats_enabled
measure() { # OP ROUND PROG-PREFIX MICRO-OP N FILE: every configuration, batch by batch (open has four programs)
    local op=$1 round=$2 prefix=$3 n=$5 c dirs=()
    for c in "${configs[@]}"; do dirs+=("$cg/$c"); done
    "$bench" --cpu "$cpu" progtime "$prefix" "$batches" "$4" $((n / batches > 0 ? n / batches : 1)) "$6" "${dirs[@]}" |
        awk -v o="$op" -v r="$round" '$1 == "cgroup" { for (i = 3; i < NF; i += 2) v[$i] = $(i + 1); n = split($2, p, "/")
                printf "BENCH: check config=%s op=%s round=%s calls=%d ns=%d mean=%.1f min=%d batches=%d\n", p[n], o, r,
                       v["calls"], v["ns_per_call_median"], v["ns_per_call_mean"], v["ns_per_call_min"], v["batches"] }'
}
for round in $(seq 0 $((rounds - 1))); do
    measure open "$round" bw_fallback_ope open "$n_open" "$tmp/bench/allowed"
    measure open_deep "$round" bw_fallback_ope open "$n_open" "$tmp/deny/f1111x"
    measure exec "$round" bw_fallback_exe exec "$n_exec" -
    measure connect "$round" bw_fallback_con connect "$n_connect" -
done
