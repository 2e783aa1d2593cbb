// Settings: built-in defaults < flags < config file; names; the fd budget check at start.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BASE_RESERVED_FDS,
  HTTP_MAX_CONNECTIONS,
  NOTIFY_RECEIVE_RESERVED_FDS,
  PER_CONTAINER_RESERVED_FDS,
  checkFdBudget,
  largestStoreMax,
  launcherFds,
  requiredFds,
} from '../../src/agent/limits.js';
import { QUEUE_MAX } from '../../src/restore/deadlines.js';
import { REPO } from '../helpers/proc.js';
import { buildConfig, type FlagSettings } from '../../src/config/load.js';
import { readConfigFile } from '../../src/config/file.js';
import { DEFAULTS, type ContainerConfig } from '../../src/config/types.js';
import { ConfigError, checkContainerName, intIn } from '../../src/config/validate.js';

function flags(containers: string[], defaults: FlagSettings['defaults'] = {}): FlagSettings {
  return { containers, defaults };
}

/** Run fn and return the ConfigError it throws. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).code).toBe('ECONFIG');
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

function byName(list: ContainerConfig[], name: string): ContainerConfig {
  const c = list.find((x) => x.name === name);
  if (!c) throw new Error(`no container ${name} in ${list.map((x) => x.name).join(',')}`);
  return c;
}

describe('defaults < flags < file', () => {
  it('a flag-only container gets the built-in defaults', () => {
    const [c] = buildConfig(flags(['app']), null);
    expect(c).toEqual({ ...DEFAULTS, name: 'app' });
  });

  it('flag defaults override built-in defaults for every container', () => {
    const list = buildConfig(flags(['a', 'b'], { watchdogSec: 5, notifyAccess: 'main' }), null);
    expect(list.map((c) => [c.name, c.watchdogSec, c.notifyAccess])).toEqual([
      ['a', 5, 'main'],
      ['b', 5, 'main'],
    ]);
  });

  it('the file overrides flags for a container named in both; unset fields keep the flag default', () => {
    const file = 'containers:\n  - name: app\n    watchdogSec: 30\n';
    const [c] = buildConfig(flags(['app'], { watchdogSec: 5, timeoutStartSec: 7 }), file);
    expect(c!.watchdogSec).toBe(30);
    expect(c!.timeoutStartSec).toBe(7);
  });

  it('flag defaults apply to containers only the file names', () => {
    const file = 'containers:\n  - name: db\n    preserve: "yes"\n';
    const list = buildConfig(flags(['app'], { fileDescriptorStoreMax: 16 }), file);
    expect(list.map((c) => c.name)).toEqual(['app', 'db']);
    expect(byName(list, 'db')).toMatchObject({ fileDescriptorStoreMax: 16, preserve: 'yes' });
  });

  it('a file alone is enough', () => {
    const file = [
      'containers:',
      '  - name: web',
      '    fileDescriptorStoreMax: 0',
      '    notifyAccess: exec',
      '    watchdogSec: 2.5',
      '    timeoutStartSec: 90',
      '    preserve: "no"',
      '    watchdogSignal: true',
      '    releaseAfterSec: 600',
    ].join('\n');
    const [c] = buildConfig(flags([]), file);
    expect(c).toEqual({
      ...DEFAULTS,
      name: 'web',
      fileDescriptorStoreMax: 0,
      notifyAccess: 'exec',
      watchdogSec: 2.5,
      timeoutStartSec: 90,
      preserve: 'no',
      watchdogSignal: true,
      releaseAfterSec: 600,
    });
  });

  it('F3.1: fileDescriptorStoreMax accepts a decimal string (YAML quoting)', () => {
    const [c] = buildConfig(flags([]), 'containers:\n  - name: a\n    fileDescriptorStoreMax: "12"\n');
    expect(c!.fileDescriptorStoreMax).toBe(12);
  });

  it('an empty file is no file', () => {
    expect(buildConfig(flags(['app']), '').map((c) => c.name)).toEqual(['app']);
    expect(buildConfig(flags(['app']), '# only a comment\n').map((c) => c.name)).toEqual(['app']);
  });

  it('the listen list is parsed with defaults and not shared between containers', () => {
    const file = [
      'containers:',
      '  - name: a',
      '    listen:',
      '      - name: http',
      '        address: "0.0.0.0:8080"',
      '      - name: dns',
      '        kind: udp',
      '        address: "[::]:53"',
      '        backlog: 16',
      '        reusePort: true',
      '  - name: b',
    ].join('\n');
    const list = buildConfig(flags([]), file);
    expect(byName(list, 'a').listen).toEqual([
      { name: 'http', kind: 'tcp', address: '0.0.0.0:8080', backlog: 4096, reusePort: false },
      { name: 'dns', kind: 'udp', address: '[::]:53', backlog: 16, reusePort: true },
    ]);
    expect(byName(list, 'b').listen).toEqual([]);
    expect(byName(list, 'b').listen).not.toBe(DEFAULTS.listen);
  });
});

describe('rejected config', () => {
  it('no containers at all', () => {
    expect(configError(() => buildConfig(flags([]), null)).message).toMatch(/no containers/);
    expect(configError(() => buildConfig(flags([]), 'containers: []\n')).message).toMatch(/no containers/);
  });

  it('unknown top-level keys', () => {
    const e = configError(() => buildConfig(flags(['app']), 'containers: []\nextra: 1\n', 'fdstore.yaml'));
    expect(e.message).toMatch(/fdstore\.yaml: unknown field extra/);
  });

  it('unknown per-container keys (typos are errors, not silently ignored)', () => {
    const e = configError(() => buildConfig(flags([]), 'containers:\n  - name: app\n    watchdogSecs: 5\n'));
    expect(e.message).toMatch(/containers\[0\]: unknown field watchdogSecs/);
  });

  it('an unknown listen kind', () => {
    const file = 'containers:\n  - name: a\n    listen:\n      - name: x\n        kind: sctp\n        address: "1:2"\n';
    expect(configError(() => buildConfig(flags([]), file)).message).toMatch(/listen\[0\]\.kind/);
  });

  it('unknown keys in a listen entry (a typo must not be silently ignored)', () => {
    const file = 'containers:\n  - name: a\n    listen:\n      - name: x\n        address: "0.0.0.0:1"\n        reuseport: true\n';
    expect(configError(() => buildConfig(flags([]), file)).message).toMatch(/listen\[0\].*reuseport/);
  });

  it('a non-boolean listen reusePort (like watchdogSignal)', () => {
    const file = 'containers:\n  - name: a\n    listen:\n      - name: x\n        address: "0.0.0.0:1"\n        reusePort: "yes"\n';
    expect(configError(() => buildConfig(flags([]), file)).message).toMatch(/reusePort/);
  });

  it.each([
    ['not YAML', 'containers: [\n', /not valid YAML/],
    ['a list at top level', '- name: app\n', /a mapping/],
    ['a scalar at top level', 'hello\n', /a mapping/],
    ['containers not a list', 'containers: {name: app}\n', /containers must be a list/],
    ['a container that is not a mapping', 'containers: [app]\n', /containers\[0\] must be a mapping/],
    ['a container without a name', 'containers:\n  - watchdogSec: 1\n', /name is required/],
    ['a negative max', 'containers:\n  - name: a\n    fileDescriptorStoreMax: -1\n', /fileDescriptorStoreMax/],
    ['a fractional max', 'containers:\n  - name: a\n    fileDescriptorStoreMax: 1.5\n', /fileDescriptorStoreMax/],
    ['a max above 2^30', `containers:\n  - name: a\n    fileDescriptorStoreMax: ${2 ** 30 + 1}\n`, /fileDescriptorStoreMax/],
    ['a bad notifyAccess', 'containers:\n  - name: a\n    notifyAccess: everyone\n', /notifyAccess: one of none, main, exec, all/],
    ['a watchdogSec that is no time span', 'containers:\n  - name: a\n    watchdogSec: 5 parsecs\n', /watchdogSec: "5 parsecs" is not a time span/],
    ['a negative timeoutStartSec', 'containers:\n  - name: a\n    timeoutStartSec: -1\n', /timeoutStartSec/],
    ['a bad preserve', 'containers:\n  - name: a\n    preserve: always\n', /preserve: one of no, restart, yes/],
    ['a non-boolean watchdogSignal', 'containers:\n  - name: a\n    watchdogSignal: "yes"\n', /watchdogSignal/],
    ['listen not a list', 'containers:\n  - name: a\n    listen: http\n', /listen: a list/],
    ['a listen without address', 'containers:\n  - name: a\n    listen:\n      - name: x\n', /address is required/],
    ['a listen name with ":"', 'containers:\n  - name: a\n    listen:\n      - name: "a:b"\n        address: "x:1"\n', /listen\[0\]\.name/],
    ['a listen backlog of 0', 'containers:\n  - name: a\n    listen:\n      - name: x\n        address: "x:1"\n        backlog: 0\n', /backlog/],
  ])('%s', (_what, file, want) => {
    expect(configError(() => buildConfig(flags([]), file)).message).toMatch(want);
  });

  it('a container listed twice in the file', () => {
    const file = 'containers:\n  - name: app\n  - name: app\n';
    expect(configError(() => buildConfig(flags([]), file)).message).toMatch(/container app listed twice/);
  });

  it('a container listed twice in the file is an error even when a flag also names it', () => {
    const file = 'containers:\n  - name: app\n    watchdogSec: 1\n  - name: app\n    watchdogSec: 2\n';
    expect(configError(() => buildConfig(flags(['app']), file)).message).toMatch(/container app listed twice/);
  });

  it('the same name twice in the flags collapses to one container', () => {
    expect(buildConfig(flags(['app', 'app']), null)).toHaveLength(1);
  });
});

describe('container names (DNS-1123 labels)', () => {
  it.each(['a', 'app', 'web-1', '0', '1a', 'a'.repeat(63), 'a-b-c'])('%j is valid', (name) => {
    expect(() => checkContainerName(name)).not.toThrow();
  });

  it.each(['', 'App', 'web_1', '-a', 'a-', 'a.b', 'a b', 'a/b', 'ä', 'a'.repeat(64), '../x'])('%j is rejected', (name) => {
    expect(configError(() => checkContainerName(name)).message).toMatch(/DNS-1123/);
  });

  it('bad names from flags are rejected', () => {
    expect(configError(() => buildConfig(flags(['Bad_Name']), null)).message).toMatch(/"Bad_Name"/);
  });

  it('bad names from the file are rejected', () => {
    expect(configError(() => buildConfig(flags([]), 'containers:\n  - name: ../etc\n')).message).toMatch(/DNS-1123/);
  });

  it('a non-string name is rejected', () => {
    expect(configError(() => buildConfig(flags([]), 'containers:\n  - name: 12\n')).message).toMatch(/name is required/);
  });
});

describe('intIn', () => {
  it('accepts integers and decimal strings in range', () => {
    expect(intIn(5, 0, 10, 'x')).toBe(5);
    expect(intIn('10', 0, 10, 'x')).toBe(10);
  });

  it.each([11, -1, 1.5, '1.5', '0x5', '', null, true, Number.NaN])('rejects %j', (v) => {
    expect(configError(() => intIn(v, 0, 10, 'field')).message).toMatch(/field: an integer from 0 to 10/);
  });
});

describe('readConfigFile', () => {
  it('reads a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fdstore-config-'));
    try {
      const p = join(dir, 'c.yaml');
      writeFileSync(p, 'containers: []\n');
      expect(readConfigFile(p)).toBe('containers: []\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a missing file is a ConfigError naming the path', () => {
    const e = configError(() => readConfigFile('/nonexistent/fdstore.yaml'));
    expect(e.message).toMatch(/\/nonexistent\/fdstore\.yaml/);
  });
});

function cfg(name: string, max: number, listens = 0): ContainerConfig {
  const listen = Array.from({ length: listens }, (_, i) => ({
    name: `l${i}`,
    kind: 'tcp' as const,
    address: `0.0.0.0:${8000 + i}`,
    backlog: 1,
    reusePort: false,
  }));
  return { ...DEFAULTS, name, fileDescriptorStoreMax: max, listen };
}

describe('limits: fd budget against RLIMIT_NOFILE', () => {
  it('requiredFds = base + HTTP cap + one datagram in reception + per container (max + reserved + listen sockets)', () => {
    const fixed = BASE_RESERVED_FDS + HTTP_MAX_CONNECTIONS + NOTIFY_RECEIVE_RESERVED_FDS;
    expect(requiredFds([])).toBe(fixed);
    expect(requiredFds([cfg('a', 1000), cfg('b', 500, 2)])).toBe(fixed + 1000 + 500 + 2 * PER_CONTAINER_RESERVED_FDS + 2);
  });

  it('the per-container reserve holds every restore connection one container can open: one in flight, QUEUE_MAX waiting, one being refused', () => {
    // Counted by hand from restore/server.ts: the notify and restore sockets, the run's
    // pidfd, and a socket and a pidfd per connection (test/restore/stalled.test.ts
    // measures the agent's fds at that peak).
    expect(PER_CONTAINER_RESERVED_FDS).toBe(2 + 1 + (1 + QUEUE_MAX + 1) * 2);
    // docs/configuration.md's table and its largest store say the same numbers.
    const doc = readFileSync(join(REPO, 'docs', 'configuration.md'), 'utf8');
    expect(doc).toContain(`| each container | ${PER_CONTAINER_RESERVED_FDS} + one per \`listen:\` socket |`);
    expect(doc).toContain(`up to L - ${20_000 - largestStoreMax(20_000)} (${largestStoreMax(20_000).toLocaleString('en-US')} under 20,000`);
  });

  it('fits exactly: no error', () => {
    const configs = [cfg('a', 1000)];
    expect(() => checkFdBudget(configs, requiredFds(configs))).not.toThrow();
  });

  it('a negative hard limit (unlimited) never fails', () => {
    expect(() => checkFdBudget([cfg('a', 1 << 30)], -1)).not.toThrow();
  });

  it('too many: a ConfigError whose message gives the numbers and names the stores', () => {
    const configs = [cfg('app', 1000), cfg('web', 500, 1)];
    const need = requiredFds(configs);
    const reserved = need - 1500;
    const e = configError(() => checkFdBudget(configs, 1024));
    expect(e.message).toContain(`need ${need} fds`);
    expect(e.message).toContain('app=1000');
    expect(e.message).toContain('web=500');
    expect(e.message).toContain(`${reserved} reserved`);
    expect(e.message).toContain('RLIMIT_NOFILE allows 1024');
    expect(e.message).toMatch(/lower fileDescriptorStoreMax or raise/);
  });

  it('the largest accepted store also fits its launcher under the same limit (issue 7 item 7)', () => {
    for (const hard of [1024, 4096, 20_000, 1_048_576]) {
      const max = largestStoreMax(hard);
      expect(() => checkFdBudget([cfg('a', max)], hard)).not.toThrow();
      expect(launcherFds(cfg('a', max))).toBeLessThanOrEqual(hard);
      expect(() => checkFdBudget([cfg('a', max + 1)], hard)).toThrow(ConfigError);
    }
    // 19,866 was accepted under 20,000 and could not be restored.
    expect(() => checkFdBudget([cfg('a', 19_866)], 20_000)).toThrow(ConfigError);
  });

  it('one fd short fails', () => {
    const configs = [cfg('a', 10)];
    expect(() => checkFdBudget(configs, requiredFds(configs) - 1)).toThrow(ConfigError);
  });
});
