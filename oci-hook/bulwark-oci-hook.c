/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bulwark-oci-hook: an OCI runtime hook (createRuntime or prestart) that
 * holds a container's start until bulwarkd confirms that the rules for the
 * container's cgroup are in the kernel, so that the container's first
 * process is judged by its policies, not by whatever the cgroup inherited.
 *
 * The runtime gives the container's state on stdin (OCI runtime spec,
 * "State"): the init process's pid (its cgroup is read from
 * /proc/PID/cgroup) and the annotations that name the pod (CRI-O:
 * io.kubernetes.pod.*, containerd: io.kubernetes.cri.*). The hook asks
 * bulwarkd on its unix socket (agent/hook-server.h has the protocol) and
 * exits 0 to let the container start, 1 to refuse it.
 *
 * When bulwarkd cannot say (down, too slow, or the pod still unknown when
 * the time is up) the failure mode decides: closed refuses, open allows,
 * auto (the default) refuses in namespaces that a Block policy selects and
 * allows elsewhere; the namespaces are from bulwarkd's answer, or, when it
 * did not answer, from the block-namespaces file it keeps beside its socket.
 * Exempt namespaces (default kube-system) never wait.
 *
 *   bulwark-oci-hook [--socket PATH] [--timeout-ms N] [--fail auto|closed|open]
 *                    [--exempt-namespace NS]... [--block-file PATH] [--quiet] [--log FILE]
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#define DEFAULT_SOCKET "/run/bulwark/hook.sock"
#define MAX_EXEMPT 64

enum fail_mode { FAIL_AUTO, FAIL_CLOSED, FAIL_OPEN };

struct options {
	const char *socket, *block_file;
	unsigned timeout_ms;
	enum fail_mode fail;
	const char *exempt[MAX_EXEMPT];
	size_t n_exempt;
	bool quiet;
	const char *log; /* each decision appended as one line */
};

struct container {
	const char *id;
	long pid;
	char cgroup[PATH_MAX];
	const char *namespace, *pod, *name;
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t now_ms(void)
{
	return now_us() / 1000;
}

static const char *annotation(struct json_object *state, const char *const *keys)
{
	struct json_object *ann, *v;

	if (!json_object_object_get_ex(state, "annotations", &ann))
		return NULL;
	for (; *keys; keys++)
		if (json_object_object_get_ex(ann, *keys, &v) && json_object_is_type(v, json_type_string))
			return json_object_get_string(v);
	return NULL;
}

/* The cgroup v2 path of pid ("0::/path" in /proc/PID/cgroup). */
static int cgroup_of(long pid, char *out, size_t size)
{
	char path[64], line[PATH_MAX + 8];
	FILE *f;
	int ret = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%ld/cgroup", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3)) {
			size_t l;

			line[strcspn(line, "\n")] = '\0';
			l = strlen(line + 3);
			/* A cut path would name another cgroup: refuse it. */
			if (l >= size) {
				ret = -ENAMETOOLONG;
				break;
			}
			memcpy(out, line + 3, l + 1);
			ret = 0;
		}
	fclose(f);
	return ret;
}

/* Asks bulwarkd. Returns 0 with *answer (the parsed reply), or a negative
 * errno: it did not answer in time, or is not there. */
static int ask(const struct options *o, const struct container *c, struct json_object **answer, char *why, size_t size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct json_object *req = json_object_new_object();
	uint64_t deadline = now_ms() + o->timeout_ms;
	char buf[4096];
	size_t len = 0;
	const char *text;
	int fd, ret;

	*answer = NULL;
	json_object_object_add(req, "cgroup", json_object_new_string(c->cgroup));
	if (c->namespace)
		json_object_object_add(req, "namespace", json_object_new_string(c->namespace));
	if (c->pod)
		json_object_object_add(req, "pod", json_object_new_string(c->pod));
	if (c->name)
		json_object_object_add(req, "container", json_object_new_string(c->name));
	if (c->id)
		json_object_object_add(req, "id", json_object_new_string(c->id));
	/* bulwarkd answers "unclassified" a little before we give up. */
	json_object_object_add(req, "timeoutMs", json_object_new_int(o->timeout_ms > 200 ? (int)o->timeout_ms - 100 : (int)o->timeout_ms));
	text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", o->socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		snprintf(why, size, "cannot reach bulwarkd at %s: %s", o->socket, strerror(errno));
		goto out;
	}
	if (write(fd, text, strlen(text)) < 0 || write(fd, "\n", 1) < 0) {
		ret = -errno;
		snprintf(why, size, "cannot ask bulwarkd: %s", strerror(errno));
		goto out;
	}
	for (;;) {
		uint64_t now = now_ms();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (now >= deadline) {
			ret = -ETIMEDOUT;
			snprintf(why, size, "bulwarkd did not answer within %u ms", o->timeout_ms);
			goto out;
		}
		ret = poll(&p, 1, (int)(deadline - now));
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0)
			continue;
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0) {
			ret = n < 0 ? -errno : -ECONNRESET;
			snprintf(why, size, "bulwarkd closed the connection without an answer");
			goto out;
		}
		len += (size_t)n;
		buf[len] = '\0';
		if (strchr(buf, '\n') || len == sizeof(buf) - 1)
			break;
	}
	*answer = json_tokener_parse(buf);
	ret = *answer ? 0 : -EBADMSG;
	if (ret < 0)
		snprintf(why, size, "bulwarkd's answer is not JSON");
out:
	if (fd >= 0)
		close(fd);
	json_object_put(req);
	return ret;
}

/* bulwarkd's last word on which namespaces Block policies select. */
static bool listed_in_block_file(const char *file, const char *ns)
{
	char line[256];
	bool found = false;
	FILE *f;

	if (!ns || !(f = fopen(file, "re")))
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		found = !strcmp(line, ns);
	}
	fclose(f);
	return found;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bulwark-oci-hook [--socket PATH] [--timeout-ms N] [--fail auto|closed|open]\n"
		   "                        [--exempt-namespace NS]... [--block-file PATH] [--quiet] [--log FILE]\n"
		   "Reads the OCI container state on stdin; exits 0 to let the container start, 1 to refuse it.\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "fail", required_argument, NULL, 'f' },
		{ "exempt-namespace", required_argument, NULL, 'e' },
		{ "block-file", required_argument, NULL, 'b' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "log", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const char *const ns_keys[] = { "io.kubernetes.pod.namespace", "io.kubernetes.cri.sandbox-namespace", NULL };
	static const char *const pod_keys[] = { "io.kubernetes.pod.name", "io.kubernetes.cri.sandbox-name", NULL };
	static const char *const name_keys[] = { "io.kubernetes.container.name", "io.kubernetes.cri.container-name", NULL };
	struct options o = { .socket = DEFAULT_SOCKET, .timeout_ms = 5000, .fail = FAIL_AUTO };
	struct container c = { 0 };
	struct json_object *state, *v, *answer = NULL;
	char block_file[PATH_MAX], why[512] = "", *end;
	const char *verdict;
	bool block_ns, allow;
	uint64_t t0 = now_us();
	int ch, ret;

	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 's': o.socket = optarg; break;
		case 'b': o.block_file = optarg; break;
		case 'q': o.quiet = true; break;
		case 'l': o.log = optarg; break;
		case 't':
			errno = 0;
			o.timeout_ms = (unsigned)strtoul(optarg, &end, 10);
			if (errno || *end || o.timeout_ms == 0 || o.timeout_ms > 60000) {
				fprintf(stderr, "bulwark-oci-hook: --timeout-ms: \"%s\" is not 1..60000\n", optarg);
				return 1;
			}
			break;
		case 'f':
			if (!strcmp(optarg, "auto"))
				o.fail = FAIL_AUTO;
			else if (!strcmp(optarg, "closed"))
				o.fail = FAIL_CLOSED;
			else if (!strcmp(optarg, "open"))
				o.fail = FAIL_OPEN;
			else {
				fprintf(stderr, "bulwark-oci-hook: --fail: \"%s\" is not auto, closed or open\n", optarg);
				return 1;
			}
			break;
		case 'e':
			if (o.n_exempt == MAX_EXEMPT) {
				fprintf(stderr, "bulwark-oci-hook: more than %d exempt namespaces\n", MAX_EXEMPT);
				return 1;
			}
			o.exempt[o.n_exempt++] = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (!o.n_exempt)
		o.exempt[o.n_exempt++] = "kube-system";
	if (!o.block_file) {
		const char *slash = strrchr(o.socket, '/');

		snprintf(block_file, sizeof(block_file), "%.*s/block-namespaces",
			 slash ? (int)(slash - o.socket) : 1, slash ? o.socket : ".");
		o.block_file = block_file;
	}

	/* A hook that cannot read its input cannot know the container: that
	 * is a broken setup, refused whatever the failure mode. */
	state = json_object_from_fd(STDIN_FILENO);
	if (!state) {
		fprintf(stderr, "bulwark-oci-hook: the OCI state on stdin is not JSON\n");
		return 1;
	}
	c.id = json_object_object_get_ex(state, "id", &v) ? json_object_get_string(v) : NULL;
	c.pid = json_object_object_get_ex(state, "pid", &v) ? (long)json_object_get_int64(v) : 0;
	c.namespace = annotation(state, ns_keys);
	c.pod = annotation(state, pod_keys);
	c.name = annotation(state, name_keys);
	for (size_t i = 0; c.namespace && i < o.n_exempt; i++)
		if (!strcmp(c.namespace, o.exempt[i])) {
			if (!o.quiet)
				fprintf(stderr, "bulwark-oci-hook: %s: namespace %s is exempt\n", c.id ? c.id : "?", c.namespace);
			json_object_put(state);
			return 0;
		}
	if (c.pid <= 0 || (ret = cgroup_of(c.pid, c.cgroup, sizeof(c.cgroup))) < 0) {
		fprintf(stderr, "bulwark-oci-hook: %s: no cgroup for pid %ld in the state\n", c.id ? c.id : "?", c.pid);
		json_object_put(state);
		return 1;
	}

	ret = ask(&o, &c, &answer, why, sizeof(why));
	if (ret == 0 && json_object_object_get_ex(answer, "state", &v)) {
		struct json_object *b;

		verdict = json_object_get_string(v);
		block_ns = json_object_object_get_ex(answer, "blockNamespace", &b) && json_object_get_boolean(b);
		if (!strcmp(verdict, "enforced") || !strcmp(verdict, "unselected")) {
			allow = true;
			snprintf(why, sizeof(why), "%s", verdict);
		} else {
			allow = o.fail == FAIL_OPEN || (o.fail == FAIL_AUTO && !block_ns);
			snprintf(why, sizeof(why), "bulwarkd says %s", verdict);
		}
	} else {
		block_ns = listed_in_block_file(o.block_file, c.namespace);
		allow = o.fail == FAIL_OPEN || (o.fail == FAIL_AUTO && !block_ns);
	}
	{
		char line[2048];

		snprintf(line, sizeof(line), "bulwark-oci-hook: container %s (%s/%s/%s) cgroup %s: %s; %s after %.3f ms\n",
			 c.id ? c.id : "?", c.namespace ? c.namespace : "-", c.pod ? c.pod : "-", c.name ? c.name : "-",
			 c.cgroup, why, allow ? "starting" : block_ns ? "refused (a Block policy selects this namespace)"
								      : "refused (--fail closed)",
			 (double)(now_us() - t0) / 1000.0);
		if (!o.quiet || !allow)
			fputs(line, stderr);
		if (o.log) {
			/* One write with O_APPEND: lines of concurrent hooks do not mix. */
			FILE *f = fopen(o.log, "ae");

			if (f) {
				fputs(line, f);
				fclose(f);
			}
		}
	}
	json_object_put(answer);
	json_object_put(state);
	return allow ? 0 : 1;
}
