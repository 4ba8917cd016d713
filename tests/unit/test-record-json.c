/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JSON lines of the file sink (bw_record_append_json), written without a
 * JSON tree, checked against json-c: byte for byte against the line json-c
 * makes from the same record (reference_json below: what the sink wrote
 * before, a json-c object serialised), and every line parsed back by
 * json-c's strict tokenizer with UTF-8 validation, values equal to what the
 * record holds (made valid UTF-8). Records are drawn at random from bytes
 * that need escaping, multi-byte and ill-formed UTF-8, and numeric fields
 * holding what strtoll accepts and what it refuses.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "audit-record.h"

#include "bw-test.h"

/* Reference: the record as a json-c object, serialised by json-c. */
static struct json_object *reference_text(const char *s)
{
	char *clean = bw_utf8_sanitize(s);
	struct json_object *v = json_object_new_string(clean ? clean : "");

	free(clean);
	return v;
}

static char *reference_json(const struct bw_record *r)
{
	struct json_object *o = json_object_new_object();
	char ts[64], *out = NULL;

	bw_format_time(r->time_realtime_ns, ts, sizeof(ts));
	json_object_object_add(o, "time", json_object_new_string(ts));
	json_object_object_add(o, "kind", json_object_new_string(bw_record_kind_name(r->kind)));
	json_object_object_add(o, "priority", json_object_new_int(r->priority));
	for (size_t i = 0; i < r->n_fields; i++) {
		char key[64], *end;
		size_t k;
		struct json_object *v = NULL;

		for (k = 0; r->fields[i].key[k] && k < sizeof(key) - 1; k++)
			key[k] = (char)((r->fields[i].key[k] >= 'A' && r->fields[i].key[k] <= 'Z')
						? r->fields[i].key[k] + 32 : r->fields[i].key[k]);
		key[k] = '\0';
		if (bw_field_is_numeric(r->fields[i].key)) {
			long long n;

			errno = 0;
			n = strtoll(r->fields[i].value, &end, 10);
			if (!errno && !*end && end != r->fields[i].value)
				v = json_object_new_int64(n);
		}
		json_object_object_add(o, key, v ? v : reference_text(r->fields[i].value));
	}
	json_object_object_add(o, "message", reference_text(r->message));
	if (asprintf(&out, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								     JSON_C_TO_STRING_NOSLASHESCAPE)) < 0)
		out = NULL;
	json_object_put(o);
	return out;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

/* A value: runs of ASCII, control characters, quotes and backslashes,
 * well-formed 2-, 3- and 4-byte sequences and ill-formed bytes. */
static void random_value(char *buf, size_t size)
{
	static const char *const pieces[] = {
		"/usr/bin/", "\"", "\\", "\n", "\t", "\r", "\b", "\f", "\x01", "\x1f", "\x7f", "/",
		"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xff", "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82",
		"\xf4\x90\x80\x80", "\xf0\x9f\x98", "\x80", "a b", "0", "-12", "007", "+5", " 5",
		"9223372036854775807", "9223372036854775808", "-9223372036854775808", "12a", "",
	};
	size_t len = 0, n = next() % 12;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const char *p = pieces[next() % (sizeof(pieces) / sizeof(pieces[0]))];
		size_t l = strlen(p);

		if (len + l + 1 > size)
			break;
		memcpy(buf + len, p, l + 1);
		len += l;
	}
}

static struct bw_record *random_record(void)
{
	/* Numeric and text fields, and a key that is not all capitals. */
	static const char *const keys[] = { "PID", "UID", "CGROUP_ID", "APPLY_US", "TARGET", "EXE",
					    "POLICY", "Mixed_Key9", "COMM" };
	struct bw_record_builder b;
	char v[256];
	size_t n = next() % 8;

	bw_record_builder_init(&b, (enum bw_record_kind)(next() % 5), (uint64_t)next() * 1000003ULL * 1000,
			       (int)(next() % 8));
	/* Each key once: records carry a field once. */
	for (size_t i = 0, start = next(); i < n; i++) {
		random_value(v, sizeof(v));
		bw_record_builder_add(&b, keys[(start + i) % (sizeof(keys) / sizeof(keys[0]))], v);
	}
	random_value(v, sizeof(v));
	bw_record_builder_message(&b, "%s", v);
	return bw_record_builder_finish(&b);
}

/* The line parses as strict JSON with valid UTF-8 and holds the record. */
static bool parses_back(const struct bw_record *r, const char *line, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o, *v;
	bool ok;

	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, line, (int)len - 1); /* without the newline */
	ok = o && json_tokener_get_error(tok) == json_tokener_success && line[len - 1] == '\n';
	for (size_t i = 0; ok && i < r->n_fields; i++) {
		char key[64], *clean;
		size_t k;

		for (k = 0; r->fields[i].key[k]; k++)
			key[k] = (char)(r->fields[i].key[k] >= 'A' && r->fields[i].key[k] <= 'Z'
						? r->fields[i].key[k] + 32 : r->fields[i].key[k]);
		key[k] = '\0';
		ok = json_object_object_get_ex(o, key, &v);
		if (ok && json_object_is_type(v, json_type_string)) {
			clean = bw_utf8_sanitize(r->fields[i].value);
			ok = clean && !strcmp(json_object_get_string(v), clean);
			free(clean);
		} else if (ok) {
			ok = json_object_is_type(v, json_type_int) && bw_field_is_numeric(r->fields[i].key) &&
			     json_object_get_int64(v) == strtoll(r->fields[i].value, NULL, 10);
		}
	}
	json_object_put(o);
	json_tokener_free(tok);
	return ok;
}

int main(void)
{
	struct bw_text t = { 0 };
	unsigned differ = 0, invalid = 0;

	/* Appending keeps what is there: two records, two lines. */
	for (int round = 0; round < 20000; round++) {
		struct bw_record *r = random_record();
		char *want, *got;
		size_t start = t.len;

		ASSERT(r != NULL);
		if (!r)
			break;
		want = reference_json(r);
		got = bw_record_to_json(r);
		ASSERT(bw_record_append_json(r, &t) == 0);
		ASSERT(want && got);
		if (want && got && strcmp(want, got)) {
			if (differ++ < 3)
				fprintf(stderr, "record %d:\n  json-c  %s  written %s", round, want, got);
		}
		if (got && !parses_back(r, got, strlen(got)) && invalid++ < 3)
			fprintf(stderr, "record %d does not parse back: %s", round, got);
		ASSERT(got && t.len - start == strlen(got) && !memcmp(t.s + start, got, t.len - start));
		free(want);
		free(got);
		bw_record_unref(r);
		if (t.len > 65536)
			t.len = 0;
	}
	ASSERT(differ == 0);
	ASSERT(invalid == 0);

	/* Spot checks that do not lean on json-c. */
	{
		struct bw_record_builder b;
		struct bw_record *r;
		char *line;

		bw_record_builder_init(&b, BW_RECORD_DECISION, 1795347924803691000ULL, 4);
		bw_record_builder_add(&b, "PID", "412");
		bw_record_builder_add(&b, "TARGET", "/tmp/a\"b\\c\n\x01\xc3\xa9\xff");
		bw_record_builder_add(&b, "CGROUP_ID", "18446744073709551615"); /* beyond int64: text */
		bw_record_builder_message(&b, "blocked");
		r = bw_record_builder_finish(&b);
		line = r ? bw_record_to_json(r) : NULL;
		ASSERT(line && !strcmp(line, "{\"time\":\"2026-11-22T11:45:24.803691000Z\",\"kind\":\"decision\","
					     "\"priority\":4,\"pid\":412,\"target\":\"/tmp/a\\\"b\\\\c\\n\\u0001"
					     "\xc3\xa9\xef\xbf\xbd\",\"cgroup_id\":\"18446744073709551615\","
					     "\"message\":\"blocked\"}\n"));
		if (line)
			printf("%s", line);
		free(line);
		bw_record_unref(r);
	}
	free(t.s);
	return bw_test_summary();
}
