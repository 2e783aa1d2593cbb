/* The app in the restore benchmark: reads CLOCK_MONOTONIC first thing, checks the
 * fds arrived (LISTEN_FDS, and the last one at 3+N-1 without FD_CLOEXEC), and
 * writes "APP_NS LISTEN_FDS OK\n" to stdout. Static, like fdstore-exec. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>

#include "bench.h"
#include "proto.h"

int main(void)
{
	long long t = now_ns();
	const char *n = getenv("LISTEN_FDS");
	int count = n ? atoi(n) : 0;
	int ok = count == 0 || fcntl(FDSTORE_LISTEN_FDS_START + count - 1, F_GETFD) == 0;
	printf("%lld %d %d\n", t, count, ok);
	return 0;
}
