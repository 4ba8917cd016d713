/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Decoding a kernel event into a record: the process context comes from the
 * process table once per exec id (bw_proc_cache), and records are built in
 * one buffer (long values included). The process table here is a stand-in
 * (a small array behind the proc_lookup callback) so that the test can count
 * the lookups; tests/unit/test-process-table.c runs the real one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit-record.h"
#include "compile.h"
#include "publish.h"

#include "bw-test.h"

/* Stand-in process table: init (1) -> sh (50) -> app (100). */
static struct bw_process table[3];
static unsigned lookups;

static int table_lookup(uint32_t pid, struct bw_process *out, void *userdata)
{
	(void)userdata;
	lookups++;
	for (size_t i = 0; i < 3; i++)
		if (table[i].pid == pid) {
			*out = table[i];
			return 0;
		}
	return -ENOENT;
}

static void put_proc(size_t i, uint32_t pid, uint32_t ppid, uint64_t exec_id, uint64_t parent_exec_id,
		     const char *exe)
{
	memset(&table[i], 0, sizeof(table[i]));
	table[i].pid = pid;
	table[i].ppid = ppid;
	table[i].exec_id = exec_id;
	table[i].parent_exec_id = parent_exec_id;
	snprintf(table[i].exe, sizeof(table[i].exe), "%s", exe);
	table[i].exe_len = (uint32_t)strlen(table[i].exe) + 1;
}

/* An audited open of path by pid 100 (exec exec_id). */
static struct bw_record *decode(const struct bw_record_context *ctx, uint64_t exec_id, const char *path)
{
	char buf[sizeof(struct bw_event_header) + 8192];
	struct bw_event_header *h = (struct bw_event_header *)buf;
	struct bw_record *r = NULL;
	size_t n = strlen(path) + 1;

	memset(buf, 0, sizeof(buf));
	h->pid = 100;
	h->ppid = 50;
	h->hook = BW_HOOK_FILE;
	h->decision = BW_DECISION_AUDIT;
	h->exec_id = exec_id;
	h->path_len = (uint32_t)n;
	memcpy(h->comm, "app", 4);
	memcpy(buf + sizeof(*h), path, n);
	ASSERT(bw_record_decode(buf, sizeof(*h) + n, ctx, &r) == 0 && r);
	return r;
}

static bool field_is(const struct bw_record *r, const char *key, const char *want)
{
	const char *v = r ? bw_record_get(r, key) : NULL;

	if (v && !strcmp(v, want))
		return true;
	fprintf(stderr, "%s: %s, not %s\n", key, v ? v : "(none)", want);
	return false;
}

int main(void)
{
	struct bw_publisher pub = { 0 };
	struct bw_rule_table rules = { 0 };
	struct bw_record_context ctx = {
		.pub = &pub, .rules = &rules, .proc_root = "/nonexistent", .proc_lookup = table_lookup,
	};
	struct bw_record *r;
	char *longpath;

	put_proc(0, 1, 0, 1, 0, "/sbin/init");
	put_proc(1, 50, 1, 3, 1, "/bin/sh");
	put_proc(2, 100, 50, 7, 3, "/usr/bin/app");

	/* Without a cache, each event asks the table every time. */
	r = decode(&ctx, 7, "/data/x");
	ASSERT(lookups >= 3);
	ASSERT(field_is(r, "EXE", "/usr/bin/app") && field_is(r, "PARENT_EXE", "/bin/sh"));
	ASSERT(field_is(r, "ANCESTORS", "/bin/sh[50] < /sbin/init[1]"));
	bw_record_unref(r);

	/* With one: the first event of an exec id asks, the next ones not,
	 * and say the same. */
	ctx.proc_cache = bw_proc_cache_new();
	ASSERT(ctx.proc_cache != NULL);
	lookups = 0;
	r = decode(&ctx, 7, "/data/x");
	ASSERT(lookups >= 3);
	bw_record_unref(r);
	lookups = 0;
	r = decode(&ctx, 7, "/data/y");
	ASSERT(lookups == 0);
	ASSERT(field_is(r, "EXE", "/usr/bin/app") && field_is(r, "PARENT_EXE", "/bin/sh"));
	ASSERT(field_is(r, "ANCESTORS", "/bin/sh[50] < /sbin/init[1]") && field_is(r, "TARGET", "/data/y"));
	bw_record_unref(r);

	/* The same pid after a new exec is another exec id: asked again. */
	put_proc(2, 100, 50, 8, 3, "/usr/bin/other");
	lookups = 0;
	r = decode(&ctx, 8, "/data/x");
	ASSERT(lookups >= 1 && field_is(r, "EXE", "/usr/bin/other"));
	bw_record_unref(r);

	/* An event whose exec id the table does not have (yet): nothing
	 * taken from the table (no ancestors), the exec id still reported. */
	lookups = 0;
	r = decode(&ctx, 9, "/data/x");
	ASSERT(lookups == 1 && r && !bw_record_get(r, "ANCESTORS") && field_is(r, "EXEC_ID", "9"));
	bw_record_unref(r);

	/* A value longer than the builder's first buffer is kept whole. */
	longpath = malloc(4001);
	ASSERT(longpath != NULL);
	if (longpath) {
		longpath[0] = '/';
		memset(longpath + 1, 'a', 3999);
		longpath[4000] = '\0';
		r = decode(&ctx, 8, longpath);
		ASSERT(field_is(r, "TARGET", longpath) && field_is(r, "EXE", "/usr/bin/other"));
		ASSERT(r && strstr(r->message, longpath) != NULL);
		bw_record_unref(r);
		free(longpath);
	}

	/* Counts in agent records are JSON numbers, strings stay strings: a
	 * consumer sums "rulesets_new" without parsing it. */
	{
		static const char *counts[] = { "APPLY_US", "PUBLISH_US", "RULESETS_NEW", "RULESETS_SPARED",
						"OUTER_UPDATES", "CLUSTER_POLICIES", "PODS", "NAMESPACES",
						"GENERATION", "PID", "CGROUP_ID" };

		for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
			if (!bw_field_is_numeric(counts[i])) {
				fprintf(stderr, "%s is not numeric\n", counts[i]);
				ASSERT(false);
			}
		ASSERT(!bw_field_is_numeric("NODE") && !bw_field_is_numeric("TARGET") &&
		       !bw_field_is_numeric("SPARE_RULESETS") && !bw_field_is_numeric("EXE"));
	}

	bw_proc_cache_free(ctx.proc_cache);
	return bw_test_summary();
}
