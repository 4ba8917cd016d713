/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kubernetes API client (http-client.h, json-c) and reflector. See
 * kube-client.h.
 *
 * Each client is one bw_http_client: one connection kept between requests,
 * every wait a poll() that bw_kube_client_cancel() interrupts from another
 * thread, so stopping never waits for a watch to time out.
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

#include "gnutls-dlopen.h"
#include "http-client.h"
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
 * curl_easy_escape does. */
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
	struct bw_http_client *http;
	unsigned request_timeout_ms;
	_Atomic uint64_t unauthorized;
};

int bw_kube_global_init(const char **why)
{
	return bw_gnutls_load(why);
}

/* The status arrives before any body byte: a stream is announced open to
 * on_data with a zero-length call. */
static int on_status(void *userdata, int status)
{
	struct transfer *t = userdata;

	t->status = status;
	if (t->on_data && status / 100 == 2) {
		int r;

		t->streaming = true;
		r = t->on_data(t->userdata, "", 0);
		if (r < 0)
			return t->abort_err = r;
	}
	return 0;
}

static int on_body(void *userdata, const char *data, size_t n)
{
	struct transfer *t = userdata;

	if (t->streaming) {
		int r = t->on_data(t->userdata, data, n);

		return r < 0 ? (t->abort_err = r) : 0;
	}
	if (t->len + n > BW_KUBE_BODY_MAX) {
		t->overflow = true;
		return -EFBIG;
	}
	if (ARRAY_RESERVE(t->body, t->cap, t->len + n + 1) < 0)
		return t->abort_err = -ENOMEM;
	memcpy(t->body + t->len, data, n);
	t->len += n;
	t->body[t->len] = '\0';
	return 0;
}

struct bw_kube_client *bw_kube_client_new(const struct bw_kube_config *cfg,
					  const struct bw_kube_client_options *opts, char **error)
{
	struct bw_kube_client_options o = opts ? *opts : (struct bw_kube_client_options){};
	struct bw_kube_client *c;
	struct bw_http_client_options h = {
		.server = cfg->server,
		.proxy = cfg->proxy_url,
		.tls = {
			.insecure = cfg->insecure_skip_tls_verify,
			.ca_data = cfg->ca_data,
			.ca_file = cfg->ca_file,
			.cert_data = cfg->client_cert_data,
			.cert_file = cfg->client_cert_file,
			.key_data = cfg->client_key_data,
			.key_file = cfg->client_key_file,
		},
		.connect_timeout_ms = o.connect_timeout_ms ? o.connect_timeout_ms : 10000,
		.idle_timeout_ms = (o.idle_timeout_s ? o.idle_timeout_s : 120) * 1000u,
		.user_agent = o.user_agent ? o.user_agent : "bulwarkd/" BW_VERSION,
	};
	char *why = NULL;
	int ret;

	if (error)
		*error = NULL;
	if (!cfg->server) {
		error_set(error, -EINVAL, "no API server configured");
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c || bw_kube_config_copy(&c->cfg, cfg) < 0) {
		free(c);
		error_set(error, -ENOMEM, "out of memory");
		return NULL;
	}
	c->request_timeout_ms = o.request_timeout_ms ? o.request_timeout_ms : 60000;
	ret = bw_http_client_new(&h, &c->http, &why);
	if (ret < 0) {
		error_set(error, ret, "%s", why);
		free(why);
		bw_kube_client_free(c);
		return NULL;
	}
	return c;
}

void bw_kube_client_free(struct bw_kube_client *c)
{
	if (!c)
		return;
	bw_http_client_free(c->http);
	bw_kube_config_clear(&c->cfg);
	free(c);
}

void bw_kube_client_cancel(struct bw_kube_client *c)
{
	bw_http_client_cancel(c->http);
}

uint64_t bw_kube_client_unauthorized(const struct bw_kube_client *c)
{
	return atomic_load(&c->unauthorized);
}

static int request_core(struct bw_kube_client *c, const char *method, const char *path,
			const char *content_type, const char *body, size_t body_len, unsigned timeout_ms,
			int (*on_data)(void *, const char *, size_t), void *userdata,
			struct json_object **out, long *http_status, char **error)
{
	_cleanup_free_ char *url = NULL, *why = NULL;
	struct transfer t = {};
	char *token = NULL;
	int r = 0;

	if (out)
		*out = NULL;
	if (http_status)
		*http_status = 0;
	if (error)
		*error = NULL;
	if (!path || path[0] != '/')
		return error_set(error, -EINVAL, "%s %s: the path must start with /", method, path ? path : "(null)");
	url = strprintf("%s%s", c->cfg.server, path);
	if (!url)
		return error_set(error, -ENOMEM, "out of memory");

	for (int attempt = 0; attempt < 2; attempt++) {
		struct bw_http_response resp = { .on_status = on_status, .on_body = on_body, .userdata = &t };
		char *headers;

		token = free_secret(token);
		token = bw_kube_config_token(&c->cfg);
		headers = strprintf("Accept: application/json\r\n%s%s%s%s%s%s", token ? "Authorization: Bearer " : "",
				    token ? token : "", token ? "\r\n" : "", content_type ? "Content-Type: " : "",
				    content_type ? content_type : "", content_type ? "\r\n" : "");
		if (!headers) {
			r = -ENOMEM;
			why = strdup("out of memory");
			break;
		}
		free(t.body);
		t = (struct transfer){ .on_data = on_data, .userdata = userdata };
		free(why);
		why = NULL;
		r = bw_http_request(c->http, method, path, headers, body, body ? body_len : 0, timeout_ms, &resp,
				    &why);
		headers = free_secret(headers);
		if (r == 0 && t.status == 401) {
			char *now;

			atomic_fetch_add(&c->unauthorized, 1);
			/* A rotated token: try the new one at once. */
			now = bw_kube_config_token(&c->cfg);
			if (attempt == 0 && now && !streq_ptr(now, token)) {
				now = free_secret(now);
				continue;
			}
			now = free_secret(now);
		}
		break;
	}
	token = free_secret(token);

	if (r < 0) {
		if (t.abort_err) {
			r = t.abort_err;
			error_set(error, r, "%s %s: %s", method, url, r == -ENOMEM ? "out of memory" : "stream aborted");
		} else if (t.overflow) {
			r = error_set(error, -EFBIG, "%s %s: response larger than %u MiB", method, url,
				      BW_KUBE_BODY_MAX >> 20);
		} else {
			error_set(error, r, "%s %s: %s", method, url, why ? why : strerror(-r));
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
			return error_set(error, -EBADMSG, "%s %s: HTTP %ld: the response is not JSON", method, url,
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
		error_set(error, -EREMOTEIO, "%s %s: HTTP %ld%s%s", method, url, t.status, msg ? ": " : "",
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

	if (error)
		*error = NULL;
	if (!opts->path || opts->path[0] != '/') {
		error_set(error, -EINVAL, "reflector: the path must start with /");
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		error_set(error, -ENOMEM, "out of memory");
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
	cond_init_monotonic(&r->cond);
	pthread_mutex_init(&r->lock, NULL);
	if (!r->path || !r->cache) {
		error_set(error, -ENOMEM, "out of memory");
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
