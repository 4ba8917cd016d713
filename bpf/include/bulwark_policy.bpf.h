/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The policy maps and the checks built on them, shared by the enforcing
 * BPF-LSM programs (bpf/lsm/enforce.bpf.c) and the degraded-mode fallbacks
 * (bpf/trace/fallback.bpf.c), so that both decide with the same maps, the
 * same lookups and the same bw_decide() (bulwark_decide.h).
 *
 * Whichever of the two objects loads makes these maps; the agent hands them
 * to nothing else (only one of the two is ever loaded).
 */
#ifndef BULWARK_POLICY_BPF_H
#define BULWARK_POLICY_BPF_H

#include "bulwark_abi.h"
#include "bulwark_decide.h"
#include "bulwark_maps.bpf.h"

#define BW_AF_INET 2
#define BW_AF_INET6 10

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

/* A path as the hooks read it, and the LPM key over its first
 * BW_PATH_KEY_MAX bytes in the same memory: looked up where it was written
 * (no copy into a key), while data still holds a long path whole for the
 * event. */
union bw_path_buf {
	struct bw_path_key key;
	struct {
		__u32 prefixlen;
		char data[BW_PATH_MAX];
	};
};

/* Per-CPU scratch: the event being built, the path being judged (bpf_d_path
 * writes straight into it; it goes into the event only when one is sent),
 * the exec caller's name, the CIDR keys. Too big for the 512-byte stack. */
struct bw_scratch {
	struct bw_event ev;
	union bw_path_buf path;
	struct bw_path_key name;
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

/* The header of an event, from what every program type may ask: the
 * cgroup sock_addr programs of the degraded mode cannot read the task
 * (the agent fills comm and the parent from the process table). */
static __always_inline void bw_fill_header_common(struct bw_ctx *c, __u8 hook, struct bw_outcome o)
{
	struct bw_event_header *h = &c->s->ev.h;
	__u32 tgid;
	struct bw_process *p;

	h->time_ns = bpf_ktime_get_boot_ns();
	h->cgroup_id = c->cgroup_id;
	h->pid = bpf_get_current_pid_tgid() >> 32;
	h->ppid = 0;
	h->uid = (__u32)bpf_get_current_uid_gid();
	h->ruleset_id = c->ruleset_id;
	h->rule_id = o.rule_id;
	h->hook = hook;
	h->decision = o.decision;
	h->slot = o.slot;
	h->comm[0] = 0;
	/* Only when an event is sent: the table names the process for it. */
	tgid = h->pid;
	p = bpf_map_lookup_elem(&processes, &tgid);
	h->exec_id = p ? p->exec_id : 0;
}

static __always_inline void bw_fill_header(struct bw_ctx *c, __u8 hook, struct bw_outcome o)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	bw_fill_header_common(c, hook, o);
	c->s->ev.h.ppid = BPF_CORE_READ(task, real_parent, tgid);
	bpf_get_current_comm(c->s->ev.h.comm, sizeof(c->s->ev.h.comm));
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
	__u64 path_len = c->s->ev.h.path_len;
	__u64 size = path_len + c->s->ev.h.name_len;

	if (o.decision != BW_DECISION_BLOCK)
		bw_stat_inc(BW_STAT_AUDITED);
	else if (!(c->s->ev.h.flags & BW_EVENT_FALLBACK))
		bw_stat_inc(BW_STAT_BLOCKED);
	else
		bw_stat_inc(c->s->ev.h.flags & BW_EVENT_KILLED ? BW_STAT_KILLED : BW_STAT_WOULD_BLOCK);
	if (!bw_rate_allows(c, o.slot))
		return;
	/* The judged path joins the event only now: most checks send none.
	 * bw_path_len() kept path_len within BW_PATH_MAX; the barrier makes
	 * clang test the register that is passed, for the verifier. */
	barrier_var(path_len);
	if (path_len > BW_PATH_MAX)
		return;
	if (path_len)
		bpf_probe_read_kernel(c->s->ev.data, path_len, c->s->path.data);
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

/* Looks a name up in one trie, where it was read (bytes past prefixlen are
 * never compared). len is the name's length without its NUL, cut tells
 * that the bytes held are only the start of a longer name. */
static __always_inline const struct bw_path_value *
bw_lookup_path(void *trie, struct bw_path_key *key, __u32 len, bool cut)
{
	if (!trie)
		return NULL;
	/* A cut name is judged by its first BW_RULE_PATH_MAX bytes only: every
	 * prefix rule fits in them, and no exact rule can equal a longer name
	 * (a cut string's stand-in NUL must never complete an exact rule). */
	key->prefixlen = cut ? BW_RULE_PATH_MAX * 8 : bw_path_key_bits(len);
	return bpf_map_lookup_elem(trie, key);
}

/* Readies the event header for a path or name read into path or name. */
static __always_inline void bw_clear_path(struct bw_ctx *c)
{
	c->s->ev.h.flags = 0;
	c->s->ev.h.path_error = 0;
	c->s->ev.h.name_len = 0;
	c->s->ev.h.family = 0;
	c->s->ev.h.port = 0;
	c->s->ev.h.protocol = 0;
	__builtin_memset(c->s->ev.h.addr, 0, sizeof(c->s->ev.h.addr));
}

/* n is what was read into path.data (bytes with the NUL, or an error).
 * Returns the length to judge, or -1 for a path that cannot be judged
 * (an error, or not absolute): it then matches no rule, which an allow
 * list denies, and it is counted in stat. */
static __always_inline long bw_path_len(struct bw_ctx *c, long n, __u32 stat)
{
	if (n <= 0 || c->s->path.data[0] != '/') {
		c->s->ev.h.flags |= BW_EVENT_UNRESOLVED;
		c->s->ev.h.path_error = n < 0 ? n : -2 /* ENOENT: not an absolute name */;
		c->s->ev.h.path_len = 0;
		bw_stat_inc(stat);
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
		v = bw_lookup_path(trie, &c->s->path.key, len, len > BW_RULE_PATH_MAX);
	if (v && access < 2) {
		deny = v->access[access].deny_mask;
		allow = v->access[access].allow_mask;
		rule = v->access[access].rule_id;
	}
	return bw_decide(c->rs, cls, deny, allow, rule);
}


/* Judges a connect whose address is in c->s->ev.h.addr (v4 in the first 4
 * bytes) against the workload's CIDR tries. */
static __always_inline struct bw_outcome bw_judge_net(struct bw_ctx *c, __u16 family, __u16 port, __u8 proto)
{
	const struct bw_net_value *v = NULL;
	__u64 deny = 0, allow = 0;
	__u32 rule = 0;
	void *trie;

	if (family == BW_AF_INET || bw_ipv6_is_v4mapped(c->s->ev.h.addr)) {
		struct bw_net4_key *k = &c->s->k4;

		__builtin_memcpy(k->addr, family == BW_AF_INET ? &c->s->ev.h.addr[0] : &c->s->ev.h.addr[12], 4);
		k->prefixlen = 32;
		trie = bpf_map_lookup_elem(&net4_tries, &c->ruleset_id);
		if (trie)
			v = bpf_map_lookup_elem(trie, k);
	} else {
		struct bw_net6_key *k = &c->s->k6;

		__builtin_memcpy(k->addr, c->s->ev.h.addr, 16);
		k->prefixlen = 128;
		trie = bpf_map_lookup_elem(&net6_tries, &c->ruleset_id);
		if (trie)
			v = bpf_map_lookup_elem(trie, k);
	}
	if (v)
		bw_net_collect(v, port, proto, c->rs->block_mask, &deny, &allow, &rule);
	return bw_decide(c->rs, BW_CLASS_NET, deny, allow, rule);
}

/* Clears what a connect event does not use. */
static __always_inline void bw_clear_connect(struct bw_ctx *c)
{
	c->s->ev.h.flags = 0;
	c->s->ev.h.path_len = 0;
	c->s->ev.h.name_len = 0;
	c->s->ev.h.path_error = 0;
	__builtin_memset(c->s->ev.h.addr, 0, sizeof(c->s->ev.h.addr));
}

#endif /* BULWARK_POLICY_BPF_H */
