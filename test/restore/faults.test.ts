/**
 * Faults around the restore path, each followed by the leak check (the agent's
 * /proc/PID/fd count is back to its start-up count, listeners included, plus
 * what the store holds): the app SIGKILLed while storing 253-fd messages; a
 * launcher SIGKILLed at random points of its start; a restore peer SIGKILLed
 * after exactly the header and k batches (the kill lands mid-transfer: the
 * agent logs and counts an aborted transfer); a launcher started before the
 * agent; no agent at all; a 5,000-fd store restored in full.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { Agent, startAgent, tempRoot } from '../helpers/agent.js';
import { expectFdCount } from '../helpers/observe.js';
import { FDSTORE_BIN, REPO, sleepingBetweenAttempts } from '../helpers/proc.js';
import { restoreFixture, cleanEnv, Consumer, containerState, freePort, launcherOf, sleep, until, waitExited } from './harness.js';
import { RestorePeer, storeLong } from './peer.js';

const BULK = 5000;
const fixture = restoreFixture();
const { agents } = fixture;

async function bigAgent(): Promise<Agent> {
  const port = await freePort();
  const a = await startAgent({
    config: { containers: [{ name: 'app', fileDescriptorStoreMax: 6000, listen: [{ name: 'http', address: `127.0.0.1:${port}` }] }] },
  });
  agents.push(a);
  return a;
}

/** Stores BULK fds named "bulk" and exits cleanly. */
async function fill(agent: Agent): Promise<void> {
  const c = await Consumer.start(agent, fixture.consumer);
  expect(await c.cmd(`bulk ${BULK} bulk`, 30_000)).toBe(`ok ${BULK}`);
  await c.exit();
  await waitExited(agent);
}

describe('faults', () => {
  it('app SIGKILLed while storing many 253-fd messages: what arrived is stored, nothing leaks', { timeout: 300_000 }, async () => {
    const agent = await bigAgent();
    const baseline = agent.fdCount();
    const seen: number[] = [];
    for (const delayMs of [1, 5, 15, 40]) {
      const c = await Consumer.start(agent, fixture.consumer);
      c.proc.child.stdin!.write(`bulk ${BULK} bulk\n`);
      await sleep(delayMs);
      await c.kill('SIGKILL');
      await waitExited(agent); // drains the notify socket first
      const { count } = await containerState(agent);
      seen.push(count as number);
      expect(count as number).toBeLessThanOrEqual(BULK);
      await expectFdCount(agent, baseline + (count as number));
      expect((await agent.cli(['clean', '--run-dir', agent.runDir, '--container', 'app'])).code).toBe(0);
      await expectFdCount(agent, baseline);
    }
    console.log(`stored when killed after 1/5/15/40 ms: ${seen.join(', ')} of ${BULK}`);
    expect(agent.alive).toBe(true);
  });

  it('a restore peer SIGKILLed after the header and k batches: an aborted transfer, logged and counted; the store intact, no fd leaked', async () => {
    // 2,000 fds with 255-byte names: ~512 KB of batches, more than a socket
    // buffer holds, so after k batches read the agent is still sending.
    const LONG = 2000;
    const agent = await startAgent({ config: { containers: [{ name: 'app', fileDescriptorStoreMax: LONG }] } });
    agents.push(agent);
    const sender = new RestorePeer(agent);
    const names = await storeLong(sender, LONG);
    const baseline = agent.fdCount();
    for (const k of [0, 1, 3]) {
      const from = agent.mark();
      const peer = new RestorePeer(agent);
      await peer.connect(1);
      const got = await peer.read(0, 1 + k);
      expect(got.kinds).toEqual(['H', ...Array<string>(k).fill('F')]);
      expect(got.fds).toBe(k * 253);
      await peer.kill();
      const failed = await agent.waitForLog((l) => l.msg === 'restore failed', 10_000, from);
      expect(failed).toMatchObject({ reason: 'disconnected', fds: LONG });
      // Mid-transfer: it had sent at least what the peer read, and not everything.
      expect(failed.sentFds as number).toBeGreaterThanOrEqual(k * 253);
      expect(failed.sentFds as number).toBeLessThan(LONG);
      expect(agent.since(from).some((l) => l.msg === 'restored fds')).toBe(false);
      await waitExited(agent);
      expect(await containerState(agent)).toMatchObject({ count: LONG, restoreFailures: [0, 1, 3].indexOf(k) + 1, deferredCloses: 0 });
      await expectFdCount(agent, baseline);
    }
    // The store is intact: a peer that reads to the end gets every fd, by name.
    const reader = new RestorePeer(agent);
    await reader.connect(1);
    const [r] = await reader.readAll();
    expect(r).toMatchObject({ header: LONG, fds: LONG, end: 'E' });
    expect(r!.names).toEqual(names);
    await reader.exit();
    await sender.exit();
    await waitExited(agent);
    await expectFdCount(agent, baseline);
  });

  it('a store of 5,000 fds is restored in full, and a launcher killed at random points of its start costs nothing', { timeout: 300_000 }, async () => {
    const agent = await bigAgent();
    const baseline = agent.fdCount();
    await fill(agent);
    await expectFdCount(agent, baseline + BULK);
    const outcomes: string[] = [];
    for (const delayMs of [0, 2, 5, 10, 20, 40]) {
      const from = agent.mark();
      const c = new Consumer(launcherOf(agent), fixture.consumer);
      await sleep(delayMs);
      await c.kill('SIGKILL');
      // A killed launcher either never connected, or its run started and then ended.
      await until(async () => {
        const s = await containerState(agent);
        return s.state === 'exited' || agent.since(from).every((l) => l.msg !== 'run started');
      });
      const last = agent.since(from).find((l) => l.msg === 'restored fds' || l.msg === 'restore failed');
      outcomes.push(last ? last.msg : agent.since(from).some((l) => l.msg === 'run started') ? 'connected' : 'not connected');
      await expectFdCount(agent, baseline + BULK, 5_000);
    }
    console.log(`launcher SIGKILLed after 0/2/5/10/20/40 ms: ${outcomes.join(', ')}`);
    // Then a launcher that lives gets every fd, listener first.
    const c = await Consumer.start(agent, fixture.consumer);
    expect(c.report.n).toBe(BULK + 1);
    expect(c.report.fds[0]!.name).toBe('http');
    expect(c.report.fds.slice(1).every((f) => f.name === 'bulk' && f.kind === 'unix-dgram')).toBe(true);
    expect(c.report.fds.at(-1)!.fd).toBe(3 + BULK);
    await c.exit();
    await waitExited(agent);
    expect(await containerState(agent)).toMatchObject({ count: BULK });
    await expectFdCount(agent, baseline + BULK);
  });

  it('a launcher started before the agent waits for it, then gets the listener', async () => {
    const root = tempRoot();
    const runDir = join(root, 'run');
    mkdirSync(join(runDir, 'app'), { recursive: true, mode: 0o755 });
    const port = await freePort();
    // The repository's launcher: the agent has not copied one into DIR/app yet.
    const early = new Consumer(join(REPO, 'agent', 'launcher', 'fdstore-exec'), fixture.consumer, {
      launcherArgs: ['--dir', join(runDir, 'app'), '--wait-ms', '20000'],
    });
    await sleepingBetweenAttempts(early.proc.pid); // it found no agent and waits
    expect(early.proc.child.exitCode).toBe(null);
    const file = join(root, 'config.yaml');
    writeFileSync(file, stringify({ containers: [{ name: 'app', listen: [{ name: 'http', address: `127.0.0.1:${port}` }] }] }));
    const child = spawn(process.execPath, [FDSTORE_BIN, 'agent', '--run-dir', runDir, '--container', 'app', '--http', 'off', '--config', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const agent = new Agent(child, root, runDir, {});
    agent.pid = child.pid!;
    agents.push(agent);
    await agent.waitForLog((l) => l.msg === 'agent ready', 15_000);
    const report = await early.ready();
    expect(report.fds.map((f) => [f.name, f.kind])).toEqual([['http', 'tcp-listen']]);
    expect(await containerState(agent)).toMatchObject({ mainPid: early.proc.pid, restores: 1 });
    await early.exit();
    await waitExited(agent);
  });

  it('with no agent the launcher execs the app without fds after --wait-ms, and says so', async () => {
    const root = tempRoot();
    const started = Date.now();
    const c = new Consumer(join(REPO, 'agent', 'launcher', 'fdstore-exec'), fixture.consumer, {
      launcherArgs: ['--dir', join(root, 'nothing-here'), '--wait-ms', '300'],
      env: cleanEnv({ LISTEN_FDS: '7', LISTEN_PID: '1' }),
    });
    const report = await c.ready();
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(report.n).toBe(0);
    expect(c.proc.stderrText).toMatch(/no agent|without/i);
    c.proc.child.stdin!.write('exit\n');
    expect(await c.proc.close()).toBe(0);
  });
});
