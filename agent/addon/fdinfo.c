/* What `fdstore ls` shows about one stored fd: systemd-analyze fdstore's columns
 * plus the socket's family, type and addresses. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "scm.h"

/* Renders like ss(8): "127.0.0.1:80", "[::1]:80", "/path", "@abstract"; unnamed
 * and unknown families render as "". Returns the length (abstract names may
 * contain NULs). */
static size_t render_addr(const struct sockaddr_storage *ss, socklen_t len, char *out) {
  char host[INET6_ADDRSTRLEN];
  int n = 0;
  out[0] = '\0';
  if (len < sizeof(sa_family_t)) return 0;
  if (ss->ss_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *in = (const void *)ss;
    if (!inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host))) return 0;
    n = snprintf(out, FDINFO_ADDR_MAX, "%s:%u", host, ntohs(in->sin_port));
  } else if (ss->ss_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *in6 = (const void *)ss;
    if (!inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host))) return 0;
    if (in6->sin6_scope_id)
      n = snprintf(out, FDINFO_ADDR_MAX, "[%s%%%u]:%u", host, in6->sin6_scope_id, ntohs(in6->sin6_port));
    else
      n = snprintf(out, FDINFO_ADDR_MAX, "[%s]:%u", host, ntohs(in6->sin6_port));
  } else if (ss->ss_family == AF_UNIX) {
    const struct sockaddr_un *un = (const void *)ss;
    size_t plen = len - offsetof(struct sockaddr_un, sun_path);
    if (len <= offsetof(struct sockaddr_un, sun_path) || plen == 0) return 0;
    if (plen > sizeof(un->sun_path)) plen = sizeof(un->sun_path);
    if (un->sun_path[0] == '\0') {
      /* Abstract: the name is exactly plen - 1 bytes after the leading NUL. */
      out[0] = '@';
      memcpy(out + 1, un->sun_path + 1, plen - 1);
      out[plen] = '\0';
      return plen;
    }
    plen = strnlen(un->sun_path, plen);
    memcpy(out, un->sun_path, plen);
    out[plen] = '\0';
    return plen;
  }
  if (n < 0) n = 0;
  if (n >= FDINFO_ADDR_MAX) n = FDINFO_ADDR_MAX - 1;
  return (size_t)n;
}

static int sockopt_int(int fd, int opt) {
  int v = -1;
  socklen_t len = sizeof(v);
  if (getsockopt(fd, SOL_SOCKET, opt, &v, &len) < 0) return -1;
  return v;
}

int fdinfo_get(int fd, struct fd_info *out) {
  struct stat st;
  struct sockaddr_storage ss;
  socklen_t len;
  char link[64];
  ssize_t n;
  int fl;

  memset(out, 0, sizeof(*out));
  if (fstat(fd, &st) < 0) return -errno;
  out->mode = st.st_mode;
  out->dev = (double)st.st_dev;
  out->ino = (double)st.st_ino;
  out->rdev = (double)st.st_rdev;
  fl = fcntl(fd, F_GETFL);
  out->flags = fl < 0 ? 0 : (fl & ~FDSTORE_O_LARGEFILE);

  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  n = readlink(link, out->path, sizeof(out->path) - 1);
  out->path[n < 0 ? 0 : n] = '\0';

  out->family = out->sock_type = -1;
  if (!S_ISSOCK(st.st_mode)) return 0;
  out->family = sockopt_int(fd, SO_DOMAIN);
  out->sock_type = sockopt_int(fd, SO_TYPE);
  out->listening = sockopt_int(fd, SO_ACCEPTCONN) == 1;
  len = sizeof(ss);
  memset(&ss, 0, sizeof(ss));
  if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) out->local_len = render_addr(&ss, len, out->local);
  len = sizeof(ss);
  memset(&ss, 0, sizeof(ss));
  if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) out->peer_len = render_addr(&ss, len, out->peer);
  return 0;
}
