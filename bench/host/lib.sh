# bench/host/lib.sh: sourced by the host passes (bench/host/*-host.sh).

# Sets cgroot to where cgroup2 is mounted (a host may have v1 beside it),
# or exits naming the caller.
find_cgroup2() {
    cgroot=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
    [ -n "$cgroot" ] || { echo "$(basename "$0" .sh): no cgroup2 mount" >&2; exit 1; }
}

# wait_applied STATUS_FILE ERR_FILE [TRIES]: returns once the agent's status
# file says its first apply is done (checked every 10 ms, TRIES times,
# default 1000); otherwise prints the agent's stderr and exits.
wait_applied() {
    for _ in $(seq 1 "${3:-1000}"); do
        grep -q '^generation 1' "$1" 2>/dev/null && return 0
        sleep 0.01
    done
    cat "$2" >&2
    exit 1
}
