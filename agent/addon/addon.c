/* N-API glue: converts arguments and results, nothing else. With poll.c the only
 * files that include node_api.h; everything that touches the kernel lives in scm.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "../include/proto.h"
#include "scm.h"
#include "glue.h"



napi_value fail(napi_env env, const char *what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, NULL, what);
  return NULL;
}

napi_value type_error(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

int get_int(napi_env env, napi_value v, int64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return 0;
  return napi_get_value_int64(env, v, out) == napi_ok;
}


/* Caller frees. */
static char *get_string(napi_env env, napi_value v) {
  size_t len;
  char *s;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  if (!(s = malloc(len + 1))) return NULL;
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  if (strlen(s) != len) { /* an embedded NUL would silently shorten a path */
    free(s);
    return NULL;
  }
  return s;
}

napi_value num(napi_env env, double v) {
  napi_value r;
  return napi_create_double(env, v, &r) == napi_ok ? r : NULL;
}

static napi_value null_value(napi_env env) {
  napi_value r;
  napi_get_null(env, &r);
  return r;
}

int set(napi_env env, napi_value obj, const char *key, napi_value v) {
  return v && napi_set_named_property(env, obj, key, v) == napi_ok;
}

static napi_value boolean(napi_env env, int b) {
  napi_value r;
  return napi_get_boolean(env, b != 0, &r) == napi_ok ? r : NULL;
}

static napi_value path_int_call(napi_env env, napi_callback_info info, int which) {
  ARGS(2);
  char *path = get_string(env, argv[0]);
  int r;
  INT_ARG(1, n);
  if (!path) return type_error(env, "fdstore: path must be a string without NUL");
  if (which == 0) r = scm_notify_socket(path, (int)n);
  else r = scm_listen(path, which == 1 ? SOCK_SEQPACKET : SOCK_STREAM, (int)n);
  free(path);
  return num(env, r);
}

static napi_value NotifySocket(napi_env env, napi_callback_info info) { return path_int_call(env, info, 0); }
static napi_value SeqpacketListen(napi_env env, napi_callback_info info) { return path_int_call(env, info, 1); }
static napi_value StreamListen(napi_env env, napi_callback_info info) { return path_int_call(env, info, 2); }

static napi_value ListenSocket(napi_env env, napi_callback_info info) {
  char *address;
  int r;
  ARGS(4);
  INT_ARG(0, kind);
  INT_ARG(2, backlog);
  INT_ARG(3, reuse_port);
  if (!(address = get_string(env, argv[1]))) return type_error(env, "fdstore: address must be a string without NUL");
  r = act_listen((int)kind, address, (int)backlog, reuse_port != 0);
  free(address);
  return num(env, r);
}

static napi_value SetNonblock(napi_env env, napi_callback_info info) {
  ARGS(2);
  INT_ARG(0, fd);
  INT_ARG(1, on);
  return num(env, act_set_nonblock((int)fd, on != 0));
}

static napi_value notify_to_js(napi_env env, const struct scm_notify *n) {
  napi_value obj, data, fds, ab, stats;
  void *abdata;
  size_t i;
  CHECK(napi_create_object(env, &obj));
  CHECK(napi_create_buffer_copy(env, n->len, n->len ? n->data : "", NULL, &data));
  CHECK(napi_create_array_with_length(env, n->nfds, &fds));
  for (i = 0; i < n->nfds; i++) CHECK(napi_set_element(env, fds, (uint32_t)i, num(env, n->fds[i])));
  CHECK(napi_create_arraybuffer(env, n->nfds * 4 * sizeof(double), &abdata, &ab));
  if (n->nfds) memcpy(abdata, n->stats, n->nfds * 4 * sizeof(double));
  CHECK(napi_create_typedarray(env, napi_float64_array, n->nfds * 4, ab, 0, &stats));
  if (!set(env, obj, "data", data) || !set(env, obj, "hasCreds", boolean(env, n->has_creds)) ||
      !set(env, obj, "pid", num(env, n->pid)) || !set(env, obj, "uid", num(env, n->uid)) ||
      !set(env, obj, "gid", num(env, n->gid)) || !set(env, obj, "fds", fds) ||
      !set(env, obj, "stats", stats) || !set(env, obj, "truncated", boolean(env, n->truncated)) ||
      !set(env, obj, "ctruncated", boolean(env, n->ctruncated)) ||
      !set(env, obj, "closedFds", num(env, n->closed)))
    return fail(env, "fdstore: building NotifyDatagram");
  return obj;
}

static napi_value RecvNotify(napi_env env, napi_callback_info info) {
  struct scm_notify *n = NULL;
  napi_value res;
  size_t i;
  int r;
  ARGS(3);
  INT_ARG(0, fd);
  INT_ARG(1, max_bytes);
  INT_ARG(2, max_fds);
  if (max_bytes < 0 || max_fds < 0 || max_fds > 65536) return type_error(env, "fdstore: bad limits");
  r = scm_recv_notify((int)fd, (size_t)max_bytes, (size_t)max_fds, &n);
  if (r == -EAGAIN) return null_value(env);
  if (r < 0) return num(env, r);
  res = notify_to_js(env, n);
  /* If building the result threw, the fds never reached JS: close them here. */
  if (!res)
    for (i = 0; i < n->nfds; i++) close(n->fds[i]);
  scm_notify_free(n);
  return res;
}

static napi_value Accept(napi_env env, napi_callback_info info) {
  struct scm_peer p;
  napi_value obj;
  int r;
  ARGS(1);
  INT_ARG(0, fd);
  r = scm_accept((int)fd, &p);
  if (r == -EAGAIN) return null_value(env);
  if (r < 0) return num(env, r);
  if (napi_create_object(env, &obj) != napi_ok || !set(env, obj, "fd", num(env, p.fd)) ||
      !set(env, obj, "pid", num(env, p.pid)) || !set(env, obj, "uid", num(env, p.uid)) ||
      !set(env, obj, "gid", num(env, p.gid)) || !set(env, obj, "pidfd", num(env, p.pidfd))) {
    close(p.fd);
    if (p.pidfd >= 0) close(p.pidfd);
    return fail(env, "fdstore: building Accepted");
  }
  return obj;
}

/*
 * A message as SendFds and KeeperSend take it: its bytes (a Buffer) and its fds (an
 * array of numbers). NULL when both are good; otherwise what the verb returns: a
 * thrown TypeError, or -EINVAL for more fds than one message carries (the kernel
 * refuses more than SCM_MAX_FD with EINVAL).
 */
static napi_value message_args(napi_env env, napi_value buf, napi_value arr, void **data, size_t *len,
                               int fds[FDSTORE_FDS_PER_MSG], uint32_t *nfds) {
  bool ok;
  uint32_t i;
  if (napi_is_buffer(env, buf, &ok) != napi_ok || !ok) return type_error(env, "fdstore: data must be a Buffer");
  CHECK(napi_get_buffer_info(env, buf, data, len));
  if (napi_is_array(env, arr, &ok) != napi_ok || !ok) return type_error(env, "fdstore: fds must be an array");
  CHECK(napi_get_array_length(env, arr, nfds));
  if (*nfds > FDSTORE_FDS_PER_MSG) return num(env, -EINVAL);
  for (i = 0; i < *nfds; i++) {
    napi_value v;
    int64_t x;
    CHECK(napi_get_element(env, arr, i, &v));
    if (!get_int(env, v, &x)) return type_error(env, "fdstore: fds must be numbers");
    fds[i] = (int)x;
  }
  return NULL;
}

static napi_value SendFds(napi_env env, napi_callback_info info) {
  void *data;
  size_t len;
  uint32_t nfds;
  int fds[FDSTORE_FDS_PER_MSG];
  napi_value bad;
  ARGS(3);
  INT_ARG(0, fd);
  if ((bad = message_args(env, argv[1], argv[2], &data, &len, fds, &nfds)) != NULL) return bad;
  return num(env, (double)scm_send_fds((int)fd, data, len, fds, nfds));
}

static napi_value Recv(napi_env env, napi_callback_info info) {
  napi_value buf;
  void *mem;
  ssize_t r;
  ARGS(2);
  INT_ARG(0, fd);
  INT_ARG(1, max);
  if (max < 0 || max > (1 << 24)) return type_error(env, "fdstore: bad max");
  if (!(mem = malloc(max ? (size_t)max : 1))) return fail(env, "fdstore: out of memory");
  r = scm_recv((int)fd, mem, (size_t)max);
  if (r == -EAGAIN) buf = null_value(env);
  else if (r < 0) buf = num(env, (double)r);
  else if (napi_create_buffer_copy(env, (size_t)r, mem, NULL, &buf) != napi_ok) buf = fail(env, "fdstore: buffer");
  free(mem);
  return buf;
}

static napi_value Close(napi_env env, napi_callback_info info) {
  ARGS(1);
  INT_ARG(0, fd);
  return num(env, scm_close((int)fd));
}

static napi_value EpollCreate(napi_env env, napi_callback_info info) {
  (void)info;
  return num(env, sys_epoll_create());
}

static napi_value EpollAdd(napi_env env, napi_callback_info info) {
  ARGS(3);
  INT_ARG(0, epfd);
  INT_ARG(1, fd);
  INT_ARG(2, key);
  return num(env, sys_epoll_add((int)epfd, (int)fd, (uint64_t)key));
}

/* One crossing per message instead of one per fd: the store registers up to 253
 * fds at a time. Returns an Int32Array of 0 / -errno, one per fd. */
static napi_value EpollAddMany(napi_env env, napi_callback_info info) {
  ARGS(3);
  INT_ARG(0, epfd);
  uint32_t n, n2, i;
  if (napi_get_array_length(env, argv[1], &n) != napi_ok || napi_get_array_length(env, argv[2], &n2) != napi_ok || n != n2)
    return type_error(env, "fdstore: epollAddMany needs two arrays of equal length");
  void *data;
  napi_value ab, out;
  CHECK(napi_create_arraybuffer(env, (size_t)n * sizeof(int32_t), &data, &ab));
  int32_t *res = data;
  for (i = 0; i < n; i++) {
    napi_value fv, kv;
    int64_t fd, key;
    CHECK(napi_get_element(env, argv[1], i, &fv));
    CHECK(napi_get_element(env, argv[2], i, &kv));
    if (!get_int(env, fv, &fd) || !get_int(env, kv, &key)) return type_error(env, "fdstore: epollAddMany: fds and keys must be numbers");
    res[i] = sys_epoll_add((int)epfd, (int)fd, (uint64_t)key);
  }
  CHECK(napi_create_typedarray(env, napi_int32_array, n, ab, 0, &out));
  return out;
}

static napi_value EpollDel(napi_env env, napi_callback_info info) {
  ARGS(2);
  INT_ARG(0, epfd);
  INT_ARG(1, fd);
  return num(env, sys_epoll_del((int)epfd, (int)fd));
}

static napi_value EpollWait(napi_env env, napi_callback_info info) {
  uint64_t keys[64];
  uint32_t events[64];
  napi_value arr;
  int n, i;
  ARGS(2);
  INT_ARG(0, epfd);
  INT_ARG(1, max);
  n = sys_epoll_wait((int)epfd, keys, events, max > 64 ? 64 : (int)max);
  if (n < 0) return num(env, n);
  CHECK(napi_create_array_with_length(env, (size_t)n * 2, &arr));
  for (i = 0; i < n; i++) {
    CHECK(napi_set_element(env, arr, (uint32_t)(2 * i), num(env, (double)keys[i])));
    CHECK(napi_set_element(env, arr, (uint32_t)(2 * i + 1), num(env, events[i])));
  }
  return arr;
}

static napi_value SameFile(napi_env env, napi_callback_info info) {
  ARGS(3);
  INT_ARG(0, a);
  INT_ARG(1, b);
  INT_ARG(2, method);
  return num(env, dedupe_same_file((int)a, (int)b, (int)method));
}

napi_value str(napi_env env, const char *s, size_t len) {
  napi_value r;
  return napi_create_string_utf8(env, s, len, &r) == napi_ok ? r : NULL;
}

static napi_value FdInfo(napi_env env, napi_callback_info info) {
  struct fd_info *fi;
  napi_value obj = NULL;
  int r;
  ARGS(1);
  INT_ARG(0, fd);
  if (!(fi = malloc(sizeof(*fi)))) return fail(env, "fdstore: out of memory");
  r = fdinfo_get((int)fd, fi);
  if (r < 0) obj = num(env, r);
  else if (napi_create_object(env, &obj) != napi_ok || !set(env, obj, "mode", num(env, fi->mode)) ||
           !set(env, obj, "dev", num(env, fi->dev)) || !set(env, obj, "ino", num(env, fi->ino)) ||
           !set(env, obj, "rdev", num(env, fi->rdev)) || !set(env, obj, "flags", num(env, fi->flags)) ||
           !set(env, obj, "path", str(env, fi->path, strlen(fi->path))) ||
           !set(env, obj, "family", num(env, fi->family)) || !set(env, obj, "sockType", num(env, fi->sock_type)) ||
           !set(env, obj, "listening", boolean(env, fi->listening)) ||
           !set(env, obj, "localAddress", str(env, fi->local, fi->local_len)) ||
           !set(env, obj, "peerAddress", str(env, fi->peer, fi->peer_len)))
    obj = fail(env, "fdstore: building FdInfo");
  free(fi);
  return obj;
}

static napi_value PidfdOpen(napi_env env, napi_callback_info info) {
  ARGS(1);
  INT_ARG(0, pid);
  return num(env, sys_pidfd_open((pid_t)pid));
}

static napi_value GetNofile(napi_env env, napi_callback_info info) {
  double soft, hard;
  napi_value arr;
  int r;
  (void)info;
  /* getrlimit on our own process cannot fail short of a broken kernel. */
  if ((r = sys_get_nofile(&soft, &hard)) < 0) return fail(env, "fdstore: getrlimit(RLIMIT_NOFILE) failed");
  CHECK(napi_create_array_with_length(env, 2, &arr));
  CHECK(napi_set_element(env, arr, 0, num(env, soft)));
  CHECK(napi_set_element(env, arr, 1, num(env, hard)));
  return arr;
}

static napi_value SetNofile(napi_env env, napi_callback_info info) {
  ARGS(1);
  INT_ARG(0, soft);
  return num(env, sys_set_nofile((double)soft));
}

static napi_value CountFds(napi_env env, napi_callback_info info) {
  (void)info;
  return num(env, sys_count_fds());
}

static napi_value ReserveFds(napi_env env, napi_callback_info info) {
  ARGS(1);
  INT_ARG(0, n);
  return num(env, sys_reserve_fds((int)n));
}

static napi_value LockExclusive(napi_env env, napi_callback_info info) {
  ARGS(1);
  INT_ARG(0, fd);
  return num(env, sys_lock_exclusive((int)fd));
}

static napi_value SetDumpable(napi_env env, napi_callback_info info) {
  ARGS(1);
  INT_ARG(0, on);
  return num(env, sys_set_dumpable(on != 0));
}

static napi_value GetDumpable(napi_env env, napi_callback_info info) {
  (void)info;
  return num(env, sys_get_dumpable());
}

static napi_value ChmodAt(napi_env env, napi_callback_info info) {
  char *name;
  int r;
  ARGS(3);
  INT_ARG(0, dirfd);
  INT_ARG(2, mode);
  if (!(name = get_string(env, argv[1]))) return type_error(env, "fdstore: name must be a string without NUL");
  r = sys_chmod_at((int)dirfd, name, (int)mode);
  free(name);
  return num(env, r);
}

static napi_value KeeperConnect(napi_env env, napi_callback_info info) {
  struct scm_peer p;
  napi_value obj;
  char *path;
  int r;
  ARGS(1);
  if (!(path = get_string(env, argv[0]))) return type_error(env, "fdstore: path must be a string without NUL");
  r = keeper_connect(path, &p);
  free(path);
  if (r < 0) return num(env, r);
  if (napi_create_object(env, &obj) != napi_ok || !set(env, obj, "fd", num(env, p.fd)) ||
      !set(env, obj, "pid", num(env, p.pid)) || !set(env, obj, "uid", num(env, p.uid)) ||
      !set(env, obj, "gid", num(env, p.gid)) || !set(env, obj, "pidfd", num(env, -1))) {
    close(p.fd);
    return fail(env, "fdstore: building Accepted");
  }
  return obj;
}

static napi_value KeeperSend(napi_env env, napi_callback_info info) {
  void *data;
  size_t len;
  uint32_t nfds;
  int fds[FDSTORE_FDS_PER_MSG];
  napi_value bad;
  ARGS(4);
  INT_ARG(0, fd);
  INT_ARG(3, timeout_ms);
  if ((bad = message_args(env, argv[1], argv[2], &data, &len, fds, &nfds)) != NULL) return bad;
  return num(env, (double)keeper_send((int)fd, data, len, fds, nfds, (int)timeout_ms));
}

static napi_value WaitReadable(napi_env env, napi_callback_info info) {
  ARGS(2);
  INT_ARG(0, fd);
  INT_ARG(1, timeout_ms);
  return num(env, keeper_wait((int)fd, 1 /* POLLIN */, (int)timeout_ms));
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
#define FN(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}
      FN("notifySocket", NotifySocket), FN("seqpacketListen", SeqpacketListen),
      FN("streamListen", StreamListen), FN("recvNotify", RecvNotify),
      FN("accept", Accept),             FN("sendFds", SendFds),
      FN("recv", Recv),                 FN("close", Close),
      FN("pollStart", PollStart),       FN("pollUpdate", PollUpdate),
      FN("pollStop", PollStop),        FN("epollCreate", EpollCreate),
      FN("epollAdd", EpollAdd),         FN("epollDel", EpollDel),
      FN("epollWait", EpollWait),       FN("sameFile", SameFile),
      FN("fdInfo", FdInfo),             FN("pidfdOpen", PidfdOpen),
      FN("getNofile", GetNofile),       FN("setNofile", SetNofile),
      FN("countFds", CountFds), FN("epollAddMany", EpollAddMany), FN("reserveFds", ReserveFds),         FN("listenSocket", ListenSocket),
      FN("setNonblock", SetNonblock),
      FN("lockExclusive", LockExclusive), FN("setDumpable", SetDumpable),
      FN("getDumpable", GetDumpable),     FN("chmodAt", ChmodAt),
      FN("keeperConnect", KeeperConnect), FN("keeperSend", KeeperSend),
      FN("waitReadable", WaitReadable),
#undef FN
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  if (poll_init(env) != napi_ok) return NULL;
  return exports;
}
