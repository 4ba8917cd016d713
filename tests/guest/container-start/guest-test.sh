#!/bin/sh
# Enforcement from a container's first instruction, with a real runtime:
# Debian's runc starts busybox containers whose cgroups it makes itself
# (cgroupfs driver: /kubepods/burstable/pod<uid>/<id>), with
# bulwark-oci-hook as createRuntime hook. bulwarkd runs in Kubernetes mode
# against the test API server in the guest; each container's pod is created
# in the API server just before runc starts it, so the agent learns of the
# pod and of its cgroup only while the container is being made.
#   - 200 containers back to back in a namespace labelled
#     bulwark.dev/locked=true, each whose first command is a shell that would
#     leave a file behind: no shell runs, each start is blocked by
#     lock-shells; the hook's added latency per start is reported.
#   - the same in an unlabelled namespace: the shell runs.
#   - bulwarkd down: the hook fails closed in the locked namespace (from the
#     block-namespaces file), open elsewhere, closed everywhere with --fail closed.
. /scenario/lib.sh

API=/run/api
NODE=guest-node
# 200, or bulwark.containers=N on the kernel command line (GUEST_APPEND) for a quick try
N=$(sed -n 's/.*bulwark\.containers=\([0-9]*\).*/\1/p' /proc/cmdline)
N=${N:-200}
HOOKLOG=/run/hook.log
OUT=/bundle/rootfs/out


python3 -S /scenario/apiserver.py --state-dir $API --quiet 2>/run/apiserver.err &
APIPID=$!
wait_for $API/ready . 6000 || { cat /run/apiserver.err; fail "test API server starts"; finish; exit 1; }
api POST /apis/apiextensions.k8s.io/v1/customresourcedefinitions "$(cat /scenario/crd-cbp.json)" >/dev/null
api POST /apis/apiextensions.k8s.io/v1/customresourcedefinitions "$(cat /scenario/crd-bp.json)" >/dev/null
api POST /api/v1/namespaces '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"locked","labels":{"bulwark.dev/locked":"true"}}}' >/dev/null
api POST /api/v1/namespaces '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"open"}}' >/dev/null
api POST /apis/bulwark.dev/v1alpha1/clusterbulwarkpolicies "$(cat /scenario/lock-shells.json)" >/dev/null
mkdir -p /sys/fs/cgroup/kubepods/burstable

start_agent --kubeconfig $API/kubeconfig --node-name $NODE || { fail "agent starts"; finish; exit 1; }
check "agent synced, lock-shells in force" wait_for "$AGENT_STATUS" '^policy ClusterBulwarkPolicy lock-shells' 3000

(cd /run && runc spec) && mv /run/config.json /run/spec.json
check "runc spec" test -s /run/spec.json

# pods NS PREFIX FIRST LAST [HOOK-ARGS...]: pods in the API server and their bundles
pods() { python3 -S /scenario/pods.py "$@"; }
# run ID: runc runs the bundle of container ID
run() {
    cp "/bundle/configs/$1.json" /bundle/config.json &&
        runc run --no-pivot -b /bundle "$1" >/run/runc.out 2>&1 </dev/null
}

echo "== one container in the unlabelled namespace"
pods open open 1 1 && run open-1
check "unlabelled namespace: the container's shell runs" test -f $OUT/open-1
grep 'open-1' $HOOKLOG

echo "== $N containers back to back in namespace locked"
# The pods exist in the API server first (the agent knows them); their
# cgroups do not: runc makes each while it creates the container.
pods locked locked 1 $N
check "$N pods created" test -f /bundle/configs/locked-$N.json
i=1
while [ $i -le $N ]; do
    run "locked-$i"
    i=$((i + 1))
done
tail -n 2 /run/runc.out
ran=$(ls $OUT | grep -c '^locked-' || true)
check "locked namespace: 0 of $N container shells ran ($ran did)" [ "$ran" -eq 0 ]
enforced=$(grep -c 'locked-.*: enforced; starting' $HOOKLOG || true)
check "the hook waited for bulwarkd to confirm the rules of each of the $N containers ($enforced enforced)" [ "$enforced" -eq "$N" ]
# events_blocked: how many of the N pods have their blocked-exec event (the
# sinks may still be writing the last ones: polled, bounded)
events_blocked() {
    grep '"decision":"blocked".*"policy":"ClusterBulwarkPolicy lock-shells"' "$AGENT_OUT" |
        grep -o '"pod":"locked-[0-9]*"' | sort -u | wc -l
}
tries=0
while [ "$(events_blocked)" -lt "$N" ] && [ $tries -lt 500 ]; do
    tries=$((tries + 1))
    sleep 0.02
done
blocked=$(events_blocked)
check "each start's shell was blocked by lock-shells, named with its pod ($blocked of $N events)" [ "$blocked" -eq "$N" ]
grep 'locked-.*: enforced; starting' $HOOKLOG | sed 's/.* after \([0-9.]*\) ms/\1/' | sort -n >/run/lat
if [ -s /run/lat ]; then
    n=$(wc -l </run/lat)
    echo "BULWARK-MEASURE: hook added latency over $n starts (ms): p50 $(sed -n "$(((n + 1) / 2))p" /run/lat)" \
        "p90 $(sed -n "$(((n * 9 + 9) / 10))p" /run/lat) max $(tail -n 1 /run/lat)"
fi
kill -USR1 "$AGENT_PID"
wait_for "$AGENT_OUT" '"event":"health".*"oci_hook":"requests=' 3000
grep '"event":"health"' "$AGENT_OUT" | tail -n 1 | sed 's/.*"oci_hook":"\([^"]*\)".*/BULWARK-MEASURE: bulwarkd hook server: \1/'
grep -q '"event":"unclassified-workload"' "$AGENT_OUT" && echo "note: some cgroups were unclassified for a moment (audited by the posture)"

echo "== a kubepods cgroup of no known pod gets the posture (default audit)"
U=/sys/fs/cgroup/kubepods/burstable/pod0000aaaa-unknown/ctr1
mkdir -p $U
expect "unclassified cgroup, posture audit: exec allowed" ok --cgroup $U exec /bin/true
check "...and audited by the posture" wait_for "$AGENT_OUT" \
    '"decision":"audited".*"policy":"Posture unclassified-workload".*"cgroup_path":"/kubepods/burstable/pod0000aaaa-unknown/ctr1"' 3000
check "...and reported once as an unclassified workload" wait_for "$AGENT_OUT" \
    '"event":"unclassified-workload".*"pod_uid":"0000aaaa-unknown"' 3000
if [ "$FAILS" -gt 0 ]; then
    echo "--- events about 0000aaaa:"; grep '0000aaaa' "$AGENT_OUT" | tail -n 5
    echo "--- last audited:"; grep '"decision":"audited"' "$AGENT_OUT" | tail -n 3
    echo "--- first audited:"; grep '"decision":"audited"' "$AGENT_OUT" | head -n 2
    echo "--- last health:"; kill -USR1 "$AGENT_PID"; sleep 1; grep '"event":"health"' "$AGENT_OUT" | tail -n 1
    echo "--- status:"; cat "$AGENT_STATUS" | grep -v '^policy' | head -20
    echo "--- agent stderr:"; tail -n 20 "$AGENT_ERR"
fi

echo "== bulwarkd down"
stop_agent && pass "agent stops" || fail "agent stops"
check "the block-namespaces file names locked, not open" eval \
    'grep -qx locked /run/bulwark/block-namespaces && ! grep -qx open /run/bulwark/block-namespaces'
pods locked locked-down 1 1 && run locked-down-1
check "agent down, locked namespace: the hook fails closed (container refused, shell did not run)" \
    eval '! test -f $OUT/locked-down-1 && grep -q "locked-down-1.*cannot reach bulwarkd.*refused (a Block policy" $HOOKLOG'
pods open open-down 2 2 && run open-down-2
check "agent down, unlabelled namespace: the hook fails open (shell runs)" test -f $OUT/open-down-2
pods open open-down 3 3 --fail closed && run open-down-3
check "agent down, --fail closed: refused in any namespace" \
    eval '! test -f $OUT/open-down-3 && grep -q "open-down-3.*refused (--fail closed)" $HOOKLOG'
pods kube-system ks-down 4 4 --fail closed && run ks-down-4
check "agent down, kube-system is exempt: starts without waiting" test -f $OUT/ks-down-4
echo "== posture block-exec"
start_agent --kubeconfig $API/kubeconfig --node-name $NODE --unclassified block-exec ||
    { fail "agent starts with --unclassified block-exec"; finish; exit 1; }
wait_for "$AGENT_STATUS" '^kubernetes synced' 3000
wait_for "$AGENT_STATUS" '^workloads [1-9]' 3000
expect "unclassified cgroup, posture block-exec: exec refused" EPERM --cgroup $U exec /bin/true
mkdir -p /sys/fs/cgroup/kubepods/burstable/pod0000bbbb-unknown
expect "...also in one made while the agent runs (inherited in the kernel)" EPERM \
    --cgroup /sys/fs/cgroup/kubepods/burstable/pod0000bbbb-unknown exec /bin/true
stop_agent && pass "agent stops" || fail "agent stops"
kill $APIPID
finish
