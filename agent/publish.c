/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "publish.h"

void bw_publisher_init(struct bw_publisher *p, const struct bw_map_fds *fds)
{
	memset(p, 0, sizeof(*p));
	p->fds = *fds;
}

void bw_publisher_clear(struct bw_publisher *p)
{
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

static uint32_t free_id(const struct bw_publisher *p)
{
	/* Id 0 is never used, so a zeroed map value never names a rule set. */
	for (uint32_t id = 1; id < p->fds.max_rulesets; id++)
		if (!bw_publisher_find(p, id))
			return id;
	return 0;
}

/* Creates one inner trie holding n entries of entry_size bytes, the key first. */
static int make_trie(const struct bw_map_fds *fds, const char *name, uint32_t key_type, uint32_t value_type,
		     const void *entries, size_t n, size_t key_size, size_t value_size, size_t entry_size)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	int fd, ret;

	if (fds->btf_fd > 0) {
		opts.btf_fd = (uint32_t)fds->btf_fd;
		opts.btf_key_type_id = key_type;
		opts.btf_value_type_id = value_type;
	}

	fd = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, name, key_size, value_size, (uint32_t)n, &opts);
	if (fd < 0) {
		ret = -errno;
		fprintf(stderr, "bulwarkd: cannot create a %s trie of %zu entries: %s\n", name, n, strerror(-ret));
		return ret;
	}
	for (size_t i = 0; i < n; i++) {
		const char *e = (const char *)entries + i * entry_size;

		/* The value is the entry's last member, but not always right after
		 * the key: struct bw_path_entry has 4 bytes of padding between them. */
		if (bpf_map_update_elem(fd, e, e + entry_size - value_size, BPF_NOEXIST) < 0) {
			ret = -errno;
			fprintf(stderr, "bulwarkd: cannot fill a %s trie (entry %zu of %zu): %s\n", name, i, n,
				strerror(-ret));
			close(fd);
			return ret;
		}
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
	bpf_map_delete_elem(fds->exec_tries, &id);
	bpf_map_delete_elem(fds->file_tries, &id);
	bpf_map_delete_elem(fds->net4_tries, &id);
	bpf_map_delete_elem(fds->net6_tries, &id);
}

static int publish_one(struct bw_publisher *p, const struct bw_compiled_ruleset *rs, uint32_t id)
{
	const struct bw_map_fds *f = &p->fds;
	struct bw_ruleset cfg = rs->config;
	int fd, ret = 0;

	if (rs->n_exec) {
		fd = make_trie(f, "bw_exec", f->path_key_type, f->path_value_type, rs->exec, rs->n_exec, sizeof(rs->exec->key),
			       sizeof(rs->exec->value), sizeof(*rs->exec));
		if (fd < 0 || (ret = set_inner(f->exec_tries, id, fd)) < 0)
			goto fail;
	}
	if (rs->n_file) {
		fd = make_trie(f, "bw_file", f->path_key_type, f->path_value_type, rs->file, rs->n_file, sizeof(rs->file->key),
			       sizeof(rs->file->value), sizeof(*rs->file));
		if (fd < 0 || (ret = set_inner(f->file_tries, id, fd)) < 0)
			goto fail;
	}
	if (rs->n_net4) {
		fd = make_trie(f, "bw_net4", f->net4_key_type, f->net_value_type, rs->net4, rs->n_net4, sizeof(rs->net4->key),
			       sizeof(rs->net4->value), sizeof(*rs->net4));
		if (fd < 0 || (ret = set_inner(f->net4_tries, id, fd)) < 0)
			goto fail;
	}
	if (rs->n_net6) {
		fd = make_trie(f, "bw_net6", f->net6_key_type, f->net_value_type, rs->net6, rs->n_net6, sizeof(rs->net6->key),
			       sizeof(rs->net6->value), sizeof(*rs->net6));
		if (fd < 0 || (ret = set_inner(f->net6_tries, id, fd)) < 0)
			goto fail;
	}
	/* The config goes last: a non-zero generation is what makes the id
	 * usable, and no workload points at it yet anyway. */
	cfg.generation = p->generation;
	if (bpf_map_update_elem(f->rulesets, &id, &cfg, BPF_ANY) < 0) {
		ret = -errno;
		goto fail;
	}
	return 0;
fail:
	if (!ret)
		ret = fd;
	unpublish(f, id);
	return ret;
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
	size_t n_del = 0, cap_del = 0;
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
		id = free_id(p);
		if (!id) {
			res->rulesets_failed++;
			note_error(res, -ENOSPC);
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
		ret = publish_one(p, rs, id);
		if (ret < 0) {
			res->rulesets_failed++;
			note_error(res, ret);
			continue;
		}
		slot = &p->pub[p->n_pub];
		memset(slot, 0, sizeof(*slot));
		if (bw_compiled_ruleset_copy(&slot->rs, rs) < 0) {
			unpublish(&p->fds, id);
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
		unpublish(&p->fds, pb->id);
		bw_compiled_ruleset_clear(&pb->rs);
		p->pub[i] = p->pub[--p->n_pub];
	}
	return waiting;
}
