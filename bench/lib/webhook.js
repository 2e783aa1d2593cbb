/**
 * The injector's latency: p50/p99 of AdmissionReview handling, next to its baseline
 * in the same run.
 *
 * - in-process: review() alone (parse, decide, build the patch, serialise), for a pod
 *   that is injected and one that is not selected; baseline: JSON.parse + JSON.stringify
 *   of the same review (the least any handler does).
 * - over HTTPS: the real WebhookServer (dist/inject/server.js) on loopback, one
 *   keep-alive connection as the API server uses, interleaved with a bare node:https
 *   server that reads the body and answers a fixed allowed response (the baseline: TLS,
 *   HTTP and the body, without the injector).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, createServer, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './proc.js';

const N = Number(process.env.BENCH_WEBHOOK_N ?? 3000);

function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}
const stats = (ns) => ({ p50Us: quantile(ns, 0.5) / 1e3, p99Us: quantile(ns, 0.99) / 1e3, n: ns.length });

function tls() {
  const dir = mkdtempSync(join(tmpdir(), 'fdstore-bench-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'k', '-out', 'c', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: dir, stdio: 'ignore' });
  return { dir, cert: join(dir, 'c'), key: join(dir, 'k'), ca: readFileSync(join(dir, 'c'), 'utf8') };
}

function app(name, over = {}) {
  return { name, image: 'localhost/webapp:1.0', command: [`/app/${name}`], args: ['--port', '8080'], terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File', imagePullPolicy: 'IfNotPresent', resources: {}, ...over };
}

function reviewOf(labels) {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview',
    request: {
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'shop', operation: 'CREATE', userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller' },
      object: { apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'web-7d9f-', labels: { ...labels, 'pod-template-hash': '7d9f' } }, spec: { containers: [app('web'), app('worker')], initContainers: [app('migrate')], volumes: [{ name: 'data', emptyDir: {} }], restartPolicy: 'Always' } },
      oldObject: null, dryRun: false,
    },
  });
}

function post(agent, port, body) {
  return new Promise((resolve, reject) => {
    const t = process.hrtime.bigint();
    const req = request({ host: '127.0.0.1', port, path: '/inject', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(Number(process.hrtime.bigint() - t)) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

export async function webhookBench(say) {
  const { WebhookServer } = await import(join(ROOT, 'dist/inject/server.js'));
  const { review } = await import(join(ROOT, 'dist/inject/review.js'));
  const { defaultSettings } = await import(join(ROOT, 'dist/inject/settings.js'));
  const policies = [{ apiVersion: 'fdstore.dev/v1alpha1', kind: 'FdStorePolicy', metadata: { name: 'web', namespace: 'shop', generation: 1, creationTimestamp: '2026-12-01T10:00:00Z' }, spec: { selector: { matchLabels: { app: 'web' } }, injection: { enabled: true }, defaults: { fileDescriptorStoreMax: 64 } } }];
  // 50 more policies in the namespace: the injector resolves among all of them for every pod.
  for (let i = 0; i < 50; i++) policies.push({ ...policies[0], metadata: { ...policies[0].metadata, name: `other-${i}` }, spec: { selector: { matchLabels: { app: `other-${i}` } } } });
  const deps = { policies: () => policies, synced: () => true, settings: defaultSettings('localhost/fdstore:0.1.0'), mode: () => ({ mode: 'native', kube: { major: 1, minor: 30 } }), version: '0.1.0' };
  const injected = reviewOf({ app: 'web' });
  const skipped = reviewOf({ app: 'none' });
  if (review(injected, deps).result !== 'injected' || review(skipped, deps).result !== 'skipped') throw new Error('webhook bench: the reviews do not do what they should');

  // In-process, interleaved.
  const inproc = { injected: [], skipped: [], baseline: [] };
  for (let i = 0; i < N; i++) {
    for (const [k, fn] of [['injected', () => review(injected, deps)], ['skipped', () => review(skipped, deps)], ['baseline', () => JSON.stringify(JSON.parse(injected))]]) {
      const t = process.hrtime.bigint();
      fn();
      inproc[k].push(Number(process.hrtime.bigint() - t));
    }
  }
  say('.');

  // Over HTTPS.
  const t = tls();
  const metrics = { reviewed() {}, certReloaded() {} };
  const log = { debug() {}, info() {}, warning() {}, error() {}, once() {} };
  const server = new WebhookServer({ ...deps, certFile: t.cert, keyFile: t.key, log, metrics });
  const port = (await server.listen('127.0.0.1', 0)).port;
  const fixed = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true } });
  const bare = createServer({ cert: readFileSync(t.cert), key: readFileSync(t.key) }, (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(fixed) });
      res.end(fixed);
    });
  });
  await new Promise((r) => bare.listen(0, '127.0.0.1', r));
  const barePort = bare.address().port;
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: t.ca });
  const https = { injected: [], skipped: [], baseline: [] };
  try {
    for (let i = 0; i < 200; i++) await post(agent, port, injected); // warm-up (JIT, the TLS session)
    for (let i = 0; i < N; i++) {
      https.injected.push(await post(agent, port, injected));
      https.skipped.push(await post(agent, port, skipped));
      https.baseline.push(await post(agent, barePort, injected));
    }
  } finally {
    agent.destroy();
    await server.close();
    await new Promise((r) => bare.close(r));
    rmSync(t.dir, { recursive: true, force: true });
  }
  say('.');
  const pick = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, stats(v)]));
  const ops = JSON.parse(Buffer.from(review(injected, deps).body.response.patch, 'base64').toString()).length;
  return { n: N, ops, bodyBytes: Buffer.byteLength(injected), policies: policies.length, inProcess: pick(inproc), https: pick(https) };
}
