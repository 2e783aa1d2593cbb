/**
 * Acceptor out of fds (issue 7 item 1): a real listening socket, a real peer in
 * the backlog, and this process's own fd table really full (soft RLIMIT_NOFILE
 * lowered, the rest filled with /dev/null). accept4 fails with EMFILE; the
 * level-triggered poll would fire again on every loop turn. The timers are
 * injected so that the test fires each retry itself: exact counts, no clock.
 */
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as sys from '../../src/native/sys.js';
import { Acceptor, ACCEPT_BACKOFF_MAX_MS, ACCEPT_BACKOFF_MS, type AcceptTimers } from '../../src/native/acceptor.js';
import type { Accepted } from '../../src/native/binding.js';
import { createLogger } from '../../src/log/log.js';
import { makeTmp, startPeer } from './peer.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** Timers the test fires by hand. */
function manualTimers(): AcceptTimers & { pending: Array<{ fn: () => void; ms: number }>; set$: Promise<void>; next(): Promise<void> } {
  let wake: () => void = () => {};
  const t = {
    pending: [] as Array<{ fn: () => void; ms: number }>,
    set$: Promise.resolve(),
    set(fn: () => void, ms: number) {
      t.pending.push({ fn, ms });
      wake();
      return t.pending.length;
    },
    clear() {},
    /** Resolves when the next timer is set. */
    next(): Promise<void> {
      return new Promise((r) => (wake = r));
    },
  };
  return t;
}

/** Event-loop turns: a poll left active on a readable fd runs on each one. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/** Lower the soft limit to what is open now + a little, and fill it: every new fd fails with EMFILE. */
function fillFdTable(): () => void {
  const { soft } = sys.getNofile();
  sys.setNofile(sys.countFds() + 8);
  const fillers: number[] = [];
  for (;;) {
    try {
      fillers.push(openSync('/dev/null', 'r'));
    } catch {
      break;
    }
  }
  return () => {
    for (const fd of fillers) closeSync(fd);
    sys.setNofile(soft);
  };
}

describe('Acceptor when the process is out of fds (EMFILE)', () => {
  it('pauses its poll and retries with a doubling backoff instead of spinning; accepts the waiting peer once fds are free', async () => {
    const tmp = makeTmp();
    cleanups.push(() => tmp.cleanup());
    const path = join(tmp.dir, 'restore');
    const fd = sys.seqpacketListen(path);
    const peer = startPeer({ mode: 'connect', path, type: 'seqpacket', hold: true });
    cleanups.push(() => peer.end());
    await peer.result; // connected: in the backlog, not yet accepted

    let accepts = 0;
    const kernel = { ...sys, accept: (f: number) => (accepts++, sys.accept(f)) };
    const lines: string[] = [];
    const log = createLogger({ write: (l: string) => lines.push(l) }, 'debug');
    const timers = manualTimers();
    const peers: Accepted[] = [];
    const acceptor = new Acceptor(kernel, log, fd, 'restore', { container: 'app' }, (p) => peers.push(p), timers);
    cleanups.push(() => acceptor.close());

    let release = fillFdTable();
    cleanups.push(() => release());
    try {
      const paused = timers.next();
      acceptor.start();
      await paused;
      await turns(20);
      expect(accepts).toBe(1);
      expect(acceptor.paused).toBe(true);
      expect(timers.pending.map((t) => t.ms)).toEqual([ACCEPT_BACKOFF_MS]);

      // Each retry is one accept and, still out of fds, a longer pause.
      for (let k = 2; k <= 8; k++) {
        const again = timers.next();
        timers.pending.at(-1)!.fn();
        await again;
        await turns(5);
        expect(accepts).toBe(k);
      }
      const waits = timers.pending.map((t) => t.ms);
      expect(waits.slice(0, 4)).toEqual([ACCEPT_BACKOFF_MS, 2 * ACCEPT_BACKOFF_MS, 4 * ACCEPT_BACKOFF_MS, 8 * ACCEPT_BACKOFF_MS]);
      expect(Math.max(...waits)).toBe(ACCEPT_BACKOFF_MAX_MS);
      expect(peers).toHaveLength(0);
    } finally {
      release();
      release = () => {};
    }

    // fds free again: the next retry accepts the peer that waited in the backlog.
    timers.pending.at(-1)!.fn();
    for (let i = 0; i < 100 && peers.length === 0; i++) await turns(1);
    expect(peers).toHaveLength(1);
    expect(acceptor.paused).toBe(false);
    sys.close(peers[0]!.fd);
    if (peers[0]!.pidfd >= 0) sys.close(peers[0]!.pidfd);

    // Two lines for the whole episode: paused (with the error) and resumed (with the count).
    const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logged.map((l) => l.msg)).toEqual(['restore accept failed: paused until resources are free', 'restore accepts resumed']);
    expect(String(logged[0]!.error)).toMatch(/EMFILE/);
    expect(logged[1]!.failedAttempts).toBe(8);
  });
});
