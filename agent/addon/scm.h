/* Pure POSIX/Linux half of the addon: every function returns plain data or
 * -errno, opens nothing it does not hand back or close, and knows nothing of Node.
 * addon.c is the only caller. */
#ifndef FDSTORE_SCM_H
#define FDSTORE_SCM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The kernel keeps O_LARGEFILE in f_flags on 64-bit, but glibc defines it as 0
 * there, so it cannot be masked with the libc constant. Values from the kernel's
 * asm/fcntl.h per architecture. */
#if defined(__arm__)
#define FDSTORE_O_LARGEFILE 0400000
#elif defined(__powerpc__) || defined(__powerpc64__)
#define FDSTORE_O_LARGEFILE 0200000
#elif defined(__mips__)
#define FDSTORE_O_LARGEFILE 0x2000
#elif defined(__sparc__)
#define FDSTORE_O_LARGEFILE 0x40000
#else
#define FDSTORE_O_LARGEFILE 0100000
#endif

/* Result of scm_recv_notify(). One allocation: free with scm_notify_free(). */
struct scm_notify {
  size_t len;        /* payload bytes in data (0 when truncated) */
  int has_creds;
  pid_t pid;
  uid_t uid;
  gid_t gid;
  int truncated;     /* MSG_TRUNC */
  int ctruncated;    /* MSG_CTRUNC */
  int closed;        /* fds closed here because of truncation */
  size_t nfds;
  int *fds;          /* nfds entries */
  double *stats;     /* 4 * nfds: st_dev, st_ino, st_mode, F_GETFL */
  char *data;        /* len bytes */
};

/* Listening / receiving sockets. fd or -errno. */
int scm_notify_socket(const char *path, int rcvbuf);
int scm_listen(const char *path, int type, int backlog);

/* 0 with *out set, -EAGAIN (also for EINTR), or -errno. */
int scm_recv_notify(int fd, size_t max_bytes, size_t max_fds, struct scm_notify **out);
void scm_notify_free(struct scm_notify *n);

struct scm_peer {
  int fd;
  pid_t pid;
  uid_t uid;
  gid_t gid;
  int pidfd;
};
/* 0, -EAGAIN (also EINTR), or -errno. */
int scm_accept(int fd, struct scm_peer *out);
ssize_t scm_send_fds(int fd, const void *data, size_t len, const int *fds, size_t nfds);
ssize_t scm_recv(int fd, void *buf, size_t max);
int scm_close(int fd);

/* epoll, pidfd, limits, fd count (sys.c). */
int sys_epoll_create(void);
int sys_epoll_add(int epfd, int fd, uint64_t key);
int sys_epoll_del(int epfd, int fd);
/* Fills keys/events with up to max entries; count or -errno. */
int sys_epoll_wait(int epfd, uint64_t *keys, uint32_t *events, int max);
int sys_pidfd_open(pid_t pid);
/* soft/hard as -1 for RLIM_INFINITY. */
int sys_get_nofile(double *soft, double *hard);
int sys_set_nofile(double soft);
int sys_count_fds(void);
int sys_reserve_fds(int n);
/* flock(LOCK_EX|LOCK_NB): 0 or -errno (-EWOULDBLOCK: held elsewhere). */
int sys_lock_exclusive(int fd);
/* prctl(PR_SET_DUMPABLE / PR_GET_DUMPABLE). */
int sys_set_dumpable(int on);
int sys_get_dumpable(void);
/* fchmodat(dirfd, name, mode, AT_SYMLINK_NOFOLLOW): 0 or -errno. */
int sys_chmod_at(int dirfd, const char *name, int mode);
/* st_dev, st_ino, st_mode, F_GETFL (masked); mode 0 if fstat failed. */
void sys_fd_stats(int fd, double out[4]);

/* dedupe.c */
enum { DEDUPE_AUTO = 0, DEDUPE_DUPFD_QUERY = 1, DEDUPE_KCMP = 2, DEDUPE_FSTAT = 3 };
/* 1 same open file description, 0 not, -errno. */
int dedupe_same_file(int a, int b, int method);

/* fdinfo.c */
#define FDINFO_ADDR_MAX 256
struct fd_info {
  double mode, dev, ino, rdev;
  int flags;
  char path[4096];
  int family, sock_type, listening;
  char local[FDINFO_ADDR_MAX];
  char peer[FDINFO_ADDR_MAX];
  size_t local_len, peer_len; /* abstract names may hold NULs */
};
int fdinfo_get(int fd, struct fd_info *out);

/* activation.c: sockets bound for a container's `listen:` (systemd .socket units). */
enum { ACT_TCP = 0, ACT_UDP = 1, ACT_UNIX_STREAM = 2, ACT_UNIX_DGRAM = 3 };
/* Bound (and listening, for streams) close-on-exec blocking socket, or -errno
 * (-EINVAL: address not of the kind's form). */
int act_listen(int kind, const char *address, int backlog, int reuse_port);
/* Set or clear O_NONBLOCK: 0 or -errno. */
int act_set_nonblock(int fd, int on);

/* keeper.c: the agent's keeper connection. */
int keeper_connect(const char *path, struct scm_peer *out);
/* poll(events) up to timeout_ms: 1 ready, 0 timed out, -errno. */
int keeper_wait(int fd, int events, int timeout_ms);
/* scm_send_fds, waiting up to timeout_ms for room: bytes, -ETIMEDOUT or -errno. */
ssize_t keeper_send(int fd, const void *data, size_t len, const int *fds, size_t nfds, int timeout_ms);

#endif
