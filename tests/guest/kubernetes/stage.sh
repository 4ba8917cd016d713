#!/usr/bin/env bash
# Brings the test API server (tests/k8s/apiserver.py) into the guest: Debian's
# python3 with the standard-library modules the server imports (found by
# modulefinder, not the whole library), openssl for its certificates, and curl
# as the client. The CRDs and the policy are converted to JSON here, on the
# host, because the guest has no YAML parser and no kubectl.
# make-initramfs.sh adds the shared libraries of every ELF file staged.
set -euo pipefail
stage=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
py=/usr/bin/python3

install -D -m 644 "$repo/tests/k8s/apiserver.py" "$stage/scenario/apiserver.py"
install -D -m 755 "$(readlink -f $py)" "$stage/usr/bin/python3"
"$py" - "$stage" "$repo/tests/k8s/apiserver.py" <<'PY'
import os, shutil, sys, sysconfig
from modulefinder import ModuleFinder
stage, script = sys.argv[1], sys.argv[2]
stdlib = sysconfig.get_paths()["stdlib"]
m = ModuleFinder()
m.run_script(script)
# Imported at run time, out of modulefinder's sight: codecs by name (the
# server's host names go through idna), and time parsing.
for name in ("encodings.idna", "encodings.ascii", "encodings.latin_1", "encodings.utf_8", "stringprep",
             "unicodedata", "_strptime"):
    m.import_hook(name)
files = {mod.__file__ for mod in m.modules.values() if mod.__file__}
# What the interpreter needs before any import of the script (with -S).
for d in ("encodings",):
    for f in os.listdir(os.path.join(stdlib, d)):
        if f.endswith(".py"):
            files.add(os.path.join(stdlib, d, f))
for f in sorted(files):
    if not f.startswith("/usr/lib/python3"):
        continue
    dst = stage + f
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copy2(f, dst)
# The landmark the interpreter looks for to find its prefix.
shutil.copy2(os.path.join(stdlib, "os.py"), stage + os.path.join(stdlib, "os.py"))
PY
install -D -m 755 "$(command -v openssl)" "$stage/usr/bin/openssl"
install -D -m 644 /etc/ssl/openssl.cnf "$stage/etc/ssl/openssl.cnf"
mkdir -p "$stage/usr/lib/ssl" && ln -sf /etc/ssl/openssl.cnf "$stage/usr/lib/ssl/openssl.cnf"
install -D -m 755 "$(command -v curl)" "$stage/usr/bin/curl"

"$py" - "$repo" "$stage/scenario" <<'PY'
import json, sys, yaml
repo, out = sys.argv[1], sys.argv[2]
for src, dst in (("crd/bulwark.dev_clusterbulwarkpolicies.yaml", "crd-cbp.json"),
                 ("crd/bulwark.dev_bulwarkpolicies.yaml", "crd-bp.json"),
                 ("policies/lock-shells.yaml", "lock-shells.json")):
    with open(f"{repo}/{src}") as f:
        doc = yaml.safe_load(f)
    with open(f"{out}/{dst}", "w") as f:
        json.dump(doc, f)
PY
