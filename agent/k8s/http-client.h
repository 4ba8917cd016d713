/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An HTTP/1.1 client for one server: the Kubernetes API server. One
 * connection, kept open between requests; TLS with GnuTLS (loaded on first
 * use, gnutls-dlopen.h), responses parsed by http-parser (chunked streams
 * included), through an HTTP proxy when one is configured or named by the
 * environment as kubectl reads it. Everything that waits (connect, TLS
 * handshake, reads) waits in poll() beside an eventfd that
 * bw_http_client_cancel() writes, so a transfer ends within milliseconds of
 * a cancel; only a DNS lookup (getaddrinfo) cannot be interrupted.
 *
 * Why not libcurl: bulwarkd's resident memory. Debian's libcurl4 brings
 * OpenSSL and, through librtmp, libssh2 and libldap, GnuTLS, Kerberos and
 * SASL as well: 8.5 MiB resident with a TLS session open, against 2-3 MiB
 * for GnuTLS alone (bench/host/footprint-host.sh; docs/DESIGN.md "Memory").
 * What the API server needs from HTTP is small: GET, PATCH, a body, a
 * chunked watch stream, a proxy tunnel.
 *
 * A client is used from one thread at a time; bw_http_client_cancel() may be
 * called from any thread. SIGPIPE is never raised (MSG_NOSIGNAL).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct bw_http_client;

struct bw_http_tls {
	bool insecure;            /* no verification of the server at all */
	const char *ca_data;      /* PEM; else ca_file; else the system's CAs */
	const char *ca_file;
	const char *cert_data;    /* client certificate, PEM (data or file) */
	const char *cert_file;
	const char *key_data;     /* its key, PEM (data or file) */
	const char *key_file;
};

struct bw_http_client_options {
	const char *server;        /* http[s]://host[:port][/prefix]; host may be [IPv6] */
	/* NULL: the environment's (HTTPS_PROXY, https_proxy, HTTP_PROXY,
	 * http_proxy, NO_PROXY, no_proxy, as kubectl; never for localhost);
	 * else http://[user:pass@]host[:port]. */
	const char *proxy;
	struct bw_http_tls tls;     /* strings are copied when the client is made */
	unsigned connect_timeout_ms; /* TCP connect, proxy tunnel and TLS handshake; 0: 10000 */
	unsigned idle_timeout_ms;    /* no byte received for this long ends a transfer; 0: none */
	const char *user_agent;
};

/* What a request does with the response. Either callback may return a
 * negative errno to end the transfer; bw_http_request() then returns it. */
struct bw_http_response {
	/* The final status (interim 1xx responses are skipped), once, when
	 * the headers are complete. */
	int (*on_status)(void *userdata, int status);
	/* The body as it arrives, chunked encoding removed. */
	int (*on_body)(void *userdata, const char *data, size_t len);
	void *userdata;
};

/* Whether url can be a client's server (proxy false) or its proxy: 0, or
 * -EINVAL (-ENOMEM) with *why (static text) saying why not. The same check
 * bw_http_client_new() makes, for reading a kubeconfig. */
int bw_http_url_check(const char *url, bool proxy, const char **why);

/* 0 and *out, or a negative errno (-EINVAL: a server or proxy URL that
 * cannot be used) with *error set. No connection is made here. */
int bw_http_client_new(const struct bw_http_client_options *opts, struct bw_http_client **out, char **error);
void bw_http_client_free(struct bw_http_client *c);

/* From any thread: ends the transfer under way, and every later one, with
 * -ECANCELED. */
void bw_http_client_cancel(struct bw_http_client *c);

/* The proxy requests go through (its host:port), or NULL for none. */
const char *bw_http_client_proxy(const struct bw_http_client *c);

/*
 * One request: method, the target appended to the server's prefix (a path
 * starting with "/", with its query), extra header lines ("Name: value\r\n"
 * each, or NULL), a body (body_len bytes; Content-Length is sent whenever
 * body is not NULL). timeout_ms bounds the whole request (0: none).
 * Returns 0 once the whole response has been read, or:
 *   -ECONNREFUSED, -EHOSTUNREACH (name not resolved, no route),
 *   -ETIMEDOUT (connect, whole-request or idle timeout),
 *   -EPROTO (TLS: handshake, certificate, key),
 *   -ECONNRESET (the connection ended before the response did),
 *   -EIO (a response that is not HTTP, a proxy refusing the tunnel),
 *   -ECANCELED, -ENOMEM, -EINVAL (a header with a line break),
 *   or what a callback returned;
 * *error (always set on failure) says what failed without the method and
 * URL. A connection kept from an earlier request that the server has
 * closed meanwhile is replaced once, transparently, if nothing of the
 * response had arrived.
 */
int bw_http_request(struct bw_http_client *c, const char *method, const char *target, const char *headers,
		    const char *body, size_t body_len, unsigned timeout_ms, const struct bw_http_response *resp,
		    char **error);

/* For tests: whether host (a name or an address, no port) on port is
 * excluded from proxying by a NO_PROXY value (comma-separated: "*", names
 * matching themselves and their subdomains, with an optional leading dot,
 * addresses, CIDR blocks, each optionally ":port"). */
bool bw_http_no_proxy_match(const char *no_proxy, const char *host, unsigned port);
