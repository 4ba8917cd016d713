/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A policy's status, as each node's agent reports it: its own entry in
 * status.nodes (keyed by node name), the counts of enforcing and failed
 * nodes, and an "Enforced" condition in the Kubernetes convention. Every
 * node rewrites only its own entry; the patch carries the object's
 * resourceVersion so that two nodes writing at once conflict (409) and the
 * loser retries on the fresh object instead of erasing the other's entry.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

struct bw_node_report {
	const char *node;
	bool enforcing;
	const char *reason;  /* CamelCase: Enforcing, Invalid, InvalidKeptPrevious, CompileFailed */
	const char *message;
	long long observed_generation;
	uint64_t now_realtime_ns;
	int rules;           /* rule count of the version in force */
};

/* The merge-patch body for current (the object as last read); caller frees.
 * NULL when nothing would change (the entry is already as reported, apart
 * from its time) or on allocation failure (errno). */
char *bw_policy_status_patch(struct json_object *current, const struct bw_node_report *r);
