#!/usr/bin/env bash
# stage.sh STAGE: what the benchmark brings into the guest besides bulwarkd:
# bulwark-bench, a real systemd-journald (the journald sink's pipeline), and
# Debian's apparmor_parser, auditd and auditctl for the comparison rows:
# their packages are downloaded and unpacked (not installed: no service of
# theirs starts on this machine) into a cache. make-initramfs.sh adds the
# libraries of every ELF file staged (scripts/install-deps.sh installs
# auditd's, libauparse0 and libwrap0).
set -euo pipefail
stage=$1
install -D -m 755 "${BULWARK_BENCH_BIN:?}" "$stage/usr/bin/bulwark-bench"
install -D -m 755 /lib/systemd/systemd-journald "$stage/lib/systemd/systemd-journald"
install -D -m 755 "$(command -v journalctl)" "$stage/usr/bin/journalctl"
debs=${BULWARK_GUEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bulwark}/bench-debs
if [ ! -x "$debs/root/sbin/apparmor_parser" ] || [ ! -x "$debs/root/sbin/auditd" ]; then
    mkdir -p "$debs"
    (cd "$debs" && rm -f ./*.deb && apt-get download apparmor auditd >&2 2>/dev/null &&
        for d in ./*.deb; do dpkg -x "$d" root; done) ||
        echo "bench: cannot download apparmor and auditd; their rows are left out" >&2
fi
for b in apparmor_parser auditd auditctl; do
    [ -x "$debs/root/sbin/$b" ] && install -D -m 755 "$debs/root/sbin/$b" "$stage/usr/sbin/$b"
done
# PERF=1 (the default): Debian's perf for the guest's profile of an exec (the host's
# linux-perf package; make-initramfs.sh adds its libraries).
if [ "${PERF:-1}" = 1 ]; then
    install -D -m 755 "$(command -v perf)" "$stage/usr/bin/perf"
fi
exit 0
