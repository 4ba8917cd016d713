/* SPDX-License-Identifier: Apache-2.0 */
/* The workload inventory: the YAML loader and every error it reports, the
 * add/put/remove interface, policy selection and cgroup path prefixes. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inventory.h"
#include "selector.h"

#include "bw-test.h"

static bool streq(const char *a, const char *b) {
	return a && b && strcmp(a, b) == 0;
}
#define STREQ(a, b) streq((a), (b))

#define L(k, v) { .key = (char *) (k), .value = (char *) (v) }
#define LABELS(...)                                                                       \
	((struct bw_labels) {                                                             \
		.items = (struct bw_label[]) { __VA_ARGS__ },                             \
		.n = sizeof((struct bw_label[]) { __VA_ARGS__ }) / sizeof(struct bw_label) \
	})
#define EXPR0(k, o) { .key = (char *) (k), .op = (o), .values = NULL, .n_values = 0 }
#define EXPR(k, o, ...)                                                        \
	{                                                                      \
		.key = (char *) (k), .op = (o),                                \
		.values = (char *[]) { __VA_ARGS__ },                          \
		.n_values = sizeof((char *[]) { __VA_ARGS__ }) / sizeof(char *) \
	}
#define EXPRS(...)                                                                                \
	.exprs = (struct bw_selector_expr[]) { __VA_ARGS__ },                                     \
	.n_exprs = sizeof((struct bw_selector_expr[]) { __VA_ARGS__ }) / sizeof(struct bw_selector_expr)

static int load(const char *text, struct bw_inventory *inv, char **error) {
	return bw_inventory_load_buffer("t.yaml", text, strlen(text), inv, error);
}

/* Loading text fails with -EINVAL and exactly this message, and leaves the
 * inventory as it was (here: empty). */
#define ASSERT_LOAD_ERROR(text, expected)                                             \
	do {                                                                          \
		struct bw_inventory _inv = {};                                        \
		char *_e = NULL;                                                      \
		int _r = load((text), &_inv, &_e);                                    \
		ASSERT(_r == -EINVAL);                                                \
		ASSERT(STREQ(_e, (expected)));                                        \
		if (!STREQ(_e, (expected)))                                           \
			fprintf(stderr, "  got:      %s\n  expected: %s\n",            \
				_e ? _e : "(null)", (expected));                      \
		ASSERT(_inv.n_workloads == 0 && _inv.n_namespaces == 0);              \
		free(_e);                                                             \
		bw_inventory_clear(&_inv);                                            \
	} while (0)

#define WORKLOAD_TAIL "    namespace: a\n    pod: p\n"

static void test_load_example(void) {
	static const char text[] =
		"namespaces:\n"
		"  - name: prod\n"
		"    labels: {bulwark.dev/locked: \"true\"}\n"
		"  - name: dev\n"
		"workloads:\n"
		"  - cgroup: /bulwark-test/prod-web\n"
		"    namespace: prod\n"
		"    pod: web-7f9c\n"
		"    container: nginx      # optional\n"
		"    labels: {app: web}\n"
		"  - cgroup: /kubepods.slice/kubepods-pod1.slice/cri-containerd-abc.scope\n"
		"    namespace: other\n"
		"    pod: db-0\n"
		"    labels:\n"
		"      app: db\n"
		"      tier: \"\"\n"
		"      empty:\n"
		"  - cgroup: //bulwark-test//locked/\n"
		"    namespace: dev\n"
		"    pod: locked\n"
		"    container:\n";
	const struct bw_inventory_namespace *ns;
	const struct bw_inventory_workload *w;
	struct bw_inventory inv = {};
	char *error = (char *) 1;

	ASSERT(load(text, &inv, &error) == 0);
	ASSERT(error == NULL);
	ASSERT(inv.n_namespaces == 3);
	ASSERT(inv.n_workloads == 3);

	/* Described namespaces get the automatic label after theirs. */
	ns = bw_inventory_find_namespace(&inv, "prod");
	ASSERT(ns && !ns->implicit);
	ASSERT(ns && ns->labels.n == 2);
	ASSERT(ns && STREQ(bw_labels_get(&ns->labels, "bulwark.dev/locked"), "true"));
	ASSERT(ns && STREQ(bw_labels_get(&ns->labels, "kubernetes.io/metadata.name"), "prod"));
	ns = bw_inventory_find_namespace(&inv, "dev");
	ASSERT(ns && !ns->implicit && ns->labels.n == 1);
	ASSERT(ns && STREQ(bw_labels_get(&ns->labels, BW_NAMESPACE_NAME_LABEL), "dev"));

	/* A namespace only named by a workload has the automatic label only. */
	ns = bw_inventory_find_namespace(&inv, "other");
	ASSERT(ns && ns->implicit && ns->labels.n == 1);
	ASSERT(ns && STREQ(bw_labels_get(&ns->labels, BW_NAMESPACE_NAME_LABEL), "other"));
	ASSERT(bw_inventory_find_namespace(&inv, "nope") == NULL);

	/* Order of the file. */
	ASSERT(STREQ(inv.namespaces[0]->name, "prod"));
	ASSERT(STREQ(inv.namespaces[1]->name, "dev"));
	ASSERT(STREQ(inv.namespaces[2]->name, "other"));

	w = inv.workloads[0];
	ASSERT(STREQ(w->cgroup, "/bulwark-test/prod-web"));
	ASSERT(STREQ(w->namespace, "prod"));
	ASSERT(STREQ(w->pod, "web-7f9c"));
	ASSERT(STREQ(w->container, "nginx"));
	ASSERT(w->labels.n == 1 && STREQ(bw_labels_get(&w->labels, "app"), "web"));

	w = inv.workloads[1];
	ASSERT(STREQ(w->cgroup, "/kubepods.slice/kubepods-pod1.slice/cri-containerd-abc.scope"));
	ASSERT(w->container == NULL);
	ASSERT(w->labels.n == 3);
	ASSERT(STREQ(bw_labels_get(&w->labels, "tier"), ""));
	ASSERT(STREQ(bw_labels_get(&w->labels, "empty"), ""));  /* "key:" is "" as in Kubernetes */

	/* Paths are normalized, and found however they are spelled. */
	w = inv.workloads[2];
	ASSERT(STREQ(w->cgroup, "/bulwark-test/locked"));
	ASSERT(w->container == NULL);  /* "container:" alone */
	ASSERT(w->labels.n == 0);
	ASSERT(bw_inventory_find_workload(&inv, "/bulwark-test/locked") == w);
	ASSERT(bw_inventory_find_workload(&inv, "/bulwark-test//locked/") == w);
	ASSERT(bw_inventory_find_workload(&inv, "/bulwark-test") == NULL);
	ASSERT(bw_inventory_find_workload(&inv, "/bulwark-test/locked/x") == NULL);
	ASSERT(bw_inventory_find_workload(&inv, "bulwark-test/locked") == NULL);
	ASSERT(bw_inventory_find_workload(&inv, NULL) == NULL);

	bw_inventory_clear(&inv);
	ASSERT(inv.n_namespaces == 0 && inv.n_workloads == 0 && !inv.namespaces && !inv.workloads);
	bw_inventory_clear(&inv);  /* twice is fine */
}

static void test_load_variants(void) {
	struct bw_inventory inv = {};
	const struct bw_inventory_namespace *ns;
	char *error = NULL;

	/* Workloads first: "prod" is implicit, then described. */
	ASSERT(load("workloads:\n"
		    "  - {cgroup: /a, namespace: prod, pod: p}\n"
		    "namespaces:\n"
		    "  - name: prod\n"
		    "    labels: {team: x, kubernetes.io/metadata.name: prod}\n", &inv, &error) == 0);
	ASSERT(error == NULL);
	ASSERT(inv.n_namespaces == 1);
	ns = bw_inventory_find_namespace(&inv, "prod");
	ASSERT(ns && !ns->implicit);
	/* The automatic label written explicitly is not added twice. */
	ASSERT(ns && ns->labels.n == 2 && STREQ(bw_labels_get(&ns->labels, "team"), "x"));

	/* A failed load leaves the previous inventory in place. */
	ASSERT(load("workloads: 3\n", &inv, &error) == -EINVAL);
	ASSERT(error != NULL);
	free(error);
	error = NULL;
	ASSERT(inv.n_workloads == 1 && inv.n_namespaces == 1);
	ASSERT(bw_inventory_find_workload(&inv, "/a") != NULL);

	/* A successful one replaces it. */
	ASSERT(load("workloads:\n  - {cgroup: /b, namespace: n, pod: p}\n", &inv, &error) == 0);
	ASSERT(inv.n_workloads == 1 && bw_inventory_find_workload(&inv, "/a") == NULL);
	ASSERT(bw_inventory_find_workload(&inv, "/b") != NULL);
	ASSERT(inv.n_namespaces == 1 && bw_inventory_find_namespace(&inv, "n"));

	/* Empty things are empty inventories. */
	ASSERT(load("", &inv, &error) == 0);
	ASSERT(inv.n_workloads == 0 && inv.n_namespaces == 0);
	ASSERT(load("# nothing\n---\n", &inv, &error) == 0);
	ASSERT(inv.n_workloads == 0 && inv.n_namespaces == 0);
	ASSERT(load("namespaces:\nworkloads: []\n", &inv, &error) == 0);
	ASSERT(inv.n_workloads == 0 && inv.n_namespaces == 0);
	ASSERT(bw_inventory_load_buffer("t.yaml", NULL, 0, &inv, &error) == 0);
	ASSERT(load("namespaces:\n  - name: x\n    labels:\n", &inv, &error) == 0);
	ASSERT(inv.n_namespaces == 1 && inv.namespaces[0]->labels.n == 1);

	/* Anchors and aliases work; quoted scalars are strings. */
	ASSERT(load("workloads:\n"
		    "  - {cgroup: /x, namespace: \"123\", pod: 'true', labels: &l {app: web, v: \"1.0\"}}\n"
		    "  - {cgroup: /y, namespace: \"123\", pod: q, labels: *l}\n", &inv, &error) == 0);
	ASSERT(inv.n_workloads == 2 && inv.n_namespaces == 1);
	ASSERT(STREQ(inv.workloads[0]->pod, "true"));
	ASSERT(STREQ(bw_labels_get(&inv.workloads[1]->labels, "v"), "1.0"));
	ASSERT(STREQ(inv.namespaces[0]->name, "123"));

	/* Single letters are strings (unlike go-yaml v2's y/n booleans). */
	ASSERT(load("workloads:\n  - {cgroup: /n, namespace: n, pod: y, labels: {a: N}}\n", &inv, &error) == 0);
	ASSERT(inv.n_workloads == 1 && STREQ(inv.workloads[0]->pod, "y"));
	ASSERT(STREQ(bw_labels_get(&inv.workloads[0]->labels, "a"), "N"));

	/* error may be NULL. */
	ASSERT(load("workloads: 3\n", &inv, NULL) == -EINVAL);
	ASSERT(inv.n_workloads == 1);

	bw_inventory_clear(&inv);
}

static void test_load_errors(void) {
	/* Unknown fields, at every level. */
	ASSERT_LOAD_ERROR("workload: []\n", "t.yaml:1:1: workload: unknown field");
	ASSERT_LOAD_ERROR("namespaces:\n  - name: a\n    label: {}\n",
			  "t.yaml:3:5: namespaces[0].label: unknown field");
	ASSERT_LOAD_ERROR("workloads:\n  - cgroup: /a\n" WORKLOAD_TAIL "    image: nginx\n",
			  "t.yaml:5:5: workloads[0].image: unknown field");

	/* Wrong types. */
	ASSERT_LOAD_ERROR("- a\n", "t.yaml:1:1: document: must be a mapping, not a sequence");
	ASSERT_LOAD_ERROR("[a]: b\n", "t.yaml:1:1: document: keys must be strings, not a sequence");
	ASSERT_LOAD_ERROR("workloads: &w [*w]\n", "t.yaml:1:12: workloads[0]: must be a mapping, not a sequence");
	ASSERT_LOAD_ERROR("hello\n", "t.yaml:1:1: document: must be a mapping, not a string");
	ASSERT_LOAD_ERROR("workloads: {}\n", "t.yaml:1:12: workloads: must be a sequence, not a mapping");
	ASSERT_LOAD_ERROR("namespaces: prod\n", "t.yaml:1:13: namespaces: must be a sequence, not a string");
	ASSERT_LOAD_ERROR("workloads:\n  - /a\n", "t.yaml:2:5: workloads[0]: must be a mapping, not a string");
	ASSERT_LOAD_ERROR("workloads:\n  -\n", "t.yaml:2:4: workloads[0]: must be a mapping, not null");
	ASSERT_LOAD_ERROR("namespaces:\n  - [a]\n", "t.yaml:2:5: namespaces[0]: must be a mapping, not a sequence");
	ASSERT_LOAD_ERROR("workloads:\n  - cgroup: 42\n" WORKLOAD_TAIL,
			  "t.yaml:2:13: workloads[0].cgroup: must be a string, not an integer (quote it)");
	ASSERT_LOAD_ERROR("workloads:\n  - cgroup: [/a]\n" WORKLOAD_TAIL,
			  "t.yaml:2:13: workloads[0].cgroup: must be a string, not a sequence");
	ASSERT_LOAD_ERROR("workloads:\n  - cgroup: /a\n    namespace: a\n    pod: ~\n",
			  "t.yaml:4:10: workloads[0].pod: must be a string, not null");
	ASSERT_LOAD_ERROR("workloads:\n  - cgroup: /a\n" WORKLOAD_TAIL "    container: 1.5\n",
			  "t.yaml:5:16: workloads[0].container: must be a string, not a number (quote it)");
	ASSERT_LOAD_ERROR("workloads:\n  - cgroup: /a\n" WORKLOAD_TAIL "    labels: [app]\n",
			  "t.yaml:5:13: workloads[0].labels: must be a mapping, not a sequence");
	ASSERT_LOAD_ERROR("workloads:\n  - cgroup: /a\n" WORKLOAD_TAIL "    labels: web\n",
			  "t.yaml:5:13: workloads[0].labels: must be a mapping, not a string");
	ASSERT_LOAD_ERROR("namespaces:\n  - name: prod\n    labels: {bulwark.dev/locked: true}\n",
			  "t.yaml:3:34: namespaces[0].labels.bulwark.dev/locked: must be a string, not a boolean (quote it)");
	ASSERT_LOAD_ERROR("namespaces:\n  - name: prod\n    labels: {locked: yes}\n",
			  "t.yaml:3:22: namespaces[0].labels.locked: must be a string, not a boolean (quote it)");
	ASSERT_LOAD_ERROR("workloads:\n  - cgroup: /a\n" WORKLOAD_TAIL "    labels: {version: 2}\n",
			  "t.yaml:5:23: workloads[0].labels.version: must be a string, not an integer (quote it)");
	ASSERT_LOAD_ERROR("workloads:\n  - cgroup: /a\n" WORKLOAD_TAIL "    labels: {version: 0x1F}\n",
			  "t.yaml:5:23: workloads[0].labels.version: must be a string, not an integer (quote it)");
	ASSERT_LOAD_ERROR("workloads:\n  - cgroup: /a\n" WORKLOAD_TAIL "    labels: {ratio: .5e3}\n",
			  "t.yaml:5:21: workloads[0].labels.ratio: must be a string, not a number (quote it)");
	ASSERT_LOAD_ERROR("workloads:\n  - cgroup: /a\n" WORKLOAD_TAIL "    labels: {app: {x: y}}\n",
			  "t.yaml:5:19: workloads[0].labels.app: must be a string, not a mapping");
	ASSERT_LOAD_ERROR("workloads:\n  - cgroup: /a\n" WORKLOAD_TAIL "    labels: {app: !!binary aGk=}\n",
			  "t.yaml:5:19: workloads[0].labels.app: must be a string, not a tagged value (quote it)");
	ASSERT_LOAD_ERROR("workloads:\n  - cgroup: /a\n" WORKLOAD_TAIL "    labels: {true: x}\n",
			  "t.yaml:5:14: workloads[0].labels: label keys must be strings, not a boolean");
	ASSERT_LOAD_ERROR("workloads:\n  - cgroup: /a\n" WORKLOAD_TAIL "    labels: {\"\": x}\n",
			  "t.yaml:5:14: workloads[0].labels: label keys must not be empty");
	ASSERT_LOAD_ERROR("workloads:\n  - {[cgroup]: /a}\n",
			  "t.yaml:2:6: workloads[0]: keys must be strings, not a sequence");
	ASSERT_LOAD_ERROR("namespaces:\n  - name: \"a\\0b\"\n",
			  "t.yaml:2:11: namespaces[0].name: must not contain NUL characters");

	/* Cgroup paths. */
	ASSERT_LOAD_ERROR("workloads:\n  - cgroup: kubepods/x\n" WORKLOAD_TAIL,
			  "t.yaml:2:13: workloads[0].cgroup: must be an absolute path (start with \"/\")");
	ASSERT_LOAD_ERROR("workloads:\n  - cgroup: \"\"\n" WORKLOAD_TAIL,
			  "t.yaml:2:13: workloads[0].cgroup: must not be empty");
	ASSERT_LOAD_ERROR("workloads:\n  - cgroup: /\n" WORKLOAD_TAIL,
			  "t.yaml:2:13: workloads[0].cgroup: must name a cgroup below the root, not \"/\"");
	ASSERT_LOAD_ERROR("workloads:\n  - cgroup: /a/../../etc\n" WORKLOAD_TAIL,
			  "t.yaml:2:13: workloads[0].cgroup: must not contain \".\" or \"..\" components");
	ASSERT_LOAD_ERROR("workloads:\n  - cgroup: /a/./b\n" WORKLOAD_TAIL,
			  "t.yaml:2:13: workloads[0].cgroup: must not contain \".\" or \"..\" components");

	/* Duplicates. */
	ASSERT_LOAD_ERROR("workloads:\n"
			  "  - cgroup: /a/b\n" WORKLOAD_TAIL
			  "  - cgroup: /c\n" WORKLOAD_TAIL
			  "  - cgroup: /a//b/\n" WORKLOAD_TAIL,
			  "t.yaml:8:13: workloads[2].cgroup: duplicate cgroup \"/a//b/\", first at t.yaml:2:13");
	ASSERT_LOAD_ERROR("namespaces:\n  - name: a\n  - name: b\n  - name: a\n",
			  "t.yaml:4:11: namespaces[2].name: duplicate namespace \"a\", first at t.yaml:2:11");
	ASSERT_LOAD_ERROR("workloads:\n  - cgroup: /a\n" WORKLOAD_TAIL "    pod: q\n",
			  "t.yaml:5:5: workloads[0].pod: duplicate field, first at t.yaml:4:5");
	ASSERT_LOAD_ERROR("workloads: []\nworkloads: []\n",
			  "t.yaml:2:1: workloads: duplicate field, first at t.yaml:1:1");
	ASSERT_LOAD_ERROR("namespaces:\n  - name: a\n    labels: {x: \"1\", x: \"2\"}\n",
			  "t.yaml:3:22: namespaces[0].labels.x: duplicate label");

	/* Missing required fields, reported where the item starts. */
	ASSERT_LOAD_ERROR("workloads:\n  - namespace: a\n    pod: p\n",
			  "t.yaml:2:5: workloads[0].cgroup: missing required field");
	ASSERT_LOAD_ERROR("workloads:\n  - cgroup: /a\n    pod: p\n",
			  "t.yaml:2:5: workloads[0].namespace: missing required field");
	ASSERT_LOAD_ERROR("workloads:\n  - {cgroup: /a, namespace: a, container: c}\n",
			  "t.yaml:2:5: workloads[0].pod: missing required field");
	ASSERT_LOAD_ERROR("workloads:\n  - {}\n", "t.yaml:2:5: workloads[0].cgroup: missing required field");
	ASSERT_LOAD_ERROR("namespaces:\n  - labels: {a: b}\n",
			  "t.yaml:2:5: namespaces[0].name: missing required field");

	/* Empty strings where a name is needed. */
	ASSERT_LOAD_ERROR("workloads:\n  - {cgroup: /a, namespace: \"\", pod: p}\n",
			  "t.yaml:2:29: workloads[0].namespace: must not be empty");
	ASSERT_LOAD_ERROR("workloads:\n  - {cgroup: /a, namespace: a, pod: p, container: ''}\n",
			  "t.yaml:2:51: workloads[0].container: must not be empty");

	/* The automatic label must name the namespace. */
	ASSERT_LOAD_ERROR("namespaces:\n  - name: a\n    labels: {x: y, kubernetes.io/metadata.name: b}\n",
			  "t.yaml:3:49: namespaces[0].labels.kubernetes.io/metadata.name: must equal the namespace name \"a\"");

	/* YAML itself. */
	ASSERT_LOAD_ERROR("workloads: a: b\n", "t.yaml:1:13: yaml: mapping values are not allowed in this context");
	ASSERT_LOAD_ERROR("workloads:\n  - cgroup: /a\n   pod: p\n",
			  "t.yaml:3:4: yaml: did not find expected '-' indicator (while parsing a block collection at line 2, column 3)");
	ASSERT_LOAD_ERROR("workloads: [\n",
			  "t.yaml:2:1: yaml: did not find expected node content (while parsing a flow node at line 2, column 1)");
	ASSERT_LOAD_ERROR("workloads: []\n---\nnamespaces: []\n",
			  "t.yaml:2:1: document: only one YAML document is allowed");
	ASSERT_LOAD_ERROR("workloads: []\n---\n[\n",
			  "t.yaml:4:1: yaml: did not find expected node content (while parsing a flow node at line 4, column 1)");
	ASSERT_LOAD_ERROR("namespaces:\n  - name: \xff\n",
			  "t.yaml:2:11: yaml: invalid leading UTF-8 octet");
}

static void test_load_file(void) {
	char dir[] = "/tmp/test-inventory-XXXXXX", path[64], missing[64];
	struct bw_inventory inv = {};
	char *error = NULL;
	FILE *f;

	ASSERT(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/inv.yaml", dir);
	snprintf(missing, sizeof(missing), "%s/missing.yaml", dir);

	f = fopen(path, "we");
	ASSERT(f != NULL);
	if (!f)
		return;
	fputs("workloads:\n  - cgroup: /bulwark-test/locked\n    namespace: a\n    pod: p\n", f);
	fclose(f);

	ASSERT(bw_inventory_load(path, &inv, &error) == 0);
	ASSERT(error == NULL);
	ASSERT(inv.n_workloads == 1 && STREQ(inv.workloads[0]->cgroup, "/bulwark-test/locked"));

	/* Read errors: errno and "file: reason", inventory untouched. */
	ASSERT(bw_inventory_load(missing, &inv, &error) == -ENOENT);
	{
		char expected[128];
		snprintf(expected, sizeof(expected), "%s: No such file or directory", missing);
		ASSERT(STREQ(error, expected));
	}
	free(error);
	ASSERT(inv.n_workloads == 1);

	ASSERT(bw_inventory_load(dir, &inv, &error) == -EISDIR);
	{
		char expected[128];
		snprintf(expected, sizeof(expected), "%s: Is a directory", dir);
		ASSERT(STREQ(error, expected));
	}
	free(error);
	ASSERT(inv.n_workloads == 1);

	/* Content errors name the path as given. */
	f = fopen(path, "we");
	ASSERT(f != NULL);
	if (f) {
		fputs("workloads:\n  - cgroup: relative\n    namespace: a\n    pod: p\n", f);
		fclose(f);
	}
	ASSERT(bw_inventory_load(path, &inv, &error) == -EINVAL);
	{
		char expected[256];
		snprintf(expected, sizeof(expected),
			 "%s:2:13: workloads[0].cgroup: must be an absolute path (start with \"/\")", path);
		ASSERT(STREQ(error, expected));
	}
	free(error);
	ASSERT(inv.n_workloads == 1);

	/* Size cap: exactly BW_INVENTORY_FILE_MAX bytes load, one more do not. */
	f = fopen(path, "we");
	ASSERT(f != NULL);
	if (f) {
		fputs("workloads: []\n#", f);
		for (size_t i = strlen("workloads: []\n#"); i < BW_INVENTORY_FILE_MAX - 1; i++)
			fputc('x', f);
		fputc('\n', f);
		fclose(f);
	}
	ASSERT(bw_inventory_load(path, &inv, &error) == 0);
	ASSERT(error == NULL);
	ASSERT(inv.n_workloads == 0);
	f = fopen(path, "ae");
	ASSERT(f != NULL);
	if (f) {
		fputc('\n', f);
		fclose(f);
	}
	ASSERT(bw_inventory_load(path, &inv, &error) == -EFBIG);
	{
		char expected[256];
		snprintf(expected, sizeof(expected), "%s: larger than %u bytes", path, BW_INVENTORY_FILE_MAX);
		ASSERT(STREQ(error, expected));
	}
	free(error);

	bw_inventory_clear(&inv);
	unlink(path);
	rmdir(dir);
}

static void test_namespace_api(void) {
	struct bw_inventory inv = {};
	const struct bw_inventory_namespace *ns;
	struct bw_labels locked = LABELS(L("bulwark.dev/locked", "true"), L("team", "a"));
	struct bw_labels locked_reordered = LABELS(L("team", "a"), L("bulwark.dev/locked", "true"));
	struct bw_labels locked_auto = LABELS(L("kubernetes.io/metadata.name", "prod"), L("team", "a"),
					      L("bulwark.dev/locked", "true"));

	ASSERT(bw_inventory_add_namespace(&inv, "prod", &locked) == 0);
	ASSERT(bw_inventory_add_namespace(&inv, "prod", &locked) == -EEXIST);
	ASSERT(bw_inventory_add_namespace(&inv, "dev", NULL) == 0);
	ASSERT(inv.n_namespaces == 2);

	ns = bw_inventory_find_namespace(&inv, "prod");
	ASSERT(ns && !ns->implicit && ns->labels.n == 3);
	ASSERT(ns && STREQ(bw_labels_get(&ns->labels, "kubernetes.io/metadata.name"), "prod"));
	ASSERT(ns && ns->labels.items != locked.items);  /* copied */
	ns = bw_inventory_find_namespace(&inv, "dev");
	ASSERT(ns && ns->labels.n == 1);

	/* put: unchanged (whatever the order, with or without the automatic
	 * label written out), then changed. */
	ASSERT(bw_inventory_put_namespace(&inv, "prod", &locked) == 0);
	ASSERT(bw_inventory_put_namespace(&inv, "prod", &locked_reordered) == 0);
	ASSERT(bw_inventory_put_namespace(&inv, "prod", &locked_auto) == 0);
	ASSERT(bw_inventory_put_namespace(&inv, "prod", NULL) == 1);
	ns = bw_inventory_find_namespace(&inv, "prod");
	ASSERT(ns && ns->labels.n == 1 && bw_labels_get(&ns->labels, "team") == NULL);
	ASSERT(STREQ(inv.namespaces[0]->name, "prod"));  /* replaced in place */
	ASSERT(bw_inventory_put_namespace(&inv, "staging", &LABELS(L("a", "b"))) == 1);
	ASSERT(inv.n_namespaces == 3 && STREQ(inv.namespaces[2]->name, "staging"));

	/* Invalid input. */
	ASSERT(bw_inventory_add_namespace(&inv, "", NULL) == -EINVAL);
	ASSERT(bw_inventory_add_namespace(&inv, NULL, NULL) == -EINVAL);
	ASSERT(bw_inventory_put_namespace(&inv, "x", &LABELS(L("kubernetes.io/metadata.name", "y"))) == -EINVAL);
	ASSERT(bw_inventory_put_namespace(&inv, "x", &LABELS(L("a", "1"), L("a", "2"))) == -EINVAL);
	ASSERT(bw_inventory_put_namespace(&inv, "x", &LABELS(L("", "1"))) == -EINVAL);
	ASSERT(bw_inventory_put_namespace(&inv, "x", &LABELS(L(NULL, "1"))) == -EINVAL);
	ASSERT(bw_inventory_put_namespace(&inv, "x", &LABELS(L("a", NULL))) == -EINVAL);
	ASSERT(bw_inventory_put_namespace(NULL, "x", NULL) == -EINVAL);
	ASSERT(inv.n_namespaces == 3 && bw_inventory_find_namespace(&inv, "x") == NULL);

	ASSERT(bw_inventory_remove_namespace(&inv, "dev") == 0);
	ASSERT(bw_inventory_remove_namespace(&inv, "dev") == -ENOENT);
	ASSERT(bw_inventory_remove_namespace(&inv, "nope") == -ENOENT);
	ASSERT(bw_inventory_remove_namespace(&inv, NULL) == -ENOENT);
	ASSERT(inv.n_namespaces == 2);
	ASSERT(STREQ(inv.namespaces[0]->name, "prod") && STREQ(inv.namespaces[1]->name, "staging"));

	bw_inventory_clear(&inv);
	ASSERT(inv.n_namespaces == 0 && inv.namespaces == NULL);
}

static void test_workload_api(void) {
	struct bw_inventory inv = {};
	const struct bw_inventory_namespace *ns;
	const struct bw_inventory_workload *w, *w0;
	char cgroup[] = "/kubepods//pod1/ctr-a/";
	char pod[] = "web-1";
	struct bw_inventory_workload in = {
		.cgroup = cgroup,
		.namespace = (char *) "prod",
		.pod = pod,
		.container = (char *) "nginx",
		.labels = LABELS(L("app", "web")),
	};

	/* Adding a workload in an unknown namespace creates an implicit one. */
	ASSERT(bw_inventory_add_workload(&inv, &in) == 0);
	ASSERT(inv.n_workloads == 1 && inv.n_namespaces == 1);
	w0 = bw_inventory_find_workload(&inv, "/kubepods/pod1/ctr-a");
	ASSERT(w0 && STREQ(w0->cgroup, "/kubepods/pod1/ctr-a"));
	ASSERT(w0 && STREQ(w0->pod, "web-1") && STREQ(w0->container, "nginx"));
	ns = bw_inventory_find_namespace(&inv, "prod");
	ASSERT(ns && ns->implicit && ns->labels.n == 1);
	ASSERT(ns && STREQ(bw_labels_get(&ns->labels, BW_NAMESPACE_NAME_LABEL), "prod"));

	/* The input was copied. */
	strcpy(pod, "XXXXX");
	strcpy(cgroup, "/zzzzzzzzzzzzzzzzzzzzz");
	ASSERT(w0 && STREQ(w0->pod, "web-1"));
	strcpy(cgroup, "/kubepods/pod1/ctr-a");
	strcpy(pod, "web-1");

	/* Same cgroup, however spelled. */
	ASSERT(bw_inventory_add_workload(&inv, &in) == -EEXIST);
	in.cgroup = (char *) "/kubepods/pod1//ctr-a";
	ASSERT(bw_inventory_add_workload(&inv, &in) == -EEXIST);
	ASSERT(bw_inventory_put_workload(&inv, &in) == 0);  /* identical */
	in.cgroup = cgroup;

	/* Describing the namespace turns the implicit entry into a real one:
	 * add does not call that a duplicate. */
	ASSERT(bw_inventory_add_namespace(&inv, "prod", &LABELS(L("bulwark.dev/locked", "true"))) == 0);
	ns = bw_inventory_find_namespace(&inv, "prod");
	ASSERT(ns && !ns->implicit && ns->labels.n == 2);
	ASSERT(inv.n_namespaces == 1);

	/* A second workload; the first keeps its address. */
	struct bw_inventory_workload in2 = {
		.cgroup = (char *) "/kubepods/pod2",
		.namespace = (char *) "dev",
		.pod = (char *) "db-0",
	};
	ASSERT(bw_inventory_put_workload(&inv, &in2) == 1);
	ASSERT(inv.n_workloads == 2 && inv.n_namespaces == 2);
	ASSERT(bw_inventory_find_workload(&inv, "/kubepods/pod1/ctr-a") == w0);
	w = bw_inventory_find_workload(&inv, "/kubepods/pod2");
	ASSERT(w && w->container == NULL && w->labels.n == 0);
	ASSERT(bw_inventory_find_namespace(&inv, "dev") && bw_inventory_find_namespace(&inv, "dev")->implicit);

	/* Replacing: labels changed. */
	in2.labels = LABELS(L("app", "db"));
	ASSERT(bw_inventory_put_workload(&inv, &in2) == 1);
	ASSERT(bw_inventory_put_workload(&inv, &in2) == 0);
	w = bw_inventory_find_workload(&inv, "/kubepods/pod2");
	ASSERT(w && STREQ(bw_labels_get(&w->labels, "app"), "db"));
	ASSERT(STREQ(inv.workloads[1]->cgroup, "/kubepods/pod2"));  /* in place */

	/* Replacing with another namespace drops the implicit one it left. */
	in2.namespace = (char *) "qa";
	ASSERT(bw_inventory_put_workload(&inv, &in2) == 1);
	ASSERT(bw_inventory_find_namespace(&inv, "dev") == NULL);
	ASSERT(bw_inventory_find_namespace(&inv, "qa") && bw_inventory_find_namespace(&inv, "qa")->implicit);
	ASSERT(inv.n_namespaces == 2);

	/* Container changes count as changes too. */
	in2.container = (char *) "c";
	ASSERT(bw_inventory_put_workload(&inv, &in2) == 1);
	in2.container = NULL;
	ASSERT(bw_inventory_put_workload(&inv, &in2) == 1);

	/* Invalid workloads change nothing. */
	struct bw_inventory_workload bad = in2;
	bad.cgroup = (char *) "relative";
	ASSERT(bw_inventory_put_workload(&inv, &bad) == -EINVAL);
	bad.cgroup = (char *) "/";
	ASSERT(bw_inventory_put_workload(&inv, &bad) == -EINVAL);
	bad.cgroup = (char *) "/a/..";
	ASSERT(bw_inventory_put_workload(&inv, &bad) == -EINVAL);
	bad.cgroup = NULL;
	ASSERT(bw_inventory_put_workload(&inv, &bad) == -EINVAL);
	bad = in2;
	bad.namespace = (char *) "";
	ASSERT(bw_inventory_add_workload(&inv, &bad) == -EINVAL);
	bad.namespace = NULL;
	ASSERT(bw_inventory_add_workload(&inv, &bad) == -EINVAL);
	bad = in2;
	bad.pod = (char *) "";
	ASSERT(bw_inventory_add_workload(&inv, &bad) == -EINVAL);
	bad = in2;
	bad.container = (char *) "";
	ASSERT(bw_inventory_add_workload(&inv, &bad) == -EINVAL);
	bad = in2;
	bad.labels = LABELS(L("a", "1"), L("a", "1"));
	ASSERT(bw_inventory_put_workload(&inv, &bad) == -EINVAL);
	bad.labels = LABELS(L("a", NULL));
	ASSERT(bw_inventory_put_workload(&inv, &bad) == -EINVAL);
	ASSERT(bw_inventory_add_workload(&inv, NULL) == -EINVAL);
	ASSERT(bw_inventory_add_workload(NULL, &in2) == -EINVAL);
	ASSERT(inv.n_workloads == 2 && inv.n_namespaces == 2);
	w = bw_inventory_find_workload(&inv, "/kubepods/pod2");
	ASSERT(w && STREQ(w->namespace, "qa") && w->container == NULL);

	/* Removing a described namespace still in use makes it implicit. */
	ASSERT(bw_inventory_remove_namespace(&inv, "prod") == 0);
	ns = bw_inventory_find_namespace(&inv, "prod");
	ASSERT(ns && ns->implicit && ns->labels.n == 1);
	ASSERT(ns && bw_labels_get(&ns->labels, "bulwark.dev/locked") == NULL);
	/* An implicit namespace cannot be removed: it was never added. */
	ASSERT(bw_inventory_remove_namespace(&inv, "prod") == -ENOENT);
	ASSERT(bw_inventory_remove_namespace(&inv, "qa") == -ENOENT);
	ASSERT(inv.n_namespaces == 2);

	/* Removing workloads drops implicit namespaces nobody names... */
	ASSERT(bw_inventory_remove_workload(&inv, "/kubepods/pod1/ctr-a/") == 0);
	ASSERT(bw_inventory_remove_workload(&inv, "/kubepods/pod1/ctr-a") == -ENOENT);
	ASSERT(bw_inventory_remove_workload(&inv, NULL) == -ENOENT);
	ASSERT(bw_inventory_find_namespace(&inv, "prod") == NULL);
	ASSERT(inv.n_workloads == 1 && inv.n_namespaces == 1);

	/* ...but keeps described ones. */
	ASSERT(bw_inventory_put_namespace(&inv, "qa", NULL) == 1);  /* implicit -> described */
	ASSERT(!bw_inventory_find_namespace(&inv, "qa")->implicit);
	ASSERT(bw_inventory_remove_workload(&inv, "/kubepods/pod2") == 0);
	ASSERT(inv.n_workloads == 0 && inv.n_namespaces == 1);
	ASSERT(bw_inventory_find_namespace(&inv, "qa") != NULL);
	ASSERT(bw_inventory_remove_namespace(&inv, "qa") == 0);
	ASSERT(inv.n_namespaces == 0);

	/* Order is kept across removals in the middle. */
	for (int i = 0; i < 5; i++) {
		char c[16], p[16];
		struct bw_inventory_workload x = { .cgroup = c, .namespace = (char *) "n", .pod = p };

		snprintf(c, sizeof(c), "/w%d", i);
		snprintf(p, sizeof(p), "p%d", i);
		ASSERT(bw_inventory_add_workload(&inv, &x) == 0);
	}
	ASSERT(bw_inventory_remove_workload(&inv, "/w2") == 0);
	ASSERT(inv.n_workloads == 4);
	ASSERT(STREQ(inv.workloads[0]->cgroup, "/w0") && STREQ(inv.workloads[1]->cgroup, "/w1") &&
	       STREQ(inv.workloads[2]->cgroup, "/w3") && STREQ(inv.workloads[3]->cgroup, "/w4"));
	ASSERT(inv.n_namespaces == 1);

	bw_inventory_clear(&inv);
	ASSERT(inv.n_workloads == 0 && inv.workloads == NULL && inv.n_namespaces == 0);
}

static void test_selection(void) {
	static const char text[] =
		"namespaces:\n"
		"  - name: prod\n"
		"    labels: {bulwark.dev/locked: \"true\", env: prod}\n"
		"  - name: dev\n"
		"    labels: {env: dev}\n"
		"workloads:\n"
		"  - {cgroup: /t/prod-web, namespace: prod, pod: web, labels: {app: web}}\n"
		"  - {cgroup: /t/prod-db, namespace: prod, pod: db, labels: {app: db}}\n"
		"  - {cgroup: /t/dev-web, namespace: dev, pod: web, labels: {app: web}}\n"
		"  - {cgroup: /t/other-web, namespace: other, pod: web, labels: {app: web}}\n";
	const struct bw_inventory_workload *prod_web, *prod_db, *dev_web, *other_web;
	struct bw_inventory inv = {};
	char *error = NULL;

	ASSERT(load(text, &inv, &error) == 0);
	ASSERT(error == NULL);
	prod_web = bw_inventory_find_workload(&inv, "/t/prod-web");
	prod_db = bw_inventory_find_workload(&inv, "/t/prod-db");
	dev_web = bw_inventory_find_workload(&inv, "/t/dev-web");
	other_web = bw_inventory_find_workload(&inv, "/t/other-web");
	ASSERT(prod_web && prod_db && dev_web && other_web);
	if (!prod_web || !prod_db || !dev_web || !other_web)
		goto finish;

	/* Cluster policy, empty selectors: everything. */
	struct bw_policy all = { .kind = BW_KIND_CLUSTER, .name = (char *) "all" };
	ASSERT(bw_policy_selects_workload(&all, &inv, prod_web));
	ASSERT(bw_policy_selects_workload(&all, &inv, prod_db));
	ASSERT(bw_policy_selects_workload(&all, &inv, dev_web));
	ASSERT(bw_policy_selects_workload(&all, &inv, other_web));

	/* namespaceSelector on a described label. */
	struct bw_policy locked = {
		.kind = BW_KIND_CLUSTER,
		.namespace_selector = { .match_labels = LABELS(L("bulwark.dev/locked", "true")) },
	};
	ASSERT(bw_policy_selects_workload(&locked, &inv, prod_web));
	ASSERT(bw_policy_selects_workload(&locked, &inv, prod_db));
	ASSERT(!bw_policy_selects_workload(&locked, &inv, dev_web));
	ASSERT(!bw_policy_selects_workload(&locked, &inv, other_web));

	/* namespaceSelector AND podSelector. */
	struct bw_policy locked_web = {
		.kind = BW_KIND_CLUSTER,
		.namespace_selector = { .match_labels = LABELS(L("bulwark.dev/locked", "true")) },
		.pod_selector = { .match_labels = LABELS(L("app", "web")) },
	};
	ASSERT(bw_policy_selects_workload(&locked_web, &inv, prod_web));
	ASSERT(!bw_policy_selects_workload(&locked_web, &inv, prod_db));
	ASSERT(!bw_policy_selects_workload(&locked_web, &inv, dev_web));

	/* podSelector only: every namespace. */
	struct bw_policy web = {
		.kind = BW_KIND_CLUSTER,
		.pod_selector = { EXPRS(EXPR("app", BW_SEL_IN, "web")) },
	};
	ASSERT(bw_policy_selects_workload(&web, &inv, prod_web));
	ASSERT(!bw_policy_selects_workload(&web, &inv, prod_db));
	ASSERT(bw_policy_selects_workload(&web, &inv, dev_web));
	ASSERT(bw_policy_selects_workload(&web, &inv, other_web));

	/* The automatic label selects namespaces by name, described or not. */
	struct bw_policy by_name = {
		.kind = BW_KIND_CLUSTER,
		.namespace_selector = { EXPRS(EXPR("kubernetes.io/metadata.name", BW_SEL_IN, "dev", "other")) },
	};
	ASSERT(!bw_policy_selects_workload(&by_name, &inv, prod_web));
	ASSERT(bw_policy_selects_workload(&by_name, &inv, dev_web));
	ASSERT(bw_policy_selects_workload(&by_name, &inv, other_web));

	/* NotIn on a namespace label: namespaces without it match. */
	struct bw_policy not_prod = {
		.kind = BW_KIND_CLUSTER,
		.namespace_selector = { EXPRS(EXPR("env", BW_SEL_NOT_IN, "prod")) },
	};
	ASSERT(!bw_policy_selects_workload(&not_prod, &inv, prod_web));
	ASSERT(bw_policy_selects_workload(&not_prod, &inv, dev_web));
	ASSERT(bw_policy_selects_workload(&not_prod, &inv, other_web));

	/* A workload from outside the inventory (or no inventory) still has a
	 * namespace carrying the automatic label, and nothing else. */
	struct bw_inventory_workload stray = {
		.cgroup = (char *) "/t/stray", .namespace = (char *) "dev", .pod = (char *) "s",
		.labels = LABELS(L("app", "web")),
	};
	struct bw_inventory_workload stray_prod = stray;
	stray_prod.namespace = (char *) "prod";
	ASSERT(bw_policy_selects_workload(&by_name, NULL, &stray));
	ASSERT(bw_policy_selects_workload(&not_prod, &inv, &stray));         /* dev is known: env=dev */
	ASSERT(!bw_policy_selects_workload(&not_prod, &inv, &stray_prod));   /* prod is known: env=prod */
	ASSERT(bw_policy_selects_workload(&not_prod, NULL, &stray_prod));    /* unknown: no env label */
	ASSERT(!bw_policy_selects_workload(&locked, NULL, &stray_prod));
	ASSERT(bw_policy_selects_workload(&locked, &inv, &stray_prod));      /* prod is known */
	ASSERT(bw_policy_selects_workload(&all, NULL, &stray));

	/* Namespaced policy: its namespace only, then podSelector. */
	struct bw_policy ns_all = { .kind = BW_KIND_NAMESPACED, .namespace = (char *) "prod" };
	ASSERT(bw_policy_selects_workload(&ns_all, &inv, prod_web));
	ASSERT(bw_policy_selects_workload(&ns_all, &inv, prod_db));
	ASSERT(!bw_policy_selects_workload(&ns_all, &inv, dev_web));
	ASSERT(!bw_policy_selects_workload(&ns_all, &inv, other_web));

	struct bw_policy ns_web = {
		.kind = BW_KIND_NAMESPACED,
		.namespace = (char *) "prod",
		.pod_selector = { .match_labels = LABELS(L("app", "web")) },
	};
	ASSERT(bw_policy_selects_workload(&ns_web, &inv, prod_web));
	ASSERT(!bw_policy_selects_workload(&ns_web, &inv, prod_db));
	ASSERT(!bw_policy_selects_workload(&ns_web, &inv, dev_web));

	/* A namespaced policy ignores a namespaceSelector (it cannot have one). */
	struct bw_policy ns_with_nssel = {
		.kind = BW_KIND_NAMESPACED,
		.namespace = (char *) "dev",
		.namespace_selector = { .match_labels = LABELS(L("env", "prod")) },
	};
	ASSERT(bw_policy_selects_workload(&ns_with_nssel, &inv, dev_web));
	struct bw_policy ns_none = { .kind = BW_KIND_NAMESPACED };
	ASSERT(!bw_policy_selects_workload(&ns_none, &inv, prod_web));
	struct bw_policy ns_case = { .kind = BW_KIND_NAMESPACED, .namespace = (char *) "Prod" };
	ASSERT(!bw_policy_selects_workload(&ns_case, &inv, prod_web));

	/* Host policies never select pods, even covering their cgroups. */
	char *paths[] = { (char *) "/" , (char *) "/t" };
	struct bw_policy host = { .kind = BW_KIND_HOST, .cgroup_paths = paths, .n_cgroup_paths = 2 };
	ASSERT(!bw_policy_selects_workload(&host, &inv, prod_web));
	ASSERT(!bw_policy_selects_workload(&host, &inv, other_web));

	/* Unknown kind and NULLs. */
	struct bw_policy unknown = { .kind = (enum bw_policy_kind) 42 };
	ASSERT(!bw_policy_selects_workload(&unknown, &inv, prod_web));
	ASSERT(!bw_policy_selects_workload(NULL, &inv, prod_web));
	ASSERT(!bw_policy_selects_workload(&all, &inv, NULL));

finish:
	bw_inventory_clear(&inv);
}

static void test_cgroup_paths(void) {
	ASSERT(bw_cgroup_path_has_prefix("/system.slice/nginx.service", "/system.slice"));
	ASSERT(bw_cgroup_path_has_prefix("/system.slice", "/system.slice"));
	ASSERT(!bw_cgroup_path_has_prefix("/system.slicex", "/system.slice"));
	ASSERT(!bw_cgroup_path_has_prefix("/system.slicex/a", "/system.slice"));
	ASSERT(!bw_cgroup_path_has_prefix("/system", "/system.slice"));
	ASSERT(!bw_cgroup_path_has_prefix("/system.slice", "/system.slice/nginx.service"));
	ASSERT(!bw_cgroup_path_has_prefix("/user.slice/system.slice", "/system.slice"));
	ASSERT(bw_cgroup_path_has_prefix("/a/b/c", "/a/b"));
	ASSERT(!bw_cgroup_path_has_prefix("/a/bc", "/a/b"));
	ASSERT(!bw_cgroup_path_has_prefix("/a/b", "/a/bc"));
	ASSERT(bw_cgroup_path_has_prefix("/a/b/c", "/a"));
	/* The root covers everything. */
	ASSERT(bw_cgroup_path_has_prefix("/system.slice", "/"));
	ASSERT(bw_cgroup_path_has_prefix("/", "/"));
	ASSERT(!bw_cgroup_path_has_prefix("/", "/a"));
	/* Repeated and trailing slashes do not matter. */
	ASSERT(bw_cgroup_path_has_prefix("/system.slice/nginx.service", "/system.slice/"));
	ASSERT(bw_cgroup_path_has_prefix("//system.slice//nginx.service/", "/system.slice"));
	ASSERT(bw_cgroup_path_has_prefix("/system.slice/", "//system.slice"));
	ASSERT(!bw_cgroup_path_has_prefix("/system.slicex/", "/system.slice/"));
	/* Relative, empty or NULL paths are never prefixes nor prefixed. */
	ASSERT(!bw_cgroup_path_has_prefix("system.slice/a", "system.slice"));
	ASSERT(!bw_cgroup_path_has_prefix("/system.slice/a", "system.slice"));
	ASSERT(!bw_cgroup_path_has_prefix("system.slice/a", "/system.slice"));
	ASSERT(!bw_cgroup_path_has_prefix("/a", ""));
	ASSERT(!bw_cgroup_path_has_prefix("", "/"));
	ASSERT(!bw_cgroup_path_has_prefix(NULL, "/"));
	ASSERT(!bw_cgroup_path_has_prefix("/a", NULL));
	/* Case-sensitive, byte-wise. */
	ASSERT(!bw_cgroup_path_has_prefix("/System.slice/a", "/system.slice"));

	ASSERT(bw_cgroup_path_check("/a") == NULL);
	ASSERT(bw_cgroup_path_check("/kubepods.slice/kubepods-pod1.slice/cri-containerd-abc.scope") == NULL);
	ASSERT(bw_cgroup_path_check("//a//b/") == NULL);
	ASSERT(bw_cgroup_path_check("/a/.hidden/..x/x..") == NULL);  /* only exact "." and ".." */
	ASSERT(STREQ(bw_cgroup_path_check(NULL), "must not be empty"));
	ASSERT(STREQ(bw_cgroup_path_check(""), "must not be empty"));
	ASSERT(STREQ(bw_cgroup_path_check("a/b"), "must be an absolute path (start with \"/\")"));
	ASSERT(STREQ(bw_cgroup_path_check("/"), "must name a cgroup below the root, not \"/\""));
	ASSERT(STREQ(bw_cgroup_path_check("///"), "must name a cgroup below the root, not \"/\""));
	ASSERT(STREQ(bw_cgroup_path_check("/a/.."), "must not contain \".\" or \"..\" components"));
	ASSERT(STREQ(bw_cgroup_path_check("/./a"), "must not contain \".\" or \"..\" components"));
	ASSERT(STREQ(bw_cgroup_path_check("/a/../b"), "must not contain \".\" or \"..\" components"));

	/* Length: exactly the maximum is fine, one more byte is not. */
	char *longest = malloc(BW_CGROUP_PATH_MAX + 2);
	ASSERT(longest != NULL);
	if (longest) {
		memset(longest, 'a', BW_CGROUP_PATH_MAX + 1);
		longest[0] = '/';
		longest[BW_CGROUP_PATH_MAX] = '\0';
		ASSERT(bw_cgroup_path_check(longest) == NULL);
		longest[BW_CGROUP_PATH_MAX] = 'a';
		longest[BW_CGROUP_PATH_MAX + 1] = '\0';
		ASSERT(STREQ(bw_cgroup_path_check(longest), "must be at most 4095 bytes long"));
		free(longest);
	}
}

int main(void) {
	test_load_example();
	test_load_variants();
	test_load_errors();
	test_load_file();
	test_namespace_api();
	test_workload_api();
	test_selection();
	test_cgroup_paths();

	return bw_test_summary();
}
