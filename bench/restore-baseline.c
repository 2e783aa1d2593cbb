/* Baseline for "time from launcher start to the app's first instruction with N
 * stored fds": the least a C pair can do, shaped like the agent path it is
 * compared with (a server already holding the fds; a launcher spawned, fed and
 * exec'ing the app). No names, no header, no peer check, no checks beyond the count.
 *
 *   restore-baseline --serve NAME N
 *       the server: holds N unix-socket fds (both ends of N/2 socketpairs), listens
 *       on the abstract SOCK_SEQPACKET address NAME, prints "ready", and sends the
 *       N fds, 253 per message, to every connection; runs until killed
 *   restore-baseline --receive NAME N APP [ARGS...]
 *       the launcher: connects, receives the N fds, places them at 3.. (O(N), see
 *       agent/launcher/restore.c), sets LISTEN_FDS/LISTEN_PID and execs APP
 *
 * Time it with spawn-time and first-instr, exactly as fdstore-exec is timed:
 *   spawn-time restore-baseline --receive NAME N first-instr */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench.h"
#include "proto.h"

#define PROG "restore-baseline"

static void fail(const char *what)
{
	bench_fail(PROG, what);
}

/* Abstract address: nothing to clean up in the file system. */
static socklen_t address(struct sockaddr_un *sa, const char *name)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	size_t len = strlen(name);
	if (len + 1 >= sizeof sa->sun_path)
		len = sizeof sa->sun_path - 2;
	memcpy(sa->sun_path + 1, name, len);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
}

/* Puts one batch at its targets: first moves any fd sitting below `end` out of
 * the way (F_DUPFD_CLOEXEC above the range), then dup2s each to its slot. No
 * slot is ever searched for, and no more than one batch of temporaries exists. */
static void place(int *fds, int k, int first, int end)
{
	for (int i = 0; i < k; i++) {
		int target = FDSTORE_LISTEN_FDS_START + first + i;
		if (fds[i] != target && fds[i] < end) {
			int m = fcntl(fds[i], F_DUPFD_CLOEXEC, end);
			if (m < 0)
				fail("fcntl");
			close(fds[i]);
			fds[i] = m;
		}
	}
	for (int i = 0; i < k; i++) {
		int target = FDSTORE_LISTEN_FDS_START + first + i;
		if (fds[i] != target) {
			if (dup2(fds[i], target) < 0)
				fail("dup2");
			close(fds[i]);
		}
	}
}

static int receive(const char *name, int n, char **app)
{
	raise_nofile();
	struct sockaddr_un sa;
	socklen_t salen = address(&sa, name);
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, salen) < 0)
		fail("connect");
	int end = FDSTORE_LISTEN_FDS_START + n;
	if (s < end) {
		int m = fcntl(s, F_DUPFD_CLOEXEC, end);
		if (m < 0)
			fail("fcntl");
		close(s);
		s = m;
	}
	/* Without MSG_CMSG_CLOEXEC: the fds are meant for the exec, so they need no
	 * flag clearing (fdstore-exec receives with it, and pays an F_SETFD per fd). */
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * FDSTORE_FDS_PER_MSG)];
	} ctl;
	int got = 0;
	while (got < n) {
		char byte;
		struct iovec iov = { &byte, 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf };
		ssize_t len = recvmsg(s, &mh, 0);
		if (len <= 0)
			fail("recvmsg");
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		if (!c || c->cmsg_type != SCM_RIGHTS || (mh.msg_flags & MSG_CTRUNC)) {
			errno = EPROTO;
			fail("recvmsg");
		}
		int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		if (k > n - got) {
			errno = EPROTO;
			fail("recvmsg");
		}
		int fds[FDSTORE_FDS_PER_MSG];
		memcpy(fds, CMSG_DATA(c), (size_t)k * sizeof(int));
		place(fds, k, got, end);
		got += k;
	}
	close(s);
	char buf[24];
	snprintf(buf, sizeof buf, "%d", n);
	setenv("LISTEN_FDS", buf, 1);
	snprintf(buf, sizeof buf, "%d", (int)getpid());
	setenv("LISTEN_PID", buf, 1);
	execv(app[0], app);
	fail("execv");
	return 111;
}

static void send_all(int c, const int *fds, int n)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * FDSTORE_FDS_PER_MSG)];
	} ctl;
	for (int i = 0; i < n; i += FDSTORE_FDS_PER_MSG) {
		int k = n - i < FDSTORE_FDS_PER_MSG ? n - i : FDSTORE_FDS_PER_MSG;
		char byte = 'F';
		struct iovec iov = { &byte, 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
				     .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)k) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)k);
		memcpy(CMSG_DATA(cm), fds + i, sizeof(int) * (size_t)k);
		/* A launcher that died mid-transfer costs the server nothing. */
		if (sendmsg(c, &mh, MSG_NOSIGNAL) < 0)
			return;
	}
}

_Noreturn static void serve(const char *name, int n)
{
	raise_nofile();
	int *fds = malloc(sizeof(int) * (size_t)(n + 1));
	if (!fds)
		fail("malloc");
	for (int i = 0; i < n; i += 2)
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds + i) < 0)
			fail("socketpair");
	if (n % 2)
		close(fds[n]);
	struct sockaddr_un sa;
	socklen_t salen = address(&sa, name);
	int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, salen) < 0 || listen(l, 16) < 0)
		fail("listen");
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			fail("accept4");
		}
		send_all(c, fds, n);
		close(c);
	}
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--serve") && atoi(argv[3]) >= 1)
		serve(argv[2], atoi(argv[3]));
	if (argc >= 5 && !strcmp(argv[1], "--receive") && atoi(argv[3]) >= 1)
		return receive(argv[2], atoi(argv[3]), argv + 4);
	fprintf(stderr, "usage: " PROG " --serve NAME N | --receive NAME N APP [ARGS...]\n");
	return 100;
}
