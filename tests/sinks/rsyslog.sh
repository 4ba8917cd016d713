#!/usr/bin/env bash
# The syslog sink against a real rsyslogd.
#
#   rsyslog.sh SINK-FEEDER [RSYSLOG-CONF-IN]
#
# Starts private rsyslogd instances (own config, a socket in a temp dir,
# loopback ports picked at run time), feeds them records through the sink
# framework with tests/sinks/sink-feeder, and reads back what rsyslog wrote:
# every field, PRI, APP-NAME, PROCID, MSGID, HOSTNAME, TIMESTAMP, the SD
# escaping (as raw bytes and as rsyslog parsed it) and the length bound.
# Then the faults: socket missing, collector refusing, collector killed
# mid-run and restarted, where the sink's counters must add up exactly.
#
# Every wait is a bounded poll; rsyslogd instances are stopped by pid. The
# last line is "N passed, N failed". Exit 77 (skipped) without rsyslogd.
set -uo pipefail

feeder=${1:?usage: rsyslog.sh SINK-FEEDER [RSYSLOG-CONF-IN]}
here=$(cd "$(dirname "$0")" && pwd)
conf_in=${2:-$here/rsyslog.conf.in}
rsyslogd=$(command -v rsyslogd || echo /usr/sbin/rsyslogd)
if [ ! -x "$rsyslogd" ]; then
    echo "rsyslog.sh: rsyslogd not installed (Debian package rsyslog); skipping"
    exit 77
fi
command -v python3 >/dev/null || { echo "rsyslog.sh: needs python3"; exit 2; }

tmp=$(mktemp -d /tmp/bw-rsyslog.XXXXXX)
declare -A rs_pids=()
passed=0
failed=0

cleanup() {
    local d
    for d in "${!rs_pids[@]}"; do
        kill "${rs_pids[$d]}" 2>/dev/null
        wait "${rs_pids[$d]}" 2>/dev/null
    done
    if [ "$failed" -eq 0 ] && [ -z "${BW_KEEP_TMP:-}" ]; then
        rm -rf "$tmp"
    else
        echo "rsyslog.sh: kept $tmp"
    fi
}
trap cleanup EXIT
# A feeder that dies must fail a check, not kill this script with SIGPIPE.
trap '' PIPE

ok() { echo "ok - $*"; passed=$((passed + 1)); }
fail() { echo "FAIL - $*"; failed=$((failed + 1)); }

# ---- helpers in Python: ports, probes, waiting, and the checker ----
cat >"$tmp/helper.py" <<'PY'
import json, re, socket, sys, time, datetime

MARKER = "...[truncated]"
SD_ID = "bulwark@32473"

def free_port(kind):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port

def lines(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    out = []
    for l in data.split(b"\n"):
        if l.strip():
            out.append(json.loads(l.decode("utf-8")))
    return out

def send_probe(where, tag):
    kind, _, addr = where.partition(":")
    msg = ("<14>1 - - probe - - - %s" % tag).encode()
    try:
        if kind == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.connect(addr)
            s.send(msg)
        elif kind == "tcp":
            s = socket.create_connection(("127.0.0.1", int(addr)), timeout=1)
            s.sendall(b"%d " % len(msg) + msg)
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(msg, ("127.0.0.1", int(addr)))
        s.close()
    except OSError:
        pass

def ready(out, tag, wheres, timeout=20.0):
    """Probes every input until rsyslog has written a probe from each."""
    deadline = time.monotonic() + timeout
    pending = set(wheres)
    while pending and time.monotonic() < deadline:
        for w in list(pending):
            send_probe(w, "%s-%s" % (tag, w.split(":")[0]))
        time.sleep(0.05)
        seen = {l["msg"] for l in lines(out) if l["app"] == "probe"}
        pending = {w for w in pending if "%s-%s" % (tag, w.split(":")[0]) not in seen}
    return not pending

def ours(out):
    return [l for l in lines(out) if l["app"] == "bulwarkd"]

def wait_lines(out, n, timeout):
    deadline = time.monotonic() + timeout
    while True:
        got = len(ours(out))
        if got >= n or time.monotonic() >= deadline:
            return got
        time.sleep(0.02)

# ---- an RFC 5424 reader, from the RFC ----
HDR = re.compile(r'^<(\d{1,3})>1 (\S{1,40}) ([!-~]{1,255}) ([!-~]{1,48}) ([!-~]{1,128}) ([!-~]{1,32}) ')
NAME = re.compile(r'[!#-<>-\\^-~]{1,32}')  # PRINTUSASCII but = ] " (and SP)

def parse(raw):
    m = HDR.match(raw)
    if not m:
        raise ValueError("header")
    pri, ts, host, app, procid, msgid = m.groups()
    rest = raw[m.end():]
    params = []
    if rest.startswith("-"):
        i, sd = 1, "-"
    else:
        if not rest.startswith("[" + SD_ID):
            raise ValueError("SD-ID")
        i = 1 + len(SD_ID)
        while rest[i] == " ":
            i += 1
            n = NAME.match(rest, i)
            if not n or rest[n.end():n.end() + 2] != '="':
                raise ValueError("PARAM-NAME at %d" % i)
            i = n.end() + 2
            v = []
            while rest[i] != '"':
                c = rest[i]
                if c == "]":
                    raise ValueError("unescaped ] in PARAM-VALUE")
                if c == "\\":
                    d = rest[i + 1]
                    if d in '"\\]':
                        v.append(d)
                        i += 2
                    elif d == "x" and re.fullmatch(r"[0-9a-f]{2}", rest[i + 2:i + 4]):
                        cp = int(rest[i + 2:i + 4], 16)
                        if not (cp < 0x20 or 0x7f <= cp <= 0x9f):
                            raise ValueError("\\x escape of a non-control")
                        v.append(chr(cp))
                        i += 4
                    else:
                        raise ValueError("stray backslash")
                else:
                    v.append(c)
                    i += 1
            i += 1
            params.append((n.group(0), "".join(v)))
        if rest[i] != "]" or not params:
            raise ValueError("SD-ELEMENT end")
        i += 1
        sd = rest[:i]
    if i == len(rest):
        msg = None
    elif rest[i] == " " and i + 1 < len(rest):
        msg = rest[i + 1:]
    else:
        raise ValueError("MSG separator")
    return dict(pri=int(pri), ts=ts, host=host, app=app, procid=procid, msgid=msgid, sd=sd,
                params=params, msg=msg)

def is_control(c):
    o = ord(c)
    return o < 0x20 or 0x7f <= o <= 0x9f

def want_value(b):
    # RFC 5424 wants UTF-8: ill-formed parts become U+FFFD (Python's
    # decoder replaces maximal subparts, like the sink)
    return bytes.fromhex(b).decode("utf-8", "replace")

def want_msg(b):
    return "".join("\\x%02x" % ord(c) if is_control(c) else c for c in want_value(b))

def same_or_cut(got, want):
    if got == want:
        return "whole"
    if got.endswith(MARKER) and want.startswith(got[:-len(MARKER)]) and len(got) - len(MARKER) < len(want):
        return "cut"
    return None

def check(out, expect_path, feeder_pid, hostname, facility, max_message, need_seqs):
    errors = []
    def err(s):
        if len(errors) < 20:
            errors.append(s)
    expected = {}
    with open(expect_path) as f:
        for l in f:
            e = json.loads(l)
            expected[e["seq"]] = e
    received, losses, loss_dropped, cuts = [], 0, 0, 0
    for l in ours(out):
        raw = l["raw"]
        try:
            p = parse(raw)
        except (ValueError, IndexError) as x:
            err("unparsable (%s): %r" % (x, raw[:200]))
            continue
        if "\n" in raw or "\r" in raw or any(is_control(c) for c in raw):
            err("control character in %r" % raw[:200])
        if len(raw.encode("utf-8")) > max_message:
            err("%d bytes > %d" % (len(raw.encode("utf-8")), max_message))
        # rsyslog's reading agrees with ours
        for k, v in (("pri", str(p["pri"])), ("hostname", p["host"]), ("app", p["app"]),
                     ("procid", p["procid"]), ("msgid", p["msgid"]), ("sd", p["sd"]),
                     ("msg", p["msg"] or "")):
            if l[k] != v:
                err("rsyslog read %s as %r, the message has %r" % (k, l[k][:100], v[:100]))
        if p["app"] != "bulwarkd" or p["procid"] != str(feeder_pid) or p["host"] != hostname:
            err("header %r" % raw[:120])
        params = dict(p["params"])
        if p["msgid"] == "loss":
            losses += 1
            if p["pri"] != facility * 8 + 3:
                err("loss record PRI %d" % p["pri"])
            if params.get("event") != "sink-recovered" or params.get("sink") != "syslog":
                err("loss record %r" % raw)
            loss_dropped += int(params.get("dropped", "0"))
            continue
        seq = int(params.get("pid", "0")) - 100000
        e = expected.get(seq)
        if not e:
            err("no such record: %r" % raw[:200])
            continue
        received.append(seq)
        if p["pri"] != facility * 8 + (e["priority"] & 7):
            err("seq %d: PRI %d" % (seq, p["pri"]))
        t = e["time_ns"]
        want_ts = datetime.datetime.fromtimestamp(t // 10**9, datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%S") + ".%06dZ" % (t % 10**9 // 1000)
        if p["ts"] != want_ts:
            err("seq %d: TIMESTAMP %s, want %s" % (seq, p["ts"], want_ts))
        if datetime.datetime.fromisoformat(l["time"]) != datetime.datetime.fromisoformat(want_ts[:-1] + "+00:00"):
            err("seq %d: rsyslog's time %s, want %s" % (seq, l["time"], want_ts))
        fields = {bytes.fromhex(k).decode("latin-1"): v for k, v in e["fields"]}
        want_msgid = "%s-%s" % (want_value(fields["HOOK"]), want_value(fields["DECISION"]))
        if p["msgid"] != want_msgid:
            err("seq %d: MSGID %s, want %s" % (seq, p["msgid"], want_msgid))
        if len(p["params"]) != len(e["fields"]):
            err("seq %d: %d SD-PARAMs, want %d" % (seq, len(p["params"]), len(e["fields"])))
        record_cut = False
        for (name, got), (k, v) in zip(p["params"], e["fields"]):
            key = bytes.fromhex(k).decode("utf-8", "replace")
            want_name = "".join(c.lower() if c.isascii() and "!" <= c <= "~" and c not in '=]"' else "_"
                                for c in bytes.fromhex(k).decode("latin-1"))[:32]
            if name != want_name:
                err("seq %d: name %r for %r" % (seq, name, key))
            how = same_or_cut(got, want_value(v))
            if how is None:
                err("seq %d: %s=%r, want %r" % (seq, name, got[:120], want_value(v)[:120]))
            record_cut |= how == "cut"
        how = same_or_cut(p["msg"] or "", want_msg(e["message"]))
        if how is None:
            err("seq %d: MSG %r, want %r" % (seq, p["msg"], want_msg(e["message"])))
        record_cut |= how == "cut"
        if record_cut:
            cuts += 1
            if len(raw.encode("utf-8")) < max_message - 64:
                err("seq %d: cut at %d bytes, the limit is %d" % (seq, len(raw.encode()), max_message))
    if len(set(received)) != len(received):
        err("duplicates")
    if need_seqs is not None:
        missing = sorted(set(need_seqs) - set(received))
        extra = sorted(set(received) - set(need_seqs))
        if missing or extra:
            err("missing %s extra %s" % (missing[:10], extra[:10]))
    for e in errors:
        print("  " + e, file=sys.stderr)
    print("received=%d loss_records=%d loss_dropped=%d cut=%d seqs=%s" % (
        len(received), losses, loss_dropped, cuts, ranges(sorted(received))))
    return not errors

def ranges(s):
    out, i = [], 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[j] + 1:
            j += 1
        out.append("%d-%d" % (s[i], s[j]) if j > i else "%d" % s[i])
        i = j + 1
    return ",".join(out) or "none"

def seqs(spec):
    out = []
    for part in spec.split(","):
        if part == "none":
            continue
        a, _, b = part.partition("-")
        out += range(int(a), int(b or a) + 1)
    return out

cmd = sys.argv[1]
if cmd == "port":
    print(free_port(sys.argv[2]))
elif cmd == "ready":
    sys.exit(0 if ready(sys.argv[2], sys.argv[3], sys.argv[4:]) else 1)
elif cmd == "wait":
    print(wait_lines(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
elif cmd == "check":
    out, expect, pid, host, fac, maxm, need = sys.argv[2:9]
    sys.exit(0 if check(out, expect, int(pid), host, int(fac), int(maxm),
                        None if need == "any" else seqs(need)) else 1)
PY
helper() { python3 "$tmp/helper.py" "$@"; }

# ---- rsyslogd ----
# new_collector NAME: a directory with a config, ports and socket of its own
new_collector() {
    local d=$tmp/$1
    mkdir -p "$d"
    local tcp udp
    tcp=$(helper port tcp)
    udp=$(helper port udp)
    echo "$tcp" >"$d/tcp_port"
    echo "$udp" >"$d/udp_port"
    sed -e "s|@DIR@|$d|g" -e "s|@TCP_PORT@|$tcp|g" -e "s|@UDP_PORT@|$udp|g" "$conf_in" >"$d/rsyslog.conf"
}

# start_collector NAME: runs rsyslogd and waits until each input has
# delivered a probe to the output file
start_collector() {
    local d=$tmp/$1
    "$rsyslogd" -n -f "$d/rsyslog.conf" -i "$d/rsyslog.pid" >>"$d/rsyslogd.log" 2>&1 &
    rs_pids[$1]=$!
    if helper ready "$d/out.jsonl" "ready-$RANDOM" "unix:$d/log.sock" "tcp:$(cat "$d/tcp_port")" \
        "udp:$(cat "$d/udp_port")"; then
        return 0
    fi
    echo "rsyslogd did not come up:" >&2
    cat "$d/rsyslogd.log" >&2
    return 1
}

stop_collector() { # NAME [SIGNAL]
    local pid=${rs_pids[$1]:-}
    [ -n "$pid" ] || return 0
    kill "-${2:-TERM}" "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    unset "rs_pids[$1]"
}

stat_of() { # KEY STATS-LINE: the number, or -1 when the line lacks it
    local v
    v=$(sed -n "s/.*\\b$1=\\([0-9][0-9]*\\).*/\\1/p" <<<"$2")
    echo "${v:--1}"
}

sum_adds_up() { # STATS-LINE: submitted = written + dropped_full + dropped_down
    local s=$1
    [ "$(stat_of submitted "$s")" -eq $(($(stat_of written "$s") + $(stat_of dropped_full "$s") + \
        $(stat_of dropped_down "$s"))) ]
}

facility_code() { # name -> code
    case $1 in
    auth) echo 4 ;; authpriv) echo 10 ;; daemon) echo 3 ;; local3) echo 19 ;; user) echo 1 ;;
    esac
}

# ---- 1. happy paths: every field through each transport ----
happy() { # TRANSPORT FACILITY MAX
    local t=$1 fac=$2 max=$3 name=happy-$1 d args final pid n rc
    new_collector "$name"
    d=$tmp/$name
    start_collector "$name" || { fail "$t: rsyslogd ready"; return; }
    case $t in
    unix) args=(--path "$d/log.sock") ;;
    tcp) args=(--host 127.0.0.1 --port "$(cat "$d/tcp_port")") ;;
    udp) args=(--host localhost --port "$(cat "$d/udp_port")") ;;
    esac
    printf 'full\nhostile\nsend 50\nflush\nquit\n' |
        "$feeder" --transport "$t" "${args[@]}" --facility "$fac" --hostname bw-test-host \
            --expect "$d/expect.jsonl" >"$d/feeder.out" 2>"$d/feeder.err"
    rc=$?
    final=$(tail -n1 "$d/feeder.out")
    pid=$(sed -n 's/^ready pid=//p' "$d/feeder.out")
    echo "  $t: $final"
    if [ "$rc" -eq 0 ] && [ "$(stat_of written "$final")" = 52 ] && [ "$(stat_of dropped_down "$final")" = 0 ] &&
        [ "$(stat_of truncated "$final")" = 1 ]; then
        ok "$t: the feeder wrote 52 records, one of them cut to fit"
    else
        fail "$t: feeder rc=$rc, stats: $final"
        cat "$d/feeder.err"
    fi
    n=$(helper wait "$d/out.jsonl" 52 20)
    if [ "$n" = 52 ]; then ok "$t: rsyslog received 52 records"; else fail "$t: rsyslog received $n of 52 records"; fi
    if helper check "$d/out.jsonl" "$d/expect.jsonl" "$pid" bw-test-host "$(facility_code "$fac")" "$max" 1-52 \
        >"$d/check.out"; then
        ok "$t: every field, PRI, header, SD escaping and MSG as sent ($(cat "$d/check.out"))"
    else
        fail "$t: check: $(cat "$d/check.out")"
    fi
    stop_collector "$name"
}

# A sanitizer report in the feeder must fail the run (ASan exits 1 anyway).
export TSAN_OPTIONS=${TSAN_OPTIONS:-exitcode=66}

happy unix authpriv 8096
happy tcp local3 8096
happy udp daemon 2048

# ---- 2. throughput through the unix socket into rsyslog ----
bench() {
    local name=bench d final n rate rc
    new_collector "$name"
    d=$tmp/$name
    start_collector "$name" || { fail "bench: rsyslogd ready"; return; }
    printf 'bench 20000\nquit\n' |
        "$feeder" --transport unix --path "$d/log.sock" --hostname bw-test-host --queue 4096 \
            --expect "$d/expect.jsonl" >"$d/feeder.out" 2>"$d/feeder.err"
    rc=$?
    rate=$(sed -n 's/.*records_per_s=\([0-9]*\).*/\1/p' "$d/feeder.out")
    final=$(tail -n1 "$d/feeder.out")
    n=$(helper wait "$d/out.jsonl" 20000 60)
    echo "  bench: $final; $rate records/s into the socket"
    if [ "$rc" -eq 0 ] && [ "$(stat_of written "$final")" = 20000 ] && [ "$n" = 20000 ]; then
        ok "unix: 20000 records at $rate records/s, all 20000 in rsyslog's file"
    else
        fail "unix bench: rc=$rc, written $(stat_of written "$final"), rsyslog has $n"
        cat "$d/feeder.err"
    fi
    stop_collector "$name"
}
bench

# ---- 3. faults: nothing there ----
nothing_there() { # LABEL ARGS...
    local label=$1 out final rc
    shift
    out=$(printf 'send 10\nflush\nquit\n' | "$feeder" --hostname bw-test-host "$@" 2>"$tmp/nothing.err")
    rc=$?
    final=$(tail -n1 <<<"$out")
    echo "  $label: $final"
    if [ "$rc" -eq 0 ] && [ "$(stat_of written "$final")" = 0 ] && [ "$(stat_of dropped_down "$final")" = 10 ] &&
        [ "$(stat_of dropped_full "$final")" = 0 ]; then
        ok "$label: all 10 records dropped_down and counted, the feeder exits normally"
    else
        fail "$label: rc=$rc $final"
        cat "$tmp/nothing.err"
    fi
}
nothing_there "unix socket missing" --transport unix --path "$tmp/no-such-dir/log.sock"
refused_port=$(helper port tcp)
nothing_there "tcp collector refusing" --transport tcp --host 127.0.0.1 --port "$refused_port"

# UDP cannot know: a datagram to a closed port leaves without error, and
# only the ICMP answer makes a later send fail. The counts still add up.
out=$(printf 'send 10\nflush\nquit\n' | "$feeder" --transport udp --host 127.0.0.1 --port "$(helper port udp)" \
    --hostname bw-test-host 2>/dev/null)
rc=$?
final=$(tail -n1 <<<"$out")
echo "  udp collector refusing: $final"
if [ "$rc" -eq 0 ] && sum_adds_up "$final" && [ "$(stat_of submitted "$final")" = 10 ] &&
    [ "$(stat_of dropped_down "$final")" -ge 1 ]; then
    ok "udp collector refusing: written + dropped = submitted, the refusals after the first are counted"
else
    fail "udp collector refusing: rc=$rc $final"
fi

# ---- 4. the collector dies mid-run and comes back ----
restart() { # TRANSPORT
    local t=$1 name=restart-$1 d args pid line s1 s2 s3 s4 final ok_all=1
    new_collector "$name"
    d=$tmp/$name
    start_collector "$name" || { fail "$t restart: rsyslogd ready"; return; }
    case $t in
    unix) args=(--path "$d/log.sock") ;;
    tcp) args=(--host 127.0.0.1 --port "$(cat "$d/tcp_port")") ;;
    esac
    coproc FEED { "$feeder" --transport "$t" "${args[@]}" --hostname bw-test-host --retry-ms 100 \
        --expect "$d/expect.jsonl" 2>"$d/feeder.err"; }
    # bash drops the FEED array as soon as the feeder exits: copy it now,
    # and answer "(no answer)" for a feeder that is gone
    # shellcheck disable=SC2153 # FEED_PID is set by coproc
    local in=${FEED[1]:-} outfd=${FEED[0]:-} feed_pid=${FEED_PID:-}
    ask() {
        line="(no answer)"
        { echo "$1" >&"$in" && read -r -t 60 line <&"$outfd"; } 2>/dev/null || line="(no answer)"
    }
    if [ -z "$in" ] || ! read -r -t 10 line <&"$outfd"; then
        fail "$t restart: the feeder did not start"
        stop_collector "$name"
        return
    fi
    pid=${line#ready pid=}

    ask "send 20"
    ask "flush"
    s1=$line
    [ "$(helper wait "$d/out.jsonl" 20 20)" = 20 ] || ok_all=0

    # SIGKILL: a crash, not a goodbye. Everything sent so far has been
    # written out by rsyslog (waited for above), so nothing is in flight.
    stop_collector "$name" KILL
    ask "send 10"
    ask "flush"
    s2=$line

    start_collector "$name" || ok_all=0
    ask "until-up 20000"
    s3=$line
    ask "send 20"
    ask "quit"
    s4=$line
    exec {in}>&- 2>/dev/null
    wait "$feed_pid"
    local rc=$?
    echo "  $t before the kill: $s1"
    echo "  $t while down:      $s2"
    echo "  $t reconnected:     $s3"
    echo "  $t final:           $s4"
    final=$s4
    local w1 w2 sub written dropped up_seqs
    w1=$(stat_of written "$s1")
    w2=$(stat_of written "$s2")
    if [ "$rc" -eq 0 ] && [ "$ok_all" = 1 ] && [ "$w1" = 20 ] && [ "$w2" = 20 ] &&
        [ "$(stat_of dropped_down "$s2")" = 10 ] && [ "$(stat_of write_errors "$s2")" = 1 ]; then
        ok "$t: the first write after the kill fails, all 10 records sent while down are counted lost"
    else
        fail "$t: while down: rc=$rc ok=$ok_all $s1 / $s2"
        cat "$d/feeder.err"
    fi
    if grep -q 'came_up=1' <<<"$s3" && [ "$(stat_of reconnects "$s3")" = 1 ]; then
        ok "$t: reconnected after rsyslogd came back"
    else
        fail "$t: no reconnect: $s3"
    fi
    sub=$(stat_of submitted "$final")
    written=$(stat_of written "$final")
    dropped=$(($(stat_of dropped_down "$final") + $(stat_of dropped_full "$final")))
    if sum_adds_up "$final"; then
        ok "$t: written $written + dropped $dropped = submitted $sub"
    else
        fail "$t: counts do not add up: $final"
    fi
    # Received: 1-20, then nothing of what was sent while down, then every
    # record from the first one written after the reconnect to the last;
    # the checker wants exactly that set, no more, no less.
    local first_up=$((sub - (written - 20) + 1))
    up_seqs="1-20,$first_up-$sub"
    helper wait "$d/out.jsonl" $((written + 1)) 20 >/dev/null # + the loss record; checked below
    if helper check "$d/out.jsonl" "$d/expect.jsonl" "$pid" bw-test-host 10 8096 "$up_seqs" >"$d/check.out"; then
        ok "$t: rsyslog has exactly the $written written records ($(cat "$d/check.out"))"
    else
        fail "$t: check: $(cat "$d/check.out")"
    fi
    local lossd
    lossd=$(sed -n 's/.*loss_dropped=\([0-9]*\).*/\1/p' "$d/check.out")
    if grep -q 'loss_records=1 ' "$d/check.out" && [ "$lossd" = "$dropped" ]; then
        ok "$t: one loss record, and it says $dropped lost"
    else
        fail "$t: loss records: $(cat "$d/check.out"), dropped $dropped"
    fi
    stop_collector "$name"
}
restart unix
restart tcp

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
