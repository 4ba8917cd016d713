/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An audit record: a kernel event decoded and enriched into named fields,
 * the one shape every sink (JSON lines now; journald and syslog next) takes.
 */
#pragma once

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulwark_abi.h"
#include "compile.h"
#include "publish.h"

struct bw_record {
	uint64_t time_realtime_ns;
	const char *hook;      /* "exec", "file", "connect" */
	const char *decision;  /* "blocked", "audited" */
	const char *mode;      /* "Block", "Audit" */
	const char *policy;    /* "BulwarkPolicy prod/lock-shells" */
	const char *rule;      /* "exec.deny[0] path /bin/sh" or "not in exec allow list" */
	uint32_t pid, ppid, uid;
	char comm[BW_TASK_COMM_LEN + 1];
	char executable[BW_PATH_MAX];
	char target[BW_PATH_MAX + 64];
	const char *access;    /* file: "read"/"write"; connect: "tcp"/"udp"/"any" */
	uint64_t cgroup_id;
	const char *cgroup_path;
	const char *namespace, *pod, *container;
	bool path_unresolved;
	int path_error;
	bool matched_by_name;
};

/* Where a cgroup id came from, as the last applied plan saw it. */
typedef const struct bw_assignment *(*bw_cgroup_lookup_fn)(uint64_t id, void *userdata);

struct bw_record_context {
	const struct bw_publisher *pub;
	const struct bw_rule_table *rules;
	bw_cgroup_lookup_fn cgroup_lookup;
	void *userdata;
	int64_t boot_to_realtime_ns; /* added to CLOCK_BOOTTIME stamps */
};

/* Decodes one ring-buffer record; -EINVAL if it is malformed. Strings point
 * into the context's tables or static storage and live until the next
 * policy change. */
int bw_record_decode(const void *data, size_t size, const struct bw_record_context *ctx,
		     struct bw_record *r);

/* One JSON object on one line, newline included; caller frees. */
char *bw_record_to_json(const struct bw_record *r);

/* A one-line human summary: "blocked exec of /bin/sh by pid 412 (sh) in
 * prod/web-7f9c: policy BulwarkPolicy prod/lock-shells". Caller frees. */
char *bw_record_summary(const struct bw_record *r);

int64_t bw_boot_to_realtime_offset(void);
