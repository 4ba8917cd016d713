/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The process table on this host's kernel (tracepoints load here, BPF-LSM
 * programs do not): bpf/trace/process.bpf.c attached for real, this process
 * seeded from /proc by agent/process-table.c, then children forked and
 * exec'd: their entries, exec ids, parent links, exit marks, the ancestor
 * chain an event would carry, threads left out, and evictions of a small
 * LRU table counted. Needs root; exits 77 (skip) only when not root.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "process-table.h"
#include "process.skel.h"
#include "bw-test.h"

static int fd;

static int lookup(uint32_t pid, struct bw_process *out, void *userdata)
{
	(void)userdata;
	return bpf_map_lookup_elem(fd, &pid, out) < 0 ? -errno : 0;
}

/* Forks a child that forks a grandchild exec'ing argv; returns the child's
 * pid and the grandchild's through *gc (written by the child to a pipe). */
static pid_t spawn_chain(char *const argv[], pid_t *gc)
{
	int p[2];
	pid_t c;

	if (pipe(p) < 0)
		exit(2);
	c = fork();
	if (c == 0) {
		pid_t g = fork();

		if (g == 0) {
			execv(argv[0], argv);
			_exit(127);
		}
		if (write(p[1], &g, sizeof(g)) < 0)
			_exit(2);
		waitpid(g, NULL, 0);
		_exit(0);
	}
	if (read(p[0], gc, sizeof(*gc)) != sizeof(*gc))
		exit(2);
	close(p[0]);
	close(p[1]);
	return c;
}

static void *thread_fn(void *arg)
{
	*(pid_t *)arg = (pid_t)syscall(SYS_gettid);
	return NULL;
}

int main(void)
{
	struct process_bpf *skel;
	struct bw_process self, child, gchild;
	pid_t c, g, tid = 0;
	char anc[2048];
	int ret;

	if (geteuid() != 0) {
		printf("1..0 # SKIP needs root to load BPF programs\n");
		return 77;
	}
	skel = process_bpf__open();
	ASSERT(skel != NULL);
	if (!skel)
		return bw_test_summary();
	bpf_map__set_max_entries(skel->maps.processes, 64);
	ret = process_bpf__load(skel);
	ASSERT(ret == 0);
	if (ret == 0)
		ret = process_bpf__attach(skel);
	ASSERT(ret == 0);
	if (ret) {
		fprintf(stderr, "cannot load/attach the process tracepoints: %s\n", strerror(-ret));
		process_bpf__destroy(skel);
		return bw_test_summary();
	}
	fd = bpf_map__fd(skel->maps.processes);

	/* seeded from /proc: this process, with its exe and a stable id */
	ASSERT(bw_proc_seed(fd, "/proc") > 0);
	ASSERT(lookup((uint32_t)getpid(), &self, NULL) == 0);
	ASSERT(self.flags & BW_PROC_SEEDED && self.exec_id & BW_EXEC_ID_SEEDED && strstr(self.exe, "test-process-table"));
	ASSERT(bw_proc_seed(fd, "/proc") == 0 || bw_proc_count(fd) <= 64); /* NOEXIST: nothing twice */

	/* child forks, grandchild execs /bin/true */
	{
		char *argv[] = { "/bin/true", NULL };

		c = spawn_chain(argv, &g);
	}
	waitpid(c, NULL, 0);
	ASSERT(lookup((uint32_t)c, &child, NULL) == 0);
	ASSERT(child.ppid == (uint32_t)getpid() && child.parent_exec_id == self.exec_id);
	ASSERT(child.flags & BW_PROC_FORKED && !strcmp(child.exe, self.exe)); /* no exec: the parent's program */
	ASSERT(child.flags & BW_PROC_EXITED);
	ASSERT(child.exec_id && !(child.exec_id & BW_EXEC_ID_SEEDED) && child.exec_id != self.exec_id);
	ASSERT(lookup((uint32_t)g, &gchild, NULL) == 0);
	ASSERT(!strcmp(gchild.exe, "/bin/true") && gchild.ppid == (uint32_t)c);
	ASSERT(gchild.parent_exec_id == child.exec_id && gchild.exec_id > child.exec_id);
	ASSERT(gchild.flags & BW_PROC_EXITED && !(gchild.flags & BW_PROC_FORKED));
	/* what an event of the grandchild names: its parent, then us */
	ASSERT(bw_proc_ancestors(&gchild, lookup, NULL, anc, sizeof(anc)) >= 2);
	{
		char want[600];

		snprintf(want, sizeof(want), "%s[%d] < %s[%d]", self.exe, (int)c, self.exe, (int)getpid());
		ASSERT(!strncmp(anc, want, strlen(want)));
		printf("# ancestors of /bin/true[%d]: %s\n", (int)g, anc);
	}
	/* a reused pid breaks the chain rather than lie */
	{
		struct bw_process fake = gchild;

		fake.parent_exec_id = 12345;
		ASSERT(bw_proc_ancestors(&fake, lookup, NULL, anc, sizeof(anc)) == 0 && !anc[0]);
	}

	/* a thread is not a process */
	{
		pthread_t t;
		struct bw_process x;

		pthread_create(&t, NULL, thread_fn, &tid);
		pthread_join(t, NULL);
		ASSERT(tid > 0 && tid != getpid() && lookup((uint32_t)tid, &x, NULL) == -ENOENT);
	}

	/* a full table evicts (LRU) and never refuses: 200 processes into 64 */
	{
		uint64_t made;
		long entries;
		int zero = 0, ncpu = libbpf_num_possible_cpus();
		uint64_t *vals = calloc((size_t)ncpu, sizeof(*vals));

		for (int i = 0; i < 200; i++) {
			pid_t p = fork();

			if (p == 0)
				_exit(0);
			waitpid(p, NULL, 0);
		}
		entries = bw_proc_count(fd);
		ASSERT(entries > 0 && entries <= 64);
		(void)zero;
		made = 0;
		if (vals) {
			uint32_t k = BW_STAT_PROC_INSERTED;

			if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.stats), &k, vals) == 0)
				for (int i = 0; i < ncpu; i++)
					made += vals[i];
		}
		ASSERT(made >= 200);
		printf("# table of 64: %llu made by the tracepoints, %ld held, at least %llu evicted\n",
		       (unsigned long long)made, entries, (unsigned long long)(made - (uint64_t)entries));
		free(vals);
	}
	process_bpf__destroy(skel);
	return bw_test_summary();
}
