/**
 * The status generation (the long-poll cursor) and the requests waiting on it.
 *
 * An Observer bumps the generation on every event that changes what /status
 * shows: fds stored or closed out of the store, state changes, a new run,
 * restores (served or failed), watchdog failures. Not on WATCHDOG=1 (it only moves
 * the deadline, which the status leaves out of the generation: a pinging app would
 * wake the operator every few seconds) and not on datagrams that change nothing.
 *
 * STATUS=, ERRNO= and WATCHDOG_USEC= have no event of their own: an accepted
 * datagram marks its container, and after the datagrams at hand were applied (one
 * microtask) those three fields are compared with what was last seen. A watchdog
 * ping costs that comparison and no wake-up.
 *
 * Waiters are woken once per turn of the event loop, after everything applied in
 * it, so a burst of FDSTORE=1 messages answers a long-poll once, with all of it.
 */
import type { DropReason } from '../store/store.js';
import type { Observer } from '../unit/observer.js';
import { STATUS_WAITERS_MAX } from './types.js';

/** Closes that take fds out of a store (or refuse them for over_limit, counted in overLimit). */
const STORE_CHANGES: ReadonlySet<DropReason> = new Set<DropReason>(['over_limit', 'hangup', 'removed', 'released', 'error']);

/** The fields a notify message sets without an Observer event (a Run satisfies it). */
export interface MessageFields {
  readonly status: string | null;
  readonly errno: number | null;
  watchdogMs(): number | null;
}

export interface Timers<H> {
  set(fn: () => void, ms: number): H;
  clear(handle: H): void;
}

export interface ChangesDeps<H> {
  /** The current run of a container; undefined for a name the agent does not hold. */
  runOf(name: string): MessageFields | undefined;
  timers: Timers<H>;
  /** Waiting requests at most (default STATUS_WAITERS_MAX). */
  maxWaiters?: number;
}

export type WaitResult = 'changed' | 'timeout' | 'cancelled';

export interface Waiting {
  readonly result: Promise<WaitResult>;
  /** Stop waiting (the client went away, or shutdown); idempotent. */
  cancel(): void;
}

interface Seen {
  status: string | null;
  errno: number | null;
  watchdogMs: number | null;
}

interface Waiter<H> {
  /** The generation the client has seen: woken when the generation is another. */
  after: number;
  timer: H;
  done(r: WaitResult): void;
}

export class StatusChanges<H = unknown> {
  private gen = 1;
  private readonly waiters = new Set<Waiter<H>>();
  /** Containers named by an event this turn -> whether that event already bumped. */
  private readonly touched = new Map<string, boolean>();
  private readonly seen = new Map<string, Seen>();
  private flushQueued = false;

  constructor(private readonly d: ChangesDeps<H>) {}

  get generation(): number {
    return this.gen;
  }

  /** Requests waiting now. */
  get waiting(): number {
    return this.waiters.size;
  }

  /** Something outside the events changed (a config reload). */
  bump(): void {
    this.gen++;
    this.queueFlush();
  }

  /** Record the containers' message fields as they are now (after the agent started). */
  seed(names: Iterable<string>): void {
    for (const n of names) {
      const f = this.d.runOf(n);
      if (f) this.seen.set(n, fieldsOf(f));
    }
  }

  /**
   * Wait up to `ms` for the generation to differ from `after`. Resolves at once
   * ('changed') when it does already. Null when STATUS_WAITERS_MAX requests wait
   * already: the caller answers at once instead (a waiting request cannot be
   * evicted, so waits must be bounded; see STATUS_WAITERS_MAX).
   */
  wait(after: number, ms: number): Waiting | null {
    if (after !== this.gen) return { result: Promise.resolve('changed'), cancel: () => {} };
    if (this.waiters.size >= (this.d.maxWaiters ?? STATUS_WAITERS_MAX)) return null;
    let waiter!: Waiter<H>;
    const result = new Promise<WaitResult>((resolve) => {
      waiter = {
        after,
        timer: this.d.timers.set(() => waiter.done('timeout'), ms),
        done: (r) => {
          if (!this.waiters.delete(waiter)) return;
          this.d.timers.clear(waiter.timer);
          resolve(r);
        },
      };
    });
    this.waiters.add(waiter);
    return { result, cancel: () => waiter.done('cancelled') };
  }

  /** Release every waiter (shutdown); each answers with 'cancelled'. */
  cancelAll(): void {
    for (const w of [...this.waiters]) w.done('cancelled');
  }

  /** Events in; arrow functions because fanout() calls them detached. */
  readonly observer: Observer = {
    accepted: (c) => this.touch(c, false),
    rejected: () => {},
    dropped: (c, reason, count) => {
      if (count > 0 && STORE_CHANGES.has(reason)) this.changed(c);
    },
    stored: (c, count) => {
      if (count > 0) this.changed(c);
    },
    warn: () => {},
    stateChanged: (c) => this.changed(c),
    // The status shows no pid: a new main pid changes nothing an operator sees.
    mainPid: () => {},
    watchdogPing: (c) => this.touch(c, false),
    watchdogFailed: (c) => this.changed(c),
    runStarted: (c) => this.changed(c),
    restored: (c) => this.changed(c),
    restoreFailed: (c) => this.changed(c),
  };

  private changed(container: string): void {
    this.gen++;
    this.touch(container, true);
  }

  private touch(container: string, bumped: boolean): void {
    this.touched.set(container, bumped || (this.touched.get(container) ?? false));
    this.queueFlush();
  }

  private queueFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => this.flush());
  }

  /** After the turn's datagrams: compare message fields, then wake the waiters once. */
  private flush(): void {
    this.flushQueued = false;
    for (const [name, bumped] of this.touched) {
      const run = this.d.runOf(name);
      if (!run) continue;
      const now = fieldsOf(run);
      const before = this.seen.get(name);
      this.seen.set(name, now);
      if (!bumped && (before === undefined || !sameFields(before, now))) this.gen++;
    }
    this.touched.clear();
    for (const w of [...this.waiters]) if (w.after !== this.gen) w.done('changed');
  }
}

function fieldsOf(f: MessageFields): Seen {
  return { status: f.status, errno: f.errno, watchdogMs: f.watchdogMs() };
}

function sameFields(a: Seen, b: Seen): boolean {
  return a.status === b.status && a.errno === b.errno && a.watchdogMs === b.watchdogMs;
}
