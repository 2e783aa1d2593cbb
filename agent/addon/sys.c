/* Small syscalls the store needs around its fds: the hang-up epoll set, pidfds,
 * the fd limit and the fd count. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "scm.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

int sys_epoll_create(void) {
  int fd = epoll_create1(EPOLL_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

int sys_epoll_add(int epfd, int fd, uint64_t key) {
  /* events = 0: EPOLLHUP and EPOLLERR are always reported, so the store learns
   * when a peer goes away without waking for every readable byte (F3.16). */
  struct epoll_event ev = {.events = 0, .data.u64 = key};
  return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int sys_epoll_del(int epfd, int fd) {
  struct epoll_event ev = {0}; /* pre-2.6.9 kernels wanted non-NULL */
  return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &ev) < 0 ? -errno : 0;
}

int sys_epoll_wait(int epfd, uint64_t *keys, uint32_t *events, int max) {
  struct epoll_event evs[64];
  int n, i;
  if (max > 64) max = 64;
  if (max < 1) return -EINVAL;
  do n = epoll_wait(epfd, evs, max, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  for (i = 0; i < n; i++) {
    keys[i] = evs[i].data.u64;
    events[i] = evs[i].events;
  }
  return n;
}

int sys_pidfd_open(pid_t pid) {
  /* pidfd_open always sets O_CLOEXEC. */
  long fd = syscall(SYS_pidfd_open, pid, 0);
  return fd < 0 ? -errno : (int)fd;
}

int sys_get_nofile(double *soft, double *hard) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return -errno;
  *soft = rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur;
  *hard = rl.rlim_max == RLIM_INFINITY ? -1 : (double)rl.rlim_max;
  return 0;
}

int sys_set_nofile(double soft) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return -errno;
  rl.rlim_cur = soft < 0 ? RLIM_INFINITY : (rlim_t)soft;
  return setrlimit(RLIMIT_NOFILE, &rl) < 0 ? -errno : 0;
}

int sys_count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0, self;
  if (!d) return -errno;
  self = dirfd(d);
  while ((e = readdir(d)) != NULL) {
    char *end;
    long v;
    if (e->d_name[0] == '.') continue;
    v = strtol(e->d_name, &end, 10);
    if (*end == '\0' && v != self) n++;
  }
  closedir(d);
  return n;
}

void sys_fd_stats(int fd, double out[4]) {
  struct stat st;
  int fl = fcntl(fd, F_GETFL);
  if (fstat(fd, &st) < 0) {
    out[0] = out[1] = out[2] = 0;
  } else {
    out[0] = (double)st.st_dev;
    out[1] = (double)st.st_ino;
    out[2] = (double)st.st_mode;
  }
  out[3] = fl < 0 ? 0 : (double)(fl & ~FDSTORE_O_LARGEFILE);
}

/* Grow this process's fd table to hold fd numbers below n, now. The kernel grows
 * it by doubling as fd numbers rise, and in a multi-threaded process (Node has
 * worker threads) every growth waits for an RCU grace period: ~10 growths cost
 * ~100 ms in the middle of storing 19,000 fds. The table never shrinks, so one
 * dup to n-1 at start pays that once. */
int sys_reserve_fds(int n) {
  int base, high;
  if (n <= 1) return 0;
  base = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (base < 0) return -errno;
  high = fcntl(base, F_DUPFD_CLOEXEC, n - 1);
  if (high < 0) {
    int e = errno;
    close(base);
    return -e;
  }
  close(high);
  close(base);
  return 0;
}

/* Trust in the run dir (issue 7 items 10, 12, 13). */

/* flock(LOCK_EX | LOCK_NB): 0, -EWOULDBLOCK when another open file description
 * holds it, or -errno. The lock lives as long as the open file description. */
int sys_lock_exclusive(int fd) {
  int r;
  do r = flock(fd, LOCK_EX | LOCK_NB);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

/* prctl(PR_SET_DUMPABLE, on): when 0, /proc/PID/{fd,root,mem,environ...} of this
 * process belong to root and need CAP_SYS_PTRACE, so a process of the same uid
 * cannot take stored fds through /proc/PID/fd or reach the admin socket through
 * /proc/PID/root. */
int sys_set_dumpable(int on) {
  return prctl(PR_SET_DUMPABLE, on ? 1 : 0, 0, 0, 0) < 0 ? -errno : 0;
}

int sys_get_dumpable(void) {
  int r = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
  return r < 0 ? -errno : r;
}

/* fchmodat(dirfd, name, mode, AT_SYMLINK_NOFOLLOW): never changes the mode of
 * what a symlink points to (-EOPNOTSUPP for a symlink; glibc >= 2.32 implements
 * it with an O_PATH open and /proc/self/fd, Linux >= 6.6 with fchmodat2). */
int sys_chmod_at(int dirfd, const char *name, int mode) {
  return fchmodat(dirfd, name, (mode_t)mode, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}
