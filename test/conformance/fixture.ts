/** Per-test setup shared by the conformance files: an agent, its clients, cleanup. */
import { afterEach, beforeAll, vi } from 'vitest';
import { startAgent, type Agent, type StartAgentOptions } from '../helpers/agent.js';
import { buildClients } from '../helpers/clients/build.js';
import { NotifyClient } from '../helpers/clients/index.js';
import { RawSender } from '../helpers/raw.js';
import type { RunAs } from '../helpers/proc.js';

export interface Fixture {
  agent: Agent;
  /** Open fds of the agent with an empty store, after one barrier round trip. */
  baseline: number;
  /** A libsystemd client of the agent's first container (started lazily). */
  client(user?: RunAs, container?: string): NotifyClient;
  raw(container?: string): RawSender;
}

/** Registers cleanup and the client build for the calling test file. */
export function useAgents(): (opts?: StartAgentOptions) => Promise<Fixture> {
  const cleanups: Array<() => Promise<unknown>> = [];
  // Agents, namespaces and uids take a few hundred ms each; a wait that fails
  // should report its own message (waitForLog's 5 s), not vitest's 5 s timeout.
  vi.setConfig({ testTimeout: 30_000, hookTimeout: 30_000 });
  beforeAll(() => {
    buildClients();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });
  return async (opts = {}) => {
    const agent = await startAgent(opts);
    cleanups.push(() => agent.dispose());
    const client = (user?: RunAs, container?: string): NotifyClient => {
      const c = NotifyClient.start({ socket: agent.notifyPath(container), placement: agent.placement(user) });
      cleanups.push(() => c.exit());
      return c;
    };
    const raw = (container?: string): RawSender => {
      const r = new RawSender(agent.notifyPath(container), agent.placement());
      cleanups.push(() => r.exit());
      return r;
    };
    // One full round trip first, so lazily opened fds are part of the baseline.
    const warm = raw();
    if (!(await warm.barrier())) throw new Error(`agent did not acknowledge a barrier\n${agent.stderrTail()}`);
    const baseline = agent.fdCount();
    return { agent, baseline, client, raw };
  };
}
