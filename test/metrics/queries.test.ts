/**
 * The PromQL queries in docs/metrics.md, run by the real promtool (`check rules`,
 * `test rules`) against series labelled as a PodMonitor scrape labels them: job,
 * namespace, pod, instance and `container` (the scraped container: the agent's
 * sidecar). Our own label is app_container, so nothing becomes exported_container.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { REPO } from '../helpers/proc.js';
import { PROMTOOL } from './expo.js';

/** "# title" lines, each followed by the query (possibly over several lines). */
function docQueries(): Map<string, string> {
  const doc = readFileSync(join(REPO, 'docs', 'metrics.md'), 'utf8');
  const block = /```promql\n([\s\S]*?)```/.exec(doc)?.[1];
  if (!block) throw new Error('docs/metrics.md has no promql block');
  const out = new Map<string, string>();
  let title = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('#')) title = line.slice(1).trim();
    else if (line.trim() !== '') out.set(title, `${out.get(title) ?? ''} ${line.trim()}`.trim());
  }
  return out;
}

const dir = mkdtempSync(join(tmpdir(), 'fdstore-t-promql-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function promtool(args: string[]): { code: number | null; out: string } {
  const r = spawnSync(PROMTOOL, args, { cwd: dir, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** What a PodMonitor's scrape adds to every series of the agent. */
const TARGET = { job: 'ns/fdstore', namespace: 'ns', pod: 'web-0', instance: '10.0.0.7:9721', container: 'fdstore', endpoint: 'fdstore' };
const series = (name: string, labels: Record<string, string>): string =>
  `${name}{${Object.entries({ ...TARGET, ...labels }).map(([k, v]) => `${k}="${v}"`).join(',')}}`;

describe('docs/metrics.md queries (promtool)', () => {
  const queries = docQueries();
  const near = [...queries].find(([t]) => t.startsWith('Stores close to their limit'))?.[1];

  it('every query is valid PromQL (promtool check rules)', () => {
    expect(queries.size).toBeGreaterThanOrEqual(5);
    const rules = { groups: [{ name: 'docs', rules: [...queries.values()].map((expr, i) => ({ alert: `Doc${i}`, expr })) }] };
    writeFileSync(join(dir, 'all.yml'), stringify(rules));
    const r = promtool(['check', 'rules', 'all.yml']);
    expect(r.code, r.out).toBe(0);
  });

  it('"Stores close to their limit" fires for a store at 95 of 100 fds, not for one at 50', () => {
    expect(near).toBeDefined();
    writeFileSync(join(dir, 'near.yml'), stringify({ groups: [{ name: 'docs', rules: [{ alert: 'StoreNearlyFull', expr: near }] }] }));
    const input = [
      { series: series('fdstore_stored_fds', { app_container: 'app', type: 'tcp_listen' }), values: '90x5' },
      { series: series('fdstore_stored_fds', { app_container: 'app', type: 'memfd' }), values: '5x5' },
      { series: series('fdstore_fd_store_max', { app_container: 'app' }), values: '100x5' },
      { series: series('fdstore_stored_fds', { app_container: 'worker', type: 'tcp_listen' }), values: '50x5' },
      { series: series('fdstore_fd_store_max', { app_container: 'worker' }), values: '100x5' },
    ];
    writeFileSync(join(dir, 'near.test.yml'), stringify({
      rule_files: ['near.yml'],
      evaluation_interval: '1m',
      tests: [{
        interval: '1m',
        input_series: input,
        alert_rule_test: [{
          eval_time: '2m',
          alertname: 'StoreNearlyFull',
          exp_alerts: [{ exp_labels: { namespace: 'ns', pod: 'web-0', app_container: 'app' } }],
        }],
      }],
    }));
    const r = promtool(['test', 'rules', 'near.test.yml']);
    expect(r.code, r.out).toBe(0);
  });
});
