#!/usr/bin/env bash
# Installs the Debian 12 packages Bulwark builds and tests with; quiet and
# quick when they are all there already.
set -euo pipefail
pkgs=(clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev libyaml-dev libsystemd-dev libjson-c-dev libgnutls28-dev libhttp-parser-dev
      meson ninja-build pkg-config gcc libc6-dev
      systemd rsyslog util-linux python3 python3-yaml
      qemu-system-x86 busybox-static cpio perl runc
      libauparse0 libwrap0 # auditd's libraries, for the benchmark's auditd row
      linux-perf) # perf in the benchmark's guest (where an exec's time goes)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# kubectl: this machine kind ships one; elsewhere Debian's kubernetes-client
command -v kubectl >/dev/null || missing+=(kubernetes-client)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || { echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1; }
    echo "install-deps: installing ${missing[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
