// The config file's policy: and defaults: (built-in < flags < file defaults < file
// per-container), the empty file, and carryOver (what a reload keeps).
import { describe, expect, it } from 'vitest';
import { carryOver, loadConfig, startConfig, type FlagSettings } from '../../src/config/load.js';
import { DEFAULTS, type ContainerConfig } from '../../src/config/types.js';
import { ConfigError } from '../../src/config/validate.js';

const flags = (containers: string[], defaults: FlagSettings['defaults'] = {}): FlagSettings => ({ containers, defaults });

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

const get = (list: readonly ContainerConfig[], name: string): ContainerConfig => {
  const c = list.find((x) => x.name === name);
  if (!c) throw new Error(`no ${name}`);
  return c;
};

describe('defaults: between the flags and the per-container entries', () => {
  const file = [
    'defaults: {fileDescriptorStoreMax: 8192, watchdogSec: 10s, notifyAccess: main}',
    'containers:',
    '  - {name: web, watchdogSec: 2}',
    '  - {name: db}',
  ].join('\n');

  it('applies to the flags\' containers and the file\'s, under each entry\'s own fields', () => {
    const { containers } = loadConfig(flags(['app'], { fileDescriptorStoreMax: 16, watchdogSec: 1, timeoutStartSec: 7 }), file);
    expect(containers.map((c) => c.name)).toEqual(['app', 'web', 'db']);
    // flags < defaults
    expect(get(containers, 'app')).toEqual({ ...DEFAULTS, name: 'app', fileDescriptorStoreMax: 8192, watchdogSec: 10, notifyAccess: 'main', timeoutStartSec: 7 });
    // defaults < the entry
    expect(get(containers, 'web')).toMatchObject({ fileDescriptorStoreMax: 8192, watchdogSec: 2, notifyAccess: 'main', timeoutStartSec: 7 });
    expect(get(containers, 'db')).toMatchObject({ fileDescriptorStoreMax: 8192, watchdogSec: 10, timeoutStartSec: 7 });
  });

  it('an entry for a flags\' container wins over the defaults for that container only', () => {
    const { containers } = loadConfig(flags(['app', 'side']), 'defaults: {preserve: "no"}\ncontainers: [{name: app, preserve: "yes"}]');
    expect(get(containers, 'app').preserve).toBe('yes');
    expect(get(containers, 'side').preserve).toBe('no');
  });

  it('takes every container field but name and listen; unknown fields are errors', () => {
    const all = 'defaults: {fileDescriptorStoreMax: 1, notifyAccess: exec, watchdogSec: 1, timeoutStartSec: 2, preserve: "no", watchdogSignal: true, releaseAfterSec: 3}';
    expect(get(loadConfig(flags(['a']), all).containers, 'a')).toEqual({
      name: 'a', fileDescriptorStoreMax: 1, notifyAccess: 'exec', watchdogSec: 1, timeoutStartSec: 2, preserve: 'no', watchdogSignal: true, releaseAfterSec: 3, listen: [],
    });
    expect(configError(() => loadConfig(flags(['a']), 'defaults: {listen: []}', 'f'))).toBe('f: defaults: listen is per container, not a default');
    expect(configError(() => loadConfig(flags(['a']), 'defaults: {name: x}', 'f'))).toBe('f: defaults: name is per container, not a default');
    expect(configError(() => loadConfig(flags(['a']), 'defaults: {fileDescriptorStoreMaks: 1}', 'f'))).toBe('f: defaults: unknown field fileDescriptorStoreMaks');
    expect(configError(() => loadConfig(flags(['a']), 'defaults: [1]', 'f'))).toBe('f: defaults: a mapping of container settings');
    expect(configError(() => loadConfig(flags(['a']), 'defaults: {watchdogSec: soon}', 'f'))).toMatch(/^f: defaults\.watchdogSec: "soon" is not a time span/);
    expect(configError(() => loadConfig(flags(['a']), 'default: {}', 'f'))).toBe('f: unknown field default');
  });
});

describe('policy:', () => {
  it('is read and kept, null without it', () => {
    expect(loadConfig(flags(['a']), 'policy: {name: web, generation: 3}').policy).toEqual({ name: 'web', generation: 3 });
    expect(loadConfig(flags(['a']), 'containers: []').policy).toBeNull();
    expect(loadConfig(flags(['a']), null).policy).toBeNull();
  });

  it('must name a Kubernetes object and a generation', () => {
    expect(configError(() => loadConfig(flags(['a']), 'policy: {name: Web, generation: 1}', 'f'))).toMatch(/^f: policy\.name: the FdStorePolicy's name/);
    expect(configError(() => loadConfig(flags(['a']), `policy: {name: ${'a'.repeat(254)}, generation: 1}`, 'f'))).toMatch(/^f: policy\.name/);
    expect(loadConfig(flags(['a']), `policy: {name: ${'a'.repeat(253)}, generation: 1}`).policy?.name).toHaveLength(253);
    expect(configError(() => loadConfig(flags(['a']), 'policy: {name: web}', 'f'))).toMatch(/^f: policy\.generation: an integer/);
    expect(configError(() => loadConfig(flags(['a']), 'policy: {name: web, generation: -1}', 'f'))).toMatch(/^f: policy\.generation/);
    expect(configError(() => loadConfig(flags(['a']), 'policy: {name: web, generation: 1, uid: x}', 'f'))).toBe('f: policy: unknown field uid');
    expect(configError(() => loadConfig(flags(['a']), 'policy: web', 'f'))).toBe('f: policy: a mapping with name and generation');
  });
});

describe('the empty file', () => {
  it.each(['', '\n', '# nothing yet\n', '---\n'])('%j sets nothing: the flags alone', (text) => {
    const loaded = loadConfig(flags(['app'], { watchdogSec: 4 }), text);
    expect(loaded).toEqual({ policy: null, containers: [{ ...DEFAULTS, name: 'app', watchdogSec: 4 }], inFile: new Set() });
  });

  it('with no container flag is a valid reload but not a start', () => {
    expect(loadConfig(flags([]), '').containers).toEqual([]);
    expect(configError(() => startConfig(flags([]), ''))).toMatch(/^no containers/);
  });
});

describe('carryOver: a reload never loses a container', () => {
  const start = loadConfig(flags(['app'], {}), 'containers: [{name: app, fileDescriptorStoreMax: 100}, {name: db, watchdogSec: 3}]');

  it('a container no longer listed keeps its last settings, and is reported gone once', () => {
    const next = loadConfig(flags(['app']), 'defaults: {fileDescriptorStoreMax: 8}');
    const c1 = carryOver(start.containers, start.inFile, new Set(), next);
    expect(c1.gone.sort()).toEqual(['app', 'db']);
    expect([...c1.kept].sort()).toEqual(['app', 'db']);
    // Not lowered to the new default 8: the entry went, its settings stay.
    expect(get(c1.containers, 'app').fileDescriptorStoreMax).toBe(100);
    expect(get(c1.containers, 'db')).toMatchObject({ watchdogSec: 3 });
    const again = carryOver(c1.containers, next.inFile, c1.kept, next);
    expect(again.gone).toEqual([]);
    expect(get(again.containers, 'app').fileDescriptorStoreMax).toBe(100);
    // Listed again: its new entry applies.
    const back = loadConfig(flags(['app']), 'containers: [{name: app, fileDescriptorStoreMax: 5}]');
    const c3 = carryOver(again.containers, next.inFile, again.kept, back);
    expect(get(c3.containers, 'app').fileDescriptorStoreMax).toBe(5);
    expect([...c3.kept]).toEqual(['db']);
  });

  it('a flags\' container never listed follows the flags and the file\'s defaults', () => {
    const first = loadConfig(flags(['app']), '');
    const next = loadConfig(flags(['app']), 'defaults: {fileDescriptorStoreMax: 8}');
    const c = carryOver(first.containers, first.inFile, new Set(), next);
    expect(c).toEqual({ containers: [{ ...DEFAULTS, name: 'app', fileDescriptorStoreMax: 8 }], kept: new Set(), gone: [] });
  });

  it('a new container in the file is in the result', () => {
    const next = loadConfig(flags(['app']), 'containers: [{name: app, fileDescriptorStoreMax: 100}, {name: db, watchdogSec: 3}, {name: new}]');
    const c = carryOver(start.containers, start.inFile, new Set(), next);
    expect(c.containers.map((x) => x.name)).toEqual(['app', 'db', 'new']);
    expect(c.gone).toEqual([]);
  });
});
