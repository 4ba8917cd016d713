// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A cgroup created under a selected workload inherits the workload's rule
 * set in the kernel, inside cgroup_mkdir, before any process can be moved
 * into it: a container cgroup made under a locked pod is locked from its
 * first process, not from whenever the agent notices it. The removed cgroup's
 * entry goes with cgroup_rmdir, so ids never point at stale rule sets.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "bulwark_abi.h"
#include "bulwark_maps.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(bw_cgroup_mkdir, struct cgroup *cgrp, const char *path)
{
	__u64 id = BPF_CORE_READ(cgrp, kn, id);
	__u64 parent = BPF_CORE_READ(cgrp, self.parent, cgroup, kn, id);
	struct bw_workload *w;

	w = bpf_map_lookup_elem(&workloads, &parent);
	if (!w)
		return 0;
	if (bpf_map_update_elem(&workloads, &id, w, BPF_NOEXIST) == 0)
		bw_stat_inc(BW_STAT_CGROUP_INHERITED);
	else
		bw_stat_inc(BW_STAT_WORKLOADS_FULL);
	return 0;
}

SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(bw_cgroup_rmdir, struct cgroup *cgrp, const char *path)
{
	__u64 id = BPF_CORE_READ(cgrp, kn, id);

	bpf_map_delete_elem(&workloads, &id);
	return 0;
}
