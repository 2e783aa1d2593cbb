/* uv_poll handles for Node's event loop (pollStart/pollUpdate/pollStop). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "glue.h"

/* ---- uv_poll handles ----
 * A poll owns: the uv handle (freed in uv_close's callback), strong refs to the
 * JS callback and to its own JS handle (so neither is collected while libuv may
 * call back), and an async context so the callback runs like any Node callback
 * (microtasks drained, async_hooks see it). The JS handle is an external holding
 * a box; the box and the poll point at each other and whichever dies first
 * clears the other's pointer, so a late pollStop() on a stopped handle is a no-op
 * instead of a use-after-free. */

struct poll;
struct poll_box {
  struct poll *p;
};

struct instance {
  struct poll *active;   /* started, not yet stopped */
  int closing;           /* uv_close() issued, callback not yet run */
  int tearing_down;
  napi_async_cleanup_hook_handle hook;
};

struct poll {
  uv_poll_t uv;
  napi_env env;
  struct instance *inst;
  napi_ref cb, self;
  napi_async_context actx;
  struct poll_box *box;
  int in_cb, stopped, released;
  struct poll *prev, *next;
};

static const napi_type_tag POLL_TAG = {0x66647374706f6c6cULL, 0x68616e646c653031ULL};

static void release_js(struct poll *p) {
  if (p->released) return;
  p->released = 1;
  napi_async_destroy(p->env, p->actx);
  napi_delete_reference(p->env, p->cb);
  napi_delete_reference(p->env, p->self);
}

static void on_close(uv_handle_t *h) {
  struct poll *p = h->data;
  struct instance *inst = p->inst;
  free(p);
  /* Environment teardown waits for our handles to be closed before it closes
   * the loop; tell it when the last one is. */
  if (--inst->closing == 0 && inst->tearing_down && inst->hook) {
    napi_remove_async_cleanup_hook(inst->hook);
    inst->hook = NULL;
  }
}

static void close_poll(struct poll *p) {
  struct instance *inst = p->inst;
  p->stopped = 1;
  if (p->box) p->box->p = NULL;
  p->box = NULL;
  if (p->prev) p->prev->next = p->next;
  else inst->active = p->next;
  if (p->next) p->next->prev = p->prev;
  uv_poll_stop(&p->uv);
  inst->closing++;
  uv_close((uv_handle_t *)&p->uv, on_close);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  struct poll *p = h->data;
  napi_env env = p->env;
  napi_handle_scope scope;
  napi_value fn, recv, argv[2], result;
  napi_status st;
  if (p->stopped) return;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_get_reference_value(env, p->cb, &fn);
  napi_get_global(env, &recv);
  napi_create_int32(env, status, &argv[0]);
  napi_create_int32(env, events, &argv[1]);
  p->in_cb = 1;
  st = napi_make_callback(env, p->actx, recv, fn, 2, argv, &result);
  if (st == napi_pending_exception) {
    /* No JS frame is below us to catch it: report it as Node reports any
     * exception thrown from an event callback. An 'uncaughtException' handler
     * runs synchronously here and may call pollStop(), hence in_cb is still set. */
    napi_value err;
    if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
  }
  p->in_cb = 0;
  /* pollStop() from inside the callback deferred this until the callback ended. */
  if (p->stopped) release_js(p);
  napi_close_handle_scope(env, scope);
}

static void box_finalize(napi_env env, void *data, void *hint) {
  struct poll_box *box = data;
  (void)env;
  (void)hint;
  if (box->p) box->p->box = NULL;
  free(box);
}

static napi_value uv_fail(napi_env env, int err, const char *syscall) {
  napi_value code, msg, error;
  char text[128];
  snprintf(text, sizeof(text), "%s: %s", syscall, uv_strerror(err));
  napi_create_string_utf8(env, uv_err_name(err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  set(env, error, "errno", num(env, err));
  set(env, error, "syscall", str(env, syscall, strlen(syscall)));
  napi_throw(env, error);
  return NULL;
}

static struct poll_box *get_box(napi_env env, napi_value v) {
  bool ok = false;
  void *data = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external) return NULL;
  if (napi_check_object_type_tag(env, v, &POLL_TAG, &ok) != napi_ok || !ok) return NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok) return NULL;
  return data;
}

napi_value PollStart(napi_env env, napi_callback_info info) {
  struct instance *inst;
  struct poll *p;
  struct poll_box *box;
  uv_loop_t *loop;
  napi_value handle, resource, name;
  napi_valuetype t;
  int r;
  ARGS(3);
  INT_ARG(0, fd);
  INT_ARG(1, events);
  if (napi_typeof(env, argv[2], &t) != napi_ok || t != napi_function) return type_error(env, "fdstore: cb must be a function");
  CHECK(napi_get_instance_data(env, (void **)&inst));
  CHECK(napi_get_uv_event_loop(env, &loop));
  p = calloc(1, sizeof(*p));
  box = calloc(1, sizeof(*box));
  if (!p || !box) {
    free(p);
    free(box);
    return fail(env, "fdstore: out of memory");
  }
  /* uv_poll_init sets O_NONBLOCK on fd and refuses fds epoll cannot watch. */
  if ((r = uv_poll_init(loop, &p->uv, (int)fd)) < 0) {
    free(p);
    free(box);
    return uv_fail(env, r, "uv_poll_init");
  }
  p->uv.data = p;
  p->env = env;
  p->inst = inst;
  if ((r = uv_poll_start(&p->uv, (int)events, on_poll)) < 0) {
    free(box);
    inst->closing++;
    uv_close((uv_handle_t *)&p->uv, on_close);
    return uv_fail(env, r, "uv_poll_start");
  }
  p->box = box;
  box->p = p;
  p->next = inst->active;
  if (p->next) p->next->prev = p;
  inst->active = p;
  if (napi_create_external(env, box, box_finalize, NULL, &handle) != napi_ok) {
    box->p = NULL;
    free(box);
    p->box = NULL;
    close_poll(p);
    return fail(env, "fdstore: napi_create_external");
  }
  if (napi_type_tag_object(env, handle, &POLL_TAG) != napi_ok || napi_create_object(env, &resource) != napi_ok ||
      napi_create_string_utf8(env, "fdstore.poll", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, resource, name, &p->actx) != napi_ok) {
    close_poll(p);
    return fail(env, "fdstore: pollStart setup");
  }
  if (napi_create_reference(env, argv[2], 1, &p->cb) != napi_ok ||
      napi_create_reference(env, handle, 1, &p->self) != napi_ok) {
    close_poll(p);
    return fail(env, "fdstore: napi_create_reference"); /* refs leak: env is failing anyway */
  }
  return handle;
}

napi_value PollUpdate(napi_env env, napi_callback_info info) {
  struct poll_box *box;
  int r;
  ARGS(2);
  INT_ARG(1, events);
  if (!(box = get_box(env, argv[0]))) return type_error(env, "fdstore: not a PollHandle");
  if (!box->p) return fail(env, "fdstore: pollUpdate on a stopped PollHandle");
  if ((r = uv_poll_start(&box->p->uv, (int)events, on_poll)) < 0) return uv_fail(env, r, "uv_poll_start");
  return NULL;
}

napi_value PollStop(napi_env env, napi_callback_info info) {
  struct poll_box *box;
  struct poll *p;
  ARGS(1);
  if (!(box = get_box(env, argv[0]))) return type_error(env, "fdstore: not a PollHandle");
  if (!(p = box->p)) return NULL;
  close_poll(p);
  if (!p->in_cb) release_js(p);
  return NULL;
}

/* Worker or environment shutdown with handles still started: close them and
 * let teardown proceed once libuv has run their close callbacks. */
static void teardown(napi_async_cleanup_hook_handle hook, void *arg) {
  struct instance *inst = arg;
  (void)hook;
  inst->tearing_down = 1;
  while (inst->active) close_poll(inst->active);
  if (inst->closing == 0) {
    napi_remove_async_cleanup_hook(inst->hook);
    inst->hook = NULL;
  }
}

static void instance_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

napi_status poll_init(napi_env env) {
  struct instance *inst = calloc(1, sizeof(*inst));
  napi_status st;
  if (!inst) return napi_generic_failure;
  if ((st = napi_set_instance_data(env, inst, instance_finalize, NULL)) != napi_ok) {
    free(inst);
    return st;
  }
  return napi_add_async_cleanup_hook(env, teardown, inst, &inst->hook);
}

