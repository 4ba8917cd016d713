/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An audit record: what every sink (journald, syslog, JSON lines) writes.
 *
 * A record is a kind, a time, a syslog priority, a one-line human message and
 * an ordered list of named fields, all strings, in one allocation. The field
 * names are the journald names without their BULWARK_ prefix (HOOK, POLICY,
 * ...); JSON and RFC 5424 structured data use the same names in lower case.
 * Keeping one list for all sinks is what keeps them from drifting apart.
 *
 * Records are immutable once built and reference-counted, so one record can
 * sit in the queues of several sinks.
 */
#pragma once

#include <linux/types.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulwark_abi.h"
#include "compile.h"
#include "publish.h"

enum bw_record_kind {
	BW_RECORD_DECISION,   /* a blocked or audited operation */
	BW_RECORD_SUPPRESSED, /* "suppressed N events for policy P in workload W" */
	BW_RECORD_HEALTH,     /* periodic counters */
	BW_RECORD_LOSS,       /* a sink lost events, or came back after losing some */
	BW_RECORD_AGENT,      /* the agent's own state: started, policies applied, ... */
};

struct bw_field {
	const char *key;   /* "HOOK", "POLICY", ...: [A-Z0-9_]+ */
	const char *value; /* any bytes but NUL; sinks escape what their format needs */
};

struct bw_record {
	atomic_int refs;
	enum bw_record_kind kind;
	uint64_t time_realtime_ns;
	int priority;        /* syslog severity: LOG_WARNING blocked, LOG_NOTICE audited, ... */
	const char *message; /* one line, e.g. "blocked exec of /bin/sh by pid 412 (nginx) in
			      * prod/web-7f9c: policy lock-shells" */
	size_t n_fields;
	struct bw_field fields[];
};

/* The field names, in the order records carry them. Not every record has
 * every field; numeric ones are written as decimal strings. */
#define BW_FIELD_HOOK "HOOK"             /* exec | file | connect */
#define BW_FIELD_DECISION "DECISION"     /* blocked | audited */
#define BW_FIELD_MODE "MODE"             /* Block | Audit */
#define BW_FIELD_POLICY "POLICY"         /* "ClusterBulwarkPolicy lock-shells" */
#define BW_FIELD_RULE "RULE"             /* "exec.deny[0] path /bin/sh" */
#define BW_FIELD_PID "PID"
#define BW_FIELD_PPID "PPID"
#define BW_FIELD_UID "UID"
#define BW_FIELD_COMM "COMM"
#define BW_FIELD_EXE "EXE"
#define BW_FIELD_PARENT_EXE "PARENT_EXE"
#define BW_FIELD_TARGET "TARGET"         /* path, or address:port */
#define BW_FIELD_ACCESS "ACCESS"         /* read | write | tcp | udp | any */
#define BW_FIELD_CGROUP_ID "CGROUP_ID"
#define BW_FIELD_CGROUP_PATH "CGROUP_PATH"
#define BW_FIELD_NAMESPACE "NAMESPACE"
#define BW_FIELD_POD "POD"
#define BW_FIELD_CONTAINER "CONTAINER"
#define BW_FIELD_PATH_UNRESOLVED "PATH_UNRESOLVED" /* the kernel's error number */
#define BW_FIELD_MATCHED_BY_NAME "MATCHED_BY_NAME" /* "1" */
#define BW_FIELD_DEGRADED "DEGRADED"               /* "1": decided by a degraded-mode fallback */
#define BW_FIELD_SUPPRESSED "SUPPRESSED"           /* suppressed: the count */
#define BW_FIELD_SINK "SINK"                       /* loss: which sink */
#define BW_FIELD_DROPPED "DROPPED"                 /* loss: how many */
#define BW_FIELD_EVENT "EVENT"                     /* agent/health/loss: what happened */
#define BW_FIELD_EXEC_ID "EXEC_ID"                 /* the caller's exec id (process table) */
#define BW_FIELD_ANCESTORS "ANCESTORS"             /* "exe[pid] < exe[pid] ...", nearest first */

/* Whether a field holds a number (JSON writes those unquoted). */
bool bw_field_is_numeric(const char *key);

struct bw_record *bw_record_ref(struct bw_record *r);
void bw_record_unref(struct bw_record *r);
const char *bw_record_get(const struct bw_record *r, const char *key);

/* Text that grows as it is appended to; oom once an allocation failed
 * (what was appended before stays). */
struct bw_text {
	char *s;
	size_t len, cap;
	bool oom;
};

/* Builds a record field by field; every string is copied. */
struct bw_record_builder {
	enum bw_record_kind kind;
	uint64_t time_realtime_ns;
	int priority;
	/* Keys, values and the message, each NUL-terminated, one after the
	 * other in one buffer (a record is a few allocations, not one per
	 * string: measured by bench/ under an event flood). */
	struct bw_text text;
	size_t message;          /* offset in text; SIZE_MAX: none */
	struct { size_t key, value; } *fields; /* offsets in text */
	size_t n, cap;
	bool oom;
};

void bw_record_builder_init(struct bw_record_builder *b, enum bw_record_kind kind, uint64_t time_realtime_ns,
			    int priority);
void bw_record_builder_add(struct bw_record_builder *b, const char *key, const char *value);
void bw_record_builder_addf(struct bw_record_builder *b, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void bw_record_builder_message(struct bw_record_builder *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Packs the record (refs = 1) and resets the builder; NULL when out of memory. */
struct bw_record *bw_record_builder_finish(struct bw_record_builder *b);
void bw_record_builder_clear(struct bw_record_builder *b);

/* Where a cgroup id came from, as the last applied plan saw it. */
typedef const struct bw_assignment *(*bw_cgroup_lookup_fn)(uint64_t id, void *userdata);

struct bw_record_context {
	const struct bw_publisher *pub;
	const struct bw_rule_table *rules;
	bw_cgroup_lookup_fn cgroup_lookup;
	void *userdata;
	int64_t boot_to_realtime_ns; /* added to CLOCK_BOOTTIME stamps */
	const char *proc_root;       /* "/proc": where executables are looked up */
	/* The kernel's process table; NULL: /proc only. */
	int (*proc_lookup)(uint32_t pid, struct bw_process *out, void *userdata);
	/* What the table said about recent exec ids (NULL: ask every time). */
	struct bw_proc_cache *proc_cache;
};

/* The process context of an exec id (its executable, its parent's, its
 * ancestors) never changes: remembered for the last few hundred, so that a
 * process making many events costs the table lookups once, not up to six
 * bpf() calls per event (measured by bench/ under an event flood). */
struct bw_proc_cache;
struct bw_proc_cache *bw_proc_cache_new(void);
void bw_proc_cache_free(struct bw_proc_cache *c);

/* Decodes one ring-buffer event into a decision record; -EINVAL if it is
 * malformed, -ENOMEM. */
int bw_record_decode(const void *data, size_t size, const struct bw_record_context *ctx,
		     struct bw_record **out);

/* "decision", "suppressed", "health", "loss", "agent". */
const char *bw_record_kind_name(enum bw_record_kind k);

/* A copy of s in which every ill-formed UTF-8 sequence is U+FFFD. */
char *bw_utf8_sanitize(const char *s);


/* A record as one JSON object and a newline, appended to out (out->len
 * grows by the line's length; out->s is not NUL-terminated). Values are
 * made valid UTF-8 (ill-formed bytes become U+FFFD) so that every line is
 * valid JSON; numeric fields (bw_field_is_numeric) are JSON numbers. Keys
 * are the field names in lower case, after "time", "kind" and "priority",
 * and "message" last. Written straight into out, without a JSON tree: the
 * file sink's cost per event under a flood (bench/). Returns 0 or -ENOMEM. */
int bw_record_append_json(const struct bw_record *r, struct bw_text *out);

/* The same line in a string of its own; caller frees. */
char *bw_record_to_json(const struct bw_record *r);

int64_t bw_boot_to_realtime_offset(void);

/* "2026-11-21T19:50:17.139976600Z" (RFC 3339, UTC, nanoseconds). */
void bw_format_time(uint64_t realtime_ns, char *buf, size_t size);
