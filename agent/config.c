/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config.h"

void bw_config_defaults(struct bw_config *c)
{
	memset(c, 0, sizeof(*c));
	c->cgroup_root = strdup("/sys/fs/cgroup");
	c->root = strdup("/");
	c->journald = BW_AUTO;
	c->kubernetes = BW_AUTO;
	c->unclassified = BW_POSTURE_AUDIT;
	c->hook_socket = strdup("/run/bulwark/hook.sock");
	c->syslog = BW_AUTO;
	c->syslog_target = strdup("unix:/dev/log");
	c->syslog_facility = strdup("authpriv");
	c->events_file_max_bytes = 100ULL << 20;
	c->events_file_keep = 5;
	c->queue_len = 4096;
	c->rate_limit = 100;
	c->rate_window_ms = 1000;
	c->suppressed_report_s = 10;
	c->health_interval_s = 60;
	c->max_workloads = 65536;
	c->max_rulesets = 4096;
	c->ringbuf_bytes = 4u << 20;
	c->max_processes = 32768;
	c->spare_rulesets = 8;
	c->spare_trie_entries = 1024;
	c->spare_compact_delay_ms = 1000;
}

void bw_config_clear(struct bw_config *c)
{
	free(c->policy_dir);
	free(c->inventory);
	free(c->cgroup_root);
	free(c->root);
	free(c->status_file);
	free(c->syslog_target);
	free(c->syslog_facility);
	free(c->events_file);
	free(c->kubeconfig);
	free(c->kube_context);
	free(c->node_name);
	free(c->hook_socket);
	free(c->metrics_file);
	memset(c, 0, sizeof(*c));
}

static int set_str(char **dst, const char *v)
{
	char *n = strdup(v);

	if (!n)
		return -ENOMEM;
	free(*dst);
	*dst = n;
	return 0;
}

static const char *parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-' || *s == '+')
		return "is not a whole number";
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return "is not a whole number";
	if (v < min || v > max) {
		/* Settings are read once, at start, by the main thread. */
		static char why[80];

		snprintf(why, sizeof(why), "is out of range %llu-%llu", (unsigned long long)min,
			 (unsigned long long)max);
		return why;
	}
	*out = v;
	return NULL;
}

static const char *parse_tristate(const char *s, int *out)
{
	if (!strcmp(s, "auto"))
		*out = BW_AUTO;
	else if (!strcmp(s, "true"))
		*out = BW_ON;
	else if (!strcmp(s, "false"))
		*out = BW_OFF;
	else
		return "must be auto, true or false";
	return NULL;
}

static const char *check_syslog_target(const char *s)
{
	if (!strncmp(s, "unix:", 5) && s[5] == '/')
		return NULL;
	if (!strncmp(s, "tcp:", 4) || !strncmp(s, "udp:", 4)) {
		const char *colon = strrchr(s + 4, ':');
		uint64_t port;

		if (colon && colon > s + 4 && !parse_u64(colon + 1, 1, 65535, &port))
			return NULL;
	}
	return "must be unix:/PATH, tcp:HOST:PORT or udp:HOST:PORT";
}

/* A node name is a DNS subdomain (RFC 1123): it goes into a field selector
 * and into every policy's status. */
static const char *check_node_name(const char *s)
{
	size_t l = strlen(s);

	if (l == 0 || l > 253)
		return "must be 1 to 253 characters";
	for (size_t i = 0; i < l; i++) {
		char ch = s[i];
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');

		if (!alnum && ch != '-' && ch != '.')
			return "must be lower-case letters, digits, '-' and '.' (a DNS subdomain)";
		if (!alnum && (i == 0 || i == l - 1))
			return "must start and end with a letter or digit";
	}
	return NULL;
}

/* One setting: its dotted name in the file, its long option, and where it goes. */
enum kind { K_STR, K_PATH, K_BOOL, K_TRI, K_U64, K_U32, K_UINT, K_SIZE, K_TARGET, K_NODE, K_POSTURE, K_BPF_LSM, K_DEGRADED_ACTION };
struct setting {
	const char *yaml;
	const char *flag;
	enum kind kind;
	size_t offset;
	uint64_t min, max;
};

#define OFF(f) offsetof(struct bw_config, f)
static const struct setting settings[] = {
	{ "policyDir", "policy-dir", K_PATH, OFF(policy_dir), 0, 0 },
	{ "inventory", "inventory", K_PATH, OFF(inventory), 0, 0 },
	{ "cgroupRoot", "cgroup-root", K_PATH, OFF(cgroup_root), 0, 0 },
	{ "root", "root", K_PATH, OFF(root), 0, 0 },
	{ "statusFile", "status-file", K_PATH, OFF(status_file), 0, 0 },
	{ "auditOnly", "audit-only", K_BOOL, OFF(audit_only), 0, 0 },
	{ "sinks.journald", "journald", K_TRI, OFF(journald), 0, 0 },
	{ "sinks.syslog.enabled", "syslog", K_TRI, OFF(syslog), 0, 0 },
	{ "sinks.syslog.target", "syslog-target", K_TARGET, OFF(syslog_target), 0, 0 },
	{ "sinks.syslog.facility", "syslog-facility", K_STR, OFF(syslog_facility), 0, 0 },
	{ "sinks.stdout", NULL, K_BOOL, OFF(stdout_json), 0, 0 },
	{ "sinks.file.path", "events-file", K_PATH, OFF(events_file), 0, 0 },
	{ "sinks.file.maxBytes", "events-file-max-bytes", K_U64, OFF(events_file_max_bytes), 4096, UINT64_MAX },
	{ "sinks.file.keep", "events-file-keep", K_UINT, OFF(events_file_keep), 0, 100 },
	{ "sinks.queueLength", "queue-length", K_SIZE, OFF(queue_len), 1, 1 << 20 },
	{ "rateLimit.events", "rate-limit", K_U64, OFF(rate_limit), 0, UINT32_MAX },
	{ "rateLimit.windowMs", "rate-window-ms", K_UINT, OFF(rate_window_ms), 1, 3600000 },
	{ "rateLimit.reportSeconds", "suppressed-report-seconds", K_UINT, OFF(suppressed_report_s), 1, 86400 },
	{ "health.intervalSeconds", "health-interval", K_UINT, OFF(health_interval_s), 0, 86400 },
	{ "kubernetes.enabled", "kubernetes", K_TRI, OFF(kubernetes), 0, 0 },
	{ "kubernetes.kubeconfig", "kubeconfig", K_PATH, OFF(kubeconfig), 0, 0 },
	{ "kubernetes.context", "kube-context", K_STR, OFF(kube_context), 0, 0 },
	{ "kubernetes.nodeName", "node-name", K_NODE, OFF(node_name), 0, 0 },
	{ "kubernetes.unclassified", "unclassified", K_POSTURE, OFF(unclassified), 0, 0 },
	{ "enforcement.bpfLsm", "bpf-lsm", K_BPF_LSM, OFF(bpf_lsm), 0, 0 },
	{ "enforcement.degradedAction", "degraded-action", K_DEGRADED_ACTION, OFF(degraded_kill), 0, 0 },
	{ "enforcement.metricsFile", "metrics-file", K_PATH, OFF(metrics_file), 0, 0 },
	{ "ociHook.socket", "hook-socket", K_PATH, OFF(hook_socket), 0, 0 },
	{ "maps.maxWorkloads", "max-workloads", K_U32, OFF(max_workloads), 1, UINT32_MAX },
	{ "maps.maxRulesets", "max-rulesets", K_U32, OFF(max_rulesets), 2, 1 << 20 },
	{ "maps.ringbufBytes", "ringbuf-bytes", K_U32, OFF(ringbuf_bytes), 4096, 1u << 30 },
	{ "maps.maxProcesses", "max-processes", K_U32, OFF(max_processes), 64, 1u << 22 },
	{ "maps.spareRulesets", "spare-rulesets", K_U32, OFF(spare_rulesets), 0, 1024 },
	{ "maps.spareTrieEntries", "spare-trie-entries", K_U32, OFF(spare_trie_entries), 1, 1u << 20 },
	{ "maps.spareCompactDelayMs", "spare-compact-delay-ms", K_U32, OFF(spare_compact_delay_ms), 0, 60000 },
};

/* Stores v into the setting; returns a reason when v is not acceptable. */
static const char *apply_setting(struct bw_config *c, const struct setting *s, const char *v)
{
	void *dst = (char *)c + s->offset;
	const char *why = NULL;
	uint64_t n = 0;

	switch (s->kind) {
	case K_PATH:
		if (!*v)
			return "must not be empty";
		/* fall through */
	case K_STR:
		return set_str(dst, v) < 0 ? "out of memory" : NULL;
	case K_NODE:
		why = check_node_name(v);
		return why ? why : set_str(dst, v) < 0 ? "out of memory" : NULL;
	case K_TARGET:
		why = check_syslog_target(v);
		return why ? why : set_str(dst, v) < 0 ? "out of memory" : NULL;
	case K_BOOL:
		if (!strcmp(v, "true"))
			*(bool *)dst = true;
		else if (!strcmp(v, "false"))
			*(bool *)dst = false;
		else
			return "must be true or false";
		return NULL;
	case K_TRI:
		return parse_tristate(v, dst);
	case K_POSTURE:
		if (!strcmp(v, "allow"))
			*(int *)dst = BW_POSTURE_ALLOW;
		else if (!strcmp(v, "audit"))
			*(int *)dst = BW_POSTURE_AUDIT;
		else if (!strcmp(v, "block-exec"))
			*(int *)dst = BW_POSTURE_BLOCK_EXEC;
		else
			return "must be allow, audit or block-exec";
		return NULL;
	case K_BPF_LSM:
		if (!strcmp(v, "auto"))
			*(int *)dst = BW_BPF_LSM_AUTO;
		else if (!strcmp(v, "required"))
			*(int *)dst = BW_BPF_LSM_REQUIRED;
		else if (!strcmp(v, "off"))
			*(int *)dst = BW_BPF_LSM_OFF;
		else
			return "must be auto, required or off";
		return NULL;
	case K_DEGRADED_ACTION:
		if (!strcmp(v, "report"))
			*(bool *)dst = false;
		else if (!strcmp(v, "kill"))
			*(bool *)dst = true;
		else
			return "must be report or kill";
		return NULL;
	default:
		why = parse_u64(v, s->min, s->max, &n);
		if (why)
			return why;
		if (s->offset == OFF(ringbuf_bytes) && (n & (n - 1)))
			return "must be a power of two";
		if (s->kind == K_U64)
			*(uint64_t *)dst = n;
		else if (s->kind == K_U32)
			*(uint32_t *)dst = (uint32_t)n;
		else if (s->kind == K_UINT)
			*(unsigned *)dst = (unsigned)n;
		else
			*(size_t *)dst = (size_t)n;
		return NULL;
	}
}

static int fail(char **error, const char *file, const yaml_node_t *n, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int fail(char **error, const char *file, const yaml_node_t *n, const char *field, const char *fmt, ...)
{
	char *why = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&why, fmt, ap) < 0)
		why = NULL;
	va_end(ap);
	if (asprintf(error, "%s:%zu:%zu: %s: %s", file, n ? n->start_mark.line + 1 : 0,
		     n ? n->start_mark.column + 1 : 0, field, why ? why : "invalid") < 0)
		*error = NULL;
	free(why);
	return -EINVAL;
}

static int walk(struct bw_config *c, yaml_document_t *doc, yaml_node_t *node, const char *prefix,
		const char *file, char **error)
{
	if (node->type != YAML_MAPPING_NODE)
		return fail(error, file, node, *prefix ? prefix : "(top level)", "must be a mapping");
	for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key), *v = yaml_document_get_node(doc, p->value);
		char name[256];
		const struct setting *s = NULL;
		bool is_section = false;

		if (!k || k->type != YAML_SCALAR_NODE || !v)
			return fail(error, file, k, prefix, "keys must be strings");
		snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? "." : "", (const char *)k->data.scalar.value);
		for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
			size_t l = strlen(name);

			if (!strcmp(settings[i].yaml, name))
				s = &settings[i];
			else if (!strncmp(settings[i].yaml, name, l) && settings[i].yaml[l] == '.')
				is_section = true;
		}
		if (s) {
			const char *why;

			if (v->type != YAML_SCALAR_NODE)
				return fail(error, file, v, name, "must be a single value");
			why = apply_setting(c, s, (const char *)v->data.scalar.value);
			if (why)
				return fail(error, file, v, name, "\"%s\" %s", (const char *)v->data.scalar.value, why);
		} else if (is_section) {
			int ret = walk(c, doc, v, name, file, error);

			if (ret < 0)
				return ret;
		} else {
			return fail(error, file, k, name, "unknown setting (docs/CONFIG.md lists them)");
		}
	}
	return 0;
}

int bw_config_load(struct bw_config *c, const char *path, char **error)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	FILE *f;
	int ret = 0;

	*error = NULL;
	f = fopen(path, "re");
	if (!f) {
		ret = -errno;
		if (ret != -ENOENT && asprintf(error, "%s: %s", path, strerror(-ret)) < 0)
			*error = NULL;
		return ret;
	}
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		if (asprintf(error, "%s:%zu:%zu: %s", path, parser.problem_mark.line + 1,
			     parser.problem_mark.column + 1, parser.problem ? parser.problem : "YAML error") < 0)
			*error = NULL;
		yaml_parser_delete(&parser);
		fclose(f);
		return -EINVAL;
	}
	root = yaml_document_get_root_node(&doc);
	if (root && !(root->type == YAML_SCALAR_NODE && !*root->data.scalar.value))
		ret = walk(c, &doc, root, "", path, error);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	fclose(f);
	return ret;
}

void bw_config_usage(FILE *f)
{
	fprintf(f,
		"Usage: bulwarkd [--policy-dir DIR] [--kubeconfig FILE] [options]\n"
		"\n"
		"Enforces Bulwark policies with BPF-LSM programs (exec, file open, connect).\n"
		"\n"
		"  --config FILE              settings file (default " BW_DEFAULT_CONFIG_FILE " if it exists)\n"
		"  --policy-dir DIR           policy documents (*.yaml, *.yml); watched for changes\n"
		"  --inventory FILE           workloads (cgroup, namespace, pod, labels) that policies select\n"
		"  --audit-only               run every policy in Audit mode\n"
		"  --output json|none         JSON lines on stdout (default none)\n"
		"  --events-file PATH         JSON lines to a file, rotated by size\n"
		"  --events-file-max-bytes N  rotate beyond N bytes (default 100 MiB)\n"
		"  --events-file-keep N       rotated files kept (default 5)\n"
		"  --journald auto|true|false journald sink (default auto: when its socket exists)\n"
		"  --syslog auto|true|false   RFC 5424 syslog sink (default auto: when journald is not used)\n"
		"  --syslog-target T          unix:/PATH (default unix:/dev/log), tcp:HOST:PORT, udp:HOST:PORT\n"
		"  --syslog-facility NAME     default authpriv\n"
		"  --queue-length N           records waiting per sink before they are dropped (default 4096)\n"
		"  --rate-limit N             events per window per workload and policy; 0: all (default 100)\n"
		"  --rate-window-ms N         rate-limit window (default 1000)\n"
		"  --suppressed-report-seconds N  how often suppressed counts are reported (default 10)\n"
		"  --health-interval N        seconds between health events; 0: none (default 60)\n"
		"  --kubernetes auto|true|false  watch the cluster's policies, namespaces and this node's pods\n"
		"                             (default auto: with --kubeconfig or inside a pod)\n"
		"  --kubeconfig FILE          API server and credentials (default: in-cluster service account)\n"
		"  --kube-context NAME        kubeconfig context (default current-context)\n"
		"  --node-name NAME           this node (default $NODE_NAME, else the host name)\n"
		"  --unclassified allow|audit|block-exec  kubepods cgroups whose pod the agent does not\n"
		"                             know yet (default audit: every exec reported)\n"
		"  --bpf-lsm auto|required|off  auto (default): enforce with BPF-LSM, or run degraded and say\n"
		"                             so when the kernel lacks it; required: refuse to start without\n"
		"                             it; off: always degraded (to try the fallbacks)\n"
		"  --degraded-action report|kill  degraded: what a Block decision on exec and file opens does:\n"
		"                             report \"would block\" (default), or also SIGKILL the caller\n"
		"                             (weaker than BPF-LSM: see docs/DEGRADED.md); connects are\n"
		"                             blocked either way\n"
		"  --metrics-file PATH        Prometheus text metrics, rewritten every second (for\n"
		"                             node_exporter's textfile collector)\n"
		"  --hook-socket PATH         where bulwark-oci-hook asks (default /run/bulwark/hook.sock; none: off)\n"
		"  --cgroup-root DIR          cgroup2 mount (default /sys/fs/cgroup)\n"
		"  --root DIR                 file system in which rule paths' links are resolved (default /)\n"
		"  --status-file FILE         written after every policy change: generation, policies, errors\n"
		"  --max-workloads N          size of the cgroup map (default 65536)\n"
		"  --max-rulesets N           distinct rule sets at once (default 4096)\n"
		"  --ringbuf-bytes N          event ring buffer size, a power of 2 (default 4194304)\n"
		"  --max-processes N          process table entries (default 32768; evictions are counted)\n"
		"  --spare-rulesets N         rule-set ids kept ready with empty tries, so that a policy\n"
		"                             change never waits for the kernel's RCU (default 8; 0: none)\n"
		"  --spare-trie-entries N     entries each spare trie holds; larger rule sets make their\n"
		"                             own tries (default 1024)\n"
		"  --spare-compact-delay-ms N  quiet time after the last rule set went into a spare before\n"
		"                             used spares' tries are sized to their entries (default 1000)\n"
		"  -h, --help\n"
		"\n"
		"Signals: SIGHUP reloads policies and inventory, SIGUSR1 emits a health event,\n"
		"SIGTERM/SIGINT detach and exit.\n");
}

const char *bw_config_find_file_arg(int argc, char **argv, bool *explicit_)
{
	*explicit_ = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--config") && i + 1 < argc) {
			*explicit_ = true;
			return argv[i + 1];
		}
		if (!strncmp(argv[i], "--config=", 9)) {
			*explicit_ = true;
			return argv[i] + 9;
		}
	}
	return BW_DEFAULT_CONFIG_FILE;
}

int bw_config_parse_args(struct bw_config *c, int argc, char **argv)
{
	enum { O_CONFIG = 256, O_OUTPUT, O_SETTING };
	const size_t n_settings = sizeof(settings) / sizeof(settings[0]);
	struct option longopts[sizeof(settings) / sizeof(settings[0]) + 4];
	size_t n = 0;
	int ch, idx;

	for (size_t i = 0; i < n_settings; i++) {
		if (!settings[i].flag)
			continue;
		longopts[n++] = (struct option){ settings[i].flag,
						  settings[i].kind == K_BOOL ? no_argument : required_argument,
						  NULL, O_SETTING };
	}
	longopts[n++] = (struct option){ "config", required_argument, NULL, O_CONFIG };
	longopts[n++] = (struct option){ "output", required_argument, NULL, O_OUTPUT };
	longopts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	longopts[n] = (struct option){ 0 };

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, &idx)) != -1) {
		switch (ch) {
		case O_SETTING: {
			const struct setting *s = NULL;
			const char *why;

			for (size_t i = 0; i < n_settings; i++)
				if (settings[i].flag && !strcmp(settings[i].flag, longopts[idx].name))
					s = &settings[i];
			why = apply_setting(c, s, s->kind == K_BOOL ? "true" : optarg);
			if (why) {
				fprintf(stderr, "bulwarkd: --%s: \"%s\" %s\n", s->flag, optarg ? optarg : "", why);
				return -EINVAL;
			}
			break;
		}
		case O_CONFIG:
			break; /* read before the other options */
		case O_OUTPUT:
			if (strcmp(optarg, "json") && strcmp(optarg, "none")) {
				fprintf(stderr, "bulwarkd: --output: \"%s\" is not json or none\n", optarg);
				return -EINVAL;
			}
			c->stdout_json = !strcmp(optarg, "json");
			break;
		case 'h':
			bw_config_usage(stdout);
			return 1;
		default:
			bw_config_usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bulwarkd: unexpected argument \"%s\"\n", argv[optind]);
		return -EINVAL;
	}
	if (!c->policy_dir && !bw_config_kubernetes(c)) {
		fprintf(stderr, "bulwarkd: no policy source: give --policy-dir (or policyDir in the config file), "
			"or run with Kubernetes (--kubeconfig, or in a pod)\n");
		return -EINVAL;
	}
	return 0;
}

bool bw_config_kubernetes(const struct bw_config *c)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");

	if (c->kubernetes != BW_AUTO)
		return c->kubernetes == BW_ON;
	return c->kubeconfig || (host && *host);
}
