/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <json-c/json.h>

#include "hook-server.h"
#include "kubepods.h"
#include "selector.h"
#include "util.h"

const char *bw_hook_state_name(enum bw_hook_state s)
{
	switch (s) {
	case BW_HOOK_PENDING: return "pending";
	case BW_HOOK_ENFORCED: return "enforced";
	case BW_HOOK_UNSELECTED: return "unselected";
	case BW_HOOK_UNCLASSIFIED: return "unclassified";
	case BW_HOOK_ERROR: return "error";
	}
	return "error";
}

int bw_hook_server_open(struct bw_hook_server *s, const char *path, char **error)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[PATH_MAX], *slash;
	int fd;

	memset(s, 0, sizeof(*s));
	s->listen_fd = -1;
	*error = NULL;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		*error = strprintf("hook socket %s: path too long", path);
		return -ENAMETOOLONG;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			*error = strprintf("hook socket directory %s: %s", dir, strerror(errno));
			return -errno;
		}
	} else {
		snprintf(dir, sizeof(dir), "%s", slash ? "/" : ".");
	}
	s->path = strdup(path);
	s->block_file = strprintf("%s/%s", dir, BW_HOOK_BLOCK_FILE);
	if (!s->path || !s->block_file) {
		bw_hook_server_close(s);
		*error = strdup("out of memory");
		return -ENOMEM;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		*error = strprintf("hook socket: %s", strerror(errno));
		bw_hook_server_close(s);
		return -errno;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* A socket left by an earlier bulwarkd: nobody listens on it any more. */
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 || listen(fd, 128) < 0) {
		int e = errno;

		*error = strprintf("hook socket %s: %s", path, strerror(e));
		close(fd);
		bw_hook_server_close(s);
		return -e;
	}
	s->listen_fd = fd;
	return 0;
}

static void request_free(struct bw_hook_request *r)
{
	if (r->fd >= 0)
		close(r->fd);
	free(r->cgroup);
	free(r->namespace);
	free(r->pod);
	free(r->container);
	free(r);
}

void bw_hook_server_close(struct bw_hook_server *s)
{
	for (size_t i = 0; i < s->n_reqs; i++)
		request_free(s->reqs[i]);
	free(s->reqs);
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		if (s->path)
			unlink(s->path);
	}
	free(s->path);
	free(s->block_file);
	memset(s, 0, sizeof(*s));
	s->listen_fd = -1;
}

struct bw_hook_request *bw_hook_server_accept(struct bw_hook_server *s, uint64_t now_ns)
{
	struct bw_hook_request *r, **n;
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return NULL;
	r = calloc(1, sizeof(*r));
	n = r ? realloc(s->reqs, (s->n_reqs + 1) * sizeof(*n)) : NULL;
	if (!n) {
		free(r);
		close(fd);
		return NULL;
	}
	s->reqs = n;
	r->fd = fd;
	r->accepted_ns = now_ns;
	r->deadline_ns = now_ns + BW_HOOK_TIMEOUT_DEFAULT_MS * 1000000ULL;
	s->reqs[s->n_reqs++] = r;
	s->stats.requests++;
	return r;
}

static char *jstrdup(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return strdup(json_object_get_string(v));
}

int bw_hook_request_read(struct bw_hook_request *r)
{
	struct json_object *o, *v;
	char *nl;
	ssize_t n;

	if (r->parsed)
		return 1;
	n = read(r->fd, r->buf + r->len, sizeof(r->buf) - 1 - r->len);
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET; /* the hook went away before asking */
	r->len += (size_t)n;
	r->buf[r->len] = '\0';
	nl = strchr(r->buf, '\n');
	if (!nl)
		return r->len == sizeof(r->buf) - 1 ? -EMSGSIZE : 0;
	*nl = '\0';
	o = json_tokener_parse(r->buf);
	if (!o)
		return -EBADMSG;
	r->cgroup = jstrdup(o, "cgroup");
	r->namespace = jstrdup(o, "namespace");
	r->pod = jstrdup(o, "pod");
	r->container = jstrdup(o, "container");
	if (json_object_object_get_ex(o, "timeoutMs", &v) && json_object_is_type(v, json_type_int)) {
		int64_t ms = json_object_get_int64(v);

		if (ms > 0 && ms <= BW_HOOK_TIMEOUT_MAX_MS)
			r->deadline_ns = r->accepted_ns + (uint64_t)ms * 1000000ULL;
	}
	json_object_put(o);
	if (!r->cgroup || r->cgroup[0] != '/')
		return -EBADMSG;
	r->parsed = true;
	return 1;
}

void bw_hook_request_finish(struct bw_hook_server *s, struct bw_hook_request *r, enum bw_hook_state state,
			    bool block_namespace, const char *message, uint64_t now_ns)
{
	if (state != BW_HOOK_PENDING) {
		struct json_object *o = json_object_new_object();
		const char *text;
		uint64_t us = (now_ns - r->accepted_ns) / 1000;

		json_object_object_add(o, "state", json_object_new_string(bw_hook_state_name(state)));
		json_object_object_add(o, "blockNamespace", json_object_new_boolean(block_namespace));
		json_object_object_add(o, "message", json_object_new_string(message ? message : ""));
		text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
		/* One small line to a peer that waits for it: it fits the socket
		 * buffer; a hook that is gone is not an error of ours. */
		if (write(r->fd, text, strlen(text)) < 0 || write(r->fd, "\n", 1) < 0)
			s->stats.errors++;
		json_object_put(o);
		switch (state) {
		case BW_HOOK_ENFORCED: s->stats.enforced++; break;
		case BW_HOOK_UNSELECTED: s->stats.unselected++; break;
		case BW_HOOK_UNCLASSIFIED: s->stats.unclassified++; break;
		default: s->stats.errors++; break;
		}
		s->stats.latency_sum_us += us;
		if (us > s->stats.latency_max_us)
			s->stats.latency_max_us = us;
	}
	for (size_t i = 0; i < s->n_reqs; i++)
		if (s->reqs[i] == r) {
			s->reqs[i] = s->reqs[--s->n_reqs];
			break;
		}
	request_free(r);
}

enum bw_hook_state bw_hook_evaluate(const struct bw_plan *plan, const struct bw_inventory *inv, uint64_t cgroup_id,
				    const char *cgroup_path, bool in_kernel)
{
	bool owned = false;

	for (size_t i = 0; i < plan->n_assign; i++)
		if (plan->assign[i].cgroup_id == cgroup_id) {
			if (plan->assign[i].unclassified)
				return BW_HOOK_PENDING;
			return in_kernel ? BW_HOOK_ENFORCED : BW_HOOK_PENDING;
		}
	for (size_t w = 0; inv && w < inv->n_workloads && !owned; w++)
		owned = bw_cgroup_path_has_prefix(cgroup_path, inv->workloads[w]->cgroup);
	if (owned || !bw_kubepods_contains(cgroup_path))
		return BW_HOOK_UNSELECTED;
	return BW_HOOK_PENDING;
}

bool bw_namespace_blocked(const struct bw_policy_list *pols, const struct bw_inventory *inv, const char *ns)
{
	const struct bw_inventory_namespace *n = ns ? bw_inventory_find_namespace(inv, ns) : NULL;

	if (!ns)
		return false;
	for (size_t i = 0; i < pols->n; i++) {
		const struct bw_policy *p = pols->items[i];

		if (p->mode != BW_MODE_BLOCK)
			continue;
		if (p->kind == BW_KIND_NAMESPACED && p->namespace && !strcmp(p->namespace, ns))
			return true;
		if (p->kind == BW_KIND_CLUSTER) {
			struct bw_label auto_label = { .key = (char *)BW_NAMESPACE_NAME_LABEL, .value = (char *)ns };
			struct bw_labels only_name = { .items = &auto_label, .n = 1 };

			if (bw_selector_matches(&p->namespace_selector, n ? &n->labels : &only_name))
				return true;
		}
	}
	return false;
}

int bw_hook_write_block_file(const struct bw_hook_server *s, const struct bw_policy_list *pols,
			     const struct bw_inventory *inv)
{
	char tmp[PATH_MAX];
	FILE *f;

	if (!s->block_file)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.tmp", s->block_file);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	for (size_t i = 0; i < inv->n_namespaces; i++)
		if (bw_namespace_blocked(pols, inv, inv->namespaces[i]->name))
			fprintf(f, "%s\n", inv->namespaces[i]->name);
	if (fclose(f) != 0 || rename(tmp, s->block_file) < 0)
		return -errno;
	return 0;
}
