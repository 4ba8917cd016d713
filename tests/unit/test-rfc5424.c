/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The RFC 5424 formatter of the syslog sink, checked against a parser
 * written here from the RFC's ABNF rather than from the formatter: exact
 * output for a full decision record, PRI for every facility and severity,
 * escaping, ill-formed UTF-8, long and empty values, hostile names, and a
 * deterministic fuzz loop whose every output must parse, stay within its
 * size bound and give back the original values (or a marked prefix of them
 * when they had to be cut). Then the transports against local listeners:
 * datagram and octet-counted TCP framing, a collector that goes away, and
 * one that stops reading.
 *
 * BW_FUZZ_ITERATIONS overrides the number of fuzz records (100000; 30000
 * under AddressSanitizer).
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "bw-test.h"
#include "sink-syslog.h"
#include "util.h"

/* gcc says __SANITIZE_ADDRESS__, clang __has_feature(address_sanitizer) */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define MARKER "...[truncated]"
#define MAX_PARAMS 256

/* ---- an independent UTF-8 model ---- */

/* Whether a complete sequence of n bytes decodes to a scalar value that
 * needs exactly n bytes: the definition of well-formed, by arithmetic. */
static bool seq_ok(const unsigned char *s, size_t n)
{
	uint32_t v;

	switch (n) {
	case 1: return s[0] < 0x80;
	case 2: v = (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F); return (s[0] & 0xE0) == 0xC0 && v >= 0x80;
	case 3:
		v = (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
		return (s[0] & 0xF0) == 0xE0 && v >= 0x800 && (v < 0xD800 || v > 0xDFFF);
	case 4:
		v = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 | (uint32_t)(s[2] & 0x3F) << 6 |
		    (s[3] & 0x3F);
		return (s[0] & 0xF8) == 0xF0 && v >= 0x10000 && v <= 0x10FFFF;
	}
	return false;
}

/* Whether the k bytes at s begin some well-formed sequence of n bytes: try
 * completing with the smallest and the largest continuation byte. */
static bool prefix_ok(const unsigned char *s, size_t k, size_t n)
{
	unsigned char t[4];

	for (int fill = 0; fill < 2; fill++) {
		memcpy(t, s, k);
		for (size_t i = k; i < n; i++)
			t[i] = fill ? 0xBF : 0x80;
		for (size_t i = 1; i < n; i++)
			if ((t[i] & 0xC0) != 0x80)
				goto next;
		if (seq_ok(t, n))
			return true;
	next:;
	}
	return false;
}

/* Length of the next well-formed sequence (*cp set) or of the maximal
 * subpart of an ill-formed one (*cp = UINT32_MAX). */
static size_t t_next(const unsigned char *s, size_t avail, uint32_t *cp)
{
	size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
	size_t k;

	if (n == 1) {
		*cp = s[0];
		return 1;
	}
	*cp = UINT32_MAX;
	if (n == 0)
		return 1;
	for (k = 1; k <= n; k++)
		if (k > avail || !prefix_ok(s, k, n))
			return k > 1 ? k - 1 : 1;
	switch (n) {
	case 1: *cp = s[0]; break;
	case 2: *cp = (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F); break;
	case 3: *cp = (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F); break;
	case 4:
		*cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 | (uint32_t)(s[2] & 0x3F) << 6 |
		      (s[3] & 0x3F);
		break;
	}
	return n;
}

static bool is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

static size_t put_utf8(char *d, uint32_t cp)
{
	if (cp < 0x80) {
		d[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		d[0] = (char)(0xC0 | cp >> 6);
		d[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		d[0] = (char)(0xE0 | cp >> 12);
		d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		d[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	d[0] = (char)(0xF0 | cp >> 18);
	d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	d[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	d[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* What a PARAM-VALUE must decode to: ill-formed parts as U+FFFD. */
static char *expect_value(const char *v)
{
	size_t len = strlen(v), o = 0;
	char *out = malloc(len * 3 + 1);
	uint32_t cp;

	for (size_t i = 0; i < len;) {
		size_t n = t_next((const unsigned char *)v + i, len - i, &cp);

		if (cp == UINT32_MAX)
			o += put_utf8(out + o, 0xFFFD);
		else
			o += put_utf8(out + o, cp);
		i += n;
	}
	out[o] = '\0';
	return out;
}

/* What MSG must read: the same, controls as \xHH, nothing else escaped. */
static char *expect_msg(const char *v)
{
	size_t len = strlen(v), o = 0;
	char *out = malloc(len * 4 + 1);
	uint32_t cp;

	for (size_t i = 0; i < len;) {
		size_t n = t_next((const unsigned char *)v + i, len - i, &cp);

		if (cp == UINT32_MAX)
			o += put_utf8(out + o, 0xFFFD);
		else if (is_control(cp))
			o += (size_t)sprintf(out + o, "\\x%02x", cp);
		else
			o += put_utf8(out + o, cp);
		i += n;
	}
	out[o] = '\0';
	return out;
}

/* ---- an independent RFC 5424 parser ---- */

struct parsed {
	int pri;
	char ts[64], host[300], app[64], procid[160], msgid[64];
	bool sd_nil;
	size_t n_params;
	char *names[MAX_PARAMS];
	char *values[MAX_PARAMS]; /* unescaped */
	bool has_msg;
	char *msg;
	const char *err;
};

static void parsed_free(struct parsed *p)
{
	for (size_t i = 0; i < p->n_params; i++) {
		free(p->names[i]);
		free(p->values[i]);
	}
	free(p->msg);
	memset(p, 0, sizeof(*p));
}

static bool printusascii(char c)
{
	return c >= 33 && c <= 126;
}

/* 1*max PRINTUSASCII then SP */
static const char *field(const char *s, char *out, size_t max, struct parsed *p, const char *what)
{
	size_t n = 0;

	while (printusascii(s[n])) {
		if (n >= max) {
			p->err = what;
			return NULL;
		}
		out[n] = s[n];
		n++;
	}
	out[n] = '\0';
	if (n == 0 || s[n] != ' ') {
		p->err = what;
		return NULL;
	}
	return s + n + 1;
}

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* TIMESTAMP as this formatter writes it: NILVALUE or
 * FULL-DATE "T" HH:MM:SS "." 6DIGIT "Z". */
static bool ts_ok(const char *t)
{
	if (streq(t, "-"))
		return true;
	return strlen(t) == 27 && digits(t, 4) && t[4] == '-' && digits(t + 5, 2) && t[7] == '-' &&
	       digits(t + 8, 2) && t[10] == 'T' && digits(t + 11, 2) && t[13] == ':' && digits(t + 14, 2) &&
	       t[16] == ':' && digits(t + 17, 2) && t[19] == '.' && digits(t + 20, 6) && t[26] == 'Z';
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int parse_5424(const char *m, size_t len, struct parsed *p)
{
	const char *s = m, *end = m + len;
	char *e;
	long pri;

	memset(p, 0, sizeof(*p));
	if (strlen(m) != len)
		return p->err = "embedded NUL", -1;
	for (size_t i = 0; i < len;) { /* UTF-8, a single line, no controls anywhere */
		uint32_t cp;

		i += t_next((const unsigned char *)m + i, len - i, &cp);
		if (cp == UINT32_MAX)
			return p->err = "not UTF-8", -1;
		if (is_control(cp))
			return p->err = "control character", -1;
	}
	if (*s++ != '<')
		return p->err = "PRI", -1;
	pri = strtol(s, &e, 10);
	if (e == s || e - s > 3 || *e != '>' || pri < 0 || pri > 191 || (e - s > 1 && *s == '0'))
		return p->err = "PRI", -1;
	p->pri = (int)pri;
	s = e + 1;
	if (s[0] != '1' || s[1] != ' ')
		return p->err = "VERSION", -1;
	s += 2;
	if (!(s = field(s, p->ts, 40, p, "TIMESTAMP")) || !ts_ok(p->ts))
		return p->err = "TIMESTAMP", -1;
	if (!(s = field(s, p->host, 255, p, "HOSTNAME")) || !(s = field(s, p->app, 48, p, "APP-NAME")) ||
	    !(s = field(s, p->procid, 128, p, "PROCID")) || !(s = field(s, p->msgid, 32, p, "MSGID")))
		return -1;

	if (*s == '-') {
		p->sd_nil = true;
		s++;
	} else {
		char id[40];
		size_t n = 0;

		if (*s++ != '[')
			return p->err = "SD-ELEMENT", -1;
		while (printusascii(*s) && *s != '=' && *s != ']' && *s != '"') {
			if (n >= 32)
				return p->err = "SD-ID length", -1;
			id[n++] = *s++;
		}
		id[n] = '\0';
		if (!streq(id, "bulwark@32473"))
			return p->err = "SD-ID", -1;
		while (*s == ' ') {
			char name[40], *v;
			size_t vn = 0;

			s++;
			n = 0;
			while (printusascii(*s) && *s != '=' && *s != ']' && *s != '"') {
				if (n >= 32)
					return p->err = "PARAM-NAME length", -1;
				name[n++] = *s++;
			}
			name[n] = '\0';
			if (n == 0 || s[0] != '=' || s[1] != '"')
				return p->err = "PARAM-NAME", -1;
			s += 2;
			v = malloc((size_t)(end - s) + 1);
			while (s < end && *s != '"') {
				if (*s == ']') {
					free(v);
					return p->err = "unescaped ] in PARAM-VALUE", -1;
				}
				if (*s == '\\') {
					if (s[1] == '"' || s[1] == '\\' || s[1] == ']') {
						v[vn++] = s[1];
						s += 2;
					} else if (s[1] == 'x' && hexval(s[2]) >= 0 && hexval(s[3]) >= 0 &&
						   is_control((uint32_t)(hexval(s[2]) * 16 + hexval(s[3])))) {
						vn += put_utf8(v + vn, (uint32_t)(hexval(s[2]) * 16 + hexval(s[3])));
						s += 4;
					} else {
						free(v);
						return p->err = "stray backslash in PARAM-VALUE", -1;
					}
				} else {
					v[vn++] = *s++;
				}
			}
			v[vn] = '\0';
			if (s >= end || p->n_params >= MAX_PARAMS) {
				free(v);
				return p->err = "unterminated PARAM-VALUE", -1;
			}
			s++;
			p->names[p->n_params] = strdup(name);
			p->values[p->n_params++] = v;
		}
		if (*s++ != ']')
			return p->err = "SD-ELEMENT end", -1;
		if (p->n_params == 0)
			return p->err = "empty SD-ELEMENT", -1;
	}
	if (s == end)
		return 0;
	if (*s != ' ' || s + 1 == end)
		return p->err = "MSG separator", -1;
	s++;
	/* The formatter adds no BOM (test_full_record checks the bytes);
	 * a message that begins with U+FEFF itself is sent as it is. */
	p->has_msg = true;
	p->msg = strdup(s);
	return 0;
}

/* ---- records ---- */

static struct bw_record *make(enum bw_record_kind kind, uint64_t t, int prio, const char *msg,
			      const char *const *kv)
{
	struct bw_record_builder b;

	bw_record_builder_init(&b, kind, t, prio);
	if (msg)
		bw_record_builder_message(&b, "%s", msg);
	for (; kv && kv[0]; kv += 2)
		bw_record_builder_add(&b, kv[0], kv[1]);
	return bw_record_builder_finish(&b);
}

static char *fmt(const struct bw_record *r, const struct bw_syslog_options *o, struct bw_rfc5424_info *info)
{
	char *s = bw_rfc5424_format_alloc(r, o, info);

	if (!s) {
		perror("bw_rfc5424_format_alloc");
		exit(2);
	}
	return s;
}

static const struct bw_syslog_options base = {
	.hostname = "node-1", .procid = 4242,
};

/* 2025-11-21T19:50:17.139976600Z */
#define T0 1763754617139976600ULL

static void test_full_record(void)
{
	static const char *const kv[] = {
		"HOOK", "exec", "DECISION", "blocked", "MODE", "Block",
		"POLICY", "ClusterBulwarkPolicy lock-shells", "RULE", "exec.deny[0] path /bin/sh",
		"PID", "412", "PPID", "400", "UID", "0", "COMM", "nginx", "EXE", "/bin/sh",
		"PARENT_EXE", "/usr/sbin/nginx", "TARGET", "/bin/sh", "CGROUP_ID", "8812",
		"CGROUP_PATH", "/kubepods/pod1/c1", "NAMESPACE", "prod", "POD", "web-7f9c",
		"CONTAINER", "nginx", "PATH_UNRESOLVED", "-2", "MATCHED_BY_NAME", "1", NULL,
	};
	struct bw_record *r = make(BW_RECORD_DECISION, T0, LOG_WARNING,
				   "blocked exec of /bin/sh by pid 412 (nginx) in prod/web-7f9c: policy lock-shells", kv);
	struct bw_rfc5424_info info;
	_cleanup_free_ char *s = fmt(r, &base, &info);
	const char *want =
		"<84>1 2025-11-21T19:50:17.139976Z node-1 bulwarkd 4242 exec-blocked [bulwark@32473 hook=\"exec\" "
		"decision=\"blocked\" mode=\"Block\" policy=\"ClusterBulwarkPolicy lock-shells\" "
		"rule=\"exec.deny[0\\] path /bin/sh\" pid=\"412\" ppid=\"400\" uid=\"0\" comm=\"nginx\" exe=\"/bin/sh\" "
		"parent_exe=\"/usr/sbin/nginx\" target=\"/bin/sh\" cgroup_id=\"8812\" "
		"cgroup_path=\"/kubepods/pod1/c1\" namespace=\"prod\" pod=\"web-7f9c\" container=\"nginx\" "
		"path_unresolved=\"-2\" matched_by_name=\"1\"] "
		"blocked exec of /bin/sh by pid 412 (nginx) in prod/web-7f9c: policy lock-shells";

	ASSERT(streq(s, want));
	if (!streq(s, want))
		fprintf(stderr, "got:  %s\nwant: %s\n", s, want);
	ASSERT(info.truncated == 0 && info.dropped == 0 && info.replaced == 0 && info.escaped == 0 &&
	       info.renamed == 0);

	/* The same record into a caller's buffer gives the same bytes. */
	{
		char buf[9000];
		ssize_t n = bw_rfc5424_format(r, &base, buf, sizeof(buf), NULL);

		ASSERT(n == (ssize_t)strlen(want) && streq(buf, want));
	}
	bw_record_unref(r);
}

static void test_pri(void)
{
	static const char *const names[] = { "auth", "authpriv", "cron", "daemon", "ftp", "lpr", "mail", "news",
					     "syslog", "user", "uucp", "local0", "local1", "local2", "local3",
					     "local4", "local5", "local6", "local7" };
	static const int codes[] = { 4, 10, 9, 3, 11, 6, 2, 7, 5, 1, 8, 16, 17, 18, 19, 20, 21, 22, 23 };

	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		int f = bw_syslog_facility_from_name(names[i]);

		ASSERT(f == codes[i] << 3);
		ASSERT(streq_ptr(bw_syslog_facility_to_name(f), names[i]));
		for (int sev = 0; sev < 8; sev++) {
			struct bw_record *r = make(BW_RECORD_AGENT, T0, sev, "x", NULL);
			struct bw_syslog_options o = base;
			_cleanup_free_ char *s = NULL, *want = NULL;

			o.facility = f;
			s = fmt(r, &o, NULL);
			want = xasprintf("<%d>1 ", codes[i] * 8 + sev);
			ASSERT(startswith(s, want));
			bw_record_unref(r);
		}
	}
	ASSERT(bw_syslog_facility_from_name("security") == LOG_AUTH);
	ASSERT(bw_syslog_facility_from_name("AUTHPRIV") == LOG_AUTHPRIV);
	ASSERT(bw_syslog_facility_from_name("kern") == -EINVAL);
	ASSERT(bw_syslog_facility_from_name("local8") == -EINVAL);
	ASSERT(bw_syslog_facility_from_name("") == -EINVAL);
	ASSERT(bw_syslog_facility_from_name(NULL) == -EINVAL);
	ASSERT(streq(bw_syslog_facility_to_name(0), "authpriv"));
	ASSERT(bw_syslog_transport_from_name("tcp") == BW_SYSLOG_TCP);
	ASSERT(bw_syslog_transport_from_name("udp") == BW_SYSLOG_UDP);
	ASSERT(bw_syslog_transport_from_name("unix") == BW_SYSLOG_UNIX);
	ASSERT(bw_syslog_transport_from_name("tls") == -EINVAL);

	/* facility 0 is the default, authpriv; a record's own facility bits
	 * are ignored; severities outside 0..7 keep their low bits */
	{
		struct bw_record *r = make(BW_RECORD_AGENT, T0, LOG_LOCAL3 | LOG_ERR, "x", NULL);
		_cleanup_free_ char *s = fmt(r, &base, NULL);

		ASSERT(startswith(s, "<83>1 "));
		bw_record_unref(r);
	}
	{
		struct bw_syslog_options o = base;
		struct bw_record *r = make(BW_RECORD_AGENT, T0, LOG_ERR, "x", NULL);
		char buf[1024];

		o.facility = 5; /* not a facility: low bits set */
		ASSERT(bw_rfc5424_format(r, &o, buf, sizeof(buf), NULL) == -EINVAL);
		o.facility = 24 << 3;
		ASSERT(bw_rfc5424_format(r, &o, buf, sizeof(buf), NULL) == -EINVAL);
		o.facility = LOG_LOCAL7;
		ASSERT(bw_rfc5424_format(r, &o, buf, sizeof(buf), NULL) > 0 && startswith(buf, "<187>1 "));
		bw_record_unref(r);
	}
}

static void test_header(void)
{
	struct bw_syslog_options o = base;
	char msgid[33];
	struct {
		enum bw_record_kind kind;
		const char *hook, *decision, *want;
	} ids[] = {
		{ BW_RECORD_DECISION, "exec", "blocked", "exec-blocked" },
		{ BW_RECORD_DECISION, "file", "audited", "file-audited" },
		{ BW_RECORD_DECISION, "connect", "blocked", "connect-blocked" },
		{ BW_RECORD_DECISION, "EXEC", "blocked", "decision" },
		{ BW_RECORD_DECISION, "ex ec", "blocked", "decision" },
		{ BW_RECORD_DECISION, "exec", "", "decision" },
		{ BW_RECORD_DECISION, NULL, "blocked", "decision" },
		{ BW_RECORD_DECISION, "aaaaaaaaaaaaaaaa", "blocked", "decision" },
		{ BW_RECORD_SUPPRESSED, NULL, NULL, "suppressed" },
		{ BW_RECORD_HEALTH, NULL, NULL, "health" },
		{ BW_RECORD_LOSS, NULL, NULL, "loss" },
		{ BW_RECORD_AGENT, NULL, NULL, "agent" },
	};

	for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
		const char *kv[] = { "HOOK", ids[i].hook, "DECISION", ids[i].decision, NULL };
		struct bw_record *r = make(ids[i].kind, T0, LOG_NOTICE, "m", ids[i].hook ? kv : kv + 2);
		_cleanup_free_ char *s = fmt(r, &o, NULL);
		struct parsed p;

		ASSERT(streq(bw_rfc5424_msgid(r, msgid), ids[i].want));
		ASSERT(parse_5424(s, strlen(s), &p) == 0 && streq(p.msgid, ids[i].want));
		parsed_free(&p);
		bw_record_unref(r);
	}

	/* hostile and absent host names, time stamps at the edges */
	{
		struct bw_record *r = make(BW_RECORD_AGENT, 0, LOG_INFO, "m", NULL);
		_cleanup_free_ char *s1 = NULL, *s2 = NULL, *s3 = NULL, *s4 = NULL;
		char longhost[400];

		o.hostname = "my host\n\xc3\xa9";
		s1 = fmt(r, &o, NULL);
		ASSERT(streq(s1, "<86>1 1970-01-01T00:00:00.000000Z my_host___ bulwarkd 4242 agent - m"));
		o.hostname = NULL;
		s2 = fmt(r, &o, NULL);
		ASSERT(streq(s2, "<86>1 1970-01-01T00:00:00.000000Z - bulwarkd 4242 agent - m"));
		memset(longhost, 'h', sizeof(longhost) - 1);
		longhost[sizeof(longhost) - 1] = '\0';
		o.hostname = longhost;
		s3 = fmt(r, &o, NULL);
		{
			struct parsed p;

			ASSERT(parse_5424(s3, strlen(s3), &p) == 0 && strlen(p.host) == 255);
			parsed_free(&p);
		}
		o.hostname = "";
		s4 = fmt(r, &o, NULL);
		ASSERT(strstr(s4, ".000000Z - bulwarkd"));
		bw_record_unref(r);

		r = make(BW_RECORD_AGENT, 1999999999999999999ULL, LOG_INFO, "m", NULL);
		o.hostname = "h";
		free(s1);
		s1 = fmt(r, &o, NULL);
		ASSERT(startswith(s1, "<86>1 2033-05-18T03:33:19.999999Z h "));
		bw_record_unref(r);
	}
}

static void test_escaping(void)
{
	struct {
		const char *in, *sd, *msg;
		unsigned replaced, escaped;
	} cases[] = {
		{ "a\"b\\c]d", "a\\\"b\\\\c\\]d", "a\"b\\c]d", 0, 0 },
		{ "[x]", "[x\\]", "[x]", 0, 0 },
		{ "line1\nline2\r\n", "line1\\x0aline2\\x0d\\x0a", "line1\\x0aline2\\x0d\\x0a", 0, 3 },
		{ "tab\there\x1b[31m\x7f", "tab\\x09here\\x1b[31m\\x7f", "tab\\x09here\\x1b[31m\\x7f", 0, 3 },
		{ "nel\xc2\x85.", "nel\\x85.", "nel\\x85.", 0, 1 },
		{ "\\x0a", "\\\\x0a", "\\x0a", 0, 0 }, /* a literal backslash stays apart from an escape */
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbd", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbd",
		  "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbd", 0, 0 },
		/* overlong "/": C0 is never a lead byte, AF a stray continuation */
		{ "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd", "\xef\xbf\xbd\xef\xbf\xbd", 2, 0 },
		/* overlong 3-byte: E0 must be followed by A0..BF */
		{ "\xe0\x80\xaf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 3, 0 },
		/* a lone continuation byte */
		{ "a\x80z", "a\xef\xbf\xbdz", "a\xef\xbf\xbdz", 1, 0 },
		/* a truncated sequence is one replacement, the next byte survives */
		{ "\xe2\x82" "A", "\xef\xbf\xbd" "A", "\xef\xbf\xbd" "A", 1, 0 },
		{ "end\xf0\x9f\x98", "end\xef\xbf\xbd", "end\xef\xbf\xbd", 1, 0 },
		/* a surrogate (U+D800), in CESU form */
		{ "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 3, 0 },
		/* above U+10FFFF, and bytes that are never UTF-8 */
		{ "\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd",
		  "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 4, 0 },
		{ "\xfe\xff", "\xef\xbf\xbd\xef\xbf\xbd", "\xef\xbf\xbd\xef\xbf\xbd", 2, 0 },
		/* a replacement next to an escape */
		{ "\xff\"", "\xef\xbf\xbd\\\"", "\xef\xbf\xbd\"", 1, 0 },
		{ "", "", NULL, 0, 0 },
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		const char *kv[] = { "TARGET", cases[i].in, NULL };
		struct bw_record *r = make(BW_RECORD_DECISION, T0, LOG_NOTICE, cases[i].in, kv);
		struct bw_rfc5424_info info;
		_cleanup_free_ char *s = fmt(r, &base, &info), *want = NULL;
		struct parsed p;

		want = cases[i].msg ? xasprintf("[bulwark@32473 target=\"%s\"] %s", cases[i].sd, cases[i].msg)
				    : xasprintf("[bulwark@32473 target=\"%s\"]", cases[i].sd);
		ASSERT(endswith(s, want));
		if (!endswith(s, want))
			fprintf(stderr, "case %zu: got %s\n", i, s);
		ASSERT(info.replaced == 2 * cases[i].replaced && info.escaped == 2 * cases[i].escaped);
		ASSERT(parse_5424(s, strlen(s), &p) == 0);
		if (p.n_params == 1) {
			_cleanup_free_ char *ev = expect_value(cases[i].in);

			ASSERT(streq(p.values[0], ev));
		}
		parsed_free(&p);
		bw_record_unref(r);
	}

	/* no message at all, and no fields at all */
	{
		struct bw_record r0 = { .kind = BW_RECORD_AGENT, .priority = LOG_INFO, .message = NULL };
		_cleanup_free_ char *s = fmt(&r0, &base, NULL);

		ASSERT(streq(s, "<86>1 1970-01-01T00:00:00.000000Z node-1 bulwarkd 4242 agent -"));
	}
	/* a NULL value in a hand-made record reads as empty */
	{
		_cleanup_free_ struct bw_record *h = calloc(1, sizeof(*h) + 2 * sizeof(struct bw_field));
		_cleanup_free_ char *s = NULL;

		h->kind = BW_RECORD_HEALTH;
		h->priority = LOG_INFO;
		h->message = "ok";
		h->n_fields = 2;
		h->fields[0] = (struct bw_field){ "EVENT", NULL };
		h->fields[1] = (struct bw_field){ "SINK", "" };
		s = fmt(h, &base, NULL);
		ASSERT(endswith(s, " health [bulwark@32473 event=\"\" sink=\"\"] ok"));
	}
}

static void test_keys(void)
{
	const char *kv[] = {
		"A=B", "1", "A]\"B C", "2", "K\xc3\xa9Y", "3", "", "4",
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", "5", "lower@x", "6", "TAB\tKEY\n", "7", NULL,
	};
	struct bw_record *r = make(BW_RECORD_AGENT, T0, LOG_INFO, "m", kv);
	struct bw_rfc5424_info info;
	_cleanup_free_ char *s = fmt(r, &base, &info);
	struct parsed p;

	ASSERT(parse_5424(s, strlen(s), &p) == 0);
	ASSERT(p.n_params == 7);
	if (p.n_params == 7) {
		ASSERT(streq(p.names[0], "a_b"));
		ASSERT(streq(p.names[1], "a__b_c"));
		ASSERT(streq(p.names[2], "k__y"));
		ASSERT(streq(p.names[3], "_"));
		ASSERT(streq(p.names[4], "abcdefghijklmnopqrstuvwxyz012345"));
		ASSERT(streq(p.names[5], "lower@x"));
		ASSERT(streq(p.names[6], "tab_key_"));
		for (int i = 0; i < 7; i++)
			ASSERT(p.values[i][0] == '1' + i);
	}
	ASSERT(info.renamed == 6);
	parsed_free(&p);
	bw_record_unref(r);
}

static char *repeat(const char *unit, size_t times)
{
	size_t l = strlen(unit);
	char *s = malloc(l * times + 1);

	for (size_t i = 0; i < times; i++)
		memcpy(s + i * l, unit, l);
	s[l * times] = '\0';
	return s;
}

/* The value as parsed, against the original: equal, or a marked prefix. */
static bool value_matches(const char *parsed, const char *expected, bool *cut)
{
	size_t pl = strlen(parsed), ml = strlen(MARKER);

	*cut = false;
	if (streq(parsed, expected))
		return true;
	if (pl < ml || !streq(parsed + pl - ml, MARKER))
		return false;
	*cut = true;
	pl -= ml;
	/* a prefix, cut at a character boundary */
	return strncmp(parsed, expected, pl) == 0 && pl < strlen(expected) &&
	       ((unsigned char)expected[pl] & 0xC0) != 0x80;
}

static void test_long_values(void)
{
	_cleanup_free_ char *path = repeat("a", 4096), *path2 = repeat("b", 4096), *quotes = repeat("\"]", 3000),
			    *euro = repeat("\xe2\x82\xac", 3000), *nl = repeat("\n", 3000), *bad = repeat("\xff", 3000);
	struct bw_syslog_options o = base;
	struct bw_rfc5424_info info;
	struct parsed p;
	bool cut;

	/* One 4096-byte path fits the default 8096 whole. */
	{
		const char *kv[] = { "HOOK", "file", "DECISION", "audited", "TARGET", path, "COMM", "cat", NULL };
		struct bw_record *r = make(BW_RECORD_DECISION, T0, LOG_NOTICE, "audited read", kv);
		_cleanup_free_ char *s = fmt(r, &o, &info);

		ASSERT(info.truncated == 0);
		ASSERT(parse_5424(s, strlen(s), &p) == 0 && p.n_params == 4 && streq(p.values[2], path));
		parsed_free(&p);

		/* Over UDP's 2048 it is cut, the short fields stay whole. */
		o.transport = BW_SYSLOG_UDP;
		free(s);
		s = fmt(r, &o, &info);
		ASSERT(strlen(s) <= 2048 && strlen(s) >= 2048 - 8);
		ASSERT(info.truncated == 1 && info.dropped == 0);
		ASSERT(parse_5424(s, strlen(s), &p) == 0 && p.n_params == 4);
		if (p.n_params == 4) {
			ASSERT(value_matches(p.values[2], path, &cut) && cut);
			ASSERT(streq(p.values[3], "cat") && streq(p.values[0], "file"));
		}
		ASSERT(p.has_msg && streq(p.msg, "audited read"));
		parsed_free(&p);
		o.transport = BW_SYSLOG_UNIX;
		bw_record_unref(r);
	}
	/* Two 4096-byte paths and a 4 KiB message: all three cut to a common
	 * length, the message at exactly the limit or a few bytes under. */
	{
		const char *kv[] = { "HOOK", "exec", "DECISION", "blocked", "EXE", path, "TARGET", path2, NULL };
		struct bw_record *r = make(BW_RECORD_DECISION, T0, LOG_WARNING, path2, kv);
		_cleanup_free_ char *s = fmt(r, &o, &info);

		ASSERT(strlen(s) <= 8096 && strlen(s) >= 8096 - 12);
		ASSERT(info.truncated == 3);
		ASSERT(parse_5424(s, strlen(s), &p) == 0 && p.n_params == 4);
		if (p.n_params == 4) {
			ASSERT(value_matches(p.values[2], path, &cut) && cut);
			ASSERT(value_matches(p.values[3], path2, &cut) && cut);
			ASSERT(strlen(p.values[2]) == strlen(p.values[3]));
		}
		ASSERT(p.has_msg && value_matches(p.msg, path2, &cut) && cut);
		parsed_free(&p);
		bw_record_unref(r);
	}
	/* Cutting never splits an escape, a replacement or a character. */
	{
		const char *vals[] = { quotes, euro, nl, bad };

		for (size_t i = 0; i < ELEMENTSOF(vals); i++) {
			for (size_t max = 480; max < 600; max++) {
				const char *kv[] = { "TARGET", vals[i], NULL };
				struct bw_record *r = make(BW_RECORD_DECISION, T0, LOG_WARNING, vals[i], kv);
				_cleanup_free_ char *s = NULL, *ev = expect_value(vals[i]), *em = expect_msg(vals[i]);

				o.max_message = max;
				s = fmt(r, &o, &info);
				ASSERT(strlen(s) <= max);
				ASSERT(parse_5424(s, strlen(s), &p) == 0 && p.n_params == 1);
				if (p.n_params == 1)
					ASSERT(value_matches(p.values[0], ev, &cut) && cut);
				ASSERT(p.has_msg && value_matches(p.msg, em, &cut) && cut);
				parsed_free(&p);
				bw_record_unref(r);
			}
		}
		o.max_message = 0;
	}
	/* Too many fields for the limit: trailing SD-PARAMs are dropped. */
	{
		struct bw_record_builder b;
		struct bw_record *r;
		_cleanup_free_ char *s = NULL;

		bw_record_builder_init(&b, BW_RECORD_HEALTH, T0, LOG_INFO);
		bw_record_builder_message(&b, "health");
		for (int i = 0; i < 200; i++)
			bw_record_builder_addf(&b, "COUNTER_WITH_A_RATHER_LONG_NAME", "%d", i);
		r = bw_record_builder_finish(&b);
		o.max_message = 480;
		s = fmt(r, &o, &info);
		ASSERT(strlen(s) <= 480);
		ASSERT(info.dropped > 0 && info.dropped < 200);
		ASSERT(parse_5424(s, strlen(s), &p) == 0 && p.n_params == 200 - info.dropped);
		for (size_t i = 0; i < p.n_params; i++) {
			char want[24];

			snprintf(want, sizeof(want), "%zu", i);
			ASSERT(streq(p.values[i], want));
		}
		parsed_free(&p);
		o.max_message = 0;
		bw_record_unref(r);
	}
	/* Limits: below the RFC 5426 minimum, or a buffer too small for it. */
	{
		struct bw_record *r = make(BW_RECORD_AGENT, T0, LOG_INFO, "m", NULL);
		char buf[600];

		o.max_message = 479;
		ASSERT(bw_rfc5424_format(r, &o, buf, sizeof(buf), NULL) == -EINVAL);
		o.max_message = 0;
		ASSERT(bw_rfc5424_format(r, &o, buf, 480, NULL) == -EINVAL);
		ASSERT(bw_rfc5424_format(r, &o, buf, 481, NULL) > 0);
		o.transport = BW_SYSLOG_UDP;
		o.max_message = 65508;
		ASSERT(bw_rfc5424_format(r, &o, buf, sizeof(buf), NULL) == -EINVAL);
		o.max_message = 0;
		errno = 0;
		ASSERT(!bw_sink_syslog_new(&o) && errno == EINVAL); /* UDP needs a host */
		o.transport = BW_SYSLOG_UNIX;
		bw_record_unref(r);
	}
}

/* ---- fuzz ---- */

static uint64_t rng_state = 0x5eed5eed12345678ULL;

static uint64_t rnd(void)
{
	/* splitmix64: fixed seed, the same records on every run */
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static unsigned rn(unsigned n)
{
	return (unsigned)(rnd() % n);
}

/* Random hostile bytes, never NUL. */
static char *rnd_string(size_t len)
{
	static const char *const pieces[] = {
		"\"", "\\", "]", "[", "=", " ", "\n", "\r", "\t", "\x1b", "\x7f", "\xc2\x85", "\xc3\xa9",
		"\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xef\xbf\xbd", "\xe2\x80\xa8", "\xc0\xaf", "\xe0\x80\x80",
		"\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\xf0\x9f", "\x80", "\xbf", "\xfe", "\xff",
		"\\x0a", MARKER, "\xef\xbb\xbf",
	};
	char *s = malloc(len + 8);
	size_t n = 0;

	while (n < len) {
		unsigned k = rn(10);

		if (k < 4) {
			s[n++] = (char)(32 + rn(95));
		} else if (k < 7) {
			const char *p = pieces[rn(ELEMENTSOF(pieces))];
			size_t l = strlen(p);

			if (n + l > len + 4)
				continue;
			memcpy(s + n, p, l);
			n += l;
		} else {
			s[n++] = (char)(1 + rn(255));
		}
	}
	s[n] = '\0';
	return s;
}

static size_t rnd_len(void)
{
	unsigned k = rn(100);

	return k < 75 ? rn(24) : rn(300);
}

static const char *const std_keys[] = {
	"HOOK", "DECISION", "MODE", "POLICY", "RULE", "PID", "PPID", "UID", "COMM", "EXE", "PARENT_EXE",
	"TARGET", "ACCESS", "CGROUP_ID", "CGROUP_PATH", "NAMESPACE", "POD", "CONTAINER", "EVENT",
};

static char *lower_name(const char *key)
{
	char *n = calloc(1, 40);
	size_t i = 0;

	for (; key[i] && i < 32; i++) {
		unsigned char c = (unsigned char)key[i];

		n[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) :
		       c < 33 || c > 126 || c == '=' || c == ']' || c == '"' ? '_' : (char)c;
	}
	if (i == 0)
		n[0] = '_';
	return n;
}

static bool lower_token(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 15)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

static unsigned fuzz_failures;

#define FUZZ_CHECK(cond, what)                                                                          \
	do {                                                                                            \
		if (!(cond)) {                                                                          \
			if (fuzz_failures++ < 5)                                                        \
				fprintf(stderr, "fuzz %u: %s: %s\n  %.300s\n", iter, what, #cond, s);   \
			ok = false;                                                                     \
		}                                                                                       \
	} while (0)

static void test_fuzz(void)
{
	static const size_t maxes[] = { 0, 480, 512, 1024, 2048, 8096, 65536 };
	unsigned iterations = 100000, cuts = 0, drops = 0, records_ok = 0;
	const char *env = getenv("BW_FUZZ_ITERATIONS");
	_cleanup_free_ char *full = malloc(BW_SYSLOG_MAX_MESSAGE + 1);
	struct timespec t0, t1;

	if (UNDER_ASAN)
		iterations = 30000; /* the plain build runs the full count; ASan is ~3x slower */
	if (env)
		iterations = (unsigned)strtoul(env, NULL, 10);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned iter = 0; iter < iterations; iter++) {
		struct bw_syslog_options o = { .procid = (pid_t)(1 + rn(4000000)) };
		struct bw_record_builder b;
		struct bw_record *r;
		struct bw_rfc5424_info info;
		struct parsed p;
		char hostbuf[300];
		char *s = NULL, *msg = NULL;
		size_t nf = rn(100) < 90 ? rn(24) : rn(120), limit, len, long_field;
		bool ok = true, any_cut = false;
		int fac;

		o.transport = (enum bw_syslog_transport)rn(3);
		o.max_message = maxes[rn(ELEMENTSOF(maxes))];
		if (o.transport == BW_SYSLOG_UDP && o.max_message > BW_SYSLOG_MAX_UDP_MESSAGE)
			o.max_message = BW_SYSLOG_MAX_UDP_MESSAGE;
		fac = (int)rn(24);
		o.facility = fac == 0 ? 0 : fac << 3;
		if (rn(4)) {
			size_t hl = rn(10) ? 1 + rn(20) : rn(290);

			for (size_t i = 0; i < hl; i++)
				hostbuf[i] = (char)(1 + rn(255));
			hostbuf[hl] = '\0';
			o.hostname = hostbuf;
		}
		limit = o.max_message ? o.max_message : o.transport == BW_SYSLOG_UDP ? 2048 : 8096;

		{
			/* one call per statement: argument order is unspecified,
			 * and the records must be the same with every compiler */
			enum bw_record_kind kind = (enum bw_record_kind)rn(5);
			uint64_t t = rnd() % 4102444800000000000ULL;
			int prio = (int)rn(40) - 8;

			bw_record_builder_init(&b, kind, t, prio);
		}
		if (rn(10)) {
			msg = rnd_string(rn(10) == 0 ? 300 + rn(4800) : rnd_len());
			bw_record_builder_message(&b, "%s", msg);
		}
		if (rn(3) == 0) {
			static const char *const hooks[] = { "exec", "file", "connect", "EXEC", "ex ec", "" };
			static const char *const decisions[] = { "blocked", "audited", "Blocked", "x]" };

			bw_record_builder_add(&b, "HOOK", hooks[rn(ELEMENTSOF(hooks))]);
			bw_record_builder_add(&b, "DECISION", decisions[rn(ELEMENTSOF(decisions))]);
		}
		/* at most one long value a record, like a path: the long ones
		 * are what makes cutting necessary, and what costs time */
		long_field = rn(3) == 0 ? rn(nf + 1) : SIZE_MAX;
		for (size_t i = 0; i < nf; i++) {
			_cleanup_free_ char *v = rnd_string(i == long_field ? 300 + rn(4800) : rnd_len()), *k = NULL;

			if (rn(5) == 0)
				k = rnd_string(rn(40));
			bw_record_builder_add(&b, k ? k : std_keys[rn(ELEMENTSOF(std_keys))], v);
		}
		r = bw_record_builder_finish(&b);
		if (!r) {
			perror("builder");
			exit(2);
		}

		s = fmt(r, &o, &info);
		len = strlen(s);
		FUZZ_CHECK(len <= limit, "length bound");
		FUZZ_CHECK(parse_5424(s, len, &p) == 0, p.err ? p.err : "parse");
		if (ok) {
			char want_host[300], msgid[33];
			const char *hook = bw_record_get(r, "HOOK"), *dec = bw_record_get(r, "DECISION");
			size_t hl = 0;
			bool cut;

			FUZZ_CHECK(p.pri == (fac ? fac : 10) * 8 + (r->priority & 7), "PRI");
			FUZZ_CHECK(streq(p.app, "bulwarkd"), "APP-NAME");
			snprintf(want_host, sizeof(want_host), "%ld", (long)o.procid);
			FUZZ_CHECK(streq(p.procid, want_host), "PROCID");
			for (; o.hostname && o.hostname[hl] && hl < 255; hl++)
				want_host[hl] = printusascii(o.hostname[hl]) ? o.hostname[hl] : '_';
			if (hl == 0)
				want_host[hl++] = '-';
			want_host[hl] = '\0';
			FUZZ_CHECK(streq(p.host, want_host), "HOSTNAME");
			if (hook && dec && lower_token(hook) && lower_token(dec))
				snprintf(msgid, sizeof(msgid), "%s-%s", hook, dec);
			else
				snprintf(msgid, sizeof(msgid), "decision");
			FUZZ_CHECK(r->kind != BW_RECORD_DECISION || streq(p.msgid, msgid), "MSGID");
			FUZZ_CHECK(p.n_params == r->n_fields - info.dropped, "SD-PARAM count");
			FUZZ_CHECK(p.sd_nil == (p.n_params == 0), "SD NILVALUE");
			for (size_t i = 0; ok && i < p.n_params; i++) {
				_cleanup_free_ char *name = lower_name(r->fields[i].key),
						    *ev = expect_value(r->fields[i].value);

				FUZZ_CHECK(streq(p.names[i], name), "PARAM-NAME");
				FUZZ_CHECK(value_matches(p.values[i], ev, &cut), "PARAM-VALUE round trip");
				any_cut |= cut;
			}
			if (ok && r->message[0] && p.has_msg) {
				_cleanup_free_ char *em = expect_msg(r->message);

				FUZZ_CHECK(value_matches(p.msg, em, &cut), "MSG round trip");
				any_cut |= cut;
			}
			FUZZ_CHECK(p.has_msg == (r->message[0] != '\0') || info.truncated > 0, "MSG presence");

			/* Cut only when the whole would not fit; whole otherwise. */
			o.max_message = BW_SYSLOG_MAX_MESSAGE;
			o.transport = BW_SYSLOG_TCP;
			FUZZ_CHECK(bw_rfc5424_format(r, &o, full, BW_SYSLOG_MAX_MESSAGE + 1, NULL) > 0, "unbounded");
			if (strlen(full) <= limit) {
				FUZZ_CHECK(streq(full, s), "identical when it fits");
			} else {
				FUZZ_CHECK(any_cut || info.dropped || !p.has_msg, "something cut when too long");
				FUZZ_CHECK(info.dropped || len + 4 * (p.n_params + 1) + 4 >= limit,
					   "room left unused");
				cuts++;
			}
			drops += info.dropped > 0;
		}
		records_ok += ok;
		if (p.msg || p.n_params)
			parsed_free(&p);
		free(s);
		free(msg);
		bw_record_unref(r);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ASSERT(records_ok == iterations);
	ASSERT(iterations < 1000 || cuts > iterations / 100); /* the bound was exercised */
	printf("fuzz: %u records, %u cut to fit (%u with SD-PARAMs dropped), %u failed, %.1f s\n", iterations,
	       cuts, drops, iterations - records_ok,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

/* ---- transports, against local listeners ---- */

static bool wait_readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

static void test_unix_transport(void)
{
	char dir[] = "/tmp/bw-syslog-XXXXXX", path[128], buf[9000];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct bw_syslog_options o = base;
	_cleanup_close_ int srv = -1;
	struct bw_sink *s;
	const char *kv[] = { "HOOK", "exec", "DECISION", "blocked", "TARGET", "/bin/sh", NULL };
	struct bw_record *r = make(BW_RECORD_DECISION, T0, LOG_WARNING, "blocked", kv);
	ssize_t n;

	ASSERT(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/log", dir);
	o.path = path;
	s = bw_sink_syslog_new(&o);
	ASSERT(s != NULL);
	if (!s)
		return;

	/* nothing there yet */
	ASSERT(s->ops->open(s) == -ENOENT);
	ASSERT(s->ops->write(s, r) < 0);

	/* a stream socket there: refused clearly */
	strcpy(sa.sun_path, path);
	srv = socket(AF_UNIX, SOCK_STREAM, 0);
	ASSERT(bind(srv, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(srv, 1) == 0);
	ASSERT(s->ops->open(s) == -EPROTOTYPE);
	close(TAKE_FD(srv));
	unlink(path);

	srv = socket(AF_UNIX, SOCK_DGRAM, 0);
	ASSERT(bind(srv, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	ASSERT(s->ops->open(s) == 0);
	ASSERT(s->ops->write(s, r) == 0);
	ASSERT(wait_readable(srv, 5000));
	n = recv(srv, buf, sizeof(buf) - 1, 0);
	ASSERT(n > 0);
	if (n > 0) {
		buf[n] = '\0';
		ASSERT(startswith(buf, "<84>1 2025-11-21T19:50:17.139976Z node-1 bulwarkd 4242 exec-blocked "));
		ASSERT(endswith(buf, "] blocked")); /* no newline, no NUL: one datagram, one message */
	}

	/* the collector restarts: the old connection is refused, a reopen
	 * reaches the new socket */
	close(TAKE_FD(srv));
	unlink(path);
	srv = socket(AF_UNIX, SOCK_DGRAM, 0);
	ASSERT(bind(srv, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	ASSERT(s->ops->write(s, r) == -ECONNREFUSED);
	ASSERT(s->ops->open(s) == 0 && s->ops->write(s, r) == 0);
	ASSERT(wait_readable(srv, 5000) && recv(srv, buf, sizeof(buf), 0) > 0);

	s->ops->close(s);
	s->ops->free(s);
	free(s);
	unlink(path);
	rmdir(dir);
	bw_record_unref(r);
}

static int tcp_listener(uint16_t *port, int rcvbuf)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &l) < 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Reads one octet-counted frame: "LEN SP MSG". */
static char *read_frame(int fd)
{
	char len_buf[16];
	size_t n = 0, len;
	char *m;

	while (n < sizeof(len_buf) - 1) {
		if (!wait_readable(fd, 5000) || recv(fd, len_buf + n, 1, 0) != 1)
			return NULL;
		if (len_buf[n] == ' ')
			break;
		if (len_buf[n] < '0' || len_buf[n] > '9')
			return NULL;
		n++;
	}
	len_buf[n] = '\0';
	if (n == 0 || len_buf[0] == '0')
		return NULL;
	len = strtoul(len_buf, NULL, 10);
	m = malloc(len + 1);
	for (size_t got = 0; got < len;) {
		ssize_t k;

		if (!wait_readable(fd, 5000) || (k = recv(fd, m + got, len - got, 0)) <= 0) {
			free(m);
			return NULL;
		}
		got += (size_t)k;
	}
	m[len] = '\0';
	return strlen(m) == len ? m : (free(m), NULL);
}

static void test_tcp_transport(void)
{
	struct bw_syslog_options o = base;
	_cleanup_close_ int srv = -1, conn = -1;
	_cleanup_free_ char *big = repeat("\xe2\x82\xac\"", 5000);
	const char *kv[] = { "HOOK", "file", "DECISION", "audited", "TARGET", big, NULL };
	struct bw_record *r = make(BW_RECORD_DECISION, T0, LOG_NOTICE, "multi\nline", kv);
	struct bw_sink *s;
	uint16_t port;
	struct timespec t0, t1;
	int ret = 0, writes;

	/* refused: nothing listens on a port we just had and closed */
	srv = tcp_listener(&port, 0);
	close(TAKE_FD(srv));
	o.transport = BW_SYSLOG_TCP;
	o.host = "127.0.0.1";
	o.port = port;
	o.connect_timeout_ms = 2000;
	o.write_timeout_ms = 300;
	s = bw_sink_syslog_new(&o);
	ASSERT(s != NULL);
	if (!s)
		return;
	ASSERT(s->ops->open(s) == -ECONNREFUSED);

	srv = tcp_listener(&port, 0);
	s->ops->free(s);
	free(s);
	o.port = port;
	s = bw_sink_syslog_new(&o);
	ASSERT(s->ops->open(s) == 0);
	conn = accept(srv, NULL, NULL);
	ASSERT(conn >= 0);
	for (int i = 0; i < 3; i++) {
		_cleanup_free_ char *m = NULL;
		struct parsed p;

		ASSERT(s->ops->write(s, r) == 0);
		m = read_frame(conn);
		ASSERT(m && strlen(m) <= 8096 && strlen(m) > 8000);
		ASSERT(m && parse_5424(m, strlen(m), &p) == 0 && streq(p.msgid, "file-audited") &&
		       streq(p.msg, "multi\\x0aline"));
		if (m)
			parsed_free(&p);
	}

	/* the collector goes away: the very next write fails, none is
	 * counted as written into a dead connection */
	close(TAKE_FD(conn));
	close(TAKE_FD(srv));
	usleep(10000); /* let the FIN arrive; the check does not depend on it for correctness */
	ASSERT(s->ops->write(s, r) < 0);
	ASSERT(s->ops->write(s, r) == -ENOTCONN);
	ASSERT(s->ops->open(s) == -ECONNREFUSED);

	/* a collector that accepts and never reads: writes time out after
	 * write_timeout_ms each instead of blocking the sink thread */
	srv = tcp_listener(&port, 4096);
	s->ops->free(s);
	free(s);
	o.port = port;
	s = bw_sink_syslog_new(&o);
	ASSERT(s->ops->open(s) == 0);
	conn = accept(srv, NULL, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (writes = 0; writes < 20000; writes++) {
		ret = s->ops->write(s, r);
		if (ret < 0)
			break;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ASSERT(ret == -ETIMEDOUT);
	{
		double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

		printf("tcp: stuck collector: %d writes, then ETIMEDOUT after %.2f s\n", writes, secs);
		ASSERT(secs < 5.0);
	}
	/* after a timeout the half-written frame is abandoned: reconnect */
	ASSERT(s->ops->write(s, r) == -ENOTCONN);
	s->ops->free(s);
	free(s);
	bw_record_unref(r);
}

static void test_udp_transport(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(sa);
	struct bw_syslog_options o = base;
	_cleanup_close_ int srv = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	_cleanup_free_ char *big = repeat("x", 4096);
	const char *kv[] = { "TARGET", big, NULL };
	struct bw_record *r = make(BW_RECORD_DECISION, T0, LOG_NOTICE, "udp", kv);
	struct bw_sink *s;
	char buf[70000];
	ssize_t n;

	ASSERT(bind(srv, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	       getsockname(srv, (struct sockaddr *)&sa, &l) == 0);
	o.transport = BW_SYSLOG_UDP;
	o.host = "localhost";
	o.port = ntohs(sa.sin_port);
	s = bw_sink_syslog_new(&o);
	ASSERT(s && s->ops->open(s) == 0);
	if (!s)
		return;
	ASSERT(s->ops->write(s, r) == 0);
	ASSERT(wait_readable(srv, 5000));
	n = recv(srv, buf, sizeof(buf) - 1, 0);
	ASSERT(n > 1900 && n <= 2048); /* one datagram within the UDP default */
	if (n > 0) {
		struct parsed p;

		buf[n] = '\0';
		ASSERT(parse_5424(buf, (size_t)n, &p) == 0 && p.n_params == 1 && endswith(p.values[0], MARKER));
		parsed_free(&p);
	}
	{
		struct bw_syslog_counters c;

		bw_sink_syslog_get_counters(s, &c);
		ASSERT(c.truncated == 1);
	}
	s->ops->free(s);
	free(s);
	bw_record_unref(r);
}

/* "[::1]" as a host: brackets stripped, IPv6 reached (skipped without ::1). */
static void test_ipv6_host(void)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	socklen_t l = sizeof(sa);
	struct bw_syslog_options o = base;
	_cleanup_close_ int srv = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), conn = -1;
	struct bw_record *r = make(BW_RECORD_AGENT, T0, LOG_INFO, "v6", NULL);
	_cleanup_free_ char *m = NULL;
	struct bw_sink *s;

	if (srv < 0 || bind(srv, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(srv, 1) < 0 ||
	    getsockname(srv, (struct sockaddr *)&sa, &l) < 0) {
		printf("ipv6: no ::1 here, skipped\n");
		bw_record_unref(r);
		return;
	}
	o.transport = BW_SYSLOG_TCP;
	o.host = "[::1]";
	o.port = ntohs(sa.sin6_port);
	s = bw_sink_syslog_new(&o);
	ASSERT(s && s->ops->open(s) == 0);
	if (s) {
		conn = accept(srv, NULL, NULL);
		ASSERT(s->ops->write(s, r) == 0);
		m = read_frame(conn);
		ASSERT(m && endswith(m, " agent - v6"));
		s->ops->free(s);
		free(s);
	}
	bw_record_unref(r);
}

int main(void)
{
	/* SIGPIPE keeps its default action: a write without MSG_NOSIGNAL
	 * into the closed collector below would kill the test. */
	test_full_record();
	test_pri();
	test_header();
	test_escaping();
	test_keys();
	test_long_values();
	test_fuzz();
	test_unix_transport();
	test_tcp_transport();
	test_udp_transport();
	test_ipv6_host();
	return bw_test_summary();
}
