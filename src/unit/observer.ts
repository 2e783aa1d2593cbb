/**
 * Everything the agent decides goes through an Observer: the log writes a line,
 * metrics count. The rules never know which observers exist.
 */
import type { Fields, Level, Logger } from '../log/log.js';
import { LOG_RATE_LIMIT, RateLimiter, boundFields } from '../log/ratelimit.js';
import { DROP_REASONS, type DropReason } from '../store/store.js';
import { REJECT_REASONS, RESTORE_FAILURES, type RejectReason, type RestoreFailure } from './reasons.js';
import type { RunPhase } from './run.js';

export interface SenderInfo {
  pid: number;
  uid: number;
}

export interface Observer {
  accepted(container: string): void;
  rejected(container: string, reason: RejectReason, detail: string, sender?: SenderInfo): void;
  dropped(container: string, reason: DropReason, count: number, fields: Fields): void;
  stored(container: string, count: number, fdname: string): void;
  warn(container: string, msg: string, fields: Fields): void;
  stateChanged(container: string, phase: RunPhase): void;
  mainPid(container: string, pid: number): void;
  watchdogPing(container: string): void;
  watchdogFailed(container: string, kind: 'timeout' | 'trigger' | 'start_timeout'): void;
  runStarted(container: string, mainPid: number | null): void;
  restored(container: string, fds: number, seconds: number): void;
  /** A restore connection ended without its fds (refused, or aborted mid-transfer). */
  restoreFailed(container: string, reason: RestoreFailure, fields: Fields): void;
}

/** Routine closes: systemd logs them at debug level; a mass hang-up must not flood the log. */
const DEBUG_DROPS = new Set<DropReason>(['duplicate', 'hangup']);
/** Closes asked for by the app or operator. */
const INFO_DROPS = new Set<DropReason>(['removed']);

/**
 * What a suppressed log line was about: the reason of a rejected datagram or of
 * closed fds, or the kind of event. A closed set (a metric label).
 */
export type LogReason = RejectReason | DropReason | 'warning' | 'state_changed' | 'main_pid' | 'watchdog' | 'run_started' | 'restored' | `restore_${RestoreFailure}`;
export const LOG_REASONS: readonly LogReason[] = [
  ...new Set<LogReason>([...REJECT_REASONS, ...DROP_REASONS, 'warning', 'state_changed', 'main_pid', 'watchdog', 'run_started', 'restored', ...RESTORE_FAILURES.map((r) => `restore_${r}` as const)]),
];

export interface LogObserverOptions {
  /** Defaults to LOG_RATE_LIMIT on performance.now(). */
  limiter?: RateLimiter;
  /** One line suppressed by the limiter (the metrics count them). */
  suppressed?(container: string, reason: LogReason): void;
}

/**
 * Log lines per decision, rate-limited per container and reason (a peer can send
 * millions of datagrams), with attacker-chosen values cut to LOG_VALUE_MAX. Debug
 * lines are not limited: the debug level is opted into, and tests count every close.
 */
export function logObserver(log: Logger, opts: LogObserverOptions = {}): Observer {
  const limiter = opts.limiter ?? new RateLimiter(LOG_RATE_LIMIT, () => performance.now());
  const emit = (level: Level, container: string, reason: LogReason, msg: string, fields: Fields): void => {
    if (level !== 'debug') {
      const v = limiter.take(`${container}\0${reason}`);
      if (!v.allowed) {
        opts.suppressed?.(container, reason);
        return;
      }
      if (v.suppressedBefore > 0) fields = { ...fields, suppressedBefore: v.suppressedBefore };
    }
    log[level](msg, boundFields({ container, ...fields }));
  };
  return {
    accepted: () => {},
    rejected: (container, reason, detail, sender) =>
      emit('warning', container, reason, 'notify message dropped', { reason, detail, pid: sender?.pid, uid: sender?.uid }),
    dropped: (container, reason, count, fields) =>
      emit(DEBUG_DROPS.has(reason) ? 'debug' : INFO_DROPS.has(reason) ? 'info' : 'warning', container, reason, 'closed fds', {
        reason,
        count,
        ...fields,
      }),
    stored: (container, count, fdname) => log.debug('stored fds', boundFields({ container, count, fdname })),
    warn: (container, msg, fields) => emit('warning', container, 'warning', msg, fields),
    stateChanged: (container, phase) => emit('info', container, 'state_changed', 'state changed', { state: phase }),
    mainPid: (container, pid) => emit('info', container, 'main_pid', 'main pid set', { pid }),
    watchdogPing: () => {},
    watchdogFailed: (container, kind) => emit('warning', container, 'watchdog', 'watchdog failure', { kind }),
    runStarted: (container, mainPid) => emit('info', container, 'run_started', 'run started', { mainPid }),
    restored: (container, fds, seconds) => emit('info', container, 'restored', 'restored fds', { fds, seconds }),
    restoreFailed: (container, reason, fields) => {
      // Refused: never started; failed: started, then abandoned (the store is untouched either way).
      const msg = reason === 'refused' || reason === 'busy' ? 'restore refused' : 'restore failed';
      emit('warning', container, `restore_${reason}`, msg, { reason, ...fields });
    },
  };
}

/** Send every event to each observer in order. */
export function fanout(...observers: Observer[]): Observer {
  const o = {} as Record<keyof Observer, (...a: unknown[]) => void>;
  const keys = Object.keys(observers[0] ?? {}) as (keyof Observer)[];
  for (const k of keys) {
    o[k] = (...args: unknown[]) => {
      for (const ob of observers) (ob[k] as (...a: unknown[]) => void)(...args);
    };
  }
  return o as unknown as Observer;
}
