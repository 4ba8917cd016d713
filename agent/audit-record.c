/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "audit-record.h"
#include "process-table.h"

int64_t bw_boot_to_realtime_offset(void)
{
	struct timespec rt, bt;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_BOOTTIME, &bt);
	return ((int64_t)rt.tv_sec - bt.tv_sec) * 1000000000LL + (rt.tv_nsec - bt.tv_nsec);
}

void bw_format_time(uint64_t realtime_ns, char *buf, size_t size)
{
	time_t sec = (time_t)(realtime_ns / 1000000000ULL);
	char base[32];
	struct tm tm;

	gmtime_r(&sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, size, "%s.%09lluZ", base, (unsigned long long)(realtime_ns % 1000000000ULL));
}

static const char *numeric_fields[] = {
	BW_FIELD_PID, BW_FIELD_PPID, BW_FIELD_UID, BW_FIELD_CGROUP_ID, BW_FIELD_PATH_UNRESOLVED,
	BW_FIELD_SUPPRESSED, BW_FIELD_DROPPED,
	/* health and agent records */
	"CHECKS", "BLOCKED", "AUDITED", "EVENTS_DROPPED", "PATHS_UNRESOLVED", "PATH_LONG",
	"RULESET_MISSING", "CGROUPS_INHERITED", "WORKLOADS_FULL", "SUPPRESSED_TOTAL", "RATELIMIT_FULL",
	"EVENTS_READ", "EVENTS_MALFORMED", "RECORDS_OOM", "GENERATION", "POLICIES", "REJECTED",
	"WORKLOADS", "FAILED", "AGENT_PID", "WOULD_BLOCK", "KILLED", "DEGRADED_UNJUDGED",
	"KUBEPODS_CGROUPS_NEW", "KUBEPODS_FULL", "PROCESSES_TRACKED", "PROCESSES_EXITED",
	"PROCESSES_UNTRACKED_EXEC", "EVENTS_DEFERRED", "KUBEPODS_CGROUPS_ANNOUNCED",
	"APPLY_US", "PARSE_US", "PLAN_US", "PUBLISH_US", "COMPILED", "CGROUP_TREE_CHANGES", "WALKED",
	"RULESETS_NEW", "RULESETS_SPARED", "OUTER_UPDATES", "CLUSTER_POLICIES", "PODS", "NAMESPACES",
};
static pthread_once_t numeric_sorted = PTHREAD_ONCE_INIT;

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void sort_numeric(void)
{
	qsort(numeric_fields, sizeof(numeric_fields) / sizeof(numeric_fields[0]), sizeof(numeric_fields[0]), cmp_name);
}

/* Asked for every field of every record a JSON sink writes: a binary
 * search (a linear scan of strcmp was the agent's top cost under an event
 * flood, measured with perf by bench/). */
bool bw_field_is_numeric(const char *key)
{
	pthread_once(&numeric_sorted, sort_numeric);
	return bsearch(&key, numeric_fields, sizeof(numeric_fields) / sizeof(numeric_fields[0]),
		       sizeof(numeric_fields[0]), cmp_name) != NULL;
}

/* ---- records ------------------------------------------------------------- */

struct bw_record *bw_record_ref(struct bw_record *r)
{
	if (r)
		atomic_fetch_add(&r->refs, 1);
	return r;
}

void bw_record_unref(struct bw_record *r)
{
	if (r && atomic_fetch_sub(&r->refs, 1) == 1)
		free(r);
}

const char *bw_record_get(const struct bw_record *r, const char *key)
{
	for (size_t i = 0; i < r->n_fields; i++)
		if (!strcmp(r->fields[i].key, key))
			return r->fields[i].value;
	return NULL;
}

void bw_record_builder_init(struct bw_record_builder *b, enum bw_record_kind kind, uint64_t time_realtime_ns,
			    int priority)
{
	memset(b, 0, sizeof(*b));
	b->kind = kind;
	b->time_realtime_ns = time_realtime_ns;
	b->priority = priority;
	b->message = SIZE_MAX;
}

/* Room for more bytes at the end of b; false (and b->oom) if there is none. */
static bool text_reserve(struct bw_text *b, size_t more)
{
	size_t cap;
	char *s;

	if (b->oom)
		return false;
	if (b->len + more <= b->cap)
		return true;
	for (cap = b->cap ? b->cap : 1024; cap < b->len + more; cap *= 2)
		;
	s = realloc(b->s, cap);
	if (!s) {
		b->oom = true;
		return false;
	}
	b->s = s;
	b->cap = cap;
	return true;
}

static void text_put(struct bw_text *b, const char *p, size_t n)
{
	if (text_reserve(b, n)) {
		memcpy(b->s + b->len, p, n);
		b->len += n;
	}
}

/* Room for n more bytes in the builder's text. */
static bool reserve(struct bw_record_builder *b, size_t n)
{
	if (!b->oom && !text_reserve(&b->text, n))
		b->oom = true;
	return !b->oom;
}

/* Appends s (n bytes) and a NUL; returns its offset or SIZE_MAX. */
static size_t put(struct bw_record_builder *b, const char *s, size_t n)
{
	size_t at = b->text.len;

	if (!reserve(b, n + 1))
		return SIZE_MAX;
	memcpy(b->text.s + at, s, n);
	b->text.s[at + n] = '\0';
	b->text.len += n + 1;
	return at;
}

/* Appends a formatted string and a NUL; returns its offset or SIZE_MAX. */
static size_t putv(struct bw_record_builder *b, const char *fmt, va_list ap)
{
	size_t at = b->text.len;
	va_list aq;
	int n;

	if (!reserve(b, 64))
		return SIZE_MAX;
	va_copy(aq, ap);
	n = vsnprintf(b->text.s + at, b->text.cap - at, fmt, aq);
	va_end(aq);
	if (n < 0) {
		b->oom = true;
		return SIZE_MAX;
	}
	if ((size_t)n >= b->text.cap - at) {
		if (!reserve(b, (size_t)n + 1))
			return SIZE_MAX;
		vsnprintf(b->text.s + at, b->text.cap - at, fmt, ap);
	}
	b->text.len += (size_t)n + 1;
	return at;
}

static void add_field(struct bw_record_builder *b, size_t key, size_t value)
{
	if (key == SIZE_MAX || value == SIZE_MAX || b->oom)
		return;
	if (b->n == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 32;
		void *n = realloc(b->fields, ncap * sizeof(*b->fields));

		if (!n) {
			b->oom = true;
			return;
		}
		b->fields = n;
		b->cap = ncap;
	}
	b->fields[b->n].key = key;
	b->fields[b->n++].value = value;
}

void bw_record_builder_add(struct bw_record_builder *b, const char *key, const char *value)
{
	size_t k;

	if (!value || b->oom)
		return;
	k = put(b, key, strlen(key));
	add_field(b, k, put(b, value, strlen(value)));
}

void bw_record_builder_addf(struct bw_record_builder *b, const char *key, const char *fmt, ...)
{
	va_list ap;
	size_t k;

	if (b->oom)
		return;
	k = put(b, key, strlen(key));
	va_start(ap, fmt);
	add_field(b, k, putv(b, fmt, ap));
	va_end(ap);
}

void bw_record_builder_message(struct bw_record_builder *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	b->message = putv(b, fmt, ap); /* an earlier message stays in text, unused */
	va_end(ap);
}

void bw_record_builder_clear(struct bw_record_builder *b)
{
	free(b->text.s);
	free(b->fields);
	memset(b, 0, sizeof(*b));
	b->message = SIZE_MAX;
}

/* One allocation: the record, its field table, then the strings (buf). */
struct bw_record *bw_record_builder_finish(struct bw_record_builder *b)
{
	struct bw_record *r = NULL;
	size_t head = sizeof(struct bw_record) + b->n * sizeof(struct bw_field);
	char *strings;

	if (b->oom)
		goto out;
	if (b->message == SIZE_MAX && (b->message = put(b, "", 0)) == SIZE_MAX)
		goto out;
	r = malloc(head + b->text.len);
	if (!r)
		goto out;
	atomic_init(&r->refs, 1);
	r->kind = b->kind;
	r->time_realtime_ns = b->time_realtime_ns;
	r->priority = b->priority;
	r->n_fields = b->n;
	strings = (char *)r + head;
	memcpy(strings, b->text.s, b->text.len);
	r->message = strings + b->message;
	for (size_t i = 0; i < b->n; i++) {
		r->fields[i].key = strings + b->fields[i].key;
		r->fields[i].value = strings + b->fields[i].value;
	}
out:
	bw_record_builder_clear(b);
	return r;
}

/* ---- decoding kernel events ---------------------------------------------- */

struct proc_ctx {
	uint64_t exec_id; /* 0: empty */
	uint32_t pid, ppid;
	char exe[BW_EXE_MAX];
	char pexe[BW_EXE_MAX];
	char ancestors[BW_ANCESTORS_MAX * (BW_EXE_MAX + 16)];
};

#define PROC_CACHE_SLOTS 256

struct bw_proc_cache {
	struct proc_ctx slots[PROC_CACHE_SLOTS]; /* direct-mapped by exec id */
};

struct bw_proc_cache *bw_proc_cache_new(void)
{
	return calloc(1, sizeof(struct bw_proc_cache));
}

void bw_proc_cache_free(struct bw_proc_cache *c)
{
	free(c);
}

/* The caller's context from the process table (or the cache of it); NULL
 * when the table does not have this exec of pid. */
static const struct proc_ctx *proc_context(const struct bw_record_context *ctx, uint32_t pid, uint64_t exec_id)
{
	static struct proc_ctx scratch; /* without a cache; decoding is single-threaded */
	struct proc_ctx *pc = ctx->proc_cache ? &ctx->proc_cache->slots[(exec_id * 0x9E3779B97F4A7C15ULL) >> 56]
					      : &scratch;
	struct bw_process self, parent;

	if (ctx->proc_cache && pc->exec_id == exec_id && pc->pid == pid)
		return pc;
	if (ctx->proc_lookup(pid, &self, ctx->userdata) < 0 || self.exec_id != exec_id)
		return NULL;
	self.exe[sizeof(self.exe) - 1] = '\0';
	pc->exec_id = exec_id;
	pc->pid = pid;
	pc->ppid = self.ppid;
	snprintf(pc->exe, sizeof(pc->exe), "%s", self.exe);
	pc->pexe[0] = '\0';
	if (ctx->proc_lookup(self.ppid, &parent, ctx->userdata) == 0 && parent.exec_id == self.parent_exec_id) {
		parent.exe[sizeof(parent.exe) - 1] = '\0';
		snprintf(pc->pexe, sizeof(pc->pexe), "%s", parent.exe);
	}
	bw_proc_ancestors(&self, ctx->proc_lookup, ctx->userdata, pc->ancestors, sizeof(pc->ancestors));
	return pc;
}

static const char *hook_name(uint8_t hook)
{
	switch (hook) {
	case BW_HOOK_EXEC: return "exec";
	case BW_HOOK_FILE: return "file";
	case BW_HOOK_CONNECT: return "connect";
	default: return NULL;
	}
}

/* Copies a bounded, possibly unterminated kernel string. */
static void copy_str(char *dst, size_t size, const char *src, size_t len)
{
	if (len && src[len - 1] == '\0')
		len--;
	if (len >= size)
		len = size - 1;
	memcpy(dst, src, len);
	dst[len] = '\0'; /* a NUL inside the name ends it: records are C strings */
}

/* The executable of a process, best effort until the in-kernel process table
 * lands: the process may be gone by now. */
static void proc_exe(const char *proc_root, uint32_t pid, char *buf, size_t size)
{
	char link[64];
	ssize_t n;

	buf[0] = '\0';
	if (!pid)
		return;
	snprintf(link, sizeof(link), "%s/%u/exe", proc_root ? proc_root : "/proc", pid);
	n = readlink(link, buf, size - 1);
	buf[n > 0 ? n : 0] = '\0';
}

static void proc_comm(const char *proc_root, uint32_t pid, char *buf, size_t size)
{
	char file[64];
	FILE *f;

	buf[0] = '\0';
	snprintf(file, sizeof(file), "%s/%u/comm", proc_root ? proc_root : "/proc", pid);
	if (!pid || !(f = fopen(file, "re")))
		return;
	if (fgets(buf, (int)size, f))
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

int bw_record_decode(const void *data, size_t size, const struct bw_record_context *ctx,
		     struct bw_record **out)
{
	const struct bw_event_header *h = data;
	const char *payload = (const char *)data + sizeof(*h);
	char path[BW_PATH_MAX], name[BW_PATH_KEY_MAX + 1], exe[BW_PATH_MAX + 64], pexe[BW_PATH_MAX];
	char target[BW_PATH_MAX + 64], comm[BW_TASK_COMM_LEN + 1], where[512] = "";
	char ancestors[BW_ANCESTORS_MAX * (BW_EXE_MAX + 16)] = "";
	const struct proc_ctx *pc;
	uint32_t ppid;
	const struct bw_assignment *as;
	const struct bw_published *pub;
	const char *hook, *policy, *rule, *decision, *access = NULL;
	char rule_buf[96];
	struct bw_record_builder b;

	*out = NULL;
	exe[0] = pexe[0] = '\0';
	if (size < sizeof(*h) || (size_t)h->path_len + h->name_len > size - sizeof(*h))
		return -EINVAL;
	ppid = h->ppid;
	hook = hook_name(h->hook);
	if (!hook || h->decision == BW_DECISION_ALLOW || h->decision > BW_DECISION_BLOCK)
		return -EINVAL;
	/* In the degraded mode a Block decision from a tracepoint is not a
	 * denial: say what happened instead. */
	if (h->decision != BW_DECISION_BLOCK)
		decision = "audited";
	else if (!(h->flags & BW_EVENT_FALLBACK))
		decision = "blocked";
	else
		decision = h->flags & BW_EVENT_KILLED ? "killed" : "would-block";
	copy_str(comm, sizeof(comm), h->comm, sizeof(h->comm));
	if (!comm[0]) /* programs that cannot read the task (cgroup connect) */
		proc_comm(ctx->proc_root, h->pid, comm, sizeof(comm));
	copy_str(path, sizeof(path), payload, h->path_len);
	copy_str(name, sizeof(name), payload + h->path_len, h->name_len);

	pub = bw_publisher_find(ctx->pub, h->ruleset_id);
	policy = pub && h->slot < pub->rs.n_slots ? pub->rs.slots[h->slot].policy : "unknown (retired rule set)";
	if (h->rule_id) {
		const struct bw_rule_info *ri = bw_rule_get(ctx->rules, h->rule_id);

		policy = ri ? ri->policy : policy;
		rule = ri ? ri->text : "unknown rule";
	} else {
		snprintf(rule_buf, sizeof(rule_buf), "%s.allow: %s",
			 h->hook == BW_HOOK_EXEC ? "exec" : h->hook == BW_HOOK_FILE ? "files" : "network",
			 h->flags & BW_EVENT_UNRESOLVED ? "path could not be resolved" : "not listed");
		rule = rule_buf;
	}

	switch (h->hook) {
	case BW_HOOK_EXEC:
		snprintf(target, sizeof(target), "%s", name[0] ? name : path);
		snprintf(exe, sizeof(exe), "%s", path[0] ? path : target);
		break;
	case BW_HOOK_FILE:
		snprintf(target, sizeof(target), "%s", path);
		access = h->flags & BW_EVENT_WRITE ? "write" : "read";
		break;
	default: {
		char addr[INET6_ADDRSTRLEN] = "";

		inet_ntop(h->family == 2 ? AF_INET : AF_INET6, h->addr, addr, sizeof(addr));
		snprintf(target, sizeof(target), h->family == 2 ? "%s:%u" : "[%s]:%u", addr, h->port);
		access = h->protocol == BW_PROTO_TCP ? "tcp" : h->protocol == BW_PROTO_UDP ? "udp" : "any";
		break;
	}
	}
	/* The process table knows the caller and its parents as they were;
	 * /proc, read now, only while they still run. */
	if (ctx->proc_lookup && h->exec_id && (pc = proc_context(ctx, h->pid, h->exec_id))) {
		if (!ppid) /* programs that cannot read the task (cgroup connect) */
			ppid = pc->ppid;
		if (h->hook != BW_HOOK_EXEC && pc->exe[0])
			snprintf(exe, sizeof(exe), "%s", pc->exe);
		snprintf(pexe, sizeof(pexe), "%s", pc->pexe);
		snprintf(ancestors, sizeof(ancestors), "%s", pc->ancestors);
	}
	if (!exe[0] && h->hook != BW_HOOK_EXEC)
		proc_exe(ctx->proc_root, h->pid, exe, sizeof(exe));
	if (!comm[0] && exe[0]) { /* gone before /proc was read: the kernel's comm is the name's start */
		const char *base = strrchr(exe, '/');

		snprintf(comm, sizeof(comm), "%.*s", BW_TASK_COMM_LEN - 1, base ? base + 1 : exe);
	}
	if (!pexe[0])
		proc_exe(ctx->proc_root, ppid, pexe, sizeof(pexe));
	as = ctx->cgroup_lookup ? ctx->cgroup_lookup(h->cgroup_id, ctx->userdata) : NULL;
	if (as && as->pod)
		snprintf(where, sizeof(where), " in %s/%s", as->namespace, as->pod);
	else if (as)
		snprintf(where, sizeof(where), " in cgroup %s", as->cgroup_path);

	bw_record_builder_init(&b, BW_RECORD_DECISION, h->time_ns + (uint64_t)ctx->boot_to_realtime_ns,
			       h->decision == BW_DECISION_BLOCK ? LOG_WARNING : LOG_NOTICE);
	bw_record_builder_message(&b, "%s %s of %s by pid %u (%s)%s: policy %s", decision, hook, target, h->pid,
				  comm, where, policy);
	bw_record_builder_add(&b, BW_FIELD_HOOK, hook);
	bw_record_builder_add(&b, BW_FIELD_DECISION, decision);
	bw_record_builder_add(&b, BW_FIELD_MODE, h->decision == BW_DECISION_BLOCK ? "Block" : "Audit");
	bw_record_builder_add(&b, BW_FIELD_POLICY, policy);
	bw_record_builder_add(&b, BW_FIELD_RULE, rule);
	bw_record_builder_addf(&b, BW_FIELD_PID, "%u", h->pid);
	bw_record_builder_addf(&b, BW_FIELD_PPID, "%u", ppid);
	bw_record_builder_addf(&b, BW_FIELD_UID, "%u", h->uid);
	bw_record_builder_add(&b, BW_FIELD_COMM, comm);
	if (exe[0])
		bw_record_builder_add(&b, BW_FIELD_EXE, exe);
	if (pexe[0])
		bw_record_builder_add(&b, BW_FIELD_PARENT_EXE, pexe);
	if (h->exec_id)
		bw_record_builder_addf(&b, BW_FIELD_EXEC_ID, "%llu", (unsigned long long)h->exec_id);
	if (ancestors[0])
		bw_record_builder_add(&b, BW_FIELD_ANCESTORS, ancestors);
	bw_record_builder_add(&b, BW_FIELD_TARGET, target);
	bw_record_builder_add(&b, BW_FIELD_ACCESS, access);
	bw_record_builder_addf(&b, BW_FIELD_CGROUP_ID, "%llu", (unsigned long long)h->cgroup_id);
	if (as) {
		bw_record_builder_add(&b, BW_FIELD_CGROUP_PATH, as->cgroup_path);
		bw_record_builder_add(&b, BW_FIELD_NAMESPACE, as->namespace);
		bw_record_builder_add(&b, BW_FIELD_POD, as->pod);
		bw_record_builder_add(&b, BW_FIELD_CONTAINER, as->container);
	}
	if (h->flags & BW_EVENT_UNRESOLVED)
		bw_record_builder_addf(&b, BW_FIELD_PATH_UNRESOLVED, "%d", h->path_error);
	if (h->flags & BW_EVENT_BY_NAME)
		bw_record_builder_add(&b, BW_FIELD_MATCHED_BY_NAME, "1");
	if (h->flags & BW_EVENT_FALLBACK)
		bw_record_builder_add(&b, BW_FIELD_DEGRADED, "1");
	*out = bw_record_builder_finish(&b);
	return *out ? 0 : -ENOMEM;
}

/* ---- JSON ---------------------------------------------------------------- */

/* The length of the well-formed UTF-8 sequence at p (n bytes left), 0 if
 * it is ill-formed: truncated, overlong, a surrogate or beyond U+10FFFF. */
static size_t utf8_sequence(const unsigned char *p, size_t n)
{
	unsigned c = p[0], len, cp;

	if (c < 0x80)
		return 1;
	len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
	if (!len || len > n)
		return 0;
	cp = len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
	for (unsigned k = 1; k < len; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[k] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

char *bw_utf8_sanitize(const char *s)
{
	size_t n = strlen(s), o = 0;
	const unsigned char *p = (const unsigned char *)s;
	char *out = malloc(n * 3 + 1); /* each bad byte becomes U+FFFD, 3 bytes */

	if (!out)
		return NULL;
	for (size_t i = 0; i < n;) {
		size_t len = utf8_sequence(p + i, n - i);

		if (!len) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
			continue;
		}
		memcpy(out + o, p + i, len);
		o += len;
		i += len;
	}
	out[o] = '\0';
	return out;
}

const char *bw_record_kind_name(enum bw_record_kind k)
{
	switch (k) {
	case BW_RECORD_DECISION: return "decision";
	case BW_RECORD_SUPPRESSED: return "suppressed";
	case BW_RECORD_HEALTH: return "health";
	case BW_RECORD_LOSS: return "loss";
	default: return "agent";
	}
}

static void text_put_int(struct bw_text *b, int64_t v)
{
	char d[24], *e = d + sizeof(d), *p = e;
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	do
		*--p = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		*--p = '-';
	text_put(b, p, (size_t)(e - p));
}

/* s as a JSON string, quotes included: '"', '\' and control characters
 * escaped as RFC 8259 says (the short forms where there is one), every
 * ill-formed UTF-8 sequence as U+FFFD, so that every line is valid JSON
 * whatever bytes a path holds. Runs of plain bytes are copied at once:
 * this is the file sink's inner loop under an event flood. */
static void text_put_json_string(struct bw_text *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t run = 0;

	/* Each byte becomes at most 6 ("\u001f"); reserving for that up
	 * front keeps the loop free of checks. */
	if (!text_reserve(b, n * 6 + 2))
		return;
	b->s[b->len++] = '"';
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		char *o;

		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			run++;
			i++;
			continue;
		}
		memcpy(b->s + b->len, p + i - run, run);
		b->len += run;
		run = 0;
		o = b->s + b->len;
		if (c >= 0x80) {
			size_t len = utf8_sequence(p + i, n - i);

			if (len) {
				memcpy(o, p + i, len);
				b->len += len;
				i += len;
			} else {
				memcpy(o, "\xef\xbf\xbd", 3); /* 3 bytes for 1: within the 6 */
				b->len += 3;
				i++;
			}
			continue;
		}
		o[0] = '\\';
		switch (c) {
		case '"': o[1] = '"'; b->len += 2; break;
		case '\\': o[1] = '\\'; b->len += 2; break;
		case '\b': o[1] = 'b'; b->len += 2; break;
		case '\f': o[1] = 'f'; b->len += 2; break;
		case '\n': o[1] = 'n'; b->len += 2; break;
		case '\r': o[1] = 'r'; b->len += 2; break;
		case '\t': o[1] = 't'; b->len += 2; break;
		default:
			memcpy(o + 1, "u00", 3);
			o[4] = hex[c >> 4];
			o[5] = hex[c & 0xf];
			b->len += 6;
		}
		i++;
	}
	memcpy(b->s + b->len, p + n - run, run);
	b->len += run;
	b->s[b->len++] = '"';
}

/* A numeric field's value as a JSON number, if it is a decimal integer
 * that fits in 64 bits; false otherwise (it is then written as a string). */
static bool parse_int(const char *v, int64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoll(v, &end, 10);
	return !errno && !*end && end != v;
}

/* The record's time with the seconds' part formatted once per second and
 * thread (strftime per record showed in the flood profile). */
static void text_put_time(struct bw_text *b, uint64_t realtime_ns)
{
	static _Thread_local uint64_t cached_sec = UINT64_MAX;
	static _Thread_local char base[32];
	static _Thread_local size_t base_len;
	uint64_t sec = realtime_ns / 1000000000ULL, ns = realtime_ns % 1000000000ULL;
	char frac[12];

	if (sec != cached_sec) {
		time_t t = (time_t)sec;
		struct tm tm;

		gmtime_r(&t, &tm);
		base_len = strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
		cached_sec = sec;
	}
	frac[0] = '.';
	for (int i = 9; i >= 1; i--, ns /= 10)
		frac[i] = (char)('0' + ns % 10);
	frac[10] = 'Z';
	text_put(b, "\"", 1);
	text_put(b, base, base_len);
	text_put(b, frac, 11);
	text_put(b, "\"", 1);
}

int bw_record_append_json(const struct bw_record *r, struct bw_text *out)
{
	const char *kind = bw_record_kind_name(r->kind);

	text_put(out, "{\"time\":", 8);
	text_put_time(out, r->time_realtime_ns);
	text_put(out, ",\"kind\":", 8);
	text_put_json_string(out, kind, strlen(kind));
	text_put(out, ",\"priority\":", 12);
	text_put_int(out, r->priority);
	for (size_t i = 0; i < r->n_fields; i++) {
		const char *k = r->fields[i].key, *v = r->fields[i].value;
		char key[64];
		size_t n;
		int64_t num;

		/* Field names in lower case: "TARGET" -> "target". */
		for (n = 0; k[n] && n < sizeof(key) - 1; n++)
			key[n] = (char)(k[n] >= 'A' && k[n] <= 'Z' ? k[n] + 32 : k[n]);
		text_put(out, ",", 1);
		text_put_json_string(out, key, n);
		text_put(out, ":", 1);
		if (bw_field_is_numeric(k) && parse_int(v, &num))
			text_put_int(out, num);
		else
			text_put_json_string(out, v, strlen(v));
	}
	text_put(out, ",\"message\":", 11);
	text_put_json_string(out, r->message, strlen(r->message));
	text_put(out, "}\n", 2);
	return out->oom ? -ENOMEM : 0;
}

char *bw_record_to_json(const struct bw_record *r)
{
	struct bw_text t = { 0 };

	if (bw_record_append_json(r, &t) < 0 || !text_reserve(&t, 1)) {
		free(t.s);
		return NULL;
	}
	t.s[t.len] = '\0';
	return t.s;
}
