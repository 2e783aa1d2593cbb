// The dashboard's queries through the real promtool: each one valid PromQL once
// Grafana's variables are filled in, and the store-use panel computing the use of a
// store from series labelled as a PodMonitor scrape labels them (the division must
// match on namespace, pod and app_container after the sum, or it shows nothing).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { PROMTOOL } from '../metrics/expo.js';
import { CHART } from './helm.js';

type Panel = { title: string; targets?: { expr: string }[] };
const dash = JSON.parse(readFileSync(join(CHART, 'files', 'dashboards', 'fdstore.json'), 'utf8')) as { panels: Panel[] };
/** Grafana's variables as a query for every namespace and pod sends them. */
const filled = (e: string): string => e.replaceAll('$namespace', '.*').replaceAll('$pod', '.*').replaceAll('$__rate_interval', '5m');
const dir = mkdtempSync(join(tmpdir(), 'fdstore-t-dash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function promtool(args: string[]): { code: number | null; out: string } {
  const r = spawnSync(PROMTOOL, args, { cwd: dir, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('the dashboard\'s queries (promtool)', () => {
  it('are valid PromQL', () => {
    const exprs = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => filled(t.expr)));
    writeFileSync(join(dir, 'all.yml'), stringify({ groups: [{ name: 'dash', rules: exprs.map((expr, i) => ({ record: `dash:q${i}`, expr })) }] }));
    const r = promtool(['check', 'rules', 'all.yml']);
    expect(r.code, r.out).toBe(0);
    // the check can fail
    writeFileSync(join(dir, 'bad.yml'), stringify({ groups: [{ name: 'dash', rules: [{ record: 'dash:bad', expr: 'sum by (pod (fdstore_stored_fds)' }] }] }));
    expect(promtool(['check', 'rules', 'bad.yml']).code).not.toBe(0);
  });

  it('"Store use" is stored / max per pod and app container', () => {
    const expr = filled(dash.panels.find((p) => p.title === 'Store use')!.targets![0]!.expr);
    const target = 'job="ns/fdstore",namespace="ns",pod="web-0",instance="10.0.0.7:9721",container="fdstore",endpoint="fdstore"';
    writeFileSync(join(dir, 'use.yml'), stringify({ groups: [{ name: 'dash', rules: [{ record: 'dash:store_use', expr }] }] }));
    writeFileSync(join(dir, 'use.test.yml'), stringify({
      rule_files: ['use.yml'],
      evaluation_interval: '1m',
      tests: [{
        interval: '1m',
        input_series: [
          { series: `fdstore_stored_fds{${target},app_container="app",type="tcp_listen"}`, values: '30x5' },
          { series: `fdstore_stored_fds{${target},app_container="app",type="memfd"}`, values: '10x5' },
          { series: `fdstore_fd_store_max{${target},app_container="app"}`, values: '80x5' },
        ],
        promql_expr_test: [{ expr: 'dash:store_use', eval_time: '2m', exp_samples: [{ labels: 'dash:store_use{namespace="ns",pod="web-0",app_container="app"}', value: 0.5 }] }],
      }],
    }));
    const r = promtool(['test', 'rules', 'use.test.yml']);
    expect(r.code, r.out).toBe(0);
  });
});
