/**
 * Build the containers' settings: built-in defaults < flags < config file.
 * The config file (YAML) may name containers the flags did not.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { ConfigError, checkContainerName, containerFromRaw } from './validate.js';
import { DEFAULTS, type ContainerConfig } from './types.js';

export interface FlagSettings {
  containers: string[];
  /** Overrides of the defaults given as flags. */
  defaults: Partial<Omit<ContainerConfig, 'name'>>;
}

export function buildConfig(flags: FlagSettings, fileText: string | null, fileName = 'config'): ContainerConfig[] {
  const base = { ...DEFAULTS, ...flags.defaults };
  const byName = new Map<string, ContainerConfig>();
  for (const name of flags.containers) {
    checkContainerName(name);
    byName.set(name, { ...base, listen: [...base.listen], name });
  }
  if (fileText !== null) {
    let doc: unknown;
    try {
      doc = parse(fileText);
    } catch (e) {
      throw new ConfigError(`${fileName}: not valid YAML: ${(e as Error).message}`);
    }
    const inFile = new Set<string>();
    if (doc !== null && doc !== undefined) {
      if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`${fileName}: a mapping with a containers list`);
      const d = doc as Record<string, unknown>;
      for (const k of Object.keys(d)) if (k !== 'containers') throw new ConfigError(`${fileName}: unknown field ${k}`);
      const list = d.containers ?? [];
      if (!Array.isArray(list)) throw new ConfigError(`${fileName}: containers must be a list`);
      list.forEach((raw, i) => {
        if (typeof raw !== 'object' || raw === null) throw new ConfigError(`${fileName}: containers[${i}] must be a mapping`);
        const c = containerFromRaw(raw as Record<string, unknown>, base, `${fileName}: containers[${i}]`);
        if (inFile.has(c.name)) throw new ConfigError(`${fileName}: container ${c.name} listed twice`);
        inFile.add(c.name);
        byName.set(c.name, c);
      });
    }
  }
  if (byName.size === 0) throw new ConfigError('no containers: give --container NAME or a config file listing containers');
  return [...byName.values()];
}

export function readConfigFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`);
  }
}
