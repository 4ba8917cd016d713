/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The workload inventory (see inventory.h) and its YAML file format:
 *
 *   namespaces:                       # optional
 *     - name: prod                    # required
 *       labels: {bulwark.dev/locked: "true"}   # optional
 *   workloads:                        # optional
 *     - cgroup: /bulwark-test/prod-web          # required, absolute, unique
 *       namespace: prod               # required
 *       pod: web-7f9c                 # required
 *       container: nginx              # optional
 *       labels: {app: web}            # optional, the pod's labels
 *
 * Scalars are resolved as Kubernetes' YAML decoder does (YAML 1.1): an
 * unquoted true, yes, on, 1 or 1.5 is not a string, and is rejected where a
 * string is expected, like `kubectl apply` would reject it in a label. Two
 * departures: the single letters y and n stay strings, and "!!str" does not
 * turn a plain scalar into a string (libyaml's loader does not say whether a
 * tag was written); quoting does both.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf, vasprintf */
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "inventory.h"
#include "selector.h"

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

static bool streq_ptr(const char *a, const char *b) {
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

/* ---- labels ------------------------------------------------------------ */

static void labels_done(struct bw_labels *l) {
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].key);
		free(l->items[i].value);
	}
	free(l->items);
	*l = (struct bw_labels) {};
}

/* Label sets are maps: NULL or empty keys, NULL values and repeated keys
 * would make lookups depend on order, so they are refused on the way in. */
static bool labels_valid(const struct bw_labels *l) {
	if (!l)
		return true;

	for (size_t i = 0; i < l->n; i++) {
		if (!l->items[i].key || !l->items[i].key[0] || !l->items[i].value)
			return false;
		for (size_t j = 0; j < i; j++)
			if (strcmp(l->items[j].key, l->items[i].key) == 0)
				return false;
	}
	return true;
}

static int labels_append(struct bw_labels *l, const char *key, const char *value) {
	struct bw_label *items;
	char *k, *v;

	k = strdup(key);
	v = strdup(value);
	items = realloc(l->items, (l->n + 1) * sizeof(*items));
	if (!k || !v || !items) {
		free(k);
		free(v);
		/* realloc failing leaves the old array valid and owned by l. */
		if (items)
			l->items = items;
		return -ENOMEM;
	}

	l->items = items;
	l->items[l->n++] = (struct bw_label) { .key = k, .value = v };
	return 0;
}

static int labels_copy(struct bw_labels *dst, const struct bw_labels *src) {
	*dst = (struct bw_labels) {};
	if (!src)
		return 0;

	for (size_t i = 0; i < src->n; i++) {
		int r = labels_append(dst, src->items[i].key, src->items[i].value);
		if (r < 0) {
			labels_done(dst);
			return r;
		}
	}
	return 0;
}

/* Same set of pairs, whatever the order. Both sets have unique keys. */
static bool labels_equal(const struct bw_labels *a, const struct bw_labels *b) {
	if (a->n != b->n)
		return false;

	for (size_t i = 0; i < a->n; i++)
		if (!streq_ptr(bw_labels_get(b, a->items[i].key), a->items[i].value))
			return false;
	return true;
}

/* ---- cgroup paths ------------------------------------------------------ */

/* Returns the next component of *p, skipping slashes, and its length in *len;
 * NULL at the end of the path. */
static const char *next_component(const char **p, size_t *len) {
	const char *s = *p;

	while (*s == '/')
		s++;
	if (!*s) {
		*p = s;
		return NULL;
	}

	*len = strcspn(s, "/");
	*p = s + *len;
	return s;
}

/* Compares absolute paths component by component; with whole, path must
 * also end where prefix ends. */
static bool path_components_match(const char *path, const char *prefix, bool whole) {
	if (!path || !prefix || path[0] != '/' || prefix[0] != '/')
		return false;

	for (;;) {
		const char *pc, *c;
		size_t plen = 0, len = 0;

		pc = next_component(&prefix, &plen);
		c = next_component(&path, &len);
		if (!pc)
			return !whole || !c;
		if (!c || plen != len || memcmp(pc, c, len) != 0)
			return false;
	}
}

bool bw_cgroup_path_has_prefix(const char *path, const char *prefix) {
	return path_components_match(path, prefix, false);
}

const char *bw_cgroup_path_check(const char *path) {
	const char *p, *c;
	size_t len = 0;
	bool any = false;

	if (!path || !path[0])
		return "must not be empty";
	if (path[0] != '/')
		return "must be an absolute path (start with \"/\")";
	if (strlen(path) > BW_CGROUP_PATH_MAX)
		return "must be at most " STRINGIFY(BW_CGROUP_PATH_MAX) " bytes long";

	p = path;
	while ((c = next_component(&p, &len))) {
		/* The path is joined to the cgroup2 mount: ".." would leave it,
		 * and "." would let two spellings name one cgroup. */
		if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
			return "must not contain \".\" or \"..\" components";
		any = true;
	}

	/* A pod policy attached to the root cgroup would apply to every
	 * process on the host. */
	if (!any)
		return "must name a cgroup below the root, not \"/\"";

	return NULL;
}

/* Returns path without repeated or trailing slashes, in a new string. The
 * path has passed bw_cgroup_path_check. */
static char *cgroup_path_normalize(const char *path) {
	const char *p = path, *c;
	size_t len = 0, n = 0;
	char *ret;

	ret = malloc(strlen(path) + 1);
	if (!ret)
		return NULL;

	while ((c = next_component(&p, &len))) {
		ret[n++] = '/';
		memcpy(ret + n, c, len);
		n += len;
	}
	ret[n] = '\0';
	return ret;
}

/* ---- namespaces -------------------------------------------------------- */

static void namespace_free(struct bw_inventory_namespace *ns) {
	if (!ns)
		return;
	free(ns->name);
	labels_done(&ns->labels);
	free(ns);
}

/* A copy of labels that carries the automatic name label. */
static int namespace_new(const char *name, const struct bw_labels *labels, bool implicit,
			 struct bw_inventory_namespace **ret) {
	struct bw_inventory_namespace *ns;
	const char *auto_value;
	int r;

	if (!name || !name[0] || !labels_valid(labels))
		return -EINVAL;

	/* The API server keeps this label equal to the name; a different value
	 * is a mistake in the description, not something to select on. */
	auto_value = bw_labels_get(labels, BW_NAMESPACE_NAME_LABEL);
	if (auto_value && strcmp(auto_value, name) != 0)
		return -EINVAL;

	ns = calloc(1, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	ns->implicit = implicit;

	ns->name = strdup(name);
	if (!ns->name) {
		r = -ENOMEM;
		goto fail;
	}

	r = labels_copy(&ns->labels, labels);
	if (r < 0)
		goto fail;

	if (!auto_value) {
		r = labels_append(&ns->labels, BW_NAMESPACE_NAME_LABEL, name);
		if (r < 0)
			goto fail;
	}

	*ret = ns;
	return 0;

fail:
	namespace_free(ns);
	return r;
}

static ssize_t namespace_index(const struct bw_inventory *inv, const char *name) {
	if (!name)
		return -1;
	for (size_t i = 0; i < inv->n_namespaces; i++)
		if (strcmp(inv->namespaces[i]->name, name) == 0)
			return (ssize_t) i;
	return -1;
}

const struct bw_inventory_namespace *bw_inventory_find_namespace(const struct bw_inventory *inv, const char *name) {
	ssize_t i;

	if (!inv)
		return NULL;
	i = namespace_index(inv, name);
	return i < 0 ? NULL : inv->namespaces[i];
}

static int namespaces_append(struct bw_inventory *inv, struct bw_inventory_namespace *ns) {
	struct bw_inventory_namespace **a;

	/* Grown one at a time: a node has few namespaces and changes rarely. */
	a = realloc(inv->namespaces, (inv->n_namespaces + 1) * sizeof(*a));
	if (!a)
		return -ENOMEM;
	inv->namespaces = a;
	inv->namespaces[inv->n_namespaces++] = ns;
	return 0;
}

static void namespaces_remove_at(struct bw_inventory *inv, size_t i) {
	namespace_free(inv->namespaces[i]);
	memmove(inv->namespaces + i, inv->namespaces + i + 1,
		(inv->n_namespaces - i - 1) * sizeof(*inv->namespaces));
	inv->n_namespaces--;
}

static bool namespace_in_use(const struct bw_inventory *inv, const char *name) {
	for (size_t i = 0; i < inv->n_workloads; i++)
		if (strcmp(inv->workloads[i]->namespace, name) == 0)
			return true;
	return false;
}

/* Called after a workload left name: an implicit entry only exists for the
 * workloads naming it. */
static void namespace_drop_if_unused(struct bw_inventory *inv, const char *name) {
	ssize_t i = namespace_index(inv, name);

	if (i >= 0 && inv->namespaces[i]->implicit && !namespace_in_use(inv, name))
		namespaces_remove_at(inv, (size_t) i);
}

/* Gives a workload's namespace an entry, implicit when nothing describes it. */
static int namespace_ensure(struct bw_inventory *inv, const char *name) {
	struct bw_inventory_namespace *ns;
	int r;

	if (namespace_index(inv, name) >= 0)
		return 0;

	r = namespace_new(name, NULL, true, &ns);
	if (r < 0)
		return r;
	r = namespaces_append(inv, ns);
	if (r < 0)
		namespace_free(ns);
	return r;
}

static int namespace_upsert(struct bw_inventory *inv, const char *name, const struct bw_labels *labels,
			    bool replace) {
	struct bw_inventory_namespace *ns, *old;
	ssize_t i;
	int r;

	if (!inv)
		return -EINVAL;

	r = namespace_new(name, labels, false, &ns);
	if (r < 0)
		return r;

	i = namespace_index(inv, name);
	if (i < 0) {
		r = namespaces_append(inv, ns);
		if (r < 0) {
			namespace_free(ns);
			return r;
		}
		return 1;
	}

	old = inv->namespaces[i];
	if (!old->implicit) {
		if (!replace) {
			namespace_free(ns);
			return -EEXIST;
		}
		if (labels_equal(&old->labels, &ns->labels)) {
			namespace_free(ns);
			return 0;
		}
	}

	/* Replaced in place, so that the order of first appearance stays. */
	inv->namespaces[i] = ns;
	namespace_free(old);
	return 1;
}

int bw_inventory_add_namespace(struct bw_inventory *inv, const char *name, const struct bw_labels *labels) {
	int r = namespace_upsert(inv, name, labels, false);
	return r < 0 ? r : 0;
}

int bw_inventory_put_namespace(struct bw_inventory *inv, const char *name, const struct bw_labels *labels) {
	return namespace_upsert(inv, name, labels, true);
}

int bw_inventory_remove_namespace(struct bw_inventory *inv, const char *name) {
	struct bw_inventory_namespace *ns;
	ssize_t i;
	int r;

	if (!inv)
		return -EINVAL;

	i = namespace_index(inv, name);
	if (i < 0 || inv->namespaces[i]->implicit)
		return -ENOENT;

	if (!namespace_in_use(inv, name)) {
		namespaces_remove_at(inv, (size_t) i);
		return 0;
	}

	/* Its pods are still there (a deleted namespace's pods go away after
	 * it): they keep a namespace, with only what Kubernetes guarantees. */
	r = namespace_new(name, NULL, true, &ns);
	if (r < 0)
		return r;
	namespace_free(inv->namespaces[i]);
	inv->namespaces[i] = ns;
	return 0;
}

/* ---- workloads --------------------------------------------------------- */

static void workload_free(struct bw_inventory_workload *w) {
	if (!w)
		return;
	free(w->cgroup);
	free(w->namespace);
	free(w->pod);
	free(w->container);
	labels_done(&w->labels);
	free(w);
}

static int workload_copy(const struct bw_inventory_workload *src, struct bw_inventory_workload **ret) {
	struct bw_inventory_workload *w;
	int r;

	if (!src || bw_cgroup_path_check(src->cgroup) ||
	    !src->namespace || !src->namespace[0] || !src->pod || !src->pod[0] ||
	    (src->container && !src->container[0]) || !labels_valid(&src->labels))
		return -EINVAL;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;

	w->cgroup = cgroup_path_normalize(src->cgroup);
	w->namespace = strdup(src->namespace);
	w->pod = strdup(src->pod);
	w->container = src->container ? strdup(src->container) : NULL;
	if (!w->cgroup || !w->namespace || !w->pod || (src->container && !w->container)) {
		workload_free(w);
		return -ENOMEM;
	}

	r = labels_copy(&w->labels, &src->labels);
	if (r < 0) {
		workload_free(w);
		return r;
	}

	*ret = w;
	return 0;
}

static bool workload_equal(const struct bw_inventory_workload *a, const struct bw_inventory_workload *b) {
	return streq_ptr(a->cgroup, b->cgroup) &&
	       streq_ptr(a->namespace, b->namespace) &&
	       streq_ptr(a->pod, b->pod) &&
	       streq_ptr(a->container, b->container) &&
	       labels_equal(&a->labels, &b->labels);
}

static ssize_t workload_index(const struct bw_inventory *inv, const char *cgroup) {
	for (size_t i = 0; i < inv->n_workloads; i++)
		if (path_components_match(inv->workloads[i]->cgroup, cgroup, true))
			return (ssize_t) i;
	return -1;
}

const struct bw_inventory_workload *bw_inventory_find_workload(const struct bw_inventory *inv, const char *cgroup) {
	ssize_t i;

	if (!inv)
		return NULL;
	i = workload_index(inv, cgroup);
	return i < 0 ? NULL : inv->workloads[i];
}

static int workload_upsert(struct bw_inventory *inv, const struct bw_inventory_workload *src, bool replace) {
	struct bw_inventory_workload *w, *old = NULL, **a;
	ssize_t i;
	int r;

	if (!inv)
		return -EINVAL;

	r = workload_copy(src, &w);
	if (r < 0)
		return r;

	i = workload_index(inv, w->cgroup);
	if (i >= 0) {
		old = inv->workloads[i];
		if (!replace || workload_equal(old, w)) {
			workload_free(w);
			return replace ? 0 : -EEXIST;
		}
	}

	r = namespace_ensure(inv, w->namespace);
	if (r < 0) {
		workload_free(w);
		return r;
	}

	if (i >= 0) {
		/* In place, keeping the order; the old namespace may have been
		 * implicit and named by this workload only. */
		inv->workloads[i] = w;
		namespace_drop_if_unused(inv, old->namespace);
		workload_free(old);
		return 1;
	}

	a = realloc(inv->workloads, (inv->n_workloads + 1) * sizeof(*a));
	if (!a) {
		namespace_drop_if_unused(inv, w->namespace);
		workload_free(w);
		return -ENOMEM;
	}
	inv->workloads = a;
	inv->workloads[inv->n_workloads++] = w;
	return 1;
}

int bw_inventory_add_workload(struct bw_inventory *inv, const struct bw_inventory_workload *w) {
	int r = workload_upsert(inv, w, false);
	return r < 0 ? r : 0;
}

int bw_inventory_put_workload(struct bw_inventory *inv, const struct bw_inventory_workload *w) {
	return workload_upsert(inv, w, true);
}

int bw_inventory_remove_workload(struct bw_inventory *inv, const char *cgroup) {
	struct bw_inventory_workload *w;
	ssize_t i;

	if (!inv)
		return -EINVAL;

	i = workload_index(inv, cgroup);
	if (i < 0)
		return -ENOENT;

	w = inv->workloads[i];
	memmove(inv->workloads + i, inv->workloads + i + 1,
		(inv->n_workloads - (size_t) i - 1) * sizeof(*inv->workloads));
	inv->n_workloads--;

	namespace_drop_if_unused(inv, w->namespace);
	workload_free(w);
	return 0;
}

void bw_inventory_clear(struct bw_inventory *inv) {
	if (!inv)
		return;
	for (size_t i = 0; i < inv->n_workloads; i++)
		workload_free(inv->workloads[i]);
	for (size_t i = 0; i < inv->n_namespaces; i++)
		namespace_free(inv->namespaces[i]);
	free(inv->workloads);
	free(inv->namespaces);
	*inv = (struct bw_inventory) {};
}

/* ---- selection --------------------------------------------------------- */

bool bw_policy_selects_workload(const struct bw_policy *p, const struct bw_inventory *inv,
				const struct bw_inventory_workload *w) {
	const struct bw_inventory_namespace *ns;

	if (!p || !w || !w->namespace)
		return false;

	switch (p->kind) {
	case BW_KIND_CLUSTER:
		ns = inv ? bw_inventory_find_namespace(inv, w->namespace) : NULL;
		if (ns) {
			if (!bw_selector_matches(&p->namespace_selector, &ns->labels))
				return false;
		} else {
			/* A workload built outside of this inventory: its
			 * namespace still has the label every namespace has. */
			struct bw_label auto_label = {
				.key = (char *) BW_NAMESPACE_NAME_LABEL,
				.value = w->namespace,
			};
			struct bw_labels labels = { .items = &auto_label, .n = 1 };

			if (!bw_selector_matches(&p->namespace_selector, &labels))
				return false;
		}
		return bw_selector_matches(&p->pod_selector, &w->labels);

	case BW_KIND_NAMESPACED:
		return p->namespace && strcmp(p->namespace, w->namespace) == 0 &&
		       bw_selector_matches(&p->pod_selector, &w->labels);

	case BW_KIND_HOST:
	case BW_KIND_POSTURE:
		return false;
	}

	return false;
}

/* ---- the YAML file ----------------------------------------------------- */

struct seen {
	const char *key; /* borrowed from the YAML document */
	yaml_mark_t mark;
};

struct loader {
	const char *file;
	const char *buf;
	size_t len;
	yaml_document_t *doc;
	struct bw_inventory inv;
	char *error;
	/* Where each namespace and cgroup was first written, for the
	 * "first at" of duplicate messages. */
	struct seen *namespaces, *cgroups;
	size_t n_namespaces, n_cgroups;
};

/* Records the first error as "file:line:column: base.key: reason" and
 * returns -EINVAL (-ENOMEM when the message cannot be built). */
static int fail(struct loader *l, const yaml_mark_t *m, const char *base, const char *key,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail(struct loader *l, const yaml_mark_t *m, const char *base, const char *key,
		const char *fmt, ...) {
	char *reason;
	va_list ap;
	int r;

	if (l->error)
		return -EINVAL;

	va_start(ap, fmt);
	r = vasprintf(&reason, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;

	r = asprintf(&l->error, "%s:%zu:%zu: %s%s%s: %s", l->file, m->line + 1, m->column + 1,
		     base ? base : "", base && key ? "." : "", key ? key : "", reason);
	free(reason);
	if (r < 0) {
		l->error = NULL;
		return -ENOMEM;
	}
	return -EINVAL;
}

static yaml_node_t *node_get(struct loader *l, int id) {
	return yaml_document_get_node(l->doc, id);
}

static const char *scalar(const yaml_node_t *n) {
	return (const char *) n->data.scalar.value;
}

enum scalar_type {
	SCALAR_STRING,
	SCALAR_NULL,
	SCALAR_BOOL,
	SCALAR_INT,
	SCALAR_FLOAT,
	SCALAR_OTHER, /* explicitly tagged with something else */
};

static bool is_one_of(const char *s, const char *const *list) {
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

static bool all_digits(const char *s, const char *digits) {
	if (!*s)
		return false;
	for (; *s; s++)
		if (!strchr(digits, *s) && *s != '_')
			return false;
	return true;
}

/* YAML 1.1 numbers as resolved by go-yaml v2, which Kubernetes' decoder uses:
 * decimal, 0x, 0o/0 octal and 0b integers (with "_" separators), decimal
 * floats with optional exponent, .inf and .nan. */
static enum scalar_type resolve_number(const char *s) {
	static const char *const special[] = {
		".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
		".nan", ".NaN", ".NAN", NULL,
	};
	const char *p = s;
	bool mantissa = false;

	if (is_one_of(s, special))
		return SCALAR_FLOAT;

	if (*p == '+' || *p == '-')
		p++;

	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		return all_digits(p + 2, "0123456789abcdefABCDEF") ? SCALAR_INT : SCALAR_STRING;
	if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B'))
		return all_digits(p + 2, "01") ? SCALAR_INT : SCALAR_STRING;
	if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O'))
		return all_digits(p + 2, "01234567") ? SCALAR_INT : SCALAR_STRING;
	if (all_digits(p, "0123456789"))
		return SCALAR_INT;

	/* [0-9]+(\.[0-9]*)? | \.[0-9]+, then ([eE][-+]?[0-9]+)? */
	while (*p >= '0' && *p <= '9') {
		p++;
		mantissa = true;
	}
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			p++;
			mantissa = true;
		}
	}
	if (!mantissa)
		return SCALAR_STRING;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!(*p >= '0' && *p <= '9'))
			return SCALAR_STRING;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p ? SCALAR_STRING : SCALAR_FLOAT;
}

static enum scalar_type resolve_scalar(const yaml_node_t *n) {
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
	/* YAML 1.1 booleans, without the single letters y and n: go-yaml v2
	 * has them, but a pod or label value called "n" is more likely than
	 * someone meaning false by it. */
	static const char *const bools[] = {
		"yes", "Yes", "YES", "no", "No", "NO",
		"true", "True", "TRUE", "false", "False", "FALSE",
		"on", "On", "ON", "off", "Off", "OFF", NULL,
	};
	const char *tag = (const char *) n->tag;
	const char *s = scalar(n);

	/* libyaml's loader gives untagged scalars the str tag, so an explicit
	 * "!!str" cannot be told apart: quoting is the way to force a string. */
	if (tag && strcmp(tag, YAML_STR_TAG) != 0) {
		if (strcmp(tag, YAML_NULL_TAG) == 0)
			return SCALAR_NULL;
		if (strcmp(tag, YAML_BOOL_TAG) == 0)
			return SCALAR_BOOL;
		if (strcmp(tag, YAML_INT_TAG) == 0)
			return SCALAR_INT;
		if (strcmp(tag, YAML_FLOAT_TAG) == 0)
			return SCALAR_FLOAT;
		return SCALAR_OTHER;
	}

	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return SCALAR_STRING;
	if (is_one_of(s, nulls))
		return SCALAR_NULL;
	if (is_one_of(s, bools))
		return SCALAR_BOOL;
	return resolve_number(s);
}

static bool node_is_null(const yaml_node_t *n) {
	return n->type == YAML_SCALAR_NODE && resolve_scalar(n) == SCALAR_NULL;
}

/* What n is, for "must be a X, not Y" messages. */
static const char *node_describe(const yaml_node_t *n) {
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a sequence";
	case YAML_SCALAR_NODE:
		switch (resolve_scalar(n)) {
		case SCALAR_STRING:
			return "a string";
		case SCALAR_NULL:
			return "null";
		case SCALAR_BOOL:
			return "a boolean";
		case SCALAR_INT:
			return "an integer";
		case SCALAR_FLOAT:
			return "a number";
		case SCALAR_OTHER:
			return "a tagged value";
		}
		break;
	case YAML_NO_NODE:
		break;
	}
	return "empty";
}

/* Gets the string in n; with !allow_empty, "" is refused. */
static int get_string(struct loader *l, const yaml_node_t *n, const char *base, const char *key,
		      bool allow_empty, const char **ret) {
	if (n->type != YAML_SCALAR_NODE || resolve_scalar(n) != SCALAR_STRING) {
		if (n->type == YAML_SCALAR_NODE && resolve_scalar(n) != SCALAR_NULL)
			return fail(l, &n->start_mark, base, key, "must be a string, not %s (quote it)",
				    node_describe(n));
		return fail(l, &n->start_mark, base, key, "must be a string, not %s", node_describe(n));
	}

	/* A "\0" escape would silently cut the string short in C. */
	if (strlen(scalar(n)) != n->data.scalar.length)
		return fail(l, &n->start_mark, base, key, "must not contain NUL characters");

	if (!allow_empty && n->data.scalar.length == 0)
		return fail(l, &n->start_mark, base, key, "must not be empty");

	*ret = scalar(n);
	return 0;
}

/* Mapping keys are field names here: they must be plain strings. */
static int get_key(struct loader *l, const yaml_node_t *k, const char *base, const char **ret) {
	if (k->type != YAML_SCALAR_NODE)
		return fail(l, &k->start_mark, base, NULL, "keys must be strings, not %s", node_describe(k));
	*ret = scalar(k);
	return 0;
}

static int expect_mapping(struct loader *l, const yaml_node_t *n, const char *base, const char *key) {
	if (n->type != YAML_MAPPING_NODE)
		return fail(l, &n->start_mark, base, key, "must be a mapping, not %s", node_describe(n));
	return 0;
}

static int expect_sequence(struct loader *l, const yaml_node_t *n, const char *base, const char *key) {
	if (n->type != YAML_SEQUENCE_NODE)
		return fail(l, &n->start_mark, base, key, "must be a sequence, not %s", node_describe(n));
	return 0;
}

/* Refuses a field written twice in one mapping (libyaml accepts that). */
static int check_once(struct loader *l, const yaml_node_t *k, const char *base, const char *key,
		      const yaml_node_t **slot) {
	if (*slot)
		return fail(l, &k->start_mark, base, key, "duplicate field, first at %s:%zu:%zu",
			    l->file, (*slot)->start_mark.line + 1, (*slot)->start_mark.column + 1);
	*slot = k;
	return 0;
}

static int seen_add(struct seen **a, size_t *n, const char *key, const yaml_mark_t *mark) {
	struct seen *s = realloc(*a, (*n + 1) * sizeof(*s));
	if (!s)
		return -ENOMEM;
	*a = s;
	s[(*n)++] = (struct seen) { .key = key, .mark = *mark };
	return 0;
}

/* The value of key in mapping n, which is known to have it. */
static const yaml_node_t *mapping_value(struct loader *l, const yaml_node_t *n, const char *key) {
	for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
		const yaml_node_t *k = node_get(l, pair->key);

		if (k->type == YAML_SCALAR_NODE && strcmp(scalar(k), key) == 0)
			return node_get(l, pair->value);
	}
	return n;
}

/* Reads a labels mapping into out, whose strings are borrowed from the
 * document (only out->items is to be freed). */
static int load_labels(struct loader *l, const yaml_node_t *n, const char *base, struct bw_labels *out) {
	*out = (struct bw_labels) {};

	/* "labels:" with nothing after it is an empty map to Kubernetes. */
	if (node_is_null(n))
		return 0;
	if (n->type != YAML_MAPPING_NODE)
		return fail(l, &n->start_mark, base, NULL, "must be a mapping, not %s", node_describe(n));

	for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
		const yaml_node_t *k = node_get(l, pair->key), *v = node_get(l, pair->value);
		const char *key, *value = "";
		struct bw_label *items;
		int r;

		if (k->type != YAML_SCALAR_NODE || resolve_scalar(k) != SCALAR_STRING)
			return fail(l, &k->start_mark, base, NULL, "label keys must be strings, not %s",
				    node_describe(k));
		key = scalar(k);
		if (strlen(key) != k->data.scalar.length)
			return fail(l, &k->start_mark, base, NULL, "label keys must not contain NUL characters");
		if (!key[0])
			return fail(l, &k->start_mark, base, NULL, "label keys must not be empty");

		/* A label written "key:" is the empty value, as for
		 * Kubernetes, which decodes null into "". */
		if (!node_is_null(v)) {
			r = get_string(l, v, base, key, true, &value);
			if (r < 0)
				return r;
		}

		if (bw_labels_get(out, key))
			return fail(l, &k->start_mark, base, key, "duplicate label");

		items = realloc(out->items, (out->n + 1) * sizeof(*items));
		if (!items)
			return -ENOMEM;
		out->items = items;
		out->items[out->n++] = (struct bw_label) { .key = (char *) key, .value = (char *) value };
	}
	return 0;
}

static int load_namespace(struct loader *l, const yaml_node_t *n, size_t index) {
	const yaml_node_t *name_key = NULL, *name_node = NULL, *labels_key = NULL, *labels_node = NULL;
	struct bw_labels labels = {};
	const char *name = NULL;
	char *base = NULL, *labels_base = NULL;
	int r;

	if (asprintf(&base, "namespaces[%zu]", index) < 0)
		return -ENOMEM;

	r = expect_mapping(l, n, base, NULL);
	if (r < 0)
		goto finish;

	for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
		const yaml_node_t *k = node_get(l, pair->key), *v = node_get(l, pair->value);
		const char *key = NULL;

		r = get_key(l, k, base, &key);
		if (r < 0)
			goto finish;

		if (strcmp(key, "name") == 0) {
			r = check_once(l, k, base, key, &name_key);
			if (r >= 0)
				r = get_string(l, v, base, key, false, &name);
			name_node = v;
		} else if (strcmp(key, "labels") == 0) {
			r = check_once(l, k, base, key, &labels_key);
			labels_node = v;
		} else
			r = fail(l, &k->start_mark, base, key, "unknown field");
		if (r < 0)
			goto finish;
	}

	if (!name) {
		r = fail(l, &n->start_mark, base, "name", "missing required field");
		goto finish;
	}

	if (labels_node) {
		const char *v;

		if (asprintf(&labels_base, "%s.labels", base) < 0) {
			r = -ENOMEM;
			goto finish;
		}
		r = load_labels(l, labels_node, labels_base, &labels);
		if (r < 0)
			goto finish;

		v = bw_labels_get(&labels, BW_NAMESPACE_NAME_LABEL);
		if (v && strcmp(v, name) != 0) {
			r = fail(l, &mapping_value(l, labels_node, BW_NAMESPACE_NAME_LABEL)->start_mark,
				 labels_base, BW_NAMESPACE_NAME_LABEL,
				 "must equal the namespace name \"%s\"", name);
			goto finish;
		}
	}

	r = bw_inventory_add_namespace(&l->inv, name, &labels);
	if (r == -EEXIST) {
		for (size_t i = 0; i < l->n_namespaces; i++)
			if (strcmp(l->namespaces[i].key, name) == 0) {
				const yaml_mark_t *first = &l->namespaces[i].mark;

				r = fail(l, &name_node->start_mark, base, "name",
					 "duplicate namespace \"%s\", first at %s:%zu:%zu",
					 name, l->file, first->line + 1, first->column + 1);
				goto finish;
			}
	}
	if (r < 0)
		goto finish;

	r = seen_add(&l->namespaces, &l->n_namespaces, name, &name_node->start_mark);

finish:
	free(labels.items);
	free(labels_base);
	free(base);
	return r;
}

static int load_workload(struct loader *l, const yaml_node_t *n, size_t index) {
	/* Fields in this order; the first three are required. */
	enum { CGROUP, NAMESPACE, POD, CONTAINER, LABELS, N_FIELDS };
	static const char *const names[N_FIELDS] = { "cgroup", "namespace", "pod", "container", "labels" };
	const yaml_node_t *keys[N_FIELDS] = {}, *values[N_FIELDS] = {};
	const char *strings[LABELS] = {};
	struct bw_inventory_workload w = {};
	char *base = NULL, *labels_base = NULL;
	const char *reason;
	int r;

	if (asprintf(&base, "workloads[%zu]", index) < 0)
		return -ENOMEM;

	r = expect_mapping(l, n, base, NULL);
	if (r < 0)
		goto finish;

	for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
		const yaml_node_t *k = node_get(l, pair->key), *v = node_get(l, pair->value);
		const char *key = NULL;
		size_t f;

		r = get_key(l, k, base, &key);
		if (r < 0)
			goto finish;

		for (f = 0; f < N_FIELDS; f++)
			if (strcmp(key, names[f]) == 0)
				break;
		if (f == N_FIELDS) {
			r = fail(l, &k->start_mark, base, key, "unknown field");
			goto finish;
		}

		r = check_once(l, k, base, key, &keys[f]);
		if (r < 0)
			goto finish;
		values[f] = v;

		/* "container:" alone means the whole pod. */
		if (f == LABELS || (f == CONTAINER && node_is_null(v)))
			continue;

		r = get_string(l, v, base, key, false, &strings[f]);
		if (r < 0)
			goto finish;
	}

	for (size_t f = 0; f < CONTAINER; f++)
		if (!keys[f]) {
			r = fail(l, &n->start_mark, base, names[f], "missing required field");
			goto finish;
		}

	reason = bw_cgroup_path_check(strings[CGROUP]);
	if (reason) {
		r = fail(l, &values[CGROUP]->start_mark, base, "cgroup", "%s", reason);
		goto finish;
	}

	/* Borrowed from the document: add_workload copies them. */
	w.cgroup = (char *) strings[CGROUP];
	w.namespace = (char *) strings[NAMESPACE];
	w.pod = (char *) strings[POD];
	w.container = (char *) strings[CONTAINER];

	if (values[LABELS]) {
		if (asprintf(&labels_base, "%s.labels", base) < 0) {
			r = -ENOMEM;
			goto finish;
		}
		r = load_labels(l, values[LABELS], labels_base, &w.labels);
		if (r < 0)
			goto finish;
	}

	r = bw_inventory_add_workload(&l->inv, &w);
	if (r == -EEXIST) {
		for (size_t i = 0; i < l->n_cgroups; i++)
			if (path_components_match(l->cgroups[i].key, w.cgroup, true)) {
				const yaml_mark_t *first = &l->cgroups[i].mark;

				r = fail(l, &values[CGROUP]->start_mark, base, "cgroup",
					 "duplicate cgroup \"%s\", first at %s:%zu:%zu",
					 w.cgroup, l->file, first->line + 1, first->column + 1);
				goto finish;
			}
	}
	if (r < 0)
		goto finish;

	r = seen_add(&l->cgroups, &l->n_cgroups, w.cgroup, &values[CGROUP]->start_mark);

finish:
	free(w.labels.items);
	free(labels_base);
	free(base);
	return r;
}

static int load_list(struct loader *l, const yaml_node_t *n, const char *key,
		     int (*load_item)(struct loader *l, const yaml_node_t *n, size_t index)) {
	int r;

	if (node_is_null(n))
		return 0;

	r = expect_sequence(l, n, NULL, key);
	if (r < 0)
		return r;

	for (yaml_node_item_t *item = n->data.sequence.items.start; item < n->data.sequence.items.top; item++) {
		r = load_item(l, node_get(l, *item), (size_t) (item - n->data.sequence.items.start));
		if (r < 0)
			return r;
	}
	return 0;
}

static int load_root(struct loader *l, const yaml_node_t *root) {
	const yaml_node_t *namespaces_key = NULL, *workloads_key = NULL;

	/* An empty file is an empty inventory. */
	if (!root || node_is_null(root))
		return 0;

	if (root->type != YAML_MAPPING_NODE)
		return fail(l, &root->start_mark, "document", NULL, "must be a mapping, not %s",
			    node_describe(root));

	for (yaml_node_pair_t *pair = root->data.mapping.pairs.start; pair < root->data.mapping.pairs.top; pair++) {
		const yaml_node_t *k = node_get(l, pair->key), *v = node_get(l, pair->value);
		const char *key = NULL;
		int r;

		r = get_key(l, k, "document", &key);
		if (r < 0)
			return r;

		/* Workloads may come first: their namespaces are implicit
		 * until the namespaces list describes them. */
		if (strcmp(key, "namespaces") == 0) {
			r = check_once(l, k, NULL, key, &namespaces_key);
			if (r >= 0)
				r = load_list(l, v, key, load_namespace);
		} else if (strcmp(key, "workloads") == 0) {
			r = check_once(l, k, NULL, key, &workloads_key);
			if (r >= 0)
				r = load_list(l, v, key, load_workload);
		} else
			r = fail(l, &k->start_mark, NULL, key, "unknown field");
		if (r < 0)
			return r;
	}
	return 0;
}

/* libyaml reports reader errors (bad encoding) by byte offset only. */
static yaml_mark_t mark_from_offset(const char *buf, size_t len, size_t offset) {
	yaml_mark_t m = { .index = offset };

	for (size_t i = 0; i < offset && i < len; i++) {
		if (buf[i] == '\n') {
			m.line++;
			m.column = 0;
		} else
			m.column++;
	}
	return m;
}

static int fail_syntax(struct loader *l, const yaml_parser_t *parser) {
	yaml_mark_t m = parser->problem_mark;

	if (parser->error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	if (parser->error == YAML_READER_ERROR)
		m = mark_from_offset(l->buf, l->len, parser->problem_offset);

	if (parser->context)
		return fail(l, &m, "yaml", NULL, "%s (%s at line %zu, column %zu)",
			    parser->problem ? parser->problem : "invalid YAML", parser->context,
			    parser->context_mark.line + 1, parser->context_mark.column + 1);
	return fail(l, &m, "yaml", NULL, "%s", parser->problem ? parser->problem : "invalid YAML");
}

static void set_error(char **error, char *message) {
	if (error)
		*error = message;
	else
		free(message);
}

int bw_inventory_load_buffer(const char *name, const char *buf, size_t len,
			     struct bw_inventory *inv, char **error) {
	struct loader l = { .file = name ? name : "<inventory>", .buf = buf, .len = len };
	yaml_document_t doc, next;
	yaml_parser_t parser;
	bool have_doc = false;
	int r;

	if (error)
		*error = NULL;
	if (!inv || (!buf && len > 0))
		return -EINVAL;

	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *) (buf ? buf : ""), len);

	if (!yaml_parser_load(&parser, &doc)) {
		r = fail_syntax(&l, &parser);
		goto finish;
	}
	have_doc = true;
	l.doc = &doc;

	r = load_root(&l, yaml_document_get_root_node(&doc));
	if (r < 0)
		goto finish;

	/* One inventory per file: a second document would be ignored
	 * silently otherwise. Loading it also surfaces syntax errors in it. */
	if (!yaml_parser_load(&parser, &next)) {
		r = fail_syntax(&l, &parser);
		goto finish;
	}
	if (yaml_document_get_root_node(&next))
		r = fail(&l, &next.start_mark, "document", NULL, "only one YAML document is allowed");
	yaml_document_delete(&next);

finish:
	if (have_doc)
		yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	free(l.namespaces);
	free(l.cgroups);

	if (r < 0) {
		bw_inventory_clear(&l.inv);
		/* Errors the checks above did not word (out of memory). */
		if (!l.error && asprintf(&l.error, "%s: %s", l.file, strerror(-r)) < 0)
			l.error = NULL;
		set_error(error, l.error);
		return r;
	}

	bw_inventory_clear(inv);
	*inv = l.inv;
	return 0;
}

int bw_inventory_load(const char *path, struct bw_inventory *inv, char **error) {
	char *buf = NULL, *message = NULL;
	size_t len = 0, size = 0;
	int fd, r;

	if (error)
		*error = NULL;
	if (!path || !inv)
		return -EINVAL;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		goto fail;
	}

	/* Read to the end rather than trusting st_size, so that pipes work;
	 * the cap keeps a wrong path from eating memory. The buffer ends one
	 * byte past the cap, so that a larger file is noticed. */
	for (;;) {
		ssize_t n;

		if (len == size) {
			char *b;

			if (size > BW_INVENTORY_FILE_MAX) {
				r = -EFBIG;
				goto fail;
			}
			size = size ? size * 2 : 4096;
			if (size > BW_INVENTORY_FILE_MAX)
				size = BW_INVENTORY_FILE_MAX + 1;
			b = realloc(buf, size);
			if (!b) {
				r = -ENOMEM;
				goto fail;
			}
			buf = b;
		}

		n = read(fd, buf + len, size - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t) n;
	}
	close(fd);
	fd = -1;

	r = bw_inventory_load_buffer(path, buf, len, inv, error);
	free(buf);
	return r;

fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	if (r == -EFBIG) {
		if (asprintf(&message, "%s: larger than %u bytes", path, BW_INVENTORY_FILE_MAX) < 0)
			message = NULL;
	} else if (asprintf(&message, "%s: %s", path, strerror(-r)) < 0)
		message = NULL;
	set_error(error, message);
	return r;
}
