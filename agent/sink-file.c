/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JSON-lines sink (sink-file.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sink-file.h"
#include "util.h"

struct file_sink {
	char *path;         /* NULL: standard output */
	int fd;
	bool regular;       /* only regular files rotate */
	uint64_t size;      /* bytes in the current file */
	uint64_t max_bytes; /* 0: no rotation */
	unsigned keep;
	bool partial;       /* the last line was cut short */
	/* Lines of a batch, written with one write() (bench/: a write per
	 * record was half of the sink's time under an event flood), each
	 * record's JSON appended in place. */
	struct bw_text batch;
	size_t lines;       /* complete lines in batch */
	size_t *ends;       /* offset after each line */
	size_t lines_cap;
};

/* SIGPIPE for a write to a pipe nobody reads is sent to the writing thread:
 * block it there once, so that the write fails with EPIPE instead. */
static void block_sigpipe(void)
{
	static __thread bool blocked;
	sigset_t set;

	if (blocked)
		return;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	blocked = true;
}

/* Takes the SIGPIPE that the failed write left pending on this thread. */
static void consume_sigpipe(void)
{
	const struct timespec zero = { 0, 0 };
	sigset_t set;
	int saved = errno;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	while (sigtimedwait(&set, NULL, &zero) == SIGPIPE)
		;
	errno = saved;
}

/* Writes all of buf; a negative errno (and *done how much went) otherwise. */
static int write_all(int fd, const char *buf, size_t len, size_t *done)
{
	*done = 0;
	while (*done < len) {
		ssize_t n = write(fd, buf + *done, len - *done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				/* Someone made the descriptor non-blocking (a shared
				 * stdout): wait like a blocking write would. */
				struct pollfd pfd = { .fd = fd, .events = POLLOUT };

				if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
					return -errno;
				continue;
			}
			if (errno == EPIPE)
				consume_sigpipe();
			return -errno;
		}
		if (n == 0)
			return -EIO;
		*done += (size_t)n;
	}
	return 0;
}

static int file_open_fd(struct file_sink *f, int extra_flags)
{
	struct stat st;
	int fd;

	fd = open(f->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY | extra_flags, 0640);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	f->fd = fd;
	f->regular = S_ISREG(st.st_mode);
	f->size = f->regular ? (uint64_t)st.st_size : 0;
	if (f->regular && f->size == 0)
		f->partial = false; /* a new file has no cut line to end */
	return 0;
}

static int file_open(struct bw_sink *s)
{
	struct file_sink *f = s->impl;

	block_sigpipe();
	if (!f->path) {
		/* Standard output: check that it is open and, when it is a pipe
		 * or socket, that someone still reads it (POLLERR otherwise), so
		 * that a retry does not lose one more record to find out. */
		struct pollfd pfd = { .fd = STDOUT_FILENO, .events = POLLOUT };

		if (fcntl(STDOUT_FILENO, F_GETFL) < 0)
			return -errno;
		if (poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLERR | POLLNVAL)))
			return pfd.revents & POLLNVAL ? -EBADF : -EPIPE;
		f->fd = STDOUT_FILENO;
		f->regular = false;
		return 0;
	}
	if (f->fd >= 0)
		return 0;
	return file_open_fd(f, 0);
}

static void file_close(struct bw_sink *s)
{
	struct file_sink *f = s->impl;

	if (f->path && f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

static char *numbered(const char *path, unsigned i)
{
	return strprintf("%s.%u", path, i);
}

/* FILE.(keep-1) -> FILE.keep, ..., FILE -> FILE.1, then a new FILE. */
static int file_rotate(struct file_sink *f)
{
	close(f->fd);
	f->fd = -1;
	if (f->keep == 0)
		return file_open_fd(f, O_TRUNC);
	for (unsigned i = f->keep; i >= 1; i--) {
		_cleanup_free_ char *from = i == 1 ? strdup(f->path) : numbered(f->path, i - 1);
		_cleanup_free_ char *to = numbered(f->path, i);

		if (!from || !to)
			return -ENOMEM;
		/* On failure the record is lost and counted; the framework
		 * reopens FILE later and the next line tries again. */
		if (rename(from, to) < 0 && errno != ENOENT)
			return -errno;
	}
	return file_open_fd(f, 0);
}

/* Writes the batch's lines; *written counts the complete ones that went. */
static int file_flush(struct file_sink *f, size_t *written)
{
	size_t done;
	int ret;

	if (!f->batch.len)
		return 0;
	if (f->partial) {
		ret = write_all(f->fd, "\n", 1, &done);
		if (ret < 0)
			goto out;
		f->size++;
		f->partial = false;
	}
	ret = write_all(f->fd, f->batch.s, f->batch.len, &done);
	f->size += done;
	for (size_t i = 0; i < f->lines && f->ends[i] <= done; i++)
		(*written)++;
	if (ret < 0) {
		size_t i = 0;

		while (i < f->lines && f->ends[i] < done)
			i++;
		f->partial = done > 0 && (i == f->lines || f->ends[i] != done);
	}
out:
	f->batch.len = f->lines = 0;
	return ret;
}

static int file_write_batch(struct bw_sink *s, struct bw_record *const *rs, size_t n, size_t *written)
{
	struct file_sink *f = s->impl;
	int ret = 0;

	*written = 0;
	block_sigpipe();
	if (f->fd < 0) {
		ret = file_open(s);
		if (ret < 0)
			return ret;
	}
	if (!f->ends || f->lines_cap < n) {
		size_t *e = realloc(f->ends, n * sizeof(*e));

		if (!e)
			return -ENOMEM;
		f->ends = e;
		f->lines_cap = n;
	}
	f->batch.len = f->lines = 0;
	for (size_t i = 0; i < n; i++) {
		const size_t start = f->batch.len;
		size_t len;

		if (bw_record_append_json(rs[i], &f->batch) < 0) {
			f->batch.len = start; /* what fit of this line goes */
			f->batch.oom = false;
			ret = -ENOMEM;
			break;
		}
		len = f->batch.len - start;
		/* Rotate before the line that would pass the limit (what is
		 * batched so far goes to the old file, this line to the new). */
		if (f->regular && f->max_bytes && f->size + start > 0 &&
		    f->size + start + len + f->partial > f->max_bytes) {
			f->batch.len = start;
			if ((ret = file_flush(f, written)) < 0)
				return ret;
			if ((ret = file_rotate(f)) < 0)
				return ret;
			f->partial = false; /* the cut line stays in the old file */
			memmove(f->batch.s, f->batch.s + start, len);
			f->batch.len = len;
		}
		f->ends[f->lines++] = f->batch.len;
	}
	{
		int r = file_flush(f, written);

		return r < 0 ? r : ret;
	}
}

static int file_write(struct bw_sink *s, const struct bw_record *r)
{
	struct bw_record *one = (struct bw_record *)r;
	size_t written;

	return file_write_batch(s, &one, 1, &written);
}

static void file_free(struct bw_sink *s)
{
	struct file_sink *f = s->impl;

	if (!f)
		return;
	file_close(s);
	free(f->path);
	free(f->batch.s);
	free(f->ends);
	free(f);
	s->impl = NULL;
}

static const struct bw_sink_ops file_ops = {
	.name = "file",
	.open = file_open,
	.write = file_write,
	.write_batch = file_write_batch,
	.close = file_close,
	.free = file_free,
};

static const struct bw_sink_ops stdout_ops = {
	.name = "stdout",
	.open = file_open,
	.write = file_write,
	.write_batch = file_write_batch,
	.close = file_close,
	.free = file_free,
};

struct bw_sink *bw_sink_file_new(const char *path_or_dash, uint64_t max_bytes, unsigned keep)
{
	struct bw_sink *s;
	struct file_sink *f;
	bool out;

	if (!path_or_dash || !*path_or_dash) {
		errno = EINVAL;
		return NULL;
	}
	out = streq(path_or_dash, "-");
	s = calloc(1, sizeof(*s));
	f = calloc(1, sizeof(*f));
	if (!s || !f || (!out && !(f->path = strdup(path_or_dash)))) {
		if (f)
			free(f->path);
		free(f);
		free(s);
		errno = ENOMEM;
		return NULL;
	}
	f->fd = -1;
	f->max_bytes = out ? 0 : max_bytes;
	f->keep = keep;
	s->ops = out ? &stdout_ops : &file_ops;
	s->impl = f;
	return s;
}
