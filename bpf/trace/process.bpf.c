// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The process table: fork, exec and exit keep struct bw_process per thread
 * group (bulwark_abi.h), so that an event names its process's executable and
 * the chain of its ancestors from kernel state, not from /proc read after
 * the fact (by then a short-lived process is gone). Tracepoints only: this
 * also runs where the BPF LSM is missing.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "bulwark_abi.h"
#include "bulwark_maps.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

__u64 bw_next_exec_id = 1;

/* A bw_process is too big for the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bw_process);
} proc_scratch SEC(".maps");

static __always_inline __u64 new_exec_id(void)
{
	return __sync_fetch_and_add(&bw_next_exec_id, 1);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(bw_process_fork, struct task_struct *parent, struct task_struct *child)
{
	/* tp_btf arguments are BTF pointers: read directly, no helper call
	 * (these run on every fork, exec and exit of the node). */
	__u32 zero = 0, ptgid = parent->tgid, ctgid = child->tgid;
	struct bw_process *p, *n;

	if (child->pid != ctgid)
		return 0; /* a thread, not a process */
	n = bpf_map_lookup_elem(&proc_scratch, &zero);
	if (!n)
		return 0;
	p = bpf_map_lookup_elem(&processes, &ptgid);
	if (p) {
		/* Until it execs, the child runs its parent's program. */
		__builtin_memcpy(n->exe, p->exe, sizeof(n->exe));
		n->exe_len = p->exe_len;
		n->parent_exec_id = p->exec_id;
	} else {
		n->exe[0] = '\0';
		n->exe_len = 1;
		n->parent_exec_id = 0;
	}
	n->exec_id = new_exec_id();
	n->start_ns = bpf_ktime_get_boot_ns();
	n->pid = ctgid;
	n->ppid = ptgid;
	n->flags = BW_PROC_FORKED;
	if (bpf_map_update_elem(&processes, &ctgid, n, BPF_ANY) == 0)
		bw_stat_inc(BW_STAT_PROC_INSERTED);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(bw_process_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 zero = 0, tgid = task->tgid;
	struct bw_process *p, *n;
	const char *filename;
	long len;

	p = bpf_map_lookup_elem(&processes, &tgid);
	if (!p) {
		/* Started before the table, or evicted: begin it here. */
		bw_stat_inc(BW_STAT_PROC_UNTRACKED);
		n = bpf_map_lookup_elem(&proc_scratch, &zero);
		if (!n)
			return 0;
		n->parent_exec_id = 0;
		n->ppid = BPF_CORE_READ(task, real_parent, tgid);
		n->pid = tgid;
		if (bpf_map_update_elem(&processes, &tgid, n, BPF_ANY) == 0)
			bw_stat_inc(BW_STAT_PROC_INSERTED);
		p = bpf_map_lookup_elem(&processes, &tgid);
		if (!p)
			return 0;
	}
	p->exec_id = new_exec_id();
	p->start_ns = bpf_ktime_get_boot_ns();
	p->flags = 0;
	filename = bprm->filename;
	len = bpf_probe_read_kernel_str(p->exe, sizeof(p->exe), filename);
	if (len < 0) {
		p->exe[0] = '\0';
		len = 1;
	}
	p->exe_len = (__u32)len;
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(bw_process_exit, struct task_struct *task)
{
	__u32 tgid = task->tgid;
	struct bw_process *p;

	if (task->pid != tgid)
		return 0; /* a thread; the group ends with its leader */
	p = bpf_map_lookup_elem(&processes, &tgid);
	if (p) {
		p->flags |= BW_PROC_EXITED;
		bw_stat_inc(BW_STAT_PROC_EXITED);
	}
	return 0;
}
