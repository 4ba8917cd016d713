/* SPDX-License-Identifier: Apache-2.0 */
/*
 * journald-feeder: drives the journald sink through the sink framework for
 * tests/sinks/journald.sh.
 *
 *   journald-feeder probe [SOCKET]
 *       exit 0 when something receives on journald's socket, 1 otherwise.
 *   journald-feeder run TESTRUN EXPECT_FILE [QUEUE_LEN]
 *       reads commands on stdin, answers each with one line on stdout:
 *
 *   full blocked|audited  one decision record with every field       -> ok SEQ
 *   hostile               one record with hostile values              -> ok SEQ
 *   send N PHASE          N small decision records, PHASE=PHASE       -> ok FIRST LAST USEC
 *                         (USEC: the time spent in bw_sinks_submit)
 *   bench N               N records as fast as the sink takes them    -> ok records=N seconds=S rate=R
 *   flush                 waits until every record is written or dropped (10 s)
 *                                                                    -> ok | timeout
 *   stats                 -> written=N dropped_full=N dropped_down=N write_errors=N
 *                            reconnects=N up=0|1 submitted=N
 *   wait-retry            waits until the framework will try to reopen (bounded) -> ok
 *   pid                   -> this process's id (the journal's _PID)
 *   quit                  stops the framework, prints stats, exits 0
 *
 * Every record carries TESTRUN and SEQ (a number counting from 1), and is
 * described in EXPECT_FILE, one line per record: SEQ, then NAME=HEX pairs,
 * the journal fields the sink must produce with their values in hex, so the
 * checker compares bytes without this program and it agreeing on escapes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "audit-record.h"
#include "sink-journald.h"
#include "sink.h"

static struct bw_sinks sinks = { .retry_ms = 50 };
static struct bw_sink *sink;
static const char *testrun;
static FILE *expect;
static uint64_t seq, submitted;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void put_hex(const char *name_prefix, const char *name, const char *value)
{
	fprintf(expect, " %s%s=", name_prefix, name);
	for (const unsigned char *p = (const unsigned char *)value; *p; p++)
		fprintf(expect, "%02x", *p);
}

/* Writes what the journal entry for r must hold to EXPECT_FILE. */
static void describe(const struct bw_record *r)
{
	static const char *const kinds[] = { "decision", "suppressed", "health", "loss", "agent" };
	char prio[8], ts[64];

	snprintf(prio, sizeof(prio), "%d", r->priority);
	bw_format_time(r->time_realtime_ns, ts, sizeof(ts));
	fprintf(expect, "%s", bw_record_get(r, "SEQ"));
	put_hex("", "MESSAGE", r->message);
	put_hex("", "PRIORITY", prio);
	put_hex("", "SYSLOG_IDENTIFIER", "bulwarkd");
	put_hex("", "BULWARK_KIND", kinds[r->kind]);
	put_hex("", "BULWARK_TIME", ts);
	for (size_t i = 0; i < r->n_fields; i++)
		put_hex("BULWARK_", r->fields[i].key, r->fields[i].value);
	fputc('\n', expect);
	fflush(expect);
}

/* Describes r (unless it is a bench record) and submits it. */
static void submit(struct bw_record *r, bool describe_it)
{
	if (!r) {
		fprintf(stderr, "journald-feeder: out of memory\n");
		exit(2);
	}
	if (describe_it)
		describe(r);
	bw_sinks_submit(&sinks, r);
	bw_record_unref(r);
	submitted++;
}

static void begin(struct bw_record_builder *b, int priority)
{
	/* A fixed time, so that the checker knows BULWARK_TIME:
	 * 2026-11-21T19:50:17.139976600Z. */
	bw_record_builder_init(b, BW_RECORD_DECISION, 1795290617139976600ULL, priority);
	bw_record_builder_add(b, "TESTRUN", testrun);
	bw_record_builder_addf(b, "SEQ", "%" PRIu64, ++seq);
}

static void full(bool blocked)
{
	struct bw_record_builder b;
	const char *d = blocked ? "blocked" : "audited";

	begin(&b, blocked ? LOG_WARNING : LOG_NOTICE);
	bw_record_builder_message(&b, "%s exec of /bin/sh by pid 412 (nginx) in prod/web-7f9c: policy lock-shells", d);
	bw_record_builder_add(&b, BW_FIELD_HOOK, "exec");
	bw_record_builder_add(&b, BW_FIELD_DECISION, d);
	bw_record_builder_add(&b, BW_FIELD_MODE, blocked ? "Block" : "Audit");
	bw_record_builder_addf(&b, BW_FIELD_POLICY, "ClusterBulwarkPolicy lock-shells-%s", testrun);
	bw_record_builder_add(&b, BW_FIELD_RULE, "exec.deny[0] path /bin/sh");
	bw_record_builder_add(&b, BW_FIELD_PID, "412");
	bw_record_builder_add(&b, BW_FIELD_PPID, "401");
	bw_record_builder_add(&b, BW_FIELD_UID, "33");
	bw_record_builder_add(&b, BW_FIELD_COMM, "nginx");
	bw_record_builder_add(&b, BW_FIELD_EXE, "/usr/bin/dash");
	bw_record_builder_add(&b, BW_FIELD_PARENT_EXE, "/usr/sbin/nginx");
	bw_record_builder_add(&b, BW_FIELD_TARGET, "/bin/sh");
	bw_record_builder_add(&b, BW_FIELD_ACCESS, "any");
	bw_record_builder_add(&b, BW_FIELD_CGROUP_ID, "7163");
	bw_record_builder_add(&b, BW_FIELD_CGROUP_PATH, "/kubepods/burstable/pod1234/cri-containerd-abcd");
	bw_record_builder_add(&b, BW_FIELD_NAMESPACE, "prod");
	bw_record_builder_add(&b, BW_FIELD_POD, "web-7f9c");
	bw_record_builder_add(&b, BW_FIELD_CONTAINER, "nginx");
	bw_record_builder_add(&b, BW_FIELD_PATH_UNRESOLVED, "-36");
	bw_record_builder_add(&b, BW_FIELD_MATCHED_BY_NAME, "1");
	submit(bw_record_builder_finish(&b), true);
}

static void hostile(void)
{
	static char longpath[4097];
	struct bw_record_builder b;

	/* A 4096-byte path: "/" then "a" repeated, ending "/x". */
	memset(longpath, 'a', 4096);
	longpath[0] = '/';
	longpath[4094] = '/';
	longpath[4095] = 'x';
	longpath[4096] = '\0';

	begin(&b, LOG_WARNING);
	bw_record_builder_message(&b, "blocked exec of \"/tmp/x\ny\" by pid 1 (\xff\xfe): policy \"p\"\n"
				      "second line");
	bw_record_builder_add(&b, BW_FIELD_HOOK, "exec");
	bw_record_builder_add(&b, BW_FIELD_DECISION, "blocked");
	bw_record_builder_add(&b, BW_FIELD_MODE, "Block");
	bw_record_builder_addf(&b, BW_FIELD_POLICY, "hostile-%s", testrun);
	bw_record_builder_add(&b, BW_FIELD_RULE, "exec.deny[0] path \"/tmp/x\\ny\" = 'quoted'");
	bw_record_builder_add(&b, BW_FIELD_COMM, "\xc3\x28\xa0\xa1 \x80\xbf\xed\xa0\x80\xf0\x28\x8c\x28");
	bw_record_builder_add(&b, BW_FIELD_EXE, longpath);
	bw_record_builder_add(&b, BW_FIELD_PARENT_EXE, "/usr/bin/p\tt\x01\x1b[31m\x7f");
	bw_record_builder_add(&b, BW_FIELD_TARGET, "/tmp/x\ny\n");
	bw_record_builder_add(&b, BW_FIELD_CGROUP_PATH, "=starts with equals=\r\n=MESSAGE=forged\n");
	bw_record_builder_add(&b, BW_FIELD_NAMESPACE, "");
	bw_record_builder_add(&b, BW_FIELD_POD, "\n");
	bw_record_builder_add(&b, BW_FIELD_CONTAINER, "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x90\xb3");
	submit(bw_record_builder_finish(&b), true);
}

static struct bw_record *small(const char *phase, int priority)
{
	struct bw_record_builder b;

	begin(&b, priority);
	bw_record_builder_message(&b, "audited open of /etc/hosts by pid 7 (cat): seq %" PRIu64, seq);
	bw_record_builder_add(&b, BW_FIELD_HOOK, "file");
	bw_record_builder_add(&b, BW_FIELD_DECISION, "audited");
	bw_record_builder_add(&b, BW_FIELD_MODE, "Audit");
	bw_record_builder_add(&b, BW_FIELD_POLICY, "BulwarkPolicy default/watch-etc");
	bw_record_builder_add(&b, BW_FIELD_TARGET, "/etc/hosts");
	bw_record_builder_add(&b, "PHASE", phase);
	return bw_record_builder_finish(&b);
}

static void print_stats(void)
{
	struct bw_sink_stats st;

	bw_sink_get_stats(sink, &st);
	printf("written=%" PRIu64 " dropped_full=%" PRIu64 " dropped_down=%" PRIu64 " write_errors=%" PRIu64
	       " reconnects=%" PRIu64 " up=%d submitted=%" PRIu64 "\n",
	       st.written, st.dropped_full, st.dropped_down, st.write_errors, st.reconnects, st.up, submitted);
}

static uint64_t accounted(void)
{
	struct bw_sink_stats st;

	bw_sink_get_stats(sink, &st);
	return st.written + st.dropped_full + st.dropped_down;
}

/* bw_sinks_flush() returns once the queue is empty, which can be while the
 * sink thread still writes the last record it took; the test wants that
 * one counted too, so wait (bounded) until every record is accounted for. */
static bool flush(void)
{
	uint64_t deadline = mono_ns() + 10ULL * 1000000000ULL;

	if (!bw_sinks_flush(&sinks, 10000))
		return false;
	while (accounted() != submitted) {
		if (mono_ns() > deadline)
			return false;
		nanosleep(&(struct timespec){ .tv_nsec = 1000000L }, NULL);
	}
	return true;
}

static void wait_retry(void)
{
	uint64_t deadline = mono_ns() + 10ULL * 1000000000ULL, retry;

	for (;;) {
		pthread_mutex_lock(&sink->lock);
		retry = sink->retry_ns;
		pthread_mutex_unlock(&sink->lock);
		if (mono_ns() > retry || mono_ns() > deadline)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 5 * 1000000L }, NULL);
	}
	printf("ok\n");
}

/* Records as fast as the sink writes them: fill the queue, wait for it to
 * drain, again. Nothing is dropped, so the rate is the sink's. */
static void bench(uint64_t n)
{
	uint64_t start = mono_ns(), done = 0;
	double secs;

	while (done < n) {
		uint64_t batch = n - done < sink->cap ? n - done : sink->cap;

		for (uint64_t i = 0; i < batch; i++)
			submit(small("bench", LOG_NOTICE), false);
		done += batch;
		if (!flush()) {
			printf("timeout\n");
			return;
		}
	}
	secs = (double)(mono_ns() - start) / 1e9;
	printf("ok records=%" PRIu64 " seconds=%.3f rate=%.0f\n", n, secs, (double)n / secs);
}

int main(int argc, char **argv)
{
	char line[256];
	size_t queue_len = 1024;
	int ret;

	if (argc >= 2 && !strcmp(argv[1], "probe"))
		return bw_journald_probe(argc >= 3 ? argv[2] : NULL) == 0 ? 0 : 1;
	if (argc < 4 || strcmp(argv[1], "run")) {
		fprintf(stderr, "usage: %s probe [SOCKET] | run TESTRUN EXPECT_FILE [QUEUE_LEN]\n", argv[0]);
		return 2;
	}
	testrun = argv[2];
	expect = fopen(argv[3], "we");
	if (!expect) {
		perror(argv[3]);
		return 2;
	}
	if (argc >= 5)
		queue_len = strtoul(argv[4], NULL, 10);
	setvbuf(stdout, NULL, _IOLBF, 0);

	sink = bw_sink_journald_new();
	if (!sink || (ret = bw_sinks_add(&sinks, sink, queue_len)) < 0) {
		fprintf(stderr, "journald-feeder: cannot start the sink\n");
		return 2;
	}
	while (fgets(line, sizeof(line), stdin)) {
		char cmd[32] = "", arg[64] = "", arg2[64] = "";

		if (sscanf(line, "%31s %63s %63s", cmd, arg, arg2) < 1)
			continue;
		if (!strcmp(cmd, "full")) {
			full(!strcmp(arg, "blocked"));
			printf("ok %" PRIu64 "\n", seq);
		} else if (!strcmp(cmd, "hostile")) {
			hostile();
			printf("ok %" PRIu64 "\n", seq);
		} else if (!strcmp(cmd, "send")) {
			uint64_t n = strtoull(arg, NULL, 10), first = seq + 1, t = 0;

			/* Only bw_sinks_submit() is timed: it must never wait. */
			for (uint64_t i = 0; i < n; i++) {
				struct bw_record *r = small(arg2[0] ? arg2 : "none", LOG_NOTICE);

				if (!r) {
					fprintf(stderr, "journald-feeder: out of memory\n");
					return 2;
				}
				describe(r);
				t -= mono_ns();
				bw_sinks_submit(&sinks, r);
				t += mono_ns();
				bw_record_unref(r);
				submitted++;
			}
			printf("ok %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", first, seq, t / 1000);
		} else if (!strcmp(cmd, "bench")) {
			bench(strtoull(arg, NULL, 10));
		} else if (!strcmp(cmd, "flush")) {
			printf("%s\n", flush() ? "ok" : "timeout");
		} else if (!strcmp(cmd, "stats")) {
			print_stats();
		} else if (!strcmp(cmd, "wait-retry")) {
			wait_retry();
		} else if (!strcmp(cmd, "pid")) {
			printf("%d\n", (int)getpid());
		} else if (!strcmp(cmd, "quit")) {
			break;
		} else {
			printf("error unknown command %s\n", cmd);
		}
	}
	print_stats();
	bw_sinks_stop(&sinks, 10000);
	fclose(expect);
	return 0;
}
