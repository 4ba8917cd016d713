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

#include "bulwark_abi.h"
#include "bulwark_decide.h"
#include "bulwark_maps.bpf.h"

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

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BW_DEFAULT_RULESETS);
	__type(key, __u32);
	__type(value, struct bw_ruleset);
} rulesets SEC(".maps");

/* Inner map templates: the agent creates one trie per published rule set,
 * sized to its rules; only type, key, value and flags must match these. */
struct bw_path_trie {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1);
	__type(key, struct bw_path_key);
	__type(value, struct bw_path_value);
};

struct bw_net4_trie {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1);
	__type(key, struct bw_net4_key);
	__type(value, struct bw_net_value);
};

struct bw_net6_trie {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1);
	__type(key, struct bw_net6_key);
	__type(value, struct bw_net_value);
};

/* Inner values are only reached through pointers, for which clang emits
 * forward declarations; libbpf needs their sizes, so make BTF carry them. */
struct bw_path_value bw_btf_path_value SEC(".bss");
struct bw_net_value bw_btf_net_value SEC(".bss");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, BW_DEFAULT_RULESETS);
	__type(key, __u32);
	__array(values, struct bw_path_trie);
} exec_tries SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, BW_DEFAULT_RULESETS);
	__type(key, __u32);
	__array(values, struct bw_path_trie);
} file_tries SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, BW_DEFAULT_RULESETS);
	__type(key, __u32);
	__array(values, struct bw_net4_trie);
} net4_tries SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, BW_DEFAULT_RULESETS);
	__type(key, __u32);
	__array(values, struct bw_net6_trie);
} net6_tries SEC(".maps");

/* Set by the agent before load: events per window per (workload, policy);
 * 0 sends every event. */
const volatile __u64 bw_rate_limit = 0;
const volatile __u64 bw_rate_window_ns = 1000000000ULL;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct bw_ratelimit_key);
	__type(value, struct bw_ratelimit_value);
} ratelimit SEC(".maps");

/* Per-CPU scratch: the event being built (bpf_d_path writes straight into
 * it), the exec name and the LPM key. Too big for the 512-byte stack. */
struct bw_scratch {
	struct bw_event ev;
	char name[BW_PATH_KEY_MAX];
	struct bw_path_key key;
	union {
		struct bw_net4_key k4;
		struct bw_net6_key k6;
	};
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bw_scratch);
} scratch SEC(".maps");

struct bw_ctx {
	__u64 cgroup_id;
	__u32 ruleset_id;
	const struct bw_ruleset *rs;
	struct bw_scratch *s;
};

/* Finds the caller's rule set; false when the caller is not selected. */
static __always_inline bool bw_ctx_init(struct bw_ctx *c, __u32 need_tries, unsigned int cls_lo,
					unsigned int cls_hi)
{
	const struct bw_workload *w;
	__u32 zero = 0;
	unsigned int cls;
	bool allowlist = false;

	c->cgroup_id = bpf_get_current_cgroup_id();
	w = bpf_map_lookup_elem(&workloads, &c->cgroup_id);
	if (!w)
		return false;

	c->ruleset_id = w->ruleset_id;
	c->rs = bpf_map_lookup_elem(&rulesets, &c->ruleset_id);
	if (!c->rs || !c->rs->generation) {
		/* The agent publishes a rule set before pointing a workload at
		 * it, so this is a bug or a map that was edited by hand. */
		bw_stat_inc(BW_STAT_RULESET_MISSING);
		return false;
	}
	for (cls = cls_lo; cls <= cls_hi && cls < BW_CLASS_COUNT; cls++)
		if (c->rs->allowlist_mask[cls])
			allowlist = true;
	if (!(c->rs->tries & need_tries) && !allowlist)
		return false; /* no rule of this hook's kind for this workload */

	c->s = bpf_map_lookup_elem(&scratch, &zero);
	if (!c->s)
		return false;
	bw_stat_inc(BW_STAT_CHECKS);
	return true;
}

static __always_inline void bw_fill_header(struct bw_ctx *c, __u8 hook, struct bw_outcome o)
{
	struct bw_event_header *h = &c->s->ev.h;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	h->time_ns = bpf_ktime_get_boot_ns();
	h->cgroup_id = c->cgroup_id;
	h->pid = bpf_get_current_pid_tgid() >> 32;
	h->ppid = BPF_CORE_READ(task, real_parent, tgid);
	h->uid = (__u32)bpf_get_current_uid_gid();
	h->ruleset_id = c->ruleset_id;
	h->rule_id = o.rule_id;
	h->hook = hook;
	h->decision = o.decision;
	h->slot = o.slot;
	bpf_get_current_comm(h->comm, sizeof(h->comm));
	{
		/* Only when an event is sent: the table names the process for it. */
		__u32 tgid = h->pid;
		struct bw_process *p = bpf_map_lookup_elem(&processes, &tgid);

		h->exec_id = p ? p->exec_id : 0;
	}
}

/* Whether this event may be sent: a fixed window per (cgroup, rule set,
 * slot). Enforcement never depends on it; only the report is held back. */
static __always_inline bool bw_rate_allows(struct bw_ctx *c, __u8 slot)
{
	struct bw_ratelimit_key key = { c->cgroup_id, c->ruleset_id, slot };
	struct bw_ratelimit_value *v, fresh = {};
	__u64 now;

	if (!bw_rate_limit)
		return true;
	now = bpf_ktime_get_ns();
	v = bpf_map_lookup_elem(&ratelimit, &key);
	if (!v) {
		fresh.window_start_ns = now;
		fresh.sent = 1;
		if (bpf_map_update_elem(&ratelimit, &key, &fresh, BPF_NOEXIST))
			bw_stat_inc(BW_STAT_RATELIMIT_FULL); /* full or raced: send */
		return true;
	}
	if (now - v->window_start_ns >= bw_rate_window_ns) {
		/* Racy across CPUs, and harmless: a window may start twice. */
		v->window_start_ns = now;
		v->sent = 0;
	}
	if (__sync_fetch_and_add(&v->sent, 1) < bw_rate_limit)
		return true;
	__sync_fetch_and_add(&v->suppressed, 1);
	bw_stat_inc(BW_STAT_SUPPRESSED);
	return false;
}

static __always_inline void bw_emit(struct bw_ctx *c, struct bw_outcome o)
{
	__u64 size = (__u64)c->s->ev.h.path_len + c->s->ev.h.name_len;

	bw_stat_inc(o.decision == BW_DECISION_BLOCK ? BW_STAT_BLOCKED : BW_STAT_AUDITED);
	if (!bw_rate_allows(c, o.slot))
		return;
	if (size > sizeof(c->s->ev.data))
		size = sizeof(c->s->ev.data);
	size += sizeof(c->s->ev.h);
	/* Make the verifier see the bound on the register that is passed:
	 * clang otherwise clamps a copy and passes the original. */
	barrier_var(size);
	if (size > sizeof(c->s->ev))
		return;
	if (bpf_ringbuf_output(&events, &c->s->ev, size, 0))
		bw_stat_inc(BW_STAT_EVENTS_DROPPED);
}

/* Looks a path up in one trie. len is the path length without its NUL, cut
 * tells that the bytes held are only the start of a longer name. */
static __always_inline const struct bw_path_value *
bw_lookup_path(struct bw_ctx *c, void *trie, const char *src, __u32 len, bool cut)
{
	struct bw_path_key *key = &c->s->key;

	if (!trie)
		return NULL;
	/* Bytes past prefixlen are never compared, so copying a whole key's
	 * worth (stale tail included) is fine and keeps the verifier happy. */
	bpf_probe_read_kernel(key->data, sizeof(key->data), src);
	/* A cut name is judged by its first BW_RULE_PATH_MAX bytes only: every
	 * prefix rule fits in them, and no exact rule can equal a longer name
	 * (a cut string's stand-in NUL must never complete an exact rule). */
	key->prefixlen = cut ? BW_RULE_PATH_MAX * 8 : bw_path_key_bits(len);
	return bpf_map_lookup_elem(trie, key);
}

/* Resolves f_path into the event buffer; returns its length without NUL,
 * or a negative error (the path then matches nothing and is reported). */
static __always_inline long bw_resolve(struct bw_ctx *c, const struct path *path)
{
	/* bpf_d_path does not write through path; its prototype is not const. */
	long n = bpf_d_path((struct path *)path, c->s->ev.data, BW_PATH_MAX);

	c->s->ev.h.flags = 0;
	c->s->ev.h.path_error = 0;
	c->s->ev.h.name_len = 0;
	c->s->ev.h.family = 0;
	c->s->ev.h.port = 0;
	c->s->ev.h.protocol = 0;
	__builtin_memset(c->s->ev.h.addr, 0, sizeof(c->s->ev.h.addr));
	if (n <= 0 || c->s->ev.data[0] != '/') {
		c->s->ev.h.flags |= BW_EVENT_UNRESOLVED;
		c->s->ev.h.path_error = n < 0 ? n : -2 /* ENOENT: not an absolute name */;
		c->s->ev.h.path_len = 0;
		bw_stat_inc(BW_STAT_PATH_UNRESOLVED);
		return -1;
	}
	c->s->ev.h.path_len = n;
	if (n - 1 > BW_RULE_PATH_MAX)
		bw_stat_inc(BW_STAT_PATH_LONG);
	return n - 1;
}

static __always_inline struct bw_outcome bw_judge_path(struct bw_ctx *c, void *trie, long len,
						       unsigned int cls, unsigned int access)
{
	const struct bw_path_value *v = NULL;
	__u64 deny = 0, allow = 0;
	__u32 rule = 0;

	if (len >= 0)
		v = bw_lookup_path(c, trie, c->s->ev.data, len, len > BW_RULE_PATH_MAX);
	if (v && access < 2) {
		deny = v->access[access].deny_mask;
		allow = v->access[access].allow_mask;
		rule = v->access[access].rule_id;
	}
	return bw_decide(c->rs, cls, deny, allow, rule);
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
	nlen = bpf_probe_read_kernel_str(c.s->name, sizeof(c.s->name), BPF_CORE_READ(bprm, filename));
	if (nlen > 1 && c.s->name[0] == '/' && trie) {
		bool cut = nlen >= (long)sizeof(c.s->name);
		const struct bw_path_value *v = bw_lookup_path(&c, trie, c.s->name, nlen - 1, cut);

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
		bpf_probe_read_kernel(&c.s->ev.data[off], nlen, c.s->name);
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

	fmode = BPF_CORE_READ(file, f_mode);
	fflags = BPF_CORE_READ(file, f_flags);
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
	__u16 proto = BPF_CORE_READ(sock, sk, sk_protocol);

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
	const struct bw_net_value *v = NULL;
	struct bw_outcome out;
	__u64 deny = 0, allow = 0;
	__u32 rule = 0;
	struct bw_ctx c;
	__u16 family, port;
	__u8 proto;
	void *trie;

	if (ret)
		return ret;
	family = BPF_CORE_READ(address, sa_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	if (!bw_ctx_init(&c, BW_TRIE_NET4 | BW_TRIE_NET6, BW_CLASS_NET, BW_CLASS_NET))
		return 0;

	c.s->ev.h.flags = 0;
	c.s->ev.h.path_len = 0;
	c.s->ev.h.name_len = 0;
	c.s->ev.h.path_error = 0;
	__builtin_memset(c.s->ev.h.addr, 0, sizeof(c.s->ev.h.addr));
	proto = bw_socket_protocol(sock);

	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)address;

		if (addrlen < (int)sizeof(*sin))
			return 0; /* the kernel rejects it with EINVAL */
		port = bpf_ntohs(BPF_CORE_READ(sin, sin_port));
		bpf_probe_read_kernel(c.s->ev.h.addr, 4, &sin->sin_addr);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)address;

		if (addrlen < (int)sizeof(*sin6))
			return 0;
		port = bpf_ntohs(BPF_CORE_READ(sin6, sin6_port));
		bpf_probe_read_kernel(c.s->ev.h.addr, 16, &sin6->sin6_addr);
	}

	if (family == AF_INET || bw_ipv6_is_v4mapped(c.s->ev.h.addr)) {
		struct bw_net4_key *k = &c.s->k4;

		__builtin_memcpy(k->addr, family == AF_INET ? &c.s->ev.h.addr[0] : &c.s->ev.h.addr[12], 4);
		k->prefixlen = 32;
		trie = bpf_map_lookup_elem(&net4_tries, &c.ruleset_id);
		if (trie)
			v = bpf_map_lookup_elem(trie, k);
	} else {
		struct bw_net6_key *k = &c.s->k6;

		__builtin_memcpy(k->addr, c.s->ev.h.addr, 16);
		k->prefixlen = 128;
		trie = bpf_map_lookup_elem(&net6_tries, &c.ruleset_id);
		if (trie)
			v = bpf_map_lookup_elem(trie, k);
	}
	if (v)
		bw_net_collect(v, port, proto, c.rs->block_mask, &deny, &allow, &rule);
	out = bw_decide(c.rs, BW_CLASS_NET, deny, allow, rule);
	if (out.decision == BW_DECISION_ALLOW)
		return 0;

	bw_fill_header(&c, BW_HOOK_CONNECT, out);
	c.s->ev.h.family = family;
	c.s->ev.h.port = port;
	c.s->ev.h.protocol = proto;
	bw_emit(&c, out);
	return out.decision == BW_DECISION_BLOCK ? -EPERM : 0;
}
