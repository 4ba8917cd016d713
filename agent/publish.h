/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Writes a compiled plan into the kernel maps without ever exposing half a
 * policy: every rule set is published under a fresh id (config and inner
 * tries complete) before any workload is pointed at it, and a workload moves
 * from one rule set to another with a single map update. Rule sets nobody
 * uses any more are retired after a grace period, once no cgroup in the
 * kernel map refers to them.
 *
 * Writing an inner trie into its outer map (ARRAY_OF_MAPS) from user space
 * makes the kernel wait for an RCU grace period before the syscall returns
 * (maybe_wait_bpf_programs(): 6-23 ms each, up to four per new rule set). So
 * that no apply pays for that, the publisher can keep spare ids: ids whose
 * four empty tries are already in the outer maps, made by a thread of their
 * own. A new rule set fills a spare's tries in place (LPM updates do not
 * wait) and is then published like any other; a retired id goes back to
 * that thread, which swaps its tries for empty ones (or drops it when there
 * are spares enough). The thread also swaps a used spare's tries for ones
 * sized to their entries, with the same content: Linux before 6.4 reports
 * a trie's memlock by its capacity. It does so only once no rule set went
 * into a spare for a while, so that this work does not compete with the
 * next policy change. Only when no spare is ready, or a rule set is larger
 * than a spare holds, does an apply make its own tries and wait.
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

struct bw_spares; /* publish.c: the spare ids and the thread that makes them */

struct bw_publisher {
	struct bw_map_fds fds;
	struct bw_published *pub;
	size_t n_pub, cap_pub;
	uint32_t generation;
	struct bw_spares *spares; /* NULL: every new rule set makes its own tries */
};

struct bw_spare_stats {
	size_t ready;       /* spares whose empty tries are in the outer maps now */
	size_t pending;     /* spares being made, ids to recycle, tries to size: the thread's queue */
	size_t deferred;    /* of the tries to size, how many wait for the publisher to be quiet */
	uint32_t target;    /* how many the thread keeps ready */
	uint32_t capacity;  /* entries each spare trie holds */
	uint64_t taken;     /* new rule sets that went into a spare */
	uint64_t missed;    /* new rule sets that made their own tries: no spare ready */
	uint64_t too_large; /* ...or more entries than a spare holds */
	uint64_t made;      /* spares made (new ids and recycled ones) */
	uint64_t dropped;   /* retired ids removed from the outer maps (spares enough) */
	uint64_t compacted; /* used spares whose tries were swapped for tries of their size */
	uint64_t failures;  /* spares that could not be made (kernel refused) */
	int last_error;     /* negative errno of the last failure */
};

struct bw_publish_result {
	size_t rulesets_new;      /* rule sets written to the kernel */
	size_t rulesets_reused;   /* unchanged: kept their id */
	size_t rulesets_spared;   /* of the new ones, written into spare ids' tries */
	size_t outer_updates;     /* tries this apply put in outer maps (each waits for RCU) */
	size_t workloads_updated; /* cgroups moved to another rule set */
	size_t workloads_removed; /* cgroups no longer selected */
	size_t workloads_failed;  /* updates refused (map full): kept their old state */
	size_t rulesets_failed;   /* no free id or map creation failed */
	int first_error;          /* negative errno of the first failure, 0 if none */
};

void bw_publisher_init(struct bw_publisher *p, const struct bw_map_fds *fds);
/* Stops the spare thread (if any) and frees everything; the kernel maps keep
 * what was published. */
void bw_publisher_clear(struct bw_publisher *p);

/* Starts the thread keeping target spare ids of capacity entries per trie.
 * It sizes used spares' tries only once no rule set went into a spare for
 * compact_delay_ms: right after a policy change its RCU waits and copies
 * would compete with the next change for the CPU (slowing its propagation),
 * while tries filled in place cost nothing meanwhile but memlock accounting.
 * Making spares and recycling retired ids do not wait: an apply needs them.
 * Returns 0 or a negative errno (the publisher then works without spares). */
int bw_publisher_start_spares(struct bw_publisher *p, uint32_t target, uint32_t capacity,
			      uint32_t compact_delay_ms);
/* Waits until the spare thread has nothing left it can do (spares made,
 * retired ids recycled, tries sized, also those waiting for the quiet
 * period, or the kernel refused) or timeout_ms passed; returns the number
 * of spares ready. */
size_t bw_publisher_wait_spares(struct bw_publisher *p, int timeout_ms);
void bw_publisher_spare_stats(struct bw_publisher *p, struct bw_spare_stats *st);

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
