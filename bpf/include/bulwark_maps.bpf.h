/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Maps shared by more than one BPF object. The agent creates them once (with
 * the LSM object) and hands the same fds to the other objects with
 * bpf_map__reuse_fd() before they load.
 */
#ifndef BULWARK_MAPS_BPF_H
#define BULWARK_MAPS_BPF_H

#include "bulwark_abi.h"

/* Sizes are defaults; the agent sets them from its configuration before load. */
#define BW_DEFAULT_WORKLOADS 65536
#define BW_DEFAULT_RULESETS 4096

/* cgroup id -> rule set. One lookup is all an unselected process pays. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BW_DEFAULT_WORKLOADS);
	__type(key, __u64);
	__type(value, struct bw_workload);
} workloads SEC(".maps");

/* Decisions worth seeing, and news of new kubepods cgroups, for the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

/* The process table: LRU, so that it never refuses a new process; the
 * agent counts what it evicted (made - in the map now). */
#define BW_DEFAULT_PROCESSES 32768
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BW_DEFAULT_PROCESSES);
	__type(key, __u32);
	__type(value, struct bw_process);
} processes SEC(".maps");

/* Counters, summed over CPUs by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BW_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void bw_stat_inc(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&stats, &idx);

	if (c)
		*c += 1;
}

#endif /* BULWARK_MAPS_BPF_H */
