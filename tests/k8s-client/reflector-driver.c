/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test driver for agent/k8s: runs one reflector per PATH and prints what
 * they deliver, one line each (stdout, line-buffered):
 *
 *   START t=<realtime s.us>
 *   SYNC_BEGIN <resource> t=...
 *   EVENT <ADDED|MODIFIED|DELETED> <namespace/name or name> <resourceVersion> <resource> t=...
 *   SYNC_END <resource> rv=<list resourceVersion> objects=<n> t=...
 *   POLICY OK <Kind> <key> | POLICY INVALID <key> <diagnostic>   (--parse-policies)
 *   VIOLATION <what>          an ordering rule of kube-client.h was broken
 *   STATS <resource> lists=.. relists=.. watches=.. failures=.. reconnects=.. unauthorized=..
 *         events=.. bookmarks=.. decode_errors=.. partial_lines=.. objects=.. synced=.. watching=..
 *         list_ms=.. rv=.. error=<last error>
 *   STATS-END <n>             after the STATS lines asked for by the n-th SIGUSR1
 *   STOPPED ms=<stop+join time>   on SIGTERM/SIGINT, then exit 0
 *
 *   reflector-driver (--kubeconfig FILE [--context C] | --in-cluster) [options] [--node NODE] PATH...
 *
 * --node NODE adds a reflector for the pods bound to NODE (first).
 *   reflector-driver (--kubeconfig FILE | --in-cluster) get PATH
 *   reflector-driver (--kubeconfig FILE | --in-cluster) patch PATH CONTENT-TYPE BODY
 *
 * get and patch print "HTTP <status> rc=<errno name or 0>" and the JSON
 * response, for the client's one-shot requests.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "k8s/kube-client.h"
#include "policy.h"
#include "util.h"

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static bool parse_policies;

struct watcher {
	char *resource; /* "pods", "namespaces", ... for the output */
	struct bw_kube_reflector *r;
	struct json_object *seen; /* key -> last resourceVersion (int64), to check the order */
};

static _printf_(1, 2) void out(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&out_lock);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

static void now(char *buf, size_t len)
{
	uint64_t ns = clock_ns(CLOCK_REALTIME);

	snprintf(buf, len, "%llu.%06llu", (unsigned long long)(ns / 1000000000ULL),
		 (unsigned long long)(ns % 1000000000ULL / 1000));
}

static const char *str_at(struct json_object *o, const char *a, const char *b)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, a, &v))
		return NULL;
	if (b && !json_object_object_get_ex(v, b, &v))
		return NULL;
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static void check_policy(struct json_object *obj, const char *key)
{
	const char *kind = str_at(obj, "kind", NULL);
	const char *json;
	struct bw_policy_list list = {};
	struct bw_diags diags = {};
	size_t len;

	if (!kind || (!streq(kind, "ClusterBulwarkPolicy") && !streq(kind, "BulwarkPolicy")))
		return;
	json = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
	bw_policy_parse_buffer(key, json, len, &list, &diags);
	if (list.n == 1 && diags.n == 0) {
		out("POLICY OK %s %s\n", bw_policy_kind_name(list.items[0]->kind), key);
	} else {
		_cleanup_free_ char *d = diags.n ? bw_diag_format(&diags.items[0]) : NULL;

		out("POLICY INVALID %s %s\n", key, d ? d : "(no diagnostic)");
	}
	bw_policy_list_clear(&list);
	bw_diags_clear(&diags);
}

static void on_event(void *userdata, enum bw_kube_event type, struct json_object *obj)
{
	struct watcher *w = userdata;
	char t[32];

	now(t, sizeof(t));
	if (type == BW_KUBE_SYNC_BEGIN || type == BW_KUBE_SYNC_END) {
		if (obj)
			out("VIOLATION %s: an object with %s\n", w->resource, bw_kube_event_name(type));
		if (type == BW_KUBE_SYNC_BEGIN) {
			out("SYNC_BEGIN %s t=%s\n", w->resource, t);
		} else {
			struct bw_kube_reflector_stats s;

			bw_kube_reflector_get_stats(w->r, &s);
			out("SYNC_END %s rv=%s objects=%llu t=%s\n", w->resource, s.resource_version,
			    (unsigned long long)s.objects, t);
		}
		json_object_put(obj);
		return;
	}
	{
		_cleanup_free_ char *key = bw_kube_object_key(obj);
		const char *rvs = str_at(obj, "metadata", "resourceVersion");
		long long rv = rvs ? strtoll(rvs, NULL, 10) : -1;
		struct json_object *prev = NULL;
		bool known;

		if (!key || !rvs || !str_at(obj, "kind", NULL) || !str_at(obj, "apiVersion", NULL)) {
			out("VIOLATION %s: %s object without name, resourceVersion, kind or apiVersion\n", w->resource,
			    bw_kube_event_name(type));
			json_object_put(obj);
			return;
		}
		known = json_object_object_get_ex(w->seen, key, &prev);
		if (type == BW_KUBE_ADDED && known)
			out("VIOLATION %s: ADDED %s, already known\n", w->resource, key);
		if (type != BW_KUBE_ADDED && !known)
			out("VIOLATION %s: %s %s, never added\n", w->resource, bw_kube_event_name(type), key);
		if (known && (type == BW_KUBE_DELETED ? rv < json_object_get_int64(prev)
						     : rv <= json_object_get_int64(prev)))
			out("VIOLATION %s: %s %s rv %lld after %lld\n", w->resource, bw_kube_event_name(type), key,
			    rv, (long long)json_object_get_int64(prev));
		if (type == BW_KUBE_DELETED)
			json_object_object_del(w->seen, key);
		else
			json_object_object_add(w->seen, key, json_object_new_int64(rv));
		out("EVENT %s %s %s %s t=%s\n", bw_kube_event_name(type), key, rvs, w->resource, t);
		if (parse_policies && type != BW_KUBE_DELETED)
			check_policy(obj, key);
	}
	json_object_put(obj);
}

static void print_stats(struct watcher *ws, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct bw_kube_reflector_stats s;

		bw_kube_reflector_get_stats(ws[i].r, &s);
		out("STATS %s lists=%llu relists=%llu watches=%llu failures=%llu reconnects=%llu unauthorized=%llu "
		    "events=%llu bookmarks=%llu decode_errors=%llu partial_lines=%llu objects=%llu synced=%d "
		    "watching=%d list_ms=%llu rv=%s error=%s\n",
		    ws[i].resource, (unsigned long long)s.lists, (unsigned long long)s.relists,
		    (unsigned long long)s.watches, (unsigned long long)s.failures, (unsigned long long)s.reconnects,
		    (unsigned long long)s.unauthorized, (unsigned long long)s.events, (unsigned long long)s.bookmarks,
		    (unsigned long long)s.decode_errors, (unsigned long long)s.partial_lines,
		    (unsigned long long)s.objects, s.synced, s.watching, (unsigned long long)s.last_list_ms,
		    s.resource_version,
		    s.last_error[0] ? s.last_error : "-");
	}
}

/* "/api/v1/pods?fieldSelector=..." -> "pods" */
static char *resource_of(const char *path)
{
	size_t end = strcspn(path, "?");
	const char *start = path + end;

	while (start > path && start[-1] != '/')
		start--;
	return strndup(start, (size_t)(path + end - start));
}

static int one_shot(const struct bw_kube_config *cfg, int argc, char **argv)
{
	struct bw_kube_client *c;
	struct json_object *o = NULL;
	char *error = NULL;
	long status = 0;
	int r;

	c = bw_kube_client_new(cfg, NULL, &error);
	if (!c) {
		fprintf(stderr, "reflector-driver: %s\n", error);
		free(error);
		return 1;
	}
	if (streq(argv[0], "get") && argc == 2)
		r = bw_kube_get(c, argv[1], &o, &status, &error);
	else if (streq(argv[0], "patch") && argc == 4)
		r = bw_kube_patch(c, argv[1], argv[2], argv[3], &o, &status, &error);
	else {
		fprintf(stderr, "reflector-driver: get PATH | patch PATH CONTENT-TYPE BODY\n");
		bw_kube_client_free(c);
		return 2;
	}
	printf("HTTP %ld rc=%s\n", status, r == 0 ? "0" : strerrorname_np(-r));
	if (o)
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	if (error)
		printf("ERROR %s\n", error);
	json_object_put(o);
	free(error);
	bw_kube_client_free(c);
	return r == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "kubeconfig", required_argument, NULL, 'k' },
		{ "context", required_argument, NULL, 'c' },
		{ "in-cluster", no_argument, NULL, 'i' },
		{ "watch-timeout", required_argument, NULL, 'w' },
		{ "backoff-base-ms", required_argument, NULL, 'b' },
		{ "backoff-cap-ms", required_argument, NULL, 'B' },
		{ "idle-timeout", required_argument, NULL, 'I' },
		{ "page-size", required_argument, NULL, 'p' },
		{ "parse-policies", no_argument, NULL, 'P' },
		{ "node", required_argument, NULL, 'n' },
		{}
	};
	const char *kubeconfig = NULL, *context = NULL;
	char **paths = NULL, *node_path = NULL;
	bool in_cluster = false;
	struct bw_kube_reflector_options ro = {};
	struct bw_kube_config cfg = {};
	struct watcher *ws = NULL;
	size_t n = 0;
	char *error = NULL;
	sigset_t mask;
	int opt, sfd, stats_seq = 0, rc = 0;
	char t[32];

	while ((opt = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		switch (opt) {
		case 'k':
			kubeconfig = optarg;
			break;
		case 'c':
			context = optarg;
			break;
		case 'i':
			in_cluster = true;
			break;
		case 'w':
			ro.watch_timeout_s = (unsigned)atoi(optarg);
			break;
		case 'b':
			ro.backoff_base_ms = (unsigned)atoi(optarg);
			break;
		case 'B':
			ro.backoff_cap_ms = (unsigned)atoi(optarg);
			break;
		case 'I':
			ro.client.idle_timeout_s = (unsigned)atoi(optarg);
			break;
		case 'p':
			ro.list_page_size = (unsigned)atoi(optarg);
			break;
		case 'P':
			parse_policies = true;
			break;
		case 'n':
			free(node_path);
			node_path = bw_kube_node_pods_path(optarg);
			break;
		default:
			return 2;
		}
	}
	if ((!kubeconfig) == (!in_cluster) || (optind >= argc && !node_path)) {
		fprintf(stderr, "usage: reflector-driver (--kubeconfig FILE [--context C] | --in-cluster) [options] PATH...\n");
		return 2;
	}
	if ((in_cluster ? bw_kube_config_in_cluster(&cfg, &error)
			: bw_kube_config_load_kubeconfig(kubeconfig, context, &cfg, &error)) < 0) {
		fprintf(stderr, "reflector-driver: %s\n", error ? error : "out of memory");
		free(error);
		return 1;
	}
	const char *why = NULL;

	if (bw_kube_global_init(&why) < 0) {
		fprintf(stderr, "reflector-driver: GnuTLS: %s\n", why);
		bw_kube_config_clear(&cfg);
		return 1;
	}
	if (optind < argc && (streq(argv[optind], "get") || streq(argv[optind], "patch"))) {
		rc = one_shot(&cfg, argc - optind, argv + optind);
		bw_kube_config_clear(&cfg);
		return rc;
	}

	/* Signals go to the signalfd, never to a reflector thread; SIGPIPE is
	 * blocked everywhere (the client sends with MSG_NOSIGNAL anyway). */
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	sigdelset(&mask, SIGPIPE);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		perror("signalfd");
		return 1;
	}

	n = (size_t)(argc - optind) + (node_path ? 1 : 0);
	ws = calloc(n, sizeof(*ws));
	paths = calloc(n, sizeof(*paths));
	if (!ws || !paths)
		return 1;
	for (size_t i = 0; i < n; i++)
		paths[i] = node_path && i == 0 ? node_path : argv[optind + (int)i - (node_path ? 1 : 0)];
	now(t, sizeof(t));
	out("START t=%s\n", t);
	for (size_t i = 0; i < n; i++) {
		ws[i].resource = resource_of(paths[i]);
		ws[i].seen = json_object_new_object();
		ro.path = paths[i];
		ro.on_event = on_event;
		ro.userdata = &ws[i];
		ws[i].r = bw_kube_reflector_new(&cfg, &ro, &error);
		if (!ws[i].r) {
			fprintf(stderr, "reflector-driver: %s\n", error ? error : "out of memory");
			free(error);
			return 1;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (bw_kube_reflector_start(ws[i].r) < 0) {
			fprintf(stderr, "reflector-driver: cannot start a thread\n");
			return 1;
		}

	for (;;) {
		struct signalfd_siginfo si;
		ssize_t k = read(sfd, &si, sizeof(si));

		if (k < 0 && errno == EINTR)
			continue;
		if (k != sizeof(si)) {
			rc = 1;
			break;
		}
		if (si.ssi_signo == SIGUSR1) {
			print_stats(ws, n);
			out("STATS-END %d\n", ++stats_seq);
			continue;
		}
		break;
	}

	{
		uint64_t t0 = clock_ns(CLOCK_MONOTONIC);

		for (size_t i = 0; i < n; i++)
			bw_kube_reflector_stop(ws[i].r);
		for (size_t i = 0; i < n; i++)
			bw_kube_reflector_join(ws[i].r);
		out("STOPPED ms=%llu\n", (unsigned long long)((clock_ns(CLOCK_MONOTONIC) - t0) / 1000000));
	}
	print_stats(ws, n);
	for (size_t i = 0; i < n; i++) {
		bw_kube_reflector_free(ws[i].r);
		json_object_put(ws[i].seen);
		free(ws[i].resource);
	}
	free(ws);
	free(paths);
	free(node_path);
	close(sfd);
	bw_kube_config_clear(&cfg);
	return rc;
}
