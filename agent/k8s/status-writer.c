/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy-status.h"
#include "status-writer.h"

#define BACKOFF_BASE_MS 500
#define BACKOFF_CAP_MS 30000
#define CONFLICT_RETRIES 8

struct entry {
	struct bw_status_report r;
	unsigned attempts;
	uint64_t retry_at_ns; /* CLOCK_MONOTONIC; 0: now */
};

struct bw_status_writer {
	struct bw_kube_client *client;
	char *node;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a post, a stop, or a write done */
	bool stop, busy;
	struct entry *want;
	size_t n_want;
	struct bw_status_report *done; /* what each object was last brought to */
	size_t n_done;
	struct bw_status_writer_stats stats;
	uint64_t rnd;
};

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void bw_status_report_clear(struct bw_status_report *r)
{
	free(r->path);
	free(r->uid);
	free(r->reason);
	free(r->message);
	memset(r, 0, sizeof(*r));
}

static int report_copy(struct bw_status_report *dst, const struct bw_status_report *src)
{
	*dst = *src;
	dst->path = strdup(src->path);
	dst->uid = src->uid ? strdup(src->uid) : NULL;
	dst->reason = strdup(src->reason);
	dst->message = strdup(src->message ? src->message : "");
	if (!dst->path || !dst->reason || !dst->message || (src->uid && !dst->uid)) {
		bw_status_report_clear(dst);
		return -ENOMEM;
	}
	return 0;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static bool report_eq(const struct bw_status_report *a, const struct bw_status_report *b)
{
	return str_eq(a->path, b->path) && str_eq(a->uid, b->uid) && a->enforcing == b->enforcing &&
	       str_eq(a->reason, b->reason) && str_eq(a->message, b->message) &&
	       a->observed_generation == b->observed_generation && a->rules == b->rules;
}

static struct bw_status_report *done_find(struct bw_status_writer *w, const char *path)
{
	for (size_t i = 0; i < w->n_done; i++)
		if (!strcmp(w->done[i].path, path))
			return &w->done[i];
	return NULL;
}

static bool entry_pending(struct bw_status_writer *w, const struct entry *e)
{
	const struct bw_status_report *d = done_find(w, e->r.path);

	return !d || !report_eq(d, &e->r);
}

static size_t count_pending(struct bw_status_writer *w)
{
	size_t n = 0;

	for (size_t i = 0; i < w->n_want; i++)
		n += entry_pending(w, &w->want[i]);
	return n;
}

/* Under the lock: remembers r as written. */
static void done_set(struct bw_status_writer *w, const struct bw_status_report *r)
{
	struct bw_status_report *d = done_find(w, r->path), copy;

	if (report_copy(&copy, r) < 0)
		return; /* written again later: harmless */
	if (d) {
		bw_status_report_clear(d);
		*d = copy;
		return;
	}
	d = realloc(w->done, (w->n_done + 1) * sizeof(*d));
	if (!d) {
		bw_status_report_clear(&copy);
		return;
	}
	w->done = d;
	w->done[w->n_done++] = copy;
}

enum outcome { WRITTEN, UNCHANGED, GONE, FAILED };

/* A failed GET or PATCH: a 404 means the policy is gone; anything else is
 * retried later. Takes error. */
static enum outcome request_failed(int ret, long status, char *error, char *err, size_t err_size)
{
	enum outcome o = status == 404 ? GONE : FAILED;

	if (o == FAILED)
		snprintf(err, err_size, "%s", error ? error : strerror(-ret));
	free(error);
	return o;
}

/* One report, without the lock: GET, patch, PATCH, with retries on 409. */
static enum outcome write_one(struct bw_status_writer *w, const struct bw_status_report *r, char *err,
			      size_t err_size)
{
	for (int attempt = 0; attempt < CONFLICT_RETRIES; attempt++) {
		struct bw_node_report nr = {
			.node = w->node,
			.enforcing = r->enforcing,
			.reason = r->reason,
			.message = r->message,
			.observed_generation = r->observed_generation,
			.now_realtime_ns = now_ns(CLOCK_REALTIME),
			.rules = r->rules,
		};
		struct json_object *cur = NULL, *meta, *uid;
		char *error = NULL, *body, path[1024];
		long status = 0;
		int ret;

		ret = bw_kube_get(w->client, r->path, &cur, &status, &error);
		if (ret < 0) {
			json_object_put(cur);
			return request_failed(ret, status, error, err, err_size);
		}
		/* A policy deleted and made again under the same name is another
		 * object: the report was about the old one. */
		if (r->uid && json_object_object_get_ex(cur, "metadata", &meta) &&
		    json_object_object_get_ex(meta, "uid", &uid) && strcmp(json_object_get_string(uid), r->uid)) {
			json_object_put(cur);
			return GONE;
		}
		errno = 0;
		body = bw_policy_status_patch(cur, &nr);
		json_object_put(cur);
		if (!body) {
			if (errno) {
				snprintf(err, err_size, "%s: %s", r->path, strerror(errno));
				return FAILED;
			}
			return UNCHANGED;
		}
		snprintf(path, sizeof(path), "%s/status", r->path);
		ret = bw_kube_patch(w->client, path, "application/merge-patch+json", body, NULL, &status, &error);
		free(body);
		if (ret == 0) {
			free(error);
			return WRITTEN;
		}
		if (status == 409) {
			free(error);
			pthread_mutex_lock(&w->lock);
			w->stats.conflicts++;
			pthread_mutex_unlock(&w->lock);
			continue; /* another node wrote first: again on the fresh object */
		}
		return request_failed(ret, status, error, err, err_size);
	}
	snprintf(err, err_size, "%s: still conflicting after %d attempts", r->path, CONFLICT_RETRIES);
	return FAILED;
}

static void *writer_thread(void *arg)
{
	struct bw_status_writer *w = arg;

	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		uint64_t now = now_ns(CLOCK_MONOTONIC), next = UINT64_MAX;
		struct bw_status_report r;
		struct entry *e = NULL;
		enum outcome o;
		char err[256] = "";

		for (size_t i = 0; i < w->n_want && !e; i++) {
			if (!entry_pending(w, &w->want[i]))
				continue;
			if (w->want[i].retry_at_ns <= now)
				e = &w->want[i];
			else if (w->want[i].retry_at_ns < next)
				next = w->want[i].retry_at_ns;
		}
		w->stats.pending = count_pending(w);
		if (!e) {
			w->busy = false;
			pthread_cond_broadcast(&w->cond);
			if (next == UINT64_MAX) {
				pthread_cond_wait(&w->cond, &w->lock);
			} else {
				struct timespec ts;
				uint64_t wait = next - now, rt = now_ns(CLOCK_REALTIME) + wait;

				ts.tv_sec = (time_t)(rt / 1000000000ULL);
				ts.tv_nsec = (long)(rt % 1000000000ULL);
				pthread_cond_timedwait(&w->cond, &w->lock, &ts);
			}
			continue;
		}
		if (report_copy(&r, &e->r) < 0) {
			e->retry_at_ns = now + 1000000000ULL;
			continue;
		}
		w->busy = true;
		pthread_mutex_unlock(&w->lock);

		o = write_one(w, &r, err, sizeof(err));

		pthread_mutex_lock(&w->lock);
		switch (o) {
		case WRITTEN: w->stats.writes++; break;
		case UNCHANGED: w->stats.unchanged++; break;
		case GONE: w->stats.gone++; break;
		case FAILED: w->stats.failures++; break;
		}
		if (o != FAILED) {
			done_set(w, &r);
		} else {
			snprintf(w->stats.last_error, sizeof(w->stats.last_error), "%s", err);
			/* The wanted entry may have been replaced meanwhile. */
			for (size_t i = 0; i < w->n_want; i++) {
				struct entry *x = &w->want[i];

				if (!strcmp(x->r.path, r.path)) {
					x->retry_at_ns = now_ns(CLOCK_MONOTONIC) +
							 1000000ULL * bw_kube_backoff_ms(x->attempts, BACKOFF_BASE_MS,
											 BACKOFF_CAP_MS, w->rnd);
					w->rnd = w->rnd * 6364136223846793005ULL + 1442695040888963407ULL;
					if (x->attempts < 16)
						x->attempts++;
				}
			}
		}
		bw_status_report_clear(&r);
		pthread_cond_broadcast(&w->cond);
	}
	w->busy = false;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

struct bw_status_writer *bw_status_writer_new(const struct bw_kube_config *cfg, const char *node_name,
					      const struct bw_kube_client_options *client, char **error)
{
	struct bw_status_writer *w = calloc(1, sizeof(*w));
	pthread_condattr_t ca;

	*error = NULL;
	if (!w || !(w->node = strdup(node_name))) {
		free(w);
		*error = strdup("out of memory");
		return NULL;
	}
	w->client = bw_kube_client_new(cfg, client, error);
	if (!w->client) {
		free(w->node);
		free(w);
		return NULL;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	w->rnd = now_ns(CLOCK_REALTIME) ^ (uint64_t)(uintptr_t)w;
	return w;
}

int bw_status_writer_start(struct bw_status_writer *w)
{
	int ret = pthread_create(&w->thread, NULL, writer_thread, w);

	if (ret)
		return -ret;
	w->started = true;
	return 0;
}

int bw_status_writer_post(struct bw_status_writer *w, const struct bw_status_report *r, size_t n)
{
	struct entry *want = calloc(n ? n : 1, sizeof(*want));

	if (!want)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (report_copy(&want[i].r, &r[i]) < 0) {
			while (i--)
				bw_status_report_clear(&want[i].r);
			free(want);
			return -ENOMEM;
		}
	}
	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < n; i++) {
		/* Keep the backoff of an entry still failing. */
		for (size_t j = 0; j < w->n_want; j++)
			if (!strcmp(w->want[j].r.path, want[i].r.path)) {
				want[i].attempts = w->want[j].attempts;
				want[i].retry_at_ns = w->want[j].retry_at_ns;
			}
	}
	for (size_t j = 0; j < w->n_want; j++)
		bw_status_report_clear(&w->want[j].r);
	free(w->want);
	w->want = want;
	w->n_want = n;
	/* Forget what was written for objects no longer reported: one made
	 * again under the same name starts with an empty status. */
	for (size_t j = 0; j < w->n_done;) {
		bool keep = false;

		for (size_t i = 0; i < n && !keep; i++)
			keep = !strcmp(want[i].r.path, w->done[j].path);
		if (keep) {
			j++;
			continue;
		}
		bw_status_report_clear(&w->done[j]);
		w->done[j] = w->done[--w->n_done];
	}
	w->stats.pending = count_pending(w);
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

bool bw_status_writer_flush(struct bw_status_writer *w, unsigned timeout_ms)
{
	uint64_t deadline = now_ns(CLOCK_REALTIME) + (uint64_t)timeout_ms * 1000000ULL;
	bool idle;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		idle = !w->busy && count_pending(w) == 0;
		if (idle || w->stop || !w->started)
			break;
		{
			struct timespec ts = { (time_t)(deadline / 1000000000ULL), (long)(deadline % 1000000000ULL) };

			if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT) {
				idle = !w->busy && count_pending(w) == 0;
				break;
			}
		}
	}
	pthread_mutex_unlock(&w->lock);
	return idle;
}

void bw_status_writer_get_stats(struct bw_status_writer *w, struct bw_status_writer_stats *out)
{
	pthread_mutex_lock(&w->lock);
	w->stats.pending = count_pending(w);
	*out = w->stats;
	pthread_mutex_unlock(&w->lock);
}

void bw_status_writer_free(struct bw_status_writer *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	bw_kube_client_cancel(w->client);
	if (w->started)
		pthread_join(w->thread, NULL);
	bw_kube_client_free(w->client);
	for (size_t i = 0; i < w->n_want; i++)
		bw_status_report_clear(&w->want[i].r);
	free(w->want);
	for (size_t i = 0; i < w->n_done; i++)
		bw_status_report_clear(&w->done[i]);
	free(w->done);
	free(w->node);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
}
