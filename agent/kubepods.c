/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kubepods.h"
#include "util.h"

/* A pod uid or container id goes into a path: only these characters. */
static bool safe_token(const char *s, const char *extra)
{
	if (!s || !*s || strlen(s) > 128)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || strchr(extra, *s)))
			return false;
	return true;
}

static int add(char **out, size_t max, size_t *n, char *s)
{
	if (!s)
		return -ENOMEM;
	if (*n >= max) {
		free(s);
		return -E2BIG;
	}
	out[(*n)++] = s;
	return 0;
}

int bw_kubepods_pod_paths(const char *uid, const char *qos_class, char **out, size_t max)
{
	static const char *const classes[] = { "Guaranteed", "Burstable", "BestEffort" };
	char uid_[160];
	size_t n = 0;
	int ret;

	if (!safe_token(uid, "-"))
		return -EINVAL;
	snprintf(uid_, sizeof(uid_), "%s", uid);
	for (char *p = uid_; *p; p++)
		if (*p == '-')
			*p = '_'; /* systemd unit names keep '-' for nesting */

	for (size_t i = 0; i < ELEMENTSOF(classes); i++) {
		const char *c = classes[i];
		bool guaranteed = !strcmp(c, "Guaranteed");
		const char *lower = guaranteed ? "" : !strcmp(c, "Burstable") ? "burstable" : "besteffort";

		if (qos_class && strcmp(qos_class, c) && (!strcmp(qos_class, "Guaranteed") ||
							  !strcmp(qos_class, "Burstable") ||
							  !strcmp(qos_class, "BestEffort")))
			continue;
		if (guaranteed) {
			ret = add(out, max, &n, strprintf("/kubepods.slice/kubepods-pod%s.slice", uid_));
			if (ret == 0)
				ret = add(out, max, &n, strprintf("/kubepods/pod%s", uid));
		} else {
			ret = add(out, max, &n, strprintf("/kubepods.slice/kubepods-%s.slice/kubepods-%s-pod%s.slice",
							  lower, lower, uid_));
			if (ret == 0)
				ret = add(out, max, &n, strprintf("/kubepods/%s/pod%s", lower, uid));
		}
		if (ret < 0) {
			while (n)
				free(out[--n]);
			return ret;
		}
	}
	return (int)n;
}

int bw_kubepods_container_paths(const char *pod_path, const char *container_id, char **out, size_t max)
{
	static const struct {
		const char *scheme, *scope_prefix;
	} runtimes[] = {
		{ "containerd://", "cri-containerd-" },
		{ "cri-o://", "crio-" },
		{ "docker://", "docker-" },
	};
	size_t n = 0;
	int ret;

	if (!pod_path || !container_id)
		return -EINVAL;
	for (size_t i = 0; i < ELEMENTSOF(runtimes); i++) {
		const char *id = startswith(container_id, runtimes[i].scheme);

		if (!id)
			continue;
		if (!safe_token(id, ""))
			return -EINVAL;
		/* systemd driver: a .scope below the pod slice; cgroupfs: the id */
		if (endswith(pod_path, ".slice"))
			ret = add(out, max, &n, strprintf("%s/%s%s.scope", pod_path, runtimes[i].scope_prefix, id));
		else
			ret = add(out, max, &n, strprintf("%s/%s", pod_path, id));
		if (ret < 0)
			return ret;
		return (int)n;
	}
	return -EINVAL;
}

const char *bw_kubepods_find(const char *cgroup_root, char *const *paths, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char full[PATH_MAX];
		struct stat st;

		if (snprintf(full, sizeof(full), "%s%s", cgroup_root, paths[i]) >= (int)sizeof(full))
			continue;
		if (stat(full, &st) == 0 && S_ISDIR(st.st_mode))
			return paths[i];
	}
	return NULL;
}
