/* Helpers shared by the benchmark's C programs (header-only: each program is one
 * file plus this). All times are CLOCK_MONOTONIC nanoseconds. */
#ifndef FDSTORE_BENCH_H
#define FDSTORE_BENCH_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static inline long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* 111 for a failed system call, as the launcher does. */
static inline void bench_fail(const char *prog, const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(errno));
	exit(111);
}

/* The hard RLIMIT_NOFILE here is 20,000: 19,000 fds fit only with the soft limit
 * raised to it. */
static inline void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

#endif
