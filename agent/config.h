/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bulwarkd's settings: defaults, then the config file
 * (/etc/bulwark/bulwarkd.yaml or --config), then the command line, each
 * overriding the one before. docs/CONFIG.md lists every setting.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum bw_tristate { BW_AUTO = -1, BW_OFF = 0, BW_ON = 1 };

/* What a kubepods cgroup gets before the agent knows its pod. */
enum bw_posture { BW_POSTURE_ALLOW, BW_POSTURE_AUDIT, BW_POSTURE_BLOCK_EXEC };
/* Whether BPF-LSM is used: auto falls back on the degraded mode. */
enum bw_bpf_lsm_use { BW_BPF_LSM_AUTO, BW_BPF_LSM_REQUIRED, BW_BPF_LSM_OFF };

struct bw_config {
	char *policy_dir;
	char *inventory;
	char *cgroup_root;
	char *root;
	char *status_file;
	bool audit_only;

	/* sinks */
	int journald;          /* BW_AUTO: when journald's socket exists */
	int syslog;            /* BW_AUTO: when journald is not used */
	char *syslog_target;   /* "unix:/dev/log", "tcp:HOST:PORT", "udp:HOST:PORT" */
	char *syslog_facility; /* "authpriv" */
	bool stdout_json;      /* --output json */
	char *events_file;     /* JSON lines with rotation, NULL: none */
	uint64_t events_file_max_bytes;
	unsigned events_file_keep;
	size_t queue_len;      /* records waiting per sink */

	/* flow control and health */
	uint64_t rate_limit;          /* events per window per workload and policy; 0: all */
	unsigned rate_window_ms;
	unsigned suppressed_report_s; /* how often suppressed counts are reported */
	unsigned health_interval_s;   /* 0: no health events */

	/* Kubernetes: the cluster as a source of policies and workloads */
	int kubernetes;        /* BW_AUTO: when kubeconfig is set or KUBERNETES_SERVICE_HOST is */
	char *kubeconfig;      /* NULL: in-cluster configuration */
	char *kube_context;    /* NULL: the kubeconfig's current-context */
	char *node_name;       /* NULL: $NODE_NAME, else the host name */
	int unclassified;      /* enum bw_posture, default audit */
	int bpf_lsm;           /* enum bw_bpf_lsm_use, default auto */
	bool degraded_kill;    /* --degraded-action=kill */
	char *metrics_file;
	char *hook_socket;     /* where bulwark-oci-hook asks; "none": no socket */

	/* kernel maps */
	uint32_t max_workloads, max_rulesets, ringbuf_bytes, max_processes;
	uint32_t spare_rulesets;     /* ids kept with empty tries in the outer maps (0: none) */
	uint32_t spare_trie_entries; /* what each spare trie holds */
	uint32_t spare_compact_delay_ms; /* quiet time before used spares' tries are sized */
};

#define BW_DEFAULT_CONFIG_FILE "/etc/bulwark/bulwarkd.yaml"

void bw_config_defaults(struct bw_config *c);
void bw_config_clear(struct bw_config *c);

/* Reads a config file over c. Returns 0, -ENOENT when the file does not
 * exist, or another negative errno with *error "file:line:column: field:
 * reason". */
int bw_config_load(struct bw_config *c, const char *path, char **error);

/* Parses the command line over c (after the config file). Returns 0, 1 when
 * the caller should exit 0 (--help printed), or a negative errno after
 * printing the reason. *config_path receives --config's value. */
int bw_config_parse_args(struct bw_config *c, int argc, char **argv);
/* Whether the cluster source is on: kubernetes true, or auto with a
 * kubeconfig or in a pod (KUBERNETES_SERVICE_HOST set). */
bool bw_config_kubernetes(const struct bw_config *c);
const char *bw_config_find_file_arg(int argc, char **argv, bool *explicit_);

void bw_config_usage(FILE *f);
