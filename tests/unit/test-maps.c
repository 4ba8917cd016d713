/* SPDX-License-Identifier: Apache-2.0 */
/* The publisher against real kernel maps (created here exactly as the BPF
 * object declares them), and a user-space simulator of the enforcing hooks
 * (bpf/lsm/enforce.bpf.c) that makes the same lookups in the same maps and
 * calls the same bw_decide(), so that what a plan means is checked on the
 * maps the kernel would read. Needs a kernel that creates BPF maps; it does
 * not need to load programs, nor bpffs. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/types.h>
#include <bpf/bpf.h>

#include "bulwark_abi.h"
#include "bulwark_decide.h"
#include "compile.h"
#include "policy.h"
#include "publish.h"
#include "util.h"

#include "bw-test.h"

#define BIT(n) (1ULL << (n))
#define HEADER(kind, name) "apiVersion: bulwark.dev/v1alpha1\nkind: " kind "\nmetadata:\n  name: " name "\n"

static void finish_and_exit(void)
{
	exit(bw_test_summary());
}

/* ---- maps, as the BPF object creates them ---------------------------------- */

static int create_or_die(const char *what, enum bpf_map_type type, const char *name, __u32 key, __u32 value,
			 __u32 max, const struct bpf_map_create_opts *opts)
{
	int fd = bpf_map_create(type, name, key, value, max, opts);

	if (fd < 0) {
		int err = errno;

		/* Never skip silently: a host that cannot create maps fails. */
		fprintf(stderr,
			"%s:%d: FAILED: cannot create the %s map: %s%s\n", __FILE__, __LINE__, what, strerror(err),
			err == EPERM ? " (this test needs CAP_BPF/CAP_SYS_ADMIN, i.e. root, to create BPF maps)" : "");
		failed++;
		finish_and_exit();
	}
	return fd;
}

static int create_outer(const char *name, __u32 inner_key, __u32 inner_value, __u32 max)
{
	LIBBPF_OPTS(bpf_map_create_opts, tmpl_opts, .map_flags = BPF_F_NO_PREALLOC);
	LIBBPF_OPTS(bpf_map_create_opts, outer_opts);
	int tmpl, outer;

	tmpl = create_or_die("inner template", BPF_MAP_TYPE_LPM_TRIE, "bw_tmpl", inner_key, inner_value, 1, &tmpl_opts);
	outer_opts.inner_map_fd = (__u32)tmpl;
	outer = create_or_die(name, BPF_MAP_TYPE_ARRAY_OF_MAPS, name, sizeof(__u32), sizeof(__u32), max, &outer_opts);
	close(tmpl);
	return outer;
}

static void maps_create(struct bw_map_fds *f, __u32 max_workloads, __u32 max_rulesets)
{
	memset(f, 0, sizeof(*f));
	f->workloads = create_or_die("workloads", BPF_MAP_TYPE_HASH, "workloads", sizeof(__u64),
				     sizeof(struct bw_workload), max_workloads, NULL);
	f->rulesets = create_or_die("rulesets", BPF_MAP_TYPE_ARRAY, "rulesets", sizeof(__u32), sizeof(struct bw_ruleset),
				    max_rulesets, NULL);
	f->exec_tries = create_outer("exec_tries", sizeof(struct bw_path_key), sizeof(struct bw_path_value), max_rulesets);
	f->file_tries = create_outer("file_tries", sizeof(struct bw_path_key), sizeof(struct bw_path_value), max_rulesets);
	f->net4_tries = create_outer("net4_tries", sizeof(struct bw_net4_key), sizeof(struct bw_net_value), max_rulesets);
	f->net6_tries = create_outer("net6_tries", sizeof(struct bw_net6_key), sizeof(struct bw_net_value), max_rulesets);
	f->max_rulesets = max_rulesets;
}

static void maps_close(struct bw_map_fds *f)
{
	close(f->workloads);
	close(f->rulesets);
	close(f->exec_tries);
	close(f->file_tries);
	close(f->net4_tries);
	close(f->net6_tries);
}

/* ---- the hook simulator (enforce.bpf.c, in user space) --------------------- */

struct sim {
	bool checked;          /* bw_ctx_init succeeded: the workload is judged */
	bool ruleset_missing;  /* BW_STAT_RULESET_MISSING would be counted */
	bool by_name;          /* exec: decided by the name the caller passed */
	__u32 ruleset_id;
	struct bw_outcome out;
};

struct sim_ctx {
	__u64 cgroup_id;
	__u32 ruleset_id;
	struct bw_ruleset rs;
};

/* bw_ctx_init */
static bool sim_ctx_init(const struct bw_map_fds *f, struct sim_ctx *c, struct sim *s, __u64 cgroup_id,
			 __u32 need_tries, unsigned cls_lo, unsigned cls_hi)
{
	struct bw_workload w;
	bool allowlist = false;

	memset(s, 0, sizeof(*s));
	c->cgroup_id = cgroup_id;
	if (bpf_map_lookup_elem(f->workloads, &c->cgroup_id, &w) < 0)
		return false;
	c->ruleset_id = w.ruleset_id;
	s->ruleset_id = w.ruleset_id;
	if (bpf_map_lookup_elem(f->rulesets, &c->ruleset_id, &c->rs) < 0 || !c->rs.generation) {
		s->ruleset_missing = true;
		return false;
	}
	for (unsigned cls = cls_lo; cls <= cls_hi && cls < BW_CLASS_COUNT; cls++)
		if (c->rs.allowlist_mask[cls])
			allowlist = true;
	if (!(c->rs.tries & need_tries) && !allowlist)
		return false;
	s->checked = true;
	return true;
}

/* bpf_map_lookup_elem(&outer, &id): from user space an outer map yields the
 * inner map's id, which we open. -1 when there is no inner map. */
static int inner_fd(int outer, __u32 id)
{
	__u32 inner_id;

	if (bpf_map_lookup_elem(outer, &id, &inner_id) < 0)
		return -1;
	return bpf_map_get_fd_by_id(inner_id);
}

/* bw_lookup_path: src holds the name; as in the kernel, a whole key's worth
 * of bytes is copied and whatever follows the NUL is stale. */
static bool sim_lookup_path(int trie, const char *src, size_t avail, __u32 len, bool cut, struct bw_path_value *v)
{
	struct bw_path_key key;

	if (trie < 0)
		return false;
	memset(key.data, 0xa5, sizeof(key.data));
	memcpy(key.data, src, avail < sizeof(key.data) ? avail : sizeof(key.data));
	key.prefixlen = cut ? BW_PATH_KEY_MAX * 8 : bw_path_key_bits(len);
	return bpf_map_lookup_elem(trie, &key, v) == 0;
}

/* bw_resolve + bw_judge_path, for a resolved path (bpf_d_path writes it
 * with its NUL into a BW_PATH_MAX buffer). */
static struct bw_outcome sim_judge_path(struct sim_ctx *c, int trie, const char *path, unsigned cls, unsigned access)
{
	struct bw_path_value v;
	size_t n = strlen(path) + 1; /* what bpf_d_path returns */
	__u64 deny = 0, allow = 0;
	__u32 rule = 0;
	long len = (long)n - 1;

	if (sim_lookup_path(trie, path, n, (__u32)len, len > BW_RULE_PATH_MAX, &v) && access < 2) {
		deny = v.access[access].deny_mask;
		allow = v.access[access].allow_mask;
		rule = v.access[access].rule_id;
	}
	return bw_decide(&c->rs, cls, deny, allow, rule);
}

/* bw_exec: the resolved file, then the name the caller passed (deny only). */
static struct sim sim_exec(const struct bw_map_fds *f, __u64 cgroup_id, const char *resolved, const char *name)
{
	struct bw_outcome by_name = { BW_DECISION_ALLOW, 0, 0 };
	struct sim_ctx c;
	struct sim s;
	char nbuf[BW_PATH_KEY_MAX];
	long nlen;
	int trie;

	if (!sim_ctx_init(f, &c, &s, cgroup_id, BW_TRIE_EXEC, BW_CLASS_EXEC, BW_CLASS_EXEC))
		return s;
	trie = inner_fd(f->exec_tries, c.ruleset_id);
	s.out = sim_judge_path(&c, trie, resolved, BW_CLASS_EXEC, 0);

	/* bpf_probe_read_kernel_str(name, 256, filename) */
	memset(nbuf, 0x5a, sizeof(nbuf));
	snprintf(nbuf, sizeof(nbuf), "%s", name ? name : "");
	nlen = (long)strlen(nbuf) + 1;
	if (nlen > 1 && nbuf[0] == '/' && trie >= 0) {
		bool cut = nlen >= (long)sizeof(nbuf);
		struct bw_path_value v;

		if (sim_lookup_path(trie, nbuf, sizeof(nbuf), (__u32)(nlen - 1), cut, &v))
			by_name = bw_decide(&c.rs, BW_CLASS_EXEC, v.access[0].deny_mask, ~0ULL, v.access[0].rule_id);
	}
	s.by_name = by_name.decision > s.out.decision;
	s.out = bw_outcome_worse(s.out, by_name);
	if (trie >= 0)
		close(trie);
	return s;
}

/* bw_file_open */
static struct sim sim_open(const struct bw_map_fds *f, __u64 cgroup_id, const char *path, bool read, bool write)
{
	struct sim_ctx c;
	struct sim s;
	int trie;

	if (!sim_ctx_init(f, &c, &s, cgroup_id, BW_TRIE_FILE, BW_CLASS_FILE_READ, BW_CLASS_FILE_WRITE))
		return s;
	trie = inner_fd(f->file_tries, c.ruleset_id);
	s.out = (struct bw_outcome){ BW_DECISION_ALLOW, 0, 0 };
	if (read)
		s.out = sim_judge_path(&c, trie, path, BW_CLASS_FILE_READ, 0);
	if (write)
		s.out = bw_outcome_worse(s.out, sim_judge_path(&c, trie, path, BW_CLASS_FILE_WRITE, 1));
	if (trie >= 0)
		close(trie);
	return s;
}

/* bw_connect; addr is text, v4 or v6. */
static struct sim sim_connect(const struct bw_map_fds *f, __u64 cgroup_id, const char *addr, __u16 port, __u8 proto)
{
	struct bw_net_value v;
	struct sim_ctx c;
	struct sim s;
	__u8 a[16] = { 0 };
	__u64 deny = 0, allow = 0;
	__u32 rule = 0;
	bool found = false;
	int family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	int trie;

	if (inet_pton(family, addr, a) != 1) {
		fprintf(stderr, "bad address in test: %s\n", addr);
		exit(2);
	}
	if (!sim_ctx_init(f, &c, &s, cgroup_id, BW_TRIE_NET4 | BW_TRIE_NET6, BW_CLASS_NET, BW_CLASS_NET))
		return s;
	if (family == AF_INET || bw_ipv6_is_v4mapped(a)) {
		struct bw_net4_key k = { .prefixlen = 32 };

		memcpy(k.addr, family == AF_INET ? &a[0] : &a[12], 4);
		trie = inner_fd(f->net4_tries, c.ruleset_id);
		found = trie >= 0 && bpf_map_lookup_elem(trie, &k, &v) == 0;
	} else {
		struct bw_net6_key k = { .prefixlen = 128 };

		memcpy(k.addr, a, 16);
		trie = inner_fd(f->net6_tries, c.ruleset_id);
		found = trie >= 0 && bpf_map_lookup_elem(trie, &k, &v) == 0;
	}
	if (trie >= 0)
		close(trie);
	if (found)
		bw_net_collect(&v, port, proto, c.rs.block_mask, &deny, &allow, &rule);
	s.out = bw_decide(&c.rs, BW_CLASS_NET, deny, allow, rule);
	return s;
}

static bool is(struct sim s, enum bw_decision d, __u8 slot, __u32 rule)
{
	return s.checked && s.out.decision == d && s.out.slot == slot && s.out.rule_id == rule;
}

static bool allowed(struct sim s)
{
	return s.out.decision == BW_DECISION_ALLOW;
}

/* ---- policies and plans ------------------------------------------------------ */

static struct bw_rule_table rt;

static void parse_into(struct bw_policy_list *l, const char *yaml)
{
	struct bw_diags d = { 0 };
	int r = bw_policy_parse_buffer("test.yaml", yaml, strlen(yaml), l, &d);

	for (size_t i = 0; i < d.n; i++) {
		char *m = bw_diag_format(&d.items[i]);

		fprintf(stderr, "unexpected diagnostic: %s\n", m ? m : "?");
		free(m);
	}
	ASSERT(r == 0 && d.n == 0);
	bw_diags_clear(&d);
}

static __u32 rid(const char *policy, const char *text)
{
	for (size_t i = 0; i < rt.n; i++)
		if (!strcmp(rt.rules[i].policy, policy) && !strcmp(rt.rules[i].text, text))
			return (__u32)(i + 1);
	fprintf(stderr, "no rule id for %s: %s\n", policy, text);
	return 0xffffffffu; /* matches no event */
}

static char *empty_root;

static struct bw_compiled_ruleset compile(const struct bw_policy_list *l)
{
	struct bw_compile_options o = { .root = empty_root };
	struct bw_compiled_ruleset rs;
	char *error = NULL;
	int r = bw_compile_ruleset(l->items, l->n, &o, &rt, &rs, &error);

	if (r < 0)
		fprintf(stderr, "compile: %s\n", error ? error : strerror(-r));
	ASSERT(r == 0);
	free(error);
	return rs;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		perror("realloc");
		exit(2);
	}
	return p;
}

/* The plan takes rs over. */
static size_t plan_ruleset(struct bw_plan *p, struct bw_compiled_ruleset rs)
{
	p->rulesets = xrealloc(p->rulesets, (p->n_rulesets + 1) * sizeof(*p->rulesets));
	p->rulesets[p->n_rulesets] = rs;
	return p->n_rulesets++;
}

static void plan_assign(struct bw_plan *p, __u64 cgroup_id, size_t ruleset)
{
	struct bw_assignment *a;

	p->assign = xrealloc(p->assign, (p->n_assign + 1) * sizeof(*p->assign));
	a = &p->assign[p->n_assign++];
	memset(a, 0, sizeof(*a));
	a->cgroup_id = cgroup_id;
	a->cgroup_path = xasprintf("/test/%llu", (unsigned long long)cgroup_id);
	a->ruleset = ruleset;
}

static int u64_cmp(const void *a, const void *b)
{
	__u64 x = *(const __u64 *)a, y = *(const __u64 *)b;

	return x < y ? -1 : x > y;
}

static void plan_seen(struct bw_plan *p, const __u64 *ids, size_t n)
{
	p->seen = xrealloc(p->seen, n * sizeof(*p->seen));
	memcpy(p->seen, ids, n * sizeof(*ids));
	qsort(p->seen, n, sizeof(*p->seen), u64_cmp);
	p->n_cgroups_seen = n;
}

static bool workload_get(const struct bw_map_fds *f, __u64 cg, __u32 *ruleset_id)
{
	struct bw_workload w;

	if (bpf_map_lookup_elem(f->workloads, &cg, &w) < 0)
		return false;
	*ruleset_id = w.ruleset_id;
	return true;
}

static void workload_put(const struct bw_map_fds *f, __u64 cg, __u32 ruleset_id)
{
	struct bw_workload w = { .ruleset_id = ruleset_id };

	ASSERT(bpf_map_update_elem(f->workloads, &cg, &w, BPF_ANY) == 0);
}

static bool ruleset_config(const struct bw_map_fds *f, __u32 id, struct bw_ruleset *rs)
{
	return bpf_map_lookup_elem(f->rulesets, &id, rs) == 0;
}

static bool has_inner(int outer, __u32 id)
{
	int fd = inner_fd(outer, id);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* ---- policies used by the publish test ------------------------------------- */

#define CG_A1 1001ULL
#define CG_A2 1002ULL
#define CG_B 2001ULL
#define CG_IDLE 3001ULL
#define CG_SEEN 4001ULL
#define CG_NEW_A 5001ULL
#define CG_NEW_B 5002ULL

static char long_rule[BW_RULE_PATH_MAX + 1]; /* a 255-byte exact rule */

static const char lock_yaml[] =
	HEADER("ClusterBulwarkPolicy", "lock")
	"spec:\n  mode: Block\n"
	"  exec:\n    deny:\n      - path: /bin/sh\n      - prefix: /tmp/\n"
	"  files:\n    deny:\n      - path: /etc/shadow\n        access: [read]\n"
	"      - prefix: /data/secret/\n      - path: %s\n"
	"  network:\n    deny:\n"
	"      - cidr: 10.0.0.0/8\n        ports: [\"80-89\"]\n        protocol: TCP\n"
	"      - cidr: 10.1.0.0/16\n        ports: [22]\n"
	"      - cidr: 2001:db8::/32\n        ports: [443]\n"
	"      - cidr: 192.168.1.0/24\n";

static const char watch_yaml[] =
	HEADER("ClusterBulwarkPolicy", "watch")
	"spec:\n  mode: Audit\n"
	"  exec:\n    deny:\n      - prefix: /opt/\n      - prefix: /tmp/\n";

static const char allow_yaml[] =
	HEADER("ClusterBulwarkPolicy", "allow")
	"spec:\n  mode: Block\n"
	"  exec:\n    allow:\n      - prefix: /usr/bin/\n%s"
	"  files:\n    allow:\n      - prefix: /app/\n        access: [read]\n"
	"  network:\n    allow:\n      - cidr: 10.0.0.0/8\n        ports: [443]\n        protocol: TCP\n";

static void lock_policies(struct bw_policy_list *l)
{
	char *y = xasprintf(lock_yaml, long_rule);

	parse_into(l, y);
	free(y);
	parse_into(l, watch_yaml);
}

static void allow_policies(struct bw_policy_list *l, bool more)
{
	char *y = xasprintf(allow_yaml, more ? "      - prefix: /usr/local/bin/\n" : "");

	parse_into(l, y);
	free(y);
}

/* cg2 is a second cgroup using the same rule set as CG_A1. */
static void check_plan1_decisions(const struct bw_map_fds *f, __u64 cg2)
{
	const char *lock = "ClusterBulwarkPolicy lock", *watch = "ClusterBulwarkPolicy watch";
	__u32 sh = rid(lock, "exec.deny[0] path /bin/sh"), tmp = rid(lock, "exec.deny[1] prefix /tmp/");
	__u32 opt = rid(watch, "exec.deny[0] prefix /opt/");
	__u32 shadow = rid(lock, "files.deny[0] path /etc/shadow"), secret = rid(lock, "files.deny[1] prefix /data/secret/");
	char *text = xasprintf("files.deny[2] path %s", long_rule);
	__u32 longr = rid(lock, text);
	__u32 net8 = rid(lock, "network.deny[0] cidr 10.0.0.0/8"), net16 = rid(lock, "network.deny[1] cidr 10.1.0.0/16");
	__u32 net6 = rid(lock, "network.deny[2] cidr 2001:db8::/32"), net24 = rid(lock, "network.deny[3] cidr 192.168.1.0/24");
	char p300[301];
	struct sim s;

	free(text);

	/* exec: exact vs prefix */
	ASSERT(is(sim_exec(f, CG_A1, "/bin/sh", "/bin/sh"), BW_DECISION_BLOCK, 0, sh));
	ASSERT(is(sim_exec(f, cg2, "/bin/sh", "sh"), BW_DECISION_BLOCK, 0, sh));
	ASSERT(allowed(sim_exec(f, CG_A1, "/bin/shx", "/bin/shx")));
	ASSERT(allowed(sim_exec(f, CG_A1, "/bin/s", "/bin/s")));
	ASSERT(allowed(sim_exec(f, CG_A1, "/bin/sh/x", NULL)));
	ASSERT(is(sim_exec(f, CG_A1, "/tmp/x", "/tmp/x"), BW_DECISION_BLOCK, 0, tmp));
	ASSERT(is(sim_exec(f, CG_A1, "/tmp/", NULL), BW_DECISION_BLOCK, 0, tmp)); /* a prefix includes itself */
	ASSERT(allowed(sim_exec(f, CG_A1, "/tmp", "/tmp")));
	ASSERT(allowed(sim_exec(f, CG_A1, "/tmpx/y", NULL)));
	/* the Audit slot alone audits */
	ASSERT(is(sim_exec(f, CG_A1, "/opt/tool", NULL), BW_DECISION_AUDIT, 1, opt));
	/* by the name the caller passed (a link): deny rules apply to it */
	s = sim_exec(f, CG_A1, "/usr/bin/dash", "/bin/sh");
	ASSERT(is(s, BW_DECISION_BLOCK, 0, sh));
	ASSERT(s.by_name);
	s = sim_exec(f, CG_A1, "/bin/sh", "/usr/bin/dash");
	ASSERT(is(s, BW_DECISION_BLOCK, 0, sh) && !s.by_name);
	ASSERT(allowed(sim_exec(f, CG_A1, "/usr/bin/dash", "/usr/bin/dash")));

	/* files: access bits, exact vs prefix */
	ASSERT(is(sim_open(f, CG_A1, "/etc/shadow", true, false), BW_DECISION_BLOCK, 0, shadow));
	ASSERT(allowed(sim_open(f, CG_A1, "/etc/shadow", false, true))); /* read-only rule */
	ASSERT(is(sim_open(f, CG_A1, "/etc/shadow", true, true), BW_DECISION_BLOCK, 0, shadow));
	ASSERT(allowed(sim_open(f, CG_A1, "/etc/shadow-", true, false)));
	ASSERT(is(sim_open(f, CG_A1, "/data/secret/k", false, true), BW_DECISION_BLOCK, 0, secret));
	ASSERT(allowed(sim_open(f, CG_A1, "/data/secretx", true, true)));

	/* a 300-byte path under a denied prefix is still denied */
	memset(p300, 'x', 300);
	memcpy(p300, "/data/secret/", strlen("/data/secret/"));
	p300[300] = '\0';
	ASSERT(strlen(p300) == 300);
	ASSERT(is(sim_open(f, CG_A1, p300, true, false), BW_DECISION_BLOCK, 0, secret));
	/* a 300-byte path that starts with an exact rule's text is not that file */
	memcpy(p300, "/etc/shadow", strlen("/etc/shadow"));
	ASSERT(allowed(sim_open(f, CG_A1, p300, true, false)));
	/* the longest exact rule: matched whole, not as the start of a longer path */
	ASSERT(is(sim_open(f, CG_A1, long_rule, true, false), BW_DECISION_BLOCK, 0, longr));
	memcpy(p300, long_rule, BW_RULE_PATH_MAX);
	ASSERT(allowed(sim_open(f, CG_A1, p300, true, false)));
	p300[BW_RULE_PATH_MAX + 1] = '\0'; /* 256 bytes: the first cut length */
	ASSERT(strlen(p300) == BW_PATH_KEY_MAX);
	ASSERT(allowed(sim_open(f, CG_A1, p300, true, false)));
	{
		char shorter[BW_RULE_PATH_MAX];

		memcpy(shorter, long_rule, BW_RULE_PATH_MAX - 1);
		shorter[BW_RULE_PATH_MAX - 1] = '\0';
		ASSERT(allowed(sim_open(f, CG_A1, shorter, true, false)));
	}

	/* IPv4: /16 beats /8 but carries its port rules */
	ASSERT(is(sim_connect(f, CG_A1, "10.1.2.3", 22, BW_PROTO_TCP), BW_DECISION_BLOCK, 0, net16));
	ASSERT(is(sim_connect(f, CG_A1, "10.1.2.3", 22, BW_PROTO_UDP), BW_DECISION_BLOCK, 0, net16));
	ASSERT(is(sim_connect(f, CG_A1, "10.1.2.3", 80, BW_PROTO_TCP), BW_DECISION_BLOCK, 0, net8));
	ASSERT(is(sim_connect(f, CG_A1, "10.1.2.3", 89, BW_PROTO_TCP), BW_DECISION_BLOCK, 0, net8));
	ASSERT(allowed(sim_connect(f, CG_A1, "10.1.2.3", 90, BW_PROTO_TCP)));
	ASSERT(allowed(sim_connect(f, CG_A1, "10.1.2.3", 80, BW_PROTO_UDP)));
	ASSERT(allowed(sim_connect(f, CG_A1, "10.2.0.1", 22, BW_PROTO_TCP))); /* /16's rule only */
	ASSERT(is(sim_connect(f, CG_A1, "10.2.0.1", 85, BW_PROTO_TCP), BW_DECISION_BLOCK, 0, net8));
	ASSERT(allowed(sim_connect(f, CG_A1, "11.0.0.1", 80, BW_PROTO_TCP)));
	ASSERT(is(sim_connect(f, CG_A1, "192.168.1.200", 1, BW_PROTO_UDP), BW_DECISION_BLOCK, 0, net24));
	/* IPv6 */
	ASSERT(is(sim_connect(f, CG_A1, "2001:db8::1", 443, BW_PROTO_TCP), BW_DECISION_BLOCK, 0, net6));
	ASSERT(is(sim_connect(f, CG_A1, "2001:db8:ffff::1", 443, BW_PROTO_UDP), BW_DECISION_BLOCK, 0, net6));
	ASSERT(allowed(sim_connect(f, CG_A1, "2001:db8::1", 444, BW_PROTO_TCP)));
	ASSERT(allowed(sim_connect(f, CG_A1, "2001:db9::1", 443, BW_PROTO_TCP)));
	/* v4-mapped goes through the v4 trie */
	ASSERT(is(sim_connect(f, CG_A1, "::ffff:192.168.1.7", 1, BW_PROTO_TCP), BW_DECISION_BLOCK, 0, net24));
	ASSERT(is(sim_connect(f, CG_A1, "::ffff:10.1.0.9", 22, BW_PROTO_TCP), BW_DECISION_BLOCK, 0, net16));
	ASSERT(allowed(sim_connect(f, CG_A1, "::ffff:192.168.2.7", 1, BW_PROTO_TCP)));
	/* ...and the v4-compatible form does not */
	ASSERT(allowed(sim_connect(f, CG_A1, "::192.168.1.7", 1, BW_PROTO_TCP)));
}

static void check_allowlist_decisions(const struct bw_map_fds *f, __u64 cg, bool more)
{
	/* Misses of an allow list report rule 0 and the allow list's slot. */
	ASSERT(allowed(sim_exec(f, cg, "/usr/bin/ls", "ls")));
	ASSERT(is(sim_exec(f, cg, "/opt/x", NULL), BW_DECISION_BLOCK, 0, 0));
	ASSERT(is(sim_exec(f, cg, "/usr/binx", NULL), BW_DECISION_BLOCK, 0, 0));
	if (more)
		ASSERT(allowed(sim_exec(f, cg, "/usr/local/bin/tool", NULL)));
	else
		ASSERT(is(sim_exec(f, cg, "/usr/local/bin/tool", NULL), BW_DECISION_BLOCK, 0, 0));
	/* a name the caller passed never makes an allow-list miss */
	ASSERT(allowed(sim_exec(f, cg, "/usr/bin/ls", "/opt/ls")));
	ASSERT(allowed(sim_open(f, cg, "/app/config", true, false)));
	ASSERT(is(sim_open(f, cg, "/app/config", false, true), BW_DECISION_BLOCK, 0, 0)); /* listed for reads */
	ASSERT(is(sim_open(f, cg, "/etc/passwd", true, false), BW_DECISION_BLOCK, 0, 0));
	ASSERT(allowed(sim_connect(f, cg, "10.9.9.9", 443, BW_PROTO_TCP)));
	ASSERT(is(sim_connect(f, cg, "10.9.9.9", 443, BW_PROTO_UDP), BW_DECISION_BLOCK, 0, 0));
	ASSERT(is(sim_connect(f, cg, "10.9.9.9", 80, BW_PROTO_TCP), BW_DECISION_BLOCK, 0, 0));
	ASSERT(is(sim_connect(f, cg, "8.8.8.8", 443, BW_PROTO_TCP), BW_DECISION_BLOCK, 0, 0));
	/* the allow list has no v6 entry: every v6 peer is a miss */
	ASSERT(is(sim_connect(f, cg, "2001:db8::1", 443, BW_PROTO_TCP), BW_DECISION_BLOCK, 0, 0));
	ASSERT(allowed(sim_connect(f, cg, "::ffff:10.0.0.1", 443, BW_PROTO_TCP)));
}

static void test_publish(void)
{
	struct bw_policy_list lock = { 0 }, allow = { 0 }, allow2 = { 0 };
	struct bw_publisher pub;
	struct bw_publish_result res;
	struct bw_map_fds f;
	struct bw_plan plan;
	struct bw_ruleset cfg;
	__u32 id_a, id_b, id_b2, got;
	const unsigned *plan_a_holders;
	size_t ra, rb;
	int r;
	const __u64 seen[] = { CG_SEEN, CG_A1, CG_IDLE, CG_B, CG_A2 };

	maps_create(&f, 64, 16);
	bw_publisher_init(&pub, &f);
	lock_policies(&lock);
	allow_policies(&allow, false);
	allow_policies(&allow2, true);

	/* ---- first plan: two rule sets, three cgroups */
	memset(&plan, 0, sizeof(plan));
	ra = plan_ruleset(&plan, compile(&lock));
	rb = plan_ruleset(&plan, compile(&allow));
	plan_assign(&plan, CG_A1, ra);
	plan_assign(&plan, CG_A2, ra);
	plan_assign(&plan, CG_B, rb);
	plan_seen(&plan, seen, sizeof(seen) / sizeof(seen[0]));
	r = bw_publish_plan(&pub, &plan, 1000, &res);
	ASSERT(r == 0);
	ASSERT(res.first_error == 0);
	ASSERT(res.rulesets_new == 2);
	ASSERT(res.rulesets_reused == 0);
	ASSERT(res.workloads_updated == 3);
	ASSERT(res.workloads_removed == 0);
	ASSERT(res.workloads_failed == 0 && res.rulesets_failed == 0);

	ASSERT(workload_get(&f, CG_A1, &id_a));
	ASSERT(workload_get(&f, CG_A2, &got) && got == id_a);
	ASSERT(workload_get(&f, CG_B, &id_b));
	ASSERT(id_a != 0 && id_b != 0 && id_a != id_b);
	ASSERT(!workload_get(&f, CG_IDLE, &got));
	ASSERT(bw_publisher_find(&pub, id_a) != NULL);

	/* the config as the kernel reads it */
	ASSERT(ruleset_config(&f, id_a, &cfg));
	ASSERT(cfg.generation == pub.generation && cfg.generation != 0);
	ASSERT(cfg.block_mask == BIT(0));
	ASSERT(cfg.tries == (BW_TRIE_EXEC | BW_TRIE_FILE | BW_TRIE_NET4 | BW_TRIE_NET6));
	ASSERT(ruleset_config(&f, id_b, &cfg));
	ASSERT(cfg.allowlist_mask[BW_CLASS_EXEC] == BIT(0) && cfg.allowlist_mask[BW_CLASS_NET] == BIT(0));
	ASSERT(!has_inner(f.net6_tries, id_b)); /* no v6 rule: no v6 trie */
	ASSERT(has_inner(f.net4_tries, id_b));

	/* inner tries are sized to their rules */
	{
		int fd = inner_fd(f.exec_tries, id_a);
		struct bpf_map_info info;
		__u32 len = sizeof(info);

		memset(&info, 0, sizeof(info));
		ASSERT(fd >= 0);
		ASSERT(fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0);
		ASSERT(info.type == BPF_MAP_TYPE_LPM_TRIE);
		ASSERT(info.max_entries == plan.rulesets[ra].n_exec);
		ASSERT(info.map_flags == BPF_F_NO_PREALLOC);
		ASSERT(info.key_size == sizeof(struct bw_path_key));
		if (fd >= 0)
			close(fd);
	}

	check_plan1_decisions(&f, CG_A2);
	check_allowlist_decisions(&f, CG_B, false);
	/* unselected cgroups have no entry: nothing is checked */
	ASSERT(!sim_exec(&f, CG_IDLE, "/bin/sh", "/bin/sh").checked);
	ASSERT(allowed(sim_exec(&f, CG_IDLE, "/bin/sh", "/bin/sh")));
	ASSERT(!sim_connect(&f, CG_IDLE, "10.1.2.3", 22, BW_PROTO_TCP).checked);
	ASSERT(!sim_open(&f, 999999, "/etc/shadow", true, false).checked);

	/* publishing the same plan again changes nothing */
	r = bw_publish_plan(&pub, &plan, 1100, &res);
	ASSERT(r == 0);
	ASSERT(res.rulesets_reused == 2 && res.rulesets_new == 0);
	ASSERT(res.workloads_updated == 0 && res.workloads_removed == 0);
	ASSERT(workload_get(&f, CG_A1, &got) && got == id_a);
	bw_plan_clear(&plan);

	/* cgroups made since the walk inherited rule sets (cgroup_inherit) */
	workload_put(&f, CG_NEW_A, id_a);
	workload_put(&f, CG_NEW_B, id_b);

	/* ---- second plan: A unchanged, B changed, CG_A2 no longer selected */
	memset(&plan, 0, sizeof(plan));
	ra = plan_ruleset(&plan, compile(&lock));
	rb = plan_ruleset(&plan, compile(&allow2));
	plan_assign(&plan, CG_A1, ra);
	plan_assign(&plan, CG_B, rb);
	plan_seen(&plan, seen, sizeof(seen) / sizeof(seen[0]));
	r = bw_publish_plan(&pub, &plan, 2000, &res);
	plan_a_holders = plan.rulesets[ra].holders;
	ASSERT(r == 0);
	ASSERT(res.rulesets_reused == 1);
	ASSERT(res.rulesets_new == 1);
	ASSERT(res.workloads_updated == 1);
	ASSERT(res.workloads_removed == 1);
	ASSERT(res.workloads_failed == 0);
	bw_plan_clear(&plan);

	ASSERT(workload_get(&f, CG_A1, &got) && got == id_a); /* kept its id */
	/* ...and the publisher now holds the new compile of A, not a second copy */
	ASSERT(bw_publisher_find(&pub, id_a)->rs.holders == plan_a_holders);
	ASSERT(workload_get(&f, CG_B, &id_b2));
	ASSERT(id_b2 != 0 && id_b2 != id_b && id_b2 != id_a);
	ASSERT(!workload_get(&f, CG_A2, &got)); /* seen, not selected: removed */
	ASSERT(workload_get(&f, CG_NEW_A, &got) && got == id_a); /* not seen: kept */
	ASSERT(workload_get(&f, CG_NEW_B, &got) && got == id_b);
	ASSERT(!sim_exec(&f, CG_A2, "/bin/sh", NULL).checked);
	check_plan1_decisions(&f, CG_NEW_A);
	check_allowlist_decisions(&f, CG_B, true);
	/* the old rule set is still whole for whoever still uses it */
	check_allowlist_decisions(&f, CG_NEW_B, false);
	ASSERT(ruleset_config(&f, id_b, &cfg) && cfg.generation != 0);
	ASSERT(ruleset_config(&f, id_b2, &cfg) && cfg.generation == pub.generation);

	/* ---- retiring the old B */
	ASSERT(bw_publish_retire(&pub, 2000 + 499, 500) == 0); /* grace not over */
	ASSERT(bw_publisher_find(&pub, id_b) != NULL);
	ASSERT(has_inner(f.exec_tries, id_b));
	ASSERT(bw_publish_retire(&pub, 2000 + 500, 500) == 1); /* CG_NEW_B still points at it */
	ASSERT(bw_publisher_find(&pub, id_b) != NULL);
	ASSERT(ruleset_config(&f, id_b, &cfg) && cfg.generation != 0);
	check_allowlist_decisions(&f, CG_NEW_B, false);

	ASSERT(bpf_map_delete_elem(f.workloads, &(__u64){ CG_NEW_B }) == 0);
	ASSERT(bw_publish_retire(&pub, 2000 + 500, 500) == 0);
	ASSERT(bw_publisher_find(&pub, id_b) == NULL);
	ASSERT(ruleset_config(&f, id_b, &cfg));
	ASSERT(cfg.generation == 0 && cfg.tries == 0 && cfg.block_mask == 0 &&
	       cfg.allowlist_mask[BW_CLASS_EXEC] == 0);
	ASSERT(!has_inner(f.exec_tries, id_b));
	ASSERT(!has_inner(f.file_tries, id_b));
	ASSERT(!has_inner(f.net4_tries, id_b));
	ASSERT(!has_inner(f.net6_tries, id_b));
	/* a workload pointing at it now would be "missing", not judged */
	workload_put(&f, CG_NEW_B, id_b);
	{
		struct sim s = sim_exec(&f, CG_NEW_B, "/opt/x", NULL);

		ASSERT(s.ruleset_missing && !s.checked);
	}
	ASSERT(bpf_map_delete_elem(f.workloads, &(__u64){ CG_NEW_B }) == 0);
	/* the ones in use are untouched */
	ASSERT(bw_publisher_find(&pub, id_a) && bw_publisher_find(&pub, id_b2));
	ASSERT(has_inner(f.exec_tries, id_a) && has_inner(f.exec_tries, id_b2));
	check_plan1_decisions(&f, CG_NEW_A);
	check_allowlist_decisions(&f, CG_B, true);

	/* ---- third plan: the freed id serves a new rule set */
	{
		struct bw_policy_list w = { 0 };
		__u32 id_w;

		parse_into(&w, watch_yaml);
		memset(&plan, 0, sizeof(plan));
		ra = plan_ruleset(&plan, compile(&lock));
		rb = plan_ruleset(&plan, compile(&allow2));
		plan_ruleset(&plan, compile(&w));
		plan_assign(&plan, CG_A1, ra);
		plan_assign(&plan, CG_B, rb);
		plan_assign(&plan, CG_IDLE, 2);
		plan_seen(&plan, seen, sizeof(seen) / sizeof(seen[0]));
		r = bw_publish_plan(&pub, &plan, 3000, &res);
		ASSERT(r == 0);
		ASSERT(res.rulesets_new == 1 && res.rulesets_reused == 2);
		ASSERT(workload_get(&f, CG_IDLE, &id_w));
		ASSERT(id_w == id_b); /* lowest free id */
		ASSERT(ruleset_config(&f, id_w, &cfg) && cfg.generation == pub.generation && cfg.block_mask == 0);
		ASSERT(is(sim_exec(&f, CG_IDLE, "/opt/x", NULL), BW_DECISION_AUDIT, 0,
			  rid("ClusterBulwarkPolicy watch", "exec.deny[0] prefix /opt/")));
		ASSERT(!has_inner(f.file_tries, id_w)); /* no stale trie from the old B */
		ASSERT(allowed(sim_open(&f, CG_IDLE, "/etc/passwd", true, false)));
		bw_plan_clear(&plan);
		bw_policy_list_clear(&w);
	}

	bw_publisher_clear(&pub);
	bw_policy_list_clear(&lock);
	bw_policy_list_clear(&allow);
	bw_policy_list_clear(&allow2);
	maps_close(&f);
}

static void test_workloads_full(void)
{
	struct bw_policy_list lock = { 0 };
	struct bw_publisher pub;
	struct bw_publish_result res;
	struct bw_map_fds f;
	struct bw_plan plan;
	const __u64 seen[] = { 1, 2, 3 };
	__u32 got;
	int r, present = 0;

	maps_create(&f, 2, 16);
	bw_publisher_init(&pub, &f);
	lock_policies(&lock);
	memset(&plan, 0, sizeof(plan));
	plan_ruleset(&plan, compile(&lock));
	plan_assign(&plan, 1, 0);
	plan_assign(&plan, 2, 0);
	plan_assign(&plan, 3, 0);
	plan_seen(&plan, seen, 3);
	r = bw_publish_plan(&pub, &plan, 1, &res);
	ASSERT(res.workloads_failed == 1);
	ASSERT(res.workloads_updated == 2);
	ASSERT(res.first_error == -E2BIG);
	ASSERT(r == res.first_error);
	ASSERT(res.rulesets_new == 1 && res.rulesets_failed == 0);
	for (__u64 cg = 1; cg <= 3; cg++)
		present += workload_get(&f, cg, &got);
	ASSERT(present == 2);
	bw_plan_clear(&plan);
	bw_publisher_clear(&pub);
	bw_policy_list_clear(&lock);
	maps_close(&f);
}

static void test_no_free_id(void)
{
	struct bw_policy_list lock = { 0 }, allow = { 0 };
	struct bw_publisher pub;
	struct bw_publish_result res;
	struct bw_map_fds f;
	struct bw_plan plan;
	const __u64 seen[] = { 10, 20 };
	__u32 got;
	int r;

	/* max_entries 2: only id 1 is usable (0 never names a rule set). */
	maps_create(&f, 16, 2);
	bw_publisher_init(&pub, &f);
	lock_policies(&lock);
	allow_policies(&allow, false);
	workload_put(&f, 20, 1234); /* what cgroup 20 had before */
	memset(&plan, 0, sizeof(plan));
	plan_ruleset(&plan, compile(&lock));
	plan_ruleset(&plan, compile(&allow));
	plan_assign(&plan, 10, 0);
	plan_assign(&plan, 20, 1);
	plan_seen(&plan, seen, 2);
	r = bw_publish_plan(&pub, &plan, 1, &res);
	ASSERT(r == -ENOSPC);
	ASSERT(res.rulesets_new == 1 && res.rulesets_failed == 1);
	ASSERT(res.workloads_updated == 1);
	ASSERT(workload_get(&f, 10, &got) && got == 1);
	ASSERT(workload_get(&f, 20, &got) && got == 1234); /* kept, not removed */
	ASSERT(is(sim_exec(&f, 10, "/bin/sh", NULL), BW_DECISION_BLOCK, 0,
		  rid("ClusterBulwarkPolicy lock", "exec.deny[0] path /bin/sh")));
	bw_plan_clear(&plan);
	bw_publisher_clear(&pub);
	bw_policy_list_clear(&lock);
	bw_policy_list_clear(&allow);
	maps_close(&f);
}

/* ---- spare ids ------------------------------------------------------------- */

/* lock's rule set for CG_A1, b's for CG_B; CG_A1, CG_B and CG_IDLE seen. */
static void plan_lock_and(struct bw_plan *plan, const struct bw_policy_list *lock, const struct bw_policy_list *b)
{
	static const __u64 seen[] = { CG_A1, CG_B, CG_IDLE };

	memset(plan, 0, sizeof(*plan));
	plan_assign(plan, CG_A1, plan_ruleset(plan, compile(lock)));
	plan_assign(plan, CG_B, plan_ruleset(plan, compile(b)));
	plan_seen(plan, seen, 3);
}

static __u32 inner_map_id(int outer, __u32 id)
{
	__u32 inner_id = 0;

	if (bpf_map_lookup_elem(outer, &id, &inner_id) < 0)
		return 0;
	return inner_id;
}

/* An empty spare trie of the given capacity under id, for every kind. */
static bool is_empty_spare(const struct bw_map_fds *f, __u32 id, __u32 capacity)
{
	const int outers[] = { f->exec_tries, f->file_tries, f->net4_tries, f->net6_tries };
	struct bw_ruleset cfg;
	bool ok = ruleset_config(f, id, &cfg) && cfg.generation == 0;

	for (size_t i = 0; i < 4 && ok; i++) {
		int fd = inner_fd(outers[i], id);
		struct bpf_map_info info;
		__u32 len = sizeof(info);
		__u8 key[sizeof(struct bw_path_key)];

		memset(&info, 0, sizeof(info));
		ok = fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.type == BPF_MAP_TYPE_LPM_TRIE &&
		     info.max_entries == capacity && info.map_flags == BPF_F_NO_PREALLOC &&
		     bpf_map_get_next_key(fd, NULL, key) < 0 && errno == ENOENT;
		if (fd >= 0)
			close(fd);
	}
	return ok;
}

/* max_entries of id's trie in outer, 0 when there is none. */
static size_t trie_capacity(int outer, __u32 id)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	int fd = inner_fd(outer, id);
	size_t n = 0;

	memset(&info, 0, sizeof(info));
	if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
		n = info.max_entries;
	if (fd >= 0)
		close(fd);
	return n;
}

static bool no_tries(const struct bw_map_fds *f, __u32 id)
{
	return !has_inner(f->exec_tries, id) && !has_inner(f->file_tries, id) && !has_inner(f->net4_tries, id) &&
	       !has_inner(f->net6_tries, id);
}

/* A policy with n exact exec rules: more entries than a small spare holds. */
static void big_policy(struct bw_policy_list *l, int n)
{
	size_t cap = 4096 + (size_t)n * 40, len;
	char *y = malloc(cap);

	ASSERT(y != NULL);
	if (!y)
		return;
	len = (size_t)snprintf(y, cap, HEADER("ClusterBulwarkPolicy", "big") "spec:\n  mode: Block\n  exec:\n    deny:\n");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(y + len, cap - len, "      - path: /opt/big/%d\n", i);
	parse_into(l, y);
	free(y);
}

/* New rule sets go into spare ids' tries in place: no outer map written on
 * the apply's path; larger ones fall back; retired ids are dropped when
 * there are spares enough. */
static void test_spares(void)
{
	struct bw_policy_list lock = { 0 }, allow = { 0 }, allow2 = { 0 }, big = { 0 };
	struct bw_publisher pub;
	struct bw_publish_result res;
	struct bw_spare_stats st;
	struct bw_map_fds f;
	struct bw_plan plan;
	struct bw_ruleset cfg;
	__u32 id_a, id_b, id_b2, id_big, got, spare_trie[3];
	size_t a_exec, b_file;

	maps_create(&f, 64, 16);
	bw_publisher_init(&pub, &f);
	lock_policies(&lock);
	allow_policies(&allow, false);
	allow_policies(&allow2, true);
	big_policy(&big, 80);

	ASSERT(bw_publisher_start_spares(&pub, 2, 64, 0) == 0);
	ASSERT(bw_publisher_wait_spares(&pub, 10000) == 2);
	/* the lowest ids, with four empty tries each and no config */
	ASSERT(is_empty_spare(&f, 1, 64) && is_empty_spare(&f, 2, 64));
	ASSERT(no_tries(&f, 3));
	spare_trie[1] = inner_map_id(f.exec_tries, 1);
	spare_trie[2] = inner_map_id(f.exec_tries, 2);

	plan_lock_and(&plan, &lock, &allow);
	a_exec = plan.rulesets[0].n_exec;
	b_file = plan.rulesets[1].n_file;
	ASSERT(bw_publish_plan(&pub, &plan, 1000, &res) == 0);
	ASSERT(res.rulesets_new == 2 && res.rulesets_spared == 2);
	ASSERT(res.outer_updates == 0); /* nothing on this path waited for RCU */
	bw_plan_clear(&plan);
	ASSERT(workload_get(&f, CG_A1, &id_a) && workload_get(&f, CG_B, &id_b));
	ASSERT((id_a == 1 && id_b == 2) || (id_a == 2 && id_b == 1));
	/* right away (the thread may be sizing the tries meanwhile: same answers) */
	check_plan1_decisions(&f, CG_A1);
	check_allowlist_decisions(&f, CG_B, false);
	ASSERT(ruleset_config(&f, id_a, &cfg) && cfg.generation == pub.generation);
	ASSERT(cfg.tries == (BW_TRIE_EXEC | BW_TRIE_FILE | BW_TRIE_NET4 | BW_TRIE_NET6));
	/* B has no v6 rule: its v6 trie is there but empty, and the config says so */
	ASSERT(ruleset_config(&f, id_b, &cfg) && !(cfg.tries & BW_TRIE_NET6));
	check_plan1_decisions(&f, CG_A1);
	check_allowlist_decisions(&f, CG_B, false);

	/* the thread makes the next ones meanwhile, and swaps the used spares'
	 * tries for tries of their size (an empty kind's is removed) */
	ASSERT(bw_publisher_wait_spares(&pub, 10000) == 2);
	ASSERT(is_empty_spare(&f, 3, 64) && is_empty_spare(&f, 4, 64));
	ASSERT(inner_map_id(f.exec_tries, id_a) != spare_trie[id_a] && inner_map_id(f.exec_tries, id_a) != 0);
	ASSERT(trie_capacity(f.exec_tries, id_a) == a_exec);
	ASSERT(trie_capacity(f.file_tries, id_b) == b_file);
	ASSERT(!has_inner(f.net6_tries, id_b));
	bw_publisher_spare_stats(&pub, &st);
	ASSERT(st.compacted == 2);
	check_plan1_decisions(&f, CG_A1);
	check_allowlist_decisions(&f, CG_B, false);

	/* B changes: B2 goes into a spare too */
	plan_lock_and(&plan, &lock, &allow2);
	ASSERT(bw_publish_plan(&pub, &plan, 2000, &res) == 0);
	ASSERT(res.rulesets_new == 1 && res.rulesets_spared == 1 && res.rulesets_reused == 1 && res.outer_updates == 0);
	bw_plan_clear(&plan);
	ASSERT(workload_get(&f, CG_B, &id_b2) && (id_b2 == 3 || id_b2 == 4));
	check_allowlist_decisions(&f, CG_B, true);

	/* the old B retires with spares enough: its tries leave the outer maps
	 * (in the thread) and the id is free */
	ASSERT(bw_publisher_wait_spares(&pub, 10000) == 2);
	ASSERT(bw_publish_retire(&pub, 2000 + 500, 500) == 0);
	ASSERT(bw_publisher_find(&pub, id_b) == NULL);
	ASSERT(ruleset_config(&f, id_b, &cfg) && cfg.generation == 0 && cfg.tries == 0);
	ASSERT(bw_publisher_wait_spares(&pub, 10000) == 2);
	ASSERT(no_tries(&f, id_b));
	bw_publisher_spare_stats(&pub, &st);
	ASSERT(st.made == 5 && st.dropped == 1 && st.taken == 3 && st.failures == 0 && st.ready == 2);
	workload_put(&f, CG_IDLE, id_b);
	ASSERT(sim_exec(&f, CG_IDLE, "/opt/x", NULL).ruleset_missing);
	ASSERT(bpf_map_delete_elem(f.workloads, &(__u64){ CG_IDLE }) == 0);

	/* a rule set larger than a spare makes its own tries, in the lowest free id */
	plan_lock_and(&plan, &lock, &allow2);
	plan_ruleset(&plan, compile(&big));
	ASSERT(plan.rulesets[2].n_exec == 80);
	plan_assign(&plan, CG_IDLE, 2);
	ASSERT(bw_publish_plan(&pub, &plan, 3000, &res) == 0);
	ASSERT(res.rulesets_new == 1 && res.rulesets_spared == 0 && res.outer_updates == 1);
	bw_plan_clear(&plan);
	ASSERT(workload_get(&f, CG_IDLE, &id_big) && id_big == id_b);
	ASSERT(is(sim_exec(&f, CG_IDLE, "/opt/big/79", NULL), BW_DECISION_BLOCK, 0,
		  rid("ClusterBulwarkPolicy big", "exec.deny[79] path /opt/big/79")));
	ASSERT(allowed(sim_exec(&f, CG_IDLE, "/opt/big/80", NULL)));
	bw_publisher_spare_stats(&pub, &st);
	ASSERT(st.too_large == 1 && st.ready == 2);
	ASSERT(workload_get(&f, CG_A1, &got) && got == id_a);

	/* three new rule sets with two spares ready: an apply takes only the
	 * spares ready when it began, the third makes its own tries */
	{
		struct bw_policy_list w = { 0 }, small = { 0 };

		parse_into(&w, watch_yaml);
		big_policy(&small, 3);
		ASSERT(bw_publisher_wait_spares(&pub, 10000) == 2);
		plan_lock_and(&plan, &lock, &allow);
		plan_assign(&plan, CG_IDLE, plan_ruleset(&plan, compile(&w)));
		plan_assign(&plan, CG_NEW_A, plan_ruleset(&plan, compile(&small)));
		ASSERT(bw_publish_plan(&pub, &plan, 4000, &res) == 0);
		ASSERT(res.rulesets_new == 3 && res.rulesets_spared == 2 && res.outer_updates == 1);
		bw_plan_clear(&plan);
		check_allowlist_decisions(&f, CG_B, false);
		ASSERT(is(sim_exec(&f, CG_NEW_A, "/opt/big/2", NULL), BW_DECISION_BLOCK, 0,
			  rid("ClusterBulwarkPolicy big", "exec.deny[2] path /opt/big/2")));
		bw_policy_list_clear(&w);
		bw_policy_list_clear(&small);
	}

	bw_publisher_clear(&pub);
	bw_policy_list_clear(&lock);
	bw_policy_list_clear(&allow);
	bw_policy_list_clear(&allow2);
	bw_policy_list_clear(&big);
	maps_close(&f);
}

/* With every id taken, a retired id becomes a spare again: its tries are
 * swapped for empty ones, so the next rule set in it finds nothing stale. */
static void test_spare_recycling(void)
{
	struct bw_policy_list lock = { 0 }, allow = { 0 }, allow2 = { 0 }, w = { 0 };
	struct bw_publisher pub;
	struct bw_publish_result res;
	struct bw_spare_stats st;
	struct bw_map_fds f;
	struct bw_plan plan;
	__u32 id_b, id_w, old_file_trie;
	int r;

	maps_create(&f, 64, 4); /* ids 1..3 */
	bw_publisher_init(&pub, &f);
	lock_policies(&lock);
	allow_policies(&allow, false);
	allow_policies(&allow2, true);
	parse_into(&w, watch_yaml);
	ASSERT(bw_publisher_start_spares(&pub, 3, 64, 0) == 0);
	ASSERT(bw_publisher_wait_spares(&pub, 10000) == 3);

	plan_lock_and(&plan, &lock, &allow);
	ASSERT(bw_publish_plan(&pub, &plan, 1000, &res) == 0 && res.rulesets_spared == 2);
	bw_plan_clear(&plan);
	ASSERT(workload_get(&f, CG_B, &id_b));
	ASSERT(bw_publisher_wait_spares(&pub, 10000) == 1); /* no free id left to make more */

	plan_lock_and(&plan, &lock, &allow2);
	ASSERT(bw_publish_plan(&pub, &plan, 2000, &res) == 0 && res.rulesets_spared == 1);
	bw_plan_clear(&plan);
	ASSERT(bw_publisher_wait_spares(&pub, 10000) == 0);

	/* B retires into a spare: fresh empty tries under its id */
	old_file_trie = inner_map_id(f.file_tries, id_b);
	ASSERT(old_file_trie != 0);
	ASSERT(bw_publish_retire(&pub, 2500, 500) == 0);
	ASSERT(bw_publisher_wait_spares(&pub, 10000) == 1);
	ASSERT(is_empty_spare(&f, id_b, 64));
	ASSERT(inner_map_id(f.file_tries, id_b) != old_file_trie);
	bw_publisher_spare_stats(&pub, &st);
	ASSERT(st.made == 4 && st.dropped == 0 && st.taken == 3);

	/* the watch policy takes it; B's file rules are gone from it */
	plan_lock_and(&plan, &lock, &allow2);
	plan_ruleset(&plan, compile(&w));
	plan_assign(&plan, CG_IDLE, 2);
	ASSERT(bw_publish_plan(&pub, &plan, 3000, &res) == 0);
	ASSERT(res.rulesets_spared == 1 && res.outer_updates == 0);
	bw_plan_clear(&plan);
	ASSERT(workload_get(&f, CG_IDLE, &id_w) && id_w == id_b);
	ASSERT(is(sim_exec(&f, CG_IDLE, "/opt/x", NULL), BW_DECISION_AUDIT, 0,
		  rid("ClusterBulwarkPolicy watch", "exec.deny[0] prefix /opt/")));
	ASSERT(allowed(sim_open(&f, CG_IDLE, "/etc/passwd", true, false)));
	ASSERT(bw_publisher_wait_spares(&pub, 10000) == 0);
	ASSERT(!has_inner(f.file_tries, id_w)); /* sized: the watch policy has no file rule */
	ASSERT(trie_capacity(f.exec_tries, id_w) == 2);
	ASSERT(is(sim_exec(&f, CG_IDLE, "/opt/x", NULL), BW_DECISION_AUDIT, 0,
		  rid("ClusterBulwarkPolicy watch", "exec.deny[0] prefix /opt/")));

	/* no spare and no free id: refused, counted, the rest still applied */
	plan_lock_and(&plan, &lock, &allow);
	r = bw_publish_plan(&pub, &plan, 4000, &res);
	ASSERT(r == -ENOSPC && res.rulesets_failed == 1 && res.rulesets_reused == 1);
	bw_plan_clear(&plan);
	bw_publisher_spare_stats(&pub, &st);
	ASSERT(st.missed == 1);
	check_allowlist_decisions(&f, CG_B, true); /* kept B2 */

	bw_publisher_clear(&pub);
	bw_policy_list_clear(&lock);
	bw_policy_list_clear(&allow);
	bw_policy_list_clear(&allow2);
	bw_policy_list_clear(&w);
	maps_close(&f);
}

/* Whether less than delay_ns passed since t: a check that holds only
 * before a deadline is skipped (and says so) when this machine was too slow
 * to make it in time, rather than fail. */
static bool still_before(uint64_t t, uint64_t delay_ns, const char *what)
{
	if (clock_ns(CLOCK_MONOTONIC) - t < delay_ns)
		return true;
	fprintf(stderr, "test-maps: too slow to check %s; skipped\n", what);
	return false;
}

/* A used spare's tries are sized only once no rule set went into a spare
 * for the delay: not right after an apply, later when another apply comes
 * first; bw_publisher_wait_spares() counts a deferred compaction as work.
 * The order is asserted through the stats, time only by lower bounds. */
static void test_spare_compaction_delay(void)
{
	const uint32_t delay_ms = 300;
	const uint64_t delay_ns = delay_ms * 1000000ULL;
	struct bw_policy_list lock = { 0 }, allow = { 0 }, allow2 = { 0 }, w = { 0 };
	struct bw_publisher pub;
	struct bw_publish_result res;
	struct bw_spare_stats st;
	struct bw_map_fds f;
	struct bw_plan plan;
	uint64_t t0, t1, now;
	size_t b_file;
	__u32 id_b;

	maps_create(&f, 64, 16);
	bw_publisher_init(&pub, &f);
	lock_policies(&lock);
	allow_policies(&allow, false);
	allow_policies(&allow2, true);
	parse_into(&w, watch_yaml);
	ASSERT(bw_publisher_start_spares(&pub, 2, 64, delay_ms) == 0);
	ASSERT(bw_publisher_wait_spares(&pub, 10000) == 2);

	/* right after the apply its spares' tries are as filled, unsized */
	t0 = clock_ns(CLOCK_MONOTONIC);
	plan_lock_and(&plan, &lock, &allow);
	b_file = plan.rulesets[1].n_file;
	ASSERT(bw_publish_plan(&pub, &plan, 1000, &res) == 0 && res.rulesets_spared == 2);
	bw_plan_clear(&plan);
	ASSERT(workload_get(&f, CG_B, &id_b));
	bw_publisher_spare_stats(&pub, &st);
	if (still_before(t0, delay_ns, "the first compaction waiting")) {
		ASSERT(st.compacted == 0 && st.deferred == 2 && st.pending >= 2);
		ASSERT(trie_capacity(f.file_tries, id_b) == 64);
	}
	/* waiting for the thread includes the deferred compactions */
	ASSERT(bw_publisher_wait_spares(&pub, 10000) == 2);
	ASSERT(clock_ns(CLOCK_MONOTONIC) - t0 >= delay_ns);
	bw_publisher_spare_stats(&pub, &st);
	ASSERT(st.compacted == 2 && st.pending == 0 && st.deferred == 0 && st.failures == 0);
	ASSERT(b_file > 0 && trie_capacity(f.file_tries, id_b) == b_file);
	check_allowlist_decisions(&f, CG_B, false);

	/* a second apply within the delay postpones the first one's sizing:
	 * past the first deadline, before the second, nothing is sized */
	t0 = clock_ns(CLOCK_MONOTONIC);
	plan_lock_and(&plan, &lock, &allow2);
	ASSERT(bw_publish_plan(&pub, &plan, 2000, &res) == 0 && res.rulesets_spared == 1);
	bw_plan_clear(&plan);
	bw_publisher_wait_spares(&pub, 150); /* times out: the compaction waits */
	t1 = clock_ns(CLOCK_MONOTONIC);
	plan_lock_and(&plan, &lock, &w);
	ASSERT(bw_publish_plan(&pub, &plan, 3000, &res) == 0 && res.rulesets_spared == 1);
	bw_plan_clear(&plan);
	bw_publisher_spare_stats(&pub, &st);
	if (still_before(t0, delay_ns, "the second apply within the delay"))
		ASSERT(st.compacted == 2 && st.deferred == 2);
	now = clock_ns(CLOCK_MONOTONIC);
	if (now < t0 + delay_ns + 50 * 1000000ULL)
		bw_publisher_wait_spares(&pub, (int)((t0 + delay_ns + 50 * 1000000ULL - now) / 1000000ULL) + 1);
	bw_publisher_spare_stats(&pub, &st);
	if (still_before(t1, delay_ns, "the first deadline postponed"))
		ASSERT(st.compacted == 2 && st.deferred == 2 && st.pending >= 2);
	ASSERT(bw_publisher_wait_spares(&pub, 10000) == 2);
	ASSERT(clock_ns(CLOCK_MONOTONIC) - t1 >= delay_ns);
	bw_publisher_spare_stats(&pub, &st);
	ASSERT(st.compacted == 4 && st.pending == 0 && st.deferred == 0 && st.failures == 0);
	ASSERT(is(sim_exec(&f, CG_B, "/opt/x", NULL), BW_DECISION_AUDIT, 0,
		  rid("ClusterBulwarkPolicy watch", "exec.deny[0] prefix /opt/")));
	bw_publisher_clear(&pub);
	maps_close(&f);

	/* stop does not wait for the quiet period: with a delay longer than
	 * the test's timeout, clear returns (the tries stay as filled) */
	maps_create(&f, 64, 16);
	bw_publisher_init(&pub, &f);
	ASSERT(bw_publisher_start_spares(&pub, 2, 64, 600000) == 0);
	ASSERT(bw_publisher_wait_spares(&pub, 10000) == 2);
	plan_lock_and(&plan, &lock, &allow);
	ASSERT(bw_publish_plan(&pub, &plan, 1000, &res) == 0 && res.rulesets_spared == 2);
	bw_plan_clear(&plan);
	/* once the spares are made again, the thread has only the deferred
	 * compactions left: it waits for their deadline when stop comes */
	for (int i = 0; i < 1000; i++) {
		bw_publisher_spare_stats(&pub, &st);
		if (st.ready == st.target && st.pending == st.deferred)
			break;
		bw_publisher_wait_spares(&pub, 10);
	}
	ASSERT(st.compacted == 0 && st.deferred == 2 && st.pending == 2 && st.ready == 2);
	bw_publisher_clear(&pub);
	check_allowlist_decisions(&f, CG_B, false);
	maps_close(&f);

	bw_policy_list_clear(&lock);
	bw_policy_list_clear(&allow);
	bw_policy_list_clear(&allow2);
	bw_policy_list_clear(&w);
}

int main(void)
{
	char tmpl[] = "/tmp/bw-test-maps-XXXXXX";

	empty_root = mkdtemp(tmpl);
	if (!empty_root) {
		perror("mkdtemp");
		return 2;
	}
	long_rule[0] = '/';
	memset(long_rule + 1, 'L', BW_RULE_PATH_MAX - 1);
	long_rule[BW_RULE_PATH_MAX] = '\0';

	test_publish();
	test_workloads_full();
	test_no_free_id();
	test_spares();
	test_spare_recycling();
	test_spare_compaction_delay();

	bw_rule_table_clear(&rt);
	rmdir(empty_root);
	return bw_test_summary();
}
