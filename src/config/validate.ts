/**
 * Validation of names and per-container settings, shared by flags and the config
 * file. The fields and limits come from config/schema.ts, the schema the CRD embeds;
 * test/config/schema.test.ts proves both accept and refuse the same entries. Errors
 * carry a code and say what to fix.
 */
import { isValidFdName, parseNotifyAccess } from '../notify/values.js';
import { listenAddressProblem } from './address.js';
import {
  BACKLOG_DEFAULT,
  BACKLOG_MAX,
  CONTAINER_FIELDS,
  CONTAINER_NAME_MAX,
  CONTAINER_NAME_PATTERN,
  LISTEN_FIELDS,
  LISTEN_KINDS,
  LISTEN_MAX,
  PRESERVE_VALUES,
  SECONDS_MAX,
  STORE_MAX_LIMIT,
  TIME_SPAN_TEXT_MAX,
} from './schema.js';
import { DEFAULTS, type ContainerConfig, type ListenConfig, type Preserve } from './types.js';
import { secondsOf } from './timespan.js';

export class ConfigError extends Error {
  readonly code = 'ECONFIG';
}

/** Kubernetes container names are DNS-1123 labels. */
const DNS1123_LABEL = new RegExp(CONTAINER_NAME_PATTERN);

export function checkContainerName(name: string): void {
  if (name.length > CONTAINER_NAME_MAX || !DNS1123_LABEL.test(name)) {
    throw new ConfigError(
      `invalid container name ${JSON.stringify(name)}: must be a DNS-1123 label (lowercase letters, digits, '-', at most 63)`,
    );
  }
}

const PRESERVE: readonly Preserve[] = PRESERVE_VALUES;
/** The fields the schema (config/schema.ts) defines: the one list of what a config may say. */
const KNOWN_CONTAINER_FIELDS: ReadonlySet<string> = new Set(CONTAINER_FIELDS);
const KNOWN_LISTEN_FIELDS: ReadonlySet<string> = new Set(LISTEN_FIELDS);

type Raw = Record<string, unknown>;
export type Settings = Omit<ContainerConfig, 'name'>;

/**
 * `listen:` stays per container: an address can be bound once, so a socket in the
 * defaults would make every second container fail to start.
 */
const DEFAULT_FIELDS: ReadonlySet<string> = new Set([...KNOWN_CONTAINER_FIELDS].filter((k) => k !== 'name' && k !== 'listen'));

/** Merge a raw per-container object (from YAML/CRD) over a base; unknown keys are errors. */
export function containerFromRaw(raw: Raw, base: Settings, where: string): ContainerConfig {
  for (const k of Object.keys(raw)) if (!KNOWN_CONTAINER_FIELDS.has(k)) throw new ConfigError(`${where}: unknown field ${k}`);
  if (typeof raw.name !== 'string') throw new ConfigError(`${where}: name is required`);
  checkContainerName(raw.name);
  return { ...base, listen: [...base.listen], ...settingsFromRaw(raw, where), name: raw.name };
}

/** The file's `defaults:` mapping: the fields it sets, to merge over the flags'. */
export function defaultsFromRaw(raw: unknown, where: string): Partial<Settings> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${where}: a mapping of container settings`);
  for (const k of Object.keys(raw)) {
    if (k === 'listen' || k === 'name') throw new ConfigError(`${where}: ${k} is per container, not a default`);
    if (!DEFAULT_FIELDS.has(k)) throw new ConfigError(`${where}: unknown field ${k}`);
  }
  return settingsFromRaw(raw as Raw, where);
}

/** The settings raw sets (validated), without name. */
function settingsFromRaw(raw: Raw, where: string): Partial<Settings> {
  const c: Partial<Settings> = {};
  if (raw.fileDescriptorStoreMax !== undefined) c.fileDescriptorStoreMax = intIn(raw.fileDescriptorStoreMax, 0, STORE_MAX_LIMIT, `${where}.fileDescriptorStoreMax`);
  if (raw.notifyAccess !== undefined) c.notifyAccess = notifyAccess(raw.notifyAccess, `${where}.notifyAccess`);
  if (raw.watchdogSec !== undefined) c.watchdogSec = secondsIn(raw.watchdogSec, SECONDS_MAX, `${where}.watchdogSec`);
  if (raw.timeoutStartSec !== undefined) c.timeoutStartSec = secondsIn(raw.timeoutStartSec, SECONDS_MAX, `${where}.timeoutStartSec`);
  if (raw.releaseAfterSec !== undefined) c.releaseAfterSec = secondsIn(raw.releaseAfterSec, SECONDS_MAX, `${where}.releaseAfterSec`);
  if (raw.preserve !== undefined) {
    if (!PRESERVE.includes(raw.preserve as Preserve)) throw new ConfigError(`${where}.preserve: one of ${PRESERVE.join(', ')}`);
    c.preserve = raw.preserve as Preserve;
  }
  if (raw.watchdogSignal !== undefined) {
    if (typeof raw.watchdogSignal !== 'boolean') throw new ConfigError(`${where}.watchdogSignal: true or false`);
    c.watchdogSignal = raw.watchdogSignal;
  }
  if (raw.listen !== undefined) {
    if (!Array.isArray(raw.listen)) throw new ConfigError(`${where}.listen: a list`);
    if (raw.listen.length > LISTEN_MAX) throw new ConfigError(`${where}.listen: at most ${LISTEN_MAX} sockets`);
    c.listen = raw.listen.map((l, i) => listenFromRaw(l as Raw, where, i, String(raw.name)));
  }
  return c;
}

/** Kubernetes object names (an FdStorePolicy's): DNS-1123 subdomains. */
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN_MAX = 253;
const POLICY_FIELDS = new Set(['name', 'generation']);

/** The file's `policy:`: which FdStorePolicy (and generation) the operator wrote it from. */
export function policyFromRaw(raw: unknown, where: string): { name: string; generation: number } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${where}: a mapping with name and generation`);
  const r = raw as Raw;
  for (const k of Object.keys(r)) if (!POLICY_FIELDS.has(k)) throw new ConfigError(`${where}: unknown field ${k}`);
  if (typeof r.name !== 'string' || r.name.length > DNS1123_SUBDOMAIN_MAX || !DNS1123_SUBDOMAIN.test(r.name)) {
    throw new ConfigError(`${where}.name: the FdStorePolicy's name (a DNS-1123 subdomain, at most ${DNS1123_SUBDOMAIN_MAX})`);
  }
  // metadata.generation: a positive int64; JSON readers are exact up to 2^53.
  const generation = intIn(r.generation, 0, Number.MAX_SAFE_INTEGER, `${where}.generation`);
  return { name: r.name, generation };
}

function listenFromRaw(raw: Raw, containerWhere: string, index: number, container: string): ListenConfig {
  const where = `${containerWhere}.listen[${index}]`;
  if (typeof raw !== 'object' || raw === null) throw new ConfigError(`${where}: an object`);
  for (const k of Object.keys(raw)) if (!KNOWN_LISTEN_FIELDS.has(k)) throw new ConfigError(`${where}: unknown field ${k}`);
  if (raw.reusePort !== undefined && typeof raw.reusePort !== 'boolean') throw new ConfigError(`${where}.reusePort: true or false`);
  const kind = raw.kind ?? 'tcp';
  if (!(LISTEN_KINDS as readonly unknown[]).includes(kind)) throw new ConfigError(`${where}.kind: one of ${LISTEN_KINDS.join(', ')}`);
  if (typeof raw.address !== 'string' || raw.address === '') throw new ConfigError(`${where}.address is required`);
  if (typeof raw.name !== 'string' || raw.name === '' || !isValidFdName(raw.name)) {
    throw new ConfigError(`${where}.name is required: the LISTEN_FDNAMES entry (1-255 printable ASCII characters, no ':')`);
  }
  const backlog = raw.backlog === undefined ? BACKLOG_DEFAULT : intIn(raw.backlog, 1, BACKLOG_MAX, `${where}.backlog`);
  // The form of the address, checked here so that a reloaded file with a bad one is refused whole.
  const problem = listenAddressProblem(kind as ListenConfig['kind'], raw.address);
  if (problem !== null) {
    // The agent's start check words it the same way (agent.ts checkListen).
    const entry = `container ${container}: listen[${index}] ${raw.name}`;
    throw new ConfigError(`${containerWhere}: ${entry}: ${kind} address ${JSON.stringify(raw.address)}: ${problem}`);
  }
  return {
    name: raw.name,
    kind: kind as ListenConfig['kind'],
    address: raw.address,
    backlog,
    reusePort: raw.reusePort === undefined ? false : raw.reusePort === true,
  };
}

export function notifyAccess(v: unknown, where: string) {
  const na = typeof v === 'string' ? parseNotifyAccess(v) : null;
  if (na === null) throw new ConfigError(`${where}: one of none, main, exec, all`);
  return na;
}

export function intIn(v: unknown, min: number, max: number, where: string): number {
  const n = typeof v === 'string' && /^[0-9]+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${where}: an integer from ${min} to ${max}`);
  }
  return n;
}

export { SECONDS_MAX };

/**
 * A duration setting: a number of seconds (YAML number, or a flag's plain
 * number), or a systemd time span ("5s", "1min 30s", "500ms", "infinity" = off).
 */
export function secondsIn(v: unknown, max: number, where: string): number {
  let n: number;
  try {
    if (typeof v !== 'string' && typeof v !== 'number') throw new Error('a number of seconds or a time span such as 5s, 1min 30s');
    if (typeof v === 'string' && v.length > TIME_SPAN_TEXT_MAX) throw new Error(`a time span of at most ${TIME_SPAN_TEXT_MAX} characters`);
    n = secondsOf(v);
  } catch (e) {
    throw new ConfigError(`${where}: ${(e as Error).message}`);
  }
  if (n > max) throw new ConfigError(`${where}: at most ${max} seconds`);
  return n;
}

export { DEFAULTS };
