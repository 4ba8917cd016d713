/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sink framework: one thread and one bounded queue per sink (sink.h).
 *
 * The submitting thread (the ring-buffer reader) only ever takes a mutex for
 * a few instructions: it never waits for a sink. A full queue drops the new
 * record for that sink and counts it. A sink whose write fails is "down":
 * its records are dropped and counted without touching the destination
 * until a reconnect attempt succeeds, and then the first thing it writes is
 * a loss record saying how many it lost.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "sink.h"
#include "util.h"

#define DEFAULT_RETRY_MS 1000

/* A record telling how many records a sink lost while it was down or full. */
static struct bw_record *loss_record(const char *sink, uint64_t dropped)
{
	struct bw_record_builder b;

	bw_record_builder_init(&b, BW_RECORD_LOSS, clock_ns(CLOCK_REALTIME), LOG_ERR);
	bw_record_builder_message(&b, "sink %s lost %llu events while it was down or could not keep up", sink,
				  (unsigned long long)dropped);
	bw_record_builder_add(&b, BW_FIELD_EVENT, "sink-recovered");
	bw_record_builder_add(&b, BW_FIELD_SINK, sink);
	bw_record_builder_addf(&b, BW_FIELD_DROPPED, "%llu", (unsigned long long)dropped);
	return bw_record_builder_finish(&b);
}

static void mark_down(struct bw_sink *s, unsigned retry_ms);

/* Called without the lock: talks to the destination. */
static bool sink_try_open(struct bw_sink *s, unsigned retry_ms)
{
	int ret = s->ops->open ? s->ops->open(s) : 0;

	pthread_mutex_lock(&s->lock);
	if (ret < 0) {
		mark_down(s, retry_ms);
	} else {
		if (s->started)
			s->stats.reconnects++;
		s->stats.up = true;
	}
	s->started = true;
	pthread_mutex_unlock(&s->lock);
	return ret >= 0;
}

struct sink_thread_arg {
	struct bw_sink *s;
	unsigned retry_ms;
};

/* Writes the count of what was lost, first thing once the sink is up
 * again; if that fails too, the count is owed again. Lock not held. */
static int report_losses(struct bw_sink *s)
{
	struct bw_record *loss;
	uint64_t lost;
	int ret;

	pthread_mutex_lock(&s->lock);
	lost = s->lost_unreported;
	s->lost_unreported = 0;
	pthread_mutex_unlock(&s->lock);
	if (!lost)
		return 0;
	loss = loss_record(s->ops->name, lost);
	ret = loss ? s->ops->write(s, loss) : -ENOMEM;
	bw_record_unref(loss);
	if (ret < 0) {
		pthread_mutex_lock(&s->lock);
		s->lost_unreported += lost;
		pthread_mutex_unlock(&s->lock);
	}
	return ret;
}

static void mark_down(struct bw_sink *s, unsigned retry_ms)
{
	s->stats.up = false;
	s->retry_ns = clock_ns(CLOCK_MONOTONIC) + (uint64_t)retry_ms * 1000000ULL;
}

/* Records taken from the queue at once (one lock, one write for a file). */
#define SINK_BATCH 256

static void *sink_main(void *p)
{
	struct sink_thread_arg arg = *(struct sink_thread_arg *)p;
	struct bw_sink *s = arg.s;

	free(p);
	sink_try_open(s, arg.retry_ms);
	for (;;) {
		struct bw_record *batch[SINK_BATCH];
		size_t n, written;
		bool up;
		int ret;

		pthread_mutex_lock(&s->lock);
		while (!s->len && !s->stopping) {
			uint64_t now = clock_ns(CLOCK_MONOTONIC);
			struct timespec rt;

			if (s->stats.up || !s->lost_unreported) {
				pthread_cond_wait(&s->cond, &s->lock);
				continue;
			}
			/* Down with losses to report: retry on our own, so the
			 * count goes out when the destination is back even if
			 * no new event comes. */
			if (now >= s->retry_ns)
				break;
			rt = timespec_after(CLOCK_REALTIME, s->retry_ns - now);
			pthread_cond_timedwait(&s->cond, &s->lock, &rt);
		}
		if (!s->len && s->stopping) {
			pthread_mutex_unlock(&s->lock);
			break;
		}
		if (!s->len) {
			/* time to retry a down sink */
			s->busy = true;
			pthread_mutex_unlock(&s->lock);
			if (sink_try_open(s, arg.retry_ms) && report_losses(s) < 0) {
				pthread_mutex_lock(&s->lock);
				mark_down(s, arg.retry_ms);
				pthread_mutex_unlock(&s->lock);
				if (s->ops->close)
					s->ops->close(s);
			}
			pthread_mutex_lock(&s->lock);
			s->busy = false;
			pthread_cond_broadcast(&s->cond);
			pthread_mutex_unlock(&s->lock);
			continue;
		}
		/* What is queued, up to a batch, under one lock. */
		n = 0;
		while (s->len && n < SINK_BATCH) {
			batch[n++] = s->queue[s->head];
			s->head = (s->head + 1) % s->cap;
			s->len--;
		}
		s->busy = true;
		up = s->stats.up;
		pthread_mutex_unlock(&s->lock);

		/* Down and not yet time to retry, or the retry failed: drop
		 * without waiting on the destination. */
		written = 0;
		if (!up && (clock_ns(CLOCK_MONOTONIC) < s->retry_ns || !sink_try_open(s, arg.retry_ms))) {
			ret = -ENOTCONN;
		} else {
			ret = report_losses(s);
			if (ret >= 0 && s->ops->write_batch) {
				ret = s->ops->write_batch(s, batch, n, &written);
			} else {
				while (ret >= 0 && written < n) {
					ret = s->ops->write(s, batch[written]);
					if (ret >= 0)
						written++;
				}
			}
		}
		for (size_t i = 0; i < n; i++)
			bw_record_unref(batch[i]);

		pthread_mutex_lock(&s->lock);
		s->stats.written += written;
		if (ret < 0) {
			/* The first unwritten record failed; the rest of the
			 * batch goes with it (the sink is down now). */
			if (ret != -ENOTCONN) {
				s->stats.write_errors++;
				mark_down(s, arg.retry_ms);
			}
			s->stats.dropped_down += n - written;
			s->lost_unreported += n - written;
		}
		s->busy = false;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		if (ret < 0 && ret != -ENOTCONN && s->ops->close)
			s->ops->close(s);
	}
	if (s->stats.up && s->ops->close)
		s->ops->close(s);
	return NULL;
}

int bw_sinks_add(struct bw_sinks *sinks, struct bw_sink *s, size_t queue_len)
{
	struct sink_thread_arg *arg;
	int ret;

	if (!queue_len)
		queue_len = 1;
	s->queue = calloc(queue_len, sizeof(*s->queue));
	arg = malloc(sizeof(*arg));
	if (!s->queue || !arg) {
		free(arg);
		free(s->queue);
		s->queue = NULL;
		return -ENOMEM;
	}
	s->cap = queue_len;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	arg->s = s;
	arg->retry_ms = sinks->retry_ms ? sinks->retry_ms : DEFAULT_RETRY_MS;
	ret = -pthread_create(&s->thread, NULL, sink_main, arg);
	if (ret < 0) {
		free(arg);
		free(s->queue);
		s->queue = NULL;
		return ret;
	}
	s->next = sinks->list;
	sinks->list = s;
	return 0;
}

void bw_sinks_submit(struct bw_sinks *sinks, struct bw_record *r)
{
	for (struct bw_sink *s = sinks->list; s; s = s->next) {
		pthread_mutex_lock(&s->lock);
		if (s->len == s->cap) {
			s->stats.dropped_full++;
			s->lost_unreported++;
		} else {
			s->queue[(s->head + s->len) % s->cap] = bw_record_ref(r);
			s->len++;
			pthread_cond_signal(&s->cond);
		}
		pthread_mutex_unlock(&s->lock);
	}
}

void bw_sink_get_stats(struct bw_sink *s, struct bw_sink_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->stats;
	pthread_mutex_unlock(&s->lock);
}

bool bw_sinks_flush(struct bw_sinks *sinks, unsigned timeout_ms)
{
	struct timespec deadline;
	bool ok = true;

	deadline = timespec_after(CLOCK_MONOTONIC, (uint64_t)timeout_ms * 1000000ULL);
	for (struct bw_sink *s = sinks->list; s; s = s->next) {
		pthread_mutex_lock(&s->lock);
		while ((s->len || s->busy) && ok) {
			struct timespec now;

			/* The condvar uses CLOCK_REALTIME; poll the monotonic
			 * deadline in short waits instead of converting clocks. */
			struct timespec rt = timespec_after(CLOCK_REALTIME, 10 * 1000000ULL);

			pthread_cond_timedwait(&s->cond, &s->lock, &rt);
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (now.tv_sec > deadline.tv_sec ||
			    (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec))
				ok = !s->len && !s->busy;
		}
		pthread_mutex_unlock(&s->lock);
	}
	return ok;
}

void bw_sinks_stop(struct bw_sinks *sinks, unsigned timeout_ms)
{
	struct bw_sink *s, *next;

	bw_sinks_flush(sinks, timeout_ms);
	for (s = sinks->list; s; s = s->next) {
		pthread_mutex_lock(&s->lock);
		s->stopping = true;
		/* What is still queued after the timeout is lost: count it. */
		while (s->len) {
			bw_record_unref(s->queue[s->head]);
			s->head = (s->head + 1) % s->cap;
			s->len--;
			s->stats.dropped_down++;
		}
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		{
			struct timespec deadline;

			clock_gettime(CLOCK_REALTIME, &deadline);
			deadline.tv_sec += timeout_ms / 1000 + 1;
			/* A thread stuck in a write to a stalled destination
			 * (sendmsg is a cancellation point) must not hang the
			 * agent's exit. */
			if (pthread_timedjoin_np(s->thread, NULL, &deadline) != 0) {
				pthread_cancel(s->thread);
				pthread_join(s->thread, NULL);
			}
		}
	}
	for (s = sinks->list; s; s = next) {
		next = s->next;
		free(s->queue);
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->cond);
		if (s->ops->free)
			s->ops->free(s);
		free(s);
	}
	sinks->list = NULL;
}
