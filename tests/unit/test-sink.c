/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sink framework: queueing, loss accounting, recovery. The destination
 * here is a test sink (an in-memory stand-in, not a real daemon: the real
 * journald and rsyslogd are exercised by tests/sinks/ and the guest tests)
 * that can be told to fail or to stall.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "sink.h"
#include "bw-test.h"

struct test_dest {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool down;      /* open and write fail */
	bool stalled;   /* write waits until released */
	unsigned opens, written, losses;
	uint64_t lost_reported;
};

static int t_open(struct bw_sink *s)
{
	struct test_dest *d = s->impl;
	int ret;

	pthread_mutex_lock(&d->lock);
	d->opens++;
	ret = d->down ? -ECONNREFUSED : 0;
	pthread_mutex_unlock(&d->lock);
	return ret;
}

static int t_write(struct bw_sink *s, const struct bw_record *r)
{
	struct test_dest *d = s->impl;
	int ret = 0;

	pthread_mutex_lock(&d->lock);
	while (d->stalled)
		pthread_cond_wait(&d->cond, &d->lock);
	if (d->down) {
		ret = -EPIPE;
	} else if (r->kind == BW_RECORD_LOSS) {
		d->losses++;
		d->lost_reported += strtoull(bw_record_get(r, BW_FIELD_DROPPED), NULL, 10);
	} else {
		d->written++;
	}
	pthread_mutex_unlock(&d->lock);
	return ret;
}

static const struct bw_sink_ops test_ops = { .name = "test", .open = t_open, .write = t_write };

static struct bw_record *rec(unsigned i)
{
	struct bw_record_builder b;

	bw_record_builder_init(&b, BW_RECORD_DECISION, 1, LOG_WARNING);
	bw_record_builder_message(&b, "record %u", i);
	bw_record_builder_addf(&b, BW_FIELD_PID, "%u", i);
	return bw_record_builder_finish(&b);
}

static void submit_n(struct bw_sinks *ss, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct bw_record *r = rec(i);

		bw_sinks_submit(ss, r);
		bw_record_unref(r);
	}
}

static void set(struct test_dest *d, bool *flag, bool v)
{
	pthread_mutex_lock(&d->lock);
	*flag = v;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

static void test_record_builder(void)
{
	struct bw_record_builder b;
	struct bw_record *r;
	char *json;

	bw_record_builder_init(&b, BW_RECORD_DECISION, 1700000000123456789ULL, LOG_WARNING);
	bw_record_builder_message(&b, "blocked exec of %s", "/bin/sh");
	bw_record_builder_add(&b, BW_FIELD_HOOK, "exec");
	bw_record_builder_add(&b, BW_FIELD_PID, "412");
	bw_record_builder_add(&b, BW_FIELD_TARGET, "a\"b\\c\nd");
	bw_record_builder_add(&b, BW_FIELD_POD, NULL); /* absent: not added */
	r = bw_record_builder_finish(&b);
	ASSERT(r && r->n_fields == 3 && !strcmp(r->message, "blocked exec of /bin/sh"));
	ASSERT(r && !strcmp(bw_record_get(r, BW_FIELD_HOOK), "exec") && !bw_record_get(r, BW_FIELD_POD));
	json = r ? bw_record_to_json(r) : NULL;
	ASSERT(json && !strcmp(json, "{\"time\":\"2023-11-14T22:13:20.123456789Z\",\"kind\":\"decision\",\"priority\":4,"
				     "\"hook\":\"exec\",\"pid\":412,\"target\":\"a\\\"b\\\\c\\nd\","
				     "\"message\":\"blocked exec of /bin/sh\"}\n"));
	if (json)
		printf("json: %s", json);
	free(json);
	bw_record_unref(r);

	/* Ill-formed UTF-8 never makes an invalid JSON line. */
	{
		char *c = bw_utf8_sanitize("ok\xc3\xa9 \xff \xc0\xaf \xed\xa0\x80 \xe2\x82 end\xf0\x9f\x98\x80");

		ASSERT(c && !strcmp(c, "ok\xc3\xa9 \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd "
				     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd end\xf0\x9f\x98\x80"));
		free(c);
	}
}

static void test_all_written(void)
{
	struct test_dest d = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	struct bw_sinks ss = { .retry_ms = 10 };
	struct bw_sink *s = calloc(1, sizeof(*s));
	struct bw_sink_stats st;

	s->ops = &test_ops;
	s->impl = &d;
	ASSERT(bw_sinks_add(&ss, s, 64) == 0);
	submit_n(&ss, 50);
	ASSERT(bw_sinks_flush(&ss, 5000));
	bw_sink_get_stats(s, &st);
	ASSERT(st.written == 50 && st.dropped_full == 0 && st.dropped_down == 0 && st.up);
	ASSERT(d.written == 50 && d.losses == 0);
	bw_sinks_stop(&ss, 1000);
}

/* A stalled destination fills its queue: the submitter never waits, the
 * excess is dropped and counted, and reported once the sink writes again. */
static void test_queue_full(void)
{
	struct test_dest d = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .stalled = true };
	struct bw_sinks ss = { .retry_ms = 10 };
	struct bw_sink *s = calloc(1, sizeof(*s));
	struct bw_sink_stats st;

	s->ops = &test_ops;
	s->impl = &d;
	ASSERT(bw_sinks_add(&ss, s, 8) == 0);
	submit_n(&ss, 100); /* returns although nothing can be written */
	bw_sink_get_stats(s, &st);
	/* 8 wait in the queue; the sink thread took up to 8 more as one batch
	 * before its write stalled (it takes what was queued, under one lock,
	 * so 1 to 8 depending on when it woke): 84 to 92 dropped. */
	ASSERT(st.dropped_full >= 84 && st.dropped_full <= 92);
	set(&d, &d.stalled, false);
	ASSERT(bw_sinks_flush(&ss, 5000));
	submit_n(&ss, 1); /* the loss record goes out before the next one */
	ASSERT(bw_sinks_flush(&ss, 5000));
	bw_sink_get_stats(s, &st);
	ASSERT(st.written + st.dropped_full == 101);
	/* Depending on when the thread woke, the count may come in one or two
	 * loss records; what they report adds up to exactly what was dropped. */
	ASSERT(d.losses >= 1 && d.losses <= 2 && d.lost_reported == st.dropped_full);
	bw_sinks_stop(&ss, 1000);
}

/* A destination that goes away: records are dropped and counted while it is
 * down, the count is reported when it comes back, and the numbers add up. */
static void test_down_and_back(void)
{
	struct test_dest d = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	struct bw_sinks ss = { .retry_ms = 1 };
	struct bw_sink *s = calloc(1, sizeof(*s));
	struct bw_sink_stats st;

	s->ops = &test_ops;
	s->impl = &d;
	ASSERT(bw_sinks_add(&ss, s, 1024) == 0);
	submit_n(&ss, 10);
	ASSERT(bw_sinks_flush(&ss, 5000));
	set(&d, &d.down, true);
	submit_n(&ss, 20);
	ASSERT(bw_sinks_flush(&ss, 5000));
	bw_sink_get_stats(s, &st);
	ASSERT(!st.up && st.written == 10 && st.dropped_down == 20 && st.write_errors >= 1);
	set(&d, &d.down, false);
	/* a record arrives after the retry delay, so the sink reopens */
	{
		struct timespec ts = { 0, 5 * 1000000L };

		nanosleep(&ts, NULL); /* lets retry_ms (1 ms) pass: it is what is tested, not a sync */
	}
	submit_n(&ss, 5);
	ASSERT(bw_sinks_flush(&ss, 5000));
	bw_sink_get_stats(s, &st);
	ASSERT(st.up && st.written == 15 && st.dropped_down == 20 && st.reconnects >= 1);
	ASSERT(d.losses == 1 && d.lost_reported == 20);
	ASSERT(d.written == 15);
	bw_sinks_stop(&ss, 1000);
}

/* Never reachable: everything is counted, the agent goes on. */
static void test_never_up(void)
{
	struct test_dest d = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .down = true };
	struct bw_sinks ss = { .retry_ms = 1000 };
	struct bw_sink *s = calloc(1, sizeof(*s));
	struct bw_sink_stats st;

	s->ops = &test_ops;
	s->impl = &d;
	ASSERT(bw_sinks_add(&ss, s, 1024) == 0);
	submit_n(&ss, 300);
	ASSERT(bw_sinks_flush(&ss, 5000));
	bw_sink_get_stats(s, &st);
	ASSERT(st.written == 0 && st.dropped_down == 300 && !st.up);
	/* one retry per retry_ms, not one per record */
	ASSERT(d.opens <= 3);
	bw_sinks_stop(&ss, 1000);
}

int main(void)
{
	test_record_builder();
	test_all_written();
	test_queue_full();
	test_down_and_back();
	test_never_up();
	return bw_test_summary();
}
