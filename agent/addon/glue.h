/* Shared by the N-API glue files (addon.c: verbs, poll.c: uv_poll handles): the
 * only two files that include node_api.h. */
#ifndef FDSTORE_GLUE_H
#define FDSTORE_GLUE_H
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <stdint.h>

#define CHECK(call)                                   \
  do {                                                \
    if ((call) != napi_ok) return fail(env, #call);   \
  } while (0)

#define ARGS(n)                                                          \
  size_t argc = (n);                                                     \
  napi_value argv[(n) > 0 ? (n) : 1];                                    \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));           \
  if (argc < (n)) return type_error(env, "fdstore: missing arguments")

#define INT_ARG(i, var)                                           \
  int64_t var;                                                    \
  if (!get_int(env, argv[i], &var)) return type_error(env, "fdstore: argument " #i " must be a number")

napi_value fail(napi_env env, const char *what);
napi_value type_error(napi_env env, const char *msg);
/* Arguments are asserted, not validated: sys.ts checks ranges before calling. */
int get_int(napi_env env, napi_value v, int64_t *out);
napi_value num(napi_env env, double v);
napi_value str(napi_env env, const char *s, size_t len);
int set(napi_env env, napi_value obj, const char *key, napi_value v);

/* poll.c */
napi_value PollStart(napi_env env, napi_callback_info info);
napi_value PollUpdate(napi_env env, napi_callback_info info);
napi_value PollStop(napi_env env, napi_callback_info info);
napi_status poll_init(napi_env env);

#endif
