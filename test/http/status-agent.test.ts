/**
 * GET /status of the real agent, driven by real clients: libsystemd through the
 * real launcher (consumer.c behind fdstore-exec) and notify_fds. What /status
 * shows is what `fdstore ls` shows for the same state, minus paths and addresses;
 * the long-poll wakes on changes, not on watchdog pings; its waiters are bounded,
 * released when their client goes away, and never shut out a probe.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { request } from 'node:http';
import { startAgent, type Agent, type LsJson } from '../helpers/agent.js';
import { NotifyClient } from '../helpers/clients/index.js';
import { expectFdCount } from '../helpers/observe.js';
import { buildConsumer, Consumer, freePort, waitExited } from '../restore/harness.js';
import type { AgentStatus } from '../../src/status/types.js';
import type { ContainerStatus } from '../../src/admin/protocol.js';
import { STATUS_TEXT_MAX, STATUS_WAITERS_MAX } from '../../src/status/types.js';

const cleanups: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let consumer = '';
beforeAll(() => {
  consumer = buildConsumer();
});

async function agentWith(opts: Parameters<typeof startAgent>[0] = {}): Promise<Agent> {
  const a = await startAgent(opts);
  cleanups.push(() => a.dispose());
  return a;
}

function client(agent: Agent, container = 'app'): NotifyClient {
  const c = NotifyClient.start({ socket: agent.notifyPath(container) });
  cleanups.push(() => c.exit());
  return c;
}

interface Answer {
  status: number;
  wait: string | undefined;
  raw: string;
  json: AgentStatus;
}

/** One request on its own connection (Connection: close: nothing lingers in the agent's fd table). */
function get(agent: Agent, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: agent.httpPort, path, agent: false }, (res) => {
      let raw = '';
      res.setEncoding('utf8').on('data', (d: string) => (raw += d));
      res.on('end', () => {
        const wait = res.headers['fdstore-wait'] as string | undefined;
        resolve({ status: res.statusCode!, wait, raw, json: res.statusCode === 200 && wait ? (JSON.parse(raw) as AgentStatus) : ({} as AgentStatus) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const status = (agent: Agent): Promise<AgentStatus> => get(agent, '/status').then((a) => a.json);
const poll = (agent: Agent, after: number, wait = 30): Promise<Answer> => get(agent, `/status?after=${after}&wait=${wait}`);

async function metric(agent: Agent, series: string): Promise<number> {
  return (await agent.metrics()).get(series) ?? NaN;
}

/** Polls the agent's own gauge of waiting requests (a state; the deadline only bounds a failure). */
async function waiters(agent: Agent, n: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await metric(agent, 'fdstore_status_waiters')) !== n) {
    if (Date.now() > deadline) throw new Error(`fdstore_status_waiters never reached ${n}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A long-poll on a raw connection the test closes itself. */
function rawPoll(agent: Agent, path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port: agent.httpPort });
    sock.on('error', () => {});
    sock.once('connect', () => {
      sock.write(`GET ${path} HTTP/1.1\r\nHost: agent\r\n\r\n`);
      resolve(sock);
    });
    sock.once('error', reject);
  });
}

/** What /status should say about a container's fds, computed from `fdstore ls --json`. */
function groupsOf(ls: LsJson, container: string): Array<{ name: string; type: string; count: number }> {
  const m = new Map<string, number>();
  for (const f of ls.fds.filter((x) => x.container === container)) m.set(`${f.fdname}\0${f.type}`, (m.get(`${f.fdname}\0${f.type}`) ?? 0) + 1);
  return [...m].map(([k, count]) => ({ name: k.split('\0')[0]!, type: k.split('\0')[1]!, count }));
}

const byKey = (a: { name: string; type: string }, b: { name: string; type: string }): number =>
  `${a.name}\0${a.type}` < `${b.name}\0${b.type}` ? -1 : 1;

describe('GET /status of a real agent', () => {
  it('shows what fdstore ls shows (counts, names, types, restores, STATUS=), without paths or addresses', async () => {
    const port = await freePort();
    const agent = await agentWith({
      containers: ['app', 'db'],
      config: { containers: [{ name: 'app', fileDescriptorStoreMax: 8, listen: [{ name: 'web', kind: 'tcp', address: `127.0.0.1:${port}` }] }, { name: 'db' }] },
    });
    // Run 1: a restore of the listen socket alone; the app stores fds of four types.
    const first = await Consumer.start(agent, consumer);
    await first.cmd('pair conn hello'); // conn-rx, conn-tx: unix
    await first.cmd('memfd state s1');
    await first.cmd('store 3 web-copy'); // the activation socket, stored: tcp_listen on 127.0.0.1:PORT
    await first.cmd('bulk 3 spare'); // three unix datagram sockets
    await first.exit();
    await waitExited(agent);
    // Run 2: restored with 7 fds + the listen socket; one more is over the limit of 8.
    const second = await Consumer.start(agent, consumer);
    expect(second.report.fds).toHaveLength(8);
    await second.cmd('bulk 2 extra'); // one stored (8 of 8), one closed for over_limit
    const text = `serving ${'é'.repeat(200)}`; // 8 + 400 bytes: cut to 256
    await second.cmd(`notify READY=1\\nERRNO=11\\nSTATUS=${text}`);
    await second.cmd('barrier');

    const ls = await agent.ls();
    const answer = await get(agent, '/status');
    expect(answer.status).toBe(200);
    const s = answer.json;
    expect(s.containers.map((c) => c.name)).toEqual(ls.containers.map((c) => c.name));
    for (const lc of ls.containers as unknown as ContainerStatus[]) {
      const sc = s.containers.find((c) => c.name === lc.name)!;
      expect(sc).toMatchObject({
        stored: lc.count,
        max: lc.max,
        state: lc.state,
        ready: lc.ready,
        readyReason: lc.readyReason,
        live: lc.live,
        liveReason: lc.liveReason,
        restores: lc.restores,
        restoreFailures: lc.restoreFailures,
        starts: lc.starts,
        errno: lc.errno,
        fdGroupsOmitted: 0,
        listen: lc.listen.map((l) => ({ name: l.name, kind: l.kind })),
      });
      expect([...sc.fdGroups].sort(byKey)).toEqual(groupsOf(ls, lc.name).sort(byKey));
    }
    const app = s.containers.find((c) => c.name === 'app')!;
    // The numbers themselves, so a wrong `ls` cannot make both sides agree.
    expect(app).toMatchObject({ stored: 8, state: 'ready', restores: 2, starts: 2, errno: 11, overLimit: 1, lastRestore: { fds: 8 } });
    expect(new Set(app.fdGroups.map((g) => `${g.name}:${g.type}`))).toEqual(
      new Set(['conn-rx:unix', 'conn-tx:unix', 'state:memfd', 'web-copy:tcp_listen', 'spare:unix', 'extra:unix']),
    );
    expect(ls.containers.find((c) => c.name === 'app')!.status).toBe(text);
    expect(app.status).toBe(`serving ${'é'.repeat(124)}`); // 8 + 248 = 256 bytes
    expect(Buffer.byteLength(app.status!)).toBeLessThanOrEqual(STATUS_TEXT_MAX);
    expect(await metric(agent, 'fdstore_fds_dropped_total{app_container="app",reason="over_limit"}')).toBe(app.overLimit);
    expect(s.containers.find((c) => c.name === 'db')).toMatchObject({ stored: 0, restores: 0, lastRestore: null, status: null });
    // Nothing from the pod's file system or network: no run dir, no addresses, no ports.
    expect(ls.fds.some((f) => f.address.includes(`127.0.0.1:${port}`))).toBe(true);
    expect(answer.raw).not.toContain(agent.root);
    expect(answer.raw).not.toContain('127.0.0.1');
    expect(answer.raw).not.toContain(String(port));
    expect(answer.raw).not.toContain('/memfd:');
    expect(answer.raw).not.toContain('socket:[');
    await second.exit();
  });

  it('a long-poll answers once an FDSTORE=1 is stored, and after `wait` with the same generation when nothing changed', async () => {
    const agent = await agentWith();
    const app = client(agent);
    const g = (await status(agent)).generation;
    const quiet = await poll(agent, g, 1);
    expect(quiet).toMatchObject({ status: 200, wait: 'timeout' });
    expect(quiet.json.generation).toBe(g);

    const pending = poll(agent, g);
    await waiters(agent, 1);
    const [fd] = await app.socketpairs(1);
    expect(await app.notify('FDSTORE=1\nFDNAME=conn', [fd!])).toBeGreaterThan(0);
    const woke = await pending;
    expect(woke.wait).toBe('changed');
    expect(woke.json.generation).toBeGreaterThan(g);
    expect(woke.json.containers[0]!.fdGroups).toEqual([{ name: 'conn', type: 'unix', count: 1 }]);
    expect(await metric(agent, 'fdstore_status_requests_total{kind="waited"}')).toBe(2);
  });

  it('a watchdog ping does not wake a waiter or move the generation', async () => {
    const agent = await agentWith({ args: ['--watchdog-sec', '60'] });
    const app = client(agent);
    await app.notify('READY=1');
    await app.barrier();
    const g = (await status(agent)).generation;
    const pending = poll(agent, g);
    let answered = false;
    void pending.then(() => (answered = true));
    await waiters(agent, 1);
    const pings = await metric(agent, 'fdstore_watchdog_pings_total{app_container="app"}');
    for (let i = 0; i < 3; i++) await app.notify('WATCHDOG=1');
    await app.barrier();
    expect(await metric(agent, 'fdstore_watchdog_pings_total{app_container="app"}')).toBe(pings + 3);
    expect(answered).toBe(false);
    // The next real change is what answers it, and it is the only change since g.
    await app.notify('STATUS=after the pings');
    const a = await pending;
    expect(a.wait).toBe('changed');
    expect(a.json.generation).toBe(g + 1);
    expect(a.json.containers[0]!.status).toBe('after the pings');
    expect(a.json.containers[0]!.watchdog.deadline).not.toBeNull();
  });

  it(`with ${STATUS_WAITERS_MAX} waiting, one more long-poll is answered at once, refused, and counted`, async () => {
    const agent = await agentWith();
    const g = (await status(agent)).generation;
    const polls = Array.from({ length: STATUS_WAITERS_MAX }, () => poll(agent, g));
    await waiters(agent, STATUS_WAITERS_MAX);
    const extra = await poll(agent, g);
    expect(extra).toMatchObject({ status: 200, wait: 'refused' });
    expect(extra.json.generation).toBe(g);
    expect(await metric(agent, 'fdstore_status_requests_total{kind="refused_wait"}')).toBe(1);
    const app = client(agent);
    await app.notify('STATUS=release them');
    for (const a of await Promise.all(polls)) expect(a.wait).toBe('changed');
    await waiters(agent, 0);
  });

  it('a waiter whose client disconnects is released: its socket closes, the fd count comes back', async () => {
    const agent = await agentWith();
    // Before any HTTP request of ours: no connection of the test is open in it yet.
    const baseline = agent.fdCount();
    const g = 1; // nothing happened since the start
    const socks = await Promise.all([1, 2, 3].map(() => rawPoll(agent, `/status?after=${g}&wait=30`)));
    await waiters(agent, 3);
    await expectFdCount(agent, baseline + 3);
    for (const s of socks) s.destroy();
    await waiters(agent, 0);
    await expectFdCount(agent, baseline);
    expect(await metric(agent, 'fdstore_status_requests_total{kind="waited"}')).toBe(0);
  });

  it('SIGTERM does not wait for waiting long-polls: their connections close, the agent exits 0', async () => {
    const agent = await agentWith();
    const polls = [1, 2].map(() => poll(agent, 1).then(() => 'answered', () => 'closed'));
    await waiters(agent, 2);
    expect(await agent.stop()).toBe(0);
    expect(await Promise.all(polls)).toEqual(['closed', 'closed']);
  });

  it('64 idle connections and the most long-polls still let /healthz through, and the long-polls survive', async () => {
    const agent = await agentWith();
    const g = (await status(agent)).generation;
    const polls = Array.from({ length: STATUS_WAITERS_MAX }, () => poll(agent, g));
    await waiters(agent, STATUS_WAITERS_MAX);
    const idle: Socket[] = [];
    cleanups.push(() => idle.forEach((s) => s.destroy()));
    for (let i = 0; i < 64; i++) {
      const s = connect({ host: '127.0.0.1', port: agent.httpPort });
      s.on('error', () => {});
      await new Promise((r) => s.once('connect', r));
      idle.push(s);
    }
    const h = await get(agent, '/healthz');
    expect(h).toMatchObject({ status: 200, raw: 'ok\n' });
    await waiters(agent, STATUS_WAITERS_MAX);
    const app = client(agent);
    await app.notify('STATUS=still here');
    for (const a of await Promise.all(polls)) expect(a.json.containers[0]!.status).toBe('still here');
  });

  it('the generation strictly increases with every change, and each long-poll picks up from the last', async () => {
    const agent = await agentWith({ config: { containers: [{ name: 'app', fileDescriptorStoreMax: 2 }] } });
    const app = client(agent);
    let g = (await status(agent)).generation;
    expect(g).toBe(1);
    const [a, b, c] = await app.socketpairs(3);
    const steps: Array<[string, number[]]> = [
      ['READY=1', []],
      ['STATUS=one', []],
      ['FDSTORE=1\nFDNAME=a', [a!]],
      ['FDSTORE=1\nFDNAME=b', [b!, c!]], // one stored, one over the limit
      ['FDSTOREREMOVE=1\nFDNAME=a', []],
      ['ERRNO=2', []],
      ['STOPPING=1', []],
    ];
    const seen = [g];
    for (const [state, fds] of steps) {
      const pending = poll(agent, g);
      await waiters(agent, 1);
      await app.notify(state, fds);
      const ans = await pending;
      expect(ans.wait, state).toBe('changed');
      expect(ans.json.generation, state).toBeGreaterThan(g);
      g = ans.json.generation;
      seen.push(g);
    }
    expect(seen).toEqual([...seen].sort((x, y) => x - y));
    expect(new Set(seen).size).toBe(seen.length);
    const end = (await status(agent)).containers[0]!;
    expect(end).toMatchObject({ state: 'stopping', stored: 1, overLimit: 1, errno: 2, status: 'one' });
  });
});
