/* fdstore-exec internals shared by launcher.c (invocation, exec), restore.c
 * (fetching fds from the agent) and env.c (the environment the app sees). */
#ifndef FDSTORE_LAUNCHER_H
#define FDSTORE_LAUNCHER_H

#include <stddef.h>

#define PROG "fdstore-exec"

/* A macro's value as a string literal (for --help). */
#define STR_(x) #x
#define STR(x) STR_(x)

/* How long to wait for an agent that is not there yet (classic, non-sidecar mode). */
#define WAIT_MS_DEFAULT 10000
/* How often to retry connecting to an absent agent. */
#define RETRY_MS 50

struct restore {
	int agent;                  /* 1: an agent answered; 0: none, start without fds */
	unsigned n;                 /* fds now at 3 .. 3+n-1 */
	int notify;                 /* header notify= */
	unsigned long long fdstore_max;
	unsigned long long watchdog_usec;
	char *fdnames_env;          /* "LISTEN_FDNAMES=a:b:c", exactly sized; NULL if n == 0 */
	size_t fdnames_len;         /* strlen(fdnames_env) */
};

/* restore.c: connect to path and fetch the store into r. Exits 111 on any failure
 * of a live agent; returns with r->agent = 0 if nobody listened for wait_ms. */
void restore_fetch(const char *path, long wait_ms, long timeout_ms, struct restore *r);

/* env.c: set or clear every variable systemd's exec would, for dir and r. */
void env_apply(const char *dir, const struct restore *r);

/* launcher.c */
_Noreturn void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
_Noreturn void die_errno(int code, const char *what);
long long now_ms(void);

#endif
