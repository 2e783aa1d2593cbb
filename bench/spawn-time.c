/* Times "start a launcher until the app's first instruction" without a runtime's
 * spawn overhead in the way: reads CLOCK_MONOTONIC, posix_spawn()s COMMAND with
 * stdout on a pipe, and reads the app's "APP_NS LISTEN_FDS OK" line (first-instr).
 *
 *   spawn-time COMMAND [ARGS...]
 *
 * Prints {"us":..,"listenFds":..,"ok":..,"status":..}; exits 1 unless the app
 * reported its fds in place and everything exited 0. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

extern char **environ;

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: spawn-time COMMAND [ARGS...]\n");
		return 100;
	}
	int out[2];
	if (pipe2(out, O_CLOEXEC) < 0)
		bench_fail("spawn-time", "pipe2");
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	pid_t pid;
	long long t0 = now_ns();
	errno = posix_spawn(&pid, argv[1], &fa, NULL, argv + 1, environ);
	if (errno)
		bench_fail("spawn-time", "posix_spawn");
	close(out[1]);
	char line[128];
	ssize_t len = 0, r;
	while (len < (ssize_t)sizeof line - 1 &&
	       ((r = read(out[0], line + len, sizeof line - 1 - (size_t)len)) > 0 || (r < 0 && errno == EINTR)))
		len += r > 0 ? r : 0;
	line[len] = '\0';
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	long long app = 0;
	int fds = -1, ok = 0;
	int parsed = sscanf(line, "%lld %d %d", &app, &fds, &ok) == 3;
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	printf("{\"us\":%.1f,\"listenFds\":%d,\"ok\":%s,\"status\":%d}\n",
	       parsed ? (double)(app - t0) / 1000.0 : -1.0, fds, parsed && ok ? "true" : "false", code);
	return parsed && ok && code == 0 ? 0 : 1;
}
