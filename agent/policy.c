/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy model's small helpers: names, freeing, and formatting of
 * diagnostics. The parser lives in policy-parse.c.
 */
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "util.h"

const char *bw_policy_kind_name(enum bw_policy_kind kind)
{
	switch (kind) {
	case BW_KIND_CLUSTER:
		return "ClusterBulwarkPolicy";
	case BW_KIND_NAMESPACED:
		return "BulwarkPolicy";
	case BW_KIND_HOST:
		return "HostBulwarkPolicy";
	case BW_KIND_POSTURE:
		return "Posture";
	}
	return "unknown";
}

const char *bw_mode_name(enum bw_mode mode)
{
	switch (mode) {
	case BW_MODE_BLOCK:
		return "Block";
	case BW_MODE_AUDIT:
		return "Audit";
	}
	return "unknown";
}

static void labels_done(struct bw_labels *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].key);
		free(l->items[i].value);
	}
	free(l->items);
}

static void selector_done(struct bw_selector *s)
{
	labels_done(&s->match_labels);
	for (size_t i = 0; i < s->n_exprs; i++) {
		free(s->exprs[i].key);
		strv_free(s->exprs[i].values, s->exprs[i].n_values);
	}
	free(s->exprs);
}

static void path_rules_done(struct bw_path_rules *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->items[i].path);
	free(r->items);
}

static void net_rules_done(struct bw_net_rules *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->items[i].ports);
		free(r->items[i].cidr);
	}
	free(r->items);
}

struct bw_policy *bw_policy_ref(struct bw_policy *p)
{
	p->extra_refs++;
	return p;
}

void bw_policy_free(struct bw_policy *p)
{
	if (!p)
		return;
	if (p->extra_refs) {
		p->extra_refs--;
		return;
	}
	free(p->name);
	free(p->namespace);
	selector_done(&p->namespace_selector);
	selector_done(&p->pod_selector);
	strv_free(p->cgroup_paths, p->n_cgroup_paths);
	path_rules_done(&p->exec_deny);
	path_rules_done(&p->exec_allow);
	path_rules_done(&p->files_deny);
	path_rules_done(&p->files_allow);
	net_rules_done(&p->net_deny);
	net_rules_done(&p->net_allow);
	free(p->file);
	free(p);
}

void bw_policy_list_clear(struct bw_policy_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		bw_policy_free(l->items[i]);
	l->items = mfree(l->items);
	l->n = 0;
}

void bw_diags_clear(struct bw_diags *d)
{
	for (size_t i = 0; i < d->n; i++) {
		struct bw_diag *x = &d->items[i];

		free(x->file);
		free(x->field);
		free(x->reason);
		free(x->kind);
		free(x->name);
		free(x->namespace);
	}
	d->items = mfree(d->items);
	d->n = 0;
}

/* "file:line:column: field: reason". A problem with the whole file (it
 * cannot be read) has no position and reads "file: reason"; a YAML syntax
 * error has no field and reads "file:line:column: reason". */
char *bw_diag_format(const struct bw_diag *d)
{
	const char *file = d->file ? d->file : "<unknown>";
	const char *reason = d->reason ? d->reason : "invalid";
	bool has_field = d->field && d->field[0];

	if (d->line == 0)
		return strprintf("%s: %s%s%s", file, has_field ? d->field : "", has_field ? ": " : "",
				 reason);
	return strprintf("%s:%u:%u: %s%s%s", file, d->line, d->column, has_field ? d->field : "",
			 has_field ? ": " : "", reason);
}

uint64_t bw_policy_next_serial(void)
{
	static uint64_t next;

	return __atomic_add_fetch(&next, 1, __ATOMIC_RELAXED);
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static bool pos_eq(const struct bw_pos *a, const struct bw_pos *b)
{
	return a->line == b->line && a->column == b->column;
}

static bool labels_eq(const struct bw_labels *a, const struct bw_labels *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (!str_eq(a->items[i].key, b->items[i].key) || !str_eq(a->items[i].value, b->items[i].value))
			return false;
	return true;
}

static bool strv_eq(char *const *a, size_t na, char *const *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!str_eq(a[i], b[i]))
			return false;
	return true;
}

static bool selector_eq(const struct bw_selector *a, const struct bw_selector *b)
{
	if (!labels_eq(&a->match_labels, &b->match_labels) || a->n_exprs != b->n_exprs)
		return false;
	for (size_t i = 0; i < a->n_exprs; i++)
		if (!str_eq(a->exprs[i].key, b->exprs[i].key) || a->exprs[i].op != b->exprs[i].op ||
		    !strv_eq(a->exprs[i].values, a->exprs[i].n_values, b->exprs[i].values, b->exprs[i].n_values))
			return false;
	return true;
}

static bool path_rules_eq(const struct bw_path_rules *a, const struct bw_path_rules *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct bw_path_rule *x = &a->items[i], *y = &b->items[i];

		if (x->is_prefix != y->is_prefix || x->access != y->access || !str_eq(x->path, y->path) ||
		    !pos_eq(&x->pos, &y->pos))
			return false;
	}
	return true;
}

static bool net_rules_eq(const struct bw_net_rules *a, const struct bw_net_rules *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct bw_net_rule *x = &a->items[i], *y = &b->items[i];

		if (x->family != y->family || memcmp(x->addr, y->addr, sizeof(x->addr)) ||
		    x->prefix_len != y->prefix_len || x->protocol != y->protocol || x->n_ports != y->n_ports ||
		    (x->n_ports && memcmp(x->ports, y->ports, x->n_ports * sizeof(*x->ports))) ||
		    !str_eq(x->cidr, y->cidr) || !pos_eq(&x->pos, &y->pos))
			return false;
	}
	return true;
}

bool bw_policy_equal(const struct bw_policy *a, const struct bw_policy *b)
{
	return a->kind == b->kind && a->mode == b->mode && str_eq(a->name, b->name) &&
	       str_eq(a->namespace, b->namespace) && str_eq(a->file, b->file) && pos_eq(&a->pos, &b->pos) &&
	       pos_eq(&a->name_pos, &b->name_pos) && a->doc_index == b->doc_index &&
	       selector_eq(&a->namespace_selector, &b->namespace_selector) &&
	       selector_eq(&a->pod_selector, &b->pod_selector) &&
	       strv_eq(a->cgroup_paths, a->n_cgroup_paths, b->cgroup_paths, b->n_cgroup_paths) &&
	       path_rules_eq(&a->exec_deny, &b->exec_deny) && path_rules_eq(&a->exec_allow, &b->exec_allow) &&
	       path_rules_eq(&a->files_deny, &b->files_deny) && path_rules_eq(&a->files_allow, &b->files_allow) &&
	       net_rules_eq(&a->net_deny, &b->net_deny) && net_rules_eq(&a->net_allow, &b->net_allow);
}
