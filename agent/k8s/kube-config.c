/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kubeconfig (YAML, read with libyaml's document loader) and in-cluster
 * configuration. See kube-config.h.
 *
 * Kubernetes reads a kubeconfig with sigs.k8s.io/yaml (YAML 1.1 through
 * go-yaml v2, then JSON): every field read here is a string except
 * insecure-skip-tls-verify, a boolean. A null or empty value is absent, as
 * in Kubernetes. A list entry without a name, or two entries with the same
 * name, is an error, as in client-go.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "http-client.h"
#include "kube-config.h"
#include "util.h"

/* ---- base64 ---- */

static int b64_value(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

int bw_base64_decode(const char *in, size_t len, unsigned char **out, size_t *out_len)
{
	_cleanup_free_ unsigned char *buf = NULL;
	uint32_t acc = 0;
	size_t n = 0, quantum = 0, pad = 0;

	buf = malloc(len / 4 * 3 + 4);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];
		int v;

		if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n')
			continue;
		if (ch == '=') {
			/* Only at the end of the last quantum, which must then
			 * have 2 or 3 characters. */
			if (quantum < 2 || quantum + pad >= 4)
				return -EINVAL;
			pad++;
			continue;
		}
		if (pad)
			return -EINVAL; /* data after padding */
		v = b64_value(ch);
		if (v < 0)
			return -EINVAL;
		acc = acc << 6 | (uint32_t)v;
		if (++quantum == 4) {
			buf[n++] = (unsigned char)(acc >> 16);
			buf[n++] = (unsigned char)(acc >> 8);
			buf[n++] = (unsigned char)acc;
			acc = 0;
			quantum = 0;
		}
	}
	if (pad && quantum + pad != 4)
		return -EINVAL;
	if (quantum == 1)
		return -EINVAL;
	if (quantum == 2) {
		buf[n++] = (unsigned char)(acc >> 4);
	} else if (quantum == 3) {
		buf[n++] = (unsigned char)(acc >> 10);
		buf[n++] = (unsigned char)(acc >> 2);
	}
	buf[n] = '\0';
	*out = TAKE_PTR(buf);
	*out_len = n;
	return 0;
}

/* ---- config struct ---- */

void bw_kube_config_clear(struct bw_kube_config *c)
{
	free_secret(c->token);
	free_secret(c->client_key_data);
	free(c->server);
	free(c->ca_file);
	free(c->ca_data);
	free(c->token_file);
	free(c->client_cert_file);
	free(c->client_key_file);
	free(c->client_cert_data);
	free(c->proxy_url);
	free(c->namespace);
	free(c->source);
	memset(c, 0, sizeof(*c));
}

static int dup_field(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

int bw_kube_config_copy(struct bw_kube_config *dst, const struct bw_kube_config *src)
{
	struct bw_kube_config n = { .insecure_skip_tls_verify = src->insecure_skip_tls_verify };

	if (dup_field(&n.server, src->server) < 0 || dup_field(&n.ca_file, src->ca_file) < 0 ||
	    dup_field(&n.ca_data, src->ca_data) < 0 || dup_field(&n.token, src->token) < 0 ||
	    dup_field(&n.token_file, src->token_file) < 0 ||
	    dup_field(&n.client_cert_file, src->client_cert_file) < 0 ||
	    dup_field(&n.client_key_file, src->client_key_file) < 0 ||
	    dup_field(&n.client_cert_data, src->client_cert_data) < 0 ||
	    dup_field(&n.client_key_data, src->client_key_data) < 0 ||
	    dup_field(&n.proxy_url, src->proxy_url) < 0 || dup_field(&n.namespace, src->namespace) < 0 ||
	    dup_field(&n.source, src->source) < 0) {
		bw_kube_config_clear(&n);
		return -ENOMEM;
	}
	*dst = n;
	return 0;
}

/* ---- files ---- */

/* Reads a whole file of at most max bytes, NUL-terminated. */
static int read_file(const char *path, size_t max, char **out, size_t *out_len)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t n = 0, cap = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t r;

		if (ARRAY_RESERVE(buf, cap, n + 4096 + 1) < 0)
			return -ENOMEM;
		r = read(fd, buf + n, cap - n - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max)
			return -EFBIG;
	}
	if (!buf && !(buf = malloc(1)))
		return -ENOMEM;
	buf[n] = '\0';
	*out = TAKE_PTR(buf);
	if (out_len)
		*out_len = n;
	return 0;
}

/* Removes leading and trailing whitespace in place; returns s. */
static char *strip(char *s)
{
	size_t l = strlen(s), i = 0;

	while (l > 0 && strchr(" \t\r\n", s[l - 1]))
		s[--l] = '\0';
	while (s[i] && strchr(" \t\r\n", s[i]))
		i++;
	if (i)
		memmove(s, s + i, l - i + 1);
	return s;
}

char *bw_kube_config_token(const struct bw_kube_config *c)
{
	int err = ENOENT;

	if (c->token_file) {
		char *t = NULL;
		size_t len;
		int r = read_file(c->token_file, BW_KUBE_TOKEN_MAX, &t, &len);

		if (r == 0) {
			/* An embedded NUL just ends the token. */
			strip(t);
			err = t[0] ? 0 : ENOENT;
			for (const char *p = t; *p; p++)
				if ((unsigned char)*p < 0x20 || *p == 0x7f)
					err = EINVAL;
			if (err == 0)
				return t;
			explicit_bzero(t, len);
			free(t);
		} else {
			err = -r;
		}
	}
	if (c->token && c->token[0]) {
		for (const char *p = c->token; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f) {
				errno = EINVAL;
				return NULL;
			}
		return strdup(c->token);
	}
	errno = err;
	return NULL;
}

/* ---- kubeconfig ---- */

struct kc {
	const char *path;
	char *dir; /* absolute directory of path */
	yaml_document_t doc;
	char *error;
	int err;
};

static _printf_(4, 5) int kc_fail(struct kc *k, const yaml_node_t *n, int err, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;

	if (k->error) /* keep the first */
		return k->err;
	va_start(ap, fmt);
	msg = strvprintf(fmt, ap);
	va_end(ap);
	if (n)
		k->error = strprintf("%s:%zu:%zu: %s", k->path, n->start_mark.line + 1,
				     n->start_mark.column + 1, msg ? msg : "out of memory");
	else
		k->error = strprintf("%s: %s", k->path, msg ? msg : "out of memory");
	k->err = err;
	return err;
}

static yaml_node_t *node(struct kc *k, int index)
{
	return yaml_document_get_node(&k->doc, index);
}

static bool is_null(const yaml_node_t *n)
{
	const char *v;

	if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = (const char *)n->data.scalar.value;
	return !v[0] || streq(v, "~") || streq(v, "null") || streq(v, "Null") || streq(v, "NULL");
}

/* The value of key in mapping m, or NULL (also for a null value). */
static yaml_node_t *map_get(struct kc *k, yaml_node_t *m, const char *key)
{
	if (!m || m->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = node(k, p->key);

		if (kn && kn->type == YAML_SCALAR_NODE && streq((const char *)kn->data.scalar.value, key)) {
			yaml_node_t *v = node(k, p->value);

			return is_null(v) ? NULL : v;
		}
	}
	return NULL;
}

/* A string field: 0 with *out NULL when absent, -EINVAL when not a scalar. */
static int get_str(struct kc *k, yaml_node_t *m, const char *key, const char *field, const char **out)
{
	yaml_node_t *v = map_get(k, m, key);

	*out = NULL;
	if (!v)
		return 0;
	if (v->type != YAML_SCALAR_NODE)
		return kc_fail(k, v, -EINVAL, "%s%s%s: expected a string", field, field[0] ? "." : "", key);
	if (strlen((const char *)v->data.scalar.value) != v->data.scalar.length)
		return kc_fail(k, v, -EINVAL, "%s%s%s: contains a NUL character", field, field[0] ? "." : "", key);
	*out = (const char *)v->data.scalar.value;
	return 0;
}

static int get_bool(struct kc *k, yaml_node_t *m, const char *key, const char *field, bool *out)
{
	static const char *const yes[] = { "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON" };
	static const char *const no[] = { "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF" };
	yaml_node_t *v = map_get(k, m, key);
	const char *s;

	*out = false;
	if (!v)
		return 0;
	if (v->type == YAML_SCALAR_NODE && v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		s = (const char *)v->data.scalar.value;
		for (size_t i = 0; i < ELEMENTSOF(yes); i++)
			if (streq(s, yes[i])) {
				*out = true;
				return 0;
			}
		for (size_t i = 0; i < ELEMENTSOF(no); i++)
			if (streq(s, no[i]))
				return 0;
	}
	return kc_fail(k, v, -EINVAL, "%s.%s: expected true or false", field, key);
}

/* Finds the entry named name in the list under key ("clusters", "users",
 * "contexts"): *found, its position in *index (for messages) and its inner
 * mapping (under inner: "cluster", ...) in *out, NULL when it has none.
 * Checks the whole list: entries must be mappings with a unique name. */
static int find_named(struct kc *k, yaml_node_t *root, const char *key, const char *inner,
		      const char *name, yaml_node_t **out, size_t *index, bool *found)
{
	yaml_node_t *list = map_get(k, root, key);
	size_t i = 0;

	*out = NULL;
	*index = 0;
	*found = false;
	if (!list)
		return 0;
	if (list->type != YAML_SEQUENCE_NODE)
		return kc_fail(k, list, -EINVAL, "%s: expected a list", key);
	for (yaml_node_item_t *it = list->data.sequence.items.start; it < list->data.sequence.items.top; it++, i++) {
		yaml_node_t *e = node(k, *it), *in;
		const char *n;
		_cleanup_free_ char *field = strprintf("%s[%zu]", key, i);

		if (!field)
			return kc_fail(k, NULL, -ENOMEM, "out of memory");
		if (!e || e->type != YAML_MAPPING_NODE)
			return kc_fail(k, e, -EINVAL, "%s: expected a mapping", field);
		if (get_str(k, e, "name", field, &n) < 0)
			return k->err;
		if (!n || !n[0])
			return kc_fail(k, e, -EINVAL, "%s.name: missing", field);
		for (yaml_node_item_t *jt = list->data.sequence.items.start; jt < it; jt++) {
			yaml_node_t *nj = map_get(k, node(k, *jt), "name");

			if (nj && nj->type == YAML_SCALAR_NODE && streq((const char *)nj->data.scalar.value, n))
				return kc_fail(k, e, -EINVAL, "%s.name: duplicate name \"%s\"", field, n);
		}
		if (!streq(n, name) || *found)
			continue;
		in = map_get(k, e, inner);
		if (in && in->type != YAML_MAPPING_NODE)
			return kc_fail(k, in, -EINVAL, "%s.%s: expected a mapping", field, inner);
		*out = in;
		*index = i;
		*found = true;
	}
	return 0;
}

/* An absolute path for a file named in the kubeconfig, checked readable. */
static int resolve_file(struct kc *k, yaml_node_t *m, const char *key, const char *field, char **out)
{
	yaml_node_t *v = map_get(k, m, key);
	const char *s;
	_cleanup_free_ char *abs = NULL;

	*out = NULL;
	if (get_str(k, m, key, field, &s) < 0)
		return k->err;
	if (!s)
		return 0;
	abs = s[0] == '/' ? strdup(s) : strprintf("%s/%s", k->dir, s);
	if (!abs)
		return kc_fail(k, NULL, -ENOMEM, "out of memory");
	if (access(abs, R_OK) < 0)
		return kc_fail(k, v, -errno, "%s.%s: %s: %s", field, key, abs, strerror(errno));
	*out = TAKE_PTR(abs);
	return 0;
}

/* PEM text from a base64 field. what: "certificate" or "key", for messages. */
static int decode_pem(struct kc *k, yaml_node_t *m, const char *key, const char *field, char **out)
{
	yaml_node_t *v = map_get(k, m, key);
	const char *s;
	_cleanup_free_ unsigned char *buf = NULL;
	size_t len;
	int r;

	*out = NULL;
	if (get_str(k, m, key, field, &s) < 0)
		return k->err;
	if (!s)
		return 0;
	r = bw_base64_decode(s, strlen(s), &buf, &len);
	if (r == -ENOMEM)
		return kc_fail(k, NULL, r, "out of memory");
	if (r < 0)
		return kc_fail(k, v, -EINVAL, "%s.%s: invalid base64", field, key);
	if (strlen((char *)buf) != len || !strstr((char *)buf, "-----BEGIN "))
		return kc_fail(k, v, -EINVAL, "%s.%s: not PEM data", field, key);
	*out = (char *)TAKE_PTR(buf);
	return 0;
}

static int set_str(struct kc *k, char **dst, const char *s)
{
	if (!s)
		return 0;
	*dst = strdup(s);
	return *dst ? 0 : kc_fail(k, NULL, -ENOMEM, "out of memory");
}

static int kc_dir(struct kc *k)
{
	_cleanup_free_ char *abs = NULL;
	char *slash;

	if (k->path[0] == '/') {
		abs = strdup(k->path);
	} else {
		char cwd[PATH_MAX];

		if (!getcwd(cwd, sizeof(cwd)))
			return kc_fail(k, NULL, -errno, "cannot resolve relative paths: getcwd: %s", strerror(errno));
		abs = strprintf("%s/%s", streq(cwd, "/") ? "" : cwd, k->path);
	}
	if (!abs)
		return kc_fail(k, NULL, -ENOMEM, "out of memory");
	slash = strrchr(abs, '/');
	if (slash == abs)
		slash[1] = '\0';
	else
		*slash = '\0';
	k->dir = TAKE_PTR(abs);
	return 0;
}

static int kc_load(struct kc *k, const char *context, struct bw_kube_config *c)
{
	yaml_node_t *root = yaml_document_get_root_node(&k->doc), *ctx, *cluster, *user, *v;
	const char *ctx_name = context, *cluster_name, *user_name, *s, *why = NULL;
	size_t ci, cli, ui;
	bool found;
	_cleanup_free_ char *cf = NULL, *clf = NULL, *uf = NULL;

	if (!root || is_null(root))
		return kc_fail(k, NULL, -EINVAL, "empty kubeconfig");
	if (root->type != YAML_MAPPING_NODE)
		return kc_fail(k, root, -EINVAL, "expected a mapping at the top");
	if (kc_dir(k) < 0)
		return k->err;
	/* Check every list once, whatever the context uses ("" matches no
	 * entry: names must not be empty). */
	if (find_named(k, root, "contexts", "context", "", &ctx, &ci, &found) < 0 ||
	    find_named(k, root, "clusters", "cluster", "", &cluster, &cli, &found) < 0 ||
	    find_named(k, root, "users", "user", "", &user, &ui, &found) < 0)
		return k->err;

	if (!ctx_name) {
		if (get_str(k, root, "current-context", "", &ctx_name) < 0)
			return k->err;
		if (!ctx_name || !ctx_name[0])
			return kc_fail(k, NULL, -ENOENT, "current-context: not set, and no context was given");
	}
	if (find_named(k, root, "contexts", "context", ctx_name, &ctx, &ci, &found) < 0)
		return k->err;
	if (!found)
		return kc_fail(k, map_get(k, root, context ? "contexts" : "current-context"), -ENOENT,
			       "%s: no context named \"%s\"", context ? "contexts" : "current-context", ctx_name);
	cf = strprintf("contexts[%zu].context", ci);
	if (!cf)
		return kc_fail(k, NULL, -ENOMEM, "out of memory");
	if (get_str(k, ctx, "cluster", cf, &cluster_name) < 0 || get_str(k, ctx, "user", cf, &user_name) < 0 ||
	    get_str(k, ctx, "namespace", cf, &s) < 0 || set_str(k, &c->namespace, s) < 0)
		return k->err;
	if (!cluster_name || !cluster_name[0])
		return kc_fail(k, ctx, -EINVAL, "%s.cluster: missing", cf);

	if (find_named(k, root, "clusters", "cluster", cluster_name, &cluster, &cli, &found) < 0)
		return k->err;
	if (!found)
		return kc_fail(k, map_get(k, ctx, "cluster"), -ENOENT, "%s.cluster: no cluster named \"%s\"", cf,
			       cluster_name);
	clf = strprintf("clusters[%zu].cluster", cli);
	if (!clf)
		return kc_fail(k, NULL, -ENOMEM, "out of memory");
	if (get_str(k, cluster, "server", clf, &s) < 0)
		return k->err;
	if (!s || !s[0])
		return kc_fail(k, cluster, -EINVAL, "%s.server: missing", clf);
	if (bw_http_url_check(s, false, &why) < 0)
		return kc_fail(k, map_get(k, cluster, "server"), -EINVAL, "%s.server: \"%s\": %s", clf, s, why);
	if (set_str(k, &c->server, s) < 0)
		return k->err;
	for (size_t l = strlen(c->server); l > 0 && c->server[l - 1] == '/'; l--)
		c->server[l - 1] = '\0';
	if (resolve_file(k, cluster, "certificate-authority", clf, &c->ca_file) < 0 ||
	    decode_pem(k, cluster, "certificate-authority-data", clf, &c->ca_data) < 0 ||
	    get_bool(k, cluster, "insecure-skip-tls-verify", clf, &c->insecure_skip_tls_verify) < 0 ||
	    get_str(k, cluster, "proxy-url", clf, &s) < 0)
		return k->err;
	if (s && bw_http_url_check(s, true, &why) < 0)
		return kc_fail(k, map_get(k, cluster, "proxy-url"), -EINVAL, "%s.proxy-url: \"%s\": %s", clf, s, why);
	if (set_str(k, &c->proxy_url, s) < 0)
		return k->err;
	if (c->insecure_skip_tls_verify && (c->ca_file || c->ca_data))
		return kc_fail(k, map_get(k, cluster, "insecure-skip-tls-verify"), -EINVAL,
			       "%s.insecure-skip-tls-verify: not allowed with a certificate authority", clf);
	if ((v = map_get(k, cluster, "tls-server-name")))
		return kc_fail(k, v, -EINVAL, "%s.tls-server-name: not supported", clf);

	if (user_name && user_name[0]) {
		static const char *const unsupported[] = { "username", "password", "as", "as-groups",
							   "as-uid", "as-user-extra" };
		bool has_cert, has_key;

		if (find_named(k, root, "users", "user", user_name, &user, &ui, &found) < 0)
			return k->err;
		if (!found)
			return kc_fail(k, map_get(k, ctx, "user"), -ENOENT, "%s.user: no user named \"%s\"", cf,
				       user_name);
		uf = strprintf("users[%zu].user", ui);
		if (!uf)
			return kc_fail(k, NULL, -ENOMEM, "out of memory");
		if (get_str(k, user, "token", uf, &s) < 0 || set_str(k, &c->token, s) < 0 ||
		    resolve_file(k, user, "tokenFile", uf, &c->token_file) < 0 ||
		    resolve_file(k, user, "client-certificate", uf, &c->client_cert_file) < 0 ||
		    resolve_file(k, user, "client-key", uf, &c->client_key_file) < 0 ||
		    decode_pem(k, user, "client-certificate-data", uf, &c->client_cert_data) < 0 ||
		    decode_pem(k, user, "client-key-data", uf, &c->client_key_data) < 0)
			return k->err;
		for (size_t i = 0; i < ELEMENTSOF(unsupported); i++)
			if ((v = map_get(k, user, unsupported[i])))
				return kc_fail(k, v, -EINVAL, "%s.%s: not supported", uf, unsupported[i]);
		has_cert = c->client_cert_file || c->client_cert_data;
		has_key = c->client_key_file || c->client_key_data;
		if (has_cert != has_key)
			return kc_fail(k, user, -EINVAL, "%s: %s", uf,
				       has_cert ? "a client certificate without a client key"
						: "a client key without a client certificate");
		if (!has_cert && !c->token && !c->token_file) {
			if ((v = map_get(k, user, "exec")))
				return kc_fail(k, v, -EINVAL,
					       "%s.exec: not supported (use token, tokenFile or a client certificate)", uf);
			if ((v = map_get(k, user, "auth-provider")))
				return kc_fail(k, v, -EINVAL,
					       "%s.auth-provider: not supported (use token, tokenFile or a client certificate)",
					       uf);
		}
	}
	c->source = strprintf("kubeconfig %s (context %s)", k->path, ctx_name);
	if (!c->source)
		return kc_fail(k, NULL, -ENOMEM, "out of memory");
	return 0;
}

int bw_kube_config_load_kubeconfig_buffer(const char *path, const char *buf, size_t len,
					  const char *context, struct bw_kube_config *c, char **error)
{
	struct kc k = { .path = path };
	struct bw_kube_config n = {};
	yaml_parser_t parser;
	bool have_doc = false;
	int r;

	if (error)
		*error = NULL;
	if (!yaml_parser_initialize(&parser)) {
		r = -ENOMEM;
		kc_fail(&k, NULL, r, "out of memory");
		goto out;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &k.doc)) {
		r = -EINVAL;
		if (parser.error == YAML_MEMORY_ERROR)
			r = kc_fail(&k, NULL, -ENOMEM, "out of memory");
		else
			k.error = strprintf("%s:%zu:%zu: invalid YAML: %s", path, parser.problem_mark.line + 1,
					    parser.problem_mark.column + 1,
					    parser.problem ? parser.problem : "syntax error");
		yaml_parser_delete(&parser);
		goto out;
	}
	have_doc = true;
	yaml_parser_delete(&parser);
	r = kc_load(&k, context, &n);
	if (r == 0) {
		bw_kube_config_clear(c);
		*c = n;
		memset(&n, 0, sizeof(n));
	}
out:
	bw_kube_config_clear(&n);
	if (have_doc)
		yaml_document_delete(&k.doc);
	free(k.dir);
	if (error)
		*error = k.error;
	else
		free(k.error);
	return r;
}

int bw_kube_config_load_kubeconfig(const char *path, const char *context, struct bw_kube_config *c,
				   char **error)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r;

	if (error)
		*error = NULL;
	r = read_file(path, BW_KUBECONFIG_MAX, &buf, &len);
	if (r < 0) {
		if (error)
			*error = strprintf("%s: %s", path,
					   r == -EFBIG ? "larger than 16 MiB" : strerror(-r));
		return r;
	}
	return bw_kube_config_load_kubeconfig_buffer(path, buf, len, context, c, error);
}

/* ---- in-cluster ---- */

static _printf_(3, 4) int fail(char **error, int err, const char *fmt, ...)
{
	va_list ap;

	if (error) {
		va_start(ap, fmt);
		*error = strvprintf(fmt, ap);
		va_end(ap);
	}
	return err;
}

int bw_kube_config_in_cluster(struct bw_kube_config *c, char **error)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
	const char *dir = getenv(BW_KUBE_SA_DIR_ENV);
	struct bw_kube_config n = {};
	_cleanup_free_ char *tok = NULL, *ns = NULL;
	char *end;
	unsigned long p;
	int r;

	if (error)
		*error = NULL;
	if (!host || !host[0] || !port || !port[0])
		return fail(error, -ENOENT,
			    "not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set");
	errno = 0;
	p = strtoul(port, &end, 10);
	if (errno || *end || p == 0 || p > 65535 || !(port[0] >= '0' && port[0] <= '9'))
		return fail(error, -EINVAL, "KUBERNETES_SERVICE_PORT: \"%s\" is not a port number", port);
	if (strpbrk(host, "/?#@ \t\r\n"))
		return fail(error, -EINVAL, "KUBERNETES_SERVICE_HOST: \"%s\" is not a host name or address", host);
	if (!dir || !dir[0])
		dir = BW_KUBE_SA_DIR;

	if (host[0] != '[' && strchr(host, ':'))
		n.server = strprintf("https://[%s]:%lu", host, p);
	else
		n.server = strprintf("https://%s:%lu", host, p);
	n.token_file = strprintf("%s/token", dir);
	n.ca_file = strprintf("%s/ca.crt", dir);
	n.source = strdup("in-cluster");
	ns = strprintf("%s/namespace", dir);
	if (!n.server || !n.token_file || !n.ca_file || !n.source || !ns) {
		bw_kube_config_clear(&n);
		return fail(error, -ENOMEM, "out of memory");
	}
	r = read_file(n.token_file, BW_KUBE_TOKEN_MAX, &tok, NULL);
	if (r < 0) {
		r = fail(error, r, "%s: %s", n.token_file, r == -EFBIG ? "larger than 64 KiB" : strerror(-r));
		bw_kube_config_clear(&n);
		return r;
	}
	explicit_bzero(tok, strlen(tok));
	if (access(n.ca_file, R_OK) < 0) {
		r = fail(error, -errno, "%s: %s", n.ca_file, strerror(errno));
		bw_kube_config_clear(&n);
		return r;
	}
	{
		char *nsv = NULL;

		if (read_file(ns, 4096, &nsv, NULL) == 0) {
			strip(nsv);
			if (nsv[0])
				n.namespace = nsv;
			else
				free(nsv);
		}
	}
	bw_kube_config_clear(c);
	*c = n;
	return 0;
}
