#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Checks tests/k8s/apiserver.py with the real kubectl (whatever `kubectl` is
# on PATH) and curl: the CRDs of crd/, policies, namespaces and pods through
# kubectl apply/get/label/delete; list and watch semantics, bookmarks, 410
# after compaction, cut streams, token rotation, delays and a restart through
# curl. One line per check, "N passed, N failed" last; exit 1 on a failure,
# 77 (skipped) when a tool is missing.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
FIX=$HERE/fixtures
CRDS=("$ROOT/crd/bulwark.dev_clusterbulwarkpolicies.yaml" "$ROOT/crd/bulwark.dev_bulwarkpolicies.yaml")

for tool in python3 kubectl curl openssl; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
for f in "${CRDS[@]}"; do
	[ -r "$f" ] || { echo "FAIL: $f is missing"; exit 1; }
done

WORK=$(mktemp -d /tmp/bulwark-apiserver-test.XXXXXX)
D=$WORK/state
export KUBECONFIG=$D/kubeconfig KUBECACHEDIR=$WORK/kubecache HOME=$WORK/home
mkdir -p "$HOME"
SERVER=
declare -A WPID=()

cleanup() {
	local pid
	for pid in "${WPID[@]}"; do kill "$pid" 2>/dev/null; done
	if [ -n "$SERVER" ]; then
		kill "$SERVER" 2>/dev/null
		wait "$SERVER" 2>/dev/null
	fi
	if [ "$fail" -gt 0 ] || [ -n "${KEEP:-}" ]; then
		echo "server log and outputs kept in $WORK"
	else
		rm -rf "$WORK"
	fi
}
pass=0
fail=0
trap cleanup EXIT

ok() { echo "ok   - $1"; pass=$((pass + 1)); }
bad() {
	echo "FAIL - $1"
	fail=$((fail + 1))
	sed 's/^/       | /' "$WORK/check.log" | tail -n 15
}
# check "what" command...: runs the command (a function below), its output to check.log.
check() {
	local name=$1
	shift
	: >"$WORK/check.log"
	if "$@" >>"$WORK/check.log" 2>&1; then ok "$name"; else bad "$name"; fi
	local n
	for n in "${!WPID[@]}"; do wkill "$n"; done # no stream outlives its check
	[ -z "$SERVER" ] || wait_until 10 no_watches || echo "# watches still open after the check"
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# wait_until SECONDS command...: bounded poll.
wait_until() {
	local end=$(($(now_ms) + $1 * 1000))
	shift
	until "$@"; do
		[ "$(now_ms)" -ge "$end" ] && return 1
		sleep 0.05
	done
}
running() { kill -0 "$1" 2>/dev/null; }
not_running() { ! kill -0 "$1" 2>/dev/null; }
token() { cat "$D/token"; }
api() { curl -sS --cacert "$D/ca.crt" -H "Authorization: Bearer $(token)" "$@"; }
py() { python3 -c "import json,sys
d=json.load(sys.stdin)
$1"; }
url() { echo "https://127.0.0.1:$(cat "$D/port")$1"; }

start_server() {
	python3 "$HERE/apiserver.py" --state-dir "$D" --bookmark-interval 0.2 "$@" >>"$WORK/server.log" 2>&1 &
	SERVER=$!
	wait_until 20 server_ready
}
server_ready() { [ "$(cat "$D/ready" 2>/dev/null)" = "$SERVER" ]; }
stop_server() { # SIGNAL
	kill -"$1" "$SERVER" && wait_until 10 not_running "$SERVER"
	wait "$SERVER" 2>/dev/null
	SERVER=
}

# Watches: wstart NAME PATH [curl args] streams into $WORK/NAME.out (headers NAME.hdr).
wstart() {
	local n=$1 path=$2
	shift 2
	curl -sS -N --cacert "$D/ca.crt" -H "Authorization: Bearer $(token)" -D "$WORK/$n.hdr" "$@" \
		"$(url "$path")" >"$WORK/$n.out" 2>"$WORK/$n.err" &
	WPID[$n]=$!
}
# wend NAME SECONDS: waits for the curl of a watch to end; returns its exit status (124: still running).
wend() {
	local pid=${WPID[$1]}
	wait_until "$2" not_running "$pid" || return 124
	wait "$pid"
	local rc=$?
	unset "WPID[$1]"
	return $rc
}
wkill() { kill "${WPID[$1]}" 2>/dev/null; wait "${WPID[$1]}" 2>/dev/null; unset "WPID[$1]"; }
# has NAME PATTERN: the watch output has a line matching the (grep -E) pattern.
has() { grep -Eq "$2" "$WORK/$1.out"; }
# nwatches RESOURCE: open watch streams on that resource.
nwatches() { api "$(url /_test/watches)" | py "print(sum(1 for w in d['watches'] if w['resource'] == '$1'))"; }
watches_are() { [ "$(nwatches "$1")" = "$2" ]; }
no_watches() { [ "$(api "$(url /_test/watches)" | py 'print(d["count"])')" = 0 ]; }
list_rv() { api "$(url "$1")" | py 'print(d["metadata"]["resourceVersion"])'; }
# events NAME: "TYPE RV NAME" per complete line of a watch output.
events() {
	python3 -c '
import json,sys
for line in open(sys.argv[1]):
    if not line.endswith("\n"): break
    e=json.loads(line); m=e["object"].get("metadata",{})
    print(e["type"], m.get("resourceVersion",""), m.get("name",""))' "$WORK/$1.out"
}

# ---------------------------------------------------------------------------
echo "# apiserver.py with $(kubectl version --client 2>/dev/null | head -n1)"

t_start() {
	start_server || return 1
	for f in ca.crt server.crt server.key kubeconfig port token ready state.json; do
		[ -s "$D/$f" ] || { echo "missing $f"; return 1; }
	done
	openssl x509 -in "$D/server.crt" -noout -ext subjectAltName | tee /dev/stderr |
		grep -q 'IP Address:127.0.0.1' &&
		openssl x509 -in "$D/server.crt" -noout -ext subjectAltName | grep -q 'DNS:localhost' &&
		openssl verify -CAfile "$D/ca.crt" "$D/server.crt"
}
check "server starts, writes ca.crt/kubeconfig/port/token/ready; cert has 127.0.0.1 and localhost SANs" t_start
if [ -z "$SERVER" ] || ! server_ready; then
	echo "the server did not start:"
	cat "$WORK/server.log"
	exit 1
fi

t_version() { kubectl version | tee /dev/stderr | grep -q 'Server Version: v1.32'; }
check "kubectl version reaches the server (TLS verified with the kubeconfig CA)" t_version

t_ns_builtin() {
	local out
	out=$(kubectl get namespaces) && echo "$out" && echo "$out" | grep -q '^default  *Active' &&
		echo "$out" | grep -q '^kube-system '
}
check "kubectl get namespaces: default and kube-system exist" t_ns_builtin

t_crds() {
	kubectl apply -f "${CRDS[0]}" -f "${CRDS[1]}" | tee /dev/stderr | grep -c created | grep -qx 2 &&
		kubectl get crd clusterbulwarkpolicies.bulwark.dev -o json |
		py 'c={x["type"]:x["status"] for x in d["status"]["conditions"]}; assert c["Established"]=="True", c'
}
check "kubectl apply the CRDs of crd/ (default client validation, no --validate=false)" t_crds

t_discovery() {
	local out
	out=$(kubectl api-resources --api-group=bulwark.dev) && echo "$out" &&
		echo "$out" | grep -Eq '^clusterbulwarkpolicies +cbp +bulwark.dev/v1alpha1 +false +ClusterBulwarkPolicy' &&
		echo "$out" | grep -Eq '^bulwarkpolicies +bp +bulwark.dev/v1alpha1 +true +BulwarkPolicy' &&
		api "$(url /apis/bulwark.dev/v1alpha1)" |
		py 'r={x["name"]:x for x in d["resources"]}; assert "clusterbulwarkpolicies/status" in r and "bulwarkpolicies/status" in r, r.keys(); assert r["clusterbulwarkpolicies"]["categories"]==["bulwark"]'
}
check "discovery serves bulwark.dev/v1alpha1 from the stored CRDs (plural, short name, scope, kind, /status)" t_discovery

t_aggregated() {
	local ct
	ct=$(api -o /dev/null -w '%{content_type}' \
		-H 'Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json' "$(url /apis)") &&
		echo "$ct" && [ "$ct" = "application/json" ] &&
		api "$(url /apis)" | py 'assert [g["name"] for g in d["groups"]]==["apiextensions.k8s.io","bulwark.dev"], d'
}
check "aggregated discovery asked for: legacy APIGroupList answered (application/json)" t_aggregated

t_apply() {
	kubectl apply -f "$FIX/namespace.yaml" -f "$FIX/clusterbulwarkpolicy.yaml" -f "$FIX/bulwarkpolicy.yaml" |
		tee /dev/stderr | grep -c created | grep -qx 3
}
check "kubectl apply a Namespace, a ClusterBulwarkPolicy and a BulwarkPolicy" t_apply

PC="python3 $HERE/printer_columns.py"
# table CRD NAME GET-ARGS...: `kubectl get GET-ARGS` shows object NAME as the CRD's printer columns say.
table() {
	local crd=$1 name=$2 wide='' a args=()
	shift 2
	for a in "$@"; do
		case $a in -o) ;; wide) wide=wide ;; *) args+=("$a") ;; esac
	done
	kubectl get crd "$crd" -o json >"$WORK/crd.json" && kubectl get "$@" >"$WORK/table.txt" &&
		cat "$WORK/table.txt" && kubectl get "${args[@]}" -o json |
		py "import sys; json.dump([i for i in d['items'] if i['metadata']['name']=='$name'][0], sys.stdout)" >"$WORK/obj.json" &&
		$PC check "$WORK/crd.json" "$WORK/obj.json" "$WORK/table.txt" $wide
}
t_get_table() {
	table clusterbulwarkpolicies.bulwark.dev lock-shells clusterbulwarkpolicies &&
		table bulwarkpolicies.bulwark.dev web-lockdown bp -n shop &&
		table bulwarkpolicies.bulwark.dev web-lockdown bp -A &&
		grep -Eq '^shop +web-lockdown +Audit ' "$WORK/table.txt"
}
check "kubectl get clusterbulwarkpolicies / bp (-n, -A): Table with the CRD's printer columns" t_get_table

t_get_json() {
	kubectl get clusterbulwarkpolicy lock-shells -o json | py '
m=d["metadata"]
assert d["kind"]=="ClusterBulwarkPolicy" and d["apiVersion"]=="bulwark.dev/v1alpha1"
assert m["generation"]==1 and m["uid"] and int(m["resourceVersion"])>0 and m["creationTimestamp"].endswith("Z")
assert "kubectl.kubernetes.io/last-applied-configuration" in m["annotations"]
assert d["spec"]["mode"]=="Block" and "namespace" not in m' &&
		kubectl get bp -A -o json | py '
assert d["kind"]=="List" or d["kind"].endswith("List")
assert [(i["metadata"]["namespace"],i["metadata"]["name"]) for i in d["items"]]==[("shop","web-lockdown")], d'
}
check "kubectl get -o json: kind, apiVersion, uid, resourceVersion, generation, last-applied annotation" t_get_json

t_status() {
	kubectl get crd clusterbulwarkpolicies.bulwark.dev -o json >"$WORK/crd.json" &&
		$PC status "$WORK/crd.json" >"$WORK/status.json" && cat "$WORK/status.json" &&
		kubectl patch cbp lock-shells --subresource=status --type=merge \
			-p "{\"spec\":{\"mode\":\"Audit\"},\"status\":$(cat "$WORK/status.json")}" &&
		kubectl patch cbp lock-shells --type=merge -p '{"status":{"injected":99}}' &&
		kubectl get cbp lock-shells -o json | python3 -c '
import json,sys
d=json.load(sys.stdin); want=json.load(open(sys.argv[1]))
assert d["spec"]["mode"]=="Block", "a status write changed spec"
assert d["status"]==want, ("a main-resource write changed status", d["status"])
assert d["metadata"]["generation"]==1' "$WORK/status.json" &&
		table clusterbulwarkpolicies.bulwark.dev lock-shells cbp -o wide
}
check "/status changes only .status; main-resource writes ignore it; -o wide shows every printer column" t_status

t_reapply() {
	local rv1 rv2 out
	sed 's/mode: Block/mode: Audit/' "$FIX/clusterbulwarkpolicy.yaml" | kubectl apply -f - | grep -q configured &&
		kubectl get cbp lock-shells -o json | python3 -c '
import json,sys
d=json.load(sys.stdin)
assert d["spec"]["mode"]=="Audit" and d["metadata"]["generation"]==2 and d["status"]==json.load(open(sys.argv[1])), d' "$WORK/status.json" &&
		rv1=$(kubectl get cbp lock-shells -o jsonpath='{.metadata.resourceVersion}') &&
		out=$(sed 's/mode: Block/mode: Audit/' "$FIX/clusterbulwarkpolicy.yaml" | kubectl apply -f -) &&
		echo "$out" | grep -q unchanged &&
		rv2=$(kubectl get cbp lock-shells -o jsonpath='{.metadata.resourceVersion}') && [ "$rv1" = "$rv2" ]
}
check "kubectl apply of a changed spec bumps generation (merge patch); unchanged apply keeps resourceVersion" t_reapply

t_label() {
	kubectl label namespace shop bulwark.dev/locked=true --overwrite &&
		kubectl get ns shop -o json | py '
l=d["metadata"]["labels"]; assert l=={"bulwark.dev/locked":"true","team":"web","kubernetes.io/metadata.name":"shop"}, l' &&
		kubectl label namespace shop bulwark.dev/locked=false --overwrite &&
		[ "$(kubectl get ns shop -o jsonpath='{.metadata.labels.bulwark\.dev/locked}')" = false ] &&
		kubectl label namespace shop bulwark.dev/locked- &&
		kubectl get ns shop -o json | py '
l=d["metadata"]["labels"]; assert l=={"team":"web","kubernetes.io/metadata.name":"shop"}, l'
}
check "kubectl label namespace k=v --overwrite and k- (kubernetes.io/metadata.name kept)" t_label

t_pod() {
	kubectl apply -f "$FIX/pod.yaml" | grep -q created &&
		kubectl get pod -n shop web-1 -o json | py '
import re
assert d["spec"]["nodeName"]=="node-a" and d["status"]["qosClass"]=="Burstable" and d["status"]["phase"]=="Running"
ids=[c["containerID"] for c in d["status"]["containerStatuses"]]
assert len(ids)==2 and all(re.fullmatch("containerd://[0-9a-f]{64}", i) for i in ids), ids' &&
		kubectl get pods -n shop | tee /dev/stderr | grep -Eq '^web-1 +2/2 +Running +1 +'
}
check "kubectl apply a pod with spec.nodeName and status (containerIDs, qosClass) kept" t_pod

t_pod_reapply() {
	sed -e 's/restartCount: 1/restartCount: 2/' -e 's/Burstable/Guaranteed/' \
		-e 's#containerd://fedcba98#containerd://aaaaaaaa#' "$FIX/pod.yaml" | kubectl apply -f - | grep -q configured &&
		kubectl get pod -n shop web-1 -o json | py '
s=d["status"]; c={x["name"]:x for x in s["containerStatuses"]}
assert s["qosClass"]=="Guaranteed" and c["sidecar"]["restartCount"]==2 and c["sidecar"]["containerID"].startswith("containerd://aaaaaaaa")
assert c["nginx"]["containerID"].startswith("containerd://01234567") and [x["name"] for x in d["spec"]["containers"]]==["nginx","sidecar"]'
}
check "kubectl apply of a changed pod status (strategic merge patch by container name)" t_pod_reapply

t_field_selector() {
	local a b
	a=$(kubectl get pods -A --field-selector spec.nodeName=node-a -o name) &&
		b=$(kubectl get pods -A --field-selector spec.nodeName=node-b -o name) &&
		echo "a=[$a] b=[$b]" && [ "$a" = pod/web-1 ] && [ -z "$b" ] &&
		[ "$(kubectl get pods -n shop -l 'app in (web,api)' -o name)" = pod/web-1 ] &&
		[ -z "$(kubectl get pods -n shop -l 'app,app!=web' -o name)" ] &&
		api -o /dev/null -w '%{http_code}\n' "$(url '/api/v1/pods?fieldSelector=spec.bogus%3Dx')" | grep -qx 400
}
check "list with fieldSelector spec.nodeName and labelSelector (set-based too); unknown field 400" t_field_selector

t_paging() {
	local all pages="" cont="" page
	all=$(api "$(url /api/v1/namespaces)" | py 'print(" ".join(i["metadata"]["name"] for i in d["items"]))') || return 1
	while :; do
		page=$(api "$(url "/api/v1/namespaces?limit=2&continue=$cont")") || return 1
		pages="$pages $(echo "$page" | py 'print(" ".join(i["metadata"]["name"] for i in d["items"]))')"
		cont=$(echo "$page" | py 'print(d["metadata"].get("continue",""))')
		[ -n "$cont" ] || break
	done
	echo "all=[$all] pages=[$pages]"
	[ "$(xargs <<<"$pages")" = "$all" ] && [ "$(echo "$all" | wc -w)" -ge 5 ]
}
check "list with limit and continue pages through everything once" t_paging

t_errors() {
	local ns_rv
	api -o /dev/null -w '%{http_code}\n' -X POST -H 'Content-Type: application/json' \
		-d '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop"}}' "$(url /api/v1/namespaces)" | grep -qx 409 &&
		api -X POST -H 'Content-Type: application/json' -d '{"metadata":{"name":"p"},"spec":{}}' \
			"$(url /api/v1/namespaces/nowhere/pods)" | py 'assert d["code"]==404 and d["reason"]=="NotFound", d' &&
		ns_rv=$(api "$(url /api/v1/namespaces/shop)" | py 'print(d["metadata"]["resourceVersion"])') &&
		api -X PUT -H 'Content-Type: application/json' \
			-d '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop","resourceVersion":"1"}}' \
			"$(url /api/v1/namespaces/shop)" | py 'assert d["code"]==409 and d["reason"]=="Conflict", d' &&
		[ "$(api "$(url /api/v1/namespaces/shop)" | py 'print(d["metadata"]["resourceVersion"])')" = "$ns_rv" ] &&
		api -X POST -H 'Content-Type: application/json' -d '{"metadata":{"generateName":"gen-"}}' \
			"$(url /api/v1/namespaces)" | py 'import re; assert re.fullmatch("gen-[a-z0-9]{5}", d["metadata"]["name"]), d' &&
		api -X POST -H 'Content-Type: application/json' -d '{"metadata":{}}' \
			"$(url /api/v1/namespaces)" | py 'assert d["code"]==422, d' &&
		api -X PATCH -H 'Content-Type: application/strategic-merge-patch+json' -d '{"spec":{}}' \
			"$(url /apis/bulwark.dev/v1alpha1/clusterbulwarkpolicies/lock-shells)" | py 'assert d["code"]==415, d'
}
check "curl: AlreadyExists 409, missing namespace 404, stale resourceVersion 409, generateName, no name 422, SMP on a CR 415" t_errors

t_patches() {
	api -X PATCH -H 'Content-Type: application/json-patch+json' \
		-d '[{"op":"add","path":"/metadata/labels","value":{"a":"b"}},{"op":"replace","path":"/spec/mode","value":"Block"},{"op":"test","path":"/metadata/name","value":"lock-shells"}]' \
		"$(url /apis/bulwark.dev/v1alpha1/clusterbulwarkpolicies/lock-shells)" |
		py 'assert d["metadata"]["labels"]=={"a":"b"} and d["spec"]["mode"]=="Block" and d["metadata"]["generation"]==3, d' &&
		api -X PATCH -H 'Content-Type: application/merge-patch+json' -d '{"metadata":{"labels":{"a":null}}}' \
			"$(url /apis/bulwark.dev/v1alpha1/clusterbulwarkpolicies/lock-shells)" |
		py 'assert not d["metadata"].get("labels") and d["metadata"]["generation"]==3, d' &&
		api -X PATCH -H 'Content-Type: application/json-patch+json' -d '[{"op":"test","path":"/spec/mode","value":"Nope"}]' \
			"$(url /apis/bulwark.dev/v1alpha1/clusterbulwarkpolicies/lock-shells)" | py 'assert d["code"]==422, d'
}
check "curl: JSON patch and merge patch on a CR (generation only on spec changes; failed test op 422)" t_patches

t_auth() {
	curl -sS --cacert "$D/ca.crt" "$(url /api)" | py 'assert d["code"]==401 and d["reason"]=="Unauthorized", d' &&
		curl -sS --cacert "$D/ca.crt" -H 'Authorization: Bearer wrong' -o /dev/null -w '%{http_code}\n' \
			"$(url /version)" | grep -qx 401 &&
		curl -sS --cacert "$D/ca.crt" -o /dev/null -w '%{http_code}\n' -X POST "$(url /_test/compact)" | grep -qx 401 &&
		! kubectl --token=wrong get ns
}
check "no token or a wrong one: 401 Status (also on /version and /_test/)" t_auth

# --- list + watch -----------------------------------------------------------

t_watch_order() {
	local rv
	rv=$(list_rv /api/v1/namespaces) || return 1
	wstart order "/api/v1/namespaces?watch=1&resourceVersion=$rv"
	wait_until 10 watches_are namespaces 1 || return 1
	kubectl create namespace w1 && kubectl label namespace w1 x=y && kubectl delete namespace w1 &&
		wait_until 10 has order '"DELETED".*"name":"w1"' || return 1
	wkill order
	events order | tee /dev/stderr | python3 -c '
import sys
rv=int(sys.argv[1]); ev=[l.split() for l in sys.stdin]
assert [(t,n) for t,_,n in ev]==[("ADDED","w1"),("MODIFIED","w1"),("DELETED","w1")], ev
rvs=[int(r) for _,r,_ in ev]
assert rvs==sorted(set(rvs)) and rvs[0]>rv, rvs' "$rv" &&
		grep -qi '^transfer-encoding: chunked' "$WORK/order.hdr" &&
		[ "$(list_rv /api/v1/namespaces)" -ge "$(events order | tail -n1 | cut -d' ' -f2)" ]
}
check "list resourceVersion then watch from it: ADDED, MODIFIED, DELETED in increasing resourceVersions, chunked (kubectl create namespace: protobuf body)" t_watch_order

t_watch_initial() {
	wstart initial "/apis/bulwark.dev/v1alpha1/namespaces/shop/bulwarkpolicies?watch=true"
	wait_until 10 has initial '"ADDED".*"name":"web-lockdown"' || return 1
	wkill initial
}
check "watch with no resourceVersion starts with ADDED for what exists (namespaced CR)" t_watch_initial

t_watch_selectors() {
	wstart sel "/api/v1/namespaces?watch=1&labelSelector=bulwark.dev%2Flocked%3Dtrue&resourceVersion=$(list_rv /api/v1/namespaces)"
	wstart node "/api/v1/pods?watch=1&fieldSelector=spec.nodeName%3Dnode-a&resourceVersion=$(list_rv /api/v1/pods)"
	wait_until 10 watches_are namespaces 1 && wait_until 10 watches_are pods 1 || return 1
	kubectl label namespace shop bulwark.dev/locked=true && kubectl label namespace shop bulwark.dev/locked- &&
		sed -e 's/web-1/on-b/' -e 's/node-a/node-b/' "$FIX/pod.yaml" | kubectl apply -f - &&
		sed -e 's/web-1/on-a/' "$FIX/pod.yaml" | kubectl apply -f - &&
		wait_until 10 has sel '"DELETED".*"name":"shop"' && wait_until 10 has node '"ADDED".*"name":"on-a"' || return 1
	wkill sel
	wkill node
	events sel && events node &&
		[ "$(events sel | cut -d' ' -f1,3 | tr '\n' ' ')" = "ADDED shop DELETED shop " ] &&
		[ "$(events node | cut -d' ' -f1,3 | tr '\n' ' ')" = "ADDED on-a " ]
}
check "watch with labelSelector (entering/leaving: ADDED/DELETED) and fieldSelector spec.nodeName" t_watch_selectors

t_bookmarks() {
	wstart bm "/api/v1/pods?watch=1&allowWatchBookmarks=true&resourceVersion=$(list_rv /api/v1/pods)&fieldSelector=spec.nodeName%3Dnode-a"
	wait_until 10 has bm '"BOOKMARK"' || return 1
	wkill bm
	grep -m1 BOOKMARK "$WORK/bm.out" | py '
o=d["object"]; assert d["type"]=="BOOKMARK" and list(o["metadata"])==["resourceVersion"] and int(o["metadata"]["resourceVersion"])>0, d' &&
		wstart nobm "/api/v1/pods?watch=1&resourceVersion=$(list_rv /api/v1/pods)&timeoutSeconds=1" &&
		wend nobm 10 && ! has nobm BOOKMARK
}
check "allowWatchBookmarks=true: BOOKMARK events with only metadata.resourceVersion; none without; timeoutSeconds ends cleanly" t_bookmarks

t_compact() {
	local old new
	old=$(list_rv /api/v1/namespaces) &&
		kubectl create namespace c1 >/dev/null &&
		new=$(api -X POST "$(url /_test/compact)" | py 'print(d["compacted"])') && [ "$new" -gt "$old" ] || return 1
	wstart expired "/api/v1/namespaces?watch=1&resourceVersion=$old"
	wend expired 10 || return 1 # the stream ends by itself, properly
	cat "$WORK/expired.out"
	py 'o=d["object"]; assert d["type"]=="ERROR" and o["code"]==410 and o["reason"]=="Expired" and "too old resource version" in o["message"], d' \
		<"$WORK/expired.out" || return 1
	wstart fresh "/api/v1/namespaces?watch=1&resourceVersion=$new"
	wait_until 10 watches_are namespaces 1 || return 1
	kubectl delete namespace c1 && wait_until 10 has fresh '"DELETED".*"name":"c1"'
	local rc=$?
	wkill fresh
	return $rc
}
check "POST /_test/compact: watch from an older resourceVersion gets ERROR 410 Expired; from the compaction point works" t_compact

t_cut() {
	wstart cut "/api/v1/pods?watch=1&resourceVersion=$(list_rv /api/v1/pods)"
	wstart cut2 "/api/v1/namespaces?watch=1&resourceVersion=$(list_rv /api/v1/namespaces)"
	wait_until 10 watches_are pods 1 && wait_until 10 watches_are namespaces 1 || return 1
	api -X POST "$(url /_test/cut-watches)" | py 'assert d["cut"]==2, d' || return 1
	wend cut 10
	local rc=$?
	wend cut2 10
	local rc2=$?
	echo "curl exit statuses $rc $rc2"; cat "$WORK/cut.err"
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc2" -ne 0 ] && [ "$rc2" -ne 124 ] && watches_are pods 0
}
check "POST /_test/cut-watches closes every stream abruptly (no final chunk: curl fails)" t_cut

t_cut_mid() {
	wstart mid "/api/v1/pods?watch=1&resourceVersion=$(list_rv /api/v1/pods)"
	wait_until 10 watches_are pods 1 || return 1
	api -X POST "$(url '/_test/cut-watches?mid=1')" | py 'assert d["cut"]==1, d' || return 1
	wend mid 10
	local rc=$?
	echo "rc=$rc"; od -c "$WORK/mid.out" | tail -n 3
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ -s "$WORK/mid.out" ] && [ "$(tail -c1 "$WORK/mid.out" | od -An -c | tr -d ' ')" != '\n' ] &&
		! python3 -c 'import json,sys; json.loads(open(sys.argv[1]).read())' "$WORK/mid.out" 2>/dev/null
}
check "cut-watches?mid=1: half a JSON line, then the connection drops" t_cut_mid

t_cut_next() {
	wstart next "/api/v1/namespaces?watch=1&resourceVersion=$(list_rv /api/v1/namespaces)"
	wait_until 10 watches_are namespaces 1 || return 1
	api -X POST "$(url '/_test/cut-watches?mid=next')" | py 'assert d["armed"]==1, d' &&
		watches_are namespaces 1 && kubectl label namespace shop cut=1 || return 1
	wend next 10
	local rc=$?
	echo "rc=$rc"; cat "$WORK/next.out"; echo
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q '^{"type":"MODIFIED"' "$WORK/next.out" &&
		[ "$(wc -l <"$WORK/next.out")" = 0 ]
}
check "cut-watches?mid=next: the next event is cut in half, then the connection drops" t_cut_next

two_shop_rows() { [ "$(grep -c '^shop ' "$WORK/kw.out")" = 2 ]; }
t_kubectl_watch() {
	kubectl get namespaces -w >"$WORK/kw.out" 2>&1 &
	WPID[kw]=$!
	wait_until 10 watches_are namespaces 1 && grep -q '^shop ' "$WORK/kw.out" &&
		kubectl label namespace shop kw=1 && wait_until 10 two_shop_rows &&
		cat "$WORK/kw.out" && head -n1 "$WORK/kw.out" | grep -Eq '^NAME +STATUS +AGE$'
}
check "kubectl get -w: watch events as Table rows" t_kubectl_watch

t_raw_chunks() {
	wstart raw "/api/v1/namespaces?watch=1&resourceVersion=0&timeoutSeconds=1" --raw
	wend raw 10 || return 1
	head -c 300 "$WORK/raw.out"; echo
	python3 -c '
import sys
b=open(sys.argv[1],"rb").read(); n=0
while True:
    i=b.index(b"\r\n"); size=int(b[:i],16); b=b[i+2:]
    if size==0: assert b==b"\r\n", b; break
    chunk=b[:size]; assert chunk.endswith(b"\n") and chunk.count(b"\n")==1, chunk; assert b[size:size+2]==b"\r\n"; b=b[size+2:]; n+=1
assert n>=4, n
print(n, "chunks")' "$WORK/raw.out"
}
check "watch framing on the wire: one JSON line per chunk, terminating 0-chunk at timeoutSeconds" t_raw_chunks

t_client_gone() {
	wstart gone "/api/v1/pods?watch=1&resourceVersion=$(list_rv /api/v1/pods)"
	wait_until 10 watches_are pods 1 || return 1
	api "$(url /_test/watches)" | py '
w=[x for x in d["watches"] if x["resource"]=="pods"][0]; assert w["group"]=="" and w["version"]=="v1" and w["namespace"]=="", w' &&
		wkill gone && wait_until 10 watches_are pods 0
}
check "GET /_test/watches lists open streams and drops one whose client went away" t_client_gone

t_delay() {
	local slow fast
	api -X POST "$(url '/_test/delay?ms=400')" | py 'assert d["delayMs"]==400' &&
		slow=$(api -o /dev/null -w '%{time_total}' "$(url /api)") &&
		kubectl get ns shop -o name &&
		api -X POST "$(url '/_test/delay?ms=0')" &&
		fast=$(api -o /dev/null -w '%{time_total}' "$(url /api)") &&
		echo "slow=$slow fast=$fast" && python3 -c 'import sys; assert float(sys.argv[1])>=0.4 and float(sys.argv[2])<0.4' "$slow" "$fast"
}
check "POST /_test/delay?ms=N delays every response; ms=0 stops" t_delay

t_token() {
	local old
	old=$(token)
	api -X POST "$(url '/_test/token?value=rotated-token-2')" | py 'assert d["token"]=="rotated"' &&
		[ "$(token)" = rotated-token-2 ] &&
		curl -sS --cacert "$D/ca.crt" -H "Authorization: Bearer $old" -o /dev/null -w '%{http_code}\n' "$(url /api)" | grep -qx 401 &&
		api -o /dev/null -w '%{http_code}\n' "$(url /api)" | grep -qx 200 &&
		kubectl get ns shop -o name && ! kubectl --token="$old" get ns shop &&
		grep -q "tokenFile: $D/token" "$D/kubeconfig-tokenfile" &&
		api -X POST "$(url '/_test/token?value=rotated-token-3')" &&
		KUBECONFIG=$D/kubeconfig-tokenfile kubectl get ns shop -o name &&
		api -X POST "$(url '/_test/token?value=rotated-token-2')" &&
		KUBECONFIG=$D/kubeconfig-tokenfile kubectl get ns shop -o name
}
check "POST /_test/token rotates the token: old one 401, new one in DIR/token and DIR/kubeconfig (kubeconfig-tokenfile follows)" t_token

t_restart() {
	local rv uid port
	port=$(cat "$D/port")
	rv=$(list_rv /api/v1/namespaces) && uid=$(kubectl get cbp lock-shells -o jsonpath='{.metadata.uid}') &&
		kubectl label namespace shop restart=before || return 1
	wstart term "/api/v1/namespaces?watch=1&resourceVersion=$rv"
	wait_until 10 has term '"name":"shop"' || return 1
	stop_server TERM && [ ! -e "$D/ready" ] || return 1
	wend term 10 || { echo "the watch did not end cleanly at SIGTERM"; return 1; }
	start_server --port "$port" || return 1
	[ "$(cat "$D/port")" = "$port" ] && [ "$(token)" = rotated-token-2 ] &&
		[ "$(kubectl get cbp lock-shells -o jsonpath='{.metadata.uid}')" = "$uid" ] &&
		[ "$(list_rv /api/v1/namespaces)" -gt "$rv" ] || return 1
	wstart replay "/api/v1/namespaces?watch=1&resourceVersion=$rv"
	wait_until 10 has replay '"MODIFIED".*"restart":"before"'
	local rc=$?
	wkill replay
	return $rc
}
check "SIGTERM ends watches cleanly; restart on the same port keeps objects, uids, resourceVersions, history, token" t_restart

t_kill9() {
	local port rv
	port=$(cat "$D/port")
	kubectl label namespace shop restart=kill9 --overwrite && rv=$(list_rv /api/v1/namespaces) &&
		stop_server KILL && start_server --port "$port" &&
		[ "$(list_rv /api/v1/namespaces)" = "$rv" ] &&
		[ "$(kubectl get ns shop -o jsonpath='{.metadata.labels.restart}')" = kill9 ]
}
check "SIGKILL and restart: every change was already persisted" t_kill9

t_delete() {
	kubectl delete -f "$FIX/pod.yaml" -f "$FIX/bulwarkpolicy.yaml" -f "$FIX/clusterbulwarkpolicy.yaml" &&
		! kubectl get cbp lock-shells 2>&1 | tee /dev/stderr | grep -v NotFound | grep -q . &&
		[ -z "$(kubectl get cbp,bp -A -o name)" ] &&
		kubectl get pods -n shop -o name | grep -q on-a &&
		kubectl delete namespace shop && [ -z "$(kubectl get pods -A -o name)" ] &&
		kubectl delete -f "${CRDS[0]}" -f "${CRDS[1]}" &&
		api -o /dev/null -w '%{http_code}\n' "$(url /apis/bulwark.dev/v1alpha1)" | grep -qx 404
}
check "kubectl delete -f (CRs, pod), namespace (its pods go too), CRDs (group leaves discovery)" t_delete

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
