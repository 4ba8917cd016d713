#!/usr/bin/env bash
# Brings a real systemd-journald, journalctl and rsyslogd (with its modules)
# into the guest image; make-initramfs.sh adds the libraries they link.
set -euo pipefail
stage=$1
install -D -m 755 /lib/systemd/systemd-journald "$stage/lib/systemd/systemd-journald"
install -D -m 755 "$(command -v journalctl)" "$stage/usr/bin/journalctl"
install -D -m 755 /usr/sbin/rsyslogd "$stage/usr/sbin/rsyslogd"
mkdir -p "$stage/usr/lib/x86_64-linux-gnu/rsyslog"
for m in imuxsock lmnet; do
    cp /usr/lib/x86_64-linux-gnu/rsyslog/$m.so "$stage/usr/lib/x86_64-linux-gnu/rsyslog/"
done
# (libsystemd-shared, which journald links through its RUNPATH, comes with
# the libraries make-initramfs.sh copies for every executable)
