/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster-source.h"
#include "kubepods.h"
#include "util.h"

void bw_cluster_source_init(struct bw_cluster_source *s, struct bw_inventory *inv, const char *cgroup_root,
			    const char *node_name)
{
	memset(s, 0, sizeof(*s));
	s->inv = inv;
	s->cgroup_root = cgroup_root;
	s->node_name = node_name;
}

static void policy_free(struct bw_cluster_policy *p)
{
	free(p->key);
	free(p->uid);
	bw_policy_free(p->good);
	free(p->error);
}

static void pod_free(struct bw_cluster_pod *p)
{
	json_object_put(p->obj);
	free(p->key);
	free(p->uid);
	strv_free(p->cgroups, p->n_cgroups);
}

void bw_cluster_source_clear(struct bw_cluster_source *s)
{
	for (size_t i = 0; i < s->n_policies; i++)
		policy_free(&s->policies[i]);
	free(s->policies);
	for (size_t i = 0; i < s->n_pods; i++)
		pod_free(&s->pods[i]);
	free(s->pods);
	s->policies = NULL;
	s->pods = NULL;
	s->n_policies = s->n_pods = 0;
}

static const char *jstr(struct json_object *o, const char *path)
{
	char buf[128], *save = NULL, *tok;
	struct json_object *cur = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save))
		if (!json_object_object_get_ex(cur, tok, &cur))
			return NULL;
	return cur && json_object_is_type(cur, json_type_string) ? json_object_get_string(cur) : NULL;
}

static struct json_object *jget(struct json_object *o, const char *a, const char *b)
{
	struct json_object *x = NULL, *y = NULL;

	if (!json_object_object_get_ex(o, a, &x))
		return NULL;
	if (!b)
		return x;
	return json_object_object_get_ex(x, b, &y) ? y : NULL;
}

/* metadata.labels as bw_labels; the strings point into obj. */
static int labels_of(struct json_object *obj, struct bw_labels *l)
{
	struct json_object *labels = jget(obj, "metadata", "labels");
	size_t n = 0;

	l->items = NULL;
	l->n = 0;
	if (!labels || !json_object_is_type(labels, json_type_object))
		return 0;
	l->items = calloc((size_t)json_object_object_length(labels) + 1, sizeof(*l->items));
	if (!l->items)
		return -ENOMEM;
	json_object_object_foreach(labels, k, v) {
		if (!json_object_is_type(v, json_type_string))
			continue;
		l->items[n].key = k;
		l->items[n++].value = (char *)json_object_get_string(v);
	}
	l->n = n;
	return 0;
}

static int update_namespace(struct bw_cluster_source *s, bool deleted, struct json_object *obj)
{
	const char *name = jstr(obj, "metadata.name");
	struct bw_labels l;
	int ret;

	if (!name)
		return -EINVAL;
	if (deleted) {
		ret = bw_inventory_remove_namespace(s->inv, name);
		return ret == -ENOENT ? 0 : ret < 0 ? ret : 1;
	}
	if ((ret = labels_of(obj, &l)) < 0)
		return ret;
	ret = bw_inventory_put_namespace(s->inv, name, &l);
	free(l.items);
	return ret;
}

static struct bw_cluster_pod *find_pod(struct bw_cluster_source *s, const char *key)
{
	for (size_t i = 0; i < s->n_pods; i++)
		if (!strcmp(s->pods[i].key, key))
			return &s->pods[i];
	return NULL;
}

static void pod_forget_cgroups(struct bw_cluster_source *s, struct bw_cluster_pod *p)
{
	for (size_t i = 0; i < p->n_cgroups; i++)
		bw_inventory_remove_workload(s->inv, p->cgroups[i]);
	strv_free(p->cgroups, p->n_cgroups);
	p->cgroups = NULL;
	p->n_cgroups = 0;
}

/* Puts the pod (and each running container) in the inventory when its cgroup
 * exists; returns 1 if the inventory changed. */
static int pod_place(struct bw_cluster_source *s, struct bw_cluster_pod *p, struct json_object *obj)
{
	const char *ns = jstr(obj, "metadata.namespace"), *name = jstr(obj, "metadata.name");
	const char *qos = jstr(obj, "status.qosClass");
	struct json_object *statuses = jget(obj, "status", "containerStatuses");
	char *cands[BW_KUBEPODS_CANDIDATES * 3] = { 0 };
	struct bw_inventory_workload w = { 0 };
	const char *pod_cg;
	char **cgs = NULL;
	size_t n_cgs = 0;
	int n, ret, changed = 0;

	n = bw_kubepods_pod_paths(p->uid, qos, cands, ELEMENTSOF(cands));
	if (n < 0)
		return n;
	pod_cg = bw_kubepods_find(s->cgroup_root, cands, (size_t)n);
	p->pending = !pod_cg;
	if (!pod_cg)
		goto out;

	if ((ret = labels_of(obj, &w.labels)) < 0)
		goto fail;
	w.namespace = (char *)ns;
	w.pod = (char *)name;
	cgs = calloc(1 + (statuses ? json_object_array_length(statuses) : 0), sizeof(*cgs));
	if (!cgs) {
		ret = -ENOMEM;
		goto fail;
	}
	w.cgroup = (char *)pod_cg;
	if ((ret = bw_inventory_put_workload(s->inv, &w)) < 0)
		goto fail;
	changed |= ret;
	cgs[n_cgs++] = strdup(pod_cg);
	for (size_t i = 0; statuses && i < json_object_array_length(statuses); i++) {
		struct json_object *cs = json_object_array_get_idx(statuses, i);
		const char *cid = jstr(cs, "containerID"), *cname = jstr(cs, "name");
		char *cp[2] = { 0 };
		int m;

		if (!cid || !cname)
			continue;
		m = bw_kubepods_container_paths(pod_cg, cid, cp, ELEMENTSOF(cp));
		if (m == 1 && bw_kubepods_find(s->cgroup_root, cp, 1)) {
			w.cgroup = cp[0];
			w.container = (char *)cname;
			ret = bw_inventory_put_workload(s->inv, &w);
			if (ret >= 0) {
				changed |= ret;
				cgs[n_cgs++] = strdup(cp[0]);
			}
		}
		for (int k = 0; k < m; k++)
			free(cp[k]);
	}
	/* Containers that went away since the last version of the pod. */
	for (size_t i = 0; i < p->n_cgroups; i++) {
		bool still = false;

		for (size_t j = 0; j < n_cgs && !still; j++)
			still = cgs[j] && !strcmp(cgs[j], p->cgroups[i]);
		if (!still && bw_inventory_remove_workload(s->inv, p->cgroups[i]) == 0)
			changed = 1;
	}
	strv_free(p->cgroups, p->n_cgroups);
	p->cgroups = cgs;
	p->n_cgroups = n_cgs;
	cgs = NULL;
	ret = changed;
fail:
	free(w.labels.items);
	strv_free(cgs, n_cgs);
	for (int i = 0; i < n; i++)
		free(cands[i]);
	return ret;
out:
	for (int i = 0; i < n; i++)
		free(cands[i]);
	return 0;
}

static int update_pod(struct bw_cluster_source *s, bool deleted, struct json_object *obj)
{
	const char *ns = jstr(obj, "metadata.namespace"), *name = jstr(obj, "metadata.name");
	const char *uid = jstr(obj, "metadata.uid"), *node = jstr(obj, "spec.nodeName");
	const char *phase = jstr(obj, "status.phase");
	struct bw_cluster_pod *p;
	char key[512];
	int changed = 0;

	if (!ns || !name || !uid)
		return -EINVAL;
	snprintf(key, sizeof(key), "%s/%s", ns, name);
	p = find_pod(s, key);
	/* Gone, finished, or not on this node: its workloads go. */
	if (deleted || (node && s->node_name && strcmp(node, s->node_name)) ||
	    (phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed")))) {
		if (!p)
			return 0;
		changed = p->n_cgroups > 0;
		pod_forget_cgroups(s, p);
		pod_free(p);
		*p = s->pods[--s->n_pods];
		return changed;
	}
	if (!p) {
		struct bw_cluster_pod *n = realloc(s->pods, (s->n_pods + 1) * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->pods = n;
		p = &s->pods[s->n_pods];
		memset(p, 0, sizeof(*p));
		p->key = strdup(key);
		p->uid = strdup(uid);
		if (!p->key || !p->uid) {
			pod_free(p);
			return -ENOMEM;
		}
		s->n_pods++;
	} else if (strcmp(p->uid, uid)) {
		/* Same name, new pod: the old one's cgroups are not this one's. */
		pod_forget_cgroups(s, p);
		free(p->uid);
		p->uid = strdup(uid);
		if (!p->uid)
			return -ENOMEM;
		changed = 1;
	}
	json_object_put(p->obj);
	p->obj = json_object_get(obj);
	{
		bool was_pending = p->pending;
		int ret = pod_place(s, p, obj);

		/* A pod that cannot be placed yet changes nothing enforced, but
		 * the agent's status says how many wait: report it once. */
		if (ret == 0 && p->pending && !was_pending)
			changed = 1;
		return ret < 0 ? ret : ret | changed;
	}
}

static struct bw_cluster_policy *find_policy(struct bw_cluster_source *s, const char *key)
{
	for (size_t i = 0; i < s->n_policies; i++)
		if (!strcmp(s->policies[i].key, key))
			return &s->policies[i];
	return NULL;
}

static int update_policy(struct bw_cluster_source *s, bool deleted, struct json_object *obj)
{
	const char *kind = jstr(obj, "kind"), *name = jstr(obj, "metadata.name");
	const char *ns = jstr(obj, "metadata.namespace"), *uid = jstr(obj, "metadata.uid");
	struct json_object *gen = jget(obj, "metadata", "generation");
	struct bw_policy_list parsed = { 0 };
	struct bw_diags diags = { 0 };
	struct bw_cluster_policy *p;
	const char *text;
	char key[600];
	int ret;

	if (!kind || !name || (strcmp(kind, "ClusterBulwarkPolicy") && strcmp(kind, "BulwarkPolicy")))
		return -EINVAL;
	if (!strcmp(kind, "BulwarkPolicy") && !ns)
		return -EINVAL;
	snprintf(key, sizeof(key), "%s/%s%s%s", kind, ns && !strcmp(kind, "BulwarkPolicy") ? ns : "",
		 ns && !strcmp(kind, "BulwarkPolicy") ? "/" : "", name);
	p = find_policy(s, key);
	if (deleted) {
		if (!p)
			return 0;
		policy_free(p);
		*p = s->policies[--s->n_policies];
		return 1;
	}
	/* Only spec changes move metadata.generation (the CRDs have a status
	 * subresource): the status writes of every node come back as
	 * MODIFIED events and must not recompile anything. */
	if (p && gen && p->generation == json_object_get_int64(gen) && (p->good || p->error) &&
	    (!uid || (p->uid && !strcmp(p->uid, uid))))
		return 0;
	if (!p) {
		struct bw_cluster_policy *n = realloc(s->policies, (s->n_policies + 1) * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->policies = n;
		p = &s->policies[s->n_policies];
		memset(p, 0, sizeof(*p));
		if (!(p->key = strdup(key)))
			return -ENOMEM;
		s->n_policies++;
	}
	free(p->uid);
	p->uid = uid ? strdup(uid) : NULL;
	p->generation = gen ? json_object_get_int64(gen) : 0;

	/* The same parser as for files: a custom resource is a policy
	 * document (JSON is YAML), status and server fields ignored. */
	text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN);
	{
		char where[700];

		snprintf(where, sizeof(where), "cluster:%s", key);
		ret = bw_policy_parse_buffer(where, text, strlen(text), &parsed, &diags);
	}
	if (ret == 0 && parsed.n == 1 && diags.n == 0) {
		bw_policy_free(p->good);
		p->good = parsed.items[0];
		parsed.items[0] = NULL;
		free(p->error);
		p->error = NULL;
		ret = 1;
	} else {
		/* Rejected: the last good version stays in force. Still 1: the
		 * policy's status must now say why. */
		free(p->error);
		p->error = diags.n ? bw_diag_format(&diags.items[0]) : strdup("not a policy document");
		ret = 1;
	}
	free(parsed.items);
	bw_diags_clear(&diags);
	return ret;
}

int bw_cluster_source_update(struct bw_cluster_source *s, enum bw_cluster_kind kind, bool deleted,
			     struct json_object *obj)
{
	int ret;

	switch (kind) {
	case BW_CLUSTER_NAMESPACE: ret = update_namespace(s, deleted, obj); break;
	case BW_CLUSTER_POD: ret = update_pod(s, deleted, obj); break;
	case BW_CLUSTER_POLICY: ret = update_policy(s, deleted, obj); break;
	default: ret = -EINVAL;
	}
	if (ret == -EINVAL)
		s->rejected_objects++;
	return ret;
}

int bw_cluster_source_rescan(struct bw_cluster_source *s)
{
	int changed = 0;

	/* A pod is often seen before the kubelet has made its cgroup; and a
	 * container's cgroup can appear without a new pod update. */
	for (size_t i = 0; i < s->n_pods; i++) {
		int ret = s->pods[i].obj ? pod_place(s, &s->pods[i], s->pods[i].obj) : 0;

		if (ret > 0)
			changed = 1;
	}
	return changed;
}

int bw_cluster_source_policies(const struct bw_cluster_source *s, struct bw_policy_list *out)
{
	for (size_t i = 0; i < s->n_policies; i++) {
		struct bw_policy **n;

		if (!s->policies[i].good)
			continue;
		n = realloc(out->items, (out->n + 1) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		out->items = n;
		out->items[out->n++] = s->policies[i].good;
	}
	return 0;
}
