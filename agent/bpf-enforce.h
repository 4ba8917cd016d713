/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loading the BPF side: the process table's tracepoints (they make the
 * maps every object shares), then the enforcing BPF-LSM programs
 * (bpf/lsm/) when the BPF LSM is active and takes them, else the degraded
 * mode's fallbacks (bpf/trace/fallback.bpf.c), and the cgroup tracepoints.
 * Each object is opened, configured, loaded and attached in its own step.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "publish.h"

struct enforce_bpf;
struct cgroup_inherit_bpf;
struct process_bpf;
struct fallback_bpf;
struct bpf_object;
struct bpf_link;

struct bw_bpf_config {
	uint32_t max_workloads;
	uint32_t max_rulesets;
	uint32_t ringbuf_bytes;
	uint32_t max_processes;  /* process table entries; 0: 32768 */
	uint64_t rate_limit;     /* events per window per (workload, policy); 0: all */
	uint64_t rate_window_ns;
	const char *cgroup_root;  /* where the degraded mode's connect programs attach */
	bool require_enforcing;   /* refuse to start rather than run degraded */
	bool force_degraded;      /* do not use BPF-LSM even when it works (--bpf-lsm=off) */
	bool degraded_kill;       /* degraded: SIGKILL the caller of a Block decision */
};

struct bw_bpf {
	struct enforce_bpf *lsm;           /* enforcing: the BPF-LSM programs */
	struct fallback_bpf *fallback;     /* degraded: tracepoints and cgroup connect programs */
	struct bpf_link *connect4, *connect6;
	struct cgroup_inherit_bpf *trace;
	struct process_bpf *proc;
	struct bpf_object *policy;         /* the one of lsm and fallback that holds the policy maps */
	char *degraded_reason;             /* NULL when enforcing */
};

/* Opens, sizes, loads and attaches everything. When the BPF LSM is missing
 * or refuses the programs, loads the degraded mode instead (unless
 * require_enforcing) and says why in degraded_reason. On failure nothing
 * stays loaded and *why says what the kernel refused. */
int bw_bpf_start(struct bw_bpf *b, const struct bw_bpf_config *cfg, char **why);
void bw_bpf_stop(struct bw_bpf *b);

void bw_bpf_map_fds(const struct bw_bpf *b, struct bw_map_fds *fds);
int bw_bpf_events_fd(const struct bw_bpf *b);
int bw_bpf_stats_fd(const struct bw_bpf *b);
int bw_bpf_ratelimit_fd(const struct bw_bpf *b);
int bw_bpf_kubepods_fd(const struct bw_bpf *b);
int bw_bpf_processes_fd(const struct bw_bpf *b);

/* Sums the per-CPU counters into out[BW_STAT_COUNT]. */
int bw_bpf_read_stats(const struct bw_bpf *b, uint64_t *out);
/* One counter, summed over CPUs (0 or a negative errno). */
int bw_bpf_read_stat(const struct bw_bpf *b, uint32_t key, uint64_t *out);
