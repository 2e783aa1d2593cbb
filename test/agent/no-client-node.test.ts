/**
 * The agent never loads @kubernetes/client-node (issue 8: it stays lean and
 * credential-free; importing client-node costs +75 MB of RSS and 0.3-0.6 s of
 * start-up). The real agent runs with a hook (test/helpers/module-trace.mjs, loaded
 * with `node --import`) that records every module it resolves, ESM and CommonJS,
 * while it starts with a config file, stores an fd, serves every HTTP endpoint, runs
 * `fdstore ls` and stops. The bench checks the same with strace (bench/lib/agent-idle.js).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent, tempRoot, type Agent } from '../helpers/agent.js';
import { FDSTORE_BIN, run } from '../helpers/proc.js';
import { RestorePeer } from '../restore/peer.js';

const TRACE_HOOK = join(import.meta.dirname, '..', 'helpers', 'module-trace.mjs');
const CLIENT_NODE = /\/node_modules\/@kubernetes\/client-node\//;

const agents: Agent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.dispose();
});

function traced(file: string): NodeJS.ProcessEnv {
  return { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${TRACE_HOOK}`.trim(), FDSTORE_MODULE_TRACE: file };
}

async function get(port: number, path: string): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`);
  await r.arrayBuffer();
  return r.status;
}

describe('the agent never loads @kubernetes/client-node', () => {
  it('not at start with a config, nor storing an fd, serving /status, /metrics and the probes, fdstore ls, or stopping', async () => {
    const trace = join(tempRoot(), 'modules.txt');
    const agent = await startAgent({ containers: ['app'], config: { containers: [{ name: 'app', fileDescriptorStoreMax: 8 }] }, env: traced(trace) });
    agents.push(agent);
    const p = new RestorePeer(agent, 'app');
    try {
      await p.send('FDSTORE=1\nFDNAME=probe', 1);
      await p.barrier();
    } finally {
      await p.exit();
    }
    for (const path of ['/status', '/status?after=1&wait=0', '/metrics', '/healthz']) expect(await get(agent.httpPort, path), path).toBe(200);
    // No READY=1 was sent: whatever the probes say, they answer.
    for (const path of ['/readyz/app', '/livez/app']) expect([200, 503], path).toContain(await get(agent.httpPort, path));
    const ls = await run(process.execPath, [FDSTORE_BIN, 'ls', '--run-dir', agent.runDir, '--json'], { env: traced(trace) });
    expect(ls.code, ls.stderr).toBe(0);
    expect(await agent.stop()).toBe(0);

    const urls = readFileSync(trace, 'utf8').split('\n').filter((l) => l !== '');
    // The trace saw the agent: its own modules, and packages from node_modules (ESM and CommonJS).
    expect(urls.some((u) => u.endsWith('/dist/cli/main.js'))).toBe(true);
    expect(urls.some((u) => /\/dist\/agent\/[^/]+\.js$/.test(u))).toBe(true);
    expect(urls.some((u) => /\/node_modules\/prom-client\//.test(u))).toBe(true);
    expect(urls.some((u) => /\/node_modules\/yaml\//.test(u))).toBe(true);
    expect(urls.filter((u) => CLIENT_NODE.test(u))).toEqual([]);
    // Nor the operator, which is the only user of client-node.
    expect(urls.filter((u) => /\/dist\/operator\//.test(u))).toEqual([]);
  });
});
