/**
 * The keeper alone: a keeper restart is re-seeded by the agent with nothing lost;
 * a state blob of an unknown version is refused cleanly (fds adopted, runs not);
 * hostile peers (another uid, garbage records with fds) are dropped with no leak;
 * without --keeper the agent works as before; the protocol constants agree.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PYTHON, REPO, run } from '../helpers/proc.js';
import * as wire from '../../src/keeper/wire.js';
import type { AgentStatus } from '../../src/status/types.js';
import { KEEPER_DIR, KEEPER_SOCKET } from '../../src/unit/layout.js';
import { App, Model, Pod, keeperSocket, startKeeper, until, type Keeper } from './harness.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function podWithKeeper(keeperArgs: string[] = []): Promise<{ pod: Pod; keeper: Keeper; app: App }> {
  const pod = new Pod();
  const keeper = await startKeeper(pod.runDir, keeperArgs);
  cleanups.push(async () => keeper.kill());
  await pod.startAgent();
  cleanups.push(async () => pod.killAgent());
  const app = new App(pod.notifyPath());
  cleanups.push(() => app.exit());
  return { pod, keeper, app };
}

/** A raw SEQPACKET peer of the keeper (python): sends hex records with memfds, prints the keeper's hello. */
const RAW_PEER = `
import array, json, os, socket, sys
path, hexmsg, nfds = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(path)
s.settimeout(2)
try:
    hello = s.recv(64).hex()
except OSError as e:
    hello = 'none:%s' % e
fds = [os.memfd_create('raw%d' % i) for i in range(nfds)]
inos = [os.fstat(f).st_ino for f in fds]
try:
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', fds))] if fds else []
    s.sendmsg([bytes.fromhex(hexmsg)], anc)
    sent = True
except OSError:
    sent = False
try:
    rest = s.recv(64)
    closed = rest == b''
except OSError:
    closed = False
print(json.dumps({'hello': hello, 'sent': sent, 'inodes': inos, 'closedByKeeper': closed}))
`;

async function agentStatus(port: number): Promise<AgentStatus> {
  return (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as AgentStatus;
}

async function rawPeer(path: string, msg: Buffer, nfds: number): Promise<{ hello: string; sent: boolean; inodes: number[]; closedByKeeper: boolean }> {
  const r = await run(PYTHON, ['-c', RAW_PEER, path, msg.toString('hex'), String(nfds)]);
  if (r.code !== 0) throw new Error(`raw peer: ${r.stderr}`);
  return JSON.parse(r.stdout) as never;
}

describe('keeper', () => {
  it('a keeper restart alone: the agent re-seeds it, nothing is lost', { timeout: 120_000 }, async () => {
    const { pod, keeper, app } = await podWithKeeper();
    const model = new Model();
    model.store('a', (await app.store('a', 5)).inodes!);
    model.store('b', (await app.store('b', 3, 'sock')).inodes!);
    expect(await app.barrier()).toBe(true);
    await until(() => keeper.fds() > 8, 'keeper holds the fds');
    await keeper.kill();
    const mark = pod.agent!.mark();
    const k2 = await startKeeper(pod.runDir);
    cleanups.push(async () => k2.kill());
    await pod.agent!.waitForLog((l) => l.msg === 'keeper connected: sending every fd and the state again', 10_000, mark);
    const base = k2.idleFds + 1; // and the agent's connection
    await until(() => k2.fds() === base + model.size, `new keeper holds ${model.size} fds (has ${k2.fds() - base}: ${k2.stderr} ${JSON.stringify(pod.agent!.logs.slice(-5))})`);
    // Now the agent dies: the new agent gets everything from the re-seeded keeper.
    await pod.killAgent();
    const a2 = await pod.startAgent({ http: true });
    expect(await pod.stored()).toEqual(model.entries());
    expect((await pod.restore()).stored).toEqual(model.entries());
    // /status (what FdStore shows): the second agent of this keeper, the store adopted, nothing lost.
    expect((await agentStatus(a2.httpPort)).agent.keeper).toEqual({ connected: true, agentRestarts: 1, adoptedFds: model.size, storeLost: false, reseeds: 0, unmirrored: 0 });
  });

  it('keeper and agent both die: the new agent says the store was lost (/status, metrics, log), and a keeper restart shows as not connected, then re-seeded', { timeout: 120_000 }, async () => {
    const { pod, keeper, app } = await podWithKeeper();
    await app.store('a', 4);
    expect(await app.barrier()).toBe(true);
    await until(() => keeper.fds() >= keeper.idleFds + 1 + 4, 'keeper holds the fds');
    await keeper.kill();
    await pod.killAgent();
    const k2 = await startKeeper(pod.runDir);
    cleanups.push(async () => k2.kill());
    const a = await pod.startAgent({ http: true });
    expect(a.logs.some((l) => l.level === 'error' && String(l.msg).startsWith('store lost'))).toBe(true);
    const s = await agentStatus(a.httpPort);
    expect(s.agent.keeper).toMatchObject({ connected: true, agentRestarts: 0, adoptedFds: 0, storeLost: true });
    const metrics = await (await fetch(`http://127.0.0.1:${a.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^fdstore_store_lost 1$/m);
    // The keeper goes away: /status says so at once (a new generation), and again when it is back.
    const g = s.generation;
    await k2.kill();
    await until(async () => (await agentStatus(a.httpPort)).agent.keeper?.connected === false, 'keeper.connected false');
    expect((await agentStatus(a.httpPort)).generation).toBeGreaterThan(g);
    const k3 = await startKeeper(pod.runDir);
    cleanups.push(async () => k3.kill());
    await until(async () => (await agentStatus(a.httpPort)).agent.keeper?.connected === true, 'keeper.connected true again');
    expect((await agentStatus(a.httpPort)).agent.keeper?.reseeds).toBe(1);
  });

  it('a keeper restarted with less room (--max-fds) takes what fits; the rest is counted as unmirrored, not retried forever', { timeout: 120_000 }, async () => {
    const { pod, keeper, app } = await podWithKeeper();
    await app.store('a', 6);
    expect(await app.barrier()).toBe(true);
    await until(() => keeper.fds() >= keeper.idleFds + 1 + 6, 'keeper holds the 6 fds');
    await keeper.kill();
    await pod.killAgent();
    const k2 = await startKeeper(pod.runDir);
    cleanups.push(async () => k2.kill());
    const a = await pod.startAgent({ http: true });
    expect((await pod.stored()).length).toBe(0);
    await app.store('b', 6);
    expect(await app.barrier()).toBe(true);
    await k2.kill();
    const k3 = await startKeeper(pod.runDir, ['--max-fds', '4']);
    cleanups.push(async () => k3.kill());
    await until(async () => (await agentStatus(a.httpPort)).agent.keeper?.connected === true, 'the agent connected to the smaller keeper');
    await until(() => k3.fds() === k3.idleFds + 1 + 4, `the smaller keeper holds 4 fds (has ${k3.fds() - k3.idleFds - 1})`);
    const k = (await agentStatus(a.httpPort)).agent.keeper!;
    expect([k.reseeds, k.unmirrored]).toEqual([1, 2]);
    // Once, not in a loop: the link stays up.
    const mark = a.mark();
    await app.store('c', 1);
    expect(await app.barrier()).toBe(true);
    expect(a.logs.slice(mark).filter((l) => String(l.msg).startsWith('keeper send failed') || String(l.msg).startsWith('keeper went away'))).toEqual([]);
    expect((await agentStatus(a.httpPort)).agent.keeper).toMatchObject({ connected: true, reseeds: 1, unmirrored: 3 });
  });

  it('a state blob of an unknown version is refused with a clear message: fds only', { timeout: 60_000 }, async () => {
    const pod = new Pod();
    const keeper = await startKeeper(pod.runDir);
    cleanups.push(async () => keeper.kill());
    // What a future agent might leave: its own fds, metadata of this protocol, a blob of version 99.
    const b = new wire.MessageBuilder()
      .reset()
      .meta(0, Buffer.from('s0app\0future'))
      .add(0, [0, 1], [-1, -1])
      .state(Buffer.from(JSON.stringify({ v: 99, agentStarts: 7, containers: { app: { run: { phase: 'ready' } } } })));
    const [m] = b.take();
    const peer = await rawPeer(keeperSocket(pod.runDir), m!.data, 2);
    expect(peer.sent).toBe(true);
    await until(() => keeper.fds() === keeper.idleFds + 2, 'keeper holds the two fds');
    const agent = await pod.startAgent();
    cleanups.push(async () => pod.killAgent());
    const refused = agent.logs.find((l) => l.msg === 'keeper state refused: adopting fds only');
    expect(refused?.why).toBe('keeper state of version 99 is not readable by this agent (reads 1)');
    expect(await pod.stored()).toEqual(peer.inodes.map((i) => `future/${i}`).sort());
    // The run is not taken from the refused blob (it said ready): a fresh start, as without a keeper.
    const ls = await agent.ls('app');
    expect(ls.containers[0]!.state).toBe('starting');
  });

  it('hostile peers: another uid is refused, garbage is dropped with its fds, no leak', { timeout: 60_000 }, async () => {
    // A keeper that serves uid 4242 only: this test (root) is the other uid.
    const pod = new Pod();
    const keeper = await startKeeper(pod.runDir, ['--uid', '4242']);
    cleanups.push(async () => keeper.kill());
    const base = keeper.fds();
    for (let i = 0; i < 20; i++) {
      const r = await rawPeer(keeperSocket(pod.runDir), Buffer.from('R'), 3);
      expect(r.hello).not.toMatch(/^48/); // no 'H'ello for a stranger
    }
    expect(keeper.fds()).toBe(base);
    expect(keeper.stderr).toMatch(/refused a peer of uid 0 .*only uid 4242 may connect/);
    // Rate-limited: 20 refusals, far fewer lines.
    expect(keeper.stderr.split('\n').filter((l) => l.includes('refused a peer')).length).toBeLessThan(20);

    // Garbage from the right uid: each message is dropped whole, its fds closed.
    const { pod: p2, keeper: k2, app } = await podWithKeeper();
    const model = new Model();
    model.store('x', (await app.store('x', 4)).inodes!);
    expect(await app.barrier()).toBe(true);
    const held = k2.idleFds + 1 + model.size;
    await until(() => k2.fds() === held, 'keeper holds the store');
    const garbage = [
      Buffer.from('Zzz'),
      Buffer.from([0x41, 0, 0, 3, 0, 0xff, 0xff, 0xff, 0xff]), // 'A' with a slot far out of range
      Buffer.from([0x41, 0, 0, 1, 0, 0, 0, 0, 0]), // 'A' naming 1 fd, 3 sent
      Buffer.from([0x53, 0xff, 0xff, 0xff, 0x7f]), // 'S' far too long
      Buffer.from([0x4d, 0xff, 0xff, 0x01, 0x00, 0x41]), // 'M' id out of range
    ];
    for (const g of garbage) {
      const mark = p2.agent!.mark();
      const r = await rawPeer(keeperSocket(p2.runDir), g, 3);
      expect(r.closedByKeeper).toBe(true);
      // The stranger's connection replaced the agent's: the agent re-seeds.
      await p2.agent!.waitForLog((l) => l.msg === 'keeper connected: sending every fd and the state again', 10_000, mark);
      await until(() => k2.fds() === held, `keeper back to ${held} fds (has ${k2.fds()})`);
    }
    expect(k2.stderr).toMatch(/dropping the agent connection: (unknown record|slot out of range|fd count does not match|state blob too large|meta id out of range)/);
    await p2.killAgent();
    await p2.startAgent();
    expect(await p2.stored()).toEqual(model.entries());
  });

  it('without --keeper the agent works as before; a keeper not there is retried, then seeded', { timeout: 60_000 }, async () => {
    const pod = new Pod();
    const agent = await pod.startAgent({ keeper: false });
    cleanups.push(async () => pod.killAgent());
    expect(agent.logs.some((l) => String(l.msg).includes('keeper'))).toBe(false);
    await pod.killAgent();
    // --keeper given, keeper not started yet: the agent starts, warns, and seeds the keeper once it is there.
    const a2 = await pod.startAgent();
    expect(a2.logs.some((l) => l.msg === 'keeper not reachable: starting without its state, retrying')).toBe(true);
    const app = new App(pod.notifyPath());
    cleanups.push(() => app.exit());
    const model = new Model();
    model.store('late', (await app.store('late', 2)).inodes!);
    expect(await app.barrier()).toBe(true);
    const keeper = await startKeeper(pod.runDir);
    cleanups.push(async () => keeper.kill());
    await until(() => keeper.fds() === keeper.idleFds + 1 + model.size, 'keeper seeded');
    await pod.killAgent();
    await pod.startAgent();
    expect(await pod.stored()).toEqual(model.entries());
  });

  it('the protocol constants of keeper.h and wire.ts (and layout.ts for the socket) agree', () => {
    const h = readFileSync(join(REPO, 'agent', 'include', 'keeper.h'), 'utf8');
    const def = (n: string): string => new RegExp(`#define ${n} (.+)`).exec(h)![1]!.trim();
    expect(Number(def('KEEPER_VERSION'))).toBe(wire.KEEPER_VERSION);
    expect(JSON.parse(def('KEEPER_DIR'))).toBe(KEEPER_DIR);
    expect(JSON.parse(def('KEEPER_SOCKET'))).toBe(KEEPER_SOCKET);
    expect(Number(def('KEEPER_FDS_PER_MSG'))).toBe(wire.KEEPER_FDS_PER_MSG);
    expect(def('KEEPER_MSG_MAX')).toBe('(128 * 1024)');
    expect(wire.KEEPER_MSG_MAX).toBe(128 * 1024);
    expect(def('KEEPER_BLOB_MAX')).toBe('(64 * 1024)');
    expect(wire.KEEPER_BLOB_MAX).toBe(64 * 1024);
    expect(Number(def('KEEPER_META_MAX'))).toBe(wire.KEEPER_META_MAX);
    expect(Number(def('KEEPER_METAS_MAX'))).toBe(wire.KEEPER_METAS_MAX);
    expect(def('KEEPER_SLOTS_MAX')).toBe('(1 << 20)');
    expect(wire.KEEPER_SLOTS_MAX).toBe(1 << 20);
  });
});
