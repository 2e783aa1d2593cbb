/**
 * Build the containers' settings: built-in defaults < flags < the file's
 * `defaults:` < the file's per-container entries. The config file (YAML) may name
 * containers the flags did not. Pure: text in, settings or ConfigError out.
 */
import { parse } from 'yaml';
import { ConfigError, checkContainerName, containerFromRaw, defaultsFromRaw, policyFromRaw, type Settings } from './validate.js';
import { DEFAULTS, type ContainerConfig } from './types.js';

export interface FlagSettings {
  containers: string[];
  /** Overrides of the defaults given as flags. */
  defaults: Partial<Settings>;
}

/** The FdStorePolicy a file was written from (by the operator). */
export interface PolicyRef {
  name: string;
  generation: number;
}

export interface LoadedConfig {
  /** The file's `policy:`, null without one (or without a file). */
  policy: PolicyRef | null;
  /** Every container: the flags' first, then the file's, in order. */
  containers: ContainerConfig[];
  /** Containers the file's `containers:` lists. */
  inFile: ReadonlySet<string>;
}

const TOP_FIELDS = new Set(['policy', 'defaults', 'containers']);

/**
 * One configuration from the flags and the file's text (null: no --config). An
 * empty file (or only comments) sets nothing: the kubelet projects an absent
 * annotation as an empty file. May name no container at all (see buildConfig).
 */
export function loadConfig(flags: FlagSettings, fileText: string | null, fileName = 'config'): LoadedConfig {
  let base: Settings = { ...DEFAULTS, ...flags.defaults };
  const byName = new Map<string, ContainerConfig>();
  const inFile = new Set<string>();
  let policy: PolicyRef | null = null;
  const d = fileText === null ? null : document(fileText, fileName);
  if (d !== null) {
    for (const k of Object.keys(d)) if (!TOP_FIELDS.has(k)) throw new ConfigError(`${fileName}: unknown field ${k}`);
    if (d.policy !== undefined && d.policy !== null) policy = policyFromRaw(d.policy, `${fileName}: policy`);
    // Before any container: the file's defaults apply to the flags' containers too.
    if (d.defaults !== undefined && d.defaults !== null) base = { ...base, ...defaultsFromRaw(d.defaults, `${fileName}: defaults`) };
  }
  for (const name of flags.containers) {
    checkContainerName(name);
    byName.set(name, { ...base, listen: [...base.listen], name });
  }
  const list = d?.containers ?? [];
  if (!Array.isArray(list)) throw new ConfigError(`${fileName}: containers must be a list`);
  list.forEach((raw, i) => {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${fileName}: containers[${i}] must be a mapping`);
    const c = containerFromRaw(raw as Record<string, unknown>, base, `${fileName}: containers[${i}]`);
    if (inFile.has(c.name)) throw new ConfigError(`${fileName}: container ${c.name} listed twice`);
    inFile.add(c.name);
    byName.set(c.name, c);
  });
  return { policy, containers: [...byName.values()], inFile };
}

/** The file's top-level mapping; null for an empty document. */
function document(text: string, fileName: string): Record<string, unknown> | null {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new ConfigError(`${fileName}: not valid YAML: ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) return null;
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`${fileName}: a mapping with a containers list`);
  return doc as Record<string, unknown>;
}

/** The configuration the agent starts with: at least one container. */
export function buildConfig(flags: FlagSettings, fileText: string | null, fileName = 'config'): ContainerConfig[] {
  return startConfig(flags, fileText, fileName).containers;
}

export function startConfig(flags: FlagSettings, fileText: string | null, fileName = 'config'): LoadedConfig {
  const loaded = loadConfig(flags, fileText, fileName);
  if (loaded.containers.length === 0) throw new ConfigError('no containers: give --container NAME or a config file listing containers');
  return loaded;
}

export interface Carried {
  /** What to apply: every container the agent has, none left out. */
  containers: ContainerConfig[];
  /** Containers whose settings come from an earlier file (kept, see carryOver). */
  kept: ReadonlySet<string>;
  /** Containers the previous file listed and this one does not (to log once). */
  gone: string[];
}

/**
 * A reload's settings. A container the file listed before and lists no more keeps
 * its last settings (and its store) until the file lists it again or the agent
 * restarts: a file that lost an entry (an edit, a policy that stopped matching)
 * must not close stored fds or change a running app's settings by accident.
 * `kept` comes from the previous carryOver (empty at start).
 */
export function carryOver(
  current: readonly ContainerConfig[],
  prevInFile: ReadonlySet<string>,
  prevKept: ReadonlySet<string>,
  next: LoadedConfig,
): Carried {
  const byName = new Map(next.containers.map((c) => [c.name, c]));
  const kept = new Set<string>();
  const gone: string[] = [];
  for (const c of current) {
    if (next.inFile.has(c.name)) continue;
    const wasInFile = prevInFile.has(c.name);
    if (!wasInFile && !prevKept.has(c.name) && byName.has(c.name)) continue; // flags' only: follows flags and defaults
    if (wasInFile) gone.push(c.name);
    kept.add(c.name);
    byName.set(c.name, c);
  }
  return { containers: [...byName.values()], kept, gone };
}
