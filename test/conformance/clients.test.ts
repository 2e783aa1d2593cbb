/**
 * The test clients themselves, against a plain python receiver (no agent): what
 * libsystemd, python3-systemd, systemd-notify and raw.py really put on the wire.
 * If one of these fails, every agent conformance test built on it is suspect.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isRoot, NEEDS_ROOT } from '../helpers/proc.js';
import { join } from 'node:path';
import { rmSync, writeFileSync } from 'node:fs';
import { tempRoot } from '../helpers/agent.js';
import { buildClients } from '../helpers/clients/build.js';
import { NotifyClient, pyNotify, systemdNotify } from '../helpers/clients/index.js';
import { RawSender } from '../helpers/raw.js';
import { Receiver } from '../helpers/receiver.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function receiver(): Promise<{ r: Receiver; path: string; root: string }> {
  const root = tempRoot();
  const path = join(root, 'notify');
  const r = await Receiver.start(path);
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  cleanups.push(() => r.stop());
  return { r, path, root };
}

describe('test clients on the wire (plain receiver)', () => {
  beforeAll(() => {
    buildClients();
  });

  it('libsystemd sd_pid_notify_with_fds sends the state verbatim with the fds, then sd_notify_barrier (D1.8, D1.12)', async () => {
    const { r, path, root } = await receiver();
    const file = join(root, 'data.txt');
    writeFileSync(file, 'x');
    const c = NotifyClient.start({ socket: path });
    cleanups.push(async () => void (await c.exit()));
    const pairs = await c.socketpairs(2);
    const mem = await c.memfd('hello');
    const f = await c.file(file, 'ro');
    const tcp = await c.listen('tcp-listen');
    expect(tcp.port).toBeGreaterThan(0);
    expect(await c.notify('FDSTORE=1\nFDNAME=web name', [...pairs, mem, f, tcp.id])).toBeGreaterThan(0);
    const m = await r.next();
    expect(m.text).toBe('FDSTORE=1\nFDNAME=web name');
    expect(m.pid).toBe(c.proc.pid);
    expect(m.uid).toBe(process.getuid!());
    expect(m.fds).toEqual(['sock', 'sock', 'reg', 'reg', 'sock']);
    const barrier = c.barrier(2_000);
    const b = await r.next();
    expect(b.text).toBe('BARRIER=1');
    expect(b.fds).toEqual(['fifo']);
    expect(await barrier).toBe(1);
  });

  it('libsystemd passes 253 fds in one message (F3.4, D1.9)', async () => {
    const { r, path } = await receiver();
    const c = NotifyClient.start({ socket: path });
    cleanups.push(async () => void (await c.exit()));
    const ids = await c.socketpairs(253);
    expect(await c.notify('FDSTORE=1', ids)).toBeGreaterThan(0);
    const m = await r.next();
    expect(m.fds).toHaveLength(253);
    expect(m.flags & (0x08 | 0x20)).toBe(0); // no MSG_CTRUNC, no MSG_TRUNC
  });

  it('a forked child of the client sends with its own pid', async () => {
    const { r, path } = await receiver();
    const c = NotifyClient.start({ socket: path });
    cleanups.push(async () => void (await c.exit()));
    const [id] = await c.socketpairs(1);
    const child = c.child('FDSTORE=1', [id!]);
    const m = await r.next();
    expect((await r.next()).text).toBe('BARRIER=1');
    const res = await child;
    expect(res.ret).toBeGreaterThan(0);
    expect(res.barrier).toBe(1);
    expect(m.pid).toBe(res.pid);
    expect(m.pid).not.toBe(c.proc.pid);
  });

  it('python3-systemd notify(state, fds=[...])', async () => {
    const { r, path } = await receiver();
    const py = pyNotify({ socket: path, state: 'FDSTORE=1\nFDNAME=py', socketpairs: 2, memfd: ['m'] });
    const m = await r.next();
    expect(m.text).toBe('FDSTORE=1\nFDNAME=py');
    expect(m.fds).toEqual(['sock', 'sock', 'reg']);
    expect((await r.next()).text).toBe('BARRIER=1');
    const { result, proc } = await py;
    cleanups.push(async () => void (await proc.close()));
    expect(result).toMatchObject({ ret: true, acked: true });
    expect(m.pid).toBe(result.pid);
  });

  it.skipIf(!isRoot)(`systemd-notify --ready --status speaks for its parent, then sends BARRIER=1 ${NEEDS_ROOT}`, async () => {
    const { r, path } = await receiver();
    const run = systemdNotify({ socket: path, args: ['--ready', '--status=serving requests'] });
    const m = await r.next();
    expect(m.text).toBe('READY=1\nSTATUS=serving requests');
    const b = await r.next();
    expect(b.text).toBe('BARRIER=1');
    expect(b.fds).toEqual(['fifo']);
    const res = await run;
    expect(res.code, res.stderr).toBe(0);
    // Root may claim its parent's pid: the state message carries the shell's pid, the barrier its own.
    expect(m.pid).not.toBe(b.pid);
  });

  it.skipIf(!isRoot)(`as a non-root uid without capabilities, systemd-notify cannot speak for its parent ${NEEDS_ROOT}`, async () => {
    const { r, path } = await receiver();
    const { notifyFds } = buildClients();
    expect(notifyFds).toMatch(/\.build/);
    const run = systemdNotify({ socket: path, args: ['--ready'], placement: { user: { uid: 10002, gid: 10002 } } });
    const m = await r.next();
    const b = await r.next();
    expect(m.text).toBe('READY=1');
    expect(m.uid).toBe(10002);
    expect(m.pid).toBe(b.pid); // the kernel refused the spoofed pid; libsystemd fell back to its own
    expect((await run).code).toBe(0);
  });

  it.skipIf(!isRoot)(`raw.py sends arbitrary bytes, dup fds and explicit credentials ${NEEDS_ROOT}`, async () => {
    const { r, path } = await receiver();
    const raw = new RawSender(path);
    cleanups.push(() => raw.exit());
    expect(await raw.send({ data: Buffer.from('A\0B'), fds: ['socketpair', { dup: 0 }, 'pipe-w', 'memfd', 'devnull'] })).toBe(3);
    const m = await r.next();
    expect([...m.data]).toEqual([0x41, 0, 0x42]);
    expect(m.fds).toEqual(['sock', 'sock', 'fifo', 'reg', 'chr']);
    expect(await raw.send({ data: 'x'.repeat(4097) })).toBe(4097);
    expect((await r.next()).data.length).toBe(4097);
    await raw.send({ data: 'READY=1', creds: [process.pid, 0, 0] });
    expect((await r.next()).pid).toBe(process.pid);
    await raw.send({ data: '' });
    expect((await r.next()).data.length).toBe(0);
    const acked = raw.barrier(2_000);
    expect((await r.next()).text).toBe('BARRIER=1');
    expect(await acked).toBe(true);
  });
});
