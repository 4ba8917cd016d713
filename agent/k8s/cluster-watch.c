/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cluster-watch.h"

#define POLICY_GROUP_PATH "/apis/bulwark.dev/v1alpha1"

struct change_list {
	struct bw_cluster_change *items;
	size_t n, cap;
};

struct feed {
	struct bw_cluster_watch *w;
	enum bw_cluster_feed which;
	enum bw_cluster_kind kind;
	struct bw_kube_reflector *r;
	/* Touched by the reflector's thread only: the snapshot being received. */
	bool in_snapshot;
	struct change_list held;
};

struct bw_cluster_watch {
	struct feed feeds[BW_FEED_COUNT];
	int efd;
	pthread_mutex_t lock; /* guards queue and synced */
	struct change_list queue;
	bool synced[BW_FEED_COUNT];
};

const char *bw_cluster_feed_name(enum bw_cluster_feed f)
{
	static const char *const names[BW_FEED_COUNT] = {
		[BW_FEED_PODS] = "pods",
		[BW_FEED_NAMESPACES] = "namespaces",
		[BW_FEED_CLUSTER_POLICIES] = "clusterbulwarkpolicies",
		[BW_FEED_POLICIES] = "bulwarkpolicies",
	};

	return f < BW_FEED_COUNT ? names[f] : "?";
}

static int list_push(struct change_list *l, const struct bw_cluster_change *c)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		struct bw_cluster_change *n = realloc(l->items, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		l->items = n;
		l->cap = ncap;
	}
	l->items[l->n++] = *c;
	return 0;
}

void bw_cluster_changes_free(struct bw_cluster_change *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_object_put(c[i].obj);
	free(c);
}

static void list_clear(struct change_list *l)
{
	bw_cluster_changes_free(l->items, l->n);
	memset(l, 0, sizeof(*l));
}

static void wake(struct bw_cluster_watch *w)
{
	uint64_t one = 1;

	/* Only fails when the counter would overflow: then it is readable anyway. */
	if (write(w->efd, &one, sizeof(one)) < 0)
		return;
}

/* The reflector's callback, in its thread. An object that cannot be queued
 * (out of memory) is dropped here; the reflector's next relist brings it
 * back, and the last state stays enforced meanwhile. */
static void on_event(void *userdata, enum bw_kube_event type, struct json_object *obj)
{
	struct feed *f = userdata;
	struct bw_cluster_watch *w = f->w;
	struct bw_cluster_change c = { .kind = f->kind, .deleted = type == BW_KUBE_DELETED, .obj = obj };

	switch (type) {
	case BW_KUBE_SYNC_BEGIN:
		f->in_snapshot = true;
		return;
	case BW_KUBE_SYNC_END:
		f->in_snapshot = false;
		pthread_mutex_lock(&w->lock);
		for (size_t i = 0; i < f->held.n; i++)
			if (list_push(&w->queue, &f->held.items[i]) < 0)
				json_object_put(f->held.items[i].obj);
		f->held.n = 0;
		w->synced[f->which] = true;
		pthread_mutex_unlock(&w->lock);
		/* Even an empty snapshot is news: the feed is synced. */
		wake(w);
		return;
	default:
		break;
	}
	if (f->in_snapshot) {
		if (list_push(&f->held, &c) < 0)
			json_object_put(obj);
		return;
	}
	pthread_mutex_lock(&w->lock);
	if (list_push(&w->queue, &c) < 0)
		json_object_put(obj);
	pthread_mutex_unlock(&w->lock);
	wake(w);
}

struct bw_cluster_watch *bw_cluster_watch_new(const struct bw_kube_config *cfg,
					      const struct bw_cluster_watch_options *o, char **error)
{
	struct bw_cluster_watch *w = calloc(1, sizeof(*w));
	char *pods_path;

	*error = NULL;
	if (!w || !(pods_path = bw_kube_node_pods_path(o->node_name))) {
		free(w);
		*error = strdup("out of memory");
		return NULL;
	}
	pthread_mutex_init(&w->lock, NULL);
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0) {
		if (asprintf(error, "eventfd: %s", strerror(errno)) < 0)
			*error = NULL;
		free(pods_path);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return NULL;
	}
	for (int i = 0; i < BW_FEED_COUNT; i++) {
		static const char *const paths[BW_FEED_COUNT] = {
			[BW_FEED_NAMESPACES] = "/api/v1/namespaces",
			[BW_FEED_CLUSTER_POLICIES] = POLICY_GROUP_PATH "/clusterbulwarkpolicies",
			[BW_FEED_POLICIES] = POLICY_GROUP_PATH "/bulwarkpolicies",
		};
		struct feed *f = &w->feeds[i];
		struct bw_kube_reflector_options ro = {
			.path = i == BW_FEED_PODS ? pods_path : paths[i],
			.on_event = on_event,
			.userdata = f,
			.watch_timeout_s = o->watch_timeout_s,
			.backoff_base_ms = o->backoff_base_ms,
			.backoff_cap_ms = o->backoff_cap_ms,
			.client = o->client,
		};

		f->w = w;
		f->which = (enum bw_cluster_feed)i;
		f->kind = i == BW_FEED_PODS ? BW_CLUSTER_POD : i == BW_FEED_NAMESPACES ? BW_CLUSTER_NAMESPACE
										      : BW_CLUSTER_POLICY;
		f->r = bw_kube_reflector_new(cfg, &ro, error);
		if (!f->r) {
			free(pods_path);
			bw_cluster_watch_free(w);
			return NULL;
		}
	}
	free(pods_path);
	return w;
}

int bw_cluster_watch_start(struct bw_cluster_watch *w)
{
	for (int i = 0; i < BW_FEED_COUNT; i++) {
		int ret = bw_kube_reflector_start(w->feeds[i].r);

		if (ret < 0)
			return ret;
	}
	return 0;
}

int bw_cluster_watch_fd(const struct bw_cluster_watch *w)
{
	return w->efd;
}

int bw_cluster_watch_take(struct bw_cluster_watch *w, struct bw_cluster_change **out, size_t *n)
{
	uint64_t x;

	/* Read first: a change queued after the read wakes the loop again. */
	if (read(w->efd, &x, sizeof(x)) < 0 && errno != EAGAIN)
		return -errno;
	pthread_mutex_lock(&w->lock);
	*out = w->queue.items;
	*n = w->queue.n;
	memset(&w->queue, 0, sizeof(w->queue));
	pthread_mutex_unlock(&w->lock);
	return 0;
}

bool bw_cluster_watch_synced(struct bw_cluster_watch *w, enum bw_cluster_feed f)
{
	bool s;

	pthread_mutex_lock(&w->lock);
	s = w->synced[f];
	pthread_mutex_unlock(&w->lock);
	return s;
}

void bw_cluster_watch_stats(struct bw_cluster_watch *w, enum bw_cluster_feed f,
			    struct bw_kube_reflector_stats *out)
{
	bw_kube_reflector_get_stats(w->feeds[f].r, out);
}

void bw_cluster_watch_free(struct bw_cluster_watch *w)
{
	if (!w)
		return;
	/* Stop all first: the threads end in parallel, then join each. */
	for (int i = 0; i < BW_FEED_COUNT; i++)
		if (w->feeds[i].r)
			bw_kube_reflector_stop(w->feeds[i].r);
	for (int i = 0; i < BW_FEED_COUNT; i++) {
		bw_kube_reflector_free(w->feeds[i].r);
		list_clear(&w->feeds[i].held);
	}
	list_clear(&w->queue);
	if (w->efd >= 0)
		close(w->efd);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
