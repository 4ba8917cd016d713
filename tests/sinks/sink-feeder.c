/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Feeds audit records to one syslog sink through the sink framework, as the
 * agent does, under the control of a test script. Commands, one a line on
 * standard input; each is answered with one line of stats on standard
 * output:
 *
 *   full            one decision record with every field
 *   hostile         one record with hostile strings: quotes, ']', '\',
 *                   newlines, ill-formed UTF-8, 4096-byte paths, empty values
 *                   and a hostile field name
 *   send N          N decision records, alternating hooks and decisions
 *   flush           waits (bounded) until the sink's queue is empty
 *   until-up MS     while the sink is down, submits a probe record every few
 *                   milliseconds so that the framework tries to reconnect;
 *                   at most MS milliseconds (records submitted meanwhile are
 *                   counted like any other)
 *   bench N         N records as fast as the sink takes them, in batches the
 *                   queue can hold; prints records/s
 *   quit            flushes, prints the final stats and stops the sinks
 *                   (so does the end of standard input)
 *
 * Stats lines: "submitted=N written=N dropped_full=N dropped_down=N
 * write_errors=N reconnects=N up=0|1 truncated=N replaced=N escaped=N".
 *
 * With --expect FILE, every submitted record is also written there as one
 * JSON line, strings hex-encoded (they may be anything but NUL), for the
 * script to check what the collector received against:
 *   {"seq":N,"kind":K,"priority":P,"time_ns":T,"message":"hex",
 *    "fields":[["KEY-hex","VALUE-hex"],...]}
 * Every record carries its sequence number as PID (100000 + seq).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "audit-record.h"
#include "sink-syslog.h"
#include "sink.h"
#include "util.h"

static struct bw_sinks sinks;
static struct bw_sink *sink;
static FILE *expect;
static unsigned long long seq, submitted;

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void hex(FILE *f, const char *s)
{
	for (; *s; s++)
		fprintf(f, "%02x", (unsigned char)*s);
}

static void submit(struct bw_record *r)
{
	if (!r) {
		fprintf(stderr, "sink-feeder: out of memory\n");
		exit(2);
	}
	if (expect) {
		fprintf(expect, "{\"seq\":%llu,\"kind\":%d,\"priority\":%d,\"time_ns\":%llu,\"message\":\"", seq,
			(int)r->kind, r->priority, (unsigned long long)r->time_realtime_ns);
		hex(expect, r->message);
		fputs("\",\"fields\":[", expect);
		for (size_t i = 0; i < r->n_fields; i++) {
			fputs(i ? ",[\"" : "[\"", expect);
			hex(expect, r->fields[i].key);
			fputs("\",\"", expect);
			hex(expect, r->fields[i].value);
			fputs("\"]", expect);
		}
		fputs("]}\n", expect);
		fflush(expect);
	}
	bw_sinks_submit(&sinks, r);
	bw_record_unref(r);
	submitted++;
}

static void start(struct bw_record_builder *b, const char *hook, bool blocked)
{
	seq++;
	bw_record_builder_init(b, BW_RECORD_DECISION, clock_ns(CLOCK_REALTIME), blocked ? LOG_WARNING : LOG_NOTICE);
	bw_record_builder_add(b, BW_FIELD_HOOK, hook);
	bw_record_builder_add(b, BW_FIELD_DECISION, blocked ? "blocked" : "audited");
	bw_record_builder_add(b, BW_FIELD_MODE, blocked ? "Block" : "Audit");
}

static void submit_full(void)
{
	struct bw_record_builder b;

	start(&b, "exec", true);
	bw_record_builder_message(&b, "blocked exec of /bin/sh by pid %llu (nginx) in prod/web-7f9c: policy "
				      "ClusterBulwarkPolicy lock-shells", 100000 + seq);
	bw_record_builder_add(&b, BW_FIELD_POLICY, "ClusterBulwarkPolicy lock-shells");
	bw_record_builder_add(&b, BW_FIELD_RULE, "exec.deny[0] path /bin/sh");
	bw_record_builder_addf(&b, BW_FIELD_PID, "%llu", 100000 + seq);
	bw_record_builder_add(&b, BW_FIELD_PPID, "4100");
	bw_record_builder_add(&b, BW_FIELD_UID, "101");
	bw_record_builder_add(&b, BW_FIELD_COMM, "nginx");
	bw_record_builder_add(&b, BW_FIELD_EXE, "/bin/sh");
	bw_record_builder_add(&b, BW_FIELD_PARENT_EXE, "/usr/sbin/nginx");
	bw_record_builder_add(&b, BW_FIELD_TARGET, "/bin/sh");
	bw_record_builder_add(&b, BW_FIELD_ACCESS, "any");
	bw_record_builder_add(&b, BW_FIELD_CGROUP_ID, "8812");
	bw_record_builder_add(&b, BW_FIELD_CGROUP_PATH, "/kubepods.slice/kubepods-pod1.slice/cri-containerd-c1.scope");
	bw_record_builder_add(&b, BW_FIELD_NAMESPACE, "prod");
	bw_record_builder_add(&b, BW_FIELD_POD, "web-7f9c");
	bw_record_builder_add(&b, BW_FIELD_CONTAINER, "nginx");
	bw_record_builder_add(&b, BW_FIELD_PATH_UNRESOLVED, "-2");
	bw_record_builder_add(&b, BW_FIELD_MATCHED_BY_NAME, "1");
	submit(bw_record_builder_finish(&b));
}

static char *hostile_path(const char *prefix, char fill)
{
	char *p = malloc(4097);
	size_t n = strlen(prefix);

	memcpy(p, prefix, n);
	memset(p + n, fill, 4096 - n);
	/* something to escape, and something ill-formed, near the end too */
	memcpy(p + 4096 - 12, "\"]\\\n\xff\xe2\x82" "end", 11);
	p[4096 - 1] = fill;
	p[4096] = '\0';
	return p;
}

static void submit_hostile(void)
{
	_cleanup_free_ char *target = hostile_path("/tmp/\"quoted\"/]bracket]/back\\slash/new\nline/", 'a'),
			    *pexe = hostile_path("/opt/\xc3\xa9t\xc3\xa9/\xe2\x82\xac/", 'b');
	struct bw_record_builder b;

	start(&b, "file", false);
	bw_record_builder_message(&b, "audited write of \"/etc/x]\" by pid %llu\nsecond line\r\twith \\ and ]",
				  100000 + seq);
	bw_record_builder_add(&b, BW_FIELD_POLICY, "BulwarkPolicy prod/\"quotes\" and ]brackets[ and \\");
	bw_record_builder_add(&b, BW_FIELD_RULE,
			      "overlong \xc0\xaf, lone \x80, truncated \xe2\x82, surrogate \xed\xa0\x80, big \xf4\x90\x80\x80");
	bw_record_builder_addf(&b, BW_FIELD_PID, "%llu", 100000 + seq);
	bw_record_builder_add(&b, BW_FIELD_COMM, "a\"b]c\\d\ne\x01");
	bw_record_builder_add(&b, BW_FIELD_TARGET, target);
	bw_record_builder_add(&b, BW_FIELD_PARENT_EXE, pexe);
	bw_record_builder_add(&b, BW_FIELD_ACCESS, "write");
	bw_record_builder_add(&b, BW_FIELD_CONTAINER, "");
	bw_record_builder_add(&b, "WEIRD KEY=]\"", "x");
	bw_record_builder_add(&b, BW_FIELD_NAMESPACE, "\xef\xbb\xbf\xe2\x80\xa8nbsp\xc2\xa0\x7f\xc2\x85");
	submit(bw_record_builder_finish(&b));
}

static void submit_plain(void)
{
	static const char *const hooks[] = { "exec", "file", "connect" };
	const char *hook = hooks[seq % 3];
	bool blocked = (seq / 3) % 2 == 0;
	struct bw_record_builder b;

	start(&b, hook, blocked);
	bw_record_builder_message(&b, "%s %s of /usr/bin/tool-%llu by pid %llu", blocked ? "blocked" : "audited",
				  hook, seq, 100000 + seq);
	bw_record_builder_add(&b, BW_FIELD_POLICY, "BulwarkPolicy prod/restrict");
	bw_record_builder_add(&b, BW_FIELD_RULE, "not in the allow list");
	bw_record_builder_addf(&b, BW_FIELD_PID, "%llu", 100000 + seq);
	bw_record_builder_add(&b, BW_FIELD_COMM, "tool");
	bw_record_builder_addf(&b, BW_FIELD_TARGET, "/usr/bin/tool-%llu", seq);
	submit(bw_record_builder_finish(&b));
}

static void print_stats(const char *extra)
{
	struct bw_sink_stats st;
	struct bw_syslog_counters c;

	bw_sink_get_stats(sink, &st);
	bw_sink_syslog_get_counters(sink, &c);
	printf("submitted=%llu written=%llu dropped_full=%llu dropped_down=%llu write_errors=%llu reconnects=%llu "
	       "up=%d truncated=%llu replaced=%llu escaped=%llu%s%s\n",
	       submitted, (unsigned long long)st.written, (unsigned long long)st.dropped_full,
	       (unsigned long long)st.dropped_down, (unsigned long long)st.write_errors,
	       (unsigned long long)st.reconnects, st.up, (unsigned long long)c.truncated,
	       (unsigned long long)c.replaced, (unsigned long long)c.escaped, extra ? " " : "", extra ? extra : "");
	fflush(stdout);
}

/* bw_sinks_flush(), then a bounded wait until every submitted record is
 * accounted for (written or dropped): the stats printed are final, and a
 * record the framework lost track of shows as flushed=0 rather than as a
 * silent off-by-one. */
static bool flush(void)
{
	double deadline = mono_s() + 20;
	bool ok = bw_sinks_flush(&sinks, 20000);

	while (ok) {
		struct bw_sink_stats st;

		bw_sink_get_stats(sink, &st);
		if (st.written + st.dropped_full + st.dropped_down >= submitted)
			return true;
		if (mono_s() > deadline)
			return false;
		usleep(1000);
	}
	return false;
}

static bool sink_up(void)
{
	struct bw_sink_stats st;

	bw_sink_get_stats(sink, &st);
	return st.up;
}

static void usage(void)
{
	fprintf(stderr, "usage: sink-feeder --transport unix|tcp|udp [--path P] [--host H] [--port N]\n"
			"       [--facility NAME] [--hostname H] [--max-message N] [--queue N] [--retry-ms MS]\n"
			"       [--write-timeout-ms MS] [--expect FILE] < commands\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "transport", required_argument, NULL, 't' }, { "path", required_argument, NULL, 'P' },
		{ "host", required_argument, NULL, 'H' },      { "port", required_argument, NULL, 'p' },
		{ "facility", required_argument, NULL, 'f' },  { "hostname", required_argument, NULL, 'n' },
		{ "max-message", required_argument, NULL, 'm' }, { "queue", required_argument, NULL, 'q' },
		{ "retry-ms", required_argument, NULL, 'r' },  { "write-timeout-ms", required_argument, NULL, 'w' },
		{ "expect", required_argument, NULL, 'e' },    {},
	};
	struct bw_syslog_options o = {};
	size_t queue = 1024;
	char line[256];
	int c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
		switch (c) {
		case 't':
			r = bw_syslog_transport_from_name(optarg);
			if (r < 0)
				usage();
			o.transport = (enum bw_syslog_transport)r;
			break;
		case 'P': o.path = optarg; break;
		case 'H': o.host = optarg; break;
		case 'p': o.port = (uint16_t)atoi(optarg); break;
		case 'f':
			o.facility = bw_syslog_facility_from_name(optarg);
			if (o.facility < 0)
				usage();
			break;
		case 'n': o.hostname = optarg; break;
		case 'm': o.max_message = strtoul(optarg, NULL, 10); break;
		case 'q': queue = strtoul(optarg, NULL, 10); break;
		case 'r': sinks.retry_ms = (unsigned)atoi(optarg); break;
		case 'w': o.write_timeout_ms = (unsigned)atoi(optarg); break;
		case 'e':
			expect = fopen(optarg, "we");
			if (!expect) {
				fprintf(stderr, "sink-feeder: %s: %m\n", optarg);
				return 2;
			}
			break;
		default: usage();
		}
	}
	sink = bw_sink_syslog_new(&o);
	if (!sink) {
		fprintf(stderr, "sink-feeder: cannot make the syslog sink: %m\n");
		return 2;
	}
	r = bw_sinks_add(&sinks, sink, queue);
	if (r < 0) {
		fprintf(stderr, "sink-feeder: bw_sinks_add: %s\n", strerror(-r));
		return 2;
	}
	printf("ready pid=%d\n", (int)getpid());
	fflush(stdout);

	while (fgets(line, sizeof(line), stdin)) {
		unsigned long n = 0;

		if (startswith(line, "full")) {
			submit_full();
			print_stats(NULL);
		} else if (startswith(line, "hostile")) {
			submit_hostile();
			print_stats(NULL);
		} else if (sscanf(line, "send %lu", &n) == 1) {
			for (unsigned long i = 0; i < n; i++)
				submit_plain();
			print_stats(NULL);
		} else if (startswith(line, "flush")) {
			print_stats(flush() ? "flushed=1" : "flushed=0");
		} else if (sscanf(line, "until-up %lu", &n) == 1) {
			double deadline = mono_s() + (double)n / 1000.0;

			/* The framework only retries when a record comes: send
			 * probes, each flushed, until one finds the sink up. */
			while (!sink_up() && mono_s() < deadline) {
				submit_plain();
				flush();
				if (!sink_up())
					usleep(5000);
			}
			print_stats(sink_up() ? "came_up=1" : "came_up=0");
		} else if (sscanf(line, "bench %lu", &n) == 1) {
			size_t batch = queue > 1 ? queue / 2 : 1;
			double t0 = mono_s(), t;
			char extra[64];

			for (unsigned long i = 0; i < n;) {
				for (size_t k = 0; k < batch && i < n; k++, i++)
					submit_plain();
				flush();
			}
			t = mono_s() - t0;
			snprintf(extra, sizeof(extra), "records_per_s=%.0f", (double)n / t);
			print_stats(extra);
		} else if (startswith(line, "quit")) {
			break;
		} else {
			fprintf(stderr, "sink-feeder: unknown command: %s", line);
			print_stats("error=1");
		}
	}
	/* the last stats before the sink is freed; after a flush, stopping
	 * has nothing left to drop */
	print_stats(flush() ? "flushed=1 final=1" : "flushed=0 final=1");
	bw_sinks_stop(&sinks, 20000);
	sink = NULL;
	if (expect)
		fclose(expect);
	return 0;
}
