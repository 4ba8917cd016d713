/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy document parser: YAML (and so JSON, which is YAML) text to
 * struct bw_policy. The format is described in docs/POLICY.md.
 *
 * libyaml's document API loads one whole document at a time as a node graph
 * in which every node keeps its start mark, so that each message can name the
 * line and column of the node at fault.
 *
 * The walk is driven by the schema: we only descend where the format says a
 * value is, so its depth is fixed by the format. That matters because
 * aliases make the graph a DAG, or even a cycle (libyaml lets "&a [*a]" refer
 * to itself): a schema walk cannot loop or blow up on them. The one generic
 * walk, the duplicate-key check of ignored fields (metadata.annotations,
 * status...), marks the nodes it has seen and has a depth limit.
 *
 * A document is all or nothing: its first problem rejects it with one
 * diagnostic, and parsing goes on with the next document. Only a YAML syntax
 * error stops a file, because libyaml cannot resynchronise after one.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <yaml.h>

#include <linux/types.h>

#include "bulwark_abi.h"
#include "policy.h"
#include "util.h"

/* A policy file bigger than this is a mistake, not a policy set. */
#define MAX_FILE_SIZE (16u * 1024 * 1024)
/* cgroup paths are looked up by the agent under /sys/fs/cgroup, not stored
 * in a BPF key, so only the VFS limit applies to them. */
#define MAX_CGROUP_PATH_LEN 4095
/* Nesting accepted inside ignored fields (managedFields is the deepest that
 * Kubernetes writes, about a dozen levels). */
#define MAX_IGNORED_DEPTH 100
/* Field paths longer than this are cut, with "..." appended. */
#define FIELD_MAX 512
/* Bytes of a value quoted in a message before it is cut with "...", and
 * the buffer that holds the quoted form (each byte may become "\xNN"). */
#define QUOTE_MAX 80
#define QUOTE_BUF (QUOTE_MAX * 4 + 8)

#define KINDS_EXPECTED "ClusterBulwarkPolicy, BulwarkPolicy, HostBulwarkPolicy"

/*
 * Which documents define which policy, for bw_policy_load_dir(): every
 * document whose kind and name could be read, valid or not, in file and
 * document order. The first document of a policy wins, even when it is
 * rejected, so that a later copy cannot take over because the first one
 * has a typo: the agent then keeps the last good version.
 */
struct claim {
	enum bw_policy_kind kind;
	char *namespace; /* BulwarkPolicy only */
	char *name;
	char *file;
	unsigned line; /* of metadata.name */
	struct bw_policy *policy; /* the loaded policy, or NULL: rejected */
	bool duplicate;
};

struct claims {
	struct claim *items;
	size_t n;
};

struct ctx {
	const char *file;
	yaml_document_t *doc;
	unsigned doc_index;
	enum bw_policy_kind kind;

	/* The field path of the node being read, e.g. "spec.exec.deny[2]". */
	char field[FIELD_MAX];
	size_t field_len;

	/* The problem that rejects the document, set once by fail(). */
	unsigned err_line, err_column;
	char *err_field, *err_reason;

	/* Identity of the document, read ahead of validation and borrowed
	 * from its nodes, so that even a rejected document can be named. */
	const char *id_kind, *id_name, *id_namespace;
	const yaml_node_t *id_name_node;
	struct claims *claims; /* NULL unless loading a directory */

	/* Nodes already checked by walk_ignored(), by node id - 1. */
	uint8_t *visited;
};

struct field {
	const char *name;
	/* When set, the field is known but not allowed in this place; this is
	 * the reason given. */
	const char *forbidden;
	yaml_node_t *key, *value;
};

/* ---- small helpers ----------------------------------------------------- */

static void bw_policy_freep(struct bw_policy **p)
{
	bw_policy_free(*p);
}

static const char *sv(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static size_t slen(const yaml_node_t *n)
{
	return n->data.scalar.length;
}

static size_t map_len(const yaml_node_t *n)
{
	return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

static size_t seq_len(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static yaml_node_t *seq_item(struct ctx *c, const yaml_node_t *n, size_t i)
{
	return yaml_document_get_node(c->doc, n->data.sequence.items.start[i]);
}

static yaml_node_t *pair_key(struct ctx *c, const yaml_node_t *n, size_t i)
{
	return yaml_document_get_node(c->doc, n->data.mapping.pairs.start[i].key);
}

static yaml_node_t *pair_value(struct ctx *c, const yaml_node_t *n, size_t i)
{
	return yaml_document_get_node(c->doc, n->data.mapping.pairs.start[i].value);
}

static bool scalar_is(const yaml_node_t *n, const char *s)
{
	return n->type == YAML_SCALAR_NODE && slen(n) == strlen(s) && memcmp(sv(n), s, slen(n)) == 0;
}

/* A YAML null: "", "~" or "null" written plain. A quoted "null" is a string.
 * An optional field that is null counts as absent, as in Kubernetes. */
static bool is_null(const yaml_node_t *n)
{
	if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return slen(n) == 0 || scalar_is(n, "~") || scalar_is(n, "null") || scalar_is(n, "Null") ||
	       scalar_is(n, "NULL");
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool all_digits(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_digit(s[i]))
			return false;
	return true;
}

/* What a node is, in words for "must be a list, not a map". Plain numbers
 * and booleans are named as such because that is how the user sees them. */
static const char *type_name(const yaml_node_t *n)
{
	static const char *const booleans[] = { "true", "false", "True", "False", "TRUE", "FALSE",
						"yes",  "no",    "on",   "off" };
	const char *s;
	size_t len;

	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a map";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_SCALAR_NODE:
		if (is_null(n))
			return "null";
		if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
			return "a string";
		for (size_t i = 0; i < ELEMENTSOF(booleans); i++)
			if (scalar_is(n, booleans[i]))
				return "a boolean";
		s = sv(n);
		len = slen(n);
		if (s[0] == '-' || s[0] == '+') {
			s++;
			len--;
		}
		if (len > 0 && is_digit(s[0]) && strspn(s, "0123456789.eE+-_") == len)
			return "a number";
		return "a string";
	default:
		return "nothing";
	}
}

/* Writes s as a double-quoted, escaped string into buf, cut after QUOTE_MAX
 * bytes, so that any value can go into a one-line message: a policy file
 * must not be able to forge log lines. */
static const char *quote(char buf[static QUOTE_BUF], const char *s, size_t len)
{
	size_t n = len, o = 0;
	bool cut = false;

	if (n > QUOTE_MAX) {
		n = QUOTE_MAX;
		/* Do not split a UTF-8 sequence. */
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
		cut = true;
	}
	buf[o++] = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)ch;
		} else if (ch == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else if (ch == '\t') {
			buf[o++] = '\\';
			buf[o++] = 't';
		} else if (ch < 0x20 || ch == 0x7f) {
			snprintf(buf + o, 5, "\\x%02x", ch);
			o += 4;
		} else
			buf[o++] = (char)ch;
	}
	buf[o++] = '"';
	if (cut) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

/* ---- field paths and errors -------------------------------------------- */

static void field_append(struct ctx *c, const char *s, size_t len)
{
	for (size_t i = 0; i < len && c->field_len + 1 < sizeof(c->field); i++) {
		unsigned char ch = (unsigned char)s[i];

		/* Keys come from the document: keep the path on one line. */
		c->field[c->field_len++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	c->field[c->field_len] = '\0';
}

/* The push functions return the length to give back to field_pop(). */
static size_t field_push_key(struct ctx *c, const char *name, size_t len)
{
	size_t saved = c->field_len;

	if (c->field_len > 0)
		field_append(c, ".", 1);
	field_append(c, name, len);
	return saved;
}

static size_t field_push(struct ctx *c, const char *name)
{
	return field_push_key(c, name, strlen(name));
}

static size_t field_push_index(struct ctx *c, size_t i)
{
	size_t saved = c->field_len;
	char b[32];
	int n = snprintf(b, sizeof(b), "[%zu]", i);

	field_append(c, b, (size_t)n);
	return saved;
}

/* Free-form keys (label keys, anything in ignored fields) go in brackets, as
 * Kubernetes writes them, since they may contain dots themselves. */
static size_t field_push_mapkey(struct ctx *c, const char *key, size_t len)
{
	size_t saved = c->field_len;

	field_append(c, "[", 1);
	field_append(c, key, len);
	field_append(c, "]", 1);
	return saved;
}

static void field_pop(struct ctx *c, size_t saved)
{
	c->field_len = saved;
	c->field[saved] = '\0';
}

/* Records the problem that rejects the document, at node n and the current
 * field path. Returns -EINVAL (the document is rejected) or -ENOMEM. */
static _printf_(3, 4) int fail(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;

	if (c->err_reason) /* only the first problem is reported */
		return -EINVAL;

	va_start(ap, fmt);
	c->err_reason = strvprintf(fmt, ap);
	va_end(ap);
	c->err_field = strprintf("%s%s", c->field, c->field_len + 2 >= sizeof(c->field) ? "..." : "");
	if (!c->err_reason || !c->err_field) {
		c->err_reason = mfree(c->err_reason);
		c->err_field = mfree(c->err_field);
		return -ENOMEM;
	}
	c->err_line = (unsigned)n->start_mark.line + 1;
	c->err_column = (unsigned)n->start_mark.column + 1;
	return -EINVAL;
}

/* A required field is missing from a map: reported at "at" (the key that
 * holds the map, or the map itself), under the missing field's name. */
static int fail_missing(struct ctx *c, const yaml_node_t *at, const char *name, const char *hint)
{
	size_t saved = field_push(c, name);
	int r = fail(c, at, "required field is missing%s", hint ? hint : "");

	field_pop(c, saved);
	return r;
}

static int want(struct ctx *c, const yaml_node_t *n, yaml_node_type_t type)
{
	if (n->type == type)
		return 0;
	return fail(c, n, "must be %s, not %s",
		    type == YAML_MAPPING_NODE ? "a map" : type == YAML_SEQUENCE_NODE ? "a list" : "a string",
		    type_name(n));
}

/* A non-empty string without NUL bytes (so that it can be used as a C
 * string), borrowed from the document. */
static int get_str(struct ctx *c, const yaml_node_t *n, const char **ret, size_t *ret_len)
{
	if (n->type != YAML_SCALAR_NODE)
		return fail(c, n, "must be a string, not %s", type_name(n));
	if (slen(n) == 0)
		return fail(c, n, "must not be empty");
	if (is_null(n))
		return fail(c, n, "must be a string, not null");
	if (memchr(sv(n), '\0', slen(n)))
		return fail(c, n, "must not contain a NUL byte");
	*ret = sv(n);
	if (ret_len)
		*ret_len = slen(n);
	return 0;
}

static int too_many(struct ctx *c, const yaml_node_t *n, size_t count, size_t max)
{
	return fail(c, n, "too many entries: %zu; at most %zu are allowed", count, max);
}

/* ---- maps --------------------------------------------------------------- */

struct key_ref {
	const char *s;
	size_t len, idx;
};

static int key_ref_cmp(const void *a, const void *b)
{
	const struct key_ref *x = a, *y = b;
	int d = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);

	if (d)
		return d;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Every key of a map must be a string, and appear once: YAML says so, and a
 * second "mode:" silently winning would hide a mistake. Sorting keeps this
 * O(n log n) even for a hostile map; the duplicate reported is the first
 * one in document order. */
static int check_keys(struct ctx *c, const yaml_node_t *map, bool free_form)
{
	_cleanup_free_ struct key_ref *refs = NULL;
	size_t n = map_len(map), best = SIZE_MAX, first = 0;
	char q[QUOTE_BUF];

	for (size_t i = 0; i < n; i++) {
		yaml_node_t *k = pair_key(c, map, i);

		if (k->type != YAML_SCALAR_NODE)
			return fail(c, k, "map keys must be strings, not %s", type_name(k));
	}
	if (n < 2)
		return 0;

	refs = calloc(n, sizeof(*refs));
	if (!refs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *k = pair_key(c, map, i);

		refs[i] = (struct key_ref){ sv(k), slen(k), i };
	}
	qsort(refs, n, sizeof(*refs), key_ref_cmp);
	for (size_t i = 1; i < n; i++)
		if (refs[i].len == refs[i - 1].len && memcmp(refs[i].s, refs[i - 1].s, refs[i].len) == 0 &&
		    refs[i].idx < best) {
			best = refs[i].idx;
			first = refs[i - 1].idx;
		}
	if (best == SIZE_MAX)
		return 0;

	yaml_node_t *k = pair_key(c, map, best), *k0 = pair_key(c, map, first);
	size_t saved = free_form ? field_push_mapkey(c, sv(k), slen(k)) : field_push_key(c, sv(k), slen(k));
	int r = fail(c, k, "duplicate key %s; it was first written at line %u, column %u",
		     quote(q, sv(k), slen(k)), (unsigned)k0->start_mark.line + 1,
		     (unsigned)k0->start_mark.column + 1);
	field_pop(c, saved);
	return r;
}

/* Checks the duplicate keys of a field we otherwise ignore, all the way down. */
static int walk_ignored(struct ctx *c, yaml_node_t *n, unsigned depth)
{
	size_t id = (size_t)(n - c->doc->nodes.start);
	int r;

	if (n->type != YAML_MAPPING_NODE && n->type != YAML_SEQUENCE_NODE)
		return 0;
	if (depth >= MAX_IGNORED_DEPTH)
		return fail(c, n, "nested more than %d levels deep", MAX_IGNORED_DEPTH);
	if (!c->visited) {
		c->visited = calloc((size_t)(c->doc->nodes.top - c->doc->nodes.start), 1);
		if (!c->visited)
			return -ENOMEM;
	}
	if (c->visited[id]) /* an alias of a node already checked */
		return 0;
	c->visited[id] = 1;

	if (n->type == YAML_MAPPING_NODE) {
		r = check_keys(c, n, true);
		if (r < 0)
			return r;
		for (size_t i = 0; i < map_len(n); i++) {
			yaml_node_t *k = pair_key(c, n, i);
			size_t saved = field_push_mapkey(c, sv(k), slen(k));

			r = walk_ignored(c, pair_value(c, n, i), depth + 1);
			field_pop(c, saved);
			if (r < 0)
				return r;
		}
	} else {
		for (size_t i = 0; i < seq_len(n); i++) {
			size_t saved = field_push_index(c, i);

			r = walk_ignored(c, seq_item(c, n, i), depth + 1);
			field_pop(c, saved);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* Matches the keys of map against the fields f[]. Unknown keys are an error
 * unless ignore_unknown, in which case their values are only checked for
 * duplicate keys (metadata carries many fields we do not use). */
static int get_fields(struct ctx *c, const yaml_node_t *map, struct field *f, size_t n_fields,
		      bool ignore_unknown)
{
	char q[QUOTE_BUF];
	int r;

	r = check_keys(c, map, false);
	if (r < 0)
		return r;

	for (size_t i = 0; i < map_len(map); i++) {
		yaml_node_t *k = pair_key(c, map, i), *v = pair_value(c, map, i);
		struct field *hit = NULL;
		size_t saved;

		for (size_t j = 0; j < n_fields && !hit; j++)
			if (scalar_is(k, f[j].name))
				hit = &f[j];
		if (hit && !hit->forbidden) {
			hit->key = k;
			hit->value = v;
			continue;
		}

		saved = field_push_key(c, sv(k), slen(k));
		if (hit)
			r = fail(c, k, "%s", hit->forbidden);
		else if (ignore_unknown)
			r = walk_ignored(c, v, 0);
		else {
			char expected[256] = "";
			size_t o = 0;

			for (size_t j = 0; j < n_fields; j++) {
				if (f[j].forbidden)
					continue;
				o += (size_t)snprintf(expected + o, sizeof(expected) - o, "%s%s", o ? ", " : "",
						      f[j].name);
				if (o >= sizeof(expected))
					break;
			}
			r = fail(c, k, "unknown field %s; expected one of: %s", quote(q, sv(k), slen(k)),
				 expected);
		}
		field_pop(c, saved);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- names and labels -------------------------------------------------- */

static bool is_lower_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || is_digit(ch);
}

static bool is_alnum(char ch)
{
	return is_lower_alnum(ch) || (ch >= 'A' && ch <= 'Z');
}

/* An RFC 1123 label as Kubernetes checks it: [a-z0-9]([-a-z0-9]*[a-z0-9])? */
static bool dns_label_ok(const char *s, size_t len, size_t max)
{
	if (len == 0 || len > max || !is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* An RFC 1123 subdomain: labels joined by '.', at most 253 characters. */
static bool dns_subdomain_ok(const char *s, size_t len)
{
	size_t start = 0;

	if (len == 0 || len > BW_MAX_NAME_LEN)
		return false;
	for (;;) {
		const char *dot = memchr(s + start, '.', len - start);
		size_t end = dot ? (size_t)(dot - s) : len;

		if (!dns_label_ok(s + start, end - start, SIZE_MAX))
			return false;
		if (!dot)
			return true;
		start = end + 1;
	}
}

/* The name part of a label key, and a non-empty label value:
 * ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9], at most 63 characters. */
static bool label_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > 63 || !is_alnum(s[0]) || !is_alnum(s[len - 1]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

/* [prefix/]name, prefix a DNS subdomain: Kubernetes' qualified name. */
static bool label_key_ok(const char *s, size_t len)
{
	const char *slash = memchr(s, '/', len);

	if (!slash)
		return label_name_ok(s, len);
	return dns_subdomain_ok(s, (size_t)(slash - s)) &&
	       label_name_ok(slash + 1, len - (size_t)(slash - s) - 1);
}

static bool label_value_ok(const char *s, size_t len)
{
	return len == 0 || label_name_ok(s, len);
}

#define LABEL_KEY_RULE                                                                             \
	"write an optional DNS subdomain prefix and \"/\", then at most 63 letters, digits, '-', "  \
	"'_' or '.', starting and ending with a letter or digit"
#define LABEL_VALUE_RULE                                                                           \
	"write at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or "  \
	"digit, or an empty string"

static int parse_label_key(struct ctx *c, const yaml_node_t *n, char **ret)
{
	char q[QUOTE_BUF];
	const char *s;
	size_t len;
	int r;

	r = get_str(c, n, &s, &len);
	if (r < 0)
		return r;
	if (!label_key_ok(s, len))
		return fail(c, n, "label key %s is not valid: " LABEL_KEY_RULE, quote(q, s, len));
	*ret = strndup(s, len);
	return *ret ? 0 : -ENOMEM;
}

/* Label values may be empty (a label can be set to ""); null reads as "". */
static int parse_label_value(struct ctx *c, const yaml_node_t *n, char **ret)
{
	char q[QUOTE_BUF];
	const char *s = "";
	size_t len = 0;

	if (n->type != YAML_SCALAR_NODE)
		return fail(c, n, "must be a string, not %s", type_name(n));
	if (!is_null(n)) {
		s = sv(n);
		len = slen(n);
	}
	if (!label_value_ok(s, len))
		return fail(c, n, "label value %s is not valid: " LABEL_VALUE_RULE, quote(q, s, len));
	*ret = strndup(s, len);
	return *ret ? 0 : -ENOMEM;
}

/* ---- paths -------------------------------------------------------------- */

enum path_kind {
	PATH_EXACT,
	PATH_PREFIX,
	PATH_CGROUP,
};

/*
 * Rule paths are compared byte for byte with what the kernel reports
 * (bpf_d_path), which is absolute and canonical: "//", "." and ".." never
 * appear in it, and neither does a trailing "/" except for "/" itself. A
 * rule written otherwise would never match, so it is rejected with the
 * spelling that would.
 */
static int parse_path(struct ctx *c, const yaml_node_t *n, enum path_kind kind, char **ret)
{
	static const char *const what[] = {
		[PATH_EXACT] = "path",
		[PATH_PREFIX] = "prefix",
		[PATH_CGROUP] = "cgroup path",
	};
	size_t max = kind == PATH_CGROUP ? MAX_CGROUP_PATH_LEN : BW_RULE_PATH_MAX;
	char q[QUOTE_BUF], q2[QUOTE_BUF];
	const char *s;
	size_t len;
	int r;

	r = get_str(c, n, &s, &len);
	if (r < 0)
		return r;
	quote(q, s, len);

	if (s[0] != '/')
		return fail(c, n, "%s %s is relative; write an absolute path", what[kind], q);
	if (len > max)
		return fail(c, n, "%s %s is %zu bytes long; at most %zu bytes are allowed", what[kind], q,
			    len, max);
	if (strstr(s, "//")) {
		_cleanup_free_ char *fixed = malloc(len + 1);
		size_t o = 0;

		if (!fixed)
			return -ENOMEM;
		for (size_t i = 0; i < len; i++)
			if (s[i] != '/' || o == 0 || fixed[o - 1] != '/')
				fixed[o++] = s[i];
		return fail(c, n, "%s %s contains \"//\"; write %s", what[kind], q, quote(q2, fixed, o));
	}
	for (const char *p = s + 1; p <= s + len;) {
		const char *end = memchr(p, '/', len - (size_t)(p - s));
		size_t l = end ? (size_t)(end - p) : len - (size_t)(p - s);

		if ((l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
			return fail(c, n,
				    "%s %s contains a \"%.*s\" component, which never matches; "
				    "write the path without it",
				    what[kind], q, (int)l, p);
		p += l + 1;
	}
	if (len > 1 && s[len - 1] == '/') {
		if (kind == PATH_EXACT)
			return fail(c, n,
				    "path %s ends with \"/\", which never matches a file; "
				    "to match everything under it, write prefix: %s",
				    q, q);
		if (kind == PATH_CGROUP)
			return fail(c, n, "cgroup path %s ends with \"/\"; write %s", q,
				    quote(q2, s, len - 1));
	}

	*ret = strndup(s, len);
	return *ret ? 0 : -ENOMEM;
}

static int parse_access(struct ctx *c, const yaml_node_t *n, unsigned *ret)
{
	char q[QUOTE_BUF];
	unsigned access = 0;
	int r;

	r = want(c, n, YAML_SEQUENCE_NODE);
	if (r < 0)
		return r;
	if (seq_len(n) == 0)
		return fail(c, n, "empty list; write [read], [write] or [read, write], or leave access out for both");

	for (size_t i = 0; i < seq_len(n); i++) {
		yaml_node_t *item = seq_item(c, n, i);
		size_t saved = field_push_index(c, i);
		unsigned bit = 0;
		const char *s;
		size_t len;

		r = get_str(c, item, &s, &len);
		if (r >= 0) {
			if (streq(s, "read"))
				bit = BW_ACCESS_READ;
			else if (streq(s, "write"))
				bit = BW_ACCESS_WRITE;
			else
				r = fail(c, item, "unknown access %s; expected read or write", quote(q, s, len));
		}
		if (r >= 0 && (access & bit))
			r = fail(c, item, "duplicate access %s", quote(q, s, len));
		field_pop(c, saved);
		if (r < 0)
			return r;
		access |= bit;
	}
	*ret = access;
	return 0;
}

/* exec and files entries: {path: X} or {prefix: X}, files with access. */
static int parse_path_rule(struct ctx *c, struct bw_policy *p, const yaml_node_t *n, bool files,
			   struct bw_path_rule *rule)
{
	enum { F_PATH, F_PREFIX, F_ACCESS };
	struct field f[] = {
		[F_PATH] = { "path", NULL, NULL, NULL },
		[F_PREFIX] = { "prefix", NULL, NULL, NULL },
		[F_ACCESS] = { "access", files ? NULL : "access is only valid in files rules", NULL, NULL },
	};
	yaml_node_t *pn;
	size_t saved;
	int r;

	r = want(c, n, YAML_MAPPING_NODE);
	if (r < 0)
		return r;
	r = get_fields(c, n, f, ELEMENTSOF(f), false);
	if (r < 0)
		return r;
	if (f[F_PATH].value && f[F_PREFIX].value)
		return fail(c, n, "write either path or prefix, not both");
	if (!f[F_PATH].value && !f[F_PREFIX].value)
		return fail(c, n, "a rule needs path or prefix");

	rule->pos = (struct bw_pos){ p->file, (unsigned)n->start_mark.line + 1,
				     (unsigned)n->start_mark.column + 1 };
	rule->is_prefix = f[F_PREFIX].value != NULL;
	pn = rule->is_prefix ? f[F_PREFIX].value : f[F_PATH].value;
	saved = field_push(c, rule->is_prefix ? "prefix" : "path");
	r = parse_path(c, pn, rule->is_prefix ? PATH_PREFIX : PATH_EXACT, &rule->path);
	field_pop(c, saved);
	if (r < 0)
		return r;

	if (!files)
		return 0;
	rule->access = BW_ACCESS_ALL;
	if (f[F_ACCESS].value && !is_null(f[F_ACCESS].value)) {
		saved = field_push(c, "access");
		r = parse_access(c, f[F_ACCESS].value, &rule->access);
		field_pop(c, saved);
	}
	return r;
}

/* ---- network ------------------------------------------------------------ */

static int parse_cidr(struct ctx *c, const yaml_node_t *n, struct bw_net_rule *rule)
{
	char q[QUOTE_BUF], q2[QUOTE_BUF], addr[INET6_ADDRSTRLEN + 16], net[INET6_ADDRSTRLEN];
	const char *s, *slash;
	unsigned bits, prefix_len;
	size_t len, alen;
	int r;

	r = get_str(c, n, &s, &len);
	if (r < 0)
		return r;
	quote(q, s, len);

	slash = memchr(s, '/', len);
	alen = slash ? (size_t)(slash - s) : len;
	if (alen >= sizeof(addr))
		return fail(c, n, "invalid CIDR %s: %s is not an IPv4 or IPv6 address", q,
			    quote(q2, s, alen));
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	/* inet_pton is strict: no leading zeros in IPv4, no zone ids. */
	rule->family = memchr(addr, ':', alen) ? AF_INET6 : AF_INET;
	if (inet_pton(rule->family, addr, rule->addr) != 1)
		return fail(c, n, "invalid CIDR %s: %s is not an IPv4 or IPv6 address", q,
			    quote(q2, s, alen));
	bits = rule->family == AF_INET ? 32 : 128;

	if (slash) {
		const char *pl = slash + 1;
		size_t pl_len = len - alen - 1;

		if (!all_digits(pl, pl_len) || (pl_len > 1 && pl[0] == '0') || pl_len > 3)
			return fail(c, n, "invalid CIDR %s: the prefix length after \"/\" must be a number from 0 to %u",
				    q, bits);
		prefix_len = 0;
		for (size_t i = 0; i < pl_len; i++)
			prefix_len = prefix_len * 10 + (unsigned)(pl[i] - '0');
		if (prefix_len > bits)
			return fail(c, n, "invalid CIDR %s: prefix length %u is out of range 0-%u for %s", q,
				    prefix_len, bits, rule->family == AF_INET ? "IPv4" : "IPv6");
	} else
		prefix_len = bits; /* a single address */

	/* Host bits set mean the author had another network in mind than the
	 * one the prefix selects: refuse to guess, name the network instead. */
	{
		uint8_t masked[16];
		bool host_bits = false;

		memcpy(masked, rule->addr, sizeof(masked));
		for (unsigned i = 0; i < bits / 8; i++) {
			unsigned keep = prefix_len > i * 8 ? prefix_len - i * 8 : 0;
			uint8_t mask = keep >= 8 ? 0xff : (uint8_t)(0xff00u >> keep);

			if (masked[i] & ~mask)
				host_bits = true;
			masked[i] &= mask;
		}
		if (host_bits) {
			inet_ntop(rule->family, masked, net, sizeof(net));
			return fail(c, n, "CIDR %s has host bits set; write the network address \"%s/%u\"", q, net,
				    prefix_len);
		}
	}

	rule->prefix_len = prefix_len;
	rule->cidr = strndup(s, len);
	return rule->cidr ? 0 : -ENOMEM;
}

/* One side of a port or a range; s is all digits. */
static int parse_port_number(struct ctx *c, const yaml_node_t *n, const char *s, size_t len, uint16_t *ret)
{
	size_t zeros = 0;
	unsigned long v = 0;

	while (zeros < len && s[zeros] == '0')
		zeros++;
	/* Kubernetes' YAML reads 010 as octal 8: do not guess which was meant. */
	if (zeros > 0 && zeros < len)
		return fail(c, n, "port %.*s has a leading zero; write %.*s", (int)(len > 20 ? 20 : len), s,
			    (int)(len - zeros > 20 ? 20 : len - zeros), s + zeros);
	for (size_t i = 0; i < len && v <= 65535; i++)
		v = v * 10 + (unsigned long)(s[i] - '0');
	if (v < 1 || v > 65535)
		return fail(c, n, "port %.*s%s is out of range 1-65535", (int)(len > 20 ? 20 : len), s,
			    len > 20 ? "..." : "");
	*ret = (uint16_t)v;
	return 0;
}

/* 80, "80" or "8000-8999". */
static int parse_port(struct ctx *c, const yaml_node_t *n, struct bw_port_range *range)
{
	char q[QUOTE_BUF];
	const char *s, *dash;
	size_t len, lo_len;
	int r;

	if (n->type != YAML_SCALAR_NODE || is_null(n))
		return fail(c, n, "must be a port number or a range \"N-M\", not %s", type_name(n));
	s = sv(n);
	len = slen(n);
	quote(q, s, len);
	dash = memchr(s, '-', len);
	lo_len = dash ? (size_t)(dash - s) : len;
	if (!all_digits(s, lo_len) || (dash && !all_digits(dash + 1, len - lo_len - 1)))
		return fail(c, n, "port %s is not a number from 1 to 65535 or a range \"N-M\"", q);

	r = parse_port_number(c, n, s, lo_len, &range->lo);
	if (r < 0)
		return r;
	range->hi = range->lo;
	if (!dash)
		return 0;
	r = parse_port_number(c, n, dash + 1, len - lo_len - 1, &range->hi);
	if (r < 0)
		return r;
	if (range->lo > range->hi)
		return fail(c, n, "port range %s is reversed; write \"%u-%u\"", q, range->hi, range->lo);
	return 0;
}

static int parse_ports(struct ctx *c, const yaml_node_t *n, struct bw_net_rule *rule)
{
	size_t count;
	int r;

	r = want(c, n, YAML_SEQUENCE_NODE);
	if (r < 0)
		return r;
	count = seq_len(n);
	if (count == 0)
		return fail(c, n, "empty list; leave ports out to match every port");
	if (count > BW_MAX_PORTS_PER_RULE)
		return too_many(c, n, count, BW_MAX_PORTS_PER_RULE);

	rule->ports = calloc(count, sizeof(*rule->ports));
	if (!rule->ports)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		size_t saved = field_push_index(c, i);

		r = parse_port(c, seq_item(c, n, i), &rule->ports[i]);
		field_pop(c, saved);
		if (r < 0)
			return r;
		rule->n_ports++;
	}
	return 0;
}

static int parse_net_rule(struct ctx *c, struct bw_policy *p, const yaml_node_t *n, struct bw_net_rule *rule)
{
	enum { F_CIDR, F_PORTS, F_PROTOCOL };
	struct field f[] = {
		[F_CIDR] = { "cidr", NULL, NULL, NULL },
		[F_PORTS] = { "ports", NULL, NULL, NULL },
		[F_PROTOCOL] = { "protocol", NULL, NULL, NULL },
	};
	char q[QUOTE_BUF];
	size_t saved;
	int r;

	r = want(c, n, YAML_MAPPING_NODE);
	if (r < 0)
		return r;
	r = get_fields(c, n, f, ELEMENTSOF(f), false);
	if (r < 0)
		return r;
	rule->pos = (struct bw_pos){ p->file, (unsigned)n->start_mark.line + 1,
				     (unsigned)n->start_mark.column + 1 };

	if (!f[F_CIDR].value)
		return fail_missing(c, n, "cidr", "; write for example cidr: 10.0.0.0/8");
	saved = field_push(c, "cidr");
	r = parse_cidr(c, f[F_CIDR].value, rule);
	field_pop(c, saved);
	if (r < 0)
		return r;

	if (f[F_PORTS].value && !is_null(f[F_PORTS].value)) {
		saved = field_push(c, "ports");
		r = parse_ports(c, f[F_PORTS].value, rule);
		field_pop(c, saved);
		if (r < 0)
			return r;
	}

	rule->protocol = BW_PROTOCOL_ANY;
	if (f[F_PROTOCOL].value && !is_null(f[F_PROTOCOL].value)) {
		const char *s;
		size_t len;

		saved = field_push(c, "protocol");
		r = get_str(c, f[F_PROTOCOL].value, &s, &len);
		if (r >= 0) {
			if (streq(s, "TCP"))
				rule->protocol = BW_PROTOCOL_TCP;
			else if (streq(s, "UDP"))
				rule->protocol = BW_PROTOCOL_UDP;
			else if (!streq(s, "any"))
				r = fail(c, f[F_PROTOCOL].value,
					 "unknown protocol %s; expected one of: TCP, UDP, any (case-sensitive)",
					 quote(q, s, len));
		}
		field_pop(c, saved);
	}
	return r;
}

/* ---- rule lists and sections ------------------------------------------- */

/* The length of a deny or allow list; an absent (or null) list is empty.
 * An allow list that is present must not be empty: "allow: []" reads like
 * "allow nothing" but an empty allow list restricts nothing at all. */
static int rule_list_len(struct ctx *c, const yaml_node_t *n, bool allow, size_t *ret)
{
	static const char empty_allow[] =
		"an empty allow list would allow everything, not nothing; list what to allow, or leave allow out";
	int r;

	*ret = 0;
	if (is_null(n))
		return allow ? fail(c, n, "%s", empty_allow) : 0;
	r = want(c, n, YAML_SEQUENCE_NODE);
	if (r < 0)
		return r;
	if (seq_len(n) == 0 && allow)
		return fail(c, n, "%s", empty_allow);
	if (seq_len(n) > BW_MAX_RULES_PER_LIST)
		return too_many(c, n, seq_len(n), BW_MAX_RULES_PER_LIST);
	*ret = seq_len(n);
	return 0;
}

static int parse_path_list(struct ctx *c, struct bw_policy *p, const yaml_node_t *n, bool files, bool allow,
			   struct bw_path_rules *out)
{
	size_t count;
	int r;

	r = rule_list_len(c, n, allow, &count);
	if (r < 0 || count == 0)
		return r;
	out->items = calloc(count, sizeof(*out->items));
	if (!out->items)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		size_t saved = field_push_index(c, i);

		/* Counted before it is filled so that bw_policy_free() sees it. */
		r = parse_path_rule(c, p, seq_item(c, n, i), files, &out->items[out->n++]);
		field_pop(c, saved);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_net_list(struct ctx *c, struct bw_policy *p, const yaml_node_t *n, bool allow,
			  struct bw_net_rules *out)
{
	size_t count;
	int r;

	r = rule_list_len(c, n, allow, &count);
	if (r < 0 || count == 0)
		return r;
	out->items = calloc(count, sizeof(*out->items));
	if (!out->items)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		size_t saved = field_push_index(c, i);

		r = parse_net_rule(c, p, seq_item(c, n, i), &out->items[out->n++]);
		field_pop(c, saved);
		if (r < 0)
			return r;
	}
	return 0;
}

enum section {
	SECTION_EXEC,
	SECTION_FILES,
	SECTION_NETWORK,
};

static int parse_section(struct ctx *c, struct bw_policy *p, const yaml_node_t *n, enum section sec)
{
	struct field f[] = {
		{ "deny", NULL, NULL, NULL },
		{ "allow", NULL, NULL, NULL },
	};
	int r;

	if (is_null(n))
		return 0;
	r = want(c, n, YAML_MAPPING_NODE);
	if (r < 0)
		return r;
	r = get_fields(c, n, f, ELEMENTSOF(f), false);
	if (r < 0)
		return r;

	for (size_t i = 0; i < ELEMENTSOF(f); i++) {
		bool allow = i == 1;
		size_t saved;

		if (!f[i].value)
			continue;
		saved = field_push(c, f[i].name);
		switch (sec) {
		case SECTION_EXEC:
			r = parse_path_list(c, p, f[i].value, false, allow, allow ? &p->exec_allow : &p->exec_deny);
			break;
		case SECTION_FILES:
			r = parse_path_list(c, p, f[i].value, true, allow, allow ? &p->files_allow : &p->files_deny);
			break;
		case SECTION_NETWORK:
			r = parse_net_list(c, p, f[i].value, allow, allow ? &p->net_allow : &p->net_deny);
			break;
		}
		field_pop(c, saved);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- selectors ---------------------------------------------------------- */

static int parse_selector_expr(struct ctx *c, const yaml_node_t *n, struct bw_selector_expr *e)
{
	enum { F_KEY, F_OPERATOR, F_VALUES };
	struct field f[] = {
		[F_KEY] = { "key", NULL, NULL, NULL },
		[F_OPERATOR] = { "operator", NULL, NULL, NULL },
		[F_VALUES] = { "values", NULL, NULL, NULL },
	};
	static const char ops_expected[] = "In, NotIn, Exists, DoesNotExist";
	yaml_node_t *values;
	const char *op;
	char q[QUOTE_BUF];
	size_t saved, count = 0, len;
	bool needs_values;
	int r;

	r = want(c, n, YAML_MAPPING_NODE);
	if (r < 0)
		return r;
	r = get_fields(c, n, f, ELEMENTSOF(f), false);
	if (r < 0)
		return r;

	if (!f[F_KEY].value)
		return fail_missing(c, n, "key", NULL);
	saved = field_push(c, "key");
	r = parse_label_key(c, f[F_KEY].value, &e->key);
	field_pop(c, saved);
	if (r < 0)
		return r;

	if (!f[F_OPERATOR].value)
		return fail_missing(c, n, "operator", "; expected one of: In, NotIn, Exists, DoesNotExist");
	saved = field_push(c, "operator");
	r = get_str(c, f[F_OPERATOR].value, &op, &len);
	if (r >= 0) {
		if (streq(op, "In"))
			e->op = BW_SEL_IN;
		else if (streq(op, "NotIn"))
			e->op = BW_SEL_NOT_IN;
		else if (streq(op, "Exists"))
			e->op = BW_SEL_EXISTS;
		else if (streq(op, "DoesNotExist"))
			e->op = BW_SEL_DOES_NOT_EXIST;
		else
			r = fail(c, f[F_OPERATOR].value, "unknown operator %s; expected one of: %s (case-sensitive)",
				 quote(q, op, len), ops_expected);
	}
	field_pop(c, saved);
	if (r < 0)
		return r;

	needs_values = e->op == BW_SEL_IN || e->op == BW_SEL_NOT_IN;
	values = f[F_VALUES].value;
	saved = field_push(c, "values");
	if (values && !is_null(values)) {
		r = want(c, values, YAML_SEQUENCE_NODE);
		if (r < 0)
			goto out;
		count = seq_len(values);
	}
	if (needs_values && count == 0)
		r = fail(c, values && !is_null(values) ? values : n,
			 "operator %s needs a non-empty values list", op);
	else if (!needs_values && count > 0)
		r = fail(c, values, "operator %s must not have values", op);
	else if (count > BW_MAX_SELECTOR_VALUES)
		r = too_many(c, values, count, BW_MAX_SELECTOR_VALUES);
	if (r < 0 || count == 0)
		goto out;

	e->values = calloc(count, sizeof(*e->values));
	if (!e->values) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < count && r >= 0; i++) {
		size_t saved_i = field_push_index(c, i);

		r = parse_label_value(c, seq_item(c, values, i), &e->values[e->n_values]);
		if (r >= 0)
			e->n_values++;
		field_pop(c, saved_i);
	}
out:
	field_pop(c, saved);
	return r;
}

static int selector_terms_fail(struct ctx *c, const yaml_node_t *n, size_t count)
{
	return fail(c, n, "too many selector terms: %zu in matchLabels and matchExpressions together; at most %d are allowed",
		    count, BW_MAX_SELECTOR_TERMS);
}

/* A Kubernetes LabelSelector; absent, null or {} selects everything. */
static int parse_selector(struct ctx *c, const yaml_node_t *n, struct bw_selector *sel)
{
	enum { F_LABELS, F_EXPRS };
	struct field f[] = {
		[F_LABELS] = { "matchLabels", NULL, NULL, NULL },
		[F_EXPRS] = { "matchExpressions", NULL, NULL, NULL },
	};
	yaml_node_t *m;
	size_t saved, n_labels = 0;
	int r;

	if (is_null(n))
		return 0;
	r = want(c, n, YAML_MAPPING_NODE);
	if (r < 0)
		return r;
	r = get_fields(c, n, f, ELEMENTSOF(f), false);
	if (r < 0)
		return r;

	m = f[F_LABELS].value;
	if (m && !is_null(m)) {
		saved = field_push(c, "matchLabels");
		r = want(c, m, YAML_MAPPING_NODE);
		if (r >= 0)
			r = check_keys(c, m, true);
		if (r >= 0 && map_len(m) > BW_MAX_SELECTOR_TERMS)
			r = selector_terms_fail(c, m, map_len(m));
		if (r >= 0 && map_len(m) > 0) {
			sel->match_labels.items = calloc(map_len(m), sizeof(*sel->match_labels.items));
			if (!sel->match_labels.items)
				r = -ENOMEM;
		}
		for (size_t i = 0; r >= 0 && i < map_len(m); i++) {
			yaml_node_t *k = pair_key(c, m, i);
			struct bw_label *l = &sel->match_labels.items[sel->match_labels.n++];
			size_t saved_k = field_push_mapkey(c, sv(k), slen(k));

			r = parse_label_key(c, k, &l->key);
			if (r >= 0)
				r = parse_label_value(c, pair_value(c, m, i), &l->value);
			field_pop(c, saved_k);
		}
		field_pop(c, saved);
		if (r < 0)
			return r;
		n_labels = map_len(m);
	}

	m = f[F_EXPRS].value;
	if (m && !is_null(m)) {
		size_t count;

		saved = field_push(c, "matchExpressions");
		r = want(c, m, YAML_SEQUENCE_NODE);
		count = r >= 0 ? seq_len(m) : 0;
		if (r >= 0 && n_labels + count > BW_MAX_SELECTOR_TERMS)
			r = selector_terms_fail(c, m, n_labels + count);
		if (r >= 0 && count > 0) {
			sel->exprs = calloc(count, sizeof(*sel->exprs));
			if (!sel->exprs)
				r = -ENOMEM;
		}
		for (size_t i = 0; r >= 0 && i < count; i++) {
			size_t saved_i = field_push_index(c, i);

			r = parse_selector_expr(c, seq_item(c, m, i), &sel->exprs[sel->n_exprs++]);
			field_pop(c, saved_i);
		}
		field_pop(c, saved);
	}
	return r;
}

static int parse_cgroup_paths(struct ctx *c, struct bw_policy *p, const yaml_node_t *n)
{
	size_t count;
	int r;

	if (is_null(n))
		return 0;
	r = want(c, n, YAML_SEQUENCE_NODE);
	if (r < 0)
		return r;
	count = seq_len(n);
	if (count == 0)
		return fail(c, n, "empty list; list cgroup paths or leave cgroupPaths out");
	if (count > BW_MAX_CGROUP_PATHS)
		return too_many(c, n, count, BW_MAX_CGROUP_PATHS);

	p->cgroup_paths = calloc(count, sizeof(*p->cgroup_paths));
	if (!p->cgroup_paths)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		size_t saved = field_push_index(c, i);

		r = parse_path(c, seq_item(c, n, i), PATH_CGROUP, &p->cgroup_paths[p->n_cgroup_paths]);
		field_pop(c, saved);
		if (r < 0)
			return r;
		p->n_cgroup_paths++;
	}
	return 0;
}

/* ---- the document ------------------------------------------------------- */

static int parse_spec(struct ctx *c, struct bw_policy *p, const yaml_node_t *key, const yaml_node_t *n)
{
	enum { F_MODE, F_NS_SEL, F_POD_SEL, F_CGROUPS, F_EXEC, F_FILES, F_NETWORK };
	static const char not_in_host[] =
		"not allowed in a HostBulwarkPolicy, which selects host processes by cgroupPaths";
	bool cluster = c->kind == BW_KIND_CLUSTER, host = c->kind == BW_KIND_HOST;
	struct field f[] = {
		[F_MODE] = { "mode", NULL, NULL, NULL },
		[F_NS_SEL] = { "namespaceSelector",
			       cluster ? NULL
			       : host  ? not_in_host
				       : "not allowed in a BulwarkPolicy, which applies to its own namespace only; "
					 "use a ClusterBulwarkPolicy to select namespaces",
			       NULL, NULL },
		[F_POD_SEL] = { "podSelector", host ? not_in_host : NULL, NULL, NULL },
		[F_CGROUPS] = { "cgroupPaths", host ? NULL : "only allowed in a HostBulwarkPolicy", NULL, NULL },
		[F_EXEC] = { "exec", NULL, NULL, NULL },
		[F_FILES] = { "files", NULL, NULL, NULL },
		[F_NETWORK] = { "network", NULL, NULL, NULL },
	};
	char q[QUOTE_BUF];
	const char *s;
	size_t saved, len;
	int r;

	r = want(c, n, YAML_MAPPING_NODE);
	if (r < 0)
		return r;
	r = get_fields(c, n, f, ELEMENTSOF(f), false);
	if (r < 0)
		return r;

	/* No default: whether a policy blocks must be written down. */
	if (!f[F_MODE].value)
		return fail_missing(c, key, "mode", "; write mode: Block or mode: Audit");
	saved = field_push(c, "mode");
	r = get_str(c, f[F_MODE].value, &s, &len);
	if (r >= 0) {
		if (streq(s, "Block"))
			p->mode = BW_MODE_BLOCK;
		else if (streq(s, "Audit"))
			p->mode = BW_MODE_AUDIT;
		else
			r = fail(c, f[F_MODE].value, "unknown mode %s; expected Block or Audit (case-sensitive)",
				 quote(q, s, len));
	}
	field_pop(c, saved);
	if (r < 0)
		return r;

	if (f[F_NS_SEL].value) {
		saved = field_push(c, "namespaceSelector");
		r = parse_selector(c, f[F_NS_SEL].value, &p->namespace_selector);
		field_pop(c, saved);
		if (r < 0)
			return r;
	}
	if (f[F_POD_SEL].value) {
		saved = field_push(c, "podSelector");
		r = parse_selector(c, f[F_POD_SEL].value, &p->pod_selector);
		field_pop(c, saved);
		if (r < 0)
			return r;
	}
	if (f[F_CGROUPS].value) {
		saved = field_push(c, "cgroupPaths");
		r = parse_cgroup_paths(c, p, f[F_CGROUPS].value);
		field_pop(c, saved);
		if (r < 0)
			return r;
	}
	for (unsigned i = F_EXEC; i <= F_NETWORK; i++) {
		if (!f[i].value)
			continue;
		saved = field_push(c, f[i].name);
		r = parse_section(c, p, f[i].value,
				  i == F_EXEC ? SECTION_EXEC : i == F_FILES ? SECTION_FILES : SECTION_NETWORK);
		field_pop(c, saved);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_metadata(struct ctx *c, struct bw_policy *p, const yaml_node_t *key, const yaml_node_t *n)
{
	enum { F_NAME, F_NAMESPACE };
	struct field f[] = {
		[F_NAME] = { "name", NULL, NULL, NULL },
		[F_NAMESPACE] = { "namespace", NULL, NULL, NULL },
	};
	yaml_node_t *v;
	char q[QUOTE_BUF];
	const char *s;
	size_t saved, len;
	int r;

	r = want(c, n, YAML_MAPPING_NODE);
	if (r < 0)
		return r;
	/* labels, annotations, uid, managedFields... are accepted and ignored:
	 * objects read back from the API server carry them. */
	r = get_fields(c, n, f, ELEMENTSOF(f), true);
	if (r < 0)
		return r;

	v = f[F_NAME].value;
	if (!v)
		return fail_missing(c, key, "name", NULL);
	saved = field_push(c, "name");
	r = get_str(c, v, &s, &len);
	if (r >= 0 && !dns_subdomain_ok(s, len))
		r = fail(c, v,
			 "name %s is not a valid DNS-1123 subdomain: write at most 253 lowercase letters, "
			 "digits, '-' and '.', starting and ending with a letter or digit",
			 quote(q, s, len));
	field_pop(c, saved);
	if (r < 0)
		return r;
	p->name = strndup(s, len);
	if (!p->name)
		return -ENOMEM;
	p->name_pos = (struct bw_pos){ p->file, (unsigned)v->start_mark.line + 1,
				       (unsigned)v->start_mark.column + 1 };

	v = f[F_NAMESPACE].value;
	if (c->kind != BW_KIND_NAMESPACED) {
		if (!v || is_null(v))
			return 0;
		saved = field_push(c, "namespace");
		r = fail(c, f[F_NAMESPACE].key, "must not be set: a %s is cluster-scoped",
			 bw_policy_kind_name(c->kind));
		field_pop(c, saved);
		return r;
	}
	if (!v)
		return fail_missing(c, key, "namespace", "; a BulwarkPolicy is namespaced");
	saved = field_push(c, "namespace");
	r = get_str(c, v, &s, &len);
	if (r >= 0 && !dns_label_ok(s, len, 63))
		r = fail(c, v,
			 "namespace %s is not a valid DNS-1123 label: write at most 63 lowercase letters, "
			 "digits and '-', starting and ending with a letter or digit",
			 quote(q, s, len));
	field_pop(c, saved);
	if (r < 0)
		return r;
	p->namespace = strndup(s, len);
	return p->namespace ? 0 : -ENOMEM;
}

static int parse_document(struct ctx *c, const yaml_node_t *root, struct bw_policy **ret)
{
	enum { F_API, F_KIND, F_METADATA, F_SPEC, F_STATUS };
	struct field f[] = {
		[F_API] = { "apiVersion", NULL, NULL, NULL },
		[F_KIND] = { "kind", NULL, NULL, NULL },
		[F_METADATA] = { "metadata", NULL, NULL, NULL },
		[F_SPEC] = { "spec", NULL, NULL, NULL },
		[F_STATUS] = { "status", NULL, NULL, NULL },
	};
	_cleanup_(bw_policy_freep) struct bw_policy *p = NULL;
	char q[QUOTE_BUF];
	const char *s;
	size_t saved, len;
	int r;

	if (root->type != YAML_MAPPING_NODE)
		return fail(c, root, "a policy document must be a map with apiVersion, kind, metadata and spec, not %s",
			    type_name(root));
	r = get_fields(c, root, f, ELEMENTSOF(f), false);
	if (r < 0)
		return r;

	if (!f[F_API].value)
		return fail_missing(c, root, "apiVersion", "; write apiVersion: " BW_API_VERSION);
	saved = field_push(c, "apiVersion");
	r = get_str(c, f[F_API].value, &s, &len);
	if (r >= 0 && !streq(s, BW_API_VERSION))
		r = fail(c, f[F_API].value, "unknown apiVersion %s; expected " BW_API_VERSION, quote(q, s, len));
	field_pop(c, saved);
	if (r < 0)
		return r;

	if (!f[F_KIND].value)
		return fail_missing(c, root, "kind", "; expected one of: " KINDS_EXPECTED);
	saved = field_push(c, "kind");
	r = get_str(c, f[F_KIND].value, &s, &len);
	if (r >= 0) {
		if (streq(s, "ClusterBulwarkPolicy"))
			c->kind = BW_KIND_CLUSTER;
		else if (streq(s, "BulwarkPolicy"))
			c->kind = BW_KIND_NAMESPACED;
		else if (streq(s, "HostBulwarkPolicy"))
			c->kind = BW_KIND_HOST;
		else
			r = fail(c, f[F_KIND].value, "unknown kind %s; expected one of: " KINDS_EXPECTED,
				 quote(q, s, len));
	}
	field_pop(c, saved);
	if (r < 0)
		return r;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->serial = bw_policy_next_serial();
	p->file = strdup(c->file);
	if (!p->file)
		return -ENOMEM;
	p->kind = c->kind;
	p->doc_index = c->doc_index;
	p->pos = (struct bw_pos){ p->file, (unsigned)root->start_mark.line + 1,
				  (unsigned)root->start_mark.column + 1 };

	if (!f[F_METADATA].value)
		return fail_missing(c, root, "metadata", "; it needs at least a name");
	saved = field_push(c, "metadata");
	r = parse_metadata(c, p, f[F_METADATA].key, f[F_METADATA].value);
	field_pop(c, saved);
	if (r < 0)
		return r;

	if (!f[F_SPEC].value)
		return fail_missing(c, root, "spec", "; it needs at least mode: Block or mode: Audit");
	saved = field_push(c, "spec");
	r = parse_spec(c, p, f[F_SPEC].key, f[F_SPEC].value);
	field_pop(c, saved);
	if (r < 0)
		return r;

	/* status is written by controllers; it is ignored. */
	if (f[F_STATUS].value) {
		saved = field_push(c, "status");
		r = walk_ignored(c, f[F_STATUS].value, 0);
		field_pop(c, saved);
		if (r < 0)
			return r;
	}

	*ret = TAKE_PTR(p);
	return 0;
}

/* The first value of key in map when it is a non-empty string, or NULL:
 * best effort, no errors, for naming a document that is then rejected. */
static const yaml_node_t *peek_scalar(struct ctx *c, const yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (size_t i = 0; i < map_len(map); i++) {
		yaml_node_t *v = pair_value(c, map, i);

		if (!scalar_is(pair_key(c, map, i), key))
			continue;
		if (v->type != YAML_SCALAR_NODE || is_null(v) || strlen(sv(v)) != slen(v))
			return NULL;
		return v;
	}
	return NULL;
}

static const yaml_node_t *peek_node(struct ctx *c, const yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (size_t i = 0; i < map_len(map); i++)
		if (scalar_is(pair_key(c, map, i), key))
			return pair_value(c, map, i);
	return NULL;
}

/* ---- diagnostics and drivers ------------------------------------------- */

static int strdup_opt(const char *s, char **ret)
{
	*ret = NULL;
	if (!s)
		return 0;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

/* Appends a diagnostic; takes field and reason (may be NULL) in all cases. */
static int diag_add(struct bw_diags *diags, const char *file, unsigned line, unsigned column, char *field,
		    char *reason, const char *kind, const char *name, const char *namespace, unsigned doc_index)
{
	struct bw_diag *d = ARRAY_APPEND(diags->items, diags->n);

	if (!d) {
		free(field);
		free(reason);
		return -ENOMEM;
	}
	d->line = line;
	d->column = column;
	d->field = field;
	d->reason = reason;
	d->doc_index = doc_index;
	if (strdup_opt(file, &d->file) < 0 || strdup_opt(kind, &d->kind) < 0 || strdup_opt(name, &d->name) < 0 ||
	    strdup_opt(namespace, &d->namespace) < 0)
		return -ENOMEM;
	return 0;
}

static _printf_(3, 4) int file_diag(struct bw_diags *diags, const char *file, const char *fmt, ...)
{
	va_list ap;
	char *reason;

	va_start(ap, fmt);
	reason = strvprintf(fmt, ap);
	va_end(ap);

	if (!reason)
		return -ENOMEM;
	return diag_add(diags, file, 0, 0, NULL, reason, NULL, NULL, NULL, 0);
}

static bool kind_from_name(const char *s, enum bw_policy_kind *ret)
{
	static const enum bw_policy_kind kinds[] = { BW_KIND_CLUSTER, BW_KIND_NAMESPACED, BW_KIND_HOST };

	for (size_t i = 0; s && i < ELEMENTSOF(kinds); i++)
		if (streq(s, bw_policy_kind_name(kinds[i]))) {
			*ret = kinds[i];
			return true;
		}
	return false;
}

static void claims_clear(struct claims *cl)
{
	for (size_t i = 0; i < cl->n; i++) {
		free(cl->items[i].namespace);
		free(cl->items[i].name);
		free(cl->items[i].file);
	}
	cl->items = mfree(cl->items);
	cl->n = 0;
}

/* Records which policy the document defines, valid (p) or rejected (p NULL,
 * identity as far as it could be read). */
static int add_claim(struct ctx *c, struct bw_policy *p)
{
	enum bw_policy_kind kind;
	struct claim *cl;

	if (p)
		kind = p->kind;
	else if (!kind_from_name(c->id_kind, &kind) || !c->id_name)
		return 0; /* nothing to name it by */

	cl = ARRAY_APPEND(c->claims->items, c->claims->n);
	if (!cl)
		return -ENOMEM;
	cl->kind = kind;
	cl->policy = p;
	cl->line = p ? p->name_pos.line : (unsigned)c->id_name_node->start_mark.line + 1;
	if (strdup_opt(p ? p->name : c->id_name, &cl->name) < 0 || strdup_opt(c->file, &cl->file) < 0)
		return -ENOMEM;
	/* Only a BulwarkPolicy is named by its namespace. */
	if (kind == BW_KIND_NAMESPACED && strdup_opt(p ? p->namespace : c->id_namespace, &cl->namespace) < 0)
		return -ENOMEM;
	return 0;
}

static int parse_one(struct ctx *c, struct bw_policy_list *out, struct bw_diags *diags)
{
	struct bw_policy *p = NULL;
	yaml_node_t *root = yaml_document_get_root_node(c->doc);
	const yaml_node_t *meta, *n;
	int r;

	/* An empty document ("---" followed by nothing but comments) is
	 * nothing to load and nothing to complain about. */
	if (is_null(root))
		return 0;

	n = peek_scalar(c, root, "kind");
	c->id_kind = n ? sv(n) : NULL;
	meta = peek_node(c, root, "metadata");
	c->id_name_node = peek_scalar(c, meta, "name");
	c->id_name = c->id_name_node ? sv(c->id_name_node) : NULL;
	/* Only a BulwarkPolicy is named by its namespace: a stray namespace
	 * on another kind must not stop the agent from finding the last good
	 * version of that policy. */
	n = c->id_kind && streq(c->id_kind, "BulwarkPolicy") ? peek_scalar(c, meta, "namespace") : NULL;
	c->id_namespace = n ? sv(n) : NULL;

	r = parse_document(c, root, &p);
	c->visited = mfree(c->visited);
	if (r == -EINVAL) {
		r = diag_add(diags, c->file, c->err_line, c->err_column, c->err_field, c->err_reason, c->id_kind,
			     c->id_name, c->id_namespace, c->doc_index);
		c->err_field = c->err_reason = NULL;
		if (r >= 0 && c->claims)
			r = add_claim(c, NULL);
		return r;
	}
	if (r < 0) {
		c->err_field = mfree(c->err_field);
		c->err_reason = mfree(c->err_reason);
		return r;
	}
	if (!ARRAY_APPEND(out->items, out->n)) {
		bw_policy_free(p);
		return -ENOMEM;
	}
	out->items[out->n - 1] = p;
	return c->claims ? add_claim(c, p) : 0;
}

/* libyaml cannot go on after a syntax error: report it once, with the
 * position of the problem and what libyaml was reading at the time. */
static int syntax_error(const yaml_parser_t *parser, const char *file, const char *buf, size_t len,
			unsigned doc_index, struct bw_diags *diags)
{
	const char *problem = parser->problem ? parser->problem : "unknown error";
	unsigned line, column;
	char *reason;

	if (parser->error == YAML_MEMORY_ERROR)
		return -ENOMEM;

	if (parser->error == YAML_READER_ERROR) {
		/* Encoding errors come with a byte offset, not a mark. */
		size_t off = parser->problem_offset < len ? parser->problem_offset : len;

		line = 1;
		column = 1;
		for (size_t i = 0; i < off; i++) {
			if (buf[i] == '\n') {
				line++;
				column = 1;
			} else
				column++;
		}
		if (parser->problem_value >= 0)
			reason = strprintf("YAML syntax error: %s (byte 0x%02x); this document and the rest of the file are skipped",
					   problem, (unsigned)parser->problem_value);
		else
			reason = strprintf("YAML syntax error: %s; this document and the rest of the file are skipped",
					   problem);
	} else {
		line = (unsigned)parser->problem_mark.line + 1;
		column = (unsigned)parser->problem_mark.column + 1;
		if (parser->context)
			reason = strprintf("YAML syntax error: %s (%s at line %u, column %u); "
					   "this document and the rest of the file are skipped",
					   problem, parser->context, (unsigned)parser->context_mark.line + 1,
					   (unsigned)parser->context_mark.column + 1);
		else
			reason = strprintf("YAML syntax error: %s; this document and the rest of the file are skipped",
					   problem);
	}
	if (!reason)
		return -ENOMEM;
	return diag_add(diags, file, line, column, NULL, reason, NULL, NULL, NULL, doc_index);
}

static int parse_buffer(const char *name, const char *buf, size_t len, struct bw_policy_list *out,
			struct bw_diags *diags, struct claims *claims)
{
	yaml_parser_t parser;
	int r = 0;

	if (!buf)
		buf = "";
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);

	for (unsigned idx = 0;; idx++) {
		yaml_document_t doc;
		struct ctx c = { .file = name, .doc = &doc, .doc_index = idx, .claims = claims };

		if (!yaml_parser_load(&parser, &doc)) {
			r = syntax_error(&parser, name, buf, len, idx, diags);
			break;
		}
		if (!yaml_document_get_root_node(&doc)) { /* end of the stream */
			yaml_document_delete(&doc);
			break;
		}
		r = parse_one(&c, out, diags);
		yaml_document_delete(&doc);
		if (r < 0)
			break;
	}

	yaml_parser_delete(&parser);
	return r;
}

int bw_policy_parse_buffer(const char *name, const char *buf, size_t len, struct bw_policy_list *out,
			   struct bw_diags *diags)
{
	return parse_buffer(name, buf, len, out, diags, NULL);
}

static int read_file(const char *path, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;
	struct stat st;

	/* O_NONBLOCK: opening a FIFO named like a policy must not hang. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EBADFD;
	if (st.st_size > (off_t)MAX_FILE_SIZE)
		return -EFBIG;

	/* The size is a hint only: the file may change while we read it. */
	for (;;) {
		ssize_t n;

		if (ARRAY_RESERVE(buf, cap, len + ((size_t)st.st_size > len ? (size_t)st.st_size - len : 0) + 4096) < 0)
			return -ENOMEM;
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > MAX_FILE_SIZE)
			return -EFBIG;
	}
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

static int read_error_diag(struct bw_diags *diags, const char *path, int err)
{
	switch (err) {
	case -ENOMEM:
		return err;
	case -EFBIG:
		return file_diag(diags, path, "cannot read: the file is larger than %s", "16 MiB");
	case -EBADFD:
		return file_diag(diags, path, "cannot read: %s", "not a regular file");
	default:
		return file_diag(diags, path, "cannot read: %s", strerror(-err));
	}
}

static int parse_file(const char *path, struct bw_policy_list *out, struct bw_diags *diags, struct claims *claims)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r, q;

	r = read_file(path, &buf, &len);
	if (r < 0) {
		q = read_error_diag(diags, path, r);
		return q < 0 && q != r ? q : r;
	}
	return parse_buffer(path, buf, len, out, diags, claims);
}

int bw_policy_parse_file(const char *path, struct bw_policy_list *out, struct bw_diags *diags)
{
	return parse_file(path, out, diags, NULL);
}

/* Policy files are *.yaml and *.yml. Hidden files are skipped: editor swap
 * files (.x.yaml.swp) and the "..data" entries of ConfigMap volumes; backup
 * files (x.yaml~, x.yaml.bak) already fail the suffix test. */
static bool is_policy_file_name(const char *name)
{
	if (name[0] == '.')
		return false;
	return endswith(name, ".yaml") || endswith(name, ".yml");
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Puts the diagnostics of one file in document order (stable, so that the
 * duplicate found after parsing goes among the others). */
static void sort_diags(struct bw_diags *diags, size_t from)
{
	for (size_t i = from + 1; i < diags->n; i++) {
		struct bw_diag d = diags->items[i];
		size_t j = i;

		for (; j > from && diags->items[j - 1].doc_index > d.doc_index; j--)
			diags->items[j] = diags->items[j - 1];
		diags->items[j] = d;
	}
}

static bool same_claim(const struct claim *a, const struct claim *b)
{
	return a->kind == b->kind && streq(a->name, b->name) && streq_ptr(a->namespace, b->namespace);
}

/* Rejects the loaded policies of claims[from..] that an earlier document
 * already claims. A rejected document that is a copy needs nothing more: it
 * has its diagnostic already. */
static int reject_duplicates(struct claims *claims, size_t from, struct bw_policy_list *out, size_t start,
			     struct bw_diags *diags)
{
	for (size_t i = from; i < claims->n; i++) {
		struct claim *cl = &claims->items[i], *first = NULL;
		struct bw_policy *p = cl->policy;
		char q[QUOTE_BUF], *id, *reason;
		int r;

		for (size_t j = 0; j < i && !first; j++)
			if (!claims->items[j].duplicate && same_claim(&claims->items[j], cl))
				first = &claims->items[j];
		if (!first)
			continue;
		cl->duplicate = true;
		if (!p)
			continue;

		id = p->namespace ? strprintf("%s/%s", p->namespace, p->name) : strdup(p->name);
		if (!id)
			return -ENOMEM;
		reason = strprintf("duplicate %s %s; it is first defined at %s:%u%s", bw_policy_kind_name(p->kind),
				   quote(q, id, strlen(id)), first->file, first->line,
				   first->policy ? "" : ", which is rejected");
		free(id);
		r = diag_add(diags, p->file, p->name_pos.line, p->name_pos.column, strdup("metadata.name"), reason,
			     bw_policy_kind_name(p->kind), p->name, p->namespace, p->doc_index);
		/* bw_diag_format() copes with a NULL field if strdup failed;
		 * a NULL reason means we are out of memory. */
		if (r >= 0 && !reason)
			r = -ENOMEM;

		for (size_t k = start; k < out->n; k++)
			if (out->items[k] == p) {
				memmove(out->items + k, out->items + k + 1, (out->n - k - 1) * sizeof(*out->items));
				out->n--;
				break;
			}
		bw_policy_free(p);
		cl->policy = NULL;
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- the parse cache ----------------------------------------------------- */

struct cached_file {
	char *path;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	struct bw_policy **pols; /* a reference each */
	size_t n_pols;
	struct bw_diags diags;
	struct claims claims;    /* policy pointers are into pols */
	bool seen;               /* by the load in progress */
	/* Changed within the racy window when stored: its stat cannot vouch
	 * for it, its bytes are read and compared (by hash) instead. */
	bool racy;
	uint64_t hash;
};

struct bw_parse_cache {
	struct cached_file *files;
	size_t n;
	size_t parsed, reused; /* by the last load */
	long racy_s;           /* files changed this recently are not remembered */
};

struct bw_parse_cache *bw_parse_cache_new(void)
{
	struct bw_parse_cache *c = calloc(1, sizeof(struct bw_parse_cache));

	if (c)
		c->racy_s = 1;
	return c;
}

void bw_parse_cache_set_racy_window(struct bw_parse_cache *c, long seconds)
{
	c->racy_s = seconds;
}

static void cached_file_done(struct cached_file *f)
{
	free(f->path);
	for (size_t i = 0; i < f->n_pols; i++)
		bw_policy_free(f->pols[i]);
	free(f->pols);
	bw_diags_clear(&f->diags);
	claims_clear(&f->claims);
	memset(f, 0, sizeof(*f));
}

void bw_parse_cache_free(struct bw_parse_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		cached_file_done(&c->files[i]);
	free(c->files);
	free(c);
}

void bw_parse_cache_counts(const struct bw_parse_cache *c, size_t *parsed, size_t *reused)
{
	*parsed = c ? c->parsed : 0;
	*reused = c ? c->reused : 0;
}

static struct cached_file *cache_find(struct bw_parse_cache *c, const char *path)
{
	for (size_t i = 0; c && i < c->n; i++)
		if (streq(c->files[i].path, path))
			return &c->files[i];
	return NULL;
}

static bool ts_eq(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static bool cache_fresh(const struct cached_file *f, const struct stat *st)
{
	return !f->racy && f->dev == st->st_dev && f->ino == st->st_ino && f->size == st->st_size &&
	       ts_eq(&f->mtime, &st->st_mtim) && ts_eq(&f->ctime, &st->st_ctim);
}

/* Changed within the last second: a write in the same timestamp tick
 * after this read would leave the stat as it is. */
static bool racy(const struct bw_parse_cache *c, const struct stat *st)
{
	struct timespec now;

	if (!c->racy_s)
		return false;
	clock_gettime(CLOCK_REALTIME, &now);
	return st->st_mtim.tv_sec >= now.tv_sec - c->racy_s || st->st_ctim.tv_sec >= now.tv_sec - c->racy_s;
}

static int diag_copy(struct bw_diags *to, const struct bw_diag *d)
{
	return diag_add(to, d->file, d->line, d->column, d->field ? strdup(d->field) : NULL,
			d->reason ? strdup(d->reason) : NULL, d->kind, d->name, d->namespace, d->doc_index);
}

static int claim_copy(struct claims *to, const struct claim *cl, struct bw_policy *p)
{
	struct claim *n = ARRAY_APPEND(to->items, to->n);

	if (!n)
		return -ENOMEM;
	n->kind = cl->kind;
	n->line = cl->line;
	n->policy = p;
	n->duplicate = false;
	if (strdup_opt(cl->namespace, &n->namespace) < 0 || strdup_opt(cl->name, &n->name) < 0 ||
	    strdup_opt(cl->file, &n->file) < 0)
		return -ENOMEM;
	return 0;
}

/* The policy in to that stands for p in from (same index), or NULL. */
static struct bw_policy *map_policy(struct bw_policy *p, struct bw_policy *const *from, struct bw_policy *const *to,
				    size_t n)
{
	for (size_t i = 0; p && i < n; i++)
		if (from[i] == p)
			return to[i];
	return NULL;
}

static void cache_drop(struct bw_parse_cache *c, struct cached_file *f)
{
	cached_file_done(f);
	*f = c->files[--c->n];
}

/* FNV-1a, 64 bits: tells a racy file's bytes from what was parsed. */
static uint64_t content_hash(const char *buf, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)buf[i]) * 0x100000001b3ULL;
	return h;
}

/* Remembers what parsing path gave: out[o..], diags[d..], claims[c..]. */
static int cache_store(struct bw_parse_cache *c, const char *path, const struct stat *st, bool is_racy, uint64_t hash,
		       const struct bw_policy_list *out, size_t o, const struct bw_diags *diags, size_t d,
		       const struct claims *claims, size_t k)
{
	struct cached_file *f = ARRAY_APPEND(c->files, c->n);

	if (!f)
		return -ENOMEM;
	f->seen = true;
	f->racy = is_racy;
	f->hash = hash;
	f->dev = st->st_dev;
	f->ino = st->st_ino;
	f->size = st->st_size;
	f->mtime = st->st_mtim;
	f->ctime = st->st_ctim;
	f->pols = calloc(out->n - o + 1, sizeof(*f->pols));
	if (!(f->path = strdup(path)) || !f->pols)
		goto nomem;
	for (size_t i = o; i < out->n; i++)
		f->pols[f->n_pols++] = bw_policy_ref(out->items[i]);
	for (size_t i = d; i < diags->n; i++)
		if (diag_copy(&f->diags, &diags->items[i]) < 0)
			goto nomem;
	for (size_t i = k; i < claims->n; i++)
		if (claim_copy(&f->claims, &claims->items[i], claims->items[i].policy) < 0)
			goto nomem;
	return 0;
nomem:
	cache_drop(c, f); /* never half an entry */
	return -ENOMEM;
}

/* Appends what path gave when it was parsed, as parsing it again would. */
static int cache_replay(struct cached_file *f, struct bw_policy_list *out, struct bw_diags *diags,
			struct claims *claims)
{
	for (size_t i = 0; i < f->n_pols; i++) {
		struct bw_policy **slot = ARRAY_APPEND(out->items, out->n);

		if (!slot)
			return -ENOMEM;
		*slot = bw_policy_ref(f->pols[i]);
	}
	for (size_t i = 0; i < f->diags.n; i++)
		if (diag_copy(diags, &f->diags.items[i]) < 0)
			return -ENOMEM;
	for (size_t i = 0; i < f->claims.n; i++)
		if (claim_copy(claims, &f->claims.items[i],
			       map_policy(f->claims.items[i].policy, f->pols, f->pols, f->n_pols)) < 0)
			return -ENOMEM;
	return 0;
}

/* Drops the entries of files the load did not see (deleted, renamed). */
static void cache_sweep(struct bw_parse_cache *c)
{
	size_t keep = 0;

	for (size_t i = 0; i < c->n; i++) {
		if (c->files[i].seen) {
			c->files[i].seen = false;
			c->files[keep++] = c->files[i];
		} else {
			cached_file_done(&c->files[i]);
		}
	}
	c->n = keep;
}

int bw_policy_load_dir(const char *dir, struct bw_policy_list *out, struct bw_diags *diags)
{
	return bw_policy_load_dir_cached(dir, NULL, out, diags);
}

int bw_policy_load_dir_cached(const char *dir, struct bw_parse_cache *cache, struct bw_policy_list *out,
			      struct bw_diags *diags)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct claims claims = { 0 };
	char **names = NULL;
	size_t n_names = 0, cap = 0, start = out->n;
	struct dirent *de;
	int r = 0;

	d = opendir(dir);
	if (!d) {
		r = -errno;
		if (file_diag(diags, dir, "cannot open directory: %s", strerror(-r)) < 0)
			return -ENOMEM;
		return r;
	}
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno) {
				r = -errno;
				if (file_diag(diags, dir, "cannot read directory: %s", strerror(-r)) < 0)
					r = -ENOMEM;
				goto out;
			}
			break;
		}
		if (!is_policy_file_name(de->d_name))
			continue;
		if (ARRAY_RESERVE(names, cap, n_names + 1) < 0) {
			r = -ENOMEM;
			goto out;
		}
		names[n_names] = strdup(de->d_name);
		if (!names[n_names]) {
			r = -ENOMEM;
			goto out;
		}
		n_names++;
	}
	if (n_names > 0)
		qsort(names, n_names, sizeof(*names), name_cmp);
	if (cache) {
		cache->parsed = cache->reused = 0;
		for (size_t i = 0; i < cache->n; i++)
			cache->files[i].seen = false;
	}

	for (size_t i = 0; i < n_names; i++) {
		_cleanup_free_ char *path = NULL;
		size_t first_claim = claims.n, first_diag = diags->n;
		struct cached_file *cached;
		struct stat st;

		path = strprintf("%s%s%s", dir, endswith(dir, "/") ? "" : "/", names[i]);
		if (!path) {
			r = -ENOMEM;
			goto out;
		}
		/* Follow symlinks: ConfigMap volumes are links into "..data". */
		if (fstatat(dirfd(d), names[i], &st, 0) < 0) {
			r = read_error_diag(diags, path, -errno);
			if (r < 0)
				goto out;
			continue;
		}
		if (!S_ISREG(st.st_mode))
			continue;

		cached = cache_find(cache, path);
		if (cached && cache_fresh(cached, &st)) {
			cached->seen = true;
			cache->reused++;
			r = cache_replay(cached, out, diags, &claims);
		} else if (!cache) {
			r = parse_file(path, out, diags, &claims);
		} else {
			_cleanup_free_ char *buf = NULL;
			size_t len = 0, o = out->n;
			uint64_t hash;

			r = read_file(path, &buf, &len);
			if (r < 0) {
				if (cached)
					cache_drop(cache, cached);
				if (read_error_diag(diags, path, r) == -ENOMEM || r == -ENOMEM) {
					r = -ENOMEM;
					goto out;
				}
			} else if (hash = content_hash(buf, len), cached && cached->racy && cached->hash == hash) {
				/* Written lately, but the same bytes as parsed. */
				cached->seen = true;
				cached->racy = racy(cache, &st);
				cached->dev = st.st_dev;
				cached->ino = st.st_ino;
				cached->size = st.st_size;
				cached->mtime = st.st_mtim;
				cached->ctime = st.st_ctim;
				cache->reused++;
				r = cache_replay(cached, out, diags, &claims);
			} else {
				if (cached)
					cache_drop(cache, cached);
				r = parse_buffer(path, buf, len, out, diags, &claims);
				cache->parsed++;
				if (r != -ENOMEM)
					r = cache_store(cache, path, &st, racy(cache, &st), hash, out, o, diags, first_diag,
							&claims, first_claim) ?: r;
			}
		}
		if (r == -ENOMEM)
			goto out;
		/* Any other failure to read is in diags; go on with the rest. */
		r = reject_duplicates(&claims, first_claim, out, start, diags);
		if (r < 0)
			goto out;
		sort_diags(diags, first_diag);
	}
	r = 0;
	if (cache)
		cache_sweep(cache);
out:
	claims_clear(&claims);
	strv_free(names, n_names);
	return r;
}
