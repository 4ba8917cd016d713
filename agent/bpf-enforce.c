/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
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
#include "fallback.skel.h"
#include "util.h"

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

/* libbpf's own warnings, prefixed so that a reader knows whose they are;
 * held back while trying the LSM object, whose refusal the agent states
 * itself (in words, as its first line). What was held back is kept (its
 * last part: a verifier log ends with the reason) and printed when the
 * refusal is not the kernel's "no BPF-LSM here" but the verifier's. */
static bool libbpf_quiet;
static char held_log[16384];
static size_t held_len;

static int libbpf_print(enum libbpf_print_level level, const char *format, va_list args)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	if (libbpf_quiet) {
		_cleanup_free_ char *msg = NULL;
		int n = vasprintf(&msg, format, args);
		size_t len, keep;

		if (n <= 0)
			return 0;
		/* Keep the last sizeof(held_log) bytes of everything held. */
		len = (size_t)n;
		if (len >= sizeof(held_log)) {
			memcpy(held_log, msg + len - sizeof(held_log), sizeof(held_log));
			held_len = sizeof(held_log);
			return 0;
		}
		keep = held_len + len > sizeof(held_log) ? sizeof(held_log) - len : held_len;
		memmove(held_log, held_log + held_len - keep, keep);
		memcpy(held_log + keep, msg, len);
		held_len = keep + len;
		return 0;
	}
	fputs("bulwarkd: ", stderr); /* libbpf says "libbpf: " itself */
	return vfprintf(stderr, format, args);
}

/* Checks that "bpf" is in the active LSM list (mounting securityfs if it is
 * not mounted). Returns 0, or a negative errno with *why describing what is
 * missing, in words for the operator. */
static int bw_probe_bpf_lsm(char **why)
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

/* Maps made once, by the first object loaded that declares them, and handed
 * to the others: those of bulwark_maps.bpf.h, and the policy maps of
 * bulwark_policy.bpf.h (only one of the LSM and fallback objects loads). */
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

/* The policy maps of bulwark_policy.bpf.h, in whichever object has them. */
static void size_policy(struct bpf_object *obj, const struct bw_bpf_config *cfg)
{
	static const char *const per_ruleset[] = { "rulesets", "exec_tries", "file_tries", "net4_tries", "net6_tries" };

	for (size_t i = 0; i < sizeof(per_ruleset) / sizeof(per_ruleset[0]); i++)
		bpf_map__set_max_entries(bpf_object__find_map_by_name(obj, per_ruleset[i]), cfg->max_rulesets);
}

/* What the LSM and the fallback object both need before they load: the
 * policy maps sized from the configuration, the shared maps handed over. */
static int prepare_policy_object(struct bw_bpf *b, struct bpf_object *obj, const struct bw_bpf_config *cfg,
				 const char *what, char **why)
{
	int ret;

	size_policy(obj, cfg);
	if ((ret = share_maps(b->proc->obj, obj)) < 0)
		*why = fmt("cannot share maps with the %s object: %s", what, strerror(-ret));
	return ret;
}

static uint64_t rate_window_ns(const struct bw_bpf_config *cfg)
{
	return cfg->rate_window_ns ? cfg->rate_window_ns : 1000000000ULL;
}

static int load_lsm(struct bw_bpf *b, const struct bw_bpf_config *cfg, char **why)
{
	int ret;

	b->lsm = enforce_bpf__open();
	if (!b->lsm) {
		ret = -errno;
		*why = fmt("cannot open the BPF-LSM object: %s", strerror(-ret));
		return ret;
	}
	b->lsm->rodata->bw_rate_limit = cfg->rate_limit;
	b->lsm->rodata->bw_rate_window_ns = rate_window_ns(cfg);
	if ((ret = prepare_policy_object(b, b->lsm->obj, cfg, "BPF-LSM", why)) < 0)
		return ret;
	held_len = 0;
	libbpf_quiet = true;
	ret = enforce_bpf__load(b->lsm);
	libbpf_quiet = false;
	/* EACCES and EINVAL are the verifier's: a bug to report in full. */
	if ((ret == -EACCES || ret == -EINVAL) && held_len)
		fprintf(stderr, "bulwarkd: libbpf (loading the BPF-LSM programs): %.*s", (int)held_len, held_log);
	if (ret < 0) {
		*why = fmt("the kernel refused to load the BPF-LSM programs: %s%s", strerror(-ret),
			   ret == -EPERM ? " (this kernel does not allow BPF-LSM programs to load; "
					   "it may be locked down or lack BPF LSM support)" : "");
		return ret;
	}
	return 0;
}

/* libbpf finds syscall tracepoints' ids in tracefs, which not every host
 * mounts (containers, minimal systems). */
static int ensure_tracefs(char **why)
{
	if (access("/sys/kernel/tracing/events/syscalls", F_OK) == 0 ||
	    access("/sys/kernel/debug/tracing/events/syscalls", F_OK) == 0)
		return 0;
	if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL) < 0 && errno != EBUSY) {
		int ret = -errno;

		*why = fmt("tracefs is not mounted and cannot be mounted on /sys/kernel/tracing: %s", strerror(-ret));
		return ret;
	}
	if (access("/sys/kernel/tracing/events/syscalls", F_OK) < 0) {
		*why = fmt("the kernel has no syscall tracepoints (CONFIG_FTRACE_SYSCALLS)");
		return -EOPNOTSUPP;
	}
	return 0;
}

static int start_fallback(struct bw_bpf *b, const struct bw_bpf_config *cfg, char **why)
{
	_cleanup_close_ int root = -1;
	int ret;

	b->fallback = fallback_bpf__open();
	if (!b->fallback) {
		ret = -errno;
		*why = fmt("cannot open the degraded-mode object: %s", strerror(-ret));
		return ret;
	}
	b->fallback->rodata->bw_rate_limit = cfg->rate_limit;
	b->fallback->rodata->bw_rate_window_ns = rate_window_ns(cfg);
	b->fallback->rodata->bw_kill = cfg->degraded_kill;
	if ((ret = prepare_policy_object(b, b->fallback->obj, cfg, "degraded-mode", why)) < 0)
		return ret;
	if ((ret = fallback_bpf__load(b->fallback)) < 0) {
		*why = fmt("the kernel refused the degraded-mode tracepoint and cgroup programs too: %s", strerror(-ret));
		return ret;
	}
	if ((ret = ensure_tracefs(why)) < 0)
		return ret;
	if ((ret = fallback_bpf__attach(b->fallback)) < 0) {
		*why = fmt("cannot attach the degraded-mode tracepoints: %s", strerror(-ret));
		return ret;
	}
	/* The connect programs on the cgroup root reach every process; they
	 * decide only for cgroups in the workloads map. Multi-attach links
	 * leave other programs on the root alone. */
	root = open(cfg->cgroup_root ? cfg->cgroup_root : "/sys/fs/cgroup", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0) {
		ret = -errno;
		*why = fmt("cannot open the cgroup root %s: %s", cfg->cgroup_root, strerror(-ret));
		return ret;
	}
	b->connect4 = bpf_program__attach_cgroup(b->fallback->progs.bw_fallback_connect4, root);
	b->connect6 = bpf_program__attach_cgroup(b->fallback->progs.bw_fallback_connect6, root);
	if (!b->connect4 || !b->connect6) {
		ret = -errno;
		*why = fmt("cannot attach the connect programs to %s: %s", cfg->cgroup_root, strerror(-ret));
		return ret;
	}
	return 0;
}

int bw_bpf_start(struct bw_bpf *b, const struct bw_bpf_config *cfg, char **why)
{
	char *lsm_why = NULL;
	int ret;

	memset(b, 0, sizeof(*b));
	*why = NULL;
	libbpf_set_print(libbpf_print);
	b->proc = process_bpf__open();
	b->trace = cgroup_inherit_bpf__open();
	if (!b->proc || !b->trace) {
		ret = -errno;
		*why = fmt("cannot open the BPF objects: %s", strerror(errno));
		goto fail;
	}

	/* Configure: sizes come from the agent's configuration. The process
	 * table's object is loaded first and makes the shared maps. */
	size_shared(b->proc->obj, cfg);
	bpf_map__set_max_entries(b->trace->maps.kubepods, cfg->max_workloads);
	ret = process_bpf__load(b->proc);
	if (ret < 0) {
		*why = fmt("cannot load the process tracepoints: %s", strerror(-ret));
		goto fail;
	}

	/* Probe: the LSM must be active and must take our programs. Anything
	 * short of that is the degraded mode, said out loud (or refused). */
	ret = bw_probe_bpf_lsm(&lsm_why);
	if (ret == 0 && !cfg->force_degraded)
		ret = load_lsm(b, cfg, &lsm_why);
	else if (cfg->force_degraded) {
		free(lsm_why);
		lsm_why = fmt("BPF-LSM not used (--bpf-lsm=off)");
		ret = -ECANCELED;
	}
	if (ret < 0) {
		enforce_bpf__destroy(b->lsm);
		b->lsm = NULL;
		if (cfg->require_enforcing) {
			*why = lsm_why;
			lsm_why = NULL;
			goto fail;
		}
		b->degraded_reason = lsm_why;
		lsm_why = NULL;
		if ((ret = start_fallback(b, cfg, why)) < 0)
			goto fail;
	}
	b->policy = b->lsm ? b->lsm->obj : b->fallback->obj;
	if ((ret = share_maps(b->proc->obj, b->trace->obj)) < 0) {
		*why = fmt("cannot share maps between the BPF objects: %s", strerror(-ret));
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
	if (b->lsm && (ret = enforce_bpf__attach(b->lsm)) < 0) {
		*why = fmt("cannot attach the BPF-LSM programs: %s", strerror(-ret));
		goto fail;
	}
	return 0;
fail:
	free(lsm_why);
	bw_bpf_stop(b);
	return ret < 0 ? ret : -EINVAL;
}

void bw_bpf_stop(struct bw_bpf *b)
{
	bpf_link__destroy(b->connect4);
	bpf_link__destroy(b->connect6);
	cgroup_inherit_bpf__destroy(b->trace);
	process_bpf__destroy(b->proc);
	enforce_bpf__destroy(b->lsm);
	fallback_bpf__destroy(b->fallback);
	free(b->degraded_reason);
	memset(b, 0, sizeof(*b));
}

static int policy_fd(const struct bw_bpf *b, const char *name)
{
	return bpf_map__fd(bpf_object__find_map_by_name(b->policy, name));
}

void bw_bpf_map_fds(const struct bw_bpf *b, struct bw_map_fds *fds)
{
	fds->workloads = bpf_map__fd(b->proc->maps.workloads);
	fds->rulesets = policy_fd(b, "rulesets");
	fds->exec_tries = policy_fd(b, "exec_tries");
	fds->file_tries = policy_fd(b, "file_tries");
	fds->net4_tries = policy_fd(b, "net4_tries");
	fds->net6_tries = policy_fd(b, "net6_tries");
	fds->max_rulesets = bpf_map__max_entries(bpf_object__find_map_by_name(b->policy, "rulesets"));

	const struct btf *btf = bpf_object__btf(b->policy);

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
	return bpf_map__fd(b->proc->maps.events);
}

int bw_bpf_ratelimit_fd(const struct bw_bpf *b)
{
	return policy_fd(b, "ratelimit");
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
	return bpf_map__fd(b->proc->maps.stats);
}

int bw_bpf_read_stat(const struct bw_bpf *b, uint32_t key, uint64_t *out)
{
	int ncpu = libbpf_num_possible_cpus(), ret = 0;
	uint64_t *vals;

	*out = 0;
	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(bw_bpf_stats_fd(b), &key, vals) < 0)
		ret = -errno;
	for (int c = 0; ret == 0 && c < ncpu; c++)
		*out += vals[c];
	free(vals);
	return ret;
}

int bw_bpf_read_stats(const struct bw_bpf *b, uint64_t *out)
{
	int ncpu = libbpf_num_possible_cpus();

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	/* A counter that cannot be read counts as 0; only memory stops it. */
	for (uint32_t k = 0; k < BW_STAT_COUNT; k++)
		if (bw_bpf_read_stat(b, k, &out[k]) == -ENOMEM)
			return -ENOMEM;
	return 0;
}
