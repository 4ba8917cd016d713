/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Namespaces, pods and policy objects (as the API server sends them) turned
 * into the inventory and policies, and from there into a plan over a
 * cgroup tree laid out like the kubelet's cgroupfs driver.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster-source.h"
#include "compile.h"
#include "bw-test.h"

#define UID "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
#define CID "0123456789abcdef"

static char root[] = "/tmp/bulwark-cs-XXXXXX";

static void mkd(const char *rel)
{
	char p[512];

	snprintf(p, sizeof(p), "%s%s", root, rel);
	mkdir(p, 0755);
}

static void rmd(const char *rel)
{
	char p[512];

	snprintf(p, sizeof(p), "%s%s", root, rel);
	rmdir(p);
}

static int feed(struct bw_cluster_source *s, enum bw_cluster_kind k, bool deleted, const char *json)
{
	struct json_object *o = json_tokener_parse(json);
	int ret;

	if (!o) {
		fprintf(stderr, "bad test JSON: %s\n", json);
		exit(2);
	}
	ret = bw_cluster_source_update(s, k, deleted, o);
	json_object_put(o);
	return ret;
}

static const char *POD = "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web-7f9c\","
			 "\"namespace\":\"payments\",\"uid\":\"" UID "\",\"labels\":{\"app\":\"web\"}},"
			 "\"spec\":{\"nodeName\":\"node-1\"},\"status\":{\"phase\":\"Running\",\"qosClass\":\"Burstable\","
			 "\"containerStatuses\":[{\"name\":\"nginx\",\"containerID\":\"containerd://" CID "\"}]}}";

static const char *LOCK = "{\"apiVersion\":\"bulwark.dev/v1alpha1\",\"kind\":\"ClusterBulwarkPolicy\","
			  "\"metadata\":{\"name\":\"lock-shells\",\"uid\":\"u1\",\"generation\":1,\"resourceVersion\":\"7\"},"
			  "\"spec\":{\"mode\":\"Block\",\"namespaceSelector\":{\"matchLabels\":{\"bulwark.dev/locked\":\"true\"}},"
			  "\"exec\":{\"deny\":[{\"path\":\"/bin/sh\"}]}},\"status\":{\"nodes\":[]}}";

int main(void)
{
	struct bw_inventory inv = { 0 };
	struct bw_cluster_source s;
	struct bw_policy_list pl = { 0 };

	if (!mkdtemp(root))
		return 2;
	mkd("/kubepods");
	mkd("/kubepods/burstable");
	bw_cluster_source_init(&s, &inv, root, "node-1");

	/* namespaces */
	ASSERT(feed(&s, BW_CLUSTER_NAMESPACE, false,
		    "{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"payments\",\"labels\":{\"bulwark.dev/locked\":\"true\"}}}") == 1);
	ASSERT(feed(&s, BW_CLUSTER_NAMESPACE, false,
		    "{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"payments\",\"labels\":{\"bulwark.dev/locked\":\"true\"}}}") == 0);
	ASSERT(bw_inventory_find_namespace(&inv, "payments") != NULL);

	/* a pod whose cgroup is not there yet: pending (reported once, for the
	 * agent's status), found on rescan */
	ASSERT(feed(&s, BW_CLUSTER_POD, false, POD) == 1);
	ASSERT(feed(&s, BW_CLUSTER_POD, false, POD) == 0);
	ASSERT(s.n_pods == 1 && s.pods[0].pending && inv.n_workloads == 0);
	mkd("/kubepods/burstable/pod" UID);
	mkd("/kubepods/burstable/pod" UID "/" CID);
	ASSERT(bw_cluster_source_rescan(&s) == 1);
	ASSERT(!s.pods[0].pending && inv.n_workloads == 2);
	{
		const struct bw_inventory_workload *w = bw_inventory_find_workload(&inv, "/kubepods/burstable/pod" UID);
		const struct bw_inventory_workload *c =
			bw_inventory_find_workload(&inv, "/kubepods/burstable/pod" UID "/" CID);

		ASSERT(w && !strcmp(w->namespace, "payments") && !strcmp(w->pod, "web-7f9c") && !w->container);
		ASSERT(c && c->container && !strcmp(c->container, "nginx"));
	}
	ASSERT(bw_cluster_source_rescan(&s) == 0);

	/* a pod of another node is not ours */
	ASSERT(feed(&s, BW_CLUSTER_POD, false,
		    "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"x\",\"namespace\":\"payments\",\"uid\":\"aa\"},"
		    "\"spec\":{\"nodeName\":\"node-2\"},\"status\":{}}") == 0);
	ASSERT(s.n_pods == 1);

	/* policies: a good one, then a bad edit that keeps the good one */
	ASSERT(feed(&s, BW_CLUSTER_POLICY, false, LOCK) == 1);
	ASSERT(bw_cluster_source_policies(&s, &pl) == 0 && pl.n == 1);
	ASSERT(pl.n == 1 && pl.items[0]->exec_deny.n == 1 && pl.items[0]->mode == BW_MODE_BLOCK);
	free(pl.items);
	pl = (struct bw_policy_list){ 0 };
	ASSERT(feed(&s, BW_CLUSTER_POLICY, false,
		    "{\"apiVersion\":\"bulwark.dev/v1alpha1\",\"kind\":\"ClusterBulwarkPolicy\","
		    "\"metadata\":{\"name\":\"lock-shells\",\"uid\":\"u1\",\"generation\":2},"
		    "\"spec\":{\"mode\":\"Blok\"}}") == 1);
	ASSERT(s.n_policies == 1 && s.policies[0].good && s.policies[0].error &&
	       strstr(s.policies[0].error, "spec.mode") && s.policies[0].generation == 2);
	if (s.n_policies == 1 && s.policies[0].error)
		printf("rejected: %s\n", s.policies[0].error);
	ASSERT(bw_cluster_source_policies(&s, &pl) == 0 && pl.n == 1 && pl.items[0]->exec_deny.n == 1);
	/* the same generation again (a node wrote the status): nothing to do */
	ASSERT(feed(&s, BW_CLUSTER_POLICY, false,
		    "{\"apiVersion\":\"bulwark.dev/v1alpha1\",\"kind\":\"ClusterBulwarkPolicy\","
		    "\"metadata\":{\"name\":\"lock-shells\",\"uid\":\"u1\",\"generation\":2},"
		    "\"spec\":{\"mode\":\"Blok\"},\"status\":{\"enforcingNodes\":1}}") == 0);

	/* the plan: the pod cgroup and its container are selected */
	{
		struct bw_rule_table rt = { 0 };
		struct bw_plan plan;
		struct bw_plan_options po = { .compile = { .root = "/" }, .cgroup_root = root };
		struct stat st;
		char p[512];

		ASSERT(bw_plan_build(&pl, &inv, &po, &rt, &plan) == 0);
		snprintf(p, sizeof(p), "%s/kubepods/burstable/pod" UID "/" CID, root);
		stat(p, &st);
		ASSERT(plan.n_assign == 2);
		{
			bool found = false;

			for (size_t i = 0; i < plan.n_assign; i++)
				if (plan.assign[i].cgroup_id == st.st_ino && plan.assign[i].container &&
				    !strcmp(plan.assign[i].container, "nginx"))
					found = true;
			ASSERT(found);
		}
		bw_plan_clear(&plan);

		/* unlabel the namespace: nothing selected any more */
		ASSERT(feed(&s, BW_CLUSTER_NAMESPACE, false,
			    "{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"payments\",\"labels\":{}}}") == 1);
		ASSERT(bw_plan_build(&pl, &inv, &po, &rt, &plan) == 0);
		ASSERT(plan.n_assign == 0);
		bw_plan_clear(&plan);
		bw_rule_table_clear(&rt);
	}
	free(pl.items);

	/* the pod finishes: its workloads go */
	ASSERT(feed(&s, BW_CLUSTER_POD, true, POD) == 1);
	ASSERT(inv.n_workloads == 0 && s.n_pods == 0);
	/* the policy is deleted */
	ASSERT(feed(&s, BW_CLUSTER_POLICY, true, LOCK) == 1 && s.n_policies == 0);
	/* objects that are not what their kind needs are counted */
	ASSERT(feed(&s, BW_CLUSTER_POLICY, false, "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"x\"}}") == -EINVAL);
	ASSERT(s.rejected_objects == 1);

	/* the unclassified posture: kubepods cgroups of no known pod get it
	 * (roots and QoS levels too, so that new pods inherit it in the
	 * kernel); a known pod's cgroups do not, selected or not */
	{
		static const char posture_doc[] =
			"apiVersion: bulwark.dev/v1alpha1\nkind: HostBulwarkPolicy\nmetadata: {name: unclassified-workload}\n"
			"spec: {mode: Audit, exec: {deny: [{prefix: /}]}}\n";
		struct bw_policy_list posture = { 0 }, none = { 0 };
		struct bw_diags d = { 0 };
		struct bw_rule_table rt = { 0 };
		struct bw_plan_options po = { .compile = { .root = "/" }, .cgroup_root = root };
		struct bw_plan plan;
		size_t unclassified = 0;

		ASSERT(bw_policy_parse_buffer("posture", posture_doc, sizeof(posture_doc) - 1, &posture, &d) == 0 &&
		       posture.n == 1);
		posture.items[0]->kind = BW_KIND_POSTURE;
		po.posture = posture.items[0];
		ASSERT(bw_plan_build(&none, &inv, &po, &rt, &plan) == 0);
		for (size_t i = 0; i < plan.n_assign; i++)
			if (plan.assign[i].unclassified &&
			    !strcmp(plan.rulesets[plan.assign[i].ruleset].slots[0].policy, "Posture unclassified-workload"))
				unclassified++;
		ASSERT(plan.n_assign == 4 && unclassified == 4);
		bw_plan_clear(&plan);

		ASSERT(feed(&s, BW_CLUSTER_POD, false, POD) == 1 && inv.n_workloads == 2);
		ASSERT(bw_plan_build(&none, &inv, &po, &rt, &plan) == 0);
		ASSERT(plan.n_assign == 2);
		for (size_t i = 0; i < plan.n_assign; i++)
			ASSERT(plan.assign[i].unclassified && !strstr(plan.assign[i].cgroup_path, "/pod" UID));
		bw_plan_clear(&plan);
		po.posture = NULL;
		ASSERT(bw_plan_build(&none, &inv, &po, &rt, &plan) == 0 && plan.n_assign == 0);
		bw_plan_clear(&plan);
		bw_rule_table_clear(&rt);
		bw_policy_list_clear(&posture);
		bw_diags_clear(&d);
	}

	bw_cluster_source_clear(&s);
	bw_inventory_clear(&inv);
	rmd("/kubepods/burstable/pod" UID "/" CID);
	rmd("/kubepods/burstable/pod" UID);
	rmd("/kubepods/burstable");
	rmd("/kubepods");
	rmdir(root);
	return bw_test_summary();
}
