/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JSON-lines sink: JSON content, size-based rotation (sizes, names, keep
 * count), an existing file, write errors (/dev/full, a full RLIMIT_FSIZE, a
 * failed rename, a closed stdout) and standard output to a pipe whose reader
 * is gone, directly and through the framework's thread, without SIGPIPE.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>
#include <json-c/json.h>

#include "audit-record.h"
#include "bw-test.h"
#include "sink-file.h"
#include "sink.h"

static char dir[] = "/tmp/bw-test-sink-file.XXXXXX";

static struct bw_record *rec(unsigned seq, const char *target)
{
	struct bw_record_builder b;

	bw_record_builder_init(&b, BW_RECORD_DECISION, 1795290617139976600ULL, LOG_WARNING);
	bw_record_builder_message(&b, "blocked exec of %s by pid 412 (nginx): policy lock-shells", target);
	bw_record_builder_add(&b, BW_FIELD_HOOK, "exec");
	bw_record_builder_add(&b, BW_FIELD_DECISION, "blocked");
	bw_record_builder_add(&b, BW_FIELD_POLICY, "ClusterBulwarkPolicy lock-shells");
	bw_record_builder_add(&b, BW_FIELD_PID, "412");
	bw_record_builder_add(&b, BW_FIELD_TARGET, target);
	bw_record_builder_addf(&b, "SEQ", "%03u", seq);
	return bw_record_builder_finish(&b);
}

/* Opens if needed and writes one record straight through the ops. */
static int put(struct bw_sink *s, unsigned seq, const char *target)
{
	struct bw_record *r = rec(seq, target);
	int ret = s->ops->write(s, r);

	bw_record_unref(r);
	return ret;
}

static void destroy(struct bw_sink *s)
{
	if (s->ops->close)
		s->ops->close(s);
	s->ops->free(s);
	free(s);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0;

	if (!f)
		return NULL;
	if (getdelim(&buf, &len, '\0', f) < 0) {
		free(buf);
		buf = strdup("");
	}
	fclose(f);
	return buf;
}

static off_t size_of(const char *path)
{
	struct stat st;

	return stat(path, &st) < 0 ? -1 : st.st_size;
}

/* The SEQ of every line of a file, "001,002,..." , or "" when the file is
 * missing; "BAD" when a line is not one whole JSON object. */
static char *seqs_of(const char *path)
{
	char *text = slurp(path), *line, *save = NULL, *out = strdup("");

	if (!text)
		return out;
	if (*text && text[strlen(text) - 1] != '\n') {
		free(text);
		free(out);
		return strdup("BAD");
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct json_object *o = json_tokener_parse(line), *v;
		char *n;

		if (!o || !json_object_object_get_ex(o, "seq", &v)) {
			json_object_put(o);
			free(out);
			free(text);
			return strdup("BAD");
		}
		n = xasprintf("%s%s%s", out, *out ? "," : "", json_object_get_string(v));
		free(out);
		out = n;
		json_object_put(o);
	}
	free(text);
	return out;
}

static bool seqs_are(const char *path, const char *want)
{
	char *got = seqs_of(path);
	bool ok = !strcmp(got, want);

	if (!ok)
		fprintf(stderr, "%s: lines %s, want %s\n", path, got, want);
	free(got);
	return ok;
}

static void test_json(void)
{
	char *path = xasprintf("%s/json.log", dir), *text;
	struct bw_sink *s = bw_sink_file_new(path, 0, 0);
	struct json_object *o, *v;
	struct stat st;

	ASSERT(s && !strcmp(s->ops->name, "file"));
	ASSERT(s->ops->open(s) == 0);
	ASSERT(put(s, 1, "/bin/sh") == 0);
	ASSERT(put(s, 2, "/tmp/a\nb \"quoted\" \\ \t") == 0);
	destroy(s);

	ASSERT(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640);
	text = slurp(path);
	ASSERT(text && !strncmp(text, "{\"time\":\"2026-11-21T19:50:17.139976600Z\",\"kind\":\"decision\",", 59));
	/* Two records, two lines, whatever the values hold. */
	ASSERT(seqs_are(path, "001,002"));
	o = json_tokener_parse(strchr(text, '\n') + 1);
	ASSERT(o && json_object_object_get_ex(o, "target", &v) &&
	       !strcmp(json_object_get_string(v), "/tmp/a\nb \"quoted\" \\ \t"));
	ASSERT(o && json_object_object_get_ex(o, "pid", &v) && json_object_is_type(v, json_type_int) &&
	       json_object_get_int(v) == 412);
	ASSERT(o && json_object_object_get_ex(o, "policy", &v) &&
	       !strcmp(json_object_get_string(v), "ClusterBulwarkPolicy lock-shells"));
	ASSERT(o && json_object_object_get_ex(o, "message", &v) &&
	       !strncmp(json_object_get_string(v), "blocked exec of /tmp/a\nb", 24));
	json_object_put(o);
	free(text);
	free(path);
}

static void test_rotation(void)
{
	char *path = xasprintf("%s/rot.log", dir), *p1 = xasprintf("%s.1", path), *p2 = xasprintf("%s.2", path),
	     *p3 = xasprintf("%s.3", path);
	struct bw_record *r = rec(1, "/bin/sh");
	char *line = bw_record_to_json(r);
	size_t L = strlen(line);
	struct bw_sink *s;

	/* Three lines fit in a file: 10 records leave 10 | 7-9 | 4-6. */
	s = bw_sink_file_new(path, 3 * L, 2);
	ASSERT(s && s->ops->open(s) == 0);
	for (unsigned i = 1; i <= 10; i++)
		ASSERT(put(s, i, "/bin/sh") == 0);
	destroy(s);
	ASSERT(seqs_are(path, "010"));
	ASSERT(seqs_are(p1, "007,008,009"));
	ASSERT(seqs_are(p2, "004,005,006"));
	ASSERT(access(p3, F_OK) < 0 && errno == ENOENT);
	ASSERT(size_of(p1) == (off_t)(3 * L) && size_of(p2) == (off_t)(3 * L) && size_of(path) == (off_t)L);

	/* An existing file counts: 2 lines there, the 3rd fits, the 4th rotates. */
	unlink(p1);
	unlink(p2);
	s = bw_sink_file_new(path, 3 * L, 2);
	ASSERT(s && s->ops->open(s) == 0);
	ASSERT(put(s, 11, "/bin/sh") == 0);
	ASSERT(put(s, 12, "/bin/sh") == 0);
	ASSERT(put(s, 13, "/bin/sh") == 0);
	destroy(s);
	ASSERT(seqs_are(path, "013"));
	ASSERT(seqs_are(p1, "010,011,012"));
	ASSERT(access(p2, F_OK) < 0);

	/* One byte short of three lines: two per file. */
	unlink(path);
	unlink(p1);
	s = bw_sink_file_new(path, 3 * L - 1, 1);
	ASSERT(s && s->ops->open(s) == 0);
	for (unsigned i = 1; i <= 5; i++)
		ASSERT(put(s, i, "/bin/sh") == 0);
	destroy(s);
	ASSERT(seqs_are(path, "005"));
	ASSERT(seqs_are(p1, "003,004"));
	ASSERT(access(p2, F_OK) < 0);

	/* keep = 0 truncates. */
	unlink(path);
	unlink(p1);
	s = bw_sink_file_new(path, 2 * L, 0);
	ASSERT(s && s->ops->open(s) == 0);
	for (unsigned i = 1; i <= 5; i++)
		ASSERT(put(s, i, "/bin/sh") == 0);
	destroy(s);
	ASSERT(seqs_are(path, "005"));
	ASSERT(access(p1, F_OK) < 0);

	/* A line longer than max_bytes gets a file of its own, and no empty
	 * file is ever rotated in. */
	unlink(path);
	s = bw_sink_file_new(path, 10, 3);
	ASSERT(s && s->ops->open(s) == 0);
	for (unsigned i = 1; i <= 3; i++)
		ASSERT(put(s, i, "/bin/sh") == 0);
	destroy(s);
	ASSERT(seqs_are(path, "003"));
	ASSERT(seqs_are(p1, "002"));
	ASSERT(seqs_are(p2, "001"));
	ASSERT(access(p3, F_OK) < 0);

	/* max_bytes = 0 never rotates. */
	unlink(path);
	unlink(p1);
	unlink(p2);
	s = bw_sink_file_new(path, 0, 3);
	ASSERT(s && s->ops->open(s) == 0);
	for (unsigned i = 1; i <= 20; i++)
		ASSERT(put(s, i, "/bin/sh") == 0);
	destroy(s);
	ASSERT(size_of(path) == (off_t)(20 * L) && access(p1, F_OK) < 0);

	/* A rename that fails (FILE.1 is a non-empty directory) fails the
	 * write; nothing is lost from the file. */
	unlink(path);
	ASSERT(mkdir(p1, 0755) == 0);
	{
		char *inner = xasprintf("%s/x", p1);
		int fd = open(inner, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);

		ASSERT(fd >= 0);
		close(fd);
		s = bw_sink_file_new(path, L, 1);
		ASSERT(s && s->ops->open(s) == 0);
		ASSERT(put(s, 1, "/bin/sh") == 0);
		ASSERT(put(s, 2, "/bin/sh") == -EISDIR);
		destroy(s);
		ASSERT(seqs_are(path, "001"));
		unlink(inner);
		rmdir(p1);
		free(inner);
	}
	unlink(path);

	free(line);
	bw_record_unref(r);
	free(path);
	free(p1);
	free(p2);
	free(p3);
}

static void test_write_errors(void)
{
	struct bw_sink *s;
	char *path = xasprintf("%s/short.log", dir);
	struct bw_record *r = rec(1, "/bin/sh");
	char *line = bw_record_to_json(r);
	size_t L = strlen(line);
	struct rlimit old, lim;

	/* /dev/full: ENOSPC; not a regular file, so never rotated. */
	s = bw_sink_file_new("/dev/full", 10, 2);
	ASSERT(s && s->ops->open(s) == 0);
	ASSERT(put(s, 1, "/bin/sh") == -ENOSPC);
	ASSERT(put(s, 2, "/bin/sh") == -ENOSPC);
	destroy(s);
	ASSERT(access("/dev/full.1", F_OK) < 0);

	/* A file that cannot be created. */
	s = bw_sink_file_new("/nonexistent-dir/x.log", 0, 0);
	ASSERT(s && s->ops->open(s) == -ENOENT);
	s->ops->free(s);
	free(s);

	/* A line cut short (the file size limit hits inside line 2) is ended
	 * before the next line, so line 3 stays whole. */
	signal(SIGXFSZ, SIG_IGN);
	ASSERT(getrlimit(RLIMIT_FSIZE, &old) == 0);
	s = bw_sink_file_new(path, 0, 0);
	ASSERT(s && s->ops->open(s) == 0);
	ASSERT(put(s, 1, "/bin/sh") == 0);
	lim = old;
	lim.rlim_cur = L + L / 2;
	ASSERT(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	ASSERT(put(s, 2, "/bin/sh") == -EFBIG);
	ASSERT(size_of(path) == (off_t)(L + L / 2));
	ASSERT(setrlimit(RLIMIT_FSIZE, &old) == 0);
	ASSERT(put(s, 3, "/bin/sh") == 0);
	destroy(s);
	signal(SIGXFSZ, SIG_DFL);
	{
		char *text = slurp(path), *third = text ? strrchr(text, '{') : NULL;
		struct json_object *o = third ? json_tokener_parse(third) : NULL, *v;

		ASSERT(text && size_of(path) == (off_t)(3 * L + 1 - (L - L / 2)));
		ASSERT(third && third[-1] == '\n' && third[-2] != '\n');
		ASSERT(o && json_object_object_get_ex(o, "seq", &v) && !strcmp(json_object_get_string(v), "003"));
		json_object_put(o);
		free(text);
	}
	unlink(path);

	free(line);
	bw_record_unref(r);
	free(path);
}

/* Replaces fd 1 with the write end of a pipe whose read end is closed. */
static int stdout_to_dead_pipe(void)
{
	int saved = dup(STDOUT_FILENO), p[2];

	fflush(stdout);
	if (saved < 0 || pipe(p) < 0)
		return -1;
	dup2(p[1], STDOUT_FILENO);
	close(p[0]);
	close(p[1]);
	return saved;
}

static void restore_stdout(int saved)
{
	dup2(saved, STDOUT_FILENO);
	close(saved);
}

static void test_stdout(void)
{
	struct bw_sinks sinks = { .retry_ms = 10 };
	struct bw_sink_stats st = { 0 };
	struct bw_sink *s;
	sigset_t pending;
	int saved, ret;

	/* Default SIGPIPE disposition: a signal would kill this test. */
	signal(SIGPIPE, SIG_DFL);

	/* Directly. */
	saved = stdout_to_dead_pipe();
	ASSERT(saved >= 0);
	s = bw_sink_file_new("-", 10, 3); /* stdout ignores rotation */
	ret = s ? s->ops->open(s) : -1;
	ret = ret == 0 ? put(s, 1, "/bin/sh") : ret;
	sigpending(&pending);
	restore_stdout(saved);
	ASSERT(s && !strcmp(s->ops->name, "stdout"));
	ASSERT(ret == -EPIPE);
	ASSERT(!sigismember(&pending, SIGPIPE));
	if (s)
		destroy(s); /* must not close fd 1 */
	ASSERT(fcntl(STDOUT_FILENO, F_GETFL) >= 0);

	/* Through the framework, where open and write happen in the sink's
	 * thread: the reader goes away after the first record. */
	{
		int p[2] = { -1, -1 };
		char buf[4096];

		fflush(stdout);
		saved = dup(STDOUT_FILENO);
		ASSERT(pipe(p) == 0);
		dup2(p[1], STDOUT_FILENO);
		close(p[1]);
		s = bw_sink_file_new("-", 0, 0);
		ret = s ? bw_sinks_add(&sinks, s, 16) : -ENOMEM;
		if (ret == 0) {
			for (unsigned i = 1; i <= 3; i++) {
				struct bw_record *r = rec(i, "/bin/sh");

				bw_sinks_submit(&sinks, r);
				bw_record_unref(r);
				if (i == 1) {
					/* Read the first line, then hang up. */
					ASSERT(read(p[0], buf, sizeof(buf)) > 0);
					close(p[0]);
				}
			}
			for (int i = 0; i < 500; i++) {
				bw_sink_get_stats(s, &st);
				if (st.written + st.dropped_down + st.dropped_full == 3)
					break;
				usleep(10000);
			}
			bw_sinks_stop(&sinks, 5000);
		}
		restore_stdout(saved);
		ASSERT(ret == 0);
		/* One written, one failed write (EPIPE, no SIGPIPE death), the
		 * third dropped while down or refused by open: all counted. */
		ASSERT(st.written == 1 && st.write_errors == 1 && st.dropped_down == 2);
	}

	/* A dead pipe at open: found before anything is lost to a write. */
	saved = stdout_to_dead_pipe();
	s = bw_sink_file_new("-", 0, 0);
	ret = s ? s->ops->open(s) : -1;
	restore_stdout(saved);
	ASSERT(ret == -EPIPE);
	if (s) {
		s->ops->free(s);
		free(s);
	}

	/* stdout closed: open fails with EBADF. */
	saved = dup(STDOUT_FILENO);
	fflush(stdout);
	close(STDOUT_FILENO);
	s = bw_sink_file_new("-", 0, 0);
	ret = s ? s->ops->open(s) : -1;
	restore_stdout(saved);
	ASSERT(ret == -EBADF);
	if (s) {
		s->ops->free(s);
		free(s);
	}

	/* And it does write to a live stdout. */
	{
		int p[2];
		char buf[4096] = "";
		ssize_t n;

		fflush(stdout);
		saved = dup(STDOUT_FILENO);
		ASSERT(pipe(p) == 0);
		dup2(p[1], STDOUT_FILENO);
		close(p[1]);
		s = bw_sink_file_new("-", 0, 0);
		ret = s->ops->open(s) == 0 ? put(s, 7, "/bin/sh") : -1;
		destroy(s);
		restore_stdout(saved);
		n = read(p[0], buf, sizeof(buf) - 1);
		close(p[0]);
		ASSERT(ret == 0 && n > 0 && buf[n - 1] == '\n' && strstr(buf, "\"seq\":\"007\""));
	}
}

static void test_new(void)
{
	errno = 0;
	ASSERT(!bw_sink_file_new("", 0, 0) && errno == EINVAL);
	errno = 0;
	ASSERT(!bw_sink_file_new(NULL, 0, 0) && errno == EINVAL);
}

int main(void)
{
	umask(022);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	test_new();
	test_json();
	test_rotation();
	test_write_errors();
	test_stdout();
	/* Leave nothing behind: the tests' files are all directly in dir. */
	{
		DIR *d = opendir(dir);
		struct dirent *de;

		while (d && (de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				unlinkat(dirfd(d), de->d_name, 0);
		if (d)
			closedir(d);
	}
	ASSERT(rmdir(dir) == 0);
	return bw_test_summary();
}
