/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Audit sinks. Each sink runs in its own thread behind a bounded queue, so a
 * slow or absent sink never blocks the ring-buffer reader or enforcement:
 * when its queue is full, or while it is down, its records are dropped and
 * counted, and when it comes back it first writes how many it lost.
 *
 * A sink implementation provides open/write/close; the framework
 * (sink.c) does the threading, queueing, retry and loss accounting.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "audit-record.h"

struct bw_sink;

struct bw_sink_ops {
	const char *name; /* "journald", "syslog", "file", "stdout" */
	/* Connects or opens; negative errno when the destination is not there. */
	int (*open)(struct bw_sink *s);
	/* Writes one record; a negative errno marks the sink down (the record
	 * counts as lost) until open succeeds again. */
	int (*write)(struct bw_sink *s, const struct bw_record *r);
	/* Optional: writes n records at once, *written of them whole, in
	 * order; a negative errno as for write (the record after the written
	 * ones is the one that failed). */
	int (*write_batch)(struct bw_sink *s, struct bw_record *const *rs, size_t n, size_t *written);
	void (*close)(struct bw_sink *s);
	void (*free)(struct bw_sink *s); /* frees s->impl */
};

struct bw_sink_stats {
	uint64_t written;      /* records written */
	uint64_t dropped_full; /* queue full: the sink could not keep up */
	uint64_t dropped_down; /* the sink was down, or a write failed */
	uint64_t write_errors; /* failed writes (each also drops its record) */
	uint64_t reconnects;   /* successful opens after being down */
	bool up;
};

struct bw_sink {
	const struct bw_sink_ops *ops;
	void *impl;

	/* framework state */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct bw_record **queue;
	size_t cap, head, len;
	bool stopping, started;
	bool busy;                  /* a record is being written (flush waits for it) */
	uint64_t retry_ns;          /* next reconnect attempt when down */
	uint64_t lost_unreported;   /* dropped since the last loss record */
	struct bw_sink_stats stats; /* under lock */
	struct bw_sink *next;
};

struct bw_sinks {
	struct bw_sink *list;
	unsigned retry_ms; /* between reconnect attempts of a down sink */
};

/* Takes ownership of s (which must have ops and impl set); queue_len records
 * may wait. Starts its thread. */
int bw_sinks_add(struct bw_sinks *sinks, struct bw_sink *s, size_t queue_len);

/* Queues r for every sink (taking a reference each); never blocks on a sink. */
void bw_sinks_submit(struct bw_sinks *sinks, struct bw_record *r);

/* Writes what is queued (bounded by timeout_ms), stops the threads, frees. */
void bw_sinks_stop(struct bw_sinks *sinks, unsigned timeout_ms);

void bw_sink_get_stats(struct bw_sink *s, struct bw_sink_stats *out);

/* Waits until every queue is empty (for tests and shutdown); false on timeout. */
bool bw_sinks_flush(struct bw_sinks *sinks, unsigned timeout_ms);
