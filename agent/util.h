/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small generic helpers shared by the agent sources: scope-based cleanup,
 * string predicates, formatting into a new string, and arrays that grow.
 * Header-only so that unit tests can link a single source file with it.
 * Nothing here aborts on allocation failure: callers get NULL or -ENOMEM
 * and decide.
 */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _unused_ __attribute__((unused))
#define _warn_unused_result_ __attribute__((warn_unused_result))

/* Number of elements of a true array; does not compile for a pointer. */
#define ELEMENTSOF(x)                                                                              \
	(__builtin_choose_expr(                                                                    \
		!__builtin_types_compatible_p(__typeof__(x), __typeof__(&*(x))),                   \
		sizeof(x) / sizeof((x)[0]), (void)0))

/* Hands the value over to the caller and leaves NULL (or -1) behind, so
 * that the cleanup handler of the variable does nothing. */
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _take_ptr_ = (p);                                                    \
		(p) = NULL;                                                                        \
		_take_ptr_;                                                                        \
	})
#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _take_fd_ = (fd);                                                              \
		(fd) = -1;                                                                         \
		_take_fd_;                                                                         \
	})

static inline void *mfree(void *p)
{
	free(p);
	return NULL;
}

/* Frees a secret (a token, a password, a private key, a header carrying
 * one) after overwriting it, so that it does not linger in freed memory;
 * returns NULL for "s = free_secret(s)". NULL is fine. */
static inline char *free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
	return NULL;
}

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Cleanup handlers keep errno: they run on error paths that still need it. */
static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f)
{
	if (*f) {
		int saved = errno;
		fclose(*f);
		errno = saved;
	}
}
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline void closedirp(DIR **d)
{
	if (*d) {
		int saved = errno;
		closedir(*d);
		errno = saved;
	}
}
#define _cleanup_closedir_ _cleanup_(closedirp)

/* Frees a NULL-terminated or counted string vector: pass n = SIZE_MAX for
 * NULL-terminated. Returns NULL for "v = strv_free(v, n)". */
static inline char **strv_free(char **v, size_t n)
{
	if (!v)
		return NULL;
	for (size_t i = 0; i < n && (n != SIZE_MAX || v[i]); i++)
		free(v[i]);
	free(v);
	return NULL;
}

static inline bool streq(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

/* NULL-safe: two NULLs are equal, NULL and a string are not. */
static inline bool streq_ptr(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

/* The rest of s after prefix, or NULL when s does not start with it. */
static inline const char *startswith(const char *s, const char *prefix)
{
	size_t l = strlen(prefix);

	return strncmp(s, prefix, l) == 0 ? s + l : NULL;
}

/* Where suffix starts in s, or NULL when s does not end with it. */
static inline const char *endswith(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	if (lx > ls)
		return NULL;
	return memcmp(s + ls - lx, suffix, lx) == 0 ? s + ls - lx : NULL;
}

/* vasprintf without _GNU_SOURCE: a new string, or NULL (errno set). */
static inline char *strvprintf(const char *fmt, va_list ap)
{
	va_list aq;
	char *s;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0) {
		errno = EINVAL;
		return NULL;
	}
	s = malloc((size_t)n + 1);
	if (!s)
		return NULL;
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

static inline _printf_(1, 2) char *strprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = strvprintf(fmt, ap);
	va_end(ap);
	return s;
}

/* Replaces *error (when error is not NULL; *error is NULL or allocated)
 * with a formatted message and returns err, for "return error_set(error,
 * -EINVAL, ...)". */
static inline _printf_(3, 4) int error_set(char **error, int err, const char *fmt, ...)
{
	va_list ap;

	if (error) {
		free(*error);
		va_start(ap, fmt);
		*error = strvprintf(fmt, ap);
		va_end(ap);
	}
	return err;
}

/* realloc for n elements of size bytes, failing cleanly on overflow. */
static inline void *realloc_array(void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, n * size > 0 ? n * size : 1);
}

/*
 * Growable arrays. Two flavours, because some public structures carry only
 * (items, n) and must stay valid whoever allocated them:
 *
 *   ARRAY_APPEND(p, n): grows p to exactly n + 1 elements, zeroes the new one,
 *     increments n and evaluates to a pointer to it, or NULL on failure
 *     (p and n unchanged). Works on any (pointer, count) pair.
 *
 *   ARRAY_RESERVE(p, cap, need): makes room for need elements, doubling the
 *     capacity; evaluates to 0 or -ENOMEM.
 *
 * Arguments are evaluated more than once: pass plain lvalues.
 */
#define ARRAY_APPEND(p, n)                                                                         \
	({                                                                                         \
		__typeof__(p) _aa_q_ = realloc_array((p), (n) + 1, sizeof(*(p)));                  \
		__typeof__(p) _aa_e_ = NULL;                                                       \
		if (_aa_q_) {                                                                      \
			(p) = _aa_q_;                                                              \
			_aa_e_ = memset(&_aa_q_[(n)++], 0, sizeof(*_aa_q_));                      \
		}                                                                                  \
		_aa_e_;                                                                            \
	})

#define ARRAY_RESERVE(p, cap, need)                                                                \
	({                                                                                         \
		int _ar_r_ = 0;                                                                    \
		size_t _ar_need_ = (need);                                                         \
		if (_ar_need_ > (cap)) {                                                           \
			size_t _ar_c_ = (cap) ? (cap) : 4;                                         \
			while (_ar_c_ < _ar_need_)                                                 \
				_ar_c_ = _ar_c_ > SIZE_MAX / 2 ? _ar_need_ : _ar_c_ * 2;           \
			__typeof__(p) _ar_q_ = realloc_array((p), _ar_c_, sizeof(*(p)));           \
			if (_ar_q_) {                                                              \
				(p) = _ar_q_;                                                      \
				(cap) = _ar_c_;                                                    \
			} else                                                                     \
				_ar_r_ = -ENOMEM;                                                  \
		}                                                                                  \
		_ar_r_;                                                                            \
	})

/* The clock's reading ns from now, as pthread_cond_timedwait wants it
 * (CLOCK_REALTIME for a default condition variable). */
static inline struct timespec timespec_after(clockid_t clock, uint64_t ns)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	ts.tv_sec += (time_t)(ns / 1000000000ULL);
	ts.tv_nsec += (long)(ns % 1000000000ULL);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* A condition variable whose timed waits take CLOCK_MONOTONIC deadlines
 * (timespec_after(CLOCK_MONOTONIC, ...)): a wall-clock step neither ends a
 * wait early nor holds it back. */
static inline void cond_init_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &ca);
	pthread_condattr_destroy(&ca);
}

/* A clock's reading in nanoseconds: CLOCK_MONOTONIC for intervals and
 * deadlines, CLOCK_REALTIME for time stamps in records. */
static inline uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}
