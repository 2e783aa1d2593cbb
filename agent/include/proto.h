/* Wire constants shared by the agent's addon and the fdstore-exec launcher.
 *
 * Restore protocol (AF_UNIX SOCK_SEQPACKET, socket DIR/NAME/restore). The agent
 * speaks first, right after accept() and the peer check; the launcher only reads.
 *
 *   1. header   "FDSTORE-RESTORE 1\n" followed by "key=value\n" lines:
 *                 fds=N            total fds that follow (0 allowed)
 *                 notify=0|1       set NOTIFY_SOCKET=DIR/notify (0: NotifyAccess=none)
 *                 fdstore=MAX      FileDescriptorStoreMax (FDSTORE= is set only if > 0)
 *                 watchdog_usec=U  WATCHDOG_USEC (0: no watchdog; WATCHDOG_PID is the launcher)
 *               unknown keys are ignored (forward compatible).
 *   2. batches  "F\n" then one "name\n" per fd, with the same number of fds in
 *               SCM_RIGHTS (1..FDSTORE_FDS_PER_MSG). Names never contain '\n' or ':'.
 *   3. end      "E\n" (no fds). The launcher checks the fds it got add up to N.
 *   A message "X reason\n" at any point aborts the restore: the launcher exits 111.
 *   The agent serves one restore per container at a time; a connection that
 *   cannot be served in time gets "X reason\n" instead of a header
 *   (docs/protocol.md, "Restores in flight").
 */
#ifndef FDSTORE_PROTO_H
#define FDSTORE_PROTO_H

#define FDSTORE_PROTO_MAGIC "FDSTORE-RESTORE 1\n"

/* Kernel SCM_MAX_FD: the most fds one SCM_RIGHTS message can carry. */
#define FDSTORE_FDS_PER_MSG 253

/* How long fdstore-exec waits for each restore message of a connected agent
 * (FDSTORE_EXEC_TIMEOUT_MS overrides it). Every restore deadline of the agent is
 * derived from this one value (src/restore/deadlines.ts): a restore waiting for
 * the one in flight is refused at half of it, before its launcher would give
 * up silently; a launcher that takes no message for a fifth of it is abandoned. */
#define FDSTORE_RESTORE_TIMEOUT_MS 5000

/* systemd's FDNAME_MAX. */
#define FDSTORE_NAME_MAX 255

/* Largest restore message: "F\n" + 253 names of 255 bytes + '\n' each. */
#define FDSTORE_RESTORE_MSG_MAX (2 + FDSTORE_FDS_PER_MSG * (FDSTORE_NAME_MAX + 1))

/* systemd's NOTIFY_BUFFER_MAX (PIPE_BUF): a notify datagram of 4097+ bytes is dropped. */
#define FDSTORE_NOTIFY_BYTES_MAX 4096

/* systemd's NOTIFY_FD_MAX: control buffer room for this many fds per datagram. */
#define FDSTORE_NOTIFY_FDS_MAX 768

/* systemd's SD_LISTEN_FDS_START. */
#define FDSTORE_LISTEN_FDS_START 3

/* What the launcher holds besides N restored fds: stdio and the targets at 3..,
 * its socket above them, one batch of at most 253 received fds in transit (moved
 * above the targets when an inherited fd sits among them), and 3 spare for fds the
 * runtime left open. The launcher needs RLIMIT_NOFILE >= N + this; the agent
 * refuses a fileDescriptorStoreMax that would not fit under its own limit. */
#define FDSTORE_LAUNCHER_RESERVED_FDS (FDSTORE_LISTEN_FDS_START + 1 + FDSTORE_FDS_PER_MSG + 3)

/* Socket file names inside DIR/NAME/. */
#define FDSTORE_NOTIFY_NAME "notify"
#define FDSTORE_RESTORE_NAME "restore"

/* Launcher exit codes (s6 convention). */
#define FDSTORE_EXIT_USAGE 100
#define FDSTORE_EXIT_SYSCALL 111
#define FDSTORE_EXIT_NOEXEC 126
#define FDSTORE_EXIT_NOTFOUND 127

#endif
