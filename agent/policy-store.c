/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy-store.h"

static bool same_identity(const struct bw_policy *p, const char *kind, const char *ns, const char *name)
{
	return kind && name && !strcmp(bw_policy_kind_name(p->kind), kind) && !strcmp(p->name, name) &&
	       !strcmp(p->namespace ? p->namespace : "", ns ? ns : "");
}

static bool in_list(const struct bw_policy_list *l, const struct bw_policy *p)
{
	for (size_t i = 0; i < l->n; i++)
		if (same_identity(l->items[i], bw_policy_kind_name(p->kind), p->namespace, p->name))
			return true;
	return false;
}

static int list_push(struct bw_policy_list *l, struct bw_policy *p)
{
	struct bw_policy **n = realloc(l->items, (l->n + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	l->items = n;
	l->items[l->n++] = p;
	return 0;
}

int bw_policy_store_reload(struct bw_policy_store *s, const char *dir)
{
	struct bw_policy_list fresh = { 0 };
	struct bw_diags diags = { 0 };
	size_t kept = 0;
	int ret;

	ret = bw_policy_load_dir(dir, &fresh, &diags);
	if (ret < 0) {
		bw_policy_list_clear(&fresh);
		bw_diags_clear(&s->rejected);
		s->rejected = diags;
		return ret;
	}
	/* For each rejected document, carry its last good version over. */
	for (size_t d = 0; d < diags.n; d++) {
		const struct bw_diag *dg = &diags.items[d];

		for (size_t i = 0; i < s->current.n; i++) {
			struct bw_policy *old = s->current.items[i];
			bool match;

			if (!old || in_list(&fresh, old))
				continue;
			if (dg->name)
				match = same_identity(old, dg->kind, dg->namespace, dg->name);
			else /* unreadable document: keep what its file gave before */
				match = dg->file && old->file && !strcmp(dg->file, old->file);
			if (!match)
				continue;
			if (list_push(&fresh, old) < 0) {
				bw_policy_list_clear(&fresh);
				bw_diags_clear(&diags);
				return -ENOMEM;
			}
			s->current.items[i] = NULL; /* moved */
			kept++;
		}
	}
	for (size_t i = 0; i < s->current.n; i++)
		bw_policy_free(s->current.items[i]);
	free(s->current.items);
	s->current = fresh;
	bw_diags_clear(&s->rejected);
	s->rejected = diags;
	s->kept = kept;
	return 0;
}

void bw_policy_store_clear(struct bw_policy_store *s)
{
	bw_policy_list_clear(&s->current);
	bw_diags_clear(&s->rejected);
	s->kept = 0;
}
