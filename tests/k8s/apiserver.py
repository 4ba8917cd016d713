#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A small Kubernetes API server for Bulwark's tests (python3 stdlib only).

Serves, over HTTPS with a bearer token, what kubectl and bulwarkd use:
discovery, OpenAPI v3 stubs, namespaces, pods, CustomResourceDefinitions and
the custom resources of every stored CRD, with get/list/watch/create/update/
patch/delete, plus fault-injection endpoints under /_test/. See README.md in
this directory for what it does and does not do.

    apiserver.py --state-dir DIR [--port N] [--token TOKEN]
                 [--bookmark-interval SECONDS] [--quiet]
"""

import argparse
import base64
import copy
import datetime
import hashlib
import hmac
import http.server
import json
import os
import queue
import random
import re
import secrets
import select
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

K8S_VERSION = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.4", "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.0",
    "compiler": "gc", "platform": "linux/amd64",
}
MAX_EVENTS = 2000          # change history kept for watches (2000 to 4000 changes); older ones get 410
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
STATUS_VERBS = ["get", "patch", "update"]


# ---------------------------------------------------------------------------
# Errors and Status objects

class ApiError(Exception):
    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self):
        return status_obj(self.code, self.reason, self.message, self.details)


def check_kind(res, version, body):
    """Like the real server: a body of another kind or group is refused, not
    silently stored as this resource."""
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if kind not in (None, "", res.kind):
        raise ApiError(400, "BadRequest", "the object provided is unrecognized (must be of type %s): kind %s"
                       % (res.kind, kind))
    if api_version not in (None, "") and api_version.rpartition("/")[0] != res.group:
        raise ApiError(400, "BadRequest", "the API version in the data (%s) does not match the expected API "
                       "version (%s)" % (api_version, res.api_version(version)))


def status_obj(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": message, "reason": reason, "code": code}
    if details:
        s["details"] = details
    return s


def not_found(res, name):
    return ApiError(404, "NotFound", '%s "%s" not found' % (res.gr(), name),
                    {"name": name, "group": res.group, "kind": res.plural})


def bad_request(msg):
    return ApiError(400, "BadRequest", msg)


def invalid(res, name, msg):
    return ApiError(422, "Invalid", '%s "%s" is invalid: %s' % (res.kind, name, msg),
                    {"name": name, "group": res.group, "kind": res.kind})


def now_ts():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_duration(seconds):
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return "%ds" % s
    m = s // 60
    if m < 10:
        return "%dm" % m if s % 60 == 0 else "%dm%ds" % (m, s % 60)
    if m < 180:
        return "%dm" % m
    h = s // 3600
    if h < 8:
        return "%dh" % h if m % 60 == 0 else "%dh%dm" % (h, m % 60)
    if h < 48:
        return "%dh" % h
    if h < 24 * 8:
        return "%dd" % (h // 24) if h % 24 == 0 else "%dd%dh" % (h // 24, h % 24)
    if h < 24 * 365 * 2:
        return "%dd" % (h // 24)
    if h < 24 * 365 * 8:
        dy = (h // 24) % 365
        return "%dy" % (h // 24 // 365) if dy == 0 else "%dy%dd" % (h // 24 // 365, dy)
    return "%dy" % (h // 24 // 365)


def age_of(ts):
    try:
        t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return None
    return human_duration((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())


def version_key(v):
    """Kubernetes version priority: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > others."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", v)
    if not m:
        return (3, 0, 0, v)
    major, kind, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    return ({None: 0, "beta": 1, "alpha": 2}[kind], -major, -minor, v)


# ---------------------------------------------------------------------------
# Resources

class Res:
    """One resource (group + plural) and how it is served."""

    def __init__(self, group, versions, plural, singular, kind, namespaced, short_names=(),
                 categories=(), status_versions=(), builtin=False, columns=None, list_kind=None):
        self.group, self.versions, self.plural, self.singular = group, list(versions), plural, singular
        self.kind, self.namespaced = kind, namespaced
        self.short_names, self.categories = list(short_names), list(categories)
        self.status_versions = set(status_versions)  # versions with a /status subresource
        self.builtin = builtin
        self.columns = columns or {}  # version -> additionalPrinterColumns
        self.list_kind = list_kind or kind + "List"

    def gr(self):
        return self.plural + ("." + self.group if self.group else "")

    def api_version(self, version):
        return version if not self.group else self.group + "/" + version

    @property
    def is_cr(self):
        return not self.builtin

    @property
    def has_generation(self):
        return self.is_cr or self.kind == "CustomResourceDefinition"

    def status_sub(self, version):
        return version in self.status_versions


BUILTINS = [
    Res("", ["v1"], "namespaces", "namespace", "Namespace", False, ["ns"], [], ["v1"], builtin=True),
    Res("", ["v1"], "pods", "pod", "Pod", True, ["po"], ["all"], ["v1"], builtin=True),
    Res("apiextensions.k8s.io", ["v1"], "customresourcedefinitions", "customresourcedefinition",
        "CustomResourceDefinition", False, ["crd", "crds"], ["api-extensions"], ["v1"], builtin=True),
]


def res_from_crd(crd):
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    versions = [v for v in spec.get("versions") or [] if isinstance(v, dict) and v.get("served", True)]
    vnames = sorted([v.get("name") for v in versions if isinstance(v.get("name"), str)], key=version_key)
    if not vnames or not spec.get("group") or not names.get("plural") or not names.get("kind"):
        return None
    return Res(spec["group"], vnames, names["plural"], names.get("singular") or names["kind"].lower(),
               names["kind"], spec.get("scope", "Namespaced") == "Namespaced", names.get("shortNames") or [],
               names.get("categories") or [],
               [v["name"] for v in versions if (v.get("subresources") or {}).get("status") is not None],
               columns={v["name"]: v.get("additionalPrinterColumns") or [] for v in versions},
               list_kind=names.get("listKind"))


# ---------------------------------------------------------------------------
# Selectors

FIELD_SELECTABLE = {
    "pods": {"spec.nodeName", "status.phase", "spec.restartPolicy", "spec.schedulerName",
             "spec.serviceAccountName", "status.podIP", "status.nominatedNodeName"},
    "namespaces": {"status.phase"},
}


def dig(obj, dotted):
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def parse_field_selector(res, text):
    reqs = []
    if not text:
        return reqs
    allowed = {"metadata.name", "metadata.namespace"} | FIELD_SELECTABLE.get(res.plural, set())
    for term in text.split(","):
        term = term.strip()
        if not term:
            continue
        m = re.fullmatch(r"([^=!]+?)\s*(!=|==|=)\s*(.*)", term)
        if not m:
            raise bad_request("invalid field selector: %r" % term)
        key, op, val = m.group(1).strip(), m.group(2), m.group(3).strip()
        if key not in allowed:
            raise bad_request('"%s" is not a known field selector: only %s' % (
                key, ", ".join('"%s"' % a for a in sorted(allowed))))
        reqs.append((key, op != "!=", val))
    return reqs


def field_match(reqs, obj):
    for key, eq, val in reqs:
        got = dig(obj, key)
        got = "" if got is None else str(got)
        if (got == val) != eq:
            return False
    return True


def split_top(text):
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [t.strip() for t in out if t.strip()]


def parse_label_selector(text):
    reqs = []
    if not text:
        return reqs
    for term in split_top(text):
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s*\((.*)\)", term)
        if m:
            vals = {v.strip() for v in m.group(3).split(",") if v.strip()}
            reqs.append((m.group(1), m.group(2), vals))
            continue
        m = re.fullmatch(r"([^=!\s]+)\s*(!=|==|=)\s*(\S*)", term)
        if m:
            reqs.append((m.group(1), {"!=": "!=", "==": "=", "=": "="}[m.group(2)], {m.group(3)}))
            continue
        m = re.fullmatch(r"(!?)\s*([A-Za-z0-9][-A-Za-z0-9_./]*)", term)
        if m:
            reqs.append((m.group(2), "!" if m.group(1) else "exists", set()))
            continue
        raise bad_request("unable to parse requirement: %r" % term)
    return reqs


def label_match(reqs, obj):
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for key, op, vals in reqs:
        present = key in labels
        val = labels.get(key)
        if op == "exists" and not present:
            return False
        if op == "!" and present:
            return False
        if op in ("=", "in") and (not present or val not in vals):
            return False
        if op in ("!=", "notin") and present and val in vals:
            return False
    return True


# ---------------------------------------------------------------------------
# Patches

SMP_MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name",
    "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath", "ports": "containerPort",
    "containerStatuses": "name", "initContainerStatuses": "name", "ephemeralContainerStatuses": "name",
    "conditions": "type", "imagePullSecrets": "name", "hostAliases": "ip", "podIPs": "ip", "hostIPs": "ip",
    "ownerReferences": "uid", "resourceClaims": "name", "readinessGates": "conditionType",
}
SMP_MERGE_PRIMITIVES = {"finalizers"}


def strip_directives(v):
    if isinstance(v, dict):
        return {k: strip_directives(x) for k, x in v.items() if not k.startswith("$")}
    if isinstance(v, list):
        return [strip_directives(x) for x in v]
    return v


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


def strategic_merge_patch(orig, patch):
    """Strategic merge patch, enough of it for kubectl apply/label/annotate on
    namespaces and pods: maps merge, lists of objects with a known merge key
    merge by key, $patch (replace/delete), $setElementOrder, $retainKeys and
    $deleteFromPrimitiveList are understood; other lists are replaced."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return strip_directives({k: v for k, v in patch.items() if k != "$patch"})
    result = dict(orig) if isinstance(orig, dict) else {}
    order = {}
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys"):
            continue
        if k.startswith("$setElementOrder/"):
            order[k.split("/", 1)[1]] = v
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            f = k.split("/", 1)[1]
            if isinstance(result.get(f), list):
                result[f] = [x for x in result[f] if x not in (v or [])]
            continue
        if v is None:
            result.pop(k, None)
        elif isinstance(v, dict):
            if v.get("$patch") == "delete":
                result.pop(k, None)
            else:
                result[k] = strategic_merge_patch(result.get(k), v)
        elif isinstance(v, list):
            result[k] = smp_list(k, result.get(k), v)
        else:
            result[k] = v
    for f, ordering in order.items():
        lst = result.get(f)
        if not isinstance(lst, list) or not isinstance(ordering, list):
            continue
        key = SMP_MERGE_KEYS.get(f)

        def ident(e, key=key):
            return e.get(key) if key and isinstance(e, dict) else json.dumps(e, sort_keys=True)
        pos = {ident(e): i for i, e in enumerate(ordering)}
        result[f] = sorted(lst, key=lambda e: pos.get(ident(e), len(pos)))
    if isinstance(patch.get("$retainKeys"), list):
        result = {k: v for k, v in result.items() if k in patch["$retainKeys"]}
    return result


def smp_list(field, orig, patch):
    orig = orig if isinstance(orig, list) else []
    key = SMP_MERGE_KEYS.get(field)
    if key and all(isinstance(e, dict) for e in patch):
        if any(e.get("$patch") == "replace" for e in patch):
            return [strip_directives(e) for e in patch if e.get("$patch") != "replace"]
        out = copy.deepcopy(orig)
        for e in patch:
            idx = next((i for i, o in enumerate(out) if isinstance(o, dict) and key in e and o.get(key) == e.get(key)), None)
            if e.get("$patch") == "delete":
                if idx is not None:
                    del out[idx]
            elif idx is None:
                out.append(strip_directives(e))
            else:
                out[idx] = strategic_merge_patch(out[idx], e)
        return out
    if field in SMP_MERGE_PRIMITIVES:
        return orig + [x for x in patch if x not in orig]
    return strip_directives(patch)


def json_pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError("invalid JSON pointer %r" % path)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(doc, ops):
    """RFC 6902 JSON patch."""
    if not isinstance(ops, list):
        raise ValueError("a JSON patch is a list of operations")
    doc = copy.deepcopy(doc)

    def parent(parts):
        cur = doc
        for p in parts[:-1]:
            if isinstance(cur, list):
                cur = cur[int(p)]
            elif isinstance(cur, dict):
                cur = cur[p]
            else:
                raise ValueError("path does not exist")
        return cur

    def get(parts):
        cur = doc
        for p in parts:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        return cur

    def add(parts, value):
        nonlocal doc
        if not parts:
            doc = value
            return
        par, last = parent(parts), parts[-1]
        if isinstance(par, list):
            if last == "-":
                par.append(value)
            else:
                i = int(last)
                if i < 0 or i > len(par):
                    raise ValueError("index out of range")
                par.insert(i, value)
        elif isinstance(par, dict):
            par[last] = value
        else:
            raise ValueError("path does not exist")

    def remove(parts):
        par, last = parent(parts), parts[-1]
        if isinstance(par, list):
            return par.pop(int(last))
        return par.pop(last)

    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ValueError("invalid operation %r" % (op,))
        parts = json_pointer(op["path"])
        kind = op["op"]
        try:
            if kind == "add":
                add(parts, copy.deepcopy(op["value"]))
            elif kind == "remove":
                remove(parts)
            elif kind == "replace":
                if not parts:
                    doc = copy.deepcopy(op["value"])
                else:
                    get(parts)
                    par = parent(parts)
                    par[int(parts[-1]) if isinstance(par, list) else parts[-1]] = copy.deepcopy(op["value"])
            elif kind == "move":
                src = json_pointer(op["from"])
                add(parts, remove(src))
            elif kind == "copy":
                add(parts, copy.deepcopy(get(json_pointer(op["from"]))))
            elif kind == "test":
                if get(parts) != op.get("value"):
                    raise ValueError("testing value %s failed" % op["path"])
            else:
                raise ValueError("unknown operation %r" % kind)
        except (KeyError, IndexError, TypeError) as e:
            raise ValueError("%s %s: path does not exist (%s)" % (kind, op["path"], e))
    return doc


# ---------------------------------------------------------------------------
# Protobuf: `kubectl create namespace` (a typed client) sends a Namespace as
# application/vnd.kubernetes.protobuf whatever the server says; that one kind
# is decoded here. Everything else kubectl sends is JSON.

def pb_fields(buf):
    """Wire-format fields of one message: {number: [value, ...]}."""
    out, i = {}, 0

    def varint():
        nonlocal i
        shift = val = 0
        while True:
            b = buf[i]
            i += 1
            val |= (b & 0x7f) << shift
            if not b & 0x80:
                return val
            shift += 7
    while i < len(buf):
        key = varint()
        num, wt = key >> 3, key & 7
        if wt == 0:
            v = varint()
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            n = varint()
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("unsupported protobuf wire type %d" % wt)
        out.setdefault(num, []).append(v)
    return out


def pb_str(f, n):
    return f[n][-1].decode() if n in f else None


def pb_map(f, n):
    m = {}
    for entry in f.get(n, []):
        e = pb_fields(entry)
        m[pb_str(e, 1) or ""] = pb_str(e, 2) or ""
    return m


def pb_object_meta(buf):
    f = pb_fields(buf)
    meta = {}
    for num, name in ((1, "name"), (2, "generateName"), (3, "namespace"), (6, "resourceVersion")):
        if pb_str(f, num):
            meta[name] = pb_str(f, num)
    for num, name in ((11, "labels"), (12, "annotations")):
        if num in f:
            meta[name] = pb_map(f, num)
    if 14 in f:
        meta["finalizers"] = [x.decode() for x in f[14]]
    return meta


def decode_protobuf(data):
    if not data.startswith(b"k8s\x00"):
        raise bad_request("protobuf body without the k8s envelope")
    try:
        unknown = pb_fields(data[4:])
        tm = pb_fields(unknown.get(1, [b""])[-1])
        api_version, kind = pb_str(tm, 1) or "", pb_str(tm, 2) or ""
        if (api_version, kind) != ("v1", "Namespace"):
            raise ApiError(415, "UnsupportedMediaType", "this test API server decodes protobuf only for v1 Namespace "
                           "(kubectl create namespace), not %s %s: send JSON (kubectl apply -f)" % (api_version, kind))
        ns = pb_fields(unknown.get(2, [b""])[-1])
        obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": pb_object_meta(ns.get(1, [b""])[-1])}
        spec = pb_fields(ns.get(2, [b""])[-1])
        if 1 in spec:
            obj["spec"] = {"finalizers": [x.decode() for x in spec[1]]}
        return obj
    except (IndexError, UnicodeDecodeError, ValueError) as e:
        raise bad_request("could not decode the protobuf body: %s" % e)


# ---------------------------------------------------------------------------
# JSONPath, just what additionalPrinterColumns use

def jsonpath_tokens(path):
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    toks, i = [], 0
    while i < len(path):
        c = path[i]
        if c == ".":
            i += 1
            name = ""
            while i < len(path) and path[i] not in ".[":
                if path[i] == "\\" and i + 1 < len(path):
                    i += 1
                name += path[i]
                i += 1
            if name:
                toks.append(("field", name))
        elif c == "[":
            j = path.index("]", i) if not path.startswith("[?(", i) else path.index(")]", i) + 1
            inner = path[i + 1:j]
            i = j + 1
            if inner == "*":
                toks.append(("all", None))
            elif inner.startswith("?("):
                m = re.fullmatch(r"\?\(@\.([\w.\-/]+)\s*(==|!=)\s*['\"]?(.*?)['\"]?\)", inner)
                if not m:
                    raise ValueError("unsupported filter %s" % inner)
                toks.append(("filter", (m.group(1), m.group(2), m.group(3))))
            elif re.fullmatch(r"-?\d+", inner):
                toks.append(("index", int(inner)))
            else:
                toks.append(("field", inner.strip("'\"")))
        else:
            name = ""
            while i < len(path) and path[i] not in ".[":
                name += path[i]
                i += 1
            toks.append(("field", name))
    return toks


def jsonpath_eval(obj, path):
    try:
        toks = jsonpath_tokens(path)
    except ValueError:
        return []
    cur = [obj]
    for kind, arg in toks:
        nxt = []
        for o in cur:
            if kind == "field" and isinstance(o, dict) and arg in o:
                nxt.append(o[arg])
            elif kind == "index" and isinstance(o, list) and -len(o) <= arg < len(o):
                nxt.append(o[arg])
            elif kind == "all":
                nxt.extend(o if isinstance(o, list) else o.values() if isinstance(o, dict) else [])
            elif kind == "filter" and isinstance(o, list):
                f, op, v = arg
                for e in o:
                    got = dig(e, f)
                    if got is not None and (str(got).lower() if isinstance(got, bool) else str(got)) == v:
                        if op == "==":
                            nxt.append(e)
                    elif op == "!=":
                        nxt.append(e)
        cur = nxt
    return cur


def cell_value(values, typ):
    if not values:
        return None
    if typ == "date":
        return age_of(values[0]) if isinstance(values[0], str) else None
    if typ == "integer" and len(values) == 1 and isinstance(values[0], (int, float)) and not isinstance(values[0], bool):
        return int(values[0])
    if typ == "number" and len(values) == 1 and isinstance(values[0], (int, float)) and not isinstance(values[0], bool):
        return values[0]
    if typ == "boolean" and len(values) == 1 and isinstance(values[0], bool):
        return values[0]

    def s(v):
        if isinstance(v, str):
            return v
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (dict, list)):
            return json.dumps(v, separators=(",", ":"))
        return str(v)
    return ",".join(s(v) for v in values)


# ---------------------------------------------------------------------------
# The store

class Watch:
    def __init__(self, res, version, ns, lsel, fsel, params):
        self.res, self.version, self.ns, self.lsel, self.fsel = res, version, ns, lsel, fsel
        self.params = params
        self.q = queue.Queue()
        self.done = threading.Event()   # the stream has ended
        self.ack = threading.Event()    # a cut request was carried out
        self.cut_next = False
        self.started = now_ts()


class Store:
    def __init__(self, state_dir):
        self.dir = state_dir
        self.lock = threading.RLock()
        self.objects = {}      # (group, plural, ns, name) -> object
        self.rv = 0
        self.compacted = 0
        self.token = None
        self.events = []       # dicts: rv, type, group, plural, ns, name, obj, old
        self.watches = []
        self.delay_ms = 0
        self.stopping = False
        self.state_path = os.path.join(state_dir, "state.json")
        self.events_path = os.path.join(state_dir, "events.jsonl")

    # -- persistence ---------------------------------------------------------

    def load(self):
        if not os.path.exists(self.state_path):
            return False
        with open(self.state_path) as f:
            st = json.load(f)
        self.rv, self.compacted, self.token = st["rv"], st["compacted"], st.get("token")
        for e in st["objects"]:
            self.objects[(e["group"], e["plural"], e["namespace"], e["name"])] = e["object"]
        if os.path.exists(self.events_path):
            with open(self.events_path) as f:
                for line in f:
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        break  # a torn last line after a kill
                    if ev["rv"] > self.compacted and ev["rv"] <= self.rv:
                        self.events.append(ev)
        self._trim_events(force_rewrite=True)
        return True

    def save(self):
        st = {"rv": self.rv, "compacted": self.compacted, "token": self.token,
              "objects": [{"group": k[0], "plural": k[1], "namespace": k[2], "name": k[3], "object": v}
                          for k, v in sorted(self.objects.items())]}
        atomic_write(self.state_path, json.dumps(st, indent=1, sort_keys=True) + "\n")

    def _append_event(self, ev):
        self.events.append(ev)
        with open(self.events_path, "a") as f:
            f.write(json.dumps(ev, separators=(",", ":")) + "\n")
        self._trim_events()

    def _trim_events(self, force_rewrite=False):
        rewrite = force_rewrite
        drop = [e for e in self.events if e["rv"] <= self.compacted]
        if drop:
            self.events = self.events[len(drop):]
            rewrite = True
        if len(self.events) > 2 * MAX_EVENTS:  # amortized: rewrite the file once per MAX_EVENTS changes
            cut = len(self.events) - MAX_EVENTS
            self.compacted = max(self.compacted, self.events[cut - 1]["rv"])
            self.events = self.events[cut:]
            rewrite = True
        if rewrite:
            atomic_write(self.events_path, "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in self.events))

    # -- resources -----------------------------------------------------------

    def resources(self):
        out = {(r.group, r.plural): r for r in BUILTINS}
        with self.lock:
            for k, crd in self.objects.items():
                if k[0] == "apiextensions.k8s.io" and k[1] == "customresourcedefinitions":
                    r = res_from_crd(crd)
                    if r and (r.group, r.plural) not in out:
                        out[(r.group, r.plural)] = r
        return out

    def find_res(self, group, version, plural):
        r = self.resources().get((group, plural))
        if r is None or version not in r.versions:
            return None
        return r

    # -- changes -------------------------------------------------------------

    def _commit(self, typ, res, ns, name, obj, old):
        """Called with the lock held: gives obj the next resourceVersion,
        stores (or removes) it, logs the change, wakes the watches, saves."""
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        key = (res.group, res.plural, ns or "", name)
        if typ == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = obj
        ev = {"rv": self.rv, "type": typ, "group": res.group, "plural": res.plural, "ns": ns or "",
              "name": name, "obj": obj, "old": old}
        self._append_event(ev)
        for w in self.watches:
            if w.res.group == res.group and w.res.plural == res.plural and (not w.ns or w.ns == (ns or "")):
                w.q.put(("event", ev))
        self.save()
        return obj

    def bootstrap(self):
        ns_res = BUILTINS[0]
        with self.lock:
            for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
                self.create(ns_res, "v1", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def get(self, res, ns, name):
        obj = self.objects.get((res.group, res.plural, ns or "", name))
        if obj is None:
            raise not_found(res, name)
        return obj

    def check_namespace(self, res, ns):
        if res.namespaced and ("", "namespaces", "", ns) not in self.objects:
            raise ApiError(404, "NotFound", 'namespaces "%s" not found' % ns, {"name": ns, "kind": "namespaces"})

    def create(self, res, version, ns, body):
        if not isinstance(body, dict):
            raise bad_request("the body of the request was not a JSON object")
        check_kind(res, version, body)
        meta = body.get("metadata")
        if meta is None:
            meta = body["metadata"] = {}
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if res.namespaced:
            if meta.get("namespace") not in (None, "", ns):
                raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        with self.lock:
            name = meta.get("name")
            if not name:
                gen = meta.get("generateName")
                if not gen:
                    raise invalid(res, "", "metadata.name: Required value: name or generateName is required")
                for _ in range(100):
                    name = gen + "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
                    if (res.group, res.plural, ns or "", name) not in self.objects:
                        break
                meta["name"] = name
            if not isinstance(name, str):
                raise invalid(res, str(name), "metadata.name: must be a string")
            if res.namespaced:
                self.check_namespace(res, ns)
            if (res.group, res.plural, ns or "", name) in self.objects:
                raise ApiError(409, "AlreadyExists", '%s "%s" already exists' % (res.gr(), name),
                               {"name": name, "group": res.group, "kind": res.plural})
            obj = copy.deepcopy(body)
            obj["apiVersion"], obj["kind"] = res.api_version(version), res.kind
            meta = obj["metadata"]
            for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"):
                meta.pop(k, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_ts()
            if res.has_generation:
                meta["generation"] = 1
            else:
                meta.pop("generation", None)
            if res.status_sub(version) and res.kind != "Pod":
                obj.pop("status", None)
            self._normalize(res, obj, None)
            return copy.deepcopy(self._commit("ADDED", res, ns, name, obj, None))

    def _normalize(self, res, obj, old):
        """Server-side defaults of the few kinds where they matter."""
        meta = obj["metadata"]
        if res.kind == "Namespace":
            meta.setdefault("labels", {})
            if not isinstance(meta["labels"], dict):
                meta["labels"] = {}
            meta["labels"]["kubernetes.io/metadata.name"] = meta["name"]
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj["status"] = (old or {}).get("status") or {"phase": "Active"}
        elif res.kind == "Pod":
            if not isinstance(obj.get("status"), dict):
                obj["status"] = {"phase": "Pending"}
        elif res.kind == "CustomResourceDefinition":
            self._crd_check(obj)
            spec = obj["spec"]
            names = dict(spec["names"])
            names.setdefault("singular", names["kind"].lower())
            names.setdefault("listKind", names["kind"] + "List")
            ts = (old or {}).get("metadata", {}).get("creationTimestamp") or meta.get("creationTimestamp") or now_ts()
            stored = [v["name"] for v in spec["versions"] if v.get("storage")]
            prev = ((old or {}).get("status") or {}).get("storedVersions") or []
            obj["status"] = {
                "acceptedNames": names,
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                     "message": "no conflicts found", "lastTransitionTime": ts},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                     "message": "the initial names have been accepted", "lastTransitionTime": ts},
                ],
                "storedVersions": prev + [v for v in stored if v not in prev],
            }

    def _crd_check(self, obj):
        res = BUILTINS[2]
        name = obj["metadata"]["name"]
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            raise invalid(res, name, "spec: Required value")
        names = spec.get("names")
        if not isinstance(spec.get("group"), str) or not spec["group"]:
            raise invalid(res, name, "spec.group: Required value")
        if not isinstance(names, dict) or not names.get("plural") or not names.get("kind"):
            raise invalid(res, name, "spec.names.plural, spec.names.kind: Required value")
        if name != "%s.%s" % (names["plural"], spec["group"]):
            raise invalid(res, name, 'metadata.name: Invalid value: "%s": must be spec.names.plural+"."+spec.group' % name)
        if spec.get("scope") not in ("Namespaced", "Cluster"):
            raise invalid(res, name, 'spec.scope: Unsupported value: %s: supported values: "Cluster", "Namespaced"'
                          % json.dumps(spec.get("scope")))
        vs = spec.get("versions")
        if not isinstance(vs, list) or not vs or not all(isinstance(v, dict) and v.get("name") for v in vs):
            raise invalid(res, name, "spec.versions: Invalid value: must have exactly one version marked as storage version")
        if sum(1 for v in vs if v.get("storage")) != 1:
            raise invalid(res, name, "spec.versions: Invalid value: must have exactly one version marked as storage version")
        for (g, p), r in ((k, v) for k, v in {(b.group, b.plural): b for b in BUILTINS}.items()):
            if g == spec["group"] and p == names["plural"]:
                raise invalid(res, name, "spec.group: names a built-in resource")

    def update(self, res, version, ns, name, body, sub=None, from_patch=False):
        if not isinstance(body, dict) or not isinstance(body.get("metadata", {}), dict):
            raise bad_request("the body of the request was not a JSON object with metadata")
        check_kind(res, version, body)
        meta = body.setdefault("metadata", {})
        if meta.get("name") not in (None, name):
            raise bad_request("the name of the object (%s) does not match the name on the URL (%s)" % (meta.get("name"), name))
        if res.namespaced and meta.get("namespace") not in (None, "", ns):
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        with self.lock:
            old = self.get(res, ns, name)
            rv_in = meta.get("resourceVersion")
            if rv_in not in (None, ""):
                if str(rv_in) != old["metadata"]["resourceVersion"]:
                    raise ApiError(409, "Conflict", "Operation cannot be fulfilled on %s \"%s\": the object has been "
                                   "modified; please apply your changes to the latest version and try again"
                                   % (res.gr(), name), {"name": name, "group": res.group, "kind": res.plural})
            elif not from_patch and (res.is_cr or res.kind == "CustomResourceDefinition"):
                raise invalid(res, name, "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update")
            if sub == "status":
                new = copy.deepcopy(old)
                if "status" in body:
                    new["status"] = copy.deepcopy(body["status"])
                else:
                    new.pop("status", None)
            else:
                new = copy.deepcopy(body)
                new["apiVersion"], new["kind"] = res.api_version(version), res.kind
                nm, om = new["metadata"], old["metadata"]
                for k in ("name", "uid", "creationTimestamp", "generation", "namespace"):
                    if k in om:
                        nm[k] = om[k]
                    else:
                        nm.pop(k, None)
                for k in ("managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"):
                    nm.pop(k, None)
                if res.status_sub(version) and res.kind != "Pod":
                    if "status" in old:
                        new["status"] = copy.deepcopy(old["status"])
                    else:
                        new.pop("status", None)
                self._normalize(res, new, old)
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            if new == old:
                return copy.deepcopy(old)  # no-op: no new resourceVersion, no event
            if res.has_generation and spec_part(new) != spec_part(old):
                new["metadata"]["generation"] = int(old["metadata"].get("generation") or 0) + 1
            return copy.deepcopy(self._commit("MODIFIED", res, ns, name, new, old))

    def patch(self, res, version, ns, name, ctype, body, sub=None):
        ctype = (ctype or "").split(";")[0].strip().lower()
        try:
            patch = json.loads(body or b"null")
        except ValueError as e:
            raise bad_request("error decoding patch: %s" % e)
        with self.lock:
            cur = self.serve(res, version, self.get(res, ns, name))
            try:
                if ctype == "application/merge-patch+json":
                    if not isinstance(patch, dict):
                        raise ValueError("a merge patch is a JSON object")
                    new = merge_patch(cur, patch)
                elif ctype == "application/strategic-merge-patch+json":
                    if res.is_cr:
                        raise ApiError(415, "UnsupportedMediaType",
                                       "the body of the request was in an unknown format - accepted media types "
                                       "include: application/json-patch+json, application/merge-patch+json, "
                                       "application/apply-patch+yaml")
                    if not isinstance(patch, dict):
                        raise ValueError("a strategic merge patch is a JSON object")
                    new = strategic_merge_patch(cur, patch)
                elif ctype == "application/json-patch+json":
                    new = json_patch(cur, patch)
                elif ctype == "application/apply-patch+yaml":
                    raise ApiError(415, "UnsupportedMediaType", "server-side apply is not supported by this test API server")
                else:
                    raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                                   "accepted media types include: application/json-patch+json, "
                                   "application/merge-patch+json, application/strategic-merge-patch+json")
            except ValueError as e:
                raise ApiError(422, "Invalid", "the server rejected our request due to an error in our request: %s" % e)
            if not isinstance(new, dict):
                raise bad_request("the patch did not produce an object")
            if not isinstance(new.get("metadata"), dict):
                new["metadata"] = {}
            return self.update(res, version, ns, name, new, sub=sub, from_patch=True)

    def delete(self, res, ns, name, opts=None):
        with self.lock:
            old = self.get(res, ns, name)
            pre = (opts or {}).get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != old["metadata"].get("uid"):
                raise ApiError(409, "Conflict", "Precondition failed: UID in precondition: %s, UID in object meta: %s"
                               % (pre["uid"], old["metadata"].get("uid")))
            if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", "Precondition failed: ResourceVersion in precondition: %s, "
                               "ResourceVersion in object meta: %s" % (pre["resourceVersion"], old["metadata"]["resourceVersion"]))
            resources = self.resources()
            if res.kind == "Namespace":
                # what the namespace controller would do, at once
                for key in sorted(k for k in self.objects if k[2] == name and (k[0], k[1]) in resources
                                  and resources[(k[0], k[1])].namespaced):
                    r = resources[(key[0], key[1])]
                    self._delete_one(r, key[2], key[3])
            elif res.kind == "CustomResourceDefinition":
                r = res_from_crd(old)
                if r:
                    for key in sorted(k for k in self.objects if k[0] == r.group and k[1] == r.plural):
                        self._delete_one(r, key[2], key[3])
            return self._delete_one(res, ns, name)

    def _delete_one(self, res, ns, name):
        old = self.objects[(res.group, res.plural, ns or "", name)]
        obj = copy.deepcopy(old)
        return copy.deepcopy(self._commit("DELETED", res, ns, name, obj, old))

    def list(self, res, ns, lsel, fsel):
        out = []
        for (g, p, ons, _), obj in sorted(self.objects.items()):
            if g == res.group and p == res.plural and (not ns or ons == ns) \
                    and label_match(lsel, obj) and field_match(fsel, obj):
                out.append(obj)
        return out

    def serve(self, res, version, obj):
        o = copy.deepcopy(obj)
        o["apiVersion"], o["kind"] = res.api_version(version), res.kind
        return o

    def compact(self):
        with self.lock:
            self.compacted = self.rv
            self._trim_events()
            self.save()
            return self.rv

    def set_token(self, token):
        with self.lock:
            self.token = token
            self.save()


def spec_part(obj):
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def atomic_write(path, data, mode=0o644):
    d = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=d, prefix="." + os.path.basename(path) + ".")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ---------------------------------------------------------------------------
# Tables

def table_for(res, version, objs, include):
    if res.kind == "Namespace":
        cols = [("Name", "string", "name", 0), ("Status", "string", "", 0), ("Age", "string", "", 0)]

        def cells(o):
            return [o["metadata"]["name"], dig(o, "status.phase") or "",
                    age_of(o["metadata"].get("creationTimestamp")) or "<unknown>"]
    elif res.kind == "Pod":
        cols = [("Name", "string", "name", 0), ("Ready", "string", "", 0), ("Status", "string", "", 0),
                ("Restarts", "string", "", 0), ("Age", "string", "", 0), ("IP", "string", "", 1),
                ("Node", "string", "", 1)]

        def cells(o):
            cs = dig(o, "status.containerStatuses") or []
            n = len(dig(o, "spec.containers") or [])
            ready = sum(1 for c in cs if isinstance(c, dict) and c.get("ready"))
            restarts = sum(int(c.get("restartCount") or 0) for c in cs if isinstance(c, dict))
            return [o["metadata"]["name"], "%d/%d" % (ready, n), dig(o, "status.phase") or "", str(restarts),
                    age_of(o["metadata"].get("creationTimestamp")) or "<unknown>",
                    dig(o, "status.podIP") or "<none>", dig(o, "spec.nodeName") or "<none>"]
    elif res.kind == "CustomResourceDefinition":
        cols = [("Name", "string", "name", 0), ("Created At", "date", "", 0)]

        def cells(o):
            return [o["metadata"]["name"], o["metadata"].get("creationTimestamp")]
    else:
        pcs = res.columns.get(version) or [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
        cols = [("Name", "string", "name", 0)] + [
            (c.get("name", ""), c.get("type", "string"), c.get("format", ""), int(c.get("priority") or 0)) for c in pcs]

        def cells(o):
            return [o["metadata"]["name"]] + [cell_value(jsonpath_eval(o, c.get("jsonPath", "")), c.get("type", "string"))
                                              for c in pcs]
    rows = []
    for o in objs:
        row = {"cells": cells(o)}
        if include == "Object":
            row["object"] = o
        elif include != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {},
            "columnDefinitions": [{"name": n, "type": "string" if t == "date" and res.builtin else t,
                                   "format": f, "description": n, "priority": p} for n, t, f, p in cols],
            "rows": rows}


# ---------------------------------------------------------------------------
# Discovery and OpenAPI

def api_resource(res, version, sub=None):
    d = {"name": res.plural + ("/" + sub if sub else ""), "singularName": "" if sub else res.singular,
         "namespaced": res.namespaced, "kind": res.kind, "verbs": STATUS_VERBS if sub else VERBS}
    if not sub:
        if res.short_names:
            d["shortNames"] = res.short_names
        if res.categories:
            d["categories"] = res.categories
        d["storageVersionHash"] = base64.b64encode(hashlib.sha256(res.gr().encode()).digest()[:8]).decode()
    return d


def resource_list(resources, group, version):
    out = []
    for r in sorted(resources.values(), key=lambda r: r.plural):
        if r.group == group and version in r.versions:
            out.append(api_resource(r, version))
            if r.status_sub(version):
                out.append(api_resource(r, version, "status"))
    if not out:
        return None
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": (group + "/" if group else "") + version,
            "resources": out}


def api_groups(resources):
    groups = {}
    for r in resources.values():
        if r.group:
            groups.setdefault(r.group, set()).update(r.versions)
    out = []
    for g in sorted(groups, key=lambda g: (g != "apiextensions.k8s.io", g)):
        vs = sorted(groups[g], key=version_key)
        out.append({"name": g, "versions": [{"groupVersion": g + "/" + v, "version": v} for v in vs],
                    "preferredVersion": {"groupVersion": g + "/" + vs[0], "version": vs[0]}})
    return out


def openapi_gv_doc(resources, group, version):
    """Just enough OpenAPI v3 for kubectl: each resource's PATCH operation
    with its group-version-kind and the fieldValidation parameter, so kubectl
    leaves validation to the server (which ignores it) instead of validating
    against schemas this server does not have."""
    paths = {}
    for r in sorted(resources.values(), key=lambda r: r.plural):
        if r.group != group or version not in r.versions:
            continue
        prefix = "/api/" + version if not group else "/apis/%s/%s" % (group, version)
        p = prefix + ("/namespaces/{namespace}" if r.namespaced else "") + "/%s/{name}" % r.plural
        gvk = {"group": group, "version": version, "kind": r.kind}
        body = {"content": {t: {"schema": {"type": "object"}} for t in (
            "application/json-patch+json", "application/merge-patch+json")}, "required": True}
        paths[p] = {
            "get": {"operationId": "read" + r.kind, "responses": {"200": {"description": "OK"}},
                    "x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk},
            "patch": {"operationId": "patch" + r.kind, "requestBody": body,
                      "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                                     {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                                     {"name": "dryRun", "in": "query", "schema": {"type": "string"}}],
                      "responses": {"200": {"description": "OK"}},
                      "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk},
        }
    if not paths:
        return None
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": K8S_VERSION["gitVersion"]},
            "paths": paths, "components": {"schemas": {}}}


def gv_list(resources):
    out = [("", "v1")]
    for r in resources.values():
        if r.group:
            for v in r.versions:
                if (r.group, v) not in out:
                    out.append((r.group, v))
    return out


# ---------------------------------------------------------------------------
# HTTP

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # an idle keep-alive connection must not hold up SIGTERM
    allow_reuse_address = True
    request_queue_size = 64

    def handle_error(self, request, client_address):
        e = sys.exc_info()[1]
        if isinstance(e, (ssl.SSLError, ConnectionError, socket.timeout, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bulwark-test-apiserver"
    sys_version = ""
    timeout = 300
    store = None   # set in main
    opts = None

    def setup(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request.settimeout(10)
        self.request.do_handshake()
        super().setup()

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        if not self.opts.quiet:
            sys.stderr.write("%s %s\n" % (datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3], fmt % args))

    # -- plumbing ------------------------------------------------------------

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send_json(self, code, obj, extra_headers=None):
        data = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def send_status(self, e):
        self.send_json(e.code, e.status())

    def authorized(self):
        got = self.headers.get("Authorization", "")
        want = "Bearer " + (self.store.token or "")
        return hmac.compare_digest(got.encode(), want.encode())

    def handle_any(self, method):
        self.method = method
        try:
            self.body = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        url = urllib.parse.urlsplit(self.path)
        self.params = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
        try:
            if not self.authorized():
                raise ApiError(401, "Unauthorized", "Unauthorized")
            if parts[:1] != ["_test"] and self.store.delay_ms > 0:
                time.sleep(self.store.delay_ms / 1000.0)
            self.route(method, parts)
        except ApiError as e:
            self.send_status(e)
        except (BrokenPipeError, ConnectionError, ssl.SSLError, socket.timeout):
            self.close_connection = True
        except Exception as e:  # a bug here: answer 500 rather than drop the connection
            import traceback
            traceback.print_exc()
            try:
                self.send_status(ApiError(500, "InternalError", "internal error: %s" % e))
            except OSError:
                self.close_connection = True

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def json_body(self):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype == "application/vnd.kubernetes.protobuf":
            return decode_protobuf(self.body)
        try:
            return json.loads(self.body or b"null")
        except ValueError as e:
            raise bad_request("the body of the request could not be decoded as JSON: %s" % e)

    def wants_table(self):
        return "as=Table" in self.headers.get("Accept", "")

    # -- routing -------------------------------------------------------------

    def route(self, method, parts):
        st = self.store
        if parts == ["version"] or parts == ["version", ""]:
            return self.send_json(200, K8S_VERSION)
        if parts == ["healthz"] or parts == ["readyz"] or parts == ["livez"]:
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if parts[:1] == ["_test"]:
            return self.route_test(method, parts[1:])
        if parts[:1] == ["openapi"]:
            return self.route_openapi(parts[1:])
        resources = st.resources()
        if parts == ["api"]:
            return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:%d" % self.server.server_address[1]}]})
        if parts == ["apis"]:
            return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": api_groups(resources)})
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) == 2:
            g = [x for x in api_groups(resources) if x["name"] == parts[1]]
            if not g:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return self.send_json(200, dict(kind="APIGroup", apiVersion="v1", **g[0]))
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            rl = resource_list(resources, group, version)
            if rl is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return self.send_json(200, rl)
        # resource paths
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] != "status" and rest[2] != "finalize":
            ns, rest = rest[1], rest[2:]
        res = resources.get((group, rest[0]))
        if res is None or version not in res.versions or (ns is not None and not res.namespaced):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if len(rest) > 3 or (sub is not None and (sub != "status" or not res.status_sub(version))):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if res.namespaced and name is not None and ns is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if self.params.get("dryRun"):
            raise bad_request("dryRun is not supported by this test API server")
        if name is None:
            return self.collection(method, res, version, ns)
        return self.item(method, res, version, ns, name, sub)

    def collection(self, method, res, version, ns):
        st = self.store
        if method == "GET":
            if self.params.get("watch") in ("1", "true", "True"):
                return self.watch(res, version, ns)
            return self.list(res, version, ns)
        if method == "POST":
            if res.namespaced and ns is None:
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            obj = st.create(res, version, ns, self.json_body())
            return self.send_json(201, self.maybe_table(res, version, [obj], single=True))
        if method == "DELETE":
            lsel = parse_label_selector(self.params.get("labelSelector"))
            fsel = parse_field_selector(res, self.params.get("fieldSelector"))
            with st.lock:
                objs = st.list(res, ns, lsel, fsel)
                out = [st.delete(res, o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objs]
                return self.send_json(200, {"kind": res.list_kind, "apiVersion": res.api_version(version),
                                            "metadata": {"resourceVersion": str(st.rv)},
                                            "items": [st.serve(res, version, o) for o in out]})
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def item(self, method, res, version, ns, name, sub):
        st = self.store
        if method == "GET":
            with st.lock:
                obj = st.serve(res, version, st.get(res, ns, name))
            return self.send_json(200, self.maybe_table(res, version, [obj], single=True))
        if method == "PUT":
            obj = st.update(res, version, ns, name, self.json_body(), sub=sub)
            return self.send_json(200, st.serve(res, version, obj))
        if method == "PATCH":
            obj = st.patch(res, version, ns, name, self.headers.get("Content-Type"), self.body, sub=sub)
            return self.send_json(200, st.serve(res, version, obj))
        if method == "DELETE" and sub is None:
            opts = self.json_body() if self.body else None
            obj = st.delete(res, ns, name, opts if isinstance(opts, dict) else None)
            return self.send_json(200, st.serve(res, version, obj))
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def maybe_table(self, res, version, objs, single=False):
        if not self.wants_table():
            return objs[0] if single else objs
        t = table_for(res, version, objs, self.params.get("includeObject", "Metadata"))
        t["metadata"]["resourceVersion"] = objs[0]["metadata"]["resourceVersion"] if single and objs \
            else str(self.store.rv)
        return t

    def list(self, res, version, ns):
        st = self.store
        lsel = parse_label_selector(self.params.get("labelSelector"))
        fsel = parse_field_selector(res, self.params.get("fieldSelector"))
        limit = self.params.get("limit")
        cont = self.params.get("continue")
        with st.lock:
            rv = st.rv
            start = None
            if self.params.get("resourceVersionMatch") == "Exact" and self.params.get("resourceVersion"):
                try:
                    want = int(self.params["resourceVersion"])
                except ValueError:
                    raise bad_request("invalid resourceVersion")
                if want < st.compacted:
                    raise ApiError(410, "Expired", "too old resource version: %d (%d)" % (want, st.compacted))
            if cont:
                try:
                    c = json.loads(base64.urlsafe_b64decode(cont.encode() + b"==="))
                    rv, start = int(c["rv"]), c["start"]
                except (ValueError, KeyError, TypeError):
                    raise bad_request("continue key is not valid")
                if rv < st.compacted:
                    raise ApiError(410, "Expired", "The provided continue parameter is too old to display a "
                                   "consistent list result. You can start a new list without the continue parameter.")
            objs = st.list(res, ns, lsel, fsel)
            if start is not None:
                objs = [o for o in objs if "%s/%s" % (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > start]
            meta = {"resourceVersion": str(rv)}
            if limit and limit.isdigit() and int(limit) > 0 and len(objs) > int(limit):
                n = int(limit)
                last = objs[n - 1]["metadata"]
                meta["continue"] = base64.urlsafe_b64encode(json.dumps(
                    {"rv": rv, "start": "%s/%s" % (last.get("namespace", ""), last["name"])}).encode()).decode().rstrip("=")
                meta["remainingItemCount"] = len(objs) - n
                objs = objs[:n]
            items = [st.serve(res, version, o) for o in objs]
        if self.wants_table():
            t = table_for(res, version, items, self.params.get("includeObject", "Metadata"))
            t["metadata"] = meta
            return self.send_json(200, t)
        if res.builtin:
            for o in items:  # typed lists carry no kind/apiVersion in their items
                o.pop("kind", None)
                o.pop("apiVersion", None)
        return self.send_json(200, {"kind": res.list_kind, "apiVersion": res.api_version(version),
                                    "metadata": meta, "items": items})

    # -- watch ---------------------------------------------------------------

    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def client_gone(self):
        sock = self.connection
        try:
            r, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return True
        if not r:
            return False
        try:
            sock.setblocking(False)
            try:
                return sock.recv(1) == b""  # a client sends nothing during a watch: EOF or bytes, both end it
            except (ssl.SSLWantReadError, BlockingIOError):
                return False
            finally:
                sock.settimeout(30)
        except (OSError, ssl.SSLError):
            return True

    def abort_connection(self):
        """Closes the TCP connection with no TLS close_notify and no final
        chunk: what a crashed server or a cut network looks like."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass

    def watch(self, res, version, ns):
        st = self.store
        p = self.params
        lsel = parse_label_selector(p.get("labelSelector"))
        fsel = parse_field_selector(res, p.get("fieldSelector"))
        bookmarks = p.get("allowWatchBookmarks") in ("1", "true", "True")
        timeout = None
        if p.get("timeoutSeconds"):
            try:
                timeout = float(p["timeoutSeconds"])
            except ValueError:
                raise bad_request("invalid timeoutSeconds")
        rv_param = p.get("resourceVersion", "")
        initial_events = p.get("sendInitialEvents") in ("1", "true", "True")
        w = Watch(res, version, ns, lsel, fsel, {k: v for k, v in p.items()})
        first = []   # (type, obj) to send before live events
        expired = None
        with st.lock:
            if initial_events or rv_param in ("", "0"):
                for o in st.list(res, ns, lsel, fsel):
                    first.append(("ADDED", st.serve(res, version, o)))
                if initial_events and bookmarks:
                    first.append(("BOOKMARK", {"kind": res.kind, "apiVersion": res.api_version(version), "metadata": {
                        "resourceVersion": str(st.rv), "annotations": {"k8s.io/initial-events-end": "true"}}}))
            else:
                try:
                    from_rv = int(rv_param)
                except ValueError:
                    raise bad_request("invalid resource version: %r" % rv_param)
                if from_rv < st.compacted:
                    expired = status_obj(410, "Expired", "too old resource version: %d (%d)" % (from_rv, st.compacted))
                else:
                    for ev in st.events:
                        if ev["rv"] > from_rv and ev["group"] == res.group and ev["plural"] == res.plural \
                                and (not ns or ev["ns"] == ns):
                            w.q.put(("event", ev))
            if expired is None:
                st.watches.append(w)
        self.close_connection = True
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-cache, private")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            if expired is not None:
                self.write_chunk(json.dumps({"type": "ERROR", "object": expired}, separators=(",", ":")).encode() + b"\n")
                self.write_chunk(b"")
                return
            self.connection.settimeout(30)
            for typ, obj in first:
                self.send_event(typ, obj, w=w)
            self.watch_loop(w, bookmarks, timeout)
        except (OSError, ssl.SSLError):
            pass
        finally:
            with st.lock:
                if w in st.watches:
                    st.watches.remove(w)
            w.done.set()
            w.ack.set()

    def send_event(self, typ, obj, half=False, w=None):
        if w is not None and typ != "BOOKMARK" and self.wants_table():  # kubectl get -w
            t = table_for(w.res, w.version, [obj], self.params.get("includeObject", "Metadata"))
            t["metadata"]["resourceVersion"] = obj["metadata"].get("resourceVersion", "")
            obj = t
        line = json.dumps({"type": typ, "object": obj}, separators=(",", ":")).encode() + b"\n"
        if half:
            self.write_chunk(line[:len(line) // 2])
        else:
            self.write_chunk(line)

    def translate(self, w, ev):
        """An event as this watch sees it: selectors turn a modification that
        enters or leaves the selection into ADDED or DELETED."""
        res, version = w.res, w.version

        def match(o):
            return o is not None and label_match(w.lsel, o) and field_match(w.fsel, o)
        new, old = ev["obj"], ev["old"]
        if ev["type"] == "ADDED":
            return ("ADDED", new) if match(new) else None
        if ev["type"] == "DELETED":
            return ("DELETED", new) if match(old) else None
        nm, om = match(new), match(old)
        if nm and om:
            return ("MODIFIED", new)
        if nm:
            return ("ADDED", new)
        if om:
            return ("DELETED", new)
        return None

    def watch_loop(self, w, bookmarks, timeout):
        st = self.store
        interval = self.opts.bookmark_interval
        deadline = time.monotonic() + timeout if timeout else None
        next_bm = time.monotonic() + interval
        while True:
            if st.stopping:
                self.write_chunk(b"")
                return
            try:
                item = w.q.get(timeout=0.05)
            except queue.Empty:
                item = None
            if item is None:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    self.write_chunk(b"")  # a clean end, as at timeoutSeconds
                    return
                if self.client_gone():
                    return
                if bookmarks and now >= next_bm:
                    with st.lock:
                        bm_rv = st.rv if w.q.empty() else None
                    if bm_rv is not None:
                        self.send_event("BOOKMARK", {"kind": w.res.kind, "apiVersion": w.res.api_version(w.version),
                                                     "metadata": {"resourceVersion": str(bm_rv)}})
                    next_bm = now + interval
                continue
            kind, arg = item
            if kind == "cut":
                if arg == "next":
                    w.cut_next = True
                    w.ack.set()
                    continue
                if arg == "1":
                    with st.lock:
                        bm_rv = st.rv
                    self.send_event("BOOKMARK", {"kind": w.res.kind, "apiVersion": w.res.api_version(w.version),
                                                 "metadata": {"resourceVersion": str(bm_rv)}}, half=True)
                self.abort_connection()
                return
            if kind == "event":
                t = self.translate(w, arg)
                if t is None:
                    continue
                obj = self.store.serve(w.res, w.version, t[1])
                if w.cut_next:
                    self.send_event(t[0], obj, half=True, w=w)
                    self.abort_connection()
                    return
                self.send_event(t[0], obj, w=w)

    # -- OpenAPI -------------------------------------------------------------

    def route_openapi(self, parts):
        resources = self.store.resources()
        if parts == ["v2"]:
            raise ApiError(404, "NotFound", "OpenAPI v2 is not served by this test API server; use v3")
        if parts == ["v3"]:
            paths = {}
            for g, v in gv_list(resources):
                key = "api/v1" if not g else "apis/%s/%s" % (g, v)
                doc = openapi_gv_doc(resources, g, v)
                if doc is None:
                    continue
                h = hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest().upper()[:64]
                paths[key] = {"serverRelativeURL": "/openapi/v3/%s?hash=%s" % (key, h)}
            return self.send_json(200, {"paths": paths})
        if parts[:1] == ["v3"]:
            rest = parts[1:]
            doc = None
            if rest == ["api", "v1"]:
                doc = openapi_gv_doc(resources, "", "v1")
            elif len(rest) == 3 and rest[0] == "apis":
                doc = openapi_gv_doc(resources, rest[1], rest[2])
            if doc is not None:
                return self.send_json(200, doc)
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    # -- fault injection -----------------------------------------------------

    def route_test(self, method, parts):
        st = self.store
        p = self.params
        if method == "POST" and parts == ["compact"]:
            return self.send_json(200, {"compacted": str(st.compact())})
        if method == "POST" and parts == ["cut-watches"]:
            mode = p.get("mid", "0")
            if mode not in ("0", "1", "next"):
                raise bad_request("mid is 0, 1 or next")
            with st.lock:
                ws = list(st.watches)
                for w in ws:
                    w.ack.clear()
                    w.q.put(("cut", mode))
            deadline = time.monotonic() + 5
            for w in ws:
                w.ack.wait(max(0, deadline - time.monotonic()))
            return self.send_json(200, {"cut" if mode != "next" else "armed": len(ws)})
        if method == "POST" and parts == ["token"]:
            value = p.get("value", "")
            if not value or not re.fullmatch(r"[\x21-\x7e]+", value):
                raise bad_request("value= is a non-empty printable token")
            st.set_token(value)
            write_client_files(self.opts, st)
            return self.send_json(200, {"token": "rotated"})
        if method == "POST" and parts == ["delay"]:
            try:
                ms = int(p.get("ms", ""))
            except ValueError:
                raise bad_request("ms= is a number of milliseconds")
            st.delay_ms = max(0, ms)
            return self.send_json(200, {"delayMs": st.delay_ms})
        if method == "GET" and parts == ["watches"]:
            with st.lock:
                ws = [{"group": w.res.group, "version": w.version, "resource": w.res.plural,
                       "namespace": w.ns or "", "labelSelector": w.params.get("labelSelector", ""),
                       "fieldSelector": w.params.get("fieldSelector", ""),
                       "resourceVersion": w.params.get("resourceVersion", ""),
                       "allowWatchBookmarks": w.params.get("allowWatchBookmarks", ""), "since": w.started}
                      for w in st.watches]
            return self.send_json(200, {"count": len(ws), "watches": ws})
        if method == "GET" and parts == ["state"]:
            with st.lock:
                return self.send_json(200, {"resourceVersion": str(st.rv), "compacted": str(st.compacted),
                                            "delayMs": st.delay_ms, "objects": len(st.objects)})
        raise ApiError(404, "NotFound", "no such test endpoint")


# ---------------------------------------------------------------------------
# Start-up

def ensure_certs(d):
    ca_crt, ca_key = os.path.join(d, "ca.crt"), os.path.join(d, "ca.key")
    crt, key = os.path.join(d, "server.crt"), os.path.join(d, "server.key")
    if all(os.path.exists(f) for f in (ca_crt, ca_key, crt, key)):
        return crt, key, ca_crt
    tmp = tempfile.mkdtemp(dir=d, prefix=".certs.")

    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650", "-sha256",
        "-subj", "/CN=bulwark-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=bulwark-test-apiserver")
    with open(os.path.join(tmp, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "3650", "-sha256", "-extfile", "ext.cnf")
    for name in ("ca.key", "server.key"):
        os.chmod(os.path.join(tmp, name), 0o600)
    for name in ("ca.key", "server.key", "server.crt", "ca.crt"):  # ca.crt last: its presence means all are there
        os.replace(os.path.join(tmp, name), os.path.join(d, name))
    for name in os.listdir(tmp):
        os.unlink(os.path.join(tmp, name))
    os.rmdir(tmp)
    return crt, key, ca_crt


def write_client_files(opts, st):
    d = opts.state_dir
    with open(os.path.join(d, "ca.crt"), "rb") as f:
        ca = base64.b64encode(f.read()).decode()
    kubeconfig = (
        "apiVersion: v1\nkind: Config\n"
        "clusters:\n- name: bulwark-test\n  cluster:\n    server: https://127.0.0.1:%d\n"
        "    certificate-authority-data: %s\n"
        "users:\n- name: bulwark-test\n  user:\n    token: %s\n"
        "contexts:\n- name: bulwark-test\n  context:\n    cluster: bulwark-test\n    user: bulwark-test\n"
        "    namespace: default\n"
        "current-context: bulwark-test\n") % (opts.port, ca, st.token)
    atomic_write(os.path.join(d, "kubeconfig"), kubeconfig, 0o600)
    # the same with tokenFile: clients that reread it follow /_test/token rotations
    atomic_write(os.path.join(d, "kubeconfig-tokenfile"), kubeconfig.replace(
        "    token: %s\n" % st.token, "    tokenFile: %s\n" % os.path.join(d, "token")), 0o600)
    atomic_write(os.path.join(d, "token"), st.token + "\n", 0o600)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--port", type=int, default=0, help="0 (default) picks a free port")
    ap.add_argument("--token", help="bearer token (default: the persisted one, else a random one)")
    ap.add_argument("--bookmark-interval", type=float, default=1.0,
                    help="seconds between BOOKMARK events on watches that allow them (default 1)")
    ap.add_argument("--quiet", action="store_true", help="do not log requests to stderr")
    opts = ap.parse_args()
    d = opts.state_dir = os.path.abspath(opts.state_dir)
    os.makedirs(d, exist_ok=True)
    ready = os.path.join(d, "ready")
    try:
        os.unlink(ready)
    except FileNotFoundError:
        pass

    st = Store(d)
    fresh = not st.load()
    if opts.token:
        st.token = opts.token
    elif not st.token:
        st.token = secrets.token_hex(16)
    if fresh:
        st.bootstrap()
    st.save()

    crt, key, _ = ensure_certs(d)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(crt, key)
    ctx.set_alpn_protocols(["http/1.1"])

    Handler.store, Handler.opts = st, opts
    httpd = Server(("127.0.0.1", opts.port), Handler)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
    opts.port = httpd.server_address[1]

    write_client_files(opts, st)
    atomic_write(os.path.join(d, "port"), "%d\n" % opts.port)
    atomic_write(os.path.join(d, "pid"), "%d\n" % os.getpid())
    atomic_write(ready, "%d\n" % os.getpid())

    def stop(signum, frame):
        st.stopping = True
        threading.Thread(target=httpd.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if not opts.quiet:
        sys.stderr.write("listening on https://127.0.0.1:%d (state %s, resourceVersion %d)\n" % (opts.port, d, st.rv))
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        st.stopping = True
        try:
            os.unlink(ready)
        except FileNotFoundError:
            pass
        deadline = time.monotonic() + 2
        for w in list(st.watches):
            w.done.wait(max(0, deadline - time.monotonic()))
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
