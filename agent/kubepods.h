/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where the kubelet puts a pod's processes in the cgroup v2 tree.
 *
 * systemd cgroup driver:
 *   /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope
 *   (Guaranteed pods: /kubepods.slice/kubepods-pod<uid_>.slice/...; uid dashes become underscores;
 *   CRI-O: crio-<id>.scope; Docker via cri-dockerd: docker-<id>.scope)
 * cgroupfs driver:
 *   /kubepods/burstable/pod<uid>/<id>   (Guaranteed: /kubepods/pod<uid>/<id>)
 *
 * A pod's workload is its pod cgroup (containers are below it and covered
 * with it); each container is also its own workload so that events can
 * name the container.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BW_KUBEPODS_CANDIDATES 4

/* The possible pod cgroup paths for a pod uid and QoS class ("Guaranteed",
 * "Burstable", "BestEffort"; NULL or unknown: all three are tried), written
 * into out[] (caller frees each). Returns how many, or a negative errno. */
int bw_kubepods_pod_paths(const char *uid, const char *qos_class, char **out, size_t max);

/* The possible cgroup paths of a container, given its pod cgroup path and a
 * containerID as the kubelet reports it ("containerd://<hex>",
 * "cri-o://<hex>", "docker://<hex>"). Returns how many, or -EINVAL when the
 * container id is not one of those forms. */
int bw_kubepods_container_paths(const char *pod_path, const char *container_id, char **out, size_t max);

/* The kubepods roots of both drivers, relative to the cgroup2 mount. */
#define BW_KUBEPODS_ROOT_SYSTEMD "/kubepods.slice"
#define BW_KUBEPODS_ROOT_CGROUPFS "/kubepods"

/* Whether a cgroup path is a kubepods root or below one. */
bool bw_kubepods_contains(const char *cgroup_path);

/* What a kubepods cgroup path says: the pod uid (dashes restored) and the
 * container id (hex) when it names them; "" when it does not. Returns
 * 2 (container), 1 (pod), 0 (a root or QoS level), -EINVAL (not kubepods). */
int bw_kubepods_classify(const char *cgroup_path, char pod_uid[64], char container_id[80]);

/* Calls cb with the id of every kubepods cgroup that exists now (the roots
 * and all below). Returns how many calls returned 0, or a negative errno. */
int bw_kubepods_walk(const char *cgroup_root, int (*cb)(uint64_t id, void *userdata), void *userdata);

/* The first of paths[] that exists as a directory below cgroup_root, or NULL. */
const char *bw_kubepods_find(const char *cgroup_root, char *const *paths, size_t n);
