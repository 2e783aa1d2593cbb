/* "Is this the same open file description?" (F3.12): F_DUPFD_QUERY (Linux 6.10),
 * then kcmp(KCMP_FILE), often blocked by seccomp in containers, then an fstat
 * heuristic that cannot tell two open()s of one file apart. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "scm.h"

#ifndef F_DUPFD_QUERY
#define F_DUPFD_QUERY 1027 /* F_LINUX_SPECIFIC_BASE + 3; missing from older headers */
#endif

/* Process-wide: which methods the kernel and seccomp allow does not change while
 * we run, so Auto probes once and remembers. */
static int auto_method = DEDUPE_AUTO;

static int by_dupfd_query(int a, int b) {
  int r = fcntl(a, F_DUPFD_QUERY, b);
  if (r < 0) return -errno;
  return r ? 1 : 0;
}

static int by_kcmp(int a, int b) {
  pid_t self = getpid();
  long r = syscall(SYS_kcmp, self, self, KCMP_FILE, a, b);
  if (r < 0) return -errno;
  return r == 0 ? 1 : 0;
}

static int by_fstat(int a, int b) {
  struct stat sa, sb;
  int fa, fb;
  if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0) return -errno;
  if ((fa = fcntl(a, F_GETFL)) < 0 || (fb = fcntl(b, F_GETFL)) < 0) return -errno;
  if (sa.st_dev != sb.st_dev || sa.st_ino != sb.st_ino) return 0;
  /* Every open() of /dev/null or a tty shares one inode: too common to merge. */
  if (S_ISCHR(sa.st_mode) || S_ISBLK(sa.st_mode)) return 0;
  return (fa & ~FDSTORE_O_LARGEFILE) == (fb & ~FDSTORE_O_LARGEFILE);
}

static int unavailable(int method, int err) {
  if (method == DEDUPE_DUPFD_QUERY) return err == -EINVAL;
  return err == -ENOSYS || err == -EPERM || err == -EACCES;
}

int dedupe_same_file(int a, int b, int method) {
  int r;
  switch (method) {
    case DEDUPE_DUPFD_QUERY: return by_dupfd_query(a, b);
    case DEDUPE_KCMP: return by_kcmp(a, b);
    case DEDUPE_FSTAT: return by_fstat(a, b);
    case DEDUPE_AUTO: break;
    default: return -EINVAL;
  }
  if (auto_method != DEDUPE_AUTO) return dedupe_same_file(a, b, auto_method);
  r = by_dupfd_query(a, b);
  if (!unavailable(DEDUPE_DUPFD_QUERY, r)) {
    if (r >= 0) auto_method = DEDUPE_DUPFD_QUERY;
    return r;
  }
  r = by_kcmp(a, b);
  if (!unavailable(DEDUPE_KCMP, r)) {
    if (r >= 0) auto_method = DEDUPE_KCMP;
    return r;
  }
  auto_method = DEDUPE_FSTAT;
  return by_fstat(a, b);
}
