/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bulwark-oci-hook (the real binary, run with an OCI state on stdin) against
 * agent/hook-server.c in this process: what the hook sends, and its exit
 * status for each answer, failure mode, exempt namespace, a missing or
 * silent bulwarkd (the block-namespaces file), and bad input. Then the
 * server's pure parts: bw_hook_evaluate and bw_namespace_blocked.
 *
 *   test-oci-hook PATH-TO-bulwark-oci-hook
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hook-server.h"
#include "bw-test.h"

static const char *hook_bin;
static char dir[] = "/tmp/bulwark-hook-XXXXXX";
static char sock[64], block_file[256], logf[256];

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Starts the hook with state on its stdin and extra arguments; returns its pid. */
static pid_t spawn_hook(const char *state, const char *const *args)
{
	int in[2];
	pid_t pid;

	if (pipe(in) < 0)
		exit(2);
	pid = fork();
	if (pid == 0) {
		const char *argv[32] = { "bulwark-oci-hook", "--socket", sock, "--log", logf, "--quiet" };
		int n = 6;

		for (; args && *args && n < 30; args++)
			argv[n++] = *args;
		argv[n] = NULL;
		dup2(in[0], 0);
		close(in[0]);
		close(in[1]);
		execv(hook_bin, (char *const *)argv);
		_exit(127);
	}
	close(in[0]);
	if (write(in[1], state, strlen(state)) < 0)
		exit(2);
	close(in[1]);
	return pid;
}

static int wait_exit(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char state_locked[512], state_system[512];

/* The hook asks; this answers with state (PENDING: no answer at all, the
 * connection just stays open) and returns the hook's exit status.
 * *req_out gets a copy of what the hook asked. */
static int round_trip(struct bw_hook_server *s, const char *state_json, const char *const *args,
		      enum bw_hook_state answer, bool block_ns, char *cgroup_seen, char *ns_seen)
{
	pid_t pid = spawn_hook(state_json, args);
	struct bw_hook_request *r = NULL;
	struct pollfd p = { .fd = s->listen_fd, .events = POLLIN };
	int ret;

	cgroup_seen[0] = ns_seen[0] = '\0';
	if (poll(&p, 1, 5000) == 1 && (r = bw_hook_server_accept(s, mono_ns()))) {
		struct pollfd q = { .fd = r->fd, .events = POLLIN };

		while (poll(&q, 1, 5000) == 1 && (ret = bw_hook_request_read(r)) == 0)
			;
		if (r->parsed) {
			snprintf(cgroup_seen, 256, "%s", r->cgroup);
			snprintf(ns_seen, 64, "%s", r->namespace ? r->namespace : "");
		}
		if (answer != BW_HOOK_PENDING) {
			bw_hook_request_finish(s, r, answer, block_ns, "test", mono_ns());
			r = NULL;
		}
	}
	ret = wait_exit(pid);
	if (r)
		bw_hook_request_finish(s, r, BW_HOOK_PENDING, false, NULL, mono_ns());
	return ret;
}

static void own_cgroup(char *out, size_t size)
{
	char line[4096];
	FILE *f = fopen("/proc/self/cgroup", "re");

	out[0] = '\0';
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, size, "%s", line + 3);
		}
	if (f)
		fclose(f);
}

static bool log_has(const char *needle)
{
	char buf[65536];
	FILE *f = fopen(logf, "re");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

static void hook_tests(void)
{
	struct bw_hook_server s;
	char *err = NULL, cg[256], ns[64], self_cg[4096];
	const char *closed[] = { "--fail", "closed", NULL }, *open_[] = { "--fail", "open", NULL };
	const char *fast[] = { "--timeout-ms", "300", NULL };
	uint64_t t0;

	own_cgroup(self_cg, sizeof(self_cg));
	ASSERT(bw_hook_server_open(&s, sock, &err) == 0);
	if (err)
		printf("# %s\n", err);
	free(err);

	/* what the hook sends */
	ASSERT(round_trip(&s, state_locked, NULL, BW_HOOK_ENFORCED, true, cg, ns) == 0);
	ASSERT(!strcmp(cg, self_cg) && !strcmp(ns, "locked"));
	ASSERT(log_has("container c1 (locked/web/main) cgroup ") && log_has(": enforced; starting after"));
	ASSERT(round_trip(&s, state_locked, NULL, BW_HOOK_UNSELECTED, false, cg, ns) == 0);
	/* unclassified: the failure mode decides */
	ASSERT(round_trip(&s, state_locked, NULL, BW_HOOK_UNCLASSIFIED, true, cg, ns) == 1);
	ASSERT(log_has("bulwarkd says unclassified; refused (a Block policy selects this namespace)"));
	ASSERT(round_trip(&s, state_locked, NULL, BW_HOOK_UNCLASSIFIED, false, cg, ns) == 0);
	ASSERT(round_trip(&s, state_locked, open_, BW_HOOK_UNCLASSIFIED, true, cg, ns) == 0);
	ASSERT(round_trip(&s, state_locked, closed, BW_HOOK_UNCLASSIFIED, false, cg, ns) == 1);
	ASSERT(round_trip(&s, state_locked, NULL, BW_HOOK_ERROR, false, cg, ns) == 0);
	ASSERT(round_trip(&s, state_locked, closed, BW_HOOK_ERROR, false, cg, ns) == 1);
	/* bulwarkd silent: the hook gives up in time, then the block file decides */
	{
		FILE *f = fopen(block_file, "we");

		fputs("other\nlocked\n", f);
		fclose(f);
	}
	t0 = mono_ns();
	ASSERT(round_trip(&s, state_locked, fast, BW_HOOK_PENDING, false, cg, ns) == 1);
	ASSERT(mono_ns() - t0 < 2000000000ULL);
	ASSERT(log_has("bulwarkd did not answer within 300 ms; refused (a Block policy selects this namespace)"));
	ASSERT(s.stats.requests == 9 && s.stats.enforced == 1 && s.stats.unselected == 1 && s.stats.unclassified == 4);
	bw_hook_server_close(&s);
	ASSERT(access(sock, F_OK) < 0); /* the socket goes with the server */

	/* bulwarkd down */
	ASSERT(wait_exit(spawn_hook(state_locked, NULL)) == 1);
	ASSERT(log_has("cannot reach bulwarkd at"));
	ASSERT(wait_exit(spawn_hook(state_locked, open_)) == 0);
	unlink(block_file);
	ASSERT(wait_exit(spawn_hook(state_locked, NULL)) == 0); /* not known as a Block namespace */
	ASSERT(wait_exit(spawn_hook(state_locked, closed)) == 1);
	/* exempt namespaces never wait */
	ASSERT(wait_exit(spawn_hook(state_system, closed)) == 0);
	{
		const char *other[] = { "--exempt-namespace", "locked", "--fail", "closed", NULL };

		ASSERT(wait_exit(spawn_hook(state_locked, other)) == 0);
		ASSERT(wait_exit(spawn_hook(state_system, other)) == 1); /* kube-system only by default */
	}
	/* bad input: refused whatever the mode */
	ASSERT(wait_exit(spawn_hook("not json", open_)) == 1);
	ASSERT(wait_exit(spawn_hook("{\"id\":\"x\",\"pid\":0}", open_)) == 1);
	{
		const char *bad[] = { "--fail", "sometimes", NULL };

		ASSERT(wait_exit(spawn_hook(state_locked, bad)) == 1);
	}
}

static void server_tests(void)
{
	struct bw_hook_server s;
	struct bw_hook_request *r;
	char *err = NULL, buf[512] = "";
	int fd;

	/* a bad request gets an error answer */
	ASSERT(bw_hook_server_open(&s, sock, &err) == 0);
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		memcpy(sa.sun_path, sock, strlen(sock) + 1); /* mkdtemp path: short */
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		ASSERT(connect(fd, (void *)&sa, sizeof(sa)) == 0);
		ASSERT(write(fd, "{\"cgroup\":\"relative\"}\n", 22) == 22);
	}
	{
		struct pollfd p = { .fd = s.listen_fd, .events = POLLIN };

		ASSERT(poll(&p, 1, 2000) == 1);
	}
	r = bw_hook_server_accept(&s, mono_ns());
	ASSERT(r != NULL);
	if (r) {
		struct pollfd q = { .fd = r->fd, .events = POLLIN };
		int ret = 0;

		while (poll(&q, 1, 2000) == 1 && (ret = bw_hook_request_read(r)) == 0)
			;
		ASSERT(ret == -EBADMSG);
		bw_hook_request_finish(&s, r, BW_HOOK_ERROR, false, "bad request", mono_ns());
		ASSERT(read(fd, buf, sizeof(buf) - 1) > 0 && strstr(buf, "\"state\":\"error\""));
	}
	close(fd);
	bw_hook_server_close(&s);

	/* evaluate: the plan and the inventory say it */
	{
		struct bw_assignment as[2] = {
			{ .cgroup_id = 10, .cgroup_path = "/kubepods/burstable/podA/c1" },
			{ .cgroup_id = 20, .cgroup_path = "/kubepods/burstable", .unclassified = true },
		};
		struct bw_plan plan = { .assign = as, .n_assign = 2 };
		struct bw_inventory_workload w = { .cgroup = "/kubepods/burstable/podB", .namespace = "open", .pod = "b" };
		struct bw_inventory_workload *wl[] = { &w };
		struct bw_inventory inv = { .workloads = wl, .n_workloads = 1 };

		ASSERT(bw_hook_evaluate(&plan, &inv, 10, "/kubepods/burstable/podA/c1", true) == BW_HOOK_ENFORCED);
		ASSERT(bw_hook_evaluate(&plan, &inv, 10, "/kubepods/burstable/podA/c1", false) == BW_HOOK_PENDING);
		ASSERT(bw_hook_evaluate(&plan, &inv, 20, "/kubepods/burstable", true) == BW_HOOK_PENDING);
		ASSERT(bw_hook_evaluate(&plan, &inv, 30, "/kubepods/burstable/podB/c2", false) == BW_HOOK_UNSELECTED);
		ASSERT(bw_hook_evaluate(&plan, &inv, 40, "/kubepods/burstable/podC/c3", false) == BW_HOOK_PENDING);
		ASSERT(bw_hook_evaluate(&plan, &inv, 50, "/system.slice/x.service", false) == BW_HOOK_UNSELECTED);
	}
	/* which namespaces a Block policy selects */
	{
		static const char doc[] =
			"apiVersion: bulwark.dev/v1alpha1\nkind: ClusterBulwarkPolicy\nmetadata: {name: lock}\n"
			"spec: {mode: Block, namespaceSelector: {matchLabels: {locked: \"true\"}}, exec: {deny: [{path: /bin/sh}]}}\n"
			"---\napiVersion: bulwark.dev/v1alpha1\nkind: BulwarkPolicy\nmetadata: {name: web, namespace: shop}\n"
			"spec: {mode: Block, exec: {deny: [{path: /bin/sh}]}}\n"
			"---\napiVersion: bulwark.dev/v1alpha1\nkind: BulwarkPolicy\nmetadata: {name: dry, namespace: dev}\n"
			"spec: {mode: Audit, exec: {deny: [{path: /bin/sh}]}}\n";
		struct bw_policy_list pols = { 0 };
		struct bw_diags d = { 0 };
		struct bw_inventory inv = { 0 };
		struct bw_label l = { .key = "locked", .value = "true" };
		struct bw_labels labels = { .items = &l, .n = 1 }, none = { 0 };

		ASSERT(bw_policy_parse_buffer("t", doc, sizeof(doc) - 1, &pols, &d) == 0 && pols.n == 3);
		ASSERT(bw_inventory_put_namespace(&inv, "payments", &labels) >= 0);
		ASSERT(bw_inventory_put_namespace(&inv, "dev", &none) >= 0);
		ASSERT(bw_namespace_blocked(&pols, &inv, "payments"));
		ASSERT(bw_namespace_blocked(&pols, &inv, "shop"));
		ASSERT(!bw_namespace_blocked(&pols, &inv, "dev"));
		ASSERT(!bw_namespace_blocked(&pols, &inv, NULL));
		bw_policy_list_clear(&pols);
		bw_diags_clear(&d);
		bw_inventory_clear(&inv);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test-oci-hook PATH-TO-bulwark-oci-hook\n");
		return 2;
	}
	hook_bin = argv[1];
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir))
		return 2;
	snprintf(sock, sizeof(sock), "%s/hook.sock", dir);
	snprintf(block_file, sizeof(block_file), "%s/block-namespaces", dir);
	snprintf(logf, sizeof(logf), "%s/hook.log", dir);
	snprintf(state_locked, sizeof(state_locked),
		 "{\"ociVersion\":\"1.0.2\",\"id\":\"c1\",\"status\":\"creating\",\"pid\":%d,\"bundle\":\"/b\","
		 "\"annotations\":{\"io.kubernetes.pod.namespace\":\"locked\",\"io.kubernetes.pod.name\":\"web\","
		 "\"io.kubernetes.container.name\":\"main\"}}", (int)getpid());
	snprintf(state_system, sizeof(state_system),
		 "{\"ociVersion\":\"1.0.2\",\"id\":\"c2\",\"pid\":%d,"
		 "\"annotations\":{\"io.kubernetes.cri.sandbox-namespace\":\"kube-system\"}}", (int)getpid());
	hook_tests();
	server_tests();
	unlink(logf);
	unlink(block_file);
	rmdir(dir);
	return bw_test_summary();
}
