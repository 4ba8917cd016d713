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
#include <json-c/json.h>

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

/* Room for n more bytes in buf. */
static bool reserve(struct bw_record_builder *b, size_t n)
{
	size_t size = b->size ? b->size : 1024;
	char *nb;

	if (b->oom)
		return false;
	if (b->len + n <= b->size)
		return true;
	while (size < b->len + n)
		size *= 2;
	nb = realloc(b->buf, size);
	if (!nb) {
		b->oom = true;
		return false;
	}
	b->buf = nb;
	b->size = size;
	return true;
}

/* Appends s (n bytes) and a NUL; returns its offset or SIZE_MAX. */
static size_t put(struct bw_record_builder *b, const char *s, size_t n)
{
	size_t at = b->len;

	if (!reserve(b, n + 1))
		return SIZE_MAX;
	memcpy(b->buf + at, s, n);
	b->buf[at + n] = '\0';
	b->len += n + 1;
	return at;
}

/* Appends a formatted string and a NUL; returns its offset or SIZE_MAX. */
static size_t putv(struct bw_record_builder *b, const char *fmt, va_list ap)
{
	size_t at = b->len;
	va_list aq;
	int n;

	if (!reserve(b, 64))
		return SIZE_MAX;
	va_copy(aq, ap);
	n = vsnprintf(b->buf + at, b->size - at, fmt, aq);
	va_end(aq);
	if (n < 0) {
		b->oom = true;
		return SIZE_MAX;
	}
	if ((size_t)n >= b->size - at) {
		if (!reserve(b, (size_t)n + 1))
			return SIZE_MAX;
		vsnprintf(b->buf + at, b->size - at, fmt, ap);
	}
	b->len += (size_t)n + 1;
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
	b->message = putv(b, fmt, ap); /* an earlier message stays in buf, unused */
	va_end(ap);
}

void bw_record_builder_clear(struct bw_record_builder *b)
{
	free(b->buf);
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
	r = malloc(head + b->len);
	if (!r)
		goto out;
	atomic_init(&r->refs, 1);
	r->kind = b->kind;
	r->time_realtime_ns = b->time_realtime_ns;
	r->priority = b->priority;
	r->n_fields = b->n;
	strings = (char *)r + head;
	memcpy(strings, b->buf, b->len);
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

char *bw_utf8_sanitize(const char *s)
{
	size_t n = strlen(s), o = 0;
	const unsigned char *p = (const unsigned char *)s;
	char *out = malloc(n * 3 + 1); /* each bad byte becomes U+FFFD, 3 bytes */

	if (!out)
		return NULL;
	for (size_t i = 0; i < n;) {
		unsigned c = p[i], len, cp;

		if (c < 0x80) {
			out[o++] = (char)c;
			i++;
			continue;
		}
		len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
		if (len == 3 && c > 0xef)
			len = 0;
		cp = len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
		for (unsigned k = 1; len && k < len; k++) {
			if (i + k >= n || (p[i + k] & 0xc0) != 0x80) {
				len = 0;
				break;
			}
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		/* overlong, surrogate or beyond U+10FFFF: ill-formed */
		if (len && ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
			    (cp >= 0xd800 && cp <= 0xdfff)))
			len = 0;
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

static struct json_object *json_text(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	char *clean;

	/* Most values are ASCII: no copy to make them valid UTF-8. */
	while (*p && *p < 0x80)
		p++;
	if (!*p)
		return json_object_new_string_len(s, (int)(p - (const unsigned char *)s));
	clean = bw_utf8_sanitize(s);
	struct json_object *v = json_object_new_string(clean ? clean : "");

	free(clean);
	return v;
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

char *bw_record_to_json(const struct bw_record *r)
{
	struct json_object *o = json_object_new_object();
	char ts[64], *out = NULL;

	if (!o)
		return NULL;
	bw_format_time(r->time_realtime_ns, ts, sizeof(ts));
	json_object_object_add(o, "time", json_object_new_string(ts));
	json_object_object_add(o, "kind", json_object_new_string(bw_record_kind_name(r->kind)));
	json_object_object_add(o, "priority", json_object_new_int(r->priority));
	for (size_t i = 0; i < r->n_fields; i++) {
		char key[64];
		size_t k;
		struct json_object *v = NULL;

		for (k = 0; r->fields[i].key[k] && k < sizeof(key) - 1; k++)
			key[k] = (char)((r->fields[i].key[k] >= 'A' && r->fields[i].key[k] <= 'Z')
						? r->fields[i].key[k] + 32 : r->fields[i].key[k]);
		key[k] = '\0';
		if (bw_field_is_numeric(r->fields[i].key)) {
			char *end;
			long long n;

			errno = 0;
			n = strtoll(r->fields[i].value, &end, 10);
			if (!errno && !*end && end != r->fields[i].value)
				v = json_object_new_int64(n);
		}
		json_object_object_add(o, key, v ? v : json_text(r->fields[i].value));
	}
	json_object_object_add(o, "message", json_text(r->message));
	if (asprintf(&out, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								     JSON_C_TO_STRING_NOSLASHESCAPE)) < 0)
		out = NULL;
	json_object_put(o);
	return out;
}
