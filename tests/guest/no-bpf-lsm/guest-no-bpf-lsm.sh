#!/bin/sh
# Run by /init when the guest kernel has no BPF LSM: bulwarkd must refuse
# with a clear message, not pretend to enforce.
mkdir -p /run/empty-policies
bulwarkd --policy-dir /run/empty-policies >/run/out 2>/run/err
echo "NO-BPF-LSM: bulwarkd exit=$?"
sed 's/^/NO-BPF-LSM: stderr: /' /run/err
sed 's/^/NO-BPF-LSM: stdout: /' /run/out
