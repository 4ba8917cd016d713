/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test driver for bulwarkd's Kubernetes mode without a kernel: the same
 * agent/kubernetes.c (four watches, cluster source, status writer) and the
 * same compiler bulwarkd runs, with the plan written to a file instead of
 * the BPF maps. It lets the host check, against tests/k8s/apiserver.py and
 * the real kubectl, which cgroup gets which policies after every change;
 * the guest test checks the kernel side with bulwarkd itself.
 *
 *   cluster-driver --kubeconfig FILE --node-name NODE --cgroup-root DIR
 *                  --state FILE [--policy-dir DIR]
 *
 * After every apply it rewrites FILE (via rename):
 *   generation N
 *   ready 0|1
 *   policy <identity> (<file>)                        enforced policies
 *   workload <cgroup path> <ns>/<pod>[/<container>] <identity>;<identity>...
 *   error <workload>: <message>
 *   kubernetes ... / rejected ... / pods ...           as in bulwarkd's status file
 * On SIGUSR1 it writes FILE.health: the KUBE_* fields of bulwarkd's health
 * event, one "KEY value" line each. SIGTERM: stop and exit 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "audit-record.h"
#include "compile.h"
#include "config.h"
#include "inventory.h"
#include "kubernetes.h"
#include "policy-store.h"

struct driver {
	struct bw_config cfg;
	const char *state;
	struct bw_k8s k8s;
	struct bw_inventory inv;
	struct bw_policy_store store;
	struct bw_rule_table rules;
	unsigned generation;
};

static void write_state(struct driver *d, const struct bw_policy_list *pols, const struct bw_plan *plan)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", d->state);
	f = fopen(tmp, "we");
	if (!f) {
		perror(tmp);
		return;
	}
	fprintf(f, "generation %u\nready %d\n", d->generation, d->k8s.ready);
	for (size_t i = 0; i < pols->n; i++) {
		char *id = bw_policy_identity(pols->items[i]);

		fprintf(f, "policy %s (%s)\n", id ? id : "?", pols->items[i]->file);
		free(id);
	}
	for (size_t i = 0; i < plan->n_assign; i++) {
		const struct bw_assignment *as = &plan->assign[i];
		const struct bw_compiled_ruleset *rs = &plan->rulesets[as->ruleset];

		fprintf(f, "workload %s %s/%s%s%s ", as->cgroup_path, as->namespace ? as->namespace : "-",
			as->pod ? as->pod : "-", as->container ? "/" : "", as->container ? as->container : "");
		for (size_t s = 0; s < rs->n_slots; s++)
			fprintf(f, "%s%s", s ? ";" : "", rs->slots[s].policy);
		fputc('\n', f);
	}
	for (size_t i = 0; i < plan->n_errors; i++)
		fprintf(f, "error %s: %s\n", plan->errors[i].workload, plan->errors[i].message);
	bw_k8s_status_lines(&d->k8s, f);
	if (fclose(f) == 0 && rename(tmp, d->state) < 0)
		perror(d->state);
}

static void apply(struct driver *d, bool reload)
{
	struct bw_plan_options po = { .compile = { .root = "/" }, .cgroup_root = d->cfg.cgroup_root };
	struct bw_policy_list pols = { 0 };
	struct bw_plan plan;

	if (reload && d->cfg.policy_dir)
		bw_policy_store_reload(&d->store, d->cfg.policy_dir);
	pols.items = malloc((d->store.current.n + 1) * sizeof(*pols.items));
	if (!pols.items)
		return;
	if (d->store.current.n)
		memcpy(pols.items, d->store.current.items, d->store.current.n * sizeof(*pols.items));
	pols.n = d->store.current.n;
	if (bw_k8s_policies(&d->k8s, &d->store.current, &pols) < 0 ||
	    bw_plan_build(&pols, &d->inv, &po, &d->rules, &plan) < 0) {
		fprintf(stderr, "cluster-driver: cannot build the plan\n");
		free(pols.items);
		return;
	}
	d->generation++;
	bw_k8s_report(&d->k8s, &d->store.current, &plan, false, getenv("DRIVER_DEGRADED"));
	write_state(d, &pols, &plan);
	bw_plan_clear(&plan);
	free(pols.items);
}

static void write_health(struct driver *d)
{
	struct bw_record_builder b;
	struct bw_record *r;
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s.health.tmp", d->state);
	bw_record_builder_init(&b, BW_RECORD_HEALTH, 0, 6);
	bw_record_builder_message(&b, "health");
	bw_k8s_health(&d->k8s, &b);
	r = bw_record_builder_finish(&b);
	f = fopen(path, "we");
	if (!r || !f) {
		if (f)
			fclose(f);
		bw_record_unref(r);
		return;
	}
	for (size_t i = 0; i < r->n_fields; i++)
		fprintf(f, "%s %s\n", r->fields[i].key, r->fields[i].value);
	bw_record_unref(r);
	if (fclose(f) == 0) {
		char final[4096];

		snprintf(final, sizeof(final), "%s.health", d->state);
		rename(path, final);
	}
}

int main(int argc, char **argv)
{
	struct driver d = { 0 };
	struct epoll_event ev;
	char *why = NULL;
	sigset_t mask;
	int ep, sfd, tfd, kfd, ret;
	struct itimerspec its = { { 0, 200000000 }, { 0, 200000000 } };

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGPIPE);
	sigprocmask(SIG_BLOCK, &mask, NULL);

	bw_config_defaults(&d.cfg);
	/* Its own options first, then bulwarkd's for the rest. */
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--state")) {
			d.state = argv[i + 1];
			memmove(&argv[i], &argv[i + 2], (size_t)(argc - i - 1) * sizeof(*argv));
			argc -= 2;
			break;
		}
	if (!d.state || bw_config_parse_args(&d.cfg, argc, argv) != 0) {
		fprintf(stderr, "usage: cluster-driver --state FILE --kubeconfig FILE --node-name N --cgroup-root DIR\n");
		return 2;
	}
	ret = bw_k8s_start(&d.k8s, &d.cfg, &d.inv, &why);
	if (ret < 0) {
		fprintf(stderr, "cluster-driver: %s\n", why ? why : strerror(-ret));
		return 1;
	}
	/* A fifth of a second in the test, a second in bulwarkd: the start
	 * timeout is shortened below so the test of a missing CRD stays short. */
	if (getenv("BULWARK_TEST_SYNC_TIMEOUT_MS"))
		d.k8s.sync_timeout_ns = strtoull(getenv("BULWARK_TEST_SYNC_TIMEOUT_MS"), NULL, 10) * 1000000ULL;
	ep = epoll_create1(EPOLL_CLOEXEC);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	kfd = bw_k8s_fd(&d.k8s);
	timerfd_settime(tfd, 0, &its, NULL);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.fd = sfd };
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	ev.data.fd = tfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
	ev.data.fd = kfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, kfd, &ev);
	apply(&d, true);

	for (bool done = false; !done;) {
		struct epoll_event evs[4];
		int n = epoll_wait(ep, evs, 4, -1);

		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == kfd) {
				if (bw_k8s_drain(&d.k8s) & BW_K8S_CHANGED)
					apply(&d, false);
			} else if (evs[i].data.fd == tfd) {
				uint64_t x;
				struct timespec ts;

				if (read(tfd, &x, sizeof(x)) < 0)
					continue;
				clock_gettime(CLOCK_MONOTONIC, &ts);
				if (bw_k8s_tick(&d.k8s, (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec) &
				    BW_K8S_CHANGED)
					apply(&d, false);
			} else {
				struct signalfd_siginfo si;

				if (read(sfd, &si, sizeof(si)) != sizeof(si))
					continue;
				if (si.ssi_signo == SIGUSR1)
					write_health(&d);
				else
					done = true;
			}
		}
	}
	bw_k8s_stop(&d.k8s);
	bw_policy_store_clear(&d.store);
	bw_inventory_clear(&d.inv);
	bw_rule_table_clear(&d.rules);
	bw_config_clear(&d.cfg);
	close(ep);
	close(sfd);
	close(tfd);
	return 0;
}
