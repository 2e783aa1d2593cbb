/**
 * What the status counts from events rather than reads from the containers: fds
 * refused because the store was full, watchdog failures and start timeouts, and the
 * last restore. Since the agent started, per container (events only name the
 * configured containers, so the map is bounded by the config).
 */
import type { DropReason } from '../store/store.js';
import type { Observer } from '../unit/observer.js';
import { NO_TALLY, type ContainerTally } from './build.js';

export class StatusTally {
  private readonly byName = new Map<string, ContainerTally>();

  /** wallMs: the wall clock, ms since the epoch (lastRestore.at). */
  constructor(private readonly wallMs: () => number) {}

  get(container: string): ContainerTally {
    return this.byName.get(container) ?? NO_TALLY;
  }

  private of(container: string): ContainerTally {
    let t = this.byName.get(container);
    if (!t) this.byName.set(container, (t = { ...NO_TALLY }));
    return t;
  }

  /** Events in, counts up; arrow functions because fanout() calls them detached. */
  readonly observer: Observer = {
    accepted: () => {},
    rejected: () => {},
    dropped: (container: string, reason: DropReason, count: number) => {
      if (reason === 'over_limit') this.of(container).overLimit += count;
    },
    stored: () => {},
    warn: () => {},
    stateChanged: () => {},
    mainPid: () => {},
    watchdogPing: () => {},
    watchdogFailed: (container, kind) => {
      const t = this.of(container);
      if (kind === 'start_timeout') t.startTimeouts++;
      else t.watchdogFailures++;
    },
    runStarted: () => {},
    restored: (container, fds) => {
      this.of(container).lastRestore = { at: new Date(this.wallMs()).toISOString(), fds };
    },
    restoreFailed: () => {},
  };
}
