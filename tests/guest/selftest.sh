#!/usr/bin/env bash
# selftest.sh [BUILD_DIR]
#
# End-to-end check of the guest harness: fetch the kernel, stage bulwark-probe
# and a small /guest-test.sh, build the initramfs, boot it in QEMU and require
# every check to pass. BUILD_DIR is searched for bulwark-probe (BUILD_DIR/ or
# BUILD_DIR/tests/guest/, as meson lays it out); without BUILD_DIR, probe.c is
# compiled here with gcc.
#
# Environment: BULWARK_GUEST_CACHE (kernel cache, default
# ${XDG_CACHE_HOME:-$HOME/.cache}/bulwark/guest-kernel), GUEST_LOG, GUEST_TIMEOUT
# (seconds, default 600), KEEP_STAGE=1 to keep (and print) the staging dir.
set -euo pipefail

prog=selftest
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "$prog: error: $*" >&2; exit 2; }

[ $# -le 1 ] || { echo "usage: $0 [BUILD_DIR_WITH_PROBE]" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bulwark-selftest.XXXXXX")
if [ "${KEEP_STAGE:-0}" = 1 ]; then
    trap 'echo "$prog: kept $tmp" >&2' EXIT
else
    trap 'rm -rf "$tmp"' EXIT
fi

probe=
if [ $# -eq 1 ]; then
    for c in "$1/bulwark-probe" "$1/tests/guest/bulwark-probe"; do
        if [ -x "$c" ]; then probe=$c; break; fi
    done
    [ -n "$probe" ] || die "no executable bulwark-probe in $1 or $1/tests/guest"
else
    if ! command -v gcc >/dev/null; then
        [ "$(id -u)" -eq 0 ] || die "gcc missing and not root to install it"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gcc libc6-dev >&2
    fi
    probe=$tmp/bulwark-probe
    gcc -O2 -g -Wall -Wextra -Werror -o "$probe" "$here/probe.c"
fi
echo "$prog: probe: $probe" >&2

cache=${BULWARK_GUEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bulwark/guest-kernel}
kernel=$("$here/fetch-kernel.sh" "$cache")
echo "$prog: kernel: $kernel ($(cat "$cache/kernel-version"))" >&2

stage=$tmp/stage
mkdir -p "$stage/usr/bin"
install -m 755 "$probe" "$stage/usr/bin/bulwark-probe"

cat >"$stage/guest-test.sh" <<'EOF'
#!/bin/sh
# Harness self-test, run by /init inside the guest (busybox sh).
fails=0
pass() { echo "SELFTEST: PASS $*"; }
fail() { echo "SELFTEST: FAIL $*"; fails=$((fails + 1)); }
check() { # check NAME CMD...: the command must exit 0
    name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name (exit $?)"; fi
}

# wait_for FILE TEXT PID: bounded poll (5 s) until FILE contains TEXT
wait_for() {
    i=0
    while ! grep -q "$2" "$1" 2>/dev/null; do
        kill -0 "$3" 2>/dev/null || return 1
        i=$((i + 1))
        [ "$i" -le 500 ] || return 1
        sleep 0.01
    done
}

echo "SELFTEST: uname $(uname -r)"

# (a) the bpf LSM is active
lsm=$(cat /sys/kernel/security/lsm)
case ",$lsm," in
*,bpf,*) pass "bpf in LSM list ($lsm)" ;;
*) fail "bpf not in LSM list ($lsm)" ;;
esac
[ -d /sys/fs/bpf ] && grep -q ' /sys/fs/bpf bpf ' /proc/mounts && pass "bpffs mounted" || fail "bpffs mounted"
grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts && pass "cgroup2 mounted" || fail "cgroup2 mounted"

# (b) a cgroup, and a process moved into it
cg=/sys/fs/cgroup/bulwark-selftest
if id=$(bulwark-probe mkcgroup "$cg") && [ -n "$id" ] && [ "$id" = "$(stat -c %i "$cg")" ]; then
    pass "mkcgroup $cg id=$id"
else
    fail "mkcgroup $cg (id='${id:-}')"
fi
out=$(bulwark-probe --cgroup "$cg" exec /bin/cat /proc/self/cgroup)
echo "$out"
case $out in
*"0::/bulwark-selftest"*"result=ok status=0"*) pass "exec runs inside the cgroup" ;;
*) fail "exec runs inside the cgroup" ;;
esac

# (c) probes that must be allowed (no enforcement loaded)
check "exec /bin/true" bulwark-probe --cgroup "$cg" --expect ok exec /bin/true
check "open /etc/passwd read" bulwark-probe --cgroup "$cg" open /etc/passwd read --expect ok
check "open /tmp/probe-w write" sh -c ': >/tmp/probe-w && bulwark-probe --cgroup '"$cg"' open /tmp/probe-w write --expect ok'
check "open missing file -> ENOENT" bulwark-probe open /nonexistent read --expect ENOENT
check "exec missing file -> ENOENT" bulwark-probe --expect ENOENT exec /nonexistent
# the assertion itself must be able to fail
bulwark-probe open /etc/passwd read --expect EPERM
[ $? -eq 1 ] && pass "--expect mismatch exits 1" || fail "--expect mismatch exits 1"

for addr in 127.0.0.1 ::1; do
    log=/tmp/listen-$addr.out
    bulwark-probe listen "$addr" 8080 tcp >"$log" 2>&1 &
    lpid=$!
    if wait_for "$log" listening "$lpid"; then
        pass "listener on $addr 8080 ready"
        check "connect $addr 8080 tcp" bulwark-probe --cgroup "$cg" connect "$addr" 8080 tcp --expect ok
    else
        fail "listener on $addr 8080 ready: $(cat "$log")"
    fi
    kill "$lpid" 2>/dev/null
    wait "$lpid" 2>/dev/null
    check "connect $addr 8081 tcp (nobody listens) -> ECONNREFUSED" \
        bulwark-probe --cgroup "$cg" connect "$addr" 8081 tcp --expect ECONNREFUSED
    check "connect $addr 53 udp" bulwark-probe --cgroup "$cg" connect "$addr" 53 udp --expect ok
done
ip -6 addr show dev lo | grep -q 'inet6 ::1/' && pass "::1 on lo" || fail "::1 on lo"

echo "SELFTEST: SUMMARY fails=$fails"
[ "$fails" -eq 0 ]
EOF

initrd=$tmp/initramfs.cpio.gz
"$here/make-initramfs.sh" "$initrd" "$stage"
"$here/run-qemu.sh" "$kernel" "$initrd" "${GUEST_TIMEOUT:-600}"
