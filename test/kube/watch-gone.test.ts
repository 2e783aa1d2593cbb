/**
 * Real 410 Gone answers from the API server, and what Watched does with them.
 *
 * How a 410 happens for real (kube-apiserver 1.20, staging/.../storage/cacher/watch_cache.go):
 * the watch cache keeps a window of each resource's recent events, at least 100 of them,
 * growing (up to 100 Ki) instead of evicting while all are younger than 75 s. A watch
 * from a resourceVersion older than the window's first event gets HTTP 200 and one ERROR
 * event, code 410, "too old resource version". The Lease window moves all the time on a
 * live cluster (leader election renews every 2 s, each kubelet's node lease every 10 s),
 * so after a couple of minutes resourceVersion 1 is gone for Leases. On a quiet API server
 * the tests make that churn themselves (a scratch Lease patched once a second) until the
 * server answers 410.
 *
 * The window's length in time: 100 events, or more if they came faster than 100 per 75 s
 * (it doubles while full and younger than 75 s), so between 75 s and, just after a
 * doubling, 150 s. Once a second alone gives 100 s; with a live cluster's own Lease
 * renewals (~1 a second) about 95 s.
 *
 * Etcd compaction is not what makes watches 410 here: the watch cache serves them from
 * memory, and its window moves whatever etcd has compacted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PatchStrategy, setHeaderOptions, type CoordinationV1Api, type KubeConfig, type KubernetesListObject, type V1Lease } from '@kubernetes/client-node';
import { loadKubeConfig, makeClients } from '../../src/operator/kube/client.js';
import { getJson } from '../../src/operator/kube/rawget.js';
import { collectionPath, Watched, type ChangeKind } from '../../src/operator/kube/watch.js';
import { baseline, expectNoLeak, firstWatchLine, freshNamespace, isGone, kubeconfigPath, memoryLogger, NEEDS_CLUSTER, waitFor } from './fixture.js';

const KUBECONFIG = kubeconfigPath();
const CASE_LABEL = 'fdstore.dev/case';
/** One write a second: 100 events take 100 s > 75 s, so the window evicts instead of growing. */
const CHURN_INTERVAL_MS = 1_000;
/** A watch that outlives any window (150 s at most, see above) reconnects from an expired resourceVersion. */
const QUIET_WATCH_SECONDS = 160;
/** Long enough for the window to move past resourceVersion 1 on a quiet server (~100 s), or past a quiet watch's. */
const GONE_WAIT_MS = 240_000;

describe.skipIf(!KUBECONFIG)(`Watched and real 410 Gone ${KUBECONFIG ? '' : NEEDS_CLUSTER}`, () => {
  let kc: KubeConfig;
  let coordination: CoordinationV1Api;
  let ns: string;
  let removeNs: () => Promise<void>;
  let churn: { stop: () => Promise<void> };

  beforeAll(async () => {
    kc = loadKubeConfig({ kubeconfig: KUBECONFIG! });
    const c = makeClients(kc);
    coordination = c.coordination;
    ({ name: ns, remove: removeNs } = await freshNamespace(c.core, 'fdstore-gone'));
    churn = await startChurn(coordination, ns);
  });
  afterAll(async () => {
    await churn?.stop();
    await removeNs?.();
  });

  const leasePath = (): string => collectionPath({ group: 'coordination.k8s.io', version: 'v1', plural: 'leases', namespace: ns });
  const createLease = (name: string, caseId: string) =>
    coordination.createNamespacedLease({ namespace: ns, body: { metadata: { name, labels: { [CASE_LABEL]: caseId } }, spec: { leaseDurationSeconds: 1 } } });

  function watchCase(caseId: string, extra: { bookmarks?: boolean; list?: (s: AbortSignal) => Promise<KubernetesListObject<V1Lease>>; watchTimeoutSeconds?: number } = {}) {
    const { log, lines } = memoryLogger();
    const w = new Watched<V1Lease>({
      kc,
      source: { path: leasePath(), labelSelector: `${CASE_LABEL}=${caseId}` },
      name: `leases-${caseId}`,
      log,
      bookmarks: extra.bookmarks,
      list: extra.list,
      // random 0: each watch asks for exactly watchTimeoutSeconds
      random: () => 0,
      timing: { relistMs: 3_600_000, inactivityMs: 600_000, connectTimeoutMs: 10_000, listTimeoutMs: 10_000, watchTimeoutSeconds: extra.watchTimeoutSeconds ?? 300 },
      backoff: { baseMs: 100, capMs: 1_000, stableMs: 0, random: Math.random },
    });
    const seen: { kind: ChangeKind; name: string }[] = [];
    w.on('change', (o, kind) => void seen.push({ kind, name: o.metadata!.name! }));
    return { w, seen, lines, saw: (kind: ChangeKind, name: string) => seen.some((s) => s.kind === kind && s.name === name) };
  }

  it('a watch from a resourceVersion the server no longer has gets 410; Watched relists and carries on', async () => {
    const t0 = performance.now();
    await waitFor(async () => isGone(await firstWatchLine(kc, '/apis/coordination.k8s.io/v1/leases?watch=true&resourceVersion=1')), GONE_WAIT_MS, 'the API server to answer 410 for resourceVersion 1');
    console.log(`[gone] the server answers 410 for leases at resourceVersion 1 (waited ${((performance.now() - t0) / 1000).toFixed(1)} s)`);

    const base = baseline();
    await createLease('g-a', 'rv1');
    let lists = 0;
    // A client back from a long absence: its first watch starts from resourceVersion 1.
    const list = async (signal: AbortSignal) => {
      const l = await getJson<KubernetesListObject<V1Lease>>(kc, leasePath(), { labelSelector: `${CASE_LABEL}=rv1` }, signal);
      if (lists++ === 0) l.metadata = { ...l.metadata, resourceVersion: '1' };
      return l;
    };
    const { w, seen, saw } = watchCase('rv1', { list });
    w.start();
    await w.synced;
    await waitFor(() => w.stats().gone >= 1 && w.stats().lists >= 2, 20_000, 'the 410 and the relist');
    await createLease('g-b', 'rv1');
    await waitFor(() => saw('add', 'g-b'), 20_000, 'g-b after the relist');
    expect(seen.filter((s) => s.name === 'g-a').map((s) => s.kind)).toEqual(['add', 'update']); // the relist re-emits
    expect(w.stats()).toMatchObject({ restarts: 0, gone: 1, lists: 2 });
    await w.stop();
    await expectNoLeak(base);
  });

  it('a quiet selector-filtered watch without bookmarks gets 410 when it reconnects; with bookmarks it does not', { timeout: 400_000 }, async () => {
    const base = baseline();
    await createLease('quiet', 'quiet');
    // The server ends each watch after QUIET_WATCH_SECONDS: longer than the Lease window.
    const plain = watchCase('quiet', { bookmarks: false, watchTimeoutSeconds: QUIET_WATCH_SECONDS });
    const marked = watchCase('quiet', { bookmarks: true, watchTimeoutSeconds: QUIET_WATCH_SECONDS });
    plain.w.start();
    marked.w.start();
    await Promise.all([plain.w.synced, marked.w.synced]);
    // What /healthz counts as progress (Watched.lastProgressMs): on the quiet watch with
    // bookmarks it moves with no event and before any reconnect, i.e. by a BOOKMARK.
    await waitFor(() => marked.w.stats().watches >= 1, 20_000, 'the watch with bookmarks open');
    const opened = marked.w.lastProgressMs();
    const eventsAtOpen = JSON.stringify(marked.w.stats().events);
    let bookmarkProgress = false;
    const t0 = performance.now();
    await waitFor(() => {
      const m = marked.w.stats();
      if (m.watches === 1 && marked.w.lastProgressMs() > opened && JSON.stringify(m.events) === eventsAtOpen) bookmarkProgress = true;
      return plain.w.stats().lists >= 2 && m.watches >= 2;
    }, GONE_WAIT_MS, 'both watches to have reconnected').catch((err: Error) => {
      throw new Error(`${err.message}; ${JSON.stringify(pick(plain.w))} ${JSON.stringify(pick(marked.w))} ${JSON.stringify([...plain.lines, ...marked.lines].filter((l) => l.level !== 'debug').slice(0, 5))}`);
    });
    console.log(`[gone] reconnect after ${((performance.now() - t0) / 1000).toFixed(0)} s: without bookmarks ${JSON.stringify(pick(plain.w))}, with ${JSON.stringify(pick(marked.w))}`);
    // An API server restart (the cluster is shared) also expires every resourceVersion: inconclusive, say so.
    expect(plain.w.stats().restarts + marked.w.stats().restarts, 'the API server went away during the test').toBe(0);
    // Without bookmarks its resourceVersion was the list's, 160 s old: expired.
    expect(plain.w.stats()).toMatchObject({ gone: 1, lists: 2, restarts: 0 });
    // Bookmarks (about one a minute, one 2 s before the timeout) kept it inside the window.
    expect(marked.w.stats()).toMatchObject({ gone: 0, lists: 1, restarts: 0 });
    expect(bookmarkProgress, 'a BOOKMARK moved lastProgressMs (no event, no reconnect)').toBe(true);
    // Both still deliver changes.
    await coordination.patchNamespacedLease({ namespace: ns, name: 'quiet', body: { spec: { leaseTransitions: 1 } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await waitFor(() => plain.w.get(ns, 'quiet')?.spec?.leaseTransitions === 1 && marked.w.get(ns, 'quiet')?.spec?.leaseTransitions === 1, 20_000, 'the change in both');
    await Promise.all([plain.w.stop(), marked.w.stop()]);
    await expectNoLeak(base);
  });
});

function pick(w: Watched<V1Lease>): object {
  const s = w.stats();
  return { gone: s.gone, lists: s.lists, watches: s.watches, restarts: s.restarts };
}

/** A scratch Lease patched every CHURN_INTERVAL_MS: Lease events that move the watch cache's window. */
async function startChurn(api: CoordinationV1Api, namespace: string): Promise<{ stop: () => Promise<void> }> {
  await api.createNamespacedLease({ namespace, body: { metadata: { name: 'churn' }, spec: { leaseDurationSeconds: 1, leaseTransitions: 0 } } });
  let n = 0;
  let stopped = false;
  let pending: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    if (stopped) return;
    pending = api
      .patchNamespacedLease({ namespace, name: 'churn', body: { spec: { leaseTransitions: ++n } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch))
      .catch(() => {});
  }, CHURN_INTERVAL_MS);
  return {
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await pending;
    },
  };
}
