#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# journald.sh FEEDER: the journald sink against a real systemd-journald.
#
# FEEDER is tests/sinks/journald-feeder (plain or ASan build). It puts
# records through the sink framework into a journald sink; this script
# starts journald, drives the feeder command by command, reads the entries
# back with "journalctl -o json --all" and compares every field byte for
# byte with what the feeder says it sent (python3 does the comparing).
#
# Which journald:
#  - As root with unshare(1) (the normal case), the test runs in a private
#    mount namespace with tmpfs on /run/systemd and /run/log: its journald
#    binds /run/systemd/journal/socket there (libsystemd only ever sends to
#    that path), keeps its journal in /run/log/journal, and a journald already
#    running on the machine is never seen nor touched. A drop-in in the
#    private /run/systemd/journald.conf.d makes it volatile, without rate
#    limit, kmsg or forwarding.
#  - Without a private namespace: if a journald already answers on the
#    standard socket, the test uses it and skips what would need stopping it
#    (the fault cases) or flooding it (the rate); otherwise it starts one on
#    the standard path (stock configuration), and stops only that one.
# journald is always stopped by the pid this script started, never by name.
#
# Cases: every field and PRIORITY of a blocked and an audited decision;
# hostile values (newlines, quotes, invalid UTF-8, control characters, a
# 4096-byte path, a forged "MESSAGE=" inside a value, an empty value);
# "journalctl BULWARK_POLICY=..." and "-p warning" filters; journald stopped
# mid-run (exactly the records sent while it was down are dropped_down,
# written + dropped = submitted, the loss record comes first after the
# restart, later records arrive, nothing crashes), twice (SIGTERM, SIGKILL);
# journald stalled (SIGSTOP: submitting never waits, the overflow is
# dropped_full, everything counted as written arrives); records/s.
# Prints "N passed, N failed" last; exit 77 when it cannot run at all.
set -uo pipefail

feeder=$(realpath "${1:?usage: journald.sh FEEDER}")
journald_bin=${JOURNALD:-/lib/systemd/systemd-journald}
socket=/run/systemd/journal/socket

skip() { echo "SKIP: $*"; echo "0 passed, 0 failed"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (journald writes /run)"
[ -x "$journald_bin" ] || skip "no $journald_bin"
command -v journalctl >/dev/null || skip "no journalctl"
command -v python3 >/dev/null || skip "no python3 to compare entries"

if [ -z "${BW_JOURNALD_TEST_MODE:-}" ]; then
    if unshare -m --propagation private true 2>/dev/null; then
        BW_JOURNALD_TEST_MODE=private exec unshare -m --propagation private "$BASH" "$0" "$@"
    fi
    BW_JOURNALD_TEST_MODE=shared
fi
mode=$BW_JOURNALD_TEST_MODE

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAILED: $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

dir=$(mktemp -d /tmp/bw-journald.XXXXXX)
jpid= fpid= made_journal_dir= made_runtime_dir=
cleanup() {
    exec 3>&- 4<&-
    [ -n "$fpid" ] && kill "$fpid" 2>/dev/null && wait "$fpid" 2>/dev/null
    stop_journald
    [ -n "$made_journal_dir" ] && rm -rf /run/systemd/journal
    [ -n "$made_runtime_dir" ] && rm -rf /run/log/journal
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
trap '' PIPE # a dead feeder makes "echo >&3" fail, not kill this script

# Bounded poll: COND is re-evaluated every 50 ms for at most SECONDS.
wait_for() {
    local seconds=$1; shift
    local end=$((SECONDS + seconds))
    while ! "$@"; do
        [ "$SECONDS" -ge "$end" ] && return 1
        sleep 0.05
    done
}

probe() { "$feeder" probe; }
journald_gone() { ! kill -0 "$jpid" 2>/dev/null; }

start_journald() {
    SYSTEMD_LOG_TARGET=console "$journald_bin" 2>>"$dir/journald.err" &
    jpid=$!
    wait_for 20 probe || { echo "journald did not come up:"; cat "$dir/journald.err"; return 1; }
}

# stderr: bash's "Killed" notice for the SIGKILL round is expected.
stop_journald() {
    [ -n "$jpid" ] || return 0
    kill -"${1:-TERM}" "$jpid"
    kill -CONT "$jpid" # in case a failed check left it stopped
    wait_for 10 journald_gone || kill -KILL "$jpid"
    wait "$jpid"
    jpid=
} 2>/dev/null

jctl=(journalctl --no-pager -q)
case $mode in
private)
    mkdir -p /run/systemd /run/log
    mount -t tmpfs -o mode=0755,size=512m bw-journald-test /run/systemd || skip "cannot mount tmpfs"
    mount -t tmpfs -o mode=0755,size=512m bw-journald-test /run/log || skip "cannot mount tmpfs"
    mkdir -p /run/systemd/journal /run/systemd/journald.conf.d
    cat >/run/systemd/journald.conf.d/bulwark-test.conf <<'EOF'
[Journal]
Storage=volatile
RateLimitBurst=0
ReadKMsg=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
EOF
    start_journald || { bad "journald starts"; echo "$pass passed, $fail failed"; exit 1; }
    jctl+=(-D /run/log/journal)
    own=1
    ;;
shared)
    if probe; then
        echo "a journald already runs on $socket: using it, without the fault case and the rate"
        own=
    else
        # What this creates it removes again; a /var/log/journal that
        # exists gets the entries only after a "journalctl --flush".
        [ -d /run/systemd/journal ] || made_journal_dir=1
        [ -d /run/log/journal ] || made_runtime_dir=1
        mkdir -p /run/systemd/journal
        start_journald || { bad "journald starts"; echo "$pass passed, $fail failed"; exit 1; }
        own=1
    fi
    ;;
esac
echo "mode: $mode, journald pid: ${jpid:-not ours}"

run="t$(date +%s%N)x$$"
mkfifo "$dir/cmd" "$dir/reply"
"$feeder" run "$run" "$dir/expect" 4096 <"$dir/cmd" >"$dir/reply" 2>"$dir/feeder.err" &
fpid=$!
exec 3>"$dir/cmd" 4<"$dir/reply"

# Sends one command, puts the one-line answer in $reply.
reply=
feed() {
    reply=
    echo "$*" >&3 || { echo "feeder gone (command $*)"; return 1; }
    read -r -t 120 reply <&4 || { echo "no answer to: $*"; return 1; }
}
stat_of() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$reply"; }
# "ok FIRST LAST USEC" (the answer to send) -> "FIRST-LAST"
range_of() { local _ok first last _us; read -r _ok first last _us <<<"$1"; echo "$first-$last"; }

# The entries of this run matching extra filters, as JSON lines.
entries() { "${jctl[@]}" -o json --all SYSLOG_IDENTIFIER=bulwarkd "BULWARK_TESTRUN=$run" "$@"; }
count() { entries "$@" | wc -l; }
count_is() { local want=$1; shift; [ "$(count "$@")" -eq "$want" ]; }

# compare.py EXPECT JOURNAL_JSON PRESENT_SEQS ABSENT_SEQS: every record in
# PRESENT_SEQS ("1-23,74-103") is in the journal once, with every field the
# feeder described, byte for byte; none of ABSENT_SEQS is.
cat >"$dir/compare.py" <<'EOF'
import json, sys

def seqs(spec):
    out = set()
    for part in filter(None, spec.split(",")):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out

def raw(v):
    # journalctl -o json: a string, or an array of byte values when the
    # value is not printable UTF-8; a field sent twice becomes a list.
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, list) and all(isinstance(x, int) for x in v):
        return bytes(v)
    return v

expect = {}
for line in open(sys.argv[1]):
    seq, *fields = line.split()
    expect[int(seq)] = {k: bytes.fromhex(h) for k, h in (f.split("=", 1) for f in fields)}
present, absent = seqs(sys.argv[3]), seqs(sys.argv[4])
got = {}
for line in open(sys.argv[2]):
    e = json.loads(line)
    s = int(raw(e["BULWARK_SEQ"]))
    got.setdefault(s, []).append(e)
ok = True
def fail(msg):
    global ok
    ok = False
    print("  " + msg)
for s in sorted(present):
    es = got.get(s, [])
    if len(es) != 1:
        fail(f"seq {s}: {len(es)} entries, want 1")
        continue
    e = es[0]
    for k, v in expect[s].items():
        if k not in e:
            fail(f"seq {s}: no {k}")
        elif raw(e[k]) != v:
            fail(f"seq {s}: {k} = {raw(e[k])[:80]!r}, want {v[:80]!r}")
    extra = [k for k in e if k.startswith("BULWARK_") and k not in expect[s]]
    if extra:
        fail(f"seq {s}: unexpected fields {extra}")
    for k in ("CODE_FILE", "CODE_LINE", "CODE_FUNC"):
        if k in e:
            fail(f"seq {s}: has {k}")
for s in sorted(absent & set(got)):
    fail(f"seq {s}: present, but was sent while journald was down")
print("  compared %d entries" % len(present))
sys.exit(0 if ok else 1)
EOF
compare() { entries >"$dir/journal.json"; python3 "$dir/compare.py" "$dir/expect" "$dir/journal.json" "$@"; }

# check_fields: what the documentation promises, written out here rather
# than taken from the feeder.
cat >"$dir/fields.py" <<'EOF'
import json, sys
run = sys.argv[2]
def raw(v):
    return v.encode() if isinstance(v, str) else bytes(v)
by = {int(e["BULWARK_SEQ"]): e for e in map(json.loads, open(sys.argv[1]))}
ok = True
def want(seq, k, v):
    global ok
    e = by.get(seq, {})
    if k not in e or raw(e[k]) != v:
        ok = False
        print(f"  seq {seq}: {k} = {raw(e[k])[:100] if k in e else None!r}, want {v[:100]!r}")
for seq, d, prio, mode in ((1, "blocked", b"4", b"Block"), (2, "audited", b"5", b"Audit")):
    want(seq, "PRIORITY", prio)
    want(seq, "MESSAGE", f"{d} exec of /bin/sh by pid 412 (nginx) in prod/web-7f9c: policy lock-shells".encode())
    want(seq, "SYSLOG_IDENTIFIER", b"bulwarkd")
    for k, v in (("KIND", b"decision"), ("TIME", b"2026-11-21T19:50:17.139976600Z"), ("HOOK", b"exec"),
                 ("DECISION", d.encode()), ("MODE", mode),
                 ("POLICY", f"ClusterBulwarkPolicy lock-shells-{run}".encode()),
                 ("RULE", b"exec.deny[0] path /bin/sh"), ("PID", b"412"), ("PPID", b"401"), ("UID", b"33"),
                 ("COMM", b"nginx"), ("EXE", b"/usr/bin/dash"), ("PARENT_EXE", b"/usr/sbin/nginx"),
                 ("TARGET", b"/bin/sh"), ("ACCESS", b"any"), ("CGROUP_ID", b"7163"),
                 ("CGROUP_PATH", b"/kubepods/burstable/pod1234/cri-containerd-abcd"), ("NAMESPACE", b"prod"),
                 ("POD", b"web-7f9c"), ("CONTAINER", b"nginx"), ("PATH_UNRESOLVED", b"-36"),
                 ("MATCHED_BY_NAME", b"1"), ("TESTRUN", run.encode())):
        want(seq, "BULWARK_" + k, v)
# The hostile record.
want(3, "PRIORITY", b"4")
want(3, "MESSAGE", b'blocked exec of "/tmp/x\ny" by pid 1 (\xff\xfe): policy "p"\nsecond line')
want(3, "BULWARK_RULE", b"exec.deny[0] path \"/tmp/x\\ny\" = 'quoted'")
want(3, "BULWARK_COMM", b"\xc3\x28\xa0\xa1 \x80\xbf\xed\xa0\x80\xf0\x28\x8c\x28")
want(3, "BULWARK_EXE", b"/" + b"a" * 4093 + b"/x")
want(3, "BULWARK_PARENT_EXE", b"/usr/bin/p\tt\x01\x1b[31m\x7f")
want(3, "BULWARK_TARGET", b"/tmp/x\ny\n")
want(3, "BULWARK_CGROUP_PATH", b"=starts with equals=\r\n=MESSAGE=forged\n")
want(3, "BULWARK_NAMESPACE", b"")
want(3, "BULWARK_POD", b"\n")
want(3, "BULWARK_CONTAINER", "café ✓ 🐳".encode())
sys.exit(0 if ok else 1)
EOF

# ---- records with every field, and hostile ones ----------------------------
feed pid && fpid_seen=$reply
check "feeder answers (pid $fpid_seen)" [ "$fpid_seen" = "$fpid" ]
feed full blocked
feed full audited
feed hostile
feed send 20 A
feed flush
check "flush" [ "$reply" = ok ]
feed stats
echo "  $reply"
check "23 written, nothing dropped" [ "$(stat_of written)" = 23 -a "$(stat_of dropped_full)" = 0 \
    -a "$(stat_of dropped_down)" = 0 -a "$(stat_of write_errors)" = 0 ]
check "23 entries reach the journal" wait_for 20 count_is 23
check "every field of every entry, byte for byte" compare 1-23 ""
entries >"$dir/journal.json"
check "documented fields and PRIORITY (4 blocked, 5 audited), hostile values intact" \
    python3 "$dir/fields.py" "$dir/journal.json" "$run"
long_is_null() { "${jctl[@]}" -o json "BULWARK_TESTRUN=$run" BULWARK_SEQ=3 | grep -q '"BULWARK_EXE":null'; }
check "without --all, journalctl -o json shows the 4096-byte field as null (why the docs say -a)" long_is_null

# ---- filters ---------------------------------------------------------------
n=$("${jctl[@]}" -o json "BULWARK_POLICY=ClusterBulwarkPolicy lock-shells-$run" | wc -l)
check "journalctl BULWARK_POLICY=\"ClusterBulwarkPolicy lock-shells-...\" finds exactly its 2 entries" [ "$n" = 2 ]
seqs=$("${jctl[@]}" -o json -p warning SYSLOG_IDENTIFIER=bulwarkd "BULWARK_TESTRUN=$run" |
    python3 -c 'import json,sys; print(" ".join(sorted(json.loads(l)["BULWARK_SEQ"] for l in sys.stdin)))')
check "journalctl -p warning: the blocked entries (1 and 3), not the audited ones [$seqs]" [ "$seqs" = "1 3" ]
n=$("${jctl[@]}" -o cat BULWARK_DECISION=audited BULWARK_HOOK=exec "BULWARK_TESTRUN=$run" | wc -l)
check "journalctl BULWARK_DECISION=audited BULWARK_HOOK=exec: 1 entry" [ "$n" = 1 ]

# ---- journald stopped mid-run ----------------------------------------------
# Twice: stopped (SIGTERM) with its socket removed, then crashed (SIGKILL)
# with its socket left behind. Each round sends 50 while
# journald is down and 30 after it is back; the counters are cumulative.
present=1-23 absent= rounds=0
fault_round() {
    local sig=$1 down=$2 up=$3 w0 dd0 we0 w dd df sub b_range c_range
    feed stats
    w0=$(stat_of written) dd0=$(stat_of dropped_down) we0=$(stat_of write_errors)
    stop_journald "$sig"
    check "[$sig] journald stopped" [ -z "$jpid" ]
    if [ "$sig" = TERM ]; then
        # No socket at all (ENOENT), which libsystemd reports as success:
        # the sink must notice. After SIGKILL the stale socket stays
        # (ECONNREFUSED).
        rm -f "$socket"
    fi
    feed send 50 "$down"; b_range=$(range_of "$reply")
    feed flush
    check "[$sig] flush while journald is down" [ "$reply" = ok ]
    feed stats
    echo "  $reply"
    check "[$sig] while down: the 50 sent are dropped_down, 1 write error, nothing else moves" \
        [ "$(stat_of written)" = "$w0" -a "$(stat_of dropped_down)" = $((dd0 + 50)) \
          -a "$(stat_of write_errors)" = $((we0 + 1)) -a "$(stat_of dropped_full)" = 0 -a "$(stat_of up)" = 0 ]
    check "[$sig] feeder still running" kill -0 "$fpid"

    start_journald
    check "[$sig] journald restarted" probe
    feed wait-retry
    feed send 30 "$up"; c_range=$(range_of "$reply")
    feed flush
    feed stats
    echo "  $reply"
    rounds=$((rounds + 1))
    w=$(stat_of written) dd=$(stat_of dropped_down) df=$(stat_of dropped_full) sub=$(stat_of submitted)
    check "[$sig] after restart: 30 more written, reconnects=$rounds, up" \
        [ "$w" = $((w0 + 30)) -a "$dd" = $((dd0 + 50)) -a "$(stat_of reconnects)" = $rounds -a "$(stat_of up)" = 1 ]
    check "[$sig] written + dropped = submitted ($w + $dd + $df = $sub)" [ $((w + dd + df)) = "$sub" ]
    check "[$sig] the 30 sent after the restart reach the journal" wait_for 20 count_is 30 "BULWARK_PHASE=$up"
    present+=,$c_range absent+=${absent:+,}$b_range
    check "[$sig] every entry but the ones sent while down is there, byte for byte; none of those ($b_range)" \
        compare "$present" "$absent"
    "${jctl[@]}" -o json "_PID=$fpid" >"$dir/after.json"
    check "[$sig] a loss record (KIND=loss SINK=journald DROPPED=50, PRIORITY 3) is the first entry after the restart" \
        python3 - "$dir/after.json" "$rounds" "${c_range%-*}" <<'EOF'
import json, sys
es = [json.loads(l) for l in open(sys.argv[1])]
loss = [i for i, e in enumerate(es) if e.get("BULWARK_KIND") == "loss"]
ok = len(loss) == int(sys.argv[2])
if ok:
    e, nxt = es[loss[-1]], es[loss[-1] + 1] if loss[-1] + 1 < len(es) else {}
    ok = (e.get("BULWARK_SINK"), e.get("BULWARK_DROPPED"), e.get("PRIORITY"), nxt.get("BULWARK_SEQ")) == \
         ("journald", "50", "3", sys.argv[3])
    print("  " + e.get("MESSAGE", ""))
sys.exit(0 if ok else 1)
EOF
}
# journald alive but stalled (SIGSTOP): the sink thread blocks in sendmsg,
# its queue (4096) fills, and what does not fit is dropped_full, while
# submitting never waits. After SIGCONT, every record counted as written is
# in the journal (the socket kept its queue), the ones counted as dropped
# are not, and a loss record gives their number.
stall_round() {
    local n=10000 w0 df0 dd0 range first last us x y
    feed stats
    w0=$(stat_of written) df0=$(stat_of dropped_full) dd0=$(stat_of dropped_down)
    kill -STOP "$jpid"
    feed send $n S
    read -r _ first last us <<<"$reply"
    check "[STOP] submitting $n records to a stalled journald does not wait (${us} us)" [ "$us" -lt 2000000 ]
    kill -CONT "$jpid"
    feed flush
    check "[STOP] flush after SIGCONT" [ "$reply" = ok ]
    feed stats
    echo "  $reply"
    x=$(( $(stat_of written) - w0 )) y=$(( $(stat_of dropped_full) - df0 ))
    check "[STOP] some dropped_full ($y), none dropped_down, written + dropped_full = $n" \
        [ "$y" -gt 0 -a "$(stat_of dropped_down)" = "$dd0" -a $((x + y)) = $n ]
    check "[STOP] the $x written reach the journal" wait_for 60 count_is "$x" BULWARK_PHASE=S
    present+=,$first-$((first + x - 1)) absent+=,$((first + x))-$last
    check "[STOP] exactly the first $x are there, byte for byte; the $y dropped are not" compare "$present" "$absent"
    n_loss=$("${jctl[@]}" -o json "_PID=$fpid" BULWARK_KIND=loss "BULWARK_DROPPED=$y" | wc -l)
    check "[STOP] a loss record says DROPPED=$y" [ "$n_loss" = 1 ]
}

if [ -n "$own" ]; then
    fault_round TERM B C
    fault_round KILL D E
    stall_round
else
    echo "skipped: journald stopped and stalled mid-run (the journald here is not ours to stop)"
fi

# ---- rate ------------------------------------------------------------------
if [ "$mode" = private ]; then
    n=20000
    feed stats; before=$(stat_of written) full_before=$(stat_of dropped_full) down_before=$(stat_of dropped_down)
    feed bench $n
    echo "  into journald through the sink: $reply"
    rate=$(sed -n 's/.*rate=\([0-9]*\).*/\1/p' <<<"$reply")
    feed stats
    check "bench: $n written, nothing dropped" [ $(( $(stat_of written) - before )) = $n \
        -a "$(stat_of dropped_full)" = "$full_before" -a "$(stat_of dropped_down)" = "$down_before" ]
    t0=$SECONDS
    check "bench: all $n entries are in the journal" wait_for 120 count_is $n BULWARK_PHASE=bench
    echo "  records/s into journald: ${rate:-?} (journal complete $((SECONDS - t0)) s after the last send)"
fi

feed quit
wait "$fpid"; rc=$?
fpid=
check "feeder exits cleanly (status $rc)" [ "$rc" = 0 ]
if [ -s "$dir/feeder.err" ]; then echo "feeder stderr:"; cat "$dir/feeder.err"; fi
no_sanitizer_report() { ! grep -q Sanitizer "$dir/feeder.err"; }
check "feeder printed no sanitizer report" no_sanitizer_report
if [ "$fail" -gt 0 ] && [ -s "$dir/journald.err" ]; then echo "journald stderr:"; tail -20 "$dir/journald.err"; fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
