/*
 * consumer: a real libsystemd app for the restore tests, run behind fdstore-exec.
 *
 * At start it reads its fds with sd_listen_fds_with_names() (which checks
 * LISTEN_PID) and prints one JSON line describing each: name, kind, O_NONBLOCK,
 * and the data it holds (a memfd's contents; bytes queued on a socket whose name
 * ends in "-rx", peeked so they stay for the next run). Then it stores fds with
 * sd_pid_notify_with_fds(), driven by commands on stdin, one answer line each:
 *
 *   pair NAME TEXT     socketpair; TEXT written into NAME-rx; stores NAME-rx, NAME-tx -> "ok"
 *   memfd NAME TEXT    memfd holding TEXT, stored as NAME                               -> "ok"
 *   bulk N NAME        N distinct fds (unbound AF_UNIX datagram sockets: one inode each,
 *                      pollable, never hung up), stored 253 per message              -> "ok SENT"
 *   store FD NAME      stores an fd it already has (e.g. a socket-activation fd)        -> "ok RET"
 *   nonblock FD        sets O_NONBLOCK on FD (shared with every copy)                  -> "ok"
 *   notify STATE       sd_notify(0, STATE) (\n escaped as \\n)                          -> "ok RET"
 *   barrier            sd_notify_barrier(0, 5 s)                                       -> "ok RET"
 *   exit               -> exits 0
 * Errors answer "err ...". Nothing here knows fdstore: only libsystemd's public API.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define PER_MSG 253

static void json_str(const char *s, size_t n) {
  size_t i;
  putchar('"');
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c < 0x20 || c >= 0x7f) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}

static const char *kind_of(int fd) {
  struct stat st;
  int type = 0, acc = 0, dom = 0;
  socklen_t l = sizeof(int);
  char path[64], link[256];
  ssize_t n;
  if (fstat(fd, &st) < 0) return "bad";
  if (!S_ISSOCK(st.st_mode)) {
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    n = readlink(path, link, sizeof(link) - 1);
    if (n > 0 && strncmp(link, "/memfd:", 7) == 0) return "memfd";
    return S_ISCHR(st.st_mode) ? "chr" : "other";
  }
  getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l);
  l = sizeof(int);
  getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l);
  l = sizeof(int);
  getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l);
  if (dom == AF_UNIX) return acc ? "unix-listen" : type == SOCK_DGRAM ? "unix-dgram" : "unix";
  if (type == SOCK_DGRAM) return "udp";
  return acc ? "tcp-listen" : "tcp";
}

static void report(void) {
  char **names = NULL, buf[512];
  int n = sd_listen_fds_with_names(0, &names), i;
  printf("{\"pid\":%d,\"n\":%d,\"fds\":[", (int)getpid(), n);
  for (i = 0; i < n && n > 0; i++) {
    int fd = SD_LISTEN_FDS_START + i, fl = fcntl(fd, F_GETFL);
    const char *kind = kind_of(fd);
    const char *name = names ? names[i] : "";
    ssize_t got = 0;
    size_t nl = strlen(name);
    if (strcmp(kind, "memfd") == 0) got = pread(fd, buf, sizeof(buf), 0);
    else if (nl > 3 && strcmp(name + nl - 3, "-rx") == 0) got = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
    if (got < 0) got = 0;
    printf("%s{\"fd\":%d,\"name\":", i ? "," : "", fd);
    json_str(name, nl);
    printf(",\"kind\":\"%s\",\"nonblock\":%s,\"data\":", kind, fl >= 0 && (fl & O_NONBLOCK) ? "true" : "false");
    json_str(buf, (size_t)got);
    putchar('}');
  }
  printf("]}\n");
  fflush(stdout);
  if (names) {
    for (i = 0; i < n; i++) free(names[i]);
    free(names);
  }
}

static int store(const char *name, const int *fds, unsigned n) {
  char state[512];
  snprintf(state, sizeof(state), "FDSTORE=1\nFDNAME=%s", name);
  return sd_pid_notify_with_fds(0, 0, state, fds, n);
}

static void unescape(char *s) {
  char *o = s;
  for (; *s; s++) {
    if (s[0] == '\\' && s[1] == 'n') {
      *o++ = '\n';
      s++;
    } else *o++ = *s;
  }
  *o = '\0';
}

static void answer(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void answer(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

int main(void) {
  char line[8192], a[256], b[4096];
  int x;
  report();
  while (fgets(line, sizeof(line), stdin)) {
    line[strcspn(line, "\n")] = '\0';
    if (sscanf(line, "pair %255s %4095[^\n]", a, b) == 2) {
      int sv[2], r1, r2;
      char n1[300], n2[300];
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) { answer("err socketpair"); continue; }
      if (write(sv[0], b, strlen(b)) < 0) { answer("err write"); continue; }
      snprintf(n1, sizeof(n1), "%s-rx", a);
      snprintf(n2, sizeof(n2), "%s-tx", a);
      r1 = store(n1, &sv[1], 1);
      r2 = store(n2, &sv[0], 1);
      close(sv[0]);
      close(sv[1]);
      if (r1 > 0 && r2 > 0) answer("ok");
      else answer("err notify %d %d", r1, r2);
    } else if (sscanf(line, "memfd %255s %4095[^\n]", a, b) == 2) {
      int fd = memfd_create(a, MFD_CLOEXEC), r;
      if (fd < 0 || write(fd, b, strlen(b)) < 0) { answer("err memfd"); continue; }
      r = store(a, &fd, 1);
      close(fd);
      if (r > 0) answer("ok");
      else answer("err notify %d", r);
    } else if (sscanf(line, "bulk %d %255s", &x, a) == 2) {
      int fds[PER_MSG], sent = 0, r = 1;
      while (sent < x && r > 0) {
        unsigned k = 0, j;
        while (k < PER_MSG && sent + (int)k < x) {
          if ((fds[k] = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) break;
          k++;
        }
        r = store(a, fds, k);
        for (j = 0; j < k; j++) close(fds[j]);
        if (r > 0) sent += (int)k;
      }
      if (r > 0) answer("ok %d", sent);
      else answer("err notify %d after %d", r, sent);
    } else if (sscanf(line, "store %d %255s", &x, a) == 2) {
      answer("ok %d", store(a, &x, 1));
    } else if (sscanf(line, "nonblock %d", &x) == 1) {
      int fl = fcntl(x, F_GETFL);
      answer(fl >= 0 && fcntl(x, F_SETFL, fl | O_NONBLOCK) == 0 ? "ok" : "err fcntl");
    } else if (strncmp(line, "notify ", 7) == 0) {
      unescape(line + 7);
      answer("ok %d", sd_notify(0, line + 7));
    } else if (strcmp(line, "barrier") == 0) {
      answer("ok %d", sd_notify_barrier(0, 5000000));
    } else if (strcmp(line, "exit") == 0) {
      return 0;
    } else {
      answer("err unknown command");
    }
  }
  return 0;
}
