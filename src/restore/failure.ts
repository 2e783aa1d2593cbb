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

/** Lines per container and reason: one per this interval, with a count of those held back. */
export const FAILURE_LOG_INTERVAL_MS = 1000;

/**
 * Rate limit for failure log lines: a peer that connects in a loop is counted
 * in full by the metric, but logged once per FAILURE_LOG_INTERVAL_MS per key.
 * Pure: the caller passes the time.
 */
export class FailureLogGate {
  private readonly last = new Map<string, { at: number; held: number }>();

  /** null: hold this line back; else log it, with this many held back since the last. */
  pass(key: string, nowMs: number): number | null {
    const s = this.last.get(key);
    if (s !== undefined && nowMs - s.at < FAILURE_LOG_INTERVAL_MS) {
      s.held++;
      return null;
    }
    const held = s?.held ?? 0;
    this.last.set(key, { at: nowMs, held: 0 });
    return held;
  }
}
