// The chart's copies of files that live elsewhere in the repository, byte for byte:
// files/crds/ = crds/ (both written by npm run gen:crds), files/demo/server.py =
// demo/server.py; versions in step with package.json; the dashboard's queries name
// only metrics the agent exports (docs/metrics.md).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CHART, REPO } from './helm.js';

const read = (...p: string[]): string => readFileSync(join(...p), 'utf8');

describe('copies', () => {
  const crds = readdirSync(join(REPO, 'crds')).filter((f) => f.endsWith('.yaml')).sort();

  it('files/crds/ holds exactly the CRDs of crds/', () => {
    expect(readdirSync(join(CHART, 'files', 'crds')).sort()).toEqual(crds);
    expect(crds.length).toBe(2);
  });

  it.each(crds)('files/crds/%s is byte-equal to crds/ (npm run gen:crds writes both)', (f) => {
    expect(read(CHART, 'files', 'crds', f)).toBe(read(REPO, 'crds', f));
  });

  it('files/demo/server.py is byte-equal to demo/server.py (cp demo/server.py charts/fdstore/files/demo/)', () => {
    expect(read(CHART, 'files', 'demo', 'server.py')).toBe(read(REPO, 'demo', 'server.py'));
  });
});

describe('versions', () => {
  const pkg = JSON.parse(read(REPO, 'package.json')) as { version: string };
  const chart = parse(read(CHART, 'Chart.yaml')) as { apiVersion: string; version: string; appVersion: string };

  it('Chart.yaml: apiVersion v2, version and appVersion = package.json version', () => {
    expect([chart.apiVersion, chart.version, chart.appVersion]).toEqual(['v2', pkg.version, pkg.version]);
  });

  it('the fdstore.appVersion template (the image tag a parent chart gets) = appVersion', () => {
    expect(read(CHART, 'templates', '_helpers.tpl')).toMatch(new RegExp(`define "fdstore.appVersion" -}}\\n${pkg.version.replace(/\./g, '\\.')}\\n`));
  });
});

describe('the dashboard', () => {
  type Panel = { type: string; title: string; targets?: { expr: string }[]; gridPos: { x: number; y: number; w: number; h: number } };
  const dash = JSON.parse(read(CHART, 'files', 'dashboards', 'fdstore.json')) as { uid: string; panels: Panel[]; templating: { list: { name: string }[] } };
  const documented = new Set([...read(REPO, 'docs', 'metrics.md').matchAll(/`((?:fdstore|process)_[a-z_]+)`/g)].map((m) => m[1]!));
  const exprs = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));

  it('has panels with queries, a datasource, namespace and pod variables', () => {
    expect(exprs.length).toBeGreaterThan(15);
    expect(dash.templating.list.map((v) => v.name)).toEqual(['datasource', 'namespace', 'pod']);
    for (const p of dash.panels) if (p.type !== 'row') expect([p.title, p.targets?.length]).toEqual([p.title, expect.any(Number)]);
  });

  it('every metric a query names is one docs/metrics.md lists (histograms by their _bucket series)', () => {
    const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\b((?:fdstore|process)_[a-z_]+)\b/g)].map((m) => m[1]!.replace(/_bucket$/, ''))));
    expect([...used].filter((m) => !documented.has(m))).toEqual([]);
    for (const m of ['fdstore_stored_fds', 'fdstore_restores_total', 'fdstore_restore_duration_seconds', 'fdstore_container_ready', 'fdstore_watchdog_expired_total', 'fdstore_agent_start_time_seconds']) expect(used).toContain(m);
  });

  it('every query filters by the namespace and pod variables', () => {
    for (const e of exprs) expect(e).toContain('namespace=~"$namespace", pod=~"$pod"');
  });

  it('panels do not overlap on the 24-column grid', () => {
    const cells = new Set<string>();
    for (const p of dash.panels) {
      const { x, y, w, h } = p.gridPos;
      expect(x + w).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++) for (let j = y; j < y + h; j++) {
        expect(cells.has(`${i},${j}`), `${p.title} overlaps at ${i},${j}`).toBe(false);
        cells.add(`${i},${j}`);
      }
    }
  });
});
