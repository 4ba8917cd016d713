/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kubernetes API client (libcurl, json-c) and reflector. See kube-client.h.
 *
 * Each client is one easy handle added to its own multi handle for the
 * duration of a transfer: the thread waits in curl_multi_poll(), which
 * bw_kube_client_cancel() interrupts from another thread with
 * curl_multi_wakeup(), so stopping never waits for a watch to time out.
 * The connection stays in the multi handle's cache between requests.
 *
 * The reflector follows client-go's: LIST (paginated; resourceVersion=0 the
 * first time, so that a node's agents do not all read etcd when they start,
 * and a consistent read after 410 Gone), then WATCH from the list's
 * resourceVersion with bookmarks, resuming from the last resourceVersion
 * seen after any failure, relisting only when the server says that version
 * is gone.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "curl-dlopen.h"
#include "kube-client.h"
#include "util.h"

#ifndef BW_VERSION
#define BW_VERSION "0.1.0"
#endif

/* Deepest JSON accepted: managedFields nest deeply. */
#define BW_JSON_DEPTH 256
/* Largest response body kept in memory (a LIST page, an error). */
#define BW_KUBE_BODY_MAX (512u * 1024 * 1024)
/* Largest watch event (etcd's limit is 1.5 MiB per object). */
#define BW_KUBE_EVENT_MAX (64u * 1024 * 1024)

/* ---- JSON helpers ---- */

/* Parses exactly one JSON value filling buf[0..len) (surrounding whitespace
 * allowed). NULL when it is not that. */
static struct json_object *parse_json(const char *buf, size_t len)
{
	struct json_tokener *tok;
	struct json_object *o;
	size_t end;

	if (len > INT32_MAX)
		return NULL;
	tok = json_tokener_new_ex(BW_JSON_DEPTH);
	if (!tok)
		return NULL;
	o = json_tokener_parse_ex(tok, buf, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success) {
		/* A top-level number or literal needs a terminator. */
		json_object_put(o);
		o = NULL;
		if (json_tokener_get_error(tok) == json_tokener_continue)
			o = json_tokener_parse_ex(tok, " ", 1);
		if (json_tokener_get_error(tok) != json_tokener_success) {
			json_object_put(o);
			json_tokener_free(tok);
			return NULL;
		}
	}
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	for (; end < len; end++)
		if (!strchr(" \t\r\n", buf[end])) {
			json_object_put(o);
			return NULL;
		}
	return o;
}

static struct json_object *get_path(struct json_object *o, const char *a, const char *b)
{
	struct json_object *v;

	if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, a, &v))
		return NULL;
	if (!b)
		return v;
	if (!v || !json_object_is_type(v, json_type_object) || !json_object_object_get_ex(v, b, &v))
		return NULL;
	return v;
}

static const char *get_string(struct json_object *o, const char *a, const char *b)
{
	struct json_object *v = get_path(o, a, b);

	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* Percent-encodes all but RFC 3986's unreserved characters, as
 * curl_easy_escape does (here so that paths can be made before libcurl is
 * loaded). */
static char *url_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(strlen(s) * 3 + 1), *o = out;

	if (!out)
		return NULL;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		    *c == '-' || *c == '.' || *c == '_' || *c == '~') {
			*o++ = (char)*c;
		} else {
			*o++ = '%';
			*o++ = hex[*c >> 4];
			*o++ = hex[*c & 15];
		}
	}
	*o = '\0';
	return out;
}

char *bw_kube_node_pods_path(const char *node_name)
{
	char *esc = url_escape(node_name), *p;

	if (!esc)
		return NULL;
	p = strprintf("/api/v1/pods?fieldSelector=spec.nodeName%%3D%s", esc);
	free(esc);
	return p;
}

char *bw_kube_object_key(struct json_object *obj)
{
	const char *name = get_string(obj, "metadata", "name");
	const char *ns = get_string(obj, "metadata", "namespace");
	char *k;

	if (!name || !name[0]) {
		errno = EINVAL;
		return NULL;
	}
	k = ns && ns[0] ? strprintf("%s/%s", ns, name) : strdup(name);
	if (!k)
		errno = ENOMEM;
	return k;
}

const char *bw_kube_event_name(enum bw_kube_event type)
{
	switch (type) {
	case BW_KUBE_SYNC_BEGIN:
		return "SYNC_BEGIN";
	case BW_KUBE_ADDED:
		return "ADDED";
	case BW_KUBE_MODIFIED:
		return "MODIFIED";
	case BW_KUBE_DELETED:
		return "DELETED";
	case BW_KUBE_SYNC_END:
		return "SYNC_END";
	}
	return "?";
}

unsigned bw_kube_backoff_ms(unsigned attempt, unsigned base_ms, unsigned cap_ms, uint64_t rnd)
{
	uint64_t ceiling = base_ms;

	for (unsigned i = 0; i < attempt && ceiling < cap_ms; i++)
		ceiling *= 2;
	if (ceiling > cap_ms)
		ceiling = cap_ms;
	return (unsigned)(rnd % (ceiling + 1));
}

/* ---- client ---- */

struct transfer {
	struct bw_kube_client *c;
	int (*on_data)(void *userdata, const char *data, size_t len);
	void *userdata;
	bool streaming; /* 2xx and on_data: the body goes to on_data */
	long status;
	char *body;
	size_t len, cap;
	bool overflow;
	int abort_err; /* from on_data */
};

struct bw_kube_client {
	struct bw_kube_config cfg;
	CURL *easy;
	CURLM *multi;
	atomic_bool cancelled;
	_Atomic uint64_t unauthorized;
	char *user_agent;
	unsigned connect_timeout_ms, request_timeout_ms, idle_timeout_s;
	char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init_once(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int bw_kube_global_init(const char **why)
{
	int ret = bw_curl_load(why);

	if (ret < 0)
		return ret;
	pthread_once(&global_once, global_init_once);
	if (global_rc != CURLE_OK) {
		if (why)
			*why = curl_easy_strerror(global_rc);
		return -EIO;
	}
	return 0;
}

static _printf_(3, 4) int set_error(char **error, int err, const char *fmt, ...)
{
	va_list ap;

	if (error) {
		free(*error);
		va_start(ap, fmt);
		*error = strvprintf(fmt, ap);
		va_end(ap);
	}
	return err;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct transfer *t = userdata;
	size_t n = size * nmemb;

	if (t->streaming) {
		int r = t->on_data(t->userdata, ptr, n);

		if (r < 0) {
			t->abort_err = r;
			return 0;
		}
		return n;
	}
	if (t->len + n > BW_KUBE_BODY_MAX) {
		t->overflow = true;
		return 0;
	}
	if (ARRAY_RESERVE(t->body, t->cap, t->len + n + 1) < 0) {
		t->abort_err = -ENOMEM;
		return 0;
	}
	memcpy(t->body + t->len, ptr, n);
	t->len += n;
	t->body[t->len] = '\0';
	return n;
}

/* The end of the response headers tells the status before any body byte:
 * a stream is announced open to on_data with a zero-length call. */
static size_t header_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct transfer *t = userdata;
	size_t n = size * nmemb;
	long code = 0;

	if (n <= 2 && (n == 0 || ptr[0] == '\r' || ptr[0] == '\n')) {
		curl_easy_getinfo(t->c->easy, CURLINFO_RESPONSE_CODE, &code);
		if (code < 200)
			return n; /* an interim response (100 Continue) */
		t->status = code;
		if (t->on_data && code / 100 == 2 && !t->streaming) {
			int r;

			t->streaming = true;
			r = t->on_data(t->userdata, "", 0);
			if (r < 0) {
				t->abort_err = r;
				return 0;
			}
		}
	}
	return n;
}

static int xferinfo_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct bw_kube_client *c = userdata;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return atomic_load(&c->cancelled) ? 1 : 0;
}

#define SETOPT(c, opt, val)                                                                        \
	do {                                                                                       \
		if (curl_easy_setopt((c)->easy, opt, val) != CURLE_OK)                             \
			return set_error(error, -EINVAL, "libcurl: cannot set %s", #opt);          \
	} while (0)

static int blob_opt(struct bw_kube_client *c, CURLoption opt, const char *pem, const char *name, char **error)
{
	struct curl_blob blob = { .data = (void *)pem, .len = strlen(pem), .flags = CURL_BLOB_COPY };
	CURLcode rc = curl_easy_setopt(c->easy, opt, &blob);

	if (rc != CURLE_OK)
		return set_error(error, -EINVAL, "libcurl: cannot use %s: %s", name, curl_easy_strerror(rc));
	return 0;
}

static int client_setup(struct bw_kube_client *c, char **error)
{
	const struct bw_kube_config *cfg = &c->cfg;

	SETOPT(c, CURLOPT_NOSIGNAL, 1L);
	SETOPT(c, CURLOPT_ERRORBUFFER, c->errbuf);
	SETOPT(c, CURLOPT_USERAGENT, c->user_agent);
	SETOPT(c, CURLOPT_PROTOCOLS_STR, "https,http");
	SETOPT(c, CURLOPT_FOLLOWLOCATION, 0L);
	/* One connection per client, HTTP/1.1: a watch is a long chunked
	 * response; HTTP/2 would add nothing but the API server's stream limits. */
	SETOPT(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SETOPT(c, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
	SETOPT(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	SETOPT(c, CURLOPT_LOW_SPEED_TIME, (long)c->idle_timeout_s);
	SETOPT(c, CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(c, CURLOPT_TCP_KEEPIDLE, 30L);
	SETOPT(c, CURLOPT_TCP_KEEPINTVL, 10L);
	SETOPT(c, CURLOPT_NOPROGRESS, 0L);
	SETOPT(c, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
	SETOPT(c, CURLOPT_XFERINFODATA, c);
	SETOPT(c, CURLOPT_WRITEFUNCTION, write_cb);
	SETOPT(c, CURLOPT_HEADERFUNCTION, header_cb);
	/* A proxy's answer to CONNECT is not the response: keep it out of
	 * header_cb. */
	SETOPT(c, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	if (cfg->proxy_url)
		SETOPT(c, CURLOPT_PROXY, cfg->proxy_url);

	if (cfg->insecure_skip_tls_verify) {
		SETOPT(c, CURLOPT_SSL_VERIFYPEER, 0L);
		SETOPT(c, CURLOPT_SSL_VERIFYHOST, 0L);
	} else {
		SETOPT(c, CURLOPT_SSL_VERIFYPEER, 1L);
		SETOPT(c, CURLOPT_SSL_VERIFYHOST, 2L);
		/* The cluster's CA only, as kubectl: not the system's CA
		 * directory besides it (a GnuTLS build of libcurl would also
		 * parse all of it into the heap: ~20 MiB, measured). */
		if (cfg->ca_data || cfg->ca_file)
			SETOPT(c, CURLOPT_CAPATH, (char *)NULL);
		if (cfg->ca_data) {
			if (blob_opt(c, CURLOPT_CAINFO_BLOB, cfg->ca_data, "the certificate authority data", error) < 0)
				return -EINVAL;
		} else if (cfg->ca_file) {
			SETOPT(c, CURLOPT_CAINFO, cfg->ca_file);
		}
	}
	if (cfg->client_cert_data) {
		if (blob_opt(c, CURLOPT_SSLCERT_BLOB, cfg->client_cert_data, "the client certificate data", error) < 0)
			return -EINVAL;
	} else if (cfg->client_cert_file) {
		SETOPT(c, CURLOPT_SSLCERT, cfg->client_cert_file);
	}
	if (cfg->client_cert_data || cfg->client_cert_file)
		SETOPT(c, CURLOPT_SSLCERTTYPE, "PEM");
	if (cfg->client_key_data) {
		if (blob_opt(c, CURLOPT_SSLKEY_BLOB, cfg->client_key_data, "the client key data", error) < 0)
			return -EINVAL;
	} else if (cfg->client_key_file) {
		SETOPT(c, CURLOPT_SSLKEY, cfg->client_key_file);
	}
	if (cfg->client_key_data || cfg->client_key_file)
		SETOPT(c, CURLOPT_SSLKEYTYPE, "PEM");
	return 0;
}

struct bw_kube_client *bw_kube_client_new(const struct bw_kube_config *cfg,
					  const struct bw_kube_client_options *opts, char **error)
{
	struct bw_kube_client *c;
	struct bw_kube_client_options o = opts ? *opts : (struct bw_kube_client_options){};

	if (error)
		*error = NULL;
	if (!cfg->server) {
		set_error(error, -EINVAL, "no API server configured");
		return NULL;
	}
	const char *why = NULL;
	int ret = bw_kube_global_init(&why);

	if (ret < 0) {
		set_error(error, ret, "libcurl: %s", why);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c || bw_kube_config_copy(&c->cfg, cfg) < 0) {
		free(c);
		set_error(error, -ENOMEM, "out of memory");
		return NULL;
	}
	c->connect_timeout_ms = o.connect_timeout_ms ? o.connect_timeout_ms : 10000;
	c->request_timeout_ms = o.request_timeout_ms ? o.request_timeout_ms : 60000;
	c->idle_timeout_s = o.idle_timeout_s ? o.idle_timeout_s : 120;
	c->user_agent = strdup(o.user_agent ? o.user_agent : "bulwarkd/" BW_VERSION);
	c->easy = curl_easy_init();
	c->multi = curl_multi_init();
	if (!c->user_agent || !c->easy || !c->multi) {
		set_error(error, -ENOMEM, "out of memory");
		bw_kube_client_free(c);
		return NULL;
	}
	if (client_setup(c, error) < 0) {
		bw_kube_client_free(c);
		return NULL;
	}
	return c;
}

void bw_kube_client_free(struct bw_kube_client *c)
{
	if (!c)
		return;
	if (c->multi)
		curl_multi_cleanup(c->multi);
	if (c->easy)
		curl_easy_cleanup(c->easy);
	bw_kube_config_clear(&c->cfg);
	free(c->user_agent);
	free(c);
}

void bw_kube_client_cancel(struct bw_kube_client *c)
{
	atomic_store(&c->cancelled, true);
	curl_multi_wakeup(c->multi);
}

uint64_t bw_kube_client_unauthorized(const struct bw_kube_client *c)
{
	return atomic_load(&c->unauthorized);
}

/* Runs the easy handle's transfer in the multi handle until it ends or the
 * client is cancelled. */
static CURLcode perform(struct bw_kube_client *c)
{
	CURLcode res = CURLE_OK;
	bool done = false;

	if (curl_multi_add_handle(c->multi, c->easy) != CURLM_OK)
		return CURLE_OUT_OF_MEMORY;
	while (!done) {
		int running = 0, queued;
		CURLMsg *m;

		if (atomic_load(&c->cancelled)) {
			res = CURLE_ABORTED_BY_CALLBACK;
			break;
		}
		if (curl_multi_perform(c->multi, &running) != CURLM_OK) {
			res = CURLE_OUT_OF_MEMORY;
			break;
		}
		while ((m = curl_multi_info_read(c->multi, &queued)))
			if (m->msg == CURLMSG_DONE && m->easy_handle == c->easy) {
				res = m->data.result;
				done = true;
			}
		if (done)
			break;
		if (curl_multi_poll(c->multi, NULL, 0, 1000, NULL) != CURLM_OK) {
			res = CURLE_OUT_OF_MEMORY;
			break;
		}
	}
	curl_multi_remove_handle(c->multi, c->easy);
	return res;
}

static int curl_errno(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_ABORTED_BY_CALLBACK:
		return -ECANCELED;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return -ECONNRESET;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_USE_SSL_FAILED:
		return -EPROTO;
	default:
		return -EIO;
	}
}

static void free_secret(char **s)
{
	if (*s) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

static int request_core(struct bw_kube_client *c, const char *method, const char *path,
			const char *content_type, const char *body, size_t body_len, unsigned timeout_ms,
			int (*on_data)(void *, const char *, size_t), void *userdata,
			struct json_object **out, long *http_status, char **error)
{
	_cleanup_free_ char *url = NULL;
	struct transfer t = {};
	CURLcode rc = CURLE_OK;
	char *token = NULL;
	int r = 0;

	if (out)
		*out = NULL;
	if (http_status)
		*http_status = 0;
	if (error)
		*error = NULL;
	if (!path || path[0] != '/')
		return set_error(error, -EINVAL, "%s %s: the path must start with /", method, path ? path : "(null)");
	url = strprintf("%s%s", c->cfg.server, path);
	if (!url)
		return set_error(error, -ENOMEM, "out of memory");
	if (atomic_load(&c->cancelled))
		return set_error(error, -ECANCELED, "%s %s: cancelled", method, url);

	for (int attempt = 0; attempt < 2; attempt++) {
		struct curl_slist *headers = NULL, *h;
		_cleanup_free_ char *ct = NULL;
		char *auth = NULL;

		free_secret(&token);
		token = bw_kube_config_token(&c->cfg);
		if (token && !(auth = strprintf("Authorization: Bearer %s", token))) {
			r = -ENOMEM;
			break;
		}
		if (content_type && !(ct = strprintf("Content-Type: %s", content_type))) {
			free_secret(&auth);
			r = -ENOMEM;
			break;
		}
		headers = curl_slist_append(headers, "Accept: application/json");
		if (headers && auth)
			headers = (h = curl_slist_append(headers, auth)) ? h : (curl_slist_free_all(headers), NULL);
		if (headers && ct)
			headers = (h = curl_slist_append(headers, ct)) ? h : (curl_slist_free_all(headers), NULL);
		if (headers)
			headers = (h = curl_slist_append(headers, "Expect:")) ? h : (curl_slist_free_all(headers), NULL);
		free_secret(&auth);
		if (!headers) {
			r = -ENOMEM;
			break;
		}

		free(t.body);
		t = (struct transfer){ .c = c, .on_data = on_data, .userdata = userdata };
		c->errbuf[0] = '\0';
		curl_easy_setopt(c->easy, CURLOPT_URL, url);
		curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, &t);
		curl_easy_setopt(c->easy, CURLOPT_HEADERDATA, &t);
		curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
		if (body) {
			curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, body);
			curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
			curl_easy_setopt(c->easy, CURLOPT_CUSTOMREQUEST, streq(method, "POST") ? NULL : method);
		} else {
			curl_easy_setopt(c->easy, CURLOPT_HTTPGET, 1L);
			curl_easy_setopt(c->easy, CURLOPT_CUSTOMREQUEST, streq(method, "GET") ? NULL : method);
		}
		rc = perform(c);
		curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, NULL);
		if (body)
			curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, NULL);
		curl_slist_free_all(headers);
		if (rc == CURLE_OK && t.status == 0)
			curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &t.status);
		if (rc == CURLE_OK && t.status == 401) {
			char *now;

			atomic_fetch_add(&c->unauthorized, 1);
			/* A rotated token: try the new one at once. */
			now = bw_kube_config_token(&c->cfg);
			if (attempt == 0 && now && !streq_ptr(now, token)) {
				free_secret(&now);
				continue;
			}
			free_secret(&now);
		}
		break;
	}
	free_secret(&token);
	if (r < 0) {
		free(t.body);
		return set_error(error, r, "out of memory");
	}

	if (rc != CURLE_OK) {
		if (t.abort_err) {
			r = t.abort_err;
			set_error(error, r, "%s %s: %s", method, url, r == -ENOMEM ? "out of memory" : "stream aborted");
		} else if (t.overflow) {
			r = set_error(error, -EFBIG, "%s %s: response larger than %u MiB", method, url,
				      BW_KUBE_BODY_MAX >> 20);
		} else {
			r = curl_errno(rc);
			set_error(error, r, "%s %s: %s%s%s", method, url, curl_easy_strerror(rc),
				  c->errbuf[0] ? ": " : "", c->errbuf);
		}
		free(t.body);
		return r;
	}
	if (http_status)
		*http_status = t.status;
	if (t.status / 100 == 2) {
		struct json_object *o = NULL;

		if (t.streaming) {
			free(t.body);
			return 0;
		}
		if (t.len > 0 && !(o = parse_json(t.body, t.len))) {
			free(t.body);
			return set_error(error, -EBADMSG, "%s %s: HTTP %ld: the response is not JSON", method, url,
					 t.status);
		}
		free(t.body);
		if (out)
			*out = o;
		else
			json_object_put(o);
		return 0;
	} else {
		struct json_object *o = t.len ? parse_json(t.body, t.len) : NULL;
		const char *msg = get_string(o, "message", NULL);

		if (!msg && !o && t.len) {
			/* A plain-text error (a proxy's): its first line. */
			t.body[strcspn(t.body, "\r\n")] = '\0';
			if (strlen(t.body) > 200)
				t.body[200] = '\0';
			msg = t.body;
		}
		set_error(error, -EREMOTEIO, "%s %s: HTTP %ld%s%s", method, url, t.status, msg ? ": " : "",
			  msg ? msg : "");
		free(t.body);
		if (out)
			*out = o;
		else
			json_object_put(o);
		return -EREMOTEIO;
	}
}

int bw_kube_request(struct bw_kube_client *c, const char *method, const char *path,
		    const char *content_type, const char *body, size_t body_len,
		    struct json_object **out, long *http_status, char **error)
{
	return request_core(c, method, path, content_type, body, body_len, c->request_timeout_ms, NULL, NULL,
			    out, http_status, error);
}

int bw_kube_get(struct bw_kube_client *c, const char *path, struct json_object **out, long *http_status,
		char **error)
{
	return bw_kube_request(c, "GET", path, NULL, NULL, 0, out, http_status, error);
}

int bw_kube_patch(struct bw_kube_client *c, const char *path, const char *content_type, const char *body,
		  struct json_object **out, long *http_status, char **error)
{
	return bw_kube_request(c, "PATCH", path, content_type, body, strlen(body), out, http_status, error);
}

int bw_kube_stream(struct bw_kube_client *c, const char *path, unsigned timeout_ms,
		   int (*on_data)(void *userdata, const char *data, size_t len), void *userdata,
		   struct json_object **out, long *http_status, char **error)
{
	return request_core(c, "GET", path, NULL, NULL, 0, timeout_ms, on_data, userdata, out, http_status,
			    error);
}

/* ---- reflector ---- */

struct bw_kube_reflector {
	struct bw_kube_client *client;
	char *path;
	bw_kube_event_fn on_event;
	void *userdata;
	unsigned watch_timeout_s, base_ms, cap_ms, page_size;

	pthread_t thread;
	bool started, joined;
	atomic_bool stop;
	pthread_mutex_t lock; /* stats, and the backoff wait */
	pthread_cond_t cond;
	struct bw_kube_reflector_stats stats;

	/* the thread's own */
	struct json_object *cache; /* key -> last object reported */
	char *rv;
	char *item_kind, *item_api_version; /* from the list, for objects without them */
	uint64_t rnd;
	bool failing; /* failures since the last success */
	char *line;   /* the watch event being received */
	size_t line_len, line_cap, line_scan;
	bool got_event; /* this watch stream received an event */
	bool aborted;   /* ... and was ended by on_watch_data */
	char *watch_error;
};

#define STATS(r, stmt)                                                                             \
	do {                                                                                       \
		pthread_mutex_lock(&(r)->lock);                                                    \
		stmt;                                                                              \
		pthread_mutex_unlock(&(r)->lock);                                                  \
	} while (0)

static uint64_t next_random(struct bw_kube_reflector *r)
{
	/* splitmix64 */
	uint64_t z = (r->rnd += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static bool stopping(struct bw_kube_reflector *r)
{
	return atomic_load(&r->stop);
}

static void set_last_error(struct bw_kube_reflector *r, const char *msg)
{
	STATS(r, {
		snprintf(r->stats.last_error, sizeof(r->stats.last_error), "%s", msg ? msg : "out of memory");
		r->stats.last_error_ns = clock_ns(CLOCK_REALTIME);
	});
}

static void set_rv(struct bw_kube_reflector *r, const char *rv)
{
	char *n;

	if (!rv || streq_ptr(rv, r->rv))
		return;
	n = strdup(rv);
	if (!n)
		return; /* keep the older one: a resume from there is still correct */
	free(r->rv);
	r->rv = n;
	STATS(r, snprintf(r->stats.resource_version, sizeof(r->stats.resource_version), "%s", rv));
}

static void deliver(struct bw_kube_reflector *r, enum bw_kube_event type, struct json_object *obj)
{
	if (type == BW_KUBE_ADDED || type == BW_KUBE_MODIFIED || type == BW_KUBE_DELETED)
		STATS(r, r->stats.events++);
	if (r->on_event)
		r->on_event(r->userdata, type, obj);
	else
		json_object_put(obj);
}

/* A private copy for the callback. */
static struct json_object *copy(struct json_object *o)
{
	struct json_object *d = NULL;

	if (json_object_deep_copy(o, &d, NULL) < 0)
		return NULL;
	return d;
}

/* Checks what the reflector needs of an object and fills in apiVersion and
 * kind. Returns its key, or NULL when it cannot be used. */
static char *prepare_object(struct bw_kube_reflector *r, struct json_object *o)
{
	if (!o || !json_object_is_type(o, json_type_object) || !get_string(o, "metadata", "resourceVersion"))
		return NULL;
	if (!get_string(o, "kind", NULL) && r->item_kind)
		json_object_object_add(o, "kind", json_object_new_string(r->item_kind));
	if (!get_string(o, "apiVersion", NULL) && r->item_api_version)
		json_object_object_add(o, "apiVersion", json_object_new_string(r->item_api_version));
	return bw_kube_object_key(o);
}

static void remember_kind(struct bw_kube_reflector *r, struct json_object *list)
{
	const char *kind = get_string(list, "kind", NULL), *api = get_string(list, "apiVersion", NULL);
	const char *end;

	if (kind && (end = endswith(kind, "List")) && end > kind) {
		free(r->item_kind);
		r->item_kind = strndup(kind, (size_t)(end - kind));
	}
	if (api) {
		free(r->item_api_version);
		r->item_api_version = strdup(api);
	}
}

static char *append_query(const char *path, const char *query)
{
	return strprintf("%s%s%s", path, strchr(path, '?') ? "&" : "?", query);
}

/* Diffs a complete list against the cache and reports the snapshot. */
static int apply_snapshot(struct bw_kube_reflector *r, struct json_object *items, const char *list_rv)
{
	struct json_object *next = json_object_new_object();
	size_t n = json_object_array_length(items);
	uint64_t bad = 0;

	if (!next)
		return -ENOMEM;
	deliver(r, BW_KUBE_SYNC_BEGIN, NULL);
	for (size_t i = 0; i < n; i++) {
		struct json_object *item = json_object_array_get_idx(items, i), *old = NULL, *dup;
		_cleanup_free_ char *key = prepare_object(r, item);
		const char *rv;

		if (!key) {
			bad++;
			continue;
		}
		if (json_object_object_get_ex(next, key, NULL))
			continue; /* listed twice: the first counts */
		rv = get_string(item, "metadata", "resourceVersion");
		if (json_object_object_get_ex(r->cache, key, &old) &&
		    streq_ptr(get_string(old, "metadata", "resourceVersion"), rv)) {
			json_object_object_add(next, key, json_object_get(old));
			continue;
		}
		dup = copy(item);
		if (!dup || json_object_object_add(next, key, json_object_get(item)) < 0) {
			json_object_put(dup);
			json_object_put(next);
			return -ENOMEM; /* the cache is unchanged: the next snapshot redoes it */
		}
		deliver(r, old ? BW_KUBE_MODIFIED : BW_KUBE_ADDED, dup);
	}
	json_object_object_foreach(r->cache, key, val) {
		if (!json_object_object_get_ex(next, key, NULL))
			deliver(r, BW_KUBE_DELETED, json_object_get(val));
	}
	json_object_put(r->cache);
	r->cache = next;
	set_rv(r, list_rv);
	STATS(r, {
		r->stats.decode_errors += bad;
		r->stats.objects = (uint64_t)json_object_object_length(next);
		r->stats.lists++;
		r->stats.synced = true;
		r->stats.last_sync_ns = clock_ns(CLOCK_REALTIME);
	});
	deliver(r, BW_KUBE_SYNC_END, NULL);
	return 0;
}

/* A successful LIST or watch: counts a reconnection after failures. */
static void succeeded(struct bw_kube_reflector *r)
{
	if (r->failing) {
		r->failing = false;
		STATS(r, r->stats.reconnects++);
	}
}

static void sync_unauthorized(struct bw_kube_reflector *r)
{
	uint64_t n = bw_kube_client_unauthorized(r->client);

	STATS(r, r->stats.unauthorized = n);
}

/* LIST, all pages. consistent: the current state (no resourceVersion);
 * otherwise resourceVersion=0 (any state the server has cached). Returns 0,
 * -ESTALE when a consistent list should be done instead (410 Gone), or
 * another negative errno (last_error set). */
static int do_list(struct bw_kube_reflector *r, bool consistent)
{
	struct json_object *items = json_object_new_array();
	_cleanup_free_ char *cont = NULL, *list_rv = NULL;
	uint64_t start = clock_ns(CLOCK_MONOTONIC);
	unsigned restarts = 0;
	int ret = 0;

	if (!items)
		return -ENOMEM;
	for (;;) {
		_cleanup_free_ char *query = NULL, *url = NULL, *error = NULL;
		struct json_object *resp = NULL, *page, *md;
		long status = 0;
		const char *next, *prv;
		int k;

		if (cont) {
			char *esc = url_escape(cont);

			query = esc ? strprintf("limit=%u&continue=%s", r->page_size, esc) : NULL;
			free(esc);
		} else {
			query = strprintf("limit=%u%s", r->page_size, consistent ? "" : "&resourceVersion=0");
		}
		url = query ? append_query(r->path, query) : NULL;
		if (!url) {
			ret = -ENOMEM;
			set_last_error(r, "out of memory");
			break;
		}
		k = bw_kube_get(r->client, url, &resp, &status, &error);
		sync_unauthorized(r);
		if (k == -EREMOTEIO && status == 410 && !consistent) {
			/* resourceVersion=0 or an expired continue token. */
			json_object_put(resp);
			ret = -ESTALE;
			break;
		}
		if (k == -EREMOTEIO && status == 410 && cont && ++restarts <= 3) {
			/* The continue token expired: start over. */
			json_object_put(resp);
			json_object_put(items);
			items = json_object_new_array();
			cont = mfree(cont);
			if (!items)
				return -ENOMEM;
			continue;
		}
		if (k < 0) {
			json_object_put(resp);
			set_last_error(r, error);
			ret = k;
			break;
		}
		page = get_path(resp, "items", NULL);
		md = get_path(resp, "metadata", NULL);
		prv = get_string(md, "resourceVersion", NULL);
		if (!resp || !json_object_is_type(resp, json_type_object) ||
		    (page && !json_object_is_type(page, json_type_array)) || !prv || !prv[0]) {
			_cleanup_free_ char *m = strprintf("GET %s: not a list with a resourceVersion", url);

			json_object_put(resp);
			set_last_error(r, m);
			STATS(r, r->stats.decode_errors++);
			ret = -EBADMSG;
			break;
		}
		remember_kind(r, resp);
		for (size_t i = 0; page && i < json_object_array_length(page); i++)
			if (json_object_array_add(items, json_object_get(json_object_array_get_idx(page, i))) < 0) {
				ret = -ENOMEM;
				break;
			}
		free(list_rv);
		list_rv = strdup(prv);
		next = get_string(md, "continue", NULL);
		free(cont);
		cont = next && next[0] ? strdup(next) : NULL;
		json_object_put(resp);
		if (ret < 0 || !list_rv) {
			ret = -ENOMEM;
			set_last_error(r, "out of memory");
			break;
		}
		if (!cont)
			break;
		if (stopping(r)) {
			ret = -ECANCELED;
			break;
		}
	}
	if (ret == 0) {
		uint64_t ms = (clock_ns(CLOCK_MONOTONIC) - start) / 1000000;

		succeeded(r);
		STATS(r, r->stats.last_list_ms = ms);
		ret = apply_snapshot(r, items, list_rv);
		if (ret < 0)
			set_last_error(r, "out of memory");
	}
	json_object_put(items);
	return ret;
}

/* One watch event. Returns 0, or a negative errno that ends the stream:
 * -ESTALE (410: relist), -EBADMSG (undecodable: relist), -EPROTO (another
 * ERROR event: resume after a backoff), -ENOMEM. */
static int handle_event(struct bw_kube_reflector *r, const char *line, size_t len)
{
	struct json_object *ev, *obj, *old = NULL;
	const char *type, *rv, *oldrv;
	_cleanup_free_ char *key = NULL;
	enum bw_kube_event et;

	while (len > 0 && strchr(" \t\r\n", line[len - 1]))
		len--;
	if (len == 0)
		return 0;
	ev = parse_json(line, len);
	type = get_string(ev, "type", NULL);
	obj = get_path(ev, "object", NULL);
	if (!type || !obj || !json_object_is_type(obj, json_type_object)) {
		json_object_put(ev);
		STATS(r, r->stats.decode_errors++);
		free(r->watch_error);
		r->watch_error = strprintf("watch %s: undecodable event (%zu bytes)", r->path, len);
		return -EBADMSG;
	}
	r->got_event = true;

	if (streq(type, "BOOKMARK")) {
		set_rv(r, get_string(obj, "metadata", "resourceVersion"));
		STATS(r, r->stats.bookmarks++);
		json_object_put(ev);
		return 0;
	}
	if (streq(type, "ERROR")) {
		struct json_object *code = get_path(obj, "code", NULL);
		const char *reason = get_string(obj, "reason", NULL), *msg = get_string(obj, "message", NULL);
		int c = code ? json_object_get_int(code) : 0;

		free(r->watch_error);
		r->watch_error = strprintf("watch %s: ERROR %d %s: %s", r->path, c, reason ? reason : "",
					   msg ? msg : "");
		json_object_put(ev);
		if (c == 410 || streq_ptr(reason, "Expired") || streq_ptr(reason, "Gone"))
			return -ESTALE;
		return -EPROTO;
	}
	if (streq(type, "ADDED"))
		et = BW_KUBE_ADDED;
	else if (streq(type, "MODIFIED"))
		et = BW_KUBE_MODIFIED;
	else if (streq(type, "DELETED"))
		et = BW_KUBE_DELETED;
	else {
		json_object_put(ev);
		STATS(r, r->stats.decode_errors++);
		free(r->watch_error);
		r->watch_error = strprintf("watch %s: unknown event type \"%.40s\"", r->path, type);
		return -EBADMSG;
	}
	key = prepare_object(r, obj);
	if (!key) {
		json_object_put(ev);
		STATS(r, r->stats.decode_errors++);
		free(r->watch_error);
		r->watch_error = strprintf("watch %s: %s event without metadata.name or resourceVersion", r->path,
					   type);
		return -EBADMSG;
	}
	rv = get_string(obj, "metadata", "resourceVersion");
	/* Detach the object from the event, so that nothing this thread frees
	 * later refers to what the callback owns. */
	json_object_get(obj);
	json_object_object_del(ev, "object");
	json_object_put(ev);

	json_object_object_get_ex(r->cache, key, &old);
	oldrv = old ? get_string(old, "metadata", "resourceVersion") : NULL;
	set_rv(r, rv);
	if (et == BW_KUBE_DELETED) {
		if (!old) {
			json_object_put(obj); /* never reported: nothing to delete */
			return 0;
		}
		json_object_object_del(r->cache, key);
		STATS(r, r->stats.objects = (uint64_t)json_object_object_length(r->cache));
		deliver(r, BW_KUBE_DELETED, obj);
		return 0;
	}
	if (old && streq_ptr(oldrv, rv)) {
		json_object_put(obj); /* already reported */
		return 0;
	}
	et = old ? BW_KUBE_MODIFIED : BW_KUBE_ADDED;
	{
		struct json_object *dup = copy(obj);

		if (!dup || json_object_object_add(r->cache, key, obj) < 0) {
			json_object_put(dup);
			json_object_put(obj);
			return -ENOMEM;
		}
		STATS(r, r->stats.objects = (uint64_t)json_object_object_length(r->cache));
		deliver(r, et, dup);
	}
	return 0;
}

static int on_watch_data_(struct bw_kube_reflector *r, const char *data, size_t len);

/* Remembers that the stream was ended here rather than by the server or the
 * network: what is left in the buffer then is no half event. */
static int on_watch_data(void *userdata, const char *data, size_t len)
{
	struct bw_kube_reflector *r = userdata;
	int k = on_watch_data_(r, data, len);

	if (k < 0)
		r->aborted = true;
	return k;
}

static int on_watch_data_(struct bw_kube_reflector *r, const char *data, size_t len)
{
	size_t start = 0;

	if (len == 0) {
		/* Headers with a 2xx: the stream is open. */
		succeeded(r);
		STATS(r, {
			r->stats.watches++;
			r->stats.watching = true;
		});
		return 0;
	}
	if (r->line_len + len > BW_KUBE_EVENT_MAX) {
		STATS(r, r->stats.decode_errors++);
		free(r->watch_error);
		r->watch_error = strprintf("watch %s: an event larger than %u MiB", r->path, BW_KUBE_EVENT_MAX >> 20);
		return -EBADMSG;
	}
	if (ARRAY_RESERVE(r->line, r->line_cap, r->line_len + len + 1) < 0)
		return -ENOMEM;
	memcpy(r->line + r->line_len, data, len);
	r->line_len += len;
	for (size_t i = r->line_scan; i < r->line_len; i++) {
		if (r->line[i] != '\n')
			continue;
		int k = handle_event(r, r->line + start, i - start);

		if (k < 0)
			return k;
		start = i + 1;
		if (stopping(r))
			return -ECANCELED;
	}
	memmove(r->line, r->line + start, r->line_len - start);
	r->line_len -= start;
	r->line_scan = r->line_len;
	return 0;
}

/* Whether the line buffer holds more than whitespace. */
static bool partial_line(struct bw_kube_reflector *r)
{
	for (size_t i = 0; i < r->line_len; i++)
		if (!strchr(" \t\r\n", r->line[i]))
			return true;
	return false;
}

enum watch_end {
	WATCH_CLEAN,   /* ended normally (timeoutSeconds): watch again */
	WATCH_GONE,    /* 410 Gone: relist at once */
	WATCH_BAD,     /* an undecodable event: back off, then relist */
	WATCH_FAILED,  /* back off, then resume from the last resourceVersion */
	WATCH_STOPPED,
};

static enum watch_end do_watch(struct bw_kube_reflector *r)
{
	unsigned timeout_s = r->watch_timeout_s + (unsigned)(next_random(r) % r->watch_timeout_s);
	_cleanup_free_ char *query = NULL, *url = NULL, *error = NULL, *esc = NULL;
	long status = 0;
	uint64_t start = clock_ns(CLOCK_MONOTONIC);
	bool partial;
	int k;

	esc = url_escape(r->rv);
	query = esc ? strprintf("watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%u", esc,
				timeout_s)
		    : NULL;
	url = query ? append_query(r->path, query) : NULL;
	if (!url) {
		set_last_error(r, "out of memory");
		return WATCH_FAILED;
	}
	r->line_len = r->line_scan = 0;
	r->got_event = false;
	r->aborted = false;
	r->watch_error = mfree(r->watch_error);
	k = bw_kube_stream(r->client, url, (timeout_s + 60) * 1000u, on_watch_data, r, NULL, &status, &error);
	sync_unauthorized(r);
	partial = !r->aborted && partial_line(r);
	STATS(r, {
		r->stats.watching = false;
		if (partial)
			r->stats.partial_lines++;
	});
	r->line_len = r->line_scan = 0;
	if (k == -ECANCELED || stopping(r))
		return WATCH_STOPPED;
	if (k == -ESTALE || (k == -EREMOTEIO && status == 410)) {
		set_last_error(r, r->watch_error ? r->watch_error : error);
		return WATCH_GONE;
	}
	if (k == -EBADMSG && r->watch_error) {
		set_last_error(r, r->watch_error);
		return WATCH_BAD;
	}
	if (k == 0 && !partial) {
		/* A server that ends every watch at once without a word would
		 * make this a busy loop: that is a failure. */
		if (!r->got_event && clock_ns(CLOCK_MONOTONIC) - start < 1000000000ULL) {
			_cleanup_free_ char *m = strprintf("watch %s: ended at once", r->path);

			set_last_error(r, m);
			return WATCH_FAILED;
		}
		return WATCH_CLEAN;
	}
	if (k == 0) {
		_cleanup_free_ char *m = strprintf("watch %s: the stream ended inside an event", r->path);

		set_last_error(r, m);
	} else {
		set_last_error(r, r->watch_error ? r->watch_error : error);
	}
	return WATCH_FAILED;
}

/* Sleeps the backoff for this failure (interrupted by stop). */
static void back_off(struct bw_kube_reflector *r, unsigned *attempt)
{
	unsigned ms = bw_kube_backoff_ms(*attempt, r->base_ms, r->cap_ms, next_random(r));
	struct timespec ts;
	uint64_t deadline;

	r->failing = true;
	if (*attempt < 64)
		(*attempt)++;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	deadline = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec + (uint64_t)ms * 1000000ULL;
	ts.tv_sec = (time_t)(deadline / 1000000000ULL);
	ts.tv_nsec = (long)(deadline % 1000000000ULL);
	pthread_mutex_lock(&r->lock);
	r->stats.failures++;
	while (!atomic_load(&r->stop) && pthread_cond_timedwait(&r->cond, &r->lock, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&r->lock);
}

static void *reflector_thread(void *arg)
{
	struct bw_kube_reflector *r = arg;
	unsigned attempt = 0;
	bool need_list = true, consistent = false;

	while (!stopping(r)) {
		if (need_list) {
			int k = do_list(r, consistent);

			if (k == -ECANCELED || stopping(r))
				break;
			if (k == -ESTALE) {
				consistent = true;
				continue;
			}
			if (k < 0) {
				back_off(r, &attempt);
				continue;
			}
			need_list = false;
			consistent = false;
		}
		switch (do_watch(r)) {
		case WATCH_CLEAN:
			attempt = 0;
			break;
		case WATCH_GONE:
			STATS(r, r->stats.relists++);
			need_list = true;
			consistent = true;
			break;
		case WATCH_BAD:
			/* A relist makes the state right again; the backoff
			 * keeps a server that sends garbage from being hammered. */
			STATS(r, r->stats.relists++);
			need_list = true;
			consistent = true;
			back_off(r, &attempt);
			break;
		case WATCH_FAILED:
			if (r->got_event)
				attempt = 0;
			back_off(r, &attempt);
			break;
		case WATCH_STOPPED:
			break;
		}
	}
	return NULL;
}

struct bw_kube_reflector *bw_kube_reflector_new(const struct bw_kube_config *cfg,
						const struct bw_kube_reflector_options *opts, char **error)
{
	struct bw_kube_reflector *r;
	pthread_condattr_t ca;

	if (error)
		*error = NULL;
	if (!opts->path || opts->path[0] != '/') {
		set_error(error, -EINVAL, "reflector: the path must start with /");
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		set_error(error, -ENOMEM, "out of memory");
		return NULL;
	}
	r->on_event = opts->on_event;
	r->userdata = opts->userdata;
	r->watch_timeout_s = opts->watch_timeout_s ? opts->watch_timeout_s : 300;
	r->base_ms = opts->backoff_base_ms ? opts->backoff_base_ms : 200;
	r->cap_ms = opts->backoff_cap_ms ? opts->backoff_cap_ms : 30000;
	r->page_size = opts->list_page_size ? opts->list_page_size : 500;
	r->path = strdup(opts->path);
	r->cache = json_object_new_object();
	if (getrandom(&r->rnd, sizeof(r->rnd), GRND_NONBLOCK) != sizeof(r->rnd))
		r->rnd = clock_ns(CLOCK_MONOTONIC) ^ (uint64_t)(uintptr_t)r;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&r->lock, NULL);
	if (!r->path || !r->cache) {
		set_error(error, -ENOMEM, "out of memory");
		bw_kube_reflector_free(r);
		return NULL;
	}
	r->client = bw_kube_client_new(cfg, &opts->client, error);
	if (!r->client) {
		bw_kube_reflector_free(r);
		return NULL;
	}
	return r;
}

int bw_kube_reflector_start(struct bw_kube_reflector *r)
{
	int k;

	if (r->started)
		return -EALREADY;
	k = pthread_create(&r->thread, NULL, reflector_thread, r);
	if (k)
		return -k;
	r->started = true;
	return 0;
}

void bw_kube_reflector_stop(struct bw_kube_reflector *r)
{
	atomic_store(&r->stop, true);
	if (r->client)
		bw_kube_client_cancel(r->client);
	pthread_mutex_lock(&r->lock);
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

void bw_kube_reflector_join(struct bw_kube_reflector *r)
{
	if (r->started && !r->joined) {
		pthread_join(r->thread, NULL);
		r->joined = true;
	}
}

void bw_kube_reflector_free(struct bw_kube_reflector *r)
{
	if (!r)
		return;
	bw_kube_reflector_stop(r);
	bw_kube_reflector_join(r);
	bw_kube_client_free(r->client);
	json_object_put(r->cache);
	free(r->rv);
	free(r->item_kind);
	free(r->item_api_version);
	free(r->line);
	free(r->watch_error);
	free(r->path);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r);
}

void bw_kube_reflector_get_stats(struct bw_kube_reflector *r, struct bw_kube_reflector_stats *out)
{
	STATS(r, *out = r->stats);
}
