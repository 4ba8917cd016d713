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

static int identity_cmp(const struct bw_policy *x, const struct bw_policy *y)
{
	int c;

	if (x->kind != y->kind)
		return (int)x->kind - (int)y->kind;
	c = strcmp(x->namespace ? x->namespace : "", y->namespace ? y->namespace : "");
	return c ? c : strcmp(x->name, y->name);
}

static int slot_cmp(const void *a, const void *b)
{
	struct bw_policy **x = *(struct bw_policy **const *)a, **y = *(struct bw_policy **const *)b;

	return identity_cmp(*x, *y);
}

/* A policy that reads the same as before stays the same object (and
 * serial), so what was compiled from it is reused instead of compiled
 * again. Moves such policies from old into fresh (their slot in old
 * becomes NULL). Identities are unique in a loaded list: one sorted array
 * of old's slots and a binary search per fresh policy find its earlier self. */
static void keep_unchanged(struct bw_policy_list *old, struct bw_policy_list *fresh)
{
	struct bw_policy ***slots = malloc((old->n + 1) * sizeof(*slots));
	bool *moved = calloc(old->n + 1, sizeof(*moved));
	size_t n = 0;

	if (!slots || !moved) {
		free(slots);
		free(moved);
		return; /* only a lost shortcut: everything is compiled again */
	}
	for (size_t i = 0; i < old->n; i++)
		if (old->items[i])
			slots[n++] = &old->items[i];
	qsort(slots, n, sizeof(*slots), slot_cmp);
	for (size_t f = 0; f < fresh->n; f++) {
		struct bw_policy *p = fresh->items[f], *q;
		size_t lo = 0, hi = n;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			int c = identity_cmp(*slots[mid], p);

			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == n || identity_cmp(*slots[lo], p) || *slots[lo] == p || !bw_policy_equal(*slots[lo], p))
			continue;
		/* The slot keeps its pointer until the loop is done (the
		 * search compares through it); it is cleared after. */
		q = *slots[lo];
		bw_policy_free(p);
		fresh->items[f] = q;
		moved[lo] = true;
	}
	for (size_t k = 0; k < n; k++)
		if (moved[k])
			*slots[k] = NULL;
	free(slots);
	free(moved);
}

int bw_policy_store_reload(struct bw_policy_store *s, const char *dir)
{
	struct bw_policy_list fresh = { 0 };
	struct bw_diags diags = { 0 };
	size_t kept = 0;
	int ret;

	if (!s->cache)
		s->cache = bw_parse_cache_new(); /* without one, every file is read */
	ret = bw_policy_load_dir_cached(dir, s->cache, &fresh, &diags);
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
	keep_unchanged(&s->current, &fresh);
	for (size_t i = 0; i < s->current.n; i++)
		bw_policy_free(s->current.items[i]);
	free(s->current.items);
	s->current = fresh;
	bw_diags_clear(&s->rejected);
	s->rejected = diags;
	s->kept = kept;
	return 0;
}

void bw_policy_store_forget_files(struct bw_policy_store *s)
{
	bw_parse_cache_free(s->cache);
	s->cache = NULL;
}

void bw_policy_store_clear(struct bw_policy_store *s)
{
	bw_policy_store_forget_files(s);
	bw_policy_list_clear(&s->current);
	bw_diags_clear(&s->rejected);
	s->kept = 0;
}
