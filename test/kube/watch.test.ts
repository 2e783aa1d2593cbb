/**
 * Watched<T> against the real API server: selectors, add/update/delete, relists, and
 * every way the connection can fail, made real with a TCP proxy in front of the server
 * (cut, refused, stalled), plus a real 410 Gone. Each case has its own label value, so
 * cases never see each other's objects; the file has its own namespace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeConfig, PatchStrategy, RbacAuthorizationV1Api, setHeaderOptions, type CoreV1Api, type KubernetesListObject, type V1ConfigMap, type V1Pod } from '@kubernetes/client-node';
import { loadKubeConfig, makeClients } from '../../src/operator/kube/client.js';
import { getJson } from '../../src/operator/kube/rawget.js';
import { collectionPath, enrolledPods, Watched, type ChangeKind, type WatchTiming } from '../../src/operator/kube/watch.js';
import { baseline, expectNoLeak, freshNamespace, kubeconfigPath, memoryLogger, NEEDS_CLUSTER, viaProxy, waitFor } from './fixture.js';
import { TcpProxy } from './proxy.js';

const KUBECONFIG = kubeconfigPath();
const CASE_LABEL = 'fdstore.dev/case';
/** Short limits so each failure path runs in seconds; the defaults are minutes. */
const FAST: Partial<WatchTiming> = { relistMs: 600_000, inactivityMs: 600_000, connectTimeoutMs: 5_000, listTimeoutMs: 5_000, watchTimeoutSeconds: 300 };
const FAST_BACKOFF = { baseMs: 100, capMs: 1_000, stableMs: 0 };
const WAIT_MS = 20_000;

interface Seen {
  kind: ChangeKind;
  name: string;
  rv: string;
}

describe.skipIf(!KUBECONFIG)(`Watched against a real API server ${KUBECONFIG ? '' : NEEDS_CLUSTER}`, () => {
  let kc: KubeConfig;
  let core: CoreV1Api;
  let ns: string;
  let removeNs: () => Promise<void>;

  beforeAll(async () => {
    kc = loadKubeConfig({ kubeconfig: KUBECONFIG! });
    core = makeClients(kc).core;
    ({ name: ns, remove: removeNs } = await freshNamespace(core, 'fdstore-watch'));
  });
  afterAll(async () => removeNs?.());

  const cmPath = (): string => collectionPath({ version: 'v1', plural: 'configmaps', namespace: ns });
  const createCm = (name: string, caseId: string, data: Record<string, string> = { v: '1' }) =>
    core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name, labels: { [CASE_LABEL]: caseId } }, data } });
  const patchCm = (name: string, body: object) =>
    core.patchNamespacedConfigMap({ namespace: ns, name, body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  const deleteCm = (name: string) => core.deleteNamespacedConfigMap({ namespace: ns, name });

  function watchCase(caseId: string, opts: { kc?: KubeConfig; timing?: Partial<WatchTiming>; list?: (s: AbortSignal) => Promise<KubernetesListObject<V1ConfigMap>> } = {}) {
    const { log, lines } = memoryLogger();
    const w = new Watched<V1ConfigMap>({
      kc: opts.kc ?? kc,
      source: { path: cmPath(), labelSelector: `${CASE_LABEL}=${caseId}` },
      name: `configmaps-${caseId}`,
      log,
      timing: { ...FAST, ...opts.timing },
      backoff: FAST_BACKOFF,
      list: opts.list,
    });
    const seen: Seen[] = [];
    w.on('change', (o, kind) => void seen.push({ kind, name: o.metadata!.name!, rv: o.metadata!.resourceVersion! }));
    const saw = (kind: ChangeKind, name: string) => seen.some((s) => s.kind === kind && s.name === name);
    return { w, seen, saw, lines };
  }

  it('sees add, update and delete of selected objects, and never an object outside the selector', async () => {
    const base = baseline();
    await createCm('sel-a', 'sel');
    const { w, seen, saw } = watchCase('sel');
    w.start();
    await w.synced;
    expect(w.get(ns, 'sel-a')?.data).toEqual({ v: '1' });
    expect(seen).toEqual([{ kind: 'add', name: 'sel-a', rv: w.get(ns, 'sel-a')!.metadata!.resourceVersion! }]);

    await createCm('sel-other', 'not-sel');
    await createCm('sel-b', 'sel');
    // Watch events arrive in resourceVersion order: once sel-b (created later) is seen,
    // sel-other would have been seen already if the selector let it through.
    await waitFor(() => saw('add', 'sel-b'), WAIT_MS, 'add of sel-b');
    await patchCm('sel-a', { data: { v: '2' } });
    await waitFor(() => w.get(ns, 'sel-a')?.data?.v === '2', WAIT_MS, 'update of sel-a');
    expect(seen.at(-1)).toMatchObject({ kind: 'update', name: 'sel-a' });
    // Relabelled out of the selector: the server sends DELETED to this watch.
    await patchCm('sel-b', { metadata: { labels: { [CASE_LABEL]: 'moved-away' } } });
    await waitFor(() => saw('delete', 'sel-b'), WAIT_MS, 'sel-b leaving the selector');
    await deleteCm('sel-a');
    await waitFor(() => saw('delete', 'sel-a'), WAIT_MS, 'delete of sel-a');

    expect(seen.map((s) => `${s.kind} ${s.name}`)).toEqual(['add sel-a', 'add sel-b', 'update sel-a', 'delete sel-b', 'delete sel-a']);
    expect(w.list()).toEqual([]);
    const st = w.stats();
    expect(st).toMatchObject({ generations: 1, restarts: 0, lists: 1, synced: true, connected: true, handlerErrors: 0 });
    await w.stop();
    expect(w.stats().connected).toBe(false);
    await expectNoLeak(base);
  });

  it('watches label-selected pods only (fdstore.dev/enrolled=true), in a namespace and cluster-wide', async () => {
    const base = baseline();
    // Bound to a node that does not exist: the pods stay API objects, no kubelet runs them.
    const pod = (name: string, enrolled: boolean): V1Pod => ({
      metadata: { name, labels: enrolled ? { 'fdstore.dev/enrolled': 'true' } : { 'fdstore.dev/enrolled': 'false' } },
      spec: { nodeName: 'fdstore-test-no-such-node', automountServiceAccountToken: false, containers: [{ name: 'c', image: 'example.invalid/none' }] },
    });
    const { log } = memoryLogger();
    const inNs = new Watched<V1Pod>({ kc, source: enrolledPods(ns), name: 'pods-ns', log, timing: FAST, backoff: FAST_BACKOFF }).start();
    const all = new Watched<V1Pod>({ kc, source: enrolledPods(), name: 'pods-all', log, timing: FAST, backoff: FAST_BACKOFF }).start();
    await Promise.all([inNs.synced, all.synced]);
    // The namespace's service account appears shortly after the namespace (controller-manager).
    await waitFor(() => core.createNamespacedPod({ namespace: ns, body: pod('p-out', false) }).then(() => true), WAIT_MS, 'pod creation');
    await core.createNamespacedPod({ namespace: ns, body: pod('p-in', true) });
    await waitFor(() => inNs.get(ns, 'p-in') && all.get(ns, 'p-in'), WAIT_MS, 'the enrolled pod in both watches');
    expect(inNs.get(ns, 'p-out')).toBeUndefined();
    expect(all.get(ns, 'p-out')).toBeUndefined();
    expect(inNs.list().map((p) => p.metadata!.name)).toEqual(['p-in']);
    // Raw JSON, as from the watch: timestamps are strings, not client-node's Date.
    expect(typeof inNs.get(ns, 'p-in')!.metadata!.creationTimestamp).toBe('string');
    await core.deleteNamespacedPod({ namespace: ns, name: 'p-in', gracePeriodSeconds: 0 });
    await core.deleteNamespacedPod({ namespace: ns, name: 'p-out', gracePeriodSeconds: 0 });
    await waitFor(() => !inNs.get(ns, 'p-in') && !all.get(ns, 'p-in'), WAIT_MS, 'the enrolled pod gone from both');
    await Promise.all([inNs.stop(), all.stop()]);
    await expectNoLeak(base);
  });

  it('a periodic relist re-emits every object, with no duplicate adds', async () => {
    const base = baseline();
    for (const n of ['rl-a', 'rl-b', 'rl-c']) await createCm(n, 'relist');
    const { w, seen } = watchCase('relist', { timing: { relistMs: 1_000 } });
    w.start();
    await w.synced;
    // (relists counts relists begun; lists counts lists done: the first plus two relists)
    await waitFor(() => w.stats().relists >= 2 && w.stats().lists >= 3, WAIT_MS, 'two relists');
    const per = (name: string) => seen.filter((s) => s.name === name).map((s) => s.kind);
    for (const n of ['rl-a', 'rl-b', 'rl-c']) {
      expect(per(n)[0]).toBe('add');
      expect(per(n).filter((k) => k === 'add')).toHaveLength(1);
      expect(per(n).filter((k) => k === 'update').length).toBeGreaterThanOrEqual(2);
    }
    expect(w.stats()).toMatchObject({ restarts: 0, objects: 3 });
    expect(w.stats().lists).toBeGreaterThanOrEqual(3);
    await w.stop();
    await expectNoLeak(base);
  });

  it('recovers when its connection is cut, and catches up on what happened during an outage', async () => {
    const base = baseline();
    const proxy = await TcpProxy.start(new URL(kc.getCurrentCluster()!.server));
    await createCm('cut-a', 'cut');
    const { w, saw } = watchCase('cut', { kc: viaProxy(kc, proxy.port) });
    w.start();
    await w.synced;
    await waitFor(() => w.stats().connected, WAIT_MS, 'watch connected');

    proxy.cut(); // reset mid-stream: client-node's ListWatch stops for good on this
    await createCm('cut-b', 'cut');
    await waitFor(() => saw('add', 'cut-b'), WAIT_MS, 'cut-b after the reset');
    expect(w.stats().restarts).toBeGreaterThanOrEqual(1);
    expect(w.stats().errors.network).toBeGreaterThanOrEqual(1);

    // An outage: every connection refused while objects change.
    proxy.mode = 'refuse';
    proxy.cut();
    const before = w.stats().errors.network;
    await deleteCm('cut-a');
    await createCm('cut-c', 'cut');
    await waitFor(() => w.stats().errors.network >= before + 3, WAIT_MS, 'three failed reconnects');
    expect(w.get(ns, 'cut-a')).toBeDefined(); // the last known state, during the outage
    proxy.mode = 'pass';
    const t0 = performance.now();
    await waitFor(() => saw('delete', 'cut-a') && saw('add', 'cut-c'), WAIT_MS, 'the outage caught up');
    const recoverMs = performance.now() - t0;
    expect(recoverMs).toBeLessThan(FAST_BACKOFF.capMs + 2_000);
    expect(w.list().map((o) => o.metadata!.name).sort()).toEqual(['cut-b', 'cut-c']);
    console.log(`[watch] outage recovery ${recoverMs.toFixed(0)} ms after the API came back; stats ${JSON.stringify(w.stats())}`);

    await w.stop();
    await waitFor(() => proxy.open === 0, WAIT_MS, 'every proxied connection closed by the client');
    await proxy.close();
    await expectNoLeak(base);
  });

  it('a stalled connection (bytes accepted, nothing forwarded) trips the inactivity timeout and is destroyed', async () => {
    const base = baseline();
    const proxy = await TcpProxy.start(new URL(kc.getCurrentCluster()!.server));
    const inactivityMs = 3_000;
    // The server ends each watch after 1 s and we reconnect at once: a healthy quiet watch
    // is never silent for 3 s, a stalled one is.
    const { w, saw } = watchCase('stall', { kc: viaProxy(kc, proxy.port), timing: { inactivityMs, watchTimeoutSeconds: 1 } });
    w.start();
    await w.synced;
    await waitFor(() => w.stats().watches >= 5, WAIT_MS, 'five healthy watch reconnects');
    expect(w.stats().errors.inactivity).toBe(0); // quiet is not stalled

    proxy.freeze();
    const t0 = performance.now();
    await createCm('stall-a', 'stall');
    await waitFor(() => saw('add', 'stall-a'), WAIT_MS, 'stall-a through a new connection');
    const ms = performance.now() - t0;
    expect(w.stats().errors.inactivity).toBe(1);
    expect(ms).toBeGreaterThanOrEqual(inactivityMs - 1_100); // the last activity was up to ~1 s before the freeze
    // The frozen sockets were destroyed by us, not left hanging.
    await waitFor(() => proxy.stalledOpen === 0, WAIT_MS, 'the frozen connections closed by the client');
    console.log(`[watch] stall detected and recovered in ${ms.toFixed(0)} ms (inactivity ${inactivityMs} ms)`);

    await w.stop();
    await waitFor(() => proxy.open === 0, WAIT_MS, 'every proxied connection closed by the client');
    await proxy.close();
    await expectNoLeak(base);
  });

  it('a watch request that never gets its response headers times out and is retried; a stalled list too', async () => {
    const base = baseline();
    const proxy = await TcpProxy.start(new URL(kc.getCurrentCluster()!.server));
    const proxied = viaProxy(kc, proxy.port);
    let listVia: KubeConfig = kc; // the list goes direct, the watch through the stalling proxy
    const list = (signal: AbortSignal) =>
      getJson<KubernetesListObject<V1ConfigMap>>(listVia, cmPath(), { labelSelector: `${CASE_LABEL}=hdr` }, signal);
    proxy.mode = 'stall';
    const { w, saw } = watchCase('hdr', { kc: proxied, list, timing: { connectTimeoutMs: 500, listTimeoutMs: 500 } });
    w.start();
    await w.synced; // the list worked
    await waitFor(() => w.stats().errors['connect-timeout'] >= 2, WAIT_MS, 'two watch connect timeouts');
    listVia = proxied; // now the list stalls too
    await waitFor(() => w.stats().errors.timeout >= 1, WAIT_MS, 'a list timeout');
    expect(w.stats().connected).toBe(false);
    // Every stalled connection was given up by the client: none left open at the proxy.
    await waitFor(() => proxy.stalledOpen <= 1, WAIT_MS, 'stalled connections closed by the client (at most the current attempt open)');

    proxy.mode = 'pass';
    await createCm('hdr-a', 'hdr');
    await waitFor(() => saw('add', 'hdr-a') && w.stats().connected, WAIT_MS, 'connected once the proxy forwards');
    await w.stop();
    await waitFor(() => proxy.open === 0, WAIT_MS, 'every proxied connection closed by the client');
    await proxy.close();
    await expectNoLeak(base);
  });

  it('without RBAC (403) it keeps retrying with back-off, and syncs once a Role grants list and watch', async () => {
    const base = baseline();
    const clients = makeClients(kc);
    const rbacApi = kc.makeApiClient(RbacAuthorizationV1Api);
    // A real unprivileged identity: a ServiceAccount's token (1.20: a Secret made by the token controller).
    await clients.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'nobody' } } });
    const secret = await waitFor(async () => (await clients.core.readNamespacedServiceAccount({ namespace: ns, name: 'nobody' })).secrets?.[0]?.name, WAIT_MS, "the service account's token secret");
    const token = Buffer.from((await clients.core.readNamespacedSecret({ namespace: ns, name: secret })).data!.token!, 'base64').toString();
    const nobody = new KubeConfig();
    const cluster = kc.getCurrentCluster()!;
    nobody.loadFromOptions({ clusters: [cluster], users: [{ name: 'nobody', token }], contexts: [{ name: 'c', cluster: cluster.name, user: 'nobody' }], currentContext: 'c' });

    await createCm('rbac-a', 'rbac');
    const { w, saw } = watchCase('rbac', { kc: nobody });
    let synced = false;
    void w.synced.then(() => (synced = true));
    w.start();
    await waitFor(() => w.stats().errors.forbidden >= 3, WAIT_MS, 'three 403s');
    expect(synced).toBe(false);
    await rbacApi.createNamespacedRole({ namespace: ns, body: { metadata: { name: 'cm-reader' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list', 'watch'] }] } });
    await rbacApi.createNamespacedRoleBinding({
      namespace: ns,
      body: { metadata: { name: 'cm-reader' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'cm-reader' }, subjects: [{ kind: 'ServiceAccount', name: 'nobody', namespace: ns }] },
    });
    await w.synced;
    expect(saw('add', 'rbac-a')).toBe(true);
    await createCm('rbac-b', 'rbac');
    await waitFor(() => saw('add', 'rbac-b'), WAIT_MS, 'rbac-b through the granted watch');
    await w.stop();
    await expectNoLeak(base);
  });

  it('a throwing or rejecting handler is counted and logged, never reaches client-node', async () => {
    const base = baseline();
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const { w, saw, lines } = watchCase('throw');
      w.on('change', () => {
        throw new Error('handler boom');
      });
      w.on('change', async () => {
        throw new Error('async handler boom');
      });
      w.start();
      await w.synced;
      await createCm('throw-a', 'throw');
      await createCm('throw-b', 'throw');
      await waitFor(() => saw('add', 'throw-b'), WAIT_MS, 'both adds, despite the throwing handlers');
      await waitFor(() => w.stats().handlerErrors === 4, WAIT_MS, 'four handler failures counted');
      expect(lines.filter((l) => l.msg === 'watch handler failed')).toHaveLength(4);
      expect(w.stats()).toMatchObject({ restarts: 0, connected: true });
      await w.stop();
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
    await expectNoLeak(base);
  });

  it('synced waits for the first successful list (not for start()), and stop() before it rejects', async () => {
    const base = baseline();
    const proxy = await TcpProxy.start(new URL(kc.getCurrentCluster()!.server));
    proxy.mode = 'refuse';
    const { w } = watchCase('sync', { kc: viaProxy(kc, proxy.port) });
    let synced = false;
    void w.synced.then(() => (synced = true));
    w.start();
    await waitFor(() => w.stats().errors.network >= 2, WAIT_MS, 'two failed lists');
    expect(synced).toBe(false);
    proxy.mode = 'pass';
    await w.synced;
    await w.stop();

    proxy.mode = 'refuse';
    const { w: never } = watchCase('sync', { kc: viaProxy(kc, proxy.port) });
    never.start();
    await waitFor(() => never.stats().errors.network >= 1, WAIT_MS, 'a failed list');
    await never.stop();
    await expect(never.synced).rejects.toMatchObject({ code: 'ERR_WATCH_STOPPED' });
    await waitFor(() => proxy.open === 0, WAIT_MS, 'every proxied connection closed');
    await proxy.close();
    await expectNoLeak(base);
  });
});
