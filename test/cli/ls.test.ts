/** F3.34: the text table of `fdstore ls`, and the status line issue 4 asks for. */
import { describe, expect, it } from 'vitest';
import type { ContainerStatus, FdRow } from '../../src/admin/protocol.js';
import { formatLs } from '../../src/cli/ls.js';

const base: ContainerStatus = {
  name: 'app', count: 1, max: 4096, state: 'ready', status: 'serving', errno: null, mainPid: 42,
  notifyAccess: 'all', preserve: 'restart', watchdogDeadlineInMs: 2500, live: true, liveReason: 'ok', ready: true, readyReason: 'ready', restores: 3, starts: 3, listen: [],
};
const row: FdRow = {
  container: 'app', fdname: 'http', type: 'tcp_listen', inodeType: 'sock', dev: '0:9', inode: 1234, rdev: null,
  path: 'socket:[1234]', address: '127.0.0.1:8080', peer: '', flags: 'rw', poll: true,
};

describe('formatLs', () => {
  it('prints a status line (state, count/max, main pid, restores, STATUS, watchdog) and a table per store', () => {
    const out = formatLs([base], [row]).split('\n');
    expect(out[0]).toBe('app: ready, 1/4096 fds, main pid 42, restores 3, status "serving", watchdog due in 2.5 s');
    expect(out[1]).toMatch(/^ {2}FDNAME +TYPE +INODE-TYPE +DEVNO +INODE +ADDRESS\/PATH +FLAGS +POLL$/);
    expect(out[2]).toMatch(/^ {2}http +tcp_listen +sock +0:9 +1234 +127\.0\.0\.1:8080 +rw +yes$/);
  });

  it('says when a store is empty, shows ERRNO and a failed liveness', () => {
    const c = { ...base, count: 0, errno: 2, status: null, watchdogDeadlineInMs: null, live: false, liveReason: 'watchdog timeout (limit 1000 ms)' };
    const out = formatLs([c], []);
    expect(out).toBe("app: ready, 0/4096 fds, main pid 42, restores 3, errno 2, NOT LIVE: watchdog timeout (limit 1000 ms)\n  No file descriptors in fdstore of 'app'.\n");
  });

  it('names the state a restarted agent cannot know (issue 7 item 15)', () => {
    const out = formatLs([{ ...base, state: 'unknown', readyReason: 'unknown since agent restart', mainPid: null }], [row]).split('\n');
    expect(out[0]).toMatch(/^app: unknown since agent restart, 1\/4096 fds, main pid -/);
  });

  it('lists the listen: sockets the agent binds for the app, before the stored fds', () => {
    const c = { ...base, listen: [{ name: 'http', kind: 'tcp', address: '0.0.0.0:8080' }, { name: 'dns', kind: 'udp', address: '[::]:53' }] };
    const out = formatLs([c], [row]).split('\n');
    expect(out[1]).toBe('  listen http: tcp 0.0.0.0:8080, passed first as LISTEN_FDNAMES entry "http"');
    expect(out[2]).toBe('  listen dns: udp [::]:53, passed first as LISTEN_FDNAMES entry "dns"');
    expect(out[3]).toMatch(/^ {2}FDNAME /);
    const held = formatLs([{ ...c, listenHeld: ['http'] }], [row]).split('\n');
    expect(held[1]).toBe('  listen http: tcp 0.0.0.0:8080, held by the running app since the agent restarted (bound again at its next start)');
  });

  it('falls back to the path when a fd has no socket address', () => {
    const out = formatLs([base], [{ ...row, type: 'memfd', inodeType: 'reg', address: '', path: '/memfd:state (deleted)', poll: false }]);
    expect(out).toMatch(/\/memfd:state \(deleted\) +rw +no/);
  });
});
