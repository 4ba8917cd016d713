#!/bin/sh
# The benchmark, inside the guest (Debian's kernel, real BPF-LSM): every
# configuration in this one boot, interleaved round by round, each result on
# a "BENCH:" line that bench/run.sh turns into the CSV and the report.
# Settings come from /scenario/bench.conf (written by bench/run.sh).
. /scenario/lib.sh
. /scenario/bench.conf

B=/run/bench
mkdir -p $B /srv/bench /srv/deny /opt/deny
echo data >/srv/bench/allowed
echo data >/srv/bench/propagate
for w in plain unselected r10 r1000 r10000 audit; do mkdir -p /sys/fs/cgroup/bench/$w; done
AGENT_ARGS="--hook-socket none --journald false --syslog false --rate-limit 0 --health-interval 0"

emit() { echo "BENCH: $*"; }
# want SECTION: whether this run measures it (ONLY in bench.conf: a
# development run of some sections; empty: all).
want() { [ -z "${ONLY:-}" ] || case " $ONLY " in *" $1 "*) true ;; *) false ;; esac; }
# Milliseconds since boot (busybox date has no %N).
ms() { awk '{printf "%d", $1 * 1000}' /proc/uptime; }

# iterations OP: how many times one run repeats OP (bench.conf).
iterations() {
    case $1 in
    open) echo "$N_OPEN" ;;
    exec | spawn) echo "$N_EXEC" ;;
    connect) echo "$N_CONNECT" ;;
    esac
}

# micro CONFIG CGROUP: the three operations, once each, in this round.
micro() {
    for op in open exec connect; do
        v=$(bulwark-bench --cgroup /sys/fs/cgroup/bench/$2 micro $op "$(iterations $op)" /srv/bench/allowed |
            sed -n 's/^ns_per_op //p')
        if [ -n "$v" ]; then
            emit "micro round=$round config=$1 op=$op ns=$v"
        else
            fail "micro $1 $op ran"
        fi
    done
}

# The agent's configurations share one start per round: the cgroup the
# benchmark runs in picks what the agent does for it.
agent_round() {
    rm -f $B/events.jsonl
    start_agent --policy-dir /scenario/micro/policies --inventory /scenario/micro/inventory.yaml \
        --events-file $B/events.jsonl $AGENT_ARGS || { fail "agent starts (round $round)"; return; }
    grep -q '^workloads 4$' "$AGENT_STATUS" || { fail "agent selects 4 workloads"; cat "$AGENT_STATUS"; }
    for c in $1; do
        micro "$c" "$c"
    done
    stop_agent || fail "agent stops cleanly (round $round)"
}

floor_round() {
    bulwark-bench floor >$B/floor.out 2>&1 &
    fp=$!
    wait_for $B/floor.out '^attached' 500 || { fail "floor programs attach"; cat $B/floor.out; return; }
    micro floor plain
    kill $fp
    wait $fp
}

apparmor_round() {
    # The process changes to the profile at its next exec (attr/exec).
    for op in open exec connect; do
        v=$(sh -c 'echo -n "exec bulwark-bench" >/proc/self/attr/exec && exec bulwark-bench --cgroup /sys/fs/cgroup/bench/plain micro '"$op $(iterations $op)"' /srv/bench/allowed' |
            sed -n 's/^ns_per_op //p')
        if [ -n "$v" ]; then emit "micro round=$round config=apparmor-10000 op=$op ns=$v"; else fail "micro apparmor $op ran"; fi
    done
}

auditd_round() {
    auditctl -R /scenario/auditd/bench.rules >/dev/null || { fail "auditd rules load"; return; }
    micro auditd-10000 plain
    auditctl -D >/dev/null
}

echo "== setup"
has_apparmor=0
if [ "${APPARMOR:-0}" = 1 ] && grep -q apparmor /sys/kernel/security/lsm; then
    mkdir -p /etc/apparmor.d
    if apparmor_parser -r -K /scenario/apparmor/bulwark-bench 2>$B/aa.err; then
        has_apparmor=1
        pass "AppArmor profile loaded"
    else
        fail "AppArmor profile loaded"; cat $B/aa.err
    fi
fi
has_auditd=0
if [ "${AUDITD:-0}" = 1 ]; then
    mkdir -p /var/log/audit /etc/audit
    auditd -n -f -c /scenario/auditd >$B/auditd.out 2>&1 &
    AUDITD_PID=$!
    i=0
    while ! auditctl -s 2>/dev/null | grep -q "pid $AUDITD_PID"; do
        i=$((i + 1)); [ $i -lt 500 ] || break; sleep 0.02
    done
    if auditctl -s | grep -q "pid $AUDITD_PID"; then has_auditd=1; pass "auditd runs"; else fail "auditd runs"; cat $B/auditd.out; auditctl -s; fi
fi

if want micro; then
echo "== micro: $ROUNDS rounds, open $N_OPEN, exec $N_EXEC, connect $N_CONNECT per run"
round=1
while [ $round -le "$ROUNDS" ]; do
    # Rotate the order each round so that drift spreads over every config.
    case $((round % 3)) in
    0) order="none agent floor" ; agents="r10000 audit unselected r10 r1000" ;;
    1) order="floor none agent" ; agents="unselected r10 r1000 r10000 audit" ;;
    2) order="agent floor none" ; agents="audit r1000 r10 unselected r10000" ;;
    esac
    for c in $order; do
        case $c in
        none) micro none plain ;;
        floor) floor_round ;;
        agent) agent_round "$agents" ;;
        esac
    done
    [ $has_apparmor = 1 ] && apparmor_round
    [ $has_auditd = 1 ] && auditd_round
    round=$((round + 1))
done
pass "micro rounds ran"

# The BPF programs' own cost per call, as the kernel times them
# (kernel.bpf_stats_enabled, which adds two clock reads per call: so a pass
# of its own, after the rounds, never mixed into the times above). Each
# operation's program (PREFIX + file_open, exec, connect) over 10 batches
# of the operation from each given cgroup in turn (bulwark-bench progtime),
# on one vCPU: a configuration's figure is its median batch.
profile() { # PREFIX CONFIG=CGROUP...
    pre=$1; shift
    for op in open exec connect; do
        case $op in open) p=${pre}file_open ;; *) p=$pre$op ;; esac
        per=$(($(iterations $op) / 10)); [ $per -ge 1 ] || per=1
        dirs=; names=
        for cc in "$@"; do dirs="$dirs /sys/fs/cgroup/bench/${cc#*=}"; names="$names ${cc%%=*}"; done
        if out=$(bulwark-bench --cpu 1 progtime $p 10 $op $per /srv/bench/allowed $dirs); then
            echo "$out" | awk -v p=$p -v names="$names" 'BEGIN { split(names, c, " ") }
                $1 == "cgroup" { for (i = 3; i < NF; i += 2) v[$i] = $(i + 1)
                    printf "BENCH: profile config=%s prog=%s calls=%d ns=%d mean=%.1f batches=%d\n", c[NR], p,
                           v["calls"], v["ns_per_call_median"], v["ns_per_call_mean"], v["batches"] }'
        else
            fail "progtime $op ($names)"
        fi
    done
}
if echo 1 >/proc/sys/kernel/bpf_stats_enabled; then
    bulwark-bench floor >$B/floor.out 2>&1 &
    fp=$!
    if wait_for $B/floor.out '^attached' 500; then
        micro floor plain >/dev/null
        profile floor_ floor=plain >$B/profile
    fi
    kill $fp; wait $fp
    if start_agent --policy-dir /scenario/micro/policies --inventory /scenario/micro/inventory.yaml \
        --events-file $B/events.jsonl $AGENT_ARGS; then
        # Twice, reporting the second: the first run of a code path pays
        # for the emulator translating it, whichever configuration is first.
        agents="unselected=unselected r10=r10 r1000=r1000 r10000=r10000"
        profile bw_ $agents >$B/profile.warmup
        grep 'BULWARK-TEST: FAIL' $B/profile.warmup
        profile bw_ $agents >>$B/profile
        stop_agent
    fi
    echo 0 >/proc/sys/kernel/bpf_stats_enabled
    cat $B/profile
    grep -q . $B/profile && pass "BPF programs profiled (bpf_stats)" || fail "BPF programs profiled (bpf_stats)"
else
    fail "kernel.bpf_stats_enabled can be set"
fi

# The LSM layer's time per call (bulwark-bench lsm: fentry/fexit on the
# security_*() functions, which run AppArmor's hooks and the BPF LSM's
# alike), in a pass of its own: the timer's probes are in every
# configuration here and in none of the rounds above. What an LSM adds to a
# hook, without the syscall's spread around it: the comparison with
# AppArmor rests on this.
lsm() { # CONFIG CGROUP [PREFIX]: the operations with the LSM layer timed
    for op in open exec spawn connect; do
        out=$(sh -c "${3:-} exec bulwark-bench --cgroup /sys/fs/cgroup/bench/$2 lsm $op $(iterations $op) /srv/bench/allowed") ||
            { fail "lsm $1 $op ran"; continue; }
        echo "$out" | awk -v r=$round -v c=$1 -v op=$op \
            '$1 == "hook" { printf "BENCH: lsm round=%s config=%s op=%s hook=%s calls=%s ns=%s\n", r, c, op, $2, $4, $6 }' |
            tee -a $B/lsm.txt
    done
}
round=1
while [ $round -le "${LSM_ROUNDS:-3}" ]; do
    case $((round % 3)) in
    0) order="none agent floor apparmor" ;;
    1) order="floor apparmor none agent" ;;
    2) order="agent none apparmor floor" ;;
    esac
    for c in $order; do
        case $c in
        none) lsm none plain ;;
        floor)
            bulwark-bench floor >$B/floor.out 2>&1 &
            fp=$!
            wait_for $B/floor.out '^attached' 500 && lsm floor plain
            kill $fp; wait $fp ;;
        agent)
            start_agent --policy-dir /scenario/micro/policies --inventory /scenario/micro/inventory.yaml \
                --events-file $B/events.jsonl $AGENT_ARGS || { fail "agent starts (lsm round $round)"; continue; }
            for a in unselected r10 r10000; do lsm $a $a; done
            stop_agent ;;
        apparmor)
            # The profile applies from the next exec on (attr/exec).
            [ $has_apparmor = 1 ] && lsm apparmor-10000 plain 'echo -n "exec bulwark-bench" >/proc/self/attr/exec &&' ;;
        esac
    done
    round=$((round + 1))
done
grep -q 'config=r10000 op=open hook=file_open' $B/lsm.txt && pass "LSM layer timed (fentry on security_*())" ||
    fail "LSM layer timed (fentry on security_*())"
fi

# PERF=1 (the default; PERF=0 leaves it out): the exec loop and the connect
# loop under Debian's perf (cpu-clock every 50 emulated µs, call graphs, the
# benchmark's processes only): where an exec's and a connect's time goes in
# each configuration, by kernel function, inclusive of what it calls (a BPF
# program with its helpers and map code, AppArmor's hook with its DFA).
if want perf && [ "${PERF:-1}" = 1 ]; then
echo "== perf: exec, connect"
echo 1 >/proc/sys/net/core/bpf_jit_kallsyms # BPF programs by name
echo -1 >/proc/sys/kernel/perf_event_paranoid
echo 0 >/proc/sys/kernel/kptr_restrict
perf_op() { # OP N CONFIG CGROUP [PREFIX]
    perf record -q -g -e cpu-clock -c 50000 -o $B/perf-$3-$1.data -- sh -c "${5:-} exec bulwark-bench \
        --cgroup /sys/fs/cgroup/bench/$4 micro $1 $2 /srv/bench/allowed" >$B/perf.out 2>&1 ||
        { fail "perf $3 $1"; cat $B/perf.out; return; }
    # The header's event count, from a report without call graphs (cheap).
    total=$(perf report -i $B/perf-$3-$1.data --stdio -g none --sort comm 2>/dev/null |
        sed -n 's/^# Event count (approx.): //p')
    perf report -i $B/perf-$3-$1.data --stdio -q --children -g none --sort sym -F overhead_children,overhead,sym 2>/dev/null |
        tr -d '%' | awk -v c=$3 -v op=$1 -v n=$2 -v t=$((total / 50000)) \
        '$1 >= 0.3 || $4 ~ /bpf|security_|apparmor|aa_|tomoyo|lsm|htab|trie|jhash|lru|percpu|nofault|d_path|prepend|cgroup_id/ { printf "BENCH: perf config=%s op=%s n=%s period_ns=50000 samples=%s sym=%s children_pct=%s self_pct=%s\n", c, op, n, t, $4, $1, $2 }'
    rm -f $B/perf-$3-$1.data
}
perf_ops() { # CONFIG CGROUP [PREFIX]
    perf_op exec $PERF_EXEC "$@"
    perf_op connect $PERF_CONNECT "$@"
}
# The first run pays for the emulator translating the code paths: not kept.
perf_ops warmup plain >/dev/null
perf_ops none plain
bulwark-bench floor >$B/floor.out 2>&1 &
fp=$!
wait_for $B/floor.out '^attached' 500 && perf_ops floor plain
kill $fp; wait $fp
if start_agent --policy-dir /scenario/micro/policies --inventory /scenario/micro/inventory.yaml \
    --events-file $B/events.jsonl $AGENT_ARGS; then
    for a in unselected r10 r10000; do perf_ops $a $a; done
    stop_agent
fi
[ $has_apparmor = 1 ] && perf_ops apparmor-10000 plain 'echo -n "exec bulwark-bench" >/proc/self/attr/exec &&'
fi

# settle SINK: asks for health events until the sink wrote nothing but the
# last health record in between: everything the kernel sent is then written
# or counted as lost.
# Leaves the last health record in $h.
settle() {
    last=-1
    i=0
    while [ $i -lt 120 ]; do
        n=$(grep -c '"event":"health"' "$AGENT_OUT")
        kill -USR1 $pid
        j=0
        while [ "$(grep -c '"event":"health"' "$AGENT_OUT")" -le "$n" ] && [ $j -lt 1000 ]; do sleep 0.01; j=$((j + 1)); done
        h=$(grep '"event":"health"' "$AGENT_OUT" | tail -1)
        w=$(echo "$h" | sed -n "s/.*\"sink_$1\":\"[a-z]* written=\([0-9]*\).*/\1/p")
        # Settled when only the previous health record was written since.
        [ -n "$w" ] && [ "$w" = "$((last + 1))" ] && return 0
        last=$w
        sleep 0.5
        i=$((i + 1))
    done
    fail "the $1 sink settles"
}

if want pipeline; then
echo "== event pipeline: file sink"
rm -f $B/events.jsonl
start_agent --policy-dir /scenario/micro/policies --inventory /scenario/micro/inventory.yaml \
    --events-file $B/events.jsonl --events-file-max-bytes 1073741824 $AGENT_ARGS
pid=$AGENT_PID
cpu0=$(awk '{print $14 + $15}' /proc/$pid/stat)
t0=$(ms)
out=$(bulwark-bench --cgroup /sys/fs/cgroup/bench/audit load /srv/bench/allowed "$LOAD_SECONDS")
ops=$(echo "$out" | sed -n 's/^ops //p')
secs=$(echo "$out" | sed -n 's/^seconds //p')
settle file
t1=$(ms)
cpu1=$(awk '{print $14 + $15}' /proc/$pid/stat)
rss_load=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/$pid/status)
written=$(grep -c '"hook":"file"' $B/events.jsonl)
num() { echo "$h" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
sinkf=$(echo "$h" | sed -n 's/.*"sink_file":"[a-z]* written=[0-9]* dropped_full=\([0-9]*\) dropped_down=\([0-9]*\).*/\1 \2/p')
emit "pipeline sink=file ops=$ops seconds=$secs written=$written kernel_dropped=$(num events_dropped) suppressed=$(num suppressed_total) sink_dropped_full=${sinkf% *} sink_dropped_down=${sinkf#* } audited=$(num audited) cpu_ticks=$((cpu1 - cpu0)) wall_ms=$((t1 - t0)) rss_kb=$rss_load"
# Both ways of waiting for the line, one after the other in the same boot:
# a reader woken by inotify (the reported figure: how a log shipper
# follows a file) and one spinning on the file (which takes one of the two
# emulated vCPUs from the agent it measures).
for wait in notify spin; do
    lat=$(bulwark-bench --cgroup /sys/fs/cgroup/bench/audit latency $B/events.jsonl /srv/bench/allowed "$LAT_COUNT" 1000 $wait | tr '\n' ' ')
    emit "latency sink=file wait=$wait $lat"
done
stop_agent
fi

if want pipeline; then
echo "== event pipeline: journald"
if command -v /lib/systemd/systemd-journald >/dev/null 2>&1; then
    mkdir -p /run/systemd/journal /etc/systemd
    # journald's own rate limit (10,000 per 30 s by default) would drop
    # what the agent delivered: off, to measure the agent's pipeline.
    printf '[Journal]\nStorage=volatile\nRateLimitBurst=0\n' >/etc/systemd/journald.conf
    /lib/systemd/systemd-journald >$B/journald.out 2>&1 &
    JPID=$!
    i=0; while [ ! -S /run/systemd/journal/socket ] && [ $i -lt 500 ]; do sleep 0.02; i=$((i + 1)); done
    start_agent --policy-dir /scenario/micro/policies --inventory /scenario/micro/inventory.yaml \
        --journald true $AGENT_ARGS --journald true
    pid=$AGENT_PID
    out=$(bulwark-bench --cgroup /sys/fs/cgroup/bench/audit load /srv/bench/allowed "$LOAD_SECONDS")
    ops=$(echo "$out" | sed -n 's/^ops //p')
    secs=$(echo "$out" | sed -n 's/^seconds //p')
    settle journald
    sinkj=$(echo "$h" | sed -n 's/.*"sink_journald":"[a-z]* written=\([0-9]*\) dropped_full=\([0-9]*\) dropped_down=\([0-9]*\).*/\1 \2 \3/p')
    set -- $sinkj
    # What journald stored, not only what was sent to it.
    stored=$(journalctl -q --no-pager -o cat BULWARK_HOOK=file 2>/dev/null | wc -l)
    emit "pipeline sink=journald ops=$ops seconds=$secs written=$stored sent=$1 kernel_dropped=$(num events_dropped) suppressed=$(num suppressed_total) sink_dropped_full=$2 sink_dropped_down=$3 audited=$(num audited)"
    stop_agent
    kill $JPID 2>/dev/null
fi
fi

if want footprint; then
echo "== footprint: 1,000 policies, 500 workloads"
w=0
while [ $w -lt 500 ]; do mkdir -p /sys/fs/cgroup/foot/w$w; w=$((w + 1)); done
start_agent --policy-dir /scenario/footprint/policies --inventory /scenario/footprint/inventory.yaml \
    --events-file $B/foot.jsonl $AGENT_ARGS
grep -q '^workloads 500$' "$AGENT_STATUS" && pass "footprint: 500 workloads selected" ||
    { fail "footprint: 500 workloads selected"; grep -v '^policy' "$AGENT_STATUS"; }
pid=$AGENT_PID
# The spare thread sizes the tries of rule sets written into spares and
# refills them in the background: measure once its queue is empty (asked
# by SIGUSR1, answered in the health record), as a node would run.
settled=0
for _ in $(seq 1 240); do
    kill -USR1 $pid
    sleep 0.5
    grep '"event":"health"' $B/foot.jsonl | tail -1 | grep -q 'pending=0 ' && { settled=1; break; }
done
[ $settled = 1 ] && pass "footprint: spare thread settled" || fail "footprint: spare thread settled"
cpu0=$(awk '{print $14 + $15}' /proc/$pid/stat)
sleep 5 # idle: what the agent costs with nothing happening, over 5 s
cpu1=$(awk '{print $14 + $15}' /proc/$pid/stat)
rss=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/$pid/status)
hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/$pid/status)
anon=$(sed -n 's/^RssAnon:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/$pid/status)
# Every map in the kernel (bulwarkd is the only BPF user here), inner
# tries included: the agent closes their fds once they are in an outer map.
bulwark-bench maps >$B/maps.txt || fail "footprint: bulwark-bench maps"
mapval() { sed -n "s/^$1 //p" $B/maps.txt; }
emit "footprint policies=1000 workloads=500 rss_kb=$rss rss_anon_kb=$anon hwm_kb=$hwm idle_cpu_ticks_5s=$((cpu1 - cpu0)) map_bytes=$(mapval map_bytes) maps=$(mapval maps) tries=$(mapval tries) trie_entries=$(mapval trie_entries) empty_trie_bytes=$(mapval empty_trie_bytes)"
stop_agent
fi

if want propagation; then
echo "== propagation"
mkdir -p $B/prop
# The node's other policies: 10, 1,000 and 10,000 rules and the Audit one.
# An apply reads them all again; what did not change is not compiled again.
cp /scenario/micro/policies/*.yaml $B/prop/
cp /scenario/propagate/off.yaml $B/prop/propagate.yaml
# The default rate limit here: a blocked open every 0.1 ms is no event load.
start_agent --policy-dir $B/prop --inventory /scenario/micro/inventory.yaml --events-file $B/prop.jsonl \
    --hook-socket none --journald false --syslog false
p=$(BENCH_SAMPLES=${BENCH_SAMPLES:-} bulwark-bench --cgroup /sys/fs/cgroup/bench/r10 propagate $B/prop \
    /scenario/propagate/on.yaml /scenario/propagate/off.yaml /srv/bench/propagate "$PROP_COUNT" "${PROP_PROBE_US:-1000}" 2>$B/prop-samples.txt |
    tr '\n' ' ')
[ -n "$p" ] && pass "propagation measured" || {
    fail "propagation measured"; cat $B/prop-samples.txt; grep -v '^policy' "$AGENT_STATUS"; cat "$AGENT_ERR"; tail -3 "$AGENT_OUT"; cat $B/prop/propagate.yaml
    bulwark-probe --cgroup /sys/fs/cgroup/bench/r10 open /srv/bench/propagate read
}
emit "propagate probe_us=${PROP_PROBE_US:-1000} $p"
# Where an apply's time went (the agent's applied records, the first one,
# at start, left out): medians of each part, in µs.
med() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print 0 }'; }
grep '"event":"applied"' $B/prop.jsonl | tail -n +2 >$B/applied.jsonl
parts=""
for f in apply_us parse_us plan_us publish_us compiled; do
    parts="$parts $f=$(sed -n "s/.*\"$f\":\([0-9]*\).*/\1/p" $B/applied.jsonl | med)"
done
parts="$parts walks=$(grep -c '"walked":1' $B/applied.jsonl) apply_max_us=$(sed -n 's/.*"apply_us":\([0-9]*\).*/\1/p' $B/applied.jsonl | sort -n | tail -1)"
emit "propagate_parts applies=$(wc -l <$B/applied.jsonl)$parts"
# BENCH_SAMPLES=1: every change as written and every apply as recorded, for
# bench/propagation-trace.py to tell a slow apply from a late start.
if [ -n "${BENCH_SAMPLES:-}" ]; then
    sed 's/^/PROPTRACE: /' $B/prop-samples.txt
    sed 's/^/PROPTRACE: /' $B/applied.jsonl
fi
# Once more with the probe every 0.1 ms: the workload retrying the refused
# open 10,000 times a second, each a blocked open the kernel judges and
# reports, on the same emulated CPU as the agent (reported, not a target).
p=$(bulwark-bench --cgroup /sys/fs/cgroup/bench/r10 propagate $B/prop /scenario/propagate/on.yaml \
    /scenario/propagate/off.yaml /srv/bench/propagate "$PROP_COUNT" 100 | tr '\n' ' ')
[ -n "$p" ] && pass "propagation measured, busy probe" || fail "propagation measured, busy probe"
emit "propagate_busy probe_us=100 $p"
stop_agent
fi

[ -n "${AUDITD_PID:-}" ] && kill $AUDITD_PID
finish
