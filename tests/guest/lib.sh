# Helpers for guest scenarios (busybox sh). Source with: . /scenario/lib.sh
PASSES=0
FAILS=0
pass() { echo "BULWARK-TEST: PASS $*"; PASSES=$((PASSES + 1)); }
fail() { echo "BULWARK-TEST: FAIL $*"; FAILS=$((FAILS + 1)); }

# check NAME CMD...: passes when CMD exits 0
check() {
    name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}

# wait_for FILE PATTERN [TRIES]: bounded poll until FILE matches PATTERN (grep -E)
wait_for() {
    i=0
    while ! grep -qE "$2" "$1" 2>/dev/null; do
        i=$((i + 1))
        [ "$i" -le "${3:-1000}" ] || return 1
        if [ -n "${AGENT_PID:-}" ] && ! kill -0 "$AGENT_PID" 2>/dev/null; then
            echo "agent exited; its stderr:"; cat "$AGENT_ERR" 2>/dev/null
            return 1
        fi
        sleep 0.01
    done
}

# Overridable, for scenarios that also run on the host (tests/agent/modes-host.sh).
AGENT_OUT=${AGENT_OUT:-/run/bulwark-events.jsonl}
AGENT_ERR=${AGENT_ERR:-/run/bulwark-agent.err}
AGENT_STATUS=${AGENT_STATUS:-/run/bulwark-status}

# start_agent ARGS...: starts bulwarkd and waits for its first policy apply
start_agent() {
    rm -f "$AGENT_OUT" "$AGENT_ERR" "$AGENT_STATUS"
    bulwarkd --output json --status-file "$AGENT_STATUS" "$@" >"$AGENT_OUT" 2>"$AGENT_ERR" &
    AGENT_PID=$!
    wait_generation 1
}

# wait_generation N: the agent has applied policies at least N times
wait_generation() {
    i=0
    while :; do
        g=$(sed -n 's/^generation //p' "$AGENT_STATUS" 2>/dev/null)
        [ -n "$g" ] && [ "$g" -ge "$1" ] && return 0
        i=$((i + 1))
        if [ "$i" -gt "${WAIT_TRIES:-1000}" ] || ! kill -0 "$AGENT_PID" 2>/dev/null; then
            echo "agent did not reach generation $1; stderr:"; cat "$AGENT_ERR"
            return 1
        fi
        sleep 0.01
    done
}

generation() { sed -n 's/^generation //p' "$AGENT_STATUS"; }

stop_agent() {
    kill -TERM "$AGENT_PID" 2>/dev/null
    wait "$AGENT_PID"
    rc=$?
    AGENT_PID=
    return $rc
}

# expect NAME EXPECTATION PROBE-ARGS...: one probe, one result line
expect() {
    name=$1
    want=$2
    shift 2
    out=$(bulwark-probe --expect "$want" "$@" 2>&1)
    rc=$?
    if [ $rc -eq 0 ]; then pass "$name ($out)"; else fail "$name ($out)"; fi
}

finish() {
    echo "BULWARK-TEST: summary $PASSES passed, $FAILS failed"
    [ "$FAILS" -eq 0 ]
}

# The test API server (tests/k8s/apiserver.py) in the guest, with its state
# in $API (ca.crt, token, port).
api() { # METHOD PATH [BODY [CONTENT-TYPE]]: the answer on stdout, fails unless 2xx
    code=$(curl -sS -o /run/api.resp -w '%{http_code}' --cacert $API/ca.crt \
        -H "Authorization: Bearer $(cat $API/token)" -X "$1" \
        ${3:+-H "Content-Type: ${4:-application/json}"} ${3:+--data-binary "$3"} \
        "https://127.0.0.1:$(cat $API/port)$2") || return 1
    cat /run/api.resp
    case "$code" in 2*) return 0 ;; *) echo " (HTTP $code)" >&2; return 1 ;; esac
}
