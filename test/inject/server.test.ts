// The webhook over real HTTPS (node:https client, a CA made by openssl) with real
// AdmissionReview v1 JSON: the patch of each answer applied with fast-json-patch and
// the pod validated against the Kubernetes schema; hostile requests answered 4xx or
// allowed with a warning, counted, and the server still serving; the certificate
// re-read when its files change.
import { copyFileSync, readdirSync } from 'node:fs';
import { request } from 'node:https';
import { connect } from 'node:tls';
import jsonpatch from 'fast-json-patch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log/log.js';
import { MAX_REVIEW_BYTES, WebhookServer } from '../../src/inject/server.js';
import type { ReviewResult } from '../../src/inject/review.js';
import { modelOf, unknownFields } from '../chart/strict.js';
import { app, injecting, podOf, SETTINGS, V130, type Obj } from './fixtures.js';
import { makeTls } from './tls.js';

const tls = makeTls();
copyFileSync(tls.certFile, `${tls.dir}/serving.crt`);
copyFileSync(tls.keyFile, `${tls.dir}/serving.key`);
const counts = new Map<string, number>();
const lines: string[] = [];
let synced = true;
const server = new WebhookServer({
  certFile: `${tls.dir}/serving.crt`,
  keyFile: `${tls.dir}/serving.key`,
  log: createLogger({ write: (s: string) => void lines.push(s) }, 'info'),
  metrics: { reviewed: (r: ReviewResult) => void counts.set(r, (counts.get(r) ?? 0) + 1), certReloaded: (ok) => void counts.set(`cert_${ok}`, (counts.get(`cert_${ok}`) ?? 0) + 1) },
  policies: () => [injecting()],
  synced: () => synced,
  settings: SETTINGS,
  mode: () => ({ mode: 'native', kube: V130 }),
  version: '0.1.0',
  // A clock that stands still: the log's rate limit never refills, so its bound is exact however slow the machine.
  now: () => 0,
});
let port = 0;

beforeAll(async () => {
  port = (await server.listen('127.0.0.1', 0)).port;
});
afterAll(() => server.close());

const openFds = (): number => readdirSync('/proc/self/fd').length;

function post(body: string | Buffer, o: { path?: string; method?: string; ca?: string } = {}): Promise<{ code: number; body: Obj }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: o.path ?? '/inject', method: o.method ?? 'POST', ca: o.ca ?? tls.ca, servername: 'localhost', headers: { 'content-type': 'application/json' }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ code: res.statusCode ?? 0, body: text ? (JSON.parse(text) as Obj) : {} });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const reviewOf = (object: unknown, over: Obj = {}): string =>
  JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'shop',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', groups: ['system:serviceaccounts', 'system:authenticated'] },
      object,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
      ...over,
    },
  });

function patched(pod: Obj, response: Obj): Obj {
  if (!response.patch) return pod;
  expect(response.patchType).toBe('JSONPatch');
  const ops = JSON.parse(Buffer.from(response.patch as string, 'base64').toString()) as jsonpatch.Operation[];
  return jsonpatch.applyPatch(structuredClone(pod), ops, true, false).newDocument as Obj;
}

function expectValidPod(pod: Obj): void {
  const named = { ...pod, metadata: { name: 'web-7d9f-abcde', ...pod.metadata } };
  modelOf(named).validate();
  expect(unknownFields(named)).toEqual([]);
}

// What a ReplicaSet controller sends for a Deployment's template: labels from the template, generateName, defaults filled in.
const fromTemplate = podOf([app('web', { terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File', imagePullPolicy: 'IfNotPresent', resources: {} })], {
  labels: { 'pod-template-hash': '7d9f' },
  spec: { restartPolicy: 'Always', dnsPolicy: 'ClusterFirst', schedulerName: 'default-scheduler', terminationGracePeriodSeconds: 30, securityContext: {}, enableServiceLinks: true, preemptionPolicy: 'PreemptLowerPriority', priority: 0 },
});

describe('real AdmissionReviews over HTTPS', () => {
  it.each<[string, Obj, (out: Obj, r: Obj) => void]>([
    ['a Deployment\'s pod (from its template)', fromTemplate, (out) => expect(out.spec.initContainers.map((c: Obj) => c.name)).toEqual(['fdstore-keeper', 'fdstore'])],
    ['a pod with init containers', podOf([app('web')], { spec: { initContainers: [app('migrate')] } }), (out) => expect(out.spec.initContainers.map((c: Obj) => c.name)).toEqual(['fdstore-keeper', 'fdstore', 'migrate'])],
    ['a container without command', podOf([app('web'), app('envoy', { command: undefined })]), (out, r) => {
      expect(out.spec.containers[1].command).toBeUndefined();
      expect(r.warnings).toEqual([expect.stringMatching(/^fdstore: container envoy not enrolled: no command/)]);
      expect(r.warnings[0].length).toBeLessThanOrEqual(256);
    }],
    ['a container named like ours', podOf([app('web'), app('fdstore')]), (out, r) => {
      expect(r.patch).toBeUndefined();
      expect(r.warnings).toEqual([expect.stringContaining('already has container fdstore')]);
    }],
    ['an existing volume named like ours', podOf([app('web')], { spec: { volumes: [{ name: 'fdstore-config', emptyDir: {} }] } }), (_out, r) => expect(r.patch).toBeUndefined()],
  ])('%s', async (_what, pod, check) => {
    const r = await post(reviewOf(pod));
    expect(r.code).toBe(200);
    expect(r.body).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true } });
    const out = patched(pod, r.body.response);
    expectValidPod(out);
    check(out, r.body.response);
  });

  it('an injected pod sent again (reinvocation): no patch', async () => {
    const once = patched(fromTemplate, (await post(reviewOf(fromTemplate))).body.response);
    const again = await post(reviewOf(once));
    expect(again.body.response).toEqual({ uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true });
  });

  const annotated = podOf([app('web')], { annotations: { 'fdstore.dev/inject': 'true' } });
  it.each([
    ['kube-system, even annotated', annotated, { namespace: 'kube-system' }],
    ['a namespace without a policy', podOf([app('web')]), { namespace: 'other' }],
    ['an UPDATE', annotated, { operation: 'UPDATE' }],
    ['not a Pod', annotated, { kind: { group: 'apps', version: 'v1', kind: 'Deployment' } }],
  ])('%s: allowed, no patch', async (_what, pod, over) => {
    const r = await post(reviewOf(pod, over));
    expect(r.body.response).toEqual({ uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true });
  });

  it('policies not listed yet: allowed unchanged, with a warning', async () => {
    synced = false;
    try {
      const r = await post(reviewOf(podOf([app('web')])));
      expect(r.body.response).toMatchObject({ allowed: true, warnings: [expect.stringContaining('not listed')] });
      expect(r.body.response.patch).toBeUndefined();
    } finally {
      synced = true;
    }
  });
});

describe('hostile requests: refused or allowed, counted, logged with a limit, the server keeps serving', () => {
  it.each<[string, () => Promise<{ code: number; body: Obj }>, number]>([
    ['not JSON', () => post('{"apiVersion": '), 400],
    ['JSON, not an AdmissionReview', () => post('[1,2,3]'), 400],
    ['no uid', () => post(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { kind: { kind: 'Pod' } } })), 400],
    ['a v1beta1 review', () => post(JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'x' } })), 400],
    ['GET', () => post('', { method: 'GET' }), 405],
    ['another path', () => post('{}', { path: '/mutate' }), 404],
    ['a body over the limit', () => post(Buffer.alloc(MAX_REVIEW_BYTES + 1, 0x20)), 413],
  ])('%s -> %s', async (_what, send, code) => {
    const before = counts.get('bad_request') ?? 0;
    const r = await send();
    expect(r.code).toBe(code);
    expect(counts.get('bad_request')).toBe(before + 1);
  });

  it('a pod spec of the wrong shape: allowed with a warning', async () => {
    for (const object of [null, { spec: { containers: 'web' } }, { spec: { containers: [{ image: 'x' }] } }, { metadata: { labels: 'x' }, spec: { containers: [{ name: 'web', command: 'notalist' }] } }]) {
      const r = await post(reviewOf(object));
      expect(r.code).toBe(200);
      expect(r.body.response.allowed).toBe(true);
    }
  });

  it('a thousand bad requests: the same fds after, one log line per 100', async () => {
    await post('x');
    const fds = openFds();
    const logged = lines.length;
    for (let i = 0; i < 1000; i += 50) await Promise.all(Array.from({ length: 50 }, () => post('x')));
    expect(lines.length - logged).toBeLessThanOrEqual(100);
    // Both ends are in this process and close asynchronously: wait for the count, with a deadline.
    const deadline = Date.now() + 10_000;
    while (openFds() > fds && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(openFds()).toBe(fds);
    expect((await post(reviewOf(fromTemplate))).body.response.patch).toBeDefined();
  });

  it('a TLS client that does not trust the CA fails its handshake; the server goes on', async () => {
    await expect(post(reviewOf(fromTemplate), { ca: makeTls({ tag: 'other', dir: tls.dir }).ca })).rejects.toThrow(/self-signed|unable to verify|certificate/);
    const raw = connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    await new Promise<void>((resolve) => raw.once('secureConnect', () => resolve()));
    // Not HTTP inside TLS: node's parser answers 400 and closes.
    const answered = new Promise<string>((resolve) => raw.once('data', (d: Buffer) => resolve(d.toString())));
    raw.write('GARBAGE\r\n\r\n');
    expect(await answered).toMatch(/^HTTP\/1\.1 400/);
    raw.destroy();
    expect((await post(reviewOf(fromTemplate))).code).toBe(200);
  });
});

describe('certificate rotation', () => {
  it('a new pair in the files is used for the next connections; a broken one keeps the old', async () => {
    const next = makeTls({ tag: 'b', dir: tls.dir });
    copyFileSync(next.certFile, `${tls.dir}/serving.crt`);
    copyFileSync(next.keyFile, `${tls.dir}/serving.key`);
    expect(server.reloadCert()).toBe(true);
    expect((await post(reviewOf(fromTemplate), { ca: next.ca })).code).toBe(200);
    await expect(post(reviewOf(fromTemplate))).rejects.toThrow();
    copyFileSync(tls.certFile, `${tls.dir}/serving.crt`); // a cert that does not match the key
    expect(server.reloadCert()).toBe(false);
    expect(counts.get('cert_false')).toBe(1);
    expect((await post(reviewOf(fromTemplate), { ca: next.ca })).code).toBe(200);
  });
});
