// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The LSM layer's time per call, for every LSM alike: fentry/fexit on the
 * security_*() functions that run each LSM's hook in turn (AppArmor's, the
 * BPF LSM's and with it bulwarkd's or the floor's programs). Timing there
 * leaves out the syscall around the hook, whose spread on an emulated CPU
 * hides differences of a microsecond; the same probes run in every
 * configuration, so their own cost cancels out of the comparison.
 * AppArmor mediates exec in bprm_creds_for_exec and Bulwark in
 * bprm_check_security: both are timed, and an exec's cost is their sum.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "lsm_time.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u64 target_cgroup = 0; /* only calls made in this cgroup */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LSM_TIME_HOOKS);
	__type(key, __u32);
	__type(value, struct lsm_time);
} times SEC(".maps");

/* When each thread entered each hook: hooks may sleep and move CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u64);
} started SEC(".maps");

static __always_inline __u64 key_of(__u32 hook)
{
	return (bpf_get_current_pid_tgid() << 8) | hook;
}

static __always_inline int enter(__u32 hook)
{
	__u64 key, now;

	if (bpf_get_current_cgroup_id() != target_cgroup)
		return 0;
	key = key_of(hook);
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&started, &key, &now, BPF_ANY);
	return 0;
}

static __always_inline int leave(__u32 hook)
{
	__u64 now = bpf_ktime_get_ns(), key, *t0;
	struct lsm_time *t;

	if (bpf_get_current_cgroup_id() != target_cgroup)
		return 0;
	key = key_of(hook);
	t0 = bpf_map_lookup_elem(&started, &key);
	t = bpf_map_lookup_elem(&times, &hook);
	if (!t0 || !t)
		return 0;
	t->calls++;
	t->ns += now - *t0;
	bpf_map_delete_elem(&started, &key);
	return 0;
}

SEC("fentry/security_file_open")
int BPF_PROG(file_open_enter, struct file *file)
{
	return enter(LSM_TIME_FILE_OPEN);
}

SEC("fexit/security_file_open")
int BPF_PROG(file_open_leave, struct file *file, int ret)
{
	return leave(LSM_TIME_FILE_OPEN);
}

SEC("fentry/security_bprm_creds_for_exec")
int BPF_PROG(bprm_creds_enter, struct linux_binprm *bprm)
{
	return enter(LSM_TIME_BPRM_CREDS_FOR_EXEC);
}

SEC("fexit/security_bprm_creds_for_exec")
int BPF_PROG(bprm_creds_leave, struct linux_binprm *bprm, int ret)
{
	return leave(LSM_TIME_BPRM_CREDS_FOR_EXEC);
}

SEC("fentry/security_bprm_check")
int BPF_PROG(bprm_check_enter, struct linux_binprm *bprm)
{
	return enter(LSM_TIME_BPRM_CHECK);
}

SEC("fexit/security_bprm_check")
int BPF_PROG(bprm_check_leave, struct linux_binprm *bprm, int ret)
{
	return leave(LSM_TIME_BPRM_CHECK);
}

SEC("fentry/security_socket_connect")
int BPF_PROG(socket_connect_enter, struct socket *sock, struct sockaddr *address, int addrlen)
{
	return enter(LSM_TIME_SOCKET_CONNECT);
}

SEC("fexit/security_socket_connect")
int BPF_PROG(socket_connect_leave, struct socket *sock, struct sockaddr *address, int addrlen, int ret)
{
	return leave(LSM_TIME_SOCKET_CONNECT);
}
