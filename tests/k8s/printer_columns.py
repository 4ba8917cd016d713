#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Helpers of test-apiserver.sh for a CRD's additionalPrinterColumns, so that
its checks follow crd/ as the CRDs change.

  printer_columns.py status CRD.json
      prints a .status that gives every column reading .status.FIELD or
      .status.conditions[?(@.type=="T")].status a value
  printer_columns.py check CRD.json OBJ.json TABLE [wide]
      checks that TABLE (the output of kubectl get, -o wide with "wide") has
      the columns the CRD declares, in order, and shows OBJ's values in them
"""
import json
import re
import sys

COND = re.compile(r"""\.status\.conditions\[\?\(@\.type==["'](\w+)["']\)\]\.status""")
FIELD = re.compile(r"\.(spec|status)\.(\w+)")


def columns(crd):
    vs = [v for v in crd["spec"]["versions"] if v.get("served", True)]
    return vs[0].get("additionalPrinterColumns") or [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]


def status(crd):
    st, conds = {}, []
    for i, c in enumerate(columns(crd)):
        m = FIELD.fullmatch(c["jsonPath"])
        if m and m.group(1) == "status":
            st[m.group(2)] = {"integer": 10 + i, "number": 10 + i, "boolean": True}.get(c["type"], "s%d" % i)
        m = COND.fullmatch(c["jsonPath"])
        if m:
            conds.append({"type": m.group(1), "status": "True", "reason": "Test", "message": "set by the test",
                          "lastTransitionTime": "2025-01-01T00:00:00Z"})
    if conds:
        st["conditions"] = conds
    return st


def expected(c, obj):
    """The cell text kubectl shows, or None when this helper does not know."""
    if c["type"] == "date":
        return re.compile(r"\d+[smhdy]\S*")
    m = FIELD.fullmatch(c["jsonPath"])
    if m:
        v = (obj.get(m.group(1)) or {}).get(m.group(2))
        return "" if v is None else ("true" if v is True else "false" if v is False else str(v))
    m = COND.fullmatch(c["jsonPath"])
    if m:
        got = [x.get("status") for x in (obj.get("status") or {}).get("conditions") or [] if x.get("type") == m.group(1)]
        return got[0] if got else ""
    return None


def check(crd, obj, table, wide):
    cols = [c for c in columns(crd) if wide or not c.get("priority")]
    lines = table.rstrip("\n").split("\n")
    header = lines[0]
    names = header.split()
    want = (["NAMESPACE"] if names[0] == "NAMESPACE" else []) + ["NAME"] + [c["name"].upper() for c in cols]
    if names != want:
        sys.exit("header %s, expected %s" % (names, want))
    starts = []
    pos = 0
    for n in names:
        pos = header.index(n, pos)
        starts.append(pos)
        pos += len(n)
    for line in lines[1:]:
        cells = [line[s:e].strip() for s, e in zip(starts, starts[1:] + [len(line) + 1])]
        if cells[names.index("NAME")] != obj["metadata"]["name"]:
            continue
        for c, cell in zip(cols, cells[-len(cols):]):
            e = expected(c, obj)
            if e is None:
                continue
            if (e.fullmatch(cell) is None) if hasattr(e, "fullmatch") else cell != e:
                sys.exit("column %s: %r, expected %r" % (c["name"], cell, getattr(e, "pattern", e)))
        return
    sys.exit("no row for %s" % obj["metadata"]["name"])


def main():
    with open(sys.argv[2]) as f:
        crd = json.load(f)
    if sys.argv[1] == "status":
        print(json.dumps(status(crd)))
    else:
        with open(sys.argv[3]) as f:
            obj = json.load(f)
        with open(sys.argv[4]) as f:
            table = f.read()
        check(crd, obj, table, len(sys.argv) > 5 and sys.argv[5] == "wide")


if __name__ == "__main__":
    main()
