// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A producer for tests/unit/test-event-ring.c: each getppid() of the test
 * process puts one record of the size the test asks for on a one-page ring
 * buffer (or reserves and discards one), so that the reader of
 * agent/event-ring.c meets records crossing the end of the kernel's ring.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define PAYLOAD_MAX 512

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096); /* the smallest ring: one page */
} ring SEC(".maps");

const volatile __u32 target_tgid;
__u32 next_size;    /* bytes of the next record, 1..PAYLOAD_MAX */
__u32 discard_next; /* reserve 64 bytes and discard them instead */
__u32 produced, failed;
char payload[PAYLOAD_MAX];

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tracepoint/syscalls/sys_enter_getppid")
int produce(void *ctx)
{
	__u32 size = next_size;

	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	if (discard_next) {
		void *r = bpf_ringbuf_reserve(&ring, 64, 0);

		if (!r) {
			failed++;
			return 0;
		}
		bpf_ringbuf_discard(r, 0);
		produced++;
		return 0;
	}
	if (size < 1 || size > PAYLOAD_MAX) {
		failed++;
		return 0;
	}
	if (bpf_ringbuf_output(&ring, payload, size, 0) < 0)
		failed++;
	else
		produced++;
	return 0;
}
