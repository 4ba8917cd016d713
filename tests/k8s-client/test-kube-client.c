/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for agent/k8s/kube-client.c: the backoff, object keys, transport
 * errors, and the reflector against a scripted plain-HTTP server in a thread
 * of this process, which checks every request the reflector makes and
 * answers with pages, chunked watch streams that split events across
 * writes, a cut inside an event, 410, 401 with a rotated token, 500, garbage
 * and finally a watch that never ends (stopping must not wait for it).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bw-test.h"
#include "k8s/kube-client.h"
#include "util.h"

#define STREQ(a, b) ((a) && (b) && strcmp((a), (b)) == 0)

static char dir[] = "/tmp/bw-kube-client-XXXXXX";
static char token_path[256];

static void write_token(const char *t)
{
	FILE *f = fopen(token_path, "w");

	if (!f) {
		perror(token_path);
		exit(2);
	}
	fprintf(f, "%s\n", t);
	fclose(f);
}

/* ---- pure functions ---- */

static void test_backoff(void)
{
	unsigned max = 0;
	bool in_range = true;

	ASSERT(bw_kube_backoff_ms(0, 200, 30000, 0) == 0);
	ASSERT(bw_kube_backoff_ms(0, 200, 30000, 200) == 200);
	ASSERT(bw_kube_backoff_ms(0, 200, 30000, 201) == 0);
	ASSERT(bw_kube_backoff_ms(1, 200, 30000, 400) == 400);
	ASSERT(bw_kube_backoff_ms(3, 200, 30000, 1600) == 1600);
	ASSERT(bw_kube_backoff_ms(7, 200, 30000, 25600) == 25600);
	ASSERT(bw_kube_backoff_ms(8, 200, 30000, 30000) == 30000); /* 51200 capped */
	ASSERT(bw_kube_backoff_ms(8, 200, 30000, 30001) == 0);
	ASSERT(bw_kube_backoff_ms(64, 200, 30000, UINT64_MAX) <= 30000);
	ASSERT(bw_kube_backoff_ms(1000, 200, 30000, 12345) == 12345);
	for (uint64_t r = 0; r < 100000; r += 7) {
		unsigned v = bw_kube_backoff_ms(2, 200, 30000, r * 0x9e3779b97f4a7c15ULL);

		in_range = in_range && v <= 800;
		if (v > max)
			max = v;
	}
	ASSERT(in_range);
	ASSERT(max > 700); /* the whole range is used */
}

static void test_object_key(void)
{
	struct json_object *o = json_tokener_parse("{\"metadata\":{\"name\":\"web-1\",\"namespace\":\"shop\"}}");
	char *k = bw_kube_object_key(o);

	ASSERT(STREQ(k, "shop/web-1"));
	free(k);
	json_object_put(o);
	o = json_tokener_parse("{\"metadata\":{\"name\":\"lock-shells\"}}");
	k = bw_kube_object_key(o);
	ASSERT(STREQ(k, "lock-shells"));
	free(k);
	json_object_put(o);
	o = json_tokener_parse("{\"metadata\":{\"namespace\":\"shop\"}}");
	errno = 0;
	ASSERT(bw_kube_object_key(o) == NULL && errno == EINVAL);
	json_object_put(o);
	ASSERT(bw_kube_object_key(NULL) == NULL);
	ASSERT(STREQ(bw_kube_event_name(BW_KUBE_SYNC_END), "SYNC_END"));
	k = bw_kube_node_pods_path("node-a.example");
	ASSERT(STREQ(k, "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a.example"));
	free(k);
	k = bw_kube_node_pods_path("a b&c=d");
	ASSERT(STREQ(k, "/api/v1/pods?fieldSelector=spec.nodeName%3Da%20b%26c%3Dd"));
	free(k);
}

/* ---- a scripted HTTP server ---- */

static int listen_fd = -1;
static int port;
static char *requests[32]; /* request line + " auth=" + Authorization */
static atomic_int n_requests;
static atomic_bool server_failed;

static void xwrite(int fd, const char *s, size_t n)
{
	while (n > 0) {
		/* send, not write: a client that already left must not kill
		 * the test with SIGPIPE (seen once in CI, under ASan). */
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

		if (w <= 0)
			return; /* the client left: the script goes on */
		s += w;
		n -= (size_t)w;
	}
}

static void send_str(int fd, const char *s)
{
	xwrite(fd, s, strlen(s));
}

static void send_chunk(int fd, const char *s, size_t n)
{
	char head[32];

	snprintf(head, sizeof(head), "%zx\r\n", n);
	send_str(fd, head);
	xwrite(fd, s, n);
	send_str(fd, "\r\n");
}

static void send_json(int fd, int code, const char *body)
{
	char head[256];

	snprintf(head, sizeof(head),
		 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
		 code, strlen(body));
	send_str(fd, head);
	send_str(fd, body);
}

static void start_stream(int fd)
{
	send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
		     "Connection: close\r\n\r\n");
}

/* Accepts the next request; records it; checks that its line starts with
 * want_prefix (and contains want_too when not NULL). */
static int next_request(const char *want_prefix, const char *want_too)
{
	char buf[8192];
	size_t n = 0;
	int fd = accept(listen_fd, NULL, NULL);
	char *eol, *auth, *line;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	while (n < sizeof(buf) - 1) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);

		if (r <= 0)
			break;
		n += (size_t)r;
		buf[n] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	buf[n] = '\0';
	eol = strstr(buf, "\r\n");
	if (eol)
		*eol = '\0';
	auth = eol ? strcasestr(eol + 2, "\r\nAuthorization: ") : NULL;
	if (!auth && eol)
		auth = strncasecmp(eol + 2, "Authorization: ", 15) == 0 ? eol : NULL;
	if (auth) {
		auth += 2 + 15;
		auth[strcspn(auth, "\r\n")] = '\0';
	}
	line = xasprintf("%s auth=%s", buf, auth ? auth : "-");
	if (atomic_load(&n_requests) < (int)ELEMENTSOF(requests))
		requests[atomic_fetch_add(&n_requests, 1)] = line;
	else
		free(line);
	if (strncmp(buf, want_prefix, strlen(want_prefix)) != 0 || (want_too && !strstr(buf, want_too))) {
		fprintf(stderr, "server: got \"%s\", want \"%s\"...%s\n", buf, want_prefix, want_too ? want_too : "");
		atomic_store(&server_failed, true);
	}
	return fd;
}

#define NS(name, rv) "{\"metadata\":{\"name\":\"" name "\",\"resourceVersion\":\"" rv "\"}}"
#define NSK(name, rv) "{\"kind\":\"Namespace\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"" name "\",\"resourceVersion\":\"" rv "\"}}"
#define EV(type, obj) "{\"type\":\"" type "\",\"object\":" obj "}\n"
#define LIST(rv, cont, items) "{\"kind\":\"NamespaceList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"" rv "\"" cont "},\"items\":[" items "]}"

static void *server_main(void *arg)
{
	const char *ev;
	char buf[16];
	int fd;

	(void)arg;
	/* 1, 2: the first list, in two pages, from any cached state */
	fd = next_request("GET /api/v1/namespaces?limit=2&resourceVersion=0 HTTP/1.1", NULL);
	send_json(fd, 200, LIST("10", ",\"continue\":\"c1+/=\"", NS("a", "1") "," NS("b", "2")));
	close(fd);
	fd = next_request("GET /api/v1/namespaces?limit=2&continue=c1%2B%2F%3D HTTP/1.1", NULL);
	send_json(fd, 200, LIST("10", "", NS("c", "3")));
	close(fd);

	/* 3: watch; an event split across many writes, two in one write, a
	 * bookmark, a blank line, then a cut inside an event. */
	fd = next_request("GET /api/v1/namespaces?watch=1&allowWatchBookmarks=true&resourceVersion=10&timeoutSeconds=",
			  NULL);
	start_stream(fd);
	ev = EV("ADDED", NS("d", "11"));
	for (size_t i = 0; i < strlen(ev); i += 7) {
		send_chunk(fd, ev + i, strlen(ev + i) < 7 ? strlen(ev + i) : 7);
		usleep(1000);
	}
	ev = EV("MODIFIED", NSK("a", "12")) EV("BOOKMARK", "{\"kind\":\"Namespace\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"13\"}}") "\n";
	send_chunk(fd, ev, strlen(ev));
	ev = EV("DELETED", NS("b", "14"));
	send_chunk(fd, ev, strlen(ev) / 2);
	usleep(20000);
	close(fd); /* no final chunk */

	/* 4: resumed from the bookmark; the deletion again, then 410 */
	fd = next_request("GET /api/v1/namespaces?watch=1&allowWatchBookmarks=true&resourceVersion=13&", NULL);
	start_stream(fd);
	ev = EV("DELETED", NS("b", "14"))
		EV("ERROR", "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"too old resource version: 14 (15)\",\"reason\":\"Expired\",\"code\":410}");
	send_chunk(fd, ev, strlen(ev));
	send_chunk(fd, "", 0);
	close(fd);

	/* 5: relist, consistent: a unchanged, c changed, d gone, e new */
	fd = next_request("GET /api/v1/namespaces?limit=2 HTTP/1.1", NULL);
	send_json(fd, 200, LIST("16", ",\"continue\":\"c2\"", NS("a", "12") "," NS("c", "15")));
	close(fd);
	fd = next_request("GET /api/v1/namespaces?limit=2&continue=c2 HTTP/1.1", NULL);
	send_json(fd, 200, LIST("16", "", NS("e", "16")));
	close(fd);

	/* 6: 401 while the token rotates: retried at once with the new one */
	fd = next_request("GET /api/v1/namespaces?watch=1&allowWatchBookmarks=true&resourceVersion=16&", NULL);
	write_token("t2");
	send_json(fd, 401, "{\"kind\":\"Status\",\"code\":401,\"reason\":\"Unauthorized\",\"message\":\"Unauthorized\"}");
	close(fd);
	/* 7: 500 */
	fd = next_request("GET /api/v1/namespaces?watch=1&allowWatchBookmarks=true&resourceVersion=16&", NULL);
	send_json(fd, 500, "{\"kind\":\"Status\",\"code\":500,\"reason\":\"InternalError\",\"message\":\"etcd is down\"}");
	close(fd);
	/* 8: garbage in the stream */
	fd = next_request("GET /api/v1/namespaces?watch=1&allowWatchBookmarks=true&resourceVersion=16&", NULL);
	start_stream(fd);
	ev = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\n";
	send_chunk(fd, ev, strlen(ev));
	usleep(20000);
	close(fd);
	/* 9: the relist that follows: e is gone */
	fd = next_request("GET /api/v1/namespaces?limit=2 HTTP/1.1", NULL);
	send_json(fd, 200, LIST("16", "", NS("a", "12") "," NS("c", "15")));
	close(fd);
	/* 10: a watch that never ends: waits for the client to leave */
	fd = next_request("GET /api/v1/namespaces?watch=1&allowWatchBookmarks=true&resourceVersion=16&", NULL);
	start_stream(fd);
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	return NULL;
}

/* ---- the reflector against it ---- */

struct recorded {
	pthread_mutex_t lock;
	char *lines[64];
	int n;
	bool kinds_ok;
};

static void on_event(void *userdata, enum bw_kube_event type, struct json_object *obj)
{
	struct recorded *rec = userdata;
	struct json_object *md, *v;
	char *line;

	if (obj) {
		const char *name = "?", *rv = "?";

		if (json_object_object_get_ex(obj, "metadata", &md)) {
			if (json_object_object_get_ex(md, "name", &v))
				name = json_object_get_string(v);
			if (json_object_object_get_ex(md, "resourceVersion", &v))
				rv = json_object_get_string(v);
		}
		line = xasprintf("%s %s %s", bw_kube_event_name(type), name, rv);
		if (!json_object_object_get_ex(obj, "kind", &v) || !STREQ(json_object_get_string(v), "Namespace") ||
		    !json_object_object_get_ex(obj, "apiVersion", &v) || !STREQ(json_object_get_string(v), "v1"))
			rec->kinds_ok = false;
	} else {
		line = xasprintf("%s", bw_kube_event_name(type));
	}
	json_object_put(obj);
	pthread_mutex_lock(&rec->lock);
	if (rec->n < (int)ELEMENTSOF(rec->lines))
		rec->lines[rec->n++] = line;
	else
		free(line);
	pthread_mutex_unlock(&rec->lock);
}

static void test_reflector(void)
{
	static const char *const want[] = {
		"SYNC_BEGIN", "ADDED a 1", "ADDED b 2", "ADDED c 3", "SYNC_END",
		"ADDED d 11", "MODIFIED a 12", "DELETED b 14",
		"SYNC_BEGIN", "MODIFIED c 15", "ADDED e 16", "DELETED d 11", "SYNC_END",
		"SYNC_BEGIN", "DELETED e 16", "SYNC_END",
	};
	struct recorded rec = { .lock = PTHREAD_MUTEX_INITIALIZER, .kinds_ok = true };
	struct bw_kube_config cfg = {};
	struct bw_kube_reflector_options opts = {
		.path = "/api/v1/namespaces",
		.on_event = on_event,
		.userdata = &rec,
		.backoff_base_ms = 1,
		.backoff_cap_ms = 10,
		.list_page_size = 2,
	};
	struct bw_kube_reflector_stats s = {};
	struct bw_kube_reflector *r;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	pthread_t server;
	char *error = NULL;
	uint64_t t0;
	int i;

	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT(listen_fd >= 0);
	ASSERT(bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	ASSERT(listen(listen_fd, 16) == 0);
	ASSERT(getsockname(listen_fd, (struct sockaddr *)&sa, &sl) == 0);
	port = ntohs(sa.sin_port);
	pthread_create(&server, NULL, server_main, NULL);

	cfg.server = xasprintf("http://127.0.0.1:%d", port);
	cfg.token_file = strdup(token_path);
	write_token("t1");
	r = bw_kube_reflector_new(&cfg, &opts, &error);
	ASSERT(r != NULL && error == NULL);
	bw_kube_config_clear(&cfg);
	ASSERT(bw_kube_reflector_start(r) == 0);

	/* Until the last watch is open (bounded). */
	for (i = 0; i < 10000; i++) {
		bw_kube_reflector_get_stats(r, &s);
		if (s.watching && s.watches == 4 && atomic_load(&n_requests) >= 11)
			break;
		usleep(1000);
	}
	ASSERT(s.watching && s.watches == 4);
	t0 = clock_ns(CLOCK_MONOTONIC);
	bw_kube_reflector_stop(r);
	bw_kube_reflector_join(r);
	{
		uint64_t ms = (clock_ns(CLOCK_MONOTONIC) - t0) / 1000000;

		printf("# stop + join with a watch open: %llu ms\n", (unsigned long long)ms);
		ASSERT(ms < 200);
	}
	bw_kube_reflector_get_stats(r, &s);
	bw_kube_reflector_free(r);
	pthread_join(server, NULL);
	close(listen_fd);

	ASSERT(!atomic_load(&server_failed));
	ASSERT(rec.n == (int)ELEMENTSOF(want));
	for (i = 0; i < rec.n && i < (int)ELEMENTSOF(want); i++)
		if (!STREQ(rec.lines[i], want[i])) {
			fprintf(stderr, "event %d: got \"%s\", want \"%s\"\n", i, rec.lines[i], want[i]);
			ASSERT(false);
		}
	ASSERT(rec.kinds_ok); /* list items and watch objects get kind and apiVersion */
	ASSERT(s.lists == 3);
	ASSERT(s.relists == 2);        /* 410, garbage */
	ASSERT(s.watches == 4);        /* 3, 4, 8, 10 opened */
	ASSERT(s.failures == 3);       /* cut (3), 500 (7), garbage (8); not the 401 retried at once */
	ASSERT(s.reconnects == 3);
	ASSERT(s.unauthorized == 1);
	ASSERT(s.events == 10);
	ASSERT(s.bookmarks == 1);
	ASSERT(s.decode_errors == 1);
	ASSERT(s.partial_lines == 1);  /* the cut event (the garbage was a whole line) */
	ASSERT(s.objects == 2);
	ASSERT(s.synced && !s.watching);
	ASSERT(STREQ(s.resource_version, "16"));
	ASSERT(strstr(s.last_error, "undecodable event") != NULL);
	/* the token: from the file, reread after the 401 */
	ASSERT(n_requests == 11);
	for (i = 0; i < n_requests; i++)
		ASSERT(strstr(requests[i], i < 7 ? " auth=Bearer t1" : " auth=Bearer t2") != NULL);
	for (i = 0; i < rec.n; i++)
		free(rec.lines[i]);
	for (i = 0; i < n_requests; i++)
		free(requests[i]);
}

/* ---- one-shot requests ---- */

static void test_requests(void)
{
	struct bw_kube_config cfg = { .server = strdup("http://127.0.0.1:1") };
	struct bw_kube_client *c;
	struct json_object *o = (void *)1;
	long status = 99;
	char *error = NULL;
	int k;

	c = bw_kube_client_new(&cfg, NULL, &error);
	ASSERT(c != NULL);
	k = bw_kube_get(c, "/api", &o, &status, &error);
	ASSERT(k == -ECONNREFUSED && status == 0 && o == NULL);
	ASSERT(error && strstr(error, "GET http://127.0.0.1:1/api: connect to 127.0.0.1 port 1: Connection refused"));
	free(error);
	k = bw_kube_get(c, "api", NULL, NULL, &error);
	ASSERT(k == -EINVAL && STREQ(error, "GET api: the path must start with /"));
	free(error);
	bw_kube_client_cancel(c);
	k = bw_kube_get(c, "/api", NULL, NULL, &error);
	ASSERT(k == -ECANCELED);
	free(error);
	bw_kube_client_free(c);

	/* a CA that is not PEM is refused when the client is made or used */
	free(cfg.server);
	cfg.server = strdup("https://127.0.0.1:1");
	cfg.ca_data = strdup("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
	c = bw_kube_client_new(&cfg, NULL, &error);
	if (c) {
		k = bw_kube_get(c, "/api", NULL, NULL, &error);
		ASSERT(k < 0);
		free(error);
		bw_kube_client_free(c);
	}
	bw_kube_config_clear(&cfg);
	c = bw_kube_client_new(&cfg, NULL, &error);
	ASSERT(c == NULL && STREQ(error, "no API server configured"));
	free(error);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(token_path, sizeof(token_path), "%s/token", dir);
	ASSERT(bw_kube_global_init(NULL) == 0);
	test_backoff();
	test_object_key();
	test_requests();
	test_reflector();
	unlink(token_path);
	rmdir(dir);
	return bw_test_summary();
}
