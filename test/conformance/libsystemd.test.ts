/**
 * The fd store driven by a real libsystemd client (sd_pid_notify_with_fds +
 * sd_notify_barrier), observed through `fdstore ls --json`, the agent's log
 * reasons and its /proc/PID/fd count.
 */
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { closed, closedAtExit, closedByReason, drops, expectFdCount, mark, waitClosed } from '../helpers/observe.js';
import { useAgents } from './fixture.js';

const setup = useAgents();

describe('libsystemd client: storing fds', () => {
  it('F3.13 F3.15: one FDNAME names every fd of its message; no FDNAME means "stored"', async () => {
    const { agent, baseline, client } = await setup();
    const c = client();
    expect(await c.notify('FDSTORE=1\nFDNAME=web', await c.socketpairs(2))).toBeGreaterThan(0);
    expect(await c.notify('FDSTORE=1', await c.socketpairs(1))).toBeGreaterThan(0);
    expect(await c.barrier()).toBe(1);
    const ls = await agent.ls();
    expect(ls.containers).toHaveLength(1);
    expect(ls.containers[0]).toMatchObject({ name: 'app', count: 3 });
    expect(ls.containers[0]!.max).toBeGreaterThan(0); // the agent exists to store: non-zero default
    expect(ls.fds.map((f) => f.fdname).sort()).toEqual(['stored', 'web', 'web']);
    expect(ls.fds.every((f) => f.container === 'app' && f.type === 'unix' && f.inodeType === 'sock' && f.poll)).toBe(true);
    expect(await drops(agent)).toEqual([]);
    await expectFdCount(agent, baseline + 3);
  });

  it('F3.4 F3.33: messages accumulate; ls describes each kind of fd (type, inodeType, address, flags, poll)', async () => {
    const { agent, baseline, client } = await setup();
    const c = client();
    const file = join(agent.root, 'data.txt');
    writeFileSync(file, 'data');
    const tcp = await c.listen('tcp-listen');
    const tcp6 = await c.listen('tcp6-listen');
    const udp = await c.listen('udp');
    const ul = await c.unixListen(join(agent.root, 'listener.sock'));
    const [pair] = await c.socketpairs(1);
    const [dgram] = await c.socketpairs(1, 'dgram');
    const [pr] = await c.pipeRead(1);
    const [pw] = await c.pipeWrite(1);
    const mem = await c.memfd('memory');
    const ro = await c.file(file, 'ro');
    const rw = await c.file(file, 'rw');
    const sends: Array<[string, number]> = [
      ['tcp', tcp.id], ['tcp6', tcp6.id], ['udp', udp.id], ['ul', ul], ['pair', pair!], ['dgram', dgram!],
      ['pr', pr!], ['pw', pw!], ['mem', mem], ['ro', ro], ['rw', rw],
    ];
    for (const [name, id] of sends) expect(await c.notify(`FDSTORE=1\nFDNAME=${name}`, [id])).toBeGreaterThan(0);
    expect(await c.barrier()).toBe(1);
    const ls = await agent.ls();
    expect(ls.containers[0]!.count).toBe(sends.length);
    const by = new Map(ls.fds.map((f) => [f.fdname, f]));
    expect(by.get('tcp')).toMatchObject({ type: 'tcp_listen', inodeType: 'sock', address: `127.0.0.1:${tcp.port}`, poll: true });
    expect(by.get('tcp6')).toMatchObject({ type: 'tcp_listen', inodeType: 'sock', address: `[::1]:${tcp6.port}` });
    expect(by.get('udp')).toMatchObject({ type: 'udp', inodeType: 'sock', address: `127.0.0.1:${udp.port}` });
    expect(by.get('ul')).toMatchObject({ type: 'unix_listen', inodeType: 'sock', address: join(agent.root, 'listener.sock') });
    expect(by.get('pair')).toMatchObject({ type: 'unix', inodeType: 'sock', flags: 'rw', poll: true });
    expect(by.get('dgram')).toMatchObject({ type: 'unix', inodeType: 'sock' });
    expect(by.get('pr')).toMatchObject({ type: 'pipe', inodeType: 'fifo', flags: 'ro', poll: true });
    expect(by.get('pw')).toMatchObject({ type: 'pipe', inodeType: 'fifo', flags: 'wo', poll: true });
    expect(by.get('mem')).toMatchObject({ type: 'memfd', inodeType: 'reg', flags: 'rw' });
    expect(by.get('ro')).toMatchObject({ type: 'file', inodeType: 'reg', flags: 'ro' });
    expect(by.get('rw')).toMatchObject({ type: 'file', inodeType: 'reg', flags: 'rw' });
    // Both opens of data.txt are one inode, two open file descriptions: both kept (F3.12).
    expect(by.get('ro')!.inode).toBe(by.get('rw')!.inode);
    await expectFdCount(agent, baseline + sends.length);
  });

  it('F3.16 I7.4: memfds and regular files are stored unpolled (epoll refuses them)', async () => {
    const { agent, baseline, client } = await setup();
    const c = client();
    const file = join(agent.root, 'f.txt');
    writeFileSync(file, 'f');
    expect(await c.notify('FDSTORE=1\nFDNAME=nonpollable', [await c.memfd('m'), await c.file(file)])).toBeGreaterThan(0);
    expect(await c.barrier()).toBe(1);
    const ls = await agent.ls();
    expect(ls.fds.map((f) => [f.fdname, f.type, f.poll]).sort()).toEqual([
      ['nonpollable', 'file', false],
      ['nonpollable', 'memfd', false],
    ]);
    expect(await closedByReason(agent)).toEqual({});
    await expectFdCount(agent, baseline + 2);
  });

  it('F3.4 D1.9: 253 fds in one message are all stored', async () => {
    const { agent, baseline, client } = await setup();
    const c = client();
    const ids = await c.socketpairs(253);
    expect(await c.notify('FDSTORE=1\nFDNAME=bulk', ids)).toBeGreaterThan(0);
    expect(await c.barrier()).toBe(1);
    const ls = await agent.ls();
    expect(ls.containers[0]!.count).toBe(253);
    expect(ls.fds).toHaveLength(253);
    expect(new Set(ls.fds.map((f) => f.inode)).size).toBe(253);
    expect(ls.fds.every((f) => f.fdname === 'bulk')).toBe(true);
    expect(await drops(agent)).toEqual([]);
    await expectFdCount(agent, baseline + 253);
  });
});

describe('libsystemd client: duplicates (F3.12)', () => {
  for (const method of ['auto', 'dupfd-query', 'kcmp', 'fstat'] as const) {
    it(`F3.12 [--dedupe ${method}]: a re-sent fd is suppressed, keeping its first name and poll flag`, async () => {
      const { agent, baseline, client } = await setup({ args: ['--dedupe', method] });
      const c = client();
      const [a, b] = await c.socketpairs(2);
      expect(await c.notify('FDSTORE=1\nFDNAME=first', [a!])).toBeGreaterThan(0);
      const m = await mark(agent);
      // Same open file description again: in a later message (renaming must not
      // happen) and twice within one message (checked against this message's own fds).
      expect(await c.notify('FDSTORE=1\nFDNAME=second\nFDPOLL=0', [a!, b!, b!])).toBeGreaterThan(0);
      expect(await c.barrier()).toBe(1);
      const ls = await agent.ls();
      expect(ls.fds.map((f) => [f.fdname, f.poll]).sort()).toEqual([
        ['first', true],
        ['second', false],
      ]);
      expect(await closed(agent, 'duplicate', m)).toBe(2);
      await expectFdCount(agent, baseline + 2);
    });
  }

  it('F3.12: two open()s of one file are distinct open file descriptions (F_DUPFD_QUERY and kcmp)', async () => {
    for (const method of ['dupfd-query', 'kcmp'] as const) {
      const { agent, baseline, client } = await setup({ args: ['--dedupe', method] });
      const file = join(agent.root, 'twice.txt');
      writeFileSync(file, 't');
      const c = client();
      expect(await c.notify('FDSTORE=1\nFDNAME=twice', [await c.file(file), await c.file(file)])).toBeGreaterThan(0);
      expect(await c.barrier()).toBe(1);
      expect(await agent.names(), method).toEqual(['twice', 'twice']);
      await expectFdCount(agent, baseline + 2);
    }
  });

  it('F3.12: the fstat fallback treats same inode + same flags as one file (documented weaker check)', async () => {
    const { agent, baseline, client } = await setup({ args: ['--dedupe', 'fstat'] });
    const file = join(agent.root, 'twice.txt');
    writeFileSync(file, 't');
    const c = client();
    const m = await mark(agent);
    expect(await c.notify('FDSTORE=1\nFDNAME=twice', [await c.file(file, 'ro'), await c.file(file, 'ro'), await c.file(file, 'rw')])).toBeGreaterThan(0);
    expect(await c.barrier()).toBe(1);
    expect((await agent.ls()).fds.map((f) => f.flags).sort()).toEqual(['ro', 'rw']);
    expect(await closed(agent, 'duplicate', m)).toBe(1);
    await expectFdCount(agent, baseline + 2);
  });
});

describe('libsystemd client: limits (F3.8 F3.10 F3.11)', () => {
  it('F3.8: past FileDescriptorStoreMax the rest of the message is closed as over_limit', async () => {
    const { agent, baseline, client } = await setup({ args: ['--fd-store-max', '3'] });
    const c = client();
    const m = await mark(agent);
    expect(await c.notify('FDSTORE=1\nFDNAME=five', await c.socketpairs(5))).toBeGreaterThan(0);
    expect(await c.barrier()).toBe(1);
    const ls = await agent.ls();
    expect(ls.containers[0]).toMatchObject({ count: 3, max: 3 });
    expect(ls.fds).toHaveLength(3);
    expect(await closed(agent, 'over_limit', m)).toBe(2);
    await expectFdCount(agent, baseline + 3);
  });

  it('F3.11: re-sending an already stored fd to a full store is over_limit, not duplicate', async () => {
    const { agent, baseline, client } = await setup({ args: ['--fd-store-max', '1'] });
    const c = client();
    const [a] = await c.socketpairs(1);
    expect(await c.notify('FDSTORE=1\nFDNAME=a', [a!])).toBeGreaterThan(0);
    const m = await mark(agent);
    expect(await c.notify('FDSTORE=1\nFDNAME=a', [a!])).toBeGreaterThan(0);
    expect(await c.barrier()).toBe(1);
    expect(await closedByReason(agent, m)).toEqual({ over_limit: 1 });
    expect(await agent.names()).toEqual(['a']);
    await expectFdCount(agent, baseline + 1);
  });

  it('F3.10: max 0 (from the config file, which wins over the flag) closes every fd', async () => {
    const { agent, baseline, client } = await setup({
      args: ['--fd-store-max', '10'],
      config: { containers: [{ name: 'app', fileDescriptorStoreMax: 0 }] },
    });
    const c = client();
    const m = await mark(agent);
    expect(await c.notify('FDSTORE=1\nFDNAME=none', await c.socketpairs(3))).toBeGreaterThan(0);
    expect(await c.barrier()).toBe(1);
    const ls = await agent.ls();
    expect(ls.containers[0]).toMatchObject({ name: 'app', count: 0, max: 0 });
    expect(ls.fds).toEqual([]);
    expect(await closed(agent, 'over_limit', m)).toBe(3);
    await expectFdCount(agent, baseline);
  });

  it('F3.8: limits are per container; the config file may name more containers', async () => {
    const { agent, baseline, client } = await setup({
      containers: ['web'],
      args: ['--fd-store-max', '2'],
      config: { containers: [{ name: 'worker', fileDescriptorStoreMax: 4 }] },
    });
    const web = client(undefined, 'web');
    const worker = client(undefined, 'worker');
    expect(await web.notify('FDSTORE=1\nFDNAME=w', await web.socketpairs(3))).toBeGreaterThan(0);
    expect(await worker.notify('FDSTORE=1\nFDNAME=k', await worker.socketpairs(3))).toBeGreaterThan(0);
    expect(await web.barrier()).toBe(1);
    expect(await worker.barrier()).toBe(1);
    const ls = await agent.ls();
    const counts = Object.fromEntries(ls.containers.map((x) => [x.name, [x.count, x.max]]));
    expect(counts).toEqual({ web: [2, 2], worker: [3, 4] });
    expect((await agent.ls('worker')).fds.map((f) => f.container)).toEqual(['worker', 'worker', 'worker']);
    await expectFdCount(agent, baseline + 5);
  });
});

describe('libsystemd client: removal and hang-up', () => {
  it('F3.19: FDSTOREREMOVE=1 closes every entry with exactly that name', async () => {
    const { agent, baseline, client } = await setup();
    const c = client();
    expect(await c.notify('FDSTORE=1\nFDNAME=web', await c.socketpairs(2))).toBeGreaterThan(0);
    expect(await c.notify('FDSTORE=1\nFDNAME=webx', await c.socketpairs(1))).toBeGreaterThan(0);
    expect(await c.notify('FDSTORE=1\nFDNAME=', await c.socketpairs(1))).toBeGreaterThan(0);
    const m = await mark(agent);
    expect(await c.notify('FDSTOREREMOVE=1\nFDNAME=web')).toBeGreaterThan(0);
    expect(await c.notify('FDSTOREREMOVE=1\nFDNAME=nothing-by-this-name')).toBeGreaterThan(0);
    expect(await c.notify('FDSTOREREMOVE=1')).toBeGreaterThan(0); // no name: nothing removed
    expect(await c.notify('FDSTOREREMOVE=1\nFDNAME=bad:name')).toBeGreaterThan(0); // invalid: nothing removed
    expect(await c.barrier()).toBe(1);
    expect(await agent.names()).toEqual(['', 'webx']);
    expect(await closed(agent, 'removed', m)).toBe(2);
    // FDNAME= (empty) removes the entries with the empty name.
    expect(await c.notify('FDSTOREREMOVE=1\nFDNAME=')).toBeGreaterThan(0);
    expect(await c.barrier()).toBe(1);
    expect(await agent.names()).toEqual(['webx']);
    await expectFdCount(agent, baseline + 1);
  });

  it('F3.7: FDSTOREREMOVE=1 with FDSTORE=1 only removes; the fds sent along are closed', async () => {
    const { agent, baseline, client } = await setup();
    const c = client();
    expect(await c.notify('FDSTORE=1\nFDNAME=x', await c.socketpairs(1))).toBeGreaterThan(0);
    const m = await mark(agent);
    expect(await c.notify('FDSTORE=1\nFDSTOREREMOVE=1\nFDNAME=x', await c.socketpairs(2))).toBeGreaterThan(0);
    expect(await c.barrier()).toBe(1);
    expect(await agent.names()).toEqual([]);
    expect(await closedByReason(agent, m)).toEqual({ removed: 1, not_stored: 2 });
    await expectFdCount(agent, baseline);
  });

  it('F3.16 F3.17 I7.3: a polled fd is removed when its peer hangs up; FDPOLL=0 keeps it', async () => {
    const { agent, baseline, client } = await setup();
    const c = client();
    const polled = await c.socketpairs(2);
    const [pipe] = await c.pipeRead(1);
    const kept = await c.socketpairs(1);
    expect(await c.notify('FDSTORE=1\nFDNAME=polled', [...polled, pipe!])).toBeGreaterThan(0);
    expect(await c.notify('FDSTORE=1\nFDNAME=kept\nFDPOLL=0', kept)).toBeGreaterThan(0);
    expect(await c.barrier()).toBe(1);
    expect((await agent.ls()).fds.map((f) => [f.fdname, f.poll]).sort()).toEqual([
      ['kept', false], ['polled', true], ['polled', true], ['polled', true],
    ]);
    const m = await mark(agent);
    await c.closePeers(); // every peer: the stored socket ends see EPOLLHUP, the pipe's read end too
    await waitClosed(agent, 'hangup', 3, m);
    expect(await agent.names()).toEqual(['kept']);
    expect(await closedByReason(agent, m)).toEqual({ hangup: 3 });
    await expectFdCount(agent, baseline + 1);
  });

  it('F3.17: epoll is keyed by store entry, not fd number: store A, remove A, store B on its number, hang up A: B stays', async () => {
    const { agent, baseline, client } = await setup();
    const c = client();
    const [a] = await c.socketpairs(1);
    const [b] = await c.socketpairs(1);
    const [probe] = await c.socketpairs(1);
    const fdOf = (inode: number): number | undefined =>
      [...agent.fdTable()].find(([, t]) => t === `socket:[${inode}]`)?.[0];

    expect(await c.notify('FDSTORE=1\nFDNAME=A', [a!])).toBeGreaterThan(0);
    expect(await c.barrier()).toBe(1);
    const inodeA = (await agent.ls()).fds[0]!.inode;
    const numberA = fdOf(inodeA);
    expect(numberA).toBeDefined();

    expect(await c.notify('FDSTOREREMOVE=1\nFDNAME=A')).toBeGreaterThan(0);
    expect(await c.barrier()).toBe(1);
    await expectFdCount(agent, baseline);
    expect(await c.notify('FDSTORE=1\nFDNAME=B', [b!])).toBeGreaterThan(0);
    expect(await c.barrier()).toBe(1);
    const inodeB = (await agent.ls()).fds[0]!.inode;
    expect(fdOf(inodeB), 'B must land on the number A had, or this test proves nothing').toBe(numberA);

    // The client still holds A's open file: an epoll registration the agent forgot
    // would stay alive and fire on A's hang-up, reported under A's old number.
    expect(await c.notify('FDSTORE=1\nFDNAME=probe', [probe!])).toBeGreaterThan(0);
    expect(await c.barrier()).toBe(1);
    const m = await mark(agent);
    await c.closePeers([a!]);
    await c.closePeers([probe!]); // a hang-up that must be reported; A's would come first
    await waitClosed(agent, 'hangup', 1, m);
    expect(await agent.names()).toEqual(['B']);
    expect(await closedByReason(agent, m)).toEqual({ hangup: 1 });
    await expectFdCount(agent, baseline + 1);
    // A registration left behind for A would also be level-triggered forever (the
    // agent would spin on it): the agent's epoll sets hold B at A's old number, and
    // no registration of a file other than the one now at its number.
    const regs = agent.epollRegistrations();
    expect(regs.some((r) => r.tfd === numberA && r.ino === BigInt(inodeB) && !r.stale), 'B is polled at A\'s old number').toBe(true);
    expect(regs.filter((r) => r.stale)).toEqual([]);
  });
});

describe('containers are separate units', () => {
  it('F3.19 N4.3: a container\'s socket reaches only its own store; same names elsewhere are untouched', async () => {
    const { agent, baseline, client } = await setup({ containers: ['a', 'b'] });
    const ca = client(undefined, 'a');
    const cb = client(undefined, 'b');
    expect(await ca.notify('FDSTORE=1\nFDNAME=shared', await ca.socketpairs(2))).toBeGreaterThan(0);
    expect(await cb.notify('FDSTORE=1\nFDNAME=shared', await cb.socketpairs(1))).toBeGreaterThan(0);
    expect(await ca.barrier()).toBe(1);
    expect(await cb.barrier()).toBe(1);
    const m = await mark(agent);
    expect(await cb.notify('FDSTOREREMOVE=1\nFDNAME=shared')).toBeGreaterThan(0);
    expect(await cb.barrier()).toBe(1);
    expect(await closed(agent, 'removed', m)).toBe(1);
    const ls = await agent.ls();
    expect(ls.fds.map((f) => [f.container, f.fdname])).toEqual([['a', 'shared'], ['a', 'shared']]);
    expect(Object.fromEntries(ls.containers.map((c) => [c.name, c.count]))).toEqual({ a: 2, b: 0 });
    expect((await agent.ls('b')).fds).toEqual([]);
    await expectFdCount(agent, baseline + 2);
  });
});

describe('lifecycle', () => {
  it('fdstore clean empties one store (F3.23 clean), SIGTERM closes everything and exits 0', async () => {
    const { agent, baseline, client } = await setup({ containers: ['a', 'b'] });
    const ca = client(undefined, 'a');
    const cb = client(undefined, 'b');
    expect(await ca.notify('FDSTORE=1\nFDNAME=x', await ca.socketpairs(2))).toBeGreaterThan(0);
    expect(await cb.notify('FDSTORE=1\nFDNAME=y', await cb.socketpairs(1))).toBeGreaterThan(0);
    expect(await ca.barrier()).toBe(1);
    expect(await cb.barrier()).toBe(1);
    const r = await agent.cli(['clean', '--run-dir', agent.runDir, '--container', 'a']);
    expect(r.code, r.stderr).toBe(0);
    const ls = await agent.ls();
    expect(ls.fds.map((f) => [f.container, f.fdname])).toEqual([['b', 'y']]);
    await expectFdCount(agent, baseline + 1);
    const m = agent.mark();
    expect(await agent.stop()).toBe(0);
    expect(closedAtExit(agent, 'released', m)).toBe(1);
  });
});
