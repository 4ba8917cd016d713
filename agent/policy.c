/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy model's small helpers: names, freeing, and formatting of
 * diagnostics. The parser lives in policy-parse.c.
 */
#include <stdlib.h>

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

void bw_policy_free(struct bw_policy *p)
{
	if (!p)
		return;
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
