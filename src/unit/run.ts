/**
 * A container's run: from its start (launcher connects, or agent start) to the exit
 * of its main process. Readiness, status and runtime overrides live here and are
 * reset when a new run starts (A2.5, N4.6, A2.12); the store lives elsewhere.
 * Pure: time is passed in (milliseconds on a monotonic clock).
 */
import type { NotifyAccess } from '../notify/values.js';

/**
 * `unknown`: the run the agent found when it started again while the container
 * may still run (an agent restart): it did not see READY=1 or the main process
 * start, so it neither claims nor denies readiness (docs/scope.md).
 */
export type RunPhase = 'unknown' | 'starting' | 'ready' | 'reloading' | 'stopping' | 'exited';

export interface Liveness {
  ok: boolean;
  reason: string;
}

/** Sender pids a run remembers as checked (unit/run.ts checkedSenders). */
export const CHECKED_SENDERS_MAX = 64;

export class Run {
  phase: RunPhase;
  mainPid: number | null = null;
  /** Which start of the container this run is (unit/instance.ts), null when not known. */
  instance: string | null = null;
  /**
   * Sender pids already checked for a new start in this run: one /proc read per
   * new sender, not per datagram, also when several workers (NotifyAccess=all)
   * take turns. Bounded: emptied when full.
   */
  readonly checkedSenders = new Set<number>();
  status: string | null = null;
  errno: number | null = null;
  notifyAccessOverride: NotifyAccess | null = null;
  /** WATCHDOG_USEC= override in µs; 0n disables for this run (A2.12). */
  watchdogUsecOverride: bigint | null = null;
  lastPingMs: number | null = null;
  watchdogDeadlineMs: number | null = null;
  startDeadlineMs: number | null;
  /** Set once the watchdog expired or was triggered; cleared by the next run only. */
  watchdogFailure: string | null = null;
  startTimedOut = false;
  readonly startedAtMs: number;

  constructor(
    readonly id: number,
    nowMs: number,
    private watchdogSec: number,
    timeoutStartSec: number,
    /** The agent restarted: this run began before it (see RunPhase). */
    sinceAgentRestart = false,
  ) {
    this.startedAtMs = nowMs;
    this.phase = sinceAgentRestart ? 'unknown' : 'starting';
    // An app that may be serving for hours must not time out its start now.
    this.startDeadlineMs = timeoutStartSec > 0 && !sinceAgentRestart ? nowMs + timeoutStartSec * 1000 : null;
  }

  /** W5.1: effective timeout in ms, null when off. */
  watchdogMs(): number | null {
    if (this.watchdogUsecOverride !== null) {
      const u = this.watchdogUsecOverride;
      if (u === 0n || u === 0xffffffffffffffffn) return null;
      return Number(u) / 1000;
    }
    return this.watchdogSec > 0 ? this.watchdogSec * 1000 : null;
  }

  /**
   * watchdogSec changed by a config reload: the deadline armed now stays, the next
   * arm (READY=1, WATCHDOG=1) uses the new value. A WATCHDOG_USEC= override still wins.
   */
  setWatchdogSec(sec: number): void {
    this.watchdogSec = sec;
  }

  /** W5.3: (re)arm from now, e.g. on READY=1 or WATCHDOG=1. */
  armWatchdog(nowMs: number): void {
    const t = this.watchdogMs();
    this.watchdogDeadlineMs = t === null ? null : nowMs + t;
  }

  ready(nowMs: number): void {
    if (this.phase === 'stopping' || this.phase === 'exited') return; // A2.3: STOPPING is final
    this.phase = 'ready';
    this.startDeadlineMs = null;
    this.armWatchdog(nowMs);
  }

  /** A2.2: systemd enters reloading only from running: before READY=1 it is ignored. */
  reloading(): void {
    if (this.phase !== 'ready' && this.phase !== 'reloading') return;
    this.phase = 'reloading';
  }

  /** W5.3: the watchdog runs only in running states; STOPPING=1 (A2.3) stops it. */
  stopping(): void {
    if (this.phase === 'exited') return;
    this.phase = 'stopping';
    this.watchdogDeadlineMs = null;
  }

  /** The main process exited: the run is over; its timers stop (W5.3). */
  exit(): void {
    this.phase = 'exited';
    this.watchdogDeadlineMs = null;
    this.startDeadlineMs = null;
  }

  ping(nowMs: number): void {
    this.lastPingMs = nowMs;
    this.armWatchdog(nowMs);
  }

  /** A2.13: push running deadlines to at least now + usec; never shortens. */
  extend(nowMs: number, usec: bigint): void {
    if (usec === 0n) return;
    const until = nowMs + Number(usec) / 1000;
    if (this.startDeadlineMs !== null && this.startDeadlineMs < until) this.startDeadlineMs = until;
    if (this.watchdogDeadlineMs !== null && this.watchdogDeadlineMs < until) this.watchdogDeadlineMs = until;
  }

  /** A2.11 WATCHDOG=trigger: fail at once. */
  trigger(): void {
    this.watchdogFailure = 'watchdog triggered by the application (WATCHDOG=trigger)';
    this.watchdogDeadlineMs = null;
  }

  /**
   * Advance timers to now; returns what newly failed so the caller can count,
   * log and optionally signal exactly once.
   */
  tick(nowMs: number): 'watchdog' | 'start_timeout' | null {
    if (this.phase === 'exited') return null;
    if (this.watchdogFailure === null && this.watchdogDeadlineMs !== null && nowMs >= this.watchdogDeadlineMs) {
      this.watchdogFailure = `watchdog timeout (limit ${this.watchdogMs()} ms)`;
      this.watchdogDeadlineMs = null;
      return 'watchdog';
    }
    if (!this.startTimedOut && this.startDeadlineMs !== null && nowMs >= this.startDeadlineMs) {
      this.startTimedOut = true;
      this.startDeadlineMs = null;
      return 'start_timeout';
    }
    return null;
  }

  /** Earliest pending deadline, so the caller can schedule one timer. */
  nextDeadlineMs(): number | null {
    // A failed watchdog stays failed for the run: later pings may set a deadline that tick() ignores.
    const wd = this.watchdogFailure === null ? this.watchdogDeadlineMs : null;
    const ds = [wd, this.startDeadlineMs].filter((d): d is number => d !== null);
    return ds.length === 0 ? null : Math.min(...ds);
  }

  liveness(): Liveness {
    if (this.watchdogFailure !== null) return { ok: false, reason: this.watchdogFailure };
    if (this.startTimedOut) return { ok: false, reason: 'start timeout: no READY=1 within timeoutStartSec' };
    return { ok: true, reason: 'ok' };
  }

  /**
   * Readiness: READY=1 seen this run, not stopping. RELOADING=1 stays ready (see
   * docs). Unknown since an agent restart counts as ready: an agent restart must
   * not take a serving app out of its Service (docs/scope.md).
   */
  readiness(): Liveness {
    switch (this.phase) {
      case 'unknown':
        return { ok: true, reason: 'unknown since agent restart' };
      case 'ready':
      case 'reloading':
        return { ok: true, reason: this.phase };
      case 'starting':
        return { ok: false, reason: 'no READY=1 in this run yet' };
      case 'stopping':
        return { ok: false, reason: 'STOPPING=1 received' };
      case 'exited':
        return { ok: false, reason: 'main process exited' };
    }
  }
}
