/* SPDX-License-Identifier: Apache-2.0 */
/* The policy compiler: rule sets from YAML policies (LPM entries, inherited
 * prefixes, masks, link resolution, network port rules, limits, interning)
 * and plans built from a fake cgroup tree and an inventory. */
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "compile.h"
#include "bulwark_decide.h"
#include "inventory.h"
#include "policy.h"

#include "bw-test.h"

#define BIT(n) (1ULL << (n))

/* ---- helpers --------------------------------------------------------------- */

/* Parses YAML documents into l; every document must be accepted. */
static void parse_into(struct bw_policy_list *l, const char *yaml)
{
	struct bw_diags d = { 0 };
	size_t before = l->n;
	int r = bw_policy_parse_buffer("test.yaml", yaml, strlen(yaml), l, &d);

	for (size_t i = 0; i < d.n; i++) {
		char *m = bw_diag_format(&d.items[i]);

		fprintf(stderr, "unexpected diagnostic: %s\n", m ? m : "?");
		free(m);
	}
	ASSERT(r == 0);
	ASSERT(d.n == 0);
	ASSERT(l->n > before);
	bw_diags_clear(&d);
}

static const char *rule_text(const struct bw_rule_table *rt, uint32_t id)
{
	const struct bw_rule_info *ri = bw_rule_get(rt, id);

	return ri ? ri->text : "";
}

/* The id the table gave (policy, text), 0 when it has none. Does not add. */
static uint32_t rule_id(const struct bw_rule_table *rt, const char *policy, const char *text)
{
	for (size_t i = 0; i < rt->n; i++)
		if (!strcmp(rt->rules[i].policy, policy) && !strcmp(rt->rules[i].text, text))
			return (uint32_t)(i + 1);
	return 0;
}

static const struct bw_path_entry *find_path(const struct bw_path_entry *e, size_t n, const char *str, bool exact)
{
	size_t len = strlen(str);
	uint32_t bits = (uint32_t)(exact ? len + 1 : len) * 8;

	for (size_t i = 0; i < n; i++)
		if (e[i].key.prefixlen == bits && !memcmp(e[i].key.data, str, len) &&
		    (!exact || e[i].key.data[len] == '\0'))
			return &e[i];
	return NULL;
}

static const struct bw_net4_entry *find_net4(const struct bw_compiled_ruleset *rs, const char *addr, unsigned plen)
{
	uint8_t a[4];

	if (inet_pton(AF_INET, addr, a) != 1)
		return NULL;
	for (size_t i = 0; i < rs->n_net4; i++)
		if (rs->net4[i].key.prefixlen == plen && !memcmp(rs->net4[i].key.addr, a, 4))
			return &rs->net4[i];
	return NULL;
}

static const struct bw_net6_entry *find_net6(const struct bw_compiled_ruleset *rs, const char *addr, unsigned plen)
{
	uint8_t a[16];

	if (inet_pton(AF_INET6, addr, a) != 1)
		return NULL;
	for (size_t i = 0; i < rs->n_net6; i++)
		if (rs->net6[i].key.prefixlen == plen && !memcmp(rs->net6[i].key.addr, a, 16))
			return &rs->net6[i];
	return NULL;
}

static bool has_port_rule(const struct bw_net_value *v, unsigned lo, unsigned hi, unsigned proto,
			  unsigned slot, unsigned allow, uint32_t id)
{
	for (uint32_t i = 0; i < v->count && i < BW_PORT_RULES_MAX; i++) {
		const struct bw_port_rule *r = &v->rules[i];

		if (r->port_lo == lo && r->port_hi == hi && r->protocol == proto && r->slot == slot &&
		    r->allow == allow && r->rule_id == id)
			return true;
	}
	return false;
}

static int rm_one(const char *p, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	(void)f;
	return type == FTW_DP ? rmdir(p) : unlink(p);
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A temporary directory, canonical (compile compares realpath() output
 * with the root it was given). */
static char *make_tmpdir(void)
{
	char tmpl[] = "/tmp/bw-test-compile-XXXXXX", *canon;

	if (!mkdtemp(tmpl)) {
		perror("mkdtemp");
		exit(2);
	}
	canon = realpath(tmpl, NULL);
	if (!canon) {
		perror("realpath");
		exit(2);
	}
	return canon;
}

static void mkdir_in(const char *root, const char *rel)
{
	char *p = xasprintf("%s%s", root, rel);

	if (mkdir(p, 0755) < 0) {
		fprintf(stderr, "mkdir %s: %m\n", p);
		exit(2);
	}
	free(p);
}

static void rmdir_in(const char *root, const char *rel)
{
	char *p = xasprintf("%s%s", root, rel);

	rmdir(p);
	free(p);
}

static uint64_t ino_of(const char *root, const char *rel)
{
	char *p = xasprintf("%s%s", root, rel);
	struct stat st;

	if (stat(p, &st) < 0) {
		fprintf(stderr, "stat %s: %m\n", p);
		exit(2);
	}
	free(p);
	return st.st_ino;
}

/* An empty root: no rule path resolves to anything else. */
static char *empty_root;

struct compiled {
	struct bw_compiled_ruleset rs;
	char *error;
	int ret;
};

static struct compiled compile_list(const struct bw_policy_list *l, const char *root, bool audit_only,
				    struct bw_rule_table *rt)
{
	struct bw_compile_options o = { .root = root ? root : empty_root, .audit_only = audit_only };
	struct compiled c;

	c.ret = bw_compile_ruleset(l->items, l->n, &o, rt, &c.rs, &c.error);
	return c;
}

static void compiled_done(struct compiled *c)
{
	bw_compiled_ruleset_clear(&c->rs);
	free(c->error);
}

#define HEADER(kind, name) "apiVersion: bulwark.dev/v1alpha1\nkind: " kind "\nmetadata:\n  name: " name "\n"

/* ---- path rules ------------------------------------------------------------ */

static void test_exact_and_prefix_keys(void)
{
	struct bw_policy_list l = { 0 };
	struct bw_rule_table rt = { 0 };
	struct compiled c;
	const struct bw_path_entry *sh, *tmp, *p;
	uint32_t id_sh, id_tmp;

	parse_into(&l, HEADER("ClusterBulwarkPolicy", "shells")
		   "spec:\n"
		   "  mode: Block\n"
		   "  exec:\n"
		   "    deny:\n"
		   "      - path: /bin/sh\n"
		   "      - prefix: /tmp/\n");
	c = compile_list(&l, NULL, false, &rt);
	ASSERT(c.ret == 0);
	ASSERT(c.error == NULL);
	ASSERT(c.rs.n_exec == 2);
	ASSERT(c.rs.n_file == 0 && c.rs.n_net4 == 0 && c.rs.n_net6 == 0);
	ASSERT(c.rs.config.tries == BW_TRIE_EXEC);
	ASSERT(c.rs.config.block_mask == BIT(0));
	ASSERT(c.rs.config.generation == 0);
	ASSERT(c.rs.n_slots == 1);
	ASSERT(c.rs.slots[0].policy && !strcmp(c.rs.slots[0].policy, "ClusterBulwarkPolicy shells"));
	ASSERT(c.rs.slots[0].mode == BW_MODE_BLOCK);

	id_sh = rule_id(&rt, "ClusterBulwarkPolicy shells", "exec.deny[0] path /bin/sh");
	id_tmp = rule_id(&rt, "ClusterBulwarkPolicy shells", "exec.deny[1] prefix /tmp/");
	ASSERT(id_sh != 0);
	ASSERT(id_tmp != 0);
	ASSERT(id_sh != id_tmp);

	/* Exact: the NUL is part of the key. */
	sh = find_path(c.rs.exec, c.rs.n_exec, "/bin/sh", true);
	ASSERT(sh != NULL);
	if (sh) {
		ASSERT(sh->key.prefixlen == (strlen("/bin/sh") + 1) * 8);
		ASSERT(sh->key.data[7] == '\0');
		ASSERT(sh->value.access[0].deny_mask == BIT(0));
		ASSERT(sh->value.access[0].allow_mask == 0);
		ASSERT(sh->value.access[0].rule_id == id_sh);
		/* exec uses access[0] only */
		ASSERT(sh->value.access[1].deny_mask == 0 && sh->value.access[1].rule_id == 0);
	}
	/* Prefix: no NUL. */
	tmp = find_path(c.rs.exec, c.rs.n_exec, "/tmp/", false);
	ASSERT(tmp != NULL);
	if (tmp) {
		ASSERT(tmp->key.prefixlen == strlen("/tmp/") * 8);
		ASSERT(tmp->value.access[0].deny_mask == BIT(0));
		ASSERT(tmp->value.access[0].rule_id == id_tmp);
	}
	/* Neither comes in the other form. */
	ASSERT(find_path(c.rs.exec, c.rs.n_exec, "/bin/sh", false) == NULL);
	ASSERT(find_path(c.rs.exec, c.rs.n_exec, "/tmp/", true) == NULL);
	/* Bytes past the key are zero, so equal rule sets compare equal. */
	for (size_t i = 0; i < c.rs.n_exec; i++) {
		bool clean = true;

		p = &c.rs.exec[i];
		for (size_t b = p->key.prefixlen / 8; b < BW_PATH_KEY_MAX; b++)
			clean &= p->key.data[b] == 0;
		ASSERT(clean);
	}
	ASSERT(!strcmp(rule_text(&rt, id_sh), "exec.deny[0] path /bin/sh"));

	compiled_done(&c);
	bw_policy_list_clear(&l);
	bw_rule_table_clear(&rt);
}

static void test_longest_path_rule(void)
{
	/* A 255-byte exact rule (the maximum) fills the whole key with its NUL. */
	struct bw_policy_list l = { 0 };
	struct bw_rule_table rt = { 0 };
	char path[BW_RULE_PATH_MAX + 1], *yaml;
	const struct bw_path_entry *e;
	struct compiled c;

	path[0] = '/';
	memset(path + 1, 'a', BW_RULE_PATH_MAX - 1);
	path[BW_RULE_PATH_MAX] = '\0';
	yaml = xasprintf(HEADER("ClusterBulwarkPolicy", "long") "spec:\n  mode: Block\n"
			 "  files:\n    deny:\n      - path: %s\n      - prefix: %s\n", path, path);
	parse_into(&l, yaml);
	c = compile_list(&l, NULL, false, &rt);
	ASSERT(c.ret == 0);
	ASSERT(c.rs.n_file == 2);
	e = find_path(c.rs.file, c.rs.n_file, path, true);
	ASSERT(e && e->key.prefixlen == BW_PATH_KEY_MAX * 8);
	e = find_path(c.rs.file, c.rs.n_file, path, false);
	ASSERT(e && e->key.prefixlen == BW_RULE_PATH_MAX * 8);
	compiled_done(&c);
	bw_policy_list_clear(&l);
	bw_rule_table_clear(&rt);
	free(yaml);
}

static void test_inheritance(void)
{
	struct bw_policy_list l = { 0 };
	struct bw_rule_table rt = { 0 };
	const struct bw_path_entry *ok, *tmp;
	struct compiled c;
	uint32_t deny_id;

	parse_into(&l, HEADER("ClusterBulwarkPolicy", "no-tmp")
		   "spec:\n  mode: Block\n"
		   "  files:\n    deny:\n      - prefix: /tmp/\n");
	parse_into(&l, HEADER("ClusterBulwarkPolicy", "tmp-ok")
		   "spec:\n  mode: Audit\n"
		   "  files:\n    allow:\n      - path: /tmp/ok\n");
	c = compile_list(&l, NULL, false, &rt);
	ASSERT(c.ret == 0);
	ASSERT(c.rs.n_file == 2);
	ASSERT(c.rs.config.tries == BW_TRIE_FILE);
	deny_id = rule_id(&rt, "ClusterBulwarkPolicy no-tmp", "files.deny[0] prefix /tmp/");
	ASSERT(deny_id != 0);

	ok = find_path(c.rs.file, c.rs.n_file, "/tmp/ok", true);
	ASSERT(ok != NULL);
	if (ok) {
		for (int a = 0; a < 2; a++) {
			/* both masks: its own allow, the inherited deny */
			ASSERT(ok->value.access[a].deny_mask == BIT(0));
			ASSERT(ok->value.access[a].allow_mask == BIT(1));
			ASSERT(ok->value.access[a].rule_id == deny_id);
		}
	}
	tmp = find_path(c.rs.file, c.rs.n_file, "/tmp/", false);
	ASSERT(tmp != NULL);
	if (tmp) {
		ASSERT(tmp->value.access[0].deny_mask == BIT(0));
		ASSERT(tmp->value.access[0].allow_mask == 0); /* nothing flows to shorter keys */
	}
	compiled_done(&c);
	bw_policy_list_clear(&l);
	bw_rule_table_clear(&rt);

	/* An exact rule does not pass its verdict to longer paths, a prefix
	 * rule that is not a path-component prefix still does (byte prefix). */
	parse_into(&l, HEADER("ClusterBulwarkPolicy", "p")
		   "spec:\n  mode: Block\n"
		   "  exec:\n    deny:\n      - path: /usr/bin/py\n      - prefix: /usr/bin/py\n"
		   "    allow:\n      - path: /usr/bin/python3\n      - path: /usr/bin/p\n");
	c = compile_list(&l, NULL, false, &rt);
	ASSERT(c.ret == 0);
	{
		const struct bw_path_entry *py3 = find_path(c.rs.exec, c.rs.n_exec, "/usr/bin/python3", true);
		const struct bw_path_entry *p = find_path(c.rs.exec, c.rs.n_exec, "/usr/bin/p", true);
		const struct bw_path_entry *py = find_path(c.rs.exec, c.rs.n_exec, "/usr/bin/py", true);
		uint32_t prefix_id = rule_id(&rt, "ClusterBulwarkPolicy p", "exec.deny[1] prefix /usr/bin/py");
		uint32_t exact_id = rule_id(&rt, "ClusterBulwarkPolicy p", "exec.deny[0] path /usr/bin/py");

		ASSERT(py3 && py3->value.access[0].deny_mask == BIT(0));
		ASSERT(py3 && py3->value.access[0].rule_id == prefix_id);
		ASSERT(p && p->value.access[0].deny_mask == 0);
		/* The exact rule is reported over the equal-length prefix rule. */
		ASSERT(py && py->value.access[0].rule_id == exact_id);
		ASSERT(prefix_id != exact_id);
	}
	compiled_done(&c);
	bw_policy_list_clear(&l);
	bw_rule_table_clear(&rt);
}

static void test_most_specific_block_rule(void)
{
	struct bw_policy_list l = { 0 };
	struct bw_rule_table rt = { 0 };
	struct compiled c;
	uint32_t usr, local, x;
	const struct bw_path_entry *e;

	parse_into(&l, HEADER("ClusterBulwarkPolicy", "a")
		   "spec:\n  mode: Block\n"
		   "  exec:\n    deny:\n      - prefix: /usr/\n      - prefix: /usr/local/\n");
	parse_into(&l, HEADER("ClusterBulwarkPolicy", "b")
		   "spec:\n  mode: Audit\n"
		   "  exec:\n    deny:\n      - path: /usr/local/bin/x\n");
	c = compile_list(&l, NULL, false, &rt);
	ASSERT(c.ret == 0);
	usr = rule_id(&rt, "ClusterBulwarkPolicy a", "exec.deny[0] prefix /usr/");
	local = rule_id(&rt, "ClusterBulwarkPolicy a", "exec.deny[1] prefix /usr/local/");
	x = rule_id(&rt, "ClusterBulwarkPolicy b", "exec.deny[0] path /usr/local/bin/x");
	ASSERT(usr && local && x);

	e = find_path(c.rs.exec, c.rs.n_exec, "/usr/local/bin/x", true);
	ASSERT(e != NULL);
	if (e) {
		ASSERT(e->value.access[0].deny_mask == (BIT(0) | BIT(1)));
		/* The most specific Block rule, not the more specific Audit one. */
		ASSERT(e->value.access[0].rule_id == local);
	}
	e = find_path(c.rs.exec, c.rs.n_exec, "/usr/local/", false);
	ASSERT(e && e->value.access[0].rule_id == local);
	e = find_path(c.rs.exec, c.rs.n_exec, "/usr/", false);
	ASSERT(e && e->value.access[0].rule_id == usr);
	compiled_done(&c);

	/* Everything in Audit: bw_decide() reports the lowest denying slot
	 * (policy a), so the rule is a's most specific one, not b's. */
	c = compile_list(&l, NULL, true, &rt);
	ASSERT(c.ret == 0);
	e = find_path(c.rs.exec, c.rs.n_exec, "/usr/local/bin/x", true);
	ASSERT(e && e->value.access[0].rule_id == local);
	if (e) {
		struct bw_ruleset cfg = c.rs.config;
		struct bw_outcome o = bw_decide(&cfg, BW_CLASS_EXEC, e->value.access[0].deny_mask,
						 e->value.access[0].allow_mask, e->value.access[0].rule_id);
		const struct bw_rule_info *ri = bw_rule_get(&rt, o.rule_id);

		/* The reported slot and the reported rule name the same policy. */
		ASSERT(ri && !strcmp(ri->policy, c.rs.slots[o.slot].policy));
	}
	compiled_done(&c);
	bw_policy_list_clear(&l);
	bw_rule_table_clear(&rt);
}

static void test_files_access(void)
{
	struct bw_policy_list l = { 0 };
	struct bw_rule_table rt = { 0 };
	const struct bw_path_entry *e;
	struct compiled c;

	parse_into(&l, HEADER("ClusterBulwarkPolicy", "files")
		   "spec:\n  mode: Block\n"
		   "  files:\n    deny:\n"
		   "      - path: /etc/shadow\n        access: [read]\n"
		   "      - path: /etc/passwd\n        access: [write]\n"
		   "      - path: /etc/gshadow\n"
		   "      - prefix: /proc/\n        access: [read, write]\n");
	c = compile_list(&l, NULL, false, &rt);
	ASSERT(c.ret == 0);
	ASSERT(c.rs.n_file == 4);
	ASSERT(c.rs.n_exec == 0);
	ASSERT(c.rs.config.tries == BW_TRIE_FILE);

	e = find_path(c.rs.file, c.rs.n_file, "/etc/shadow", true);
	ASSERT(e != NULL);
	if (e) {
		ASSERT(e->value.access[0].deny_mask == BIT(0));
		ASSERT(e->value.access[0].rule_id != 0);
		ASSERT(e->value.access[1].deny_mask == 0);
		ASSERT(e->value.access[1].rule_id == 0);
	}
	e = find_path(c.rs.file, c.rs.n_file, "/etc/passwd", true);
	ASSERT(e != NULL);
	if (e) {
		ASSERT(e->value.access[0].deny_mask == 0);
		ASSERT(e->value.access[1].deny_mask == BIT(0));
		ASSERT(e->value.access[1].rule_id != 0);
	}
	e = find_path(c.rs.file, c.rs.n_file, "/etc/gshadow", true);
	ASSERT(e && e->value.access[0].deny_mask == BIT(0) && e->value.access[1].deny_mask == BIT(0));
	e = find_path(c.rs.file, c.rs.n_file, "/proc/", false);
	ASSERT(e && e->value.access[0].deny_mask == BIT(0) && e->value.access[1].deny_mask == BIT(0));
	/* Deny lists do not make allow lists. */
	for (int i = 0; i < BW_CLASS_COUNT; i++)
		ASSERT(c.rs.config.allowlist_mask[i] == 0);
	compiled_done(&c);
	bw_policy_list_clear(&l);
	bw_rule_table_clear(&rt);
}

static void test_allowlist_masks(void)
{
	struct bw_policy_list l = { 0 };
	struct bw_rule_table rt = { 0 };
	const struct bw_path_entry *e;
	struct compiled c;

	parse_into(&l, HEADER("ClusterBulwarkPolicy", "a-files")
		   "spec:\n  mode: Block\n"
		   "  files:\n    allow:\n      - prefix: /data/\n        access: [read]\n");
	parse_into(&l, HEADER("ClusterBulwarkPolicy", "b-exec")
		   "spec:\n  mode: Block\n"
		   "  exec:\n    allow:\n      - prefix: /usr/bin/\n");
	parse_into(&l, HEADER("ClusterBulwarkPolicy", "c-net")
		   "spec:\n  mode: Audit\n"
		   "  network:\n    allow:\n      - cidr: 10.0.0.0/8\n");
	c = compile_list(&l, NULL, false, &rt);
	ASSERT(c.ret == 0);
	/* A files allow list restricts reads and writes, even read-only entries. */
	ASSERT(c.rs.config.allowlist_mask[BW_CLASS_FILE_READ] == BIT(0));
	ASSERT(c.rs.config.allowlist_mask[BW_CLASS_FILE_WRITE] == BIT(0));
	ASSERT(c.rs.config.allowlist_mask[BW_CLASS_EXEC] == BIT(1));
	ASSERT(c.rs.config.allowlist_mask[BW_CLASS_NET] == BIT(2));
	ASSERT(c.rs.config.block_mask == (BIT(0) | BIT(1)));
	ASSERT(c.rs.config.tries == (BW_TRIE_EXEC | BW_TRIE_FILE | BW_TRIE_NET4));

	e = find_path(c.rs.file, c.rs.n_file, "/data/", false);
	ASSERT(e && e->value.access[0].allow_mask == BIT(0));
	ASSERT(e && e->value.access[1].allow_mask == 0); /* reads only */
	ASSERT(e && e->value.access[0].deny_mask == 0 && e->value.access[0].rule_id == 0);
	e = find_path(c.rs.exec, c.rs.n_exec, "/usr/bin/", false);
	ASSERT(e && e->value.access[0].allow_mask == BIT(1));
	{
		const struct bw_net4_entry *n = find_net4(&c.rs, "10.0.0.0", 8);

		ASSERT(n && n->value.count == 1);
		ASSERT(n && has_port_rule(&n->value, 0, 65535, BW_PROTO_ANY, 2, 1,
					  rule_id(&rt, "ClusterBulwarkPolicy c-net", "network.allow[0] cidr 10.0.0.0/8")));
	}
	compiled_done(&c);
	bw_policy_list_clear(&l);
	bw_rule_table_clear(&rt);
}

static void test_audit_only(void)
{
	struct bw_policy_list l = { 0 };
	struct bw_rule_table rt = { 0 };
	struct compiled c;

	parse_into(&l, HEADER("ClusterBulwarkPolicy", "a")
		   "spec:\n  mode: Block\n  exec:\n    deny:\n      - path: /bin/sh\n"
		   "    allow:\n      - prefix: /usr/\n");
	parse_into(&l, HEADER("HostBulwarkPolicy", "b")
		   "spec:\n  mode: Block\n  files:\n    deny:\n      - path: /etc/shadow\n");
	c = compile_list(&l, NULL, false, &rt);
	ASSERT(c.ret == 0);
	ASSERT(c.rs.config.block_mask == (BIT(0) | BIT(1)));
	compiled_done(&c);

	c = compile_list(&l, NULL, true, &rt);
	ASSERT(c.ret == 0);
	ASSERT(c.rs.config.block_mask == 0);
	ASSERT(c.rs.slots[0].mode == BW_MODE_AUDIT);
	ASSERT(c.rs.slots[1].mode == BW_MODE_AUDIT);
	/* Rules and allow lists stay: they are audited now. */
	ASSERT(c.rs.config.allowlist_mask[BW_CLASS_EXEC] == BIT(0));
	ASSERT(c.rs.n_exec == 2 && c.rs.n_file == 1);
	{
		const struct bw_path_entry *e = find_path(c.rs.exec, c.rs.n_exec, "/bin/sh", true);

		ASSERT(e && e->value.access[0].deny_mask == BIT(0) && e->value.access[0].rule_id != 0);
	}
	compiled_done(&c);
	bw_policy_list_clear(&l);
	bw_rule_table_clear(&rt);
}

/* ---- links ------------------------------------------------------------------- */

static void test_link_resolution(void)
{
	struct bw_policy_list l = { 0 };
	struct bw_rule_table rt = { 0 };
	char *root = make_tmpdir(), *p;
	const struct bw_path_entry *e;
	struct compiled c;
	uint32_t sh_id, bin_id;
	FILE *f;

	mkdir_in(root, "/usr");
	mkdir_in(root, "/usr/bin");
	p = xasprintf("%s/usr/bin/dash", root);
	f = fopen(p, "w");
	ASSERT(f != NULL);
	if (f)
		fclose(f);
	free(p);
	p = xasprintf("%s/bin", root);
	ASSERT(symlink("usr/bin", p) == 0);
	free(p);
	p = xasprintf("%s/usr/bin/sh", root);
	ASSERT(symlink("dash", p) == 0);
	free(p);

	parse_into(&l, HEADER("ClusterBulwarkPolicy", "links")
		   "spec:\n  mode: Block\n"
		   "  exec:\n    deny:\n      - path: /bin/sh\n      - prefix: /bin/\n"
		   "      - path: /bin/missing\n      - path: /usr/bin/dash\n");
	c = compile_list(&l, root, false, &rt);
	ASSERT(c.ret == 0);
	sh_id = rule_id(&rt, "ClusterBulwarkPolicy links", "exec.deny[0] path /bin/sh");
	bin_id = rule_id(&rt, "ClusterBulwarkPolicy links", "exec.deny[1] prefix /bin/");
	ASSERT(sh_id && bin_id);

	e = find_path(c.rs.exec, c.rs.n_exec, "/bin/sh", true);
	ASSERT(e && e->value.access[0].rule_id == sh_id);
	/* the file the kernel will see */
	e = find_path(c.rs.exec, c.rs.n_exec, "/usr/bin/dash", true);
	ASSERT(e != NULL);
	ASSERT(e && e->value.access[0].deny_mask == BIT(0));
	e = find_path(c.rs.exec, c.rs.n_exec, "/bin/", false);
	ASSERT(e && e->value.access[0].rule_id == bin_id);
	e = find_path(c.rs.exec, c.rs.n_exec, "/usr/bin/", false);
	ASSERT(e != NULL);
	ASSERT(e && e->value.access[0].rule_id == bin_id);
	/* A missing file resolves to nothing more; the link itself is not
	 * followed as a name ("/usr/bin/sh" is only reached through /bin/sh). */
	e = find_path(c.rs.exec, c.rs.n_exec, "/bin/missing", true);
	ASSERT(e != NULL);
	ASSERT(find_path(c.rs.exec, c.rs.n_exec, "/usr/bin/missing", true) == NULL);
	ASSERT(find_path(c.rs.exec, c.rs.n_exec, "/usr/bin/sh", true) == NULL);
	/* /bin/sh, /usr/bin/dash (twice: resolved and written), /bin/,
	 * /usr/bin/, /bin/missing: five keys. */
	ASSERT(c.rs.n_exec == 5);
	compiled_done(&c);

	/* Without the links (empty root) no extra entry appears. */
	c = compile_list(&l, NULL, false, &rt);
	ASSERT(c.ret == 0);
	ASSERT(find_path(c.rs.exec, c.rs.n_exec, "/usr/bin/", false) == NULL);
	ASSERT(c.rs.n_exec == 4);
	compiled_done(&c);

	bw_policy_list_clear(&l);
	bw_rule_table_clear(&rt);
	rm_rf(root);
	free(root);
}

/* ---- network ----------------------------------------------------------------- */

static void test_net_entries(void)
{
	struct bw_policy_list l = { 0 };
	struct bw_rule_table rt = { 0 };
	const struct bw_net4_entry *n8, *n16;
	const struct bw_net6_entry *n6;
	struct compiled c;
	uint32_t deny8, allow16, deny6;

	parse_into(&l, HEADER("ClusterBulwarkPolicy", "a")
		   "spec:\n  mode: Block\n"
		   "  network:\n    deny:\n"
		   "      - cidr: 10.0.0.0/8\n        ports: [22]\n"
		   "      - cidr: 2001:db8::/32\n        ports: [443]\n        protocol: TCP\n");
	parse_into(&l, HEADER("ClusterBulwarkPolicy", "b")
		   "spec:\n  mode: Audit\n"
		   "  network:\n    allow:\n"
		   "      - cidr: 10.1.0.0/16\n        ports: [443, \"8000-8080\"]\n        protocol: UDP\n");
	c = compile_list(&l, NULL, false, &rt);
	ASSERT(c.ret == 0);
	ASSERT(c.rs.n_net4 == 2);
	ASSERT(c.rs.n_net6 == 1);
	ASSERT(c.rs.config.tries == (BW_TRIE_NET4 | BW_TRIE_NET6));
	ASSERT(c.rs.config.allowlist_mask[BW_CLASS_NET] == BIT(1));
	deny8 = rule_id(&rt, "ClusterBulwarkPolicy a", "network.deny[0] cidr 10.0.0.0/8");
	deny6 = rule_id(&rt, "ClusterBulwarkPolicy a", "network.deny[1] cidr 2001:db8::/32");
	allow16 = rule_id(&rt, "ClusterBulwarkPolicy b", "network.allow[0] cidr 10.1.0.0/16");
	ASSERT(deny8 && deny6 && allow16);

	n8 = find_net4(&c.rs, "10.0.0.0", 8);
	ASSERT(n8 != NULL);
	if (n8) {
		ASSERT(n8->value.count == 1);
		ASSERT(has_port_rule(&n8->value, 22, 22, BW_PROTO_ANY, 0, 0, deny8));
	}
	n16 = find_net4(&c.rs, "10.1.0.0", 16);
	ASSERT(n16 != NULL);
	if (n16) {
		/* its own two port rules, then the /8 deny it inherits */
		ASSERT(n16->value.count == 3);
		ASSERT(has_port_rule(&n16->value, 443, 443, BW_PROTO_UDP, 1, 1, allow16));
		ASSERT(has_port_rule(&n16->value, 8000, 8080, BW_PROTO_UDP, 1, 1, allow16));
		ASSERT(has_port_rule(&n16->value, 22, 22, BW_PROTO_ANY, 0, 0, deny8));
		ASSERT(n16->value.rules[2].rule_id == deny8);
	}
	n6 = find_net6(&c.rs, "2001:db8::", 32);
	ASSERT(n6 != NULL);
	if (n6) {
		ASSERT(n6->value.count == 1);
		ASSERT(has_port_rule(&n6->value, 443, 443, BW_PROTO_TCP, 0, 0, deny6));
	}
	/* v4 rules do not leak into the v6 trie or the reverse. */
	ASSERT(find_net6(&c.rs, "::", 8) == NULL);
	compiled_done(&c);
	bw_policy_list_clear(&l);
	bw_rule_table_clear(&rt);
}

/* A policy with one rule per CIDR, each listing n ports. */
static char *ports_policy(const char *name, const char *cidr, unsigned n, unsigned base)
{
	char *ports = xasprintf("%u", base), *yaml;

	for (unsigned i = 1; i < n; i++) {
		char *next = xasprintf("%s, %u", ports, base + i);

		free(ports);
		ports = next;
	}
	yaml = xasprintf("apiVersion: bulwark.dev/v1alpha1\nkind: ClusterBulwarkPolicy\nmetadata:\n  name: %s\n"
			 "spec:\n  mode: Block\n  network:\n    deny:\n      - cidr: %s\n        ports: [%s]\n",
			 name, cidr, ports);
	free(ports);
	return yaml;
}


/* 16 port rules on cidr_a plus one on cidr_b (inside it) cannot be merged:
 * -E2BIG naming the network that overflows. */
static void expect_too_many_ports(struct bw_rule_table *rt, const char *cidr_a, const char *cidr_b,
				  const char *named)
{
	struct bw_policy_list l = { 0 };
	struct compiled c;
	char *y;

	y = ports_policy("many", cidr_a, 16, 100);
	parse_into(&l, y);
	free(y);
	y = ports_policy("one-more", cidr_b, 1, 999);
	parse_into(&l, y);
	free(y);
	c = compile_list(&l, NULL, false, rt);
	ASSERT(c.ret == -E2BIG);
	ASSERT(c.error && strstr(c.error, named) != NULL);
	compiled_done(&c);
	bw_policy_list_clear(&l);
}

static void test_net_port_limit(void)
{
	struct bw_rule_table rt = { 0 };
	struct bw_policy_list l = { 0 };
	struct compiled c;
	char *y;

	/* 9 + 7 = 16 port rules on the /16: fits exactly. */
	y = ports_policy("wide", "10.0.0.0/8", 9, 1000);
	parse_into(&l, y);
	free(y);
	y = ports_policy("narrow", "10.1.0.0/16", 7, 2000);
	parse_into(&l, y);
	free(y);
	c = compile_list(&l, NULL, false, &rt);
	ASSERT(c.ret == 0);
	ASSERT(c.error == NULL);
	{
		const struct bw_net4_entry *n16 = find_net4(&c.rs, "10.1.0.0", 16);

		ASSERT(n16 && n16->value.count == BW_PORT_RULES_MAX);
	}
	compiled_done(&c);
	bw_policy_list_clear(&l);

	/* 10 + 7 = 17: refused, naming the network that overflows. */
	y = ports_policy("wide", "10.0.0.0/8", 10, 1000);
	parse_into(&l, y);
	free(y);
	y = ports_policy("narrow", "10.1.0.0/16", 7, 2000);
	parse_into(&l, y);
	free(y);
	c = compile_list(&l, NULL, false, &rt);
	ASSERT(c.ret == -E2BIG);
	ASSERT(c.error != NULL);
	ASSERT(c.error && strstr(c.error, "10.1.0.0/16") != NULL);
	ASSERT(c.error && strstr(c.error, "10.0.0.0/8") == NULL); /* the /8 itself fits */
	/* nothing is left half-built */
	ASSERT(c.rs.exec == NULL && c.rs.net4 == NULL && c.rs.n_net4 == 0 && c.rs.n_slots == 0);
	compiled_done(&c);
	bw_policy_list_clear(&l);

	/* Two policies' 16 + 1 ports on one CIDR, and the same for IPv6. */
	expect_too_many_ports(&rt, "192.168.0.0/24", "192.168.0.0/24", "192.168.0.0/24");
	expect_too_many_ports(&rt, "2001:db8::/32", "2001:db8:1::/48", "2001:db8:1::/48");
	bw_rule_table_clear(&rt);
}

/* ---- limits, equality, interning ------------------------------------------- */

static void test_too_many_policies(void)
{
	struct bw_rule_table rt = { 0 };
	struct bw_policy_list l = { 0 };
	struct compiled c;

	for (int i = 0; i < BW_SLOTS_MAX; i++) {
		char *y = xasprintf(HEADER("ClusterBulwarkPolicy", "p%02d")
				    "spec:\n  mode: Block\n  exec:\n    deny:\n      - path: /bin/sh\n", i);

		parse_into(&l, y);
		free(y);
	}
	ASSERT(l.n == BW_SLOTS_MAX);
	c = compile_list(&l, NULL, false, &rt);
	ASSERT(c.ret == 0);
	ASSERT(c.rs.n_slots == BW_SLOTS_MAX);
	ASSERT(c.rs.config.block_mask == ~0ULL);
	{
		const struct bw_path_entry *e = find_path(c.rs.exec, c.rs.n_exec, "/bin/sh", true);

		ASSERT(c.rs.n_exec == 1);
		ASSERT(e && e->value.access[0].deny_mask == ~0ULL);
	}
	compiled_done(&c);

	parse_into(&l, HEADER("ClusterBulwarkPolicy", "one-too-many") "spec:\n  mode: Audit\n");
	ASSERT(l.n == BW_SLOTS_MAX + 1);
	c = compile_list(&l, NULL, false, &rt);
	ASSERT(c.ret == -E2BIG);
	ASSERT(c.error && strstr(c.error, "65") != NULL);
	compiled_done(&c);
	bw_policy_list_clear(&l);
	bw_rule_table_clear(&rt);
}

static const char equal_base[] =
	HEADER("ClusterBulwarkPolicy", "eq")
	"spec:\n  mode: Block\n"
	"  exec:\n    deny:\n      - path: /bin/sh\n      - prefix: /tmp/\n"
	"  files:\n    deny:\n      - path: /etc/shadow\n        access: [read]\n"
	"  network:\n    deny:\n      - cidr: 10.0.0.0/8\n      - cidr: fd00::/8\n        ports: [53]\n";

static void test_equal_and_interning(void)
{
	struct bw_rule_table rt = { 0 };
	struct bw_policy_list l1 = { 0 }, l2 = { 0 }, l3 = { 0 }, l4 = { 0 }, l5 = { 0 };
	struct compiled a, b, changed, mode, other;
	uint32_t sh1, sh2;
	size_t n_rules;

	parse_into(&l1, equal_base);
	parse_into(&l2, equal_base); /* parsed separately: same content */
	a = compile_list(&l1, NULL, false, &rt);
	sh1 = rule_id(&rt, "ClusterBulwarkPolicy eq", "exec.deny[0] path /bin/sh");
	n_rules = rt.n;
	b = compile_list(&l2, NULL, false, &rt);
	sh2 = rule_id(&rt, "ClusterBulwarkPolicy eq", "exec.deny[0] path /bin/sh");
	ASSERT(a.ret == 0 && b.ret == 0);
	ASSERT(n_rules == 5);
	ASSERT(rt.n == n_rules); /* nothing new interned */
	ASSERT(sh1 != 0 && sh1 == sh2);
	ASSERT(bw_compiled_ruleset_equal(&a.rs, &b.rs));
	ASSERT(bw_compiled_ruleset_equal(&b.rs, &a.rs));
	/* generation is the publisher's: it does not count */
	b.rs.config.generation = 7;
	ASSERT(bw_compiled_ruleset_equal(&a.rs, &b.rs));

	/* One more rule. */
	parse_into(&l3, HEADER("ClusterBulwarkPolicy", "eq")
		   "spec:\n  mode: Block\n"
		   "  exec:\n    deny:\n      - path: /bin/sh\n      - prefix: /tmp/\n      - path: /bin/bash\n"
		   "  files:\n    deny:\n      - path: /etc/shadow\n        access: [read]\n"
		   "  network:\n    deny:\n      - cidr: 10.0.0.0/8\n      - cidr: fd00::/8\n        ports: [53]\n");
	changed = compile_list(&l3, NULL, false, &rt);
	ASSERT(changed.ret == 0);
	ASSERT(!bw_compiled_ruleset_equal(&a.rs, &changed.rs));
	ASSERT(rule_id(&rt, "ClusterBulwarkPolicy eq", "exec.deny[0] path /bin/sh") == sh1);
	ASSERT(rt.n == n_rules + 1);

	/* Only the mode differs. */
	parse_into(&l4, HEADER("ClusterBulwarkPolicy", "eq")
		   "spec:\n  mode: Audit\n"
		   "  exec:\n    deny:\n      - path: /bin/sh\n      - prefix: /tmp/\n"
		   "  files:\n    deny:\n      - path: /etc/shadow\n        access: [read]\n"
		   "  network:\n    deny:\n      - cidr: 10.0.0.0/8\n      - cidr: fd00::/8\n        ports: [53]\n");
	mode = compile_list(&l4, NULL, false, &rt);
	ASSERT(mode.ret == 0);
	ASSERT(!bw_compiled_ruleset_equal(&a.rs, &mode.rs));

	/* Only a port differs (network entries compared too). */
	parse_into(&l5, HEADER("ClusterBulwarkPolicy", "eq")
		   "spec:\n  mode: Block\n"
		   "  exec:\n    deny:\n      - path: /bin/sh\n      - prefix: /tmp/\n"
		   "  files:\n    deny:\n      - path: /etc/shadow\n        access: [read]\n"
		   "  network:\n    deny:\n      - cidr: 10.0.0.0/8\n      - cidr: fd00::/8\n        ports: [54]\n");
	other = compile_list(&l5, NULL, false, &rt);
	ASSERT(other.ret == 0);
	ASSERT(!bw_compiled_ruleset_equal(&a.rs, &other.rs));
	compiled_done(&other);

	/* The same rule keeps its id in another combination of policies. */
	parse_into(&l5, HEADER("ClusterBulwarkPolicy", "another") "spec:\n  mode: Audit\n"
		   "  exec:\n    deny:\n      - path: /bin/sh\n");
	{
		struct bw_policy *pair[2] = { l5.items[1], l1.items[0] };
		struct bw_compile_options o = { .root = empty_root };
		const struct bw_path_entry *e;
		char *error = NULL;
		int r = bw_compile_ruleset(pair, 2, &o, &rt, &other.rs, &error);

		ASSERT(r == 0);
		/* slot 1 is "eq" now: its Block rule is the one reported */
		e = find_path(other.rs.exec, other.rs.n_exec, "/bin/sh", true);
		ASSERT(e && e->value.access[0].rule_id == sh1);
		ASSERT(e && e->value.access[0].deny_mask == (BIT(0) | BIT(1)));
		ASSERT(!bw_compiled_ruleset_equal(&a.rs, &other.rs));
		bw_compiled_ruleset_clear(&other.rs);
		free(error);
	}

	/* A fresh table numbers from 1 again: ids are per table. */
	{
		struct bw_rule_table rt2 = { 0 };
		struct compiled d = compile_list(&l2, NULL, false, &rt2);

		ASSERT(d.ret == 0);
		ASSERT(rt2.n == n_rules);
		ASSERT(bw_compiled_ruleset_equal(&a.rs, &d.rs)); /* same first ids */
		compiled_done(&d);
		bw_rule_table_clear(&rt2);
	}

	compiled_done(&a);
	compiled_done(&b);
	compiled_done(&changed);
	compiled_done(&mode);
	bw_policy_list_clear(&l1);
	bw_policy_list_clear(&l2);
	bw_policy_list_clear(&l3);
	bw_policy_list_clear(&l4);
	bw_policy_list_clear(&l5);
	bw_rule_table_clear(&rt);
}

static void test_rule_table(void)
{
	struct bw_rule_table rt = { 0 };
	uint32_t a, b, c;

	a = bw_rule_intern(&rt, "P x", "exec.deny[0] path /a");
	b = bw_rule_intern(&rt, "P x", "exec.deny[1] path /a");
	c = bw_rule_intern(&rt, "P y", "exec.deny[0] path /a");
	ASSERT(a == 1 && b == 2 && c == 3);
	ASSERT(bw_rule_intern(&rt, "P x", "exec.deny[0] path /a") == a);
	ASSERT(bw_rule_get(&rt, 0) == NULL);
	ASSERT(bw_rule_get(&rt, 4) == NULL);
	ASSERT(bw_rule_get(&rt, 3) && !strcmp(bw_rule_get(&rt, 3)->policy, "P y"));
	/* Past a rehash, ids stay. */
	for (int i = 0; i < 3000; i++) {
		char t[32];

		snprintf(t, sizeof(t), "r%d", i);
		if (bw_rule_intern(&rt, "P z", t) != (uint32_t)(4 + i)) {
			ASSERT(!"interned id out of sequence");
			break;
		}
	}
	ASSERT(bw_rule_intern(&rt, "P y", "exec.deny[0] path /a") == c);
	ASSERT(bw_rule_intern(&rt, "P z", "r2999") == 3003);
	ASSERT(rt.n == 3003);
	bw_rule_table_clear(&rt);
	ASSERT(rt.n == 0 && rt.rules == NULL);
}

/* ---- plans ------------------------------------------------------------------- */

static const char *const tree[] = {
	"/kubepods",
	"/kubepods/pod1",
	"/kubepods/pod1/ctr1",
	"/kubepods/pod1/ctr2",
	"/kubepods/pod2",
	"/kubepods/pod3",
	"/kubepods/pod4",
	"/kubepods/pod5",
	"/system.slice",
	"/system.slice/nginx.service",
	"/system.slice/nginx.service/worker",
	"/system.slice/nginx.service/agent",
	"/system.slice/sshd.service",
	"/system.slice/sshd.service/sub",
};

static const char inventory_yaml[] =
	"namespaces:\n"
	"  - name: prod\n"
	"    labels: {bulwark.dev/locked: \"true\"}\n"
	"  - name: dev\n"
	"workloads:\n"
	"  - cgroup: /kubepods/pod1\n"
	"    namespace: prod\n"
	"    pod: pod1\n"
	"  - cgroup: /kubepods/pod1/ctr2\n"
	"    namespace: prod\n"
	"    pod: pod1\n"
	"    container: app\n"
	"  - cgroup: /kubepods/pod2\n"
	"    namespace: dev\n"
	"    pod: pod2\n"
	"    labels: {app: web}\n"
	"  - cgroup: /kubepods/pod3\n"
	"    namespace: other\n"
	"    pod: pod3\n"
	"    labels: {app: web}\n"
	"  - cgroup: /kubepods/pod4\n"
	"    namespace: prod\n"
	"    pod: pod4\n"
	"  - cgroup: /kubepods/pod5\n"
	"    namespace: dev\n"
	"    pod: pod5\n"
	"    labels: {app: db}\n";

static const char plan_policies[] =
	HEADER("ClusterBulwarkPolicy", "locked")
	"spec:\n  mode: Block\n"
	"  namespaceSelector:\n    matchLabels: {bulwark.dev/locked: \"true\"}\n"
	"  exec:\n    deny:\n      - path: /bin/sh\n"
	"---\n"
	"apiVersion: bulwark.dev/v1alpha1\nkind: BulwarkPolicy\nmetadata:\n  name: web\n  namespace: dev\n"
	"spec:\n  mode: Audit\n"
	"  podSelector:\n    matchLabels: {app: web}\n"
	"  files:\n    deny:\n      - prefix: /etc/\n"
	"---\n"
	HEADER("HostBulwarkPolicy", "nginx")
	"spec:\n  mode: Block\n"
	"  cgroupPaths: [/system.slice/nginx.service]\n"
	"  network:\n    deny:\n      - cidr: 10.0.0.0/8\n";

static const struct bw_assignment *find_assign(const struct bw_plan *plan, uint64_t id)
{
	for (size_t i = 0; i < plan->n_assign; i++)
		if (plan->assign[i].cgroup_id == id)
			return &plan->assign[i];
	return NULL;
}

static bool in_skipped(const struct bw_plan *plan, uint64_t id)
{
	for (size_t i = 0; i < plan->n_skipped; i++)
		if (plan->skipped[i] == id)
			return true;
	return false;
}

static bool streq_null(const char *a, const char *b)
{
	return a && b ? !strcmp(a, b) : a == b;
}

static void test_plan(void)
{
	char *root = make_tmpdir(), *err = NULL;
	struct bw_inventory inv = { 0 };
	struct bw_policy_list l = { 0 };
	struct bw_rule_table rt = { 0 };
	struct bw_plan plan;
	const struct bw_assignment *a, *pod1, *nginx;
	uint64_t id[sizeof(tree) / sizeof(tree[0])];
	enum { KUBEPODS, POD1, CTR1, CTR2, POD2, POD3, POD4, POD5, SYSTEM, NGINX, WORKER, AGENT, SSHD, SSHD_SUB };
	struct bw_plan_options o = { .compile = { .root = empty_root }, .cgroup_root = root };
	int r;

	for (size_t i = 0; i < sizeof(tree) / sizeof(tree[0]); i++) {
		mkdir_in(root, tree[i]);
		id[i] = ino_of(root, tree[i]);
	}
	r = bw_inventory_load_buffer("inventory.yaml", inventory_yaml, strlen(inventory_yaml), &inv, &err);
	if (r < 0)
		fprintf(stderr, "inventory: %s\n", err ? err : "?");
	ASSERT(r == 0);
	free(err);
	parse_into(&l, plan_policies);
	ASSERT(l.n == 3);

	o.exempt_cgroup = id[AGENT];
	r = bw_plan_build(&l, &inv, &o, &rt, &plan);
	ASSERT(r == 0);
	ASSERT(plan.n_errors == 0);
	ASSERT(plan.n_skipped == 0);
	/* every directory, the root included */
	ASSERT(plan.n_cgroups_seen == sizeof(tree) / sizeof(tree[0]) + 1);
	{
		bool sorted = true;

		for (size_t i = 1; i < plan.n_cgroups_seen; i++)
			sorted &= plan.seen[i - 1] < plan.seen[i];
		ASSERT(sorted);
	}
	for (size_t i = 0; i < sizeof(tree) / sizeof(tree[0]); i++)
		ASSERT(bw_plan_saw_cgroup(&plan, id[i]));
	ASSERT(bw_plan_saw_cgroup(&plan, ino_of(root, "")));
	ASSERT(!bw_plan_saw_cgroup(&plan, 0xdeadbeefcafeULL));

	/* Selected: the locked namespace's pods (and what is below them),
	 * the dev web pod, nginx and its children. */
	ASSERT(plan.n_assign == 7);
	ASSERT(plan.n_rulesets == 3);
	pod1 = find_assign(&plan, id[POD1]);
	ASSERT(pod1 != NULL);
	for (int i = CTR1; i <= CTR2; i++) {
		a = find_assign(&plan, id[i]);
		ASSERT(a != NULL);
		ASSERT(a && pod1 && a->ruleset == pod1->ruleset);
	}
	a = find_assign(&plan, id[POD4]);
	ASSERT(a && pod1 && a->ruleset == pod1->ruleset); /* same policies: one rule set */
	if (pod1) {
		const struct bw_compiled_ruleset *rs = &plan.rulesets[pod1->ruleset];

		ASSERT(rs->n_slots == 1);
		ASSERT(!strcmp(rs->slots[0].policy, "ClusterBulwarkPolicy locked"));
		ASSERT(find_path(rs->exec, rs->n_exec, "/bin/sh", true) != NULL);
		ASSERT(!strcmp(pod1->cgroup_path, "/kubepods/pod1"));
		ASSERT(streq_null(pod1->namespace, "prod") && streq_null(pod1->pod, "pod1"));
		ASSERT(pod1->container == NULL);
	}
	a = find_assign(&plan, id[CTR1]); /* not in the inventory: owned by its pod */
	ASSERT(a && streq_null(a->pod, "pod1") && a->container == NULL &&
	       streq_null(a->cgroup_path, "/kubepods/pod1/ctr1"));
	a = find_assign(&plan, id[CTR2]); /* its own inventory entry */
	ASSERT(a && streq_null(a->container, "app") && streq_null(a->namespace, "prod"));

	a = find_assign(&plan, id[POD2]);
	ASSERT(a != NULL);
	if (a) {
		const struct bw_compiled_ruleset *rs = &plan.rulesets[a->ruleset];

		ASSERT(pod1 && a->ruleset != pod1->ruleset);
		ASSERT(rs->n_slots == 1);
		ASSERT(!strcmp(rs->slots[0].policy, "BulwarkPolicy dev/web"));
		ASSERT(rs->config.block_mask == 0);
		ASSERT(streq_null(a->namespace, "dev"));
	}

	nginx = find_assign(&plan, id[NGINX]);
	ASSERT(nginx != NULL);
	if (nginx) {
		const struct bw_compiled_ruleset *rs = &plan.rulesets[nginx->ruleset];

		ASSERT(!strcmp(rs->slots[0].policy, "HostBulwarkPolicy nginx"));
		ASSERT(rs->n_net4 == 1);
		ASSERT(nginx->namespace == NULL && nginx->pod == NULL);
		ASSERT(!strcmp(nginx->cgroup_path, "/system.slice/nginx.service"));
	}
	a = find_assign(&plan, id[WORKER]);
	ASSERT(a && nginx && a->ruleset == nginx->ruleset);

	/* The agent's own cgroup, though below nginx, is never selected. */
	ASSERT(find_assign(&plan, id[AGENT]) == NULL);
	/* Unselected: the BulwarkPolicy is only for dev, pod5 is not app=web,
	 * host policies do not reach pods, nothing selects the rest. */
	ASSERT(find_assign(&plan, id[POD3]) == NULL);
	ASSERT(find_assign(&plan, id[POD5]) == NULL);
	ASSERT(find_assign(&plan, id[KUBEPODS]) == NULL);
	ASSERT(find_assign(&plan, id[SYSTEM]) == NULL);
	ASSERT(find_assign(&plan, id[SSHD]) == NULL);
	ASSERT(find_assign(&plan, id[SSHD_SUB]) == NULL);
	ASSERT(find_assign(&plan, ino_of(root, "")) == NULL);
	bw_plan_clear(&plan);
	ASSERT(plan.n_assign == 0 && plan.assign == NULL);

	/* Without the exemption the agent's cgroup would be nginx's. */
	o.exempt_cgroup = 0;
	r = bw_plan_build(&l, &inv, &o, &rt, &plan);
	ASSERT(r == 0);
	ASSERT(plan.n_assign == 8);
	ASSERT(find_assign(&plan, id[AGENT]) != NULL);
	bw_plan_clear(&plan);

	/* Same inputs, same rule sets (what lets the publisher reuse ids). */
	{
		struct bw_plan p1, p2;
		bool same = true;

		o.exempt_cgroup = id[AGENT];
		ASSERT(bw_plan_build(&l, &inv, &o, &rt, &p1) == 0);
		ASSERT(bw_plan_build(&l, &inv, &o, &rt, &p2) == 0);
		ASSERT(p1.n_rulesets == p2.n_rulesets);
		for (size_t i = 0; i < p1.n_rulesets && i < p2.n_rulesets; i++)
			same &= bw_compiled_ruleset_equal(&p1.rulesets[i], &p2.rulesets[i]);
		ASSERT(same);
		bw_plan_clear(&p1);
		bw_plan_clear(&p2);
	}

	/* Built again over the plan in force, nothing is compiled: each rule
	 * set is copied from the plan that compiled it from the same
	 * policies (by serial), and equals what a compile gives. A policy
	 * with a new serial (a changed policy reads as a new one) is
	 * compiled, and so is everything once older than the age bound. */
	{
		struct bw_plan p1, p2, p3, p4;
		struct bw_plan_options ro = o;
		bool same = true;
		uint64_t serial0 = l.items[0]->serial;

		o.exempt_cgroup = id[AGENT];
		ro.exempt_cgroup = id[AGENT];
		ro.now_ns = 1000;
		ro.reuse_max_age_ns = 500;
		ASSERT(bw_plan_build(&l, &inv, &ro, &rt, &p1) == 0);
		ASSERT(p1.n_compiled == p1.n_rulesets && p1.n_rulesets == 3);
		ro.reuse = &p1;
		ro.now_ns = 1400;
		ASSERT(bw_plan_build(&l, &inv, &ro, &rt, &p2) == 0);
		ASSERT(p2.n_compiled == 0 && p2.n_rulesets == p1.n_rulesets);
		for (size_t i = 0; i < p1.n_rulesets && i < p2.n_rulesets; i++)
			same &= bw_compiled_ruleset_equal(&p1.rulesets[i], &p2.rulesets[i]) &&
				p2.rulesets[i].compiled_ns == 1000;
		ASSERT(same);
		/* A reused set is the same compiled arrays, not a copy of them,
		 * and outlives the plan it came from (ASan sees any use after
		 * free below). */
		ASSERT(p2.rulesets[0].holders && p2.rulesets[0].holders == p1.rulesets[0].holders);
		ASSERT(*p1.rulesets[0].holders == 2 && p2.rulesets[0].exec == p1.rulesets[0].exec);
		bw_plan_clear(&p1);
		ASSERT(*p2.rulesets[0].holders == 1);
		{
			unsigned sum = 0;

			for (size_t i = 0; i < p2.n_rulesets; i++)
				for (size_t k = 0; k < p2.rulesets[i].n_exec; k++)
					sum += p2.rulesets[i].exec[k].key.prefixlen;
			ASSERT(sum > 0);
		}
		l.items[0]->serial = bw_policy_next_serial();
		ro.reuse = &p2;
		ASSERT(bw_plan_build(&l, &inv, &ro, &rt, &p3) == 0);
		ASSERT(p3.n_compiled == 1);
		ro.reuse = &p3;
		ro.now_ns = 1600; /* the copies from p1's compile are now too old */
		ASSERT(bw_plan_build(&l, &inv, &ro, &rt, &p4) == 0);
		ASSERT(p4.n_compiled == 2);
		ASSERT(serial0 != l.items[0]->serial);
		bw_plan_clear(&p2);
		bw_plan_clear(&p3);
		bw_plan_clear(&p4);
	}

	/* The walk is kept while the kernel's count of cgroup changes stays
	 * what it was: a cgroup made without the count moving is not seen
	 * (proof that no walk happened); once the count moves, it is. */
	{
		struct bw_cgroup_tree tree = { 0 };
		struct bw_plan_options to = o;
		struct bw_plan p1, p2, p3, p4;

		to.exempt_cgroup = id[AGENT];
		to.tree = &tree;
		to.tree_changes = 5;
		to.tree_changes_known = true;
		ASSERT(bw_plan_build(&l, &inv, &to, &rt, &p1) == 0);
		ASSERT(p1.walked && tree.valid && tree.changes == 5 && tree.n == p1.n_cgroups_seen);
		mkdir_in(root, "/system.slice/nginx.service/late");
		ASSERT(bw_plan_build(&l, &inv, &to, &rt, &p2) == 0);
		ASSERT(!p2.walked && p2.n_assign == p1.n_assign && p2.n_cgroups_seen == p1.n_cgroups_seen);
		ASSERT(!find_assign(&p2, ino_of(root, "/system.slice/nginx.service/late")));
		to.tree_changes = 6;
		ASSERT(bw_plan_build(&l, &inv, &to, &rt, &p3) == 0);
		ASSERT(p3.walked && p3.n_cgroups_seen == p1.n_cgroups_seen + 1);
		ASSERT(find_assign(&p3, ino_of(root, "/system.slice/nginx.service/late")) != NULL);
		/* No count known (the programs are not there): always walks,
		 * and keeps nothing it could trust. */
		to.tree_changes_known = false;
		ASSERT(bw_plan_build(&l, &inv, &to, &rt, &p4) == 0);
		ASSERT(p4.walked && !tree.valid);
		bw_plan_clear(&p1);
		bw_plan_clear(&p2);
		bw_plan_clear(&p3);
		bw_plan_clear(&p4);
		bw_cgroup_tree_clear(&tree);
		rmdir_in(root, "/system.slice/nginx.service/late");
	}

	/* A missing cgroup root is an error, not an empty plan. */
	{
		char *missing = xasprintf("%s/nope", root);
		struct bw_plan_options bad = o;

		bad.cgroup_root = missing;
		r = bw_plan_build(&l, &inv, &bad, &rt, &plan);
		ASSERT(r == -ENOENT);
		ASSERT(plan.n_assign == 0 && plan.seen == NULL);
		free(missing);
	}

	bw_policy_list_clear(&l);
	bw_inventory_clear(&inv);
	bw_rule_table_clear(&rt);
	rm_rf(root);
	free(root);
}

static void test_plan_error(void)
{
	char *root = make_tmpdir(), *y, *err = NULL;
	struct bw_inventory inv = { 0 };
	struct bw_policy_list l = { 0 };
	struct bw_rule_table rt = { 0 };
	struct bw_plan plan;
	uint64_t id[sizeof(tree) / sizeof(tree[0])];
	enum { KUBEPODS, POD1, CTR1, CTR2, POD2, POD3, POD4, POD5, SYSTEM, NGINX, WORKER, AGENT, SSHD, SSHD_SUB };
	struct bw_plan_options o = { .compile = { .root = empty_root }, .cgroup_root = root };
	int r;

	for (size_t i = 0; i < sizeof(tree) / sizeof(tree[0]); i++) {
		mkdir_in(root, tree[i]);
		id[i] = ino_of(root, tree[i]);
	}
	r = bw_inventory_load_buffer("inventory.yaml", inventory_yaml, strlen(inventory_yaml), &inv, &err);
	ASSERT(r == 0);
	free(err);
	parse_into(&l, plan_policies);
	/* sshd's rule set cannot be represented: 17 port rules on one CIDR. */
	y = xasprintf(HEADER("HostBulwarkPolicy", "sshd")
		      "spec:\n  mode: Block\n  cgroupPaths: [/system.slice/sshd.service]\n"
		      "  network:\n    deny:\n"
		      "      - cidr: 10.0.0.0/8\n        ports: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]\n"
		      "      - cidr: 10.0.0.0/8\n        ports: [17]\n");
	parse_into(&l, y);
	free(y);

	o.exempt_cgroup = id[AGENT];
	r = bw_plan_build(&l, &inv, &o, &rt, &plan);
	ASSERT(r == 0); /* one bad rule set does not fail the plan */
	ASSERT(plan.n_errors == 1);
	if (plan.n_errors == 1) {
		ASSERT(streq_null(plan.errors[0].workload, "/system.slice/sshd.service"));
		ASSERT(plan.errors[0].message && strstr(plan.errors[0].message, "10.0.0.0/8"));
	}
	ASSERT(plan.n_skipped == 2);
	ASSERT(in_skipped(&plan, id[SSHD]));
	ASSERT(in_skipped(&plan, id[SSHD_SUB]));
	ASSERT(find_assign(&plan, id[SSHD]) == NULL);
	ASSERT(find_assign(&plan, id[SSHD_SUB]) == NULL);
	/* the others are unaffected */
	ASSERT(plan.n_assign == 7);
	ASSERT(plan.n_rulesets == 3);
	ASSERT(find_assign(&plan, id[NGINX]) != NULL);
	ASSERT(!in_skipped(&plan, id[NGINX]));
	ASSERT(bw_plan_saw_cgroup(&plan, id[SSHD]));
	bw_plan_clear(&plan);

	bw_policy_list_clear(&l);
	bw_inventory_clear(&inv);
	bw_rule_table_clear(&rt);
	rm_rf(root);
	free(root);
}

int main(void)
{
	empty_root = make_tmpdir();

	test_exact_and_prefix_keys();
	test_longest_path_rule();
	test_inheritance();
	test_most_specific_block_rule();
	test_files_access();
	test_allowlist_masks();
	test_audit_only();
	test_link_resolution();
	test_net_entries();
	test_net_port_limit();
	test_too_many_policies();
	test_equal_and_interning();
	test_rule_table();
	test_plan();
	test_plan_error();

	rm_rf(empty_root);
	free(empty_root);
	return bw_test_summary();
}
