/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <stdint.h>
#include <sys/stat.h>

#include "inventory.h"
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

bool bw_kubepods_contains(const char *cgroup_path)
{
	return bw_cgroup_path_has_prefix(cgroup_path, BW_KUBEPODS_ROOT_SYSTEMD) ||
	       bw_cgroup_path_has_prefix(cgroup_path, BW_KUBEPODS_ROOT_CGROUPFS);
}

/* Copies the run of [0-9a-f_-] starting at s into out (at most size - 1),
 * '_' turned back into '-'. */
static void copy_token(const char *s, size_t len, char *out, size_t size)
{
	size_t n = len < size - 1 ? len : size - 1;

	for (size_t i = 0; i < n; i++)
		out[i] = s[i] == '_' ? '-' : s[i];
	out[n] = '\0';
}

int bw_kubepods_classify(const char *cgroup_path, char pod_uid[64], char container_id[80])
{
	static const char *const scope_prefixes[] = { "cri-containerd-", "crio-", "docker-" };
	const char *p = cgroup_path, *pod = NULL, *ctr = NULL;
	size_t pod_len = 0, ctr_len = 0;

	pod_uid[0] = container_id[0] = '\0';
	if (!bw_kubepods_contains(cgroup_path))
		return -EINVAL;
	/* Walk the components: the one after a pod's is its container's. */
	while (*p) {
		const char *c = p + 1, *end = strchr(c, '/');
		size_t len = end ? (size_t)(end - c) : strlen(c);
		const char *podtag = NULL;

		for (size_t i = 0; i + 3 < len; i++)
			if (!strncmp(c + i, "pod", 3) && (i == 0 || c[i - 1] == '-')) {
				podtag = c + i + 3;
				break;
			}
		if (pod) {
			const char *id = c;
			size_t idlen = len;

			for (size_t i = 0; i < ELEMENTSOF(scope_prefixes); i++) {
				size_t pl = strlen(scope_prefixes[i]);

				if (!strncmp(c, scope_prefixes[i], pl) && len > pl + 6 && !strncmp(c + len - 6, ".scope", 6)) {
					id = c + pl;
					idlen = len - pl - 6;
				}
			}
			ctr = id;
			ctr_len = idlen;
			break;
		}
		if (podtag) {
			pod = podtag;
			pod_len = len - (size_t)(podtag - c);
			if (pod_len > 6 && !strncmp(pod + pod_len - 6, ".slice", 6))
				pod_len -= 6;
		}
		if (!end)
			break;
		p = end;
	}
	if (pod)
		copy_token(pod, pod_len, pod_uid, 64);
	if (ctr) {
		copy_token(ctr, ctr_len, container_id, 80);
		return 2;
	}
	return pod ? 1 : 0;
}

/* nftw has no user data: the walk's state (one walk at a time). */
static int (*walk_cb)(uint64_t id, void *userdata);
static void *walk_userdata;
static int walk_count;

static int walk_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_D && walk_cb((uint64_t)st->st_ino, walk_userdata) == 0)
		walk_count++;
	return 0;
}

int bw_kubepods_walk(const char *cgroup_root, int (*cb)(uint64_t id, void *userdata), void *userdata)
{
	static const char *const roots[] = { BW_KUBEPODS_ROOT_SYSTEMD, BW_KUBEPODS_ROOT_CGROUPFS };
	char path[PATH_MAX];

	walk_cb = cb;
	walk_userdata = userdata;
	walk_count = 0;
	for (size_t i = 0; i < ELEMENTSOF(roots); i++) {
		struct stat st;

		snprintf(path, sizeof(path), "%s%s", cgroup_root, roots[i]);
		if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (nftw(path, walk_one, 16, FTW_PHYS) < 0)
			return -errno;
	}
	return walk_count;
}
