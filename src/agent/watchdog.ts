/**
 * Enforces the runs' deadlines (W5.3, W5.5, W5.7) with one timer for the whole
 * agent, armed for the earliest Run.nextDeadlineMs() across containers. The runs
 * decide (Run.tick); this only wakes them up at the right time, reports what
 * failed, and optionally sends the main process SIGABRT like systemd's
 * WatchdogSignal= (config `watchdogSignal`, off by default: the kubelet restarts
 * the container on the failed livenessProbe).
 *
 * Deadlines move when a message is applied (READY=1, WATCHDOG=1, WATCHDOG_USEC=,
 * EXTEND_TIMEOUT_USEC=) and when a run starts: call reschedule() then.
 */
import type { Logger } from '../log/log.js';
import type { Observer } from '../unit/observer.js';
import type { Run } from '../unit/run.js';

/** setTimeout's limit (a signed 32-bit ms count); longer delays re-arm on wake-up. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export interface WatchedContainer {
  readonly name: string;
  readonly run: Run;
  readonly config: { readonly watchdogSignal: boolean };
}

export interface Timers<H> {
  set(fn: () => void, ms: number): H;
  clear(handle: H): void;
}

export interface WatchdogDeps<H> {
  containers(): Iterable<WatchedContainer>;
  obs: Observer;
  log: Logger;
  /** Monotonic ms: the clock the runs' deadlines are on. */
  nowMs(): number;
  timers: Timers<H>;
  /** process.kill: throws an error with `code` (EPERM, ESRCH). */
  kill(pid: number, signal: 'SIGABRT'): void;
}

export class Watchdog<H = unknown> {
  private handle: H | null = null;
  private armedFor: number | null = null;
  private stopped = false;
  /** Runs already signalled: one SIGABRT per failed run. */
  private readonly signalled = new WeakSet<Run>();

  constructor(private readonly d: WatchdogDeps<H>) {}

  /** Re-arm the timer for the earliest deadline; also acts on WATCHDOG=trigger. */
  reschedule(): void {
    this.arm(null);
  }

  /** `ticked`: the time every run was just ticked at; deadlines up to it are spent. */
  private arm(ticked: number | null): void {
    if (this.stopped) return;
    this.signalFailed();
    let next: number | null = null;
    for (const c of this.d.containers()) {
      const t = c.run.nextDeadlineMs();
      // A deadline the run did not act on at its own tick would re-fire at once, forever.
      if (t === null || (ticked !== null && t <= ticked)) continue;
      if (next === null || t < next) next = t;
    }
    if (next === this.armedFor) return;
    this.disarm();
    if (next === null) return;
    // ceil: a timer that fires a fraction early would find nothing due and spin.
    const delay = Math.min(MAX_DELAY_MS, Math.max(0, Math.ceil(next - this.d.nowMs())));
    this.armedFor = next;
    this.handle = this.d.timers.set(() => this.tick(), delay);
  }

  /** Advance every run to now, report new failures, re-arm. */
  tick(): void {
    this.handle = null;
    this.armedFor = null;
    if (this.stopped) return;
    const now = this.d.nowMs();
    for (const c of this.d.containers()) {
      // A run can fail both ways at once (watchdog and start timeout): tick until quiet.
      for (let r = c.run.tick(now); r !== null; r = c.run.tick(now)) {
        this.d.obs.watchdogFailed(c.name, r === 'watchdog' ? 'timeout' : 'start_timeout');
      }
    }
    this.arm(now);
  }

  stop(): void {
    this.stopped = true;
    this.disarm();
  }

  private disarm(): void {
    if (this.handle !== null) this.d.timers.clear(this.handle);
    this.handle = null;
    this.armedFor = null;
  }

  /** W5.5: WatchdogSignal= on expiry and on WATCHDOG=trigger, once per run. */
  private signalFailed(): void {
    for (const c of this.d.containers()) {
      const run = c.run;
      if (run.watchdogFailure === null || this.signalled.has(run) || run.phase === 'exited') continue;
      this.signalled.add(run);
      if (c.config.watchdogSignal) this.abort(c.name, run.mainPid);
    }
  }

  private abort(container: string, pid: number | null): void {
    const { log } = this.d;
    // Never 0 or 1: kill(0) would signal the agent's own process group.
    if (pid === null || pid <= 1) {
      log.warning('watchdog signal not sent: main pid unknown', { container, signal: 'SIGABRT' });
      return;
    }
    try {
      this.d.kill(pid, 'SIGABRT');
      log.warning('watchdog signal sent', { container, pid, signal: 'SIGABRT' });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EPERM') {
        log.error('watchdog signal not permitted: the agent needs CAP_KILL to signal an app running as another uid', {
          container,
          pid,
          signal: 'SIGABRT',
          code,
        });
      } else if (code === 'ESRCH') log.info('watchdog signal not sent: main process already gone', { container, pid });
      else log.error('watchdog signal failed', { container, pid, signal: 'SIGABRT', code, error: String(e) });
    }
  }
}

/**
 * An Observer that re-arms the watchdog after the messages applied in one event
 * loop turn: every accepted message may move a deadline, and a new run brings new
 * ones. The microtask coalesces a burst of datagrams into one reschedule.
 */
export function rescheduleObserver(wd: { reschedule(): void }): Observer {
  let queued = false;
  const later = (): void => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      wd.reschedule();
    });
  };
  const none = (): void => {};
  return {
    accepted: later,
    rejected: none,
    dropped: none,
    stored: none,
    warn: none,
    stateChanged: later,
    mainPid: none,
    watchdogPing: later,
    watchdogFailed: later,
    runStarted: later,
    restored: none,
    restoreFailed: none,
  };
}
