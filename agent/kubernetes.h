/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bulwarkd's Kubernetes mode: the watches on the API server (agent/k8s/
 * cluster-watch.c) feed the cluster source (cluster-source.c: namespaces and
 * this node's pods into the inventory, policy objects into policies), whose
 * policies are enforced beside the local directory's; after every apply each
 * cluster policy's status gets this node's entry (agent/k8s/status-writer.c).
 *
 * Nothing from the cluster is enforced before every watch has delivered its
 * first snapshot (or a start timeout passed: a cluster without the CRDs
 * still gets its pods and namespaces). While the API server is unreachable
 * the watches report nothing and the last state stays enforced.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "audit-record.h"
#include "cluster-source.h"
#include "compile.h"
#include "config.h"
#include "inventory.h"
#include "kube-config.h"
#include "policy.h"

struct bw_cluster_watch;
struct bw_status_writer;

/* What bw_k8s_drain and bw_k8s_tick report, as bits. */
enum {
	BW_K8S_CHANGED = 1, /* what is enforced may change: apply */
	BW_K8S_READY = 2,   /* the cluster's state is now used (first time) */
};

struct bw_k8s {
	struct bw_kube_config kcfg;
	struct bw_cluster_source src;
	struct bw_cluster_watch *watch;
	struct bw_status_writer *status;
	char *node_name;
	struct bw_policy *posture; /* for unclassified kubepods cgroups; NULL: allow */
	bool ready;
	uint64_t start_ns;        /* CLOCK_MONOTONIC */
	uint64_t sync_timeout_ns; /* after which the cluster is used even if not every watch synced */
	uint64_t changes;         /* objects applied from the watches */
	uint64_t rejected;        /* objects that were not what their kind says */
};

/* The node's name: cfg's, else $NODE_NAME, else the host name (lower-cased).
 * NULL on ENOMEM or a name that is not a DNS subdomain (*error set). */
char *bw_k8s_node_name(const struct bw_config *cfg, char **error);

/* Reads the kubeconfig (or the in-cluster configuration) and starts the
 * watches and the status writer. Returns 0 or a negative errno with *error. */
int bw_k8s_start(struct bw_k8s *k, const struct bw_config *cfg, struct bw_inventory *inv, char **error);
/* The fd to poll (EPOLLIN: changes queued). */
int bw_k8s_fd(const struct bw_k8s *k);
/* Applies the queued changes to the cluster source. BW_K8S_* bits. */
int bw_k8s_drain(struct bw_k8s *k);
/* Looks for the cgroups of pods not placed yet, now (a new kubepods cgroup
 * was announced). */
void bw_k8s_rescan(struct bw_k8s *k);
/* Once a second: the start timeout, and pods whose cgroups appeared. */
int bw_k8s_tick(struct bw_k8s *k, uint64_t now_ns);

/* Appends the cluster's policies to out (borrowed until the next drain),
 * unless not ready yet; a cluster policy with the same kind, namespace and
 * name as a local one is left out (the local file wins). */
int bw_k8s_policies(const struct bw_k8s *k, const struct bw_policy_list *local, struct bw_policy_list *out);
/* The posture policy for the plan: NULL before the cluster state is in use
 * (at start every pod is unknown: no posture may lock the node's pods
 * before the agent had the chance to know them) or when it is allow. */
struct bw_policy *bw_k8s_posture(const struct bw_k8s *k);

/* Posts every cluster policy's status for this node, from the plan just
 * applied. */
void bw_k8s_report(struct bw_k8s *k, const struct bw_policy_list *local, const struct bw_plan *plan, bool audit_only,
		   const char *degraded);
/* Adds the watches' and the status writer's counters to a health record. */
void bw_k8s_health(struct bw_k8s *k, struct bw_record_builder *b);
/* Lines for the status file. */
void bw_k8s_status_lines(struct bw_k8s *k, FILE *f);
/* Stops the threads and frees everything. */
void bw_k8s_stop(struct bw_k8s *k);
