/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The syslog sink: an RFC 5424 formatter (see sink-syslog.h for what it
 * guarantees) and three transports behind struct bw_sink_ops. The framework
 * (sink.c) owns the thread, queue and loss accounting; this file only has to
 * turn one record into bytes on the wire, or say with a negative errno that
 * it could not.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "sink-syslog.h"
#include "util.h"

/* ---- names ---- */

static const struct {
	const char *name;
	int value;
} facilities[] = {
	{ "auth", LOG_AUTH },     { "authpriv", LOG_AUTHPRIV }, { "cron", LOG_CRON },
	{ "daemon", LOG_DAEMON }, { "ftp", LOG_FTP },           { "lpr", LOG_LPR },
	{ "mail", LOG_MAIL },     { "news", LOG_NEWS },         { "syslog", LOG_SYSLOG },
	{ "user", LOG_USER },     { "uucp", LOG_UUCP },         { "local0", LOG_LOCAL0 },
	{ "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 },     { "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },     { "local6", LOG_LOCAL6 },
	{ "local7", LOG_LOCAL7 },
	/* syslog.h's deprecated alias; accepted on input, never printed */
	{ "security", LOG_AUTH },
};

int bw_syslog_facility_from_name(const char *name)
{
	if (!name)
		return -EINVAL;
	for (size_t i = 0; i < ELEMENTSOF(facilities); i++)
		if (strcasecmp(name, facilities[i].name) == 0)
			return facilities[i].value;
	return -EINVAL;
}

const char *bw_syslog_facility_to_name(int facility)
{
	if (facility == 0)
		facility = LOG_AUTHPRIV;
	for (size_t i = 0; i < ELEMENTSOF(facilities); i++)
		if (facilities[i].value == facility)
			return facilities[i].name;
	return NULL;
}

int bw_syslog_transport_from_name(const char *name)
{
	if (!name)
		return -EINVAL;
	if (streq(name, "unix"))
		return BW_SYSLOG_UNIX;
	if (streq(name, "tcp"))
		return BW_SYSLOG_TCP;
	if (streq(name, "udp"))
		return BW_SYSLOG_UDP;
	return -EINVAL;
}

static const char *transport_name(enum bw_syslog_transport t)
{
	return t == BW_SYSLOG_TCP ? "tcp" : t == BW_SYSLOG_UDP ? "udp" : "unix";
}

/* ---- the formatter ---- */

static bool is_lower_token(const char *s, size_t max)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (n >= max || !((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9')))
			return false;
	return n > 0;
}

const char *bw_rfc5424_msgid(const struct bw_record *r, char buf[static 33])
{
	switch (r->kind) {
	case BW_RECORD_DECISION: {
		const char *hook = bw_record_get(r, BW_FIELD_HOOK), *decision = bw_record_get(r, BW_FIELD_DECISION);

		/* Only tokens the agent itself produces make it into the
		 * header: MSGID is PRINTUSASCII and SIEMs key on it. */
		if (hook && decision && is_lower_token(hook, 15) && is_lower_token(decision, 15)) {
			snprintf(buf, 33, "%s-%s", hook, decision);
			return buf;
		}
		return "decision";
	}
	case BW_RECORD_SUPPRESSED: return "suppressed";
	case BW_RECORD_HEALTH: return "health";
	case BW_RECORD_LOSS: return "loss";
	case BW_RECORD_AGENT: return "agent";
	}
	return "agent";
}

enum esc_mode {
	ESC_SD,  /* PARAM-VALUE: '"', '\' and ']' escaped too */
	ESC_MSG, /* MSG: only what the whole message needs */
};

/* The length of the ill-formed prefix at s, or the length of the well-formed
 * sequence with *cp set. Table 3-7 of the Unicode standard: the second byte's
 * range depends on the first, which rules out overlong forms, surrogates and
 * code points above U+10FFFF. An ill-formed sequence is as long as its
 * "maximal subpart": the lead byte and the continuation bytes that were still
 * possible, so "\xE2\x82" followed by "A" is one replacement, then "A". */
static size_t utf8_decode(const unsigned char *s, uint32_t *cp, bool *ok)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xBF;
	size_t need, i;

	*ok = false;
	if (c < 0x80) {
		*cp = c;
		*ok = true;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		need = 1;
		*cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 2;
		*cp = c & 0x0F;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F; /* no surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3;
		*cp = c & 0x07;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F; /* nothing above U+10FFFF */
	} else {
		return 1; /* a continuation byte, C0/C1 (overlong) or F5..FF */
	}
	for (i = 1; i <= need; i++) {
		unsigned char d = s[i]; /* a NUL stops here: never a continuation */

		if (d < lo || d > hi)
			return i;
		*cp = (*cp << 6) | (d & 0x3F);
		lo = 0x80;
		hi = 0xBF;
	}
	*ok = true;
	return need + 1;
}

struct esc_counts {
	unsigned replaced, escaped;
};

/* The bytes for the next character of *p, advancing it: the character
 * itself, its escape, or U+FFFD. At most 4 bytes; 0 at the end. */
static size_t next_unit(const unsigned char **p, enum esc_mode mode, char out[static 4], struct esc_counts *c)
{
	const unsigned char *s = *p;
	uint32_t cp;
	bool ok;
	size_t n;

	if (!*s)
		return 0;
	n = utf8_decode(s, &cp, &ok);
	*p = s + n;
	if (!ok) {
		if (c)
			c->replaced++;
		memcpy(out, "\xEF\xBF\xBD", 3);
		return 3;
	}
	if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
		static const char hex[] = "0123456789abcdef";

		/* Escaped rather than dropped, so that "a\nb" and "ab" stay
		 * apart; four ASCII characters, never a line break. */
		if (c)
			c->escaped++;
		out[0] = '\\';
		out[1] = 'x';
		out[2] = hex[cp >> 4];
		out[3] = hex[cp & 0xF];
		return 4;
	}
	if (mode == ESC_SD && (cp == '"' || cp == '\\' || cp == ']')) {
		out[0] = '\\';
		out[1] = (char)cp;
		return 2;
	}
	memcpy(out, s, n);
	return n;
}

/* Printable ASCII that stands for itself in both modes: the fast path. */
static bool plain_ascii(unsigned char c)
{
	return c >= 0x20 && c < 0x7F && c != '"' && c != '\\' && c != ']';
}

static size_t escaped_len(const char *v, enum esc_mode mode)
{
	const unsigned char *p = (const unsigned char *)v;
	size_t total = 0, n;
	char u[4];

	if (!v)
		return 0;
	while (true) {
		while (plain_ascii(*p)) {
			p++;
			total++;
		}
		n = next_unit(&p, mode, u, NULL);
		if (n == 0)
			break;
		total += n;
	}
	return total;
}

/* Appends at most cap bytes of v's escaped form, whole units only. */
static size_t put_escaped(char *dst, const char *v, enum esc_mode mode, size_t cap, struct esc_counts *c)
{
	const unsigned char *p = (const unsigned char *)v;
	size_t len = 0, n;
	char u[4];

	if (!v)
		return 0;
	while (true) {
		const unsigned char *before;
		struct esc_counts saved;

		while (plain_ascii(*p) && len < cap)
			dst[len++] = (char)*p++;
		before = p;
		saved = c ? *c : (struct esc_counts){};

		n = next_unit(&p, mode, u, c);
		if (n == 0)
			break;
		if (len + n > cap) {
			/* not written, so not counted */
			p = before;
			if (c)
				*c = saved;
			break;
		}
		memcpy(dst + len, u, n);
		len += n;
	}
	return len;
}

/* Copies a header token: PRINTUSASCII only (others become '_'), at most
 * max bytes; NILVALUE when empty. */
static size_t put_token(char *dst, const char *s, size_t max)
{
	size_t n = 0;

	for (; s && s[n] && n < max; n++)
		dst[n] = s[n] >= 33 && s[n] <= 126 ? s[n] : '_';
	if (n == 0)
		dst[n++] = '-';
	return n;
}

/* SD-NAME: PRINTUSASCII except '=', ' ', ']', '"', 1..32 characters. Field
 * names are upper-case by convention; the SD uses lower case like JSON. */
static size_t sd_name(char out[static 32], const char *key, bool *renamed)
{
	size_t n = 0;

	*renamed = false;
	for (; key && key[n] && n < 32; n++) {
		char ch = key[n];

		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		else if (ch < 33 || ch > 126 || ch == '=' || ch == ']' || ch == '"') {
			ch = '_';
			*renamed = true;
		}
		out[n] = ch;
	}
	if (key && key[n])
		*renamed = true; /* cut at 32 */
	if (n == 0) {
		out[n++] = '_';
		*renamed = true;
	}
	return n;
}

static size_t effective_max(const struct bw_syslog_options *o)
{
	if (o->max_message)
		return o->max_message;
	return o->transport == BW_SYSLOG_UDP ? BW_SYSLOG_DEFAULT_UDP_MESSAGE : BW_SYSLOG_DEFAULT_MESSAGE;
}

static int check_options(const struct bw_syslog_options *o)
{
	size_t max = effective_max(o);

	if (o->transport != BW_SYSLOG_UNIX && o->transport != BW_SYSLOG_TCP && o->transport != BW_SYSLOG_UDP)
		return -EINVAL;
	if (o->facility != 0 && (o->facility < 0 || (o->facility & ~LOG_FACMASK) || LOG_FAC(o->facility) > 23))
		return -EINVAL;
	if (max < BW_SYSLOG_MIN_MESSAGE || max > BW_SYSLOG_MAX_MESSAGE ||
	    (o->transport == BW_SYSLOG_UDP && max > BW_SYSLOG_MAX_UDP_MESSAGE))
		return -EINVAL;
	return 0;
}

/* One value to fit: an SD-PARAM's or MSG's. */
struct item {
	const char *value;
	enum esc_mode mode;
	size_t overhead; /* ' name="' '"' or the SP before MSG */
	size_t len;      /* escaped */
	char name[32];
	size_t name_len;
};

static size_t marker_len(enum esc_mode mode)
{
	/* "...[truncated]" has a ']' that PARAM-VALUE escapes */
	return strlen(BW_SYSLOG_TRUNCATED) + (mode == ESC_SD);
}

/* Sum of the items' lengths when each is cut to at most cap bytes. */
static size_t fitted(const struct item *it, size_t n, size_t cap)
{
	size_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += it[i].len < cap ? it[i].len : cap;
	return sum;
}

ssize_t bw_rfc5424_format(const struct bw_record *r, const struct bw_syslog_options *o, char *buf,
			  size_t size, struct bw_rfc5424_info *info)
{
	_cleanup_free_ struct item *items = NULL;
	struct bw_rfc5424_info dummy;
	struct esc_counts counts = {};
	char header[512], msgid_buf[33], ts[96];
	size_t limit, hl, n_params, n_items, fixed, cap = SIZE_MAX, out, msg_len;
	int facility, severity, ret;
	bool has_msg, keep_msg;

	if (!info)
		info = &dummy;
	*info = (struct bw_rfc5424_info){};
	ret = check_options(o);
	if (ret < 0)
		return ret;
	limit = effective_max(o);
	if (size == 0 || size - 1 < limit)
		limit = size ? size - 1 : 0;
	if (limit < BW_SYSLOG_MIN_MESSAGE)
		return -EINVAL;

	facility = o->facility ? o->facility : LOG_AUTHPRIV;
	/* LOG_PRI: a record that carries a facility too keeps only its
	 * severity; the facility is the sink's. */
	severity = LOG_PRI(r->priority);

	{
		time_t sec = (time_t)(r->time_realtime_ns / 1000000000ULL);
		struct tm tm;

		/* FULL-DATE has four digits: a time beyond 9999 is NILVALUE */
		if (gmtime_r(&sec, &tm) && tm.tm_year + 1900 <= 9999)
			snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900,
				 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
				 (unsigned)(r->time_realtime_ns % 1000000000ULL / 1000));
		else
			strcpy(ts, "-");
	}

	/* HEADER: "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID " */
	hl = (size_t)snprintf(header, sizeof(header), "<%d>1 %s ", LOG_FAC(facility) * 8 + severity, ts);
	hl += put_token(header + hl, o->hostname, 255);
	header[hl++] = ' ';
	hl += put_token(header + hl, BW_SYSLOG_APP_NAME, 48);
	hl += (size_t)snprintf(header + hl, sizeof(header) - hl, " %ld ", (long)(o->procid ? o->procid : getpid()));
	hl += put_token(header + hl, bw_rfc5424_msgid(r, msgid_buf), 32);
	header[hl++] = ' ';

	has_msg = r->message && r->message[0];
	n_params = r->n_fields;
	items = calloc(n_params + 1, sizeof(*items));
	if (!items)
		return -ENOMEM;
	for (size_t i = 0; i < n_params; i++) {
		bool renamed;

		items[i].value = r->fields[i].value ? r->fields[i].value : "";
		items[i].mode = ESC_SD;
		items[i].name_len = sd_name(items[i].name, r->fields[i].key, &renamed);
		items[i].overhead = 1 + items[i].name_len + 2 + 1;
		items[i].len = escaped_len(items[i].value, ESC_SD);
		info->renamed += renamed;
	}

	/* Fit: drop SD-PARAMs from the end (then MSG) only while the fixed
	 * parts alone do not leave every value room for the marker; then cut
	 * the longest values to a common cap, the largest that fits, so that
	 * one 4 KiB path is cut and the short fields stay whole. */
	keep_msg = has_msg;
	msg_len = has_msg ? escaped_len(r->message, ESC_MSG) : 0;
	while (true) {
		size_t budget, total = 0, maxlen = 0, lo, hi;

		n_items = 0;
		fixed = hl + (n_params ? strlen("[" BW_SYSLOG_SD_ID "]") : 1);
		for (size_t i = 0; i < n_params; i++)
			fixed += items[i].overhead;
		if (keep_msg) {
			items[n_params] = (struct item){
				.value = r->message, .mode = ESC_MSG, .overhead = 1,
				.len = msg_len,
			};
			fixed += 1;
		}
		n_items = n_params + keep_msg;
		for (size_t i = 0; i < n_items; i++) {
			total += items[i].len;
			if (items[i].len > maxlen)
				maxlen = items[i].len;
		}
		if (fixed + total <= limit) {
			cap = SIZE_MAX;
			break;
		}
		/* Every cut value needs room for its marker (15 bytes). */
		if (fixed <= limit && fitted(items, n_items, marker_len(ESC_SD)) <= limit - fixed) {
			budget = limit - fixed;
			lo = marker_len(ESC_SD);
			hi = maxlen;
			while (lo < hi) { /* the largest cap that fits */
				size_t mid = lo + (hi - lo + 1) / 2;

				if (fitted(items, n_items, mid) <= budget)
					lo = mid;
				else
					hi = mid - 1;
			}
			cap = lo;
			break;
		}
		if (n_params > 0) {
			n_params--;
			info->dropped++;
		} else if (keep_msg) {
			keep_msg = false;
			info->truncated++;
		} else {
			return -EINVAL; /* cannot happen: the header fits the minimum */
		}
	}

	memcpy(buf, header, hl);
	out = hl;
	if (n_params == 0) {
		buf[out++] = '-';
	} else {
		out += (size_t)sprintf(buf + out, "[%s", BW_SYSLOG_SD_ID);
		for (size_t i = 0; i < n_params; i++) {
			const struct item *it = &items[i];

			buf[out++] = ' ';
			memcpy(buf + out, it->name, it->name_len);
			out += it->name_len;
			buf[out++] = '=';
			buf[out++] = '"';
			if (it->len <= cap) {
				out += put_escaped(buf + out, it->value, ESC_SD, it->len, &counts);
			} else {
				out += put_escaped(buf + out, it->value, ESC_SD, cap - marker_len(ESC_SD), &counts);
				out += (size_t)sprintf(buf + out, "%s", "...[truncated\\]");
				info->truncated++;
			}
			buf[out++] = '"';
		}
		buf[out++] = ']';
	}
	if (keep_msg) {
		const struct item *it = &items[n_params];

		buf[out++] = ' ';
		if (it->len <= cap) {
			out += put_escaped(buf + out, it->value, ESC_MSG, it->len, &counts);
		} else {
			out += put_escaped(buf + out, it->value, ESC_MSG, cap - marker_len(ESC_MSG), &counts);
			out += (size_t)sprintf(buf + out, "%s", BW_SYSLOG_TRUNCATED);
			info->truncated++;
		}
	}
	buf[out] = '\0';
	info->replaced = counts.replaced;
	info->escaped = counts.escaped;
	return (ssize_t)out;
}

char *bw_rfc5424_format_alloc(const struct bw_record *r, const struct bw_syslog_options *o,
			      struct bw_rfc5424_info *info)
{
	_cleanup_free_ char *buf = NULL;
	ssize_t n;
	int ret = check_options(o);

	if (ret < 0) {
		errno = -ret;
		return NULL;
	}
	buf = malloc(effective_max(o) + 1);
	if (!buf)
		return NULL;
	n = bw_rfc5424_format(r, o, buf, effective_max(o) + 1, info);
	if (n < 0) {
		errno = (int)-n;
		return NULL;
	}
	return TAKE_PTR(buf);
}

/* ---- the sink ---- */

/* Room for the RFC 6587 "LEN SP" in front of the message. */
#define FRAME_PREFIX 12

struct syslog_sink {
	struct bw_syslog_options o; /* strings below are our copies */
	char *path, *host, *hostname;
	char *buf; /* FRAME_PREFIX + max_message + 1 */
	int fd;
	int last_error; /* logged once until it changes or the sink is back */
	char where[300];
	_Atomic uint64_t truncated, replaced, escaped;
};

static int set_timeout(int fd, int opt, unsigned ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	return setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv)) < 0 ? -errno : 0;
}

static void report(struct syslog_sink *k, int error, const char *what)
{
	if (error == k->last_error)
		return;
	k->last_error = error;
	fprintf(stderr, "bulwarkd: syslog sink %s: %s: %s; records are dropped and counted until it is back\n",
		k->where, what, strerror(-error));
}

static int open_unix(struct syslog_sink *k)
{
	_cleanup_close_ int fd = -1;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int r;

	if (strlen(k->path) >= sizeof(sa.sun_path)) {
		report(k, -ENAMETOOLONG, "socket path too long");
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, k->path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = set_timeout(fd, SO_SNDTIMEO, k->o.write_timeout_ms);
	if (r < 0)
		return r;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		/* A stream socket there (some syslog daemons) answers
		 * EPROTOTYPE: say so, the errno text alone misleads. */
		report(k, r, r == -EPROTOTYPE ? "not a datagram socket (only datagram sockets are supported)" :
						"cannot connect");
		return r;
	}
	return TAKE_FD(fd);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Non-blocking connect bounded by the deadline, then back to blocking with
 * a send timeout: the timeouts, not O_NONBLOCK, keep the thread unstuck. */
static int connect_stream(const struct addrinfo *ai, int64_t deadline, unsigned write_timeout_ms)
{
	_cleanup_close_ int fd = -1;
	int r, err = 0, flags;
	socklen_t len = sizeof(err);

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS)
			return -errno;
		while (true) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			int64_t left = deadline - now_ms();

			if (left <= 0)
				return -ETIMEDOUT;
			r = poll(&p, 1, (int)left);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return -errno;
			if (r == 0)
				return -ETIMEDOUT;
			break;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			return -errno;
		if (err)
			return -err;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
		return -errno;
	r = set_timeout(fd, SO_SNDTIMEO, write_timeout_ms);
	if (r < 0)
		return r;
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &(int){ 1 }, sizeof(int));
	return TAKE_FD(fd);
}

static int open_inet(struct syslog_sink *k)
{
	struct addrinfo hints = {
		.ai_socktype = k->o.transport == BW_SYSLOG_TCP ? SOCK_STREAM : SOCK_DGRAM,
		.ai_flags = AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL;
	char port[8];
	int64_t deadline = now_ms() + k->o.connect_timeout_ms;
	int r = -EHOSTUNREACH;

	snprintf(port, sizeof(port), "%u", k->o.port);
	/* getaddrinfo has no timeout of its own; a collector given by name
	 * costs a resolver round trip at each reconnect. */
	r = getaddrinfo(k->host, port, &hints, &res);
	if (r != 0) {
		int e = r == EAI_SYSTEM ? -errno : r == EAI_MEMORY ? -ENOMEM : -EHOSTUNREACH;

		if (e != k->last_error) {
			k->last_error = e;
			fprintf(stderr, "bulwarkd: syslog sink %s: cannot resolve: %s; records are dropped and "
				"counted until it is back\n", k->where, gai_strerror(r));
		}
		return e;
	}
	r = -EHOSTUNREACH;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		if (k->o.transport == BW_SYSLOG_TCP) {
			r = connect_stream(ai, deadline, k->o.write_timeout_ms);
		} else {
			_cleanup_close_ int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);

			/* connect() on UDP only fixes the peer, so that an ICMP
			 * "port unreachable" comes back as ECONNREFUSED on a
			 * later send: the one way UDP ever tells of a loss. */
			if (fd < 0)
				r = -errno;
			else if ((r = set_timeout(fd, SO_SNDTIMEO, k->o.write_timeout_ms)) >= 0)
				r = connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 ? -errno : TAKE_FD(fd);
		}
		if (r >= 0)
			break;
	}
	freeaddrinfo(res);
	if (r < 0)
		report(k, r, "cannot connect");
	return r;
}

static void syslog_close(struct bw_sink *s)
{
	struct syslog_sink *k = s->impl;

	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
}

static int syslog_open(struct bw_sink *s)
{
	struct syslog_sink *k = s->impl;
	int fd;

	syslog_close(s);
	fd = k->o.transport == BW_SYSLOG_UNIX ? open_unix(k) : open_inet(k);
	if (fd < 0)
		return fd;
	if (k->last_error)
		fprintf(stderr, "bulwarkd: syslog sink %s: connected again\n", k->where);
	k->last_error = 0;
	k->fd = fd;
	return 0;
}

/* Whether the collector has closed its end. A TCP send into a connection
 * the peer has closed succeeds once (the bytes are lost and answered with a
 * reset), so without this the first record after a collector stops would
 * count as written. Anything the collector sends is read and ignored. */
static int check_stream(int fd)
{
	char scratch[256];

	while (true) {
		struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
		ssize_t n;
		int r = poll(&p, 1, 0);

		if (r < 0)
			return errno == EINTR ? 0 : -errno;
		if (r == 0)
			return 0;
		if (p.revents & (POLLERR | POLLHUP | POLLRDHUP))
			return -ECONNRESET;
		n = recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	}
}

static int send_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		/* MSG_NOSIGNAL: a closed peer is an EPIPE here, never a
		 * SIGPIPE that kills the agent. */
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* SO_SNDTIMEO ran out */
			return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int syslog_write(struct bw_sink *s, const struct bw_record *r)
{
	struct syslog_sink *k = s->impl;
	struct bw_rfc5424_info info;
	char *msg = k->buf + FRAME_PREFIX;
	ssize_t n;
	int ret;

	if (k->fd < 0)
		return -ENOTCONN;
	n = bw_rfc5424_format(r, &k->o, msg, effective_max(&k->o) + 1, &info);
	if (n < 0)
		return (int)n; /* cannot happen with options checked at creation */
	if (info.truncated || info.dropped)
		atomic_fetch_add_explicit(&k->truncated, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&k->replaced, info.replaced, memory_order_relaxed);
	atomic_fetch_add_explicit(&k->escaped, info.escaped, memory_order_relaxed);

	if (k->o.transport == BW_SYSLOG_TCP) {
		char prefix[FRAME_PREFIX + 1];
		int pl;

		ret = check_stream(k->fd);
		if (ret == 0) {
			/* RFC 6587 §3.4.1 octet counting: MSG-LEN SP SYSLOG-MSG;
			 * no trailer, so any byte may be in the message. */
			pl = snprintf(prefix, sizeof(prefix), "%zd ", n);
			memcpy(msg - pl, prefix, (size_t)pl);
			ret = send_all(k->fd, msg - pl, (size_t)n + (size_t)pl);
		}
	} else {
		/* One datagram per message: all or nothing. */
		do
			ret = send(k->fd, msg, (size_t)n, MSG_NOSIGNAL) < 0 ? -errno : 0;
		while (ret == -EINTR);
		if (ret == -EAGAIN || ret == -EWOULDBLOCK)
			ret = -ETIMEDOUT;
	}
	if (ret < 0) {
		/* A stream may now hold half a frame: never write after
		 * that. The framework reopens, which reconnects. */
		syslog_close(s);
		report(k, ret, "cannot write");
	}
	return ret;
}

static void syslog_free(struct bw_sink *s)
{
	struct syslog_sink *k = s->impl;

	if (!k)
		return;
	syslog_close(s);
	free(k->path);
	free(k->host);
	free(k->hostname);
	free(k->buf);
	free(k);
	s->impl = NULL;
}

static const struct bw_sink_ops syslog_ops = {
	.name = "syslog",
	.open = syslog_open,
	.write = syslog_write,
	.close = syslog_close,
	.free = syslog_free,
};

struct bw_sink *bw_sink_syslog_new(const struct bw_syslog_options *o)
{
	_cleanup_free_ struct bw_sink *s = NULL;
	struct syslog_sink *k;
	char host[256];
	int r = check_options(o);

	if (r < 0) {
		errno = -r;
		return NULL;
	}
	if (o->transport != BW_SYSLOG_UNIX && (!o->host || !o->host[0])) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	k = calloc(1, sizeof(*k));
	if (!s || !k) {
		free(k);
		errno = ENOMEM;
		return NULL;
	}
	s->ops = &syslog_ops;
	s->impl = k;
	k->fd = -1;
	k->o = *o;
	if (!k->o.facility)
		k->o.facility = LOG_AUTHPRIV;
	if (!k->o.max_message)
		k->o.max_message = effective_max(o);
	if (!k->o.port)
		k->o.port = 514;
	if (!k->o.procid)
		k->o.procid = getpid();
	if (!k->o.connect_timeout_ms)
		k->o.connect_timeout_ms = 3000;
	if (!k->o.write_timeout_ms)
		k->o.write_timeout_ms = 3000;
	if (!o->hostname) {
		/* Looked up once: the record's host is the agent's. */
		if (gethostname(host, sizeof(host)) < 0)
			host[0] = '\0';
		host[sizeof(host) - 1] = '\0';
	}
	k->path = strdup(o->path ? o->path : "/dev/log");
	if (o->host && o->host[0] == '[' && endswith(o->host, "]"))
		/* "[::1]" as in "tcp:[::1]:514": getaddrinfo wants it bare */
		k->host = strndup(o->host + 1, strlen(o->host) - 2);
	else
		k->host = o->host ? strdup(o->host) : NULL;
	k->hostname = strdup(o->hostname ? o->hostname : host);
	k->buf = malloc(FRAME_PREFIX + k->o.max_message + 1);
	if (!k->path || (o->host && !k->host) || !k->hostname || !k->buf) {
		syslog_free(s);
		errno = ENOMEM;
		return NULL;
	}
	k->o.path = k->path;
	k->o.host = k->host;
	k->o.hostname = k->hostname;
	if (k->o.transport == BW_SYSLOG_UNIX)
		snprintf(k->where, sizeof(k->where), "(unix %s)", k->path);
	else
		snprintf(k->where, sizeof(k->where), "(%s %s:%u)", transport_name(k->o.transport), k->host,
			 k->o.port);
	return TAKE_PTR(s);
}

void bw_sink_syslog_get_counters(struct bw_sink *s, struct bw_syslog_counters *out)
{
	struct syslog_sink *k;

	*out = (struct bw_syslog_counters){};
	if (!s || s->ops != &syslog_ops || !s->impl)
		return;
	k = s->impl;
	out->truncated = atomic_load_explicit(&k->truncated, memory_order_relaxed);
	out->replaced = atomic_load_explicit(&k->replaced, memory_order_relaxed);
	out->escaped = atomic_load_explicit(&k->escaped, memory_order_relaxed);
}
