/**
 * LeaderElector against the real API server: two electors in one process on one Lease.
 * Exactly one leads; a released lease is taken within a retry period; a leader whose
 * renewals fail (its connection stalled by a TCP proxy) stops acting before the other
 * can take over. Short durations (3 s lease, 2 s deadline, 0.5 s retry) keep it quick.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { V1MicroTime, type CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { classifyError, loadKubeConfig, makeClients } from '../../src/operator/kube/client.js';
import { LeaderElector, type LeaseTiming } from '../../src/operator/kube/lease.js';
import { baseline, expectNoLeak, freshNamespace, kubeconfigPath, memoryLogger, NEEDS_CLUSTER, viaProxy, waitFor } from './fixture.js';
import { TcpProxy } from './proxy.js';

const KUBECONFIG = kubeconfigPath();
const T: LeaseTiming = { leaseDurationSeconds: 3, renewDeadlineMs: 2_000, renewIntervalMs: 500, retryPeriodMs: 500, requestTimeoutMs: 1_000 };
const WAIT_MS = 20_000;

interface Rec {
  e: LeaderElector;
  started: number[];
  stopped: number[];
}

describe.skipIf(!KUBECONFIG)(`LeaderElector against a real API server ${KUBECONFIG ? '' : NEEDS_CLUSTER}`, () => {
  let kc: KubeConfig;
  let coordination: CoordinationV1Api;
  let ns: string;
  let removeNs: () => Promise<void>;
  /** Electors leading right now, across the test; must never exceed 1 per lease. */
  const leading = new Map<string, Set<string>>();
  const violations: string[] = [];

  beforeAll(async () => {
    kc = loadKubeConfig({ kubeconfig: KUBECONFIG! });
    const c = makeClients(kc);
    coordination = c.coordination;
    ({ name: ns, remove: removeNs } = await freshNamespace(c.core, 'fdstore-lease'));
  });
  afterAll(async () => removeNs?.());

  function elector(identity: string, lease: string, api: CoordinationV1Api = coordination): Rec {
    const { log } = memoryLogger();
    const set = leading.get(lease) ?? new Set<string>();
    leading.set(lease, set);
    const rec: Rec = { started: [], stopped: [], e: undefined as never };
    rec.e = new LeaderElector({
      api,
      namespace: ns,
      name: lease,
      identity,
      log,
      timing: T,
      onStartedLeading: () => {
        rec.started.push(performance.now());
        set.add(identity);
        if (set.size > 1) violations.push(`${lease}: ${[...set].join(' and ')} both leading`);
      },
      onStoppedLeading: () => {
        rec.stopped.push(performance.now());
        set.delete(identity);
      },
    });
    return rec;
  }

  it('writes MicroTime with microseconds; a plain Date (milliseconds) is what the server rejects', async () => {
    const name = 'microtime';
    const body = (t: Date) => ({ metadata: { name }, spec: { holderIdentity: 'x', leaseDurationSeconds: 1, renewTime: t } });
    const plain = await coordination.createNamespacedLease({ namespace: ns, body: body(new Date()) }).then(() => 'accepted', (err: unknown) => classifyError(err));
    expect(plain).toBe('invalid');
    const created = await coordination.createNamespacedLease({ namespace: ns, body: body(new V1MicroTime()) });
    // Read back, the field is the server's string (typed V1MicroTime, a Date, by client-node).
    expect(typeof created.spec?.renewTime).toBe('string');
    expect(String(created.spec?.renewTime)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });

  it('of two electors exactly one leads, and keeps leading while it renews', async () => {
    const base = baseline();
    const a = elector('a', 'one');
    const b = elector('b', 'one');
    a.e.start();
    b.e.start();
    const leader = await waitFor(() => (a.e.isLeader ? a : b.e.isLeader ? b : undefined), WAIT_MS, 'a leader');
    const other = leader === a ? b : a;
    // Six renewals span 3 s, a full lease duration: the other had every chance to take over wrongly.
    await waitFor(() => leader.e.stats().renewals >= 6, WAIT_MS, 'six renewals');
    expect(other.started).toEqual([]);
    expect(other.e.leader).toBe(leader.e.identity);
    expect(leader.e.stats().lost).toBe(0);
    expect(violations).toEqual([]);
    await Promise.all([a.e.stop(), b.e.stop()]);
    await expectNoLeak(base);
  });

  it('a leader that stops releases the lease: the other leads within a retry period', async () => {
    const base = baseline();
    const a = elector('a', 'release');
    a.e.start();
    await waitFor(() => a.e.isLeader, WAIT_MS, 'a leads');
    const b = elector('b', 'release');
    b.e.start();
    await waitFor(() => b.e.leader === 'a', WAIT_MS, 'b sees a');
    await a.e.stop();
    const released = performance.now();
    expect(a.stopped).toHaveLength(1);
    expect(a.stopped[0]!).toBeLessThanOrEqual(released); // stopped acting before giving the lease up
    await waitFor(() => b.e.isLeader, WAIT_MS, 'b leads');
    const ms = b.started[0]! - released;
    console.log(`[lease] takeover after release: ${ms.toFixed(0)} ms (retry period ${T.retryPeriodMs} ms + 20 % jitter)`);
    expect(ms).toBeLessThan(T.retryPeriodMs * 1.2 + 300);
    expect(violations).toEqual([]);
    await b.e.stop();
    await expectNoLeak(base);
  });

  it('a leader whose renewals fail stops leading before the lease expires; the other then takes over', async () => {
    const base = baseline();
    const proxy = await TcpProxy.start(new URL(kc.getCurrentCluster()!.server));
    const a = elector('a', 'cut', makeClients(viaProxy(kc, proxy.port)).coordination);
    a.e.start();
    await waitFor(() => a.e.isLeader, WAIT_MS, 'a leads');
    const b = elector('b', 'cut');
    b.e.start();
    await waitFor(() => b.e.leader === 'a' && a.e.stats().renewals >= 2, WAIT_MS, 'b sees a renewing');

    proxy.mode = 'stall';
    proxy.freeze(); // every renew from now on hangs: bytes go in, nothing comes back
    await waitFor(() => b.e.isLeader, WAIT_MS, 'b takes over');
    const renewedAt = a.e.stats().renewedAt!;
    const aStopped = a.stopped[0]!;
    const bStarted = b.started[0]!;
    console.log(
      `[lease] a's last renew +${(aStopped - renewedAt).toFixed(0)} ms: a stops; +${(bStarted - renewedAt).toFixed(0)} ms: b leads ` +
        `(deadline ${T.renewDeadlineMs} ms, lease ${T.leaseDurationSeconds * 1000} ms)`,
    );
    expect(aStopped).toBeLessThan(bStarted);
    expect(aStopped - renewedAt).toBeLessThan(T.renewDeadlineMs + 200); // the deadline timer, not a hung request
    expect(aStopped - renewedAt).toBeLessThan(T.leaseDurationSeconds * 1000);
    expect(bStarted - renewedAt).toBeGreaterThanOrEqual(T.leaseDurationSeconds * 1000); // b waited the lease out
    expect(a.e.stats().lost).toBe(1);
    expect(violations).toEqual([]);

    await Promise.all([a.e.stop(), b.e.stop()]);
    await waitFor(() => proxy.open === 0, WAIT_MS, "a's stalled connections closed by a");
    await proxy.close();
    await expectNoLeak(base);
  });
});
