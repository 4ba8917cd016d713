#!/bin/sh
# Enforcement scenario, run inside the guest (real BPF LSM, busybox sh).
# Every workload is a cgroup this script makes under /sys/fs/cgroup/t, so no
# policy can reach the guest's own shell or the agent.
. /scenario/lib.sh

CG=/sys/fs/cgroup/t
for w in locked audited free exec-allow files-allow net-allow; do
    mkdir -p "$CG/$w"
done
mkdir -p /srv/ro /data /opt/app /run/policies
echo secret >/etc/secret
echo data >/srv/ro/file
echo data >/data/x
cp /bin/busybox /opt/app/allowed-tool
cp /bin/busybox /opt/app/other-tool
cp /scenario/policies/*.yaml /run/policies/
ALLOWED=ok,ECONNREFUSED

start_agent --policy-dir /run/policies --inventory /scenario/inventory.yaml || { fail "agent starts"; finish; exit 1; }
pass "agent starts and applies policies"
echo "--- status"; cat "$AGENT_STATUS"; cat "$AGENT_ERR"; echo "---"
grep -q '"state":"enforcing"' "$AGENT_OUT" && pass "agent says enforcing" || fail "agent says enforcing"

echo "== exec"
expect "locked: exec /bin/sh is blocked" EPERM --cgroup $CG/locked exec /bin/sh -c true
wait_for "$AGENT_OUT" '"hook":"exec","decision":"blocked","mode":"Block","policy":"ClusterBulwarkPolicy lock-web","rule":"exec.deny\[0\] path /bin/sh".*"target":"/bin/sh"' &&
    pass "exec block event names policy, rule and target" || fail "exec block event names policy, rule and target"
grep '"hook":"exec","decision":"blocked"' "$AGENT_OUT" | head -1 | grep -q '"exe":"/bin/busybox"' &&
    pass "exec event carries the resolved executable" || fail "exec event carries the resolved executable"
expect "locked: the link target of /bin/sh (busybox) is blocked" EPERM --cgroup $CG/locked exec /bin/busybox true
ln -sf /bin/busybox /tmp/mysh
expect "locked: a new link to the shell is blocked" EPERM --cgroup $CG/locked exec /tmp/mysh -c true
expect "audited: exec /bin/sh is allowed" ok --cgroup $CG/audited exec /bin/sh -c true
wait_for "$AGENT_OUT" '"hook":"exec","decision":"audited","mode":"Audit","policy":"BulwarkPolicy staging/audit-shells"' &&
    pass "audit mode reports would-block" || fail "audit mode reports would-block"
expect "unselected: exec /bin/sh is allowed" ok --cgroup $CG/free exec /bin/sh -c true
expect "allow list: listed program runs" ok --cgroup $CG/exec-allow exec /opt/app/allowed-tool true
expect "allow list: unlisted program is blocked" EPERM --cgroup $CG/exec-allow exec /opt/app/other-tool true
expect "allow list: shell is blocked" EPERM --cgroup $CG/exec-allow exec /bin/sh -c true
wait_for "$AGENT_OUT" '"policy":"BulwarkPolicy prod/batch-exec-allow","rule":"exec.allow: not listed".*"target":"/opt/app/other-tool"' &&
    pass "allow-list event says not listed" || fail "allow-list event says not listed"
mkdir $CG/locked/child
expect "cgroup made under a locked workload inherits its rules" EPERM --cgroup $CG/locked/child exec /bin/sh -c true

echo "== files"
expect "locked: read of /etc/secret is blocked" EPERM --cgroup $CG/locked open /etc/secret read
expect "locked: write of /etc/secret is allowed (rule is read only)" ok --cgroup $CG/locked open /etc/secret write
expect "locked: write under /srv/ro/ is blocked" EPERM --cgroup $CG/locked open /srv/ro/file write
expect "locked: read under /srv/ro/ is allowed" ok --cgroup $CG/locked open /srv/ro/file read
wait_for "$AGENT_OUT" '"hook":"file","decision":"blocked".*"rule":"files.deny\[1\] prefix /srv/ro/".*"target":"/srv/ro/file","access":"write"' &&
    pass "file block event" || fail "file block event"
expect "audited: read of /etc/secret is allowed" ok --cgroup $CG/audited open /etc/secret read
wait_for "$AGENT_OUT" '"hook":"file","decision":"audited".*"target":"/etc/secret"' &&
    pass "file audit event" || fail "file audit event"
expect "unselected: read of /etc/secret is allowed" ok --cgroup $CG/free open /etc/secret read
expect "files allow list: listed read" ok --cgroup $CG/files-allow open /data/x read
expect "files allow list: write of a read-only entry is blocked" EPERM --cgroup $CG/files-allow open /data/x write
expect "files allow list: unlisted file is blocked" EPERM --cgroup $CG/files-allow open /etc/passwd read

echo "== connect"
expect "locked: tcp 127.0.0.1:8081 is blocked" EPERM --cgroup $CG/locked connect 127.0.0.1 8081 tcp
expect "locked: tcp 127.0.0.1:8080 is allowed" $ALLOWED --cgroup $CG/locked connect 127.0.0.1 8080 tcp
expect "locked: port range start 9000 is blocked" EPERM --cgroup $CG/locked connect 127.0.0.1 9000 tcp
expect "locked: port range end 9010 is blocked" EPERM --cgroup $CG/locked connect 127.0.0.1 9010 tcp
expect "locked: port 9011 past the range is allowed" $ALLOWED --cgroup $CG/locked connect 127.0.0.1 9011 tcp
expect "locked: udp to a TCP-only rule is allowed" $ALLOWED --cgroup $CG/locked connect 127.0.0.1 8081 udp
expect "locked: IPv6 [::1]:7000 is blocked" EPERM --cgroup $CG/locked connect ::1 7000 tcp
expect "locked: IPv6 [::1]:7001 is allowed" $ALLOWED --cgroup $CG/locked connect ::1 7001 tcp
expect "locked: v4-mapped ::ffff:127.0.0.1 port 8081 is blocked" EPERM --cgroup $CG/locked connect ::ffff:127.0.0.1 8081 tcp
wait_for "$AGENT_OUT" '"hook":"connect","decision":"blocked".*"target":"\[::1\]:7000","access":"tcp"' &&
    pass "IPv6 connect event" || fail "IPv6 connect event"
expect "audited: 8081 is allowed" $ALLOWED --cgroup $CG/audited connect 127.0.0.1 8081 tcp
wait_for "$AGENT_OUT" '"hook":"connect","decision":"audited".*"target":"127.0.0.1:8081"' &&
    pass "connect audit event" || fail "connect audit event"
expect "unselected: 8081 is allowed" $ALLOWED --cgroup $CG/free connect 127.0.0.1 8081 tcp
expect "net allow list: listed 127.0.0.1:8080" $ALLOWED --cgroup $CG/net-allow connect 127.0.0.1 8080 tcp
expect "net allow list: unlisted port is blocked" EPERM --cgroup $CG/net-allow connect 127.0.0.1 8082 tcp
expect "net allow list: listed [::1]:8080" $ALLOWED --cgroup $CG/net-allow connect ::1 8080 tcp
expect "net allow list: unlisted [::1]:8081 is blocked" EPERM --cgroup $CG/net-allow connect ::1 8081 tcp

grep -q '"cgroup_path":"/t/free"' "$AGENT_OUT" && fail "no event from the unselected workload" || pass "no event from the unselected workload"

echo "== policy changes without restart"
g=$(generation)
sed 's|path: /bin/sh|path: /bin/nothing-here|' /scenario/policies/lock-web.yaml >/run/policies/lock-web.yaml.new
mv /run/policies/lock-web.yaml.new /run/policies/lock-web.yaml
wait_generation $((g + 1)) && pass "edit applied" || fail "edit applied"
expect "after edit: exec /bin/sh is allowed" ok --cgroup $CG/locked exec /bin/sh -c true
expect "after edit: the file rule still holds" EPERM --cgroup $CG/locked open /etc/secret read
g=$(generation)
cp /scenario/policies/lock-web.yaml /run/policies/lock-web.yaml
wait_generation $((g + 1)) && pass "restore applied" || fail "restore applied"
expect "after restore: exec /bin/sh is blocked again" EPERM --cgroup $CG/locked exec /bin/sh -c true

g=$(generation)
sed 's|mode: Block|mode: Blok|' /scenario/policies/lock-web.yaml >/run/policies/lock-web.yaml
wait_generation $((g + 1)) && pass "bad edit seen" || fail "bad edit seen"
grep -q '^rejected .*lock-web.yaml:[0-9]*:[0-9]*: spec.mode: ' "$AGENT_STATUS" &&
    pass "bad edit is rejected with file:line:column: field: reason" || { fail "bad edit rejected"; cat "$AGENT_STATUS"; }
expect "bad edit: the last good policy stays in force" EPERM --cgroup $CG/locked exec /bin/sh -c true

g=$(generation)
rm /run/policies/lock-web.yaml
wait_generation $((g + 1)) && pass "removal applied" || fail "removal applied"
expect "after removal: exec /bin/sh is allowed" ok --cgroup $CG/locked exec /bin/sh -c true
expect "after removal: read of /etc/secret is allowed" ok --cgroup $CG/locked open /etc/secret read
expect "after removal: 8081 is allowed" $ALLOWED --cgroup $CG/locked connect 127.0.0.1 8081 tcp
expect "after removal: other policies still hold" EPERM --cgroup $CG/exec-allow exec /bin/sh -c true

g=$(generation)
kill -HUP "$AGENT_PID"
wait_generation $((g + 1)) && pass "SIGHUP reloads" || fail "SIGHUP reloads"
expect "after SIGHUP: policies still hold" EPERM --cgroup $CG/exec-allow exec /bin/sh -c true

echo "== shutdown and --audit-only"
kill -USR1 "$AGENT_PID"
wait_for "$AGENT_OUT" '"event":"health".*"blocked":[1-9]' && pass "counters reported" || fail "counters reported"
stop_agent && pass "SIGTERM: clean exit" || fail "SIGTERM: clean exit"
expect "after exit: nothing is enforced" ok --cgroup $CG/exec-allow exec /bin/sh -c true
cp /scenario/policies/lock-web.yaml /run/policies/
start_agent --policy-dir /run/policies --inventory /scenario/inventory.yaml --audit-only &&
    pass "agent starts with --audit-only" || fail "agent starts with --audit-only"
expect "--audit-only: exec /bin/sh is allowed" ok --cgroup $CG/locked exec /bin/sh -c true
wait_for "$AGENT_OUT" '"hook":"exec","decision":"audited","mode":"Audit","policy":"ClusterBulwarkPolicy lock-web"' &&
    pass "--audit-only reports would-block" || fail "--audit-only reports would-block"
stop_agent

finish
