/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "process-table.h"

uint64_t bw_proc_seeded_exec_id(uint32_t pid, uint64_t start_ticks)
{
	/* 41 bits of ticks (at 100 Hz: 697 years), 22 of pid (pid_max <= 4M). */
	return BW_EXEC_ID_SEEDED | ((start_ticks & ((1ULL << 41) - 1)) << 22) | (pid & ((1u << 22) - 1));
}

/* ppid and start time (field 22) from /proc/PID/stat; the command name may
 * hold spaces and parentheses, so parse from the last ')'. */
static int read_stat(const char *proc_root, uint32_t pid, uint32_t *ppid, uint64_t *start)
{
	char path[64], buf[1024], *p;
	unsigned long long st = 0;
	unsigned pp = 0;
	FILE *f;
	size_t n;
	int field;

	snprintf(path, sizeof(path), "%s/%u/stat", proc_root, pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p)
		return -EINVAL;
	p += 2; /* field 3: state */
	for (field = 3; field < 22 && *p; field++) {
		if (field == 4)
			pp = (unsigned)strtoul(p, NULL, 10);
		p = strchr(p, ' ');
		if (!p)
			return -EINVAL;
		p++;
	}
	st = strtoull(p, NULL, 10);
	*ppid = pp;
	*start = st;
	return 0;
}

int bw_proc_seed(int map_fd, const char *proc_root)
{
	DIR *d = opendir(proc_root);
	struct dirent *e;
	int added = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		struct bw_process p = { 0 };
		uint32_t pid, ppid, pppid;
		uint64_t start, pstart;
		char link[PATH_MAX];
		ssize_t n;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		pid = (uint32_t)strtoul(e->d_name, NULL, 10);
		if (read_stat(proc_root, pid, &ppid, &start) < 0)
			continue; /* gone meanwhile */
		p.pid = pid;
		p.ppid = ppid;
		p.exec_id = bw_proc_seeded_exec_id(pid, start);
		if (ppid && read_stat(proc_root, ppid, &pppid, &pstart) == 0)
			p.parent_exec_id = bw_proc_seeded_exec_id(ppid, pstart);
		p.flags = BW_PROC_SEEDED;
		snprintf(link, sizeof(link), "%s/%u/exe", proc_root, pid);
		n = readlink(link, p.exe, sizeof(p.exe) - 1);
		p.exe[n > 0 ? n : 0] = '\0'; /* kernel threads have none */
		p.exe_len = (uint32_t)strlen(p.exe) + 1;
		/* The tracepoints may have it already, and know better. */
		if (bpf_map_update_elem(map_fd, &pid, &p, BPF_NOEXIST) == 0)
			added++;
	}
	closedir(d);
	return added;
}

long bw_proc_count(int map_fd)
{
	uint32_t key, next;
	long n = 0;
	int ret;

	for (ret = bpf_map_get_next_key(map_fd, NULL, &key); ret == 0; ret = bpf_map_get_next_key(map_fd, &key, &next), key = next)
		n++;
	return n;
}

int bw_proc_ancestors(const struct bw_process *p, bw_proc_lookup_fn lookup, void *userdata, char *out, size_t size)
{
	struct bw_process cur = *p, parent;
	size_t len = 0;
	int n = 0;

	out[0] = '\0';
	while (n < BW_ANCESTORS_MAX && cur.ppid && lookup(cur.ppid, &parent, userdata) == 0 &&
	       parent.exec_id == cur.parent_exec_id) {
		int w;

		parent.exe[sizeof(parent.exe) - 1] = '\0';
		w = snprintf(out + len, size - len, "%s%s[%u]", n ? " < " : "", parent.exe[0] ? parent.exe : "?",
			     parent.pid);
		if (w < 0 || (size_t)w >= size - len)
			break;
		len += (size_t)w;
		n++;
		cur = parent;
	}
	return n;
}
