/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent/event-ring.c: the ring buffer read from one mapping of its data.
 * First on a ring laid out in memory by the test (discarded, busy, wrapped
 * and corrupt records, a callback that ends the batch); then on the host
 * kernel's own ring buffer, a one-page ring that tests/unit/ring_producer
 * fills with records of changing sizes, so that many cross its end, each
 * checked byte for byte and in order.
 */
#include <errno.h>
#include <linux/bpf.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "bw-test.h"
#include "event-ring.h"
#include "ring_producer.skel.h"

/* ---- a ring in memory ---- */

struct got {
	size_t n;
	size_t sizes[64];
	uint8_t first[64], last[64];
	int stop_after; /* return -EAGAIN for this record (1-based), 0: never */
};

static int collect(void *ctx, const void *data, size_t size)
{
	struct got *g = ctx;
	const uint8_t *b = data;

	if (g->n < 64) {
		g->sizes[g->n] = size;
		g->first[g->n] = size ? b[0] : 0;
		g->last[g->n] = size ? b[size - 1] : 0;
	}
	g->n++;
	return g->stop_after && (int)g->n == g->stop_after ? -EAGAIN : 0;
}

struct mem_ring {
	unsigned long cons, prod;
	uint8_t data[256], bounce[256];
	struct bw_ring_view v;
};

static void mem_ring_init(struct mem_ring *m, unsigned long start)
{
	memset(m, 0, sizeof(*m));
	m->cons = m->prod = start;
	m->v = (struct bw_ring_view){ .consumer_pos = &m->cons, .producer_pos = &m->prod, .data = m->data,
				      .size = sizeof(m->data), .bounce = m->bounce };
}

/* Writes a record as the kernel does: header (len | flags) at prod, the
 * bytes after it (wrapping), prod moved to the next 8-byte boundary. */
static void mem_ring_put(struct mem_ring *m, uint32_t len, uint32_t flags, uint8_t fill)
{
	size_t mask = sizeof(m->data) - 1;
	uint32_t hdr[2] = { len | flags, 0 };

	memcpy(m->data + (m->prod & mask), hdr, 8);
	for (uint32_t i = 0; i < len; i++)
		m->data[(m->prod + 8 + i) & mask] = (uint8_t)(fill + i);
	m->prod += (8 + len + 7) & ~7u;
}

static void test_memory_ring(void)
{
	struct mem_ring m = { 0 };
	struct got g = { 0 };

	/* In order; a discarded record is skipped but consumed. */
	mem_ring_init(&m, 0);
	mem_ring_put(&m, 5, 0, 10);
	mem_ring_put(&m, 16, BPF_RINGBUF_DISCARD_BIT, 0);
	mem_ring_put(&m, 1, 0, 20);
	ASSERT(bw_ring_view_consume(&m.v, collect, &g) == 2);
	ASSERT(g.n == 2 && g.sizes[0] == 5 && g.first[0] == 10 && g.last[0] == 14);
	ASSERT(g.sizes[1] == 1 && g.first[1] == 20);
	ASSERT(m.cons == m.prod);
	ASSERT(bw_ring_view_consume(&m.v, collect, &g) == 0 && g.n == 2);

	/* A record still being written stops the batch; those before it are
	 * read, and it is read once committed. */
	mem_ring_init(&m, 0);
	g = (struct got){ 0 };
	mem_ring_put(&m, 8, 0, 1);
	unsigned long busy_at = m.prod;
	mem_ring_put(&m, 8, BPF_RINGBUF_BUSY_BIT, 2);
	ASSERT(bw_ring_view_consume(&m.v, collect, &g) == 1 && m.cons == busy_at);
	memset(m.data + busy_at, 0, 4);
	m.data[busy_at] = 8; /* committed: the busy bit cleared */
	ASSERT(bw_ring_view_consume(&m.v, collect, &g) == 1 && g.n == 2 && g.first[1] == 2);

	/* Records crossing the end of the data area arrive whole: the header
	 * in the last 8 bytes (data from offset 0), and data split in two. */
	for (unsigned long start = 200; start <= 248; start += 8) {
		mem_ring_init(&m, start);
		g = (struct got){ 0 };
		mem_ring_put(&m, 100, 0, 50);
		mem_ring_put(&m, 3, 0, 7);
		ASSERT(bw_ring_view_consume(&m.v, collect, &g) == 2);
		ASSERT(g.sizes[0] == 100 && g.first[0] == 50 && g.last[0] == (uint8_t)(50 + 99));
		ASSERT(g.sizes[1] == 3 && g.first[1] == 7 && g.last[1] == 9);
	}

	/* The callback ends the batch: its record stays consumed, the next
	 * call goes on from there. */
	mem_ring_init(&m, 0);
	g = (struct got){ .stop_after = 2 };
	for (int i = 0; i < 4; i++)
		mem_ring_put(&m, 4, 0, (uint8_t)(i * 10));
	ASSERT(bw_ring_view_consume(&m.v, collect, &g) == -EAGAIN && g.n == 2);
	g.stop_after = 0;
	ASSERT(bw_ring_view_consume(&m.v, collect, &g) == 2 && g.n == 4 && g.first[3] == 30);

	/* A length the ring cannot hold is corruption, not a read past the end. */
	mem_ring_init(&m, 0);
	uint32_t bad[2] = { 4096, 0 };
	memcpy(m.data, bad, 8);
	m.prod = 8 + 4096;
	ASSERT(bw_ring_view_consume(&m.v, collect, &g) == -EBADMSG);
}

/* ---- the kernel's ring ---- */

struct kernel_check {
	uint32_t expect_seq, expect_size;
	size_t seen, bad;
};

static int check_record(void *ctx, const void *data, size_t size)
{
	struct kernel_check *k = ctx;
	const uint8_t *b = data;
	uint32_t seq;

	k->seen++;
	if (size != k->expect_size || size < 4) {
		k->bad++;
		return 0;
	}
	memcpy(&seq, b, 4);
	if (seq != k->expect_seq)
		k->bad++;
	for (size_t i = 4; i < size; i++)
		if (b[i] != (uint8_t)(seq + i)) {
			k->bad++;
			break;
		}
	k->expect_seq++;
	return 0;
}

static void fill_payload(struct ring_producer_bpf *skel, uint32_t seq, uint32_t size)
{
	memcpy(skel->bss->payload, &seq, 4);
	for (uint32_t i = 4; i < size; i++)
		skel->bss->payload[i] = (char)(uint8_t)(seq + i);
	skel->bss->next_size = size;
}

static void test_kernel_ring(void)
{
	struct ring_producer_bpf *skel = ring_producer_bpf__open();
	struct bw_event_ring *r = NULL;
	struct kernel_check k = { 0 };
	static const uint32_t sizes[] = { 4, 100, 333, 9, 500, 64, 255, 17 };
	size_t wrapped = 0;
	unsigned long pos = 0;

	ASSERT(skel != NULL);
	if (!skel)
		return;
	skel->rodata->target_tgid = (uint32_t)getpid();
	ASSERT(ring_producer_bpf__load(skel) == 0);
	ASSERT(ring_producer_bpf__attach(skel) == 0);
	ASSERT(bw_event_ring_new(&r, bpf_map__fd(skel->maps.ring), check_record, &k) == 0);
	if (!r)
		goto out;
	ASSERT(bw_event_ring_fd(r) == bpf_map__fd(skel->maps.ring));

	/* One record at a time: 400 of them (67 KiB) go round the 4 KiB ring
	 * 16 times; each record's place tells whether it crossed the end. */
	for (uint32_t seq = 0; seq < 400; seq++) {
		uint32_t size = sizes[seq % 8];

		fill_payload(skel, seq, size);
		k.expect_size = size;
		syscall(SYS_getppid);
		if (((pos + 8) & 4095) + size > 4096)
			wrapped++;
		pos += (8 + size + 7) & ~7u;
		ASSERT(bw_event_ring_consume(r) == 1);
	}
	ASSERT(k.seen == 400 && k.bad == 0 && skel->bss->failed == 0);
	ASSERT(wrapped >= 10);

	/* Several at once, one discarded among them, read in one batch. */
	k.seen = 0;
	fill_payload(skel, k.expect_seq, 300);
	k.expect_size = 300;
	syscall(SYS_getppid);
	skel->bss->discard_next = 1;
	syscall(SYS_getppid);
	skel->bss->discard_next = 0;
	fill_payload(skel, k.expect_seq + 1, 300);
	syscall(SYS_getppid);
	ASSERT(bw_event_ring_consume(r) == 2 && k.seen == 2 && k.bad == 0);

	/* A full ring refuses, the kernel counts it (the agent reports the
	 * loss); reading makes room again. */
	uint32_t failed_before = skel->bss->failed;
	for (int i = 0; i < 20; i++) {
		fill_payload(skel, k.expect_seq + (uint32_t)i, 500);
		syscall(SYS_getppid);
	}
	ASSERT(skel->bss->failed > failed_before);
	k.seen = 0;
	k.expect_size = 500;
	ASSERT(bw_event_ring_consume(r) == (long)k.seen && k.seen >= 7 && k.bad == 0);
out:
	bw_event_ring_free(r);
	ring_producer_bpf__destroy(skel);
}

int main(void)
{
	test_memory_ring();
	test_kernel_ring();
	return bw_test_summary();
}
