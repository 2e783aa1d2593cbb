/* Sockets that carry fds: the notify socket (datagrams with SCM_CREDENTIALS and
 * SCM_RIGHTS), the restore/admin listeners, and sending fds back out. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "scm.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

static int fill_addr(struct sockaddr_un *sa, const char *path) {
  size_t n = strlen(path);
  memset(sa, 0, sizeof(*sa));
  sa->sun_family = AF_UNIX;
  /* Filesystem paths only; room for the terminating NUL keeps the name portable. */
  if (n == 0) return -EINVAL;
  if (n >= sizeof(sa->sun_path)) return -ENAMETOOLONG;
  memcpy(sa->sun_path, path, n);
  return 0;
}

static int fail_close(int fd) {
  int err = errno;
  close(fd);
  return -err;
}

/* A stale socket file from an earlier agent would make bind() fail with EADDRINUSE;
 * our directory is ours, so replacing it is safe. */
static int bind_path(int fd, const char *path) {
  struct sockaddr_un sa;
  int r = fill_addr(&sa, path);
  if (r < 0) return r;
  if (unlink(path) < 0 && errno != ENOENT) return -errno;
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) return -errno;
  return 0;
}

int scm_notify_socket(const char *path, int rcvbuf) {
  int one = 1, r;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  /* Without SO_PASSCRED the kernel attaches no credentials and every datagram
   * would be dropped as credential-less (D1.16). */
  if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) return fail_close(fd);
  /* SO_RCVBUFFORCE needs CAP_NET_ADMIN, which a pod usually lacks; SO_RCVBUF is
   * then capped by net.core.rmem_max but still better than the default. */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0 &&
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0)
    return fail_close(fd);
  r = bind_path(fd, path);
  if (r < 0) {
    close(fd);
    return r;
  }
  return fd;
}

int scm_listen(const char *path, int type, int backlog) {
  int r, fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  r = bind_path(fd, path);
  if (r < 0) {
    close(fd);
    return r;
  }
  if (listen(fd, backlog) < 0) return fail_close(fd);
  return fd;
}

void scm_notify_free(struct scm_notify *n) { free(n); }

static size_t cmsg_fd_count(const struct cmsghdr *c) {
  return (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
}

int scm_recv_notify(int fd, size_t max_bytes, size_t max_fds, struct scm_notify **out) {
  /* Room for the credentials, an SCM_PIDFD should SO_PASSPIDFD ever be enabled,
   * and max_fds fds (S8.4). */
  size_t ctl_len = CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int)) +
                   CMSG_SPACE(max_fds * sizeof(int));
  /* Unused credential/pidfd room can hold fds too, so size the fd array by the
   * whole control buffer, not by max_fds. */
  size_t fd_cap = ctl_len / sizeof(int);
  size_t size = sizeof(struct scm_notify) + fd_cap * (sizeof(int) + 4 * sizeof(double)) + max_bytes + 1;
  struct scm_notify *n;
  union {
    struct cmsghdr align;
    char buf[1];
  } *ctl;
  struct iovec iov;
  struct msghdr msg;
  struct cmsghdr *c;
  ssize_t got;
  size_t i;

  n = calloc(1, size);
  ctl = calloc(1, ctl_len);
  if (!n || !ctl) {
    free(n);
    free(ctl);
    return -ENOMEM;
  }
  n->stats = (double *)(n + 1);
  n->fds = (int *)(n->stats + 4 * fd_cap);
  n->data = (char *)(n->fds + fd_cap);

  iov.iov_base = n->data;
  iov.iov_len = max_bytes;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl;
  msg.msg_controllen = ctl_len;

  got = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (got < 0) {
    int err = (errno == EINTR || errno == EWOULDBLOCK) ? EAGAIN : errno;
    free(ctl);
    free(n);
    return -err;
  }

  for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET) continue;
    if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
      struct ucred uc;
      memcpy(&uc, CMSG_DATA(c), sizeof(uc));
      n->has_creds = 1;
      n->pid = uc.pid;
      n->uid = uc.uid;
      n->gid = uc.gid;
    } else if (c->cmsg_type == SCM_RIGHTS) {
      size_t k = cmsg_fd_count(c);
      for (i = 0; i < k; i++) {
        int rfd;
        memcpy(&rfd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        if (n->nfds < fd_cap) n->fds[n->nfds++] = rfd;
        else close(rfd); /* cannot happen: fd_cap covers the whole buffer */
      }
    } else if (c->cmsg_type == SCM_PIDFD && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int pfd;
      memcpy(&pfd, CMSG_DATA(c), sizeof(int));
      close(pfd);
    }
  }
  free(ctl);

  n->truncated = (msg.msg_flags & MSG_TRUNC) != 0;
  n->ctruncated = (msg.msg_flags & MSG_CTRUNC) != 0;
  if (n->truncated || n->ctruncated) {
    /* A datagram we cannot see whole is dropped (D1.14, D1.15); its fds must not
     * reach Node at all. */
    for (i = 0; i < n->nfds; i++) close(n->fds[i]);
    n->closed = (int)n->nfds;
    n->nfds = 0;
    n->len = 0;
  } else {
    n->len = (size_t)got;
    for (i = 0; i < n->nfds; i++) sys_fd_stats(n->fds[i], n->stats + 4 * i);
  }
  *out = n;
  return 0;
}

int scm_accept(int fd, struct scm_peer *out) {
  struct ucred uc;
  socklen_t len = sizeof(uc);
  int pidfd = -1, cfd;

  cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (cfd < 0) return (errno == EINTR || errno == EWOULDBLOCK) ? -EAGAIN : -errno;
  if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0) return fail_close(cfd);
  /* SO_PEERPIDFD (Linux 6.5) pins the peer process so a recycled pid cannot
   * impersonate it; older kernels answer ENOPROTOOPT and we go on without. */
  len = sizeof(pidfd);
  if (getsockopt(cfd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0) {
    pidfd = -1;
  } else {
    int fl = fcntl(pidfd, F_GETFD);
    if (fl >= 0 && !(fl & FD_CLOEXEC)) fcntl(pidfd, F_SETFD, fl | FD_CLOEXEC);
  }
  out->fd = cfd;
  out->pid = uc.pid;
  out->uid = uc.uid;
  out->gid = uc.gid;
  out->pidfd = pidfd;
  return 0;
}

ssize_t scm_send_fds(int fd, const void *data, size_t len, const int *fds, size_t nfds) {
  struct iovec iov;
  struct msghdr msg;
  char *ctl = NULL;
  ssize_t r;

  iov.iov_base = (void *)data;
  iov.iov_len = len;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (nfds > 0) {
    struct cmsghdr *c;
    size_t ctl_len = CMSG_SPACE(nfds * sizeof(int));
    ctl = calloc(1, ctl_len);
    if (!ctl) return -ENOMEM;
    msg.msg_control = ctl;
    msg.msg_controllen = ctl_len;
    c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
  }
  r = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (r < 0) r = (errno == EWOULDBLOCK) ? -EAGAIN : -errno;
  free(ctl);
  return r;
}

ssize_t scm_recv(int fd, void *buf, size_t max) {
  ssize_t r = recv(fd, buf, max, MSG_DONTWAIT);
  if (r < 0) return (errno == EINTR || errno == EWOULDBLOCK) ? -EAGAIN : -errno;
  return r;
}

int scm_close(int fd) {
  /* Linux releases the fd even when close() reports EINTR; retrying could close
   * an fd another part of the process has just been given. */
  if (close(fd) < 0 && errno != EINTR) return -errno;
  return 0;
}
