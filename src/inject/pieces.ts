/**
 * The sidecar's pieces as plain objects: what templates/_sidecar.tpl renders, field
 * for field (the agent container, classic mode's `fdstore prepare`, the two volumes,
 * and per app container the launcher command, NOTIFY_SOCKET, its subPath mount and
 * the probes). test/chart/inject-equivalence.test.ts holds the two to each other.
 * Pure.
 */
import { atLeast, SECCOMP_FIELD_MIN, type KubeVersion, type SidecarMode } from './mode.js';
import type { ProbeTiming, SidecarSettings } from './settings.js';
import { KEEPER_DIR, KEEPER_SOCKET, LAUNCHER_NAME } from '../unit/layout.js';
import { NOTIFY_NAME } from '../native/proto.js';

export const AGENT_CONTAINER = 'fdstore';
export const PREPARE_CONTAINER = 'fdstore-prepare';
export const KEEPER_CONTAINER = 'fdstore-keeper';
export const RUN_VOLUME = 'fdstore-run';
export const CONFIG_VOLUME = 'fdstore-config';
export const AGENT_PORT_NAME = 'fdstore-http';
export const CONFIG_MOUNT = '/etc/fdstore';
/** Names the injector adds to a pod: a pod that has one already is not touched. */
export const OUR_CONTAINERS = [AGENT_CONTAINER, PREPARE_CONTAINER, KEEPER_CONTAINER] as const;
export const OUR_VOLUMES = [RUN_VOLUME, CONFIG_VOLUME] as const;

/**
 * Classic mode, pods that end (restartPolicy Never or OnFailure, i.e. Jobs): the agent
 * exits once every app container has exited and none restarted for this long
 * (`fdstore agent --exit-when-done`). Never: no container restarts, so at once.
 * OnFailure: the kubelet may restart a failed container after its CrashLoopBackOff,
 * capped at 5 minutes; the agent cannot see exit codes (the main process is the
 * shim's child), so it waits out that cap. Native mode needs none: the kubelet stops
 * native sidecars when the app containers are done.
 */
export const EXIT_WHEN_DONE: Record<'Never' | 'OnFailure', string> = { Never: '0s', OnFailure: '330s' };

export type Json = Record<string, unknown>;

export interface PieceInput {
  settings: SidecarSettings;
  mode: SidecarMode;
  kube: KubeVersion | null;
  /** The app containers the agent serves, in the pod's order. */
  containers: string[];
  /** The pod's restartPolicy (Always when unset). */
  restartPolicy?: string;
}

function securityContext(uid: number, kube: KubeVersion | null): Json {
  const sc: Json = {
    runAsUser: uid,
    runAsGroup: uid,
    runAsNonRoot: true,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
  };
  // The chart renders it from 1.19 on; with an unknown version the injector leaves it out too (older servers drop it anyway).
  if (atLeast(kube, SECCOMP_FIELD_MIN)) sc.seccompProfile = { type: 'RuntimeDefault' };
  return sc;
}

const containerArgs = (names: string[]): string[] => names.flatMap((n) => ['--container', n]);

export function agentContainer(i: PieceInput): Json {
  const s = i.settings;
  const args = ['agent', '--run-dir', s.runDir, ...containerArgs(i.containers), '--config', `${CONFIG_MOUNT}/config`, '--config-poll', s.configPoll, '--http', `0.0.0.0:${s.port}`, '--log-level', s.logLevel];
  const ends = i.restartPolicy === 'Never' || i.restartPolicy === 'OnFailure' ? EXIT_WHEN_DONE[i.restartPolicy] : null;
  if (i.mode === 'classic' && ends !== null) args.push('--exit-when-done', ends);
  if (keeperWanted(i)) args.push('--keeper', `${s.runDir}/${KEEPER_DIR}/${KEEPER_SOCKET}`);
  args.push(...s.extraArgs);
  const healthz = { path: '/healthz', port: AGENT_PORT_NAME };
  const c: Json = {
    name: AGENT_CONTAINER,
    image: s.image,
    imagePullPolicy: s.pullPolicy,
    ...(i.mode === 'native' ? { restartPolicy: 'Always' } : {}),
    args,
    env: [{ name: 'FDSTORE_RUN_DIR', value: s.runDir }],
    ports: [{ name: AGENT_PORT_NAME, containerPort: s.port, protocol: 'TCP' }],
    ...(i.mode === 'native' ? { startupProbe: { httpGet: healthz, periodSeconds: 1, failureThreshold: 60, timeoutSeconds: 2 } } : {}),
    readinessProbe: { httpGet: healthz, periodSeconds: 5, timeoutSeconds: 2 },
    livenessProbe: { httpGet: healthz, periodSeconds: 10, failureThreshold: 6, timeoutSeconds: 5 },
    resources: structuredClone(s.resources),
    securityContext: securityContext(s.uid, i.kube),
    volumeMounts: [
      { name: RUN_VOLUME, mountPath: s.runDir },
      { name: CONFIG_VOLUME, mountPath: CONFIG_MOUNT, readOnly: true },
    ],
  };
  return c;
}

export function prepareContainer(i: PieceInput): Json {
  const s = i.settings;
  return {
    name: PREPARE_CONTAINER,
    image: s.image,
    imagePullPolicy: s.pullPolicy,
    args: ['prepare', '--run-dir', s.runDir, ...containerArgs(i.containers)],
    resources: structuredClone(s.resources),
    securityContext: securityContext(s.uid, i.kube),
    volumeMounts: [{ name: RUN_VOLUME, mountPath: s.runDir }],
  };
}

/** fdstore.sidecar.keeper: holds the mirror of the stores (docs/keeper.md); listed before the agent. */
export function keeperContainer(i: PieceInput): Json {
  const s = i.settings;
  return {
    name: KEEPER_CONTAINER,
    image: s.image,
    imagePullPolicy: s.pullPolicy,
    ...(i.mode === 'native' ? { restartPolicy: 'Always' } : {}),
    command: ['/usr/local/bin/fdstore-keeper'],
    args: ['--run-dir', s.runDir, ...(s.keeper.maxFds > 0 ? ['--max-fds', String(s.keeper.maxFds)] : [])],
    resources: structuredClone(s.keeper.resources),
    securityContext: securityContext(s.uid, i.kube),
    volumeMounts: [{ name: RUN_VOLUME, mountPath: s.runDir }],
  };
}

/**
 * The keeper, unless off, or the pod is a Job's in classic mode: there the agent exits
 * once the apps are done (EXIT_WHEN_DONE) and a keeper, which never does, would keep the
 * Job running forever. (Native sidecars are stopped by the kubelet.)
 */
export function keeperWanted(i: PieceInput): boolean {
  const job = i.restartPolicy === 'Never' || i.restartPolicy === 'OnFailure';
  return i.settings.keeper.enabled && !(i.mode === 'classic' && job);
}
const keeperFirst = (i: PieceInput): Json[] => (keeperWanted(i) ? [keeperContainer(i)] : []);
/** fdstore.sidecar.initContainers: the keeper and the agent (native) or fdstore prepare (classic). */
export const initContainers = (i: PieceInput): Json[] => (i.mode === 'native' ? [...keeperFirst(i), agentContainer(i)] : [prepareContainer(i)]);
/** fdstore.sidecar.containers: the keeper and the agent in classic mode. */
export const sidecarContainers = (i: PieceInput): Json[] => (i.mode === 'classic' ? [...keeperFirst(i), agentContainer(i)] : []);

export function volumes(): Json[] {
  return [
    { name: RUN_VOLUME, emptyDir: {} },
    { name: CONFIG_VOLUME, downwardAPI: { items: [{ path: 'config', fieldRef: { fieldPath: "metadata.annotations['fdstore.dev/config']" } }] } },
  ];
}

export const appCommand = (s: SidecarSettings, command: string[]): string[] => [`${s.runDir}/${LAUNCHER_NAME}`, '--wait-ms', String(s.launcherWaitMs), '--', ...command];
export const appEnv = (s: SidecarSettings): Json => ({ name: 'NOTIFY_SOCKET', value: `${s.runDir}/${NOTIFY_NAME}` });
export const appMount = (s: SidecarSettings, container: string): Json => ({ name: RUN_VOLUME, mountPath: s.runDir, subPath: container });

export type ProbeField = 'startupProbe' | 'readinessProbe' | 'livenessProbe';
export const PROBE_FIELDS: readonly ProbeField[] = ['startupProbe', 'readinessProbe', 'livenessProbe'];

export function appProbes(s: SidecarSettings, container: string): Record<ProbeField, Json> {
  const probe = (path: string, t: ProbeTiming): Json => ({ httpGet: { path, port: s.port }, periodSeconds: t.periodSeconds, failureThreshold: t.failureThreshold, timeoutSeconds: t.timeoutSeconds });
  return {
    startupProbe: probe(`/readyz/${container}`, s.appProbes.startup),
    readinessProbe: probe(`/readyz/${container}`, s.appProbes.readiness),
    livenessProbe: probe(`/livez/${container}`, s.appProbes.liveness),
  };
}
