/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Writes this node's entry into the status of every cluster policy, in its
 * own thread so that a slow or unreachable API server never holds up the
 * main loop (the event pipeline and the map updates).
 *
 * The main loop posts the whole wanted picture after every apply; the
 * writer compares it with what it last wrote and writes only what changed:
 * GET the object, build the merge patch (agent/policy-status.c: the other
 * nodes' entries kept, resourceVersion as a precondition), PATCH .../status.
 * A 409 (another node wrote first) is retried at once on the fresh object;
 * a 404 (the policy is gone) drops the entry; any other failure is retried
 * with capped exponential backoff. A newer post replaces an older one that
 * was not written yet.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "kube-client.h"
#include "kube-config.h"

struct bw_status_report {
	char *path;    /* the object: "/apis/bulwark.dev/v1alpha1/clusterbulwarkpolicies/NAME" */
	char *uid;     /* the object reported on (metadata.uid); NULL: any */
	bool enforcing;
	char *reason;  /* Enforcing, Invalid, InvalidKeptPrevious, CompileFailed, ShadowedByLocal */
	char *message;
	long long observed_generation;
	int rules;
};

struct bw_status_writer_stats {
	uint64_t writes;       /* successful PATCHes */
	uint64_t unchanged;    /* the object already said it: no write */
	uint64_t conflicts;    /* 409s, retried */
	uint64_t gone;         /* 404s: the policy was deleted meanwhile */
	uint64_t failures;     /* other failures, retried later */
	uint64_t pending;      /* reports not written yet */
	char last_error[256];
};

struct bw_status_writer;

struct bw_status_writer *bw_status_writer_new(const struct bw_kube_config *cfg, const char *node_name,
					      const struct bw_kube_client_options *client, char **error);
int bw_status_writer_start(struct bw_status_writer *w);
/* Replaces the wanted reports (copied). 0 or -ENOMEM (the previous picture
 * then stays wanted). */
int bw_status_writer_post(struct bw_status_writer *w, const struct bw_status_report *r, size_t n);
/* Waits until nothing is pending or timeout_ms passed: true when idle. For
 * tests and for a clean stop. */
bool bw_status_writer_flush(struct bw_status_writer *w, unsigned timeout_ms);
void bw_status_writer_get_stats(struct bw_status_writer *w, struct bw_status_writer_stats *out);
/* Stops (cancelling a request under way), joins and frees. NULL is fine. */
void bw_status_writer_free(struct bw_status_writer *w);

void bw_status_report_clear(struct bw_status_report *r);
