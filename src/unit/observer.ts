/**
 * Everything the agent decides goes through an Observer: the log writes a line,
 * metrics count. The rules never know which observers exist.
 */
import type { Fields, Logger } from '../log/log.js';
import type { RejectReason } from '../notify/parse.js';
import type { DropReason } from '../store/store.js';
import { FailureLogGate, type RestoreFailure } from '../restore/failure.js';
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

export function logObserver(log: Logger, nowMs: () => number = () => performance.now()): Observer {
  const restoreGate = new FailureLogGate();
  return {
    accepted: () => {},
    rejected: (container, reason, detail, sender) =>
      log.warning('notify message dropped', { container, reason, detail, pid: sender?.pid, uid: sender?.uid }),
    dropped: (container, reason, count, fields) =>
      (DEBUG_DROPS.has(reason) ? log.debug : INFO_DROPS.has(reason) ? log.info : log.warning)('closed fds', {
        container,
        reason,
        count,
        ...fields,
      }),
    stored: (container, count, fdname) => log.debug('stored fds', { container, count, fdname }),
    warn: (container, msg, fields) => log.warning(msg, { container, ...fields }),
    stateChanged: (container, phase) => log.info('state changed', { container, state: phase }),
    mainPid: (container, pid) => log.info('main pid set', { container, pid }),
    watchdogPing: () => {},
    watchdogFailed: (container, kind) => log.warning('watchdog failure', { container, kind }),
    runStarted: (container, mainPid) => log.info('run started', { container, mainPid }),
    restored: (container, fds, seconds) => log.info('restored fds', { container, fds, seconds }),
    restoreFailed: (container, reason, fields) => {
      const held = restoreGate.pass(`${container}\0${reason}`, nowMs());
      if (held === null) return;
      // Refused: never started; failed: started, then abandoned (the store is untouched either way).
      const msg = reason === 'refused' || reason === 'busy' ? 'restore refused' : 'restore failed';
      log.warning(msg, { container, reason, ...fields, ...(held > 0 ? { suppressed: held } : {}) });
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
