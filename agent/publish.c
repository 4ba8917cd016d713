/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "publish.h"
#include "util.h"

/* ---- spare ids ---------------------------------------------------------------
 *
 * Who owns an id: the publisher (published), the spare thread (being made or
 * recycled) or nobody (free). One table, under the lock, so that the
 * publisher's fallback and the thread never pick the same free id. */
enum id_state {
	ID_FREE = 0,
	ID_PUBLISHED,
	ID_SPARE_MAKING,
	ID_SPARE_READY,
	ID_RECYCLING,
};

enum { KIND_EXEC, KIND_FILE, KIND_NET4, KIND_NET6, KIND_COUNT };

struct spare {
	uint32_t id;
	int fd[KIND_COUNT]; /* the empty tries, also in the outer maps */
};

/* A rule set written into a spare: its tries hold `capacity` entries, which
 * is what Linux before 6.4 reports as their memlock however few they hold.
 * The thread later swaps each for a trie sized to its entries (same
 * content, so a check sees the same answer from either), once the
 * publisher has been quiet for compact_delay_ns: the swap's RCU waits and
 * copying would otherwise compete with the next policy change for the CPU,
 * and an oversized trie costs nothing meanwhile but memlock accounting. */
struct compaction {
	uint32_t id;
	uint64_t serial; /* the id's use it was queued for: skipped if retired since */
	int fd[KIND_COUNT];
	size_t n[KIND_COUNT]; /* entries written into each */
};

struct bw_spares {
	pthread_mutex_t lock;
	pthread_cond_t work;  /* to the thread: something to make or recycle */
	pthread_cond_t ready; /* from the thread: a spare is ready, or it gave up */
	pthread_t thread;
	struct bw_map_fds fds;
	uint8_t *state;       /* enum id_state, per id */
	struct spare *ready_list;
	size_t n_ready, making;
	uint32_t *recycle;    /* retired ids for the thread; each id at most once */
	size_t n_recycle;
	uint64_t *serial;     /* per id: bumped each time a spare id is taken */
	struct compaction *compact;
	size_t n_compact, cap_compact;
	size_t compacting;    /* 0 or 1: the compaction under way (pending counts it) */
	uint64_t compact_delay_ns;
	uint64_t compact_after_ns; /* CLOCK_MONOTONIC: the queued compactions wait for it */
	uint32_t target, capacity;
	bool stop, stalled;   /* stalled: the kernel refused a spare; retry at the next take */
	bool idle;            /* the thread waits: nothing to make, recycle or size (deferred sizing is work) */
	struct bw_spare_stats st;
};

struct trie_kind {
	const char *name;
	int outer;
	uint32_t key_type, value_type;
	size_t key_size, value_size;
};

static void trie_kinds(const struct bw_map_fds *f, struct trie_kind k[KIND_COUNT])
{
	k[KIND_EXEC] = (struct trie_kind){ "bw_exec", f->exec_tries, f->path_key_type, f->path_value_type,
					  sizeof(struct bw_path_key), sizeof(struct bw_path_value) };
	k[KIND_FILE] = (struct trie_kind){ "bw_file", f->file_tries, f->path_key_type, f->path_value_type,
					  sizeof(struct bw_path_key), sizeof(struct bw_path_value) };
	k[KIND_NET4] = (struct trie_kind){ "bw_net4", f->net4_tries, f->net4_key_type, f->net_value_type,
					  sizeof(struct bw_net4_key), sizeof(struct bw_net_value) };
	k[KIND_NET6] = (struct trie_kind){ "bw_net6", f->net6_tries, f->net6_key_type, f->net_value_type,
					  sizeof(struct bw_net6_key), sizeof(struct bw_net_value) };
}

/* An empty inner trie that can hold max_entries. */
static int create_trie(const struct bw_map_fds *fds, const struct trie_kind *k, uint32_t max_entries)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	int fd;

	if (fds->btf_fd > 0) {
		opts.btf_fd = (uint32_t)fds->btf_fd;
		opts.btf_key_type_id = k->key_type;
		opts.btf_value_type_id = k->value_type;
	}
	fd = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, k->name, (uint32_t)k->key_size, (uint32_t)k->value_size,
			    max_entries, &opts);
	return fd < 0 ? -errno : fd;
}

/* Removes id's tries from the outer maps: each delete waits for RCU, which
 * is why only the spare thread and retirement without spares do it. */
static void delete_tries(const struct bw_map_fds *fds, uint32_t id)
{
	bpf_map_delete_elem(fds->exec_tries, &id);
	bpf_map_delete_elem(fds->file_tries, &id);
	bpf_map_delete_elem(fds->net4_tries, &id);
	bpf_map_delete_elem(fds->net6_tries, &id);
}

/* Puts empty tries under id, replacing whatever was there (a retired rule
 * set's, freed by the kernel after the grace period it waits for here). */
static int make_spare(struct bw_spares *s, uint32_t id, struct spare *out)
{
	struct trie_kind k[KIND_COUNT];
	int ret = 0;

	trie_kinds(&s->fds, k);
	out->id = id;
	for (int i = 0; i < KIND_COUNT; i++)
		out->fd[i] = -1;
	for (int i = 0; i < KIND_COUNT && ret == 0; i++) {
		out->fd[i] = create_trie(&s->fds, &k[i], s->capacity);
		if (out->fd[i] < 0)
			ret = out->fd[i];
		else if (bpf_map_update_elem(k[i].outer, &id, &out->fd[i], BPF_ANY) < 0)
			ret = -errno;
	}
	if (ret < 0) {
		for (int i = 0; i < KIND_COUNT; i++)
			if (out->fd[i] >= 0)
				close(out->fd[i]);
		delete_tries(&s->fds, id);
	}
	return ret;
}

/* Copies the n entries of one filled spare trie into a trie of that size
 * and puts it in the outer map (waiting for RCU here, off the apply's path);
 * an empty one is removed. */
static int compact_trie(struct bw_spares *s, const struct trie_kind *k, uint32_t id, int old_fd, size_t n)
{
	uint8_t key[2][sizeof(struct bw_path_key)], value[sizeof(struct bw_path_value) + sizeof(struct bw_net_value)];
	int cur = 0, fd, ret = 0;

	if (!n)
		return bpf_map_delete_elem(k->outer, &id) < 0 && errno != ENOENT ? -errno : 0;
	fd = create_trie(&s->fds, k, (uint32_t)n);
	if (fd < 0)
		return fd;
	for (void *prev = NULL; ret == 0 && bpf_map_get_next_key(old_fd, prev, key[cur]) == 0;
	     prev = key[cur], cur ^= 1)
		if (bpf_map_lookup_elem(old_fd, key[cur], value) < 0 ||
		    bpf_map_update_elem(fd, key[cur], value, BPF_NOEXIST) < 0)
			ret = -errno;
	if (ret == 0 && bpf_map_update_elem(k->outer, &id, &fd, BPF_ANY) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static uint32_t lowest_free_locked(const struct bw_spares *s)
{
	/* Id 0 is never used, so a zeroed map value never names a rule set. */
	for (uint32_t id = 1; id < s->fds.max_rulesets; id++)
		if (s->state[id] == ID_FREE)
			return id;
	return 0;
}

static void *spare_thread(void *arg)
{
	struct bw_spares *s = arg;

	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		bool keep;
		struct spare sp;
		uint32_t id = 0;
		int ret;

		if (s->n_recycle) {
			id = s->recycle[--s->n_recycle];
		} else if (!s->stalled && s->n_ready + s->making < s->target) {
			id = lowest_free_locked(s);
		}
		if (!id && s->n_compact) {
			/* Spares first (they are what an apply waits for), then
			 * this: a used spare's tries sized to their entries, once
			 * no compaction was queued for compact_delay_ns. Until
			 * then wait, not idle: new work (a spare to make, an id to
			 * recycle, another compaction moving the deadline) or
			 * stop wakes the thread early. */
			uint64_t now = clock_ns(CLOCK_MONOTONIC);
			struct compaction c;
			struct trie_kind k[KIND_COUNT];
			bool current;
			int err = 0;

			if (now < s->compact_after_ns) {
				struct timespec until = timespec_after(CLOCK_MONOTONIC, s->compact_after_ns - now);

				pthread_cond_timedwait(&s->work, &s->lock, &until);
				continue;
			}
			c = s->compact[--s->n_compact];
			current = s->state[c.id] == ID_PUBLISHED && s->serial[c.id] == c.serial;
			s->compacting = 1;
			pthread_mutex_unlock(&s->lock);
			/* A retire after this check queues a recycle, which this
			 * thread does after the compaction: still in order. */
			trie_kinds(&s->fds, k);
			for (int i = 0; i < KIND_COUNT; i++) {
				if (current && !err)
					err = compact_trie(s, &k[i], c.id, c.fd[i], c.n[i]);
				close(c.fd[i]);
			}
			pthread_mutex_lock(&s->lock);
			s->compacting = 0;
			if (current && !err)
				s->st.compacted++;
			else if (err) {
				s->st.failures++;
				s->st.last_error = err;
			}
			continue;
		}
		if (!id) {
			s->idle = true;
			pthread_cond_broadcast(&s->ready);
			while (s->idle && !s->stop)
				pthread_cond_wait(&s->work, &s->lock);
			continue;
		}
		keep = s->n_ready + s->making < s->target;
		s->state[id] = keep ? ID_SPARE_MAKING : ID_RECYCLING;
		s->making += keep;
		pthread_mutex_unlock(&s->lock);

		ret = keep ? make_spare(s, id, &sp) : 0;
		if (!keep)
			delete_tries(&s->fds, id);

		pthread_mutex_lock(&s->lock);
		s->making -= keep;
		if (keep && ret == 0) {
			s->ready_list[s->n_ready++] = sp;
			s->state[id] = ID_SPARE_READY;
			s->st.made++;
			continue;
		}
		s->state[id] = ID_FREE;
		if (!keep) {
			s->st.dropped++;
			continue;
		}
		s->st.failures++;
		s->st.last_error = ret;
		if (!s->stalled)
			fprintf(stderr, "bulwarkd: cannot make a spare rule-set id (%u): %s; new rule sets make their "
				"own tries until the next try\n", id, strerror(-ret));
		s->stalled = true;
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static void spares_free(struct bw_spares *s)
{
	for (size_t i = 0; i < s->n_ready; i++)
		for (int k = 0; k < KIND_COUNT; k++)
			close(s->ready_list[i].fd[k]);
	pthread_cond_destroy(&s->work);
	pthread_cond_destroy(&s->ready);
	pthread_mutex_destroy(&s->lock);
	for (size_t i = 0; i < s->n_compact; i++)
		for (int k = 0; k < KIND_COUNT; k++)
			close(s->compact[i].fd[k]);
	free(s->compact);
	free(s->serial);
	free(s->state);
	free(s->ready_list);
	free(s->recycle);
	free(s);
}

int bw_publisher_start_spares(struct bw_publisher *p, uint32_t target, uint32_t capacity,
			      uint32_t compact_delay_ms)
{
	struct bw_spares *s;
	int ret;

	if (p->spares || !target || !capacity)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->fds = p->fds;
	s->target = target;
	s->capacity = capacity;
	s->compact_delay_ns = (uint64_t)compact_delay_ms * 1000000ULL;
	s->st.target = target;
	s->st.capacity = capacity;
	s->state = calloc(p->fds.max_rulesets, sizeof(*s->state));
	s->ready_list = calloc(p->fds.max_rulesets, sizeof(*s->ready_list));
	s->recycle = calloc(p->fds.max_rulesets, sizeof(*s->recycle));
	s->serial = calloc(p->fds.max_rulesets, sizeof(*s->serial));
	pthread_mutex_init(&s->lock, NULL);
	/* Deadlines on CLOCK_MONOTONIC: a wall-clock step must neither run a
	 * deferred compaction early nor hold it back. */
	cond_init_monotonic(&s->work);
	cond_init_monotonic(&s->ready);
	if (!s->state || !s->ready_list || !s->recycle || !s->serial) {
		spares_free(s);
		return -ENOMEM;
	}
	for (size_t i = 0; i < p->n_pub; i++)
		s->state[p->pub[i].id] = ID_PUBLISHED;
	ret = -pthread_create(&s->thread, NULL, spare_thread, s);
	if (ret < 0) {
		spares_free(s);
		return ret;
	}
	p->spares = s;
	return 0;
}

size_t bw_publisher_wait_spares(struct bw_publisher *p, int timeout_ms)
{
	struct bw_spares *s = p->spares;
	struct timespec until;
	size_t ready;

	if (!s)
		return 0;
	until = timespec_after(CLOCK_MONOTONIC, (uint64_t)timeout_ms * 1000000ULL);
	pthread_mutex_lock(&s->lock);
	while (!s->idle)
		if (pthread_cond_timedwait(&s->ready, &s->lock, &until) == ETIMEDOUT)
			break;
	ready = s->n_ready;
	pthread_mutex_unlock(&s->lock);
	return ready;
}

void bw_publisher_spare_stats(struct bw_publisher *p, struct bw_spare_stats *st)
{
	struct bw_spares *s = p->spares;

	memset(st, 0, sizeof(*st));
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	*st = s->st;
	st->ready = s->n_ready;
	st->pending = s->making + s->n_recycle + s->n_compact + s->compacting;
	st->deferred = clock_ns(CLOCK_MONOTONIC) < s->compact_after_ns ? s->n_compact : 0;
	pthread_mutex_unlock(&s->lock);
}

static void wake_locked(struct bw_spares *s)
{
	s->idle = false;
	pthread_cond_signal(&s->work);
}

static size_t spares_ready(struct bw_spares *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->n_ready;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* A ready spare for rs, or false (counted) when none is ready or rs does not
 * fit; the thread is woken to make the next one either way. *budget is what
 * this apply may still take: the spares ready when it began, so that a bulk
 * apply (the first one) does not chase the thread's refills, each of which
 * would cost a second round of grace periods to size. */
static bool take_spare(struct bw_spares *s, const struct bw_compiled_ruleset *rs, size_t *budget,
		       struct spare *out)
{
	bool ok = false;

	pthread_mutex_lock(&s->lock);
	if (rs->n_exec > s->capacity || rs->n_file > s->capacity || rs->n_net4 > s->capacity ||
	    rs->n_net6 > s->capacity) {
		s->st.too_large++;
	} else if (!s->n_ready || !*budget) {
		s->st.missed++;
	} else {
		*out = s->ready_list[--s->n_ready];
		s->state[out->id] = ID_PUBLISHED;
		s->serial[out->id]++;
		(*budget)--;
		s->st.taken++;
		ok = true;
	}
	s->stalled = false;
	wake_locked(s);
	pthread_mutex_unlock(&s->lock);
	return ok;
}

/* Hands a retired (or half-filled) id to the thread. */
static void recycle_id(struct bw_spares *s, uint32_t id)
{
	pthread_mutex_lock(&s->lock);
	s->state[id] = ID_RECYCLING;
	s->recycle[s->n_recycle++] = id;
	wake_locked(s);
	pthread_mutex_unlock(&s->lock);
}

/* Hands a filled spare's tries to the thread for sizing; its fds go with
 * them. Every one queued restarts the quiet period the compactions wait
 * for. Fails only without memory (the rule set then keeps its large tries). */
static int queue_compaction(struct bw_spares *s, const struct spare *sp, const size_t n[KIND_COUNT])
{
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	if (s->n_compact == s->cap_compact) {
		size_t ncap = s->cap_compact ? s->cap_compact * 2 : 16;
		struct compaction *n = realloc(s->compact, ncap * sizeof(*n));

		if (!n)
			ret = -ENOMEM;
		else
			s->compact = n, s->cap_compact = ncap;
	}
	if (ret == 0) {
		struct compaction *c = &s->compact[s->n_compact++];

		c->id = sp->id;
		c->serial = s->serial[sp->id];
		memcpy(c->fd, sp->fd, sizeof(c->fd));
		memcpy(c->n, n, sizeof(c->n));
		s->compact_after_ns = clock_ns(CLOCK_MONOTONIC) + s->compact_delay_ns;
		wake_locked(s);
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static void set_state(struct bw_spares *s, uint32_t id, enum id_state st)
{
	pthread_mutex_lock(&s->lock);
	s->state[id] = (uint8_t)st;
	pthread_mutex_unlock(&s->lock);
}

/* ---- the publisher ----------------------------------------------------------- */

void bw_publisher_init(struct bw_publisher *p, const struct bw_map_fds *fds)
{
	memset(p, 0, sizeof(*p));
	p->fds = *fds;
}

void bw_publisher_clear(struct bw_publisher *p)
{
	if (p->spares) {
		pthread_mutex_lock(&p->spares->lock);
		p->spares->stop = true;
		wake_locked(p->spares);
		pthread_mutex_unlock(&p->spares->lock);
		pthread_join(p->spares->thread, NULL);
		spares_free(p->spares);
	}
	for (size_t i = 0; i < p->n_pub; i++)
		bw_compiled_ruleset_clear(&p->pub[i].rs);
	free(p->pub);
	memset(p, 0, sizeof(*p));
}

const struct bw_published *bw_publisher_find(const struct bw_publisher *p, uint32_t id)
{
	for (size_t i = 0; i < p->n_pub; i++)
		if (p->pub[i].id == id)
			return &p->pub[i];
	return NULL;
}

/* The lowest id nobody holds, now the publisher's. */
static uint32_t free_id(const struct bw_publisher *p)
{
	struct bw_spares *s = p->spares;
	uint32_t id = 0;

	if (s) {
		pthread_mutex_lock(&s->lock);
		id = lowest_free_locked(s);
		if (id)
			s->state[id] = ID_PUBLISHED;
		pthread_mutex_unlock(&s->lock);
		return id;
	}
	/* Id 0 is never used, so a zeroed map value never names a rule set. */
	for (id = 1; id < p->fds.max_rulesets; id++)
		if (!bw_publisher_find(p, id))
			return id;
	return 0;
}

/* Writes n entries of entry_size bytes, the key first, into a trie. */
static int fill_trie(int fd, const char *name, const void *entries, size_t n, size_t value_size, size_t entry_size)
{
	for (size_t i = 0; i < n; i++) {
		const char *e = (const char *)entries + i * entry_size;

		/* The value is the entry's last member, but not always right after
		 * the key: struct bw_path_entry has 4 bytes of padding between them. */
		if (bpf_map_update_elem(fd, e, e + entry_size - value_size, BPF_NOEXIST) < 0) {
			int ret = -errno;

			fprintf(stderr, "bulwarkd: cannot fill a %s trie (entry %zu of %zu): %s\n", name, i, n,
				strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* Creates one inner trie holding exactly its n entries. */
static int make_trie(const struct bw_map_fds *fds, const struct trie_kind *k, const void *entries, size_t n,
		     size_t entry_size)
{
	int fd = create_trie(fds, k, (uint32_t)n), ret;

	if (fd < 0) {
		fprintf(stderr, "bulwarkd: cannot create a %s trie of %zu entries: %s\n", k->name, n, strerror(-fd));
		return fd;
	}
	ret = fill_trie(fd, k->name, entries, n, k->value_size, entry_size);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

static int set_inner(int outer, uint32_t id, int inner)
{
	int ret = bpf_map_update_elem(outer, &id, &inner, BPF_ANY) < 0 ? -errno : 0;

	if (ret < 0)
		fprintf(stderr, "bulwarkd: cannot publish rule set %u's trie in its outer map: %s\n", id,
			strerror(-ret));

	close(inner);
	return ret;
}

static void unpublish(const struct bw_map_fds *fds, uint32_t id)
{
	struct bw_ruleset zero = { 0 };

	/* Zero the config first: a check racing with this sees "missing" and
	 * counts it rather than reading a trie that is going away. */
	bpf_map_update_elem(fds->rulesets, &id, &zero, BPF_ANY);
	delete_tries(fds, id);
}

/* A rule set's entries, kind by kind, with what their tries look like. */
struct ruleset_tries {
	struct trie_kind kind[KIND_COUNT];
	const void *entries[KIND_COUNT];
	size_t n[KIND_COUNT], entry_size[KIND_COUNT];
};

static void ruleset_tries(const struct bw_map_fds *f, const struct bw_compiled_ruleset *rs, struct ruleset_tries *t)
{
	trie_kinds(f, t->kind);
	t->entries[KIND_EXEC] = rs->exec, t->n[KIND_EXEC] = rs->n_exec, t->entry_size[KIND_EXEC] = sizeof(*rs->exec);
	t->entries[KIND_FILE] = rs->file, t->n[KIND_FILE] = rs->n_file, t->entry_size[KIND_FILE] = sizeof(*rs->file);
	t->entries[KIND_NET4] = rs->net4, t->n[KIND_NET4] = rs->n_net4, t->entry_size[KIND_NET4] = sizeof(*rs->net4);
	t->entries[KIND_NET6] = rs->net6, t->n[KIND_NET6] = rs->n_net6, t->entry_size[KIND_NET6] = sizeof(*rs->net6);
}

/* The config goes last: a non-zero generation is what makes the id usable,
 * and no workload points at it yet anyway. */
static int write_config(struct bw_publisher *p, const struct bw_compiled_ruleset *rs, uint32_t id)
{
	struct bw_ruleset cfg = rs->config;

	cfg.generation = p->generation;
	return bpf_map_update_elem(p->fds.rulesets, &id, &cfg, BPF_ANY) < 0 ? -errno : 0;
}

/* Fills a spare's empty tries in place: no outer map is written, so nothing
 * waits for RCU. The tries stay in the outer maps whatever happens; on
 * failure the id goes back to the thread, which empties them. */
static int publish_in_spare(struct bw_publisher *p, const struct bw_compiled_ruleset *rs, struct spare *sp)
{
	struct ruleset_tries t;
	int ret = 0;

	ruleset_tries(&p->fds, rs, &t);
	for (int i = 0; i < KIND_COUNT && ret == 0; i++)
		if (t.n[i])
			ret = fill_trie(sp->fd[i], t.kind[i].name, t.entries[i], t.n[i], t.kind[i].value_size,
					t.entry_size[i]);
	if (ret == 0)
		ret = write_config(p, rs, sp->id);
	if (ret == 0 && queue_compaction(p->spares, sp, t.n) == 0)
		return 0;
	for (int i = 0; i < KIND_COUNT; i++)
		close(sp->fd[i]);
	if (ret < 0)
		recycle_id(p->spares, sp->id);
	return ret;
}

/* Makes id's tries, each sized to its rules, and puts them in the outer
 * maps: every such write waits for an RCU grace period. */
static int publish_one(struct bw_publisher *p, const struct bw_compiled_ruleset *rs, uint32_t id,
		       size_t *outer_updates)
{
	struct ruleset_tries t;
	int ret = 0;

	ruleset_tries(&p->fds, rs, &t);
	for (int i = 0; i < KIND_COUNT && ret == 0; i++) {
		int fd;

		if (!t.n[i])
			continue;
		fd = make_trie(&p->fds, &t.kind[i], t.entries[i], t.n[i], t.entry_size[i]);
		if (fd < 0) {
			ret = fd;
			break;
		}
		ret = set_inner(t.kind[i].outer, id, fd);
		(*outer_updates)++;
	}
	if (ret == 0)
		ret = write_config(p, rs, id);
	if (ret < 0)
		unpublish(&p->fds, id);
	return ret;
}

/* The id no longer names a rule set: with spares its tries go back to the
 * thread (emptied off this thread's path), without them they are deleted here. */
static void retire_id(struct bw_publisher *p, uint32_t id)
{
	if (p->spares) {
		struct bw_ruleset zero = { 0 };

		bpf_map_update_elem(p->fds.rulesets, &id, &zero, BPF_ANY);
		recycle_id(p->spares, id);
	} else {
		unpublish(&p->fds, id);
	}
}

static void note_error(struct bw_publish_result *res, int err)
{
	if (!res->first_error)
		res->first_error = err;
}

/* A rule set compiled again with the same result (the tick's refresh,
 * SIGHUP) keeps its id; the publisher holds the plan's compile from then on
 * instead of its own older one, so that one copy of the rules stays. */
static void keep_one_copy(struct bw_compiled_ruleset *held, const struct bw_compiled_ruleset *rs)
{
	struct bw_compiled_ruleset share;

	if (held->holders == rs->holders || bw_compiled_ruleset_copy(&share, rs) < 0)
		return;
	bw_compiled_ruleset_clear(held);
	*held = share;
}

int bw_publish_plan(struct bw_publisher *p, const struct bw_plan *plan, uint64_t now_ns,
		    struct bw_publish_result *res)
{
	uint32_t *ids = calloc(plan->n_rulesets ? plan->n_rulesets : 1, sizeof(*ids));
	uint64_t key, next, *del = NULL;
	size_t n_del = 0, cap_del = 0, spare_budget = p->spares ? spares_ready(p->spares) : 0;
	bool *used;
	int ret;

	memset(res, 0, sizeof(*res));
	if (!ids)
		return -ENOMEM;
	p->generation++;

	/* 1. Every rule set of the plan gets an id: an unchanged one keeps its
	 *    own, a new one is written in full under a free id. */
	for (size_t r = 0; r < plan->n_rulesets; r++) {
		const struct bw_compiled_ruleset *rs = &plan->rulesets[r];
		struct bw_published *slot;
		uint32_t id = 0;

		for (size_t i = 0; i < p->n_pub && !id; i++)
			if (bw_compiled_ruleset_equal(&p->pub[i].rs, rs)) {
				id = p->pub[i].id;
				keep_one_copy(&p->pub[i].rs, rs);
			}
		if (id) {
			ids[r] = id;
			res->rulesets_reused++;
			continue;
		}
		if (p->n_pub == p->cap_pub) {
			size_t ncap = p->cap_pub ? p->cap_pub * 2 : 16;
			struct bw_published *n = realloc(p->pub, ncap * sizeof(*n));

			if (!n) {
				free(ids);
				return -ENOMEM;
			}
			p->pub = n;
			p->cap_pub = ncap;
		}
		ret = -ENOENT;
		if (p->spares) {
			struct spare sp;

			if (take_spare(p->spares, rs, &spare_budget, &sp)) {
				ret = publish_in_spare(p, rs, &sp);
				if (ret == 0) {
					id = sp.id;
					res->rulesets_spared++;
				}
			}
		}
		if (ret < 0) {
			id = free_id(p);
			if (!id) {
				res->rulesets_failed++;
				note_error(res, -ENOSPC);
				continue;
			}
			ret = publish_one(p, rs, id, &res->outer_updates);
			if (ret < 0) {
				if (p->spares)
					set_state(p->spares, id, ID_FREE);
				res->rulesets_failed++;
				note_error(res, ret);
				continue;
			}
		}
		slot = &p->pub[p->n_pub];
		memset(slot, 0, sizeof(*slot));
		if (bw_compiled_ruleset_copy(&slot->rs, rs) < 0) {
			retire_id(p, id);
			free(ids);
			return -ENOMEM;
		}
		slot->id = id;
		p->n_pub++;
		ids[r] = id;
		res->rulesets_new++;
	}

	/* 2. Point each cgroup at its rule set: one update, atomic per cgroup. */
	for (size_t a = 0; a < plan->n_assign; a++) {
		const struct bw_assignment *as = &plan->assign[a];
		struct bw_workload want = { .ruleset_id = ids[as->ruleset] }, have;

		if (!want.ruleset_id)
			continue; /* its rule set could not be published: keep the old */
		if (bpf_map_lookup_elem(p->fds.workloads, &as->cgroup_id, &have) == 0 &&
		    !memcmp(&have, &want, sizeof(want)))
			continue;
		if (bpf_map_update_elem(p->fds.workloads, &as->cgroup_id, &want, BPF_ANY) < 0) {
			res->workloads_failed++;
			note_error(res, -errno);
			continue;
		}
		res->workloads_updated++;
	}

	/* 3. Cgroups the walk saw that the plan no longer selects lose their
	 *    entry; ones it did not see (made since) keep what they inherited,
	 *    and ones whose rule set failed to compile keep their last good. */
	for (ret = bpf_map_get_next_key(p->fds.workloads, NULL, &key); ret == 0;
	     ret = bpf_map_get_next_key(p->fds.workloads, &key, &next), key = next) {
		bool keep = !bw_plan_saw_cgroup(plan, key);

		for (size_t a = 0; a < plan->n_assign && !keep; a++)
			keep = plan->assign[a].cgroup_id == key;
		for (size_t s = 0; s < plan->n_skipped && !keep; s++)
			keep = plan->skipped[s] == key;
		if (keep)
			continue;
		if (n_del == cap_del) {
			size_t ncap = cap_del ? cap_del * 2 : 64;
			uint64_t *n = realloc(del, ncap * sizeof(*n));

			if (!n)
				break;
			del = n;
			cap_del = ncap;
		}
		del[n_del++] = key;
	}
	for (size_t i = 0; i < n_del; i++)
		if (bpf_map_delete_elem(p->fds.workloads, &del[i]) == 0)
			res->workloads_removed++;
	free(del);

	/* 4. Rule sets the plan does not use start their grace period. */
	used = calloc(p->n_pub ? p->n_pub : 1, sizeof(*used));
	if (used) {
		for (size_t i = 0; i < p->n_pub; i++)
			for (size_t r = 0; r < plan->n_rulesets; r++)
				if (ids[r] == p->pub[i].id)
					used[i] = true;
		for (size_t i = 0; i < p->n_pub; i++) {
			if (used[i])
				p->pub[i].unused_since_ns = 0;
			else if (!p->pub[i].unused_since_ns)
				p->pub[i].unused_since_ns = now_ns ? now_ns : 1;
		}
		free(used);
	}
	free(ids);
	return res->first_error;
}

int bw_publish_retire(struct bw_publisher *p, uint64_t now_ns, uint64_t grace_ns)
{
	int waiting = 0;

	for (size_t i = 0; i < p->n_pub;) {
		struct bw_published *pb = &p->pub[i];
		struct bw_workload w;
		uint64_t key, next;
		bool referenced = false;
		int ret;

		if (!pb->unused_since_ns || now_ns < pb->unused_since_ns ||
		    now_ns - pb->unused_since_ns < grace_ns) {
			i++;
			continue;
		}
		for (ret = bpf_map_get_next_key(p->fds.workloads, NULL, &key); ret == 0 && !referenced;
		     ret = bpf_map_get_next_key(p->fds.workloads, &key, &next), key = next)
			if (bpf_map_lookup_elem(p->fds.workloads, &key, &w) == 0 && w.ruleset_id == pb->id)
				referenced = true;
		if (referenced) {
			waiting++;
			i++;
			continue;
		}
		retire_id(p, pb->id);
		bw_compiled_ruleset_clear(&pb->rs);
		p->pub[i] = p->pub[--p->n_pub];
	}
	return waiting;
}
