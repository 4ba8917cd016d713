#!/usr/bin/env bash
# The kubernetes scenario's API server (python3, openssl, curl, the CRDs and
# lock-shells as JSON), plus Debian's runc and a busybox bundle root for the
# containers (make-initramfs.sh adds runc's libraries).
set -euo pipefail
stage=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$here/../kubernetes/stage.sh" "$stage"
install -D -m 755 "$(command -v runc)" "$stage/usr/sbin/runc"
rootfs=$stage/bundle/rootfs
mkdir -p "$rootfs/bin" "$rootfs/out" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for a in sh echo true cat; do ln -sf busybox "$rootfs/bin/$a"; done
