/**
 * The store survives the agent (issue 11): SIGKILL the agent 100 times while the
 * app stores and removes; after each, the new agent's store equals the model (the
 * acknowledged operations, plus a prefix of those in flight when it died), no fd
 * leaked in the agent or the keeper, and restores are exact, the listen socket
 * the same kernel object throughout.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempRoot } from '../helpers/agent.js';
import { App, Model, Pod, startKeeper, until, type Keeper } from './harness.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Op {
  kind: 'store' | 'remove';
  name: string;
  inodes: number[];
}

function apply(m: Model, op: Op): Model {
  const n = m.clone();
  if (op.kind === 'store') n.store(op.name, op.inodes);
  else n.remove(op.name);
  return n;
}

async function setup(): Promise<{ pod: Pod; keeper: Keeper; app: App }> {
  const listen = join(tempRoot(), 'web.sock');
  const p2 = new Pod({ containers: [{ name: 'app', listen: [{ name: 'web', kind: 'unix-stream', address: listen }] }] });
  const keeper = await startKeeper(p2.runDir);
  cleanups.push(async () => keeper.kill());
  await p2.startAgent();
  cleanups.push(async () => p2.killAgent());
  const app = new App(p2.notifyPath());
  cleanups.push(() => app.exit());
  return { pod: p2, keeper, app };
}

const ROUNDS = Number(process.env.KEEPER_ROUNDS ?? 100);

describe('keeper: the store survives SIGKILL of the agent', () => {
  it('100 SIGKILLs while the app stores, removes and restores', { timeout: 900_000 }, async () => {
    const { pod, keeper, app } = await setup();
    let model = new Model();
    // Fds besides the stored ones, with an empty store: each later agent must hold exactly these plus the store.
    const first = await pod.restore();
    expect(first.stored.map((s) => s.split('/')[0])).toEqual(['web']);
    const web = first.stored[0]!;
    // Measured on an agent that took over from the keeper, as every later one does.
    await pod.killAgent();
    await pod.startAgent();
    const agentBase = pod.agent!.fdCount();
    const keeperBase = keeper.idleFds + 2; // its connection to the agent, the listen socket it mirrors
    let step = 0;
    const nextOp = async (): Promise<Op | null> => {
      step++;
      const name = `n${step % 7}`;
      if (step % 3 === 0) {
        const a = await app.remove(name);
        return a.ok ? { kind: 'remove', name, inodes: [] } : null;
      }
      const a = await app.store(name, 1 + (step % 4), step % 2 === 0 ? 'sock' : 'memfd');
      return a.ok ? { kind: 'store', name, inodes: a.inodes! } : null;
    };

    for (let i = 0; i < ROUNDS; i++) {
      // Acknowledged: in the keeper before the barrier's answer.
      for (let k = 0; k < 2; k++) {
        const op = await nextOp();
        expect(op).not.toBeNull();
        model = apply(model, op!);
      }
      expect(await app.barrier()).toBe(true);
      // In flight when the agent dies: each one may or may not have made it, in order.
      const inflight: Op[] = [];
      const sending = (async () => {
        for (let k = 0; k < 3; k++) {
          const op = await nextOp();
          if (op === null) return;
          inflight.push(op);
        }
      })();
      if (i % 2 === 1) await new Promise<void>((r) => setImmediate(r));
      await pod.killAgent();
      await sending;

      const agent = await pod.startAgent();
      const got = await pod.stored();
      const candidates = [model];
      for (const op of inflight) candidates.push(apply(candidates[candidates.length - 1]!, op));
      const k = candidates.findIndex((m) => JSON.stringify(m.entries()) === JSON.stringify(got));
      expect(k, `round ${i}: store ${JSON.stringify(got)} is none of ${JSON.stringify(candidates.map((m) => m.entries()))}`).toBeGreaterThanOrEqual(0);
      model = candidates[k]!;
      // No fd leaked, in either process.
      await until(() => agent.fdCount() === agentBase + model.size, `agent fds ${agent.fdCount()} == ${agentBase} + ${model.size} (round ${i})`);
      await until(() => keeper.fds() === keeperBase + model.size, `keeper fds ${keeper.fds()} == ${keeperBase} + ${model.size} (round ${i})`);
      if (i % 10 === 9) {
        const r = await pod.restore();
        expect(r.stored).toEqual([...model.entries(), web].sort());
      }
    }
    expect(await pod.stored()).toEqual(model.entries());
  });
});
