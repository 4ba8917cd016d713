/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The four watches bulwarkd keeps on the API server (this node's pods,
 * namespaces, ClusterBulwarkPolicies, BulwarkPolicies), each a reflector
 * thread, feeding one queue that the main loop drains when an eventfd says
 * there is something.
 *
 * Snapshots are handed over whole: the objects of a LIST (the first one, or
 * a relist after 410 Gone) are held back until its SYNC_END and then queued
 * together, so the main loop never applies half a snapshot (a namespace
 * relisted without its labels yet, half the pods of a node). Watch events
 * after that are queued one by one, in order.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "cluster-source.h"
#include "kube-client.h"
#include "kube-config.h"

enum bw_cluster_feed {
	BW_FEED_PODS,
	BW_FEED_NAMESPACES,
	BW_FEED_CLUSTER_POLICIES,
	BW_FEED_POLICIES,
	BW_FEED_COUNT,
};

const char *bw_cluster_feed_name(enum bw_cluster_feed f); /* "pods", "namespaces", ... */

struct bw_cluster_change {
	enum bw_cluster_kind kind;
	bool deleted;
	struct json_object *obj; /* owned by whoever holds the change */
};

struct bw_cluster_watch;

struct bw_cluster_watch_options {
	const char *node_name;
	/* passed to every reflector; 0: the reflector's defaults */
	unsigned watch_timeout_s, backoff_base_ms, backoff_cap_ms;
	struct bw_kube_client_options client;
};

/* NULL on failure with *error set. Nothing runs until bw_cluster_watch_start. */
struct bw_cluster_watch *bw_cluster_watch_new(const struct bw_kube_config *cfg,
					      const struct bw_cluster_watch_options *o, char **error);
/* Starts the reflector threads: 0 or a negative errno. */
int bw_cluster_watch_start(struct bw_cluster_watch *w);
/* Readable (EPOLLIN) when changes are queued; read it via bw_cluster_watch_take. */
int bw_cluster_watch_fd(const struct bw_cluster_watch *w);
/* Takes every queued change (the caller frees each obj and the array with
 * bw_cluster_changes_free) and clears the eventfd. *n may be 0. 0 or -ENOMEM. */
int bw_cluster_watch_take(struct bw_cluster_watch *w, struct bw_cluster_change **out, size_t *n);
void bw_cluster_changes_free(struct bw_cluster_change *c, size_t n);
/* Whether feed f has delivered its first snapshot (to the queue). */
bool bw_cluster_watch_synced(struct bw_cluster_watch *w, enum bw_cluster_feed f);
void bw_cluster_watch_stats(struct bw_cluster_watch *w, enum bw_cluster_feed f,
			    struct bw_kube_reflector_stats *out);
/* Stops and joins every thread, frees what is still queued. NULL is fine. */
void bw_cluster_watch_free(struct bw_cluster_watch *w);
