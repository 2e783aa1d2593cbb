/**
 * Hostile datagrams from raw sockets (raw.py): every one costs a log line, never
 * a crash or an fd. After each, the agent is alive and its open-fd count is its
 * baseline plus what is stored: zero leaks (STYLE habit 4 and 5).
 */
import { describe, expect, it } from 'vitest';
import type { Agent } from '../helpers/agent.js';
import { closed, closedByReason, drops, expectFdCount, mark, waitClosed, type Mark } from '../helpers/observe.js';
import type { RawFd, RawSender } from '../helpers/raw.js';
import { useAgents } from './fixture.js';

const setup = useAgents();

/** Total fds the agent closed since `from`, whatever the reason. */
async function closedTotal(agent: Agent, from: Mark): Promise<number> {
  return Object.values(await closedByReason(agent, from)).reduce((a, b) => a + b, 0);
}

async function sendAndSync(raw: RawSender, data: string | Buffer, fds: RawFd[] = []): Promise<void> {
  await raw.send({ data, fds });
  expect(await raw.barrier()).toBe(true);
}

describe('hostile datagrams', () => {
  it('D1.14: 4096 bytes are accepted, 4097 dropped as too_large with their fds closed', async () => {
    const { agent, baseline, raw } = await setup();
    const r = raw();
    const head = 'FDSTORE=1\nFDNAME=big\nX_PAD=';
    const exact = head + 'p'.repeat(4096 - head.length);
    expect(Buffer.byteLength(exact)).toBe(4096);
    await sendAndSync(r, exact, ['socketpair']);
    expect(await agent.names()).toEqual(['big']);
    const m = await mark(agent);
    await sendAndSync(r, `${exact}p`, ['socketpair', 'memfd']);
    expect(await drops(agent, m)).toEqual(['too_large']);
    expect(await closedTotal(agent, m)).toBe(2);
    expect(await agent.names()).toEqual(['big']);
    await expectFdCount(agent, baseline + 1);
    // Far larger than the receive buffer: still one drop, still no leak.
    await sendAndSync(r, 'FDSTORE=1\n' + 'x'.repeat(65_000), ['socketpair']);
    expect(agent.alive).toBe(true);
    await expectFdCount(agent, baseline + 1);
  });

  it('D1.17: an embedded NUL drops the datagram (nul_byte); one trailing NUL is tolerated', async () => {
    const { agent, baseline, raw } = await setup();
    const r = raw();
    const m = await mark(agent);
    await sendAndSync(r, Buffer.from('FDSTORE=1\0\nFDNAME=nul'), ['socketpair', 'pipe-r']);
    await sendAndSync(r, Buffer.from('\0FDSTORE=1'), ['socketpair']);
    expect(await drops(agent, m)).toEqual(['nul_byte', 'nul_byte']);
    expect(await closedTotal(agent, m)).toBe(3);
    await sendAndSync(r, Buffer.from('FDSTORE=1\nFDNAME=trailing\0'), ['socketpair']);
    expect(await agent.names()).toEqual(['trailing']);
    await expectFdCount(agent, baseline + 1);
  });

  it('F3.6 D1.22 D1.28: fds without an exact FDSTORE=1 line are closed as not_stored, the rest applies', async () => {
    const { agent, baseline, raw } = await setup();
    const r = raw();
    const m = await mark(agent);
    await sendAndSync(r, 'READY=1', ['socketpair', 'memfd']);
    for (const bad of ['FDSTORE=0', 'FDSTORE=1 ', ' FDSTORE=1', 'FDSTORE=yes', 'fdstore=1', 'FDSTORE=1x']) {
      await sendAndSync(r, `${bad}\nFDNAME=no`, ['socketpair']);
    }
    expect(await drops(agent, m)).toEqual([]);
    expect(await closed(agent, 'not_stored', m)).toBe(8);
    expect(await agent.names()).toEqual([]);
    const c = (await agent.ls()).containers[0]!;
    expect(c.state).toBe('ready'); // the datagram itself was valid
    await expectFdCount(agent, baseline);
  });

  it('D1.18: a 0-byte datagram is valid and has no effect; its fds are closed', async () => {
    const { agent, baseline, raw } = await setup();
    const r = raw();
    const m = await mark(agent);
    await sendAndSync(r, '', ['socketpair', 'devnull']);
    expect(await drops(agent, m)).toEqual([]);
    expect(await closedTotal(agent, m)).toBe(2);
    await expectFdCount(agent, baseline);
  });

  it('F3.13 F3.14: an invalid FDNAME stores the fds as "stored"; edge-valid names are kept', async () => {
    const { agent, baseline, raw } = await setup();
    const r = raw();
    const invalid = ['a:b', 'x'.repeat(256), 'tab\there', 'ctl\x01', 'del\x7f', 'caf\u00e9'];
    for (const name of invalid) await sendAndSync(r, `FDSTORE=1\nFDNAME=${name}`, ['socketpair']);
    const valid = ['x'.repeat(255), 'with space', '', '~!@#$%^&*()'];
    for (const name of valid) await sendAndSync(r, `FDSTORE=1\nFDNAME=${name}`, ['socketpair']);
    expect(await agent.names()).toEqual([...Array(invalid.length).fill('stored'), ...valid].sort());
    await expectFdCount(agent, baseline + invalid.length + valid.length);
  });

  it('D1.20 D1.23: \\r and \\n both separate lines; the first FDNAME= wins', async () => {
    const { agent, baseline, raw } = await setup();
    const r = raw();
    await sendAndSync(r, 'FDSTORE=1\rFDNAME=cr', ['socketpair']);
    await sendAndSync(r, '\r\n\nFDNAME=first\n\nFDNAME=second\r\nFDSTORE=1\n\n', ['socketpair']);
    expect(await agent.names()).toEqual(['cr', 'first']);
    await expectFdCount(agent, baseline + 2);
  });

  it('A2.18: BARRIER=1 with other lines or a wrong fd count is bad_barrier; nothing else applies, all fds closed', async () => {
    const { agent, baseline, raw } = await setup();
    const r = raw();
    const m = await mark(agent);
    await sendAndSync(r, 'BARRIER=1\nFDSTORE=1\nFDNAME=sneaky', ['socketpair', 'pipe-w']);
    await sendAndSync(r, 'FDSTORE=1\nBARRIER=1', ['socketpair']);
    await sendAndSync(r, 'BARRIER=1', ['pipe-w', 'pipe-w']);
    await sendAndSync(r, 'BARRIER=1', []);
    expect(await drops(agent, m)).toEqual(['bad_barrier', 'bad_barrier', 'bad_barrier', 'bad_barrier']);
    // The 5 fds above; the acknowledged barriers of sendAndSync close their pipe silently.
    expect(await closedTotal(agent, m)).toBe(5);
    expect(await agent.names()).toEqual([]);
    await expectFdCount(agent, baseline);
  });

  it('a thousand random messages: after each the agent is alive and holds exactly baseline + stored fds', { timeout: 120_000 }, async () => {
    const max = 150;
    const { agent, baseline, raw } = await setup({ args: ['--fd-store-max', String(max)] });
    const r = raw();
    const rand = mulberry32(0x5eed);
    const model: Entry[] = [];
    for (let i = 0; i < 1000; i++) {
      const { data, fds } = randomMessage(rand);
      const before = agent.mark();
      await r.send({ data, fds });
      expect(await r.barrier(), `message ${i} ${JSON.stringify(data.toString('latin1'))}`).toBe(true);
      applyModel(model, max, data, fds);
      expect(agent.alive, `message ${i}`).toBe(true);
      try {
        await expectFdCount(agent, baseline + model.length);
      } catch (err) {
        throw new Error(`after message ${i} ${JSON.stringify(data.toString('latin1'))} with ${JSON.stringify(fds)}: ${(err as Error).message}\n` +
          `logs: ${JSON.stringify(agent.since(before))}`);
      }
    }
    if (process.env.FDSTORE_TEST_DEBUG) console.log({ stored: model.length, closed: await closedByReason(agent), drops: (await drops(agent)).length });
    expect(model.length).toBeGreaterThan(20); // the generator did store things
    expect(await agent.names()).toEqual(model.map((e) => e.name).sort());
    expect((await agent.ls()).fds.filter((f) => f.poll).length).toBe(model.filter((e) => e.polled).length);

    // Every peer hangs up at once: exactly the polled entries go (F3.17), including
    // none of the fds the agent already closed (removed, duplicate, over limit...).
    const polled = model.filter((e) => e.polled).length;
    expect(polled).toBeGreaterThan(10);
    const m = await mark(agent);
    await r.closePeers();
    await waitClosed(agent, 'hangup', polled, m);
    expect(await r.barrier()).toBe(true);
    expect(await closedByReason(agent, m)).toEqual({ hangup: polled });
    expect(await agent.names()).toEqual(model.filter((e) => !e.polled).map((e) => e.name).sort());
    await expectFdCount(agent, baseline + model.length - polled);
  });
});

describe('hostile bursts', () => {
  it('500 random messages sent back to back, one barrier: the receive loop drains them in order, no leak', { timeout: 120_000 }, async () => {
    const max = 100;
    const { agent, baseline, raw } = await setup({ args: ['--fd-store-max', String(max)] });
    const r = raw();
    const rand = mulberry32(0xb0257);
    const model: Entry[] = [];
    for (let i = 0; i < 500; i++) {
      const { data, fds } = randomMessage(rand);
      await r.send({ data, fds });
      applyModel(model, max, data, fds);
    }
    expect(await r.barrier()).toBe(true);
    expect(agent.alive).toBe(true);
    expect(await agent.names()).toEqual(model.map((e) => e.name).sort());
    await expectFdCount(agent, baseline + model.length);
    await r.closePeers();
  });
});

// ---- the random message generator and the model of what systemd would store ----

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMES = ['a', 'b', 'web', '', 'bad:name', 'x'.repeat(256), 'caf\u00e9', 'ctl\x01'];
// No backslashes (D1.21 is an undecided quirk), no MAINPID/NOTIFYACCESS/WATCHDOG=trigger
// (they would change who may send or act on processes, not what is stored).
const LINES = [
  'FDSTORE=1', 'FDSTORE=1', 'FDSTORE=1', 'FDSTOREREMOVE=1', 'FDPOLL=0', 'READY=1', 'RELOADING=1', 'STOPPING=1',
  'WATCHDOG=1', 'ERRNO=5', 'ERRNO=EBUSY', 'X_FOO=bar', 'FDSTORE=0', 'FDSTORE=1 ', 'BARRIER=1', 'STATUS=', 'STATUS=caf\u00e9',
  'EXTEND_TIMEOUT_USEC=1000', 'WATCHDOG_USEC=abc', 'MONOTONIC_USEC=1', 'BUSERROR=x', 'READY=0', '=', 'FDNAME',
];
const SEPS = ['\n', '\r', '\r\n', '\n\n'];
/** Their peers stay with raw.py until closePeers(): EPOLLHUP/EPOLLERR then. */
const POLLABLE = ['socketpair', 'socketpair', 'pipe-r', 'pipe-w'] as const;
/** epoll refuses these (EPERM): stored unpolled (F3.16). */
const UNPOLLABLE = ['memfd', 'devnull'] as const;

interface Entry {
  name: string;
  polled: boolean;
}

function pick<T>(rand: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)]!;
}

function randomMessage(rand: () => number): { data: Buffer; fds: RawFd[] } {
  // One class of fd per message (pollable or not), so which fds survive a limit
  // cut mid-message (F3.9: not defined) does not change what the model predicts.
  const kinds = rand() < 0.7 ? POLLABLE : UNPOLLABLE;
  const fds: RawFd[] = [];
  const nfds = Math.floor(rand() * 5);
  for (let k = 0; k < nfds; k++) {
    // A {dup} of a {dup} is fine: raw.py dups whatever fd sits at that index.
    fds.push(k > 0 && rand() < 0.15 ? { dup: Math.floor(rand() * k) } : pick(rand, kinds));
  }
  const kind = rand();
  if (kind < 0.2) {
    const n = Math.floor(rand() * 300);
    return { data: Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256))), fds };
  }
  if (kind < 0.25) return { data: Buffer.from('FDSTORE=1\nFDNAME=big\n' + 'y'.repeat(4080 + Math.floor(rand() * 3000))), fds };
  if (kind < 0.3) return { data: Buffer.from(`FDSTORE=1\nFDNAME=${pick(rand, NAMES)}\0tail`), fds };
  const lines: string[] = [];
  const n = 1 + Math.floor(rand() * 6);
  for (let k = 0; k < n; k++) lines.push(rand() < 0.3 ? `FDNAME=${pick(rand, NAMES)}` : pick(rand, LINES));
  let text = '';
  for (const l of lines) text += (text === '' && rand() < 0.8 ? '' : pick(rand, SEPS)) + l;
  if (rand() < 0.3) text += pick(rand, SEPS);
  const data = Buffer.from(text, 'utf8');
  return { data: rand() < 0.1 ? Buffer.concat([data, Buffer.from([0])]) : data, fds };
}

function validName(raw: Buffer): boolean {
  return raw.length <= 255 && [...raw].every((b) => b >= 0x20 && b <= 0x7e && b !== 0x3a);
}

/** What systemd does with one datagram from an authorized sender, on the store's entries. */
function applyModel(store: Entry[], max: number, data: Buffer, fds: RawFd[]): void {
  if (data.length > 4096) return; // D1.14
  const nul = data.indexOf(0);
  if (nul >= 0 && nul < data.length - 1) return; // D1.17
  const body = nul === data.length - 1 ? data.subarray(0, nul) : data;
  const lines = body.toString('latin1').split(/[\r\n]+/).filter((l) => l !== '');
  if (lines.includes('BARRIER=1')) return; // A2.18
  const nameLine = lines.find((l) => l.startsWith('FDNAME='));
  const name = nameLine === undefined ? undefined : Buffer.from(nameLine.slice('FDNAME='.length), 'latin1');
  if (lines.includes('FDSTOREREMOVE=1')) { // F3.19, F3.7
    if (name !== undefined && validName(name)) {
      const n = name.toString('latin1');
      for (let i = store.length - 1; i >= 0; i--) if (store[i]!.name === n) store.splice(i, 1);
    }
    return;
  }
  if (!lines.includes('FDSTORE=1')) return; // F3.6
  const stored = name !== undefined && validName(name) ? name.toString('latin1') : 'stored'; // F3.13
  const unique = fds.filter((f) => typeof f === 'string'); // {dup} copies are duplicates (F3.12)
  const polled = !lines.includes('FDPOLL=0') && unique.every((f) => (POLLABLE as readonly RawFd[]).includes(f)); // F3.16
  for (let k = 0; k < unique.length && store.length < max; k++) store.push({ name: stored, polled }); // F3.8
}
