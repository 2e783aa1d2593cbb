/*
 * notify_fds: a real libsystemd client for the conformance tests.
 *
 * It talks to $NOTIFY_SOCKET only through libsystemd (sd_pid_notify_with_fds,
 * sd_notify_barrier), so the agent is judged against what real apps send.
 * Driven by commands on stdin, one per line; every command answers exactly one
 * line on stdout ("ok ..." or "err ..."), so a test can sequence it precisely.
 *
 *   socketpair N [dgram|seqpacket]  N AF_UNIX socketpairs; sends one end, keeps the peer -> "ok FIRST LAST"
 *   pipe-read N | pipe-write N   N pipes; sends that end, keeps the other     -> "ok FIRST LAST"
 *   memfd TEXT                   a memfd holding TEXT                        -> "ok ID"
 *   file PATH ro|wo|rw           open(PATH)                                  -> "ok ID"
 *   tcp-listen | tcp6-listen | udp   bound to loopback, port 0               -> "ok ID PORT"
 *   unix-listen PATH             AF_UNIX stream listener                     -> "ok ID"
 *   notify STATE [ID|A-B]...     sd_pid_notify_with_fds(0, 0, STATE, fds)    -> "ok RET"
 *                                STATE is C-escaped: \n \r \t \\ \xHH
 *   barrier [TIMEOUT_MS]         sd_notify_barrier(0, timeout)               -> "ok RET"
 *   child STATE [ID|A-B]...      fork; the child does notify + barrier, exits -> "ok RET BARRIER_RET CHILD_PID"
 *   close ID... | close-peer ID... | close-peers
 *   pid                          -> "ok GETPID"
 *   exit                         -> "ok" then exits 0
 *
 * One-shot convenience for humans: notify_fds --state S [--socketpairs N]
 * [--memfd TEXT] [--file PATH] [--tcp-listen] then notify + barrier, print the
 * results, then the command loop above.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define MAX_OBJS 8192
#define MAX_SEND 1024

struct obj {
  int fd;   /* the end we send; -1 once closed */
  int peer; /* the end we keep; -1 if none */
};

static struct obj objs[MAX_OBJS];
static int nobjs;

static int add_obj(int fd, int peer) {
  if (nobjs >= MAX_OBJS) {
    return -1;
  }
  objs[nobjs].fd = fd;
  objs[nobjs].peer = peer;
  return nobjs++;
}

static void unescape(char *s) {
  char *w = s;
  for (char *r = s; *r; r++) {
    if (*r != '\\' || r[1] == '\0') {
      *w++ = *r;
      continue;
    }
    r++;
    switch (*r) {
    case 'n': *w++ = '\n'; break;
    case 'r': *w++ = '\r'; break;
    case 't': *w++ = '\t'; break;
    case 'x': {
      char hex[3] = {0, 0, 0};
      if (r[1] && r[2]) {
        hex[0] = r[1];
        hex[1] = r[2];
        r += 2;
        *w++ = (char)strtol(hex, NULL, 16);
      }
      break;
    }
    default: *w++ = *r; break;
    }
  }
  *w = '\0';
}

/* Parses "ID" or "A-B" tokens into fds[]; returns count or -1. */
static int collect_fds(char **toks, int ntoks, int *fds) {
  int n = 0;
  for (int i = 0; i < ntoks; i++) {
    int a, b;
    if (sscanf(toks[i], "%d-%d", &a, &b) != 2) {
      a = b = atoi(toks[i]);
    }
    for (int id = a; id <= b; id++) {
      if (id < 0 || id >= nobjs || objs[id].fd < 0 || n >= MAX_SEND) {
        return -1;
      }
      fds[n++] = objs[id].fd;
    }
  }
  return n;
}

static int pair_cmd(int n, int type) {
  int first = -1, last = -1;
  for (int i = 0; i < n; i++) {
    int sv[2];
    if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0) {
      return -errno;
    }
    last = add_obj(sv[0], sv[1]);
    if (first < 0) {
      first = last;
    }
  }
  printf("ok %d %d\n", first, last);
  return 0;
}

static int pipe_cmd(int n, int send_read_end) {
  int first = -1, last = -1;
  for (int i = 0; i < n; i++) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
      return -errno;
    }
    last = send_read_end ? add_obj(p[0], p[1]) : add_obj(p[1], p[0]);
    if (first < 0) {
      first = last;
    }
  }
  printf("ok %d %d\n", first, last);
  return 0;
}

static int inet_cmd(int family, int type) {
  int fd = socket(family, type | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -errno;
  }
  struct sockaddr_storage ss;
  socklen_t len;
  memset(&ss, 0, sizeof(ss));
  if (family == AF_INET) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(*sin);
  } else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = in6addr_loopback;
    len = sizeof(*sin6);
  }
  if (bind(fd, (struct sockaddr *)&ss, len) < 0 || (type == SOCK_STREAM && listen(fd, 16) < 0) ||
      getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  int port = family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                               : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  printf("ok %d %d\n", add_obj(fd, -1), port);
  return 0;
}

static int unix_listen_cmd(const char *path) {
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(sun.sun_path)) {
    return -ENAMETOOLONG;
  }
  strcpy(sun.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -errno;
  }
  unlink(path);
  if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, 16) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  printf("ok %d\n", add_obj(fd, -1));
  return 0;
}

static int memfd_cmd(const char *text) {
  int fd = memfd_create("fdstore-test", MFD_CLOEXEC);
  if (fd < 0) {
    return -errno;
  }
  size_t len = strlen(text);
  if (write(fd, text, len) != (ssize_t)len) {
    int e = errno;
    close(fd);
    return -e;
  }
  printf("ok %d\n", add_obj(fd, -1));
  return 0;
}

static int file_cmd(const char *path, const char *mode) {
  int flags = strcmp(mode, "wo") == 0 ? O_WRONLY : strcmp(mode, "rw") == 0 ? O_RDWR : O_RDONLY;
  int fd = open(path, flags | O_CLOEXEC);
  if (fd < 0) {
    return -errno;
  }
  printf("ok %d\n", add_obj(fd, -1));
  return 0;
}

static int notify_cmd(char *state, char **toks, int ntoks) {
  static int fds[MAX_SEND];
  int n = collect_fds(toks, ntoks, fds);
  if (n < 0) {
    return -EBADF;
  }
  unescape(state);
  int r = sd_pid_notify_with_fds(0, 0, state, n > 0 ? fds : NULL, (unsigned)n);
  printf("ok %d\n", r);
  return 0;
}

static int child_cmd(char *state, char **toks, int ntoks) {
  static int fds[MAX_SEND];
  int n = collect_fds(toks, ntoks, fds);
  if (n < 0) {
    return -EBADF;
  }
  unescape(state);
  int res[2];
  if (pipe2(res, O_CLOEXEC) < 0) {
    return -errno;
  }
  pid_t pid = fork();
  if (pid < 0) {
    return -errno;
  }
  if (pid == 0) {
    int out[2];
    out[0] = sd_pid_notify_with_fds(0, 0, state, n > 0 ? fds : NULL, (unsigned)n);
    out[1] = sd_notify_barrier(0, 5000000);
    if (write(res[1], out, sizeof(out)) != sizeof(out)) {
      _exit(1);
    }
    _exit(0);
  }
  close(res[1]);
  int out[2] = {-999, -999};
  ssize_t got = read(res[0], out, sizeof(out));
  close(res[0]);
  int status;
  waitpid(pid, &status, 0);
  if (got != sizeof(out)) {
    return -EIO;
  }
  printf("ok %d %d %d\n", out[0], out[1], (int)pid);
  return 0;
}

static void close_ids(char **toks, int ntoks, int peers) {
  for (int i = 0; i < ntoks; i++) {
    int a, b;
    if (sscanf(toks[i], "%d-%d", &a, &b) != 2) {
      a = b = atoi(toks[i]);
    }
    for (int id = a; id <= b && id < nobjs; id++) {
      int *slot = peers ? &objs[id].peer : &objs[id].fd;
      if (id >= 0 && *slot >= 0) {
        close(*slot);
        *slot = -1;
      }
    }
  }
}

#define MAX_TOKS 2048

/* Runs one command line; returns 1 to exit. */
static int run(char *line) {
  static char *toks[MAX_TOKS];
  int ntoks = 0;
  for (char *t = strtok(line, " \t\n"); t && ntoks < MAX_TOKS; t = strtok(NULL, " \t\n")) {
    toks[ntoks++] = t;
  }
  if (ntoks == 0) {
    printf("err empty\n");
    return 0;
  }
  const char *c = toks[0];
  const char *a1 = ntoks > 1 ? toks[1] : "";
  int r = 0;
  if (strcmp(c, "socketpair") == 0) {
    int type = SOCK_STREAM;
    if (ntoks > 2 && strcmp(toks[2], "dgram") == 0) type = SOCK_DGRAM;
    if (ntoks > 2 && strcmp(toks[2], "seqpacket") == 0) type = SOCK_SEQPACKET;
    r = pair_cmd(atoi(a1), type);
  } else if (strcmp(c, "pipe-read") == 0) {
    r = pipe_cmd(atoi(a1), 1);
  } else if (strcmp(c, "pipe-write") == 0) {
    r = pipe_cmd(atoi(a1), 0);
  } else if (strcmp(c, "memfd") == 0) {
    r = memfd_cmd(a1);
  } else if (strcmp(c, "file") == 0) {
    r = file_cmd(a1, ntoks > 2 ? toks[2] : "ro");
  } else if (strcmp(c, "tcp-listen") == 0) {
    r = inet_cmd(AF_INET, SOCK_STREAM);
  } else if (strcmp(c, "tcp6-listen") == 0) {
    r = inet_cmd(AF_INET6, SOCK_STREAM);
  } else if (strcmp(c, "udp") == 0) {
    r = inet_cmd(AF_INET, SOCK_DGRAM);
  } else if (strcmp(c, "unix-listen") == 0) {
    r = unix_listen_cmd(a1);
  } else if (strcmp(c, "notify") == 0 && ntoks > 1) {
    r = notify_cmd(toks[1], toks + 2, ntoks - 2);
  } else if (strcmp(c, "child") == 0 && ntoks > 1) {
    r = child_cmd(toks[1], toks + 2, ntoks - 2);
  } else if (strcmp(c, "barrier") == 0) {
    long ms = ntoks > 1 ? atol(a1) : 5000;
    printf("ok %d\n", sd_notify_barrier(0, (uint64_t)ms * 1000));
  } else if (strcmp(c, "close") == 0) {
    close_ids(toks + 1, ntoks - 1, 0);
    printf("ok\n");
  } else if (strcmp(c, "close-peer") == 0) {
    close_ids(toks + 1, ntoks - 1, 1);
    printf("ok\n");
  } else if (strcmp(c, "close-peers") == 0) {
    for (int i = 0; i < nobjs; i++) {
      if (objs[i].peer >= 0) {
        close(objs[i].peer);
        objs[i].peer = -1;
      }
    }
    printf("ok\n");
  } else if (strcmp(c, "pid") == 0) {
    printf("ok %d\n", (int)getpid());
  } else if (strcmp(c, "exit") == 0) {
    printf("ok\n");
    return 1;
  } else {
    printf("err unknown command %s\n", c);
  }
  if (r < 0) {
    printf("err %s\n", strerror(-r));
  }
  return 0;
}

static void one_shot(int argc, char **argv) {
  char *state = NULL;
  char buf[4200];
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(opt, "--tcp-listen") == 0) {
      run(strcpy(buf, "tcp-listen"));
      continue;
    }
    if (!val) {
      fprintf(stderr, "notify_fds: %s needs a value\n", opt);
      exit(100);
    }
    i++;
    if (strcmp(opt, "--state") == 0) {
      state = argv[i];
      continue;
    } else if (strcmp(opt, "--socketpairs") == 0) {
      snprintf(buf, sizeof(buf), "socketpair %s", val);
    } else if (strcmp(opt, "--memfd") == 0) {
      snprintf(buf, sizeof(buf), "memfd %s", val);
    } else if (strcmp(opt, "--file") == 0) {
      snprintf(buf, sizeof(buf), "file %s ro", val);
    } else {
      fprintf(stderr, "notify_fds: unknown option %s\n", opt);
      exit(100);
    }
    run(buf);
  }
  if (state) {
    if (nobjs > 0) {
      snprintf(buf, sizeof(buf), "notify %s 0-%d", state, nobjs - 1);
    } else {
      snprintf(buf, sizeof(buf), "notify %s", state);
    }
    run(buf);
    run(strcpy(buf, "barrier"));
  }
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc > 1) {
    one_shot(argc, argv);
  }
  static char line[65536];
  while (fgets(line, sizeof(line), stdin)) {
    if (run(line)) {
      return 0;
    }
  }
  return 0;
}
