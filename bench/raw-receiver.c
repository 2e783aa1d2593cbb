/* The store benchmark's baselines: the least a notify receiver can do with the
 * same datagrams the agent gets.
 *
 *   raw-receiver recvmsg PATH   only recvmsg (and keep the fds)
 *   raw-receiver perfd PATH     recvmsg, then per fd what the spec requires:
 *                               fstat and epoll_ctl(ADD, events 0) for hang-ups
 *
 * Both bind PATH like the agent (SOCK_DGRAM, SO_PASSCRED, an 8 MiB receive
 * buffer), receive with MSG_CMSG_CLOEXEC, keep every fd, and close the fd of a
 * BARRIER=1 datagram at once (everything before it has been handled). Prints
 * "ready" when bound; runs until killed. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench.h"
#include "proto.h"

#define PROG "raw-receiver"
/* The agent's NOTIFY_RCVBUF_BYTES (systemd's NOTIFY_RCVBUF_SIZE). */
#define RCVBUF_BYTES (8 << 20)

static void fail(const char *what)
{
	bench_fail(PROG, what);
}

static int bind_notify(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sa.sun_path) {
		errno = ENAMETOOLONG;
		fail(path);
	}
	strcpy(sa.sun_path, path);
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int one = 1, size = RCVBUF_BYTES;
	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
		fail("socket");
	if (setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
		setsockopt(s, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
	unlink(path);
	if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0)
		fail("bind");
	return s;
}

int main(int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[1], "recvmsg") && strcmp(argv[1], "perfd"))) {
		fprintf(stderr, "usage: " PROG " recvmsg|perfd PATH\n");
		return 100;
	}
	bool perfd = !strcmp(argv[1], "perfd");
	raise_nofile();
	int s = bind_notify(argv[2]);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		fail("epoll_create1");
	printf("ready\n");
	fflush(stdout);

	static char data[FDSTORE_NOTIFY_BYTES_MAX];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * FDSTORE_NOTIFY_FDS_MAX)];
	} ctl;
	uint64_t id = 0;
	for (;;) {
		struct iovec iov = { data, sizeof data };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf };
		ssize_t len = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);
		if (len < 0) {
			if (errno == EINTR)
				continue;
			fail("recvmsg");
		}
		/* Out of fds (or a control buffer too small): the result would be void. */
		if (mh.msg_flags & MSG_CTRUNC) {
			errno = EMFILE;
			fail("recvmsg: MSG_CTRUNC");
		}
		int *fds = NULL, k = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				fds = (int *)(void *)CMSG_DATA(c);
				k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			}
		if (len >= 9 && !memcmp(data, "BARRIER=1", 9)) {
			for (int i = 0; i < k; i++)
				close(fds[i]);
			continue;
		}
		if (!perfd)
			continue;
		for (int i = 0; i < k; i++) {
			struct stat st;
			if (fstat(fds[i], &st) < 0)
				fail("fstat");
			struct epoll_event ev = { .events = 0, .data.u64 = ++id };
			if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0)
				fail("epoll_ctl");
		}
	}
}
