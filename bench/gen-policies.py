#!/usr/bin/env python3
"""gen-policies.py OUT_DIR: the benchmark's policies and inventories.

micro/     one policy per rule count (10, 1000, 10000 rules, a third each of
           exec denies, file denies and network denies, none of which the
           measured operations touch), one Audit policy that every measured
           operation hits, and an inventory of the benchmark's cgroups;
footprint/ 1,000 policies and an inventory of 500 workloads;
propagate/ the on and off versions of the policy the propagation test swaps.
"""
import argparse
import os

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("out", metavar="OUT_DIR")
# --smoke: the same files with fewer rules (r1000 and r10000 get 100 and
# 300; AppArmor and auditd 100 each), for a run that checks the plumbing.
ap.add_argument("--smoke", action="store_true", help="fewer rules: checks the plumbing")
args = ap.parse_args()
out, smoke = args.out, args.smoke


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def rules_policy(name, count, label):
    n_exec = count // 3
    n_file = count // 3
    n_net = count - n_exec - n_file
    lines = [
        "apiVersion: bulwark.dev/v1alpha1",
        "kind: ClusterBulwarkPolicy",
        f"metadata: {{name: {name}}}",
        "spec:",
        "  mode: Block",
        f"  podSelector: {{matchLabels: {{set: {label}}}}}",
        "  exec:",
        "    deny:",
    ]
    lines += [f"      - path: /opt/deny/e{i}" for i in range(n_exec)]
    lines += ["  files:", "    deny:"]
    lines += [f"      - path: /srv/deny/f{i}" for i in range(n_file)]
    lines += ["  network:", "    deny:"]
    lines += [f'      - {{cidr: "10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}/32", ports: [{1 + i % 65000}]}}'
              for i in range(n_net)]
    return "\n".join(lines) + "\n"


# --- micro ---
for count in (10, 1000, 10000):
    real = {1000: 100, 10000: 300}.get(count, count) if smoke else count
    write(f"{out}/micro/policies/r{count}.yaml", rules_policy(f"rules-{count}", real, f"r{count}"))
write(f"{out}/micro/policies/audit.yaml", """apiVersion: bulwark.dev/v1alpha1
kind: ClusterBulwarkPolicy
metadata: {name: audit-everything}
spec:
  mode: Audit
  podSelector: {matchLabels: {set: audit}}
  exec: {deny: [{path: /bin/true}]}
  files: {deny: [{prefix: /srv/bench/}]}
  network: {deny: [{cidr: "127.0.0.1/32"}]}
""")
inv = ["namespaces:", "  - {name: bench}", "workloads:"]
for w in ("unselected", "r10", "r1000", "r10000", "audit"):
    inv.append(f"  - {{cgroup: /bench/{w}, namespace: bench, pod: {w}, labels: {{set: {w}}}}}")
write(f"{out}/micro/inventory.yaml", "\n".join(inv) + "\n")

# --- footprint: 1,000 policies over 500 workloads (two each) ---
for i in range(1000):
    write(f"{out}/footprint/policies/p{i:04d}.yaml", f"""apiVersion: bulwark.dev/v1alpha1
kind: BulwarkPolicy
metadata: {{name: p{i:04d}, namespace: ns{i % 10}}}
spec:
  mode: {"Block" if i % 2 else "Audit"}
  podSelector: {{matchLabels: {{app: a{i % 500}}}}}
  exec: {{deny: [{{path: /opt/p{i}/tool}}, {{prefix: /opt/p{i}/bin/}}]}}
  files: {{deny: [{{path: /srv/p{i}/secret}}, {{prefix: /srv/p{i}/ro/, access: [write]}}]}}
  network: {{deny: [{{cidr: "10.{i // 256}.{i % 256}.0/24", ports: [{1000 + i}]}}]}}
""")
inv = ["namespaces:"] + [f"  - {{name: ns{n}}}" for n in range(10)] + ["workloads:"]
for w in range(500):
    inv.append(f"  - {{cgroup: /foot/w{w}, namespace: ns{w % 10}, pod: pod{w}, labels: {{app: a{w}}}}}")
write(f"{out}/footprint/inventory.yaml", "\n".join(inv) + "\n")

# --- propagation ---
for state, files in (("on", "files: {deny: [{path: /srv/bench/propagate}]}"),
                     ("off", "files: {deny: [{path: /srv/bench/never-opened}]}")):
    write(f"{out}/propagate/{state}.yaml", f"""apiVersion: bulwark.dev/v1alpha1
kind: ClusterBulwarkPolicy
metadata: {{name: propagate}}
spec:
  mode: Block
  podSelector: {{matchLabels: {{set: r10}}}}
  {files}
""")

# --- the same exec and file denies as the 10,000-rule policy, for AppArmor
# and auditd (neither can deny or watch by IP address: no network rules) ---
n_exec = n_file = 100 if smoke else 10000 // 3
aa = ["profile bulwark-bench flags=(attach_disconnected) {",
      "  /** rwlkmix,", "  network,", "  capability,", "  signal,", "  ptrace,", "  unix,",
      "  mount,", "  umount,", "  pivot_root,"]
aa += [f"  deny /opt/deny/e{i} x," for i in range(n_exec)]
aa += [f"  deny /srv/deny/f{i} r," for i in range(n_file)]
aa.append("}")
write(f"{out}/apparmor/bulwark-bench", "\n".join(aa) + "\n")
write(f"{out}/auditd/auditd.conf", """log_file = /var/log/audit/audit.log
log_format = ENRICHED
flush = INCREMENTAL_ASYNC
freq = 50
max_log_file = 512
num_logs = 2
max_log_file_action = ROTATE
space_left = 2
space_left_action = IGNORE
admin_space_left = 1
admin_space_left_action = IGNORE
disk_full_action = IGNORE
disk_error_action = IGNORE
write_logs = yes
""")
rules = [f"-a always,exit -F arch=b64 -S execve -F path=/opt/deny/e{i} -k bw-exec" for i in range(n_exec)]
rules += [f"-w /srv/deny/f{i} -p r -k bw-file" for i in range(n_file)]
write(f"{out}/auditd/bench.rules", "\n".join(rules) + "\n")
