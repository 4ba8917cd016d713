/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "selector.h"

const char *bw_labels_get(const struct bw_labels *l, const char *key) {
	if (!l || !key)
		return NULL;

	/* Linear: a pod carries a handful of labels, and keeping them in the
	 * order they were written keeps messages and dumps stable. */
	for (size_t i = 0; i < l->n; i++)
		if (l->items[i].key && strcmp(l->items[i].key, key) == 0)
			return l->items[i].value;

	return NULL;
}

bool bw_selector_is_empty(const struct bw_selector *sel) {
	return !sel || (sel->match_labels.n == 0 && sel->n_exprs == 0);
}

static bool value_in(const struct bw_selector_expr *e, const char *value) {
	for (size_t i = 0; i < e->n_values; i++)
		if (e->values[i] && strcmp(e->values[i], value) == 0)
			return true;
	return false;
}

static bool expr_matches(const struct bw_selector_expr *e, const struct bw_labels *labels) {
	const char *v;

	/* A term without a key cannot come out of the parser; treat it as
	 * unsatisfiable rather than guessing what it meant. */
	if (!e->key)
		return false;

	v = bw_labels_get(labels, e->key);

	switch (e->op) {
	case BW_SEL_IN:
		/* With no values nothing is "in" the set, so nothing matches,
		 * as in apimachinery (which rejects that selector earlier). */
		return v && value_in(e, v);
	case BW_SEL_NOT_IN:
		/* Absent keys match NotIn: "env notin (prod)" selects pods
		 * without an env label too. */
		return !v || !value_in(e, v);
	case BW_SEL_EXISTS:
		return v != NULL;
	case BW_SEL_DOES_NOT_EXIST:
		return v == NULL;
	}

	/* An operator this code does not know: not satisfied, so that an
	 * unknown term can never widen what a policy selects by accident. */
	return false;
}

bool bw_selector_matches(const struct bw_selector *sel, const struct bw_labels *labels) {
	if (bw_selector_is_empty(sel))
		return true;

	for (size_t i = 0; i < sel->match_labels.n; i++) {
		const struct bw_label *want = &sel->match_labels.items[i];
		const char *v;

		if (!want->key || !want->value)
			return false;

		v = bw_labels_get(labels, want->key);
		if (!v || strcmp(v, want->value) != 0)
			return false;
	}

	for (size_t i = 0; i < sel->n_exprs; i++)
		if (!expr_matches(&sel->exprs[i], labels))
			return false;

	return true;
}
