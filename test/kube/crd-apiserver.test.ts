// The CRDs on a real API server: they apply and become Established as structural
// schemas, kubectl explain shows the descriptions, the samples are accepted (the
// FdStore status survives pruning whole, so the schema names every field), and each
// invalid object of cases.ts is refused by the server itself, except what the server
// does not check (listed with the reason).
//
// Part of `npm run test:kube` (the project's 1.20 cluster); FDSTORE_TEST_KUBECONFIG may
// name another admin kubeconfig. Uses $KUBECTL (>= 1.24 for --subresource), else kubectl from PATH.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fdStoreCases, policyCases, sample, type Mutation, type Obj } from '../crd/cases.js';

// In `npm run test:kube` the kube global setup sets KUBECONFIG and KUBECTL (the 1.34 one).
const kubeconfig = process.env.FDSTORE_TEST_KUBECONFIG ?? process.env.KUBECONFIG;
const root = join(import.meta.dirname, '..', '..');
const NS = 'fdstore-crd-test';
/** Per kubectl call: a server that does not answer in this time is broken, not slow. */
const KUBECTL_TIMEOUT_MS = 30_000;
/** kubectl's own discovery cache would keep the names of CRDs applied before (minutes). */
const cacheDir = mkdtempSync(join(tmpdir(), 'fdstore-kubectl-'));

/** Cases the API server accepts, with the reason (docs/crds.md lists them). */
const SERVER_ACCEPTS: Record<string, string> = {
  'an unknown settings field (strict)': 'pruned: no strict field validation before 1.25 (kubectl validates client-side)',
  'a name in defaults (strict)': 'pruned, as above',
  'an unknown container field (strict)': 'pruned, as above',
  'a spec (FdStore has none; strict)': 'pruned, as above',
  'a null where the agent never sends one': 'pruned: a null of a field that is not nullable is dropped (1.20+)',
  'two status entries for one container': 'list-map keys are not checked on status updates in 1.20 (the operator is the only writer)',
  'two conditions of one type': 'as above',
};

/** 1.20 names a field without list indexes: /spec/containers/0/listen -> spec.containers.listen. */
const fieldPath = (ajvError: string): string =>
  ajvError.split(' ')[0]!.split('/').filter((p) => p !== '' && !/^[0-9]+$/.test(p)).join('.');

function kubectl(args: string[], input?: string): { ok: boolean; out: string } {
  try {
    const out = execFileSync(process.env.KUBECTL ?? 'kubectl', [`--cache-dir=${cacheDir}`, ...args], {
      input,
      encoding: 'utf8',
      timeout: KUBECTL_TIMEOUT_MS,
      env: { ...process.env, KUBECONFIG: kubeconfig },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return { ok: true, out };
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string };
    return { ok: false, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

function must(args: string[], input?: string): string {
  const r = kubectl(args, input);
  if (!r.ok) throw new Error(`kubectl ${args.join(' ')}: ${r.out}`);
  return r.out;
}

/** --validate=false: the server, not kubectl's client-side check, must judge. */
const dryCreate = (o: Obj) => kubectl(['create', '--dry-run=server', '--validate=false', '-n', NS, '-f', '-'], JSON.stringify(o));

function statusPatch(kind: string, name: string, status: unknown, dryRun = true) {
  const args = ['patch', kind, name, '-n', NS, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })];
  return kubectl(dryRun ? [...args, '--dry-run=server'] : args);
}

describe.skipIf(!kubeconfig)('the CRDs on a real API server', () => {
  beforeAll(() => {
    must(['apply', '-f', join(root, 'crds')]);
    must(['wait', '--for=condition=Established', '--timeout=30s', 'crd/fdstorepolicies.fdstore.dev', 'crd/fdstores.fdstore.dev']);
    if (!kubectl(['get', 'namespace', NS]).ok) must(['create', 'namespace', NS]);
    // The objects status patches go to (a status subresource ignores status on create).
    const policy = sample('fdstorepolicy-web.yaml');
    policy.metadata = { name: 'base' };
    must(['apply', '-n', NS, '-f', '-'], JSON.stringify(policy));
    const store = sample('fdstore.yaml');
    store.metadata = { name: 'base' };
    delete store.status;
    must(['apply', '-n', NS, '-f', '-'], JSON.stringify(store));
  });

  afterAll(() => {
    // No namespace deletion: without kube-controller-manager it would stay Terminating.
    kubectl(['delete', '-n', NS, 'fdstorepolicies,fdstores', '--all', '--wait=false']);
    rmSync(cacheDir, { recursive: true, force: true });
  });

  it('both are structural (no NonStructuralSchema condition) and served', () => {
    for (const crd of ['fdstorepolicies.fdstore.dev', 'fdstores.fdstore.dev']) {
      const types = must(['get', 'crd', crd, '-o', 'jsonpath={.status.conditions[*].type}']);
      expect(types.split(' ')).toContain('Established');
      expect(types).not.toContain('NonStructuralSchema');
    }
  });

  it('kubectl explain teaches the fields', () => {
    expect(must(['explain', 'fdstorepolicy.spec.defaults.watchdogSec'])).toContain('WatchdogSec= (W5.1)');
    expect(must(['explain', 'fds.status.containers.lastRestore.at'])).toContain('When the launcher got the fds');
    expect(must(['explain', 'fdp.spec.priority'])).toContain('highest spec.priority wins');
  });

  it('the policy samples are accepted as they are, and the server fills only the defaults it owns', () => {
    for (const name of ['fdstorepolicy-web.yaml', 'fdstorepolicy-minimal.yaml']) {
      const o = sample(name);
      delete o.metadata.namespace;
      const r = dryCreate(o);
      expect(r.ok, r.out).toBe(true);
    }
    const minimal = JSON.parse(must(['get', 'fdp', 'base', '-n', NS, '-o', 'json'])) as Obj;
    expect(minimal.spec.listen).toBeUndefined();
    expect(minimal.spec.containers[0].listen[1]).toMatchObject({ kind: 'unix-stream', backlog: 4096, reusePort: false });
    expect(minimal.spec.containers[1].watchdogSec).toBeUndefined();
  });

  it('the FdStore sample status is stored whole: nothing pruned, so the schema has every field', () => {
    const want = sample('fdstore.yaml').status;
    const r = statusPatch('fdstore', 'base', want, false);
    expect(r.ok, r.out).toBe(true);
    expect(JSON.parse(must(['get', 'fdstore', 'base', '-n', NS, '-o', 'jsonpath={.status}']))).toEqual(want);
    const table = must(['get', 'fdstore', 'base', '-n', NS]);
    expect(table.split('\n')[0]).toMatch(/^NAME\s+READY\s+FDS\s+RESTORES\s+POLICY\s+AGE$/);
    expect(table.split('\n')[1]).toMatch(/^base\s+1\/2\s+14\s+3\s+web\s+/);
  });

  it("the agent's nulls are pruned, not refused", () => {
    const status = sample('fdstore.yaml').status;
    status.containers[1].errno = null;
    status.config.error = null;
    const r = statusPatch('fdstore', 'base', status, false);
    expect(r.ok, r.out).toBe(true);
    const stored = JSON.parse(must(['get', 'fdstore', 'base', '-n', NS, '-o', 'jsonpath={.status}'])) as Obj;
    expect('errno' in stored.containers[1]).toBe(false);
    expect('error' in stored.config).toBe(false);
  });

  const check = (base: string, kind: string) => ([what, mutate, ajvError]: Mutation) => {
    const o = sample(base);
    o.metadata = { name: 'base' };
    const statusBefore = JSON.stringify(o.status);
    mutate(o);
    // A mutated status goes through the status subresource of the existing object;
    // anything else through a dry-run create (under another name than the existing one).
    let r;
    if (JSON.stringify(o.status) !== statusBefore) r = statusPatch(kind, 'base', o.status);
    else {
      delete o.status;
      if (o.metadata.name === 'base') o.metadata.name = 'dry-run';
      r = dryCreate(o);
    }
    const accepts = what in SERVER_ACCEPTS;
    expect(r.ok, `${what}: ${r.out}`).toBe(accepts);
    // Refused for this case's reason: the server names the field ajv named.
    if (!accepts) expect(r.out).toContain(fieldPath(ajvError));
  };

  it.each(policyCases)('refuses a policy with %s', (...c) => check('fdstorepolicy-web.yaml', 'fdstorepolicy')(c));
  it.each(fdStoreCases)('refuses an FdStore with %s', (...c) => check('fdstore.yaml', 'fdstore')(c));

  it('kubectl resolves the singular names and short names to one kind each', () => {
    for (const name of ['fdstore', 'fds', 'fdstores']) expect(must(['get', name, 'base', '-n', NS, '-o', 'name'])).toBe('fdstore.fdstore.dev/base\n');
    for (const name of ['fdstorepolicy', 'fdp']) expect(must(['get', name, 'base', '-n', NS, '-o', 'name'])).toBe('fdstorepolicy.fdstore.dev/base\n');
    expect(must(['get', 'fdstore-dev', '-n', NS, '-o', 'name']).split('\n').filter(Boolean).sort()).toEqual([
      'fdstore.fdstore.dev/base',
      'fdstorepolicy.fdstore.dev/base',
    ]);
  });
});
