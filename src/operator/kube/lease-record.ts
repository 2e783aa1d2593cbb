/**
 * The pure half of leader election on a coordination.k8s.io/v1 Lease: what a read
 * Lease means to a candidate, and the bodies it writes. lease.ts does the I/O.
 *
 * Expiry is judged as client-go does (tools/leaderelection): by how long *this*
 * process has seen the same record unchanged (its own monotonic clock), not by
 * comparing the Lease's `renewTime` with the local wall clock. Two replicas' clocks may
 * disagree by seconds; a record that has not changed for leaseDurationSeconds of our
 * own time is expired whatever the clocks say. The Lease's own times (`acquireTime`,
 * `renewTime`, `leaseTransitions`) are still written, for `kubectl get lease -o yaml`
 * and for other tools.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { V1MicroTime, type V1Lease } from '@kubernetes/client-node';

/** What this candidate last saw in the Lease, and when (monotonic ms) it first saw it so. */
export interface Observation {
  resourceVersion: string;
  holder: string;
  durationMs: number;
  /** Monotonic time at which this record (this resourceVersion) was first read. */
  since: number;
}

export type Verdict =
  | { action: 'renew' } // ours
  | { action: 'take'; reason: 'released' | 'expired' }
  | { action: 'wait'; holder: string; expiresInMs: number };

export function observe(prev: Observation | undefined, lease: V1Lease, now: number): Observation {
  const resourceVersion = lease.metadata?.resourceVersion ?? '';
  const holder = lease.spec?.holderIdentity ?? '';
  const durationMs = Math.max(1, lease.spec?.leaseDurationSeconds ?? 1) * 1000;
  // Any write changes the resourceVersion; an unchanged one is the same record.
  const since = prev !== undefined && prev.resourceVersion === resourceVersion ? prev.since : now;
  return { resourceVersion, holder, durationMs, since };
}

export function judge(obs: Observation, identity: string, now: number): Verdict {
  if (obs.holder === identity) return { action: 'renew' };
  if (obs.holder === '') return { action: 'take', reason: 'released' };
  const expiresInMs = obs.since + obs.durationMs - now;
  if (expiresInMs <= 0) return { action: 'take', reason: 'expired' };
  return { action: 'wait', holder: obs.holder, expiresInMs };
}

/**
 * A MicroTime for the API server. client-node 1.4.0 types the field as `V1MicroTime`,
 * a Date whose toISOString() prints six fractional digits ("...T10:00:00.123000Z"); a
 * plain Date prints three, and the 1.20 API server rejects the object with HTTP 400
 * ('cannot parse ".220Z" as ".000000"'; test/kube/lease.test.ts). Reads come back as the
 * server's string, not a Date: the generated deserializer does not know the type.
 */
export function microTime(wallMs: number): V1MicroTime {
  return new V1MicroTime(wallMs);
}

/** A new Lease held by `identity`. */
export function freshLease(namespace: string, name: string, identity: string, durationS: number, wallMs: number): V1Lease {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { namespace, name },
    spec: {
      holderIdentity: identity,
      leaseDurationSeconds: durationS,
      acquireTime: microTime(wallMs),
      renewTime: microTime(wallMs),
      leaseTransitions: 0,
    },
  };
}

/** `lease` taken or renewed by `identity`; its resourceVersion is kept, so a concurrent write fails with 409. */
export function claimed(lease: V1Lease, identity: string, durationS: number, wallMs: number): V1Lease {
  const spec = lease.spec ?? {};
  const ours = spec.holderIdentity === identity;
  return {
    ...lease,
    spec: {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: durationS,
      acquireTime: ours && spec.acquireTime !== undefined ? spec.acquireTime : microTime(wallMs),
      renewTime: microTime(wallMs),
      leaseTransitions: (spec.leaseTransitions ?? 0) + (ours ? 0 : 1),
    },
  };
}

/**
 * `lease` given up (client-go's release): no holder, a 1 s duration, so any candidate
 * takes it at its next try instead of waiting out leaseDurationSeconds.
 */
export function released(lease: V1Lease, wallMs: number): V1Lease {
  return {
    ...lease,
    spec: {
      ...lease.spec,
      holderIdentity: '',
      leaseDurationSeconds: 1,
      renewTime: microTime(wallMs),
    },
  };
}

/**
 * `<pod name>_<random>`: the pod name says who leads (`kubectl get lease`); the suffix
 * makes a restarted container a new candidate, so it never mistakes its predecessor's
 * unexpired record for its own.
 */
export function holderIdentity(podName: string = process.env.POD_NAME || hostname()): string {
  return `${podName}_${randomBytes(4).toString('hex')}`;
}
