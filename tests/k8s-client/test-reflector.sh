#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The reflector (agent/k8s/kube-client.c) against the test API server
# (tests/k8s/apiserver.py), through tests/k8s-client/reflector-driver:
# list then watch, bookmarks, 410 Gone and relist, a server crash and
# restart, a stream cut inside an event, token rotation, a slow server,
# PATCH of /status, and stopping with watches open. Every wait is a bounded
# poll on the driver's output, its counters or the server's /_test/watches.
#
#   test-reflector.sh DRIVER [APISERVER.py]
#
# Prints "ok - ..." / "not ok - ..." per check, measurements as "# ...",
# and "N passed, N failed" last.
set -uo pipefail

driver=$(realpath "$1")
apiserver=$(realpath "${2:-$(dirname "$0")/../k8s/apiserver.py}")
work=$(mktemp -d /tmp/bw-reflector-XXXXXX)
spid= dpid=
passed=0 failed=0

cleanup() {
    [ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
    [ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
    if [ "$failed" -gt 0 ] || [ -n "${KEEP:-}" ]; then
        echo "# kept $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
now() { date +%s.%N; }
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) * 1000 }'; }

# wait_until SECONDS COMMAND...: polls every 20 ms.
wait_until() {
    local deadline=$(($(date +%s%N) + ${1%.*} * 1000000000)); shift
    until "$@"; do
        [ "$(date +%s%N)" -ge "$deadline" ] && return 1
        sleep 0.02
    done
}

# ---- the API server ----

start_server() { # [PORT]
    rm -f "$work/api/ready"
    python3 "$apiserver" --state-dir "$work/api" ${1:+--port "$1"} --quiet 2>>"$work/apiserver.log" &
    spid=$!
    wait_until 30 test -f "$work/api/ready"
}

token=
# api METHOD PATH [BODY [CONTENT-TYPE]]: the body of the answer on stdout;
# fails unless 2xx.
api() {
    local code
    code=$(curl -sS -o "$work/resp" -w '%{http_code}' --cacert "$work/api/ca.crt" \
        -H "Authorization: Bearer $token" -X "$1" \
        ${3:+-H "Content-Type: ${4:-application/json}" --data-binary "$3"} \
        "https://127.0.0.1:$port$2") || return 1
    cat "$work/resp"
    [ "${code:0:1}" = 2 ]
}
rv_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])'; }
server_rv() { api GET /_test/state | python3 -c 'import json,sys; print(json.load(sys.stdin)["resourceVersion"])'; }
watch_count() { api GET /_test/watches | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])'; }

pod_json() { # NAME NODE [LABELS-JSON]
    printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s","namespace":"shop","labels":%s},"spec":{"nodeName":"%s","containers":[{"name":"c","image":"busybox"}]}}' \
        "$1" "${3:-{\"app\":\"web\"\}}" "$2"
}
create_pod() { api POST /api/v1/namespaces/shop/pods "$(pod_json "$@")" | rv_of; }

crd_json() { # PLURAL KIND SCOPE
    printf '{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"%s.bulwark.dev"},"spec":{"group":"bulwark.dev","scope":"%s","names":{"plural":"%s","singular":"%s","kind":"%s","listKind":"%sList"},"versions":[{"name":"v1alpha1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","x-kubernetes-preserve-unknown-fields":true}},"subresources":{"status":{}}}]}}' \
        "$1" "$3" "$1" "$(echo "$2" | tr A-Z a-z)" "$2" "$2"
}

# ---- the driver ----

out=$work/out
start_driver() { # extra options and paths
    : >"$out"
    rm -f "$work/stats-seq"
    "$driver" --kubeconfig "$work/kubeconfig" "$@" >"$out" 2>>"$work/driver.err" &
    dpid=$!
}
# stats RESOURCE: the resource's STATS line, asked for now.
# (A file holds the request count: stats runs in command substitutions.)
stats() {
    local stats_seq
    stats_seq=$(($(cat "$work/stats-seq" 2>/dev/null || echo 0) + 1))
    echo "$stats_seq" >"$work/stats-seq"
    kill -USR1 "$dpid" || return 1
    wait_until 10 grep -qx "STATS-END $stats_seq" "$out" || return 1
    awk -v s="STATS-END $stats_seq" -v r="$1" '$1 == "STATS" && $2 == r { last = $0 } $0 == s { print last; exit }' "$out"
}
# stat RESOURCE FIELD
stat() { stats "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
stat_ge() { local v; v=$(stat "$1" "$2"); [ -n "$v" ] && [ "$v" -ge "$3" ]; }
stat_eq() { [ "$(stat "$1" "$2")" = "$3" ]; }
mark() { wc -l <"$out"; }
# since MARK: the output after line MARK, without STATS lines.
since() { tail -n +"$(($1 + 1))" "$out" | grep -v -e '^STATS' ; }
has_line() { grep -qE "$1" "$out"; }
has_since() { since "$1" | grep -qE "$2"; }
# event_time REGEX: t= of the first EVENT line matching
event_time() { grep -E "$1" "$out" | head -1 | sed -n 's/.* t=//p'; }

P_NS=/api/v1/namespaces
P_CBP=/apis/bulwark.dev/v1alpha1/clusterbulwarkpolicies
P_BP=/apis/bulwark.dev/v1alpha1/bulwarkpolicies

# ============================================================================

mkdir -p "$work/api"
if ! start_server; then
    echo "# the API server did not start:" >&2
    cat "$work/apiserver.log" >&2
    not_ok "API server starts"
    echo "$passed passed, $failed failed"
    exit 1
fi
port=$(cat "$work/api/port")
token=$(cat "$work/api/token")
printf '%s\n' "$token" >"$work/driver-token"
# The driver's own kubeconfig: relative paths, a token file it rereads.
cat >"$work/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:$port/
    certificate-authority: api/ca.crt
users:
- name: agent
  user:
    tokenFile: driver-token
contexts:
- name: test
  context: {cluster: test, user: agent}
current-context: test
EOF

api POST /api/v1/namespaces '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop","labels":{"team":"web"}}}' >/dev/null
rv_web1=$(create_pod web-1 node-a)
create_pod web-2 node-b >/dev/null
create_pod web-0 node-a >/dev/null

# --- 1. initial list; the CRDs appear only after the driver has started ---
start_driver --backoff-base-ms 100 --backoff-cap-ms 1000 --watch-timeout 60 --parse-policies \
    --node node-a "$P_NS" "$P_CBP" "$P_BP"
check "pods and namespaces are listed and synced" \
    wait_until 20 eval 'has_line "^SYNC_END pods " && has_line "^SYNC_END namespaces "'
check "policy lists fail while their CRDs do not exist" \
    wait_until 10 eval 'stat_ge clusterbulwarkpolicies failures 1 && stat_ge bulwarkpolicies failures 1'
check "...and the error says so" \
    eval 'stats clusterbulwarkpolicies | grep -q "error=GET https://127.0.0.1:$port/apis/bulwark.dev/v1alpha1/clusterbulwarkpolicies?limit=500&resourceVersion=0: HTTP 404"'
api POST /apis/apiextensions.k8s.io/v1/customresourcedefinitions "$(crd_json clusterbulwarkpolicies ClusterBulwarkPolicy Cluster)" >/dev/null
api POST /apis/apiextensions.k8s.io/v1/customresourcedefinitions "$(crd_json bulwarkpolicies BulwarkPolicy Namespaced)" >/dev/null
api POST $P_CBP '{"apiVersion":"bulwark.dev/v1alpha1","kind":"ClusterBulwarkPolicy","metadata":{"name":"lock-shells"},"spec":{"mode":"Block","namespaceSelector":{"matchLabels":{"bulwark.dev/locked":"true"}},"exec":{"deny":[{"path":"/bin/sh"},{"path":"/bin/bash"}]},"files":{"deny":[{"path":"/etc/shadow"}]}}}' >/dev/null
api POST /apis/bulwark.dev/v1alpha1/namespaces/shop/bulwarkpolicies '{"apiVersion":"bulwark.dev/v1alpha1","kind":"BulwarkPolicy","metadata":{"name":"web-lockdown","namespace":"shop"},"spec":{"mode":"Audit","podSelector":{"matchLabels":{"app":"web"}},"exec":{"allow":[{"path":"/usr/sbin/nginx"}]}}}' >/dev/null
check "policy reflectors sync once the CRDs exist (backoff capped)" \
    wait_until 10 eval 'has_line "^SYNC_END clusterbulwarkpolicies " && has_line "^SYNC_END bulwarkpolicies "'
check "...and recover: reconnects counted" stat_ge clusterbulwarkpolicies reconnects 1
# The first snapshot of pods: SYNC_BEGIN, ADDED web-0 and web-1, SYNC_END.
check "pods snapshot: SYNC_BEGIN, ADDED web-0, web-1 (rv $rv_web1), SYNC_END, in that order" \
    eval '[ "$(grep -E "^(SYNC_BEGIN|SYNC_END|EVENT .* pods t=)" "$out" | grep -E " pods( |$)" | head -4 | sed "s/ t=.*//; s/ rv=.*//")" = "$(printf "SYNC_BEGIN pods\nEVENT ADDED shop/web-0 %s pods\nEVENT ADDED shop/web-1 %s pods\nSYNC_END pods" "$((rv_web1 + 2))" "$rv_web1")" ]'
check "the pod on another node is never delivered" eval '! has_line "web-2"'
check "namespaces snapshot has default, kube-system and shop" \
    eval 'has_line "^EVENT ADDED default [0-9]+ namespaces" && has_line "^EVENT ADDED kube-system " && has_line "^EVENT ADDED shop [0-9]+ namespaces"'
# Policies arrive (created after their reflectors were watching) and parse.
check "both policies delivered and accepted by bw_policy_parse_buffer" \
    wait_until 10 eval 'has_line "^POLICY OK ClusterBulwarkPolicy lock-shells$" && has_line "^POLICY OK BulwarkPolicy shop/web-lockdown$"'

# --- 2. watch: ADDED, MODIFIED, DELETED in order, with the server's versions ---
wait_until 10 eval 'stat_eq pods watching 1'
m=$(mark)
t0=$(now)
rv_a=$(create_pod web-3 node-a)
wait_until 10 has_since "$m" "^EVENT ADDED shop/web-3 "
t_add=$(event_time "^EVENT ADDED shop/web-3 ")
rv_m=$(api PATCH /api/v1/namespaces/shop/pods/web-3 '{"metadata":{"labels":{"app":"web","v":"2"}}}' application/merge-patch+json | rv_of)
rv_d=$(api DELETE /api/v1/namespaces/shop/pods/web-3 | rv_of)
check "watch delivers ADDED $rv_a, MODIFIED $rv_m, DELETED $rv_d for web-3, in order" \
    wait_until 10 eval '[ "$(since "$m" | grep "shop/web-3" | sed "s/ t=.*//")" = "$(printf "EVENT ADDED shop/web-3 %s pods\nEVENT MODIFIED shop/web-3 %s pods\nEVENT DELETED shop/web-3 %s pods" "$rv_a" "$rv_m" "$rv_d")" ]'
echo "# create (curl POST, new TLS connection) -> ADDED delivered: $(ms_between "$t0" "$t_add") ms"
if command -v kubectl >/dev/null; then
    m=$(mark)
    t0=$(now)
    if KUBECONFIG="$work/api/kubeconfig" kubectl apply --validate=false -f - >/dev/null 2>>"$work/kubectl.err" <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: kubectl-ns
  labels: {team: ops}
EOF
    then
        wait_until 10 has_since "$m" "^EVENT ADDED kubectl-ns "
        check "kubectl apply of a namespace is delivered" has_since "$m" "^EVENT ADDED kubectl-ns [0-9]+ namespaces"
        echo "# kubectl apply -> ADDED delivered: $(ms_between "$t0" "$(event_time "^EVENT ADDED kubectl-ns ")") ms (includes kubectl's start and discovery)"
    else
        echo "# kubectl apply failed here (see $work/kubectl.err); skipped"
    fi
fi

# --- 3. bookmarks move the resourceVersion without events ---
m=$(mark)
b0=$(stat clusterbulwarkpolicies bookmarks)
rv_ns=$(api POST /api/v1/namespaces '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bm"}}' | rv_of)
check "a bookmark brings clusterbulwarkpolicies to resourceVersion $rv_ns" \
    wait_until 10 eval '[ "$(stat clusterbulwarkpolicies rv)" -ge "$rv_ns" ] && [ "$(stat clusterbulwarkpolicies bookmarks)" -gt "$b0" ]'
check "...without any event for it" eval '! has_since "$m" "clusterbulwarkpolicies|bulwarkpolicies|pods t="'

# --- 4. 410 Gone: disconnected (token gate), changes, compaction -> relist ---
# Rotating the server's token keeps the reflectors out (401) while the
# state changes and the history is compacted; giving the driver the new
# token lets them back in with a resourceVersion that is gone.
for r in namespaces pods clusterbulwarkpolicies bulwarkpolicies; do eval "l0_$r=\$(stat $r lists); r0_$r=\$(stat $r relists)"; done
u0=$(stat pods unauthorized)
gate=gate-$RANDOM$RANDOM
api POST "/_test/token?value=$gate" >/dev/null
token=$gate
api POST /_test/cut-watches >/dev/null
check "after the cut, reconnecting with the old token gets 401" \
    wait_until 10 eval 'stat_ge pods unauthorized $((u0 + 1)) && [ "$(watch_count)" = 0 ]'
api DELETE /api/v1/namespaces/shop/pods/web-1 >/dev/null
rv_mod=$(api PATCH /api/v1/namespaces/shop '{"metadata":{"labels":{"team":"web","tier":"front"}}}' application/merge-patch+json | rv_of)
rv_new=$(create_pod web-4 node-a)
create_pod web-9 node-b >/dev/null
api POST /_test/compact >/dev/null
m=$(mark)
t0=$(now)
printf '%s\n' "$token" >"$work/driver-token.new" && mv "$work/driver-token.new" "$work/driver-token"
check "410: every reflector relists" \
    wait_until 15 eval 'has_since "$m" "^SYNC_END pods " && has_since "$m" "^SYNC_END namespaces " && has_since "$m" "^SYNC_END clusterbulwarkpolicies " && has_since "$m" "^SYNC_END bulwarkpolicies "'
t1=$(grep '^SYNC_END' "$out" | tail -1 | sed -n 's/.* t=//p')
echo "# new token written -> all four relists delivered: $(ms_between "$t0" "$t1") ms (includes the backoff wait)"
check "pods relist: ADDED web-4 ($rv_new), DELETED web-1, nothing for web-0" \
    eval '[ "$(since "$m" | grep -E "^(SYNC|EVENT).* pods" | sed "s/ t=.*//; s/ rv=.*//")" = "$(printf "SYNC_BEGIN pods\nEVENT ADDED shop/web-4 %s pods\nEVENT DELETED shop/web-1 %s pods\nSYNC_END pods" "$rv_new" "$rv_web1")" ]'
check "namespaces relist: only MODIFIED shop ($rv_mod)" \
    eval '[ "$(since "$m" | grep "^EVENT.* namespaces" | sed "s/ t=.*//")" = "EVENT MODIFIED shop $rv_mod namespaces" ]'
check "policies relist: unchanged, no events" eval '! has_since "$m" "^EVENT.*bulwarkpolicies"'
relists_ok() {
    local r
    for r in namespaces pods clusterbulwarkpolicies bulwarkpolicies; do
        eval "[ \$(stat $r relists) = \$((r0_$r + 1)) ] && [ \$(stat $r lists) = \$((l0_$r + 1)) ]" || return 1
    done
}
check "relists counted (410), lists counted, no other list" relists_ok
check "the error seen was the 410" eval 'stats pods | grep -q "error=watch .*ERROR 410 Expired"'
echo "# relist LIST durations: pods $(stat pods list_ms) ms, namespaces $(stat namespaces list_ms) ms"

# --- 5. token rotation alone: 401, then the new token, resume without relist ---
wait_until 10 eval 'stat_eq pods watching 1 && [ "$(watch_count)" = 4 ]'
l0=$(stat pods lists); u0=$(stat pods unauthorized); c0=$(stat pods reconnects)
new=rotated-$RANDOM$RANDOM
api POST "/_test/token?value=$new" >/dev/null; token=$new
api POST /_test/cut-watches >/dev/null
check "rotated server token: 401 on reconnect" wait_until 10 stat_ge pods unauthorized $((u0 + 1))
m=$(mark)
rv_w5=$(create_pod web-5 node-a)   # while the reflector is out: must not be lost
printf '%s\n' "$new" >"$work/driver-token.new" && mv "$work/driver-token.new" "$work/driver-token"
check "token file rewritten: back in, and the pod created meanwhile arrives" \
    wait_until 10 has_since "$m" "^EVENT ADDED shop/web-5 $rv_w5 pods"
check "...by resuming the watch: no relist, reconnect counted" \
    eval '[ "$(stat pods lists)" = "$l0" ] && stat_ge pods reconnects $((c0 + 1)) && ! has_since "$m" "^SYNC_BEGIN pods"'

# --- 6. the server crashes and restarts on the same port and state ---
wait_until 10 eval '[ "$(watch_count)" = 4 ]'
l0=$(stat pods lists); f0=$(stat pods failures); c0=$(stat pods reconnects)
m=$(mark)
kill -KILL "$spid"; wait "$spid" 2>/dev/null; spid=
check "server down: the reflectors fail and back off" \
    wait_until 10 eval 'stat_eq pods watching 0 && stat_ge pods failures $((f0 + 2))'
check "...with the connection refused" wait_until 10 eval 'stats pods | grep -q "Could not connect\|Couldn.t connect\|Connection refused"'
check "server restarted" start_server "$port"
check "reflectors reconnect" wait_until 10 eval 'stat_ge pods reconnects $((c0 + 1)) && [ "$(watch_count)" = 4 ]'
rv_w6=$(create_pod web-6 node-a)
check "an event after the restart arrives" wait_until 10 has_since "$m" "^EVENT ADDED shop/web-6 $rv_w6 pods"
check "...resumed without a relist, and nothing else was delivered" \
    eval '[ "$(stat pods lists)" = "$l0" ] && [ "$(since "$m" | grep -c "^EVENT\|^SYNC")" = 1 ]'

# --- 7. a stream cut inside an event ---
l0=$(stat pods lists); p0=$(stat pods partial_lines)
m=$(mark)
api POST "/_test/cut-watches?mid=next" >/dev/null
rv_w7=$(create_pod web-7 node-a)
check "cut inside an event: half a line discarded and counted" wait_until 10 stat_ge pods partial_lines $((p0 + 1))
check "...the event arrives after the reconnection, once" \
    wait_until 10 eval '[ "$(since "$m" | grep -c "^EVENT ADDED shop/web-7 $rv_w7 pods")" = 1 ]'
check "...without a relist" eval '[ "$(stat pods lists)" = "$l0" ]'
# The other watches are still armed to cut their next event: cut them all
# now in the middle of a bookmark instead.
p0=$(stat namespaces partial_lines)
api POST "/_test/cut-watches?mid=1" >/dev/null
check "cut inside a bookmark: counted, watches back" \
    wait_until 10 eval 'stat_ge namespaces partial_lines $((p0 + 1)) && [ "$(watch_count)" = 4 ]'

# --- 8. a slow server ---
l0=$(stat pods lists)
api POST "/_test/delay?ms=1500" >/dev/null
api POST /_test/cut-watches >/dev/null
m=$(mark)
t0=$(now)
rv_w8=$(create_pod web-8 node-a)
check "slow server (1.5 s per request): the event still arrives" \
    wait_until 20 has_since "$m" "^EVENT ADDED shop/web-8 $rv_w8 pods"
echo "# create with 1.5 s delays on every request -> ADDED delivered: $(ms_between "$t0" "$(event_time "^EVENT ADDED shop/web-8 ")") ms"
api POST "/_test/delay?ms=0" >/dev/null
check "...without a relist" eval '[ "$(stat pods lists)" = "$l0" ]'

# --- 9. PATCH /status through the client, seen by the watch ---
wait_until 10 eval '[ "$(watch_count)" = 4 ]'
m=$(mark)
"$driver" --kubeconfig "$work/kubeconfig" patch "$P_CBP/lock-shells/status" application/merge-patch+json \
    '{"status":{"observedGeneration":1,"conditions":[{"type":"Accepted","status":"True"}]}}' >"$work/patch.out" 2>&1
check "bw_kube_patch of /status: HTTP 200" grep -q '^HTTP 200 rc=0$' "$work/patch.out"
check "...and the watch delivers MODIFIED lock-shells" \
    wait_until 10 has_since "$m" "^EVENT MODIFIED lock-shells [0-9]+ clusterbulwarkpolicies"
"$driver" --kubeconfig "$work/kubeconfig" get "$P_CBP/nope" >"$work/get.out" 2>&1
check "bw_kube_get of a missing object: 404, EREMOTEIO, the Status message" \
    eval 'grep -q "^HTTP 404 rc=EREMOTEIO$" "$work/get.out" && grep -q "^ERROR GET .*: HTTP 404: clusterbulwarkpolicies.bulwark.dev \"nope\" not found$" "$work/get.out"'

# --- 9b. other configurations, one request each ---
get_ok() { "$driver" "$@" get /api/v1/namespaces/default >"$work/get.out" 2>&1 && grep -q '^HTTP 200 rc=0$' "$work/get.out"; }
check "kubeconfig with certificate-authority-data and an inline token (the server's)" \
    get_ok --kubeconfig "$work/api/kubeconfig"
mkdir -p "$work/sa"
cp "$work/api/ca.crt" "$work/sa/ca.crt"
printf '%s\n' "$token" >"$work/sa/token"
in_cluster_get() {
    KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$port" BULWARK_SA_DIR="$work/sa" \
        "$driver" --in-cluster get /api/v1/namespaces/default >"$work/get.out" 2>&1 &&
        grep -q '^HTTP 200 rc=0$' "$work/get.out"
}
check "in-cluster: KUBERNETES_SERVICE_HOST/PORT and BULWARK_SA_DIR" in_cluster_get
(cd "$work" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout client.key \
    -out client.crt -days 1 -subj /CN=bulwark-agent >/dev/null 2>&1 &&
 openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout other.key \
    -out other.crt -days 1 -subj /CN=other >/dev/null 2>&1)
kc_cert() { # CERT KEY
    sed -e "s|^    tokenFile: driver-token|    tokenFile: driver-token\n    client-certificate-data: $(base64 -w0 "$work/$1")\n    client-key-data: $(base64 -w0 "$work/$2")|" \
        "$work/kubeconfig" >"$work/kubeconfig-cert"
}
kc_cert client.crt client.key
check "client certificate and key data (PEM blobs) are loaded" get_ok --kubeconfig "$work/kubeconfig-cert"
kc_cert client.crt other.key
"$driver" --kubeconfig "$work/kubeconfig-cert" get /api/v1/namespaces/default >"$work/get.out" 2>&1
check "...a key that does not match the certificate fails as a TLS error (EPROTO)" grep -q '^HTTP 0 rc=EPROTO$' "$work/get.out"
sed -e "s|certificate-authority: api/ca.crt|certificate-authority: other.crt|" "$work/kubeconfig" >"$work/kubeconfig-ca"
"$driver" --kubeconfig "$work/kubeconfig-ca" get /api/v1/namespaces/default >"$work/get.out" 2>&1
check "another CA: the server certificate is refused (EPROTO)" grep -q '^HTTP 0 rc=EPROTO$' "$work/get.out"
# The certificate names IP:127.0.0.1 and DNS:localhost: a name (with SNI)
# is matched, a name it does not carry ("127.1" reaches the same address)
# is refused.
sed -e "s|server: https://127.0.0.1:|server: https://localhost:|" "$work/kubeconfig" >"$work/kubeconfig-name"
check "the server by a name its certificate carries (localhost)" get_ok --kubeconfig "$work/kubeconfig-name"
sed -e "s|server: https://127.0.0.1:|server: https://127.1:|" "$work/kubeconfig" >"$work/kubeconfig-name"
"$driver" --kubeconfig "$work/kubeconfig-name" get /api/v1/namespaces/default >"$work/get.out" 2>&1
check "...and by one it does not carry (127.1): refused (EPROTO), the reason said" \
    eval 'grep -q "^HTTP 0 rc=EPROTO$" "$work/get.out" && grep -q "certificate of 127.1:$port is refused: .*does not match" "$work/get.out"'
# An HTTP proxy (proxy-url): a CONNECT tunnel with TLS to the server inside.
python3 "$(dirname "$apiserver")/connect-proxy.py" "$work/proxy.port" "$work/proxy.log" 2>>"$work/proxy.err" &
ppid_=$!
wait_until 10 test -f "$work/proxy.port"
sed -e "s|^    certificate-authority: api/ca.crt|    certificate-authority: api/ca.crt\n    proxy-url: http://agent:s%40cret@127.0.0.1:$(cat "$work/proxy.port")|" \
    "$work/kubeconfig" >"$work/kubeconfig-proxy"
check "through an HTTP proxy (proxy-url): the request succeeds" get_ok --kubeconfig "$work/kubeconfig-proxy"
# "agent:s@cret"
check "...through a CONNECT tunnel to the server, with Proxy-Authorization" \
    grep -qx "CONNECT 127.0.0.1:$port auth=Basic YWdlbnQ6c0BjcmV0" "$work/proxy.log"
kill "$ppid_" 2>/dev/null; wait "$ppid_" 2>/dev/null

# --- 10. stop with four watches open; overall invariants ---
check "no ordering violation (duplicate ADDED, unknown MODIFIED/DELETED, older version)" eval '! has_line "^VIOLATION"'
no_decode_errors() {
    local r
    for r in namespaces pods clusterbulwarkpolicies bulwarkpolicies; do stat_eq $r decode_errors 0 || return 1; done
}
check "no decode errors" no_decode_errors
kill -TERM "$dpid"
wait "$dpid"; rc=$?
dpid=
check "driver exits 0 on SIGTERM" [ "$rc" = 0 ]
stop_ms=$(sed -n 's/^STOPPED ms=//p' "$out")
echo "# stop + join with 4 watches open: $stop_ms ms"
check "stop is prompt (< 500 ms with watches open)" eval '[ -n "$stop_ms" ] && [ "$stop_ms" -lt 500 ]'
check "no sanitizer report" eval '! grep -q "AddressSanitizer\|runtime error\|LeakSanitizer" "$work/driver.err"'

# --- 11. a larger list, paginated ---
python3 - "$port" "$token" "$work/api/ca.crt" <<'EOF'
import http.client, json, ssl, sys
port, token, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = http.client.HTTPSConnection("127.0.0.1", port, context=ssl.create_default_context(cafile=ca))
for i in range(1000):
    body = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bulk-%04d" % i, "labels": {"i": str(i)}}})
    c.request("POST", "/api/v1/namespaces", body, {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 201, r.status
EOF
start_driver --page-size 100 "$P_NS"
check "1000+ namespaces listed in pages of 100" wait_until 30 has_line "^SYNC_END namespaces "
n=$(grep -c "^EVENT ADDED bulk-" "$out")
check "...all 1000 delivered once" [ "$n" = 1000 ]
t0=$(sed -n 's/^START t=//p' "$out"); t1=$(sed -n 's/^SYNC_END namespaces .* t=//p' "$out")
echo "# start -> first snapshot of $(sed -n 's/^SYNC_END namespaces .*objects=\([0-9]*\).*/\1/p' "$out") namespaces (11 pages): $(ms_between "$t0" "$t1") ms"
# Event latency over a kept-alive connection: request sent -> event delivered.
python3 - "$port" "$token" "$work/api/ca.crt" "$work/sent" <<'EOF2'
import http.client, json, ssl, sys, time
port, token, ca, sent = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
c = http.client.HTTPSConnection("127.0.0.1", port, context=ssl.create_default_context(cafile=ca))
with open(sent, "w") as f:
    for i in range(200):
        body = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lat-%04d" % i}})
        t = time.time()
        c.request("POST", "/api/v1/namespaces", body, {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
        r = c.getresponse(); r.read()
        f.write("lat-%04d %.6f\n" % (i, t))
EOF2
check "200 namespaces created one after the other arrive, in order" \
    wait_until 20 eval '[ "$(grep "^EVENT ADDED lat-" "$out" | cut -d" " -f3 | tr "\n" " ")" = "$(cut -d" " -f1 "$work/sent" | tr "\n" " ")" ]'
python3 - "$work/sent" "$out" <<'EOF2'
import sys
sent = dict(l.split() for l in open(sys.argv[1]))
d = sorted((float(l.split(" t=")[1]) - float(sent[l.split()[2]])) * 1000
           for l in open(sys.argv[2]) if l.startswith("EVENT ADDED lat-"))
print("# request sent -> event delivered (200 creates, kept-alive TLS): median %.2f ms, p90 %.2f ms, max %.2f ms"
      % (d[len(d) // 2], d[len(d) * 9 // 10], d[-1]))
EOF2
kill -TERM "$dpid"; wait "$dpid"; dpid=
check "no sanitizer report" eval '! grep -q "AddressSanitizer\|runtime error\|LeakSanitizer" "$work/driver.err"'

if [ "$failed" -gt 0 ]; then
    echo "# driver output:" && sed 's/^/#   /' "$out" | tail -60
    echo "# driver stderr:" && sed 's/^/#   /' "$work/driver.err" | tail -20
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
