/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The user side of the kernel's process table (bpf/trace/process.bpf.c):
 * seeding it from /proc at start, reading a process and its ancestors for an
 * event, and counting what the LRU map evicted.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bulwark_abi.h"

/* Looks a process up (thread-group id): 0, or a negative errno. */
typedef int (*bw_proc_lookup_fn)(uint32_t pid, struct bw_process *out, void *userdata);

/* The exec id given to a process found in /proc: unique per process and
 * boot, and the same whoever computes it (its parent's is derived alike). */
uint64_t bw_proc_seeded_exec_id(uint32_t pid, uint64_t start_ticks);

/* Puts every process of proc_root ("/proc") that the table does not have
 * yet into it (map_fd). Returns how many, or a negative errno. */
int bw_proc_seed(int map_fd, const char *proc_root);

/* Entries in the map now (live and exited). */
long bw_proc_count(int map_fd);

/* "exe[pid] < exe[pid] < ..." for up to BW_ANCESTORS_MAX ancestors of p,
 * nearest first, each checked against its child's parent_exec_id (a reused
 * pid ends the chain). Returns how many were written. */
int bw_proc_ancestors(const struct bw_process *p, bw_proc_lookup_fn lookup, void *userdata, char *out,
		      size_t size);
