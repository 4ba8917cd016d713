#!/bin/sh
# The demo: bulwarkd with the example policies of policies/; a process of pod
# payments/api-7f9c (namespace labelled bulwark.dev/locked=true) tries a
# shell, reads /etc/shadow and a service-account token, and connects to the
# cloud metadata address. The same in an unlocked namespace for contrast.
. /scenario/lib.sh

mkdir -p /sys/fs/cgroup/demo/payments-api /sys/fs/cgroup/demo/dev-shell
mkdir -p /var/run/secrets/kubernetes.io/serviceaccount
echo 'root:*:19000:0:99999:7:::' >/etc/shadow
echo token >/var/run/secrets/kubernetes.io/serviceaccount/token

echo "== bulwarkd --policy-dir /policies --inventory demo-inventory.yaml"
start_agent --policy-dir /policies --inventory /scenario/inventory.yaml || { fail "agent starts"; finish; exit 1; }
cat "$AGENT_OUT"
API=/sys/fs/cgroup/demo/payments-api
DEV=/sys/fs/cgroup/demo/dev-shell

echo "== payments/api-7f9c (locked namespace)"
expect "locked pod: a shell is blocked" EPERM --cgroup $API exec /bin/sh -c id
expect "locked pod: /etc/shadow is blocked" EPERM --cgroup $API open /etc/shadow read
expect "locked pod: token read is allowed and audited" ok --cgroup $API open /var/run/secrets/kubernetes.io/serviceaccount/token read
expect "locked pod: cloud metadata is blocked" EPERM --cgroup $API connect 169.254.169.254 80 tcp
echo "== dev/toolbox (not locked)"
expect "dev pod: a shell runs" ok --cgroup $DEV exec /bin/sh -c true
expect "dev pod: cloud metadata is still blocked (all namespaces but kube-system)" EPERM --cgroup $DEV connect 169.254.169.254 80 tcp

wait_for "$AGENT_OUT" '"hook":"connect".*"pod":"toolbox"' || true
echo "== audit events (JSON lines on bulwarkd's stdout)"
grep '"hook"' "$AGENT_OUT"
for p in '"hook":"exec","decision":"blocked".*"target":"/bin/sh".*"namespace":"payments","pod":"api-7f9c"' \
         '"hook":"file","decision":"blocked".*"target":"/etc/shadow"' \
         '"hook":"file","decision":"audited".*serviceaccount/token' \
         '"hook":"connect","decision":"blocked".*"target":"169.254.169.254:80".*"pod":"api-7f9c"' \
         '"hook":"file","decision":"blocked".*"exe":"/usr/bin/bulwark-probe".*"exec_id":"[0-9]+","ancestors":"/bin/busybox\[[0-9]+\]' \
         '"hook":"exec","decision":"blocked".*"exec_id":"[0-9]+","ancestors":"[^"]+\[[0-9]+\]'; do
    grep -qE "$p" "$AGENT_OUT" && pass "event: $p" || fail "event: $p"
done
stop_agent && pass "agent stops cleanly" || fail "agent stops cleanly"
finish
