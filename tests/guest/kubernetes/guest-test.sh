#!/bin/sh
# bulwarkd in Kubernetes mode against the test API server, both in the guest
# (real BPF LSM). Pods are simulated as kubepods cgroups (systemd driver,
# containerd): the API server holds pod shop/web bound to this node, its
# cgroups exist under /sys/fs/cgroup/kubepods.slice. The ClusterBulwarkPolicy
# lock-shells (policies/lock-shells.yaml) is created through the API; then
# labelling namespace shop bulwark.dev/locked=true blocks a shell in the pod's
# container, removing the label lets it run again. Also: the status the agent
# writes, a container cgroup made after the fact (blocked from its first
# exec, by inheritance in the kernel), and the API server killed (the last
# state stays enforced).
. /scenario/lib.sh

API=/run/api
NODE=guest-node
echo 'root:*:19000:0:99999:7:::' >/etc/shadow
CID=0b1c2d3e4f5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0
CID2=ffeeddccbbaa99887766554433221100f0e1d2c3b4a5968778695a4f3e2d1c0b

json() { # EXPR: evaluates a Python expression on the JSON document o read from stdin
    python3 -S -c "import json,sys; o=json.load(sys.stdin); print($1)"
}

echo "== the test API server (tests/k8s/apiserver.py) in the guest"
python3 -S /scenario/apiserver.py --state-dir $API --quiet 2>/run/apiserver.err &
APIPID=$!
if ! wait_for $API/ready . 6000; then
    cat /run/apiserver.err
    fail "test API server starts in the guest"
    finish
    exit 1
fi
pass "test API server starts in the guest (python3 $(python3 -S -c 'import sys; print(sys.version.split()[0])'))"

check "CRDs of crd/ created" eval \
    'api POST /apis/apiextensions.k8s.io/v1/customresourcedefinitions "$(cat /scenario/crd-cbp.json)" >/dev/null &&
     api POST /apis/apiextensions.k8s.io/v1/customresourcedefinitions "$(cat /scenario/crd-bp.json)" >/dev/null'
api POST /api/v1/namespaces '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop"}}' >/dev/null
UID_=$(api POST /api/v1/namespaces/shop/pods "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",
  \"metadata\":{\"name\":\"web\",\"namespace\":\"shop\",\"labels\":{\"app\":\"web\"}},
  \"spec\":{\"nodeName\":\"$NODE\",\"containers\":[{\"name\":\"main\",\"image\":\"busybox\"}]},
  \"status\":{\"phase\":\"Running\",\"qosClass\":\"Burstable\",
    \"containerStatuses\":[{\"name\":\"main\",\"containerID\":\"containerd://$CID\"}]}}" |
    json 'o["metadata"]["uid"].replace("-", "_")')
POD=/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod$UID_.slice
CTR=$POD/cri-containerd-$CID.scope
mkdir -p "$CTR"
check "pod shop/web bound to $NODE, its cgroups made ($CTR)" test -d "$CTR"

echo "== bulwarkd --kubeconfig $API/kubeconfig --node-name $NODE --unclassified allow (the posture is container-start's)"
start_agent --kubeconfig $API/kubeconfig --node-name $NODE --unclassified allow || { fail "agent starts"; finish; exit 1; }
check "agent syncs with the API server" wait_for "$AGENT_STATUS" '^kubernetes synced node guest-node' 3000
check "the pod is found with its cgroup" wait_for "$AGENT_STATUS" '^pods-without-cgroup 0' 3000
check "agent record kubernetes-synced" wait_for "$AGENT_OUT" '"event":"kubernetes-synced".*"node":"guest-node"' 3000

check "ClusterBulwarkPolicy lock-shells created through the API" eval \
    'api POST /apis/bulwark.dev/v1alpha1/clusterbulwarkpolicies "$(cat /scenario/lock-shells.json)" >/dev/null'
check "agent has the policy" wait_for "$AGENT_STATUS" '^policy ClusterBulwarkPolicy lock-shells \(cluster:' 3000
expect "namespace not labelled: a shell runs in the container" ok --cgroup "$CTR" exec /bin/sh -c true

echo "== kubectl label namespace shop bulwark.dev/locked=true (as a merge patch)"
api PATCH /api/v1/namespaces/shop '{"metadata":{"labels":{"bulwark.dev/locked":"true"}}}' \
    application/merge-patch+json >/dev/null
check "agent selects the pod and its container" wait_for "$AGENT_STATUS" '^workloads 2$' 3000
expect "locked namespace: a shell is blocked in the container" EPERM --cgroup "$CTR" exec /bin/sh -c true
expect "locked namespace: and in the pod cgroup" EPERM --cgroup "$POD" exec /bin/sh -c id
expect "locked namespace: /etc/shadow is blocked" EPERM --cgroup "$CTR" open /etc/shadow read
check "blocked-exec event names namespace, pod and container" wait_for "$AGENT_OUT" \
    '"hook":"exec","decision":"blocked".*"namespace":"shop","pod":"web","container":"main"' 3000

check_status() {
    api GET /apis/bulwark.dev/v1alpha1/clusterbulwarkpolicies/lock-shells | json \
        '[(e["enforcing"], e["reason"], e["message"]) for e in o["status"]["nodes"] if e["name"] == "guest-node"]' \
        >/run/status.txt 2>&1
    grep -q "$1" /run/status.txt
}
i=0
until check_status "(True, 'Enforcing', 'Block mode on 2 workloads of this node')" || [ $i -ge 500 ]; do
    i=$((i + 1)); sleep 0.02
done
check "policy status: this node Enforcing, Block mode on 2 workloads ($(cat /run/status.txt))" \
    check_status "(True, 'Enforcing', 'Block mode on 2 workloads of this node')"

mkdir "$POD/cri-containerd-$CID2.scope"
expect "a container cgroup made after the fact is blocked from its first exec (inherited in the kernel)" \
    EPERM --cgroup "$POD/cri-containerd-$CID2.scope" exec /bin/sh -c true

echo "== kubectl label namespace shop bulwark.dev/locked-"
api PATCH /api/v1/namespaces/shop '{"metadata":{"labels":{"bulwark.dev/locked":null}}}' \
    application/merge-patch+json >/dev/null
check "agent deselects the pod" wait_for "$AGENT_STATUS" '^workloads 0$' 3000
expect "label removed: a shell runs in the container again" ok --cgroup "$CTR" exec /bin/sh -c true
expect "label removed: and in the later container" ok --cgroup "$POD/cri-containerd-$CID2.scope" exec /bin/sh -c true

echo "== labelled again, then the API server dies"
api PATCH /api/v1/namespaces/shop '{"metadata":{"labels":{"bulwark.dev/locked":"true"}}}' \
    application/merge-patch+json >/dev/null
wait_for "$AGENT_STATUS" '^workloads [1-9]' 3000
expect "relabelled: blocked again" EPERM --cgroup "$CTR" exec /bin/sh -c true
kill -9 $APIPID
wait $APIPID 2>/dev/null
expect "API server gone: the last state stays enforced" EPERM --cgroup "$CTR" exec /bin/sh -c true
kill -USR1 "$AGENT_PID"
check "health event counts the failing watches" wait_for "$AGENT_OUT" '"event":"health".*"kube_namespaces":"synced=1 watching=0' 3000
grep '"event":"health"' "$AGENT_OUT" | tail -n 1
check "agent still running" kill -0 "$AGENT_PID"
stop_agent && pass "agent stops cleanly with the API server gone" || fail "agent stops cleanly with the API server gone"
finish
