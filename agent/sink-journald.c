/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The journald sink (sink-journald.h).
 *
 * One record is one sd_journal_sendv() call: one datagram on journald's
 * socket, built in a buffer the sink keeps between records (only the sink
 * thread writes, so it needs no lock).
 *
 * Things libsystemd does that matter here:
 *  - Values holding a newline are sent in the protocol's binary form (name,
 *    newline, 64-bit length, bytes), so any byte but NUL goes through
 *    unchanged; entries too large for one datagram go as a sealed memfd.
 *  - sendmsg() on its socket is blocking: a journald that is alive but
 *    stalled (stopped, or slower than we write) makes this call wait once
 *    the socket's queue is full. That stalls only this sink's thread; the
 *    framework keeps queueing and drops what does not fit (dropped_full),
 *    and enforcement never waits for it.
 *  - sd_journal_sendv() returns 0 when the socket does not exist (libsystemd
 *    treats "no journal" as "nothing to do"), which would count a lost
 *    record as written. So the sink looks for the socket before each send
 *    and reports -ENOENT itself. What remains: a journald restarted by hand
 *    unlinks and re-binds its socket, and a record sent in that instant is
 *    lost uncounted; entries already queued in the socket when journald
 *    dies are lost with it. Under systemd neither happens: PID 1 holds the
 *    socket across journald restarts and the queue survives.
 *  - A journald that was killed leaves its socket file behind: sends fail
 *    with ECONNREFUSED, which marks the sink down until open() finds
 *    journald again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
/* Without this, sd-journal.h turns sd_journal_sendv() into a call that adds
 * CODE_FILE/CODE_LINE/CODE_FUNC of this file to every entry: noise. */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

#include "sink-journald.h"
#include "util.h"

/* journald's limit on field names is 64 characters: "BULWARK_" leaves 56. */
#define FIELD_PREFIX "BULWARK_"
#define FIELD_NAME_MAX 64

struct journald_sink {
	char *buf; /* every "NAME=value" of one entry, back to back */
	size_t buf_size;
	struct iovec *iov;
	size_t iov_cap;
};

static const char *kind_name(enum bw_record_kind k)
{
	switch (k) {
	case BW_RECORD_DECISION: return "decision";
	case BW_RECORD_SUPPRESSED: return "suppressed";
	case BW_RECORD_HEALTH: return "health";
	case BW_RECORD_LOSS: return "loss";
	case BW_RECORD_AGENT: return "agent";
	}
	return "agent";
}

bool bw_journald_available(void)
{
	struct stat st;

	return stat(BW_JOURNALD_SOCKET, &st) == 0 && S_ISSOCK(st.st_mode);
}

int bw_journald_probe(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;

	if (!path)
		path = BW_JOURNALD_SOCKET;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Connecting a datagram socket sends nothing: it only checks that a
	 * socket is bound at path. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	return 0;
}

/* Copies "<prefix><name>=<value>" to *p and returns its iovec. Names
 * outside journald's [A-Z0-9_] (records should never have any) are made
 * valid rather than have journald drop the field silently. */
static struct iovec put_field(char **p, const char *prefix, const char *name, const char *value)
{
	struct iovec v = { .iov_base = *p };
	size_t lp = strlen(prefix), n = 0, lv = strlen(value);
	char *q = *p;

	memcpy(q, prefix, lp);
	q += lp;
	for (; name[n] && lp + n < FIELD_NAME_MAX; n++) {
		char c = name[n];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
			c = '_';
		*q++ = c;
	}
	*q++ = '=';
	memcpy(q, value, lv);
	q += lv;
	v.iov_len = (size_t)(q - *p);
	*p = q;
	return v;
}

static int journald_open(struct bw_sink *s)
{
	(void)s;
	return bw_journald_probe(NULL);
}

static int journald_write(struct bw_sink *s, const struct bw_record *r)
{
	struct journald_sink *j = s->impl;
	const char *kind = kind_name(r->kind);
	char prio[16], ts[64];
	size_t need, n_iov = r->n_fields + 5, k = 0;
	struct stat st;
	char *p;

	snprintf(prio, sizeof(prio), "%d", r->priority & 7);
	bw_format_time(r->time_realtime_ns, ts, sizeof(ts));

	/* Upper bound: names are cut at FIELD_NAME_MAX, never lengthened. */
	need = sizeof("MESSAGE=") + strlen(r->message) + sizeof("PRIORITY=") + strlen(prio) +
	       sizeof("SYSLOG_IDENTIFIER=" BW_JOURNALD_IDENTIFIER) + sizeof(FIELD_PREFIX "KIND=") + strlen(kind) +
	       sizeof(FIELD_PREFIX "TIME=") + strlen(ts);
	for (size_t i = 0; i < r->n_fields; i++)
		need += sizeof(FIELD_PREFIX) + strlen(r->fields[i].key) + 1 + strlen(r->fields[i].value);
	if (need > j->buf_size) {
		char *b = realloc(j->buf, need);

		if (!b)
			return -ENOMEM;
		j->buf = b;
		j->buf_size = need;
	}
	if (ARRAY_RESERVE(j->iov, j->iov_cap, n_iov) < 0)
		return -ENOMEM;

	p = j->buf;
	j->iov[k++] = put_field(&p, "", "MESSAGE", r->message);
	j->iov[k++] = put_field(&p, "", "PRIORITY", prio);
	j->iov[k++] = put_field(&p, "", "SYSLOG_IDENTIFIER", BW_JOURNALD_IDENTIFIER);
	j->iov[k++] = put_field(&p, FIELD_PREFIX, "KIND", kind);
	j->iov[k++] = put_field(&p, FIELD_PREFIX, "TIME", ts);
	for (size_t i = 0; i < r->n_fields; i++)
		j->iov[k++] = put_field(&p, FIELD_PREFIX, r->fields[i].key, r->fields[i].value);

	/* libsystemd reports success when the socket is missing: see above. */
	if (stat(BW_JOURNALD_SOCKET, &st) < 0)
		return -errno;
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	/* May block while journald is stalled: only this sink's thread waits. */
	return sd_journal_sendv(j->iov, (int)k);
}

static void journald_free(struct bw_sink *s)
{
	struct journald_sink *j = s->impl;

	if (!j)
		return;
	free(j->buf);
	free(j->iov);
	free(j);
	s->impl = NULL;
}

static const struct bw_sink_ops journald_ops = {
	.name = "journald",
	.open = journald_open,
	.write = journald_write,
	.free = journald_free,
};

struct bw_sink *bw_sink_journald_new(void)
{
	struct bw_sink *s = calloc(1, sizeof(*s));
	struct journald_sink *j = calloc(1, sizeof(*j));

	if (!s || !j) {
		free(s);
		free(j);
		errno = ENOMEM;
		return NULL;
	}
	s->ops = &journald_ops;
	s->impl = j;
	return s;
}
