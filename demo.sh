#!/usr/bin/env bash
# The main job on an embedded default: installs what is missing, builds, and
# runs bulwarkd with the example policies of policies/ in a QEMU guest that
# boots Debian's own kernel (BPF LSM on), where a process of a locked
# namespace tries a shell, a protected file and the cloud metadata address.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
GUEST_LOG=/dev/stdout tests/guest/run-scenario.sh build tests/guest/demo
