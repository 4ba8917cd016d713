#!/usr/bin/env bash
# fetch-kernel.sh CACHE_DIR
#
# Ensures CACHE_DIR/vmlinuz (Debian 12's cloud kernel, BPF LSM enabled) and
# CACHE_DIR/kernel-version exist. The kernel package is the one that the
# meta-package linux-image-cloud-amd64 depends on (linux-image-6.1.0-NN-cloud-amd64);
# it is fetched with `apt-get download` and unpacked with `dpkg-deb -x`, never
# installed. CACHE_DIR/config (the kernel's .config) is kept as well.
#
# Idempotent: when both files are present the script returns at once without
# touching apt. Concurrent callers are serialised with flock on CACHE_DIR/.lock.
# Prints the path of vmlinuz on stdout; progress goes to stderr.
set -euo pipefail

prog=fetch-kernel
die() { echo "$prog: error: $*" >&2; exit 1; }
log() { echo "$prog: $*" >&2; }

[ $# -eq 1 ] || { echo "usage: $0 CACHE_DIR" >&2; exit 2; }
cache=$1

have_cache() { [ -s "$cache/vmlinuz" ] && [ -s "$cache/kernel-version" ]; }

# Fast path: nothing to do, not even a lock.
if have_cache; then
    echo "$cache/vmlinuz"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "must run as root (apt-get download / package installation)"
command -v apt-get >/dev/null || die "apt-get not found (a Debian 12 machine is expected)"
command -v dpkg-deb >/dev/null || die "dpkg-deb not found"

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

exec 9>"$cache/.lock"
flock 9
# Another caller may have filled the cache while we waited for the lock.
if have_cache; then
    echo "$cache/vmlinuz"
    exit 0
fi

meta=linux-image-cloud-amd64

# The Depends: field of the candidate version of the meta-package, e.g.
# "linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)"; keep the linux-image-* name.
resolve() {
    apt-cache show --no-all-versions "$meta" 2>/dev/null |
        sed -n 's/^Depends: //p' | tr ',|' '\n' | sed 's/^ *//; s/ .*//' |
        grep -E '^linux-image-[0-9].*-cloud-amd64$' | head -n 1 || true
}

pkg=$(resolve)
if [ -z "$pkg" ]; then
    log "$meta unknown to apt-cache; running apt-get update"
    apt-get update -qq >&2 || die "apt-get update failed"
    pkg=$(resolve)
fi
[ -n "$pkg" ] || die "cannot resolve the kernel package that $meta depends on"
log "kernel package: $pkg"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bulwark-fetch-kernel.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# apt-get download drops privileges to _apt when it can write the directory.
chown _apt "$tmp" 2>/dev/null || true

download() { (cd "$tmp" && apt-get download -q "$pkg" >&2); }
if ! download; then
    log "download failed; running apt-get update and retrying"
    apt-get update -qq >&2 || die "apt-get update failed"
    download || die "apt-get download $pkg failed"
fi

deb=$(find "$tmp" -maxdepth 1 -name "${pkg}_*.deb" | head -n 1)
[ -n "$deb" ] || die "no .deb for $pkg after apt-get download"
dpkg-deb -x "$deb" "$tmp/root"

vmlinuz=$(find "$tmp/root/boot" -maxdepth 1 -name 'vmlinuz-*' | head -n 1)
[ -n "$vmlinuz" ] || die "$deb contains no /boot/vmlinuz-*"
kver=${vmlinuz##*/vmlinuz-}
config="$tmp/root/boot/config-$kver"

# Publish atomically: readers either see the old state or complete files.
cp "$vmlinuz" "$cache/.vmlinuz.tmp"
if [ -f "$config" ]; then
    cp "$config" "$cache/.config.tmp"
    mv -f "$cache/.config.tmp" "$cache/config"
    grep -q '^CONFIG_BPF_LSM=y' "$cache/config" ||
        log "warning: CONFIG_BPF_LSM=y not found in $kver's config"
fi
mv -f "$cache/.vmlinuz.tmp" "$cache/vmlinuz"
echo "$kver" >"$cache/.kernel-version.tmp"
mv -f "$cache/.kernel-version.tmp" "$cache/kernel-version"

log "cached kernel $kver in $cache"
echo "$cache/vmlinuz"
