// SPDX-License-Identifier: Apache-2.0
/*
 * bulwark-bench: the measuring half of bench/ (bench/guest/guest-test.sh drives
 * it inside the guest). Every command prints "key value" lines on stdout.
 *
 *   bulwark-bench [--cgroup DIR] micro open|exec|spawn|connect ITERATIONS [FILE]
 *       ns per operation: open+close of FILE (allowed), fork+exec of
 *       /bin/true and wait, the same with posix_spawn (vfork),
 *       socket+connect to a listener on 127.0.0.1 (with its accept and
 *       closes). Prints "ns_per_op N".
 *   bulwark-bench --cgroup DIR lsm open|exec|spawn|connect ITERATIONS [FILE]
 *       the same operation with the LSM layer timed (bench/lsm_time.bpf.c:
 *       fentry/fexit on the security_*() functions, calls from DIR only):
 *       "hook NAME calls N ns_per_call T" for each one the operation called.
 *       Needs fentry (the guest kernel; the host refuses it).
 *   bulwark-bench floor
 *       attaches empty BPF-LSM programs to exec, file_open and connect
 *       (bench/floor.bpf.c), prints "attached", holds them until SIGTERM.
 *   bulwark-bench [--cgroup DIR] load FILE SECONDS
 *       opens and closes FILE as fast as it can: "ops N" and "seconds S".
 *   bulwark-bench [--cgroup DIR] latency EVENTS_FILE FILE COUNT GAP_US [notify|spin]
 *       COUNT times: open FILE (an audited open), then wait until a new line
 *       naming FILE is appended to EVENTS_FILE (the agent's file sink); the
 *       time from just before the open to the line being readable is the
 *       kernel-to-sink latency. Prints p50_us, p99_us, max_us, lost.
 *       notify (the default) sleeps until inotify says the file was written,
 *       as a log shipper does; spin rereads the file in a loop with
 *       sched_yield(), taking a CPU from the agent it measures (on the
 *       guest's emulated CPUs that is most of the tail: bench/README.md).
 *   bulwark-bench [--cgroup DIR] propagate DIR ON.yaml OFF.yaml TARGET COUNT [PROBE_US]
 *       COUNT times: put ON.yaml (a rule denying reads of TARGET) into the
 *       policy directory DIR as one rename, and time until opening TARGET
 *       fails with EPERM; then OFF.yaml, until it opens again, probing every
 *       PROBE_US (default 100). Prints p50_ms, p99_ms, max_ms for both
 *       directions. TARGET udp:ADDR:PORT probes with a UDP connect instead
 *       (a network deny rule).
 *
 *   bulwark-bench maps
 *       every BPF map in the system (the bench's guest runs bulwarkd alone),
 *       read by id: "map_bytes" sums the kernel's memlock figure, inner tries
 *       included (the agent closes their fds once they are in an outer map,
 *       so its own fdinfo misses them); "maps", "tries", "trie_entries", and
 *       "empty_trie_bytes" (memlock of LPM tries holding nothing: spare ids;
 *       Linux before 6.4 counts max_entries for them, newer ones what is used).
 *
 *   bulwark-bench progs [PREFIX]
 *       every BPF-LSM program in the kernel, or every program whose name
 *       starts with PREFIX: "prog NAME calls N run_time_ns T" (the kernel's
 *       own count and time, kept while kernel.bpf_stats_enabled is 1).
 *
 *   bulwark-bench [--cpu N] progtime PREFIX BATCHES OP N FILE CGROUP...
 *       the micro operation OP (FILE for open; any word otherwise), BATCHES
 *       times N of it from each cgroup2 directory CGROUP in turn, batch by
 *       batch, with the kernel's count and time of the programs named
 *       PREFIX* (summed) read around each batch (kernel.bpf_stats_enabled
 *       must be 1). One line per CGROUP: "cgroup DIR batches B calls C
 *       ns_per_call_median T ns_per_call_min L ns_per_call_mean M": T the
 *       median batch's run_time_ns / run_cnt, M over all its calls. The
 *       kernel's timer runs with preemption on, so a batch that the
 *       machine's other work interrupted inside a program counts the
 *       interruption: the median batch does not. Taking the cgroups in turn
 *       every batch makes a machine that slows down for seconds slow them
 *       alike.
 *
 * --cgroup DIR moves the process into that cgroup2 directory first; --cpu N
 * keeps it and the processes it starts on CPU N (a per-call figure then
 * does not depend on which CPU a run landed on: on a shared host one CPU
 * may be much busier than another).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include "floor.skel.h"
#include "lsm_time.h"
#include "lsm_time.skel.h"

static const char *cgroup_dir; /* --cgroup */

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int die(const char *what)
{
	fprintf(stderr, "bulwark-bench: %s: %s\n", what, strerror(errno));
	return 2;
}

static int join_cgroup(const char *dir)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0", 1) != 1)
		return -1;
	close(fd);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The value at quantile q of n sorted samples (nearest rank). */
static uint64_t quantile(const uint64_t *v, size_t n, double q)
{
	size_t i = (size_t)(q * (double)n + 0.999999);

	if (!n)
		return 0;
	if (i < 1)
		i = 1;
	return v[(i > n ? n : i) - 1];
}

static int micro_open(long n, const char *file)
{
	for (long i = 0; i < n; i++) {
		int fd = open(file, O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			return die(file);
		close(fd);
	}
	return 0;
}

static int micro_exec(long n)
{
	for (long i = 0; i < n; i++) {
		int st;
		pid_t p = fork();

		if (p < 0)
			return die("fork");
		if (p == 0) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		if (waitpid(p, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "bulwark-bench: /bin/true did not run (status %d)\n", st);
			return 2;
		}
	}
	return 0;
}

/* posix_spawn of /bin/true and wait: glibc starts the child with
 * CLONE_VM|CLONE_VFORK, so the exec's hooks run in the parent's address
 * space (no switch to a fresh one before them, as after fork). */
static int micro_spawn(long n)
{
	static char *const args[] = { "true", NULL };
	extern char **environ;

	for (long i = 0; i < n; i++) {
		int st, e;
		pid_t p;

		e = posix_spawn(&p, "/bin/true", NULL, NULL, args, environ);
		if (e) {
			errno = e;
			return die("posix_spawn /bin/true");
		}
		if (waitpid(p, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "bulwark-bench: /bin/true did not run (status %d)\n", st);
			return 2;
		}
	}
	return 0;
}

static int micro_connect(long n)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 64) < 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &len) < 0)
		return die("listen on 127.0.0.1");
	for (long i = 0; i < n; i++) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), a;

		if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			return die("connect to 127.0.0.1");
		/* Loopback completes the handshake in connect: accept now. */
		a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		if (a < 0)
			return die("accept");
		close(a);
		close(s);
	}
	close(l);
	return 0;
}

/* argv: OP N [FILE], as micro and lsm take them. */
static int micro_args(int argc, char **argv, long *n)
{
	if (argc < 3)
		return fprintf(stderr, "usage: %s open|exec|spawn|connect N [FILE]\n", argv[0]), 2;
	*n = atol(argv[2]);
	if (*n <= 0)
		return fprintf(stderr, "bulwark-bench: bad iteration count %s\n", argv[2]), 2;
	if (strcmp(argv[1], "open") && strcmp(argv[1], "exec") && strcmp(argv[1], "spawn") &&
	    strcmp(argv[1], "connect"))
		return fprintf(stderr, "bulwark-bench: unknown operation %s\n", argv[1]), 2;
	return 0;
}

static int micro_run(int argc, char **argv, long n)
{
	if (!strcmp(argv[1], "open"))
		return micro_open(n, argc > 3 ? argv[3] : "/etc/hostname");
	if (!strcmp(argv[1], "exec"))
		return micro_exec(n);
	if (!strcmp(argv[1], "spawn"))
		return micro_spawn(n);
	return micro_connect(n);
}

static int cmd_micro(int argc, char **argv)
{
	uint64_t t0, t1;
	long n;
	int ret;

	if ((ret = micro_args(argc, argv, &n)))
		return ret;
	t0 = now_ns(CLOCK_MONOTONIC);
	ret = micro_run(argc, argv, n);
	t1 = now_ns(CLOCK_MONOTONIC);
	if (ret)
		return ret;
	printf("ns_per_op %.1f\n", (double)(t1 - t0) / (double)n);
	return 0;
}

/* The micro operation with the LSM layer timed (bench/lsm_time.bpf.c):
 * for each security_*() function the operation called in the --cgroup
 * cgroup, its calls and mean time per call. */
static int cmd_lsm(int argc, char **argv)
{
	static const char *const names[LSM_TIME_HOOKS] = {
		[LSM_TIME_FILE_OPEN] = "file_open",
		[LSM_TIME_BPRM_CREDS_FOR_EXEC] = "bprm_creds_for_exec",
		[LSM_TIME_BPRM_CHECK] = "bprm_check",
		[LSM_TIME_SOCKET_CONNECT] = "socket_connect",
	};
	int ncpu = libbpf_num_possible_cpus(), ret;
	struct lsm_time_bpf *skel;
	struct lsm_time *per_cpu;
	struct stat st;
	long n;

	if ((ret = micro_args(argc, argv, &n)))
		return ret;
	/* A cgroup2 directory's inode number is the cgroup's id. */
	if (!cgroup_dir || stat(cgroup_dir, &st) < 0)
		return fprintf(stderr, "bulwark-bench: lsm needs --cgroup DIR\n"), 2;
	if (ncpu <= 0 || !(per_cpu = calloc((size_t)ncpu, sizeof(*per_cpu))))
		return die("possible CPUs");
	skel = lsm_time_bpf__open();
	if (!skel) {
		free(per_cpu);
		return die("opening the LSM timer");
	}
	skel->rodata->target_cgroup = st.st_ino;
	if (lsm_time_bpf__load(skel) < 0 || lsm_time_bpf__attach(skel) < 0) {
		ret = die("loading or attaching the LSM timer (fentry on security_*())");
		goto out;
	}
	if ((ret = micro_run(argc, argv, n)))
		goto out;
	for (__u32 h = 0; h < LSM_TIME_HOOKS; h++) {
		unsigned long long calls = 0, ns = 0;

		if (bpf_map__lookup_elem(skel->maps.times, &h, sizeof(h), per_cpu, sizeof(*per_cpu) * (size_t)ncpu,
					 0) < 0) {
			ret = die("reading the LSM timer");
			goto out;
		}
		for (int c = 0; c < ncpu; c++) {
			calls += per_cpu[c].calls;
			ns += per_cpu[c].ns;
		}
		if (calls)
			printf("hook %s calls %llu ns_per_call %.1f\n", names[h], calls, (double)ns / (double)calls);
	}
out:
	lsm_time_bpf__destroy(skel);
	free(per_cpu);
	return ret;
}

static volatile sig_atomic_t stop;
static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static int cmd_floor(void)
{
	struct floor_bpf *f = floor_bpf__open_and_load();
	sigset_t none;

	if (!f || floor_bpf__attach(f) < 0) {
		fprintf(stderr, "bulwark-bench: cannot load or attach the floor programs\n");
		floor_bpf__destroy(f);
		return 2;
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	printf("attached\n");
	fflush(stdout);
	sigemptyset(&none);
	while (!stop)
		sigsuspend(&none);
	floor_bpf__destroy(f);
	return 0;
}

static int cmd_load(int argc, char **argv)
{
	uint64_t t0, end, ops = 0;

	if (argc < 3)
		return fprintf(stderr, "usage: load FILE SECONDS\n"), 2;
	t0 = now_ns(CLOCK_MONOTONIC);
	end = t0 + (uint64_t)(atof(argv[2]) * 1e9);
	while (now_ns(CLOCK_MONOTONIC) < end) {
		for (int i = 0; i < 64; i++) {
			int fd = open(argv[1], O_RDONLY | O_CLOEXEC);

			if (fd < 0)
				return die(argv[1]);
			close(fd);
		}
		ops += 64;
	}
	printf("ops %llu\nseconds %.3f\n", (unsigned long long)ops, (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9);
	return 0;
}

/* Waits until the file grows past *off and a line naming needle arrives;
 * returns 0, or -1 after timeout_ns. With notify >= 0 (an inotify watch for
 * IN_MODIFY on the file, made before the open being timed, so no write is
 * missed) it sleeps until the file is written; otherwise it spins. */
static int wait_line(int fd, int notify, off_t *off, const char *needle, uint64_t timeout_ns)
{
	static char buf[1 << 16];
	uint64_t end = now_ns(CLOCK_MONOTONIC) + timeout_ns;

	for (;;) {
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, *off);
		uint64_t now;

		if (n > 0) {
			char *nl = memrchr(buf, '\n', (size_t)n);

			if (nl) {
				*nl = '\0';
				*off += nl - buf + 1;
				if (strstr(buf, needle))
					return 0;
				continue;
			}
		}
		now = now_ns(CLOCK_MONOTONIC);
		if (now > end)
			return -1;
		if (notify >= 0) {
			struct pollfd p = { .fd = notify, .events = POLLIN };
			char ev[4096];

			/* Drained after the wake-up and before the next read: a
			 * write landing in between queues a new event. */
			if (poll(&p, 1, (int)((end - now) / 1000000 + 1)) > 0)
				while (read(notify, ev, sizeof(ev)) > 0)
					;
		} else {
			/* A spin with a yield: a sleep here would be the latency measured. */
			sched_yield();
		}
	}
}

static int cmd_latency(int argc, char **argv)
{
	long count, gap_us, lost = 0, got = 0;
	uint64_t *lat;
	char needle[4200];
	struct stat st;
	int fd, notify = -1;
	off_t off;

	if (argc < 5 || (argc > 5 && strcmp(argv[5], "notify") && strcmp(argv[5], "spin")) ||
	    (count = atol(argv[3])) <= 0)
		return fprintf(stderr, "usage: latency EVENTS_FILE FILE COUNT(>0) GAP_US [notify|spin]\n"), 2;
	gap_us = atol(argv[4]);
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return die(argv[1]);
	if (argc == 5 || !strcmp(argv[5], "notify")) {
		notify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (notify < 0 || inotify_add_watch(notify, argv[1], IN_MODIFY) < 0)
			return die("inotify");
	}
	off = st.st_size;
	snprintf(needle, sizeof(needle), "\"target\":\"%s\"", argv[2]);
	lat = calloc((size_t)count, sizeof(*lat));
	for (long i = 0; i < count; i++) {
		uint64_t t0 = now_ns(CLOCK_MONOTONIC);
		int f = open(argv[2], O_RDONLY | O_CLOEXEC);

		if (f < 0)
			return die(argv[2]);
		close(f);
		if (wait_line(fd, notify, &off, needle, 2000000000ULL) < 0) {
			lost++;
			continue;
		}
		lat[got++] = now_ns(CLOCK_MONOTONIC) - t0;
		if (gap_us > 0)
			usleep((useconds_t)gap_us);
	}
	qsort(lat, (size_t)got, sizeof(*lat), cmp_u64);
	printf("samples %ld\nlost %ld\np50_us %.1f\np99_us %.1f\nmax_us %.1f\n", got, lost,
	       quantile(lat, (size_t)got, 0.5) / 1e3, quantile(lat, (size_t)got, 0.99) / 1e3,
	       got ? lat[got - 1] / 1e3 : 0.0);
	free(lat);
	if (notify >= 0)
		close(notify);
	close(fd);
	return 0;
}

static int put_policy(const char *dir, const char *src)
{
	char tmp[4096], dst[4096], buf[65536];
	ssize_t n;
	int in, out;

	snprintf(tmp, sizeof(tmp), "%s/.propagate.tmp", dir);
	snprintf(dst, sizeof(dst), "%s/propagate.yaml", dir);
	in = open(src, O_RDONLY | O_CLOEXEC);
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (in < 0 || out < 0)
		return -1;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			return -1;
	close(in);
	if (close(out) < 0)
		return -1;
	return rename(tmp, dst);
}

/* The errno of one probe of target: opening a file, or for
 * "udp:A.B.C.D:PORT" connecting a UDP socket there (no listener needed;
 * the connect hook judges it all the same). */
static int probe(const char *target)
{
	int fd, e;

	if (!strncmp(target, "udp:", 4)) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		char host[64];
		const char *colon = strrchr(target + 4, ':');

		if (!colon || (size_t)(colon - target - 4) >= sizeof(host))
			return EINVAL;
		memcpy(host, target + 4, (size_t)(colon - target - 4));
		host[colon - target - 4] = '\0';
		sa.sin_port = htons((uint16_t)atoi(colon + 1));
		if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
			return EINVAL;
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return errno;
		e = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? errno : 0;
		close(fd);
		return e;
	}
	fd = open(target, O_RDONLY | O_CLOEXEC);
	e = fd < 0 ? errno : 0;
	if (fd >= 0)
		close(fd);
	return e;
}

/* Probes until target gives want_errno (0: success), every gap_us; 10 s
 * at most. The gap is the measurement's resolution, and what the probing
 * costs the agent on a shared CPU: every probe that is still refused is a
 * blocked open the kernel judges and reports. */
static int until_open(const char *target, int want_errno, long gap_us)
{
	uint64_t end = now_ns(CLOCK_MONOTONIC) + 10000000000ULL;

	while (now_ns(CLOCK_MONOTONIC) < end) {
		int e = probe(target);

		if (e == want_errno)
			return 0;
		usleep((useconds_t)gap_us);
	}
	return -1;
}

static int cmd_propagate(int argc, char **argv)
{
	uint64_t *on, *off;
	long count, gap_us;
	int n = 0;

	if (argc < 6)
		return fprintf(stderr, "usage: propagate DIR ON.yaml OFF.yaml FILE|udp:ADDR:PORT COUNT [PROBE_US]\n"), 2;
	count = atol(argv[5]);
	gap_us = argc > 6 ? atol(argv[6]) : 100;
	if (count <= 0 || gap_us <= 0 || gap_us > 100000)
		return fprintf(stderr, "propagate: COUNT must be positive, PROBE_US 1-100000\n"), 2;
	on = calloc((size_t)count, sizeof(*on));
	off = calloc((size_t)count, sizeof(*off));
	for (long i = 0; i < count; i++, n++) {
		uint64_t t0 = now_ns(CLOCK_MONOTONIC), on_at = now_ns(CLOCK_REALTIME), off_at;

		if (put_policy(argv[1], argv[2]) < 0)
			return die("writing the policy");
		if (until_open(argv[4], EPERM, gap_us) < 0)
			return fprintf(stderr, "bulwark-bench: the rule never took effect\n"), 1;
		on[i] = now_ns(CLOCK_MONOTONIC) - t0;
		t0 = now_ns(CLOCK_MONOTONIC);
		off_at = now_ns(CLOCK_REALTIME);
		if (put_policy(argv[1], argv[3]) < 0)
			return die("writing the policy");
		if (until_open(argv[4], 0, gap_us) < 0)
			return fprintf(stderr, "bulwark-bench: the rule was never lifted\n"), 1;
		off[i] = now_ns(CLOCK_MONOTONIC) - t0;
		/* Each sample in order, with when each change was written (the
		 * agent's applied records say when each apply ended and how
		 * long it took: an outlier is a slow apply or a late start). */
		if (getenv("BENCH_SAMPLES") && *getenv("BENCH_SAMPLES"))
			fprintf(stderr, "sample %ld on_ms %.2f off_ms %.2f on_at %.6f off_at %.6f\n", i, on[i] / 1e6,
				off[i] / 1e6, on_at / 1e9, off_at / 1e9);
	}
	qsort(on, (size_t)n, sizeof(*on), cmp_u64);
	qsort(off, (size_t)n, sizeof(*off), cmp_u64);
	printf("samples %d\non_p50_ms %.2f\non_p99_ms %.2f\non_max_ms %.2f\noff_p50_ms %.2f\noff_p99_ms %.2f\n", n,
	       quantile(on, (size_t)n, 0.5) / 1e6, quantile(on, (size_t)n, 0.99) / 1e6, on[n - 1] / 1e6,
	       quantile(off, (size_t)n, 0.5) / 1e6, quantile(off, (size_t)n, 0.99) / 1e6);
	free(on);
	free(off);
	return 0;
}

/* The kernel's memlock figure for a map, from its fd's fdinfo. */
static unsigned long long fd_memlock(int fd)
{
	char path[64], line[256];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

static int cmd_maps(void)
{
	unsigned long long bytes = 0, empty_bytes = 0, entries = 0;
	unsigned maps = 0, tries = 0;
	__u32 id = 0;

	while (bpf_map_get_next_id(id, &id) == 0) {
		struct bpf_map_info info;
		__u32 len = sizeof(info);
		int fd = bpf_map_get_fd_by_id(id);

		if (fd < 0)
			continue; /* gone meanwhile */
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) {
			unsigned long long m = fd_memlock(fd);

			maps++;
			bytes += m;
			if (info.type == BPF_MAP_TYPE_LPM_TRIE) {
				unsigned char key[2][512];
				unsigned long long n = 0;
				int cur = 0;

				tries++;
				if (info.key_size <= sizeof(key[0]))
					for (void *prev = NULL; bpf_map_get_next_key(fd, prev, key[cur]) == 0;
					     prev = key[cur], cur ^= 1)
						n++;
				entries += n;
				if (!n)
					empty_bytes += m;
			}
		}
		close(fd);
	}
	printf("maps %u\nmap_bytes %llu\ntries %u\ntrie_entries %llu\nempty_trie_bytes %llu\n", maps, bytes, tries,
	       entries, empty_bytes);
	return 0;
}

/* Opens the programs named prefix* (every BPF-LSM program when prefix is
 * NULL) into fds, at most max of them; returns how many. */
static size_t progs_open(const char *prefix, int *fds, size_t max)
{
	size_t n = 0;
	__u32 id = 0;

	while (n < max && bpf_prog_get_next_id(id, &id) == 0) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);
		int fd = bpf_prog_get_fd_by_id(id);

		if (fd < 0)
			continue; /* gone meanwhile */
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
		    (prefix ? !strncmp(info.name, prefix, strlen(prefix)) : info.type == BPF_PROG_TYPE_LSM))
			fds[n++] = fd;
		else
			close(fd);
	}
	return n;
}

static int cmd_progs(const char *prefix)
{
	int fds[64];
	size_t n = progs_open(prefix, fds, sizeof(fds) / sizeof(fds[0]));

	for (size_t i = 0; i < n; i++) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);

		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fds[i], &info, &len) == 0)
			printf("prog %s calls %llu run_time_ns %llu\n", info.name, (unsigned long long)info.run_cnt,
			       (unsigned long long)info.run_time_ns);
		close(fds[i]);
	}
	return 0;
}

/* The summed count and time of the programs in fds. */
static int progs_read(const int *fds, size_t n, uint64_t *calls, uint64_t *ns)
{
	*calls = *ns = 0;
	for (size_t i = 0; i < n; i++) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);

		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fds[i], &info, &len) < 0)
			return -errno;
		*calls += info.run_cnt;
		*ns += info.run_time_ns;
	}
	return 0;
}

/* One cgroup's batches in progtime. */
struct progtime_cgroup {
	const char *dir;
	uint64_t *per_call; /* ns per call of each batch that reached the programs */
	size_t batches;
	uint64_t calls, ns;
};

/* argv: progtime PREFIX BATCHES OP N FILE CGROUP... */
static int cmd_progtime(int argc, char **argv)
{
	struct progtime_cgroup *cg = NULL;
	int fds[64], ret = 0;
	size_t nfds, ncg;
	long batches, n;

	if (argc < 7 || (batches = atol(argv[2])) <= 0)
		return fprintf(stderr, "usage: progtime PREFIX BATCHES(>0) open|exec|spawn|connect N FILE CGROUP...\n"), 2;
	/* argv + 2 reads as micro's "- OP N FILE". */
	if ((ret = micro_args(4, argv + 2, &n)))
		return ret;
	nfds = progs_open(argv[1], fds, sizeof(fds) / sizeof(fds[0]));
	if (!nfds)
		return fprintf(stderr, "bulwark-bench: no BPF program named %s*\n", argv[1]), 2;
	ncg = (size_t)argc - 6;
	if (!(cg = calloc(ncg, sizeof(*cg)))) {
		ret = die("batches");
		goto out;
	}
	for (size_t i = 0; i < ncg; i++) {
		cg[i].dir = argv[6 + i];
		if (!(cg[i].per_call = calloc((size_t)batches, sizeof(*cg[i].per_call)))) {
			ret = die("batches");
			goto out;
		}
	}
	/* Batch by batch, every cgroup in turn (starting one further each
	 * batch): a machine whose speed changes over seconds, as a shared one
	 * does, then slows every configuration alike. */
	for (long b = 0; b < batches; b++)
		for (size_t k = 0; k < ncg; k++) {
			struct progtime_cgroup *c = &cg[((size_t)b + k) % ncg];
			uint64_t c0, t0, c1, t1;

			if (join_cgroup(c->dir) < 0) {
				ret = die(c->dir);
				goto out;
			}
			if (progs_read(fds, nfds, &c0, &t0) < 0 || (ret = micro_run(4, argv + 2, n)) ||
			    progs_read(fds, nfds, &c1, &t1) < 0) {
				ret = ret ?: die("reading the programs' run time");
				goto out;
			}
			if (c1 <= c0)
				continue; /* the operation did not reach the programs */
			/* Rounded to the ns: the kernel's clock reads are no finer. */
			c->per_call[c->batches++] = (t1 - t0 + (c1 - c0) / 2) / (c1 - c0);
			c->calls += c1 - c0;
			c->ns += t1 - t0;
		}
	for (size_t i = 0; i < ncg; i++) {
		struct progtime_cgroup *c = &cg[i];

		if (!c->batches) {
			fprintf(stderr, "bulwark-bench: no call of %s* counted from %s (is kernel.bpf_stats_enabled 1?)\n",
				argv[1], c->dir);
			ret = 1;
			continue;
		}
		qsort(c->per_call, c->batches, sizeof(*c->per_call), cmp_u64);
		printf("cgroup %s batches %zu calls %llu ns_per_call_median %llu ns_per_call_min %llu ns_per_call_mean %.1f\n",
		       c->dir, c->batches, (unsigned long long)c->calls,
		       (unsigned long long)quantile(c->per_call, c->batches, 0.5), (unsigned long long)c->per_call[0],
		       (double)c->ns / (double)c->calls);
	}
out:
	for (size_t i = 0; cg && i < ncg; i++)
		free(cg[i].per_call);
	free(cg);
	while (nfds)
		close(fds[--nfds]);
	return ret;
}

int main(int argc, char **argv)
{
	while (argc > 2 && argv[1][0] == '-' && argv[1][1] == '-') {
		if (!strcmp(argv[1], "--cgroup")) {
			if (join_cgroup(argv[2]) < 0)
				return die(argv[2]);
			cgroup_dir = argv[2];
		} else if (!strcmp(argv[1], "--cpu")) {
			char *end;
			long cpu = strtol(argv[2], &end, 10);
			cpu_set_t set;

			if (*end || end == argv[2] || cpu < 0 || cpu >= CPU_SETSIZE)
				return fprintf(stderr, "bulwark-bench: bad --cpu %s\n", argv[2]), 2;
			CPU_ZERO(&set);
			CPU_SET((int)cpu, &set);
			if (sched_setaffinity(0, sizeof(set), &set) < 0)
				return die("--cpu");
		} else {
			break;
		}
		argc -= 2;
		argv += 2;
	}
	if (argc < 2)
		return fprintf(stderr, "usage: bulwark-bench [--cgroup DIR] [--cpu N] micro|lsm|floor|load|latency|propagate|maps|progs|progtime ...\n"), 2;
	if (!strcmp(argv[1], "micro"))
		return cmd_micro(argc - 1, argv + 1);
	if (!strcmp(argv[1], "lsm"))
		return cmd_lsm(argc - 1, argv + 1);
	if (!strcmp(argv[1], "floor"))
		return cmd_floor();
	if (!strcmp(argv[1], "load"))
		return cmd_load(argc - 1, argv + 1);
	if (!strcmp(argv[1], "latency"))
		return cmd_latency(argc - 1, argv + 1);
	if (!strcmp(argv[1], "propagate"))
		return cmd_propagate(argc - 1, argv + 1);
	if (!strcmp(argv[1], "maps"))
		return cmd_maps();
	if (!strcmp(argv[1], "progs"))
		return cmd_progs(argc > 2 ? argv[2] : NULL);
	if (!strcmp(argv[1], "progtime"))
		return cmd_progtime(argc - 1, argv + 1);
	fprintf(stderr, "bulwark-bench: unknown command %s\n", argv[1]);
	return 2;
}
