/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy-status.h"

static void rfc3339(uint64_t ns, char *buf, size_t size)
{
	time_t sec = (time_t)(ns / 1000000000ULL);
	struct tm tm;

	gmtime_r(&sec, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *str_of(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v) : NULL;
}

static bool same_entry(struct json_object *e, const struct bw_node_report *r)
{
	struct json_object *v;
	const char *reason = str_of(e, "reason"), *message = str_of(e, "message");

	return json_object_object_get_ex(e, "enforcing", &v) && json_object_get_boolean(v) == r->enforcing &&
	       reason && !strcmp(reason, r->reason) && message &&
	       !strncmp(message, r->message ? r->message : "", 1023) &&
	       json_object_object_get_ex(e, "observedGeneration", &v) &&
	       json_object_get_int64(v) == r->observed_generation;
}

char *bw_policy_status_patch(struct json_object *current, const struct bw_node_report *r)
{
	struct json_object *status = NULL, *nodes = NULL, *rv = NULL, *meta = NULL;
	struct json_object *patch, *pstatus, *pnodes, *entry, *cond, *conds, *pmeta;
	int enforcing = 0, failed = 0, degraded = 0; /* degraded: runs without BPF-LSM */
	const char *prev_cond_status = NULL, *prev_cond_time = NULL;
	char now[32];
	char *out;

	json_object_object_get_ex(current, "status", &status);
	if (status)
		json_object_object_get_ex(status, "nodes", &nodes);
	json_object_object_get_ex(current, "metadata", &meta);
	if (meta)
		json_object_object_get_ex(meta, "resourceVersion", &rv);

	/* Unchanged (apart from time): no write, no churn on the API server. */
	for (size_t i = 0; nodes && json_object_is_type(nodes, json_type_array) && i < json_object_array_length(nodes); i++) {
		struct json_object *e = json_object_array_get_idx(nodes, i);
		const char *name = str_of(e, "name");

		if (name && !strcmp(name, r->node) && same_entry(e, r)) {
			errno = 0;
			return NULL;
		}
	}

	rfc3339(r->now_realtime_ns, now, sizeof(now));
	patch = json_object_new_object();
	pstatus = json_object_new_object();
	pnodes = json_object_new_array();
	entry = json_object_new_object();
	json_object_object_add(entry, "name", json_object_new_string(r->node));
	json_object_object_add(entry, "enforcing", json_object_new_boolean(r->enforcing));
	json_object_object_add(entry, "reason", json_object_new_string(r->reason));
	{
		/* The API server rejects the whole status past a size; a compile
		 * error can name long cgroup paths. Cut on a UTF-8 boundary. */
		char msg[1024];
		size_t l;

		snprintf(msg, sizeof(msg), "%s", r->message ? r->message : "");
		l = strlen(msg);
		if (l == sizeof(msg) - 1) {
			size_t i = l - 1, need;
			unsigned char lead;

			while (i > 0 && ((unsigned char)msg[i] & 0xc0) == 0x80)
				i--;
			lead = (unsigned char)msg[i];
			need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
			if (i + need > l)
				msg[i] = '\0'; /* the last character was cut: drop it */
		}
		json_object_object_add(entry, "message", json_object_new_string(msg));
	}
	json_object_object_add(entry, "observedGeneration", json_object_new_int64(r->observed_generation));
	json_object_object_add(entry, "lastUpdateTime", json_object_new_string(now));

	/* The other nodes' entries are kept as they are. */
	for (size_t i = 0; nodes && json_object_is_type(nodes, json_type_array) && i < json_object_array_length(nodes); i++) {
		struct json_object *e = json_object_array_get_idx(nodes, i), *v;
		const char *name = str_of(e, "name");

		if (!name || !strcmp(name, r->node))
			continue;
		json_object_array_add(pnodes, json_object_get(e));
		if (json_object_object_get_ex(e, "enforcing", &v) && json_object_get_boolean(v))
			enforcing++;
		else if (str_of(e, "reason") && !strcmp(str_of(e, "reason"), "Degraded"))
			degraded++;
		else
			failed++;
	}
	json_object_array_add(pnodes, entry);
	if (r->enforcing)
		enforcing++;
	else if (!strcmp(r->reason, "Degraded"))
		degraded++;
	else
		failed++;

	json_object_object_get_ex(status, "conditions", &conds);
	for (size_t i = 0; status && conds && json_object_is_type(conds, json_type_array) &&
			   i < json_object_array_length(conds); i++) {
		struct json_object *c = json_object_array_get_idx(conds, i);
		const char *t = str_of(c, "type");

		if (t && !strcmp(t, "Enforced")) {
			prev_cond_status = str_of(c, "status");
			prev_cond_time = str_of(c, "lastTransitionTime");
		}
	}
	cond = json_object_new_object();
	{
		const char *st = failed == 0 && degraded == 0 && enforcing > 0 ? "True" : "False";
		char msg[160];

		json_object_object_add(cond, "type", json_object_new_string("Enforced"));
		json_object_object_add(cond, "status", json_object_new_string(st));
		json_object_object_add(cond, "reason", json_object_new_string(failed     ? "NodesFailing"
									     : degraded ? "NodesDegraded"
											: "AllNodesEnforcing"));
		if (degraded)
			snprintf(msg, sizeof(msg), "enforced on %d node%s, degraded (no BPF-LSM) on %d, failing on %d",
				 enforcing, enforcing == 1 ? "" : "s", degraded, failed);
		else
			snprintf(msg, sizeof(msg), "enforced on %d node%s, failing on %d", enforcing,
				 enforcing == 1 ? "" : "s", failed);
		json_object_object_add(cond, "message", json_object_new_string(msg));
		json_object_object_add(cond, "observedGeneration", json_object_new_int64(r->observed_generation));
		/* The transition time moves only when the status flips. */
		json_object_object_add(cond, "lastTransitionTime",
				       json_object_new_string(prev_cond_status && prev_cond_time &&
							      !strcmp(prev_cond_status, st) ? prev_cond_time : now));
	}
	conds = json_object_new_array();
	json_object_array_add(conds, cond);

	json_object_object_add(pstatus, "nodes", pnodes);
	json_object_object_add(pstatus, "enforcingNodes", json_object_new_int(enforcing));
	json_object_object_add(pstatus, "failedNodes", json_object_new_int(failed));
	json_object_object_add(pstatus, "degradedNodes", json_object_new_int(degraded));
	json_object_object_add(pstatus, "rules", json_object_new_int(r->rules));
	json_object_object_add(pstatus, "conditions", conds);
	json_object_object_add(patch, "status", pstatus);
	if (rv) {
		/* A precondition: a concurrent writer makes this a 409. */
		pmeta = json_object_new_object();
		json_object_object_add(pmeta, "resourceVersion", json_object_get(rv));
		json_object_object_add(patch, "metadata", pmeta);
	}
	out = strdup(json_object_to_json_string_ext(patch, JSON_C_TO_STRING_PLAIN));
	json_object_put(patch);
	return out;
}
