/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The workload inventory: the node's namespaces and workloads (pods or single
 * containers, each identified by its cgroup v2 directory) that policies
 * select. Tests describe it in a YAML file (bw_inventory_load); the agent will
 * feed it from a Kubernetes watcher through the add/put/remove functions, so
 * these structs and functions are the interface, the file is one producer.
 *
 * Invariants kept by every function here:
 *   - every workload's namespace has an entry in namespaces (an "implicit"
 *     one, carrying only the automatic label, when nothing described it);
 *   - every namespace carries kubernetes.io/metadata.name: <name>;
 *   - cgroup paths are absolute and normalized (no "//", no trailing "/",
 *     no "." or ".." component), and unique;
 *   - entries keep the order in which they were first added.
 * Lookups are linear: a node runs at most a few hundred containers, and the
 * inventory is read when policies are recompiled, not per event.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "policy.h"

/* The label the API server puts on every namespace (since Kubernetes 1.21),
 * which lets a namespaceSelector pick a namespace by name. */
#define BW_NAMESPACE_NAME_LABEL "kubernetes.io/metadata.name"

/* Longest accepted cgroup path, NUL excluded: it is opened below the cgroup2
 * mount, so it cannot be longer than a path. */
#define BW_CGROUP_PATH_MAX 4095

/* Largest inventory file bw_inventory_load reads. */
#define BW_INVENTORY_FILE_MAX (16u * 1024 * 1024)

struct bw_inventory_namespace {
	char *name;
	struct bw_labels labels; /* always holds BW_NAMESPACE_NAME_LABEL */
	bool implicit;           /* only exists because a workload names it */
};

struct bw_inventory_workload {
	char *cgroup;    /* e.g. "/kubepods.slice/.../cri-containerd-abc.scope" */
	char *namespace;
	char *pod;
	char *container; /* NULL: the workload is a whole pod */
	struct bw_labels labels; /* the pod's labels */
};

/* A zero-initialized struct is an empty inventory. The pointed-to entries
 * stay at the same address until they are replaced or removed, or the
 * inventory is cleared; the arrays themselves may move on any change. */
struct bw_inventory {
	struct bw_inventory_namespace **namespaces;
	size_t n_namespaces;
	struct bw_inventory_workload **workloads;
	size_t n_workloads;
};

/* Frees every entry and leaves an empty inventory. */
void bw_inventory_clear(struct bw_inventory *inv);

/* Reads a YAML inventory file (format at the top of inventory.c). On success
 * the previous content of inv is replaced and 0 is returned; on failure inv
 * is left untouched and a negative errno is returned: -EINVAL for invalid
 * content, the read error otherwise. When error is not NULL it receives a
 * newly allocated message on failure ("file:line:column: field: reason" for
 * content errors, "file: reason" for read errors; NULL only if even that
 * allocation failed) and NULL on success. */
int bw_inventory_load(const char *path, struct bw_inventory *inv, char **error);

/* Same, from a buffer; name is used as the file in messages. */
int bw_inventory_load_buffer(const char *name, const char *buf, size_t len,
			     struct bw_inventory *inv, char **error);

/* Namespaces. labels are copied, and the automatic label is added when
 * absent; a labels set that carries it with another value, an empty or
 * duplicate key, a NULL value or an empty name is -EINVAL. */

/* Adds a namespace: -EEXIST when it was already described (an implicit entry
 * is replaced, since nothing described it). Returns 0. */
int bw_inventory_add_namespace(struct bw_inventory *inv, const char *name, const struct bw_labels *labels);

/* Adds or replaces a namespace. Returns 1 when the inventory changed, 0 when
 * an identical description was already there (so that a watcher's resyncs
 * do not trigger recompilations). */
int bw_inventory_put_namespace(struct bw_inventory *inv, const char *name, const struct bw_labels *labels);

/* Removes a described namespace: -ENOENT when there is none. If workloads
 * still name it, the entry becomes implicit (automatic label only) rather
 * than disappearing. Returns 0. */
int bw_inventory_remove_namespace(struct bw_inventory *inv, const char *name);

const struct bw_inventory_namespace *bw_inventory_find_namespace(const struct bw_inventory *inv, const char *name);

/* Workloads, keyed by cgroup. *w is copied (w->cgroup normalized); an
 * invalid cgroup path (see bw_cgroup_path_check), an empty or NULL namespace
 * or pod, an empty container or invalid labels are -EINVAL. An implicit
 * namespace is created when w->namespace has no entry, and an implicit
 * namespace no workload names any more is dropped. */

/* Adds a workload: -EEXIST when its cgroup is already there. Returns 0. */
int bw_inventory_add_workload(struct bw_inventory *inv, const struct bw_inventory_workload *w);

/* Adds or replaces the workload with w->cgroup. Returns 1 when the inventory
 * changed, 0 when an identical workload was already there. */
int bw_inventory_put_workload(struct bw_inventory *inv, const struct bw_inventory_workload *w);

/* Removes the workload with this cgroup: -ENOENT when there is none.
 * Returns 0. */
int bw_inventory_remove_workload(struct bw_inventory *inv, const char *cgroup);

/* cgroup is compared component-wise, so "/a//b/" finds "/a/b". */
const struct bw_inventory_workload *bw_inventory_find_workload(const struct bw_inventory *inv, const char *cgroup);

/* Whether p applies to pod workload w:
 *   ClusterBulwarkPolicy: namespaceSelector matches the labels of w's
 *     namespace (just the automatic label if inv does not know it) and
 *     podSelector matches w's labels;
 *   BulwarkPolicy: w is in p's namespace and podSelector matches w's labels;
 *   HostBulwarkPolicy: never (host cgroups are matched with
 *     bw_cgroup_path_has_prefix against spec.cgroupPaths elsewhere). */
bool bw_policy_selects_workload(const struct bw_policy *p, const struct bw_inventory *inv,
				const struct bw_inventory_workload *w);

/* Component-wise prefix test for absolute cgroup paths: "/system.slice" is a
 * prefix of "/system.slice/nginx.service" and of itself, not of
 * "/system.slicex"; "/" is a prefix of every absolute path. Repeated and
 * trailing slashes are ignored. False when either path is NULL or relative. */
bool bw_cgroup_path_has_prefix(const char *path, const char *prefix);

/* Why path is not acceptable as a workload cgroup, or NULL when it is:
 * it must be absolute, below the root, at most BW_CGROUP_PATH_MAX bytes and
 * without "." or ".." components (it is resolved below the cgroup2 mount and
 * must not leave it). */
const char *bw_cgroup_path_check(const char *path);
