/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The syslog sink: every record as one RFC 5424 message, the record's fields
 * as structured data, sent to the local syslog socket (default /dev/log) or
 * to a remote collector over TCP (RFC 6587 octet counting) or UDP (RFC 5426).
 *
 *   <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [bulwark@32473 k="v" ...] MSG
 *
 * PRI is facility * 8 + the record's severity. The SD-ID uses 32473, the
 * example Private Enterprise Number that RFC 5612 reserves for
 * documentation; a deployment with its own PEN can change it here.
 *
 * What the formatter guarantees, whatever bytes the record holds:
 *  - SD-PARAM names are the field names in lower case, at most 32 characters
 *    of PRINTUSASCII without '=', ']', '"' (anything else becomes '_');
 *  - PARAM-VALUEs are valid UTF-8: each ill-formed sequence (overlong forms,
 *    surrogates, stray continuation bytes, truncated sequences, bytes that
 *    are never UTF-8) becomes one U+FFFD, per Unicode's "maximal subpart"
 *    practice; '"', '\' and ']' are backslash-escaped (RFC 5424 §6.3.3);
 *  - no control characters: C0 controls, DEL and the C1 controls
 *    (U+0080..U+009F) are written as the four characters \xHH (HH: the code
 *    point, lower-case hex), so a message is always a single line. A
 *    standard RFC 5424 parser reads that back as the literal text "\x0a";
 *    an original backslash is always written as "\\", so the two stay apart;
 *  - MSG is the record's message made the same way (valid UTF-8, controls as
 *    \xHH; backslashes are not special in MSG and stay as they are), without
 *    a BOM: rsyslog keeps a BOM as three bytes of the message text;
 *  - the whole message fits max_message bytes: when it would not, the
 *    longest values (MSG included) are cut, at a character boundary and never
 *    inside an escape, and end in "...[truncated]"; if the fixed parts alone
 *    do not fit, SD-PARAMs are dropped from the end. Both are counted.
 *
 * Transports: datagrams to a unix socket (a stream socket there is refused
 * with EPROTOTYPE); TCP with a bounded non-blocking connect and SO_SNDTIMEO,
 * so a stuck collector costs at most write_timeout_ms per record; UDP. Any
 * failure closes the connection (a stream may hold half a frame) and returns
 * a negative errno: the framework counts the record lost and reopens later.
 * UDP learns of a refusing collector only from the ICMP answer to an
 * earlier datagram, so one lost datagram can count as written.
 *
 * rsyslog reads RFC 5424 from a unix socket only with
 * input(type="imuxsock" ... useSpecialParser="off" parseHostname="on");
 * with its defaults the whole message lands in MSG.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "audit-record.h"
#include "sink.h"

/* RFC 5612: the Private Enterprise Number reserved for documentation. */
#define BW_SYSLOG_SD_ID "bulwark@32473"
#define BW_SYSLOG_APP_NAME "bulwarkd"
#define BW_SYSLOG_TRUNCATED "...[truncated]"

/* The smallest max_message accepted: what RFC 5426 says every IPv4 receiver
 * must take; the header (at most ~420 bytes) always fits in it. */
#define BW_SYSLOG_MIN_MESSAGE 480
/* rsyslog's default maxMessageSize ("8k") is 8096 bytes: a longer message is
 * cut by rsyslog (and over TCP its tail is read as a separate message), so
 * the default stays at exactly what a stock rsyslog takes whole. */
#define BW_SYSLOG_DEFAULT_MESSAGE 8096
/* Larger values are refused: a UDP datagram holds at most 65507 bytes. */
#define BW_SYSLOG_MAX_MESSAGE (1024 * 1024)
#define BW_SYSLOG_MAX_UDP_MESSAGE 65507
/* RFC 5426 §3.2: receivers SHOULD take 2048 bytes; larger datagrams risk IP
 * fragmentation and silent loss. */
#define BW_SYSLOG_DEFAULT_UDP_MESSAGE 2048

enum bw_syslog_transport {
	BW_SYSLOG_UNIX, /* datagrams to a local socket: /dev/log */
	BW_SYSLOG_TCP,  /* RFC 6587 octet counting: "LEN SP MSG" */
	BW_SYSLOG_UDP,  /* one message per datagram */
};

/* Zero means the default for every field. */
struct bw_syslog_options {
	enum bw_syslog_transport transport;
	const char *path;            /* unix: "/dev/log" */
	const char *host;            /* tcp, udp: name or address, "[::1]" too (required) */
	uint16_t port;               /* tcp, udp: 514 */
	int facility;                /* a syslog.h value (LOG_AUTHPRIV...); 0: LOG_AUTHPRIV.
				      * LOG_KERN is refused, as glibc's syslog() does. */
	const char *hostname;        /* HOSTNAME; NULL: gethostname() when the sink is made
				      * (the formatter alone writes "-") */
	pid_t procid;                /* PROCID; 0: getpid() */
	size_t max_message;          /* whole message, framing excluded; 0: 8096 unix/tcp,
				      * 2048 udp; at least BW_SYSLOG_MIN_MESSAGE */
	unsigned connect_timeout_ms; /* tcp connect; 0: 3000 */
	unsigned write_timeout_ms;   /* SO_SNDTIMEO: a stuck collector costs at most this
				      * per record; 0: 3000 */
};

/* What the formatter had to change to make a valid message. */
struct bw_rfc5424_info {
	unsigned truncated;    /* values (MSG included) cut to fit */
	unsigned dropped;      /* SD-PARAMs left out to fit */
	unsigned replaced;     /* ill-formed UTF-8 sequences replaced by U+FFFD */
	unsigned escaped;      /* control characters written as \xHH */
	unsigned renamed;      /* field names that needed changing besides case */
};

/* "authpriv", "auth", "security" (an old name of auth), "daemon", "user",
 * "local0".."local7", ... (the syslog.h names): the syslog.h value, or
 * -EINVAL (also for "kern", which user space cannot log as). */
int bw_syslog_facility_from_name(const char *name);
const char *bw_syslog_facility_to_name(int facility);
/* "unix", "tcp", "udp"; -EINVAL. */
int bw_syslog_transport_from_name(const char *name);

/* The MSGID for a record: "exec-blocked", "file-audited", "connect-blocked",
 * "suppressed", "health", "loss", "agent" ("decision" when a decision record
 * lacks a sane HOOK or DECISION). At most 32 characters of [a-z0-9-]. */
const char *bw_rfc5424_msgid(const struct bw_record *r, char buf[static 33]);

/* Formats r into buf as one RFC 5424 message, NUL-terminated, without any
 * transport framing. The message is at most min(max_message, size - 1)
 * bytes. Returns its length, or -EINVAL when that limit is below
 * BW_SYSLOG_MIN_MESSAGE or the options are invalid. info may be NULL. */
ssize_t bw_rfc5424_format(const struct bw_record *r, const struct bw_syslog_options *o, char *buf,
			  size_t size, struct bw_rfc5424_info *info);

/* The same into a new string; NULL with errno set. */
char *bw_rfc5424_format_alloc(const struct bw_record *r, const struct bw_syslog_options *o,
			      struct bw_rfc5424_info *info);

/* A syslog sink for bw_sinks_add(); the options are copied. NULL with
 * errno set (EINVAL for bad options, ENOMEM). Opening happens in the sink
 * thread, so a missing socket or an unreachable collector is not an error
 * here: the framework counts the records as dropped and retries. */
struct bw_sink *bw_sink_syslog_new(const struct bw_syslog_options *o);

/* Formatter counters summed over everything the sink wrote. */
struct bw_syslog_counters {
	uint64_t truncated; /* records with something cut or dropped to fit */
	uint64_t replaced;  /* ill-formed UTF-8 sequences replaced */
	uint64_t escaped;   /* control characters escaped */
};

void bw_sink_syslog_get_counters(struct bw_sink *s, struct bw_syslog_counters *out);
