/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Writes a compiled plan into the kernel maps without ever exposing half a
 * policy: every rule set is published under a fresh id (config and inner
 * tries complete) before any workload is pointed at it, and a workload moves
 * from one rule set to another with a single map update. Rule sets nobody
 * uses any more are retired after a grace period, once no cgroup in the
 * kernel map refers to them.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compile.h"

struct bw_map_fds {
	int workloads;
	int rulesets;
	int exec_tries;
	int file_tries;
	int net4_tries;
	int net6_tries;
	uint32_t max_rulesets; /* max_entries of rulesets and the *_tries maps */
	/* BTF for the inner tries: Linux 6.1 refuses an inner map whose BTF
	 * state differs from the template's (bpf_map_meta_equal compares
	 * timer_off, which is -ENOENT with BTF and -EINVAL without), so the
	 * tries are created with the object's BTF like libbpf's template.
	 * btf_fd 0: no BTF (maps made by hand, as in the unit tests). */
	int btf_fd;
	uint32_t path_key_type, path_value_type;
	uint32_t net4_key_type, net6_key_type, net_value_type;
};

struct bw_published {
	uint32_t id;
	struct bw_compiled_ruleset rs;
	uint64_t unused_since_ns; /* 0 while the current plan uses it */
};

struct bw_publisher {
	struct bw_map_fds fds;
	struct bw_published *pub;
	size_t n_pub, cap_pub;
	uint32_t generation;
};

struct bw_publish_result {
	size_t rulesets_new;      /* rule sets written to the kernel */
	size_t rulesets_reused;   /* unchanged: kept their id */
	size_t workloads_updated; /* cgroups moved to another rule set */
	size_t workloads_removed; /* cgroups no longer selected */
	size_t workloads_failed;  /* updates refused (map full): kept their old state */
	size_t rulesets_failed;   /* no free id or map creation failed */
	int first_error;          /* negative errno of the first failure, 0 if none */
};

void bw_publisher_init(struct bw_publisher *p, const struct bw_map_fds *fds);
void bw_publisher_clear(struct bw_publisher *p);

/* Publishes plan; returns 0 when everything is in the kernel, or the first
 * error (the result says what could not be applied; what was enforced before
 * for those workloads stays). */
int bw_publish_plan(struct bw_publisher *p, const struct bw_plan *plan, uint64_t now_ns,
		    struct bw_publish_result *res);

/* Retires rule sets unused for at least grace_ns. Returns how many still
 * wait because a cgroup the last plan did not see refers to them (the caller
 * should rebuild the plan), or a negative errno. */
int bw_publish_retire(struct bw_publisher *p, uint64_t now_ns, uint64_t grace_ns);

const struct bw_published *bw_publisher_find(const struct bw_publisher *p, uint32_t id);
