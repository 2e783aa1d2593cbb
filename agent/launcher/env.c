/* The environment the app starts with: what systemd's exec sets for a main
 * process (LISTEN_*, NOTIFY_SOCKET, FDSTORE, WATCHDOG_*), and nothing stale.
 * The launcher may itself have been started with these variables (a supervisor
 * above it, a copied pod spec); left in place they would describe fds or a pid
 * that are not the app's, so each one is either set fresh or removed. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "launcher.h"

static void set(const char *key, const char *value)
{
	if (setenv(key, value, 1) < 0)
		die_errno(FDSTORE_EXIT_SYSCALL, "setenv");
}

static void set_ull(const char *key, unsigned long long value)
{
	char buf[24];
	snprintf(buf, sizeof buf, "%llu", value);
	set(key, buf);
}

static void unset(const char *key)
{
	if (unsetenv(key) < 0)
		die_errno(FDSTORE_EXIT_SYSCALL, "unsetenv");
}

void env_apply(const char *dir, const struct restore *r)
{
	/* LISTEN_PIDFDID is only removed: the launcher does not compute a pidfd id,
	 * and libsystemd ignores the fds when one is present and wrong. */
	unset("LISTEN_FDS");
	unset("LISTEN_PID");
	unset("LISTEN_FDNAMES");
	unset("LISTEN_PIDFDID");

	/* We exec in place, so our pid is the app's. systemd sets none of LISTEN_*
	 * for 0 fds (sd_listen_fds treats LISTEN_FDS=0 as invalid). */
	unsigned long long pid = (unsigned long long)getpid();
	if (r->n > 0) {
		set_ull("LISTEN_FDS", r->n);
		set_ull("LISTEN_PID", pid);
		if (putenv(r->fdnames_env) != 0)
			die_errno(FDSTORE_EXIT_SYSCALL, "putenv");
	}

	/* With no agent (yet) the app still gets NOTIFY_SOCKET: an agent that comes
	 * up later then hears its READY=1. FDSTORE= needs the agent's max. */
	int notify = r->agent ? r->notify : 1;
	if (notify) {
		size_t len = strlen(dir) + sizeof "/" FDSTORE_NOTIFY_NAME;
		char *path = malloc(len);
		if (!path)
			die_errno(FDSTORE_EXIT_SYSCALL, "malloc");
		snprintf(path, len, "%s/%s", strcmp(dir, "/") ? dir : "", FDSTORE_NOTIFY_NAME);
		set("NOTIFY_SOCKET", path);
		free(path);
	} else {
		unset("NOTIFY_SOCKET");
	}
	if (r->agent && notify && r->fdstore_max > 0)
		set_ull("FDSTORE", r->fdstore_max);
	else
		unset("FDSTORE");

	if (r->agent && r->watchdog_usec > 0) {
		set_ull("WATCHDOG_USEC", r->watchdog_usec);
		set_ull("WATCHDOG_PID", pid);
	} else {
		unset("WATCHDOG_USEC");
		unset("WATCHDOG_PID");
	}
}
