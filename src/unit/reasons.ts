/**
 * The closed sets of reasons the Observer reports (unit/observer.ts): metric labels
 * and the `reason` of log lines. They sit with the unit model, at the bottom, for
 * the reason systemd's ServiceResult sits in service.h and not in the code that
 * produces it: the Observer names them, and the observers (log, metrics) need the
 * whole set at run time without importing notify/ or restore/ (test/unit/layering).
 * Why fds were closed (DropReason) stays with the store, which unit/ sits on.
 */

/** Bounded reasons a whole notify datagram is dropped (notify/parse.ts, notify/server.ts). */
export type RejectReason =
  | 'too_large'
  | 'nul_byte'
  | 'no_credentials'
  | 'truncated'
  | 'unauthorized'
  | 'bad_barrier';

export const REJECT_REASONS: readonly RejectReason[] = [
  'too_large',
  'nul_byte',
  'no_credentials',
  'truncated',
  'unauthorized',
  'bad_barrier',
];

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
