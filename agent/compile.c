/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy compiler (see compile.h and docs/DESIGN.md).
 *
 * Path rules become LPM-trie entries keyed by the rule string, with the NUL
 * terminator for exact rules. The kernel returns only the longest matching
 * entry, so each entry is given, at compile time, the merged verdict of
 * every shorter prefix rule that also matches: the longest match then says
 * everything the rule set says about the path. Network rules work the same
 * way with CIDRs, carrying their port rules down to more specific networks.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "compile.h"
#include "kubepods.h"
#include "inventory.h"

static char *strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strdup_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/* Grows *arr (of elem-size items) to hold at least want items. */
static int grow(void *arr, size_t *cap, size_t want, size_t elem)
{
	void **p = arr;
	size_t ncap;
	void *n;

	if (want <= *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	while (ncap < want)
		ncap *= 2;
	n = realloc(*p, ncap * elem);
	if (!n)
		return -ENOMEM;
	memset((char *)n + *cap * elem, 0, (ncap - *cap) * elem);
	*p = n;
	*cap = ncap;
	return 0;
}

/* ---- rule table ---------------------------------------------------------- */

static uint64_t hash_str2(const char *a, const char *b)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *a; a++)
		h = (h ^ (unsigned char)*a) * 1099511628211ULL;
	h = (h ^ 0x1f) * 1099511628211ULL;
	for (; *b; b++)
		h = (h ^ (unsigned char)*b) * 1099511628211ULL;
	return h;
}

static int rule_table_rehash(struct bw_rule_table *t, size_t n_slots)
{
	uint32_t *slots = calloc(n_slots, sizeof(*slots));
	size_t i;

	if (!slots)
		return -ENOMEM;
	for (i = 0; i < t->n; i++) {
		size_t j = hash_str2(t->rules[i].policy, t->rules[i].text) & (n_slots - 1);

		while (slots[j])
			j = (j + 1) & (n_slots - 1);
		slots[j] = (uint32_t)(i + 1);
	}
	free(t->slots);
	t->slots = slots;
	t->n_slots = n_slots;
	return 0;
}

uint32_t bw_rule_intern(struct bw_rule_table *t, const char *policy, const char *text)
{
	size_t j;

	if ((t->n + 1) * 2 > t->n_slots && rule_table_rehash(t, t->n_slots ? t->n_slots * 2 : 1024) < 0)
		return 0;
	j = hash_str2(policy, text) & (t->n_slots - 1);
	while (t->slots[j]) {
		const struct bw_rule_info *r = &t->rules[t->slots[j] - 1];

		if (!strcmp(r->policy, policy) && !strcmp(r->text, text))
			return t->slots[j];
		j = (j + 1) & (t->n_slots - 1);
	}
	if (grow(&t->rules, &t->cap, t->n + 1, sizeof(*t->rules)) < 0)
		return 0;
	t->rules[t->n].policy = strdup(policy);
	t->rules[t->n].text = strdup(text);
	if (!t->rules[t->n].policy || !t->rules[t->n].text) {
		free(t->rules[t->n].policy);
		free(t->rules[t->n].text);
		return 0;
	}
	t->n++;
	t->slots[j] = (uint32_t)t->n;
	return (uint32_t)t->n;
}

const struct bw_rule_info *bw_rule_get(const struct bw_rule_table *t, uint32_t id)
{
	return id >= 1 && id <= t->n ? &t->rules[id - 1] : NULL;
}

void bw_rule_table_clear(struct bw_rule_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->rules[i].policy);
		free(t->rules[i].text);
	}
	free(t->rules);
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

char *bw_policy_identity(const struct bw_policy *p)
{
	if (p->kind == BW_KIND_NAMESPACED)
		return strdup_printf("%s %s/%s", bw_policy_kind_name(p->kind), p->namespace, p->name);
	return strdup_printf("%s %s", bw_policy_kind_name(p->kind), p->name);
}

/* ---- path tries ---------------------------------------------------------- */

/* One contribution of one rule to one key, before merging. */
struct path_raw {
	char str[BW_PATH_KEY_MAX];
	bool exact;
	unsigned access; /* bit 0: index 0 (exec, or read), bit 1: index 1 (write) */
	bool allow;
	uint8_t slot;
	uint32_t rule_id;
};

struct path_node {
	char str[BW_PATH_KEY_MAX];
	bool exact;
	size_t first, count; /* its own raws (sorted array) */
	/* merged: */
	uint64_t deny[2], allow[2];
	/* The deny rule to report: bw_decide() reports the lowest deciding
	 * slot, so the rule comes from that slot too (its most specific one). */
	uint32_t rule_block[2], rule_any[2];
	uint8_t slot_block[2], slot_any[2];
};

static void pick_rule(uint32_t *rule, uint8_t *slot, uint32_t cand, uint8_t cand_slot)
{
	if (cand && (!*rule || cand_slot < *slot)) {
		*rule = cand;
		*slot = cand_slot;
	}
}

struct path_build {
	struct path_raw *raw;
	size_t n_raw, cap_raw;
};

static int path_raw_add(struct path_build *b, const char *str, bool exact, unsigned access,
			bool allow, uint8_t slot, uint32_t rule_id)
{
	struct path_raw *r;

	if (strlen(str) > BW_RULE_PATH_MAX)
		return 0; /* only expanded link targets can be this long: nothing to add */
	if (grow(&b->raw, &b->cap_raw, b->n_raw + 1, sizeof(*b->raw)) < 0)
		return -ENOMEM;
	r = &b->raw[b->n_raw++];
	snprintf(r->str, sizeof(r->str), "%s", str);
	r->exact = exact;
	r->access = access;
	r->allow = allow;
	r->slot = slot;
	r->rule_id = rule_id;
	return 0;
}

/* The path the kernel will report for a rule's path: links in it resolved
 * under root. For a prefix, the part up to the last '/' is resolved and the
 * rest kept ("/bin/py" -> "/usr/bin/py"). Returns NULL when nothing differs
 * or the path does not exist. */
static char *resolve_rule_path(const char *root, const char *path, bool prefix)
{
	char full[PATH_MAX], real[PATH_MAX];
	const char *tail = "";
	char dir[PATH_MAX];
	size_t rootlen;
	const char *rel;

	snprintf(dir, sizeof(dir), "%s", path);
	if (prefix) {
		char *slash = strrchr(dir, '/');

		tail = path + (slash - dir) + 1;
		*slash = '\0';
		if (!dir[0])
			return NULL; /* "/" or "/x": the root needs no resolving */
	}
	if (!root || !strcmp(root, "/"))
		root = "";
	if (snprintf(full, sizeof(full), "%s%s", root, dir) >= (int)sizeof(full))
		return NULL;
	if (!realpath(full, real))
		return NULL;
	rootlen = strlen(root);
	if (rootlen && strncmp(real, root, rootlen))
		return NULL; /* a link that leaves the root says nothing about the workload */
	rel = real + rootlen;
	if (!*rel)
		rel = "/";
	if (prefix) {
		char *s = strdup_printf("%s%s%s", rel, !strcmp(rel, "/") ? "" : "/", tail);

		if (s && !strcmp(s, path)) {
			free(s);
			return NULL;
		}
		return s;
	}
	return strcmp(rel, path) ? strdup(rel) : NULL;
}

static int path_rules_add(struct path_build *b, const struct bw_path_rules *rules, bool allow,
			  bool is_exec, uint8_t slot, const char *ident, const char *list_name,
			  const struct bw_compile_options *o, struct bw_rule_table *rt)
{
	for (size_t i = 0; i < rules->n; i++) {
		const struct bw_path_rule *r = &rules->items[i];
		unsigned access = is_exec ? 1 : ((r->access & BW_ACCESS_READ ? 1 : 0) |
						 (r->access & BW_ACCESS_WRITE ? 2 : 0));
		char text[BW_PATH_KEY_MAX + 64];
		char *resolved;
		uint32_t id;
		int ret;

		if (!is_exec && !r->access)
			access = 3;
		snprintf(text, sizeof(text), "%s[%zu] %s %s", list_name, i, r->is_prefix ? "prefix" : "path", r->path);
		id = bw_rule_intern(rt, ident, text);
		if (!id)
			return -ENOMEM;
		ret = path_raw_add(b, r->path, !r->is_prefix, access, allow, slot, id);
		if (ret < 0)
			return ret;
		resolved = resolve_rule_path(o->root, r->path, r->is_prefix);
		if (resolved) {
			ret = path_raw_add(b, resolved, !r->is_prefix, access, allow, slot, id);
			free(resolved);
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

static int path_raw_cmp(const void *a, const void *b)
{
	const struct path_raw *x = a, *y = b;
	int c = strcmp(x->str, y->str);

	return c ? c : (int)x->exact - (int)y->exact;
}

static int path_node_cmp(const void *a, const void *b)
{
	const struct path_node *x = a, *y = b;
	int c = strcmp(x->str, y->str);

	return c ? c : (int)x->exact - (int)y->exact;
}

static void path_node_take(struct path_node *into, const struct path_node *from)
{
	for (int a = 0; a < 2; a++) {
		into->deny[a] |= from->deny[a];
		into->allow[a] |= from->allow[a];
		pick_rule(&into->rule_block[a], &into->slot_block[a], from->rule_block[a], from->slot_block[a]);
		pick_rule(&into->rule_any[a], &into->slot_any[a], from->rule_any[a], from->slot_any[a]);
	}
}

static int path_build_finish(struct path_build *b, uint64_t block_mask, struct bw_path_entry **out,
			     size_t *n_out)
{
	struct path_node *nodes = NULL, *own;
	size_t n_nodes = 0, i;

	*out = NULL;
	*n_out = 0;
	if (!b->n_raw)
		return 0;
	qsort(b->raw, b->n_raw, sizeof(*b->raw), path_raw_cmp);
	nodes = calloc(b->n_raw, sizeof(*nodes));
	own = calloc(b->n_raw, sizeof(*own));
	if (!nodes || !own) {
		free(nodes);
		free(own);
		return -ENOMEM;
	}
	/* Group raws by key; each node first gets its own rules. */
	for (i = 0; i < b->n_raw; i++) {
		const struct path_raw *r = &b->raw[i];
		struct path_node *n;

		if (!n_nodes || path_raw_cmp(r, &b->raw[i - 1])) {
			n = &nodes[n_nodes++];
			memcpy(n->str, r->str, sizeof(n->str));
			n->exact = r->exact;
			n->first = i;
		}
		n = &nodes[n_nodes - 1];
		n->count++;
		for (int a = 0; a < 2; a++) {
			uint64_t bit = 1ULL << r->slot;

			if (!(r->access & (1u << a)))
				continue;
			if (r->allow) {
				n->allow[a] |= bit;
				continue;
			}
			n->deny[a] |= bit;
			if (bit & block_mask)
				pick_rule(&n->rule_block[a], &n->slot_block[a], r->rule_id, r->slot);
			pick_rule(&n->rule_any[a], &n->slot_any[a], r->rule_id, r->slot);
		}
	}
	memcpy(own, nodes, n_nodes * sizeof(*own));

	/* Fold in every shorter prefix rule, longest first, so the most
	 * specific deny rule is the one reported. */
	for (i = 0; i < n_nodes; i++) {
		struct path_node *n = &nodes[i];
		size_t len = strlen(n->str);
		size_t k = n->exact ? len : len - 1;

		for (; k >= 1; k--) {
			struct path_node probe, *p;

			memset(&probe, 0, sizeof(probe));
			memcpy(probe.str, n->str, k);
			probe.exact = false;
			p = bsearch(&probe, own, n_nodes, sizeof(*own), path_node_cmp);
			if (p)
				path_node_take(n, p);
		}
	}

	*out = calloc(n_nodes, sizeof(**out));
	if (!*out) {
		free(nodes);
		free(own);
		return -ENOMEM;
	}
	for (i = 0; i < n_nodes; i++) {
		struct bw_path_entry *e = &(*out)[i];
		size_t len = strlen(nodes[i].str);

		memcpy(e->key.data, nodes[i].str, len);
		e->key.prefixlen = (uint32_t)(nodes[i].exact ? len + 1 : len) * 8;
		for (int a = 0; a < 2; a++) {
			e->value.access[a].deny_mask = nodes[i].deny[a];
			e->value.access[a].allow_mask = nodes[i].allow[a];
			e->value.access[a].rule_id = nodes[i].rule_block[a] ? nodes[i].rule_block[a]
									   : nodes[i].rule_any[a];
		}
	}
	*n_out = n_nodes;
	free(nodes);
	free(own);
	return 0;
}

/* ---- network tries ------------------------------------------------------- */

struct net_node {
	int family;
	uint8_t addr[16];
	unsigned plen;
	struct bw_port_rule own[BW_PORT_RULES_MAX * 4];
	size_t n_own;
	bool own_overflow;
	struct bw_net_value value;
};

struct net_build {
	struct net_node *nodes;
	size_t n, cap;
};

static int net_node_cmp(const void *a, const void *b)
{
	const struct net_node *x = a, *y = b;

	if (x->family != y->family)
		return x->family - y->family;
	if (x->plen != y->plen)
		return (int)x->plen - (int)y->plen;
	return memcmp(x->addr, y->addr, 16);
}

static void mask_addr(uint8_t *addr, unsigned plen, size_t bytes)
{
	for (size_t i = 0; i < bytes; i++) {
		unsigned bits = plen > i * 8 ? plen - (unsigned)i * 8 : 0;

		if (bits >= 8)
			continue;
		addr[i] &= (uint8_t)(0xff00u >> bits);
	}
}

static struct net_node *net_node_get(struct net_build *b, int family, const uint8_t *addr, unsigned plen)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->nodes[i].family == family && b->nodes[i].plen == plen &&
		    !memcmp(b->nodes[i].addr, addr, 16))
			return &b->nodes[i];
	if (grow(&b->nodes, &b->cap, b->n + 1, sizeof(*b->nodes)) < 0)
		return NULL;
	b->nodes[b->n].family = family;
	memcpy(b->nodes[b->n].addr, addr, 16);
	b->nodes[b->n].plen = plen;
	return &b->nodes[b->n++];
}

static int net_rules_add(struct net_build *b, const struct bw_net_rules *rules, bool allow, uint8_t slot,
			 const char *ident, const char *list_name, struct bw_rule_table *rt)
{
	for (size_t i = 0; i < rules->n; i++) {
		const struct bw_net_rule *r = &rules->items[i];
		uint8_t addr[16] = { 0 };
		struct net_node *n;
		char text[128];
		uint32_t id;
		size_t np = r->n_ports ? r->n_ports : 1;

		memcpy(addr, r->addr, r->family == AF_INET ? 4 : 16);
		mask_addr(addr, r->prefix_len, 16);
		snprintf(text, sizeof(text), "%s[%zu] cidr %s", list_name, i, r->cidr);
		id = bw_rule_intern(rt, ident, text);
		if (!id)
			return -ENOMEM;
		n = net_node_get(b, r->family, addr, r->prefix_len);
		if (!n)
			return -ENOMEM;
		for (size_t p = 0; p < np; p++) {
			struct bw_port_rule pr = {
				.port_lo = r->n_ports ? r->ports[p].lo : 0,
				.port_hi = r->n_ports ? r->ports[p].hi : 65535,
				.protocol = (uint8_t)r->protocol,
				.slot = slot,
				.allow = allow,
				.rule_id = id,
			};

			if (n->n_own >= sizeof(n->own) / sizeof(n->own[0])) {
				n->own_overflow = true;
				continue;
			}
			n->own[n->n_own++] = pr;
		}
	}
	return 0;
}

static int net_value_add(struct bw_net_value *v, const struct bw_port_rule *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (v->count >= BW_PORT_RULES_MAX)
			return -E2BIG;
		v->rules[v->count++] = r[i];
	}
	return 0;
}

static int net_build_finish(struct net_build *b, char **error)
{
	if (b->n) /* nodes is NULL when there are none, and qsort's base must not be */
		qsort(b->nodes, b->n, sizeof(*b->nodes), net_node_cmp);
	for (size_t i = 0; i < b->n; i++) {
		struct net_node *n = &b->nodes[i];
		size_t bytes = n->family == AF_INET ? 4 : 16;
		int ret = n->own_overflow ? -E2BIG : net_value_add(&n->value, n->own, n->n_own);

		/* Own rules first, then those of each shorter network, longest
		 * first: bw_net_collect reports the first deny it meets. */
		for (int k = (int)n->plen - 1; ret == 0 && k >= 0; k--) {
			struct net_node probe = { .family = n->family, .plen = (unsigned)k };
			struct net_node *p;

			memcpy(probe.addr, n->addr, 16);
			mask_addr(probe.addr, (unsigned)k, bytes);
			p = bsearch(&probe, b->nodes, b->n, sizeof(*b->nodes), net_node_cmp);
			if (p)
				ret = net_value_add(&n->value, p->own, p->n_own);
		}
		if (ret < 0) {
			char buf[64];

			inet_ntop(n->family, n->addr, buf, sizeof(buf));
			*error = strdup_printf("more than %d port rules apply to %s/%u once the rules of "
					       "every policy and of the networks containing it are merged",
					       BW_PORT_RULES_MAX, buf, n->plen);
			return -E2BIG;
		}
	}
	return 0;
}

/* ---- rule sets ----------------------------------------------------------- */

int bw_compile_ruleset(struct bw_policy *const *pols, size_t n, const struct bw_compile_options *o,
		       struct bw_rule_table *rt, struct bw_compiled_ruleset *out, char **error)
{
	struct path_build exec = { 0 }, file = { 0 };
	struct net_build net = { 0 };
	int ret = 0;

	memset(out, 0, sizeof(*out));
	*error = NULL;
	if (n > BW_SLOTS_MAX) {
		*error = strdup_printf("%zu policies select this workload; at most %d can apply to one workload",
				       n, BW_SLOTS_MAX);
		return -E2BIG;
	}
	for (size_t i = 0; i < n; i++) {
		const struct bw_policy *p = pols[i];
		uint8_t slot = (uint8_t)i;
		uint64_t bit = 1ULL << i;
		char *ident = bw_policy_identity(p);

		if (!ident) {
			ret = -ENOMEM;
			goto out;
		}
		out->slots[i].policy = ident;
		out->slots[i].mode = o->audit_only ? BW_MODE_AUDIT : p->mode;
		if (out->slots[i].mode == BW_MODE_BLOCK)
			out->config.block_mask |= bit;
		if (p->exec_allow.n)
			out->config.allowlist_mask[BW_CLASS_EXEC] |= bit;
		if (p->files_allow.n) {
			/* A files allow list restricts both reads and writes:
			 * anything (path, access) it does not list is denied. */
			out->config.allowlist_mask[BW_CLASS_FILE_READ] |= bit;
			out->config.allowlist_mask[BW_CLASS_FILE_WRITE] |= bit;
		}
		if (p->net_allow.n)
			out->config.allowlist_mask[BW_CLASS_NET] |= bit;

		if ((ret = path_rules_add(&exec, &p->exec_deny, false, true, slot, ident, "exec.deny", o, rt)) < 0 ||
		    (ret = path_rules_add(&exec, &p->exec_allow, true, true, slot, ident, "exec.allow", o, rt)) < 0 ||
		    (ret = path_rules_add(&file, &p->files_deny, false, false, slot, ident, "files.deny", o, rt)) < 0 ||
		    (ret = path_rules_add(&file, &p->files_allow, true, false, slot, ident, "files.allow", o, rt)) < 0 ||
		    (ret = net_rules_add(&net, &p->net_deny, false, slot, ident, "network.deny", rt)) < 0 ||
		    (ret = net_rules_add(&net, &p->net_allow, true, slot, ident, "network.allow", rt)) < 0)
			goto out;
	}
	out->n_slots = n;

	ret = path_build_finish(&exec, out->config.block_mask, &out->exec, &out->n_exec);
	if (ret == 0)
		ret = path_build_finish(&file, out->config.block_mask, &out->file, &out->n_file);
	if (ret == 0)
		ret = net_build_finish(&net, error);
	if (ret < 0)
		goto out;

	for (size_t i = 0; i < net.n; i++) {
		struct net_node *nn = &net.nodes[i];

		if (nn->family == AF_INET)
			out->n_net4++;
		else
			out->n_net6++;
	}
	out->net4 = calloc(out->n_net4 ? out->n_net4 : 1, sizeof(*out->net4));
	out->net6 = calloc(out->n_net6 ? out->n_net6 : 1, sizeof(*out->net6));
	if (!out->net4 || !out->net6) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0, a = 0, b6 = 0; i < net.n; i++) {
		struct net_node *nn = &net.nodes[i];

		if (nn->family == AF_INET) {
			out->net4[a].key.prefixlen = nn->plen;
			memcpy(out->net4[a].key.addr, nn->addr, 4);
			out->net4[a++].value = nn->value;
		} else {
			out->net6[b6].key.prefixlen = nn->plen;
			memcpy(out->net6[b6].key.addr, nn->addr, 16);
			out->net6[b6++].value = nn->value;
		}
	}
	out->config.tries = (out->n_exec ? BW_TRIE_EXEC : 0) | (out->n_file ? BW_TRIE_FILE : 0) |
			    (out->n_net4 ? BW_TRIE_NET4 : 0) | (out->n_net6 ? BW_TRIE_NET6 : 0);
	out->holders = malloc(sizeof(*out->holders));
	if (!out->holders)
		ret = -ENOMEM;
	else
		*out->holders = 1;
out:
	free(exec.raw);
	free(file.raw);
	free(net.nodes);
	if (ret < 0) {
		if (!*error && ret == -ENOMEM)
			*error = strdup("out of memory");
		bw_compiled_ruleset_clear(out);
	}
	return ret;
}

void bw_compiled_ruleset_clear(struct bw_compiled_ruleset *r)
{
	/* The last holder frees what all of them shared. */
	if (!r->holders || __atomic_sub_fetch(r->holders, 1, __ATOMIC_ACQ_REL) == 0) {
		free(r->exec);
		free(r->file);
		free(r->net4);
		free(r->net6);
		for (size_t i = 0; i < BW_SLOTS_MAX; i++)
			free(r->slots[i].policy);
		free(r->serials);
		free(r->holders);
	}
	memset(r, 0, sizeof(*r));
}

int bw_compiled_ruleset_copy(struct bw_compiled_ruleset *dst, const struct bw_compiled_ruleset *src)
{
	/* Rule arrays are never written once compiled: a copy shares them.
	 * (It was a deep copy: the plan in force, the publisher and the next
	 * plan's reuse each held the 3 MB of a 10,000-rule set, and copying
	 * it was most of an apply in the guest.) */
	if (!src->holders)
		return -EINVAL;
	*dst = *src;
	__atomic_add_fetch(dst->holders, 1, __ATOMIC_RELAXED);
	return 0;
}

bool bw_compiled_ruleset_equal(const struct bw_compiled_ruleset *a, const struct bw_compiled_ruleset *b)
{
	struct bw_ruleset ca = a->config, cb = b->config;

	ca.generation = cb.generation = 0;
	if (memcmp(&ca, &cb, sizeof(ca)))
		return false;
	/* Copies of one compiled set share its arrays: equal without
	 * comparing 3 MB of a 10,000-rule set byte by byte. */
	if (a->holders && a->holders == b->holders)
		return true;
	if (a->n_slots != b->n_slots || a->n_exec != b->n_exec ||
	    a->n_file != b->n_file || a->n_net4 != b->n_net4 || a->n_net6 != b->n_net6)
		return false;
	for (size_t i = 0; i < a->n_slots; i++)
		if (strcmp(a->slots[i].policy, b->slots[i].policy) || a->slots[i].mode != b->slots[i].mode)
			return false;
	/* An empty array may be NULL, which memcmp must not be given. */
	return (!a->n_exec || !memcmp(a->exec, b->exec, a->n_exec * sizeof(*a->exec))) &&
	       (!a->n_file || !memcmp(a->file, b->file, a->n_file * sizeof(*a->file))) &&
	       (!a->n_net4 || !memcmp(a->net4, b->net4, a->n_net4 * sizeof(*a->net4))) &&
	       (!a->n_net6 || !memcmp(a->net6, b->net6, a->n_net6 * sizeof(*a->net6)));
}

/* ---- the node's plan ----------------------------------------------------- */

static struct bw_cgroup_tree walk; /* plans are built from one thread */

void bw_cgroup_tree_clear(struct bw_cgroup_tree *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->items[i].path);
	free(t->items);
	memset(t, 0, sizeof(*t));
}

static int walk_add(uint64_t id, const char *rel)
{
	if (grow(&walk.items, &walk.cap, walk.n + 1, sizeof(*walk.items)) < 0)
		return -ENOMEM;
	walk.items[walk.n].id = id;
	walk.items[walk.n].path = strdup(*rel ? rel : "/");
	if (!walk.items[walk.n].path)
		return -ENOMEM;
	walk.n++;
	return 0;
}

/* Adds the directory dfd (path rel under the root, id its inode) and every
 * directory below it, depth first. readdir's d_ino is the inode number,
 * which for cgroup v2 is the cgroup id: no stat per cgroup (stat of every
 * cgroup was 60% of an apply's time under perf, found by bench/). Takes
 * dfd. A cgroup removed while it is walked is skipped. */
static int walk_dir(int dfd, char *rel, size_t len, uint64_t id)
{
	struct dirent *de;
	DIR *d;
	int ret = walk_add(id, rel);

	if (ret < 0) {
		close(dfd);
		return ret;
	}
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return 0;
	}
	while (ret == 0 && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		int cfd;

		if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (len + 1 + n >= PATH_MAX)
			continue;
		cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cfd < 0)
			continue;
		rel[len] = '/';
		memcpy(rel + len + 1, de->d_name, n + 1);
		ret = walk_dir(cfd, rel, len + 1 + n, de->d_ino);
		rel[len] = '\0';
	}
	closedir(d);
	return ret;
}

static int walk_root(const char *root)
{
	static char rel[PATH_MAX];
	struct stat st;
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	rel[0] = '\0';
	return walk_dir(fd, rel, 0, st.st_ino);
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorting policies gives stable slots, so unchanged inputs compile alike. */
static int policy_ptr_cmp(const void *a, const void *b)
{
	const struct bw_policy *x = *(struct bw_policy *const *)a, *y = *(struct bw_policy *const *)b;
	int c;

	if (x->kind != y->kind)
		return (int)x->kind - (int)y->kind;
	c = strcmp(x->namespace ? x->namespace : "", y->namespace ? y->namespace : "");
	return c ? c : strcmp(x->name, y->name);
}

static bool host_policy_selects(const struct bw_policy *p, const char *cgroup_path)
{
	if (p->kind != BW_KIND_HOST)
		return false;
	if (!p->n_cgroup_paths)
		return true;
	for (size_t i = 0; i < p->n_cgroup_paths; i++)
		if (bw_cgroup_path_has_prefix(cgroup_path, p->cgroup_paths[i]))
			return true;
	return false;
}

/* Copies the rule set that the plan in force compiled from the same
 * policies into out; -ENOENT when there is none (or it is too old). */
static int reuse_ruleset(const struct bw_plan_options *o, struct bw_policy *const *sel, size_t n,
			 struct bw_compiled_ruleset *out)
{
	const struct bw_plan *prev = o->reuse;

	for (size_t r = 0; prev && r < prev->n_rulesets; r++) {
		const struct bw_compiled_ruleset *rs = &prev->rulesets[r];
		size_t k = 0;

		if (rs->n_slots != n || !rs->serials || o->now_ns - rs->compiled_ns > o->reuse_max_age_ns)
			continue;
		while (k < n && rs->serials[k] == sel[k]->serial)
			k++;
		if (k == n)
			return bw_compiled_ruleset_copy(out, rs);
	}
	return -ENOENT;
}

static int note_serials(struct bw_compiled_ruleset *rs, struct bw_policy *const *sel, size_t n, uint64_t now_ns)
{
	rs->serials = calloc(n ? n : 1, sizeof(*rs->serials));
	if (!rs->serials) {
		bw_compiled_ruleset_clear(rs);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		rs->serials[i] = sel[i]->serial;
	rs->compiled_ns = now_ns;
	return 0;
}

struct group {
	struct bw_policy **pols;
	size_t n;
	ssize_t ruleset; /* -1: failed to compile */
};

int bw_plan_build(const struct bw_policy_list *policies, const struct bw_inventory *inv,
		  const struct bw_plan_options *o, struct bw_rule_table *rt, struct bw_plan *plan)
{
	struct group *groups = NULL;
	size_t n_groups = 0, cap_groups = 0, cap_rs = 0, cap_as = 0, cap_sk = 0, cap_err = 0;
	struct bw_policy **sel = NULL;
	bool kept_walk = o->tree && o->tree->valid && o->tree_changes_known && o->tree->changes == o->tree_changes;
	int ret = 0;

	memset(plan, 0, sizeof(*plan));
	memset(&walk, 0, sizeof(walk));
	if (kept_walk) {
		walk = *o->tree; /* still owned by o->tree */
	} else {
		if (o->tree)
			bw_cgroup_tree_clear(o->tree);
		ret = walk_root(o->cgroup_root);
		if (ret < 0)
			goto out;
		walk.changes = o->tree_changes;
		walk.valid = o->tree_changes_known;
		plan->walked = true;
	}

	sel = calloc(policies->n + 1, sizeof(*sel));
	plan->seen = calloc(walk.n ? walk.n : 1, sizeof(*plan->seen));
	if (!sel || !plan->seen) {
		ret = -ENOMEM;
		goto out;
	}

	for (size_t c = 0; c < walk.n; c++) {
		const struct bw_inventory_workload *owner = NULL;
		size_t owner_len = 0, n_sel = 0, g;
		bool unclassified;

		plan->seen[plan->n_cgroups_seen++] = walk.items[c].id;
		if (walk.items[c].id == o->exempt_cgroup)
			continue;
		/* The deepest workload containing this cgroup owns it. */
		for (size_t w = 0; inv && w < inv->n_workloads; w++) {
			const struct bw_inventory_workload *wl = inv->workloads[w];
			size_t l = strlen(wl->cgroup);

			if (bw_cgroup_path_has_prefix(walk.items[c].path, wl->cgroup) && l >= owner_len) {
				owner = wl;
				owner_len = l;
			}
		}
		for (size_t i = 0; i < policies->n; i++) {
			struct bw_policy *p = policies->items[i];

			if (owner ? bw_policy_selects_workload(p, inv, owner)
				  : host_policy_selects(p, walk.items[c].path))
				sel[n_sel++] = p;
		}
		unclassified = !owner && o->posture && bw_kubepods_contains(walk.items[c].path);
		if (unclassified)
			sel[n_sel++] = o->posture;
		if (!n_sel)
			continue;
		qsort(sel, n_sel, sizeof(*sel), policy_ptr_cmp);

		for (g = 0; g < n_groups; g++)
			if (groups[g].n == n_sel && !memcmp(groups[g].pols, sel, n_sel * sizeof(*sel)))
				break;
		if (g == n_groups) {
			struct bw_compiled_ruleset rs;
			char *error = NULL;

			if ((ret = grow(&groups, &cap_groups, n_groups + 1, sizeof(*groups))) < 0)
				goto out;
			groups[g].pols = malloc(n_sel * sizeof(*sel));
			if (!groups[g].pols) {
				ret = -ENOMEM;
				goto out;
			}
			memcpy(groups[g].pols, sel, n_sel * sizeof(*sel));
			groups[g].n = n_sel;
			n_groups++;
			ret = reuse_ruleset(o, sel, n_sel, &rs);
			if (ret == -ENOENT) {
				ret = bw_compile_ruleset(sel, n_sel, &o->compile, rt, &rs, &error);
				if (ret == 0)
					ret = note_serials(&rs, sel, n_sel, o->now_ns);
				if (ret == 0)
					plan->n_compiled++;
			}
			if (ret == -ENOMEM) {
				free(error);
				goto out;
			}
			if (ret < 0) {
				if ((ret = grow(&plan->errors, &cap_err, plan->n_errors + 1, sizeof(*plan->errors))) < 0) {
					free(error);
					goto out;
				}
				{
					struct bw_plan_error *pe = &plan->errors[plan->n_errors++];

					memset(pe, 0, sizeof(*pe));
					pe->workload = strdup(walk.items[c].path);
					pe->message = error;
					pe->policies = calloc(n_sel, sizeof(*pe->policies));
					for (size_t k = 0; pe->policies && k < n_sel; k++)
						if ((pe->policies[pe->n_policies] = bw_policy_identity(sel[k])))
							pe->n_policies++;
				}
				groups[g].ruleset = -1;
			} else {
				if ((ret = grow(&plan->rulesets, &cap_rs, plan->n_rulesets + 1, sizeof(*plan->rulesets))) < 0) {
					bw_compiled_ruleset_clear(&rs);
					goto out;
				}
				plan->rulesets[plan->n_rulesets] = rs;
				groups[g].ruleset = (ssize_t)plan->n_rulesets++;
			}
			ret = 0;
		}
		if (groups[g].ruleset < 0) {
			if ((ret = grow(&plan->skipped, &cap_sk, plan->n_skipped + 1, sizeof(*plan->skipped))) < 0)
				goto out;
			plan->skipped[plan->n_skipped++] = walk.items[c].id;
			continue;
		}
		if ((ret = grow(&plan->assign, &cap_as, plan->n_assign + 1, sizeof(*plan->assign))) < 0)
			goto out;
		{
			struct bw_assignment *a = &plan->assign[plan->n_assign++];

			a->cgroup_id = walk.items[c].id;
			a->cgroup_path = strdup(walk.items[c].path);
			a->ruleset = (size_t)groups[g].ruleset;
			a->unclassified = unclassified;
			if (owner) {
				a->namespace = strdup(owner->namespace);
				a->pod = strdup(owner->pod);
				a->container = owner->container ? strdup(owner->container) : NULL;
			}
		}
	}
	qsort(plan->seen, plan->n_cgroups_seen, sizeof(*plan->seen), u64_cmp);
out:
	if (o->tree && !kept_walk && ret >= 0)
		*o->tree = walk; /* a new walk, kept for the next plan */
	else if (!kept_walk)
		bw_cgroup_tree_clear(&walk);
	memset(&walk, 0, sizeof(walk));
	for (size_t i = 0; i < n_groups; i++)
		free(groups[i].pols);
	free(groups);
	free(sel);
	if (ret < 0)
		bw_plan_clear(plan);
	return ret;
}

bool bw_plan_saw_cgroup(const struct bw_plan *plan, uint64_t id)
{
	return plan->n_cgroups_seen &&
	       bsearch(&id, plan->seen, plan->n_cgroups_seen, sizeof(*plan->seen), u64_cmp);
}

void bw_plan_clear(struct bw_plan *plan)
{
	for (size_t i = 0; i < plan->n_rulesets; i++)
		bw_compiled_ruleset_clear(&plan->rulesets[i]);
	free(plan->rulesets);
	for (size_t i = 0; i < plan->n_assign; i++) {
		free(plan->assign[i].cgroup_path);
		free(plan->assign[i].namespace);
		free(plan->assign[i].pod);
		free(plan->assign[i].container);
	}
	free(plan->assign);
	free(plan->skipped);
	for (size_t i = 0; i < plan->n_errors; i++) {
		free(plan->errors[i].workload);
		free(plan->errors[i].message);
		for (size_t k = 0; k < plan->errors[i].n_policies; k++)
			free(plan->errors[i].policies[k]);
		free(plan->errors[i].policies);
	}
	free(plan->errors);
	free(plan->seen);
	memset(plan, 0, sizeof(*plan));
}
