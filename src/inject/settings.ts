/**
 * The sidecar's settings as the injector uses them: the chart's `sidecar` values
 * (charts/fdstore/values.yaml) plus the image, the same keys the chart's named
 * templates read (templates/_sidecar.tpl, "fdstore.sidecar.settings"). The chart
 * passes its resolved values to the operator (--inject-sidecar, as JSON), so both
 * render from one set of values; test/chart/inject-equivalence.test.ts renders the
 * chart's templates and the injector's patch for the same inputs and asserts the
 * two pods are equal. Pure.
 */

export interface ProbeTiming {
  periodSeconds: number;
  failureThreshold: number;
  timeoutSeconds: number;
}

export interface SidecarSettings {
  image: string;
  pullPolicy: string;
  port: number;
  runDir: string;
  uid: number;
  configPoll: string;
  logLevel: string;
  extraArgs: string[];
  launcherWaitMs: number;
  resources: Record<string, unknown>;
  appProbes: { startup: ProbeTiming; readiness: ProbeTiming; liveness: ProbeTiming };
  /** fdstore-keeper next to the agent (docs/keeper.md); maxFds 0: the keeper's own default. */
  keeper: { enabled: boolean; maxFds: number; resources: Record<string, unknown> };
}

/** The chart's defaults (values.yaml `sidecar`), for an operator started without --inject-sidecar. */
export function defaultSettings(image: string): SidecarSettings {
  return {
    image,
    pullPolicy: 'IfNotPresent',
    port: 9721,
    runDir: '/run/fdstore',
    uid: 64919,
    configPoll: '5s',
    logLevel: 'info',
    extraArgs: [],
    launcherWaitMs: 30000,
    resources: { requests: { cpu: '10m', memory: '48Mi' }, limits: { memory: '192Mi' } },
    appProbes: {
      startup: { periodSeconds: 1, failureThreshold: 600, timeoutSeconds: 2 },
      readiness: { periodSeconds: 2, failureThreshold: 2, timeoutSeconds: 2 },
      liveness: { periodSeconds: 5, failureThreshold: 6, timeoutSeconds: 2 },
    },
    keeper: { enabled: true, maxFds: 0, resources: { requests: { cpu: '5m', memory: '8Mi' }, limits: { memory: '32Mi' } } },
  };
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const posInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;

/**
 * --inject-sidecar's JSON over the defaults: the chart's sidecar values (mode and
 * appProbes.enabled are the chart's render-time choices and are ignored here: the
 * injector takes the mode from the API server and the probes from the policy).
 * Throws with the key that is wrong.
 */
export function parseSettings(text: string, image: string): SidecarSettings {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`--inject-sidecar: not JSON: ${(e as Error).message}`);
  }
  if (!isObj(raw)) throw new Error('--inject-sidecar: expected a JSON object');
  const s = defaultSettings(image);
  const str = (k: 'image' | 'pullPolicy' | 'runDir' | 'configPoll' | 'logLevel'): void => {
    if (raw[k] === undefined) return;
    if (typeof raw[k] !== 'string' || raw[k] === '') throw new Error(`--inject-sidecar: ${k} must be a non-empty string`);
    s[k] = raw[k];
  };
  const int = (k: 'port' | 'uid' | 'launcherWaitMs'): void => {
    if (raw[k] === undefined) return;
    if (!posInt(raw[k])) throw new Error(`--inject-sidecar: ${k} must be a positive integer`);
    s[k] = raw[k];
  };
  str('image');
  str('pullPolicy');
  str('runDir');
  str('configPoll');
  str('logLevel');
  int('port');
  int('uid');
  int('launcherWaitMs');
  if (s.port > 65535) throw new Error('--inject-sidecar: port must be at most 65535');
  if (!s.runDir.startsWith('/')) throw new Error('--inject-sidecar: runDir must be an absolute path');
  if (raw.extraArgs !== undefined) {
    if (!Array.isArray(raw.extraArgs) || !raw.extraArgs.every((a) => typeof a === 'string')) throw new Error('--inject-sidecar: extraArgs must be a list of strings');
    s.extraArgs = raw.extraArgs as string[];
  }
  if (raw.resources !== undefined) {
    if (!isObj(raw.resources)) throw new Error('--inject-sidecar: resources must be an object');
    s.resources = raw.resources;
  }
  if (raw.appProbes !== undefined) {
    if (!isObj(raw.appProbes)) throw new Error('--inject-sidecar: appProbes must be an object');
    for (const k of ['startup', 'readiness', 'liveness'] as const) {
      const p = raw.appProbes[k];
      if (p === undefined) continue;
      if (!isObj(p)) throw new Error(`--inject-sidecar: appProbes.${k} must be an object`);
      for (const f of ['periodSeconds', 'failureThreshold', 'timeoutSeconds'] as const) {
        if (p[f] === undefined) continue;
        if (!posInt(p[f])) throw new Error(`--inject-sidecar: appProbes.${k}.${f} must be a positive integer`);
        s.appProbes[k][f] = p[f];
      }
    }
  }
  if (raw.keeper !== undefined) s.keeper = parseKeeper(raw.keeper, s.keeper);
  return s;
}

/** The chart's sidecar.keeper values over the defaults. */
function parseKeeper(k: unknown, d: SidecarSettings['keeper']): SidecarSettings['keeper'] {
  if (!isObj(k)) throw new Error('--inject-sidecar: keeper must be an object');
  const out = { ...d };
  if (k.enabled !== undefined) {
    if (typeof k.enabled !== 'boolean') throw new Error('--inject-sidecar: keeper.enabled must be true or false');
    out.enabled = k.enabled;
  }
  if (k.maxFds !== undefined) {
    if (typeof k.maxFds !== 'number' || !Number.isInteger(k.maxFds) || k.maxFds < 0) throw new Error('--inject-sidecar: keeper.maxFds must be a non-negative integer');
    out.maxFds = k.maxFds;
  }
  if (k.resources !== undefined) {
    if (!isObj(k.resources)) throw new Error('--inject-sidecar: keeper.resources must be an object');
    out.resources = k.resources;
  }
  return out;
}
