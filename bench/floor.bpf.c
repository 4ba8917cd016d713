// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The floor: BPF-LSM programs on the three hooks Bulwark uses that decide
 * nothing. What any BPF-LSM agent costs before it looks at anything; the
 * benchmark compares bulwarkd against this, not only against no program.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("lsm/bprm_check_security")
int BPF_PROG(floor_exec, struct linux_binprm *bprm, int ret)
{
	return ret;
}

SEC("lsm/file_open")
int BPF_PROG(floor_file_open, struct file *file, int ret)
{
	return ret;
}

SEC("lsm/socket_connect")
int BPF_PROG(floor_connect, struct socket *sock, struct sockaddr *address, int addrlen, int ret)
{
	return ret;
}
