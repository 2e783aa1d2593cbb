/* fdstore-keeper: holds a mirror of the agent's stores, its listen: sockets and a
 * state blob, so a restarted agent finds them again (docs/keeper.md). One poll
 * loop, one listening socket, one agent connection; everything reserved at start. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "keeper.h"

#ifndef FDSTORE_VERSION
#define FDSTORE_VERSION "unknown"
#endif

/* Fds besides the slots: stdio, the listening socket, the connection, a peer being
 * checked, and one message of KEEPER_FDS_PER_MSG in transit. */
#define RESERVED_FDS (3 + 3 + KEEPER_FDS_PER_MSG)

/* Hostile peers cost at most one log line a second. */
#define REFUSED_LOG_INTERVAL_MS 1000

static const char usage_text[] =
	"usage: " PROG " --run-dir DIR [--max-fds N] [--uid UID]\n"
	"       " PROG " --socket PATH [--max-fds N] [--uid UID]\n"
	"\n"
	"Keeps a copy of every fd the fdstore agent stores, its listen: sockets and its\n"
	"state, so that a restarted or upgraded agent (fdstore agent --keeper PATH) finds\n"
	"them again. Runs in its own container of the pod, as the agent's uid.\n"
	"\n"
	"  --run-dir DIR   serve DIR/" KEEPER_DIR "/" KEEPER_SOCKET " (the directory is created 0700)\n"
	"  --socket PATH   serve PATH (its directory must exist, be ours and 0700)\n"
	"  --max-fds N     fds kept at most (default 65536, or what RLIMIT_NOFILE allows;\n"
	"                  the limit must allow N + 259)\n"
	"  --uid UID       the only uid allowed to connect (default: the keeper's own)\n"
	"  --help          this text\n"
	"  --version       print the version\n"
	"\n"
	"Exit status: 100 bad usage, 111 a system call failed at start.\n";

static void vsay(const char *fmt, va_list ap)
{
	fputs(PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
}

static void die(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	exit(code);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct table table;
static unsigned char in[KEEPER_MSG_MAX];
static union {
	struct cmsghdr h;
	char buf[CMSG_SPACE(sizeof(int) * KEEPER_FDS_PER_MSG) + CMSG_SPACE(sizeof(struct ucred))];
} ctl;
static long long refused_logged_ms = -REFUSED_LOG_INTERVAL_MS;

/* The directory must be ours, not a symlink, and reachable by no one else. */
static void check_dir(const char *dir, int create)
{
	struct stat st;
	int fd;
	if (create && mkdir(dir, 0700) < 0 && errno != EEXIST) die(KEEPER_EXIT_SYSCALL, "mkdir %s: %s", dir, strerror(errno));
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) die(KEEPER_EXIT_SYSCALL, "open %s: %s", dir, strerror(errno));
	if (fstat(fd, &st) < 0) die(KEEPER_EXIT_SYSCALL, "fstat %s: %s", dir, strerror(errno));
	if (st.st_uid != geteuid()) die(KEEPER_EXIT_USAGE, "%s belongs to uid %u, not to the keeper's uid %u", dir, (unsigned)st.st_uid, (unsigned)geteuid());
	if ((st.st_mode & 077) != 0 && fchmod(fd, 0700) < 0) die(KEEPER_EXIT_SYSCALL, "chmod 0700 %s: %s", dir, strerror(errno));
	close(fd);
}

static int listen_at(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;
	if (strlen(path) >= sizeof a.sun_path) die(KEEPER_EXIT_USAGE, "socket path %s is longer than %zu bytes", path, sizeof a.sun_path - 1);
	strcpy(a.sun_path, path);
	/* A socket left by an earlier keeper: ours (the directory is), replace it. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) die(KEEPER_EXIT_USAGE, "%s exists and is not a socket", path);
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 8) < 0)
		die(KEEPER_EXIT_SYSCALL, "cannot listen on %s: %s", path, strerror(errno));
	return fd;
}

static void hello(int conn)
{
	unsigned char h[25];
	h[0] = 'H';
	put32(h + 1, KEEPER_VERSION);
	put32(h + 5, table.max);
	put32(h + 9, KEEPER_METAS_MAX);
	put32(h + 13, table.used);
	put32(h + 17, table.blob_len);
	put32(h + 21, table.refused);
	if (send_msg(conn, h, sizeof h, NULL, 0) < 0) say("hello failed: %s", strerror(errno));
}

/* A new peer: the agent's uid replaces the current connection; anyone else is closed. */
static int accept_peer(int lfd, int conn, uid_t allowed)
{
	struct ucred cr;
	socklen_t l = sizeof cr;
	struct timeval tv = { KEEPER_SEND_TIMEOUT_MS / 1000, (KEEPER_SEND_TIMEOUT_MS % 1000) * 1000 };
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) return conn;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0 || cr.uid != allowed) {
		table.refused++;
		if (now_ms() - refused_logged_ms >= REFUSED_LOG_INTERVAL_MS) {
			refused_logged_ms = now_ms();
			say("refused a peer of uid %d (pid %d): only uid %u may connect (%u refused so far)",
			    (int)cr.uid, (int)cr.pid, (unsigned)allowed, table.refused);
		}
		close(fd);
		return conn;
	}
	/* The connection blocks; a peer that does not read is dropped after the timeout. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (conn >= 0) {
		say("a new agent connection (pid %d) replaces the current one", (int)cr.pid);
		close(conn);
	}
	hello(fd);
	return fd;
}

/* One message from the agent. Returns the connection, or -1 when it was dropped. */
static int serve(int conn)
{
	struct iovec iov = { .iov_base = in, .iov_len = sizeof in };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf };
	struct cmsghdr *c;
	int fds[KEEPER_FDS_PER_MSG];
	size_t nfds = 0, i;
	const char *why = NULL;
	int dump = 0;
	ssize_t n = recvmsg(conn, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) return conn;
	for (c = CMSG_FIRSTHDR(&mh); n >= 0 && c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
			if (nfds < KEEPER_FDS_PER_MSG) fds[nfds++] = fd;
			else close(fd);
		}
	}
	if (n == 0) {
		say("agent disconnected; keeping %u fds", table.used);
		close(conn);
		return -1;
	}
	if (n < 0) why = strerror(errno);
	else if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) why = "message truncated";
	else if (table_check(&table, in, (size_t)n, nfds, &dump, &why) == 0) {
		table_apply(&table, in, (size_t)n, fds);
		if (dump && table_dump(&table, conn) < 0) {
			say("dump failed: %s; dropping the connection", strerror(errno));
			close(conn);
			return -1;
		}
		return conn;
	}
	for (i = 0; i < nfds; i++) close(fds[i]);
	say("dropping the agent connection: %s", why);
	close(conn);
	return -1;
}

static unsigned long number(const char *flag, const char *v, unsigned long max)
{
	char *end;
	unsigned long n;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || *v == '\0' || *end != '\0' || n > max) die(KEEPER_EXIT_USAGE, "%s: not a number up to %lu: %s", flag, max, v);
	return n;
}

int main(int argc, char **argv)
{
	static char path[sizeof ((struct sockaddr_un *)0)->sun_path + 64];
	const char *run_dir = NULL, *socket_path = NULL;
	unsigned long max = KEEPER_SLOTS_DEFAULT;
	int max_given = 0;
	uid_t allowed = geteuid();
	struct rlimit rl;
	struct pollfd pf[2];
	int lfd, conn = -1, i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help")) { fputs(usage_text, stdout); return 0; }
		if (!strcmp(a, "--version")) { puts(PROG " " FDSTORE_VERSION); return 0; }
		if (i + 1 >= argc) die(KEEPER_EXIT_USAGE, "unknown or incomplete option %s (see --help)", a);
		if (!strcmp(a, "--run-dir")) run_dir = argv[++i];
		else if (!strcmp(a, "--socket")) socket_path = argv[++i];
		else if (!strcmp(a, "--max-fds")) max = number(a, argv[++i], KEEPER_SLOTS_MAX), max_given = 1;
		else if (!strcmp(a, "--uid")) allowed = (uid_t)number(a, argv[++i], 0xfffffffeUL);
		else die(KEEPER_EXIT_USAGE, "unknown option %s (see --help)", a);
	}
	if ((run_dir == NULL) == (socket_path == NULL)) die(KEEPER_EXIT_USAGE, "give one of --run-dir or --socket (see --help)");
	if (max == 0) die(KEEPER_EXIT_USAGE, "--max-fds must be at least 1");

	/* Same-uid apps must not read our fds through /proc/<keeper>/fd. */
	if (prctl(PR_SET_DUMPABLE, 0) < 0) die(KEEPER_EXIT_SYSCALL, "prctl(PR_SET_DUMPABLE): %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) die(KEEPER_EXIT_SYSCALL, "getrlimit: %s", strerror(errno));
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* Without --max-fds: as many as the limit allows, up to the default. */
	if (!max_given && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < max + RESERVED_FDS && rl.rlim_cur > RESERVED_FDS)
		max = rl.rlim_cur - RESERVED_FDS;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < max + RESERVED_FDS)
		die(KEEPER_EXIT_USAGE, "--max-fds %lu needs RLIMIT_NOFILE >= %lu, have %lu", max, max + RESERVED_FDS, (unsigned long)rl.rlim_cur);
	if (table_init(&table, (uint32_t)max) < 0) die(KEEPER_EXIT_SYSCALL, "cannot reserve %lu slots: %s", max, strerror(errno));

	if (run_dir) {
		snprintf(path, sizeof path, "%s/%s", run_dir, KEEPER_DIR);
		check_dir(path, 1);
		snprintf(path, sizeof path, "%s/%s/%s", run_dir, KEEPER_DIR, KEEPER_SOCKET);
	} else {
		char *slash;
		snprintf(path, sizeof path, "%s", socket_path);
		slash = strrchr(path, '/');
		if (slash && slash != path) {
			*slash = '\0';
			check_dir(path, 0);
			*slash = '/';
		}
	}
	lfd = listen_at(path);
	say("keeping up to %lu fds at %s for uid %u", max, path, (unsigned)allowed);

	for (;;) {
		pf[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		pf[1] = (struct pollfd){ .fd = conn, .events = POLLIN };
		if (poll(pf, conn >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR) continue;
			die(KEEPER_EXIT_SYSCALL, "poll: %s", strerror(errno));
		}
		if (conn >= 0 && (pf[1].revents & (POLLIN | POLLHUP | POLLERR))) conn = serve(conn);
		if (pf[0].revents & POLLIN) conn = accept_peer(lfd, conn, allowed);
	}
}
