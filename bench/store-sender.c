/* The store benchmark's client: pushes N unix-socket fds to a notify socket, 253
 * per datagram with FDSTORE=1, then a BARRIER=1, and reports how long that took.
 * Only the sendmsg loop and the barrier are timed; making the sockets is not.
 *
 *   store-sender [--name NAME] [--rounds R] [--remove] [--hold] PATH N
 *
 *   --name NAME  add FDNAME=NAME to every FDSTORE=1 datagram
 *   --rounds R   store the same N fds R times (each round timed)
 *   --remove     after each round, FDSTOREREMOVE=1 FDNAME=NAME + a barrier
 *                (warm-up: leaves the store as it was)
 *   --hold       after the report, keep the peers open until stdin closes
 *
 * Prints one JSON line: {"fds":N,"ns":[round times]}.
 *
 * Each fd is one end of a socketpair. Its peer must stay open, or the store sees a
 * hang-up and drops it; but holding both ends of 19,000 pairs would need 38,000
 * fds and the hard RLIMIT_NOFILE is 20,000. So the peers live in a forked holder
 * process: this one keeps the N ends it sends (closed after the barrier), the
 * holder keeps the N peers until this process exits. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "proto.h"

#define PROG "store-sender"
#define ROUNDS_MAX 64

static void fail(const char *what)
{
	bench_fail(PROG, what);
}

static void send_fds(int s, const char *data, const int *fds, int k)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * FDSTORE_FDS_PER_MSG)];
	} ctl;
	struct iovec iov = { (void *)data, strlen(data) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (k > 0) {
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)k);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)k);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)k);
	}
	while (sendmsg(s, &mh, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			fail("sendmsg");
}

/* BARRIER=1 with a pipe's write end: the receiver closes it only after everything
 * sent before it, so POLLHUP on the read end is the acknowledgement. */
static void barrier(int s)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		fail("pipe2");
	send_fds(s, "BARRIER=1", &p[1], 1);
	close(p[1]);
	struct pollfd pfd = { .fd = p[0], .events = 0 };
	int r;
	while ((r = poll(&pfd, 1, 60000)) < 0 && errno == EINTR)
		;
	if (r <= 0 || !(pfd.revents & POLLHUP)) {
		errno = r == 0 ? ETIMEDOUT : errno;
		fail("barrier");
	}
	close(p[0]);
}

/* The holder: keeps every fd it is sent; answers 'D' with 'A'; exits at EOF. */
static void hold(int ctl)
{
	int null = open("/dev/null", O_RDWR);
	dup2(null, 0);
	dup2(null, 1);
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * FDSTORE_FDS_PER_MSG)];
	} cbuf;
	for (;;) {
		char byte;
		struct iovec iov = { &byte, 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = cbuf.buf, .msg_controllen = sizeof cbuf.buf };
		ssize_t n = recvmsg(ctl, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);
		if (mh.msg_flags & MSG_CTRUNC)
			_exit(111);
		if (byte == 'D' && write(ctl, "A", 1) != 1)
			_exit(111);
	}
}

/* N socketpairs: the ends to store into ends[], the peers to the holder. */
static pid_t make_sockets(int *ends, int n, int *ctl_out)
{
	int ctl[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0)
		fail("socketpair");
	pid_t pid = fork();
	if (pid < 0)
		fail("fork");
	if (pid == 0) {
		close(ctl[0]);
		hold(ctl[1]);
	}
	close(ctl[1]);
	int peers[FDSTORE_FDS_PER_MSG];
	for (int i = 0; i < n; i += FDSTORE_FDS_PER_MSG) {
		int k = n - i < FDSTORE_FDS_PER_MSG ? n - i : FDSTORE_FDS_PER_MSG;
		for (int j = 0; j < k; j++) {
			int sv[2];
			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
				fail("socketpair");
			ends[i + j] = sv[0];
			peers[j] = sv[1];
		}
		send_fds(ctl[0], "P", peers, k);
		for (int j = 0; j < k; j++)
			close(peers[j]);
	}
	char ack;
	send_fds(ctl[0], "D", NULL, 0);
	if (read(ctl[0], &ack, 1) != 1 || ack != 'A')
		fail("holder");
	*ctl_out = ctl[0];
	return pid;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sa.sun_path) {
		errno = ENAMETOOLONG;
		fail(path);
	}
	strcpy(sa.sun_path, path);
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) < 0)
		fail(path);
	return s;
}

static void usage(void)
{
	fprintf(stderr, "usage: " PROG " [--name NAME] [--rounds R] [--remove] [--hold] PATH N\n");
	exit(100);
}

int main(int argc, char **argv)
{
	const char *name = NULL;
	int rounds = 1;
	bool remove = false, keep = false;
	int i = 1;
	for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
		if (!strcmp(argv[i], "--name") && i + 1 < argc && strlen(argv[i + 1]) < 200)
			name = argv[++i];
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--remove"))
			remove = true;
		else if (!strcmp(argv[i], "--hold"))
			keep = true;
		else
			usage();
	}
	if (argc - i != 2 || rounds < 1 || rounds > ROUNDS_MAX || (remove && !name))
		usage();
	const char *path = argv[i];
	int n = atoi(argv[i + 1]);
	if (n < 1)
		usage();

	raise_nofile();
	int *ends = malloc(sizeof(int) * (size_t)n);
	if (!ends)
		fail("malloc");
	int ctl;
	pid_t holder = make_sockets(ends, n, &ctl);
	int s = connect_to(path);

	char store[256], drop[256];
	snprintf(store, sizeof store, name ? "FDSTORE=1\nFDNAME=%s" : "FDSTORE=1", name);
	snprintf(drop, sizeof drop, "FDSTOREREMOVE=1\nFDNAME=%s", name ? name : "");
	long long ns[ROUNDS_MAX];
	for (int r = 0; r < rounds; r++) {
		long long t0 = now_ns();
		for (int j = 0; j < n; j += FDSTORE_FDS_PER_MSG)
			send_fds(s, store, ends + j, n - j < FDSTORE_FDS_PER_MSG ? n - j : FDSTORE_FDS_PER_MSG);
		barrier(s);
		ns[r] = now_ns() - t0;
		if (remove) {
			send_fds(s, drop, NULL, 0);
			barrier(s);
		}
	}
	/* The receiver holds its own references now; the peers keep them alive. */
	for (int j = 0; j < n; j++)
		close(ends[j]);
	close(s);

	printf("{\"fds\":%d,\"ns\":[", n);
	for (int r = 0; r < rounds; r++)
		printf("%s%lld", r ? "," : "", ns[r]);
	printf("]}\n");
	fflush(stdout);
	if (keep) {
		char buf[64];
		while (read(0, buf, sizeof buf) > 0 || errno == EINTR)
			;
	}
	close(ctl);
	waitpid(holder, NULL, 0);
	return 0;
}
