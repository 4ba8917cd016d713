/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A Kubernetes API client (http-client.h: HTTP/1.1 on GnuTLS) with json-c,
 * and a reflector: the
 * list-then-watch loop that keeps a local copy of one collection (pods of
 * this node, namespaces, policies) and reports its changes.
 *
 * Threads. A struct bw_kube_client is one connection to the API server, kept
 * between requests: use it from one thread at a time.
 * bw_kube_client_cancel() is the exception and may be called from any
 * thread; a transfer under way ends within milliseconds. Call
 * bw_kube_global_init() once before starting threads. Nothing here raises
 * SIGPIPE (sends use MSG_NOSIGNAL; bulwarkd also blocks it).
 *
 * A reflector runs in its own thread with its own client. Its callback is
 * invoked from that thread, one call at a time per reflector; different
 * reflectors call theirs concurrently. While the API server is unreachable a
 * reflector reports nothing: the consumer keeps (and enforces) the last
 * state it was told, and a reflector only reports a deletion that a
 * successful LIST or a watch event showed.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kube-config.h"

struct bw_kube_client;

struct bw_kube_client_options {
	unsigned connect_timeout_ms; /* 0: 10000 */
	unsigned request_timeout_ms; /* whole request except watches; 0: 60000 */
	/* A transfer that receives nothing for this long is abandoned (a dead
	 * connection, a hung server). Watches get
	 * bookmarks about once a minute, so keep it above that. 0: 120. */
	unsigned idle_timeout_s;
	const char *user_agent;      /* 0: "bulwarkd/VERSION" */
};

/* Loads GnuTLS (see gnutls-dlopen.h), once (thread-safe, idempotent). 0, or
 * -ELIBACC (GnuTLS missing or older than 3.7) with
 * *why (static text) saying what failed. */
int bw_kube_global_init(const char **why);

/* A client for cfg, which is copied. NULL on failure with *error set. */
struct bw_kube_client *bw_kube_client_new(const struct bw_kube_config *cfg,
					  const struct bw_kube_client_options *opts, char **error);
void bw_kube_client_free(struct bw_kube_client *c);

/* From any thread: aborts the transfer under way within milliseconds and
 * makes every later request fail with -ECANCELED. */
void bw_kube_client_cancel(struct bw_kube_client *c);

/* 401 responses the client has received (each one also rereads the token:
 * a request answered 401 is retried once at once when the token changed). */
uint64_t bw_kube_client_unauthorized(const struct bw_kube_client *c);

/*
 * Requests. path starts with "/" and may carry a query; it is appended to the
 * config's server. Results:
 *   0: a 2xx response; *out (when out is not NULL) receives its JSON body
 *      (NULL for an empty body);
 *   -EREMOTEIO: another HTTP status, in *http_status; *out receives the
 *      body when it is JSON (usually a metav1.Status), *error a message with
 *      the Status's message;
 *   -EBADMSG: a 2xx response whose body is not JSON;
 *   a negative errno for a transport failure (*http_status 0):
 *      -ECONNREFUSED, -EHOSTUNREACH, -ETIMEDOUT, -ECONNRESET, -EPROTO (TLS),
 *      -ECANCELED (bw_kube_client_cancel), -EIO, -ENOMEM.
 * http_status, out and error may be NULL. On failure *out is NULL unless
 * stated above, and *error names the method and URL.
 */
int bw_kube_request(struct bw_kube_client *c, const char *method, const char *path,
		    const char *content_type, const char *body, size_t body_len,
		    struct json_object **out, long *http_status, char **error);
int bw_kube_get(struct bw_kube_client *c, const char *path, struct json_object **out, long *http_status,
		char **error);
/* content_type: "application/merge-patch+json" (status), or
 * "application/json-patch+json", "application/strategic-merge-patch+json". */
int bw_kube_patch(struct bw_kube_client *c, const char *path, const char *content_type, const char *body,
		  struct json_object **out, long *http_status, char **error);

/* A streamed GET (a watch): once the response headers have arrived with a
 * 2xx status, on_data is called once with len 0 (the stream is open), then
 * with every piece of the body as it arrives (pieces do not follow line or
 * event boundaries). Returning a negative errno from on_data ends the
 * transfer, and bw_kube_stream then returns that errno. Other statuses are
 * handled as in bw_kube_request. A transfer that ends cleanly returns 0; one
 * cut short returns -ECONNRESET, -ETIMEDOUT, ... as above (*http_status 0).
 * timeout_ms: the whole transfer, 0 for none. */
int bw_kube_stream(struct bw_kube_client *c, const char *path, unsigned timeout_ms,
		   int (*on_data)(void *userdata, const char *data, size_t len), void *userdata,
		   struct json_object **out, long *http_status, char **error);

/* ---- reflector ---- */

enum bw_kube_event {
	BW_KUBE_SYNC_BEGIN, /* a LIST's snapshot starts (obj NULL) */
	BW_KUBE_ADDED,
	BW_KUBE_MODIFIED,
	BW_KUBE_DELETED,
	BW_KUBE_SYNC_END,   /* the snapshot is complete: the consumer's view now
			     * equals the server's (obj NULL) */
};

const char *bw_kube_event_name(enum bw_kube_event type);

/*
 * The callback. obj is a new reference that the callback owns: it must
 * json_object_put() it, now or after handing it to another thread; it shares
 * nothing with the reflector (json-c reference counts are not atomic, so the
 * reflector never passes out an object it keeps). Every object carries
 * apiVersion, kind and metadata.{name, resourceVersion} (namespace for
 * namespaced kinds): list items get apiVersion and kind from the list.
 *
 * Order: for one key (namespace/name), ADDED, then MODIFIED..., then DELETED,
 * each with a newer resourceVersion, never a duplicate. A snapshot (after the
 * first LIST, or a relist after 410 Gone) is SYNC_BEGIN, ADDED or MODIFIED
 * for what is new or changed (nothing for what is unchanged since it was
 * last reported), DELETED for what is gone, SYNC_END.
 *
 * Runs in the reflector's thread; it may call bw_kube_reflector_stop() and
 * bw_kube_reflector_get_stats(), not join or free. Keep it short (queue the
 * object): the watch stream is not read while it runs.
 */
typedef void (*bw_kube_event_fn)(void *userdata, enum bw_kube_event type, struct json_object *obj);

struct bw_kube_reflector_options {
	/* The collection, with its query if any:
	 * "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode1", "/api/v1/namespaces",
	 * "/apis/bulwark.dev/v1alpha1/clusterbulwarkpolicies". */
	const char *path;
	bw_kube_event_fn on_event;
	void *userdata;
	unsigned watch_timeout_s; /* timeoutSeconds, randomized in [t, 2t); 0: 300 */
	unsigned backoff_base_ms; /* 0: 200 */
	unsigned backoff_cap_ms;  /* 0: 30000 */
	unsigned list_page_size;  /* limit= for LIST pages; 0: 500 */
	struct bw_kube_client_options client;
};

struct bw_kube_reflector_stats {
	uint64_t lists;         /* snapshots completed (LIST, all pages) */
	uint64_t relists;       /* relists forced by 410 Gone (or an undecodable event) */
	uint64_t watches;       /* watch streams opened (HTTP 200) */
	uint64_t failures;      /* failed requests or streams; each is followed by a backoff */
	uint64_t reconnects;    /* LIST or watch succeeding again after failures */
	uint64_t unauthorized;  /* 401 responses */
	uint64_t events;        /* ADDED, MODIFIED, DELETED delivered */
	uint64_t bookmarks;
	uint64_t decode_errors; /* events or list items that could not be decoded */
	uint64_t partial_lines; /* half events discarded at the end of a stream */
	uint64_t objects;       /* in the reflector's cache now */
	bool synced;            /* a snapshot has been delivered */
	bool watching;          /* a watch stream is open now */
	uint64_t last_sync_ns;  /* CLOCK_REALTIME of the last SYNC_END, 0: none */
	uint64_t last_list_ms;  /* how long the last LIST took (all pages) */
	uint64_t last_error_ns; /* CLOCK_REALTIME of last_error, 0: none */
	char resource_version[64]; /* where the next watch starts */
	char last_error[256];
};

struct bw_kube_reflector;

/* Creates a reflector (cfg and opts->path are copied); does not start it.
 * NULL on failure with *error set. */
struct bw_kube_reflector *bw_kube_reflector_new(const struct bw_kube_config *cfg,
						const struct bw_kube_reflector_options *opts, char **error);
/* Starts the thread: 0 or a negative errno. */
int bw_kube_reflector_start(struct bw_kube_reflector *r);
/* Asks the thread to stop (any thread, the callback included): a transfer
 * under way or a backoff wait ends within milliseconds. */
void bw_kube_reflector_stop(struct bw_kube_reflector *r);
/* Waits for the thread to end (after stop). Not from the callback. */
void bw_kube_reflector_join(struct bw_kube_reflector *r);
/* Stops, joins and frees; NULL is accepted. */
void bw_kube_reflector_free(struct bw_kube_reflector *r);
/* A consistent copy of the counters (any thread). */
void bw_kube_reflector_get_stats(struct bw_kube_reflector *r, struct bw_kube_reflector_stats *out);

/* "/api/v1/pods?fieldSelector=spec.nodeName%3D<node, escaped>": the pods
 * bound to one node, for a reflector's path. NULL on ENOMEM. */
char *bw_kube_node_pods_path(const char *node_name);

/* The cache key of an object: "namespace/name", or "name" when it has no
 * namespace. NULL when metadata.name is missing (errno EINVAL) or ENOMEM. */
char *bw_kube_object_key(struct json_object *obj);

/* The reflector's backoff: full jitter, a uniformly random delay in
 * [0, min(cap, base * 2^attempt)] milliseconds; rnd is a random 64-bit value. */
unsigned bw_kube_backoff_ms(unsigned attempt, unsigned base_ms, unsigned cap_ms, uint64_t rnd);
