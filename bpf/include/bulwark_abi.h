/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Structures shared by the BPF programs and the agent: map keys and values,
 * events and counters. Kept free of kernel and libc headers so that it compiles
 * in both worlds; the includer provides __u8/__u16/__u32/__u64 (vmlinux.h in
 * BPF, <linux/types.h> in user space).
 *
 * Map layout (see docs/DESIGN.md for the reasoning):
 *
 *   workloads   HASH   cgroup id -> struct bw_workload { ruleset id }
 *   rulesets    ARRAY  ruleset id -> struct bw_ruleset (modes, allow-list masks)
 *   exec_tries  ARRAY_OF_MAPS ruleset id -> LPM_TRIE bw_path_key -> bw_path_value
 *   file_tries  ARRAY_OF_MAPS ruleset id -> LPM_TRIE bw_path_key -> bw_path_value
 *   net4_tries  ARRAY_OF_MAPS ruleset id -> LPM_TRIE bw_net4_key -> bw_net_value
 *   net6_tries  ARRAY_OF_MAPS ruleset id -> LPM_TRIE bw_net6_key -> bw_net_value
 *
 * A published ruleset id is never modified: a policy change builds a new id
 * (config plus inner tries), then points each workload at it with a single
 * map update, so a check sees either the old or the new rule set, never half.
 */
#ifndef BULWARK_ABI_H
#define BULWARK_ABI_H

/* Path keys: LPM data is at most 256 bytes in the kernel. A rule path is at
 * most 255 bytes; an exact rule is stored with its terminating NUL, a prefix
 * rule without. Looking up "path\0" then finds the longest rule that is a
 * prefix of the path, and an exact rule only when the whole path is equal.
 * Paths longer than 255 bytes are looked up by their first 256 bytes, which
 * loses nothing: every rule that could match them is no longer than that. */
#define BW_PATH_KEY_MAX 256
#define BW_RULE_PATH_MAX (BW_PATH_KEY_MAX - 1)

/* Full path buffer for bpf_d_path and for events. */
#define BW_PATH_MAX 4096

/* Policies that can select one workload at once: one bit each in the masks. */
#define BW_SLOTS_MAX 64

/* Port rules that one CIDR entry can carry after inheritance (see compiler). */
#define BW_PORT_RULES_MAX 16

#define BW_TASK_COMM_LEN 16

/* Executable names kept per process (bprm->filename: as the caller passed it). */
#define BW_EXE_MAX 256
/* Ancestors events name. */
#define BW_ANCESTORS_MAX 4

enum bw_hook {
	BW_HOOK_EXEC = 1,
	BW_HOOK_FILE = 2,
	BW_HOOK_CONNECT = 3,
	/* Not a decision: a cgroup was made under kubepods (the header's
	 * cgroup_id, its path in data; ruleset_id is what it inherited, 0 for
	 * nothing). The agent classifies it at once. */
	BW_HOOK_CGROUP_NEW = 4,
};

/* Rule classes: each has its own allow-list mask in a ruleset. */
enum bw_class {
	BW_CLASS_EXEC = 0,
	BW_CLASS_FILE_READ = 1,
	BW_CLASS_FILE_WRITE = 2,
	BW_CLASS_NET = 3,
	BW_CLASS_COUNT = 4,
};

enum bw_decision {
	BW_DECISION_ALLOW = 0,
	BW_DECISION_AUDIT = 1,  /* Audit mode: allowed, reported as "would block" */
	BW_DECISION_BLOCK = 2,  /* Block mode: -EPERM */
};

/* bw_ruleset.tries: which inner maps exist for this ruleset id. */
enum {
	BW_TRIE_EXEC = 1u << 0,
	BW_TRIE_FILE = 1u << 1,
	BW_TRIE_NET4 = 1u << 2,
	BW_TRIE_NET6 = 1u << 3,
};

struct bw_workload {
	__u32 ruleset_id;
	__u32 flags;
};

struct bw_ruleset {
	__u64 block_mask;                     /* slots whose policy runs in Block mode */
	__u64 allowlist_mask[BW_CLASS_COUNT]; /* slots with a non-empty allow list */
	__u32 tries;                          /* BW_TRIE_* */
	__u32 generation;                     /* agent generation that built it */
};

struct bw_path_key {
	__u32 prefixlen; /* in bits, as LPM_TRIE wants */
	__u8 data[BW_PATH_KEY_MAX];
};

/* What the rules of one ruleset say about one path for one kind of access,
 * already merged over every rule that matches (the compiler folds the rules of
 * shorter prefixes into longer ones, so the longest match says it all). */
struct bw_path_verdict {
	__u64 deny_mask;  /* slots whose deny list matches */
	__u64 allow_mask; /* slots whose allow list matches */
	__u32 rule_id;    /* deny rule to report, Block policies first; 0 if none */
	__u32 pad;
};

/* exec tries use access[0]; file tries use [0] for read, [1] for write. */
struct bw_path_value {
	struct bw_path_verdict access[2];
};

struct bw_net4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct bw_net6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

enum {
	BW_PROTO_ANY = 0,
	BW_PROTO_TCP = 6,
	BW_PROTO_UDP = 17,
};

struct bw_port_rule {
	__u16 port_lo;  /* host byte order, inclusive; 0..65535 for "any" */
	__u16 port_hi;
	__u8 protocol;  /* BW_PROTO_* */
	__u8 slot;      /* policy slot, < BW_SLOTS_MAX */
	__u8 allow;     /* 1: allow-list entry, 0: deny entry */
	__u8 pad;
	__u32 rule_id;
};

struct bw_net_value {
	__u32 count;
	__u32 pad;
	struct bw_port_rule rules[BW_PORT_RULES_MAX];
};

/* Event flags. */
enum {
	BW_EVENT_UNRESOLVED = 1u << 0, /* the path could not be resolved in full */
	BW_EVENT_TRUNCATED = 1u << 1,  /* target did not fit the event */
	BW_EVENT_BY_NAME = 1u << 2,    /* exec matched the name the caller passed */
	BW_EVENT_WRITE = 1u << 3,      /* file event for write access */
	BW_EVENT_READ = 1u << 4,       /* file event for read access */
	/* Decided by a degraded-mode fallback (bpf/trace/fallback.bpf.c), not
	 * by BPF-LSM: a Block decision there could not deny ("would block"),
	 * unless KILLED says the caller was sent SIGKILL. Paths are the names
	 * the caller passed, not resolved files. */
	BW_EVENT_FALLBACK = 1u << 5,
	BW_EVENT_KILLED = 1u << 6,
};

struct bw_event_header {
	__u64 time_ns;      /* CLOCK_BOOTTIME, bpf_ktime_get_boot_ns */
	__u64 cgroup_id;
	__u32 pid;          /* thread group id */
	__u32 ppid;
	__u32 uid;
	__u32 ruleset_id;
	__u32 rule_id;      /* 0: not in an allow list, or unresolved */
	__u8 hook;          /* enum bw_hook */
	__u8 decision;      /* enum bw_decision */
	__u8 slot;          /* policy slot in the ruleset */
	__u8 family;        /* connect: AF_INET or AF_INET6 */
	__u16 flags;        /* BW_EVENT_* */
	__u16 port;         /* connect: host byte order */
	__u8 protocol;      /* connect: BW_PROTO_* */
	__u8 pad[3];
	__s32 path_error;   /* bpf_d_path error when BW_EVENT_UNRESOLVED */
	__u8 addr[16];      /* connect: v4 in the first 4 bytes */
	char comm[BW_TASK_COMM_LEN];
	__u32 path_len;     /* bytes of path[] that follow, NUL included */
	__u32 name_len;     /* exec: bytes of the caller's name after the path */
	__u64 exec_id;      /* the caller's, from the process table; 0: not in it */
};

/* A ring-buffer record is the header, then path_len bytes of path (exec: the
 * resolved executable; file: the opened file), then name_len bytes of the
 * name the exec caller passed; only the used bytes are sent. */
struct bw_event {
	struct bw_event_header h;
	char data[BW_PATH_MAX + BW_PATH_KEY_MAX];
};

/* The process table (bpf/trace/process.bpf.c): thread-group id ->
 * what it runs and who started it, so that events name the executable and
 * the parent chain without reading /proc. Exec ids are unique per boot:
 * the kernel counts from 1; processes found in /proc at start get
 * 1 << 63 | start time in ticks << 22 | pid (unique per process too). Exited
 * processes stay until the LRU map needs the room, so that events read a
 * moment later still find them. */
struct bw_process {
	__u64 exec_id;
	__u64 parent_exec_id; /* the parent's exec id when this one began */
	__u64 start_ns;       /* CLOCK_BOOTTIME of the fork or exec */
	__u32 pid;            /* thread-group id (the key) */
	__u32 ppid;
	__u32 flags;          /* BW_PROC_* */
	__u32 exe_len;        /* bytes of exe, NUL included */
	char exe[BW_EXE_MAX];
};

enum {
	BW_PROC_EXITED = 1u << 0,
	BW_PROC_SEEDED = 1u << 1, /* from /proc at the agent's start */
	BW_PROC_FORKED = 1u << 2, /* no exec since the fork: exe is the parent's */
};

#define BW_EXEC_ID_SEEDED (1ULL << 63)

/* Event rate limiting, per workload and policy: beyond the limit in one
 * window the kernel counts instead of sending, and the agent reports the
 * count ("suppressed N events for policy P in workload W"). */
struct bw_ratelimit_key {
	__u64 cgroup_id;
	__u32 ruleset_id;
	__u32 slot;
};

struct bw_ratelimit_value {
	__u64 window_start_ns;
	__u64 sent;        /* in the current window */
	__u64 suppressed;  /* since the entry was made; never reset by the kernel */
};

/* Counters, per CPU; the agent sums them. Nothing is lost silently. */
enum bw_stat {
	BW_STAT_CHECKS = 0,          /* hook calls from selected workloads */
	BW_STAT_BLOCKED,
	BW_STAT_AUDITED,
	BW_STAT_EVENTS_DROPPED,      /* ring buffer full */
	BW_STAT_PATH_UNRESOLVED,     /* bpf_d_path failed */
	BW_STAT_PATH_LONG,           /* path longer than a rule can be (looked up by prefix) */
	BW_STAT_RULESET_MISSING,     /* workload points at an unpublished ruleset */
	BW_STAT_CGROUP_INHERITED,    /* new cgroups that inherited a rule set */
	BW_STAT_WORKLOADS_FULL,      /* inheritance failed: workloads map full */
	BW_STAT_SUPPRESSED,          /* events not sent: over the rate limit */
	BW_STAT_RATELIMIT_FULL,      /* rate-limit table full: sent unlimited */
	BW_STAT_KUBEPODS_NEW,        /* cgroups made under kubepods */
	BW_STAT_KUBEPODS_FULL,       /* not tracked: kubepods map full */
	BW_STAT_PROC_INSERTED,       /* process table: entries made by fork or exec */
	BW_STAT_PROC_EXITED,         /* process table: processes that exited */
	BW_STAT_PROC_UNTRACKED,      /* exec of a process the table did not have */
	BW_STAT_WOULD_BLOCK,         /* degraded: Block decisions a tracepoint could not enforce */
	BW_STAT_KILLED,              /* degraded, --degraded-action=kill: callers sent SIGKILL */
	BW_STAT_FALLBACK_UNJUDGED,   /* degraded: names not judged (relative, unreadable) */
	BW_STAT_CGROUP_TREE_CHANGES, /* cgroup2 mkdir and rmdir: an unchanged count means the agent's last walk still holds */
	BW_STAT_COUNT,
};

#endif /* BULWARK_ABI_H */
