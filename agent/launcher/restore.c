/* Fetching the fd store from the agent: connect (waiting for an agent that is not
 * there yet), read the header, receive the batches, put every fd at its final
 * number. Any failure of a live agent is fatal (111): starting the app without
 * the fds it stored would silently drop what the store exists to keep. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "launcher.h"

#define FDNAMES_PREFIX "LISTEN_FDNAMES="

/* One message at most FDSTORE_RESTORE_MSG_MAX bytes, + 1 for a terminating NUL.
 * Static: the launcher is single-threaded and fetches once. */
static char msg[FDSTORE_RESTORE_MSG_MAX + 1];
static union {
	struct cmsghdr align;
	char buf[CMSG_SPACE(sizeof(int) * FDSTORE_FDS_PER_MSG)];
} ctl;

static const char *agent_path;

_Noreturn static void malformed(const char *what)
{
	die(FDSTORE_EXIT_SYSCALL, "agent at %s sent a malformed restore message: %s", agent_path, what);
}

/* Returns a connected socket, or -1 when nobody listened for wait_ms.
 * Non-blocking, so that a live agent whose backlog is full (EAGAIN) cannot hang
 * us in connect(); every read below goes through poll() anyway. */
static int connect_agent(long wait_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(agent_path);
	if (len >= sizeof sa.sun_path)
		die(FDSTORE_EXIT_USAGE, "%s: path too long for a unix socket (%zu bytes, at most %zu)",
		    agent_path, len, sizeof sa.sun_path - 1);
	memcpy(sa.sun_path, agent_path, len + 1);

	long long deadline = now_ms() + wait_ms;
	for (;;) {
		int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (s < 0)
			die_errno(FDSTORE_EXIT_SYSCALL, "socket");
		if (connect(s, (struct sockaddr *)&sa, sizeof sa) == 0)
			return s;
		int e = errno;
		close(s);
		/* ENOENT: the agent has not created the socket yet; ECONNREFUSED: a socket
		 * file left by an agent that is gone. Anything else is a real error. */
		if (e != ENOENT && e != ECONNREFUSED && e != EAGAIN)
			die(FDSTORE_EXIT_SYSCALL, "connect %s: %s", agent_path, strerror(e));
		long long left = deadline - now_ms();
		if (left <= 0) {
			if (e == EAGAIN)
				die(FDSTORE_EXIT_SYSCALL, "agent at %s accepted no connection in %ld ms",
				    agent_path, wait_ms);
			return -1;
		}
		long ms = left < RETRY_MS ? (long)left : RETRY_MS;
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
	}
}

/* Receives the next message into msg (NUL-terminated) and its fds into fds.
 * Returns its length; 0 means the agent closed the connection. */
static size_t recv_msg(int s, long timeout_ms, int *fds, unsigned *nfds)
{
	for (;;) {
		struct pollfd p = { .fd = s, .events = POLLIN };
		int k = poll(&p, 1, (int)timeout_ms);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			die_errno(FDSTORE_EXIT_SYSCALL, "poll");
		if (k == 0)
			die(FDSTORE_EXIT_SYSCALL, "agent at %s sent nothing for %ld ms (FDSTORE_EXEC_TIMEOUT_MS)",
			    agent_path, timeout_ms);

		struct iovec iov = { msg, FDSTORE_RESTORE_MSG_MAX };
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf,
		};
		ssize_t len = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);
		if (len < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (len < 0)
			die(FDSTORE_EXIT_SYSCALL, "receive from %s: %s", agent_path, strerror(errno));

		/* Fds we cannot account for need no closing: every error path exits. */
		*nfds = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			unsigned k2 = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			if (*nfds + k2 > FDSTORE_FDS_PER_MSG)
				malformed("more than 253 fds in one message");
			memcpy(fds + *nfds, CMSG_DATA(c), k2 * sizeof(int));
			*nfds += k2;
		}
		if (mh.msg_flags & MSG_TRUNC)
			malformed("message longer than the protocol allows");
		if (mh.msg_flags & MSG_CTRUNC)
			malformed("fds did not fit (control data truncated)");
		if (memchr(msg, '\0', (size_t)len))
			malformed("NUL byte");
		msg[len] = '\0';
		return (size_t)len;
	}
}

static unsigned long long parse_number(const char *key, const char *v, unsigned long long max)
{
	unsigned long long n = 0;
	if (*v == '\0')
		malformed(key);
	for (; *v; v++) {
		if (*v < '0' || *v > '9')
			malformed(key);
		unsigned d = (unsigned)(*v - '0');
		if (n > (max - d) / 10)
			malformed(key);
		n = n * 10 + d;
	}
	return n;
}

static void parse_header(size_t len, struct restore *r)
{
	size_t ml = strlen(FDSTORE_PROTO_MAGIC);
	if (len < ml || memcmp(msg, FDSTORE_PROTO_MAGIC, ml) != 0)
		malformed("header does not start with \"FDSTORE-RESTORE 1\"");
	if (msg[len - 1] != '\n')
		malformed("header does not end with a newline");
	int have_fds = 0;
	for (char *line = msg + ml; *line; ) {
		char *nl = strchr(line, '\n');
		*nl = '\0';
		char *eq = strchr(line, '=');
		if (!eq)
			malformed("header line without '='");
		*eq = '\0';
		const char *v = eq + 1;
		/* Bounded so that 3 + fds and the names buffer cannot overflow an int. */
		if (!strcmp(line, "fds")) {
			r->n = (unsigned)parse_number("fds=", v, INT_MAX / 2);
			have_fds = 1;
		} else if (!strcmp(line, "notify")) {
			r->notify = (int)parse_number("notify=", v, 1);
		} else if (!strcmp(line, "fdstore")) {
			r->fdstore_max = parse_number("fdstore=", v, ULLONG_MAX);
		} else if (!strcmp(line, "watchdog_usec")) {
			r->watchdog_usec = parse_number("watchdog_usec=", v, ULLONG_MAX);
		}
		/* Unknown keys are ignored: a newer agent may say more. */
		line = nl + 1;
	}
	if (!have_fds)
		malformed("header without fds=");
}

/* Makes room for n fds at 3.., the socket above them, one batch of temporaries
 * (an fd inherited into the target range shifts a whole batch above the targets)
 * and a few spare: FDSTORE_LAUNCHER_RESERVED_FDS. The soft limit is raised only
 * when needed, and left raised for the app: it starts with n + 3 fds open and
 * needs numbers above them. Not enough even at the hard limit: one clear line
 * naming the limit, before any fd moved (the agent checks the same sum against
 * its own limit at start, but the app's container may have a lower one). */
static void fit_limit(unsigned n)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		die_errno(FDSTORE_EXIT_SYSCALL, "getrlimit RLIMIT_NOFILE");
	rlim_t want = (rlim_t)n + FDSTORE_LAUNCHER_RESERVED_FDS;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			die_errno(FDSTORE_EXIT_SYSCALL, "setrlimit RLIMIT_NOFILE");
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
		die(FDSTORE_EXIT_SYSCALL,
		    "%u stored fds need RLIMIT_NOFILE >= %llu (%u + %d for stdio, the socket and one batch in transit), "
		    "but this container's hard limit is %llu: raise its nofile limit or lower fileDescriptorStoreMax",
		    n, (unsigned long long)want, n, FDSTORE_LAUNCHER_RESERVED_FDS, (unsigned long long)rl.rlim_max);
}

/* Moves fd to the lowest free number >= min, still close-on-exec. */
static int move_above(int fd, int min)
{
	int m = fcntl(fd, F_DUPFD_CLOEXEC, min);
	if (m < 0)
		die_errno(FDSTORE_EXIT_SYSCALL, "fcntl F_DUPFD_CLOEXEC");
	close(fd);
	return m;
}

/* Puts the k fds of one batch, positions first .. first+k-1 of the store, at
 * 3+first .. 3+first+k-1 and clears their FD_CLOEXEC.
 *
 * Scheme, with end = 3 + N (one past the last target):
 *  - The socket was moved to >= end after the header, and earlier batches
 *    already fill 3 .. 3+first-1, so the only fds below end that are not ours are
 *    stdio and whatever the runtime leaked into the target range.
 *  - Pass 1: a batch fd below end that is not at its own target is moved to
 *    >= end. That includes one the kernel put at 0..2 because stdio was closed:
 *    its slot is freed again, so stdio stays as it was.
 *  - Pass 2: every batch fd is now at its target or >= end, so dup2 into a target
 *    can only overwrite a leaked fd (as systemd's exec would), never one of ours.
 *    dup2 clears FD_CLOEXEC; an fd already in place gets F_SETFD 0 instead.
 * Each fd costs a constant number of syscalls, with no search for who holds a
 * slot, so N fds take O(N). At most one batch of temporaries exists at a time, so
 * the process never holds more than N + 253 + a few fds (2N would not fit 19,000
 * fds under a 20,000 limit). Normally the kernel hands out the lowest free
 * numbers, which are exactly the targets, and nothing moves at all. */
static void place(int *fds, unsigned k, unsigned first, int end)
{
	for (unsigned i = 0; i < k; i++) {
		int target = FDSTORE_LISTEN_FDS_START + (int)(first + i);
		if (fds[i] != target && fds[i] < end)
			fds[i] = move_above(fds[i], end);
	}
	for (unsigned i = 0; i < k; i++) {
		int target = FDSTORE_LISTEN_FDS_START + (int)(first + i);
		if (fds[i] == target) {
			if (fcntl(target, F_SETFD, 0) < 0)
				die_errno(FDSTORE_EXIT_SYSCALL, "fcntl F_SETFD");
			continue;
		}
		if (dup2(fds[i], target) < 0)
			die_errno(FDSTORE_EXIT_SYSCALL, "dup2");
		close(fds[i]);
	}
}

/* Checks the names of a batch ("F\n" then one "name\n" per fd) and appends them
 * to r->fdnames_env, growing it by exactly their size. */
static void add_names(size_t len, unsigned nfds, unsigned first, struct restore *r)
{
	if (msg[len - 1] != '\n')
		malformed("batch does not end with a newline");
	unsigned count = 0;
	size_t bytes = 0;
	for (char *name = msg + 2; *name; ) {
		char *nl = strchr(name, '\n');
		size_t nlen = (size_t)(nl - name);
		/* An empty name is valid (F3.14): FDNAME= stores it, LISTEN_FDNAMES gets an empty field. */
		if (nlen > FDSTORE_NAME_MAX)
			malformed("fd name longer than 255 bytes");
		if (memchr(name, ':', nlen))
			malformed("fd name contains ':'");
		count++;
		bytes += nlen + 1;      /* the name and the ':' before it */
		name = nl + 1;
	}
	if (count != nfds)
		malformed("number of names differs from number of fds");

	/* The first name has no ':' before it, so the NUL takes its byte. */
	size_t old = first == 0 ? strlen(FDNAMES_PREFIX) : r->fdnames_len;
	char *buf = realloc(r->fdnames_env, old + bytes + (first == 0 ? 0 : 1));
	if (!buf)
		die(FDSTORE_EXIT_SYSCALL, "out of memory for %u fd names", r->n);
	if (first == 0)
		memcpy(buf, FDNAMES_PREFIX, old);
	char *out = buf + old;
	unsigned index = first;
	for (char *name = msg + 2; *name; index++) {
		char *nl = strchr(name, '\n');
		/* By position, not by output length: names may be empty. */
		if (index > 0)
			*out++ = ':';
		memcpy(out, name, (size_t)(nl - name));
		out += nl - name;
		name = nl + 1;
	}
	*out = '\0';
	r->fdnames_len = (size_t)(out - buf);
	r->fdnames_env = buf;
}

static int is_msg(size_t len, const char *tag)
{
	return len >= 2 && msg[0] == tag[0] && msg[1] == tag[1];
}

static void check_abort(size_t len)
{
	if (len >= 2 && msg[0] == 'X' && (msg[1] == ' ' || msg[1] == '\n')) {
		char *nl = strchr(msg, '\n');
		*nl = '\0';
		/* Bounded: the reason is the agent's text, the line is ours. */
		die(FDSTORE_EXIT_SYSCALL, "agent at %s aborted the restore: %.512s", agent_path,
		    msg[1] == ' ' ? msg + 2 : "(no reason given)");
	}
}

void restore_fetch(const char *path, long wait_ms, long timeout_ms, struct restore *r)
{
	memset(r, 0, sizeof *r);
	r->notify = 1;
	agent_path = path;
	int s = connect_agent(wait_ms);
	if (s < 0)
		return;
	r->agent = 1;

	int fds[FDSTORE_FDS_PER_MSG];
	unsigned nfds;
	size_t len = recv_msg(s, timeout_ms, fds, &nfds);
	if (len == 0)
		die(FDSTORE_EXIT_SYSCALL, "agent at %s closed the connection before the header", path);
	check_abort(len);
	if (nfds)
		malformed("fds attached to the header");
	parse_header(len, r);

	int end = FDSTORE_LISTEN_FDS_START + (int)r->n;
	if (r->n > 0) {
		fit_limit(r->n);
		if (s < end)
			s = move_above(s, end);
	}

	unsigned got = 0;
	for (;;) {
		len = recv_msg(s, timeout_ms, fds, &nfds);
		if (len == 0)
			die(FDSTORE_EXIT_SYSCALL, "agent at %s closed the connection after %u of %u fds",
			    path, got, r->n);
		check_abort(len);
		if (len == 2 && is_msg(len, "E\n")) {
			if (nfds)
				malformed("fds attached to the end message");
			if (got != r->n)
				die(FDSTORE_EXIT_SYSCALL, "agent at %s sent %u fds, its header said %u",
				    path, got, r->n);
			break;
		}
		if (!is_msg(len, "F\n"))
			malformed("unknown message");
		if (nfds == 0)
			malformed("batch without fds");
		if (nfds > r->n - got)
			die(FDSTORE_EXIT_SYSCALL, "agent at %s sent more fds than its header said (%u)",
			    path, r->n);
		add_names(len, nfds, got, r);
		place(fds, nfds, got, end);
		got += nfds;
	}
	close(s);
}
