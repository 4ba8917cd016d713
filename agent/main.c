/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bulwarkd: loads the BPF-LSM programs, compiles the policies of a directory
 * (and the inventory of workloads) into the kernel maps, keeps them in step
 * with the directory, and writes every decision worth seeing as an event.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <bpf/libbpf.h>

#include "audit-record.h"
#include "bpf-enforce.h"
#include "compile.h"
#include "inventory.h"
#include "policy-store.h"
#include "publish.h"

#define RETIRE_GRACE_NS (1000ULL * 1000 * 1000)
#define DEBOUNCE_NS (20ULL * 1000 * 1000)

struct options {
	const char *policy_dir;
	const char *inventory;
	const char *cgroup_root;
	const char *root;
	const char *status_file;
	bool audit_only;
	bool text_output;
	uint32_t max_workloads, max_rulesets, ringbuf_bytes;
};

struct agent {
	struct options opt;
	struct bw_bpf bpf;
	struct bw_publisher pub;
	struct bw_rule_table rules;
	struct bw_policy_store store;
	struct bw_inventory inv;
	struct bw_plan plan; /* the last applied plan, for event enrichment */
	struct ring_buffer *rb;
	int epfd, inofd, sigfd, tickfd, debouncefd;
	uint64_t events_written, events_malformed, stdout_errors;
	unsigned applies;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bulwarkd --policy-dir DIR [options]\n"
		"\n"
		"Enforces Bulwark policies with BPF-LSM programs (exec, file open, connect).\n"
		"\n"
		"  --policy-dir DIR      policy documents (*.yaml, *.yml); watched for changes\n"
		"  --inventory FILE      workloads (cgroup, namespace, pod, labels) that policies select\n"
		"  --audit-only          run every policy in Audit mode (allow, report what would be blocked)\n"
		"  --output json|text    event format on stdout (default json)\n"
		"  --cgroup-root DIR     cgroup2 mount (default /sys/fs/cgroup)\n"
		"  --root DIR            file system in which rule paths' links are resolved (default /)\n"
		"  --status-file FILE    written after every policy change: generation, policies, errors\n"
		"  --max-workloads N     size of the cgroup map (default 65536)\n"
		"  --max-rulesets N      distinct rule sets at once (default 4096)\n"
		"  --ringbuf-bytes N     event ring buffer size, a power of 2 (default 4194304)\n"
		"  -h, --help\n"
		"\n"
		"Signals: SIGHUP reloads policies and inventory, SIGUSR1 prints counters,\n"
		"SIGTERM/SIGINT detach and exit.\n");
}

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || !*s || v == 0 || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct options *o)
{
	enum { O_POLICY = 256, O_INV, O_AUDIT, O_OUTPUT, O_CGROOT, O_ROOT, O_STATUS, O_MAXW, O_MAXR, O_RB };
	static const struct option longopts[] = {
		{ "policy-dir", required_argument, NULL, O_POLICY },
		{ "inventory", required_argument, NULL, O_INV },
		{ "audit-only", no_argument, NULL, O_AUDIT },
		{ "output", required_argument, NULL, O_OUTPUT },
		{ "cgroup-root", required_argument, NULL, O_CGROOT },
		{ "root", required_argument, NULL, O_ROOT },
		{ "status-file", required_argument, NULL, O_STATUS },
		{ "max-workloads", required_argument, NULL, O_MAXW },
		{ "max-rulesets", required_argument, NULL, O_MAXR },
		{ "ringbuf-bytes", required_argument, NULL, O_RB },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	*o = (struct options){
		.cgroup_root = "/sys/fs/cgroup",
		.root = "/",
		.max_workloads = 65536,
		.max_rulesets = 4096,
		.ringbuf_bytes = 4u << 20,
	};
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_POLICY: o->policy_dir = optarg; break;
		case O_INV: o->inventory = optarg; break;
		case O_AUDIT: o->audit_only = true; break;
		case O_OUTPUT:
			if (strcmp(optarg, "json") && strcmp(optarg, "text")) {
				fprintf(stderr, "bulwarkd: --output: \"%s\" is not json or text\n", optarg);
				return -EINVAL;
			}
			o->text_output = !strcmp(optarg, "text");
			break;
		case O_CGROOT: o->cgroup_root = optarg; break;
		case O_ROOT: o->root = optarg; break;
		case O_STATUS: o->status_file = optarg; break;
		case O_MAXW:
		case O_MAXR:
		case O_RB: {
			uint32_t *dst = c == O_MAXW ? &o->max_workloads : c == O_MAXR ? &o->max_rulesets : &o->ringbuf_bytes;

			if (parse_u32(optarg, dst) < 0 ||
			    (c == O_RB && (*dst & (*dst - 1) || *dst < 4096))) {
				fprintf(stderr, "bulwarkd: %s: \"%s\" is not a valid size\n", argv[optind - 1], optarg);
				return -EINVAL;
			}
			break;
		}
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bulwarkd: unexpected argument \"%s\"\n", argv[optind]);
		return -EINVAL;
	}
	if (!o->policy_dir) {
		fprintf(stderr, "bulwarkd: --policy-dir is required\n");
		usage(stderr);
		return -EINVAL;
	}
	/* Rule paths are resolved under root and compared with what realpath
	 * gives, so root itself must be canonical. */
	static char root[PATH_MAX];
	if (!realpath(o->root, root)) {
		fprintf(stderr, "bulwarkd: --root %s: %m\n", o->root);
		return -EINVAL;
	}
	o->root = root;
	return 0;
}

static int assign_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct bw_assignment *)a)->cgroup_id, y = ((const struct bw_assignment *)b)->cgroup_id;

	return x < y ? -1 : x > y;
}

static const struct bw_assignment *cgroup_lookup(uint64_t id, void *userdata)
{
	const struct agent *a = userdata;
	struct bw_assignment key = { .cgroup_id = id };

	return a->plan.n_assign ? bsearch(&key, a->plan.assign, a->plan.n_assign, sizeof(key), assign_cmp) : NULL;
}

static void write_out(struct agent *a, const char *s)
{
	if (!s)
		return;
	if (fputs(s, stdout) == EOF || fflush(stdout) == EOF)
		a->stdout_errors++;
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct agent *a = ctx;
	struct bw_record_context rc = {
		.pub = &a->pub,
		.rules = &a->rules,
		.cgroup_lookup = cgroup_lookup,
		.userdata = a,
		.boot_to_realtime_ns = bw_boot_to_realtime_offset(),
	};
	struct bw_record r;
	char *line;

	if (bw_record_decode(data, size, &rc, &r) < 0) {
		a->events_malformed++;
		return 0;
	}
	if (a->opt.text_output) {
		char *s = bw_record_summary(&r);

		if (s && asprintf(&line, "%s\n", s) < 0)
			line = NULL;
		free(s);
	} else {
		line = bw_record_to_json(&r);
	}
	write_out(a, line);
	free(line);
	a->events_written++;
	return 0;
}

static void log_json_kv(struct agent *a, const char *kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void log_json_kv(struct agent *a, const char *kind, const char *fmt, ...)
{
	char *body = NULL, *line = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&body, fmt, ap) < 0)
		body = NULL;
	va_end(ap);
	if (body && asprintf(&line, "{\"agent\":\"%s\",%s}\n", kind, body) >= 0)
		write_out(a, line);
	free(body);
	free(line);
}

static void print_stats(struct agent *a)
{
	uint64_t s[BW_STAT_COUNT] = { 0 };

	bw_bpf_read_stats(&a->bpf, s);
	log_json_kv(a, "stats",
		    "\"checks\":%llu,\"blocked\":%llu,\"audited\":%llu,\"events_dropped\":%llu,"
		    "\"path_unresolved\":%llu,\"path_long\":%llu,\"ruleset_missing\":%llu,"
		    "\"cgroups_inherited\":%llu,\"workloads_full\":%llu,\"events_written\":%llu,"
		    "\"events_malformed\":%llu,\"stdout_errors\":%llu",
		    (unsigned long long)s[BW_STAT_CHECKS], (unsigned long long)s[BW_STAT_BLOCKED],
		    (unsigned long long)s[BW_STAT_AUDITED], (unsigned long long)s[BW_STAT_EVENTS_DROPPED],
		    (unsigned long long)s[BW_STAT_PATH_UNRESOLVED], (unsigned long long)s[BW_STAT_PATH_LONG],
		    (unsigned long long)s[BW_STAT_RULESET_MISSING], (unsigned long long)s[BW_STAT_CGROUP_INHERITED],
		    (unsigned long long)s[BW_STAT_WORKLOADS_FULL], (unsigned long long)a->events_written,
		    (unsigned long long)a->events_malformed, (unsigned long long)a->stdout_errors);
}

static uint64_t self_cgroup_id(const char *cgroup_root)
{
	char line[PATH_MAX], path[PATH_MAX * 2];
	struct stat st;
	FILE *f = fopen("/proc/self/cgroup", "re");
	uint64_t id = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = '\0';
		snprintf(path, sizeof(path), "%s%s", cgroup_root, line + 3);
		if (stat(path, &st) == 0)
			id = st.st_ino;
	}
	fclose(f);
	return id;
}

static void write_status(struct agent *a, const struct bw_publish_result *res)
{
	char tmp[PATH_MAX];
	FILE *f;

	if (!a->opt.status_file)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", a->opt.status_file);
	f = fopen(tmp, "we");
	if (!f) {
		fprintf(stderr, "bulwarkd: cannot write %s: %m\n", tmp);
		return;
	}
	fprintf(f, "generation %u\n", a->applies);
	for (size_t i = 0; i < a->store.current.n; i++) {
		char *id = bw_policy_identity(a->store.current.items[i]);

		fprintf(f, "policy %s (%s)\n", id ? id : "?", a->store.current.items[i]->file);
		free(id);
	}
	for (size_t i = 0; i < a->store.rejected.n; i++) {
		char *m = bw_diag_format(&a->store.rejected.items[i]);

		fprintf(f, "rejected %s\n", m ? m : "?");
		free(m);
	}
	for (size_t i = 0; i < a->plan.n_errors; i++)
		fprintf(f, "error %s: %s\n", a->plan.errors[i].workload, a->plan.errors[i].message);
	fprintf(f, "workloads %zu\nrulesets %zu\nfailed %zu\n", a->plan.n_assign, a->plan.n_rulesets,
		res->workloads_failed + res->rulesets_failed);
	if (fclose(f) == 0 && rename(tmp, a->opt.status_file) < 0)
		fprintf(stderr, "bulwarkd: cannot rename %s: %m\n", tmp);
}

/* Reloads what changed and brings the kernel in step. A policy that fails to
 * parse keeps its last good version; a plan that cannot be built keeps the
 * last applied state. */
static int apply(struct agent *a, bool reload_policies, bool reload_inventory)
{
	struct bw_plan_options po = {
		.compile = { .root = a->opt.root, .audit_only = a->opt.audit_only },
		.cgroup_root = a->opt.cgroup_root,
		.exempt_cgroup = self_cgroup_id(a->opt.cgroup_root),
	};
	struct bw_publish_result res;
	struct bw_plan plan;
	int ret;

	if (reload_inventory && a->opt.inventory) {
		char *err = NULL;

		ret = bw_inventory_load(a->opt.inventory, &a->inv, &err);
		if (ret < 0)
			fprintf(stderr, "bulwarkd: inventory rejected, keeping the last good one: %s\n",
				err ? err : strerror(-ret));
		free(err);
	}
	if (reload_policies) {
		ret = bw_policy_store_reload(&a->store, a->opt.policy_dir);
		if (ret < 0)
			fprintf(stderr, "bulwarkd: cannot read %s: %s; keeping the policies in force\n",
				a->opt.policy_dir, strerror(-ret));
		for (size_t i = 0; i < a->store.rejected.n; i++) {
			char *m = bw_diag_format(&a->store.rejected.items[i]);

			fprintf(stderr, "bulwarkd: policy rejected: %s\n", m ? m : "?");
			free(m);
		}
	}

	ret = bw_plan_build(&a->store.current, &a->inv, &po, &a->rules, &plan);
	if (ret < 0) {
		fprintf(stderr, "bulwarkd: cannot compile policies: %s; keeping the state in force\n",
			strerror(-ret));
		return ret;
	}
	for (size_t i = 0; i < plan.n_errors; i++)
		fprintf(stderr, "bulwarkd: workload %s keeps its previous rules: %s\n", plan.errors[i].workload,
			plan.errors[i].message);
	ret = bw_publish_plan(&a->pub, &plan, now_ns(), &res);
	if (ret < 0)
		fprintf(stderr, "bulwarkd: some rules could not be applied (%s): %zu rule sets, %zu workloads kept "
			"their previous state\n", strerror(-ret), res.rulesets_failed, res.workloads_failed);
	qsort(plan.assign, plan.n_assign, sizeof(*plan.assign), assign_cmp);
	bw_plan_clear(&a->plan);
	a->plan = plan;
	a->applies++;
	log_json_kv(a, "applied",
		    "\"generation\":%u,\"policies\":%zu,\"rejected\":%zu,\"workloads\":%zu,\"rulesets\":%zu,"
		    "\"rulesets_new\":%zu,\"workloads_updated\":%zu,\"workloads_removed\":%zu,\"failed\":%zu",
		    a->applies, a->store.current.n, a->store.rejected.n, plan.n_assign, plan.n_rulesets,
		    res.rulesets_new, res.workloads_updated, res.workloads_removed,
		    res.workloads_failed + res.rulesets_failed + plan.n_errors);
	write_status(a, &res);
	return 0;
}

static int arm_timer(int fd, uint64_t ns, uint64_t interval_ns)
{
	struct itimerspec its = {
		.it_value = { (time_t)(ns / 1000000000ULL), (long)(ns % 1000000000ULL) },
		.it_interval = { (time_t)(interval_ns / 1000000000ULL), (long)(interval_ns % 1000000000ULL) },
	};

	return timerfd_settime(fd, 0, &its, NULL);
}

static int add_watch(struct agent *a)
{
	const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | IN_ATTRIB;

	if (inotify_add_watch(a->inofd, a->opt.policy_dir, mask | IN_ONLYDIR) < 0) {
		fprintf(stderr, "bulwarkd: cannot watch %s: %m\n", a->opt.policy_dir);
		return -errno;
	}
	if (a->opt.inventory) {
		char dir[PATH_MAX], *slash;

		snprintf(dir, sizeof(dir), "%s", a->opt.inventory);
		slash = strrchr(dir, '/');
		if (slash)
			*(slash == dir ? slash + 1 : slash) = '\0';
		else
			snprintf(dir, sizeof(dir), ".");
		if (inotify_add_watch(a->inofd, dir, mask | IN_ONLYDIR) < 0)
			fprintf(stderr, "bulwarkd: cannot watch %s, inventory changes need SIGHUP: %m\n", dir);
	}
	return 0;
}

static int epoll_add(int ep, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

enum { TAG_RB = 1, TAG_INO, TAG_SIG, TAG_TICK, TAG_DEBOUNCE };

static int run(struct agent *a)
{
	bool pending = false;

	for (;;) {
		struct epoll_event evs[8];
		int n = epoll_wait(a->epfd, evs, 8, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			switch (evs[i].data.u64) {
			case TAG_RB:
				ring_buffer__consume(a->rb);
				break;
			case TAG_INO: {
				char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

				while (read(a->inofd, buf, sizeof(buf)) > 0)
					;
				/* Editors save in several steps: apply once the
				 * directory has been quiet for a moment. */
				arm_timer(a->debouncefd, DEBOUNCE_NS, 0);
				pending = true;
				break;
			}
			case TAG_DEBOUNCE: {
				uint64_t x;

				if (read(a->debouncefd, &x, sizeof(x)) > 0 && pending) {
					pending = false;
					apply(a, true, true);
				}
				break;
			}
			case TAG_TICK: {
				uint64_t x;
				int waiting;

				if (read(a->tickfd, &x, sizeof(x)) <= 0)
					break;
				waiting = bw_publish_retire(&a->pub, now_ns(), RETIRE_GRACE_NS);
				/* A cgroup made during the last walk still points at a
				 * retiring rule set: walk again so it gets the new one. */
				if (waiting > 0)
					apply(a, false, false);
				break;
			}
			case TAG_SIG: {
				struct signalfd_siginfo si;

				if (read(a->sigfd, &si, sizeof(si)) != sizeof(si))
					break;
				if (si.ssi_signo == SIGHUP) {
					apply(a, true, true);
				} else if (si.ssi_signo == SIGUSR1) {
					print_stats(a);
				} else {
					ring_buffer__consume(a->rb);
					return 0;
				}
				break;
			}
			}
		}
	}
}

int main(int argc, char **argv)
{
	struct bw_bpf_config cfg;
	struct agent a = { .epfd = -1, .inofd = -1, .sigfd = -1, .tickfd = -1, .debouncefd = -1 };
	struct bw_map_fds fds;
	sigset_t mask;
	char *why = NULL;
	int ret;

	if (parse_args(argc, argv, &a.opt) < 0)
		return 2;
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);

	ret = bw_probe_bpf_lsm(&why);
	if (ret < 0) {
		fprintf(stderr, "bulwarkd: cannot enforce: %s\n", why ? why : strerror(-ret));
		free(why);
		return 1;
	}
	cfg = (struct bw_bpf_config){ a.opt.max_workloads, a.opt.max_rulesets, a.opt.ringbuf_bytes };
	ret = bw_bpf_start(&a.bpf, &cfg, &why);
	if (ret < 0) {
		fprintf(stderr, "bulwarkd: cannot enforce: %s\n", why ? why : strerror(-ret));
		free(why);
		return 1;
	}
	bw_bpf_map_fds(&a.bpf, &fds);
	bw_publisher_init(&a.pub, &fds);

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	a.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	a.inofd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	a.tickfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	a.debouncefd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	a.epfd = epoll_create1(EPOLL_CLOEXEC);
	a.rb = ring_buffer__new(bw_bpf_events_fd(&a.bpf), on_event, &a, NULL);
	if (a.sigfd < 0 || a.inofd < 0 || a.tickfd < 0 || a.debouncefd < 0 || a.epfd < 0 || !a.rb) {
		fprintf(stderr, "bulwarkd: cannot set up the event loop: %m\n");
		ret = -errno;
		goto out;
	}
	if ((ret = add_watch(&a)) < 0)
		goto out;
	if (epoll_add(a.epfd, ring_buffer__epoll_fd(a.rb), TAG_RB) < 0 ||
	    epoll_add(a.epfd, a.inofd, TAG_INO) < 0 || epoll_add(a.epfd, a.sigfd, TAG_SIG) < 0 ||
	    epoll_add(a.epfd, a.tickfd, TAG_TICK) < 0 || epoll_add(a.epfd, a.debouncefd, TAG_DEBOUNCE) < 0 ||
	    arm_timer(a.tickfd, 1000000000ULL, 1000000000ULL) < 0) {
		ret = -errno;
		fprintf(stderr, "bulwarkd: cannot set up the event loop: %m\n");
		goto out;
	}
	if (a.opt.inventory) {
		char *err = NULL;

		ret = bw_inventory_load(a.opt.inventory, &a.inv, &err);
		if (ret < 0) {
			fprintf(stderr, "bulwarkd: %s\n", err ? err : strerror(-ret));
			free(err);
			goto out;
		}
	}
	log_json_kv(&a, "started", "\"state\":\"enforcing\",\"pid\":%d,\"audit_only\":%s", getpid(),
		    a.opt.audit_only ? "true" : "false");
	apply(&a, true, false);
	ret = run(&a);
	print_stats(&a);
out:
	ring_buffer__free(a.rb);
	bw_plan_clear(&a.plan);
	bw_publisher_clear(&a.pub);
	bw_bpf_stop(&a.bpf);
	bw_policy_store_clear(&a.store);
	bw_inventory_clear(&a.inv);
	bw_rule_table_clear(&a.rules);
	for (int *fd = &a.epfd; fd <= &a.debouncefd; fd++)
		if (*fd >= 0)
			close(*fd);
	return ret < 0 ? 1 : 0;
}
