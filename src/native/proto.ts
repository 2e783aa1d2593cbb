/**
 * Wire constants shared with the C side (agent/include/proto.h), in one place for
 * TypeScript. test/native/proto.test.ts reads proto.h and fails if any differs.
 */

/** Restore protocol header line. */
export const PROTO_MAGIC = 'FDSTORE-RESTORE 1\n';
/** Kernel SCM_MAX_FD: the most fds one SCM_RIGHTS message can carry. */
export const FDS_PER_MSG = 253;
/**
 * How long fdstore-exec waits for each restore message of a connected agent
 * (FDSTORE_EXEC_TIMEOUT_MS overrides it); src/restore/deadlines.ts derives the
 * agent's restore deadlines from it.
 */
export const RESTORE_TIMEOUT_MS = 5000;
/** systemd's FDNAME_MAX. */
export const FDNAME_MAX = 255;
/** Largest restore message: "F\n" + FDS_PER_MSG names of FDNAME_MAX bytes + '\n' each. */
export const RESTORE_MSG_MAX = 2 + FDS_PER_MSG * (FDNAME_MAX + 1);
/** systemd's NOTIFY_BUFFER_MAX (PIPE_BUF): a notify datagram of 4097+ bytes is dropped. */
export const NOTIFY_BYTES_MAX = 4096;
/** systemd's NOTIFY_FD_MAX: control buffer room for this many fds per datagram. */
export const NOTIFY_FDS_MAX = 768;
/** systemd's SD_LISTEN_FDS_START. */
export const LISTEN_FDS_START = 3;
/**
 * What the launcher holds besides N restored fds: stdio and the targets at 3..,
 * its socket, one batch of FDS_PER_MSG in transit, 3 spare. It needs
 * RLIMIT_NOFILE >= N + this (agent/launcher/restore.c, agent/limits.ts).
 */
export const LAUNCHER_RESERVED_FDS = LISTEN_FDS_START + 1 + FDS_PER_MSG + 3;
/** Socket file names inside DIR/NAME/. */
export const NOTIFY_NAME = 'notify';
export const RESTORE_NAME = 'restore';
/** Launcher exit codes (s6 convention). */
export const EXIT_USAGE = 100;
export const EXIT_SYSCALL = 111;
export const EXIT_NOEXEC = 126;
export const EXIT_NOTFOUND = 127;
