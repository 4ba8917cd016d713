// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Degraded mode: what bulwarkd loads instead of bpf/lsm/ when the kernel
 * has no BPF LSM or refuses its programs. The same policy maps, the same
 * lookups and the same bw_decide() as the LSM programs
 * (bulwark_policy.bpf.h), from places that cannot deny:
 *
 *   exec     tp_btf/sched_process_exec: after the point of no return, before
 *            the new program's first instruction. Judges the name the caller
 *            passed (bprm->filename) and a script's interpreter (bprm->interp),
 *            not the resolved file: a new link to a denied program escapes.
 *   files    syscalls/sys_enter_open, openat, openat2, creat: the name as
 *            written in the caller's memory, absolute names only (relative
 *            names are counted as unjudged), read before the kernel reads
 *            it again (a racing thread can change it in between).
 *   connect  cgroup/connect4 and connect6 on the cgroup root: these deny for
 *            real (the connect fails with EPERM), as the LSM hook would.
 *
 * A Block decision from exec or files is reported as "would block"; with
 * bw_kill (--degraded-action=kill) the caller is also sent SIGKILL, which
 * ends it before the exec'd program runs, but an open still happens (a
 * truncation or a write already done stays done).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "bulwark_policy.bpf.h"

#define SIGKILL 9
#define O_ACCMODE 00000003
#define O_WRONLY 00000001
#define O_RDWR 00000002
#define O_CREAT 00000100
#define O_TRUNC 00001000
#define O_PATH 010000000
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the agent before load (--degraded-action=kill). */
const volatile bool bw_kill = false;

/* A Block decision here cannot deny: mark it, and kill when configured. */
static __always_inline void bw_fallback_block(struct bw_ctx *c, struct bw_outcome o)
{
	c->s->ev.h.flags |= BW_EVENT_FALLBACK;
	if (o.decision == BW_DECISION_BLOCK && bw_kill && !bpf_send_signal(SIGKILL))
		c->s->ev.h.flags |= BW_EVENT_KILLED;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(bw_fallback_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct bw_outcome out, interp;
	const char *filename, *ip;
	struct bw_ctx c;
	void *trie;
	long n, len;

	if (!bw_ctx_init(&c, BW_TRIE_EXEC, BW_CLASS_EXEC, BW_CLASS_EXEC))
		return 0;
	bw_clear_path(&c);
	trie = bpf_map_lookup_elem(&exec_tries, &c.ruleset_id);
	/* BTF pointers: read directly, no helper call. */
	filename = bprm->filename;
	ip = bprm->interp;

	/* A script's interpreter first ("#!/bin/sh" runs /bin/sh): it is what
	 * the LSM hook sees on its second call for the same exec. */
	if (ip && ip != filename) {
		n = bpf_probe_read_kernel_str(c.s->path.data, BW_PATH_MAX, ip);
		len = bw_path_len(&c, n, BW_STAT_FALLBACK_UNJUDGED);
		interp = bw_judge_path(&c, trie, len, BW_CLASS_EXEC, 0);
		if (interp.decision != BW_DECISION_ALLOW) {
			out = interp;
			goto report;
		}
		bw_clear_path(&c);
	}
	n = bpf_probe_read_kernel_str(c.s->path.data, BW_PATH_MAX, filename);
	len = bw_path_len(&c, n, BW_STAT_FALLBACK_UNJUDGED);
	out = bw_judge_path(&c, trie, len, BW_CLASS_EXEC, 0);
	if (out.decision == BW_DECISION_ALLOW)
		return 0;
report:
	c.s->ev.h.flags |= BW_EVENT_BY_NAME;
	bw_fallback_block(&c, out);
	bw_fill_header(&c, BW_HOOK_EXEC, out);
	bw_emit(&c, out);
	return 0;
}

static __always_inline int bw_fallback_open(const char *name, __u64 flags)
{
	struct bw_outcome out = { BW_DECISION_ALLOW, 0, 0 };
	__u64 acc = flags & O_ACCMODE;
	struct bw_ctx c;
	void *trie;
	long len;

	if (flags & O_PATH)
		return 0; /* no file_open call for O_PATH either */
	if (!bw_ctx_init(&c, BW_TRIE_FILE, BW_CLASS_FILE_READ, BW_CLASS_FILE_WRITE))
		return 0;
	bw_clear_path(&c);
	trie = bpf_map_lookup_elem(&file_tries, &c.ruleset_id);
	len = bw_path_len(&c, bpf_probe_read_user_str(c.s->path.data, BW_PATH_MAX, name), BW_STAT_FALLBACK_UNJUDGED);
	/* The access as file_open would see it: O_RDONLY and O_RDWR read,
	 * O_WRONLY and O_RDWR write, and O_TRUNC truncates whatever the mode.
	 * Written out here and in bw_file_open rather than in one helper taking
	 * the two accesses as booleans: that helper made the 6.18 verifier walk
	 * past its 1,000,000-instruction limit on this program (modes-host). */
	if (acc != O_WRONLY)
		out = bw_judge_path(&c, trie, len, BW_CLASS_FILE_READ, 0);
	if (acc == O_WRONLY || acc == O_RDWR || (flags & O_TRUNC)) {
		struct bw_outcome w = bw_judge_path(&c, trie, len, BW_CLASS_FILE_WRITE, 1);

		if (w.decision > out.decision)
			c.s->ev.h.flags |= BW_EVENT_WRITE;
		out = bw_outcome_worse(out, w);
	}
	if (out.decision == BW_DECISION_ALLOW)
		return 0;
	if (!(c.s->ev.h.flags & BW_EVENT_WRITE))
		c.s->ev.h.flags |= BW_EVENT_READ;
	bw_fallback_block(&c, out);
	bw_fill_header(&c, BW_HOOK_FILE, out);
	bw_emit(&c, out);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int bw_fallback_openat(struct trace_event_raw_sys_enter *ctx)
{
	return bw_fallback_open((const char *)ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_open")
int bw_fallback_open_legacy(struct trace_event_raw_sys_enter *ctx)
{
	return bw_fallback_open((const char *)ctx->args[0], ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_creat")
int bw_fallback_creat(struct trace_event_raw_sys_enter *ctx)
{
	return bw_fallback_open((const char *)ctx->args[0], O_CREAT | O_WRONLY | O_TRUNC);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int bw_fallback_openat2(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how *how = (struct open_how *)ctx->args[2];
	__u64 flags = 0;

	/* Unreadable: judged as a read-write truncating open, the widest. */
	if (bpf_probe_read_user(&flags, sizeof(flags), &how->flags))
		flags = O_RDWR | O_TRUNC;
	return bw_fallback_open((const char *)ctx->args[1], flags);
}

/* The cgroup programs: 1 lets the connect go on, 0 fails it with EPERM. */
static __always_inline int bw_fallback_connect(struct bpf_sock_addr *ctx, __u16 family)
{
	struct bw_outcome out;
	struct bw_ctx c;
	__u16 port;
	__u8 proto;

	if (!bw_ctx_init(&c, BW_TRIE_NET4 | BW_TRIE_NET6, BW_CLASS_NET, BW_CLASS_NET))
		return 1;
	bw_clear_connect(&c);
	proto = ctx->protocol == IPPROTO_TCP ? BW_PROTO_TCP : ctx->protocol == IPPROTO_UDP ? BW_PROTO_UDP : BW_PROTO_ANY;
	port = bpf_ntohs((__u16)ctx->user_port);
	if (family == BW_AF_INET) {
		__u32 a4 = ctx->user_ip4;

		__builtin_memcpy(c.s->ev.h.addr, &a4, 4);
	} else {
		__u32 a6[4];

		a6[0] = ctx->user_ip6[0];
		a6[1] = ctx->user_ip6[1];
		a6[2] = ctx->user_ip6[2];
		a6[3] = ctx->user_ip6[3];
		__builtin_memcpy(c.s->ev.h.addr, a6, 16);
	}
	out = bw_judge_net(&c, family, port, proto);
	if (out.decision == BW_DECISION_ALLOW)
		return 1;
	bw_fill_header_common(&c, BW_HOOK_CONNECT, out);
	c.s->ev.h.family = family;
	c.s->ev.h.port = port;
	c.s->ev.h.protocol = proto;
	bw_emit(&c, out);
	return out.decision == BW_DECISION_BLOCK ? 0 : 1;
}

SEC("cgroup/connect4")
int bw_fallback_connect4(struct bpf_sock_addr *ctx)
{
	return bw_fallback_connect(ctx, BW_AF_INET);
}

SEC("cgroup/connect6")
int bw_fallback_connect6(struct bpf_sock_addr *ctx)
{
	return bw_fallback_connect(ctx, BW_AF_INET6);
}
