/* SPDX-License-Identifier: Apache-2.0 */
/* Pod and container cgroup paths for both kubelet cgroup drivers. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kubepods.h"
#include "bw-test.h"

static void free_all(char **p, int n)
{
	for (int i = 0; i < n; i++)
		free(p[i]);
}

static bool has(char **p, int n, const char *want)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(p[i], want))
			return true;
	return false;
}

int main(void)
{
	char *p[8];
	int n;
	const char *uid = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";

	n = bw_kubepods_pod_paths(uid, "Burstable", p, 8);
	ASSERT(n == 2);
	ASSERT(n == 2 && has(p, n, "/kubepods.slice/kubepods-burstable.slice/"
			      "kubepods-burstable-pod1b4e28ba_2fa1_11d2_883f_0016d3cca427.slice"));
	ASSERT(n == 2 && has(p, n, "/kubepods/burstable/pod1b4e28ba-2fa1-11d2-883f-0016d3cca427"));
	free_all(p, n);

	n = bw_kubepods_pod_paths(uid, "Guaranteed", p, 8);
	ASSERT(n == 2 && has(p, n, "/kubepods.slice/kubepods-pod1b4e28ba_2fa1_11d2_883f_0016d3cca427.slice"));
	ASSERT(n == 2 && has(p, n, "/kubepods/pod1b4e28ba-2fa1-11d2-883f-0016d3cca427"));
	free_all(p, n);

	n = bw_kubepods_pod_paths(uid, "BestEffort", p, 8);
	ASSERT(n == 2 && has(p, n, "/kubepods/besteffort/pod1b4e28ba-2fa1-11d2-883f-0016d3cca427"));
	free_all(p, n);

	/* unknown QoS class: every layout */
	n = bw_kubepods_pod_paths(uid, NULL, p, 8);
	ASSERT(n == 6);
	free_all(p, n > 0 ? n : 0);
	ASSERT(bw_kubepods_pod_paths(uid, NULL, p, 4) == -E2BIG);

	/* a uid that could leave the cgroup tree is refused */
	ASSERT(bw_kubepods_pod_paths("../../etc", "Burstable", p, 8) == -EINVAL);
	ASSERT(bw_kubepods_pod_paths("", "Burstable", p, 8) == -EINVAL);

	n = bw_kubepods_container_paths("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podX.slice",
					"containerd://0123abcd", p, 8);
	ASSERT(n == 1 && !strcmp(p[0], "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podX.slice/"
				       "cri-containerd-0123abcd.scope"));
	free_all(p, n > 0 ? n : 0);
	n = bw_kubepods_container_paths("/kubepods.slice/kubepods-podX.slice", "cri-o://ff00", p, 8);
	ASSERT(n == 1 && !strcmp(p[0], "/kubepods.slice/kubepods-podX.slice/crio-ff00.scope"));
	free_all(p, n > 0 ? n : 0);
	n = bw_kubepods_container_paths("/kubepods/burstable/podX", "containerd://beef", p, 8);
	ASSERT(n == 1 && !strcmp(p[0], "/kubepods/burstable/podX/beef"));
	free_all(p, n > 0 ? n : 0);
	n = bw_kubepods_container_paths("/kubepods/podX", "docker://0a", p, 8);
	ASSERT(n == 1 && !strcmp(p[0], "/kubepods/podX/0a"));
	free_all(p, n > 0 ? n : 0);
	ASSERT(bw_kubepods_container_paths("/kubepods/podX", "rkt://x", p, 8) == -EINVAL);
	ASSERT(bw_kubepods_container_paths("/kubepods/podX", "containerd://../x", p, 8) == -EINVAL);

	/* find: the layout that exists on this node */
	{
		char root[] = "/tmp/bulwark-kubepods-XXXXXX", dir[256];

		ASSERT(mkdtemp(root) != NULL);
		snprintf(dir, sizeof(dir), "%s/kubepods", root);
		mkdir(dir, 0755);
		snprintf(dir, sizeof(dir), "%s/kubepods/burstable", root);
		mkdir(dir, 0755);
		snprintf(dir, sizeof(dir), "%s/kubepods/burstable/pod%s", root, uid);
		mkdir(dir, 0755);
		n = bw_kubepods_pod_paths(uid, NULL, p, 8);
		ASSERT(n == 6);
		{
			const char *f = bw_kubepods_find(root, p, (size_t)n);

			ASSERT(f && !strcmp(f, "/kubepods/burstable/pod1b4e28ba-2fa1-11d2-883f-0016d3cca427"));
		}
		rmdir(dir);
		ASSERT(bw_kubepods_find(root, p, (size_t)n) == NULL);
		free_all(p, n);
		snprintf(dir, sizeof(dir), "%s/kubepods/burstable", root);
		rmdir(dir);
		snprintf(dir, sizeof(dir), "%s/kubepods", root);
		rmdir(dir);
		rmdir(root);
	}

	/* classifying a path: pod uid (dashes back) and container id */
	{
		char uid[64], cid[80];

		ASSERT(bw_kubepods_classify("/kubepods.slice/kubepods-burstable.slice/"
					    "kubepods-burstable-pod1b4e28ba_2fa1_11d2_883f_0016d3cca427.slice/"
					    "cri-containerd-0123abcd.scope", uid, cid) == 2);
		ASSERT(!strcmp(uid, "1b4e28ba-2fa1-11d2-883f-0016d3cca427") && !strcmp(cid, "0123abcd"));
		ASSERT(bw_kubepods_classify("/kubepods.slice/kubepods-pod77_aa.slice", uid, cid) == 1);
		ASSERT(!strcmp(uid, "77-aa") && !cid[0]);
		ASSERT(bw_kubepods_classify("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod9.slice/"
					    "crio-beef.scope", uid, cid) == 2 && !strcmp(cid, "beef") && !strcmp(uid, "9"));
		ASSERT(bw_kubepods_classify("/kubepods/burstable/pod1b4e-28/abc123", uid, cid) == 2);
		ASSERT(!strcmp(uid, "1b4e-28") && !strcmp(cid, "abc123"));
		ASSERT(bw_kubepods_classify("/kubepods/pod42", uid, cid) == 1 && !strcmp(uid, "42"));
		ASSERT(bw_kubepods_classify("/kubepods.slice/kubepods-burstable.slice", uid, cid) == 0 && !uid[0]);
		ASSERT(bw_kubepods_classify("/kubepods", uid, cid) == 0);
		ASSERT(bw_kubepods_classify("/system.slice/pod1.service", uid, cid) == -EINVAL);
		ASSERT(bw_kubepods_classify("/kubepods-x/pod1", uid, cid) == -EINVAL);
		ASSERT(bw_kubepods_contains("/kubepods.slice/a") && bw_kubepods_contains("/kubepods") &&
		       !bw_kubepods_contains("/kubepodsx") && !bw_kubepods_contains("/"));
	}
	return bw_test_summary();
}
