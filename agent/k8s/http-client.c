/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP/1.1 client on GnuTLS and http-parser. See http-client.h.
 *
 * A request: (re)connect if needed (TCP, the proxy's CONNECT tunnel, the
 * TLS handshake, all under the connect timeout), send the request in one
 * piece, feed what arrives to http-parser until it reports the end of the
 * message. Sockets are non-blocking and every wait is a poll() on the
 * socket and the cancel eventfd, with the nearest of the request's
 * deadline and the idle deadline (moved on by every byte received).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <http_parser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gnutls-dlopen.h"
#include "http-client.h"
#include "util.h"

/* A proxy's answer to CONNECT, headers included, must fit in this. */
#define PROXY_ANSWER_MAX 16384

struct url {
	bool https;
	char *user, *password; /* percent-decoded userinfo, or NULL */
	char *host;            /* no brackets around an IPv6 address */
	unsigned port;
	char *authority;       /* host[:port] as written (brackets kept): Host */
	char *hostport;        /* host:port, the port always (brackets kept): CONNECT */
	char *path;            /* "" or "/..." without a trailing "/" */
};

struct bw_http_client {
	struct url server;
	bool proxied;
	struct url proxy;
	char *proxy_authorization; /* "Proxy-Authorization: Basic ...\r\n", or NULL */
	struct bw_http_tls tls;
	unsigned connect_timeout_ms, idle_timeout_ms;
	char *user_agent;
	int cancel_fd;
	atomic_bool cancelled;

	/* The connection, between requests too. */
	int fd;
	gnutls_session_t session;
	gnutls_certificate_credentials_t cred;
	char buf[16384];
};

/* The nearer of two deadlines, 0 standing for none. */
static uint64_t nearer(uint64_t a, uint64_t b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	return a < b ? a : b;
}

static uint64_t after_ms(unsigned ms)
{
	return ms ? clock_ns(CLOCK_MONOTONIC) + (uint64_t)ms * 1000000ULL : 0;
}

/* ---- URLs and proxies ---- */

static void url_clear(struct url *u)
{
	free(u->user);
	free_secret(u->password);
	free(u->host);
	free(u->authority);
	free(u->hostport);
	free(u->path);
	*u = (struct url){};
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = (char)tolower((unsigned char)ch);
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

static char *percent_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			*o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

/* scheme://[user[:password]@]host[:port][/path]; *why (static) on -EINVAL. */
static int url_parse(const char *s, struct url *u, const char **why)
{
	const char *p, *auth, *host_end, *end;
	char *colon_port = NULL;

	*u = (struct url){};
	if (!strncasecmp(s, "https://", 8)) {
		u->https = true;
		p = s + 8;
	} else if (!strncasecmp(s, "http://", 7)) {
		p = s + 7;
	} else {
		*why = "the scheme must be http:// or https://";
		return -EINVAL;
	}
	end = p + strcspn(p, "/?#");
	if (strpbrk(p, "?#")) {
		*why = "a query or fragment is not allowed";
		return -EINVAL;
	}
	/* userinfo: up to the last '@' before the path */
	auth = p;
	for (const char *q = p; q < end; q++)
		if (*q == '@')
			auth = q + 1;
	if (auth != p) {
		const char *colon = memchr(p, ':', (size_t)(auth - 1 - p));

		u->user = percent_decode(p, (size_t)((colon ? colon : auth - 1) - p));
		if (colon)
			u->password = percent_decode(colon + 1, (size_t)(auth - 1 - colon - 1));
		if (!u->user || (colon && !u->password))
			goto nomem;
	}
	if (*auth == '[') {
		host_end = memchr(auth, ']', (size_t)(end - auth));
		if (!host_end) {
			*why = "an IPv6 address without its closing ]";
			goto inval;
		}
		u->host = strndup(auth + 1, (size_t)(host_end - auth - 1));
		host_end++;
	} else {
		host_end = memchr(auth, ':', (size_t)(end - auth));
		if (!host_end)
			host_end = end;
		u->host = strndup(auth, (size_t)(host_end - auth));
	}
	if (!u->host)
		goto nomem;
	if (!u->host[0]) {
		*why = "no host";
		goto inval;
	}
	for (const char *q = u->host; *q; q++)
		if ((unsigned char)*q <= ' ' || *q == '/' || *q == '\\' || *q == '@' || (unsigned char)*q >= 0x7f) {
			*why = "the host has a character a host name cannot have";
			goto inval;
		}
	u->port = u->https ? 443 : 80;
	if (host_end < end) {
		unsigned long port;

		if (*host_end != ':' || host_end + 1 == end) {
			*why = "a malformed port";
			goto inval;
		}
		errno = 0;
		port = strtoul(host_end + 1, &colon_port, 10);
		if (errno || colon_port != end || port == 0 || port > 65535 || !isdigit((unsigned char)host_end[1])) {
			*why = "the port is not a number from 1 to 65535";
			goto inval;
		}
		u->port = (unsigned)port;
	}
	u->authority = strndup(auth, (size_t)(end - auth));
	u->hostport = strchr(u->host, ':') ? strprintf("[%s]:%u", u->host, u->port) : strprintf("%s:%u", u->host, u->port);
	u->path = strdup(end);
	if (!u->authority || !u->hostport || !u->path)
		goto nomem;
	for (size_t n = strlen(u->path); n > 0 && u->path[n - 1] == '/'; n--)
		u->path[n - 1] = '\0';
	for (const char *q = u->path; *q; q++)
		if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f) {
			*why = "the path has a space or a control character";
			goto inval;
		}
	return 0;
nomem:
	url_clear(u);
	*why = "out of memory";
	return -ENOMEM;
inval:
	url_clear(u);
	return -EINVAL;
}

/* url_parse() with the rules of a role: a server carries no credentials
 * (the kubeconfig's user does), a proxy is http://. */
static int parse_endpoint(const char *s, bool proxy, struct url *u, const char **why)
{
	int ret;

	if (proxy && strncasecmp(s, "http://", 7)) {
		*u = (struct url){};
		*why = "only http:// proxies are supported";
		return -EINVAL;
	}
	ret = url_parse(s, u, why);
	if (ret == 0 && !proxy && u->user) {
		url_clear(u);
		*why = "credentials in the URL are not used; the kubeconfig's user is";
		return -EINVAL;
	}
	return ret;
}

int bw_http_url_check(const char *url, bool proxy, const char **why)
{
	struct url u;
	int ret = parse_endpoint(url, proxy, &u, why);

	url_clear(&u);
	return ret;
}

/* AF_INET or AF_INET6 with the address in out (16 bytes), when s is an
 * address; 0 when it is a name. */
static int address_family(const char *s, unsigned char out[16])
{
	if (inet_pton(AF_INET, s, out) == 1)
		return AF_INET;
	return inet_pton(AF_INET6, s, out) == 1 ? AF_INET6 : 0;
}

static bool is_ip_literal(const char *host)
{
	unsigned char a[16];

	return address_family(host, a) != 0;
}

/* Go's rule, which kubectl follows: requests to localhost and loopback
 * addresses never go through a proxy. */
static bool is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (!strcasecmp(host, "localhost"))
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* Whether addr (family af, 4 or 16 bytes) is inside net/bits. */
static bool prefix_match(const unsigned char *addr, const unsigned char *net, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;

	if (memcmp(addr, net, full))
		return false;
	return !rest || ((addr[full] ^ net[full]) & (0xff00 >> rest) & 0xff) == 0;
}

static bool no_proxy_entry(const char *e, size_t n, const char *host, unsigned port)
{
	char entry[256], *slash, *colon, *name;
	unsigned char h[16], net[16];
	int hf = 0;

	if (n == 0 || n >= sizeof(entry))
		return false;
	memcpy(entry, e, n);
	entry[n] = '\0';
	if (!strcmp(entry, "*"))
		return true;
	hf = address_family(host, h);

	slash = strchr(entry, '/');
	if (slash) { /* a CIDR block: addresses only */
		char *end;
		unsigned long bits = strtoul(slash + 1, &end, 10);
		int nf;

		*slash = '\0';
		nf = address_family(entry, net);
		if (!nf || nf != hf || *end || end == slash + 1 || bits > (nf == AF_INET ? 32u : 128u))
			return false;
		return prefix_match(h, net, (unsigned)bits);
	}
	/* [v6]:port, [v6], v6, v4:port, v4, name:port, name */
	name = entry;
	colon = NULL;
	if (entry[0] == '[') {
		char *close = strchr(entry, ']');

		if (!close || (close[1] && close[1] != ':'))
			return false;
		if (close[1] == ':')
			colon = close + 1;
		*close = '\0';
		name = entry + 1;
	} else if ((colon = strchr(entry, ':')) && strchr(colon + 1, ':')) {
		colon = NULL; /* a bare IPv6 address */
	}
	if (colon) {
		char *end;
		unsigned long p = strtoul(colon + 1, &end, 10);

		if (*end || end == colon + 1 || p != port)
			return false;
		*colon = '\0';
	}
	if (hf) {
		return address_family(name, net) == hf && !memcmp(h, net, hf == AF_INET ? 4 : 16);
	}
	/* a name: itself and its subdomains; ".name" and "*.name": subdomains */
	{
		const char *d = name;
		bool sub_only = false;
		size_t hl = strlen(host), dl;

		if (d[0] == '*' && d[1] == '.')
			d++;
		if (d[0] == '.') {
			sub_only = true;
			d++;
		}
		dl = strlen(d);
		if (!dl)
			return false;
		if (!sub_only && !strcasecmp(host, d))
			return true;
		return hl > dl && host[hl - dl - 1] == '.' && !strcasecmp(host + hl - dl, d);
	}
}

bool bw_http_no_proxy_match(const char *no_proxy, const char *host, unsigned port)
{
	const char *p = no_proxy;

	if (!p)
		return false;
	while (*p) {
		size_t n;

		p += strspn(p, " \t,");
		n = strcspn(p, ",");
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (no_proxy_entry(p, n, host, port))
			return true;
		p += n;
		p += strcspn(p, ",");
	}
	return false;
}

static const char *getenv_any(const char *a, const char *b)
{
	const char *v = getenv(a);

	if (!v || !*v)
		v = getenv(b);
	return v && *v ? v : NULL;
}

static char *base64(const unsigned char *in, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
			     (i + 2 < n ? in[i + 2] : 0);

		*o++ = tab[v >> 18 & 63];
		*o++ = tab[v >> 12 & 63];
		*o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? tab[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

static int choose_proxy(struct bw_http_client *c, const char *configured, char **error)
{
	const char *value = configured, *why = NULL;
	_cleanup_free_ char *with_scheme = NULL;
	int ret;

	if (!value) {
		const char *no_proxy = getenv_any("NO_PROXY", "no_proxy");

		value = c->server.https ? getenv_any("HTTPS_PROXY", "https_proxy") :
					  getenv_any("HTTP_PROXY", "http_proxy");
		if (!value || is_loopback(c->server.host) ||
		    bw_http_no_proxy_match(no_proxy, c->server.host, c->server.port))
			return 0;
		if (!strstr(value, "://")) { /* "proxy:3128", as Go reads it */
			if (!(with_scheme = strprintf("http://%s", value)))
				return error_set(error, -ENOMEM, "out of memory");
			value = with_scheme;
		}
	} else if (!*value) {
		return 0;
	}
	ret = parse_endpoint(value, true, &c->proxy, &why);
	if (ret < 0)
		return error_set(error, ret, "proxy %s: %s", value, why);
	c->proxied = true;
	if (c->proxy.user) {
		_cleanup_free_ char *plain = strprintf("%s:%s", c->proxy.user, c->proxy.password ? c->proxy.password : "");
		_cleanup_free_ char *b64 = plain ? base64((const unsigned char *)plain, strlen(plain)) : NULL;

		if (plain)
			explicit_bzero(plain, strlen(plain));
		if (!b64 || !(c->proxy_authorization = strprintf("Proxy-Authorization: Basic %s\r\n", b64)))
			return error_set(error, -ENOMEM, "out of memory");
		explicit_bzero(b64, strlen(b64));
	}
	return 0;
}

/* ---- the client ---- */

static void bw_http_client_freep(struct bw_http_client **c)
{
	bw_http_client_free(*c);
}

static int dup_opt(char **dst, const char *src)
{
	*dst = NULL;
	return src && !(*dst = strdup(src)) ? -ENOMEM : 0;
}

int bw_http_client_new(const struct bw_http_client_options *o, struct bw_http_client **out, char **error)
{
	_cleanup_(bw_http_client_freep) struct bw_http_client *c = NULL;
	const char *why = NULL;
	int ret;

	*out = NULL;
	if (error)
		*error = NULL;
	if (!o->server)
		return error_set(error, -EINVAL, "no server");
	c = calloc(1, sizeof(*c));
	if (!c)
		return error_set(error, -ENOMEM, "out of memory");
	c->fd = -1;
	c->cancel_fd = -1;
	ret = parse_endpoint(o->server, false, &c->server, &why);
	if (ret < 0)
		return error_set(error, ret, "server %s: %s", o->server, why);
	if (o->user_agent && o->user_agent[strcspn(o->user_agent, "\r\n")])
		return error_set(error, -EINVAL, "the user agent has a line break");
	ret = choose_proxy(c, o->proxy, error);
	if (ret < 0)
		return ret;
	c->tls.insecure = o->tls.insecure;
	if (dup_opt((char **)&c->tls.ca_data, o->tls.ca_data) < 0 ||
	    dup_opt((char **)&c->tls.ca_file, o->tls.ca_file) < 0 ||
	    dup_opt((char **)&c->tls.cert_data, o->tls.cert_data) < 0 ||
	    dup_opt((char **)&c->tls.cert_file, o->tls.cert_file) < 0 ||
	    dup_opt((char **)&c->tls.key_data, o->tls.key_data) < 0 ||
	    dup_opt((char **)&c->tls.key_file, o->tls.key_file) < 0 || dup_opt(&c->user_agent, o->user_agent) < 0)
		return error_set(error, -ENOMEM, "out of memory");
	c->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 10000;
	c->idle_timeout_ms = o->idle_timeout_ms;
	c->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->cancel_fd < 0)
		return error_set(error, -errno, "eventfd: %s", strerror(errno));
	if (c->server.https) {
		ret = bw_gnutls_load(&why);
		if (ret < 0)
			return error_set(error, ret, "GnuTLS: %s", why);
	}
	*out = c;
	c = NULL;
	return 0;
}

static void conn_close(struct bw_http_client *c)
{
	if (c->session) {
		gnutls_deinit(c->session);
		c->session = NULL;
	}
	if (c->cred) {
		gnutls_certificate_free_credentials(c->cred);
		c->cred = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
}

void bw_http_client_free(struct bw_http_client *c)
{
	if (!c)
		return;
	conn_close(c);
	if (c->cancel_fd >= 0)
		close(c->cancel_fd);
	url_clear(&c->server);
	url_clear(&c->proxy);
	free_secret(c->proxy_authorization);
	free((char *)c->tls.ca_data);
	free((char *)c->tls.ca_file);
	free((char *)c->tls.cert_data);
	free((char *)c->tls.cert_file);
	free_secret((char *)c->tls.key_data);
	free((char *)c->tls.key_file);
	free(c->user_agent);
	free(c);
}

void bw_http_client_cancel(struct bw_http_client *c)
{
	uint64_t one = 1;

	atomic_store(&c->cancelled, true);
	/* Nothing to do when it fails: the counter is already non-zero. */
	if (write(c->cancel_fd, &one, sizeof(one)) < 0) {
	}
}

const char *bw_http_client_proxy(const struct bw_http_client *c)
{
	return c->proxied ? c->proxy.authority : NULL;
}

/* ---- waiting ---- */

/* Waits until fd has events, the client is cancelled or deadline (0: none)
 * passes: 0, -ECANCELED or -ETIMEDOUT. */
static int wait_fd(struct bw_http_client *c, int fd, short events, uint64_t deadline)
{
	for (;;) {
		struct pollfd p[2] = { { .fd = fd, .events = events }, { .fd = c->cancel_fd, .events = POLLIN } };
		int timeout = -1, n;

		if (atomic_load(&c->cancelled))
			return -ECANCELED;
		if (deadline) {
			uint64_t now = clock_ns(CLOCK_MONOTONIC);

			if (now >= deadline)
				return -ETIMEDOUT;
			timeout = (int)((deadline - now + 999999) / 1000000);
		}
		n = poll(p, 2, timeout);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (p[1].revents)
			return -ECANCELED;
		if (n > 0 && p[0].revents)
			return 0;
	}
}

struct deadlines {
	uint64_t request; /* the whole request; 0: none */
	unsigned idle_ms; /* between bytes received; 0: none */
	unsigned request_ms;
};

static int timed_out(const struct deadlines *d, uint64_t deadline, char **error, const char *what)
{
	if (d->request && deadline == d->request)
		return error_set(error, -ETIMEDOUT, "%s: the request took longer than %u ms", what, d->request_ms);
	return error_set(error, -ETIMEDOUT, "%s: timed out", what);
}

static int wait_failed(char **error, int ret)
{
	if (ret == -ECANCELED)
		return error_set(error, ret, "cancelled");
	return error_set(error, ret, "poll: %s", strerror(-ret));
}

/* ---- connecting ---- */

static void socket_options(int fd)
{
	int one = 1, idle = 30, intvl = 10;

	/* A request goes out in one send: no reason to wait for an ACK. Dead
	 * peers are found by keepalive probes (the idle timeout covers a
	 * transfer; these cover the connection kept between requests). */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
}

static int tcp_connect(struct bw_http_client *c, const struct url *to, uint64_t deadline,
		       const struct deadlines *d, char **error)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;
	char port[8];
	int gai, err = -ECONNREFUSED, fd = -1;

	snprintf(port, sizeof(port), "%u", to->port);
	gai = getaddrinfo(to->host, port, &hints, &ai);
	if (gai)
		return error_set(error, -EHOSTUNREACH, "cannot resolve %s: %s", to->host,
			    gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		int ret, soerr = 0;
		socklen_t len = sizeof(soerr);

		fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
			err = -errno;
			close(fd);
			fd = -1;
			continue;
		}
		ret = wait_fd(c, fd, POLLOUT, deadline);
		if (ret == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			soerr = errno;
		if (ret < 0 || soerr) {
			close(fd);
			fd = -1;
			if (ret == -ECANCELED) {
				freeaddrinfo(ai);
				return error_set(error, ret, "cancelled");
			}
			if (ret == -ETIMEDOUT) {
				freeaddrinfo(ai);
				return deadline == d->request ?
					       timed_out(d, deadline, error, "connect") :
					       error_set(error, ret, "connect to %s port %u: no answer in %u ms", to->host,
						    to->port, c->connect_timeout_ms);
			}
			err = ret < 0 ? ret : -soerr;
			continue;
		}
		break;
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		const char *msg = strerror(-err);

		if (err != -ECONNREFUSED && err != -ETIMEDOUT)
			err = -EHOSTUNREACH;
		return error_set(error, err, "connect to %s port %u: %s", to->host, to->port, msg);
	}
	socket_options(fd);
	c->fd = fd;
	return 0;
}

/* Plain reads and writes on c->fd, or through the TLS session. */
static ssize_t conn_recv(struct bw_http_client *c, char *buf, size_t len, uint64_t deadline,
			 const struct deadlines *d, char **error)
{
	for (;;) {
		short events = POLLIN;
		ssize_t n;
		int ret;

		if (c->session) {
			n = gnutls_record_recv(c->session, buf, len);
			if (n >= 0)
				return n;
			if (n == GNUTLS_E_PREMATURE_TERMINATION)
				return 0; /* closed without close_notify: an end like any other */
			if (n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED)
				return error_set(error, -ECONNRESET, "TLS: %s", gnutls_strerror((int)n));
			if (gnutls_record_get_direction(c->session))
				events = POLLOUT;
		} else {
			n = recv(c->fd, buf, len, 0);
			if (n >= 0)
				return n;
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return error_set(error, -ECONNRESET, "receive: %s", strerror(errno));
		}
		ret = wait_fd(c, c->fd, events, deadline);
		if (ret == -ETIMEDOUT)
			return deadline == d->request ?
				       timed_out(d, deadline, error, "receive") :
				       error_set(error, ret, "no data received for %u ms", d->idle_ms);
		if (ret < 0)
			return wait_failed(error, ret);
	}
}

static int conn_send(struct bw_http_client *c, const char *buf, size_t len, uint64_t deadline,
		     const struct deadlines *d, char **error)
{
	while (len > 0) {
		short events = POLLOUT;
		ssize_t n;
		int ret;

		if (c->session) {
			n = gnutls_record_send(c->session, buf, len);
			if (n < 0 && n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED)
				return error_set(error, -ECONNRESET, "TLS: %s", gnutls_strerror((int)n));
			if (n < 0 && !gnutls_record_get_direction(c->session))
				events = POLLIN;
		} else {
			n = send(c->fd, buf, len, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno != EAGAIN)
				return error_set(error, -ECONNRESET, "send: %s", strerror(errno));
		}
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		ret = wait_fd(c, c->fd, events, deadline);
		if (ret == -ETIMEDOUT)
			return timed_out(d, deadline, error, "send");
		if (ret < 0)
			return wait_failed(error, ret);
	}
	return 0;
}

/* CONNECT through the proxy: the tunnel is open when it answers 2xx. */
static int proxy_tunnel(struct bw_http_client *c, uint64_t deadline, const struct deadlines *d, char **error)
{
	_cleanup_free_ char *req = strprintf("CONNECT %s HTTP/1.1\r\nHost: %s\r\n%sUser-Agent: %s\r\n\r\n",
					     c->server.hostport, c->server.hostport,
					     c->proxy_authorization ? c->proxy_authorization : "",
					     c->user_agent ? c->user_agent : "bulwarkd");
	char answer[PROXY_ANSWER_MAX + 1];
	size_t have = 0;
	int ret, status;
	char *eol;

	if (!req)
		return error_set(error, -ENOMEM, "out of memory");
	ret = conn_send(c, req, strlen(req), deadline, d, error);
	explicit_bzero(req, strlen(req));
	if (ret < 0)
		return ret;
	/* Nothing follows the answer's headers until the TLS client hello is
	 * sent, so reading up to the blank line takes nothing of the tunnel's. */
	while (!memmem(answer, have, "\r\n\r\n", 4)) {
		ssize_t n;

		if (have == PROXY_ANSWER_MAX)
			return error_set(error, -EIO, "proxy %s: its answer to CONNECT is longer than %d bytes",
				    c->proxy.authority, PROXY_ANSWER_MAX);
		n = conn_recv(c, answer + have, PROXY_ANSWER_MAX - have, deadline, d, error);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return error_set(error, -ECONNRESET, "proxy %s closed the connection instead of answering CONNECT",
				    c->proxy.authority);
		have += (size_t)n;
	}
	answer[have] = '\0';
	if ((size_t)((char *)memmem(answer, have, "\r\n\r\n", 4) - answer) + 4 != have)
		return error_set(error, -EIO, "proxy %s sent data after its answer to CONNECT", c->proxy.authority);
	eol = strstr(answer, "\r\n");
	*eol = '\0';
	if (sscanf(answer, "HTTP/1.%*1[01] %3d", &status) != 1)
		return error_set(error, -EIO, "proxy %s: not an HTTP answer to CONNECT: %.100s", c->proxy.authority, answer);
	if (status / 100 != 2)
		return error_set(error, -EIO, "proxy %s refused the tunnel to %s: %.200s", c->proxy.authority,
			    c->server.hostport, answer);
	return 0;
}

static int tls_error(char **error, int rc, const char *what)
{
	return error_set(error, -EPROTO, "TLS: %s: %s", what, gnutls_strerror(rc));
}

/* Credentials are read at each connection, as client-go does: a
 * certificate or CA rotated on disk is picked up by the next connection. */
static int tls_credentials(struct bw_http_client *c, char **error)
{
	const struct bw_http_tls *t = &c->tls;
	int rc = gnutls_certificate_allocate_credentials(&c->cred);

	if (rc < 0)
		return tls_error(error, rc, "credentials");
	if (!t->insecure) {
		const char *what;

		if (t->ca_data) {
			gnutls_datum_t ca = { (unsigned char *)t->ca_data, (unsigned)strlen(t->ca_data) };

			what = "the certificate authority data";
			rc = gnutls_certificate_set_x509_trust_mem(c->cred, &ca, GNUTLS_X509_FMT_PEM);
		} else if (t->ca_file) {
			what = t->ca_file;
			rc = gnutls_certificate_set_x509_trust_file(c->cred, t->ca_file, GNUTLS_X509_FMT_PEM);
		} else {
			what = "the system's certificate authorities";
			rc = gnutls_certificate_set_x509_system_trust(c->cred);
		}
		if (rc == 0)
			return error_set(error, -EPROTO, "TLS: %s: no certificate in it", what);
		if (rc < 0)
			return tls_error(error, rc, what);
	}
	if (t->cert_data || t->key_data) {
		gnutls_datum_t cert = { (unsigned char *)t->cert_data, t->cert_data ? (unsigned)strlen(t->cert_data) : 0 };
		gnutls_datum_t key = { (unsigned char *)t->key_data, t->key_data ? (unsigned)strlen(t->key_data) : 0 };

		if (!t->cert_data || !t->key_data)
			return error_set(error, -EPROTO, "TLS: a client certificate needs its key (both as data)");
		rc = gnutls_certificate_set_x509_key_mem2(c->cred, &cert, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
	} else if (t->cert_file || t->key_file) {
		if (!t->cert_file || !t->key_file)
			return error_set(error, -EPROTO, "TLS: a client certificate needs its key (both as files)");
		rc = gnutls_certificate_set_x509_key_file2(c->cred, t->cert_file, t->key_file, GNUTLS_X509_FMT_PEM,
							   NULL, 0);
	}
	/* GnuTLS also refuses a key that is not the certificate's. */
	if (rc < 0)
		return tls_error(error, rc, "the client certificate and key");
	return 0;
}

static int tls_handshake(struct bw_http_client *c, uint64_t deadline, const struct deadlines *d, char **error)
{
	int rc = tls_credentials(c, error);

	if (rc < 0)
		return rc;
	rc = gnutls_init(&c->session, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
	if (rc < 0) {
		c->session = NULL;
		return tls_error(error, rc, "session");
	}
	if ((rc = gnutls_set_default_priority(c->session)) < 0 ||
	    (rc = gnutls_credentials_set(c->session, GNUTLS_CRD_CERTIFICATE, c->cred)) < 0)
		return tls_error(error, rc, "session");
	/* SNI for names only (RFC 6066 has no addresses); the name or the
	 * address is checked against the certificate's subject. */
	if (!is_ip_literal(c->server.host) &&
	    (rc = gnutls_server_name_set(c->session, GNUTLS_NAME_DNS, c->server.host, strlen(c->server.host))) < 0)
		return tls_error(error, rc, "server name");
	if (!c->tls.insecure)
		gnutls_session_set_verify_cert(c->session, c->server.host, 0);
	gnutls_transport_set_int2(c->session, c->fd, c->fd);
	gnutls_handshake_set_timeout(c->session, 0); /* ours, in wait_fd */
	for (;;) {
		int ret;

		rc = gnutls_handshake(c->session);
		if (rc == 0)
			return 0;
		if (rc != GNUTLS_E_AGAIN && rc != GNUTLS_E_INTERRUPTED)
			break;
		ret = wait_fd(c, c->fd, gnutls_record_get_direction(c->session) ? POLLOUT : POLLIN, deadline);
		if (ret == -ETIMEDOUT)
			return deadline == d->request ?
				       timed_out(d, deadline, error, "TLS handshake") :
				       error_set(error, ret, "TLS handshake with %s: no answer in %u ms", c->server.authority,
					    c->connect_timeout_ms);
		if (ret < 0)
			return wait_failed(error, ret);
	}
	if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		gnutls_datum_t why = {};
		unsigned status = gnutls_session_get_verify_cert_status(c->session);
		int r;

		if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why, 0) < 0)
			why.data = NULL;
		r = error_set(error, -EPROTO, "TLS: the certificate of %s is refused: %s", c->server.authority,
			 why.data ? (char *)why.data : gnutls_strerror(rc));
		if (why.data)
			gnutls_free(why.data);
		return r;
	}
	if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED)
		return error_set(error, -EPROTO, "TLS handshake with %s: the server sent the alert \"%s\"",
			    c->server.authority, gnutls_alert_get_name(gnutls_alert_get(c->session)));
	return error_set(error, -EPROTO, "TLS handshake with %s: %s", c->server.authority, gnutls_strerror(rc));
}

static int conn_open(struct bw_http_client *c, const struct deadlines *d, char **error)
{
	uint64_t deadline = nearer(d->request, after_ms(c->connect_timeout_ms));
	int ret = tcp_connect(c, c->proxied ? &c->proxy : &c->server, deadline, d, error);

	if (ret == 0 && c->proxied && c->server.https)
		ret = proxy_tunnel(c, deadline, d, error);
	if (ret == 0 && c->server.https)
		ret = tls_handshake(c, deadline, d, error);
	if (ret < 0)
		conn_close(c);
	return ret;
}

/* A connection kept from the last request is worth reusing while the server
 * has sent nothing on it: anything readable there (its FIN, a TLS alert) is
 * the server closing it. */
static bool conn_reusable(struct bw_http_client *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };

	return poll(&p, 1, 0) == 0 && !(c->session && gnutls_record_check_pending(c->session));
}

/* ---- the response ---- */

struct parse {
	const struct bw_http_response *resp;
	bool final;      /* a final (not 1xx) status seen */
	bool complete;   /* its message ended */
	bool keep_alive;
	int cb_err;      /* what a callback returned */
};

static int on_headers_complete(http_parser *p)
{
	struct parse *st = p->data;
	int r;

	if (p->status_code < 200)
		return 0; /* 100 Continue and the like: the real one follows */
	st->final = true;
	r = st->resp && st->resp->on_status ? st->resp->on_status(st->resp->userdata, (int)p->status_code) : 0;
	if (r < 0) {
		st->cb_err = r;
		return -1;
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct parse *st = p->data;
	int r = st->resp && st->resp->on_body ? st->resp->on_body(st->resp->userdata, at, len) : 0;

	if (r < 0) {
		st->cb_err = r;
		return -1;
	}
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct parse *st = p->data;

	if (!st->final)
		return 0;
	st->complete = true;
	st->keep_alive = http_should_keep_alive(p);
	http_parser_pause(p, 1); /* whatever follows is not this response's */
	return 0;
}

static int read_response(struct bw_http_client *c, const struct bw_http_response *resp, const struct deadlines *d,
			 bool *got_any, char **error)
{
	http_parser_settings settings;
	struct parse st = { .resp = resp };
	http_parser p;

	http_parser_settings_init(&settings);
	settings.on_headers_complete = on_headers_complete;
	settings.on_body = on_body;
	settings.on_message_complete = on_message_complete;
	http_parser_init(&p, HTTP_RESPONSE);
	p.data = &st;
	for (;;) {
		uint64_t deadline = nearer(d->request, after_ms(d->idle_ms));
		ssize_t n = conn_recv(c, c->buf, sizeof(c->buf), deadline, d, error);
		size_t parsed;

		if (n < 0)
			return (int)n;
		if (n > 0)
			*got_any = true;
		parsed = http_parser_execute(&p, &settings, c->buf, (size_t)n);
		if (st.cb_err)
			return st.cb_err;
		if (st.complete) {
			/* Anything after the message, or the end of the
			 * connection, and it cannot carry another. */
			if (n == 0 || parsed < (size_t)n)
				st.keep_alive = false;
			if (!st.keep_alive)
				conn_close(c);
			return 0;
		}
		if (HTTP_PARSER_ERRNO(&p) != HPE_OK)
			return error_set(error, -EIO, "not a valid HTTP response: %s",
				    http_errno_description(HTTP_PARSER_ERRNO(&p)));
		if (n == 0)
			return error_set(error, -ECONNRESET, *got_any ? "the connection closed before the response ended" :
								    "the server closed the connection without answering");
	}
}

/* ---- requests ---- */

/* Header lines: "Name: value\r\n" each, nothing else. */
static bool headers_valid(const char *h)
{
	while (h && *h) {
		const char *eol = strstr(h, "\r\n");

		if (!eol || eol == h || memchr(h, '\n', (size_t)(eol - h)) || memchr(h, '\r', (size_t)(eol - h)) ||
		    !memchr(h, ':', (size_t)(eol - h)))
			return false;
		h = eol + 2;
	}
	return true;
}

static char *build_request(struct bw_http_client *c, const char *method, const char *target, const char *headers,
			   const char *body, size_t body_len, size_t *len)
{
	/* Through a proxy without a tunnel (http://), the absolute URI. */
	bool absolute = c->proxied && !c->server.https;
	char length[48] = "";
	char *head, *req;
	size_t hl;

	if (body)
		snprintf(length, sizeof(length), "Content-Length: %zu\r\n", body_len);
	head = strprintf("%s %s%s%s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n%s%s%s\r\n", method,
			 absolute ? "http://" : "", absolute ? c->server.authority : "", c->server.path, target,
			 c->server.authority, c->user_agent ? c->user_agent : "bulwarkd",
			 absolute && c->proxy_authorization ? c->proxy_authorization : "", headers ? headers : "",
			 length);
	if (!head)
		return NULL;
	hl = strlen(head);
	req = realloc(head, hl + (body ? body_len : 0) + 1);
	if (!req) {
		explicit_bzero(head, hl);
		free(head);
		return NULL;
	}
	if (body)
		memcpy(req + hl, body, body_len);
	*len = hl + (body ? body_len : 0);
	req[*len] = '\0';
	return req;
}

int bw_http_request(struct bw_http_client *c, const char *method, const char *target, const char *headers,
		    const char *body, size_t body_len, unsigned timeout_ms, const struct bw_http_response *resp,
		    char **error)
{
	struct deadlines d = { .request = after_ms(timeout_ms), .request_ms = timeout_ms, .idle_ms = c->idle_timeout_ms };
	size_t len = 0;
	char *req;
	int ret = 0;

	if (error)
		*error = NULL;
	if (!method[0] || method[strcspn(method, " \r\n")] || !target || target[0] != '/' ||
	    target[strcspn(target, " \r\n")] || !headers_valid(headers))
		return error_set(error, -EINVAL, "a method, target or header that cannot be sent");
	if (atomic_load(&c->cancelled))
		return error_set(error, -ECANCELED, "cancelled");
	req = build_request(c, method, target, headers, body, body_len, &len);
	if (!req)
		return error_set(error, -ENOMEM, "out of memory");
	for (int attempt = 0; attempt < 2; attempt++) {
		bool reused = c->fd >= 0, got_any = false;

		if (reused && !conn_reusable(c)) {
			conn_close(c);
			reused = false;
		}
		if (!reused && (ret = conn_open(c, &d, error)) < 0)
			break;
		ret = conn_send(c, req, len, d.request, &d, error);
		if (ret == 0)
			ret = read_response(c, resp, &d, &got_any, error);
		if (ret < 0)
			conn_close(c);
		/* The server may close a kept connection just as a request
		 * goes out on it: then nothing of this request reached it, and
		 * it goes again on a new connection, once. */
		if (ret == -ECONNRESET && reused && !got_any) {
			if (error) {
				free(*error);
				*error = NULL;
			}
			continue;
		}
		break;
	}
	explicit_bzero(req, len);
	free(req);
	return ret;
}
