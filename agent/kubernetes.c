/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster-watch.h"
#include "kubernetes.h"
#include "status-writer.h"
#include "util.h"

#define SYNC_TIMEOUT_NS (30ULL * 1000 * 1000 * 1000)
#define API_GROUP_PATH "/apis/bulwark.dev/v1alpha1"

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

char *bw_k8s_node_name(const struct bw_config *cfg, char **error)
{
	char host[HOST_NAME_MAX + 1] = "";
	const char *name = cfg->node_name;
	char *out;

	*error = NULL;
	if (!name || !*name)
		name = getenv("NODE_NAME");
	if (!name || !*name) {
		if (gethostname(host, sizeof(host)) < 0 || !*host) {
			*error = strdup("no node name: give --node-name or set NODE_NAME");
			return NULL;
		}
		/* Node names are the host name lower-cased (the kubelet's default). */
		for (char *p = host; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		name = host;
	}
	out = strdup(name);
	if (!out)
		*error = strdup("out of memory");
	return out;
}

/* The posture as a policy, so that it goes through the compiler like any
 * other: every exec matches the prefix "/"; Audit reports it, Block refuses
 * it. Events name it "Posture unclassified-workload". */
static struct bw_policy *posture_policy(int posture, char **error)
{
	static const char fmt[] = "apiVersion: bulwark.dev/v1alpha1\n"
				  "kind: HostBulwarkPolicy\n"
				  "metadata: {name: unclassified-workload}\n"
				  "spec: {mode: %s, cgroupPaths: [/kubepods], exec: {deny: [{prefix: /}]}}\n";
	struct bw_policy_list l = { 0 };
	struct bw_diags d = { 0 };
	struct bw_policy *p = NULL;
	char doc[512];

	if (posture == BW_POSTURE_ALLOW)
		return NULL;
	snprintf(doc, sizeof(doc), fmt, posture == BW_POSTURE_BLOCK_EXEC ? "Block" : "Audit");
	if (bw_policy_parse_buffer("(unclassified posture)", doc, strlen(doc), &l, &d) == 0 && l.n == 1) {
		p = l.items[0];
		l.items[0] = NULL;
		p->kind = BW_KIND_POSTURE;
	} else if (!*error) {
		char *m = d.n ? bw_diag_format(&d.items[0]) : NULL;

		*error = strprintf("cannot build the unclassified posture: %s", m ? m : "?");
		free(m);
	}
	free(l.items);
	bw_diags_clear(&d);
	return p;
}

struct bw_policy *bw_k8s_posture(const struct bw_k8s *k)
{
	return k->ready ? k->posture : NULL;
}

int bw_k8s_start(struct bw_k8s *k, const struct bw_config *cfg, struct bw_inventory *inv, char **error)
{
	struct bw_cluster_watch_options wo = { 0 };
	int ret;

	memset(k, 0, sizeof(*k));
	*error = NULL;
	k->node_name = bw_k8s_node_name(cfg, error);
	if (!k->node_name)
		return -EINVAL;
	if (cfg->kubeconfig)
		ret = bw_kube_config_load_kubeconfig(cfg->kubeconfig, cfg->kube_context, &k->kcfg, error);
	else
		ret = bw_kube_config_in_cluster(&k->kcfg, error);
	if (ret < 0) {
		if (ret == -ENOENT && !cfg->kubeconfig && !*error)
			*error = strdup("not in a pod (KUBERNETES_SERVICE_HOST is not set) and no --kubeconfig");
		return ret;
	}
	const char *why = NULL;

	ret = bw_kube_global_init(&why);
	if (ret < 0) {
		*error = strprintf("GnuTLS (the Kubernetes client's TLS library): %s%s",
				       why ? why : strerror(-ret),
				       ret == -ELIBACC ? " (install libgnutls30)" : "");
		return ret;
	}
	if (cfg->unclassified != BW_POSTURE_ALLOW && !(k->posture = posture_policy(cfg->unclassified, error)))
		return -EINVAL;
	bw_cluster_source_init(&k->src, inv, cfg->cgroup_root, k->node_name);
	wo.node_name = k->node_name;
	k->watch = bw_cluster_watch_new(&k->kcfg, &wo, error);
	if (!k->watch)
		return -EINVAL;
	k->status = bw_status_writer_new(&k->kcfg, k->node_name, NULL, error);
	if (!k->status)
		return -EINVAL;
	k->start_ns = mono_ns();
	k->sync_timeout_ns = SYNC_TIMEOUT_NS;
	if ((ret = bw_cluster_watch_start(k->watch)) < 0 || (ret = bw_status_writer_start(k->status)) < 0) {
		*error = strprintf("cannot start the Kubernetes threads: %s", strerror(-ret));
		return ret;
	}
	return 0;
}

int bw_k8s_fd(const struct bw_k8s *k)
{
	return bw_cluster_watch_fd(k->watch);
}

static bool all_synced(struct bw_k8s *k)
{
	for (int f = 0; f < BW_FEED_COUNT; f++)
		if (!bw_cluster_watch_synced(k->watch, (enum bw_cluster_feed)f))
			return false;
	return true;
}

int bw_k8s_drain(struct bw_k8s *k)
{
	struct bw_cluster_change *c = NULL;
	size_t n = 0;
	int out = 0;

	if (bw_cluster_watch_take(k->watch, &c, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int ret = bw_cluster_source_update(&k->src, c[i].kind, c[i].deleted, c[i].obj);

		k->changes++;
		if (ret > 0)
			out |= BW_K8S_CHANGED;
		else if (ret < 0) {
			char *key = bw_kube_object_key(c[i].obj);

			k->rejected++;
			fprintf(stderr, "bulwarkd: ignoring %s %s from the API server: %s\n",
				c[i].kind == BW_CLUSTER_POD ? "pod" : c[i].kind == BW_CLUSTER_NAMESPACE ? "namespace" : "object",
				key ? key : "(no name)", strerror(-ret));
			free(key);
		}
	}
	bw_cluster_changes_free(c, n);
	if (!k->ready && all_synced(k)) {
		k->ready = true;
		out |= BW_K8S_READY | BW_K8S_CHANGED;
	}
	/* Before the first full picture nothing from the cluster is used. */
	return k->ready ? out : 0;
}

void bw_k8s_rescan(struct bw_k8s *k)
{
	if (k->ready)
		bw_cluster_source_rescan(&k->src);
}

int bw_k8s_tick(struct bw_k8s *k, uint64_t now_ns)
{
	if (!k->ready) {
		if (now_ns - k->start_ns < k->sync_timeout_ns)
			return 0;
		for (int f = 0; f < BW_FEED_COUNT; f++)
			if (!bw_cluster_watch_synced(k->watch, (enum bw_cluster_feed)f)) {
				struct bw_kube_reflector_stats st;

				bw_cluster_watch_stats(k->watch, (enum bw_cluster_feed)f, &st);
				fprintf(stderr, "bulwarkd: %s not listed after %llu s (%s); using what the other watches "
					"delivered\n", bw_cluster_feed_name((enum bw_cluster_feed)f),
					(unsigned long long)(k->sync_timeout_ns / 1000000000ULL),
					st.last_error[0] ? st.last_error : "no answer");
			}
		k->ready = true;
		return BW_K8S_READY | BW_K8S_CHANGED;
	}
	return bw_cluster_source_rescan(&k->src) > 0 ? BW_K8S_CHANGED : 0;
}

static bool same_identity(const struct bw_policy *a, const struct bw_policy *b)
{
	return a->kind == b->kind && !strcmp(a->name, b->name) &&
	       ((!a->namespace && !b->namespace) || (a->namespace && b->namespace && !strcmp(a->namespace, b->namespace)));
}

static const struct bw_policy *shadowing(const struct bw_policy_list *local, const struct bw_policy *p)
{
	for (size_t i = 0; local && i < local->n; i++)
		if (same_identity(local->items[i], p))
			return local->items[i];
	return NULL;
}

int bw_k8s_policies(const struct bw_k8s *k, const struct bw_policy_list *local, struct bw_policy_list *out)
{
	if (!k->ready)
		return 0;
	for (size_t i = 0; i < k->src.n_policies; i++) {
		struct bw_policy *p = k->src.policies[i].good, **n;

		if (!p || shadowing(local, p))
			continue;
		n = realloc(out->items, (out->n + 1) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		out->items = n;
		out->items[out->n++] = p;
	}
	return 0;
}

static int rule_count(const struct bw_policy *p)
{
	return (int)(p->exec_deny.n + p->exec_allow.n + p->files_deny.n + p->files_allow.n + p->net_deny.n +
		     p->net_allow.n);
}

/* "ClusterBulwarkPolicy/NAME" or "BulwarkPolicy/NS/NAME" to the object's path. */
static char *object_path(const char *key)
{
	const char *slash = strchr(key, '/'), *second;

	if (!slash)
		return NULL;
	if (!strncmp(key, "ClusterBulwarkPolicy/", 21))
		return strprintf(API_GROUP_PATH "/clusterbulwarkpolicies/%s", slash + 1);
	second = strchr(slash + 1, '/');
	if (!second)
		return NULL;
	return strprintf(API_GROUP_PATH "/namespaces/%.*s/bulwarkpolicies/%s", (int)(second - slash - 1), slash + 1,
			     second + 1);
}

void bw_k8s_report(struct bw_k8s *k, const struct bw_policy_list *local, const struct bw_plan *plan, bool audit_only,
		   const char *degraded)
{
	struct bw_status_report *r;
	size_t n = 0;

	if (!k->ready)
		return;
	r = calloc(k->src.n_policies ? k->src.n_policies : 1, sizeof(*r));
	if (!r)
		return;
	for (size_t i = 0; i < k->src.n_policies; i++) {
		const struct bw_cluster_policy *cp = &k->src.policies[i];
		const struct bw_policy *p = cp->good, *shadow = p ? shadowing(local, p) : NULL;
		struct bw_status_report *x = &r[n];
		char *ident = p ? bw_policy_identity(p) : NULL;
		const struct bw_plan_error *failed = NULL;
		size_t workloads = 0;

		x->path = object_path(cp->key);
		if (!x->path || (p && !ident)) {
			free(ident);
			bw_status_report_clear(x);
			continue;
		}
		x->uid = cp->uid ? strdup(cp->uid) : NULL;
		x->observed_generation = cp->generation;
		x->rules = p ? rule_count(p) : 0;
		for (size_t e = 0; ident && e < plan->n_errors && !failed; e++)
			for (size_t j = 0; j < plan->errors[e].n_policies; j++)
				if (!strcmp(plan->errors[e].policies[j], ident))
					failed = &plan->errors[e];
		for (size_t a = 0; ident && a < plan->n_assign; a++) {
			const struct bw_compiled_ruleset *rs = &plan->rulesets[plan->assign[a].ruleset];

			for (size_t s = 0; s < rs->n_slots; s++)
				if (!strcmp(rs->slots[s].policy, ident)) {
					workloads++;
					break;
				}
		}
		if (!p) {
			x->reason = strdup("Invalid");
			x->message = strprintf("rejected, nothing enforced: %s", cp->error);
		} else if (shadow) {
			x->reason = strdup("ShadowedByLocal");
			x->message = strprintf("a policy with the same name in %s is enforced instead", shadow->file);
		} else if (cp->error) {
			x->reason = strdup("InvalidKeptPrevious");
			x->message = strprintf("generation %lld rejected, the previous version stays in force: %s",
						   cp->generation, cp->error);
		} else if (failed) {
			x->reason = strdup("CompileFailed");
			x->message = strprintf("workload %s keeps its previous rules: %s", failed->workload,
						   failed->message);
		} else if (degraded) {
			/* Not Enforcing: the node cannot deny exec and file opens. */
			x->reason = strdup("Degraded");
			x->message = strprintf("%s mode on %zu workload%s of this node, which runs degraded (%s): exec and "
					       "file rules are judged by tracepoints that cannot deny, connect rules are "
					       "enforced", audit_only ? "Audit (agent in audit-only)" : bw_mode_name(p->mode),
					       workloads, workloads == 1 ? "" : "s", degraded);
		} else {
			x->enforcing = true;
			x->reason = strdup("Enforcing");
			x->message = strprintf("%s mode on %zu workload%s of this node",
						   audit_only ? "Audit (agent in audit-only)" : bw_mode_name(p->mode),
						   workloads, workloads == 1 ? "" : "s");
		}
		free(ident);
		if (!x->reason || !x->message) {
			bw_status_report_clear(x);
			continue;
		}
		n++;
	}
	if (bw_status_writer_post(k->status, r, n) < 0)
		fprintf(stderr, "bulwarkd: out of memory posting policy status\n");
	for (size_t i = 0; i < n; i++)
		bw_status_report_clear(&r[i]);
	free(r);
}

void bw_k8s_health(struct bw_k8s *k, struct bw_record_builder *b)
{
	struct bw_status_writer_stats ss;

	for (int f = 0; f < BW_FEED_COUNT; f++) {
		struct bw_kube_reflector_stats st;
		char key[64];

		bw_cluster_watch_stats(k->watch, (enum bw_cluster_feed)f, &st);
		snprintf(key, sizeof(key), "KUBE_%s", bw_cluster_feed_name((enum bw_cluster_feed)f));
		for (char *p = key; *p; p++)
			*p = (char)toupper((unsigned char)*p);
		bw_record_builder_addf(b, key, "synced=%d watching=%d objects=%llu lists=%llu relists=%llu "
				       "failures=%llu reconnects=%llu events=%llu unauthorized=%llu%s%s",
				       st.synced, st.watching, (unsigned long long)st.objects,
				       (unsigned long long)st.lists, (unsigned long long)st.relists,
				       (unsigned long long)st.failures, (unsigned long long)st.reconnects,
				       (unsigned long long)st.events, (unsigned long long)st.unauthorized,
				       st.last_error[0] ? " last_error=" : "", st.last_error);
	}
	bw_status_writer_get_stats(k->status, &ss);
	bw_record_builder_addf(b, "KUBE_STATUS_WRITES", "writes=%llu unchanged=%llu conflicts=%llu gone=%llu "
			       "failures=%llu pending=%llu%s%s",
			       (unsigned long long)ss.writes, (unsigned long long)ss.unchanged,
			       (unsigned long long)ss.conflicts, (unsigned long long)ss.gone,
			       (unsigned long long)ss.failures, (unsigned long long)ss.pending,
			       ss.last_error[0] ? " last_error=" : "", ss.last_error);
	bw_record_builder_addf(b, "KUBE_OBJECTS_REJECTED", "%llu", (unsigned long long)k->rejected);
}

void bw_k8s_status_lines(struct bw_k8s *k, FILE *f)
{
	size_t pending = 0;

	fprintf(f, "kubernetes %s node %s\n", k->ready ? "synced" : "syncing", k->node_name);
	for (size_t i = 0; i < k->src.n_policies; i++)
		if (k->src.policies[i].error)
			fprintf(f, "rejected %s\n", k->src.policies[i].error);
	for (size_t i = 0; i < k->src.n_pods; i++)
		pending += k->src.pods[i].pending;
	fprintf(f, "pods %zu\npods-without-cgroup %zu\n", k->src.n_pods, pending);
}

void bw_k8s_stop(struct bw_k8s *k)
{
	bw_cluster_watch_free(k->watch);
	bw_status_writer_free(k->status);
	bw_cluster_source_clear(&k->src);
	bw_kube_config_clear(&k->kcfg);
	bw_policy_free(k->posture);
	free(k->node_name);
	memset(k, 0, sizeof(*k));
}
