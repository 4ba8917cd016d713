/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JSON-lines sink: every record as one line of JSON
 * (bw_record_append_json: the field names in lower case, plus "time",
 * "kind", "priority" and "message"), to standard output or appended to a file.
 *
 * A file is opened O_APPEND|O_CLOEXEC, created 0640 (the umask applies). It
 * rotates by size: when the next line would take the file past max_bytes,
 * FILE.(keep-1) is renamed FILE.keep (replacing the oldest), ..., FILE.1
 * FILE.2, FILE becomes FILE.1, and a new FILE is started; so at most
 * keep + 1 files exist, FILE newest. keep = 0 truncates FILE instead.
 * A line is never split: one longer than max_bytes gets a file of its own.
 * max_bytes = 0 never rotates. Files that are not regular (a FIFO,
 * /dev/full) are never rotated. An existing FILE is appended to, and counts
 * against max_bytes.
 *
 * Rotation is the sink's own: an external logrotate should use copytruncate
 * (the sink keeps its descriptor).
 *
 * A failed write (ENOSPC, EBADF, EPIPE when the reader of standard output
 * went away, a failed rename) returns the negative errno, so the framework
 * counts the record as lost and reopens later. A line cut short by a
 * failure is ended with a newline before the next one, so one bad line
 * never swallows a good one. SIGPIPE is blocked in the thread that writes
 * and a pending one consumed: a closed pipe is an error, never a death.
 */
#pragma once

#include <stdint.h>

#include "sink.h"

/* path_or_dash: a file, or "-" for standard output (never rotated, never
 * closed). The path is copied. NULL with errno set (EINVAL, ENOMEM). */
struct bw_sink *bw_sink_file_new(const char *path_or_dash, uint64_t max_bytes, unsigned keep);
