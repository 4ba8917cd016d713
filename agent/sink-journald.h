/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The journald sink: every record as one journal entry through libsystemd's
 * native protocol (sd_journal_sendv), with
 *
 *   MESSAGE=<the record's one-line summary>
 *   PRIORITY=<the record's syslog severity: 4 blocked, 5 audited, ...>
 *   SYSLOG_IDENTIFIER=bulwarkd
 *   BULWARK_KIND=decision | suppressed | health | loss | agent
 *   BULWARK_TIME=<the event's time, RFC 3339 UTC with nanoseconds>
 *   BULWARK_<KEY>=<value> for every field of the record, in its order
 *
 * so that "journalctl BULWARK_POLICY=..." selects entries (docs/EVENTS.md
 * lists every field). Values go over binary-safe: newlines, quotes and bytes
 * that are not UTF-8 reach the journal unchanged.
 */
#pragma once

#include <stdbool.h>

#include "sink.h"

/* Where libsystemd sends entries (fixed in libsystemd). */
#define BW_JOURNALD_SOCKET "/run/systemd/journal/socket"
#define BW_JOURNALD_IDENTIFIER "bulwarkd"

/* A journald sink for bw_sinks_add(); NULL with errno set (ENOMEM). A
 * journald that is not there is not an error here: the sink thread's open
 * fails, the framework counts the records as dropped and retries. */
struct bw_sink *bw_sink_journald_new(void);

/* Whether journald's socket exists and is a socket: how the agent picks its
 * default sink. It does not say that journald is running right now (on a
 * systemd host PID 1 holds the socket across journald restarts). */
bool bw_journald_available(void);

/* Whether something receives on journald's socket right now (a connect
 * probe, nothing is sent): 0, or a negative errno (-ENOENT: no socket,
 * -ECONNREFUSED: nobody behind it, -ENOTSOCK). path NULL means
 * BW_JOURNALD_SOCKET. */
int bw_journald_probe(const char *path);
