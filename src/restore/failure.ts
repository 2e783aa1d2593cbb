/**
 * Why a restore connection ended without the launcher getting its fds: the
 * `reason` label of fdstore_restore_failures_total (a closed set) and of the
 * "restore refused" / "restore failed" log lines.
 */

export const RESTORE_FAILURES = [
  /** The peer is not one of the container's processes (checkPeer). */
  'refused',
  /** Another restore of the container was in flight: the wait queue was full, or the wait too long. */
  'busy',
  /** The peer took no message for STALL_MS. */
  'stalled',
  /** The transfer was not done by TRANSFER_DEADLINE_MS. */
  'timeout',
  /** The peer closed its end (or the socket failed) before the end marker. */
  'disconnected',
  /** The agent stopped. */
  'shutdown',
] as const;

export type RestoreFailure = (typeof RESTORE_FAILURES)[number];
