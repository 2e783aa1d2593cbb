/* fdstore-exec: a chain-loader for app containers. Fetches the fds the agent
 * stored for this container, puts them at 3.., sets the environment systemd would
 * give a main process, and execs the app in place (so its pid is ours, which is
 * the pid the agent saw on the restore connection). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "launcher.h"

/* Largest --wait-ms / FDSTORE_EXEC_TIMEOUT_MS: a day; more is surely a typo. */
#define MS_MAX 86400000L

/* Linux's MAX_ARG_STRLEN: no single environment string may be longer. */
#define ENV_STRING_MAX (32 * 4096)

#ifndef FDSTORE_VERSION /* set by the Makefile from package.json */
#define FDSTORE_VERSION "unknown"
#endif

static const char usage_text[] =
	"usage: " PROG " [--dir DIR] [--wait-ms N] -- COMMAND [ARGS...]\n"
	"\n"
	"Fetches the file descriptors the fdstore agent keeps for this container from\n"
	"DIR/" FDSTORE_RESTORE_NAME ", puts them at fd 3, 4, ... and execs COMMAND in place with\n"
	"LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES (only when there are fds),\n"
	"NOTIFY_SOCKET=DIR/" FDSTORE_NOTIFY_NAME ", FDSTORE=<max> and WATCHDOG_USEC/WATCHDOG_PID\n"
	"as the agent says, like systemd starting a service's main process. Inherited\n"
	"LISTEN_* (and FDSTORE, WATCHDOG_* when not set afresh) are removed.\n"
	"\n"
	"  --dir DIR     the container's fdstore directory (default: the directory this\n"
	"                program is in); a relative DIR is taken from the current directory\n"
	"  --wait-ms N   how long to wait for an agent that is not listening yet\n"
	"                (default " STR(WAIT_MS_DEFAULT) "); then COMMAND starts without stored fds\n"
	"  --help        show this text\n"
	"  --version     print the version and exit\n"
	"\n"
	"Environment:\n"
	"  FDSTORE_EXEC_TIMEOUT_MS   how long a connected agent may stay silent before the\n"
	"                            restore fails (default " STR(FDSTORE_RESTORE_TIMEOUT_MS) "; the agent's\n"
	"                            own restore deadlines derive from this default)\n"
	"\n"
	"The agent serves one restore per container at a time. A launcher that cannot\n"
	"be served in time (another restore of the container is in flight, its peer is\n"
	"not reading) is refused: it prints the agent's reason and exits 111.\n"
	"\n"
	"Exit status (when COMMAND does not start): 100 bad usage; 111 the agent failed\n"
	"or refused the restore (this container's main process still runs, or this\n"
	"process is not the container's), or a system call failed; 126 COMMAND cannot\n"
	"be executed; 127 COMMAND not found.\n";

void die(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs(PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(code);
}

void die_errno(int code, const char *what)
{
	die(code, "%s: %s", what, strerror(errno));
}

long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

_Noreturn static void usage_error(const char *what, const char *arg)
{
	die(FDSTORE_EXIT_USAGE, "%s%s (see --help)", what, arg ? arg : "");
}

static long parse_ms(const char *what, const char *v, long min)
{
	long n = 0;
	if (*v == '\0')
		usage_error(what, " needs a number of milliseconds");
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9' || n > MS_MAX)
			usage_error(what, " needs a number of milliseconds");
		n = n * 10 + (*p - '0');
	}
	if (n < min || n > MS_MAX)
		usage_error(what, " is out of range");
	return n;
}

/* Matches "--name VALUE" and "--name=VALUE"; advances *i past a separate VALUE. */
static const char *option(const char *name, int argc, char **argv, int *i)
{
	size_t len = strlen(name);
	const char *a = argv[*i];
	if (strncmp(a, name, len) != 0)
		return NULL;
	if (a[len] == '=')
		return a + len + 1;
	if (a[len] != '\0')
		return NULL;
	if (*i + 1 >= argc)
		usage_error(name, " needs a value");
	return argv[++*i];
}

static char *join(const char *dir, const char *name)
{
	size_t len = strlen(dir) + 1 + strlen(name) + 1;
	char *p = malloc(len);
	if (!p)
		die_errno(FDSTORE_EXIT_SYSCALL, "malloc");
	snprintf(p, len, "%s/%s", strcmp(dir, "/") ? dir : "", name);
	return p;
}

/* The directory as an absolute path: libsystemd rejects a relative NOTIFY_SOCKET. */
static char *resolve_dir(const char *arg)
{
	char *dir;
	if (!arg) {
		/* After the agent replaces the binary by rename this reads
		 * ".../fdstore-exec (deleted)"; only the directory part is used. */
		char exe[PATH_MAX];
		ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
		if (len < 0)
			die(FDSTORE_EXIT_SYSCALL, "cannot find the directory of this program "
			    "(readlink /proc/self/exe: %s); pass --dir", strerror(errno));
		exe[len] = '\0';
		char *slash = strrchr(exe, '/');
		if (!slash)
			die(FDSTORE_EXIT_SYSCALL, "/proc/self/exe is not a path: %s; pass --dir", exe);
		*(slash == exe ? slash + 1 : slash) = '\0';
		dir = strdup(exe);
	} else if (arg[0] == '\0') {
		usage_error("--dir", " needs a directory");
	} else if (arg[0] == '/') {
		dir = strdup(arg);
	} else {
		char *cwd = getcwd(NULL, 0);
		if (!cwd)
			die_errno(FDSTORE_EXIT_SYSCALL, "getcwd");
		dir = join(cwd, arg);
		free(cwd);
	}
	if (!dir)
		die_errno(FDSTORE_EXIT_SYSCALL, "strdup");
	for (size_t len = strlen(dir); len > 1 && dir[len - 1] == '/'; len--)
		dir[len - 1] = '\0';
	return dir;
}

int main(int argc, char **argv)
{
	const char *dir_arg = NULL;
	long wait_ms = WAIT_MS_DEFAULT;
	long timeout_ms = FDSTORE_RESTORE_TIMEOUT_MS;
	const char *v;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		}
		if (!strcmp(argv[i], "--help")) {
			fputs(usage_text, stdout);
			return fflush(stdout) == 0 ? 0 : FDSTORE_EXIT_SYSCALL;
		}
		if (!strcmp(argv[i], "--version")) {
			fputs(PROG " " FDSTORE_VERSION "\n", stdout);
			return fflush(stdout) == 0 ? 0 : FDSTORE_EXIT_SYSCALL;
		}
		if ((v = option("--dir", argc, argv, &i)))
			dir_arg = v;
		else if ((v = option("--wait-ms", argc, argv, &i)))
			wait_ms = parse_ms("--wait-ms", v, 0);
		else if (argv[i][0] == '-')
			usage_error("unknown option ", argv[i]);
		else
			break;
	}
	if (i >= argc)
		usage_error("no command given", NULL);
	const char *t = getenv("FDSTORE_EXEC_TIMEOUT_MS");
	if (t)
		timeout_ms = parse_ms("FDSTORE_EXEC_TIMEOUT_MS", t, 1);

	char *dir = resolve_dir(dir_arg);
	char *restore_path = join(dir, FDSTORE_RESTORE_NAME);

	struct restore r;
	restore_fetch(restore_path, wait_ms, timeout_ms, &r);
	if (!r.agent)
		fprintf(stderr, PROG ": no agent at %s after %ld ms, starting without stored fds\n",
		        restore_path, wait_ms);
	env_apply(dir, &r);

	execvp(argv[i], argv + i);
	int e = errno;
	if (e == E2BIG && r.fdnames_len >= ENV_STRING_MAX)
		die(FDSTORE_EXIT_NOEXEC, "%s: %s (LISTEN_FDNAMES is %zu bytes, Linux allows %d per variable)",
		    argv[i], strerror(e), r.fdnames_len, ENV_STRING_MAX - 1);
	/* Like a shell: not found 127, found but not runnable 126. */
	die(e == ENOENT ? FDSTORE_EXIT_NOTFOUND : FDSTORE_EXIT_NOEXEC, "%s: %s", argv[i], strerror(e));
}
