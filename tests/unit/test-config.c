/* SPDX-License-Identifier: Apache-2.0 */
/* bulwarkd settings: defaults, file, command line, and their errors. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "bw-test.h"

static char path[] = "/tmp/bulwark-config-XXXXXX";

static int load(struct bw_config *c, const char *text, char **error)
{
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
	return bw_config_load(c, path, error);
}

static void expect_error(const char *text, const char *want)
{
	struct bw_config c;
	char *error = NULL, full[512];

	bw_config_defaults(&c);
	ASSERT(load(&c, text, &error) == -EINVAL);
	snprintf(full, sizeof(full), "%s:%s", path, want);
	ASSERT(error && !strcmp(error, full));
	if (error && strcmp(error, full))
		fprintf(stderr, "  got:  %s\n  want: %s\n", error, full);
	free(error);
	bw_config_clear(&c);
}

int main(void)
{
	struct bw_config c;
	char *error = NULL;
	int fd = mkstemp(path);

	if (fd < 0)
		return 2;
	close(fd);

	bw_config_defaults(&c);
	ASSERT(c.journald == BW_AUTO && c.syslog == BW_AUTO && c.rate_limit == 100 && c.queue_len == 4096);
	ASSERT(!strcmp(c.syslog_target, "unix:/dev/log") && !strcmp(c.syslog_facility, "authpriv"));
	ASSERT(load(&c, "policyDir: /p\nsinks:\n  journald: false\n  syslog:\n    target: tcp:10.1.2.3:6514\n"
			"    facility: local3\n  file:\n    path: /var/log/e.jsonl\n    maxBytes: 8192\n"
			"rateLimit:\n  events: 0\nhealth:\n  intervalSeconds: 5\nmaps:\n  ringbufBytes: 65536\n",
		   &error) == 0);
	ASSERT(!error);
	ASSERT(!strcmp(c.policy_dir, "/p") && c.journald == BW_OFF && c.syslog == BW_AUTO);
	ASSERT(!strcmp(c.syslog_target, "tcp:10.1.2.3:6514") && !strcmp(c.syslog_facility, "local3"));
	ASSERT(!strcmp(c.events_file, "/var/log/e.jsonl") && c.events_file_max_bytes == 8192);
	ASSERT(c.rate_limit == 0 && c.health_interval_s == 5 && c.ringbuf_bytes == 65536);
	ASSERT(c.spare_compact_delay_ms == 1000); /* the default: not in the file */
	ASSERT(load(&c, "maps:\n  spareCompactDelayMs: 250\n", &error) == 0 && !error);
	ASSERT(c.spare_compact_delay_ms == 250);
	ASSERT(load(&c, "maps:\n  spareCompactDelayMs: 0\n", &error) == 0 && !error);
	ASSERT(c.spare_compact_delay_ms == 0); /* 0: size tries as soon as the thread is free */

	/* The command line wins over the file. */
	{
		char *argv[] = { "bulwarkd", "--policy-dir", "/q", "--journald", "true", "--rate-limit", "7",
				 "--output", "json", "--audit-only", "--spare-compact-delay-ms", "60000", NULL };

		ASSERT(bw_config_parse_args(&c, 12, argv) == 0);
		ASSERT(!strcmp(c.policy_dir, "/q") && c.journald == BW_ON && c.rate_limit == 7);
		ASSERT(c.stdout_json && c.audit_only && c.spare_compact_delay_ms == 60000);
	}
	{
		char *argv[] = { "bulwarkd", "--policy-dir", "/q", "--syslog-target", "udp:nohost", NULL };

		ASSERT(bw_config_parse_args(&c, 5, argv) == -EINVAL);
	}
	{
		char *argv[] = { "bulwarkd", "--config", "/x.yaml", "--policy-dir=/q", NULL };
		bool explicit_;

		ASSERT(!strcmp(bw_config_find_file_arg(4, argv, &explicit_), "/x.yaml") && explicit_);
		ASSERT(bw_config_parse_args(&c, 4, argv) == 0);
	}
	bw_config_clear(&c);

	bw_config_defaults(&c);
	ASSERT(bw_config_load(&c, "/nonexistent/bulwarkd.yaml", &error) == -ENOENT && !error);
	bw_config_clear(&c);

	expect_error("sinks:\n  jurnald: true\n", "2:3: sinks.jurnald: unknown setting (docs/CONFIG.md lists them)");
	expect_error("rateLimit:\n  events: -3\n", "2:11: rateLimit.events: \"-3\" is not a whole number");
	expect_error("maps:\n  ringbufBytes: 5000\n", "2:17: maps.ringbufBytes: \"5000\" must be a power of two");
	expect_error("maps:\n  spareTrieEntries: 0\n", "2:21: maps.spareTrieEntries: \"0\" is out of range 1-1048576");
	expect_error("maps:\n  spareCompactDelayMs: 60001\n",
		     "2:24: maps.spareCompactDelayMs: \"60001\" is out of range 0-60000");
	expect_error("sinks:\n  journald: maybe\n", "2:13: sinks.journald: \"maybe\" must be auto, true or false");
	expect_error("sinks:\n  syslog:\n    target: tcp:host\n",
		     "3:13: sinks.syslog.target: \"tcp:host\" must be unix:/PATH, tcp:HOST:PORT or udp:HOST:PORT");
	expect_error("sinks: [1]\n", "1:8: sinks: must be a mapping");
	expect_error("policyDir: [a]\n", "1:12: policyDir: must be a single value");
	expect_error("policyDir: \"\"\n", "1:12: policyDir: \"\" must not be empty");
	unlink(path);
	return bw_test_summary();
}
