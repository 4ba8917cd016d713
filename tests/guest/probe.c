// SPDX-License-Identifier: GPL-2.0-only
/*
 * bulwark-probe: a test helper run inside the QEMU guest. It performs one
 * operation that Bulwark's BPF-LSM programs may allow or deny, and reports
 * what the kernel answered on exactly one line:
 *
 *   probe: op=<op> target=<target> result=ok
 *   probe: op=<op> target=<target> result=errno errno=<n> (<NAME>)
 *
 * Usage:
 *   bulwark-probe [OPTIONS] exec PATH [ARGS...]
 *   bulwark-probe [OPTIONS] open PATH read|write [OPTIONS]
 *   bulwark-probe [OPTIONS] connect ADDR PORT tcp|udp [OPTIONS]
 *   bulwark-probe [OPTIONS] listen ADDR PORT tcp|udp [OPTIONS]
 *   bulwark-probe mkcgroup DIR
 *
 * OPTIONS:
 *   --cgroup DIR     move this process into cgroup2 directory DIR (write "0"
 *                    to DIR/cgroup.procs) before the operation, so the
 *                    operation (and an exec'd child) runs inside that cgroup.
 *   --expect LIST    assertion: LIST is a comma-separated list of outcomes,
 *                    each "ok", an errno name ("EPERM") or number ("1").
 *                    The line gets " expect=LIST PASS" or " expect=LIST FAIL".
 *
 * Targets: exec and open print the path; connect and listen print
 * tcp://127.0.0.1:8080 or tcp://[::1]:8080. exec forks a child that execv()s
 * PATH with ARGS; the child's execve errno comes back through a CLOEXEC pipe.
 * When exec succeeded the line ends in " status=<exit code>" or
 * " signal=<n>" of the child (the child's own output is not captured).
 * For tcp connect, ECONNREFUSED means that the security layer let the connect
 * through and nothing listened: use "--expect ok,ECONNREFUSED" for "allowed".
 * listen binds and listens, prints "listening" and then accepts (and closes)
 * connections until it is killed.
 * mkcgroup creates DIR (mkdir -p) and prints its cgroup id, the inode number
 * of the directory, alone on a line.
 *
 * Exit status without --expect: 0 ok, 1 EPERM, 2 another errno, 3 usage or
 * setup error (cannot join the cgroup, bad address). With --expect: 0 PASS,
 * 1 FAIL, 3 usage or setup error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_OK 0
#define EXIT_EPERM 1
#define EXIT_ERRNO 2
#define EXIT_USAGE 3

struct errno_name {
	int num;
	const char *name;
};

#define E(x) { x, #x }
static const struct errno_name errno_names[] = {
	E(EPERM), E(ENOENT), E(ESRCH), E(EINTR), E(EIO), E(ENXIO), E(E2BIG),
	E(ENOEXEC), E(EBADF), E(ECHILD), E(EAGAIN), E(ENOMEM), E(EACCES),
	E(EFAULT), E(EBUSY), E(EEXIST), E(EXDEV), E(ENODEV), E(ENOTDIR),
	E(EISDIR), E(EINVAL), E(ENFILE), E(EMFILE), E(ENOTTY), E(ETXTBSY),
	E(EFBIG), E(ENOSPC), E(ESPIPE), E(EROFS), E(EMLINK), E(EPIPE),
	E(ERANGE), E(EDEADLK), E(ENAMETOOLONG), E(ENOSYS), E(ENOTEMPTY),
	E(ELOOP), E(ENODATA), E(EPROTO), E(EOVERFLOW), E(EBADFD),
	E(ENOTSOCK), E(EDESTADDRREQ), E(EMSGSIZE), E(EPROTOTYPE),
	E(ENOPROTOOPT), E(EPROTONOSUPPORT), E(ESOCKTNOSUPPORT), E(EOPNOTSUPP),
	E(EPFNOSUPPORT), E(EAFNOSUPPORT), E(EADDRINUSE), E(EADDRNOTAVAIL),
	E(ENETDOWN), E(ENETUNREACH), E(ENETRESET), E(ECONNABORTED),
	E(ECONNRESET), E(ENOBUFS), E(EISCONN), E(ENOTCONN), E(ETIMEDOUT),
	E(ECONNREFUSED), E(EHOSTDOWN), E(EHOSTUNREACH), E(EALREADY),
	E(EINPROGRESS), E(ESTALE), E(EDQUOT), E(ECANCELED), E(EKEYREJECTED),
	E(EOWNERDEAD), E(ENOTRECOVERABLE),
};
#undef E

static const char *errno_name(int num)
{
	for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
		if (errno_names[i].num == num)
			return errno_names[i].name;
	return "E?";
}

/* Parses "ok", "EPERM", "1" into 0 (ok) or an errno; -1 if unknown. */
static int parse_outcome(const char *s, size_t len)
{
	if (len == 2 && strncmp(s, "ok", 2) == 0)
		return 0;
	if (len > 0 && s[0] >= '0' && s[0] <= '9') {
		int v = 0;
		for (size_t i = 0; i < len; i++) {
			if (s[i] < '0' || s[i] > '9' || v > 100000)
				return -1;
			v = v * 10 + (s[i] - '0');
		}
		return v;
	}
	for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
		if (strlen(errno_names[i].name) == len &&
		    strncmp(errno_names[i].name, s, len) == 0)
			return errno_names[i].num;
	return -1;
}

static const char *expect_list; /* --expect, NULL when absent */
static const char *cgroup_dir;  /* --cgroup, NULL when absent */
static unsigned long repeat = 1; /* --repeat: open N times in a tight loop (floods) */

static int validate_expect(const char *list)
{
	const char *p = list;

	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (parse_outcome(p, len) < 0) {
			fprintf(stderr, "bulwark-probe: --expect: unknown outcome '%.*s' "
				"(use ok, an errno name such as EPERM, or a number)\n",
				(int)len, p);
			return -1;
		}
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

static int expect_matches(int err)
{
	const char *p = expect_list;

	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (parse_outcome(p, len) == err)
			return 1;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

/*
 * Prints the result line and returns the exit status. err is 0 for success.
 * extra (may be NULL) is appended after the result, e.g. "status=0".
 */
static int report(const char *op, const char *target, int err, const char *extra)
{
	int rc;

	printf("probe: op=%s target=%s ", op, target);
	if (err == 0)
		printf("result=ok");
	else
		printf("result=errno errno=%d (%s)", err, errno_name(err));
	if (extra && *extra)
		printf(" %s", extra);
	if (expect_list) {
		int pass = expect_matches(err);

		printf(" expect=%s %s", expect_list, pass ? "PASS" : "FAIL");
		rc = pass ? EXIT_OK : 1;
	} else {
		rc = err == 0 ? EXIT_OK : err == EPERM ? EXIT_EPERM : EXIT_ERRNO;
	}
	printf("\n");
	fflush(stdout);
	return rc;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: bulwark-probe [--cgroup DIR] [--expect ok|ERRNO[,...]] exec PATH [ARGS...]\n"
		"       bulwark-probe [--cgroup DIR] [--expect ...] open PATH read|write\n"
		"       bulwark-probe [--cgroup DIR] [--expect ...] connect ADDR PORT tcp|udp\n"
		"       bulwark-probe [--cgroup DIR] listen ADDR PORT tcp|udp\n"
		"       bulwark-probe mkcgroup DIR\n"
		"(--cgroup/--expect may also follow the arguments of open, connect, listen)\n");
	return EXIT_USAGE;
}

/* Writes all of buf to fd; returns 0 or -1 with errno set. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int join_cgroup(const char *dir)
{
	char path[4096];
	int fd, n;

	n = snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		fprintf(stderr, "bulwark-probe: cgroup path too long\n");
		return -1;
	}
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "bulwark-probe: cannot join cgroup: open %s: %s\n",
			path, strerror(errno));
		return -1;
	}
	if (write_all(fd, "0", 1) < 0) {
		fprintf(stderr, "bulwark-probe: cannot join cgroup: write %s: %s\n",
			path, strerror(errno));
		close(fd);
		return -1;
	}
	if (close(fd) < 0) {
		fprintf(stderr, "bulwark-probe: cannot join cgroup: close %s: %s\n",
			path, strerror(errno));
		return -1;
	}
	return 0;
}

static int mkdir_p(const char *dir)
{
	char path[4096];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(path, dir, len + 1);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int do_mkcgroup(const char *dir)
{
	struct stat st;

	if (mkdir_p(dir) < 0 || stat(dir, &st) < 0) {
		fprintf(stderr, "bulwark-probe: mkcgroup %s: %s\n", dir, strerror(errno));
		return errno == EPERM ? EXIT_EPERM : EXIT_ERRNO;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "bulwark-probe: mkcgroup %s: not a directory\n", dir);
		return EXIT_ERRNO;
	}
	printf("%llu\n", (unsigned long long)st.st_ino);
	fflush(stdout);
	return EXIT_OK;
}

static int do_exec(char **argv)
{
	const char *path = argv[0];
	char extra[64] = "";
	int pfd[2], status, child_errno = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		fprintf(stderr, "bulwark-probe: pipe2: %s\n", strerror(errno));
		return EXIT_USAGE;
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "bulwark-probe: fork: %s\n", strerror(errno));
		return EXIT_USAGE;
	}
	if (pid == 0) {
		int e;

		close(pfd[0]);
		execv(path, argv);
		e = errno;
		(void)!write(pfd[1], &e, sizeof(e));
		_exit(127);
	}
	close(pfd[1]);
	do
		n = read(pfd[0], &child_errno, sizeof(child_errno));
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "bulwark-probe: waitpid: %s\n", strerror(errno));
			return EXIT_USAGE;
		}
	}
	if (n == (ssize_t)sizeof(child_errno) && child_errno != 0)
		return report("exec", path, child_errno, NULL);
	if (WIFEXITED(status))
		snprintf(extra, sizeof(extra), "status=%d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(extra, sizeof(extra), "signal=%d", WTERMSIG(status));
	return report("exec", path, 0, extra);
}

static int do_open(const char *path, const char *mode)
{
	int flags, fd, err = 0;

	if (strcmp(mode, "read") == 0)
		flags = O_RDONLY;
	else if (strcmp(mode, "write") == 0)
		flags = O_WRONLY;
	else
		return usage();
	unsigned long eperm = 0;
	char extra[64];

	for (unsigned long i = 0; i < repeat; i++) {
		fd = open(path, flags | O_CLOEXEC | O_NOCTTY);
		err = fd < 0 ? errno : 0;
		if (fd >= 0)
			close(fd);
		eperm += err == EPERM;
	}
	if (repeat == 1)
		return report("open", path, err, NULL);
	snprintf(extra, sizeof(extra), "repeat=%lu eperm=%lu", repeat, eperm);
	return report("open", path, err, extra);
}

struct endpoint {
	struct sockaddr_storage ss;
	socklen_t len;
	int family;
	int type;
	char target[128];
};

static int parse_endpoint(struct endpoint *ep, const char *addr, const char *port,
			  const char *proto)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&ep->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ep->ss;
	unsigned long p;
	char *end;

	memset(ep, 0, sizeof(*ep));
	if (strcmp(proto, "tcp") == 0) {
		ep->type = SOCK_STREAM;
	} else if (strcmp(proto, "udp") == 0) {
		ep->type = SOCK_DGRAM;
	} else {
		fprintf(stderr, "bulwark-probe: protocol must be tcp or udp, not '%s'\n", proto);
		return -1;
	}
	errno = 0;
	p = strtoul(port, &end, 10);
	if (errno || *port == '\0' || *end != '\0' || p > 65535) {
		fprintf(stderr, "bulwark-probe: bad port '%s'\n", port);
		return -1;
	}
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		ep->len = sizeof(*sin);
		ep->family = AF_INET;
		snprintf(ep->target, sizeof(ep->target), "%s://%s:%lu", proto, addr, p);
	} else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		ep->len = sizeof(*sin6);
		ep->family = AF_INET6;
		snprintf(ep->target, sizeof(ep->target), "%s://[%s]:%lu", proto, addr, p);
	} else {
		fprintf(stderr, "bulwark-probe: '%s' is not an IPv4 or IPv6 literal\n", addr);
		return -1;
	}
	return 0;
}

static int do_connect(const struct endpoint *ep)
{
	struct timeval tv = { .tv_sec = 10 };
	int fd, err = 0;

	fd = socket(ep->family, ep->type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return report("connect", ep->target, errno, "(socket)");
	/* Bounds a TCP connect that gets no answer (ETIMEDOUT-like EINPROGRESS). */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (connect(fd, (const struct sockaddr *)&ep->ss, ep->len) < 0) {
		if (errno == EINTR)
			continue;
		err = errno;
		break;
	}
	close(fd);
	return report("connect", ep->target, err, NULL);
}

static int do_listen(const struct endpoint *ep)
{
	int fd, one = 1;

	fd = socket(ep->family, ep->type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return report("listen", ep->target, errno, "(socket)");
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ep->family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&ep->ss, ep->len) < 0)
		return report("listen", ep->target, errno, "(bind)");
	if (ep->type == SOCK_STREAM && listen(fd, 64) < 0)
		return report("listen", ep->target, errno, "(listen)");
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		if (ep->type == SOCK_STREAM) {
			int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

			if (c >= 0)
				close(c);
			else if (errno != EINTR && errno != ECONNABORTED)
				pause(); /* keep the socket open until killed */
		} else {
			char buf[2048];

			if (recv(fd, buf, sizeof(buf), 0) < 0 && errno != EINTR)
				pause();
		}
	}
}

/* Consumes leading or trailing --cgroup/--expect options; returns the count or -1. */
static int parse_options(int argc, char **argv)
{
	int i = 0;

	while (i < argc) {
		const char *a = argv[i];

		if (strcmp(a, "--cgroup") == 0 || strcmp(a, "--expect") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "bulwark-probe: %s needs an argument\n", a);
				return -1;
			}
			if (a[2] == 'c') {
				cgroup_dir = argv[i + 1];
			} else {
				if (validate_expect(argv[i + 1]) < 0)
					return -1;
				expect_list = argv[i + 1];
			}
			i += 2;
		} else if (strncmp(a, "--cgroup=", 9) == 0) {
			cgroup_dir = a + 9;
			i++;
		} else if (strncmp(a, "--expect=", 9) == 0) {
			if (validate_expect(a + 9) < 0)
				return -1;
			expect_list = a + 9;
			i++;
		} else if (strcmp(a, "--repeat") == 0 && i + 1 < argc) {
			char *end;

			repeat = strtoul(argv[i + 1], &end, 10);
			if (*end || !repeat) {
				fprintf(stderr, "bulwark-probe: --repeat needs a positive count\n");
				return -1;
			}
			i += 2;
		} else if (strcmp(a, "--") == 0) {
			return i + 1;
		} else if (strncmp(a, "--", 2) == 0) {
			fprintf(stderr, "bulwark-probe: unknown option '%s'\n", a);
			return -1;
		} else {
			break;
		}
	}
	return i;
}

int main(int argc, char **argv)
{
	struct endpoint ep;
	const char *op;
	int n, nargs;

	signal(SIGPIPE, SIG_IGN);
	argc--;
	argv++;
	n = parse_options(argc, argv);
	if (n < 0)
		return usage();
	argc -= n;
	argv += n;
	if (argc < 1)
		return usage();
	op = argv[0];
	argc--;
	argv++;

	if (strcmp(op, "mkcgroup") == 0) {
		if (argc != 1 || cgroup_dir || expect_list)
			return usage();
		return do_mkcgroup(argv[0]);
	}
	if (strcmp(op, "exec") == 0) {
		if (argc < 1)
			return usage();
		/* Everything after PATH belongs to the program. */
		if (cgroup_dir && join_cgroup(cgroup_dir) < 0)
			return EXIT_USAGE;
		return do_exec(argv);
	}

	if (strcmp(op, "open") == 0)
		nargs = 2;
	else if (strcmp(op, "connect") == 0 || strcmp(op, "listen") == 0)
		nargs = 3;
	else
		return usage();
	if (argc < nargs)
		return usage();
	n = parse_options(argc - nargs, argv + nargs);
	if (n < 0 || n != argc - nargs)
		return usage();

	if (strcmp(op, "open") != 0 && parse_endpoint(&ep, argv[0], argv[1], argv[2]) < 0)
		return EXIT_USAGE;
	if (cgroup_dir && join_cgroup(cgroup_dir) < 0)
		return EXIT_USAGE;
	if (strcmp(op, "open") == 0)
		return do_open(argv[0], argv[1]);
	if (strcmp(op, "connect") == 0)
		return do_connect(&ep);
	if (expect_list) {
		fprintf(stderr, "bulwark-probe: listen does not take --expect\n");
		return EXIT_USAGE;
	}
	return do_listen(&ep);
}
