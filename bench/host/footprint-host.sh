#!/usr/bin/env bash
# bench/host/footprint-host.sh BUILD_DIR SCENARIO_DIR
#
# bulwarkd's memory on this machine, where each part of it can be named
# (the guest reports only the totals): 1,000 policies and 500 workloads
# (SCENARIO_DIR/footprint from gen-policies.py, 500 cgroups made here), as
# in the guest, then the same 1,000 policy files with the Kubernetes client
# on (a TLS session with tests/k8s/apiserver.py, no pods there), which is
# when GnuTLS is loaded. RSS is read after the first apply
# and 2 s of idling, with /proc/PID/smaps summed per mapping. Prints one
# "BENCH: footprint_host mode=local|kubernetes ..." line per mode.
set -euo pipefail
build=$(cd "$1" && pwd)
scenario=$(cd "$2" && pwd)
repo=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"
find_cgroup2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bulwark-foot.XXXXXX")
top=bulwark-foot-$$
agent= api=
cleanup() {
    [ -n "$agent" ] && kill "$agent" 2>/dev/null && wait "$agent" 2>/dev/null
    [ -n "$api" ] && kill "$api" 2>/dev/null && wait "$api" 2>/dev/null
    find "$cgroot/$top" -depth -type d -exec rmdir {} + 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
for i in $(seq 0 499); do mkdir -p "$cgroot/$top/foot/w$i"; done
sed "s|cgroup: /foot/|cgroup: /$top/foot/|" "$scenario/footprint/inventory.yaml" >"$tmp/inventory.yaml"

# measure MODE ARGS...: starts bulwarkd, waits for its first apply, idles
# 2 s, prints the BENCH line, stops it.
measure() {
    local mode=$1; shift
    rm -f "$tmp/status"
    "$build/agent/bulwarkd" --policy-dir "$scenario/footprint/policies" --cgroup-root "$cgroot" \
        --hook-socket none --journald false --syslog false --events-file "$tmp/events.jsonl" \
        --status-file "$tmp/status" "$@" 2>"$tmp/err" &
    agent=$!
    wait_applied "$tmp/status" "$tmp/err" 3000
    sleep 2 # idle after the first apply: what stays resident
    local policies workloads
    policies=$(grep -c '^policy ' "$tmp/status" || true)
    workloads=$(sed -n 's/^workloads //p' "$tmp/status")
    # Resident kB per kind of mapping: the heap (and other anonymous
    # memory), BPF maps (the ring buffer's pages), bulwarkd's own file,
    # GnuTLS with the libraries it brings (nettle, gmp, p11-kit, ...), other
    # libraries.
    awk -v exe="$build/agent/bulwarkd" '
        /^[0-9a-f]+-[0-9a-f]+ / { name = $6; kind = "anon"
            if (name == exe) kind = "binary"
            else if (name ~ /bpf-map/) kind = "bpf_maps"
            else if (name ~ /lib(curl|ssl|crypto|gnutls|nettle|hogweed|gmp|p11-kit|tasn1|idn2|unistring|ssh2|nghttp2|rtmp|psl|brotli|ldap|lber|sasl2|gssapi|krb5|k5crypto|krb5support|keyutils|com_err)[.-]/) kind = "tls"
            else if (name ~ /\.so/) kind = "other_libs" }
        /^Rss:/ { r[kind] += $2 }
        END { printf "heap_anon_kb=%d bpf_maps_kb=%d binary_kb=%d tls_kb=%d other_libs_kb=%d",
                     r["anon"], r["bpf_maps"], r["binary"], r["tls"], r["other_libs"] }' \
        "/proc/$agent/smaps" >"$tmp/parts"
    # FOOTPRINT_LIBS=1: resident kB of each mapped file, largest first.
    if [ "${FOOTPRINT_LIBS:-0}" = 1 ]; then
        awk '/^[0-9a-f]+-[0-9a-f]+ / { name = $6 } /^Rss:/ && name != "" { r[name] += $2 }
             END { for (n in r) if (r[n] > 0) print r[n], n }' "/proc/$agent/smaps" | sort -rn | head -25 >&2
    fi
    echo "BENCH: footprint_host mode=$mode policies=$policies workloads=$workloads" \
        "rss_kb=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$agent/status")" \
        "pss_kb=$(sed -n 's/^Pss:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$agent/smaps_rollup")" \
        "hwm_kb=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$agent/status")" "$(cat "$tmp/parts")"
    kill "$agent"
    wait "$agent" 2>/dev/null || true
    agent=
}

measure local --inventory "$tmp/inventory.yaml"

# The cluster is the inventory in Kubernetes mode: no workloads here, the
# same policies; what differs is the client.
mkdir -p "$tmp/api"
python3 "$repo/tests/k8s/apiserver.py" --state-dir "$tmp/api" --quiet 2>"$tmp/api.log" &
api=$!
for _ in $(seq 1 1500); do [ -f "$tmp/api/ready" ] && break; sleep 0.02; done
[ -f "$tmp/api/ready" ] || { cat "$tmp/api.log" >&2; exit 1; }
measure kubernetes --kubeconfig "$tmp/api/kubeconfig" --node-name bench-node
