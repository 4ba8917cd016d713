#!/bin/sh
# Audit events under a real kernel: a blocked shell reaches a real journald
# (structured BULWARK_* fields) and a real rsyslogd (RFC 5424), a flood of
# denied opens is rate-limited in the kernel with every event accounted for,
# and sinks that go away cost events (counted) but never enforcement.
. /scenario/lib.sh

CG=/sys/fs/cgroup/ev/web
mkdir -p $CG /run/policies /run/rsyslog /run/systemd/journal /var/log
echo secret >/etc/secret
cp /scenario/policies/*.yaml /run/policies/
[ -f /etc/machine-id ] || echo 0123456789abcdef0123456789abcdef >/etc/machine-id

start_journald() {
    /lib/systemd/systemd-journald >/run/journald.log 2>&1 &
    JOURNALD_PID=$!
    wait_for_socket /run/systemd/journal/socket
}
start_rsyslogd() {
    rsyslogd -n -f /scenario/rsyslog.conf -i /run/rsyslogd.pid >/run/rsyslogd.log 2>&1 &
    RSYSLOGD_PID=$!
    wait_for_socket /run/rsyslog.sock
}
wait_for_socket() {
    i=0
    while [ ! -S "$1" ]; do
        i=$((i + 1)); [ $i -le 1000 ] || return 1; sleep 0.01
    done
}
# wait_health PATTERN: asks for health events (SIGUSR1) until the newest
# matches; the counters are read when the event is made.
wait_health() {
    i=0
    while :; do
        n=$(grep -c '"event":"health"' "$AGENT_OUT")
        kill -USR1 "$AGENT_PID"
        j=0
        while [ "$(grep -c '"event":"health"' "$AGENT_OUT")" -le "$n" ]; do
            j=$((j + 1)); [ $j -le 500 ] || return 1; sleep 0.01
        done
        grep '"event":"health"' "$AGENT_OUT" | tail -1 | grep -qE "$1" && return 0
        i=$((i + 1)); [ $i -le 50 ] || return 1
    done
}
journal() { journalctl -q -o json --no-pager SYSLOG_IDENTIFIER=bulwarkd "$@" 2>/dev/null; }
# wait_journal PATTERN [journalctl matches...]: bounded poll of the journal
wait_journal() {
    pat=$1; shift
    i=0
    while ! journal "$@" | grep -qE "$pat"; do
        i=$((i + 1)); [ $i -le 500 ] || return 1; sleep 0.02
    done
}

start_journald && pass "journald runs in the guest" || fail "journald runs in the guest"
start_rsyslogd && pass "rsyslogd runs in the guest" || { fail "rsyslogd runs in the guest"; cat /run/rsyslogd.log; }

start_agent --policy-dir /run/policies --inventory /scenario/inventory.yaml \
    --journald true --syslog true --syslog-target unix:/run/rsyslog.sock \
    --rate-limit 5 --suppressed-report-seconds 1 --health-interval 0 ||
    { fail "agent starts"; finish; exit 1; }
pass "agent starts with journald and syslog sinks"

echo "== a blocked shell in both sinks"
expect "locked: exec /bin/sh is blocked" EPERM --cgroup $CG exec /bin/sh -c true
wait_journal '"BULWARK_TARGET":"/bin/sh"' BULWARK_HOOK=exec &&
    pass "journald: the blocked exec is there, found by BULWARK_HOOK=exec" || fail "journald: blocked exec"
e=$(journal BULWARK_HOOK=exec | grep '"BULWARK_TARGET":"/bin/sh"' | head -1)
echo "$e"
for f in '"PRIORITY":"4"' '"BULWARK_DECISION":"blocked"' '"BULWARK_MODE":"Block"' \
         '"BULWARK_POLICY":"ClusterBulwarkPolicy lock-shells"' '"BULWARK_RULE":"exec.deny\[0\] path /bin/sh"' \
         '"BULWARK_EXE":"/bin/busybox"' '"BULWARK_NAMESPACE":"prod"' '"BULWARK_POD":"web-7f9c"' \
         '"BULWARK_CGROUP_PATH":"/ev/web"' '"BULWARK_COMM":"bulwark-probe"' '"BULWARK_PID":"[0-9]+"' \
         '"BULWARK_PPID":"[0-9]+"' '"BULWARK_UID":"0"' '"BULWARK_CGROUP_ID":"[0-9]+"' \
         '"MESSAGE":"blocked exec of /bin/sh by pid [0-9]+ \(bulwark-probe\) in prod/web-7f9c: policy ClusterBulwarkPolicy lock-shells"'; do
    echo "$e" | grep -qE "$f" && pass "journald field $f" || fail "journald field $f"
done
journal BULWARK_POLICY="ClusterBulwarkPolicy lock-shells" | grep -q '"BULWARK_HOOK":"exec"' &&
    pass "journalctl BULWARK_POLICY=... finds it" || fail "journalctl BULWARK_POLICY=... finds it"
wait_for /run/syslog.out 'exec-blocked' &&
    pass "rsyslog: the blocked exec is there" || { fail "rsyslog: blocked exec"; cat /run/syslog.out; }
l=$(grep 'exec-blocked' /run/syslog.out | head -1)
echo "$l"
# authpriv (10) * 8 + warning (4) = 84
for f in '^84 <84>1 [0-9T:.-]+Z [^ ]+ bulwarkd [0-9]+ exec-blocked \[bulwark@32473 ' \
         'policy="ClusterBulwarkPolicy lock-shells"' 'target="/bin/sh"' 'decision="blocked"' \
         'rule="exec.deny\[0\\\] path /bin/sh"' 'namespace="prod"' 'pod="web-7f9c"'; do
    echo "$l" | grep -qE "$f" && pass "rsyslog: $f" || fail "rsyslog: $f"
done

echo "== a flood of denied opens: rate-limited in the kernel, every event accounted for"
out=$(bulwark-probe --cgroup $CG --repeat 3000 open /etc/secret read)
echo "$out"
case $out in *"repeat=3000 eperm=3000"*) pass "all 3000 opens were blocked" ;; *) fail "all 3000 opens were blocked" ;; esac
# events sent + suppressed counts reported must add up to 3000
count_flood() {
    sent=$(grep -c '"kind":"decision".*"target":"/etc/secret"' "$AGENT_OUT")
    supp=$(grep '"kind":"suppressed"' "$AGENT_OUT" | sed -n 's/.*"suppressed":\([0-9]*\).*/\1/p' | awk '{s+=$1} END {print s+0}')
    [ $((sent + supp)) -eq 3000 ]
}
i=0
while ! count_flood; do
    i=$((i + 1)); [ $i -le 600 ] || break; sleep 0.01
done
echo "flood: $sent events sent, $supp suppressed"
count_flood && pass "sent ($sent) + suppressed ($supp) = 3000" || fail "sent ($sent) + suppressed ($supp) = 3000"
[ "$sent" -le 20 ] && pass "the kernel held back the flood (sent $sent)" || fail "the kernel held back the flood (sent $sent)"
grep -q '"message":"suppressed [0-9]* events for policy ClusterBulwarkPolicy lock-shells in workload prod/web-7f9c"' "$AGENT_OUT" &&
    pass "suppressed record names policy and workload" || fail "suppressed record names policy and workload"
wait_journal '"BULWARK_EVENT":"suppressed"' && pass "suppressed record reaches journald" || fail "suppressed record reaches journald"

echo "== journald stopped mid-run"
kill "$JOURNALD_PID"; wait "$JOURNALD_PID" 2>/dev/null
rm -f /run/systemd/journal/socket
expect "journald down: the shell is still blocked" EPERM --cgroup $CG exec /bin/sh -c true
wait_for "$AGENT_OUT" '"hook":"exec".*"decision":"blocked"' >/dev/null
wait_health '"sink_journald":"down written=[0-9]+ dropped_full=0 dropped_down=[1-9]' &&
    pass "health: journald is down and its loss is counted" || { fail "health: journald down"; grep health "$AGENT_OUT" | tail -1; }
start_journald
expect "journald back: the shell is still blocked" EPERM --cgroup $CG exec /bin/sh -c true
wait_journal '"BULWARK_EVENT":"sink-recovered"' &&
    pass "journald back: the loss is reported in the journal" || fail "journald back: loss reported"
journal | grep '"BULWARK_EVENT":"sink-recovered"' | head -1

echo "== rsyslog socket missing"
kill "$RSYSLOGD_PID"; wait "$RSYSLOGD_PID" 2>/dev/null
rm -f /run/rsyslog.sock
expect "syslog down: the shell is still blocked" EPERM --cgroup $CG exec /bin/sh -c true
wait_health '"sink_syslog":"down written=[0-9]+ dropped_full=0 dropped_down=[1-9]' &&
    pass "health: syslog is down and its loss is counted" || fail "health: syslog down"
kill -0 "$AGENT_PID" && pass "the agent survived both sinks going away" || fail "the agent survived"

stop_agent && pass "agent stops cleanly" || fail "agent stops cleanly"

echo "== the ring buffer flooded: no rate limit, a one-page ring buffer"
start_agent --policy-dir /run/policies --inventory /scenario/inventory.yaml --journald false --syslog false \
    --rate-limit 0 --ringbuf-bytes 4096 --health-interval 0 || fail "agent restarts"
out=$(bulwark-probe --cgroup $CG --repeat 3000 open /etc/secret read)
case $out in *"eperm=3000"*) pass "flood: all 3000 opens blocked" ;; *) fail "flood: all 3000 opens blocked ($out)" ;; esac
# every open is either an event written, dropped by the kernel (ring buffer
# full) or dropped by the stdout sink (queue full): the three add up to 3000
flood_accounted() {
    n=$(grep '"event":"health"' "$AGENT_OUT" | wc -l)
    kill -USR1 "$AGENT_PID"
    j=0
    while [ "$(grep -c '"event":"health"' "$AGENT_OUT")" -le "$n" ]; do
        j=$((j + 1)); [ $j -le 500 ] || return 1; sleep 0.01
    done
    h=$(grep '"event":"health"' "$AGENT_OUT" | tail -1)
    kdrop=$(echo "$h" | sed -n 's/.*"events_dropped":\([0-9]*\).*/\1/p')
    sdrop=$(echo "$h" | sed -n 's/.*"sink_stdout":"[a-z]* written=[0-9]* dropped_full=\([0-9]*\).*/\1/p')
    sent=$(grep -c '"kind":"decision".*"target":"/etc/secret"' "$AGENT_OUT")
    [ $((sent + kdrop + sdrop)) -eq 3000 ]
}
i=0
while ! flood_accounted; do
    i=$((i + 1)); [ $i -le 20 ] || break
done
echo "flood: $sent written, $kdrop dropped by the kernel, $sdrop dropped by the stdout sink"
[ $((sent + kdrop + sdrop)) -eq 3000 ] && pass "written + kernel drops + sink drops = 3000" ||
    fail "written ($sent) + kernel drops ($kdrop) + sink drops ($sdrop) = 3000"
expect "after the flood: still enforcing" EPERM --cgroup $CG exec /bin/sh -c true
stop_agent && pass "agent stops cleanly after the flood" || fail "agent stops cleanly after the flood"
kill "$JOURNALD_PID" 2>/dev/null
finish
