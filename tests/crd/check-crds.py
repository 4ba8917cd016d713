#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks Bulwark's CustomResourceDefinitions and deployment manifests.

  tests/crd/check-crds.py [SOURCE_ROOT]

Without a cluster: what the API server would refuse in the CRDs themselves
(structural schema rules, printer columns, list types), that the schemas say
what the agent says (limits from agent/policy.h, enums, and the patterns for
paths, ports and CIDRs compared with Python ports of the agent's parser on
generated strings), that every example and every policies/ document of the
two CRD kinds validates, and that the documents of tests/crd/bad/ are
rejected for the reason their "# expect:" line gives. Documents are checked
by a small OpenAPI validator with the API server's semantics (nulls pruned,
unknown fields rejected as kubectl's strict field validation does). CEL
rules are not evaluated: each one has a Python mirror below, and a rule
without one fails the run. Then the manifests of crd/deploy: RBAC, the
DaemonSet's mounts and flags, the settings file against agent/config.c, and
`kubectl kustomize` when kubectl is installed.

Prints one line per check and "N passed, N failed" last; exits 1 on failure.
Needs python3 and PyYAML (Debian: python3-yaml).
"""

import copy
import os
import random
import re
import shutil
import socket
import subprocess
import sys

try:
    import yaml
except ImportError:
    print("check-crds: needs PyYAML (Debian package python3-yaml)")
    print("0 passed, 1 failed")
    sys.exit(1)

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                       os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CRD_DIR = os.path.join(ROOT, "crd")
GROUP, VERSION = "bulwark.dev", "v1alpha1"
API_VERSION = GROUP + "/" + VERSION

passed = failed = skipped = 0


def check(ok, what, why=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok: " + what)
    else:
        failed += 1
        print("FAIL: " + what + (": " + why if why else ""))
    return ok


def skip(what):
    global skipped
    skipped += 1
    print("skip: " + what)


def rel(path):
    return os.path.relpath(path, ROOT)


# ---- YAML as the API server reads it ---------------------------------------
# kubectl turns YAML into JSON: timestamps stay strings. Everything else
# (YAML 1.1 booleans, octal) PyYAML reads as go-yaml does.

class Loader(yaml.SafeLoader):
    pass


Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.load_all(f, Loader=Loader) if d is not None]


def expect_line(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"#\s*expect:\s*(.*\S)", line)
            if m:
                return m.group(1)
    return None


# ---- the agent's own rules, ported from agent/policy-parse.c ---------------

def agent_path_ok(s, prefix):
    """parse_path() for exec and files rules."""
    if not s or "\0" in s or s[0] != "/" or len(s.encode("utf-8")) > 255 or "//" in s:
        return False
    if any(c in (".", "..") for c in s[1:].split("/")):
        return False
    return prefix or len(s) == 1 or not s.endswith("/")


def agent_port_ok(s):
    """parse_port() for a string entry, without the N <= M check."""
    lo, dash, hi = s.partition("-")

    def number(x):
        if not x or not all(c in "0123456789" for c in x):
            return None
        if x[0] == "0" and len(x) > 1:
            return None
        v = int(x)
        return v if 1 <= v <= 65535 else None

    return number(lo) is not None and (not dash or number(hi) is not None)


def agent_cidr_ok(s):
    """parse_cidr() without the host-bits check."""
    if "\0" in s:
        return False
    addr, slash, plen = s.partition("/")
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    try:
        socket.inet_pton(family, addr)
    except (OSError, ValueError):
        return False
    if slash:
        if not plen or not all(c in "0123456789" for c in plen) or len(plen) > 3 or \
                (len(plen) > 1 and plen[0] == "0"):
            return False
        if int(plen) > (32 if family == socket.AF_INET else 128):
            return False
    return True


# ---- CEL rules and their Python mirrors ------------------------------------

def _selector_terms(v):
    return len(v.get("matchLabels") or {}) + len(v.get("matchExpressions") or [])


def _expression_values(v):
    n = len(v.get("values") or [])
    if v.get("operator") in ("In", "NotIn"):
        return "values" in v and n > 0
    return "values" not in v or n == 0


CEL_MIRRORS = {
    "has(self.path) != has(self.prefix)":
        lambda v: ("path" in v) != ("prefix" in v),
    "size(bytes(self)) <= 255":
        lambda v: len(v.encode("utf-8")) <= 255,
    "(has(self.matchLabels) ? size(self.matchLabels) : 0) + "
    "(has(self.matchExpressions) ? size(self.matchExpressions) : 0) <= 32":
        lambda v: _selector_terms(v) <= 32,
    "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : "
    "(!has(self.values) || size(self.values) == 0)":
        _expression_values,
}


# ---- structural schema rules -----------------------------------------------

SCHEMA_KEYS = {
    "type", "format", "description", "title", "default", "nullable", "enum", "example",
    "maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum", "multipleOf",
    "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems",
    "maxProperties", "minProperties", "required", "items", "properties", "additionalProperties",
    "allOf", "anyOf", "oneOf", "not", "externalDocs",
    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type", "x-kubernetes-validations",
}
FORBIDDEN_KEYS = {"$ref", "id", "additionalItems", "patternProperties", "definitions", "dependencies"}
TYPES = {"string", "number", "integer", "boolean", "array", "object"}
FORMATS = {"int32", "int64", "float", "double", "byte", "date", "date-time", "password",
           "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac", "uuid", "duration"}
# Fields allowed at the root of a schema whose CRD has a status subresource.
ROOT_KEYS = {"description", "type", "format", "title", "maximum", "exclusiveMaximum", "minimum",
             "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems",
             "uniqueItems", "multipleOf", "required", "items", "properties", "externalDocs",
             "example", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-validations"}
INT_OR_STRING_ANYOF = [{"type": "integer"}, {"type": "string"}]
# Not in Go's RE2: lookaround, backreferences, possessive and atomic groups, \Z.
NOT_RE2 = re.compile(r"\(\?[=!<>]|\\[1-9]|[*+?}]\+|\(\?>|\\Z")


def is_int_or_string(s):
    return bool(s.get("x-kubernetes-int-or-string"))


def structural_errors(s, path, level, errors, ancestors_bounded=True, cel=None):
    """Collects what ValidateStructural and the CRD validation would refuse.
    level: root, field (a property or additionalProperties), item."""
    if not isinstance(s, dict):
        errors.append(f"{path}: not a schema object")
        return
    for k in s:
        if k in FORBIDDEN_KEYS:
            errors.append(f"{path}.{k}: not supported in CRD schemas")
        elif k not in SCHEMA_KEYS:
            errors.append(f"{path}.{k}: unknown schema keyword")
    if level == "root":
        for k in s:
            if k not in ROOT_KEYS:
                errors.append(f"{path}.{k}: not allowed at the root with the status subresource")
        if s.get("type") != "object":
            errors.append(f"{path}.type: must be object at the root")
    t = s.get("type")
    if t is None:
        if is_int_or_string(s):
            if s.get("anyOf") != INT_OR_STRING_ANYOF and not (
                    s.get("allOf") and s["allOf"][0].get("anyOf") == INT_OR_STRING_ANYOF):
                errors.append(f"{path}: x-kubernetes-int-or-string needs anyOf [{{type: integer}}, {{type: string}}]")
        else:
            errors.append(f"{path}.type: must not be empty ({level})")
    elif t not in TYPES:
        errors.append(f"{path}.type: {t!r} is not an OpenAPI v3 type")
    elif is_int_or_string(s):
        errors.append(f"{path}.type: must be empty with x-kubernetes-int-or-string")
    if s.get("x-kubernetes-preserve-unknown-fields") is not None:
        errors.append(f"{path}: x-kubernetes-preserve-unknown-fields is not used in Bulwark's schemas")
    if s.get("uniqueItems"):
        errors.append(f"{path}.uniqueItems: forbidden (quadratic); use x-kubernetes-list-type: set")
    if "default" in s and level == "root":
        errors.append(f"{path}.default: not allowed at the root")
    if "format" in s and s["format"] not in FORMATS:
        errors.append(f"{path}.format: {s['format']!r} is not a known format")
    if "pattern" in s:
        p = s["pattern"]
        try:
            re.compile(p)
        except re.error as e:
            errors.append(f"{path}.pattern: does not compile: {e}")
        if NOT_RE2.search(p):
            errors.append(f"{path}.pattern: uses syntax Go's regexp (RE2) lacks")
        if not (p.startswith("^") and p.endswith("$")):
            errors.append(f"{path}.pattern: not anchored at both ends")
    if "enum" in s and t:
        pytype = {"string": str, "integer": int, "boolean": bool}.get(t)
        if pytype and not all(isinstance(e, pytype) for e in s["enum"]):
            errors.append(f"{path}.enum: values are not all of type {t}")
    # Junctors hold value validations only.
    for j in ("allOf", "anyOf", "oneOf", "not"):
        subs = s.get(j)
        if subs is None:
            continue
        subs = subs if isinstance(subs, list) else [subs]
        if j == "anyOf" and subs == INT_OR_STRING_ANYOF and is_int_or_string(s):
            continue
        for i, sub in enumerate(subs):
            for k in ("type", "description", "title", "default", "nullable", "additionalProperties",
                      "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource",
                      "x-kubernetes-int-or-string", "x-kubernetes-list-type",
                      "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
                      "x-kubernetes-validations"):
                if k in sub:
                    errors.append(f"{path}.{j}[{i}].{k}: must not be set inside {j} to be structural")
            if "metadata" in sub.get("properties", {}):
                errors.append(f"{path}.{j}[{i}].properties.metadata: not in a nested context")
    props = s.get("properties", {})
    if props and s.get("additionalProperties") not in (None, True):
        errors.append(f"{path}: properties and additionalProperties are mutually exclusive")
    if "additionalProperties" in s and level == "root":
        errors.append(f"{path}.additionalProperties: not allowed at the root")
    for r in s.get("required", []):
        if r not in props:
            errors.append(f"{path}.required: {r!r} is not a property")
    if t == "array" and "items" not in s:
        errors.append(f"{path}.items: must be specified for an array")
    if t == "array" and "maxItems" not in s:
        errors.append(f"{path}.maxItems: every list is bounded (CEL cost, request size)")
    lt = s.get("x-kubernetes-list-type")
    if lt is not None:
        if t != "array":
            errors.append(f"{path}.x-kubernetes-list-type: only for arrays")
        elif lt not in ("atomic", "set", "map"):
            errors.append(f"{path}.x-kubernetes-list-type: {lt!r} is not atomic, set or map")
        items = s.get("items", {})
        if lt == "set" and items.get("type") in ("object", "array"):
            errors.append(f"{path}: items of a set list must be scalars here")
        if lt == "map":
            keys = s.get("x-kubernetes-list-map-keys") or []
            if not keys:
                errors.append(f"{path}.x-kubernetes-list-map-keys: required with list-type map")
            if items.get("type") != "object":
                errors.append(f"{path}.items.type: must be object with list-type map")
            for k in keys:
                ks = items.get("properties", {}).get(k)
                if ks is None:
                    errors.append(f"{path}.x-kubernetes-list-map-keys: {k!r} is not an item property")
                elif ks.get("type") in ("object", "array") or ks.get("nullable"):
                    errors.append(f"{path}.items.properties.{k}: a map key must be a non-nullable scalar")
                elif k not in items.get("required", []) and "default" not in ks:
                    errors.append(f"{path}.items.properties.{k}: a map key must be required or defaulted")
    elif "x-kubernetes-list-map-keys" in s:
        errors.append(f"{path}.x-kubernetes-list-map-keys: needs x-kubernetes-list-type: map")
    if t == "object" and "additionalProperties" in s and "maxProperties" not in s:
        errors.append(f"{path}.maxProperties: every map is bounded (CEL cost, request size)")
    for i, v in enumerate(s.get("x-kubernetes-validations", [])):
        where = f"{path}.x-kubernetes-validations[{i}]"
        rule, msg = v.get("rule", ""), v.get("message", "")
        if not rule.strip():
            errors.append(f"{where}.rule: empty")
        if not msg.strip() or "\n" in msg:
            errors.append(f"{where}.message: a one-line message is required")
        if set(v) - {"rule", "message"}:
            errors.append(f"{where}: only rule and message are used (fieldPath, reason need 1.28+)")
        if is_int_or_string(s):
            errors.append(f"{where}: CEL on an int-or-string value is costed as a string of the "
                          "whole request size; the API server would refuse the CRD")
        if t == "string" and "maxLength" not in s:
            errors.append(f"{where}: the string needs maxLength to bound the rule's cost")
        if not ancestors_bounded:
            errors.append(f"{where}: a list or map above it has no maxItems/maxProperties")
        if cel is not None:
            cel.append((path, rule, msg))
    # Descend.
    bounded = ancestors_bounded
    if t == "array":
        structural_errors(s.get("items", {}), path + ".items", "item", errors,
                          bounded and "maxItems" in s, cel)
    for k, sub in props.items():
        if level == "root" and k == "metadata":
            if sub != {"type": "object"} and set(sub.get("properties", {})) - {"name", "generateName"}:
                errors.append(f"{path}.properties.metadata: only name and generateName may be restricted")
            continue
        structural_errors(sub, f"{path}.properties.{k}", "field", errors, bounded, cel)
    ap = s.get("additionalProperties")
    if isinstance(ap, dict):
        structural_errors(ap, path + ".additionalProperties", "field", errors,
                          bounded and "maxProperties" in s, cel)


def schema_at(schema, jsonpath):
    """The schema that a printer column's JSONPath points to, or None."""
    if jsonpath == ".metadata.creationTimestamp":
        return {"type": "string", "format": "date-time"}
    s = schema
    for part in re.findall(r"\.([A-Za-z0-9_]+)|(\[[^\]]*\])", jsonpath):
        name, index = part
        if name:
            s = s.get("properties", {}).get(name)
        else:
            s = s.get("items") if s.get("type") == "array" else None
        if s is None:
            return None
    return s


# ---- an OpenAPI validator with the API server's semantics ------------------

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z")
_pattern_cache = {}


def go_pattern(p):
    """Go's "$" without (?m) is the end of text; Python's also matches before a final newline."""
    rx = _pattern_cache.get(p)
    if rx is None:
        out, in_class, esc = [], False, False
        for c in p:
            if esc:
                out.append(c)
                esc = False
            elif c == "\\":
                out.append(c)
                esc = True
            elif c == "[":
                in_class = True
                out.append(c)
            elif c == "]":
                in_class = False
                out.append(c)
            elif c == "$" and not in_class:
                out.append(r"\Z")
            else:
                out.append(c)
        rx = _pattern_cache[p] = re.compile("".join(out))
    return rx


def q(v):
    return '"' + v + '"' if isinstance(v, str) else repr(v) if not isinstance(v, bool) else str(v).lower()


def prune_nulls(x, s):
    """PruneNonNullableNullsWithoutDefaults: a null for a non-nullable field is no field."""
    if isinstance(x, dict) and isinstance(s, dict):
        for k in list(x):
            sub = s.get("properties", {}).get(k)
            if sub is None and isinstance(s.get("additionalProperties"), dict):
                sub = s["additionalProperties"]
            if x[k] is None and sub is not None and not sub.get("nullable") and "default" not in sub:
                del x[k]
            else:
                prune_nulls(x[k], sub)
    elif isinstance(x, list) and isinstance(s, dict):
        for v in x:
            prune_nulls(v, s.get("items"))


def validate(v, s, path, errors):
    """Appends "path: reason" for each way v breaks schema s (which has passed
    the structural checks). Unknown fields are errors, as with kubectl's
    strict field validation; the API server alone would prune them."""
    start = len(errors)
    if v is None:
        if not s.get("nullable"):
            errors.append(f"{path}: must not be null")
        return
    t = s.get("type")
    if is_int_or_string(s):
        if isinstance(v, bool) or not isinstance(v, (int, str)):
            errors.append(f"{path}: must be an integer or a string")
            return
    elif t == "object" and not isinstance(v, dict) or t == "array" and not isinstance(v, list) \
            or t == "string" and not isinstance(v, str) or t == "boolean" and not isinstance(v, bool) \
            or t == "integer" and (isinstance(v, bool) or not isinstance(v, int)) \
            or t == "number" and (isinstance(v, bool) or not isinstance(v, (int, float))):
        errors.append(f"{path}: must be of type {t}, not {type(v).__name__} {q(v)}")
        return
    if "enum" in s and v not in s["enum"]:
        errors.append(f"{path}: {q(v)} is not one of {', '.join(map(str, s['enum']))}")
    if isinstance(v, str):
        if "maxLength" in s and len(v) > s["maxLength"]:
            errors.append(f"{path}: {len(v)} characters, more than the maximum {s['maxLength']}")
        if "minLength" in s and len(v) < s["minLength"]:
            errors.append(f"{path}: {len(v)} characters, fewer than the minimum {s['minLength']}")
        if "pattern" in s and not go_pattern(s["pattern"]).search(v):
            errors.append(f"{path}: {q(v)} does not match the pattern")
        if s.get("format") == "date-time" and not RFC3339.match(v):
            errors.append(f"{path}: {q(v)} is not an RFC 3339 date-time")
    if isinstance(v, int) and not isinstance(v, bool):
        if "maximum" in s and v > s["maximum"]:
            errors.append(f"{path}: {v} is greater than the maximum {s['maximum']}")
        if "minimum" in s and v < s["minimum"]:
            errors.append(f"{path}: {v} is less than the minimum {s['minimum']}")
        if s.get("format") == "int32" and not -2**31 <= v < 2**31 or \
                s.get("format") == "int64" and not -2**63 <= v < 2**63:
            errors.append(f"{path}: {v} does not fit {s['format']}")
    if isinstance(v, list):
        if "maxItems" in s and len(v) > s["maxItems"]:
            errors.append(f"{path}: {len(v)} items, more than the maximum {s['maxItems']}")
        if "minItems" in s and len(v) < s["minItems"]:
            errors.append(f"{path}: {len(v)} items, fewer than the minimum {s['minItems']}")
        lt = s.get("x-kubernetes-list-type")
        seen = {}
        for i, item in enumerate(v):
            validate(item, s["items"], f"{path}[{i}]", errors)
            if lt == "set":
                key = repr(item)
            elif lt == "map" and isinstance(item, dict):
                key = repr([item.get(k) for k in s["x-kubernetes-list-map-keys"]])
            else:
                continue
            if key in seen:
                errors.append(f"{path}[{i}]: duplicate entry {q(item) if lt == 'set' else key}")
            seen[key] = i
    if isinstance(v, dict):
        props = s.get("properties", {})
        ap = s.get("additionalProperties")
        for r in s.get("required", []):
            if r not in v:
                errors.append(f"{path + '.' if path else ''}{r}: required field is missing")
        if "maxProperties" in s and len(v) > s["maxProperties"]:
            errors.append(f"{path}: {len(v)} entries, more than the maximum {s['maxProperties']}")
        for k, item in v.items():
            if k in props:
                validate(item, props[k], f"{path + '.' if path else ''}{k}", errors)
            elif isinstance(ap, dict):
                validate(item, ap, f"{path}[{k}]", errors)
            else:
                errors.append(f"{path + '.' if path else ''}{k}: unknown field")
    for rule in s.get("x-kubernetes-validations", []):
        if len(errors) > start:
            break  # judged here only for values that passed the schema
        mirror = CEL_MIRRORS.get(rule["rule"])
        if mirror is None:
            errors.append(f"{path}: CEL rule without a Python mirror: {rule['rule']}")
        elif not mirror(v):
            errors.append(f"{path}: {rule['message']}")


def validate_document(doc, crds):
    """Errors for one document, as the API server (and kubectl's strict
    field validation) would report them."""
    errors = []
    if not isinstance(doc, dict):
        return ["document: not a map"]
    kind = doc.get("kind")
    crd = crds.get(kind)
    if crd is None:
        return [f"kind: {q(kind)} has no CustomResourceDefinition"]
    if doc.get("apiVersion") != API_VERSION:
        return [f"apiVersion: {q(doc.get('apiVersion'))} is not served (only {API_VERSION})"]
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        errors.append("metadata.name: required field is missing")
    elif len(meta["name"]) > 253 or not DNS1123_SUBDOMAIN.match(meta["name"]):
        errors.append(f"metadata.name: {q(meta['name'])} is not a DNS-1123 subdomain")
    if isinstance(meta, dict):
        ns = meta.get("namespace")
        if crd["spec"]["scope"] == "Cluster" and ns is not None:
            errors.append(f"metadata.namespace: must not be set: a {kind} is cluster-scoped")
        if crd["spec"]["scope"] == "Namespaced" and (
                not isinstance(ns, str) or len(ns) > 63 or not DNS1123_LABEL.match(ns)):
            errors.append("metadata.namespace: a DNS-1123 label is required (examples name their namespace)")
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    body = {k: copy.deepcopy(v) for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
    prune_nulls(body, schema)
    sub = dict(schema, properties={k: v for k, v in schema["properties"].items()
                                   if k not in ("apiVersion", "kind", "metadata")})
    validate(body, sub, "", errors)
    return errors


# ---- the checks ------------------------------------------------------------

def header_limits():
    """The agent's limits, from its headers."""
    text = ""
    for h in ("agent/policy.h", "bpf/include/bulwark_abi.h"):
        with open(os.path.join(ROOT, h), encoding="utf-8") as f:
            text += f.read()
    defs = {m.group(1): m.group(2) for m in re.finditer(r"#define\s+(BW_\w+)\s+(.+)", text)}

    def value(name):
        expr = re.sub(r"BW_\w+", lambda m: str(value(m.group(0))), defs[name].split("/*")[0])
        expr = re.sub(r"(\d)[uUlL]+", r"\1", expr).strip()
        if not re.fullmatch(r"[0-9\s()+*/<-]+", expr):
            raise ValueError(f"{name}: cannot evaluate {expr!r}")
        return eval(expr, {"__builtins__": {}})  # digits and operators only

    return {k: value(k) for k in ("BW_MAX_RULES_PER_LIST", "BW_MAX_PORTS_PER_RULE",
                                   "BW_MAX_SELECTOR_TERMS", "BW_MAX_SELECTOR_VALUES",
                                   "BW_RULE_PATH_MAX")}


def check_crds():
    crds = {}
    expected = {
        "ClusterBulwarkPolicy": ("bulwark.dev_clusterbulwarkpolicies.yaml", "clusterbulwarkpolicies",
                                 "clusterbulwarkpolicy", "Cluster", "cbp"),
        "BulwarkPolicy": ("bulwark.dev_bulwarkpolicies.yaml", "bulwarkpolicies", "bulwarkpolicy",
                          "Namespaced", "bp"),
    }
    for kind, (fname, plural, singular, scope, short) in expected.items():
        path = os.path.join(CRD_DIR, fname)
        try:
            docs = load_all(path)
        except (OSError, yaml.YAMLError) as e:
            check(False, f"{rel(path)} loads", str(e))
            continue
        check(len(docs) == 1, f"{rel(path)} holds one document")
        crd = docs[0]
        crds[kind] = crd
        spec = crd.get("spec", {})
        names = spec.get("names", {})
        check(crd.get("apiVersion") == "apiextensions.k8s.io/v1" and crd.get("kind") == "CustomResourceDefinition",
              f"{kind}: apiextensions.k8s.io/v1 CustomResourceDefinition")
        check(crd.get("metadata", {}).get("name") == f"{plural}.{GROUP}" and spec.get("group") == GROUP,
              f"{kind}: named {plural}.{GROUP}, group {GROUP}")
        check(names.get("kind") == kind and names.get("listKind") == kind + "List"
              and names.get("plural") == plural and names.get("singular") == singular,
              f"{kind}: kind, listKind, plural {plural}, singular {singular}")
        check(names.get("shortNames") == [short], f"{kind}: short name {short}")
        check("bulwark" in names.get("categories", []) and "all" not in names.get("categories", []),
              f"{kind}: category bulwark, not all")
        check(spec.get("scope") == scope, f"{kind}: scope {scope}")
        versions = spec.get("versions", [])
        ok = len(versions) == 1 and versions[0].get("name") == VERSION and versions[0].get("served") is True \
            and versions[0].get("storage") is True
        check(ok, f"{kind}: one version, {VERSION}, served and stored")
        if not ok:
            continue
        v = versions[0]
        check(v.get("subresources") == {"status": {}}, f"{kind}: status subresource")
        schema = v.get("schema", {}).get("openAPIV3Schema", {})
        errors, cel = [], []
        structural_errors(schema, "openAPIV3Schema", "root", errors, True, cel)
        check(not errors, f"{kind}: structural schema", "; ".join(errors[:8]))
        check("preserve-unknown-fields" not in yaml.safe_dump(schema),
              f"{kind}: x-kubernetes-preserve-unknown-fields nowhere")
        check(schema.get("required") == ["spec"] and schema["properties"]["spec"].get("required") == ["mode"],
              f"{kind}: spec required, spec.mode required")
        places = {}
        for where, rule, msg in cel:
            places.setdefault(rule, []).append(where)
        for rule, where in places.items():
            check(rule in CEL_MIRRORS, f"{kind}: CEL rule in {len(where)} place(s), not evaluated here, "
                                       f"mirrored in Python: {rule}", "no mirror; at " + ", ".join(where))
        # Printer columns.
        cols = {c.get("name"): c for c in v.get("additionalPrinterColumns", [])}
        want = {"Mode": ".spec.mode", "Rules": ".status.rules", "Enforcing": ".status.enforcingNodes",
                "Failed": ".status.failedNodes", "Age": ".metadata.creationTimestamp"}
        check(all(n in cols and cols[n].get("jsonPath") == p for n, p in want.items()),
              f"{kind}: printer columns Mode, Rules, Enforcing, Failed, Age")
        for c in v.get("additionalPrinterColumns", []):
            target = schema_at(schema, c.get("jsonPath", ""))
            ctype = c.get("type")
            ok = target is not None and ctype in ("integer", "number", "string", "boolean", "date") and (
                ctype == target.get("type") or ctype == "date" and target.get("format") == "date-time")
            check(ok, f"{kind}: printer column {c.get('name')} ({c.get('jsonPath')}) has type {ctype} in the schema")
        # The agent's limits and enums.
        sp = schema["properties"]["spec"]["properties"]
        lim = header_limits()
        sizes = [("exec.deny", sp["exec"]["properties"]["deny"]["maxItems"], lim["BW_MAX_RULES_PER_LIST"]),
                 ("files.allow", sp["files"]["properties"]["allow"]["maxItems"], lim["BW_MAX_RULES_PER_LIST"]),
                 ("network.deny", sp["network"]["properties"]["deny"]["maxItems"], lim["BW_MAX_RULES_PER_LIST"]),
                 ("ports", sp["network"]["properties"]["deny"]["items"]["properties"]["ports"]["maxItems"],
                  lim["BW_MAX_PORTS_PER_RULE"]),
                 ("matchExpressions", sp["podSelector"]["properties"]["matchExpressions"]["maxItems"],
                  lim["BW_MAX_SELECTOR_TERMS"]),
                 ("values", sp["podSelector"]["properties"]["matchExpressions"]["items"]["properties"]["values"]
                  ["maxItems"], lim["BW_MAX_SELECTOR_VALUES"]),
                 ("path", sp["exec"]["properties"]["deny"]["items"]["properties"]["path"]["maxLength"],
                  lim["BW_RULE_PATH_MAX"])]
        bad = [f"{n}: {a} != {b}" for n, a, b in sizes if a != b]
        check(not bad, f"{kind}: limits match agent/policy.h and bulwark_abi.h", "; ".join(bad))
        enums = [(sp["mode"]["enum"], ["Block", "Audit"]),
                 (sp["network"]["properties"]["deny"]["items"]["properties"]["protocol"]["enum"],
                  ["TCP", "UDP", "any"]),
                 (sp["files"]["properties"]["deny"]["items"]["properties"]["access"]["items"]["enum"],
                  ["read", "write"]),
                 (sp["podSelector"]["properties"]["matchExpressions"]["items"]["properties"]["operator"]["enum"],
                  ["In", "NotIn", "Exists", "DoesNotExist"])]
        check(all(a == b for a, b in enums), f"{kind}: enums for mode, protocol, access, operator")
        same = {}

        def collect(x):
            if isinstance(x, dict):
                for k, sub in x.get("properties", {}).items():
                    if k in ("path", "prefix", "cidr", "ports", "matchLabels", "matchExpressions"):
                        same.setdefault(k, []).append(sub)
                    collect(sub)
                collect(x.get("items"))

        collect(schema["properties"]["spec"])
        differ = [k for k, subs in same.items() if any(x != subs[0] for x in subs)]
        check(not differ and len(same.get("path", [])) == 4,
              f"{kind}: path, prefix, cidr, ports and selectors are the same schema in every list",
              "differ: " + ", ".join(differ))
        check(("namespaceSelector" in sp) == (kind == "ClusterBulwarkPolicy"),
              f"{kind}: namespaceSelector only in ClusterBulwarkPolicy")
        st = schema["properties"]["status"]["properties"]
        check(st["conditions"].get("x-kubernetes-list-type") == "map"
              and st["conditions"].get("x-kubernetes-list-map-keys") == ["type"]
              and st["nodes"].get("x-kubernetes-list-type") == "map"
              and st["nodes"].get("x-kubernetes-list-map-keys") == ["name"]
              and {"enforcingNodes", "failedNodes", "rules"} <= set(st),
              f"{kind}: status conditions and nodes are list-type maps; counts present")
    if len(crds) == 2:
        a = copy.deepcopy(crds["ClusterBulwarkPolicy"]["spec"]["versions"][0])
        b = copy.deepcopy(crds["BulwarkPolicy"]["spec"]["versions"][0])
        for v in (a, b):
            v["schema"]["openAPIV3Schema"].pop("description", None)
        del a["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["namespaceSelector"]
        check(a == b, "the two CRDs are the same but for namespaceSelector, names and scope")
    return crds


def check_status_writer(crds):
    """The fields agent/policy-status.c writes exist in the status schema."""
    src = os.path.join(ROOT, "agent", "policy-status.c")
    if not os.path.exists(src) or "ClusterBulwarkPolicy" not in crds:
        skip("agent/policy-status.c: not there, status fields not compared")
        return
    with open(src, encoding="utf-8") as f:
        text = f.read()
    written = {}
    for var, key in re.findall(r'json_object_object_add\(\s*(\w+),\s*"(\w+)"', text):
        written.setdefault(var, set()).add(key)
    st = crds["ClusterBulwarkPolicy"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    where = {"pstatus": st, "entry": st["properties"]["nodes"]["items"],
             "cond": st["properties"]["conditions"]["items"]}
    for var, s in where.items():
        keys = written.get(var, set())
        missing = sorted(keys - set(s.get("properties", {})))
        check(keys and not missing, f"agent/policy-status.c: the fields of {var} ({', '.join(sorted(keys))}) "
                                    "are in the status schema", "not in it: " + ", ".join(missing))
    types = set(re.findall(r'"type",\s*json_object_new_string\("(\w+)"\)', text))
    columns = {c["jsonPath"] for crd in crds.values() for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]}
    check(types and all(f'.status.conditions[?(@.type=="{t}")].status' in columns for t in types),
          f"agent/policy-status.c: condition {', '.join(sorted(types))} has a printer column")


def check_patterns(crds):
    """The schema's patterns against the agent's parser, on generated strings."""
    if "ClusterBulwarkPolicy" not in crds:
        return
    sp = crds["ClusterBulwarkPolicy"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rule = sp["properties"]["files"]["properties"]["deny"]["items"]["properties"]
    net = sp["properties"]["network"]["properties"]["deny"]["items"]["properties"]
    rnd = random.Random(20261121)

    def schema_ok(v, s):
        errors = []
        validate(v, s, "x", errors)
        if not errors:
            for r in s.get("x-kubernetes-validations", []):
                if not CEL_MIRRORS[r["rule"]](v):
                    return False
        return not errors

    for key in ("path", "prefix"):
        samples = ["/", "/bin/sh", "/bin/", "/tmp", "//", "/.", "/..", "/...", "/a/.b", "/a/..b/", "/a/./",
                   "bin/sh", "", "/a\0b", "/" + "x" * 254, "/" + "x" * 255, "/" + "é" * 127, "/" + "é" * 128]
        samples += ["".join(rnd.choice("/./a.é/") for _ in range(rnd.randint(0, 12))) for _ in range(20000)]
        bad = [s for s in samples if schema_ok(s, rule[key]) != agent_path_ok(s, key == "prefix")]
        check(not bad, f"{key} pattern, maxLength and byte rule agree with the agent's parser on "
                       f"{len(samples)} strings", "differ on " + ", ".join(map(repr, bad[:5])))
    ports = net["ports"]["items"]
    samples = [str(i) for i in range(0, 70001)] + ["080", "00", "1-", "-1", "1--2", "1-65535", "65535-65536",
                                                    "0-1", "01-2", ""]
    samples += ["".join(rnd.choice("0123456789-") for _ in range(rnd.randint(1, 12))) for _ in range(20000)]
    bad = [s for s in samples if schema_ok(s, ports) != agent_port_ok(s)]
    check(not bad, f"port string pattern agrees with the agent's parser on {len(samples)} strings",
          "differ on " + ", ".join(map(repr, bad[:5])))
    bad = [i for i in range(-2, 70002) if schema_ok(i, ports) != (1 <= i <= 65535)]
    check(not bad, "port numbers 1-65535 are accepted, and only those", repr(bad[:5]))

    def cidr_sample():
        k = rnd.random()
        if k < 0.25:
            s = "".join(rnd.choice("0123456789abcdefABCDEF:./") for _ in range(rnd.randint(0, 24)))
            return s
        if k < 0.65:
            groups = [format(rnd.randint(0, 0xffff), "x")[:rnd.randint(1, 5)] for _ in range(rnd.randint(1, 9))]
            if rnd.random() < 0.7:
                i = rnd.randint(0, len(groups))
                groups[i:i] = [""] * rnd.choice([1, 1, 1, 2])
            s = ":".join(groups)
            if rnd.random() < 0.3:
                s += ":" + ".".join(str(rnd.randint(0, 300)) for _ in range(rnd.choice([3, 4, 4, 5])))
        else:
            s = ".".join(rnd.choice([str(rnd.randint(0, 300)), "0" + str(rnd.randint(0, 9)), str(rnd.randint(0, 255))])
                         for _ in range(rnd.choice([3, 4, 4, 4, 5])))
        if rnd.random() < 0.6:
            s += "/" + rnd.choice([str(rnd.randint(0, 140)), "0" + str(rnd.randint(0, 9)), "", "x"])
        return s

    samples = ["::", "::/0", "0.0.0.0/0", "1::", "::ffff:169.254.169.254", "1:2:3:4:5:6:7::", "::1:2:3:4:5:6:7",
               "1:2:3:4:5:6:1.2.3.4", "1::2:3:4:5:1.2.3.4", "1::2:3:4:5:6:1.2.3.4", "fd00:ec2::254",
               "169.254.169.254/32", "10.0.0.1/8", "fe80::1%eth0", "1.2.3.4/033", "::1.2.3.4/128",
               "1:2:3:4:5:6:7:8/129", "010.0.0.0/8", "1.2.3", "", "1:2:3:4:5:6:7:8:9", "12345::"]
    samples += [cidr_sample() for _ in range(60000)]
    bad = [s for s in samples if schema_ok(s, net["cidr"]) != agent_cidr_ok(s)]
    accepted = sum(1 for s in samples if agent_cidr_ok(s))
    check(not bad and accepted > 1000,
          f"cidr pattern agrees with inet_pton and the agent's prefix rules on {len(samples)} strings "
          f"({accepted} valid)", "differ on " + ", ".join(map(repr, bad[:5])))


def check_documents(crds):
    if len(crds) != 2:
        return
    kinds = set(crds)

    def each(pattern):
        for path in sorted(glob(pattern)):
            try:
                docs = load_all(path)
            except (OSError, yaml.YAMLError) as e:
                check(False, f"{rel(path)} loads", str(e))
                continue
            for i, doc in enumerate(docs):
                yield path, i, doc

    examples = {}
    for path, i, doc in each(os.path.join(CRD_DIR, "examples", "*.yaml")):
        errors = validate_document(doc, crds)
        name = f"{doc.get('kind')} {doc.get('metadata', {}).get('name')}"
        check(not errors, f"{rel(path)}[{i}] ({name}) is valid", "; ".join(errors[:5]))
        examples[(doc.get("kind"), doc.get("metadata", {}).get("name"))] = (path, doc)
    found = {k for k, _ in examples}
    check(kinds <= found, "crd/examples has an example of each kind")
    for path, i, doc in each(os.path.join(ROOT, "policies", "*.y*ml")):
        kind, name = doc.get("kind"), doc.get("metadata", {}).get("name")
        if kind not in kinds:
            skip(f"{rel(path)}[{i}] ({kind} {name}): no CustomResourceDefinition for {kind} (node-local)")
            continue
        errors = validate_document(doc, crds)
        check(not errors, f"{rel(path)}[{i}] ({kind} {name}) is valid as a custom resource",
              "; ".join(errors[:5]))
        ex = examples.get((kind, name))
        check(ex is not None and ex[1].get("spec") == doc.get("spec"),
              f"{rel(path)} ({kind} {name}) has the same spec in crd/examples",
              "missing" if ex is None else f"differs from {rel(ex[0])}")
    here = os.path.dirname(os.path.abspath(__file__))
    for path, i, doc in each(os.path.join(here, "good", "*.yaml")):
        errors = validate_document(doc, crds)
        check(not errors, f"{rel(path)}[{i}] ({doc.get('kind')} {doc.get('metadata', {}).get('name')}) "
                          "is accepted", "; ".join(errors[:5]))
    bad_files = sorted(glob(os.path.join(here, "bad", "*.yaml")))
    check(len(bad_files) >= 5, f"tests/crd/bad holds documents that must be rejected ({len(bad_files)})")
    for path in bad_files:
        want = expect_line(path)
        try:
            docs = load_all(path)
        except yaml.YAMLError as e:
            check(False, f"{rel(path)} loads", str(e))
            continue
        errors = validate_document(docs[0], crds) if len(docs) == 1 else ["not one document"]
        check(want is not None and any(want in e for e in errors),
              f"{rel(path)} is rejected: {want}", "; ".join(errors) or "accepted")
    # The limits, exactly and one over.
    base = {"apiVersion": API_VERSION, "kind": "ClusterBulwarkPolicy", "metadata": {"name": "limits"}}
    cases = [
        ("4096 exec rules", {"exec": {"deny": [{"path": f"/bin/p{i}"} for i in range(4096)]}}, True),
        ("4097 exec rules", {"exec": {"deny": [{"path": f"/bin/p{i}"} for i in range(4097)]}}, False),
        ("4096 network allow rules", {"network": {"allow": [{"cidr": "10.0.0.0/8"}] * 4096}}, True),
        ("4097 network allow rules", {"network": {"allow": [{"cidr": "10.0.0.0/8"}] * 4097}}, False),
        ("16 ports", {"network": {"deny": [{"cidr": "::/0", "ports": list(range(1, 17))}]}}, True),
        ("17 ports", {"network": {"deny": [{"cidr": "::/0", "ports": list(range(1, 18))}]}}, False),
        ("32 selector terms", {"podSelector": {"matchLabels": {f"l{i}": "x" for i in range(16)},
                                               "matchExpressions": [{"key": f"e{i}", "operator": "Exists"}
                                                                    for i in range(16)]}}, True),
        ("33 selector terms", {"podSelector": {"matchLabels": {f"l{i}": "x" for i in range(17)},
                                               "matchExpressions": [{"key": f"e{i}", "operator": "Exists"}
                                                                    for i in range(16)]}}, False),
        ("64 values", {"namespaceSelector": {"matchExpressions": [
            {"key": "k", "operator": "In", "values": [f"v{i}" for i in range(64)]}]}}, True),
        ("65 values", {"namespaceSelector": {"matchExpressions": [
            {"key": "k", "operator": "In", "values": [f"v{i}" for i in range(65)]}]}}, False),
        ("a 255-byte path", {"files": {"deny": [{"path": "/" + "x" * 254}]}}, True),
        ("a 256-byte path", {"files": {"deny": [{"path": "/" + "x" * 255}]}}, False),
        ("a prefix of 128 characters and 255 bytes", {"files": {"deny": [{"prefix": "/" + "é" * 127}]}}, True),
        ("a prefix of 129 characters and 257 bytes (CEL byte rule)",
         {"files": {"deny": [{"prefix": "/" + "é" * 128}]}}, False),
    ]
    for what, spec, ok in cases:
        doc = dict(base, spec=dict({"mode": "Block"}, **spec))
        errors = validate_document(doc, crds)
        check((not errors) == ok, f"{what}: {'accepted' if ok else 'rejected'}", "; ".join(errors[:3]) or "accepted")


def glob(pattern):
    import glob as g
    return g.glob(pattern)


def config_settings():
    """Settings names and flags of bulwarkd, from agent/config.c."""
    with open(os.path.join(ROOT, "agent", "config.c"), encoding="utf-8") as f:
        text = f.read()
    settings, flags = set(), {"config", "output", "help"}
    for m in re.finditer(r'\{\s*"([A-Za-z.]+)",\s*(?:NULL|"([a-z-]+)")\s*,\s*K_', text):
        settings.add(m.group(1))
        if m.group(2):
            flags.add(m.group(2))
    return settings, flags


# Flags the DaemonSet passes that bulwarkd does not have yet, with the work
# that adds them. A flag here that bulwarkd has gained is reported, so that
# this list shrinks.
PENDING_FLAGS = {}


def check_deploy(crds):
    d = os.path.join(CRD_DIR, "deploy")
    objs = {}
    files = sorted(f for f in os.listdir(d) if f.endswith(".yaml") and f != "kustomization.yaml")
    for f in files:
        try:
            for doc in load_all(os.path.join(d, f)):
                objs[(doc["kind"], doc["metadata"]["name"])] = doc
        except (OSError, yaml.YAMLError, KeyError, TypeError) as e:
            check(False, f"crd/deploy/{f} loads", str(e))
    kz = load_all(os.path.join(d, "kustomization.yaml"))[0]
    check(sorted(kz.get("resources", [])) == files, "crd/deploy/kustomization.yaml lists every manifest",
          f"{kz.get('resources')} vs {files}")
    ns = objs.get(("Namespace", "bulwark-system"))
    check(ns is not None and ns["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce") == "privileged",
          "Namespace bulwark-system, Pod Security level privileged")
    sa = objs.get(("ServiceAccount", "bulwarkd"))
    check(sa is not None and sa["metadata"].get("namespace") == "bulwark-system", "ServiceAccount bulwarkd")
    role = objs.get(("ClusterRole", "bulwarkd"))
    plurals = sorted(c["spec"]["names"]["plural"] for c in crds.values())
    def norm(groups, resources, verbs):
        return tuple(sorted(groups)), tuple(sorted(resources)), tuple(sorted(verbs))

    want = sorted([
        norm([GROUP], plurals, ["get", "list", "watch"]),
        norm([GROUP], [p + "/status" for p in plurals], ["patch"]),
        norm([""], ["namespaces", "pods"], ["get", "list", "watch"]),
    ])
    got = sorted(norm(r.get("apiGroups", []), r.get("resources", []), r.get("verbs", []))
                 for r in (role or {}).get("rules", []))
    check(role is not None and got == want,
          "ClusterRole bulwarkd: read policies, write their status, read namespaces and pods; nothing else",
          repr(got))
    rb = objs.get(("ClusterRoleBinding", "bulwarkd"))
    check(rb is not None and rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                                "name": "bulwarkd"}
          and rb["subjects"] == [{"kind": "ServiceAccount", "name": "bulwarkd", "namespace": "bulwark-system"}],
          "ClusterRoleBinding bulwarkd binds the role to the ServiceAccount")
    ds = objs.get(("DaemonSet", "bulwarkd"))
    if not check(ds is not None, "DaemonSet bulwarkd"):
        return
    pod = ds["spec"]["template"]["spec"]
    c = pod["containers"][0]
    check(ds["metadata"].get("namespace") == "bulwark-system" and pod.get("serviceAccountName") == "bulwarkd",
          "DaemonSet: namespace bulwark-system, ServiceAccount bulwarkd")
    check(ds["spec"]["selector"]["matchLabels"].items() <= ds["spec"]["template"]["metadata"]["labels"].items(),
          "DaemonSet: selector matches the pod labels")
    check(pod.get("hostPID") is True and pod.get("priorityClassName") == "system-node-critical"
          and {"operator": "Exists"} in pod.get("tolerations", []),
          "DaemonSet: hostPID, system-node-critical, tolerates every taint")
    check(ds["spec"].get("updateStrategy") == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
          "DaemonSet: RollingUpdate, maxUnavailable 1")
    check(c.get("image") == "bulwark/bulwarkd:0.1.0", "DaemonSet: image bulwark/bulwarkd:0.1.0")
    res = c.get("resources", {})
    check(res.get("requests") == {"cpu": "50m", "memory": "32Mi"} and res.get("limits") == {"memory": "128Mi"},
          "DaemonSet: requests cpu 50m memory 32Mi, limit memory 128Mi")
    env = {e["name"]: e for e in c.get("env", [])}
    check(env.get("NODE_NAME", {}).get("valueFrom") == {"fieldRef": {"fieldPath": "spec.nodeName"}},
          "DaemonSet: NODE_NAME from spec.nodeName")
    args = c.get("args", [])
    check(args[:2] == ["--policy-dir", "/etc/bulwark/policies"] and "$(NODE_NAME)" in args,
          "DaemonSet: --policy-dir /etc/bulwark/policies, the node name from $(NODE_NAME)")
    settings, flags = config_settings()
    for a in args:
        if a.startswith("--"):
            flag = a[2:].split("=")[0]
            if flag in PENDING_FLAGS:
                if flag in flags:
                    check(True, f"DaemonSet: bulwarkd now has --{flag} (remove it from PENDING_FLAGS)")
                else:
                    skip(f"DaemonSet: --{flag} is not a bulwarkd flag yet; it comes with {PENDING_FLAGS[flag]}")
            else:
                check(flag in flags, f"DaemonSet: --{flag} is a bulwarkd flag (agent/config.c)")
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    check({m["name"] for m in mounts.values()} == set(vols), "DaemonSet: every volume is mounted, every mount has a volume")
    for hp in ("/sys/fs/bpf", "/sys/kernel/security", "/sys/fs/cgroup", "/run/systemd/journal", "/dev/log"):
        m = mounts.get(hp)
        v = vols.get(m["name"]) if m else None
        check(v is not None and v.get("hostPath", {}).get("path") == hp and m.get("readOnly") is True,
              f"DaemonSet: host {hp} mounted read-only at the same path")
    check(all("hostPath" not in v or mounts.get(v["hostPath"]["path"], {}).get("readOnly") for v in vols.values()),
          "DaemonSet: every hostPath is read-only")
    check(c.get("securityContext", {}).get("readOnlyRootFilesystem") is True,
          "DaemonSet: read-only root file system")
    for v in vols.values():
        if "configMap" in v:
            name = v["configMap"]["name"]
            check(("ConfigMap", name) in objs, f"DaemonSet: ConfigMap {name} is in crd/deploy")
    cm = objs.get(("ConfigMap", "bulwarkd-config"))
    m = mounts.get("/etc/bulwark/bulwarkd.yaml")
    check(cm is not None and m is not None and m.get("subPath") == "bulwarkd.yaml" and "bulwarkd.yaml" in cm["data"],
          "DaemonSet: bulwarkd-config mounted as /etc/bulwark/bulwarkd.yaml (the default --config)")
    if cm is None:
        return
    cfg = yaml.safe_load(cm["data"]["bulwarkd.yaml"])

    def flatten(x, prefix=""):
        for k, v in x.items():
            if isinstance(v, dict):
                yield from flatten(v, prefix + k + ".")
            else:
                yield prefix + k, v

    keys = dict(flatten(cfg))
    unknown = sorted(set(keys) - settings)
    check(not unknown, "bulwarkd.yaml uses only settings agent/config.c knows", ", ".join(unknown))
    writable = [p for p, mm in mounts.items() if not mm.get("readOnly")]
    sf = keys.get("statusFile")
    check(sf is None or any(sf.startswith(p + "/") for p in writable),
          f"bulwarkd.yaml: statusFile {sf} is on a writable volume")
    check(keys.get("cgroupRoot", "/sys/fs/cgroup") in mounts, "bulwarkd.yaml: cgroupRoot is mounted")
    target = keys.get("sinks.syslog.target", "unix:/dev/log")
    check(not target.startswith("unix:") or target[5:] in mounts, f"bulwarkd.yaml: syslog target {target} is mounted")
    check("/etc/bulwark/policies" in mounts, "DaemonSet: the policy directory is mounted")
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        skip("kubectl kustomize crd/deploy: kubectl is not installed")
        return
    r = subprocess.run([kubectl, "kustomize", d], capture_output=True, text=True, timeout=120)
    built = [x for x in yaml.safe_load_all(r.stdout) if x] if r.returncode == 0 else []
    check(r.returncode == 0 and len(built) == len(objs),
          f"kubectl kustomize crd/deploy builds {len(objs)} objects", r.stderr.strip()[:300])


def check_go_yaml():
    """kubectl reads YAML with Go's parser: it must read the CRDs and the
    examples as PyYAML does (the long patterns are plain scalars)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        skip("Go's YAML reading of the CRDs and examples: kubectl is not installed")
        return
    import tempfile
    files = sorted(glob(os.path.join(CRD_DIR, "bulwark.dev_*.yaml")) + glob(os.path.join(CRD_DIR, "examples", "*.yaml")))
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            shutil.copy(f, tmp)
        with open(os.path.join(tmp, "kustomization.yaml"), "w", encoding="utf-8") as k:
            k.write("resources:\n" + "".join(f"  - {os.path.basename(f)}\n" for f in files))
        r = subprocess.run([kubectl, "kustomize", tmp], capture_output=True, text=True, timeout=120)
    if not check(r.returncode == 0, "kubectl kustomize reads the CRDs and examples", r.stderr.strip()[:300]):
        return

    def key(d):
        return d.get("kind"), d.get("metadata", {}).get("namespace"), d.get("metadata", {}).get("name")

    go = {key(d): d for d in yaml.load_all(r.stdout, Loader=Loader) if d}
    mine = {key(d): d for f in files for d in load_all(f)}
    differ = [k for k in mine if go.get(k) != mine[k]]
    check(not differ and len(go) == len(mine),
          f"Go's YAML parser reads the {len(mine)} objects of the CRDs and examples as this checker does",
          ", ".join(map(str, differ)))


def main():
    print(f"check-crds: {ROOT}")
    crds = check_crds()
    check_status_writer(crds)
    check_patterns(crds)
    check_documents(crds)
    check_deploy(crds)
    check_go_yaml()
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
