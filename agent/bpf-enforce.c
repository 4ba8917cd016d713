/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "bpf-enforce.h"
#include "enforce.skel.h"
#include "cgroup_inherit.skel.h"
#include "process.skel.h"

#define LSM_LIST "/sys/kernel/security/lsm"

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	char *s;

	va_start(ap, f);
	if (vasprintf(&s, f, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

static int read_lsm_list(char *buf, size_t size)
{
	FILE *f = fopen(LSM_LIST, "re");
	size_t n;

	if (!f)
		return -errno;
	n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

int bw_probe_bpf_lsm(char **why)
{
	char list[512], *save = NULL, *tok;
	int ret;

	*why = NULL;
	ret = read_lsm_list(list, sizeof(list));
	if (ret == -ENOENT) {
		/* securityfs is not mounted everywhere (containers, minimal
		 * hosts); mount it rather than guess. */
		if (mount("securityfs", "/sys/kernel/security", "securityfs", 0, NULL) < 0 && errno != EBUSY) {
			*why = fmt("cannot read %s and cannot mount securityfs: %s", LSM_LIST, strerror(errno));
			return -errno;
		}
		ret = read_lsm_list(list, sizeof(list));
	}
	if (ret < 0) {
		*why = fmt("cannot read %s: %s", LSM_LIST, strerror(-ret));
		return ret;
	}
	char copy[sizeof(list)];

	memcpy(copy, list, sizeof(copy));
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (!strcmp(tok, "bpf"))
			return 0;
	*why = fmt("the BPF LSM is not active (active LSMs: %s); it needs CONFIG_BPF_LSM=y and "
		   "\"bpf\" in the kernel's lsm= boot parameter, e.g. lsm=%s,bpf", list, list);
	return -EOPNOTSUPP;
}

/* The maps every object declares (bulwark_maps.bpf.h): made once, by the
 * first object loaded, and handed to the others. */
static int share_maps(struct bpf_object *from, struct bpf_object *to)
{
	static const char *const shared[] = { "workloads", "stats", "events", "processes" };

	for (size_t i = 0; i < sizeof(shared) / sizeof(shared[0]); i++) {
		struct bpf_map *src = bpf_object__find_map_by_name(from, shared[i]);
		struct bpf_map *dst = bpf_object__find_map_by_name(to, shared[i]);
		int ret;

		if (!src || !dst)
			continue;
		if ((ret = bpf_map__reuse_fd(dst, bpf_map__fd(src))) < 0)
			return ret;
	}
	return 0;
}

static void size_shared(struct bpf_object *obj, const struct bw_bpf_config *cfg)
{
	bpf_map__set_max_entries(bpf_object__find_map_by_name(obj, "workloads"), cfg->max_workloads);
	bpf_map__set_max_entries(bpf_object__find_map_by_name(obj, "events"), cfg->ringbuf_bytes);
	bpf_map__set_max_entries(bpf_object__find_map_by_name(obj, "processes"),
				 cfg->max_processes ? cfg->max_processes : 32768);
}

int bw_bpf_start(struct bw_bpf *b, const struct bw_bpf_config *cfg, char **why)
{
	int ret;

	memset(b, 0, sizeof(*b));
	*why = NULL;
	b->proc = process_bpf__open();
	b->lsm = enforce_bpf__open();
	b->trace = cgroup_inherit_bpf__open();
	if (!b->proc || !b->lsm || !b->trace) {
		ret = -errno;
		*why = fmt("cannot open the BPF objects: %s", strerror(errno));
		goto fail;
	}

	/* Configure: sizes come from the agent's configuration. The process
	 * table's object is loaded first and makes the shared maps. */
	size_shared(b->proc->obj, cfg);
	bpf_map__set_max_entries(b->trace->maps.kubepods, cfg->max_workloads);
	bpf_map__set_max_entries(b->lsm->maps.rulesets, cfg->max_rulesets);
	bpf_map__set_max_entries(b->lsm->maps.exec_tries, cfg->max_rulesets);
	bpf_map__set_max_entries(b->lsm->maps.file_tries, cfg->max_rulesets);
	bpf_map__set_max_entries(b->lsm->maps.net4_tries, cfg->max_rulesets);
	bpf_map__set_max_entries(b->lsm->maps.net6_tries, cfg->max_rulesets);
	b->lsm->rodata->bw_rate_limit = cfg->rate_limit;
	b->lsm->rodata->bw_rate_window_ns = cfg->rate_window_ns ? cfg->rate_window_ns : 1000000000ULL;

	ret = process_bpf__load(b->proc);
	if (ret < 0) {
		*why = fmt("cannot load the process tracepoints: %s", strerror(-ret));
		goto fail;
	}
	if ((ret = share_maps(b->proc->obj, b->lsm->obj)) < 0 || (ret = share_maps(b->proc->obj, b->trace->obj)) < 0) {
		*why = fmt("cannot share maps between the BPF objects: %s", strerror(-ret));
		goto fail;
	}
	ret = enforce_bpf__load(b->lsm);
	if (ret < 0) {
		*why = fmt("the kernel refused to load the BPF-LSM programs: %s%s", strerror(-ret),
			   ret == -EPERM ? " (this kernel does not allow BPF-LSM programs to load; "
					   "it may be locked down or lack BPF LSM support)" : "");
		goto fail;
	}
	ret = cgroup_inherit_bpf__load(b->trace);
	if (ret < 0) {
		*why = fmt("cannot load the cgroup tracepoints: %s", strerror(-ret));
		goto fail;
	}
	/* Tracepoints first: processes are tracked and cgroups made from now
	 * on inherit their parent's rules before the hooks start deciding. */
	ret = process_bpf__attach(b->proc);
	if (ret < 0) {
		*why = fmt("cannot attach the process tracepoints: %s", strerror(-ret));
		goto fail;
	}
	ret = cgroup_inherit_bpf__attach(b->trace);
	if (ret < 0) {
		*why = fmt("cannot attach the cgroup tracepoints: %s", strerror(-ret));
		goto fail;
	}
	ret = enforce_bpf__attach(b->lsm);
	if (ret < 0) {
		*why = fmt("cannot attach the BPF-LSM programs: %s", strerror(-ret));
		goto fail;
	}
	return 0;
fail:
	bw_bpf_stop(b);
	return ret < 0 ? ret : -EINVAL;
}

void bw_bpf_stop(struct bw_bpf *b)
{
	cgroup_inherit_bpf__destroy(b->trace);
	process_bpf__destroy(b->proc);
	enforce_bpf__destroy(b->lsm);
	b->trace = NULL;
	b->lsm = NULL;
}

void bw_bpf_map_fds(const struct bw_bpf *b, struct bw_map_fds *fds)
{
	fds->workloads = bpf_map__fd(b->lsm->maps.workloads);
	fds->rulesets = bpf_map__fd(b->lsm->maps.rulesets);
	fds->exec_tries = bpf_map__fd(b->lsm->maps.exec_tries);
	fds->file_tries = bpf_map__fd(b->lsm->maps.file_tries);
	fds->net4_tries = bpf_map__fd(b->lsm->maps.net4_tries);
	fds->net6_tries = bpf_map__fd(b->lsm->maps.net6_tries);
	fds->max_rulesets = bpf_map__max_entries(b->lsm->maps.rulesets);

	const struct btf *btf = bpf_object__btf(b->lsm->obj);

	fds->btf_fd = btf ? btf__fd(btf) : 0;
	if (fds->btf_fd > 0) {
		fds->path_key_type = (uint32_t)btf__find_by_name_kind(btf, "bw_path_key", BTF_KIND_STRUCT);
		fds->path_value_type = (uint32_t)btf__find_by_name_kind(btf, "bw_path_value", BTF_KIND_STRUCT);
		fds->net4_key_type = (uint32_t)btf__find_by_name_kind(btf, "bw_net4_key", BTF_KIND_STRUCT);
		fds->net6_key_type = (uint32_t)btf__find_by_name_kind(btf, "bw_net6_key", BTF_KIND_STRUCT);
		fds->net_value_type = (uint32_t)btf__find_by_name_kind(btf, "bw_net_value", BTF_KIND_STRUCT);
	}
}

int bw_bpf_events_fd(const struct bw_bpf *b)
{
	return bpf_map__fd(b->lsm->maps.events);
}

int bw_bpf_ratelimit_fd(const struct bw_bpf *b)
{
	return bpf_map__fd(b->lsm->maps.ratelimit);
}

int bw_bpf_processes_fd(const struct bw_bpf *b)
{
	return bpf_map__fd(b->proc->maps.processes);
}

int bw_bpf_kubepods_fd(const struct bw_bpf *b)
{
	return bpf_map__fd(b->trace->maps.kubepods);
}

int bw_bpf_stats_fd(const struct bw_bpf *b)
{
	return bpf_map__fd(b->lsm->maps.stats);
}

int bw_bpf_read_stats(const struct bw_bpf *b, uint64_t *out)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *vals;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (uint32_t k = 0; k < BW_STAT_COUNT; k++) {
		out[k] = 0;
		if (bpf_map_lookup_elem(bw_bpf_stats_fd(b), &k, vals) < 0)
			continue;
		for (int c = 0; c < ncpu; c++)
			out[k] += vals[c];
	}
	free(vals);
	return 0;
}
