/* Socket activation (systemd's .socket units): the agent binds the sockets named
 * in a container's `listen:` and passes them first on every restore.
 *
 * Mirrors systemd's socket_address_listen() (src/shared/socket-label.c) with the
 * .socket defaults, so an app sees what it would see under systemd:
 *   - SO_REUSEADDR on every socket (systemd sets it unconditionally);
 *   - SO_REUSEPORT only when asked (ReusePort=), only for AF_INET/AF_INET6;
 *   - IPV6_V6ONLY left alone: BindIPv6Only=default follows the kernel's
 *     net.ipv6.bindv6only (0 unless changed), so "[::]:80" is dual-stack;
 *   - a path that is already bound (EADDRINUSE) is unlinked and bound again, but
 *     only if it is a socket (systemd unlinks whatever is there); SocketMode=0666;
 *   - listen(backlog) for stream sockets only;
 *   - NonBlocking=no: the fd is created without O_NONBLOCK (systemd creates it
 *     non-blocking and clears the flag before every exec; act_set_nonblock() is
 *     that step, since an app may set O_NONBLOCK on the shared file description).
 * Every fd is close-on-exec; the launcher clears FD_CLOEXEC on its copies. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "scm.h"

union act_addr {
  struct sockaddr sa;
  struct sockaddr_in in;
  struct sockaddr_in6 in6;
  struct sockaddr_un un;
};

/* "PORT" part: 0..65535, decimal digits only. */
static int parse_port(const char *s, in_port_t *out) {
  char *end;
  unsigned long v;
  if (*s < '0' || *s > '9') return -EINVAL;
  errno = 0;
  v = strtoul(s, &end, 10);
  if (errno || *end != '\0' || v > 65535) return -EINVAL;
  *out = htons((in_port_t)v);
  return 0;
}

/* "A.B.C.D:PORT" or "[V6]:PORT"; IP literals only (no DNS in the agent). */
static int parse_inet(const char *address, union act_addr *a, socklen_t *len) {
  char host[INET6_ADDRSTRLEN + 1];
  const char *colon;
  size_t n;
  in_port_t port;
  memset(a, 0, sizeof(*a));
  if (address[0] == '[') {
    const char *close = strchr(address, ']');
    if (!close || close[1] != ':') return -EINVAL;
    n = (size_t)(close - address - 1);
    if (n == 0 || n >= sizeof(host)) return -EINVAL;
    memcpy(host, address + 1, n);
    host[n] = '\0';
    if (parse_port(close + 2, &port) < 0) return -EINVAL;
    if (inet_pton(AF_INET6, host, &a->in6.sin6_addr) != 1) return -EINVAL;
    a->in6.sin6_family = AF_INET6;
    a->in6.sin6_port = port;
    *len = sizeof(a->in6);
    return AF_INET6;
  }
  colon = strrchr(address, ':');
  if (!colon) return -EINVAL;
  n = (size_t)(colon - address);
  if (n == 0 || n >= sizeof(host)) return -EINVAL;
  memcpy(host, address, n);
  host[n] = '\0';
  if (parse_port(colon + 1, &port) < 0) return -EINVAL;
  if (inet_pton(AF_INET, host, &a->in.sin_addr) != 1) return -EINVAL;
  a->in.sin_family = AF_INET;
  a->in.sin_port = port;
  *len = sizeof(a->in);
  return AF_INET;
}

/* "/absolute/path" or "@abstract" (no terminating NUL in the abstract name). */
static int parse_unix(const char *address, union act_addr *a, socklen_t *len) {
  size_t n = strlen(address);
  memset(a, 0, sizeof(*a));
  a->un.sun_family = AF_UNIX;
  if (address[0] == '@') {
    if (n < 2 || n > sizeof(a->un.sun_path) - 1) return -EINVAL;
    memcpy(a->un.sun_path + 1, address + 1, n - 1);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    return AF_UNIX;
  }
  if (address[0] != '/') return -EINVAL;
  if (n >= sizeof(a->un.sun_path)) return -ENAMETOOLONG;
  memcpy(a->un.sun_path, address, n);
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  return AF_UNIX;
}

static int set_int(int fd, int level, int opt, int v) {
  return setsockopt(fd, level, opt, &v, sizeof(v)) < 0 ? -errno : 0;
}

static int bind_unix_path(int fd, const union act_addr *a, socklen_t len) {
  const char *path = a->un.sun_path;
  struct stat st;
  if (bind(fd, &a->sa, len) == 0) return 0;
  if (errno != EADDRINUSE) return -errno;
  /* A socket file left by an earlier agent (or a live socket someone else bound:
   * systemd takes the name over too). Anything else is the user's file: refuse. */
  if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode)) return -EADDRINUSE;
  if (unlink(path) < 0) return -EADDRINUSE;
  return bind(fd, &a->sa, len) < 0 ? -errno : 0;
}

int act_listen(int kind, const char *address, int backlog, int reuse_port) {
  union act_addr a;
  socklen_t len = 0;
  int family, type, fd, r;
  switch (kind) {
  case ACT_TCP: type = SOCK_STREAM; family = parse_inet(address, &a, &len); break;
  case ACT_UDP: type = SOCK_DGRAM; family = parse_inet(address, &a, &len); break;
  case ACT_UNIX_STREAM: type = SOCK_STREAM; family = parse_unix(address, &a, &len); break;
  case ACT_UNIX_DGRAM: type = SOCK_DGRAM; family = parse_unix(address, &a, &len); break;
  default: return -EINVAL;
  }
  if (family < 0) return family;
  if ((fd = socket(family, type | SOCK_CLOEXEC, 0)) < 0) return -errno;
  if (reuse_port && family != AF_UNIX && (r = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1)) < 0) goto fail;
  if ((r = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1)) < 0) goto fail;
  if (family == AF_UNIX && a.un.sun_path[0] != '\0') {
    if ((r = bind_unix_path(fd, &a, len)) < 0) goto fail;
    /* SocketMode=0666: apps run as any uid and connecting needs write permission.
     * chmod after bind rather than umask, which is process-wide (libuv threads). */
    if (chmod(a.un.sun_path, 0666) < 0) {
      r = -errno;
      goto fail;
    }
  } else if (bind(fd, &a.sa, len) < 0) {
    r = -errno;
    goto fail;
  }
  if (type == SOCK_STREAM && listen(fd, backlog) < 0) {
    r = -errno;
    goto fail;
  }
  return fd;
fail:
  close(fd);
  return r;
}

int act_set_nonblock(int fd, int on) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return -errno;
  if (!!(fl & O_NONBLOCK) == !!on) return 0;
  return fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK)) < 0 ? -errno : 0;
}
