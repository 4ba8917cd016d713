#!/bin/sh
# Run by /init when the guest kernel has no BPF LSM (lsm= without "bpf"):
# bulwarkd must run degraded and say why, refuse with --bpf-lsm required,
# and the enforcing-against-degraded scenario must hold in its degraded
# form on this kernel too (the host runs it on a kernel that refuses the
# programs; here the LSM is simply not there).
mkdir -p /run/empty-policies
bulwarkd --bpf-lsm required --policy-dir /run/empty-policies --hook-socket none >/run/out 2>/run/err
echo "NO-BPF-LSM: required: bulwarkd exit=$?"
sed 's/^/NO-BPF-LSM: required: stderr: /' /run/err
AUTO_STATE=degraded /bin/sh /scenario/modes.sh 2>&1 | sed 's/^/NO-BPF-LSM: modes: /'
