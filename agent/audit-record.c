/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "audit-record.h"

int64_t bw_boot_to_realtime_offset(void)
{
	struct timespec rt, bt;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_BOOTTIME, &bt);
	return ((int64_t)rt.tv_sec - bt.tv_sec) * 1000000000LL + (rt.tv_nsec - bt.tv_nsec);
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

static const char *proto_name(uint8_t p)
{
	return p == BW_PROTO_TCP ? "tcp" : p == BW_PROTO_UDP ? "udp" : "any";
}

/* Copies a bounded, possibly unterminated kernel string. */
static void copy_str(char *dst, size_t size, const char *src, size_t len)
{
	if (len && src[len - 1] == '\0')
		len--;
	if (len >= size)
		len = size - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

int bw_record_decode(const void *data, size_t size, const struct bw_record_context *ctx,
		     struct bw_record *r)
{
	const struct bw_event_header *h = data;
	const char *payload = (const char *)data + sizeof(*h);
	const struct bw_published *pub;
	const struct bw_assignment *as;
	static char rule_buf[96];

	memset(r, 0, sizeof(*r));
	if (size < sizeof(*h) || (size_t)h->path_len + h->name_len > size - sizeof(*h))
		return -EINVAL;
	r->hook = hook_name(h->hook);
	if (!r->hook || h->decision == BW_DECISION_ALLOW || h->decision > BW_DECISION_BLOCK)
		return -EINVAL;
	r->time_realtime_ns = h->time_ns + (uint64_t)ctx->boot_to_realtime_ns;
	r->decision = h->decision == BW_DECISION_BLOCK ? "blocked" : "audited";
	r->mode = h->decision == BW_DECISION_BLOCK ? "Block" : "Audit";
	r->pid = h->pid;
	r->ppid = h->ppid;
	r->uid = h->uid;
	r->cgroup_id = h->cgroup_id;
	r->path_unresolved = h->flags & BW_EVENT_UNRESOLVED;
	r->path_error = h->path_error;
	r->matched_by_name = h->flags & BW_EVENT_BY_NAME;
	copy_str(r->comm, sizeof(r->comm), h->comm, sizeof(h->comm));

	pub = bw_publisher_find(ctx->pub, h->ruleset_id);
	r->policy = pub && h->slot < pub->rs.n_slots ? pub->rs.slots[h->slot].policy : "unknown (retired rule set)";
	if (h->rule_id) {
		const struct bw_rule_info *ri = bw_rule_get(ctx->rules, h->rule_id);

		if (ri) {
			r->policy = ri->policy;
			r->rule = ri->text;
		} else {
			r->rule = "unknown rule";
		}
	} else {
		const char *cls = h->hook == BW_HOOK_EXEC ? "exec" : h->hook == BW_HOOK_FILE ? "files" : "network";

		snprintf(rule_buf, sizeof(rule_buf), "%s.allow: %s", cls,
			 r->path_unresolved ? "path could not be resolved" : "not listed");
		r->rule = rule_buf;
	}

	switch (h->hook) {
	case BW_HOOK_EXEC:
		copy_str(r->executable, sizeof(r->executable), payload, h->path_len);
		if (h->name_len)
			copy_str(r->target, sizeof(r->target), payload + h->path_len, h->name_len);
		else
			copy_str(r->target, sizeof(r->target), payload, h->path_len);
		if (r->path_unresolved && !r->executable[0])
			copy_str(r->executable, sizeof(r->executable), r->target, strlen(r->target));
		break;
	case BW_HOOK_FILE:
		copy_str(r->target, sizeof(r->target), payload, h->path_len);
		r->access = h->flags & BW_EVENT_WRITE ? "write" : "read";
		break;
	case BW_HOOK_CONNECT: {
		char addr[INET6_ADDRSTRLEN];

		inet_ntop(h->family == 2 ? AF_INET : AF_INET6, h->addr, addr, sizeof(addr));
		snprintf(r->target, sizeof(r->target), h->family == 2 ? "%s:%u" : "[%s]:%u", addr, h->port);
		r->access = proto_name(h->protocol);
		break;
	}
	}
	if (h->hook != BW_HOOK_EXEC) {
		/* Best effort until the in-kernel process table lands: the
		 * process may be gone already. */
		char link[64];
		ssize_t n;

		snprintf(link, sizeof(link), "/proc/%u/exe", h->pid);
		n = readlink(link, r->executable, sizeof(r->executable) - 1);
		r->executable[n > 0 ? n : 0] = '\0';
	}
	as = ctx->cgroup_lookup ? ctx->cgroup_lookup(h->cgroup_id, ctx->userdata) : NULL;
	if (as) {
		r->cgroup_path = as->cgroup_path;
		r->namespace = as->namespace;
		r->pod = as->pod;
		r->container = as->container;
	}
	return 0;
}

static void add_str(struct json_object *o, const char *k, const char *v)
{
	if (v)
		json_object_object_add(o, k, json_object_new_string(v));
}

char *bw_record_to_json(const struct bw_record *r)
{
	struct json_object *o = json_object_new_object();
	char ts[64], frac[16];
	time_t sec = (time_t)(r->time_realtime_ns / 1000000000ULL);
	struct tm tm;
	char *out;

	if (!o)
		return NULL;
	gmtime_r(&sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(frac, sizeof(frac), ".%09lluZ", (unsigned long long)(r->time_realtime_ns % 1000000000ULL));
	strncat(ts, frac, sizeof(ts) - strlen(ts) - 1);

	add_str(o, "time", ts);
	add_str(o, "hook", r->hook);
	add_str(o, "decision", r->decision);
	add_str(o, "mode", r->mode);
	add_str(o, "policy", r->policy);
	add_str(o, "rule", r->rule);
	json_object_object_add(o, "pid", json_object_new_int64(r->pid));
	json_object_object_add(o, "ppid", json_object_new_int64(r->ppid));
	json_object_object_add(o, "uid", json_object_new_int64(r->uid));
	add_str(o, "comm", r->comm);
	add_str(o, "executable", r->executable);
	add_str(o, "target", r->target);
	add_str(o, "access", r->access);
	json_object_object_add(o, "cgroup_id", json_object_new_uint64(r->cgroup_id));
	add_str(o, "cgroup", r->cgroup_path);
	add_str(o, "namespace", r->namespace);
	add_str(o, "pod", r->pod);
	add_str(o, "container", r->container);
	if (r->path_unresolved) {
		json_object_object_add(o, "path_unresolved", json_object_new_boolean(1));
		json_object_object_add(o, "path_error", json_object_new_int(r->path_error));
	}
	if (r->matched_by_name)
		json_object_object_add(o, "matched_by_name", json_object_new_boolean(1));
	if (asprintf(&out, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								     JSON_C_TO_STRING_NOSLASHESCAPE)) < 0)
		out = NULL;
	json_object_put(o);
	return out;
}

char *bw_record_summary(const struct bw_record *r)
{
	char where[512] = "";
	char *out;

	if (r->pod)
		snprintf(where, sizeof(where), " in %s/%s", r->namespace, r->pod);
	else if (r->cgroup_path)
		snprintf(where, sizeof(where), " in cgroup %s", r->cgroup_path);
	if (asprintf(&out, "%s %s of %s by pid %u (%s)%s: policy %s, rule %s", r->decision, r->hook,
		     r->target, r->pid, r->comm, where, r->policy, r->rule) < 0)
		out = NULL;
	return out;
}
