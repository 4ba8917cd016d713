/* SPDX-License-Identifier: Apache-2.0 */
/* Each node's status entry, the counts and the Enforced condition. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy-status.h"
#include "bw-test.h"

#define T0 1763750000000000000ULL

static struct json_object *apply(struct json_object *obj, const char *patch)
{
	struct json_object *p = json_tokener_parse(patch), *st;

	/* the server's merge patch of .status: replace it */
	json_object_object_get_ex(p, "status", &st);
	json_object_object_add(obj, "status", json_object_get(st));
	json_object_put(p);
	return obj;
}

int main(void)
{
	struct json_object *obj = json_tokener_parse(
		"{\"kind\":\"ClusterBulwarkPolicy\",\"metadata\":{\"name\":\"lock\",\"generation\":3,\"resourceVersion\":\"41\"},"
		"\"spec\":{\"mode\":\"Block\"}}");
	struct bw_node_report a = { "node-a", true, "Enforcing", "selects 2 workloads", 3, T0, 9 };
	struct bw_node_report b = { "node-b", false, "CompileFailed", "more than 16 port rules", 3, T0 + 5000000000ULL, 9 };
	char *p;

	p = bw_policy_status_patch(obj, &a);
	ASSERT(p && strstr(p, "\"metadata\":{\"resourceVersion\":\"41\"}"));
	ASSERT(p && strstr(p, "\"name\":\"node-a\",\"enforcing\":true,\"reason\":\"Enforcing\""));
	ASSERT(p && strstr(p, "\"enforcingNodes\":1,\"failedNodes\":0,\"degradedNodes\":0,\"rules\":9"));
	ASSERT(p && strstr(p, "\"type\":\"Enforced\",\"status\":\"True\",\"reason\":\"AllNodesEnforcing\""));
	printf("%s\n", p ? p : "(null)");
	apply(obj, p);
	free(p);

	/* the same report again: nothing to write */
	a.now_realtime_ns += 1000000000ULL;
	ASSERT(bw_policy_status_patch(obj, &a) == NULL);

	/* another node fails: node-a's entry is kept, the condition flips */
	p = bw_policy_status_patch(obj, &b);
	ASSERT(p && strstr(p, "\"name\":\"node-a\",\"enforcing\":true"));
	ASSERT(p && strstr(p, "\"name\":\"node-b\",\"enforcing\":false,\"reason\":\"CompileFailed\""));
	ASSERT(p && strstr(p, "\"enforcingNodes\":1,\"failedNodes\":1"));
	ASSERT(p && strstr(p, "\"status\":\"False\",\"reason\":\"NodesFailing\",\"message\":\"enforced on 1 node, failing on 1\""));
	ASSERT(p && strstr(p, "\"lastTransitionTime\":\"2025-11-21T18:33:25Z\""));
	printf("%s\n", p ? p : "(null)");
	apply(obj, p);
	free(p);

	/* node-b recovers: the condition flips back with a new transition time */
	b.enforcing = true;
	b.reason = "Enforcing";
	b.message = "selects 1 workload";
	b.now_realtime_ns = T0 + 60000000000ULL;
	p = bw_policy_status_patch(obj, &b);
	ASSERT(p && strstr(p, "\"enforcingNodes\":2,\"failedNodes\":0"));
	ASSERT(p && strstr(p, "\"status\":\"True\"") && strstr(p, "\"lastTransitionTime\":\"2025-11-21T18:34:20Z\""));
	apply(obj, p);
	free(p);
	/* node-b runs degraded (no BPF-LSM): neither enforcing nor failing */
	b.enforcing = false;
	b.reason = "Degraded";
	b.now_realtime_ns = T0 + 90000000000ULL;
	p = bw_policy_status_patch(obj, &b);
	ASSERT(p && strstr(p, "\"enforcingNodes\":1,\"failedNodes\":0,\"degradedNodes\":1"));
	ASSERT(p && strstr(p, "\"status\":\"False\",\"reason\":\"NodesDegraded\",\"message\":\"enforced on 1 node, "
			      "degraded (no BPF-LSM) on 1, failing on 0\""));
	free(p);
	b.enforcing = true; /* back as it was: the object still holds the enforcing entry */
	b.reason = "Enforcing";

	/* and a report that changes nothing in the condition keeps its time */
	a.message = "selects 3 workloads";
	a.now_realtime_ns = T0 + 120000000000ULL;
	p = bw_policy_status_patch(obj, &a);
	ASSERT(p && strstr(p, "\"lastTransitionTime\":\"2025-11-21T18:34:20Z\""));
	ASSERT(p && strstr(p, "\"lastUpdateTime\":\"2025-11-21T18:35:20Z\""));
	free(p);

	/* A long message is cut to what the API server takes, never inside a
	 * UTF-8 character. */
	{
		char big[3000];
		struct json_object *o, *st, *nodes, *e, *m;

		memset(big, 'x', sizeof(big));
		memcpy(big + 1022, "\xc3\xa9", 2); /* é across the cut */
		big[sizeof(big) - 1] = '\0';
		a.message = big;
		p = bw_policy_status_patch(obj, &a);
		o = p ? json_tokener_parse(p) : NULL;
		ASSERT(o && json_object_object_get_ex(o, "status", &st) && json_object_object_get_ex(st, "nodes", &nodes));
		e = o ? json_object_array_get_idx(nodes, json_object_array_length(nodes) - 1) : NULL;
		ASSERT(e && json_object_object_get_ex(e, "message", &m) && json_object_get_string_len(m) == 1022);
		json_object_put(o);
		free(p);
	}
	json_object_put(obj);
	return bw_test_summary();
}
