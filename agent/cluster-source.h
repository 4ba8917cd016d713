/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cluster as a source of what bulwarkd enforces: Namespace and Pod
 * objects become the inventory (namespaces with labels; each pod of this
 * node and each of its containers a workload, found in the cgroup tree), and
 * ClusterBulwarkPolicy / BulwarkPolicy objects become policies.
 *
 * It takes objects as the API server sends them (json-c), one change at a
 * time, whatever delivered them (the watch reflectors in agent/k8s/, or a
 * test). An object that does not parse as a policy keeps the last good
 * version of that policy in force and is remembered with its error for the
 * policy's status.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#include "inventory.h"
#include "policy.h"

enum bw_cluster_kind {
	BW_CLUSTER_NAMESPACE,
	BW_CLUSTER_POD,
	BW_CLUSTER_POLICY, /* ClusterBulwarkPolicy or BulwarkPolicy (from the object's kind) */
};

struct bw_cluster_policy {
	char *key;          /* "ClusterBulwarkPolicy/name" or "BulwarkPolicy/ns/name" */
	char *uid;
	long long generation;
	struct bw_policy *good; /* the last version that parsed; NULL if none ever did */
	char *error;            /* why the current version is rejected, NULL if it is good */
};

struct bw_cluster_pod {
	char *key;        /* "ns/name" */
	char *uid;
	char **cgroups;   /* workloads this pod put in the inventory */
	size_t n_cgroups;
	bool pending;     /* its cgroup is not there yet: looked for again on rescan */
	struct json_object *obj; /* its last version (a reference), for rescans */
};

struct bw_cluster_source {
	const char *cgroup_root;
	const char *node_name;
	struct bw_inventory *inv; /* the agent's inventory, which this source feeds */
	struct bw_cluster_policy *policies;
	size_t n_policies;
	struct bw_cluster_pod *pods;
	size_t n_pods;
	unsigned long long rejected_objects; /* objects that were not what their kind says */
};

void bw_cluster_source_init(struct bw_cluster_source *s, struct bw_inventory *inv, const char *cgroup_root,
			    const char *node_name);
void bw_cluster_source_clear(struct bw_cluster_source *s);

/* Applies one object; deleted says it is gone. Returns 1 when what is
 * enforced or reported may change (inventory or policies changed, a policy
 * rejected), 0 when not, or a negative errno (the object is ignored and
 * counted). */
int bw_cluster_source_update(struct bw_cluster_source *s, enum bw_cluster_kind kind, bool deleted,
			     struct json_object *obj);

/* Looks again for the cgroups of pods whose cgroup was not there yet.
 * Returns 1 when some were found. */
int bw_cluster_source_rescan(struct bw_cluster_source *s);

/* Appends the policies in force from the cluster to out (borrowed pointers:
 * valid until the next update). */
int bw_cluster_source_policies(const struct bw_cluster_source *s, struct bw_policy_list *out);
