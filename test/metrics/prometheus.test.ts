/**
 * A real Prometheus server (Debian's /usr/bin/prometheus) scrapes the real agent
 * every second; its query API must return fdstore_stored_fds with what was stored.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { pyNotify } from '../helpers/clients/index.js';
import { freePort, startHttpAgent, until } from './live.js';

const PROMETHEUS = '/usr/bin/prometheus';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Vector {
  status: string;
  data: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

async function startPrometheus(dir: string, target: string): Promise<{ query(q: string): Promise<Vector>; logs(): string }> {
  const port = await freePort();
  mkdirSync(join(dir, 'tsdb'));
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    stringify({
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      scrape_configs: [{ job_name: 'fdstore', static_configs: [{ targets: [target] }] }],
    }),
  );
  const child = spawn(
    PROMETHEUS,
    [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise((res) => child.on('close', res));
  cleanups.push(async () => {
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(t);
  });
  const query = async (q: string): Promise<Vector> => {
    const r = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
    return (await r.json()) as Vector;
  };
  return { query, logs: () => stderr };
}

describe('Prometheus scrapes the agent', () => {
  it('and its query API returns fdstore_stored_fds as stored', async () => {
    const h = await startHttpAgent({ containers: ['app'] });
    cleanups.push(() => h.agent.dispose());
    const { result, proc } = await pyNotify({ socket: h.agent.notifyPath('app'), state: 'FDSTORE=1\nFDNAME=web\nREADY=1', socketpairs: 2, memfd: ['x'] });
    expect(result.acked).toBe(true);
    cleanups.push(() => proc.close());

    const prom = await startPrometheus(h.agent.root, `127.0.0.1:${h.port}`);
    const q = 'fdstore_stored_fds{job="fdstore",app_container="app"}';
    const vec = await until(
      async () => {
        const v = await prom.query(q).catch(() => undefined);
        const r = v?.data?.result;
        return r && r.length === 9 && r.find((s) => s.metric.type === 'unix')?.value[1] === '2' ? v : undefined;
      },
      `Prometheus to return ${q}`,
      45_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${prom.logs()}`);
    });
    const byType = Object.fromEntries(vec.data.result.map((s) => [s.metric.type, s.value[1]]));
    expect(byType).toEqual({ tcp_listen: '0', tcp: '0', udp: '0', unix_listen: '0', unix: '2', memfd: '1', pipe: '0', file: '0', other: '0' });
    expect(vec.data.result[0]!.metric).toMatchObject({ __name__: 'fdstore_stored_fds', instance: `127.0.0.1:${h.port}`, job: 'fdstore' });

    const up = await prom.query('up{job="fdstore"}');
    expect(up.data.result[0]?.value[1]).toBe('1');
    const ready = await prom.query('fdstore_container_ready{app_container="app"}');
    expect(ready.data.result[0]?.value[1]).toBe('1');
  });
});
