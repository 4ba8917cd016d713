/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for agent/k8s/kube-config.c: base64, kubeconfig parsing
 * (contexts, tokens, token files, certificate data, relative paths, error
 * messages) and in-cluster configuration (BULWARK_SA_DIR, IPv6).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bw-test.h"
#include "k8s/kube-config.h"

#define STREQ(a, b) ((a) && (b) && strcmp((a), (b)) == 0)

static char dir[] = "/tmp/bw-kube-config-XXXXXX";

static char *path_in(const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static void write_file(const char *name, const char *content)
{
	char *p = path_in(name);
	FILE *f = fopen(p, "w");

	if (!f) {
		perror(p);
		exit(2);
	}
	fputs(content, f);
	fclose(f);
	free(p);
}

/* ---- base64 ---- */

static bool b64_is(const char *in, const char *want, size_t want_len)
{
	unsigned char *out = NULL;
	size_t len = 99;
	int r = bw_base64_decode(in, strlen(in), &out, &len);
	bool ok = r == 0 && len == want_len && memcmp(out, want, len) == 0 && out[len] == '\0';

	if (!ok)
		fprintf(stderr, "base64 \"%s\": r=%d len=%zu\n", in, r, len);
	free(out);
	return ok;
}

static int b64_err(const char *in)
{
	unsigned char *out = (unsigned char *)"untouched";
	size_t len = 7;
	int r = bw_base64_decode(in, strlen(in), &out, &len);

	if (r == 0)
		free(out);
	else if (len != 7 || strcmp((char *)out, "untouched") != 0)
		return 1; /* outputs written on failure */
	return r;
}

static void test_base64(void)
{
	/* RFC 4648 section 10 */
	ASSERT(b64_is("", "", 0));
	ASSERT(b64_is("Zg==", "f", 1));
	ASSERT(b64_is("Zm8=", "fo", 2));
	ASSERT(b64_is("Zm9v", "foo", 3));
	ASSERT(b64_is("Zm9vYg==", "foob", 4));
	ASSERT(b64_is("Zm9vYmE=", "fooba", 5));
	ASSERT(b64_is("Zm9vYmFy", "foobar", 6));
	/* padding may be left out; whitespace (line breaks) is ignored */
	ASSERT(b64_is("Zg", "f", 1));
	ASSERT(b64_is("Zm8", "fo", 2));
	ASSERT(b64_is("Zm9v\nYmFy\n", "foobar", 6));
	ASSERT(b64_is(" Zm9v\r\n\tYmE= ", "fooba", 5));
	ASSERT(b64_is("Zm 8=", "fo", 2));
	/* the whole alphabet, binary output */
	ASSERT(b64_is("+/8A", "\xfb\xff\x00", 3));
	ASSERT(b64_is("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		      "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
		      "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f", 32));
	ASSERT(b64_is("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODkrLw==",
		      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 64));
	/* invalid */
	ASSERT(b64_err("Z") == -EINVAL);        /* one character cannot make a byte */
	ASSERT(b64_err("Zm9vY") == -EINVAL);
	ASSERT(b64_err("Zg=") == -EINVAL);      /* half the padding */
	ASSERT(b64_err("Z===") == -EINVAL);
	ASSERT(b64_err("====") == -EINVAL);
	ASSERT(b64_err("=Zg=") == -EINVAL);
	ASSERT(b64_err("Zg==Zg==") == -EINVAL); /* data after padding */
	ASSERT(b64_err("Zm9v=") == -EINVAL);
	ASSERT(b64_err("Zm9v!") == -EINVAL);
	ASSERT(b64_err("Zm-_") == -EINVAL);     /* URL alphabet is not this one */
	ASSERT(b64_err("Zm9\x80") == -EINVAL);
}

/* ---- kubeconfig ---- */

#define CERT_PEM "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n"
#define KEY_PEM "-----BEGIN PRIVATE KEY-----\nMIIBkey\n-----END PRIVATE KEY-----\n"
/* base64 of CERT_PEM and KEY_PEM */
static char *cert_b64, *key_b64;

static char *b64(const char *s)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(s), o = 0;
	char *out = malloc(n / 3 * 4 + 5);

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)s[i] << 16;

		if (i + 1 < n)
			v |= (unsigned char)s[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)s[i + 2];
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = i + 1 < n ? abc[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? abc[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

static int load(const char *yaml, const char *context, struct bw_kube_config *c, char **error)
{
	char *p = path_in("config");
	int r;

	write_file("config", yaml);
	r = bw_kube_config_load_kubeconfig(p, context, c, error);
	free(p);
	return r;
}

/* Loads yaml, expects failure with the message "DIR/config<want>". */
static bool load_fails(const char *yaml, const char *context, int want_r, const char *want)
{
	struct bw_kube_config c = { .server = strdup("untouched") };
	char *error = NULL, *full = xasprintf("%s/config%s", dir, want), *abs;
	int r = load(yaml, context, &c, &error);

	while ((abs = strstr(full, "/ABS"))) {
		char *n;

		*abs = '\0';
		n = xasprintf("%s%s%s", full, dir, abs + 4);
		free(full);
		full = n;
	}
	bool ok = r == want_r && STREQ(error, full) && STREQ(c.server, "untouched") && !c.token;

	if (!ok)
		fprintf(stderr, "  got r=%d error \"%s\"\n  want r=%d error \"%s\"\n", r, error ? error : "(null)",
			want_r, full);
	free(error);
	free(full);
	bw_kube_config_clear(&c);
	return ok;
}

static const char two_contexts[] =
	"apiVersion: v1\n"
	"kind: Config\n"
	"clusters:\n"
	"- name: prod\n"
	"  cluster:\n"
	"    server: https://prod.example:6443/\n"
	"    certificate-authority: certs/ca.pem\n"
	"- name: dev\n"
	"  cluster:\n"
	"    server: https://[fd00::10]:6443\n"
	"    certificate-authority-data: %s\n"
	"    proxy-url: http://proxy:3128\n"
	"users:\n"
	"- name: admin\n"
	"  user:\n"
	"    client-certificate-data: %s\n"
	"    client-key-data: %s\n"
	"- name: agent\n"
	"  user:\n"
	"    token: static-token\n"
	"    tokenFile: tokens/agent\n"
	"- name: files\n"
	"  user:\n"
	"    client-certificate: certs/client.crt\n"
	"    client-key: /ABS/certs/client.key\n"
	"contexts:\n"
	"- name: prod-agent\n"
	"  context: {cluster: prod, user: agent, namespace: bulwark-system}\n"
	"- name: dev-admin\n"
	"  context:\n"
	"    cluster: dev\n"
	"    user: admin\n"
	"- name: prod-files\n"
	"  context: {cluster: prod, user: files}\n"
	"- name: anonymous\n"
	"  context: {cluster: prod}\n"
	"current-context: prod-agent\n"
	"preferences: {}\n";

static char *fill(const char *fmt)
{
	char *a = xasprintf(fmt, cert_b64, cert_b64, key_b64), *p, *out;

	/* "/ABS" stands for the test directory */
	p = strstr(a, "/ABS");
	if (!p)
		return a;
	*p = '\0';
	out = xasprintf("%s%s%s", a, dir, p + 4);
	free(a);
	return out;
}

static void test_kubeconfig(void)
{
	struct bw_kube_config c = {}, copy = {};
	char *yaml = fill(two_contexts), *error = NULL, *t, *p, *q;

	/* current-context: prod-agent, relative paths against the file's directory */
	ASSERT(load(yaml, NULL, &c, &error) == 0);
	ASSERT(error == NULL);
	ASSERT(STREQ(c.server, "https://prod.example:6443"));
	p = path_in("certs/ca.pem");
	ASSERT(STREQ(c.ca_file, p));
	free(p);
	ASSERT(!c.ca_data && !c.insecure_skip_tls_verify && !c.proxy_url);
	ASSERT(STREQ(c.token, "static-token"));
	p = path_in("tokens/agent");
	ASSERT(STREQ(c.token_file, p));
	free(p);
	ASSERT(!c.client_cert_file && !c.client_key_file && !c.client_cert_data && !c.client_key_data);
	ASSERT(STREQ(c.namespace, "bulwark-system"));
	p = xasprintf("kubeconfig %s/config (context prod-agent)", dir);
	ASSERT(STREQ(c.source, p));
	free(p);

	/* the token file wins, is read afresh each time, trimmed */
	t = bw_kube_config_token(&c);
	ASSERT(STREQ(t, "file-token-1"));
	free(t);
	write_file("tokens/agent", "  file-token-2\r\n\n");
	t = bw_kube_config_token(&c);
	ASSERT(STREQ(t, "file-token-2"));
	free(t);
	/* unreadable or empty: the static token */
	write_file("tokens/agent", "\n");
	t = bw_kube_config_token(&c);
	ASSERT(STREQ(t, "static-token"));
	free(t);
	p = path_in("tokens/agent");
	unlink(p);
	t = bw_kube_config_token(&c);
	ASSERT(STREQ(t, "static-token"));
	free(t);
	/* a control character inside would break the header */
	write_file("tokens/agent", "bad\x01token\n");
	t = bw_kube_config_token(&c);
	ASSERT(STREQ(t, "static-token"));
	free(t);
	free(c.token);
	c.token = NULL;
	errno = 0;
	t = bw_kube_config_token(&c);
	ASSERT(t == NULL && errno == EINVAL);
	unlink(p);
	errno = 0;
	t = bw_kube_config_token(&c);
	ASSERT(t == NULL && errno == ENOENT);
	write_file("tokens/agent", "file-token-1\n");
	free(p);

	/* copy */
	ASSERT(bw_kube_config_copy(&copy, &c) == 0);
	ASSERT(STREQ(copy.server, c.server) && copy.server != c.server && STREQ(copy.token_file, c.token_file));
	ASSERT(STREQ(copy.namespace, "bulwark-system") && copy.token == NULL);
	bw_kube_config_clear(&copy);
	ASSERT(copy.server == NULL);

	/* an explicit context: certificate data decoded to PEM, IPv6 server */
	ASSERT(load(yaml, "dev-admin", &c, &error) == 0);
	ASSERT(STREQ(c.server, "https://[fd00::10]:6443"));
	ASSERT(STREQ(c.ca_data, CERT_PEM) && !c.ca_file);
	ASSERT(STREQ(c.client_cert_data, CERT_PEM));
	ASSERT(STREQ(c.client_key_data, KEY_PEM));
	ASSERT(STREQ(c.proxy_url, "http://proxy:3128"));
	ASSERT(!c.token && !c.token_file && !c.namespace);

	/* client certificate files, relative and absolute */
	ASSERT(load(yaml, "prod-files", &c, &error) == 0);
	p = path_in("certs/client.crt");
	q = path_in("certs/client.key");
	ASSERT(STREQ(c.client_cert_file, p) && STREQ(c.client_key_file, q));
	free(p);
	free(q);

	/* no user: anonymous */
	ASSERT(load(yaml, "anonymous", &c, &error) == 0);
	ASSERT(!c.token && !c.token_file && !c.client_cert_file && !c.client_cert_data);
	t = bw_kube_config_token(&c);
	ASSERT(t == NULL);
	bw_kube_config_clear(&c);

	/* a relative kubeconfig path is made absolute first */
	{
		char cwd[PATH_MAX];

		ASSERT(getcwd(cwd, sizeof(cwd)) != NULL);
		ASSERT(chdir(dir) == 0);
		ASSERT(bw_kube_config_load_kubeconfig("config", NULL, &c, &error) == 0);
		p = path_in("tokens/agent");
		ASSERT(STREQ(c.token_file, p));
		free(p);
		ASSERT(chdir("certs") == 0);
		ASSERT(bw_kube_config_load_kubeconfig("../config", NULL, &c, &error) == 0);
		p = xasprintf("%s/certs/../certs/ca.pem", dir);
		ASSERT(STREQ(c.ca_file, p));
		free(p);
		ASSERT(chdir(cwd) == 0);
		bw_kube_config_clear(&c);
	}

	/* insecure-skip-tls-verify, YAML 1.1 booleans, nulls are absent */
	ASSERT(load("clusters: [{name: c, cluster: {server: 'http://127.0.0.1:8080', insecure-skip-tls-verify: yes,"
		    " certificate-authority: ~}}]\n"
		    "contexts: [{name: x, context: {cluster: c, user: null}}]\ncurrent-context: x\n",
		    NULL, &c, &error) == 0);
	ASSERT(c.insecure_skip_tls_verify && !c.ca_file && STREQ(c.server, "http://127.0.0.1:8080"));
	bw_kube_config_clear(&c);
	/* a user with a token and an exec plugin: the token is used */
	ASSERT(load("clusters: [{name: c, cluster: {server: 'https://a'}}]\n"
		    "users: [{name: u, user: {token: t, exec: {command: x}}}]\n"
		    "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
		    NULL, &c, &error) == 0);
	ASSERT(STREQ(c.token, "t"));
	bw_kube_config_clear(&c);
	free(yaml);
}

#define HEAD "clusters: [{name: c, cluster: {server: 'https://a'}}]\n"
#define CTX "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"

static void test_kubeconfig_errors(void)
{
	char *yaml = fill(two_contexts), *p;
	struct bw_kube_config c = {};
	char *error = NULL;
	int r;

	/* the file itself */
	p = path_in("missing");
	r = bw_kube_config_load_kubeconfig(p, NULL, &c, &error);
	ASSERT(r == -ENOENT);
	{
		char *want = xasprintf("%s: No such file or directory", p);

		ASSERT(STREQ(error, want));
		free(want);
	}
	free(error);
	free(p);

	ASSERT(load_fails("", NULL, -EINVAL, ": empty kubeconfig"));
	ASSERT(load_fails("[a, b]\n", NULL, -EINVAL, ":1:1: expected a mapping at the top"));
	ASSERT(load_fails("a: [b\n", NULL, -EINVAL,
			  ":2:1: invalid YAML: did not find expected ',' or ']'"));
	/* contexts */
	ASSERT(load_fails(HEAD "contexts: [{name: x, context: {cluster: c}}]\n", NULL, -ENOENT,
			  ": current-context: not set, and no context was given"));
	ASSERT(load_fails(yaml, "staging", -ENOENT, ":27:1: contexts: no context named \"staging\""));
	ASSERT(load_fails(HEAD "contexts: [{name: x, context: {cluster: c}}]\ncurrent-context: y\n", NULL, -ENOENT,
			  ":3:18: current-context: no context named \"y\""));
	ASSERT(load_fails(HEAD "contexts: [{name: x, context: {user: u}}]\ncurrent-context: x\n", NULL, -EINVAL,
			  ":2:31: contexts[0].context.cluster: missing"));
	ASSERT(load_fails(HEAD "contexts: [{name: x, context: {cluster: d}}]\ncurrent-context: x\n", NULL, -ENOENT,
			  ":2:41: contexts[0].context.cluster: no cluster named \"d\""));
	ASSERT(load_fails(HEAD CTX, NULL, -ENOENT, ":2:50: contexts[0].context.user: no user named \"u\""));
	ASSERT(load_fails(HEAD "contexts: [{context: {cluster: c}}]\ncurrent-context: x\n", NULL, -EINVAL,
			  ":2:12: contexts[0].name: missing"));
	ASSERT(load_fails(HEAD "contexts: {x: y}\ncurrent-context: x\n", NULL, -EINVAL,
			  ":2:11: contexts: expected a list"));
	ASSERT(load_fails(HEAD "contexts: [x]\ncurrent-context: x\n", NULL, -EINVAL,
			  ":2:12: contexts[0]: expected a mapping"));
	ASSERT(load_fails("clusters: [{name: c, cluster: {server: 'https://a'}}, {name: c}]\n" CTX, NULL, -EINVAL,
			  ":1:55: clusters[1].name: duplicate name \"c\""));
	ASSERT(load_fails(HEAD "current-context: [x]\n", NULL, -EINVAL, ":2:18: current-context: expected a string"));
	/* clusters */
	ASSERT(load_fails("clusters: [{name: c, cluster: {}}]\n" CTX, NULL, -EINVAL,
			  ":1:31: clusters[0].cluster.server: missing"));
	ASSERT(load_fails("clusters: [{name: c}]\n" CTX, NULL, -EINVAL,
			  ": clusters[0].cluster.server: missing"));
	ASSERT(load_fails("clusters: [{name: c, cluster: {server: 'ftp://a'}}]\n" CTX, NULL, -EINVAL,
			  ":1:40: clusters[0].cluster.server: \"ftp://a\": the scheme must be http:// or https://"));
	ASSERT(load_fails("clusters: [{name: c, cluster: {server: 'https://a:99999'}}]\n" CTX, NULL, -EINVAL,
			  ":1:40: clusters[0].cluster.server: \"https://a:99999\": the port is not a number from 1 to 65535"));
	ASSERT(load_fails("clusters: [{name: c, cluster: {server: 'https://a', proxy-url: 'socks5://p:1080'}}]\n" CTX,
			  NULL, -EINVAL,
			  ":1:64: clusters[0].cluster.proxy-url: \"socks5://p:1080\": only http:// proxies are supported"));
	ASSERT(load_fails("clusters: [{name: c, cluster: {server: [a]}}]\n" CTX, NULL, -EINVAL,
			  ":1:40: clusters[0].cluster.server: expected a string"));
	ASSERT(load_fails("clusters: [{name: c, cluster: {server: 'https://a', certificate-authority-data: 'Zm9v!'}}]\n"
			  CTX, NULL, -EINVAL,
			  ":1:81: clusters[0].cluster.certificate-authority-data: invalid base64"));
	ASSERT(load_fails("clusters: [{name: c, cluster: {server: 'https://a', certificate-authority-data: 'Zm9v'}}]\n"
			  CTX, NULL, -EINVAL,
			  ":1:81: clusters[0].cluster.certificate-authority-data: not PEM data"));
	ASSERT(load_fails("clusters: [{name: c, cluster: {server: 'https://a', certificate-authority: nope.pem}}]\n"
			  "users: [{name: u, user: {token: t}}]\n" CTX,
			  NULL, -ENOENT, ":1:76: clusters[0].cluster.certificate-authority: /ABS/nope.pem: No such file or directory"));
	ASSERT(load_fails("clusters: [{name: c, cluster: {server: 'https://a', insecure-skip-tls-verify: maybe}}]\n"
			  CTX, NULL, -EINVAL, ":1:79: clusters[0].cluster.insecure-skip-tls-verify: expected true or false"));
	ASSERT(load_fails("clusters: [{name: c, cluster: {server: 'https://a', insecure-skip-tls-verify: true,"
			  " certificate-authority: certs/ca.pem}}]\n" CTX, NULL, -EINVAL,
			  ":1:79: clusters[0].cluster.insecure-skip-tls-verify: not allowed with a certificate authority"));
	ASSERT(load_fails("clusters: [{name: c, cluster: {server: 'https://a', tls-server-name: b}}]\n" CTX, NULL,
			  -EINVAL, ":1:70: clusters[0].cluster.tls-server-name: not supported"));
	/* users */
	ASSERT(load_fails(HEAD "users: [{name: u, user: {client-certificate: certs/client.crt}}]\n" CTX, NULL, -EINVAL,
			  ":2:25: users[0].user: a client certificate without a client key"));
	ASSERT(load_fails(HEAD "users: [{name: u, user: {client-key-data: '%s'}}]\n" CTX, NULL, -EINVAL,
			  ":2:43: users[0].user.client-key-data: invalid base64"));
	ASSERT(load_fails(HEAD "users: [{name: u, user: {tokenFile: tokens/none}}]\n" CTX, NULL, -ENOENT,
			  ":2:37: users[0].user.tokenFile: /ABS/tokens/none: No such file or directory"));
	ASSERT(load_fails(HEAD "users: [{name: u, user: {exec: {command: aws}}}]\n" CTX, NULL, -EINVAL,
			  ":2:32: users[0].user.exec: not supported (use token, tokenFile or a client certificate)"));
	ASSERT(load_fails(HEAD "users: [{name: u, user: {auth-provider: {name: oidc}}}]\n" CTX, NULL, -EINVAL,
			  ":2:41: users[0].user.auth-provider: not supported (use token, tokenFile or a client certificate)"));
	ASSERT(load_fails(HEAD "users: [{name: u, user: {username: a, password: b}}]\n" CTX, NULL, -EINVAL,
			  ":2:36: users[0].user.username: not supported"));
	ASSERT(load_fails(HEAD "users: [{name: u, user: {token: t, as: admin}}]\n" CTX, NULL, -EINVAL,
			  ":2:40: users[0].user.as: not supported"));
	ASSERT(load_fails(HEAD "users: [{name: u, user: [t]}]\n" CTX, NULL, -EINVAL,
			  ":2:25: users[0].user: expected a mapping"));
	ASSERT(load_fails(HEAD "users: [{name: v}]\n" CTX, NULL, -ENOENT,
			  ":3:50: contexts[0].context.user: no user named \"u\""));
	/* a list that the context does not use is still checked */
	ASSERT(load_fails(HEAD "users: [{user: {}}]\n" CTX, NULL, -EINVAL, ":2:9: users[0].name: missing"));
	free(yaml);
}

/* ---- in-cluster ---- */

static void test_in_cluster(void)
{
	struct bw_kube_config c = {};
	char *error = NULL, *sa = path_in("sa"), *p, *t;

	mkdir(sa, 0755);
	write_file("sa/token", "projected-1\n");
	write_file("sa/ca.crt", CERT_PEM);
	write_file("sa/namespace", "bulwark-system");
	setenv("BULWARK_SA_DIR", sa, 1);

	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	ASSERT(bw_kube_config_in_cluster(&c, &error) == -ENOENT);
	ASSERT(STREQ(error, "not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"));
	free(error);

	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	ASSERT(bw_kube_config_in_cluster(&c, &error) == 0);
	ASSERT(error == NULL);
	ASSERT(STREQ(c.server, "https://10.96.0.1:443"));
	p = xasprintf("%s/token", sa);
	ASSERT(STREQ(c.token_file, p));
	free(p);
	p = xasprintf("%s/ca.crt", sa);
	ASSERT(STREQ(c.ca_file, p));
	free(p);
	ASSERT(STREQ(c.namespace, "bulwark-system") && STREQ(c.source, "in-cluster"));
	ASSERT(!c.token && !c.ca_data && !c.insecure_skip_tls_verify && !c.client_cert_file);
	/* the projected token rotates: each call reads it again */
	t = bw_kube_config_token(&c);
	ASSERT(STREQ(t, "projected-1"));
	free(t);
	write_file("sa/token", "projected-2");
	t = bw_kube_config_token(&c);
	ASSERT(STREQ(t, "projected-2"));
	free(t);

	/* IPv6 addresses are bracketed (once) */
	setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
	ASSERT(bw_kube_config_in_cluster(&c, &error) == 0);
	ASSERT(STREQ(c.server, "https://[fd00:10:96::1]:6443"));
	setenv("KUBERNETES_SERVICE_HOST", "[fd00::1]", 1);
	ASSERT(bw_kube_config_in_cluster(&c, &error) == 0);
	ASSERT(STREQ(c.server, "https://[fd00::1]:6443"));
	setenv("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc", 1);
	ASSERT(bw_kube_config_in_cluster(&c, &error) == 0);
	ASSERT(STREQ(c.server, "https://kubernetes.default.svc:6443"));

	/* failures leave c alone */
	setenv("KUBERNETES_SERVICE_PORT", "https", 1);
	ASSERT(bw_kube_config_in_cluster(&c, &error) == -EINVAL);
	ASSERT(STREQ(error, "KUBERNETES_SERVICE_PORT: \"https\" is not a port number"));
	free(error);
	setenv("KUBERNETES_SERVICE_PORT", "65536", 1);
	ASSERT(bw_kube_config_in_cluster(&c, &error) == -EINVAL);
	free(error);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	setenv("KUBERNETES_SERVICE_HOST", "a/b", 1);
	ASSERT(bw_kube_config_in_cluster(&c, &error) == -EINVAL);
	free(error);
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	p = path_in("sa/token");
	unlink(p);
	ASSERT(bw_kube_config_in_cluster(&c, &error) == -ENOENT);
	{
		char *want = xasprintf("%s: No such file or directory", p);

		ASSERT(STREQ(error, want));
		free(want);
	}
	free(error);
	free(p);
	write_file("sa/token", "projected-3\n");
	p = path_in("sa/ca.crt");
	unlink(p);
	ASSERT(bw_kube_config_in_cluster(&c, &error) == -ENOENT);
	free(error);
	free(p);
	ASSERT(STREQ(c.server, "https://kubernetes.default.svc:6443"));
	write_file("sa/ca.crt", CERT_PEM);
	/* no namespace file: no namespace */
	p = path_in("sa/namespace");
	unlink(p);
	free(p);
	ASSERT(bw_kube_config_in_cluster(&c, &error) == 0);
	ASSERT(c.namespace == NULL && STREQ(c.server, "https://10.96.0.1:443"));

	bw_kube_config_clear(&c);
	free(sa);
}

int main(void)
{
	char *p;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	cert_b64 = b64(CERT_PEM);
	key_b64 = b64(KEY_PEM);
	p = path_in("certs");
	mkdir(p, 0755);
	free(p);
	p = path_in("tokens");
	mkdir(p, 0755);
	free(p);
	write_file("certs/ca.pem", CERT_PEM);
	write_file("certs/client.crt", CERT_PEM);
	write_file("certs/client.key", KEY_PEM);
	write_file("tokens/agent", "file-token-1\n");

	test_base64();
	test_kubeconfig();
	test_kubeconfig_errors();
	test_in_cluster();

	free(cert_b64);
	free(key_b64);
	{
		char *cmd = xasprintf("rm -rf '%s'", dir);

		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
		free(cmd);
	}
	return bw_test_summary();
}
