// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The enforcing BPF-LSM programs: exec (bprm_check_security), file opens
 * (file_open) and outbound connects (socket_connect).
 *
 * Each hook finds the caller's rule set from its cgroup id (one hash lookup,
 * all that a process outside every selected workload pays), then makes one
 * LPM lookup per name it judges and hands the result to bw_decide() in
 * bulwark_decide.h, the same code the agent's unit tests run on the host.
 *
 * The programs are non-sleepable: they may read LPM tries, and bpf_d_path is
 * allowed in these hooks (PLATFORM.md). Block returns -EPERM; a non-zero ret
 * from an earlier LSM program is passed through untouched.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "bulwark_policy.bpf.h"

#define EPERM 1
#define AF_INET 2
#define AF_INET6 10
#define FMODE_READ 0x1
#define FMODE_WRITE 0x2
#define O_TRUNC 01000
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_UDPLITE 136
#define IPPROTO_MPTCP 262

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Resolves f_path into the path buffer; returns its length without NUL,
 * or a negative error (the path then matches nothing and is reported). */
static __always_inline long bw_resolve(struct bw_ctx *c, const struct path *path)
{
	/* bpf_d_path does not write through path; its prototype is not const. */
	long n = bpf_d_path((struct path *)path, c->s->path.data, BW_PATH_MAX);

	bw_clear_path(c);
	return bw_path_len(c, n, BW_STAT_PATH_UNRESOLVED);
}

SEC("lsm/bprm_check_security")
int BPF_PROG(bw_exec, struct linux_binprm *bprm, int ret)
{
	struct bw_outcome out, by_name = { BW_DECISION_ALLOW, 0, 0 };
	struct bw_ctx c;
	void *trie;
	long len, nlen;

	if (ret)
		return ret;
	if (!bw_ctx_init(&c, BW_TRIE_EXEC, BW_CLASS_EXEC, BW_CLASS_EXEC))
		return 0;

	trie = bpf_map_lookup_elem(&exec_tries, &c.ruleset_id);
	len = bw_resolve(&c, &bprm->file->f_path);
	out = bw_judge_path(&c, trie, len, BW_CLASS_EXEC, 0);

	/* The name the caller passed: deny rules only, because a link can
	 * point anywhere but the resolved file is what runs (docs/POLICY.md). */
	nlen = bpf_probe_read_kernel_str(c.s->name.data, sizeof(c.s->name.data), bprm->filename);
	if (nlen > 1 && c.s->name.data[0] == '/' && trie) {
		bool cut = nlen >= (long)sizeof(c.s->name.data);
		const struct bw_path_value *v = bw_lookup_path(trie, &c.s->name, nlen - 1, cut);

		if (v)
			by_name = bw_decide(c.rs, BW_CLASS_EXEC, v->access[0].deny_mask, ~0ULL,
					    v->access[0].rule_id);
	}
	/* Report the rule the caller's name matched when it decides as
	 * strongly: with a multi-call binary the resolved file (busybox)
	 * matches the rules of every applet linked to it. */
	if (by_name.decision != BW_DECISION_ALLOW && by_name.decision >= out.decision) {
		c.s->ev.h.flags |= BW_EVENT_BY_NAME;
		out = by_name;
	}
	if (out.decision == BW_DECISION_ALLOW)
		return 0;

	bw_fill_header(&c, BW_HOOK_EXEC, out);
	if (nlen > 0) {
		__u32 off = c.s->ev.h.path_len;

		if (off > BW_PATH_MAX)
			off = BW_PATH_MAX;
		if (nlen > BW_PATH_KEY_MAX)
			nlen = BW_PATH_KEY_MAX;
		bpf_probe_read_kernel(&c.s->ev.data[off], nlen, c.s->name.data);
		c.s->ev.h.path_len = off;
		c.s->ev.h.name_len = nlen;
	}
	bw_emit(&c, out);
	return out.decision == BW_DECISION_BLOCK ? -EPERM : 0;
}

SEC("lsm/file_open")
int BPF_PROG(bw_file_open, struct file *file, int ret)
{
	struct bw_outcome out = { BW_DECISION_ALLOW, 0, 0 };
	unsigned int fmode, fflags;
	struct bw_ctx c;
	void *trie;
	long len;

	if (ret)
		return ret;
	if (!bw_ctx_init(&c, BW_TRIE_FILE, BW_CLASS_FILE_READ, BW_CLASS_FILE_WRITE))
		return 0;

	/* The hook's arguments are BTF pointers: read directly, no helper. */
	fmode = file->f_mode;
	fflags = file->f_flags;
	trie = bpf_map_lookup_elem(&file_tries, &c.ruleset_id);
	len = bw_resolve(&c, &file->f_path);
	if (fmode & FMODE_READ)
		out = bw_judge_path(&c, trie, len, BW_CLASS_FILE_READ, 0);
	/* O_TRUNC on a read-only open still truncates (after this hook):
	 * judge it as a write. */
	if ((fmode & FMODE_WRITE) || (fflags & O_TRUNC)) {
		struct bw_outcome w = bw_judge_path(&c, trie, len, BW_CLASS_FILE_WRITE, 1);

		if (w.decision > out.decision)
			c.s->ev.h.flags |= BW_EVENT_WRITE;
		out = bw_outcome_worse(out, w);
	}
	if (out.decision == BW_DECISION_ALLOW)
		return 0;
	if (!(c.s->ev.h.flags & BW_EVENT_WRITE))
		c.s->ev.h.flags |= BW_EVENT_READ;

	bw_fill_header(&c, BW_HOOK_FILE, out);
	bw_emit(&c, out);
	return out.decision == BW_DECISION_BLOCK ? -EPERM : 0;
}

static __always_inline __u8 bw_socket_protocol(struct socket *sock)
{
	__u16 proto = sock->sk->sk_protocol;

	switch (proto) {
	case IPPROTO_TCP:
	case IPPROTO_MPTCP:
		return BW_PROTO_TCP;
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
		return BW_PROTO_UDP;
	default:
		return BW_PROTO_ANY; /* matches only rules for any protocol */
	}
}

SEC("lsm/socket_connect")
int BPF_PROG(bw_connect, struct socket *sock, struct sockaddr *address, int addrlen, int ret)
{
	struct bw_outcome out;
	struct bw_ctx c;
	__u16 family, port;
	__u8 proto;

	if (ret)
		return ret;
	family = address->sa_family;
	if (family != AF_INET && family != AF_INET6)
		return 0;
	if (!bw_ctx_init(&c, BW_TRIE_NET4 | BW_TRIE_NET6, BW_CLASS_NET, BW_CLASS_NET))
		return 0;

	bw_clear_connect(&c);
	proto = bw_socket_protocol(sock);
	/* One helper call for port and address together, not one for each:
	 * a helper call costs more than the copy (perf, docs/PERFORMANCE.md).
	 * BTF loads reach only struct sockaddr's 16 bytes, which hold an IPv4
	 * address but not an IPv6 one; one path serves both families. */
	if (family == AF_INET) {
		struct sockaddr_in sin;

		if (addrlen < (int)sizeof(sin))
			return 0; /* the kernel rejects it with EINVAL */
		if (bpf_probe_read_kernel(&sin, sizeof(sin), address))
			return 0; /* cannot fault: the hook gets the kernel's copy (move_addr_to_kernel) */
		port = bpf_ntohs(sin.sin_port);
		__builtin_memcpy(c.s->ev.h.addr, &sin.sin_addr, 4);
	} else {
		struct sockaddr_in6 sin6;

		if (addrlen < (int)sizeof(sin6))
			return 0;
		if (bpf_probe_read_kernel(&sin6, sizeof(sin6), address))
			return 0;
		port = bpf_ntohs(sin6.sin6_port);
		__builtin_memcpy(c.s->ev.h.addr, &sin6.sin6_addr, 16);
	}
	out = bw_judge_net(&c, family, port, proto);
	if (out.decision == BW_DECISION_ALLOW)
		return 0;

	bw_fill_header(&c, BW_HOOK_CONNECT, out);
	c.s->ev.h.family = family;
	c.s->ev.h.port = port;
	c.s->ev.h.protocol = proto;
	bw_emit(&c, out);
	return out.decision == BW_DECISION_BLOCK ? -EPERM : 0;
}
