/* SPDX-License-Identifier: Apache-2.0 */
/* The event ring buffer read from one mapping: see event-ring.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include "event-ring.h"

/* Each record starts with u32 len (busy and discard bits in it), u32 pg_off. */
#define RING_HDR_SIZE ((size_t)BPF_RINGBUF_HDR_SZ)

struct bw_event_ring {
	int map_fd;
	void *consumer_page; /* one page, read-write */
	void *producer_area; /* the producer page, then the data once */
	size_t producer_area_size;
	struct bw_ring_view view;
	bw_event_ring_fn fn;
	void *ctx;
};

/* The record at data offset off, len bytes, whole: in place, or copied out
 * of the two ends of the data area into the bounce buffer when it wraps. */
static const void *record_at(const struct bw_ring_view *v, size_t off, uint32_t len)
{
	size_t first = v->size - off;

	if (len <= first)
		return v->data + off;
	memcpy(v->bounce, v->data + off, first);
	memcpy(v->bounce + first, v->data, len - first);
	return v->bounce;
}

long bw_ring_view_consume(struct bw_ring_view *v, bw_event_ring_fn fn, void *ctx)
{
	size_t mask = v->size - 1;
	unsigned long cons = __atomic_load_n(v->consumer_pos, __ATOMIC_ACQUIRE);
	long n = 0;

	for (;;) {
		unsigned long prod = __atomic_load_n(v->producer_pos, __ATOMIC_ACQUIRE);
		bool progressed = false;

		while (cons < prod) {
			/* The header is 8-byte aligned in a power-of-2 area: never split. */
			const uint32_t *hdr = (const uint32_t *)(v->data + (cons & mask));
			uint32_t len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
			uint32_t size = len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
			size_t off = (cons + RING_HDR_SIZE) & mask;
			int err = 0;

			if (len & BPF_RINGBUF_BUSY_BIT)
				return n; /* reserved, not committed yet: later */
			if (size > v->size - RING_HDR_SIZE)
				return -EBADMSG;
			progressed = true;
			cons += (RING_HDR_SIZE + size + 7) & ~7ul;
			if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
				n++;
				err = fn(ctx, record_at(v, off, size), size);
			}
			/* Released after the record was read: the kernel may
			 * overwrite it from here on. */
			__atomic_store_n(v->consumer_pos, cons, __ATOMIC_RELEASE);
			if (err < 0)
				return err;
		}
		if (!progressed)
			return n;
	}
}

int bw_event_ring_new(struct bw_event_ring **ret, int map_fd, bw_event_ring_fn fn, void *ctx)
{
	struct bpf_map_info info = {};
	uint32_t info_len = sizeof(info);
	long page = sysconf(_SC_PAGESIZE);
	struct bw_event_ring *r;
	int err;

	err = bpf_obj_get_info_by_fd(map_fd, &info, &info_len);
	if (err < 0)
		return -errno;
	if (info.type != BPF_MAP_TYPE_RINGBUF || info.max_entries == 0 ||
	    (info.max_entries & (info.max_entries - 1)))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->map_fd = map_fd;
	r->fn = fn;
	r->ctx = ctx;
	r->consumer_page = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
	if (r->consumer_page == MAP_FAILED) {
		err = -errno;
		free(r);
		return err;
	}
	/* The kernel maps any prefix of its producer page + data + data: the
	 * producer page and the data once are all this reader needs. */
	r->producer_area_size = page + info.max_entries;
	r->producer_area = mmap(NULL, r->producer_area_size, PROT_READ, MAP_SHARED, map_fd, page);
	if (r->producer_area == MAP_FAILED) {
		err = -errno;
		munmap(r->consumer_page, page);
		free(r);
		return err;
	}
	r->view.consumer_pos = r->consumer_page;
	r->view.producer_pos = r->producer_area;
	r->view.data = (const uint8_t *)r->producer_area + page;
	r->view.size = info.max_entries;
	/* Room for the largest record the ring can hold, so that reading never
	 * allocates; only what a wrapped record touches becomes resident. */
	r->view.bounce = malloc(info.max_entries);
	if (!r->view.bounce) {
		bw_event_ring_free(r);
		return -ENOMEM;
	}
	*ret = r;
	return 0;
}

int bw_event_ring_fd(const struct bw_event_ring *r)
{
	return r->map_fd;
}

long bw_event_ring_consume(struct bw_event_ring *r)
{
	return bw_ring_view_consume(&r->view, r->fn, r->ctx);
}

void bw_event_ring_free(struct bw_event_ring *r)
{
	if (!r)
		return;
	munmap(r->consumer_page, sysconf(_SC_PAGESIZE));
	munmap(r->producer_area, r->producer_area_size);
	free(r->view.bounce);
	free(r);
}
