/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy compiler: turns the policies that select one workload into the
 * contents of one rule set (ruleset config plus the entries of its LPM
 * tries), and the node's whole picture (policies, inventory, cgroup tree)
 * into a plan: which rule sets exist and which cgroup uses which.
 *
 * Nothing here touches the kernel; publish.c writes a plan into the maps.
 */
#pragma once

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulwark_abi.h"
#include "policy.h"

struct bw_inventory;

/* Rule ids are interned: the same rule of the same policy keeps its id across
 * reloads, so an unchanged rule set compiles to identical map contents. */
struct bw_rule_info {
	char *policy; /* "BulwarkPolicy prod/lock-shells" */
	char *text;   /* "exec.deny[0] path /bin/sh" */
};

struct bw_rule_table {
	struct bw_rule_info *rules; /* index = rule id - 1 */
	size_t n, cap;
	uint32_t *slots;            /* open addressing: rule ids, 0 = empty */
	size_t n_slots;
};

uint32_t bw_rule_intern(struct bw_rule_table *t, const char *policy, const char *text);
const struct bw_rule_info *bw_rule_get(const struct bw_rule_table *t, uint32_t id);
void bw_rule_table_clear(struct bw_rule_table *t);

struct bw_path_entry {
	struct bw_path_key key;
	struct bw_path_value value;
};

struct bw_net4_entry {
	struct bw_net4_key key;
	struct bw_net_value value;
};

struct bw_net6_entry {
	struct bw_net6_key key;
	struct bw_net_value value;
};

struct bw_slot_info {
	char *policy;      /* display identity, as in bw_rule_info.policy */
	enum bw_mode mode; /* effective mode (after --audit-only) */
};

struct bw_compiled_ruleset {
	struct bw_ruleset config; /* generation is set by the publisher */
	struct bw_path_entry *exec;
	size_t n_exec;
	struct bw_path_entry *file;
	size_t n_file;
	struct bw_net4_entry *net4;
	size_t n_net4;
	struct bw_net6_entry *net6;
	size_t n_net6;
	struct bw_slot_info slots[BW_SLOTS_MAX];
	size_t n_slots;
	/* What it was compiled from (the policies' serials, in slot order)
	 * and when: bw_plan_build reuses it for the same policies. */
	uint64_t *serials;
	uint64_t compiled_ns;
	/* How many rule sets share the arrays, names and serials above (they
	 * are never written after compilation): bw_compiled_ruleset_copy adds
	 * one, bw_compiled_ruleset_clear drops one and the last frees them. */
	unsigned *holders;
};

/* How paths in rules are resolved: links in a rule's path are followed under
 * root so that a rule on /bin/sh also names the file the kernel sees
 * (/usr/bin/dash on Debian). root "/" is the node's own file system; root
 * must be canonical (no links, no trailing slash): the agent realpath()s it. */
struct bw_compile_options {
	const char *root;
	bool audit_only;
};

/* Compiles the rules of n policies (slot i = pols[i]) into out. Returns 0, or
 * -E2BIG with *error set when the combination cannot be represented (more
 * than BW_SLOTS_MAX policies, more than BW_PORT_RULES_MAX port rules on one
 * address). */
int bw_compile_ruleset(struct bw_policy *const *pols, size_t n, const struct bw_compile_options *o,
		       struct bw_rule_table *rt, struct bw_compiled_ruleset *out, char **error);
void bw_compiled_ruleset_clear(struct bw_compiled_ruleset *r);
/* Another holder of src's rules (shared, see holders): 0, or -EINVAL for a
 * rule set that bw_compile_ruleset did not make. */
int bw_compiled_ruleset_copy(struct bw_compiled_ruleset *dst, const struct bw_compiled_ruleset *src);
bool bw_compiled_ruleset_equal(const struct bw_compiled_ruleset *a,
			       const struct bw_compiled_ruleset *b);

/* One cgroup and the rule set it gets. */
struct bw_assignment {
	uint64_t cgroup_id;
	char *cgroup_path;   /* relative to the cgroup2 mount, "/..." */
	size_t ruleset;      /* index into bw_plan.rulesets */
	char *namespace;     /* NULL for host cgroups */
	char *pod;
	char *container;
	bool unclassified;   /* a kubepods cgroup of no known pod: it got the posture */
};

struct bw_plan_error {
	char *workload; /* cgroup path */
	char *message;
	char **policies; /* identities of the policies that select it (bw_policy_identity) */
	size_t n_policies;
};

struct bw_plan {
	struct bw_compiled_ruleset *rulesets;
	size_t n_rulesets;
	struct bw_assignment *assign;
	size_t n_assign;
	uint64_t *skipped;       /* cgroups whose rule set failed to compile: keep their last good */
	size_t n_skipped;
	struct bw_plan_error *errors;
	size_t n_errors;
	size_t n_cgroups_seen;   /* every cgroup the walk found */
	uint64_t *seen;          /* their ids, sorted */
	size_t n_compiled;       /* rule sets compiled; the others were reused */
	bool walked;             /* the cgroup tree was walked (not the kept walk) */
};

/* The cgroups a walk found (every directory under the cgroup2 mount), kept
 * for the next plan: the kernel counts every cgroup2 mkdir and rmdir
 * (BW_STAT_CGROUP_TREE_CHANGES), and while that count is what it was
 * before the walk, the tree is the same and need not be walked again (the
 * walk was most of an apply's time: openat and getdents of every cgroup). */
struct bw_cgroup_entry {
	uint64_t id;
	char *path; /* relative to the mount, "/..." */
};

struct bw_cgroup_tree {
	struct bw_cgroup_entry *items;
	size_t n, cap;
	uint64_t changes; /* the kernel's count read before the walk */
	bool valid;
};

void bw_cgroup_tree_clear(struct bw_cgroup_tree *t);

struct bw_plan_options {
	struct bw_compile_options compile;
	const char *cgroup_root;  /* cgroup2 mount, e.g. /sys/fs/cgroup */
	uint64_t exempt_cgroup;   /* the agent's own cgroup: never selected */
	/* Given to kubepods cgroups that no inventory workload owns (their pod
	 * is not known yet), beside any host policy; NULL: none. */
	struct bw_policy *posture;
	/* The plan in force: a rule set of the same policies (by serial)
	 * compiled less than reuse_max_age_ns before now_ns is taken from it (shared)
	 * instead of compiled again. The age bound is for what a compile reads
	 * besides the policies: the links in rule paths (rules name the files
	 * they resolve to), which a package update may change. NULL: none. */
	const struct bw_plan *reuse;
	uint64_t now_ns, reuse_max_age_ns;
	/* Where the walk is kept (NULL: walk every time, keep nothing), and
	 * the kernel's change count read now; tree_changes_known false (no
	 * count: the programs are not loaded) walks every time. */
	struct bw_cgroup_tree *tree;
	uint64_t tree_changes;
	bool tree_changes_known;
};

int bw_plan_build(const struct bw_policy_list *policies, const struct bw_inventory *inv,
		  const struct bw_plan_options *o, struct bw_rule_table *rt, struct bw_plan *plan);
void bw_plan_clear(struct bw_plan *plan);
bool bw_plan_saw_cgroup(const struct bw_plan *plan, uint64_t id);

/* The display identity of a policy: "Kind name" or "Kind namespace/name". */
char *bw_policy_identity(const struct bw_policy *p);
