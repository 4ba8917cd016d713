#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Where each propagation sample's time went.

    bench/propagation-trace.py LOG

LOG holds the "PROPTRACE:" lines a run with BENCH_SAMPLES=1 prints (the
guest's console log, or propagate-host.sh's output): bulwark-bench's samples
(when each change was written, how long until the probe saw it) and the
agent's "applied" records (when each apply ended, how long it took). Change
k (0: the first "on", 1: its "off", ...) is matched with the k-th apply
after the agent's start. For each change this prints:

    wait_ms   written -> the apply began (the agent noticed, or was busy)
    apply_ms  the apply itself (reading, planning, writing the kernel's maps)
    seen_ms   the apply ended -> the probe saw the change
    total_ms  the sample

and marks the samples above the 95th percentile, so an outlier reads as a
slow apply, a late start, or a late probe.
"""
import datetime
import json
import re
import sys


def realtime(s):
    """RFC 3339 with nanoseconds (the records' "time") -> seconds."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{1,9})Z$", s)
    if not m:
        raise ValueError(f"not a record time: {s!r}")
    base = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return base.timestamp() + int(m.group(2).ljust(9, "0")) / 1e9


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    changes, applies = [], []
    with open(sys.argv[1], errors="replace") as f:
        for line in f:
            i = line.find("PROPTRACE: ")
            if i < 0:
                continue
            body = line[i + len("PROPTRACE: "):].strip()
            if body.startswith("sample "):
                kv = body.split()
                d = dict(zip(kv[2::2], kv[3::2]))
                changes.append(("on", float(d["on_at"]), float(d["on_ms"])))
                changes.append(("off", float(d["off_at"]), float(d["off_ms"])))
            elif body.startswith("{"):
                rec = json.loads(body)
                end = realtime(rec["time"])
                applies.append((end - rec["apply_us"] / 1e6, rec["apply_us"] / 1e3, end, rec))
    if not changes:
        sys.exit(f"{sys.argv[1]}: no PROPTRACE sample lines (run with BENCH_SAMPLES=1)")
    totals = sorted(c[2] for c in changes)
    p95 = totals[min(len(totals) - 1, int(0.95 * len(totals)))]
    print(f"{'#':>4} {'change':6} {'total_ms':>9} {'wait_ms':>8} {'apply_ms':>9} {'seen_ms':>8}  parts")
    for k, (what, at, total) in enumerate(changes):
        if k >= len(applies):
            print(f"{k:4} {what:6} {total:9.2f}  (no apply record)")
            continue
        start, apply_ms, end, rec = applies[k]
        parts = " ".join(f"{p}={rec.get(p + '_us', 0) / 1e3:.1f}" for p in ("parse", "plan", "publish"))
        mark = "  <-- slowest 5%" if total > p95 else ""
        print(f"{k:4} {what:6} {total:9.2f} {(start - at) * 1e3:8.2f} {apply_ms:9.2f} "
              f"{(at + total / 1e3 - end) * 1e3:8.2f}  {parts}{mark}")


if __name__ == "__main__":
    main()
