/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bulwarkd: loads the BPF-LSM programs, compiles the policies of a directory
 * (and the inventory of workloads) into the kernel maps, keeps them in step
 * with the directory, and writes every decision worth seeing as an event.
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <stdarg.h>
#include <syslog.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "audit-record.h"
#include "bpf-enforce.h"
#include "compile.h"
#include "event-ring.h"
#include "config.h"
#include "sink.h"
#include "util.h"
#include "sink-file.h"
#include "sink-journald.h"
#include "sink-syslog.h"
#include "inventory.h"
#include "hook-server.h"
#include "process-table.h"
#include "kubepods.h"
#include "kubernetes.h"
#include "policy-store.h"
#include "publish.h"

#define RETIRE_GRACE_NS (1000ULL * 1000 * 1000)
#define DEBOUNCE_NS (20ULL * 1000 * 1000)
/* A compiled rule set is reused for unchanged policies for this long; then
 * the tick compiles it again, which re-resolves the links in its rule paths.
 * Only the tick: an apply that a policy change triggers reuses whatever is
 * unchanged, however old (a 10,000-rule set's compile would otherwise land
 * in some change's propagation time once a minute; found by bench/). */
#define COMPILE_REUSE_MAX_AGE_NS (60ULL * 1000 * 1000 * 1000)
#define EVENT_BATCH 1024 /* events read before the loop looks at anything else */

struct agent {
	struct bw_config cfg;
	struct bw_bpf bpf;
	struct bw_publisher pub;
	struct bw_rule_table rules;
	struct bw_policy_store store;
	struct bw_inventory inv;
	struct bw_plan plan; /* the last applied plan, for event enrichment */
	/* The one before: an event read just after an apply may be from a
	 * cgroup that is gone now (a container that ran and exited). */
	struct bw_plan prev_plan;
	struct bw_sinks sinks;
	struct bw_k8s k8s;
	bool k8s_on;
	struct bw_hook_server hooks; /* listen_fd -1: off */
	int hooktimerfd;
	struct bw_event_ring *rb;
	int epfd, inofd, sigfd, tickfd, debouncefd;
	uint64_t events_read, events_malformed, records_oom;
	uint64_t cgroups_announced; /* new kubepods cgroups the kernel told of */
	uint64_t procs_seeded;      /* processes put in the table from /proc */
	/* Events about a cgroup no plan knows yet, read while an apply that
	 * may classify it is on its way (or running): decoded after it, so
	 * that they name their pod. Bounded; beyond, decoded at once. */
	struct deferred_event {
		size_t size;
		uint64_t boot_to_realtime_ns;
		unsigned char data[];
	} **deferred;
	size_t n_deferred;
	bool applying;
	bool recompile_all; /* SIGHUP: no rule set reused */
	bool refreshing;    /* the tick's apply recompiling rule sets past their age */
	struct bw_proc_cache *proc_cache;
	struct bw_cgroup_tree cgroup_tree; /* the last walk, while the kernel says it holds */
	uint64_t events_deferred;
	/* What the debounce timer will do when it fires. */
	bool pending, reload_files, rescan_pods;
	int64_t boot_to_realtime_ns; /* refreshed once per ring-buffer wake-up */
	uint64_t ticks;
	bool metrics_failed;
	long rb_budget; /* events left in this batch (on_event) */
	int policy_wd, inventory_wd; /* inotify watches */
	unsigned applies;
	/* suppressed counts already reported, per rate-limit key */
	struct suppressed_seen {
		struct bw_ratelimit_key key;
		uint64_t reported;
	} *seen;
	size_t n_seen, cap_seen;
};

static int arm_timer(int fd, uint64_t ns, uint64_t interval_ns);

static int assign_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct bw_assignment *)a)->cgroup_id, y = ((const struct bw_assignment *)b)->cgroup_id;

	return x < y ? -1 : x > y;
}

static const struct bw_assignment *plan_lookup(const struct bw_plan *plan, uint64_t id)
{
	struct bw_assignment key = { .cgroup_id = id };

	return plan->n_assign ? bsearch(&key, plan->assign, plan->n_assign, sizeof(key), assign_cmp) : NULL;
}

static const struct bw_assignment *cgroup_lookup(uint64_t id, void *userdata)
{
	const struct agent *a = userdata;
	const struct bw_assignment *as = plan_lookup(&a->plan, id);

	return as ? as : plan_lookup(&a->prev_plan, id);
}

static void submit(struct agent *a, struct bw_record *r)
{
	if (!r) {
		a->records_oom++;
		return;
	}
	bw_sinks_submit(&a->sinks, r);
	bw_record_unref(r);
}

static int proc_lookup(uint32_t pid, struct bw_process *out, void *userdata)
{
	struct agent *a = userdata;

	return bpf_map_lookup_elem(bw_bpf_processes_fd(&a->bpf), &pid, out) < 0 ? -errno : 0;
}

static void handle_event(struct agent *a, const void *data, size_t size)
{
	struct bw_record_context rc = {
		.pub = &a->pub,
		.rules = &a->rules,
		.cgroup_lookup = cgroup_lookup,
		.userdata = a,
		.boot_to_realtime_ns = a->boot_to_realtime_ns,
		.proc_lookup = proc_lookup,
		.proc_cache = a->proc_cache,
	};
	struct bw_record *r;
	int ret;

	if (size >= sizeof(struct bw_event_header) &&
	    ((const struct bw_event_header *)data)->hook == BW_HOOK_CGROUP_NEW) {
		/* A pod's or container's cgroup appeared: classify it now, not at
		 * the next rescan (runc makes the pod's and the container's
		 * cgroups back to back: 2 ms gathers them). */
		a->cgroups_announced++;
		if (a->k8s_on) {
			a->rescan_pods = true;
			if (!a->pending) {
				arm_timer(a->debouncefd, 2ULL * 1000 * 1000, 0);
				a->pending = true;
			}
		}
		return;
	}
	if ((a->pending || a->applying) && a->n_deferred < 4096 && size >= sizeof(struct bw_event_header) &&
	    !cgroup_lookup(((const struct bw_event_header *)data)->cgroup_id, a)) {
		struct deferred_event *d = malloc(sizeof(*d) + size), **n;

		n = d ? realloc(a->deferred, (a->n_deferred + 1) * sizeof(*n)) : NULL;
		if (n) {
			d->size = size;
			d->boot_to_realtime_ns = a->boot_to_realtime_ns;
			memcpy(d->data, data, size);
			a->deferred = n;
			a->deferred[a->n_deferred++] = d;
			a->events_deferred++;
			return;
		}
		free(d);
	}
	a->events_read++;
	ret = bw_record_decode(data, size, &rc, &r);
	if (ret == -EINVAL) {
		a->events_malformed++;
		return;
	}
	submit(a, r);
}

static int on_event(void *ctx, const void *data, size_t size)
{
	struct agent *a = ctx;

	handle_event(a, data, size);
	/* Batches are bounded: a process making events as fast as the agent
	 * reads them must not keep it from policy changes, signals and
	 * timers (found by bench/: an Audit flood starved a policy update). */
	return --a->rb_budget > 0 ? 0 : -EAGAIN;
}

/* Reads at most budget events (the callback stops the batch). */
static void drain_events(struct agent *a, long budget)
{
	a->rb_budget = budget;
	bw_event_ring_consume(a->rb);
}

/* What the ring buffer can hold at most: draining that many reads all that
 * was there when the drain began, however fast more comes in. */
static long ring_capacity(const struct agent *a)
{
	return (long)(a->cfg.ringbuf_bytes / (sizeof(struct bw_event_header) + 8)) + 1;
}

/* The events held back for the apply that just ended: decoded now. */
static void decode_deferred(struct agent *a)
{
	size_t n = a->n_deferred;
	struct deferred_event **d = a->deferred;

	a->deferred = NULL;
	a->n_deferred = 0;
	for (size_t i = 0; i < n; i++) {
		int64_t saved = a->boot_to_realtime_ns;

		a->boot_to_realtime_ns = (int64_t)d[i]->boot_to_realtime_ns;
		handle_event(a, d[i]->data, d[i]->size); /* not pending now: decoded */
		a->boot_to_realtime_ns = saved;
		free(d[i]);
	}
	free(d);
}

/* An agent record: EVENT=what, then key/value pairs (NULL-terminated). */
static void agent_record(struct agent *a, enum bw_record_kind kind, int priority, const char *event,
			 const char *message, ...)
{
	struct bw_record_builder b;
	const char *k;
	va_list ap;

	bw_record_builder_init(&b, kind, clock_ns(CLOCK_REALTIME), priority);
	bw_record_builder_message(&b, "%s", message);
	bw_record_builder_add(&b, BW_FIELD_EVENT, event);
	va_start(ap, message);
	while ((k = va_arg(ap, const char *)))
		bw_record_builder_add(&b, k, va_arg(ap, const char *));
	va_end(ap);
	submit(a, bw_record_builder_finish(&b));
}

/* STATE (enforcing | degraded) and, when degraded, why and what a Block
 * decision does: in the first record, every health event and the metrics. */
static void add_state_fields(struct agent *a, struct bw_record_builder *b)
{
	bw_record_builder_add(b, "STATE", a->bpf.degraded_reason ? "degraded" : "enforcing");
	if (a->bpf.degraded_reason) {
		bw_record_builder_add(b, "DEGRADED_REASON", a->bpf.degraded_reason);
		bw_record_builder_add(b, "DEGRADED_ACTION", a->cfg.degraded_kill ? "kill" : "report");
	}
}

/* Prometheus text format, for node_exporter's textfile collector: written
 * to a temporary file and renamed, so that a reader never sees half. */
static void prom_escape(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void write_metrics(struct agent *a)
{
	static const struct {
		int stat;
		const char *name, *labels, *help;
	} counters[] = {
		{ BW_STAT_BLOCKED, "bulwark_decisions_total", "decision=\"blocked\"", NULL },
		{ BW_STAT_AUDITED, "bulwark_decisions_total", "decision=\"audited\"", NULL },
		{ BW_STAT_WOULD_BLOCK, "bulwark_decisions_total", "decision=\"would-block\"", NULL },
		{ BW_STAT_KILLED, "bulwark_decisions_total", "decision=\"killed\"", NULL },
		{ BW_STAT_CHECKS, "bulwark_checks_total", NULL, "Hook calls from selected workloads." },
		{ BW_STAT_EVENTS_DROPPED, "bulwark_events_dropped_total", NULL, "Events lost: ring buffer full." },
		{ BW_STAT_SUPPRESSED, "bulwark_events_suppressed_total", NULL, "Events held back by the rate limit." },
		{ BW_STAT_PATH_UNRESOLVED, "bulwark_paths_unresolved_total", NULL, "Paths the LSM could not resolve." },
		{ BW_STAT_FALLBACK_UNJUDGED, "bulwark_degraded_unjudged_total", NULL,
		  "Degraded mode: names not judged (relative or unreadable)." },
		{ BW_STAT_WORKLOADS_FULL, "bulwark_workloads_full_total", NULL, "Cgroups not given rules: map full." },
	};
	uint64_t st[BW_STAT_COUNT] = { 0 };
	char tmp[PATH_MAX];
	const char *last = NULL;
	FILE *f;

	if (!a->cfg.metrics_file)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", a->cfg.metrics_file);
	f = fopen(tmp, "we");
	if (!f) {
		if (!a->metrics_failed)
			fprintf(stderr, "bulwarkd: cannot write metrics to %s: %m\n", tmp);
		a->metrics_failed = true;
		return;
	}
	a->metrics_failed = false;
	bw_bpf_read_stats(&a->bpf, st);
	fprintf(f, "# HELP bulwark_enforcing 1 when BPF-LSM programs enforce policies, 0 in the degraded mode.\n"
		   "# TYPE bulwark_enforcing gauge\nbulwark_enforcing %d\n", a->bpf.degraded_reason ? 0 : 1);
	fprintf(f, "# HELP bulwark_state The agent's state; degraded carries the reason.\n# TYPE bulwark_state gauge\n");
	if (a->bpf.degraded_reason) {
		fprintf(f, "bulwark_state{state=\"degraded\",action=\"%s\",reason=\"", a->cfg.degraded_kill ? "kill" : "report");
		prom_escape(f, a->bpf.degraded_reason);
		fprintf(f, "\"} 1\n");
	} else {
		fprintf(f, "bulwark_state{state=\"enforcing\"} 1\n");
	}
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		if (!last || strcmp(last, counters[i].name))
			fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", counters[i].name,
				counters[i].help ? counters[i].help : "Decisions that produced an event, by what happened.",
				counters[i].name);
		last = counters[i].name;
		fprintf(f, "%s%s%s%s %llu\n", counters[i].name, counters[i].labels ? "{" : "",
			counters[i].labels ? counters[i].labels : "", counters[i].labels ? "}" : "",
			(unsigned long long)st[counters[i].stat]);
	}
	fprintf(f, "# HELP bulwark_policy_generation Policy applies since start.\n# TYPE bulwark_policy_generation gauge\n"
		   "bulwark_policy_generation %u\n", a->applies);
	fprintf(f, "# HELP bulwark_workloads Cgroups given a rule set.\n# TYPE bulwark_workloads gauge\n"
		   "bulwark_workloads %zu\n", a->plan.n_assign);
	fprintf(f, "# HELP bulwark_policies_rejected Policy documents rejected (the last good one stays).\n"
		   "# TYPE bulwark_policies_rejected gauge\nbulwark_policies_rejected %zu\n", a->store.rejected.n);
	fprintf(f, "# HELP bulwark_events_read_total Events read from the kernel.\n# TYPE bulwark_events_read_total counter\n"
		   "bulwark_events_read_total %llu\n", (unsigned long long)a->events_read);
	if (fclose(f) == 0 && rename(tmp, a->cfg.metrics_file) < 0)
		fprintf(stderr, "bulwarkd: cannot rename %s: %m\n", tmp);
}

/* The health event: the kernel's counters and every sink's. */
static void emit_health(struct agent *a)
{
	static const char *const names[BW_STAT_COUNT] = {
		[BW_STAT_CHECKS] = "CHECKS", [BW_STAT_BLOCKED] = "BLOCKED", [BW_STAT_AUDITED] = "AUDITED",
		[BW_STAT_EVENTS_DROPPED] = "EVENTS_DROPPED", [BW_STAT_PATH_UNRESOLVED] = "PATHS_UNRESOLVED",
		[BW_STAT_PATH_LONG] = "PATH_LONG", [BW_STAT_RULESET_MISSING] = "RULESET_MISSING",
		[BW_STAT_CGROUP_INHERITED] = "CGROUPS_INHERITED", [BW_STAT_WORKLOADS_FULL] = "WORKLOADS_FULL",
		[BW_STAT_SUPPRESSED] = "SUPPRESSED_TOTAL", [BW_STAT_RATELIMIT_FULL] = "RATELIMIT_FULL",
		[BW_STAT_KUBEPODS_NEW] = "KUBEPODS_CGROUPS_NEW", [BW_STAT_KUBEPODS_FULL] = "KUBEPODS_FULL",
		[BW_STAT_PROC_INSERTED] = "PROCESSES_TRACKED", [BW_STAT_PROC_EXITED] = "PROCESSES_EXITED",
		[BW_STAT_PROC_UNTRACKED] = "PROCESSES_UNTRACKED_EXEC", [BW_STAT_WOULD_BLOCK] = "WOULD_BLOCK",
		[BW_STAT_KILLED] = "KILLED", [BW_STAT_FALLBACK_UNJUDGED] = "DEGRADED_UNJUDGED",
		[BW_STAT_CGROUP_TREE_CHANGES] = "CGROUP_TREE_CHANGES",
	};
	uint64_t st[BW_STAT_COUNT] = { 0 };
	struct bw_record_builder b;

	bw_bpf_read_stats(&a->bpf, st);
	bw_record_builder_init(&b, BW_RECORD_HEALTH, clock_ns(CLOCK_REALTIME), LOG_INFO);
	if (a->bpf.degraded_reason)
		bw_record_builder_message(&b, "bulwarkd health: degraded (%s), %llu would have been blocked, %llu killed, "
					  "%llu connects blocked, %llu audited, %llu names not judged, %llu events dropped "
					  "by the kernel, %llu suppressed", a->bpf.degraded_reason,
					  (unsigned long long)st[BW_STAT_WOULD_BLOCK], (unsigned long long)st[BW_STAT_KILLED],
					  (unsigned long long)st[BW_STAT_BLOCKED], (unsigned long long)st[BW_STAT_AUDITED],
					  (unsigned long long)st[BW_STAT_FALLBACK_UNJUDGED],
					  (unsigned long long)st[BW_STAT_EVENTS_DROPPED], (unsigned long long)st[BW_STAT_SUPPRESSED]);
	else
		bw_record_builder_message(&b, "bulwarkd health: enforcing, %llu blocked, %llu audited, %llu events dropped "
					  "by the kernel, %llu suppressed",
					  (unsigned long long)st[BW_STAT_BLOCKED], (unsigned long long)st[BW_STAT_AUDITED],
					  (unsigned long long)st[BW_STAT_EVENTS_DROPPED], (unsigned long long)st[BW_STAT_SUPPRESSED]);
	bw_record_builder_add(&b, BW_FIELD_EVENT, "health");
	add_state_fields(a, &b);
	for (int i = 0; i < BW_STAT_COUNT; i++)
		bw_record_builder_addf(&b, names[i], "%llu", (unsigned long long)st[i]);
	bw_record_builder_addf(&b, "EVENTS_READ", "%llu", (unsigned long long)a->events_read);
	bw_record_builder_addf(&b, "EVENTS_MALFORMED", "%llu", (unsigned long long)a->events_malformed);
	bw_record_builder_addf(&b, "RECORDS_OOM", "%llu", (unsigned long long)a->records_oom);
	bw_record_builder_addf(&b, "EVENTS_DEFERRED", "%llu", (unsigned long long)a->events_deferred);
	bw_record_builder_addf(&b, "KUBEPODS_CGROUPS_ANNOUNCED", "%llu", (unsigned long long)a->cgroups_announced);
	{
		/* The LRU table never refuses a process; what it dropped to make
		 * room is what was made minus what it holds. */
		long entries = bw_proc_count(bw_bpf_processes_fd(&a->bpf));
		uint64_t made = st[BW_STAT_PROC_INSERTED] + a->procs_seeded;

		bw_record_builder_addf(&b, "PROCESS_TABLE", "entries=%ld size=%u evicted=%llu", entries,
				       a->cfg.max_processes,
				       (unsigned long long)(made > (uint64_t)entries ? made - (uint64_t)entries : 0));
	}
	if (a->pub.spares) {
		struct bw_spare_stats sp;

		bw_publisher_spare_stats(&a->pub, &sp);
		bw_record_builder_addf(&b, "SPARE_RULESETS", "ready=%zu target=%u entries=%u pending=%zu deferred=%zu "
				       "taken=%llu missed=%llu too_large=%llu made=%llu dropped=%llu compacted=%llu "
				       "failures=%llu%s%s",
				       sp.ready, sp.target, sp.capacity, sp.pending, sp.deferred, (unsigned long long)sp.taken,
				       (unsigned long long)sp.missed, (unsigned long long)sp.too_large,
				       (unsigned long long)sp.made, (unsigned long long)sp.dropped,
				       (unsigned long long)sp.compacted, (unsigned long long)sp.failures,
				       sp.last_error ? " last_error=" : "", sp.last_error ? strerror(-sp.last_error) : "");
	}
	if (a->hooks.listen_fd >= 0) {
		const struct bw_hook_stats *h = &a->hooks.stats;
		uint64_t answered = h->enforced + h->unselected + h->unclassified;

		bw_record_builder_addf(&b, "OCI_HOOK", "requests=%llu enforced=%llu unselected=%llu unclassified=%llu "
				       "errors=%llu waiting=%zu latency_avg_us=%llu latency_max_us=%llu",
				       (unsigned long long)h->requests, (unsigned long long)h->enforced,
				       (unsigned long long)h->unselected, (unsigned long long)h->unclassified,
				       (unsigned long long)h->errors, a->hooks.n_reqs,
				       (unsigned long long)(answered ? h->latency_sum_us / answered : 0),
				       (unsigned long long)h->latency_max_us);
	}
	for (struct bw_sink *s = a->sinks.list; s; s = s->next) {
		struct bw_sink_stats ss;
		char key[64];

		bw_sink_get_stats(s, &ss);
		snprintf(key, sizeof(key), "SINK_%s", s->ops->name);
		for (char *p = key; *p; p++)
			*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		bw_record_builder_addf(&b, key, "%s written=%llu dropped_full=%llu dropped_down=%llu "
				       "write_errors=%llu reconnects=%llu", ss.up ? "up" : "down",
				       (unsigned long long)ss.written, (unsigned long long)ss.dropped_full,
				       (unsigned long long)ss.dropped_down, (unsigned long long)ss.write_errors,
				       (unsigned long long)ss.reconnects);
	}
	if (a->k8s_on)
		bw_k8s_health(&a->k8s, &b);
	submit(a, bw_record_builder_finish(&b));
}

/* Reports what the kernel suppressed since the last report: one record per
 * workload and policy. The kernel's counts only grow; the agent remembers
 * what it already reported. */
static void report_suppressed(struct agent *a)
{
	int fd = bw_bpf_ratelimit_fd(&a->bpf);
	struct bw_ratelimit_key key, next;
	struct bw_ratelimit_value v;
	int ret;

	for (ret = bpf_map_get_next_key(fd, NULL, &key); ret == 0;
	     ret = bpf_map_get_next_key(fd, &key, &next), key = next) {
		struct suppressed_seen *seen = NULL;
		const struct bw_published *pub;
		const struct bw_assignment *as;
		struct bw_record_builder b;
		const char *policy;
		uint64_t delta;

		if (bpf_map_lookup_elem(fd, &key, &v) < 0)
			continue;
		for (size_t i = 0; i < a->n_seen && !seen; i++)
			if (!memcmp(&a->seen[i].key, &key, sizeof(key)))
				seen = &a->seen[i];
		if (!seen) {
			if (a->n_seen == a->cap_seen) {
				size_t ncap = a->cap_seen ? a->cap_seen * 2 : 64;
				void *n = realloc(a->seen, ncap * sizeof(*a->seen));

				if (!n)
					return;
				a->seen = n;
				a->cap_seen = ncap;
			}
			seen = &a->seen[a->n_seen++];
			seen->key = key;
			seen->reported = 0;
		}
		if (v.suppressed <= seen->reported)
			continue;
		delta = v.suppressed - seen->reported;
		seen->reported = v.suppressed;

		pub = bw_publisher_find(&a->pub, key.ruleset_id);
		policy = pub && key.slot < pub->rs.n_slots ? pub->rs.slots[key.slot].policy : "unknown (retired rule set)";
		as = cgroup_lookup(key.cgroup_id, a);
		bw_record_builder_init(&b, BW_RECORD_SUPPRESSED, clock_ns(CLOCK_REALTIME), LOG_WARNING);
		if (as && as->pod)
			bw_record_builder_message(&b, "suppressed %llu events for policy %s in workload %s/%s",
						  (unsigned long long)delta, policy, as->namespace, as->pod);
		else
			bw_record_builder_message(&b, "suppressed %llu events for policy %s in workload %s",
						  (unsigned long long)delta, policy, as ? as->cgroup_path : "(cgroup gone)");
		bw_record_builder_add(&b, BW_FIELD_EVENT, "suppressed");
		bw_record_builder_addf(&b, BW_FIELD_SUPPRESSED, "%llu", (unsigned long long)delta);
		bw_record_builder_add(&b, BW_FIELD_POLICY, policy);
		bw_record_builder_addf(&b, BW_FIELD_CGROUP_ID, "%llu", (unsigned long long)key.cgroup_id);
		if (as) {
			bw_record_builder_add(&b, BW_FIELD_CGROUP_PATH, as->cgroup_path);
			bw_record_builder_add(&b, BW_FIELD_NAMESPACE, as->namespace);
			bw_record_builder_add(&b, BW_FIELD_POD, as->pod);
			bw_record_builder_add(&b, BW_FIELD_CONTAINER, as->container);
		}
		submit(a, bw_record_builder_finish(&b));
	}
}

static uint64_t self_cgroup_id(const char *cgroup_root)
{
	char line[PATH_MAX], path[PATH_MAX * 2];
	struct stat st;
	FILE *f = fopen("/proc/self/cgroup", "re");
	uint64_t id = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = '\0';
		snprintf(path, sizeof(path), "%s%s", cgroup_root, line + 3);
		if (stat(path, &st) == 0)
			id = st.st_ino;
	}
	fclose(f);
	return id;
}

static void write_status(struct agent *a, const struct bw_policy_list *enforced, const struct bw_publish_result *res)
{
	char tmp[PATH_MAX];
	FILE *f;

	if (!a->cfg.status_file)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", a->cfg.status_file);
	f = fopen(tmp, "we");
	if (!f) {
		fprintf(stderr, "bulwarkd: cannot write %s: %m\n", tmp);
		return;
	}
	fprintf(f, "generation %u\n", a->applies);
	if (a->bpf.degraded_reason)
		fprintf(f, "state degraded: %s\n", a->bpf.degraded_reason);
	else
		fprintf(f, "state enforcing\n");
	for (size_t i = 0; i < enforced->n; i++) {
		char *id = bw_policy_identity(enforced->items[i]);

		fprintf(f, "policy %s (%s)\n", id ? id : "?", enforced->items[i]->file);
		free(id);
	}
	for (size_t i = 0; i < a->store.rejected.n; i++) {
		char *m = bw_diag_format(&a->store.rejected.items[i]);

		fprintf(f, "rejected %s\n", m ? m : "?");
		free(m);
	}
	for (size_t i = 0; i < a->plan.n_errors; i++)
		fprintf(f, "error %s: %s\n", a->plan.errors[i].workload, a->plan.errors[i].message);
	fprintf(f, "workloads %zu\nrulesets %zu\nfailed %zu\n", a->plan.n_assign, a->plan.n_rulesets,
		res->workloads_failed + res->rulesets_failed);
	if (a->k8s_on)
		bw_k8s_status_lines(&a->k8s, f);
	if (fclose(f) == 0 && rename(tmp, a->cfg.status_file) < 0)
		fprintf(stderr, "bulwarkd: cannot rename %s: %m\n", tmp);
}

/* The local directory's policies, then the cluster's (borrowed). */
static int enforced_policies(struct agent *a, struct bw_policy_list *out)
{
	int ret;

	out->items = malloc((a->store.current.n + 1) * sizeof(*out->items));
	if (!out->items)
		return -ENOMEM;
	if (a->store.current.n)
		memcpy(out->items, a->store.current.items, a->store.current.n * sizeof(*out->items));
	out->n = a->store.current.n;
	if (a->k8s_on && (ret = bw_k8s_policies(&a->k8s, &a->store.current, out)) < 0) {
		free(out->items);
		out->items = NULL;
		return ret;
	}
	return 0;
}

/* Answers every hook request that can be answered now: its cgroup covered
 * by rules that are in the kernel, known and unselected, or out of time. */
static void settle_hooks(struct agent *a, const struct bw_policy_list *pols)
{
	uint64_t now = clock_ns(CLOCK_MONOTONIC), next = 0;

	for (size_t i = 0; i < a->hooks.n_reqs;) {
		struct bw_hook_request *r = a->hooks.reqs[i];
		char path[PATH_MAX * 2];
		struct bw_workload w;
		enum bw_hook_state st;
		const struct bw_assignment *as;
		const char *ns = r->namespace;
		struct stat sb;
		char msg[256];

		if (!r->parsed) {
			i++;
			continue;
		}
		snprintf(path, sizeof(path), "%s%s", a->cfg.cgroup_root, r->cgroup);
		if (stat(path, &sb) < 0) {
			snprintf(msg, sizeof(msg), "no cgroup %s: %s", r->cgroup, strerror(errno));
			bw_hook_request_finish(&a->hooks, r, BW_HOOK_ERROR, false, msg, now);
			continue;
		}
		/* Only a plan whose walk saw the cgroup can speak for it: one
		 * made since would look owned and unselected. */
		st = !bw_plan_saw_cgroup(&a->plan, sb.st_ino)
			     ? BW_HOOK_PENDING
			     : bw_hook_evaluate(&a->plan, &a->inv, sb.st_ino, r->cgroup,
						bpf_map_lookup_elem(a->pub.fds.workloads, &(uint64_t){ sb.st_ino }, &w) == 0);
		if (st == BW_HOOK_PENDING && now < r->deadline_ns) {
			if (!next || r->deadline_ns < next)
				next = r->deadline_ns;
			i++;
			continue;
		}
		if (st == BW_HOOK_PENDING)
			st = BW_HOOK_UNCLASSIFIED;
		as = cgroup_lookup(sb.st_ino, a);
		if (!ns && as && as->namespace)
			ns = as->namespace;
		snprintf(msg, sizeof(msg), "%s %s (%s/%s)", bw_hook_state_name(st), r->cgroup, ns ? ns : "-",
			 as && as->pod ? as->pod : r->pod ? r->pod : "-");
		bw_hook_request_finish(&a->hooks, r, st, bw_namespace_blocked(pols, &a->inv, ns), msg, now);
	}
	/* The earliest deadline still waiting (0 disarms). */
	arm_timer(a->hooktimerfd, next ? next - now : 0, 0);
}

/* One record per pod or container cgroup that gets the unclassified posture
 * (the plan before this one did not give it). */
static void report_unclassified(struct agent *a, const struct bw_plan *plan)
{
	static const char *const names[] = { [BW_POSTURE_ALLOW] = "allow", [BW_POSTURE_AUDIT] = "audit",
					     [BW_POSTURE_BLOCK_EXEC] = "block-exec" };

	for (size_t i = 0; i < plan->n_assign; i++) {
		const struct bw_assignment *as = &plan->assign[i], *before;
		char uid[64], cid[80], id[24];
		int level;

		if (!as->unclassified)
			continue;
		before = cgroup_lookup(as->cgroup_id, a); /* the previous plan */
		if (before && before->unclassified)
			continue;
		level = bw_kubepods_classify(as->cgroup_path, uid, cid);
		if (level < 1)
			continue; /* a root or QoS slice: not a workload */
		snprintf(id, sizeof(id), "%llu", (unsigned long long)as->cgroup_id);
		{
			char msg[PATH_MAX + 128];

			snprintf(msg, sizeof(msg), "unclassified workload %s (no known pod): posture %s", as->cgroup_path,
				 names[a->cfg.unclassified]);
			agent_record(a, BW_RECORD_AGENT, LOG_WARNING, "unclassified-workload", msg,
				     BW_FIELD_CGROUP_PATH, as->cgroup_path, BW_FIELD_CGROUP_ID, id, "POD_UID", uid,
				     "CONTAINER_ID", cid, "POSTURE", names[a->cfg.unclassified], (const char *)NULL);
		}
	}
}

static int seed_one(uint64_t id, void *userdata)
{
	struct agent *a = userdata;
	uint8_t one = 1;

	return bpf_map_update_elem(bw_bpf_kubepods_fd(&a->bpf), &id, &one, BPF_NOEXIST);
}

/* Tracks the kubepods cgroups that exist (the kernel tracks those made
 * later): at start, and now and then for a kubelet that starts after us. */
static void seed_kubepods(struct agent *a)
{
	int n = bw_kubepods_walk(a->cfg.cgroup_root, seed_one, a);

	if (n < 0)
		fprintf(stderr, "bulwarkd: cannot walk the kubepods cgroups: %s\n", strerror(-n));
}

/* Reloads what changed and brings the kernel in step. A policy that fails to
 * parse keeps its last good version; a plan that cannot be built keeps the
 * last applied state. */
static int apply_once(struct agent *a, bool reload_policies, bool reload_inventory)
{
	const uint64_t t_start = clock_ns(CLOCK_MONOTONIC);
	struct bw_plan_options po = {
		.compile = { .root = a->cfg.root, .audit_only = a->cfg.audit_only },
		.cgroup_root = a->cfg.cgroup_root,
		.exempt_cgroup = self_cgroup_id(a->cfg.cgroup_root),
		.posture = a->k8s_on ? bw_k8s_posture(&a->k8s) : NULL,
		.reuse = a->recompile_all ? NULL : &a->plan,
		.now_ns = t_start,
		.reuse_max_age_ns = a->refreshing ? COMPILE_REUSE_MAX_AGE_NS : UINT64_MAX,
	};
	struct bw_policy_list enforced = { 0 };
	struct bw_publish_result res;
	struct bw_plan plan;
	uint64_t t_parsed, t_plan, t_planned, t_published;
	int ret;

	if (reload_inventory && a->cfg.inventory) {
		char *err = NULL;

		ret = bw_inventory_load(a->cfg.inventory, &a->inv, &err);
		if (ret < 0)
			fprintf(stderr, "bulwarkd: inventory rejected, keeping the last good one: %s\n",
				err ? err : strerror(-ret));
		free(err);
	}
	if (reload_policies && a->cfg.policy_dir) {
		ret = bw_policy_store_reload(&a->store, a->cfg.policy_dir);
		if (ret < 0)
			fprintf(stderr, "bulwarkd: cannot read %s: %s; keeping the policies in force\n",
				a->cfg.policy_dir, strerror(-ret));
		for (size_t i = 0; i < a->store.rejected.n; i++) {
			char *m = bw_diag_format(&a->store.rejected.items[i]);

			fprintf(stderr, "bulwarkd: policy rejected: %s\n", m ? m : "?");
			free(m);
		}
	}

	t_parsed = clock_ns(CLOCK_MONOTONIC);

	/* Events already in the ring buffer are about the state in force:
	 * read them against it, before the plan changes. */
	a->boot_to_realtime_ns = bw_boot_to_realtime_offset();
	/* One batch, not the whole buffer: under a flood that would hold the
	 * change back by a full ring buffer's worth of decoding. Events read
	 * later still find their cgroup in the previous plan. */
	drain_events(a, EVENT_BATCH);
	if ((ret = enforced_policies(a, &enforced)) < 0)
		return ret;
	t_plan = clock_ns(CLOCK_MONOTONIC);
	/* Read before the plan's walk: a cgroup made or removed after this
	 * moves the count, and the next apply walks again. */
	po.tree = &a->cgroup_tree;
	po.tree_changes_known = !a->recompile_all &&
				bw_bpf_read_stat(&a->bpf, BW_STAT_CGROUP_TREE_CHANGES, &po.tree_changes) == 0;
	ret = bw_plan_build(&enforced, &a->inv, &po, &a->rules, &plan);
	if (ret < 0) {
		free(enforced.items);
		fprintf(stderr, "bulwarkd: cannot compile policies: %s; keeping the state in force\n",
			strerror(-ret));
		return ret;
	}
	for (size_t i = 0; i < plan.n_errors; i++)
		fprintf(stderr, "bulwarkd: workload %s keeps its previous rules: %s\n", plan.errors[i].workload,
			plan.errors[i].message);
	t_planned = clock_ns(CLOCK_MONOTONIC);
	ret = bw_publish_plan(&a->pub, &plan, t_planned, &res);
	t_published = clock_ns(CLOCK_MONOTONIC);
	if (ret < 0)
		fprintf(stderr, "bulwarkd: some rules could not be applied (%s): %zu rule sets, %zu workloads kept "
			"their previous state\n", strerror(-ret), res.rulesets_failed, res.workloads_failed);
	qsort(plan.assign, plan.n_assign, sizeof(*plan.assign), assign_cmp);
	report_unclassified(a, &plan);
	a->recompile_all = false;
	bw_plan_clear(&a->prev_plan);
	a->prev_plan = a->plan;
	/* The previous plan only answers which workload a cgroup was (events
	 * read late): its compiled rule sets are not needed (footprint). */
	for (size_t i = 0; i < a->prev_plan.n_rulesets; i++)
		bw_compiled_ruleset_clear(&a->prev_plan.rulesets[i]);
	free(a->prev_plan.rulesets); /* ~1.2 KB each even cleared (the slots) */
	a->prev_plan.rulesets = NULL;
	a->prev_plan.n_rulesets = 0;
	a->plan = plan;
	/* A refresh that found every link where it was changed nothing:
	 * no new generation, no record. */
	if (a->refreshing && ret == 0 && !res.rulesets_new && !res.workloads_updated && !res.workloads_removed &&
	    !plan.n_errors) {
		free(enforced.items);
		return 0;
	}
	a->applies++;
	{
		char gen[16], pol[24], rej[24], wl[24], failed[24], us[4][24], compiled[24], sets[3][24];
		const uint64_t t_end = clock_ns(CLOCK_MONOTONIC);

		snprintf(gen, sizeof(gen), "%u", a->applies);
		snprintf(pol, sizeof(pol), "%zu", enforced.n);
		snprintf(rej, sizeof(rej), "%zu", a->store.rejected.n);
		snprintf(wl, sizeof(wl), "%zu", plan.n_assign);
		snprintf(failed, sizeof(failed), "%zu", res.workloads_failed + res.rulesets_failed + plan.n_errors);
		/* Where an apply's time goes (reading the policies, building
		 * the plan, writing the kernel's maps): propagation's parts. */
		snprintf(compiled, sizeof(compiled), "%zu", plan.n_compiled);
		/* New rule sets, how many went into spare ids, and how many
		 * tries still went into outer maps (each waited for RCU). */
		snprintf(sets[0], sizeof(sets[0]), "%zu", res.rulesets_new);
		snprintf(sets[1], sizeof(sets[1]), "%zu", res.rulesets_spared);
		snprintf(sets[2], sizeof(sets[2]), "%zu", res.outer_updates);
		snprintf(us[0], sizeof(us[0]), "%" PRIu64, (t_end - t_start) / 1000);
		snprintf(us[1], sizeof(us[1]), "%" PRIu64, (t_parsed - t_start) / 1000);
		snprintf(us[2], sizeof(us[2]), "%" PRIu64, (t_planned - t_plan) / 1000);
		snprintf(us[3], sizeof(us[3]), "%" PRIu64, (t_published - t_planned) / 1000);
		agent_record(a, BW_RECORD_AGENT, failed[0] == '0' && !a->store.rejected.n ? LOG_INFO : LOG_ERR,
			     "applied", "policies applied", "GENERATION", gen, "POLICIES", pol, "REJECTED", rej,
			     "WORKLOADS", wl, "FAILED", failed, "APPLY_US", us[0], "PARSE_US", us[1], "PLAN_US",
			     us[2], "PUBLISH_US", us[3], "COMPILED", compiled, "WALKED", plan.walked ? "1" : "0",
			     "RULESETS_NEW", sets[0], "RULESETS_SPARED", sets[1], "OUTER_UPDATES", sets[2],
			     (const char *)NULL);
	}
	if (a->k8s_on)
		bw_k8s_report(&a->k8s, &a->store.current, &a->plan, a->cfg.audit_only, a->bpf.degraded_reason);
	write_status(a, &enforced, &res);
	if (a->hooks.listen_fd >= 0) {
		if (bw_hook_write_block_file(&a->hooks, &enforced, &a->inv) < 0)
			fprintf(stderr, "bulwarkd: cannot write %s: %m\n", a->hooks.block_file);
		settle_hooks(a, &enforced);
	}
	free(enforced.items);
	return 0;
}

/* Whether a rule set in force was compiled longer than
 * COMPILE_REUSE_MAX_AGE_NS ago (reused ones keep their compile time). */
static bool plan_has_stale_rulesets(const struct agent *a, uint64_t now_ns)
{
	for (size_t i = 0; i < a->plan.n_rulesets; i++)
		if (now_ns - a->plan.rulesets[i].compiled_ns > COMPILE_REUSE_MAX_AGE_NS)
			return true;
	return false;
}

/* One apply, with the events that arrive meanwhile about cgroups no plan
 * knows held back and decoded against the new plan. */
static int apply(struct agent *a, bool reload_policies, bool reload_inventory)
{
	int ret;

	a->applying = true;
	ret = apply_once(a, reload_policies, reload_inventory);
	a->applying = false;
	decode_deferred(a);
	/* A compile allocates and frees a lot at once (parsed documents, the
	 * plan, rule tables): hand what is free back to the system instead of
	 * keeping the peak resident (measured by bench/: footprint). */
	malloc_trim(0);
	return ret;
}

static int arm_timer(int fd, uint64_t ns, uint64_t interval_ns)
{
	struct itimerspec its = {
		.it_value = { (time_t)(ns / 1000000000ULL), (long)(ns % 1000000000ULL) },
		.it_interval = { (time_t)(interval_ns / 1000000000ULL), (long)(interval_ns % 1000000000ULL) },
	};

	return timerfd_settime(fd, 0, &its, NULL);
}

static int add_watch(struct agent *a)
{
	const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | IN_ATTRIB;

	a->policy_wd = a->inventory_wd = -1;
	if (a->cfg.policy_dir && (a->policy_wd = inotify_add_watch(a->inofd, a->cfg.policy_dir, mask | IN_ONLYDIR)) < 0) {
		fprintf(stderr, "bulwarkd: cannot watch %s: %m\n", a->cfg.policy_dir);
		return -errno;
	}
	if (a->cfg.inventory) {
		char dir[PATH_MAX], *slash;

		snprintf(dir, sizeof(dir), "%s", a->cfg.inventory);
		slash = strrchr(dir, '/');
		if (slash)
			*(slash == dir ? slash + 1 : slash) = '\0';
		else
			snprintf(dir, sizeof(dir), ".");
		if ((a->inventory_wd = inotify_add_watch(a->inofd, dir, mask | IN_ONLYDIR)) < 0)
			fprintf(stderr, "bulwarkd: cannot watch %s, inventory changes need SIGHUP: %m\n", dir);
	}
	return 0;
}

/* The apply that a file change or watch events asked for, now. */
static void apply_pending(struct agent *a)
{
	bool files = a->reload_files;

	if (!a->pending)
		return;
	arm_timer(a->debouncefd, 0, 0);
	a->pending = a->reload_files = false;
	if (a->rescan_pods) {
		a->rescan_pods = false;
		bw_k8s_rescan(&a->k8s);
	}
	apply(a, files, files);
}

/* Whether a change in a watched directory can change what is enforced:
 * policy documents, the inventory file; not the status or metrics files
 * or an editor's swap file that may sit beside them. */
static bool inotify_relevant(const struct agent *a, const struct inotify_event *ev)
{
	const char *dot;

	if (ev->mask & (IN_Q_OVERFLOW | IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF) || !ev->len)
		return true;
	/* "..data" is how a ConfigMap volume swaps all its files at once. */
	if (ev->wd == a->policy_wd && (!strcmp(ev->name, "..data") || ((dot = strrchr(ev->name, '.')) &&
	    ev->name[0] != '.' && (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml")))))
		return true;
	if (ev->wd == a->inventory_wd && a->cfg.inventory) {
		const char *base = strrchr(a->cfg.inventory, '/');

		return !strcmp(ev->name, base ? base + 1 : a->cfg.inventory);
	}
	return false;
}

static int epoll_add(int ep, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

/* epoll tags; anything above TAG_MAX is a hook request's address. */
enum { TAG_RB = 1, TAG_INO, TAG_SIG, TAG_TICK, TAG_DEBOUNCE, TAG_K8S, TAG_HOOK_LISTEN, TAG_HOOK_TIMER, TAG_MAX };

/* Whether a parsed hook request still waits for an answer. */
static bool hook_waiting(const struct agent *a)
{
	for (size_t i = 0; i < a->hooks.n_reqs; i++)
		if (a->hooks.reqs[i]->parsed)
			return true;
	return false;
}

/* A hook connected, or a request arrived: classify now (1 ms gathers the
 * requests of a pod's containers started together). */
static void on_hook_listen(struct agent *a)
{
	struct bw_hook_request *r;

	while ((r = bw_hook_server_accept(&a->hooks, clock_ns(CLOCK_MONOTONIC)))) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = r };

		if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, r->fd, &ev) < 0)
			bw_hook_request_finish(&a->hooks, r, BW_HOOK_ERROR, false, "cannot poll", clock_ns(CLOCK_MONOTONIC));
	}
}

static void on_hook_request(struct agent *a, struct bw_hook_request *r)
{
	int ret = bw_hook_request_read(r);

	if (ret < 0) {
		bw_hook_request_finish(&a->hooks, r, ret == -ECONNRESET ? BW_HOOK_PENDING : BW_HOOK_ERROR, false,
				       "bad request: one JSON line with an absolute \"cgroup\" expected",
				       clock_ns(CLOCK_MONOTONIC));
		return;
	}
	if (ret == 0)
		return;
	epoll_ctl(a->epfd, EPOLL_CTL_DEL, r->fd, NULL); /* answered from settle_hooks */
	{
		/* The apply that followed the kernel's announcement of the
		 * container's cgroup has often decided it already. */
		struct bw_policy_list pols = { 0 };
		size_t before = a->hooks.n_reqs;

		if (enforced_policies(a, &pols) == 0) {
			settle_hooks(a, &pols);
			free(pols.items);
		}
		if (a->hooks.n_reqs < before && !hook_waiting(a))
			return;
	}
	a->rescan_pods = a->k8s_on;
	if (!a->pending) {
		arm_timer(a->debouncefd, 1000 * 1000, 0);
		a->pending = true;
	}
}

static void k8s_ready_record(struct agent *a)
{
	char pols[24], pods[24], nss[24];

	snprintf(pols, sizeof(pols), "%zu", a->k8s.src.n_policies);
	snprintf(pods, sizeof(pods), "%zu", a->k8s.src.n_pods);
	snprintf(nss, sizeof(nss), "%zu", a->inv.n_namespaces);
	agent_record(a, BW_RECORD_AGENT, LOG_INFO, "kubernetes-synced", "cluster state in use",
		     "NODE", a->k8s.node_name, "CLUSTER_POLICIES", pols, "PODS", pods, "NAMESPACES", nss,
		     (const char *)NULL);
}

static int run(struct agent *a)
{
	for (;;) {
		struct epoll_event evs[8];
		int n = epoll_wait(a->epfd, evs, 8, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 >= TAG_MAX) {
				on_hook_request(a, evs[i].data.ptr);
				continue;
			}
			switch (evs[i].data.u64) {
			case TAG_RB:
				/* The clock offset moves only with suspend or a
				 * clock step: once per batch, not per event. */
				a->boot_to_realtime_ns = bw_boot_to_realtime_offset();
				drain_events(a, EVENT_BATCH);
				break;
			case TAG_INO: {
				char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

				ssize_t n;
				bool relevant = false, complete = false;

				while ((n = read(a->inofd, buf, sizeof(buf))) > 0)
					for (char *p = buf; p < buf + n;) {
						const struct inotify_event *ev = (const struct inotify_event *)p;

						if (inotify_relevant(a, ev)) {
							relevant = true;
							complete = ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO);
						}
						p += sizeof(*ev) + ev->len;
					}
				if (!relevant)
					break;
				a->pending = a->reload_files = true;
				/* A file written and closed, or renamed into place
				 * (ConfigMap volumes swap "..data"), is complete:
				 * apply now, that is propagation's latency. After a
				 * removal wait until the directory has been quiet for
				 * a moment: an editor saving in steps (rename away,
				 * write anew) must not lift rules in between. */
				if (complete)
					apply_pending(a);
				else
					arm_timer(a->debouncefd, DEBOUNCE_NS, 0);
				break;
			}
			case TAG_HOOK_LISTEN:
				on_hook_listen(a);
				break;
			case TAG_HOOK_TIMER: {
				uint64_t x;
				struct bw_policy_list pols = { 0 };

				if (read(a->hooktimerfd, &x, sizeof(x)) > 0 && enforced_policies(a, &pols) == 0) {
					settle_hooks(a, &pols);
					free(pols.items);
				}
				break;
			}
			case TAG_K8S: {
				int r = bw_k8s_drain(&a->k8s);

				if (r & BW_K8S_READY)
					k8s_ready_record(a);
				/* A burst of watch events (a relist, a deployment
				 * rolling) is applied once. */
				if ((r & BW_K8S_CHANGED) && !a->pending) {
					arm_timer(a->debouncefd, DEBOUNCE_NS, 0);
					a->pending = true;
				}
				break;
			}
			case TAG_DEBOUNCE: {
				uint64_t x;

				if (read(a->debouncefd, &x, sizeof(x)) > 0)
					apply_pending(a);
				break;
			}
			case TAG_TICK: {
				uint64_t x;
				int waiting;

				if (read(a->tickfd, &x, sizeof(x)) <= 0)
					break;
				a->ticks += x;
				waiting = bw_publish_retire(&a->pub, clock_ns(CLOCK_MONOTONIC), RETIRE_GRACE_NS);
				/* A cgroup made during the last walk still points at a
				 * retiring rule set: walk again so it gets the new one. */
				if (a->k8s_on) {
					int r = bw_k8s_tick(&a->k8s, clock_ns(CLOCK_MONOTONIC));

					if (a->ticks % 10 == 0)
						seed_kubepods(a);

					if (r & BW_K8S_READY)
						k8s_ready_record(a);
					if (r & BW_K8S_CHANGED)
						waiting = 1;
				}
				if (waiting > 0) {
					apply(a, false, false);
				} else if (plan_has_stale_rulesets(a, clock_ns(CLOCK_MONOTONIC))) {
					a->refreshing = true;
					apply(a, false, false);
					a->refreshing = false;
				}
				if (a->cfg.rate_limit && a->ticks % a->cfg.suppressed_report_s == 0)
					report_suppressed(a);
				if (a->cfg.health_interval_s && a->ticks % a->cfg.health_interval_s == 0)
					emit_health(a);
				write_metrics(a);
				break;
			}
			case TAG_SIG: {
				struct signalfd_siginfo si;

				if (read(a->sigfd, &si, sizeof(si)) != sizeof(si))
					break;
				if (si.ssi_signo == SIGHUP) {
					/* Everything again, links in rule paths too. */
					a->recompile_all = true;
					bw_policy_store_forget_files(&a->store);
					apply(a, true, true);
				} else if (si.ssi_signo == SIGUSR1) {
					report_suppressed(a);
					emit_health(a);
				} else {
					a->boot_to_realtime_ns = bw_boot_to_realtime_offset();
					drain_events(a, ring_capacity(a));
					return 0;
				}
				break;
			}
			}
		}
	}
}

/* "unix:/dev/log", "tcp:HOST:PORT", "udp:HOST:PORT" (checked by config.c). */
static struct bw_sink *syslog_sink_for(const char *target, const char *facility)
{
	struct bw_syslog_options o = { 0 };
	char buf[512], *colon;
	int fac = bw_syslog_facility_from_name(facility);

	if (fac < 0) {
		fprintf(stderr, "bulwarkd: syslog facility \"%s\" is not a syslog facility name\n", facility);
		return NULL;
	}
	o.facility = fac;
	snprintf(buf, sizeof(buf), "%s", target);
	if (!strncmp(buf, "unix:", 5)) {
		o.transport = BW_SYSLOG_UNIX;
		o.path = buf + 5;
	} else {
		o.transport = !strncmp(buf, "tcp:", 4) ? BW_SYSLOG_TCP : BW_SYSLOG_UDP;
		colon = strrchr(buf + 4, ':');
		if (!colon)
			return NULL;
		*colon = '\0';
		o.host = buf + 4;
		o.port = (uint16_t)atoi(colon + 1);
	}
	return bw_sink_syslog_new(&o);
}

/* Sinks: journald when its socket exists, else syslog, unless configured;
 * JSON lines to stdout and to a file when asked. */
static int setup_sinks(struct agent *a)
{
	const struct bw_config *c = &a->cfg;
	bool journald = c->journald == BW_ON || (c->journald == BW_AUTO && bw_journald_available());
	bool syslog_on = c->syslog == BW_ON || (c->syslog == BW_AUTO && !journald);
	struct bw_sink *s;
	int ret;

#define ADD(expr, what)                                                                       \
	do {                                                                                  \
		s = (expr);                                                                   \
		if (!s) {                                                                     \
			fprintf(stderr, "bulwarkd: cannot set up the %s sink\n", what);     \
			return -EINVAL;                                                       \
		}                                                                             \
		if ((ret = bw_sinks_add(&a->sinks, s, c->queue_len)) < 0) {                  \
			fprintf(stderr, "bulwarkd: cannot start the %s sink: %s\n", what,   \
				strerror(-ret));                                              \
			return ret;                                                           \
		}                                                                             \
	} while (0)
	if (c->stdout_json)
		ADD(bw_sink_file_new("-", 0, 0), "stdout");
	if (c->events_file)
		ADD(bw_sink_file_new(c->events_file, c->events_file_max_bytes, c->events_file_keep), "events file");
	if (journald)
		ADD(bw_sink_journald_new(), "journald");
	if (syslog_on)
		ADD(syslog_sink_for(c->syslog_target, c->syslog_facility), "syslog");
#undef ADD
	return 0;
}

int main(int argc, char **argv)
{
	struct bw_bpf_config bcfg;
	struct agent a = { .epfd = -1, .inofd = -1, .sigfd = -1, .tickfd = -1, .debouncefd = -1, .hooktimerfd = -1,
			   .hooks = { .listen_fd = -1 } };
	struct bw_map_fds fds;
	const char *config_file;
	bool config_explicit;
	static char root[PATH_MAX];
	sigset_t mask;
	char *why = NULL;
	int ret;

	/* Blocked before any thread starts, so that every thread inherits the
	 * mask and the signals reach the signalfd, never a sink thread. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGPIPE); /* a closed stdout is a sink error, not a death */
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigdelset(&mask, SIGPIPE);

	bw_config_defaults(&a.cfg);
	config_file = bw_config_find_file_arg(argc, argv, &config_explicit);
	ret = bw_config_load(&a.cfg, config_file, &why);
	if (ret < 0 && (ret != -ENOENT || config_explicit)) {
		fprintf(stderr, "bulwarkd: %s\n", why ? why : strerror(-ret));
		return 2;
	}
	free(why);
	why = NULL;
	ret = bw_config_parse_args(&a.cfg, argc, argv);
	if (ret != 0)
		return ret > 0 ? 0 : 2;
	/* Rule paths are resolved under root and compared with what realpath
	 * gives, so root itself must be canonical. */
	if (!realpath(a.cfg.root, root)) {
		fprintf(stderr, "bulwarkd: root %s: %m\n", a.cfg.root);
		return 2;
	}
	free(a.cfg.root);
	a.cfg.root = strdup(root);
	a.k8s_on = bw_config_kubernetes(&a.cfg);
	if (a.k8s_on && a.cfg.inventory) {
		fprintf(stderr, "bulwarkd: --inventory cannot be used with Kubernetes: the cluster is the inventory\n");
		bw_config_clear(&a.cfg);
		return 2;
	}
	a.sinks.retry_ms = 1000;

	bcfg = (struct bw_bpf_config){
		.max_workloads = a.cfg.max_workloads,
		.max_rulesets = a.cfg.max_rulesets,
		.ringbuf_bytes = a.cfg.ringbuf_bytes,
		.rate_limit = a.cfg.rate_limit,
		.rate_window_ns = (uint64_t)a.cfg.rate_window_ms * 1000000ULL,
		.max_processes = a.cfg.max_processes,
		.cgroup_root = a.cfg.cgroup_root,
		.require_enforcing = a.cfg.bpf_lsm == BW_BPF_LSM_REQUIRED,
		.force_degraded = a.cfg.bpf_lsm == BW_BPF_LSM_OFF,
		.degraded_kill = a.cfg.degraded_kill,
	};
	ret = bw_bpf_start(&a.bpf, &bcfg, &why);
	if (ret < 0) {
		fprintf(stderr, "bulwarkd: cannot enforce: %s\n", why ? why : strerror(-ret));
		free(why);
		bw_config_clear(&a.cfg);
		return 1;
	}
	/* The first line says what this agent can do, before anything else. */
	if (a.bpf.degraded_reason)
		fprintf(stderr, "bulwarkd: degraded: %s; exec and file rules in Block mode are %s "
			"(tracepoints cannot deny), connect rules are enforced by cgroup programs\n",
			a.bpf.degraded_reason,
			a.cfg.degraded_kill ? "enforced by killing the caller (SIGKILL)" : "only reported as would-block");
	else
		fprintf(stderr, "bulwarkd: enforcing: BPF-LSM programs on exec, file open and connect\n");
	bw_bpf_map_fds(&a.bpf, &fds);
	malloc_trim(0); /* libbpf parsed the kernel's BTF for each object: gone now */
	/* The tracepoints follow every process from now on; the ones already
	 * running come from /proc (entries the tracepoints made stay). */
	ret = bw_proc_seed(bw_bpf_processes_fd(&a.bpf), "/proc");
	if (ret < 0)
		fprintf(stderr, "bulwarkd: cannot seed the process table from /proc: %s\n", strerror(-ret));
	else
		a.procs_seeded = (uint64_t)ret;
	bw_publisher_init(&a.pub, &fds);
	/* Spare ids are made by a thread of their own from now on; the first
	 * apply below may come before them and then makes its own tries. */
	if (a.cfg.spare_rulesets &&
	    (ret = bw_publisher_start_spares(&a.pub, a.cfg.spare_rulesets, a.cfg.spare_trie_entries,
					     a.cfg.spare_compact_delay_ms)) < 0)
		fprintf(stderr, "bulwarkd: cannot start the spare rule-set thread: %s; policy changes wait for the "
			"kernel's RCU grace periods\n", strerror(-ret));
	if ((ret = setup_sinks(&a)) < 0)
		goto out;

	a.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	a.inofd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	a.tickfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	a.debouncefd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	a.hooktimerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	a.epfd = epoll_create1(EPOLL_CLOEXEC);
	a.proc_cache = bw_proc_cache_new(); /* NULL: every event asks the table */
	int rb_err = bw_event_ring_new(&a.rb, bw_bpf_events_fd(&a.bpf), on_event, &a);

	if (rb_err < 0) {
		fprintf(stderr, "bulwarkd: cannot map the event ring buffer: %s\n", strerror(-rb_err));
		ret = rb_err;
		goto out;
	}
	if (a.sigfd < 0 || a.inofd < 0 || a.tickfd < 0 || a.debouncefd < 0 || a.hooktimerfd < 0 || a.epfd < 0) {
		fprintf(stderr, "bulwarkd: cannot set up the event loop: %m\n");
		ret = -errno;
		goto out;
	}
	if ((ret = add_watch(&a)) < 0)
		goto out;
	if (a.cfg.hook_socket && strcmp(a.cfg.hook_socket, "none")) {
		/* Without it runtimes' hooks fall back on their failure mode:
		 * worth a warning, not worth refusing to enforce. */
		ret = bw_hook_server_open(&a.hooks, a.cfg.hook_socket, &why);
		if (ret < 0) {
			fprintf(stderr, "bulwarkd: warning: %s; OCI hooks get no answer\n", why ? why : strerror(-ret));
			free(why);
			why = NULL;
		} else if (epoll_add(a.epfd, a.hooks.listen_fd, TAG_HOOK_LISTEN) < 0 ||
			   epoll_add(a.epfd, a.hooktimerfd, TAG_HOOK_TIMER) < 0) {
			ret = -errno;
			goto out;
		}
	}
	if (a.k8s_on) {
		ret = bw_k8s_start(&a.k8s, &a.cfg, &a.inv, &why);
		if (ret < 0) {
			fprintf(stderr, "bulwarkd: Kubernetes: %s\n", why ? why : strerror(-ret));
			free(why);
			why = NULL;
			goto out;
		}
		seed_kubepods(&a);
		if (epoll_add(a.epfd, bw_k8s_fd(&a.k8s), TAG_K8S) < 0) {
			ret = -errno;
			goto out;
		}
	}
	if (epoll_add(a.epfd, bw_event_ring_fd(a.rb), TAG_RB) < 0 ||
	    epoll_add(a.epfd, a.inofd, TAG_INO) < 0 || epoll_add(a.epfd, a.sigfd, TAG_SIG) < 0 ||
	    epoll_add(a.epfd, a.tickfd, TAG_TICK) < 0 || epoll_add(a.epfd, a.debouncefd, TAG_DEBOUNCE) < 0 ||
	    arm_timer(a.tickfd, 1000000000ULL, 1000000000ULL) < 0) {
		ret = -errno;
		fprintf(stderr, "bulwarkd: cannot set up the event loop: %m\n");
		goto out;
	}
	if (a.cfg.inventory) {
		char *err = NULL;

		ret = bw_inventory_load(a.cfg.inventory, &a.inv, &err);
		if (ret < 0) {
			fprintf(stderr, "bulwarkd: %s\n", err ? err : strerror(-ret));
			free(err);
			goto out;
		}
	}
	{
		char pid[16];

		snprintf(pid, sizeof(pid), "%d", getpid());
		char msg[1024];

		if (a.bpf.degraded_reason)
			snprintf(msg, sizeof(msg), "bulwarkd started: degraded: %s%s", a.bpf.degraded_reason,
				 a.cfg.audit_only ? " (every policy in Audit mode)" : "");
		else
			snprintf(msg, sizeof(msg), "bulwarkd started: enforcing%s",
				 a.cfg.audit_only ? " (every policy in Audit mode)" : "");
		struct bw_record_builder b;

		bw_record_builder_init(&b, BW_RECORD_AGENT, clock_ns(CLOCK_REALTIME),
				       a.bpf.degraded_reason ? LOG_WARNING : LOG_INFO);
		bw_record_builder_message(&b, "%s", msg);
		bw_record_builder_add(&b, BW_FIELD_EVENT, "started");
		add_state_fields(&a, &b);
		bw_record_builder_add(&b, "AGENT_PID", pid);
		bw_record_builder_add(&b, "AUDIT_ONLY", a.cfg.audit_only ? "1" : "0");
		submit(&a, bw_record_builder_finish(&b));
	}
	apply(&a, true, false);
	write_metrics(&a);
	ret = run(&a);
	a.pending = false;
	decode_deferred(&a);
	report_suppressed(&a);
	emit_health(&a);
out:
	if (a.k8s_on)
		bw_k8s_stop(&a.k8s);
	bw_hook_server_close(&a.hooks);
	/* Stop the sinks first: they read the publisher's tables. */
	bw_sinks_stop(&a.sinks, 2000);
	bw_event_ring_free(a.rb);
	bw_plan_clear(&a.plan);
	bw_plan_clear(&a.prev_plan);
	bw_proc_cache_free(a.proc_cache);
	bw_cgroup_tree_clear(&a.cgroup_tree);
	bw_publisher_clear(&a.pub);
	bw_bpf_stop(&a.bpf);
	bw_policy_store_clear(&a.store);
	bw_inventory_clear(&a.inv);
	bw_rule_table_clear(&a.rules);
	bw_config_clear(&a.cfg);
	free(a.seen);
	for (int *fd = &a.epfd; fd <= &a.debouncefd; fd++)
		if (*fd >= 0)
			close(*fd);
	if (a.hooktimerfd >= 0)
		close(a.hooktimerfd);
	return ret < 0 ? 1 : 0;
}
