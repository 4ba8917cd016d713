/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The other end of bulwark-oci-hook (oci-hook/): a unix socket on which the
 * runtime's hook, run when a container's cgroup exists and before its first
 * process runs, asks "are this cgroup's rules in the kernel?" and waits.
 *
 * Protocol: one JSON line each way, then the connection closes.
 *   hook:     {"cgroup": "/kubepods.slice/.../cri-containerd-ID.scope",
 *              "namespace": "shop", "pod": "web", "container": "main",
 *              "id": "ID", "timeoutMs": 2000}
 *   bulwarkd: {"state": "enforced" | "unselected" | "unclassified" | "error",
 *              "blockNamespace": true | false, "message": "..."}
 * enforced: a policy selects the cgroup and its rule set is in the kernel's
 * workloads map; unselected: the agent knows the cgroup's pod and no policy
 * selects it; unclassified: the pod is still unknown when the time is up
 * (blockNamespace then tells the hook whether a Block policy selects pods of
 * that namespace, for its fail-closed choice).
 *
 * The agent writes the namespaces that Block policies select to a file
 * beside the socket (block-namespaces, one per line) after every apply: the
 * hook reads it when bulwarkd does not answer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compile.h"
#include "inventory.h"
#include "policy.h"

#define BW_HOOK_SOCKET_DEFAULT "/run/bulwark/hook.sock"
#define BW_HOOK_BLOCK_FILE "block-namespaces"
#define BW_HOOK_TIMEOUT_DEFAULT_MS 5000
#define BW_HOOK_TIMEOUT_MAX_MS 60000

enum bw_hook_state {
	BW_HOOK_PENDING,      /* not decided yet: wait */
	BW_HOOK_ENFORCED,
	BW_HOOK_UNSELECTED,
	BW_HOOK_UNCLASSIFIED,
	BW_HOOK_ERROR,
};

const char *bw_hook_state_name(enum bw_hook_state s);

struct bw_hook_request {
	int fd;
	char buf[4096];
	size_t len;
	bool parsed;
	char *cgroup, *namespace, *pod, *container;
	uint64_t accepted_ns, deadline_ns; /* CLOCK_MONOTONIC */
};

struct bw_hook_stats {
	uint64_t requests, enforced, unselected, unclassified, errors;
	uint64_t latency_max_us, latency_sum_us; /* accept to answer */
};

struct bw_hook_server {
	int listen_fd;
	char *path;       /* the socket */
	char *block_file; /* beside it */
	struct bw_hook_request **reqs;
	size_t n_reqs;
	struct bw_hook_stats stats;
};

/* Binds the socket (mode 0600, its directory made if missing; a stale socket
 * is replaced). 0 or a negative errno with *error. */
int bw_hook_server_open(struct bw_hook_server *s, const char *path, char **error);
void bw_hook_server_close(struct bw_hook_server *s);

/* Accepts one connection: the new request (its fd non-blocking, to add to
 * the caller's poll set), NULL when none is waiting or on error. */
struct bw_hook_request *bw_hook_server_accept(struct bw_hook_server *s, uint64_t now_ns);
/* Reads what the hook sent. Returns 1 when the request is complete (parsed),
 * 0 when more is to come, a negative errno when the connection is to be
 * dropped (then the caller calls bw_hook_request_finish). */
int bw_hook_request_read(struct bw_hook_request *r);
/* Answers (when state is not PENDING), closes and frees the request. */
void bw_hook_request_finish(struct bw_hook_server *s, struct bw_hook_request *r, enum bw_hook_state state,
			    bool block_namespace, const char *message, uint64_t now_ns);

/* What the plan says of a cgroup: ENFORCED when an assignment (not the
 * unclassified posture) covers it, UNSELECTED when an inventory workload
 * owns it (or it is not under kubepods: nothing more will be known), else
 * PENDING. in_kernel says whether the kernel's workloads map has an entry for
 * it: ENFORCED needs it. */
enum bw_hook_state bw_hook_evaluate(const struct bw_plan *plan, const struct bw_inventory *inv, uint64_t cgroup_id,
				    const char *cgroup_path, bool in_kernel);

/* Whether a Block-mode policy of pols selects pods of namespace ns (its
 * namespace selector, or a BulwarkPolicy of that namespace). */
bool bw_namespace_blocked(const struct bw_policy_list *pols, const struct bw_inventory *inv, const char *ns);

/* Rewrites the block-namespaces file from the inventory's namespaces. */
int bw_hook_write_block_file(const struct bw_hook_server *s, const struct bw_policy_list *pols,
			     const struct bw_inventory *inv);
