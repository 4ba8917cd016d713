#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bulwarkd's Kubernetes mode on the host, without a kernel: cluster-driver
# runs agent/kubernetes.c (the four watches, the cluster source, the status
# writer) and the compiler, and writes which cgroup gets which policies after
# every apply. The real kubectl drives tests/k8s/apiserver.py: the CRDs and
# policies of crd/ and policies/ applied, namespaces labelled and unlabelled,
# pods (of this node and another) created with their kubelet-style cgroups in
# a directory tree, policies edited (also into something the agent rejects)
# and deleted; each policy's status read back with kubectl. Fault checks: API
# server killed (the last state stays), restarted (changes made meanwhile
# arrive), watches cut and the history compacted (410: relist), two nodes
# writing one status (409s resolved), a cluster without the CRDs.
#
#   test-cluster.sh DRIVER [APISERVER.py]
#
# Every wait is a bounded poll of the driver's state file or its counters.
set -uo pipefail

driver=$(realpath "$1")
apiserver=$(realpath "${2:-$(dirname "$0")/../k8s/apiserver.py}")
src=${BULWARK_SOURCE_ROOT:-$(realpath "$(dirname "$0")/../..")}
for tool in python3 kubectl curl openssl; do
    command -v "$tool" >/dev/null || { echo "1..0 # SKIP $tool is not installed"; exit 77; }
done
work=$(mktemp -d /tmp/bw-cluster-XXXXXX)
spid= d1= d2=
passed=0 failed=0

cleanup() {
    for p in $d1 $d2 $spid; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    if [ "$failed" -gt 0 ] || [ -n "${KEEP:-}" ]; then echo "# kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# wait_until SECONDS COMMAND...: polls every 20 ms.
wait_until() {
    local deadline=$(($(date +%s%N) + $1 * 1000000000)); shift
    until "$@"; do
        [ "$(date +%s%N)" -ge "$deadline" ] && return 1
        sleep 0.02
    done
}

start_server() { # STATE-DIR [PORT]
    rm -f "$1/ready"
    python3 "$apiserver" --state-dir "$1" ${2:+--port "$2"} --quiet 2>>"$work/apiserver.log" &
    spid=$!
    wait_until 30 test -f "$1/ready"
}
start_server "$work/api" || { echo "not ok - the test API server did not start"; exit 1; }
export KUBECONFIG=$work/api/kubeconfig
cg=$work/cgroup
mkdir -p "$cg"

# ---- the driver ----
state1=$work/node1.state state2=$work/node2.state
start_driver() { # VAR STATE NODE [ARGS...]
    local var=$1 state=$2 node=$3; shift 3
    rm -f "$state"
    "$driver" --state "$state" --kubeconfig "$KUBECONFIG" --node-name "$node" --cgroup-root "$cg" "$@" \
        2>>"$work/$node.log" &
    printf -v "$var" %s $!
}
# stop_driver PID: SIGTERM; it must exit 0 (under ASan: no leak, no error).
driver_exits=0
stop_driver() {
    kill "$1" && wait "$1" || { driver_exits=$((driver_exits + 1)); echo "# driver $1 exited $?" >&2; }
}
gen() { sed -n 's/^generation //p' "${1:-$state1}" 2>/dev/null; }
has() { grep -q -- "$1" "${2:-$state1}" 2>/dev/null; }
lacks() { [ -f "${2:-$state1}" ] && ! grep -q -- "$1" "${2:-$state1}"; }
# The workload line of a cgroup: its policies.
workload_policies() { sed -n "s|^workload $1 [^ ]* ||p" "$state1"; }
health() { # PID STATE KEY: one field of the driver's KUBE_* counters
    rm -f "$2.health"
    kill -USR1 "$1" && wait_until 10 test -f "$2.health" && sed -n "s/^$3 //p" "$2.health"
}

# ---- pods with kubelet-style cgroups ----
# make_pod NAME NAMESPACE NODE LABELS-JSON: creates it with kubectl (status as
# the kubelet would write it: Running, Burstable, one containerd container)
# and makes its cgroups (systemd driver); prints the pod and container paths.
cid_of() { printf '%s' "$1" | sha256sum | cut -c1-64; }
make_pod() {
    local name=$1 ns=$2 node=$3 labels=$4 cid uid
    cid=$(cid_of "$ns/$name")
    kubectl create -f - >/dev/null <<EOF || return 1
{"apiVersion": "v1", "kind": "Pod",
 "metadata": {"name": "$name", "namespace": "$ns", "labels": $labels},
 "spec": {"nodeName": "$node", "containers": [{"name": "main", "image": "busybox"}]},
 "status": {"phase": "Running", "qosClass": "Burstable",
            "containerStatuses": [{"name": "main", "containerID": "containerd://$cid", "ready": true,
                                   "restartCount": 0, "image": "busybox", "imageID": "", "state": {"running": {}}}]}}
EOF
    uid=$(kubectl get pod -n "$ns" "$name" -o jsonpath='{.metadata.uid}') || return 1
    local pod=/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid//-/_}.slice
    mkdir -p "$cg$pod/cri-containerd-$cid.scope"
    echo "$pod $pod/cri-containerd-$cid.scope"
}

status_of() { # KIND NAME [-n NS]: "enforcing reason generation|message" of node1's entry
    kubectl get "$@" -o json | python3 -c '
import json, sys
o = json.load(sys.stdin)
for e in (o.get("status") or {}).get("nodes") or []:
    if e["name"] == "node1":
        print("%s %s %s|%s" % (str(e["enforcing"]).lower(), e["reason"], e["observedGeneration"], e["message"]))'
}
status_is() { # EXPECTED-PREFIX KIND NAME [ARGS]
    local want=$1; shift
    local got; got=$(status_of "$@" 2>/dev/null)
    [[ "$got" == "$want"* ]]
}
# expect_status EXPECTED-PREFIX KIND NAME [ARGS]: waits for it; on failure
# shows what node1's entry says.
expect_status() {
    wait_until 10 status_is "$@" && return 0
    local want=$1; shift
    echo "# wanted status: $want" >&2
    echo "# got:           $(status_of "$@" 2>&1)" >&2
    return 1
}

echo "# $(kubectl version --client 2>/dev/null | head -n1)"

# ---- 1. CRDs, namespaces, pods; the agent syncs ----
t_setup() {
    kubectl apply -f "$src/crd/bulwark.dev_clusterbulwarkpolicies.yaml" \
        -f "$src/crd/bulwark.dev_bulwarkpolicies.yaml" >/dev/null &&
        kubectl create namespace shop >/dev/null && kubectl create namespace tools >/dev/null &&
        read -r web_pod web_ctr < <(make_pod web shop node1 '{"app": "web"}') &&
        read -r db_pod db_ctr < <(make_pod db shop node1 '{"app": "db"}') &&
        read -r far_pod far_ctr < <(make_pod far shop node2 '{"app": "web"}') &&
        read -r tool_pod tool_ctr < <(make_pod toolbox tools node1 '{"app": "toolbox"}') &&
        [ -n "$tool_ctr" ]
}
check "kubectl apply the CRDs; namespaces shop and tools; pods web, db (node1), far (node2), toolbox (node1)" t_setup

t0=$(now_ms)
start_driver d1 "$state1" node1
check "the agent lists and watches pods, namespaces and both policy kinds, then uses the cluster (ready 1)" \
    wait_until 30 has '^ready 1'
echo "# start to synced: $(($(now_ms) - t0)) ms"
check "status file: 3 pods of node1 found, none left without a cgroup" \
    wait_until 10 has '^pods-without-cgroup 0' && has '^pods 3$'

# ---- 2. a ClusterBulwarkPolicy selecting labelled namespaces ----
t_apply_lock() {
    kubectl apply -f "$src/policies/lock-shells.yaml" >/dev/null &&
        wait_until 10 has '^policy ClusterBulwarkPolicy lock-shells (cluster:ClusterBulwarkPolicy/lock-shells)'
}
check "kubectl apply policies/lock-shells.yaml: the agent has the policy" t_apply_lock
check "no namespace is labelled: no workload gets lock-shells" lacks 'lock-shells$'
check "status: node1 reports Enforcing, generation 1, on 0 workloads" \
    expect_status "true Enforcing 1|Block mode on 0 workloads" cbp lock-shells

t_label() {
    local t1; t1=$(now_ms)
    kubectl label namespace shop bulwark.dev/locked=true >/dev/null &&
        wait_until 10 has "^workload $web_ctr shop/web/main ClusterBulwarkPolicy lock-shells\$" &&
        echo "# kubectl label to the new plan: $(($(now_ms) - t1)) ms"
}
check "kubectl label namespace shop bulwark.dev/locked=true: web's container cgroup gets lock-shells" t_label
check "... and so do web's pod cgroup and db's pod and container cgroups" \
    eval 'has "^workload $web_pod shop/web ClusterBulwarkPolicy lock-shells\$" &&
          has "^workload $db_pod shop/db ClusterBulwarkPolicy lock-shells\$" &&
          has "^workload $db_ctr shop/db/main ClusterBulwarkPolicy lock-shells\$"'
check "... not the pod of node2, nor the unlabelled namespace tools" \
    eval 'lacks "$far_pod" && lacks "$tool_pod"'
check "status: Enforcing on 4 workloads" expect_status "true Enforcing 1|Block mode on 4 workloads" cbp lock-shells
check "kubectl get cbp shows the node counts from the status (Enforcing 1, Failed 0)" \
    eval 'kubectl get cbp lock-shells | tee /dev/stderr | awk "NR==2 && \$4==1 && \$5==0 { f=1 } END { exit !f }"'

t_unlabel() {
    kubectl label namespace shop bulwark.dev/locked- >/dev/null && wait_until 10 lacks 'lock-shells$'
}
check "kubectl label namespace shop bulwark.dev/locked-: no workload has lock-shells any more" t_unlabel
kubectl label namespace shop bulwark.dev/locked=true >/dev/null
wait_until 10 has "^workload $web_ctr "

# ---- 3. pods start and stop ----
t_new_pod() {
    local out
    out=$(make_pod api shop node1 '{"app": "api"}') || return 1
    read -r api_pod api_ctr <<<"$out"
    wait_until 10 has "^workload $api_ctr shop/api/main ClusterBulwarkPolicy lock-shells\$"
}
check "a new pod in the locked namespace: its cgroups get lock-shells" t_new_pod
t_pending_pod() {
    # The API server knows the pod before the kubelet made its cgroup: the
    # agent looks again once the cgroup is there.
    local cid uid pod
    cid=$(cid_of shop/late)
    kubectl create -f - >/dev/null <<EOF || return 1
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "late", "namespace": "shop"},
 "spec": {"nodeName": "node1", "containers": [{"name": "main", "image": "busybox"}]},
 "status": {"phase": "Running", "qosClass": "BestEffort",
            "containerStatuses": [{"name": "main", "containerID": "containerd://$cid"}]}}
EOF
    # (the agent rewrites its status for a pod it cannot place yet)
    wait_until 10 has '^pods-without-cgroup 1' || return 1
    uid=$(kubectl get pod -n shop late -o jsonpath='{.metadata.uid}')
    pod=/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uid//-/_}.slice
    mkdir -p "$cg$pod/cri-containerd-$cid.scope"
    wait_until 10 has "^workload $pod/cri-containerd-$cid.scope shop/late/main ClusterBulwarkPolicy lock-shells\$"
}
check "a pod seen before its cgroup exists is placed when the cgroup appears" t_pending_pod
t_delete_pod() {
    kubectl delete pod -n shop api --wait=false >/dev/null && wait_until 10 lacks "$api_pod"
}
check "kubectl delete pod: its cgroups leave the plan" t_delete_pod
t_pod_moved_label() {
    kubectl label pod -n shop db tier=backend >/dev/null &&
        wait_until 10 has "^pods 4$" && has "^workload $db_ctr "
}
check "a pod label change is taken (pod still in the plan)" t_pod_moved_label

# ---- 4. a namespaced BulwarkPolicy, edits, a rejected edit, delete ----
t_bp() {
    kubectl apply -f "$src/crd/examples/web-lockdown.yaml" >/dev/null &&
        wait_until 10 eval 'workload_policies "$web_ctr" | grep -q "web-lockdown"' &&
        [ "$(workload_policies "$web_ctr" | tr ";" "\n" | sort | tr "\n" ";")" = "BulwarkPolicy shop/web-lockdown;ClusterBulwarkPolicy lock-shells;" ] &&
        has "^workload $db_ctr shop/db/main ClusterBulwarkPolicy lock-shells\$"
}
check "kubectl apply crd/examples/web-lockdown.yaml (BulwarkPolicy): web (app=web) gets both, db only lock-shells" t_bp
check "status of the BulwarkPolicy: Enforcing, Audit mode on 2 workloads" \
    expect_status "true Enforcing 1|Audit mode on 2 workloads" bp web-lockdown -n shop
t_bad_edit() {
    # A relative path: the CRD's schema would refuse it on a real API
    # server; the agent must refuse it too (and keep the last good version).
    kubectl patch cbp lock-shells --type=json \
        -p '[{"op": "replace", "path": "/spec/exec/deny/0/path", "value": "bin/sh"}]' >/dev/null &&
        expect_status "false InvalidKeptPrevious 2|generation 2 rejected, the previous version stays in force: cluster:ClusterBulwarkPolicy/lock-shells" cbp lock-shells &&
        has "^workload $db_ctr shop/db/main ClusterBulwarkPolicy lock-shells\$" &&
        has '^rejected cluster:ClusterBulwarkPolicy/lock-shells:.*spec.exec.deny\[0\].path'
}
check "an edit the agent rejects: status InvalidKeptPrevious (naming the field), the last good version stays" t_bad_edit
t_good_edit() {
    sed 's/mode: Block/mode: Audit/' "$src/policies/lock-shells.yaml" | kubectl apply -f - >/dev/null &&
        expect_status "true Enforcing 3|Audit mode on 6 workloads" cbp lock-shells && lacks '^rejected'
}
check "a valid edit (Block to Audit) replaces it: Enforcing, generation 3" t_good_edit
t_invalid_new() {
    kubectl apply -f - >/dev/null <<'EOF' &&
apiVersion: bulwark.dev/v1alpha1
kind: ClusterBulwarkPolicy
metadata: {name: broken}
spec: {mode: Block, exec: {deny: [{path: /bin/sh, prefix: /bin/}]}}
EOF
        expect_status "false Invalid 1|rejected, nothing enforced: cluster:ClusterBulwarkPolicy/broken" cbp broken
}
check "a policy the agent rejects from the start: status Invalid, nothing enforced" t_invalid_new
t_delete_policy() {
    kubectl delete bp -n shop web-lockdown >/dev/null &&
        wait_until 10 has "^workload $web_ctr shop/web/main ClusterBulwarkPolicy lock-shells\$" &&
        lacks web-lockdown
}
check "kubectl delete bp: its rules leave every workload" t_delete_policy

# ---- 5. the local directory beside the cluster ----
stop_driver "$d1"
mkdir -p "$work/local"
cat >"$work/local/lock.yaml" <<'EOF'
apiVersion: bulwark.dev/v1alpha1
kind: ClusterBulwarkPolicy
metadata: {name: lock-shells}
spec:
  mode: Block
  namespaceSelector: {matchLabels: {team: tools}}
  exec: {deny: [{path: /bin/sh}]}
EOF
kubectl label namespace tools team=tools >/dev/null
start_driver d1 "$state1" node1 --policy-dir "$work/local"
t_shadow() {
    wait_until 30 has '^ready 1' &&
        wait_until 10 has "^workload $tool_ctr tools/toolbox/main ClusterBulwarkPolicy lock-shells\$" &&
        lacks "$web_ctr" &&
        expect_status "false ShadowedByLocal 3|a policy with the same name in $work/local/lock.yaml" cbp lock-shells
}
check "--policy-dir beside the cluster: the local lock-shells wins over the cluster's (status ShadowedByLocal)" t_shadow
stop_driver "$d1"
start_driver d1 "$state1" node1
wait_until 30 has '^ready 1'
wait_until 10 has "^workload $web_ctr "

# ---- 6. two nodes write the same status ----
# node2 runs degraded (no BPF-LSM): its entry must say so, not "Enforcing".
DRIVER_DEGRADED="the BPF LSM is not active" start_driver d2 "$state2" node2
t_two_nodes() {
    wait_until 30 has '^ready 1' "$state2" &&
        wait_until 10 has "^workload $far_ctr shop/far/main ClusterBulwarkPolicy lock-shells\$" "$state2" &&
        wait_until 10 eval 'kubectl get cbp lock-shells -o json | python3 -c "
import json, sys
s = json.load(sys.stdin)[\"status\"]
names = sorted(e[\"name\"] for e in s[\"nodes\"])
assert names == [\"node1\", \"node2\"], names
assert s[\"enforcingNodes\"] == 1 and s[\"failedNodes\"] == 0 and s[\"degradedNodes\"] == 1, s
n2 = [e for e in s[\"nodes\"] if e[\"name\"] == \"node2\"][0]
assert n2[\"reason\"] == \"Degraded\" and \"runs degraded (the BPF LSM is not active)\" in n2[\"message\"], n2
c = s[\"conditions\"][0]
assert c[\"status\"] == \"False\" and c[\"reason\"] == \"NodesDegraded\", c
"'
}
check "a second node (node2, degraded) only takes its own pod and adds its entry beside node1's: Degraded, enforcingNodes 1" t_two_nodes
t_conflicts() {
    # Both nodes rewrite their entries at once, many times: every write goes
    # through (a 409 is retried on the fresh object), no entry is lost.
    for i in $(seq 1 8); do
        kubectl label namespace shop "round=$i" --overwrite >/dev/null
        sed "s/mode: Block/mode: Audit/; s/- path: \/bin\/sh\$/- path: \/bin\/sh$i/" "$src/policies/lock-shells.yaml" |
            kubectl apply -f - >/dev/null
    done
    local g; g=$(kubectl get cbp lock-shells -o jsonpath='{.metadata.generation}')
    wait_until 20 eval 'kubectl get cbp lock-shells -o json | python3 -c "
import json, sys
o = json.load(sys.stdin); s = o[\"status\"]
assert sorted((e[\"name\"], e[\"observedGeneration\"]) for e in s[\"nodes\"]) == [(\"node1\", $g), (\"node2\", $g)], s
"' && echo "# status conflicts retried: node1 $(health "$d1" "$state1" KUBE_STATUS_WRITES), node2 $(health "$d2" "$state2" KUBE_STATUS_WRITES)"
}
check "8 edits while two nodes write: both entries end at the last generation" t_conflicts
stop_driver "$d2"; d2=

# ---- 7. faults: the API server dies, comes back, history compacted ----
t_down() {
    local g; g=$(gen)
    kill -9 "$spid" && wait "$spid" 2>/dev/null; spid=
    # Until the watches have failed at least once and more, nothing changes.
    wait_until 20 eval '[[ "$(health "$d1" "$state1" KUBE_PODS)" =~ failures=[1-9] ]]' &&
        [ "$(gen)" = "$g" ] && has "^workload $web_ctr shop/web/main ClusterBulwarkPolicy lock-shells\$"
}
check "API server killed: the watches fail and retry, the last state stays (same generation, same workloads)" t_down
t_back() {
    start_server "$work/api" "$(cat "$work/api/port")" || return 1
    kubectl label namespace shop bulwark.dev/locked- >/dev/null || return 1
    wait_until 40 lacks 'lock-shells$' || { echo "# $(health "$d1" "$state1" KUBE_NAMESPACES)" >&2; return 1; }
    local h; h=$(health "$d1" "$state1" KUBE_NAMESPACES)
    echo "# namespaces watch: $h"
    [[ "$h" =~ reconnects=[1-9] ]]
}
check "API server back (same state): the agent reconnects and a change made then arrives" t_back
t_compact() {
    # Watches cut, a change made, history compacted: the reconnecting watch
    # gets 410 Gone, relists and still sees the change.
    curl -sS -o /dev/null --cacert "$work/api/ca.crt" -H "Authorization: Bearer $(cat "$work/api/token")" \
        -X POST "https://127.0.0.1:$(cat "$work/api/port")/_test/cut-watches?next=1" &&
        kubectl label namespace shop bulwark.dev/locked=true >/dev/null &&
        curl -sS -o /dev/null --cacert "$work/api/ca.crt" -H "Authorization: Bearer $(cat "$work/api/token")" \
            -X POST "https://127.0.0.1:$(cat "$work/api/port")/_test/compact" &&
        wait_until 30 has "^workload $web_ctr shop/web/main ClusterBulwarkPolicy lock-shells\$"
}
check "watch cut + history compacted (410 Gone): the relist brings the label back" t_compact
# (the status writer may still be writing the last change: polled)
check "no object was rejected, nothing left pending" \
    eval '[ "$(health "$d1" "$state1" KUBE_OBJECTS_REJECTED)" = 0 ] &&
          wait_until 10 eval "[[ \"\$(health \"\$d1\" \"\$state1\" KUBE_STATUS_WRITES)\" =~ pending=0 ]]"'
stop_driver "$d1"; d1=

# ---- 8. a cluster without the CRDs ----
kill "$spid" && wait "$spid" 2>/dev/null; spid=
start_server "$work/api2"
export KUBECONFIG=$work/api2/kubeconfig
t_no_crds() {
    kubectl create namespace shop >/dev/null && kubectl label namespace shop bulwark.dev/locked=true >/dev/null &&
        read -r p2 c2 < <(make_pod web shop node1 '{"app": "web"}') && [ -n "$c2" ] &&
        mkdir -p "$work/only-lock" && cp "$src/policies/lock-shells.yaml" "$work/only-lock/" &&
        BULWARK_TEST_SYNC_TIMEOUT_MS=1000 start_driver d1 "$state1" node1 --policy-dir "$work/only-lock" &&
        wait_until 30 has '^ready 1' &&
        wait_until 10 has "^workload $c2 shop/web/main ClusterBulwarkPolicy lock-shells\$" &&
        grep -q 'clusterbulwarkpolicies not listed after 1 s' "$work/node1.log"
}
check "no CRDs installed: after the start timeout the local policies apply to the cluster's pods (and it says why)" t_no_crds

stop_driver "$d1"; d1=
check "every driver stopped cleanly on SIGTERM (exit 0: under ASan, no leak)" [ "$driver_exits" = 0 ]

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
