/* The agent's side of the keeper connection (docs/keeper.md): connect with the
 * peer's credentials, a send that waits a bounded time for room, and a bounded wait
 * for a reply at start. Pure POSIX like scm.c; addon.c is the only caller. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "scm.h"

static long long mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int keeper_connect(const char *path, struct scm_peer *out) {
  struct sockaddr_un a;
  struct ucred cr;
  socklen_t l = sizeof cr;
  int fd;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof a.sun_path) return -ENAMETOOLONG;
  strcpy(a.sun_path, path);
  fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -errno;
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
      getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0) {
    int e = errno == EINPROGRESS ? EAGAIN : errno;
    close(fd);
    return -e;
  }
  out->fd = fd;
  out->pid = cr.pid;
  out->uid = cr.uid;
  out->gid = cr.gid;
  out->pidfd = -1;
  return 0;
}

int keeper_wait(int fd, int events, int timeout_ms) {
  long long deadline = mono_ms() + timeout_ms;
  for (;;) {
    struct pollfd p = { .fd = fd, .events = (short)events };
    long long left = deadline - mono_ms();
    int r = poll(&p, 1, left > 0 ? (int)left : 0);
    if (r > 0) return 1;
    if (r == 0) return 0;
    if (errno != EINTR) return -errno;
  }
}

ssize_t keeper_send(int fd, const void *data, size_t len, const int *fds, size_t nfds, int timeout_ms) {
  long long deadline = mono_ms() + timeout_ms;
  for (;;) {
    ssize_t r = scm_send_fds(fd, data, len, fds, nfds);
    long long left;
    if (r != -EAGAIN) return r;
    left = deadline - mono_ms();
    if (left <= 0) return -ETIMEDOUT;
    r = keeper_wait(fd, POLLOUT, (int)left);
    if (r < 0) return r;
  }
}
