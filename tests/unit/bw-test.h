/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The unit tests' only framework: ASSERT counts, prints file:line and the
 * expression that failed, and bw_test_summary() prints "N passed, N failed"
 * and gives the exit status.
 */
#pragma once

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static unsigned passed, failed;

#define ASSERT(expr)                                                                   \
	do {                                                                           \
		if (expr) {                                                            \
			passed++;                                                      \
		} else {                                                               \
			failed++;                                                      \
			fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #expr); \
		}                                                                      \
	} while (0)

static inline int bw_test_summary(void)
{
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}

/* asprintf that cannot fail: a test without memory has nothing to say. */
static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		perror("vasprintf");
		exit(2);
	}
	va_end(ap);
	return s;
}
