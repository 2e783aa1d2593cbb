/**
 * The injector's core: a pod (or a pod template) in, the RFC 6902 JSON patch that
 * adds exactly what the chart's sidecar templates add out (pieces.ts), plus the
 * annotations that say what was done. Pure and deterministic: the same input gives
 * the same bytes on every replica; an injected pod gives an empty patch (the
 * fdstore.dev/injected annotation), so reinvocationPolicy IfNeeded is safe.
 *
 * Everything is put first in its list (init containers, containers, env, volume
 * mounts, volumes), as the chart's templates document ("put yours after them"): in
 * native mode the agent must be the first init container, so that the user's init
 * containers already find it running.
 */
import { canonicalJson, renderConfig } from '../operator/policy/render.js';
import { CONFIG_ANNOTATION, ENROLLED_LABEL, type FdStorePolicy } from '../operator/types.js';
import { decide, ENTRYPOINT_ANNOTATION_PREFIX, INJECTED_ANNOTATION, type Decision, type PodLike } from './decide.js';
import type { KubeVersion, SidecarMode } from './mode.js';
import { appCommand, appEnv, appMount, appProbes, initContainers, PROBE_FIELDS, sidecarContainers, volumes, type Json, type PieceInput } from './pieces.js';
import type { SidecarSettings } from './settings.js';

export type PatchOp = { op: 'add' | 'replace'; path: string; value: unknown };

/** A longer entrypoint annotation is a mistake; bounded text is cheap to check. */
export const ENTRYPOINT_ANNOTATION_MAX = 4096;

export interface InjectInput {
  namespace: string;
  pod: PodLike & { spec?: Json };
  policies: readonly FdStorePolicy[];
  settings: SidecarSettings;
  mode: SidecarMode;
  kube: KubeVersion | null;
  /** The injector's version, recorded in the annotation. */
  version: string;
  /** Where the pod's metadata and spec are in the patched object: '' for a Pod, '/spec/template' for a Deployment. */
  prefix?: string;
}

/** The fdstore.dev/injected annotation. */
export interface InjectionRecord {
  version: string;
  mode: SidecarMode;
  policy: string | null;
  /** Containers behind the launcher. */
  containers: string[];
  /** Containers left alone, and why. */
  unwrapped: Record<string, string>;
  probes: boolean;
}

export interface InjectResult {
  decision: Decision;
  patch: PatchOp[];
  record: InjectionRecord | null;
  /** For the AdmissionResponse's warnings (kubectl prints them). */
  warnings: string[];
}

const esc = (s: string): string => s.replace(/~/g, '~0').replace(/\//g, '~1');

interface Wrapped {
  index: number;
  c: AppContainer;
  command: string[];
}

/** The containers to put behind the launcher, and those left alone with why. */
function selectContainers(containers: AppContainer[], wanted: string[] | undefined, ann: Record<string, string>): { wrapped: Wrapped[]; unwrapped: Record<string, string> } {
  const unwrapped: Record<string, string> = {};
  const wrapped: Wrapped[] = [];
  const all = wanted === undefined || wanted.length === 0;
  containers.forEach((c, index) => {
    if (!all && !wanted.includes(c.name)) return;
    const cmd = commandOf(c, ann);
    if ('why' in cmd) unwrapped[c.name] = cmd.why;
    else wrapped.push({ index, c, command: cmd.command });
  });
  for (const n of wanted ?? []) if (!containers.some((c) => c.name === n)) unwrapped[n] = 'listed in spec.injection.containers, but the pod has no such container';
  return { wrapped, unwrapped };
}

interface AppContainer extends Json {
  name: string;
  command?: unknown;
  env?: unknown[];
  volumeMounts?: unknown[];
}

/** The command to wrap, or why there is none. */
function commandOf(c: AppContainer, ann: Record<string, string>): { command: string[] } | { why: string } {
  if (Array.isArray(c.command) && c.command.length > 0) return { command: c.command as string[] };
  const text = ann[`${ENTRYPOINT_ANNOTATION_PREFIX}${c.name}`];
  if (text === undefined) {
    return { why: `no command: the image's ENTRYPOINT is unknown to the injector (it does not read registries); set command, or annotate ${ENTRYPOINT_ANNOTATION_PREFIX}${c.name} with it as a JSON list` };
  }
  let v: unknown = null;
  if (text.length <= ENTRYPOINT_ANNOTATION_MAX) {
    try {
      v = JSON.parse(text);
    } catch {
      // reported below
    }
  }
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'string')) {
    return { why: `${ENTRYPOINT_ANNOTATION_PREFIX}${c.name} is not a non-empty JSON list of strings (at most ${ENTRYPOINT_ANNOTATION_MAX} bytes)` };
  }
  return { command: v as string[] };
}

export function inject(i: InjectInput): InjectResult {
  const decision = decide(i.namespace, i.pod, i.policies);
  if (!decision.inject) return { decision, patch: [], record: null, warnings: decision.why === 'name_clash' ? [`fdstore: ${decision.detail}`] : [] };
  const p = i.prefix ?? '';
  const spec = (i.pod.spec ?? {}) as Json & { containers: AppContainer[] };
  const ann = i.pod.metadata?.annotations ?? {};
  const policy = decision.policy;
  const opts = policy?.spec?.injection ?? {};
  const probes = opts.probes === true;
  const { wrapped, unwrapped } = selectContainers(spec.containers, opts.containers, ann);
  const record: InjectionRecord = { version: i.version, mode: i.mode, policy: policy ? policy.metadata.name : null, containers: wrapped.map((w) => w.c.name), unwrapped, probes };
  const warnings = Object.entries(unwrapped).map(([n, why]) => `fdstore: container ${n} not enrolled: ${why}`);
  const patch: PatchOp[] = [];
  const annotate = metadataOps(patch, p, i.pod.metadata);
  if (wrapped.length === 0) {
    // Nothing to serve: no sidecar, only the record of why (the operator turns it into an Event).
    annotate(INJECTED_ANNOTATION, canonicalJson(record));
    return { decision, patch, record, warnings };
  }
  const names = wrapped.map((w) => w.c.name);
  const input: PieceInput = { settings: i.settings, mode: i.mode, kube: i.kube, containers: names, restartPolicy: spec.restartPolicy as string | undefined };
  if (i.pod.metadata?.labels === undefined) patch.push({ op: 'add', path: `${p}/metadata/labels`, value: { [ENROLLED_LABEL]: 'true' } });
  else patch.push({ op: 'add', path: `${p}/metadata/labels/${esc(ENROLLED_LABEL)}`, value: 'true' });
  annotate(INJECTED_ANNOTATION, canonicalJson(record));
  const config = renderConfig(policy);
  if (config !== null) annotate(CONFIG_ANNOTATION, config);
  patch.push({ op: spec.shareProcessNamespace === undefined ? 'add' : 'replace', path: `${p}/spec/shareProcessNamespace`, value: true });
  // App containers first, at their original indices; the agent goes in front of them after.
  for (const w of wrapped) appOps(patch, warnings, `${p}/spec/containers/${w.index}`, w, i.settings, probes);
  prepend(patch, `${p}/spec/containers`, spec.containers, sidecarContainers(input));
  prepend(patch, `${p}/spec/initContainers`, spec.initContainers as unknown[] | undefined, initContainers(input));
  prepend(patch, `${p}/spec/volumes`, spec.volumes as unknown[] | undefined, volumes());
  return { decision, patch, record, warnings };
}

/** Makes metadata exist and returns what adds one annotation (making the map on first use). */
function metadataOps(patch: PatchOp[], p: string, meta: PodLike['metadata']): (k: string, v: string) => void {
  if (meta === undefined) patch.push({ op: 'add', path: `${p}/metadata`, value: {} });
  let haveMap = meta?.annotations !== undefined;
  return (k, v) => {
    if (!haveMap) patch.push({ op: 'add', path: `${p}/metadata/annotations`, value: {} });
    haveMap = true;
    patch.push({ op: 'add', path: `${p}/metadata/annotations/${esc(k)}`, value: v });
  };
}

/** Put items first in the list at path: the whole list when there is none, else one add at index k each. */
function prepend(patch: PatchOp[], path: string, existing: unknown[] | undefined, items: Json[]): void {
  if (items.length === 0) return;
  if (existing === undefined) {
    patch.push({ op: 'add', path, value: items });
    return;
  }
  items.forEach((item, k) => patch.push({ op: 'add', path: `${path}/${k}`, value: item }));
}

/** One app container: the launcher before its command, NOTIFY_SOCKET, its own directory, the probes it lacks. */
function appOps(patch: PatchOp[], warnings: string[], at: string, { c, command }: Wrapped, s: SidecarSettings, probes: boolean): void {
  patch.push({ op: c.command === undefined ? 'add' : 'replace', path: `${at}/command`, value: appCommand(s, command) });
  prepend(patch, `${at}/env`, c.env, [appEnv(s)]);
  prepend(patch, `${at}/volumeMounts`, c.volumeMounts, [appMount(s, c.name)]);
  if (!probes) return;
  const pr = appProbes(s, c.name);
  for (const f of PROBE_FIELDS) {
    if (c[f] === undefined) patch.push({ op: 'add', path: `${at}/${f}`, value: pr[f] });
    else warnings.push(`fdstore: container ${c.name} keeps its own ${f}`);
  }
}
