#!/usr/bin/env bash
# bench/run.sh [--smoke] [BUILD_DIR [OUT_DIR]]
#
# The benchmark in one command: boots Debian's kernel (real BPF-LSM) in
# QEMU once, runs every configuration there interleaved and repeated
# (bench/guest/guest-test.sh), and writes OUT_DIR/performance.csv and
# OUT_DIR/PERFORMANCE.md (default OUT_DIR: docs/). --smoke runs tiny
# iteration counts into a scratch directory and checks that every row is
# there (the test suite's bench-smoke); it reports no numbers.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
smoke=0
if [ "${1:-}" = --smoke ]; then smoke=1; shift; fi
for section in ${ONLY:-}; do
    case $section in
    micro | pipeline | footprint | propagation | perf) ;;
    *) echo "$0: ONLY: unknown section '$section' (micro, pipeline, footprint, propagation, perf)" >&2; exit 2 ;;
    esac
done
build=$(cd "${1:-$repo/build}" && pwd)
out=${2:-$([ $smoke = 1 ] && mktemp -d "${TMPDIR:-/tmp}/bulwark-bench-smoke.XXXXXX" || echo "$repo/docs")}
mkdir -p "$out"
[ -x "$build/bench/bulwark-bench" ] || { echo "$0: build first (ninja -C $build)" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bulwark-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
scenario=$tmp/scenario
mkdir -p "$scenario"
cp "$here/guest/guest-test.sh" "$scenario/"
cp "$here/guest/stage.sh" "$scenario/"
python3 "$here/gen-policies.py" "$scenario" $([ $smoke = 1 ] && echo --smoke)
cp -a "$here/guest/apparmor" "$here/guest/auditd" "$scenario/" 2>/dev/null || true
if [ $smoke = 1 ]; then
    cat >"$scenario/bench.conf" <<EOF
ROUNDS=1 N_OPEN=200 N_EXEC=5 N_CONNECT=50 LOAD_SECONDS=0.2 LAT_COUNT=5 PROP_COUNT=2 LSM_ROUNDS=1 APPARMOR=${APPARMOR:-1} AUDITD=${AUDITD:-1} WAIT_TRIES=6000 PERF=${PERF:-1} PERF_EXEC=5 PERF_CONNECT=50
EOF
else
    cat >"$scenario/bench.conf" <<EOF
ONLY="${ONLY:-}" ROUNDS=${ROUNDS:-5} N_OPEN=${N_OPEN:-20000} N_EXEC=${N_EXEC:-200} N_CONNECT=${N_CONNECT:-3000} LOAD_SECONDS=${LOAD_SECONDS:-3} LAT_COUNT=${LAT_COUNT:-300} PROP_COUNT=${PROP_COUNT:-200} LSM_ROUNDS=${LSM_ROUNDS:-3} APPARMOR=${APPARMOR:-1} AUDITD=${AUDITD:-1} WAIT_TRIES=6000 BENCH_SAMPLES=${BENCH_SAMPLES:-} PROP_PROBE_US=${PROP_PROBE_US:-1000} PERF=${PERF:-1} PERF_EXEC=${PERF_EXEC:-1000} PERF_CONNECT=${PERF_CONNECT:-3000}
EOF
fi
export BULWARK_BENCH_BIN=$build/bench/bulwark-bench
log=${GUEST_LOG:-$tmp/console.log}
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
rc=0
GUEST_LOG=$log GUEST_TIMEOUT=${GUEST_TIMEOUT:-2400} "$repo/tests/guest/run-scenario.sh" "$build" "$scenario" || rc=$?
grep -a 'BULWARK-TEST: FAIL' "$log" || true
# The event pipeline, the check's own cost, propagation and the footprint
# once more on this machine's own CPU (bench/host/).
cp "$log" "$tmp/all.log"
if [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" pipeline "* ]]; then
    LAT_COUNT=$([ $smoke = 1 ] && echo 5 || echo "${LAT_COUNT:-300}") "$here/host/pipeline-host.sh" "$build" "$([ $smoke = 1 ] && echo 0.2 || echo "${LOAD_SECONDS:-3}")" >>"$tmp/all.log" || rc=$?
fi
if [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" micro "* ]]; then
    if [ $smoke = 1 ]; then export N_CHECK_OPEN=200 N_CHECK_EXEC=5 N_CHECK_CONNECT=50; fi
    "$here/host/check-host.sh" "$build" "$scenario" "$([ $smoke = 1 ] && echo 1 || echo "${ROUNDS:-5}")" >>"$tmp/all.log" || rc=$?
fi
if [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" propagation "* ]]; then
    "$here/host/propagate-host.sh" "$build" "$scenario" "$([ $smoke = 1 ] && echo 2 || echo "${PROP_COUNT:-200}")" \
        >>"$tmp/all.log" || rc=$?
fi
if [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" footprint "* ]]; then
    "$here/host/footprint-host.sh" "$build" "$scenario" >>"$tmp/all.log" || rc=$?
fi
python3 "$here/report.py" "$tmp/all.log" "$out" --started "$started" --host "$(uname -r)" --cpus "$(nproc)" --tcg-thread "${GUEST_TCG_THREAD:-single}" \
    $([ $smoke = 1 ] && echo --smoke) $([ "${PERF:-1}" = 1 ] || echo --no-perf) || rc=$?
[ $smoke = 1 ] && rm -rf "$out"
exit $rc
