#!/bin/sh
# Enforcing against degraded: one scenario, run in the guest (BPF-LSM:
# bulwarkd must say "enforcing" and deny) and on the host, whose kernel
# refuses BPF-LSM programs (bulwarkd must say "degraded" and report
# "would block", kill with --degraded-action=kill, and still deny connects
# through its cgroup programs). Every case states what each mode must do,
# so the difference is asserted, not just observed.
#
# Environment (defaults are the guest's): SCENARIO_DIR (lib.sh), CGROOT
# (cgroup2 mount), T (scratch directory), AUTO_STATE (what --bpf-lsm=auto
# must give on this kernel: enforcing or degraded). Every workload is a
# cgroup made here, so no policy reaches the shell running this or the agent.
. "${SCENARIO_DIR:-/scenario}/lib.sh"

CGROOT=${CGROOT:-/sys/fs/cgroup}
T=${T:-/run/modes}
AUTO_STATE=${AUTO_STATE:-enforcing}
CGP=/bulwark-modes-$$
for w in locked audited free exec-allow; do
    mkdir -p "$CGROOT$CGP/$w"
done
mkdir -p "$T/policies" "$T/ro" "$T/bin"
echo secret >"$T/secret"
echo data >"$T/ro/file"
cp -L /bin/true "$T/bin/allowed-tool"
cp -L /bin/true "$T/bin/other-tool"
ln -sf /bin/sh "$T/mysh"

cat >"$T/policies/lock.yaml" <<EOF
apiVersion: bulwark.dev/v1alpha1
kind: ClusterBulwarkPolicy
metadata: {name: lock-web}
spec:
  mode: Block
  namespaceSelector: {matchLabels: {bulwark.dev/locked: "true"}}
  podSelector: {matchLabels: {app: web}}
  exec: {deny: [{path: /bin/sh}]}
  files:
    deny:
      - {path: $T/secret, access: [read]}
      - {prefix: $T/ro/, access: [write]}
  network:
    deny:
      - {cidr: "127.0.0.1/32", ports: [8081], protocol: TCP}
      - {cidr: "::1/128", ports: [7000]}
---
apiVersion: bulwark.dev/v1alpha1
kind: BulwarkPolicy
metadata: {name: batch-exec-allow, namespace: prod}
spec:
  mode: Block
  podSelector: {matchLabels: {app: batch}}
  exec: {allow: [{prefix: $T/bin/allowed}]}
---
apiVersion: bulwark.dev/v1alpha1
kind: BulwarkPolicy
metadata: {name: audit-shells, namespace: staging}
spec:
  mode: Audit
  exec: {deny: [{path: /bin/sh}]}
EOF
cat >"$T/inventory.yaml" <<EOF
namespaces:
  - {name: prod, labels: {bulwark.dev/locked: "true"}}
  - {name: staging}
  - {name: dev}
workloads:
  - {cgroup: $CGP/locked, namespace: prod, pod: web-1, labels: {app: web}}
  - {cgroup: $CGP/audited, namespace: staging, pod: web-2, labels: {app: web}}
  - {cgroup: $CGP/free, namespace: dev, pod: tools, labels: {app: tools}}
  - {cgroup: $CGP/exec-allow, namespace: prod, pod: batch, labels: {app: batch}}
EOF
CG=$CGROOT$CGP

# outcome PROBE-ARGS...: ok | EPERM | killed | other:<what the probe said>,
# run from $PROBE_CWD (default /). A tcp ECONNREFUSED is "ok": the security
# layer let the connect through and nothing listened.
outcome() {
    line=$(cd "${PROBE_CWD:-/}" && bulwark-probe "$@" 2>&1)
    rc=$?
    [ "$rc" -eq 137 ] && { echo killed; return; } # the probe itself (open)
    case "$line" in
    *"signal=9"*) echo killed ;;                  # the exec'd child
    *"result=ok"* | *"(ECONNREFUSED)"*) echo ok ;;
    *"(EPERM)"*) echo EPERM ;;
    *) echo "other:$line" ;;
    esac
}

# want ENFORCING DEGRADED KILL: the expectation for the mode running now.
want() {
    case "$MODE" in
    enforcing) echo "$1" ;;
    degraded) echo "$2" ;;
    degraded-kill) echo "$3" ;;
    esac
}

# probe_case NAME WANT PROBE-ARGS...
probe_case() {
    name=$1
    w=$2
    shift 2
    got=$(outcome "$@")
    if [ "$got" = "$w" ]; then pass "$MODE: $name: $got"; else fail "$MODE: $name: got $got, want $w"; fi
    echo "MODES-TABLE: $MODE | $name | $got"
}

# event_case NAME WANT-DECISION HOOK PATTERN: the event for a case, or
# none when WANT-DECISION is "-".
event_case() {
    if [ "$2" = "-" ]; then
        if grep -qE "\"hook\":\"$3\".*$4" "$AGENT_OUT"; then fail "$MODE: $1: no event"; else pass "$MODE: $1: no event"; fi
    elif wait_for "$AGENT_OUT" "\"hook\":\"$3\",\"decision\":\"$2\".*$4"; then
        pass "$MODE: $1: event says $2"
    else
        fail "$MODE: $1: event says $2"
        grep '"kind":"decision"' "$AGENT_OUT" | tail -3
    fi
}

# run_mode MODE STATE BULWARKD-ARGS...: one agent, every case.
run_mode() {
    MODE=$1
    state=$2
    shift 2
    echo "== $MODE (bulwarkd $*)"
    rm -f "$T/metrics"
    if ! start_agent --policy-dir "$T/policies" --inventory "$T/inventory.yaml" --cgroup-root "$CGROOT" \
        --hook-socket none --journald false --syslog false --metrics-file "$T/metrics" "$@"; then
        fail "$MODE: agent starts"
        return
    fi
    grep -q '^workloads 3$' "$AGENT_STATUS" && ! grep -q '^rejected' "$AGENT_STATUS" &&
        pass "$MODE: policies applied to the 3 selected workloads" ||
        { fail "$MODE: policies applied to the 3 selected workloads"; cat "$AGENT_STATUS"; }
    first=$(head -1 "$AGENT_ERR")
    echo "first line: $first"
    case "$first" in
    "bulwarkd: $state:"*) pass "$MODE: first log line says $state" ;;
    *) fail "$MODE: first log line says $state (got: $first)" ;;
    esac
    grep -q "^state $state" "$AGENT_STATUS" && pass "$MODE: status file says $state" ||
        fail "$MODE: status file says $state"
    grep -q "\"event\":\"started\",\"state\":\"$state\"" "$AGENT_OUT" && pass "$MODE: started record says $state" ||
        fail "$MODE: started record says $state"

    probe_case "exec /bin/sh (deny rule)" "$(want EPERM ok killed)" --cgroup "$CG/locked" exec /bin/sh -c true
    event_case "exec /bin/sh" "$(want blocked would-block killed)" exec '"target":"/bin/sh"'
    probe_case "exec through a new link to the shell" "$(want EPERM ok ok)" --cgroup "$CG/locked" exec "$T/mysh" -c true
    event_case "exec through a link" "$(want blocked - -)" exec "\"target\":\"$T/mysh\""
    probe_case "exec of an unlisted program (allow list)" "$(want EPERM ok killed)" \
        --cgroup "$CG/exec-allow" exec "$T/bin/other-tool"
    probe_case "exec of a listed program (allow list)" ok --cgroup "$CG/exec-allow" exec "$T/bin/allowed-tool"
    probe_case "read of a denied file" "$(want EPERM ok killed)" --cgroup "$CG/locked" open "$T/secret" read
    event_case "read of a denied file" "$(want blocked would-block killed)" file \
        "\"target\":\"$T/secret\",\"access\":\"read\""
    PROBE_CWD=$T
    probe_case "read of a denied file by a relative name" "$(want EPERM ok ok)" --cgroup "$CG/locked" open secret read
    PROBE_CWD=
    probe_case "write under a denied prefix" "$(want EPERM ok killed)" --cgroup "$CG/locked" open "$T/ro/file" write
    probe_case "read under the write-denied prefix" ok --cgroup "$CG/locked" open "$T/ro/file" read
    probe_case "connect 127.0.0.1:8081 (deny rule)" EPERM --cgroup "$CG/locked" connect 127.0.0.1 8081 tcp
    event_case "connect 127.0.0.1:8081" blocked connect '"target":"127.0.0.1:8081"'
    probe_case "connect [::1]:7000 (deny rule)" EPERM --cgroup "$CG/locked" connect ::1 7000 tcp
    probe_case "connect 127.0.0.1:8080 (no rule)" ok --cgroup "$CG/locked" connect 127.0.0.1 8080 tcp
    probe_case "Audit mode: exec /bin/sh" ok --cgroup "$CG/audited" exec /bin/sh -c true
    event_case "Audit mode: exec /bin/sh" audited exec '"policy":"BulwarkPolicy staging/audit-shells"'
    probe_case "unselected workload: exec /bin/sh" ok --cgroup "$CG/free" exec /bin/sh -c true
    probe_case "unselected workload: read" ok --cgroup "$CG/free" open "$T/secret" read
    probe_case "unselected workload: connect 8081" ok --cgroup "$CG/free" connect 127.0.0.1 8081 tcp
    event_case "unselected workload" - "[a-z]*" "\"cgroup_path\":\"$CGP/free\""
    if [ "$state" = enforcing ]; then
        event_case "no degraded decisions" - "[a-z]*" '"degraded":"1"'
    else
        wait_for "$AGENT_OUT" '"hook":"exec".*"degraded":"1"' && pass "$MODE: degraded decisions are marked" ||
            fail "$MODE: degraded decisions are marked"
    fi

    kill -USR1 "$AGENT_PID"
    if wait_for "$AGENT_OUT" "\"event\":\"health\",\"state\":\"$state\""; then
        pass "$MODE: health event says $state"
        h=$(grep '"event":"health"' "$AGENT_OUT" | tail -1)
        case "$MODE" in
        enforcing) echo "$h" | grep -q '"blocked":[1-9]' ;;
        degraded) echo "$h" | grep -q '"would_block":[1-9].*"degraded_unjudged":[1-9]' ;;
        degraded-kill) echo "$h" | grep -q '"killed":[1-9].*"degraded_unjudged":[1-9]' ;;
        esac && pass "$MODE: health counts what happened" || { fail "$MODE: health counts what happened"; echo "$h"; }
    else
        fail "$MODE: health event says $state"
    fi
    # The metrics file is rewritten every second: wait for one with counts.
    if [ "$state" = enforcing ]; then m='bulwark_enforcing 1'; else m='bulwark_enforcing 0'; fi
    wait_for "$T/metrics" "^$m\$" && pass "$MODE: metrics say $m" || fail "$MODE: metrics say $m"
    stop_agent && pass "$MODE: clean exit" || fail "$MODE: clean exit"
}

run_mode "$([ "$AUTO_STATE" = enforcing ] && echo enforcing || echo degraded)" "$AUTO_STATE"
run_mode degraded degraded --bpf-lsm off
grep -q '"degraded_reason":"BPF-LSM not used (--bpf-lsm=off)"' "$AGENT_OUT" &&
    pass "--bpf-lsm off: the reason says so" || fail "--bpf-lsm off: the reason says so"
run_mode degraded-kill degraded --bpf-lsm off --degraded-action kill

echo "== --bpf-lsm required"
if [ "$AUTO_STATE" = degraded ]; then
    bulwarkd --bpf-lsm required --policy-dir "$T/policies" --hook-socket none --journald false --syslog false \
        --cgroup-root "$CGROOT" >/dev/null 2>"$T/required.err"
    rc=$?
    [ "$rc" -eq 1 ] && grep -q '^bulwarkd: cannot enforce: ' "$T/required.err" &&
        pass "required: refuses to start without BPF-LSM (exit 1, says why)" ||
        { fail "required: refuses to start without BPF-LSM (rc=$rc)"; cat "$T/required.err"; }
else
    start_agent --bpf-lsm required --policy-dir "$T/policies" --hook-socket none --journald false --syslog false \
        --cgroup-root "$CGROOT" && head -1 "$AGENT_ERR" | grep -q '^bulwarkd: enforcing:' &&
        pass "required: starts enforcing" || fail "required: starts enforcing"
    stop_agent
fi

for w in locked audited free exec-allow; do
    rmdir "$CGROOT$CGP/$w" 2>/dev/null
done
rmdir "$CGROOT$CGP" 2>/dev/null
finish
