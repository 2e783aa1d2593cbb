/*
 * fdstore: the container image's command (its ENTRYPOINT and what
 * `kubectl exec POD -c fdstore -- fdstore ls` runs). The image has no shell and
 * no /usr/bin/env, so bin/fdstore.js cannot start through its own
 * `#!/usr/bin/env node` line: this execs node on it, with fixed paths (no PATH
 * lookup), so node itself is the process (PID 1 in the container, receiving
 * SIGTERM directly; no wrapper stays in between).
 *
 * Built only for the image (Dockerfile), against the same glibc the image ships.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FDSTORE_NODE
#define FDSTORE_NODE "/usr/local/bin/node"
#endif
#ifndef FDSTORE_JS
#define FDSTORE_JS "/opt/fdstore/bin/fdstore.js"
#endif

/* Exit codes as the launcher's (s6 convention): 111 for a failed system call. */
#define EXIT_SYSCALL 111

int main(int argc, char **argv) {
  /* argc may be 0 (execve with an empty argv): then there are no arguments to pass. */
  int nargs = argc > 1 ? argc - 1 : 0;
  char **args = calloc((size_t)nargs + 3, sizeof *args);
  if (args == NULL) {
    fprintf(stderr, "fdstore: calloc: %s\n", strerror(errno));
    return EXIT_SYSCALL;
  }
  args[0] = "node";
  args[1] = FDSTORE_JS;
  for (int i = 0; i < nargs; i++) args[i + 2] = argv[i + 1];
  args[nargs + 2] = NULL;
  execv(FDSTORE_NODE, args);
  fprintf(stderr, "fdstore: exec %s: %s\n", FDSTORE_NODE, strerror(errno));
  return EXIT_SYSCALL;
}
