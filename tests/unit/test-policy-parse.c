/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the policy document parser (agent/policy-parse.c): every
 * kind with every field, and every kind of bad input with the exact message
 * (file, line, column, field and reason) it must produce, checking each time
 * that the other documents of the same file still load.
 *
 * Plain C, no framework: prints "N passed, N failed" and exits non-zero when
 * anything failed.
 */
#include <linux/types.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bulwark_abi.h"
#include "policy.h"
#include "util.h"

#include "bw-test.h"

/* Like ASSERT for strings, and shows both when they differ. */
#define ASSERT_STREQ(got, want) assert_streq(__FILE__, __LINE__, #got, (got), (want))

static void assert_streq(const char *file, int line, const char *expr, const char *got, const char *want)
{
	if (got && want && strcmp(got, want) == 0) {
		passed++;
		return;
	}
	if (!got && !want) {
		passed++;
		return;
	}
	failed++;
	fprintf(stderr, "%s:%d: assertion failed: %s\n    got:  %s\n    want: %s\n", file, line, expr,
		got ? got : "(null)", want ? want : "(null)");
}

/* ---- building blocks of test documents ---------------------------------- */

#define API "apiVersion: bulwark.dev/v1alpha1\n"

/* Lines 1-6; spec: is line 6, so the first spec field is on line 7. */
#define NS_HEAD API "kind: BulwarkPolicy\nmetadata:\n  name: p\n  namespace: prod\nspec:\n"
/* Lines 1-5; spec: is line 5. */
#define CL_HEAD API "kind: ClusterBulwarkPolicy\nmetadata:\n  name: p\nspec:\n"
#define HOST_HEAD API "kind: HostBulwarkPolicy\nmetadata:\n  name: h\nspec:\n"
/* With "mode: Block": the next line is 8 (NS) or 7 (cluster, host). */
#define NS_SPEC NS_HEAD "  mode: Block\n"
#define CL_SPEC CL_HEAD "  mode: Block\n"
#define HOST_SPEC HOST_HEAD "  mode: Block\n"

/* Every bad document is put between these two, to show that one rejected
 * document does not take the others with it. */
static const char good_before[] = API "kind: ClusterBulwarkPolicy\n"
				      "metadata:\n"
				      "  name: before\n"
				      "spec:\n"
				      "  mode: Audit\n"
				      "---\n";
#define BEFORE_LINES 7
static const char good_after[] = "---\n" API "kind: ClusterBulwarkPolicy\n"
				 "metadata:\n"
				 "  name: after\n"
				 "spec:\n"
				 "  mode: Audit\n";

static char *concat3(const char *a, const char *b, const char *c)
{
	return strprintf("%s%s%s", a, b, c);
}

/* The diagnostics of the last expect_bad(), for extra checks. */
static struct bw_diags last;

/*
 * Parses good_before + doc + good_after as "test.yaml" and checks that the
 * bad document gives exactly one diagnostic, formatted as
 * "test.yaml:LINE:COL: FIELD: REASON" with LINE counted within doc, and
 * that both good documents load.
 */
#define EXPECT_BAD(doc, line, col, field, reason) expect_bad(__LINE__, doc, line, col, field, reason)

static void expect_bad(int src_line, const char *doc, unsigned line, unsigned col, const char *field,
		       const char *reason)
{
	struct bw_policy_list out = { 0 };
	_cleanup_free_ char *buf = concat3(good_before, doc, good_after);
	_cleanup_free_ char *want = NULL, *got = NULL;
	int r;

	bw_diags_clear(&last);
	if (field && field[0])
		want = strprintf("test.yaml:%u:%u: %s: %s", line + BEFORE_LINES, col, field, reason);
	else
		want = strprintf("test.yaml:%u:%u: %s", line + BEFORE_LINES, col, reason);

	r = bw_policy_parse_buffer("test.yaml", buf, strlen(buf), &out, &last);
	if (last.n > 0)
		got = bw_diag_format(&last.items[0]);

	if (r == 0 && last.n == 1 && got && streq(got, want) && out.n == 2 && streq(out.items[0]->name, "before") &&
	    streq(out.items[1]->name, "after") && last.items[0].doc_index == 1) {
		passed++;
	} else {
		failed++;
		fprintf(stderr, "%s:%d: bad document not reported as expected (r=%d, %zu diags, %zu loaded)\n    got:  %s\n    want: %s\n",
			__FILE__, src_line, r, last.n, out.n, got ? got : "(none)", want);
		for (size_t i = 1; i < last.n; i++) {
			char *s = bw_diag_format(&last.items[i]);
			fprintf(stderr, "    also: %s\n", s);
			free(s);
		}
	}
	bw_policy_list_clear(&out);
}

/* Parses a buffer that must load without any diagnostic. */
static struct bw_policy_list parse_ok(int src_line, const char *buf, size_t want_n)
{
	struct bw_policy_list out = { 0 };
	struct bw_diags diags = { 0 };
	int r = bw_policy_parse_buffer("ok.yaml", buf, strlen(buf), &out, &diags);

	if (r == 0 && diags.n == 0 && out.n == want_n)
		passed++;
	else {
		failed++;
		fprintf(stderr, "%s:%d: valid input rejected (r=%d, %zu loaded, want %zu)\n", __FILE__, src_line, r,
			out.n, want_n);
		for (size_t i = 0; i < diags.n; i++) {
			char *s = bw_diag_format(&diags.items[i]);
			fprintf(stderr, "    %s\n", s);
			free(s);
		}
	}
	bw_diags_clear(&diags);
	return out;
}
#define PARSE_OK(buf, n) parse_ok(__LINE__, buf, n)

static bool addr_is(const struct bw_net_rule *r, int family, const char *text)
{
	uint8_t want[16] = { 0 };

	if (inet_pton(family, text, want) != 1)
		return false;
	return r->family == family && memcmp(r->addr, want, sizeof(want)) == 0;
}

/* ---- valid documents ---------------------------------------------------- */

static void test_cluster_full(void)
{
	static const char doc[] =
		"# a comment before the first document\n"
		API
		"kind: ClusterBulwarkPolicy\n"
		"metadata:\n"
		"  name: deny-metadata.v2\n"
		"  labels: {team: sec}\n"
		"spec:\n"
		"  mode: Audit\n"
		"  namespaceSelector:\n"
		"    matchLabels:\n"
		"      env: prod\n"
		"      example.com/tier: \"\"\n"
		"    matchExpressions:\n"
		"      - {key: kubernetes.io/metadata.name, operator: NotIn, values: [kube-system, kube-public]}\n"
		"  podSelector:\n"
		"    matchExpressions:\n"
		"      - key: app\n"
		"        operator: In\n"
		"        values: [web, api]\n"
		"      - {key: debug, operator: DoesNotExist}\n"
		"      - {key: canary, operator: Exists, values: []}\n"
		"  exec:\n"
		"    deny:\n"
		"      - path: /bin/sh\n"
		"      - prefix: /tmp/\n"
		"    allow:\n"
		"      - prefix: /\n"
		"  files:\n"
		"    deny:\n"
		"      - {path: /etc/shadow, access: [read]}\n"
		"      - {prefix: /etc/, access: [write]}\n"
		"      - {prefix: /proc/sys/}\n"
		"    allow:\n"
		"      - {prefix: /app/, access: [write, read]}\n"
		"  network:\n"
		"    deny:\n"
		"      - cidr: 169.254.169.254/32\n"
		"        ports: [80, \"8000-8999\", '443']\n"
		"        protocol: TCP\n"
		"      - cidr: fd00::/8\n"
		"        protocol: UDP\n"
		"      - cidr: 10.1.2.3\n"
		"      - cidr: \"2001:db8::1\"\n"
		"        protocol: any\n"
		"    allow:\n"
		"      - {cidr: 0.0.0.0/0, ports: [53, 1-65535]}\n";
	struct bw_policy_list l = PARSE_OK(doc, 1);
	const struct bw_policy *p;
	const struct bw_selector *s;

	if (l.n != 1)
		goto out;
	p = l.items[0];
	ASSERT(p->kind == BW_KIND_CLUSTER);
	ASSERT_STREQ(p->name, "deny-metadata.v2");
	ASSERT(p->namespace == NULL);
	ASSERT(p->mode == BW_MODE_AUDIT);
	ASSERT_STREQ(p->file, "ok.yaml");
	ASSERT(p->pos.line == 2 && p->pos.column == 1);
	ASSERT(p->name_pos.line == 5 && p->name_pos.column == 9);
	ASSERT(p->doc_index == 0);
	ASSERT(p->n_cgroup_paths == 0 && p->cgroup_paths == NULL);

	s = &p->namespace_selector;
	ASSERT(s->match_labels.n == 2);
	if (s->match_labels.n == 2) {
		ASSERT_STREQ(s->match_labels.items[0].key, "env");
		ASSERT_STREQ(s->match_labels.items[0].value, "prod");
		ASSERT_STREQ(s->match_labels.items[1].key, "example.com/tier");
		ASSERT_STREQ(s->match_labels.items[1].value, "");
	}
	ASSERT(s->n_exprs == 1);
	if (s->n_exprs == 1) {
		ASSERT_STREQ(s->exprs[0].key, "kubernetes.io/metadata.name");
		ASSERT(s->exprs[0].op == BW_SEL_NOT_IN);
		ASSERT(s->exprs[0].n_values == 2);
		if (s->exprs[0].n_values == 2) {
			ASSERT_STREQ(s->exprs[0].values[0], "kube-system");
			ASSERT_STREQ(s->exprs[0].values[1], "kube-public");
		}
	}

	s = &p->pod_selector;
	ASSERT(s->match_labels.n == 0);
	ASSERT(s->n_exprs == 3);
	if (s->n_exprs == 3) {
		ASSERT(s->exprs[0].op == BW_SEL_IN && s->exprs[0].n_values == 2);
		ASSERT_STREQ(s->exprs[0].values[1], "api");
		ASSERT(s->exprs[1].op == BW_SEL_DOES_NOT_EXIST && s->exprs[1].n_values == 0);
		ASSERT_STREQ(s->exprs[1].key, "debug");
		ASSERT(s->exprs[2].op == BW_SEL_EXISTS && s->exprs[2].n_values == 0);
	}

	ASSERT(p->exec_deny.n == 2);
	if (p->exec_deny.n == 2) {
		ASSERT(!p->exec_deny.items[0].is_prefix);
		ASSERT_STREQ(p->exec_deny.items[0].path, "/bin/sh");
		ASSERT(p->exec_deny.items[0].access == 0);
		ASSERT(p->exec_deny.items[0].pos.line == 24 && p->exec_deny.items[0].pos.column == 9);
		ASSERT(p->exec_deny.items[0].pos.file == p->file);
		ASSERT(p->exec_deny.items[1].is_prefix);
		ASSERT_STREQ(p->exec_deny.items[1].path, "/tmp/");
	}
	ASSERT(p->exec_allow.n == 1 && p->exec_allow.items[0].is_prefix);
	ASSERT(p->exec_allow.n == 1 && streq(p->exec_allow.items[0].path, "/"));

	ASSERT(p->files_deny.n == 3);
	if (p->files_deny.n == 3) {
		ASSERT(!p->files_deny.items[0].is_prefix && p->files_deny.items[0].access == BW_ACCESS_READ);
		ASSERT_STREQ(p->files_deny.items[0].path, "/etc/shadow");
		ASSERT(p->files_deny.items[1].is_prefix && p->files_deny.items[1].access == BW_ACCESS_WRITE);
		ASSERT(p->files_deny.items[2].access == BW_ACCESS_ALL);
		ASSERT(p->files_deny.items[2].pos.line == 32);
	}
	ASSERT(p->files_allow.n == 1 && p->files_allow.items[0].access == BW_ACCESS_ALL);

	ASSERT(p->net_deny.n == 4);
	if (p->net_deny.n == 4) {
		const struct bw_net_rule *r = p->net_deny.items;

		ASSERT(addr_is(&r[0], AF_INET, "169.254.169.254"));
		ASSERT(r[0].addr[0] == 169 && r[0].addr[3] == 254 && r[0].addr[4] == 0);
		ASSERT(r[0].prefix_len == 32);
		ASSERT(r[0].protocol == BW_PROTOCOL_TCP);
		ASSERT_STREQ(r[0].cidr, "169.254.169.254/32");
		ASSERT(r[0].n_ports == 3);
		if (r[0].n_ports == 3) {
			ASSERT(r[0].ports[0].lo == 80 && r[0].ports[0].hi == 80);
			ASSERT(r[0].ports[1].lo == 8000 && r[0].ports[1].hi == 8999);
			ASSERT(r[0].ports[2].lo == 443 && r[0].ports[2].hi == 443);
		}
		ASSERT(r[0].pos.line == 37 && r[0].pos.column == 9);

		ASSERT(addr_is(&r[1], AF_INET6, "fd00::"));
		ASSERT(r[1].addr[0] == 0xfd && r[1].addr[1] == 0);
		ASSERT(r[1].prefix_len == 8);
		ASSERT(r[1].protocol == BW_PROTOCOL_UDP);
		ASSERT(r[1].n_ports == 0 && r[1].ports == NULL);

		/* Without "/len": one host. */
		ASSERT(addr_is(&r[2], AF_INET, "10.1.2.3") && r[2].prefix_len == 32);
		ASSERT(r[2].protocol == BW_PROTOCOL_ANY);
		ASSERT_STREQ(r[2].cidr, "10.1.2.3");
		ASSERT(addr_is(&r[3], AF_INET6, "2001:db8::1") && r[3].prefix_len == 128);
		ASSERT(r[3].protocol == BW_PROTOCOL_ANY);
	}
	ASSERT(p->net_allow.n == 1);
	if (p->net_allow.n == 1) {
		const struct bw_net_rule *r = p->net_allow.items;

		ASSERT(addr_is(&r[0], AF_INET, "0.0.0.0") && r[0].prefix_len == 0);
		ASSERT(r[0].n_ports == 2);
		if (r[0].n_ports == 2)
			ASSERT(r[0].ports[1].lo == 1 && r[0].ports[1].hi == 65535);
	}
out:
	bw_policy_list_clear(&l);
}

static void test_namespaced_and_host(void)
{
	static const char doc[] =
		API
		"kind: BulwarkPolicy\n"
		"metadata:\n"
		"  name: web-lockdown\n"
		"  namespace: shop-1\n"
		"spec:\n"
		"  mode: Block\n"
		"  podSelector:\n"
		"    matchLabels: {app: web, \"app.kubernetes.io/version\": v1.2_3}\n"
		"  exec:\n"
		"    allow:\n"
		"      - prefix: /usr/\n"
		"      - path: /app/server\n"
		"---\n"
		"# only a comment: an empty document, skipped\n"
		"---\n"
		API
		"kind: HostBulwarkPolicy\n"
		"metadata:\n"
		"  name: nginx\n"
		"spec:\n"
		"  mode: Block\n"
		"  cgroupPaths:\n"
		"    - /system.slice/nginx.service\n"
		"    - /\n"
		"  files:\n"
		"    deny:\n"
		"      - {prefix: /etc/nginx/, access: [write]}\n"
		"  network:\n"
		"    deny:\n"
		"      - {cidr: 169.254.0.0/16}\n";
	struct bw_policy_list l = PARSE_OK(doc, 2);
	const struct bw_policy *p;

	if (l.n != 2)
		goto out;
	p = l.items[0];
	ASSERT(p->kind == BW_KIND_NAMESPACED);
	ASSERT_STREQ(p->name, "web-lockdown");
	ASSERT_STREQ(p->namespace, "shop-1");
	ASSERT(p->mode == BW_MODE_BLOCK);
	ASSERT(p->pod_selector.match_labels.n == 2);
	ASSERT(p->pod_selector.match_labels.n == 2 &&
	       streq(p->pod_selector.match_labels.items[1].key, "app.kubernetes.io/version") &&
	       streq(p->pod_selector.match_labels.items[1].value, "v1.2_3"));
	ASSERT(p->namespace_selector.match_labels.n == 0 && p->namespace_selector.n_exprs == 0);
	ASSERT(p->exec_allow.n == 2 && p->exec_deny.n == 0);

	p = l.items[1];
	ASSERT(p->kind == BW_KIND_HOST);
	ASSERT_STREQ(p->name, "nginx");
	ASSERT(p->namespace == NULL);
	/* Documents are counted from 0, empty ones included. */
	ASSERT(p->doc_index == 2);
	ASSERT(p->pos.line == 17);
	ASSERT(p->n_cgroup_paths == 2);
	if (p->n_cgroup_paths == 2) {
		ASSERT_STREQ(p->cgroup_paths[0], "/system.slice/nginx.service");
		ASSERT_STREQ(p->cgroup_paths[1], "/");
	}
	ASSERT(p->files_deny.n == 1 && p->files_deny.items[0].access == BW_ACCESS_WRITE);
	ASSERT(p->net_deny.n == 1 && p->net_deny.items[0].prefix_len == 16);
out:
	bw_policy_list_clear(&l);
}

/* The shape of an object read back from the API server: JSON, with
 * metadata and status fields that the parser must ignore. */
static void test_json_from_api(void)
{
	static const char doc[] =
		"{\n"
		"\t\"apiVersion\": \"bulwark.dev/v1alpha1\",\n"
		"\t\"kind\": \"BulwarkPolicy\",\n"
		"\t\"metadata\": {\n"
		"\t\t\"annotations\": {\"kubectl.kubernetes.io/last-applied-configuration\": \"{\\\"x\\\":1}\\n\"},\n"
		"\t\t\"creationTimestamp\": \"2024-05-01T10:00:00Z\",\n"
		"\t\t\"generation\": 3,\n"
		"\t\t\"labels\": {\"team\": \"sec\"},\n"
		"\t\t\"managedFields\": [{\"apiVersion\": \"bulwark.dev/v1alpha1\", \"fieldsType\": \"FieldsV1\",\n"
		"\t\t\t\"fieldsV1\": {\"f:spec\": {\".\": {}, \"f:mode\": {}}}, \"manager\": \"kubectl\",\n"
		"\t\t\t\"operation\": \"Update\", \"time\": \"2024-05-01T10:00:00Z\"}],\n"
		"\t\t\"name\": \"from-api\",\n"
		"\t\t\"namespace\": \"default\",\n"
		"\t\t\"resourceVersion\": \"12345\",\n"
		"\t\t\"uid\": \"8d4e7c1a-0000-4000-8000-000000000000\"\n"
		"\t},\n"
		"\t\"spec\": {\n"
		"\t\t\"mode\": \"Audit\",\n"
		"\t\t\"podSelector\": {},\n"
		"\t\t\"network\": {\"deny\": [{\"cidr\": \"fd00::/8\", \"ports\": [443, \"8080-8081\"], \"protocol\": \"TCP\"}]}\n"
		"\t},\n"
		"\t\"status\": {\"conditions\": [{\"type\": \"Ready\", \"status\": \"True\"}], \"observedGeneration\": 3}\n"
		"}\n";
	struct bw_policy_list l = PARSE_OK(doc, 1);

	if (l.n == 1) {
		const struct bw_policy *p = l.items[0];

		ASSERT_STREQ(p->name, "from-api");
		ASSERT_STREQ(p->namespace, "default");
		ASSERT(p->mode == BW_MODE_AUDIT);
		ASSERT(p->net_deny.n == 1);
		if (p->net_deny.n == 1) {
			ASSERT(p->net_deny.items[0].n_ports == 2);
			ASSERT(p->net_deny.items[0].pos.line == 20);
			ASSERT(p->net_deny.items[0].n_ports == 2 && p->net_deny.items[0].ports[1].lo == 8080 &&
			       p->net_deny.items[0].ports[1].hi == 8081);
		}
	}
	bw_policy_list_clear(&l);
}

/* Nulls mean "absent" for optional fields, as in Kubernetes; empty
 * documents and files are fine. */
static void test_nulls_and_empty(void)
{
	struct bw_policy_list l;

	l = PARSE_OK(CL_SPEC "  podSelector:\n  namespaceSelector: {}\n  exec:\n  files: {deny: ~}\n"
			     "  network: {deny: [{cidr: 10.0.0.0/8, ports: null, protocol: null}]}\n",
		     1);
	if (l.n == 1) {
		ASSERT(l.items[0]->net_deny.n == 1 && l.items[0]->net_deny.items[0].n_ports == 0);
		ASSERT(l.items[0]->net_deny.n == 1 && l.items[0]->net_deny.items[0].protocol == BW_PROTOCOL_ANY);
		ASSERT(l.items[0]->files_deny.n == 0 && l.items[0]->exec_deny.n == 0);
	}
	bw_policy_list_clear(&l);

	/* A spec with no rules is allowed: it selects and does nothing. */
	l = PARSE_OK(NS_SPEC, 1);
	bw_policy_list_clear(&l);
	l = PARSE_OK(CL_SPEC "  exec: {deny: []}\n", 1);
	bw_policy_list_clear(&l);
	l = PARSE_OK("", 0);
	bw_policy_list_clear(&l);
	l = PARSE_OK("# nothing here\n---\n---\n...\n", 0);
	bw_policy_list_clear(&l);
}

/* Limits are inclusive: exactly the maximum is accepted. */
static char *repeat(const char *item, size_t n)
{
	size_t l = strlen(item);
	char *s = malloc(l * n + 1);

	if (!s)
		abort();
	for (size_t i = 0; i < n; i++)
		memcpy(s + i * l, item, l);
	s[l * n] = '\0';
	return s;
}

static void test_limits_ok(void)
{
	_cleanup_free_ char *rules = repeat("{path: /a}, ", BW_MAX_RULES_PER_LIST);
	_cleanup_free_ char *ports = repeat("1, ", BW_MAX_PORTS_PER_RULE);
	_cleanup_free_ char *long_path = repeat("a", BW_RULE_PATH_MAX - 1);
	_cleanup_free_ char *long_name = repeat("a", 253);
	_cleanup_free_ char *doc = strprintf(CL_HEAD "  mode: Block\n"
						     "  exec: {deny: [%s]}\n"
						     "  files: {deny: [{path: /%s}]}\n"
						     "  network: {deny: [{cidr: 10.0.0.0/8, ports: [%s]}]}\n",
					     rules, long_path, ports);
	_cleanup_free_ char *doc2 = strprintf(API "kind: ClusterBulwarkPolicy\nmetadata: {name: %s}\nspec: {mode: Block}\n",
					      long_name);
	struct bw_policy_list l = PARSE_OK(doc, 1);

	if (l.n == 1) {
		ASSERT(l.items[0]->exec_deny.n == BW_MAX_RULES_PER_LIST);
		ASSERT(l.items[0]->files_deny.n == 1 && strlen(l.items[0]->files_deny.items[0].path) == BW_RULE_PATH_MAX);
		ASSERT(l.items[0]->net_deny.n == 1 && l.items[0]->net_deny.items[0].n_ports == BW_MAX_PORTS_PER_RULE);
	}
	bw_policy_list_clear(&l);
	l = PARSE_OK(doc2, 1);
	bw_policy_list_clear(&l);
}

/* ---- bad documents ------------------------------------------------------ */

static void test_bad_top_level(void)
{
	EXPECT_BAD(API "kind: NetworkPolicy\nmetadata: {name: x}\nspec: {mode: Block}\n", 2, 7, "kind",
		   "unknown kind \"NetworkPolicy\"; expected one of: ClusterBulwarkPolicy, BulwarkPolicy, HostBulwarkPolicy");
	ASSERT(last.n == 1 && streq_ptr(last.items[0].kind, "NetworkPolicy") && streq_ptr(last.items[0].name, "x"));
	EXPECT_BAD(API "metadata: {name: x}\nspec: {mode: Block}\n", 1, 1, "kind",
		   "required field is missing; expected one of: ClusterBulwarkPolicy, BulwarkPolicy, HostBulwarkPolicy");
	EXPECT_BAD("apiVersion: bulwark.dev/v1\nkind: BulwarkPolicy\nmetadata: {name: x, namespace: y}\nspec: {mode: Block}\n",
		   1, 13, "apiVersion", "unknown apiVersion \"bulwark.dev/v1\"; expected bulwark.dev/v1alpha1");
	/* The identity is read even when the document is rejected early. */
	ASSERT(last.n == 1 && streq_ptr(last.items[0].kind, "BulwarkPolicy") && streq_ptr(last.items[0].name, "x") &&
	       streq_ptr(last.items[0].namespace, "y") && last.items[0].doc_index == 1);
	EXPECT_BAD("kind: BulwarkPolicy\nmetadata: {name: x}\nspec: {mode: Block}\n", 1, 1, "apiVersion",
		   "required field is missing; write apiVersion: bulwark.dev/v1alpha1");
	EXPECT_BAD(CL_SPEC "specs: {}\n", 7, 1, "specs",
		   "unknown field \"specs\"; expected one of: apiVersion, kind, metadata, spec, status");
	EXPECT_BAD("- a\n- b\n", 1, 1, "",
		   "a policy document must be a map with apiVersion, kind, metadata and spec, not a list");
	EXPECT_BAD("just a string\n", 1, 1, "",
		   "a policy document must be a map with apiVersion, kind, metadata and spec, not a string");
	EXPECT_BAD(API "kind: ClusterBulwarkPolicy\nspec: {mode: Block}\n", 1, 1, "metadata",
		   "required field is missing; it needs at least a name");
	EXPECT_BAD(API "kind: ClusterBulwarkPolicy\nmetadata: {name: x}\n", 1, 1, "spec",
		   "required field is missing; it needs at least mode: Block or mode: Audit");
	EXPECT_BAD(API "kind: ClusterBulwarkPolicy\nmetadata: [x]\nspec: {mode: Block}\n", 3, 11, "metadata",
		   "must be a map, not a list");
	EXPECT_BAD(API "kind: ClusterBulwarkPolicy\nmetadata: {name: x}\nspec: Block\n", 4, 7, "spec",
		   "must be a map, not a string");
	EXPECT_BAD(API "kind: {name: ClusterBulwarkPolicy}\nmetadata: {name: x}\nspec: {mode: Block}\n", 2, 7, "kind",
		   "must be a string, not a map");
	EXPECT_BAD(API "kind: ClusterBulwarkPolicy\nkind: BulwarkPolicy\nmetadata: {name: x}\nspec: {mode: Block}\n", 3, 1,
		   "kind", "duplicate key \"kind\"; it was first written at line 9, column 1");
	EXPECT_BAD(API "kind: ClusterBulwarkPolicy\n? [a, b]\n: c\nmetadata: {name: x}\nspec: {mode: Block}\n", 3, 3, "",
		   "map keys must be strings, not a list");
	EXPECT_BAD(CL_SPEC "status: {phase: ok, phase: bad}\n", 7, 21, "status[phase]",
		   "duplicate key \"phase\"; it was first written at line 14, column 10");
}

static void test_bad_metadata(void)
{
	EXPECT_BAD(API "kind: ClusterBulwarkPolicy\nmetadata:\n  labels: {a: b}\nspec: {mode: Block}\n", 3, 1,
		   "metadata.name", "required field is missing");
	EXPECT_BAD(API "kind: ClusterBulwarkPolicy\nmetadata:\n  name: Deny_Shell\nspec: {mode: Block}\n", 4, 9,
		   "metadata.name",
		   "name \"Deny_Shell\" is not a valid DNS-1123 subdomain: write at most 253 lowercase letters, digits, "
		   "'-' and '.', starting and ending with a letter or digit");
	EXPECT_BAD(API "kind: ClusterBulwarkPolicy\nmetadata:\n  name: a..b\nspec: {mode: Block}\n", 4, 9,
		   "metadata.name",
		   "name \"a..b\" is not a valid DNS-1123 subdomain: write at most 253 lowercase letters, digits, "
		   "'-' and '.', starting and ending with a letter or digit");
	{
		_cleanup_free_ char *name = repeat("a", 254);
		_cleanup_free_ char *doc = strprintf(API "kind: ClusterBulwarkPolicy\nmetadata:\n  name: %s\nspec: {mode: Block}\n", name);
		_cleanup_free_ char *want = strprintf(
			"name \"%.80s\"... is not a valid DNS-1123 subdomain: write at most 253 lowercase letters, digits, "
			"'-' and '.', starting and ending with a letter or digit",
			name);

		EXPECT_BAD(doc, 4, 9, "metadata.name", want);
	}
	EXPECT_BAD(API "kind: ClusterBulwarkPolicy\nmetadata:\n  name: \"\"\nspec: {mode: Block}\n", 4, 9,
		   "metadata.name", "must not be empty");
	EXPECT_BAD(API "kind: ClusterBulwarkPolicy\nmetadata:\n  name:\nspec: {mode: Block}\n", 4, 8, "metadata.name",
		   "must not be empty");
	EXPECT_BAD(API "kind: ClusterBulwarkPolicy\nmetadata:\n  name: null\nspec: {mode: Block}\n", 4, 9,
		   "metadata.name", "must be a string, not null");
	EXPECT_BAD(API "kind: ClusterBulwarkPolicy\nmetadata:\n  name: [a]\nspec: {mode: Block}\n", 4, 9,
		   "metadata.name", "must be a string, not a list");
	EXPECT_BAD(API "kind: BulwarkPolicy\nmetadata:\n  name: x\nspec: {mode: Block}\n", 3, 1, "metadata.namespace",
		   "required field is missing; a BulwarkPolicy is namespaced");
	ASSERT(last.n == 1 && streq_ptr(last.items[0].name, "x") && last.items[0].namespace == NULL);
	EXPECT_BAD(API "kind: BulwarkPolicy\nmetadata:\n  name: x\n  namespace: Prod\nspec: {mode: Block}\n", 5, 14,
		   "metadata.namespace",
		   "namespace \"Prod\" is not a valid DNS-1123 label: write at most 63 lowercase letters, digits and "
		   "'-', starting and ending with a letter or digit");
	EXPECT_BAD(API "kind: ClusterBulwarkPolicy\nmetadata:\n  name: x\n  namespace: prod\nspec: {mode: Block}\n", 5, 3,
		   "metadata.namespace", "must not be set: a ClusterBulwarkPolicy is cluster-scoped");
	/* The identity of a cluster-scoped policy has no namespace. */
	ASSERT(last.n == 1 && streq_ptr(last.items[0].kind, "ClusterBulwarkPolicy") && streq_ptr(last.items[0].name, "x") &&
	       last.items[0].namespace == NULL);
	EXPECT_BAD(API "kind: HostBulwarkPolicy\nmetadata:\n  name: x\n  namespace: prod\nspec: {mode: Block}\n", 5, 3,
		   "metadata.namespace", "must not be set: a HostBulwarkPolicy is cluster-scoped");
	EXPECT_BAD(API "kind: ClusterBulwarkPolicy\nmetadata:\n  name: x\n  name: y\nspec: {mode: Block}\n", 5, 3,
		   "metadata.name", "duplicate key \"name\"; it was first written at line 11, column 3");
	EXPECT_BAD(API "kind: ClusterBulwarkPolicy\nmetadata:\n  name: x\n  labels: {app: a, app: b}\nspec: {mode: Block}\n",
		   5, 20, "metadata.labels[app]", "duplicate key \"app\"; it was first written at line 12, column 12");
}

static void test_bad_spec(void)
{
	EXPECT_BAD(CL_HEAD "  exec: {}\n", 5, 1, "spec.mode", "required field is missing; write mode: Block or mode: Audit");
	EXPECT_BAD(CL_HEAD "  mode: block\n", 6, 9, "spec.mode",
		   "unknown mode \"block\"; expected Block or Audit (case-sensitive)");
	EXPECT_BAD(CL_HEAD "  mode: [Block]\n", 6, 9, "spec.mode", "must be a string, not a list");
	EXPECT_BAD(CL_SPEC "  mode: Audit\n", 7, 3, "spec.mode", "duplicate key \"mode\"; it was first written at line 13, column 3");
	EXPECT_BAD(CL_SPEC "  execs: {}\n", 7, 3, "spec.execs",
		   "unknown field \"execs\"; expected one of: mode, namespaceSelector, podSelector, exec, files, network");
	EXPECT_BAD(NS_SPEC "  execs: {}\n", 8, 3, "spec.execs",
		   "unknown field \"execs\"; expected one of: mode, podSelector, exec, files, network");
	EXPECT_BAD(HOST_SPEC "  execs: {}\n", 7, 3, "spec.execs",
		   "unknown field \"execs\"; expected one of: mode, cgroupPaths, exec, files, network");
	EXPECT_BAD(NS_SPEC "  namespaceSelector: {}\n", 8, 3, "spec.namespaceSelector",
		   "not allowed in a BulwarkPolicy, which applies to its own namespace only; use a ClusterBulwarkPolicy "
		   "to select namespaces");
	EXPECT_BAD(HOST_SPEC "  podSelector: {}\n", 7, 3, "spec.podSelector",
		   "not allowed in a HostBulwarkPolicy, which selects host processes by cgroupPaths");
	EXPECT_BAD(HOST_SPEC "  namespaceSelector: {}\n", 7, 3, "spec.namespaceSelector",
		   "not allowed in a HostBulwarkPolicy, which selects host processes by cgroupPaths");
	EXPECT_BAD(CL_SPEC "  cgroupPaths: [/]\n", 7, 3, "spec.cgroupPaths", "only allowed in a HostBulwarkPolicy");
	EXPECT_BAD(NS_SPEC "  cgroupPaths: [/]\n", 8, 3, "spec.cgroupPaths", "only allowed in a HostBulwarkPolicy");
	EXPECT_BAD(CL_SPEC "  exec: [/bin/sh]\n", 7, 9, "spec.exec", "must be a map, not a list");
	EXPECT_BAD(CL_SPEC "  exec:\n    denny: []\n", 8, 5, "spec.exec.denny",
		   "unknown field \"denny\"; expected one of: deny, allow");
	EXPECT_BAD(CL_SPEC "  network: {allow: [{cidr: 10.0.0.0/8}], deny: 5}\n", 7, 48, "spec.network.deny",
		   "must be a list, not a number");
	/* An alias cycle (spec.exec is spec itself) cannot make the parser loop. */
	EXPECT_BAD(API "kind: ClusterBulwarkPolicy\nmetadata: {name: x}\nspec: &s\n  mode: Block\n  exec: *s\n", 5, 3,
		   "spec.exec.mode", "unknown field \"mode\"; expected one of: deny, allow");
}

static void test_bad_path_rules(void)
{
	EXPECT_BAD(NS_SPEC "  exec:\n    deny:\n      - path: bin/sh\n", 10, 15, "spec.exec.deny[0].path",
		   "path \"bin/sh\" is relative; write an absolute path");
	EXPECT_BAD(NS_SPEC "  exec:\n    allow:\n      - prefix: /usr/\n      - prefix: tmp/\n", 11, 17,
		   "spec.exec.allow[1].prefix", "prefix \"tmp/\" is relative; write an absolute path");
	EXPECT_BAD(NS_SPEC "  exec:\n    deny:\n      - path: /usr//bin/sh\n", 10, 15, "spec.exec.deny[0].path",
		   "path \"/usr//bin/sh\" contains \"//\"; write \"/usr/bin/sh\"");
	EXPECT_BAD(NS_SPEC "  exec:\n    deny:\n      - path: /usr/./bin/sh\n", 10, 15, "spec.exec.deny[0].path",
		   "path \"/usr/./bin/sh\" contains a \".\" component, which never matches; write the path without it");
	EXPECT_BAD(NS_SPEC "  exec:\n    deny:\n      - prefix: /usr/../bin/\n", 10, 17, "spec.exec.deny[0].prefix",
		   "prefix \"/usr/../bin/\" contains a \"..\" component, which never matches; write the path without it");
	EXPECT_BAD(NS_SPEC "  files:\n    deny:\n      - prefix: /var/..\n", 10, 17, "spec.files.deny[0].prefix",
		   "prefix \"/var/..\" contains a \"..\" component, which never matches; write the path without it");
	EXPECT_BAD(NS_SPEC "  exec:\n    deny:\n      - path: \"/bin/s\\0h\"\n", 10, 15, "spec.exec.deny[0].path",
		   "must not contain a NUL byte");
	EXPECT_BAD(NS_SPEC "  exec:\n    deny:\n      - path: \"\"\n", 10, 15, "spec.exec.deny[0].path",
		   "must not be empty");
	EXPECT_BAD(NS_SPEC "  exec:\n    deny:\n      - path: /bin/\n", 10, 15, "spec.exec.deny[0].path",
		   "path \"/bin/\" ends with \"/\", which never matches a file; to match everything under it, write prefix: \"/bin/\"");
	{
		_cleanup_free_ char *tail = repeat("a", BW_RULE_PATH_MAX);
		_cleanup_free_ char *doc = strprintf(NS_SPEC "  files:\n    allow:\n      - path: /%s\n", tail);
		_cleanup_free_ char *want = strprintf("path \"/%.79s\"... is 256 bytes long; at most 255 bytes are allowed", tail);

		EXPECT_BAD(doc, 10, 15, "spec.files.allow[0].path", want);
	}
	EXPECT_BAD(NS_SPEC "  exec:\n    deny:\n      - {path: /bin/sh, prefix: /bin/}\n", 10, 9, "spec.exec.deny[0]",
		   "write either path or prefix, not both");
	EXPECT_BAD(NS_SPEC "  exec:\n    deny:\n      - {}\n", 10, 9, "spec.exec.deny[0]", "a rule needs path or prefix");
	EXPECT_BAD(NS_SPEC "  exec:\n    deny:\n      - /bin/sh\n", 10, 9, "spec.exec.deny[0]", "must be a map, not a string");
	EXPECT_BAD(NS_SPEC "  exec:\n    deny:\n      path: /bin/sh\n", 10, 7, "spec.exec.deny", "must be a list, not a map");
	EXPECT_BAD(NS_SPEC "  exec:\n    deny:\n      - {path: /bin/sh, access: [read]}\n", 10, 25, "spec.exec.deny[0].access",
		   "access is only valid in files rules");
	EXPECT_BAD(NS_SPEC "  exec:\n    deny:\n      - {path: /bin/sh, pth: /bin/bash}\n", 10, 25, "spec.exec.deny[0].pth",
		   "unknown field \"pth\"; expected one of: path, prefix");
	EXPECT_BAD(NS_SPEC "  files:\n    deny:\n      - {path: /etc/x, mode: ro}\n", 10, 24, "spec.files.deny[0].mode",
		   "unknown field \"mode\"; expected one of: path, prefix, access");
	EXPECT_BAD(NS_SPEC "  files:\n    deny:\n      - {path: /etc/x, access: [exec]}\n", 10, 33,
		   "spec.files.deny[0].access[0]", "unknown access \"exec\"; expected read or write");
	EXPECT_BAD(NS_SPEC "  files:\n    deny:\n      - {path: /etc/x, access: [read, write, read]}\n", 10, 46,
		   "spec.files.deny[0].access[2]", "duplicate access \"read\"");
	EXPECT_BAD(NS_SPEC "  files:\n    deny:\n      - {path: /etc/x, access: []}\n", 10, 32, "spec.files.deny[0].access",
		   "empty list; write [read], [write] or [read, write], or leave access out for both");
	EXPECT_BAD(NS_SPEC "  files:\n    deny:\n      - {path: /etc/x, access: read}\n", 10, 32, "spec.files.deny[0].access",
		   "must be a list, not a string");
	EXPECT_BAD(NS_SPEC "  exec:\n    allow: []\n", 9, 12, "spec.exec.allow",
		   "an empty allow list would allow everything, not nothing; list what to allow, or leave allow out");
	EXPECT_BAD(NS_SPEC "  files:\n    allow:\n", 9, 11, "spec.files.allow",
		   "an empty allow list would allow everything, not nothing; list what to allow, or leave allow out");
	{
		_cleanup_free_ char *rules = repeat("{path: /a}, ", BW_MAX_RULES_PER_LIST + 1);
		_cleanup_free_ char *doc = strprintf(NS_SPEC "  exec:\n    deny: [%s]\n", rules);

		EXPECT_BAD(doc, 9, 11, "spec.exec.deny", "too many entries: 4097; at most 4096 are allowed");
	}
}

static void test_bad_network(void)
{
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - ports: [80]\n", 10, 9, "spec.network.deny[0].cidr",
		   "required field is missing; write for example cidr: 10.0.0.0/8");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - cidr: 10.0.0.300/8\n", 10, 15, "spec.network.deny[0].cidr",
		   "invalid CIDR \"10.0.0.300/8\": \"10.0.0.300\" is not an IPv4 or IPv6 address");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - cidr: 010.0.0.0/8\n", 10, 15, "spec.network.deny[0].cidr",
		   "invalid CIDR \"010.0.0.0/8\": \"010.0.0.0\" is not an IPv4 or IPv6 address");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - cidr: \"fe80::1%eth0\"\n", 10, 15, "spec.network.deny[0].cidr",
		   "invalid CIDR \"fe80::1%eth0\": \"fe80::1%eth0\" is not an IPv4 or IPv6 address");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - cidr: 10.0.0.0/33\n", 10, 15, "spec.network.deny[0].cidr",
		   "invalid CIDR \"10.0.0.0/33\": prefix length 33 is out of range 0-32 for IPv4");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - cidr: fd00::/129\n", 10, 15, "spec.network.deny[0].cidr",
		   "invalid CIDR \"fd00::/129\": prefix length 129 is out of range 0-128 for IPv6");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - cidr: 10.0.0.0/x\n", 10, 15, "spec.network.deny[0].cidr",
		   "invalid CIDR \"10.0.0.0/x\": the prefix length after \"/\" must be a number from 0 to 32");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - cidr: 10.0.0.0/\n", 10, 15, "spec.network.deny[0].cidr",
		   "invalid CIDR \"10.0.0.0/\": the prefix length after \"/\" must be a number from 0 to 32");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - cidr: 10.0.0.1/8\n", 10, 15, "spec.network.deny[0].cidr",
		   "CIDR \"10.0.0.1/8\" has host bits set; write the network address \"10.0.0.0/8\"");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - cidr: 192.168.1.129/25\n", 10, 15, "spec.network.deny[0].cidr",
		   "CIDR \"192.168.1.129/25\" has host bits set; write the network address \"192.168.1.128/25\"");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - cidr: fd00::1/8\n", 10, 15, "spec.network.deny[0].cidr",
		   "CIDR \"fd00::1/8\" has host bits set; write the network address \"fd00::/8\"");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - cidr: \"\"\n", 10, 15, "spec.network.deny[0].cidr",
		   "must not be empty");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - cidr: [10.0.0.0/8]\n", 10, 15, "spec.network.deny[0].cidr",
		   "must be a string, not a list");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - {cidr: 10.0.0.0/8, ports: \"abc\"}\n", 10, 35,
		   "spec.network.deny[0].ports", "must be a list, not a string");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - {cidr: 10.0.0.0/8, ports: 80}\n", 10, 35,
		   "spec.network.deny[0].ports", "must be a list, not a number");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - {cidr: 10.0.0.0/8, ports: [\"abc\"]}\n", 10, 36,
		   "spec.network.deny[0].ports[0]", "port \"abc\" is not a number from 1 to 65535 or a range \"N-M\"");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - {cidr: 10.0.0.0/8, ports: [80, 70000]}\n", 10, 40,
		   "spec.network.deny[0].ports[1]", "port 70000 is out of range 1-65535");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - {cidr: 10.0.0.0/8, ports: [0]}\n", 10, 36,
		   "spec.network.deny[0].ports[0]", "port 0 is out of range 1-65535");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - {cidr: 10.0.0.0/8, ports: [-1]}\n", 10, 36,
		   "spec.network.deny[0].ports[0]", "port \"-1\" is not a number from 1 to 65535 or a range \"N-M\"");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - {cidr: 10.0.0.0/8, ports: [8.5]}\n", 10, 36,
		   "spec.network.deny[0].ports[0]", "port \"8.5\" is not a number from 1 to 65535 or a range \"N-M\"");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - {cidr: 10.0.0.0/8, ports: [\"9000-8000\"]}\n", 10, 36,
		   "spec.network.deny[0].ports[0]", "port range \"9000-8000\" is reversed; write \"8000-9000\"");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - {cidr: 10.0.0.0/8, ports: [\"80-70000\"]}\n", 10, 36,
		   "spec.network.deny[0].ports[0]", "port 70000 is out of range 1-65535");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - {cidr: 10.0.0.0/8, ports: [\"80-\"]}\n", 10, 36,
		   "spec.network.deny[0].ports[0]", "port \"80-\" is not a number from 1 to 65535 or a range \"N-M\"");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - {cidr: 10.0.0.0/8, ports: [\"1-2-3\"]}\n", 10, 36,
		   "spec.network.deny[0].ports[0]", "port \"1-2-3\" is not a number from 1 to 65535 or a range \"N-M\"");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - {cidr: 10.0.0.0/8, ports: [080]}\n", 10, 36,
		   "spec.network.deny[0].ports[0]", "port 080 has a leading zero; write 80");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - {cidr: 10.0.0.0/8, ports: [{port: 80}]}\n", 10, 36,
		   "spec.network.deny[0].ports[0]", "must be a port number or a range \"N-M\", not a map");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - {cidr: 10.0.0.0/8, ports: []}\n", 10, 35,
		   "spec.network.deny[0].ports", "empty list; leave ports out to match every port");
	{
		_cleanup_free_ char *ports = repeat("1, ", BW_MAX_PORTS_PER_RULE + 1);
		_cleanup_free_ char *doc = strprintf(NS_SPEC "  network:\n    deny:\n      - {cidr: 10.0.0.0/8, ports: [%s]}\n", ports);

		EXPECT_BAD(doc, 10, 35, "spec.network.deny[0].ports", "too many entries: 17; at most 16 are allowed");
	}
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - {cidr: 10.0.0.0/8, protocol: tcp}\n", 10, 38,
		   "spec.network.deny[0].protocol", "unknown protocol \"tcp\"; expected one of: TCP, UDP, any (case-sensitive)");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - {cidr: 10.0.0.0/8, protocol: [TCP]}\n", 10, 38,
		   "spec.network.deny[0].protocol", "must be a string, not a list");
	EXPECT_BAD(NS_SPEC "  network:\n    deny:\n      - {cidr: 10.0.0.0/8, port: 80}\n", 10, 28,
		   "spec.network.deny[0].port", "unknown field \"port\"; expected one of: cidr, ports, protocol");
	EXPECT_BAD(NS_SPEC "  network:\n    allow: []\n", 9, 12, "spec.network.allow",
		   "an empty allow list would allow everything, not nothing; list what to allow, or leave allow out");
}

static void test_bad_selectors(void)
{
	EXPECT_BAD(CL_SPEC "  podSelector:\n    matchLabel: {app: web}\n", 8, 5, "spec.podSelector.matchLabel",
		   "unknown field \"matchLabel\"; expected one of: matchLabels, matchExpressions");
	EXPECT_BAD(CL_SPEC "  podSelector: [app]\n", 7, 16, "spec.podSelector", "must be a map, not a list");
	EXPECT_BAD(CL_SPEC "  podSelector:\n    matchLabels: [app]\n", 8, 18, "spec.podSelector.matchLabels",
		   "must be a map, not a list");
	EXPECT_BAD(CL_SPEC "  podSelector:\n    matchLabels: {-app: web}\n", 8, 19, "spec.podSelector.matchLabels[-app]",
		   "label key \"-app\" is not valid: write an optional DNS subdomain prefix and \"/\", then at most 63 "
		   "letters, digits, '-', '_' or '.', starting and ending with a letter or digit");
	EXPECT_BAD(CL_SPEC "  namespaceSelector:\n    matchLabels: {\"a/b/c\": x}\n", 8, 19,
		   "spec.namespaceSelector.matchLabels[a/b/c]",
		   "label key \"a/b/c\" is not valid: write an optional DNS subdomain prefix and \"/\", then at most 63 "
		   "letters, digits, '-', '_' or '.', starting and ending with a letter or digit");
	EXPECT_BAD(CL_SPEC "  podSelector:\n    matchLabels: {app: \"a b\"}\n", 8, 24, "spec.podSelector.matchLabels[app]",
		   "label value \"a b\" is not valid: write at most 63 letters, digits, '-', '_' or '.', starting and "
		   "ending with a letter or digit, or an empty string");
	EXPECT_BAD(CL_SPEC "  podSelector:\n    matchLabels: {app: [web]}\n", 8, 24, "spec.podSelector.matchLabels[app]",
		   "must be a string, not a list");
	EXPECT_BAD(CL_SPEC "  podSelector:\n    matchLabels: {app: a, app: b}\n", 8, 27,
		   "spec.podSelector.matchLabels[app]", "duplicate key \"app\"; it was first written at line 15, column 19");
	EXPECT_BAD(CL_SPEC "  podSelector:\n    matchExpressions: {key: app}\n", 8, 23, "spec.podSelector.matchExpressions",
		   "must be a list, not a map");
	EXPECT_BAD(CL_SPEC "  podSelector:\n    matchExpressions:\n      - {key: app, operator: in, values: [a]}\n", 9, 30,
		   "spec.podSelector.matchExpressions[0].operator",
		   "unknown operator \"in\"; expected one of: In, NotIn, Exists, DoesNotExist (case-sensitive)");
	EXPECT_BAD(CL_SPEC "  podSelector:\n    matchExpressions:\n      - {key: app, operator: In}\n", 9, 9,
		   "spec.podSelector.matchExpressions[0].values", "operator In needs a non-empty values list");
	EXPECT_BAD(CL_SPEC "  podSelector:\n    matchExpressions:\n      - {key: app, operator: NotIn, values: []}\n", 9, 45,
		   "spec.podSelector.matchExpressions[0].values", "operator NotIn needs a non-empty values list");
	EXPECT_BAD(CL_SPEC "  podSelector:\n    matchExpressions:\n      - {key: app, operator: Exists, values: [a]}\n", 9, 46,
		   "spec.podSelector.matchExpressions[0].values", "operator Exists must not have values");
	EXPECT_BAD(CL_SPEC "  podSelector:\n    matchExpressions:\n      - {key: app, operator: DoesNotExist, values: [a]}\n", 9,
		   52, "spec.podSelector.matchExpressions[0].values", "operator DoesNotExist must not have values");
	EXPECT_BAD(CL_SPEC "  podSelector:\n    matchExpressions:\n      - {operator: Exists}\n", 9, 9,
		   "spec.podSelector.matchExpressions[0].key", "required field is missing");
	EXPECT_BAD(CL_SPEC "  podSelector:\n    matchExpressions:\n      - {key: app}\n", 9, 9,
		   "spec.podSelector.matchExpressions[0].operator",
		   "required field is missing; expected one of: In, NotIn, Exists, DoesNotExist");
	EXPECT_BAD(CL_SPEC "  podSelector:\n    matchExpressions:\n      - {key: app, operator: In, value: [a]}\n", 9, 34,
		   "spec.podSelector.matchExpressions[0].value",
		   "unknown field \"value\"; expected one of: key, operator, values");
	EXPECT_BAD(CL_SPEC "  podSelector:\n    matchExpressions:\n      - {key: \"\", operator: Exists}\n", 9, 15,
		   "spec.podSelector.matchExpressions[0].key", "must not be empty");
	EXPECT_BAD(CL_SPEC "  podSelector:\n    matchExpressions:\n      - {key: app, operator: In, values: [ok, \"no way\"]}\n",
		   9, 47, "spec.podSelector.matchExpressions[0].values[1]",
		   "label value \"no way\" is not valid: write at most 63 letters, digits, '-', '_' or '.', starting and "
		   "ending with a letter or digit, or an empty string");
	{
		_cleanup_free_ char *values = repeat("v, ", BW_MAX_SELECTOR_VALUES + 1);
		_cleanup_free_ char *doc = strprintf(
			CL_SPEC "  podSelector:\n    matchExpressions:\n      - {key: app, operator: In, values: [%s]}\n", values);

		EXPECT_BAD(doc, 9, 42, "spec.podSelector.matchExpressions[0].values",
			   "too many entries: 65; at most 64 are allowed");
	}
	{
		_cleanup_free_ char *exprs = repeat("{key: a, operator: Exists}, ", BW_MAX_SELECTOR_TERMS + 1);
		_cleanup_free_ char *doc = strprintf(CL_SPEC "  podSelector:\n    matchExpressions: [%s]\n", exprs);

		EXPECT_BAD(doc, 8, 23, "spec.podSelector.matchExpressions",
			   "too many selector terms: 33 in matchLabels and matchExpressions together; at most 32 are allowed");
	}
	{
		/* 31 labels and 2 expressions: 33 terms together. */
		_cleanup_free_ char *labels = NULL, *doc = NULL;
		char *s = strdup("");

		for (int i = 0; i < BW_MAX_SELECTOR_TERMS - 1 && s; i++) {
			char *t = strprintf("%sl%d: v, ", s, i);
			free(s);
			s = t;
		}
		labels = s;
		doc = strprintf(CL_SPEC "  podSelector:\n    matchLabels: {%s}\n"
					"    matchExpressions: [{key: a, operator: Exists}, {key: b, operator: Exists}]\n",
				labels);
		EXPECT_BAD(doc, 9, 23, "spec.podSelector.matchExpressions",
			   "too many selector terms: 33 in matchLabels and matchExpressions together; at most 32 are allowed");
	}
}

static void test_bad_cgroups(void)
{
	EXPECT_BAD(HOST_SPEC "  cgroupPaths: [system.slice]\n", 7, 17, "spec.cgroupPaths[0]",
		   "cgroup path \"system.slice\" is relative; write an absolute path");
	EXPECT_BAD(HOST_SPEC "  cgroupPaths: [/system.slice/]\n", 7, 17, "spec.cgroupPaths[0]",
		   "cgroup path \"/system.slice/\" ends with \"/\"; write \"/system.slice\"");
	EXPECT_BAD(HOST_SPEC "  cgroupPaths: [/system.slice/../user.slice]\n", 7, 17, "spec.cgroupPaths[0]",
		   "cgroup path \"/system.slice/../user.slice\" contains a \"..\" component, which never matches; "
		   "write the path without it");
	EXPECT_BAD(HOST_SPEC "  cgroupPaths: []\n", 7, 16, "spec.cgroupPaths",
		   "empty list; list cgroup paths or leave cgroupPaths out");
	EXPECT_BAD(HOST_SPEC "  cgroupPaths: /system.slice\n", 7, 16, "spec.cgroupPaths", "must be a list, not a string");
	{
		_cleanup_free_ char *paths = repeat("/a, ", BW_MAX_CGROUP_PATHS + 1);
		_cleanup_free_ char *doc = strprintf(HOST_SPEC "  cgroupPaths: [%s]\n", paths);

		EXPECT_BAD(doc, 7, 16, "spec.cgroupPaths", "too many entries: 65; at most 64 are allowed");
	}
}

/* Ignored fields are still checked for duplicate keys, with aliases and
 * depth kept in check. */
static void test_ignored_fields(void)
{
	_cleanup_free_ char *open = repeat("[", 101), *close = repeat("]", 101);
	_cleanup_free_ char *deep = strprintf(CL_SPEC "status: %s%s\n", open, close);
	struct bw_policy_list l;

	EXPECT_BAD(deep, 7, 109, "status[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]"
				 "[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]"
				 "[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]"
				 "[0][0][0][0][0][0][0][0][0][0][0][0][0][0]",
		   "nested more than 100 levels deep");

	/* "Billion laughs": each level refers to the previous one nine times;
	 * checked once per node, it costs nothing. */
	l = PARSE_OK(CL_SPEC "status:\n"
			     "  a: &a [x, x, x, x, x, x, x, x, x]\n"
			     "  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
			     "  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
			     "  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
			     "  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
			     "  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
			     "  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
			     "  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
			     "  i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n"
			     "  self: &s {me: *s}\n",
		     1);
	bw_policy_list_clear(&l);
}

/* ---- YAML syntax errors ------------------------------------------------- */

static void test_syntax_errors(void)
{
	struct bw_policy_list out = { 0 };
	struct bw_diags diags = { 0 };
	_cleanup_free_ char *buf = NULL, *msg = NULL;
	int r;

	/* Documents before the error load; the rest of the file cannot be
	 * read, and the error is reported once. */
	buf = strprintf("%s%s%s", good_before, CL_HEAD "  mode: [Block\n", good_after);
	r = bw_policy_parse_buffer("test.yaml", buf, strlen(buf), &out, &diags);
	ASSERT(r == 0);
	ASSERT(out.n == 1 && streq(out.items[0]->name, "before"));
	ASSERT(diags.n == 1);
	if (diags.n == 1) {
		msg = bw_diag_format(&diags.items[0]);
		ASSERT_STREQ(msg, "test.yaml:14:1: YAML syntax error: did not find expected ',' or ']' (while parsing a "
				  "flow sequence at line 13, column 9); this document and the rest of the file are skipped");
		ASSERT(diags.items[0].doc_index == 1);
		ASSERT(diags.items[0].field == NULL && diags.items[0].kind == NULL && diags.items[0].name == NULL);
		msg = mfree(msg);
	}
	bw_policy_list_clear(&out);
	bw_diags_clear(&diags);
	buf = mfree(buf);

	/* A tab for indentation. */
	buf = strprintf("%s%s", good_before, CL_HEAD "\tmode: Block\n");
	r = bw_policy_parse_buffer("tab.yaml", buf, strlen(buf), &out, &diags);
	ASSERT(r == 0 && out.n == 1 && diags.n == 1);
	if (diags.n == 1) {
		msg = bw_diag_format(&diags.items[0]);
		ASSERT_STREQ(msg, "tab.yaml:13:1: YAML syntax error: found character that cannot start any token (while "
				  "scanning for the next token at line 13, column 1); this document and the rest of the "
				  "file are skipped");
		msg = mfree(msg);
	}
	bw_policy_list_clear(&out);
	bw_diags_clear(&diags);
	buf = mfree(buf);

	/* Bad UTF-8: libyaml gives a byte offset, turned into line and column. */
	buf = strprintf("%s%s", good_before, CL_HEAD "  mode: Bl\xff" "ck\n");
	r = bw_policy_parse_buffer("utf8.yaml", buf, strlen(buf), &out, &diags);
	ASSERT(r == 0 && diags.n == 1);
	if (diags.n == 1) {
		msg = bw_diag_format(&diags.items[0]);
		ASSERT_STREQ(msg, "utf8.yaml:13:11: YAML syntax error: invalid leading UTF-8 octet (byte 0xff); this "
				  "document and the rest of the file are skipped");
		msg = mfree(msg);
	}
	bw_policy_list_clear(&out);
	bw_diags_clear(&diags);
	buf = mfree(buf);

	/* An unknown alias is an error of the YAML layer too. */
	buf = strprintf("%s", CL_HEAD "  mode: *nope\n");
	r = bw_policy_parse_buffer("alias.yaml", buf, strlen(buf), &out, &diags);
	ASSERT(r == 0 && out.n == 0 && diags.n == 1);
	if (diags.n == 1) {
		msg = bw_diag_format(&diags.items[0]);
		ASSERT_STREQ(msg, "alias.yaml:6:9: YAML syntax error: found undefined alias; this document and the rest of the file are skipped");
		msg = mfree(msg);
	}
	bw_policy_list_clear(&out);
	bw_diags_clear(&diags);
}

/* ---- files and directories --------------------------------------------- */

static int write_file(const char *dir, const char *name, const char *content)
{
	_cleanup_free_ char *path = strprintf("%s/%s", dir, name);
	_cleanup_fclose_ FILE *f = NULL;

	if (!path)
		return -ENOMEM;
	f = fopen(path, "we");
	if (!f)
		return -errno;
	if (fputs(content, f) < 0)
		return -EIO;
	return 0;
}

#define POLICY(kind, ns_line, name) API "kind: " kind "\nmetadata:\n  name: " name "\n" ns_line "spec:\n  mode: Block\n"

static void test_files_and_dirs(void)
{
	char tmpl[] = "/tmp/test-policy-parse.XXXXXX";
	char *dir = mkdtemp(tmpl);
	struct bw_policy_list out = { 0 };
	struct bw_diags diags = { 0 };
	_cleanup_free_ char *path = NULL, *msg = NULL, *want = NULL, *outside = NULL, *sub = NULL;
	int r;

	ASSERT(dir != NULL);
	if (!dir)
		return;

	/* a.yaml: two policies; b.yml: a duplicate of each (rejected), and a
	 * policy of the same name in another namespace and another kind (not
	 * duplicates); c.yaml: the same name again after another error. */
	ASSERT(write_file(dir, "a.yaml",
			  POLICY("BulwarkPolicy", "  namespace: prod\n", "web")
			  "---\n" POLICY("ClusterBulwarkPolicy", "", "web")) == 0);
	ASSERT(write_file(dir, "b.yml",
			  POLICY("BulwarkPolicy", "  namespace: dev\n", "web")
			  "---\n" POLICY("BulwarkPolicy", "  namespace: prod\n", "web")
			  "---\n" POLICY("HostBulwarkPolicy", "", "web")
			  "---\n" POLICY("ClusterBulwarkPolicy", "", "web")) == 0);
	ASSERT(write_file(dir, "c.yaml", POLICY("BulwarkPolicy", "  namespace: dev\n", "web")) == 0);
	/* Ignored: hidden, editor temporaries, other suffixes. */
	ASSERT(write_file(dir, ".hidden.yaml", "not: [valid") == 0);
	ASSERT(write_file(dir, ".a.yaml.swp", "not: [valid") == 0);
	ASSERT(write_file(dir, "a.yaml~", "not: [valid") == 0);
	ASSERT(write_file(dir, "notes.txt", "not: [valid") == 0);
	ASSERT(write_file(dir, "d.yaml.bak", "not: [valid") == 0);
	/* A directory named like a policy file is skipped. */
	sub = strprintf("%s/dir.yaml", dir);
	ASSERT(sub && mkdir(sub, 0755) == 0);
	/* A symlink to a regular file is followed (ConfigMap volumes). */
	outside = strprintf("%s.target", dir);
	{
		_cleanup_fclose_ FILE *f = outside ? fopen(outside, "we") : NULL;

		ASSERT(f && fputs(POLICY("ClusterBulwarkPolicy", "", "linked"), f) >= 0);
	}
	path = strprintf("%s/z-link.yaml", dir);
	ASSERT(path && symlink(outside, path) == 0);
	path = mfree(path);

	r = bw_policy_load_dir(dir, &out, &diags);
	ASSERT(r == 0);
	ASSERT(out.n == 5);
	if (out.n == 5) {
		/* Name order, first definition wins. */
		ASSERT(out.items[0]->kind == BW_KIND_NAMESPACED && streq_ptr(out.items[0]->namespace, "prod"));
		ASSERT(out.items[1]->kind == BW_KIND_CLUSTER && streq(out.items[1]->name, "web"));
		ASSERT(out.items[2]->kind == BW_KIND_NAMESPACED && streq_ptr(out.items[2]->namespace, "dev"));
		ASSERT(out.items[3]->kind == BW_KIND_HOST);
		ASSERT(streq(out.items[4]->name, "linked"));
		ASSERT(endswith(out.items[0]->file, "/a.yaml") != NULL);
		ASSERT(endswith(out.items[4]->file, "/z-link.yaml") != NULL);
	}
	ASSERT(diags.n == 3);
	if (diags.n == 3) {
		msg = bw_diag_format(&diags.items[0]);
		want = strprintf("%s/b.yml:12:9: metadata.name: duplicate BulwarkPolicy \"prod/web\"; it is first defined at %s/a.yaml:4",
				 dir, dir);
		ASSERT_STREQ(msg, want);
		ASSERT_STREQ(diags.items[0].kind, "BulwarkPolicy");
		ASSERT_STREQ(diags.items[0].name, "web");
		ASSERT_STREQ(diags.items[0].namespace, "prod");
		ASSERT(diags.items[0].doc_index == 1);
		msg = mfree(msg);
		want = mfree(want);

		msg = bw_diag_format(&diags.items[1]);
		want = strprintf("%s/b.yml:27:9: metadata.name: duplicate ClusterBulwarkPolicy \"web\"; it is first defined at %s/a.yaml:12",
				 dir, dir);
		ASSERT_STREQ(msg, want);
		ASSERT(diags.items[1].namespace == NULL && diags.items[1].doc_index == 3);
		msg = mfree(msg);
		want = mfree(want);

		msg = bw_diag_format(&diags.items[2]);
		want = strprintf("%s/c.yaml:4:9: metadata.name: duplicate BulwarkPolicy \"dev/web\"; it is first defined at %s/b.yml:4",
				 dir, dir);
		ASSERT_STREQ(msg, want);
		msg = mfree(msg);
		want = mfree(want);
	}
	bw_policy_list_clear(&out);
	bw_diags_clear(&diags);

	/* Files that cannot be read. */
	path = strprintf("%s/missing.yaml", dir);
	r = bw_policy_parse_file(path, &out, &diags);
	ASSERT(r == -ENOENT && out.n == 0 && diags.n == 1);
	if (diags.n == 1) {
		msg = bw_diag_format(&diags.items[0]);
		want = strprintf("%s: cannot read: No such file or directory", path);
		ASSERT_STREQ(msg, want);
		msg = mfree(msg);
		want = mfree(want);
	}
	bw_diags_clear(&diags);
	r = bw_policy_parse_file(sub, &out, &diags);
	ASSERT(r == -EISDIR && diags.n == 1);
	bw_diags_clear(&diags);

	r = bw_policy_load_dir(path, &out, &diags);
	ASSERT(r == -ENOENT && diags.n == 1);
	if (diags.n == 1) {
		msg = bw_diag_format(&diags.items[0]);
		want = strprintf("%s: cannot open directory: No such file or directory", path);
		ASSERT_STREQ(msg, want);
		msg = mfree(msg);
		want = mfree(want);
	}
	bw_diags_clear(&diags);

	/* A dangling link is reported, and the rest still loads. */
	{
		_cleanup_free_ char *dangling = strprintf("%s/0-dangling.yaml", dir);

		ASSERT(dangling && symlink("/nonexistent/policy.yaml", dangling) == 0);
		r = bw_policy_load_dir(dir, &out, &diags);
		ASSERT(r == 0 && out.n == 5 && diags.n == 4);
		if (diags.n == 4) {
			msg = bw_diag_format(&diags.items[0]);
			want = strprintf("%s: cannot read: No such file or directory", dangling);
			ASSERT_STREQ(msg, want);
			msg = mfree(msg);
			want = mfree(want);
		}
		bw_policy_list_clear(&out);
		bw_diags_clear(&diags);
		unlink(dangling);
	}

	/* The first definition wins even when it is rejected: a later copy
	 * does not take over (the agent keeps the last good version); and a
	 * rejected later copy keeps its own diagnostic. */
	{
		static const char *const files[] = { "1.yaml", "2.yaml" };

		ASSERT(write_file(dir, files[0],
				  API "kind: BulwarkPolicy\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  mode: Blok\n"
				  "---\n" POLICY("ClusterBulwarkPolicy", "", "kept")) == 0);
		ASSERT(write_file(dir, files[1],
				  POLICY("BulwarkPolicy", "  namespace: shop\n", "web")
				  "---\n" API "kind: ClusterBulwarkPolicy\nmetadata:\n  name: kept\nspec:\n  mode: [Block]\n"
				  "---\n" POLICY("BulwarkPolicy", "  namespace: shop\n", "web")
				  "---\nbad: [\n") == 0);
		_cleanup_free_ char *sub2 = strprintf("%s/second", dir);
		struct bw_policy_list out2 = { 0 };

		ASSERT(sub2 && mkdir(sub2, 0755) == 0);
		for (size_t i = 0; i < ELEMENTSOF(files); i++) {
			_cleanup_free_ char *from = strprintf("%s/%s", dir, files[i]), *to = strprintf("%s/%s", sub2, files[i]);

			ASSERT(from && to && rename(from, to) == 0);
		}
		r = bw_policy_load_dir(sub2, &out2, &diags);
		ASSERT(r == 0 && out2.n == 1 && out2.n == 1 && streq(out2.items[0]->name, "kept"));
		ASSERT(diags.n == 5);
		if (diags.n == 5) {
			static const char *const want_fmt[] = {
				"%s/1.yaml:7:9: spec.mode: unknown mode \"Blok\"; expected Block or Audit (case-sensitive)",
				"%s/2.yaml:4:9: metadata.name: duplicate BulwarkPolicy \"shop/web\"; it is first defined at "
				"%s/1.yaml:4, which is rejected",
				"%s/2.yaml:14:9: spec.mode: must be a string, not a list",
				"%s/2.yaml:19:9: metadata.name: duplicate BulwarkPolicy \"shop/web\"; it is first defined at "
				"%s/1.yaml:4, which is rejected",
				"%s/2.yaml:25:1: YAML syntax error: did not find expected node content (while parsing a flow node "
				"at line 25, column 1); this document and the rest of the file are skipped",
			};

			for (size_t i = 0; i < ELEMENTSOF(want_fmt); i++) {
				msg = bw_diag_format(&diags.items[i]);
				want = strprintf(want_fmt[i], sub2, sub2);
				ASSERT_STREQ(msg, want);
				msg = mfree(msg);
				want = mfree(want);
			}
			ASSERT(streq_ptr(diags.items[0].name, "web") && streq_ptr(diags.items[0].namespace, "shop"));
			ASSERT(streq_ptr(diags.items[2].kind, "ClusterBulwarkPolicy") && streq_ptr(diags.items[2].name, "kept"));
			ASSERT(diags.items[2].doc_index == 1 && diags.items[4].doc_index == 3);
		}
		bw_policy_list_clear(&out2);
		bw_diags_clear(&diags);
		for (size_t i = 0; i < ELEMENTSOF(files); i++) {
			_cleanup_free_ char *f = strprintf("%s/%s", sub2, files[i]);

			if (f)
				unlink(f);
		}
		ASSERT(rmdir(sub2) == 0);
	}

	/* Clean up. */
	{
		static const char *const names[] = { "a.yaml", "b.yml", "c.yaml", ".hidden.yaml", ".a.yaml.swp", "a.yaml~",
						     "notes.txt", "d.yaml.bak", "z-link.yaml" };

		for (size_t i = 0; i < ELEMENTSOF(names); i++) {
			_cleanup_free_ char *p = strprintf("%s/%s", dir, names[i]);

			if (p)
				unlink(p);
		}
		rmdir(sub);
		unlink(outside);
		ASSERT(rmdir(dir) == 0);
	}
}

static void test_format(void)
{
	struct bw_diag d = { .file = (char *)"f.yaml", .line = 3, .column = 7, .field = (char *)"spec.mode", .reason = (char *)"bad" };
	char *s;

	s = bw_diag_format(&d);
	ASSERT_STREQ(s, "f.yaml:3:7: spec.mode: bad");
	free(s);
	d.field = NULL;
	s = bw_diag_format(&d);
	ASSERT_STREQ(s, "f.yaml:3:7: bad");
	free(s);
	d.line = 0;
	s = bw_diag_format(&d);
	ASSERT_STREQ(s, "f.yaml: bad");
	free(s);

	ASSERT_STREQ(bw_policy_kind_name(BW_KIND_CLUSTER), "ClusterBulwarkPolicy");
	ASSERT_STREQ(bw_policy_kind_name(BW_KIND_NAMESPACED), "BulwarkPolicy");
	ASSERT_STREQ(bw_policy_kind_name(BW_KIND_HOST), "HostBulwarkPolicy");
	ASSERT_STREQ(bw_mode_name(BW_MODE_BLOCK), "Block");
	ASSERT_STREQ(bw_mode_name(BW_MODE_AUDIT), "Audit");
}

/* Values quoted in messages are escaped and cut, so a policy cannot forge
 * log lines or flood them. */
static void test_quoting(void)
{
	EXPECT_BAD(NS_SPEC "  exec:\n    deny:\n      - path: \"bin/\\n\\\"x\\u0001\"\n", 10, 15, "spec.exec.deny[0].path",
		   "path \"bin/\\n\\\"x\\x01\" is relative; write an absolute path");
	EXPECT_BAD(NS_SPEC "  exec:\n    deny:\n      - {path: /bin/sh, \"a\\nb\": 1}\n", 10, 25, "spec.exec.deny[0].a?b",
		   "unknown field \"a\\nb\"; expected one of: path, prefix");
}

int main(void)
{
	test_format();
	test_cluster_full();
	test_namespaced_and_host();
	test_json_from_api();
	test_nulls_and_empty();
	test_limits_ok();
	test_bad_top_level();
	test_bad_metadata();
	test_bad_spec();
	test_bad_path_rules();
	test_bad_network();
	test_bad_selectors();
	test_bad_cgroups();
	test_ignored_fields();
	test_syntax_errors();
	test_files_and_dirs();
	test_quoting();
	bw_diags_clear(&last);

	return bw_test_summary();
}
