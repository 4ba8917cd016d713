/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading the kernel's event ring buffer (BPF_MAP_TYPE_RINGBUF) from one
 * mapping of its data.
 *
 * Why not libbpf's ring_buffer: it maps the data area twice, back to back,
 * so that a record crossing the end reads as one piece. The kernel fills
 * those page tables when the map is mapped, so both copies count in the
 * agent's resident memory: 8 MiB for the default 4 MiB ring (bench/ found it
 * as a third of bulwarkd's RSS). Here the data is mapped once and the rare
 * record that wraps is copied into a buffer of its own. The protocol is the
 * kernel's (kernel/bpf/ringbuf.c), the same that libbpf follows: positions
 * only grow, an 8-byte header per record holds its length with a busy bit
 * (still being written) and a discard bit, records are 8-byte aligned.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Called for each committed record; a negative return ends the batch after
 * this record (it stays consumed) and is returned by the consume call. */
typedef int (*bw_event_ring_fn)(void *ctx, const void *data, size_t size);

/* The memory the reader walks: the kernel's pages, or a test's buffer. */
struct bw_ring_view {
	unsigned long *consumer_pos;       /* written by the reader */
	const unsigned long *producer_pos; /* written by the kernel */
	const uint8_t *data;          /* size bytes, mapped once */
	size_t size;                  /* a power of 2 */
	uint8_t *bounce;              /* size bytes: a wrapped record, made whole */
};

/* Reads the records committed so far, in order, up to the first one still
 * being written. Returns how many were handed to fn, or fn's negative
 * return, or -EBADMSG (a length the ring cannot hold: the view is
 * corrupt). */
long bw_ring_view_consume(struct bw_ring_view *v, bw_event_ring_fn fn, void *ctx);

struct bw_event_ring;

/* Maps the ring buffer map_fd. Returns 0 or a negative errno. */
int bw_event_ring_new(struct bw_event_ring **ret, int map_fd, bw_event_ring_fn fn, void *ctx);

/* The descriptor to poll for EPOLLIN (the map's own). */
int bw_event_ring_fd(const struct bw_event_ring *r);

/* bw_ring_view_consume over the kernel's ring. */
long bw_event_ring_consume(struct bw_event_ring *r);

void bw_event_ring_free(struct bw_event_ring *r);
