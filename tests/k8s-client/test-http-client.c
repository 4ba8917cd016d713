/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for agent/k8s/http-client.c against a scripted plain-HTTP
 * server in a thread of this process: URLs refused with their reason,
 * NO_PROXY matching, a connection kept between requests, a kept connection
 * the server closed (replaced once, transparently), interim 1xx responses,
 * a body ending with the connection, a response that is not HTTP, idle and
 * whole-request timeouts, a cancel from another thread, and proxies from
 * the environment (absolute URI, Proxy-Authorization, NO_PROXY, never for
 * loopback) and a proxy refusing the CONNECT tunnel. TLS through GnuTLS
 * and a working tunnel are tested against tests/k8s/apiserver.py
 * (test-reflector.sh).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bw-test.h"
#include "k8s/http-client.h"

#define STREQ(a, b) ((a) && (b) && strcmp((a), (b)) == 0)

/* ---- URLs and NO_PROXY ---- */

static void bad_url(const char *server, const char *proxy, const char *want)
{
	struct bw_http_client_options o = { .server = server, .proxy = proxy };
	struct bw_http_client *c = (void *)1;
	char *error = NULL;

	ASSERT(bw_http_client_new(&o, &c, &error) == -EINVAL && c == NULL);
	if (!error || !strstr(error, want))
		fprintf(stderr, "error \"%s\", want \"%s\"\n", error ? error : "(null)", want);
	ASSERT(error && strstr(error, want));
	free(error);
}

static void test_urls(void)
{
	bad_url("ftp://h", NULL, "server ftp://h: the scheme must be http:// or https://");
	bad_url("https://", NULL, "no host");
	bad_url("https://h:0", NULL, "the port is not a number from 1 to 65535");
	bad_url("https://h:99999", NULL, "the port is not a number from 1 to 65535");
	bad_url("https://h:1x", NULL, "the port is not a number");
	bad_url("https://h/p?q=1", NULL, "a query or fragment is not allowed");
	bad_url("https://[::1", NULL, "closing ]");
	bad_url("https://u:p@h", NULL, "credentials in the URL");
	bad_url("https://h", "socks5://p:1080", "only http:// proxies are supported");
	bad_url("https://h", "http://p:x", "the port is not a number");
}

static void test_no_proxy(void)
{
	ASSERT(bw_http_no_proxy_match("*", "anything", 443));
	ASSERT(!bw_http_no_proxy_match("", "h", 443));
	ASSERT(!bw_http_no_proxy_match(NULL, "h", 443));
	ASSERT(bw_http_no_proxy_match("example.com", "example.com", 443));
	ASSERT(bw_http_no_proxy_match("example.com", "API.Example.com", 443));
	ASSERT(!bw_http_no_proxy_match("example.com", "badexample.com", 443));
	ASSERT(!bw_http_no_proxy_match(".example.com", "example.com", 443));
	ASSERT(bw_http_no_proxy_match(".example.com", "a.example.com", 443));
	ASSERT(bw_http_no_proxy_match("*.example.com", "a.example.com", 443));
	ASSERT(bw_http_no_proxy_match("other, example.com:6443", "example.com", 6443));
	ASSERT(!bw_http_no_proxy_match("example.com:6443", "example.com", 443));
	ASSERT(bw_http_no_proxy_match("10.0.0.0/8", "10.96.0.1", 443));
	ASSERT(!bw_http_no_proxy_match("10.0.0.0/8", "11.0.0.1", 443));
	ASSERT(bw_http_no_proxy_match("10.96.0.0/12", "10.111.255.255", 443));
	ASSERT(!bw_http_no_proxy_match("10.96.0.0/12", "10.112.0.0", 443));
	ASSERT(!bw_http_no_proxy_match("10.0.0.0/8", "ten.example", 443));
	ASSERT(bw_http_no_proxy_match("192.168.1.5", "192.168.1.5", 443));
	ASSERT(bw_http_no_proxy_match("fd00::/8", "fd00::1", 443));
	ASSERT(bw_http_no_proxy_match("[fd00::1]:443", "fd00::1", 443));
	ASSERT(!bw_http_no_proxy_match("[fd00::1]:443", "fd00::1", 6443));
	ASSERT(bw_http_no_proxy_match("fd00::1", "fd00::1", 6443));
	ASSERT(!bw_http_no_proxy_match("fd00::/8", "10.0.0.1", 443));
}

/* ---- a scripted server ---- */

static int listen_fd = -1;
static int port;
static char last_request[8192];
static atomic_int accepted;
static atomic_bool server_failed;

static void send_str(int fd, const char *s)
{
	size_t n = strlen(s);

	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* Reads one request's head (and its Content-Length body) from fd into
 * last_request; false at EOF. */
static bool read_request(int fd)
{
	size_t n = 0;
	char *end = NULL, *cl;
	size_t want = 0;

	for (;;) {
		ssize_t r;

		if (end && n >= (size_t)(end + 4 - last_request) + want)
			break;
		if (n == sizeof(last_request) - 1)
			break;
		r = read(fd, last_request + n, sizeof(last_request) - 1 - n);
		if (r <= 0)
			return false;
		n += (size_t)r;
		last_request[n] = '\0';
		if (!end && (end = strstr(last_request, "\r\n\r\n"))) {
			cl = strcasestr(last_request, "\r\nContent-Length: ");
			want = cl && cl < end ? strtoul(cl + 18, NULL, 10) : 0;
		}
	}
	return true;
}

static int accept_one(void)
{
	int fd = accept(listen_fd, NULL, NULL);

	if (fd >= 0)
		atomic_fetch_add(&accepted, 1);
	return fd;
}

static bool starts(const char *prefix)
{
	return strncmp(last_request, prefix, strlen(prefix)) == 0;
}

static void expect(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "server: %s; request:\n%s\n", what, last_request);
		atomic_store(&server_failed, true);
	}
}

static int cancel_pipe[2];

static void *server_main(void *arg)
{
	char buf[64];
	int fd;

	(void)arg;
	/* 1, 2: two requests on one kept connection; the second has a body */
	fd = accept_one();
	expect(read_request(fd) && starts("GET /prefix/one HTTP/1.1\r\nHost: 127.0.0.1:"),
	       "request 1");
	expect(strstr(last_request, "\r\nX-Test: yes\r\n") != NULL, "request 1: the extra header");
	send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst");
	expect(read_request(fd) && starts("PATCH /prefix/two HTTP/1.1\r\n"), "request 2");
	expect(strstr(last_request, "\r\nContent-Length: 4\r\n\r\nbody") != NULL, "request 2: the body");
	send_str(fd, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
		     "3\r\nsec\r\n3\r\nond\r\n0\r\n\r\n");
	/* 3: the server closes the kept connection without saying so: the
	 * client replaces it, once */
	close(fd);
	fd = accept_one();
	expect(read_request(fd) && starts("GET /prefix/three "), "request 3");
	/* a body ending with the connection */
	send_str(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nthird, to the end");
	close(fd);
	/* 4: not HTTP */
	fd = accept_one();
	read_request(fd);
	send_str(fd, "SSH-2.0-OpenSSH_9.2\r\n\r\n");
	close(fd);
	/* 5: the headers, then nothing: the idle timeout */
	fd = accept_one();
	read_request(fd);
	send_str(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n");
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	/* 6: nothing at all, until the client is cancelled */
	fd = accept_one();
	read_request(fd);
	expect(write(cancel_pipe[1], "x", 1) == 1, "cancel pipe");
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	/* 7: through a proxy (this server) from the environment */
	fd = accept_one();
	expect(read_request(fd) && starts("GET http://api.example.invalid:6443/x HTTP/1.1\r\n"),
	       "proxied request: the absolute URI");
	expect(strstr(last_request, "\r\nHost: api.example.invalid:6443\r\n") != NULL, "proxied request: Host");
	/* "user:pa@ss" */
	expect(strstr(last_request, "\r\nProxy-Authorization: Basic dXNlcjpwYUBzcw==\r\n") != NULL,
	       "proxied request: Proxy-Authorization");
	send_str(fd, "HTTP/1.1 204 No Content\r\n\r\n");
	read_request(fd);
	close(fd);
	/* 8: a proxy refusing the tunnel */
	fd = accept_one();
	expect(read_request(fd) && starts("CONNECT api.example.invalid:443 HTTP/1.1\r\n"),
	       "CONNECT");
	send_str(fd, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
	read_request(fd);
	close(fd);
	return NULL;
}

struct seen {
	int status, statuses;
	char body[256];
	size_t len;
};

static int on_status(void *userdata, int status)
{
	struct seen *s = userdata;

	s->status = status;
	s->statuses++;
	return 0;
}

static int on_body(void *userdata, const char *data, size_t len)
{
	struct seen *s = userdata;

	if (s->len + len >= sizeof(s->body))
		return -EFBIG;
	memcpy(s->body + s->len, data, len);
	s->len += len;
	s->body[s->len] = '\0';
	return 0;
}

static int request(struct bw_http_client *c, const char *method, const char *target, const char *body,
		   unsigned timeout_ms, struct seen *s, char **error)
{
	struct bw_http_response r = { on_status, on_body, s };

	*s = (struct seen){};
	return bw_http_request(c, method, target, "X-Test: yes\r\n", body, body ? strlen(body) : 0, timeout_ms,
			       &r, error);
}

static void *canceller(void *arg)
{
	char ch;

	if (read(cancel_pipe[0], &ch, 1) == 1)
		bw_http_client_cancel(arg);
	return NULL;
}

static struct bw_http_client *client(const char *server, const char *proxy, unsigned idle_ms)
{
	struct bw_http_client_options o = { .server = server, .proxy = proxy, .idle_timeout_ms = idle_ms,
					    .user_agent = "test" };
	struct bw_http_client *c = NULL;
	char *error = NULL;

	if (bw_http_client_new(&o, &c, &error) < 0)
		fprintf(stderr, "client: %s\n", error);
	ASSERT(c != NULL && error == NULL);
	return c;
}

static void test_server(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	struct bw_http_client *c;
	pthread_t server, cancel_thread;
	char *server_url, *proxy_url, *proxy_desc, *error = NULL;
	struct seen s;
	int k;

	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT(listen_fd >= 0 && bind(listen_fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(listen_fd, 8) == 0);
	ASSERT(getsockname(listen_fd, (struct sockaddr *)&a, &len) == 0);
	port = ntohs(a.sin_port);
	ASSERT(pipe(cancel_pipe) == 0);
	ASSERT(pthread_create(&server, NULL, server_main, NULL) == 0);
	server_url = xasprintf("http://127.0.0.1:%d/prefix/", port);

	c = client(server_url, NULL, 0);
	ASSERT(bw_http_client_proxy(c) == NULL);
	k = request(c, "GET", "/one", NULL, 10000, &s, &error);
	ASSERT(k == 0 && s.status == 200 && s.statuses == 1 && STREQ(s.body, "first"));
	k = request(c, "PATCH", "/two", "body", 10000, &s, &error);
	ASSERT(k == 0 && s.status == 201 && s.statuses == 1 && STREQ(s.body, "second"));
	ASSERT(atomic_load(&accepted) == 1); /* one connection for both */
	k = request(c, "GET", "/three", NULL, 10000, &s, &error);
	ASSERT(k == 0 && s.status == 200 && STREQ(s.body, "third, to the end"));
	ASSERT(atomic_load(&accepted) == 2);
	k = request(c, "GET", "/four", NULL, 10000, &s, &error);
	ASSERT(k == -EIO && error && strstr(error, "not a valid HTTP response"));
	free(error);
	error = NULL;
	bw_http_client_free(c);

	/* idle: a stream that stops */
	c = client(server_url, NULL, 200);
	k = request(c, "GET", "/five", NULL, 0, &s, &error);
	ASSERT(k == -ETIMEDOUT && STREQ(s.body, "ok") && error && strstr(error, "no data received for 200 ms"));
	free(error);
	error = NULL;
	/* cancelled while waiting for an answer */
	ASSERT(pthread_create(&cancel_thread, NULL, canceller, c) == 0);
	k = request(c, "GET", "/six", NULL, 0, &s, &error);
	ASSERT(k == -ECANCELED && s.statuses == 0);
	free(error);
	error = NULL;
	pthread_join(cancel_thread, NULL);
	k = request(c, "GET", "/six", NULL, 0, &s, &error); /* and stays so */
	ASSERT(k == -ECANCELED && STREQ(error, "cancelled"));
	free(error);
	error = NULL;
	bw_http_client_free(c);

	/* proxies from the environment */
	proxy_url = xasprintf("user:pa%%40ss@127.0.0.1:%d", port);
	setenv("HTTP_PROXY", proxy_url, 1);
	setenv("https_proxy", proxy_url, 1);
	setenv("NO_PROXY", "other.example, .svc", 1);
	c = client("http://api.example.invalid:6443", NULL, 0);
	proxy_desc = xasprintf("127.0.0.1:%d", port);
	ASSERT(STREQ(bw_http_client_proxy(c), proxy_desc));
	free(proxy_desc);
	k = request(c, "GET", "/x", NULL, 10000, &s, &error);
	ASSERT(k == 0 && s.status == 204 && s.len == 0);
	bw_http_client_free(c);
	c = client("https://api.example.invalid", NULL, 0);
	k = request(c, "GET", "/x", NULL, 10000, &s, &error);
	ASSERT(k == -EIO && error && strstr(error, "refused the tunnel to api.example.invalid:443: HTTP/1.1 403 Forbidden"));
	free(error);
	error = NULL;
	bw_http_client_free(c);
	/* NO_PROXY, loopback, and a configured "" (none) */
	c = client("https://kubernetes.default.svc", NULL, 0);
	ASSERT(bw_http_client_proxy(c) == NULL);
	bw_http_client_free(c);
	c = client("https://127.0.0.1:6443", NULL, 0);
	ASSERT(bw_http_client_proxy(c) == NULL);
	bw_http_client_free(c);
	c = client("https://localhost:6443", NULL, 0);
	ASSERT(bw_http_client_proxy(c) == NULL);
	bw_http_client_free(c);
	c = client("https://api.example.invalid", "", 0);
	ASSERT(bw_http_client_proxy(c) == NULL);
	k = request(c, "GET", "/x", NULL, 10000, &s, &error);
	ASSERT(k == -EHOSTUNREACH && error && strstr(error, "cannot resolve api.example.invalid"));
	free(error);
	error = NULL;
	bw_http_client_free(c);
	unsetenv("HTTP_PROXY");
	unsetenv("https_proxy");
	unsetenv("NO_PROXY");

	pthread_join(server, NULL);
	ASSERT(!atomic_load(&server_failed));

	/* headers that would split the request; a whole-request timeout */
	c = client(server_url, NULL, 0);
	ASSERT(bw_http_request(c, "GET", "/x", "A: b\r\nInjected\r\n", NULL, 0, 0, NULL, &error) == -EINVAL);
	free(error);
	ASSERT(bw_http_request(c, "GET", "/x y", NULL, NULL, 0, 0, NULL, &error) == -EINVAL);
	free(error);
	error = NULL;
	k = request(c, "GET", "/late", NULL, 200, &s, &error); /* nobody accepts now: the backlog holds it */
	ASSERT(k == -ETIMEDOUT && error && strstr(error, "the request took longer than 200 ms"));
	free(error);
	bw_http_client_free(c);
	close(listen_fd);
	free(server_url);
	free(proxy_url);
}

int main(void)
{
	test_urls();
	test_no_proxy();
	test_server();
	return bw_test_summary();
}
