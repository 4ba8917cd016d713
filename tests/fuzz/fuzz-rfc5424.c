/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness for the RFC 5424 formatter of the syslog sink.
 *
 * The input is a record: six bytes of options (transport, size limit,
 * facility, kind, severity, host name choice), then NUL-separated strings:
 * the message, then key, value, key, value... Whatever the bytes, the
 * output must stay within its bound, be valid UTF-8 without control
 * characters, and be well-formed RFC 5424 as far as a small state machine
 * can tell (header fields, SD-PARAM names, every escape in PARAM-VALUE);
 * anything else traps. tests/unit/test-rfc5424.c checks contents; this
 * looks for inputs the formatter never expected.
 *
 *   CC=clang meson setup build-fuzz && ninja -C build-fuzz fuzz-rfc5424
 *   build-fuzz/tests/fuzz-rfc5424 -max_len=20000 corpus/
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "sink-syslog.h"

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

/* Well-formed UTF-8 with no C0, DEL or C1 control anywhere. */
static void check_text(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		uint32_t cp;
		size_t len;

		if (c < 0x80) {
			CHECK(c >= 0x20 && c != 0x7F);
			i++;
			continue;
		}
		len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
		CHECK(c >= 0xC2 && c <= 0xF4 && i + len <= n);
		cp = c & (0x7F >> len);
		for (size_t k = 1; k < len; k++) {
			CHECK((s[i + k] & 0xC0) == 0x80);
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		CHECK(cp >= (len == 2 ? 0x80u : len == 3 ? 0x800u : 0x10000u));
		CHECK(cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF));
		CHECK(cp > 0x9F);
		i += len;
	}
}

static bool name_char(char c)
{
	return c >= 33 && c <= 126 && c != '=' && c != ']' && c != '"';
}

static void check_5424(const char *m, size_t n)
{
	const char *p = m, *end = m + n;
	int spaces = 0;

	CHECK(strlen(m) == n);
	check_text((const unsigned char *)m, n);
	CHECK(*p == '<');
	/* PRI VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID: six spaces,
	 * none doubled */
	while (p < end && spaces < 6) {
		if (*p == ' ') {
			CHECK(p[1] != ' ');
			spaces++;
		} else {
			CHECK(*p >= 33 && *p <= 126);
		}
		p++;
	}
	CHECK(spaces == 6 && p < end);
	if (*p == '-') {
		p++;
	} else {
		size_t params = 0;

		CHECK(strncmp(p, "[" BW_SYSLOG_SD_ID, strlen("[" BW_SYSLOG_SD_ID)) == 0);
		p += strlen("[" BW_SYSLOG_SD_ID);
		while (*p == ' ') {
			size_t l = 0;

			for (p++; name_char(*p); p++)
				l++;
			CHECK(l >= 1 && l <= 32 && p[0] == '=' && p[1] == '"');
			for (p += 2; *p != '"'; p++) {
				CHECK(p < end && *p != ']');
				if (*p == '\\') {
					p++;
					if (*p == 'x') {
						CHECK(strchr("0123456789abcdef", p[1]) && p[1] && strchr("0123456789abcdef", p[2]) && p[2]);
						p += 2;
					} else {
						CHECK(*p == '"' || *p == '\\' || *p == ']');
					}
				}
			}
			p++;
			params++;
		}
		CHECK(*p == ']' && params > 0);
		p++;
	}
	CHECK(p == end || (*p == ' ' && p + 1 < end));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t maxes[] = { 0, 480, 481, 700, 2048, 8096 };
	struct bw_syslog_options o = { .procid = 1 };
	struct bw_rfc5424_info info;
	struct bw_record *r;
	char *copy, *p, *end, *out;
	size_t n_strings = 0, limit;
	ssize_t len;

	if (size < 6)
		return 0;
	o.transport = (enum bw_syslog_transport)(data[0] % 3);
	o.max_message = maxes[data[1] % 6];
	o.facility = (data[2] % 24) << 3;
	o.hostname = data[5] & 1 ? NULL : data[5] & 2 ? "host" : "h\xff \"]\n";
	limit = o.max_message ? o.max_message : o.transport == BW_SYSLOG_UDP ? 2048 : 8096;

	/* The strings, NUL-terminated in a copy that ends in one. */
	copy = malloc(size - 6 + 1);
	memcpy(copy, data + 6, size - 6);
	copy[size - 6] = '\0';
	end = copy + (size - 6);
	for (p = copy; p <= end; p += strlen(p) + 1)
		n_strings++;
	r = calloc(1, sizeof(*r) + (n_strings / 2 + 1) * sizeof(struct bw_field));
	r->kind = (enum bw_record_kind)(data[3] % 5);
	r->priority = (int8_t)data[4];
	r->time_realtime_ns = (uint64_t)data[4] * 0x0123456789ULL;
	p = copy;
	r->message = p;
	p += strlen(p) + 1;
	while (p < end) {
		struct bw_field *f = &r->fields[r->n_fields++];

		f->key = p;
		p += strlen(p) + 1;
		f->value = p <= end ? p : "";
		if (p <= end)
			p += strlen(p) + 1;
	}

	out = malloc(limit + 1);
	len = bw_rfc5424_format(r, &o, out, limit + 1, &info);
	CHECK(len > 0 && (size_t)len <= limit);
	check_5424(out, (size_t)len);
	CHECK(info.dropped <= r->n_fields);
	free(out);
	free(r);
	free(copy);
	return 0;
}
