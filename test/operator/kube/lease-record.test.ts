import { describe, expect, it } from 'vitest';
import type { V1Lease } from '@kubernetes/client-node';
import { claimed, freshLease, holderIdentity, judge, microTime, observe, released } from '../../../src/operator/kube/lease-record.js';

function lease(rv: string, holder: string | undefined, durationS = 15, transitions = 0): V1Lease {
  return {
    metadata: { name: 'l', namespace: 'ns', resourceVersion: rv },
    spec: { holderIdentity: holder, leaseDurationSeconds: durationS, leaseTransitions: transitions, acquireTime: '2020-01-01T00:00:00.000000Z' as never },
  };
}

describe('lease record', () => {
  it('an unchanged record keeps the time it was first seen; any new resourceVersion restarts it', () => {
    const a = observe(undefined, lease('1', 'other'), 100);
    expect(a).toEqual({ resourceVersion: '1', holder: 'other', durationMs: 15_000, since: 100 });
    expect(observe(a, lease('1', 'other'), 5_000).since).toBe(100);
    expect(observe(a, lease('2', 'other'), 5_000).since).toBe(5_000);
  });

  it('waits out leaseDuration of its own time before taking a held lease', () => {
    const o = observe(undefined, lease('1', 'other', 15), 1_000);
    expect(judge(o, 'me', 15_999)).toEqual({ action: 'wait', holder: 'other', expiresInMs: 1 });
    expect(judge(o, 'me', 16_000)).toEqual({ action: 'take', reason: 'expired' });
  });

  it('takes a released lease at once, and renews its own', () => {
    expect(judge(observe(undefined, lease('1', ''), 0), 'me', 0)).toEqual({ action: 'take', reason: 'released' });
    expect(judge(observe(undefined, lease('1', undefined), 0), 'me', 0)).toEqual({ action: 'take', reason: 'released' });
    expect(judge(observe(undefined, lease('1', 'me'), 0), 'me', 0)).toEqual({ action: 'renew' });
  });

  it('a released lease (1 s) expires after 1 s even if a holder were set', () => {
    const o = observe(undefined, released(lease('1', 'other'), 0), 0);
    expect(o.durationMs).toBe(1_000);
    expect(o.holder).toBe('');
  });

  it('claiming keeps the resourceVersion (optimistic concurrency) and counts holder changes', () => {
    const taken = claimed(lease('7', 'other', 15, 3), 'me', 15, Date.UTC(2024, 0, 2, 3, 4, 5, 678));
    expect(taken.metadata?.resourceVersion).toBe('7');
    expect(taken.spec?.holderIdentity).toBe('me');
    expect(taken.spec?.leaseTransitions).toBe(4);
    expect(JSON.stringify(taken.spec?.renewTime)).toBe('"2024-01-02T03:04:05.678000Z"');
    expect(JSON.stringify(taken.spec?.acquireTime)).toBe('"2024-01-02T03:04:05.678000Z"');
    const renewed = claimed(taken, 'me', 15, Date.UTC(2024, 0, 2, 3, 4, 10));
    expect(renewed.spec?.leaseTransitions).toBe(4);
    expect(renewed.spec?.acquireTime).toBe(taken.spec?.acquireTime); // kept while we hold it
  });

  it('a fresh lease is ours with zero transitions', () => {
    const l = freshLease('ns', 'n', 'me', 15, 0);
    expect(l.spec).toMatchObject({ holderIdentity: 'me', leaseDurationSeconds: 15, leaseTransitions: 0 });
    expect(l.metadata).toEqual({ namespace: 'ns', name: 'n' });
  });

  it('MicroTime serializes with six fractional digits, as the API server parses it', () => {
    expect(JSON.stringify({ t: microTime(Date.UTC(2025, 5, 6, 7, 8, 9, 10)) })).toBe('{"t":"2025-06-06T07:08:09.010000Z"}');
    // A plain Date would give three: the reason microTime() exists.
    expect(JSON.stringify({ t: new Date(Date.UTC(2025, 5, 6, 7, 8, 9, 10)) })).toBe('{"t":"2025-06-06T07:08:09.010Z"}');
  });

  it('identities are the pod name plus a random suffix, different per process start', () => {
    const a = holderIdentity('fdstore-operator-7d9c');
    const b = holderIdentity('fdstore-operator-7d9c');
    expect(a).toMatch(/^fdstore-operator-7d9c_[0-9a-f]{8}$/);
    expect(a).not.toBe(b);
  });
});
