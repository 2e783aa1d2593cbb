/**
 * The operator against the real one-node cluster, under exactly the RBAC the chart
 * ships: CRDs with descriptions (kubectl explain), a policy reaching a running agent
 * through the downward API, `kubectl get fdstores` agreeing with `fdstore ls`, Events
 * on the pod after a container restart, the FdStore garbage-collected with its pod,
 * leader failover, and policies deleted and recreated.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apply, freshNamespace, getJson, kubectl, kubectlRun, podReady, waitFor } from './cluster.js';
import { fdStoreCrd } from '../../src/crd/fdstore.js';
import { AGENT_PORT, applyCrds, enrolledPod, operatorKubeconfig, startOperator, type OperatorProc } from './operator-env.js';

/** The first words of a field's description in a CRD, as a pattern that survives kubectl's line wrapping. */
function describedAs(crd: { spec: { versions: { schema?: { openAPIV3Schema?: unknown } }[] } }, path: string[]): RegExp {
  let node = crd.spec.versions[0]?.schema?.openAPIV3Schema as { properties?: Record<string, unknown>; description?: string } | undefined;
  for (const p of path) node = node?.properties?.[p] as typeof node;
  const words = (node?.description ?? '').split(/\s+/).filter((w) => w !== '').slice(0, 6);
  expect(words.length).toBeGreaterThanOrEqual(4);
  return new RegExp(words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('\\s+'));
}

const ns = freshNamespace('operator');
const POD = 'web-0';
const ops: OperatorProc[] = [];

/** The cluster's state dir (scripts/kube/env.sh FDSTORE_KUBE_STATE). */
const kubeState = (): string => process.env.FDSTORE_KUBE_STATE ?? '/run/fdstore-kube';

/** A host pid in the pod (its cgroup path names the pod's uid) whose command line matches. */
function podPid(podUid: string, match: (cmd: string) => boolean): number {
  const cg = `pod${podUid}`;
  const cgUnderscore = `pod${podUid.replace(/-/g, '_')}`;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (!match(cmd)) continue;
      const cgroup = readFileSync(`/proc/${d}/cgroup`, 'utf8');
      if (cgroup.includes(cg) || cgroup.includes(cgUnderscore)) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no process in pod ${podUid} matches`);
}
const appPid = (uid: string): number => podPid(uid, (c) => c.includes('demo/server.py') && !c.startsWith('sh '));
const agentPid = (uid: string): number => podPid(uid, (c) => c.includes('fdstore.js agent'));

interface FdStoreObj {
  metadata: { ownerReferences?: { kind: string; name: string; uid: string }[] };
  status?: {
    stored?: number; restores?: number; readySummary?: string; otherPolicies?: string[];
    policy?: { name: string; generation: number } | null;
    containers?: { name: string; stored: number; max: number; restores: number; fdGroups: { name: string; type: string; count: number }[] }[];
    conditions?: { type: string; status: string; reason: string; message: string }[];
  };
}

const fdstore = (): Promise<FdStoreObj> => getJson<FdStoreObj>(['-n', ns.name, 'fdstore', POD]);
const condition = (s: FdStoreObj, type: string) => s.status?.conditions?.find((c) => c.type === type);

function policy(name: string, max: number, extra: Record<string, unknown> = {}): object {
  return {
    apiVersion: 'fdstore.dev/v1alpha1', kind: 'FdStorePolicy', metadata: { name },
    spec: { selector: { matchLabels: { app: 'web' } }, defaults: { fileDescriptorStoreMax: max }, ...extra },
  };
}

/** `fdstore ls --json` inside the sidecar. */
async function ls(): Promise<{ containers: { name: string; count: number; max: number; restores: number }[]; fds: { fdname: string; type: string }[] }> {
  return JSON.parse(await kubectl(['-n', ns.name, 'exec', POD, '-c', 'fdstore', '--', 'node', '/opt/fdstore/bin/fdstore.js', 'ls', '--run-dir', '/run/fdstore', '--json']));
}

async function leader(): Promise<OperatorProc> {
  return waitFor(async () => {
    for (const o of ops) if (o.proc.exitCode === null && (await o.metric('fdstore_operator_leader').catch(() => 0)) === 1) return o;
    return undefined;
  }, 60_000, 'an operator replica leading');
}

beforeAll(async () => {
  await applyCrds();
  const kc = await operatorKubeconfig(ns.name);
  ops.push(startOperator(kc, ns.name), startOperator(kc, ns.name));
  await Promise.all(ops.map((o) => o.url));
});

afterAll(async () => {
  await Promise.all(ops.map((o) => o.stop('SIGKILL')));
});

describe('CRDs', () => {
  it('kubectl explain teaches the fields', async () => {
    const max = await kubectl(['explain', 'fdstorepolicy.spec.defaults.fileDescriptorStoreMax']);
    expect(max).toMatch(/FileDescriptorStoreMax/);
    // kubectl prints the DESCRIPTION header even for a field without one: match the
    // field's own text from the CRD (kubectl re-wraps it, hence \s+ between words).
    const st = await kubectl(['explain', 'fdstore.status.containers']);
    expect(st).toMatch(describedAs(fdStoreCrd(), ['status', 'containers']));
  });
  it('the API server refuses an invalid policy', async () => {
    const r = await kubectlRun(['-n', ns.name, 'apply', '-f', '-'], { input: JSON.stringify(policy('bad', -1)) });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/fileDescriptorStoreMax/);
  });
});

describe('a policy and an enrolled pod', () => {
  beforeAll(async () => {
    await apply(policy('web', 64), ns.name);
    await apply(enrolledPod(POD, { app: 'web' }), ns.name);
    await podReady(ns.name, POD, 180_000);
  });

  it('the policy reaches the running agent live through the downward API', async () => {
    const s = await waitFor(async () => {
      const f = await fdstore();
      return condition(f, 'ConfigApplied')?.status === 'True' ? f : undefined;
    }, 120_000, 'FdStore ConfigApplied=True');
    expect(s.status?.policy).toEqual({ name: 'web', generation: 1 });
    expect((await ls()).containers[0]!.max).toBe(64);
    const pod = await getJson<{ metadata: { annotations: Record<string, string> } }>(['-n', ns.name, 'pod', POD]);
    expect(JSON.parse(pod.metadata.annotations['fdstore.dev/config']!)).toMatchObject({ policy: { name: 'web' }, defaults: { fileDescriptorStoreMax: 64 } });
  });

  it('kubectl get fdstores shows what fdstore ls shows', async () => {
    const f = await waitFor(async () => {
      const x = await fdstore();
      return (x.status?.stored ?? 0) >= 1 && condition(x, 'Ready')?.status === 'True' ? x : undefined;
    }, 60_000, 'the stored listening socket in the FdStore');
    const view = await ls();
    expect(f.status?.stored).toBe(view.fds.length);
    expect(f.status?.containers?.[0]).toMatchObject({ name: 'app', stored: view.containers[0]!.count, max: view.containers[0]!.max });
    expect(f.status?.containers?.[0]?.fdGroups).toEqual([{ name: 'http', type: view.fds[0]!.type, count: 1 }]);
    const table = await kubectl(['-n', ns.name, 'get', 'fdstores']);
    expect(table.split('\n')[0]).toMatch(/^NAME\s+READY\s+FDS\s+RESTORES\s+POLICY\s+AGE/);
    // Every start of the app is a restore (the first one passes an empty store).
    expect(table.split('\n')[1]).toMatch(new RegExp(`^${POD}\\s+1/1\\s+1\\s+${view.containers[0]!.restores}\\s+web\\s`));
    const owner = f.metadata.ownerReferences?.[0];
    expect(owner).toMatchObject({ kind: 'Pod', name: POD });
  });

  it('a container restart shows as a restore and an Event on the pod', async () => {
    const before = (await ls()).containers[0]!.restores;
    await kubectl(['-n', ns.name, 'exec', POD, '-c', 'app', '--', 'pkill', '-TERM', '-f', 'demo/server.py']);
    await waitFor(async () => {
      const x = await fdstore();
      return (x.status?.restores ?? 0) === before + 1 && x.status?.containers?.[0]?.restores === before + 1 ? x : undefined;
    }, 120_000, 'the restore counted in the FdStore');
    expect((await ls()).containers[0]!.restores).toBe(before + 1);
    const ev = await waitFor(async () => {
      const list = await getJson<{ items: { reason: string; message: string; type: string }[] }>(['-n', ns.name, 'events', '--field-selector', `involvedObject.name=${POD},reason=FdsRestored`]);
      return list.items[0];
    }, 60_000, 'a FdsRestored event');
    expect(ev.type).toBe('Normal');
    expect(ev.message).toMatch(/restored 1 fd\(s\) into container app/);
    expect(await kubectl(['-n', ns.name, 'describe', 'pod', POD])).toMatch(/FdsRestored/);
  });

  it('ran under exactly the shipped role: no API call was forbidden', async () => {
    for (const o of ops) {
      expect(await o.metric('fdstore_operator_api_requests_total', { code: '403' })).toBe(0);
      expect(o.logs.filter((l) => /forbidden/i.test(JSON.stringify(l)))).toEqual([]);
    }
  });

  it('the other replica takes over when the leader is killed', async () => {
    const old = await leader();
    await old.stop('SIGKILL');
    const next = await leader();
    expect(next).not.toBe(old);
    await apply(policy('web', 48), ns.name);
    const f = await waitFor(async () => {
      const x = await fdstore();
      return x.status?.policy?.generation === 2 && condition(x, 'ConfigApplied')?.status === 'True' ? x : undefined;
    }, 120_000, 'generation 2 applied after the failover');
    expect(f.status?.containers?.[0]?.max).toBe(48);
    ops.push(startOperator(await operatorKubeconfig(ns.name), ns.name));
  });

  it('a deleted policy leaves the agent on its flags; a recreated one applies again', async () => {
    await kubectl(['-n', ns.name, 'delete', 'fdstorepolicy', 'web']);
    await waitFor(async () => {
      const x = await fdstore();
      const c = condition(x, 'ConfigApplied');
      return c?.status === 'True' && c.reason === 'NoPolicy' ? x : undefined;
    }, 120_000, 'ConfigApplied/NoPolicy');
    expect((await fdstore()).status?.policy).toBeUndefined();
    expect((await ls()).containers[0]!.max).toBe(4096);
    await apply(policy('web', 32), ns.name);
    await waitFor(async () => {
      const x = await fdstore();
      return x.status?.policy?.name === 'web' && condition(x, 'ConfigApplied')?.status === 'True' ? x : undefined;
    }, 120_000, 'the recreated policy applied');
    expect((await ls()).containers[0]!.max).toBe(32);
    // The listening socket outlived every config change.
    expect((await ls()).fds.length).toBe(1);
  });

  it('two policies for one pod: the older wins, both statuses say so', async () => {
    await apply(policy('web-later', 16), ns.name);
    const pol = (n: string) => getJson<{ status?: { pods?: number; conflicts?: { pod: string; winner: string }[]; conditions?: { type: string; status: string }[] } }>(['-n', ns.name, 'fdstorepolicy', n]);
    await waitFor(async () => ((await pol('web-later')).status?.conflicts?.length ?? 0) > 0, 60_000, 'the conflict in the losing policy');
    expect((await pol('web-later')).status).toMatchObject({ pods: 0, conflicts: [{ pod: POD, winner: 'web' }] });
    expect((await pol('web')).status).toMatchObject({ pods: 1, conflicts: [{ pod: POD, winner: 'web' }] });
    expect((await pol('web')).status?.conditions?.find((c) => c.type === 'Accepted')?.status).toBe('True');
    await waitFor(async () => (await fdstore()).status?.otherPolicies?.[0] === 'web-later', 60_000, 'otherPolicies on the FdStore');
    expect((await ls()).containers[0]!.max).toBe(32);
    await kubectl(['-n', ns.name, 'delete', 'fdstorepolicy', 'web-later']);
  });

  it('the API server away: the pod keeps its fds and restarts; the FdStore catches up after', async () => {
    const uid = (await getJson<{ metadata: { uid: string } }>(['-n', ns.name, 'pod', POD])).metadata.uid;
    const ip = (await getJson<{ status: { podIP: string } }>(['-n', ns.name, 'pod', POD])).status.podIP;
    const agent = async () => (await (await fetch(`http://${ip}:${AGENT_PORT}/status`)).json()) as { containers: { restores: number; stored: number }[] };
    const before = (await agent()).containers[0]!;
    const apiserver = Number(readFileSync(join(kubeState(), 'pids/kube-apiserver.pid'), 'utf8'));
    process.kill(apiserver, 'SIGSTOP');
    try {
      // The kubelet restarts the app on its own; the agent restores it, API or not.
      process.kill(appPid(uid), 'SIGTERM');
      const during = await waitFor(async () => {
        const c = (await agent()).containers[0]!;
        return c.restores === before.restores + 1 && c.stored === 1 ? c : undefined;
      }, 90_000, 'the restore while the API server is stopped');
      expect(during.stored).toBe(before.stored);
    } finally {
      process.kill(apiserver, 'SIGCONT');
    }
    const f = await waitFor(async () => {
      const x = await fdstore();
      return x.status?.containers?.[0]?.restores === before.restores + 1 ? x : undefined;
    }, 120_000, 'the FdStore catching up');
    expect(f.status?.stored).toBe(1);
  });

  it('an agent restart that loses the store shows as StoreLost and an Event', async () => {
    await kubectl(['-n', ns.name, 'exec', POD, '-c', 'app', '--', 'true']); // the API server answers again
    const uid = (await getJson<{ metadata: { uid: string } }>(['-n', ns.name, 'pod', POD])).metadata.uid;
    process.kill(agentPid(uid), 'SIGKILL');
    const f = await waitFor(async () => {
      const x = await fdstore();
      return condition(x, 'StoreLost')?.status === 'True' ? x : undefined;
    }, 120_000, 'StoreLost=True');
    expect(condition(f, 'StoreLost')?.message).toMatch(/1 stored fd\(s\)/);
    await waitFor(async () => {
      const list = await getJson<{ items: unknown[] }>(['-n', ns.name, 'events', '--field-selector', `involvedObject.name=${POD},reason=StoreLost`]);
      return list.items.length > 0;
    }, 60_000, 'a StoreLost event');
    // The app stores its socket again at its next start: the condition clears.
    process.kill(appPid(uid), 'SIGTERM');
    await waitFor(async () => {
      const x = await fdstore();
      return condition(x, 'StoreLost')?.status === 'False' && x.status?.stored === 1 ? x : undefined;
    }, 120_000, 'StoreLost=False after the app stored again');
  });

  it('deleting the pod removes its FdStore (garbage collector)', async () => {
    await kubectl(['-n', ns.name, 'delete', 'pod', POD, '--grace-period=1', '--wait=true', '--timeout=90s']);
    await waitFor(async () => (await kubectlRun(['-n', ns.name, 'get', 'fdstore', POD])).code !== 0, 90_000, 'the FdStore gone');
  });
});
