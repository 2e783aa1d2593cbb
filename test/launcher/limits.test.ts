/**
 * fdstore-exec under a lowered RLIMIT_NOFILE (issue 7 item 7): a store of
 * N = limit - LAUNCHER_RESERVED_FDS fds restores even when an inherited fd sits
 * among the targets (a whole batch then waits above them); one fd more is
 * refused before anything moves, with one line naming the limit and the need.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LAUNCHER_RESERVED_FDS } from '../../src/native/proto.js';
import { buildLauncher, checkApp, env, expectedOpen, launcher, report, run, startPeer, tempDir } from './harness.js';

beforeAll(buildLauncher);

const LIMIT = 1024;
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** The launcher under prlimit LIMIT:LIMIT, a pipe inherited at fd 3 (where the first stored fd goes). */
async function restoreUnderLimit(n: number) {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const peer = await startPeer(t.dir, ['--fds', String(n), '--name-prefix', '']);
  cleanups.push(peer.kill);
  const r = await run([`--nofile=${LIMIT}:${LIMIT}`, launcher, '--dir', t.dir, '--', 'python3', checkApp], {
    exe: 'prlimit',
    env: env(),
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  return r;
}

describe('launcher and RLIMIT_NOFILE', () => {
  it(`restores limit - ${LAUNCHER_RESERVED_FDS} fds with an inherited fd among the targets`, async () => {
    const n = LIMIT - LAUNCHER_RESERVED_FDS;
    const r = await restoreUnderLimit(n);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const app = report(r);
    expect(app.env.LISTEN_FDS).toBe(String(n));
    expect(app.open).toEqual(expectedOpen(n));
  });

  it('refuses one fd more before moving any, naming the limit (not F_DUPFD_CLOEXEC: Too many open files midway)', async () => {
    const n = LIMIT - LAUNCHER_RESERVED_FDS + 1;
    const r = await restoreUnderLimit(n);
    expect(r.code).toBe(111);
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines).toEqual([
      `fdstore-exec: ${n} stored fds need RLIMIT_NOFILE >= ${n + LAUNCHER_RESERVED_FDS} (${n} + ${LAUNCHER_RESERVED_FDS} for stdio, the socket and one batch in transit), ` +
        `but this container's hard limit is ${LIMIT}: raise its nofile limit or lower fileDescriptorStoreMax`,
    ]);
  });
});
