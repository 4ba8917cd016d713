// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A cgroup created under a selected workload inherits the workload's rule
 * set in the kernel, inside cgroup_mkdir, before any process can be moved
 * into it: a container cgroup made under a locked pod is locked from its
 * first process, not from whenever the agent notices it. The removed cgroup's
 * entry goes with cgroup_rmdir, so ids never point at stale rule sets.
 *
 * Cgroups under the kubepods roots are tracked too (the agent seeds the
 * roots; every cgroup made under a tracked one is tracked): each new one is
 * announced to the agent on the ring buffer, so that it classifies a pod's
 * or container's cgroup when it appears rather than on its next rescan.
 * Until it does, the cgroup has what it inherited: the unclassified posture
 * that the agent gives the kubepods roots, or its pod's rules.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "bulwark_abi.h"
#include "bulwark_maps.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* cgroup ids under kubepods (the roots included) -> 1. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BW_DEFAULT_WORKLOADS);
	__type(key, __u64);
	__type(value, __u8);
} kubepods SEC(".maps");

static __always_inline void announce(__u64 id, __u32 ruleset_id, const char *path)
{
	struct bw_event *ev;
	long n;

	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		bw_stat_inc(BW_STAT_EVENTS_DROPPED);
		return;
	}
	__builtin_memset(&ev->h, 0, sizeof(ev->h));
	ev->h.time_ns = bpf_ktime_get_boot_ns();
	ev->h.cgroup_id = id;
	ev->h.hook = BW_HOOK_CGROUP_NEW;
	ev->h.ruleset_id = ruleset_id;
	n = bpf_probe_read_kernel_str(ev->data, BW_PATH_MAX, path);
	if (n < 0) {
		ev->data[0] = '\0';
		n = 1;
	}
	ev->h.path_len = (__u32)n;
	if (n == BW_PATH_MAX)
		ev->h.flags |= BW_EVENT_TRUNCATED;
	bpf_ringbuf_submit(ev, 0);
}

/* The cgroup2 hierarchy is the default root, hierarchy id 0 (v1
 * hierarchies beside it on a hybrid host are not what the agent walks). */
static __always_inline bool on_cgroup2(struct cgroup *cgrp)
{
	return BPF_CORE_READ(cgrp, root, hierarchy_id) == 0;
}

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(bw_cgroup_mkdir, struct cgroup *cgrp, const char *path)
{
	__u64 id = BPF_CORE_READ(cgrp, kn, id);
	__u64 parent = BPF_CORE_READ(cgrp, self.parent, cgroup, kn, id);
	struct bw_workload *w;
	__u32 ruleset_id = 0;
	__u8 one = 1;

	/* Counted before anything else can happen in the new cgroup: the agent
	 * reads the count before it walks, so any change after it is seen. */
	if (on_cgroup2(cgrp))
		bw_stat_inc(BW_STAT_CGROUP_TREE_CHANGES);

	w = bpf_map_lookup_elem(&workloads, &parent);
	if (w) {
		ruleset_id = w->ruleset_id;
		if (bpf_map_update_elem(&workloads, &id, w, BPF_NOEXIST) == 0)
			bw_stat_inc(BW_STAT_CGROUP_INHERITED);
		else
			bw_stat_inc(BW_STAT_WORKLOADS_FULL);
	}
	if (bpf_map_lookup_elem(&kubepods, &parent)) {
		if (bpf_map_update_elem(&kubepods, &id, &one, BPF_ANY) == 0)
			bw_stat_inc(BW_STAT_KUBEPODS_NEW);
		else
			bw_stat_inc(BW_STAT_KUBEPODS_FULL);
		announce(id, ruleset_id, path);
	}
	return 0;
}

SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(bw_cgroup_rmdir, struct cgroup *cgrp, const char *path)
{
	__u64 id = BPF_CORE_READ(cgrp, kn, id);

	if (on_cgroup2(cgrp))
		bw_stat_inc(BW_STAT_CGROUP_TREE_CHANGES);
	bpf_map_delete_elem(&workloads, &id);
	bpf_map_delete_elem(&kubepods, &id);
	return 0;
}
