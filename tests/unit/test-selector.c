/* SPDX-License-Identifier: Apache-2.0 */
/* Label selectors: every operator and its edge cases, against the semantics
 * of k8s.io/apimachinery/pkg/labels. */
#include <stdio.h>
#include <string.h>

#include "selector.h"

#include "bw-test.h"

/* Selectors and label sets built by hand from literals: nothing here is
 * freed, and nothing depends on the policy parser. */
#define L(k, v) { .key = (char *) (k), .value = (char *) (v) }
#define LABELS(...)                                                                       \
	((struct bw_labels) {                                                             \
		.items = (struct bw_label[]) { __VA_ARGS__ },                             \
		.n = sizeof((struct bw_label[]) { __VA_ARGS__ }) / sizeof(struct bw_label) \
	})
#define NO_LABELS ((struct bw_labels) {})

#define EXPR(k, o, ...)                                                        \
	{                                                                      \
		.key = (char *) (k), .op = (o),                                \
		.values = (char *[]) { __VA_ARGS__ },                          \
		.n_values = sizeof((char *[]) { __VA_ARGS__ }) / sizeof(char *) \
	}
#define EXPR0(k, o) { .key = (char *) (k), .op = (o), .values = NULL, .n_values = 0 }
#define EXPRS(...)                                                                                \
	.exprs = (struct bw_selector_expr[]) { __VA_ARGS__ },                                     \
	.n_exprs = sizeof((struct bw_selector_expr[]) { __VA_ARGS__ }) / sizeof(struct bw_selector_expr)

static void test_labels_get(void) {
	struct bw_labels l = LABELS(L("app", "web"), L("tier", ""), L("app.kubernetes.io/name", "nginx"));
	struct bw_labels dup = LABELS(L("k", "first"), L("k", "second"));
	struct bw_labels empty = NO_LABELS;

	ASSERT(strcmp(bw_labels_get(&l, "app"), "web") == 0);
	ASSERT(strcmp(bw_labels_get(&l, "tier"), "") == 0);
	ASSERT(strcmp(bw_labels_get(&l, "app.kubernetes.io/name"), "nginx") == 0);
	ASSERT(bw_labels_get(&l, "App") == NULL);   /* keys are case-sensitive */
	ASSERT(bw_labels_get(&l, "ap") == NULL);    /* no prefix matching */
	ASSERT(bw_labels_get(&l, "") == NULL);
	ASSERT(bw_labels_get(&l, NULL) == NULL);
	ASSERT(bw_labels_get(&empty, "app") == NULL);
	ASSERT(bw_labels_get(NULL, "app") == NULL);
	ASSERT(strcmp(bw_labels_get(&dup, "k"), "first") == 0);
}

static void test_empty_selector(void) {
	struct bw_selector empty = {};
	struct bw_labels l = LABELS(L("app", "web"));
	struct bw_labels none = NO_LABELS;

	ASSERT(bw_selector_is_empty(&empty));
	ASSERT(bw_selector_is_empty(NULL));
	ASSERT(bw_selector_matches(&empty, &l));
	ASSERT(bw_selector_matches(&empty, &none));
	ASSERT(bw_selector_matches(&empty, NULL));
	ASSERT(bw_selector_matches(NULL, &l));
	ASSERT(bw_selector_matches(NULL, NULL));

	/* Present but empty lists are still an empty selector. */
	struct bw_selector empty_lists = { .match_labels = { .items = NULL, .n = 0 }, .exprs = NULL, .n_exprs = 0 };
	ASSERT(bw_selector_is_empty(&empty_lists));
	ASSERT(bw_selector_matches(&empty_lists, &l));

	struct bw_selector some = { .match_labels = LABELS(L("app", "web")) };
	ASSERT(!bw_selector_is_empty(&some));
	struct bw_selector some_expr = { EXPRS(EXPR0("app", BW_SEL_EXISTS)) };
	ASSERT(!bw_selector_is_empty(&some_expr));
}

static void test_match_labels(void) {
	struct bw_selector one = { .match_labels = LABELS(L("app", "web")) };
	struct bw_selector two = { .match_labels = LABELS(L("app", "web"), L("env", "prod")) };
	struct bw_selector empty_value = { .match_labels = LABELS(L("canary", "")) };
	struct bw_labels web = LABELS(L("app", "web"));
	struct bw_labels web_prod = LABELS(L("env", "prod"), L("app", "web"), L("extra", "x"));
	struct bw_labels web_dev = LABELS(L("app", "web"), L("env", "dev"));
	struct bw_labels db = LABELS(L("app", "db"));
	struct bw_labels upper = LABELS(L("app", "Web"));
	struct bw_labels canary = LABELS(L("canary", ""));
	struct bw_labels none = NO_LABELS;

	ASSERT(bw_selector_matches(&one, &web));
	ASSERT(bw_selector_matches(&one, &web_prod));   /* extra labels do not matter */
	ASSERT(!bw_selector_matches(&one, &db));
	ASSERT(!bw_selector_matches(&one, &upper));     /* values are case-sensitive */
	ASSERT(!bw_selector_matches(&one, &none));
	ASSERT(!bw_selector_matches(&one, NULL));

	ASSERT(bw_selector_matches(&two, &web_prod));   /* order does not matter */
	ASSERT(!bw_selector_matches(&two, &web));       /* every pair is required */
	ASSERT(!bw_selector_matches(&two, &web_dev));

	ASSERT(bw_selector_matches(&empty_value, &canary));
	ASSERT(!bw_selector_matches(&empty_value, &none));  /* "" is not absence */
	ASSERT(!bw_selector_matches(&empty_value, &web));
}

static void test_in(void) {
	struct bw_selector in = { EXPRS(EXPR("env", BW_SEL_IN, "prod", "staging")) };
	struct bw_selector in_one = { EXPRS(EXPR("env", BW_SEL_IN, "prod")) };
	struct bw_selector in_empty_value = { EXPRS(EXPR("env", BW_SEL_IN, "")) };
	struct bw_selector in_no_values = { EXPRS(EXPR0("env", BW_SEL_IN)) };
	struct bw_labels prod = LABELS(L("env", "prod"));
	struct bw_labels staging = LABELS(L("app", "x"), L("env", "staging"));
	struct bw_labels dev = LABELS(L("env", "dev"));
	struct bw_labels blank = LABELS(L("env", ""));
	struct bw_labels other = LABELS(L("app", "x"));
	struct bw_labels none = NO_LABELS;

	ASSERT(bw_selector_matches(&in, &prod));
	ASSERT(bw_selector_matches(&in, &staging));
	ASSERT(!bw_selector_matches(&in, &dev));
	ASSERT(!bw_selector_matches(&in, &other));      /* absent key: not In */
	ASSERT(!bw_selector_matches(&in, &none));
	ASSERT(!bw_selector_matches(&in, &blank));
	ASSERT(bw_selector_matches(&in_one, &prod));
	ASSERT(!bw_selector_matches(&in_one, &staging));

	ASSERT(bw_selector_matches(&in_empty_value, &blank));
	ASSERT(!bw_selector_matches(&in_empty_value, &none));
	ASSERT(!bw_selector_matches(&in_empty_value, &prod));

	/* In with no values selects nothing, even with the key present. */
	ASSERT(!bw_selector_matches(&in_no_values, &prod));
	ASSERT(!bw_selector_matches(&in_no_values, &blank));
	ASSERT(!bw_selector_matches(&in_no_values, &none));
}

static void test_not_in(void) {
	struct bw_selector not_in = { EXPRS(EXPR("env", BW_SEL_NOT_IN, "prod", "staging")) };
	struct bw_selector not_in_empty_value = { EXPRS(EXPR("env", BW_SEL_NOT_IN, "")) };
	struct bw_selector not_in_no_values = { EXPRS(EXPR0("env", BW_SEL_NOT_IN)) };
	struct bw_labels prod = LABELS(L("env", "prod"));
	struct bw_labels staging = LABELS(L("env", "staging"));
	struct bw_labels dev = LABELS(L("env", "dev"));
	struct bw_labels blank = LABELS(L("env", ""));
	struct bw_labels other = LABELS(L("app", "x"));
	struct bw_labels none = NO_LABELS;

	ASSERT(!bw_selector_matches(&not_in, &prod));
	ASSERT(!bw_selector_matches(&not_in, &staging));
	ASSERT(bw_selector_matches(&not_in, &dev));
	ASSERT(bw_selector_matches(&not_in, &blank));
	/* The key being absent satisfies NotIn. */
	ASSERT(bw_selector_matches(&not_in, &other));
	ASSERT(bw_selector_matches(&not_in, &none));
	ASSERT(bw_selector_matches(&not_in, NULL));

	ASSERT(!bw_selector_matches(&not_in_empty_value, &blank));
	ASSERT(bw_selector_matches(&not_in_empty_value, &prod));
	ASSERT(bw_selector_matches(&not_in_empty_value, &none));

	/* NotIn with no values excludes nothing. */
	ASSERT(bw_selector_matches(&not_in_no_values, &prod));
	ASSERT(bw_selector_matches(&not_in_no_values, &blank));
	ASSERT(bw_selector_matches(&not_in_no_values, &none));
}

static void test_exists(void) {
	struct bw_selector exists = { EXPRS(EXPR0("canary", BW_SEL_EXISTS)) };
	/* Values are ignored by Exists and DoesNotExist (the parser refuses
	 * them; the matcher must not look at them anyway). */
	struct bw_selector exists_values = { EXPRS(EXPR("canary", BW_SEL_EXISTS, "nope")) };
	struct bw_selector dne = { EXPRS(EXPR0("canary", BW_SEL_DOES_NOT_EXIST)) };
	struct bw_selector dne_values = { EXPRS(EXPR("canary", BW_SEL_DOES_NOT_EXIST, "yes")) };
	struct bw_labels canary = LABELS(L("app", "web"), L("canary", "yes"));
	struct bw_labels canary_blank = LABELS(L("canary", ""));
	struct bw_labels other = LABELS(L("app", "web"), L("canaryx", "yes"));
	struct bw_labels none = NO_LABELS;

	ASSERT(bw_selector_matches(&exists, &canary));
	ASSERT(bw_selector_matches(&exists, &canary_blank));  /* an empty value exists */
	ASSERT(!bw_selector_matches(&exists, &other));
	ASSERT(!bw_selector_matches(&exists, &none));
	ASSERT(!bw_selector_matches(&exists, NULL));
	ASSERT(bw_selector_matches(&exists_values, &canary));
	ASSERT(!bw_selector_matches(&exists_values, &none));

	ASSERT(!bw_selector_matches(&dne, &canary));
	ASSERT(!bw_selector_matches(&dne, &canary_blank));
	ASSERT(bw_selector_matches(&dne, &other));
	ASSERT(bw_selector_matches(&dne, &none));
	ASSERT(bw_selector_matches(&dne, NULL));
	ASSERT(!bw_selector_matches(&dne_values, &canary));
	ASSERT(bw_selector_matches(&dne_values, &none));
}

static void test_combined(void) {
	/* matchLabels AND every expression. */
	struct bw_selector sel = {
		.match_labels = LABELS(L("app", "web")),
		EXPRS(EXPR("env", BW_SEL_IN, "prod", "staging"),
		      EXPR("tier", BW_SEL_NOT_IN, "debug"),
		      EXPR0("owner", BW_SEL_EXISTS),
		      EXPR0("legacy", BW_SEL_DOES_NOT_EXIST)),
	};
	struct bw_labels ok = LABELS(L("app", "web"), L("env", "prod"), L("owner", "team-a"));
	struct bw_labels ok_tier = LABELS(L("owner", ""), L("tier", "fe"), L("env", "staging"), L("app", "web"));
	struct bw_labels wrong_app = LABELS(L("app", "db"), L("env", "prod"), L("owner", "team-a"));
	struct bw_labels wrong_env = LABELS(L("app", "web"), L("env", "dev"), L("owner", "team-a"));
	struct bw_labels debug = LABELS(L("app", "web"), L("env", "prod"), L("owner", "a"), L("tier", "debug"));
	struct bw_labels no_owner = LABELS(L("app", "web"), L("env", "prod"));
	struct bw_labels legacy = LABELS(L("app", "web"), L("env", "prod"), L("owner", "a"), L("legacy", "1"));

	ASSERT(bw_selector_matches(&sel, &ok));
	ASSERT(bw_selector_matches(&sel, &ok_tier));
	ASSERT(!bw_selector_matches(&sel, &wrong_app));
	ASSERT(!bw_selector_matches(&sel, &wrong_env));
	ASSERT(!bw_selector_matches(&sel, &debug));
	ASSERT(!bw_selector_matches(&sel, &no_owner));
	ASSERT(!bw_selector_matches(&sel, &legacy));
	ASSERT(!bw_selector_matches(&sel, NULL));

	/* Expressions only, no matchLabels. */
	struct bw_selector exprs_only = { EXPRS(EXPR("env", BW_SEL_IN, "prod"), EXPR0("owner", BW_SEL_EXISTS)) };
	ASSERT(bw_selector_matches(&exprs_only, &ok));
	ASSERT(!bw_selector_matches(&exprs_only, &wrong_env));

	/* Contradictory terms on one key select nothing. */
	struct bw_selector contradiction = {
		EXPRS(EXPR0("owner", BW_SEL_EXISTS), EXPR0("owner", BW_SEL_DOES_NOT_EXIST)),
	};
	ASSERT(!bw_selector_matches(&contradiction, &ok));
	ASSERT(!bw_selector_matches(&contradiction, &wrong_app));
	struct bw_labels none = NO_LABELS;
	ASSERT(!bw_selector_matches(&contradiction, &none));

	/* matchLabels and In on the same key must both hold. */
	struct bw_selector both = {
		.match_labels = LABELS(L("env", "prod")),
		EXPRS(EXPR("env", BW_SEL_IN, "staging")),
	};
	ASSERT(!bw_selector_matches(&both, &ok));
	ASSERT(!bw_selector_matches(&both, &ok_tier));
}

static void test_malformed(void) {
	/* Things the parser never produces: they must not select. */
	struct bw_selector unknown_op = { EXPRS(EXPR0("app", (enum bw_selector_op) 99)) };
	struct bw_selector no_key = { EXPRS(EXPR0(NULL, BW_SEL_DOES_NOT_EXIST)) };
	struct bw_selector null_value = { .match_labels = LABELS(L("app", NULL)) };
	struct bw_selector null_in_values = { EXPRS(EXPR("app", BW_SEL_IN, NULL, "web")) };
	struct bw_labels web = LABELS(L("app", "web"));
	struct bw_labels none = NO_LABELS;

	ASSERT(!bw_selector_matches(&unknown_op, &web));
	ASSERT(!bw_selector_matches(&unknown_op, &none));
	ASSERT(!bw_selector_matches(&no_key, &none));
	ASSERT(!bw_selector_matches(&null_value, &web));
	ASSERT(bw_selector_matches(&null_in_values, &web));  /* NULL entries are skipped */
}

int main(void) {
	test_labels_get();
	test_empty_selector();
	test_match_labels();
	test_in();
	test_not_in();
	test_exists();
	test_combined();
	test_malformed();

	return bw_test_summary();
}
