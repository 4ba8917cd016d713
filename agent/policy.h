/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy model: what a validated Bulwark policy document says, after
 * parsing (policy-parse.c) and before compilation into kernel maps
 * (policy-compile.c). Every string is owned by the policy and freed by
 * bw_policy_free().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BW_API_VERSION "bulwark.dev/v1alpha1"

/* Limits enforced by the parser ("oversize lists"), documented in docs/POLICY.md. */
#define BW_MAX_RULES_PER_LIST 4096
#define BW_MAX_PORTS_PER_RULE 16
#define BW_MAX_SELECTOR_TERMS 32
#define BW_MAX_SELECTOR_VALUES 64
#define BW_MAX_CGROUP_PATHS 64
#define BW_MAX_NAME_LEN 253

enum bw_policy_kind {
	BW_KIND_CLUSTER,    /* ClusterBulwarkPolicy */
	BW_KIND_NAMESPACED, /* BulwarkPolicy */
	BW_KIND_HOST,       /* HostBulwarkPolicy */
	BW_KIND_POSTURE,    /* the agent's own: what unclassified kubepods cgroups get */
};

enum bw_mode {
	BW_MODE_BLOCK,
	BW_MODE_AUDIT,
};

/* Where something was written, for messages: "file:line:column". */
struct bw_pos {
	const char *file; /* borrowed from the owning policy's file string */
	unsigned line;    /* 1-based */
	unsigned column;  /* 1-based */
};

struct bw_label {
	char *key;
	char *value;
};

struct bw_labels {
	struct bw_label *items;
	size_t n;
};

enum bw_selector_op {
	BW_SEL_IN,
	BW_SEL_NOT_IN,
	BW_SEL_EXISTS,
	BW_SEL_DOES_NOT_EXIST,
};

struct bw_selector_expr {
	char *key;
	enum bw_selector_op op;
	char **values;
	size_t n_values;
};

/* A Kubernetes LabelSelector. An absent or empty selector selects everything. */
struct bw_selector {
	struct bw_labels match_labels;
	struct bw_selector_expr *exprs;
	size_t n_exprs;
};

enum bw_access {
	BW_ACCESS_READ = 1u << 0,
	BW_ACCESS_WRITE = 1u << 1,
	BW_ACCESS_ALL = BW_ACCESS_READ | BW_ACCESS_WRITE,
};

/* exec and files entries: {path: X} or {prefix: X}. */
struct bw_path_rule {
	bool is_prefix;
	char *path;      /* absolute, at most BW_RULE_PATH_MAX bytes */
	unsigned access; /* files only: BW_ACCESS_*; exec rules leave it 0 */
	struct bw_pos pos;
};

struct bw_port_range {
	uint16_t lo, hi; /* inclusive */
};

enum bw_protocol {
	BW_PROTOCOL_ANY = 0,
	BW_PROTOCOL_TCP = 6,
	BW_PROTOCOL_UDP = 17,
};

struct bw_net_rule {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t addr[16];  /* network byte order, host bits cleared */
	unsigned prefix_len;
	struct bw_port_range *ports; /* none: every port */
	size_t n_ports;
	enum bw_protocol protocol;
	char *cidr;        /* as written, for messages and events */
	struct bw_pos pos;
};

struct bw_path_rules {
	struct bw_path_rule *items;
	size_t n;
};

struct bw_net_rules {
	struct bw_net_rule *items;
	size_t n;
};

struct bw_policy {
	enum bw_policy_kind kind;
	char *name;
	char *namespace;                 /* BulwarkPolicy only */
	enum bw_mode mode;
	struct bw_selector namespace_selector; /* ClusterBulwarkPolicy only */
	struct bw_selector pod_selector;       /* Cluster and namespaced */
	char **cgroup_paths;             /* HostBulwarkPolicy: cgroup v2 path prefixes */
	size_t n_cgroup_paths;
	struct bw_path_rules exec_deny, exec_allow;
	struct bw_path_rules files_deny, files_allow;
	struct bw_net_rules net_deny, net_allow;
	char *file;                      /* the document's file */
	struct bw_pos pos;               /* the document's start */
	struct bw_pos name_pos;          /* metadata.name, for duplicate messages */
	unsigned doc_index;              /* 0-based document number in its file */
	/* Unique per parsed policy in this process (never reused, unlike an
	 * address): the compiler's cache knows an unchanged policy by it. */
	uint64_t serial;
	/* References beyond the first (a policy file's parse cache shares its
	 * policies with the lists that hold them); bw_policy_free drops one. */
	unsigned extra_refs;
};

struct bw_policy_list {
	struct bw_policy **items;
	size_t n;
};

/* One rejected document or warning: "file:line:column: field: reason". */
struct bw_diag {
	char *file;
	unsigned line, column;
	char *field;  /* e.g. "spec.network.deny[2].ports[0]" */
	char *reason;
	/* Identity of the rejected document when it could be read, so that the
	 * agent keeps the last good version of that policy in force. */
	char *kind;      /* may be NULL */
	char *name;      /* may be NULL */
	char *namespace; /* may be NULL */
	unsigned doc_index;
};

struct bw_diags {
	struct bw_diag *items;
	size_t n;
};

const char *bw_policy_kind_name(enum bw_policy_kind kind);
const char *bw_mode_name(enum bw_mode mode);

void bw_policy_free(struct bw_policy *p);

/* Another reference to p (freed by one more bw_policy_free). */
struct bw_policy *bw_policy_ref(struct bw_policy *p);

/* The next serial for a newly parsed policy. */
uint64_t bw_policy_next_serial(void);

/* True when a and b say the same in every field, positions and file
 * included (their serials aside): a reload may then keep a in force in
 * place of b, and whatever was compiled from a still holds. */
bool bw_policy_equal(const struct bw_policy *a, const struct bw_policy *b);
void bw_policy_list_clear(struct bw_policy_list *l);
void bw_diags_clear(struct bw_diags *d);

/* Formats a diagnostic as "file:line:column: field: reason" into a new string. */
char *bw_diag_format(const struct bw_diag *d);

/* Parses every document of one file. Valid documents are appended to out,
 * each rejected document adds one entry to diags (and nothing to out).
 * Returns 0, or a negative errno when the file cannot be read at all (that
 * is also reported in diags). */
int bw_policy_parse_file(const char *path, struct bw_policy_list *out, struct bw_diags *diags);

/* Same, from a buffer; name is used in messages. */
int bw_policy_parse_buffer(const char *name, const char *buf, size_t len,
			   struct bw_policy_list *out, struct bw_diags *diags);

/* Parses every *.yaml and *.yml file directly in dir, in name order, and
 * rejects duplicate policies (same kind, namespace and name) after the
 * first, naming the first one's position. The first document of a policy
 * wins even when it is itself rejected (its identity could be read): a later
 * copy is then rejected too, so that the agent keeps the last good version
 * rather than switch to whichever copy happens to be valid. A policy in out
 * may also be named by a diag (a later, broken copy): out wins. Returns 0 or
 * a negative errno when the directory cannot be read. */
int bw_policy_load_dir(const char *dir, struct bw_policy_list *out, struct bw_diags *diags);

/* What bw_policy_load_dir_cached remembers of each file it parsed: its
 * identity and times (device, inode, size, mtime, ctime) and what parsing
 * gave (policies, shared by reference; diagnostics; claimed identities).
 * A file whose stat is unchanged is not read again. A file changed less
 * than a second before it was read cannot be vouched for by its stat (a
 * second write in the same timestamp tick would look unchanged: git's
 * "racy" files): it is read again each time, and parsed again only when its
 * bytes differ (by hash) from what was parsed. */
struct bw_parse_cache;

struct bw_parse_cache *bw_parse_cache_new(void);
void bw_parse_cache_free(struct bw_parse_cache *c);
/* How recent a change keeps a file out of the cache (default 1 s; tests
 * set 0). */
void bw_parse_cache_set_racy_window(struct bw_parse_cache *c, long seconds);
/* Files read (parsed) and files taken from the cache by the last load. */
void bw_parse_cache_counts(const struct bw_parse_cache *c, size_t *parsed, size_t *reused);

/* bw_policy_load_dir with a cache (NULL: none). Entries of files that are
 * gone are dropped. */
int bw_policy_load_dir_cached(const char *dir, struct bw_parse_cache *cache, struct bw_policy_list *out,
			      struct bw_diags *diags);
