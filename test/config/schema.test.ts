// config/schema.ts is the one source of the settings: the agent's validator takes its
// field names from it, and both must accept and refuse the same entries. Where the
// schema cannot say what the agent checks, the difference is listed here, so that a
// change on either side shows.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listenAddressProblem } from '../../src/config/address.js';
import {
  CONTAINER_FIELDS,
  CONTAINER_SCHEMA,
  IP_PORT_PATTERN,
  LISTEN_FIELDS,
  SETTINGS_FIELDS,
  SETTINGS_SCHEMA,
  TIME_SPAN_PATTERN,
  UNIX_ADDRESS_PATTERN,
} from '../../src/config/schema.js';
import { parseTimeSpanUsec } from '../../src/config/timespan.js';
import { DEFAULTS, type ContainerConfig, type ListenConfig } from '../../src/config/types.js';
import { containerFromRaw } from '../../src/config/validate.js';
import { makeAjv, toAjvSchema } from '../crd/schema-check.js';

const root = join(import.meta.dirname, '..', '..');
const schemaAccepts = makeAjv().compile(toAjvSchema(CONTAINER_SCHEMA, true));

function agentAccepts(raw: Record<string, unknown>): boolean {
  try {
    containerFromRaw(raw, DEFAULTS, 'c');
    return true;
  } catch (e) {
    expect((e as { code?: string }).code).toBe('ECONFIG');
    return false;
  }
}

const tcp = (address: string, more: Partial<Record<keyof ListenConfig | 'port', unknown>> = {}) => ({ listen: [{ name: 'http', address, ...more }] });
const unix = (address: string, kind = 'unix-stream') => ({ listen: [{ name: 'u', kind, address }] });

/** [what, entry without name, accepted by both]. */
const AGREE: [string, Record<string, unknown>, boolean][] = [
  ['nothing but the name', {}, true],
  ['every field', { fileDescriptorStoreMax: 10, notifyAccess: 'main', watchdogSec: '30s', timeoutStartSec: 90, preserve: 'yes', watchdogSignal: true, releaseAfterSec: '10min', listen: [] }, true],
  ['fileDescriptorStoreMax 0', { fileDescriptorStoreMax: 0 }, true],
  ['fileDescriptorStoreMax 2^30', { fileDescriptorStoreMax: 2 ** 30 }, true],
  ['fileDescriptorStoreMax 2^30 + 1', { fileDescriptorStoreMax: 2 ** 30 + 1 }, false],
  ['fileDescriptorStoreMax -1', { fileDescriptorStoreMax: -1 }, false],
  ['fileDescriptorStoreMax 1.5', { fileDescriptorStoreMax: 1.5 }, false],
  ['fileDescriptorStoreMax true', { fileDescriptorStoreMax: true }, false],
  ['fileDescriptorStoreMax "-1"', { fileDescriptorStoreMax: '-1' }, false],
  ...(['none', 'main', 'exec', 'all'] as const).map((v): [string, Record<string, unknown>, boolean] => [`notifyAccess ${v}`, { notifyAccess: v }, true]),
  ['notifyAccess Main', { notifyAccess: 'Main' }, false],
  ['notifyAccess 1', { notifyAccess: 1 }, false],
  ...(['no', 'restart', 'yes'] as const).map((v): [string, Record<string, unknown>, boolean] => [`preserve ${v}`, { preserve: v }, true]),
  ['preserve false (YAML 1.1 no)', { preserve: false }, false],
  ['preserve always', { preserve: 'always' }, false],
  ['watchdogSignal "true"', { watchdogSignal: 'true' }, false],
  ['watchdogSec 0', { watchdogSec: 0 }, true],
  ['watchdogSec 1e9', { watchdogSec: 1e9 }, true],
  ['watchdogSec 1e9 + 1', { watchdogSec: 1e9 + 1 }, false],
  ['watchdogSec -1', { watchdogSec: -1 }, false],
  ['watchdogSec "infinity"', { watchdogSec: 'infinity' }, true],
  ['watchdogSec "1min 30s"', { watchdogSec: '1min 30s' }, true],
  ['watchdogSec "2.5"', { watchdogSec: '2.5' }, true],
  ['watchdogSec "500 ms"', { watchdogSec: '500 ms' }, true],
  ['watchdogSec "5 parsecs"', { watchdogSec: '5 parsecs' }, false],
  ['watchdogSec "-5s"', { watchdogSec: '-5s' }, false],
  ['watchdogSec ""', { watchdogSec: '' }, false],
  ['watchdogSec "3."', { watchdogSec: '3.' }, false],
  ['watchdogSec 65 characters', { watchdogSec: `${'0'.repeat(63)}s ` }, false],
  ['watchdogSec 64 characters', { watchdogSec: `${'0'.repeat(62)}s ` }, true],
  ['watchdogSec true', { watchdogSec: true }, false],
  ['watchdogSec null', { watchdogSec: null }, false],
  ['an unknown field', { watchdogsec: 5 }, false],
  ['listen not a list', { listen: { name: 'x' } }, false],
  ['listen tcp', tcp('0.0.0.0:8080'), true],
  ['listen tcp every field', tcp('127.0.0.1:80', { kind: 'udp', backlog: 1, reusePort: true }), true],
  ['listen [::]:53', tcp('[::]:53'), true],
  ['listen [::ffff:127.0.0.1]:8080', tcp('[::ffff:127.0.0.1]:8080'), true],
  ['listen port 0', tcp('0.0.0.0:0'), true],
  ['listen port 0080', tcp('0.0.0.0:0080'), true],
  ['listen port 65536', tcp('1.2.3.4:65536'), false],
  ['listen localhost:80', tcp('localhost:80'), false],
  ['listen 80', tcp('80'), false],
  ['listen :80', tcp(':80'), false],
  ['listen ::1:80', tcp('::1:80'), false],
  ['listen [127.0.0.1]:80', tcp('[127.0.0.1]:80'), false],
  ['listen 256.1.1.1:80', tcp('256.1.1.1:80'), false],
  ['listen 01.2.3.4:80', tcp('01.2.3.4:80'), false],
  ['listen [fe80::1%eth0]:80 (zone id)', tcp('[fe80::1%eth0]:80'), false],
  ['listen tcp on a path', tcp('/run/x.sock'), false],
  ['listen unix path', unix('/run/x.sock'), true],
  ['listen unix abstract', unix('@name', 'unix-dgram'), true],
  ['listen unix relative', unix('rel/x.sock'), false],
  ['listen unix "@"', unix('@'), false],
  ['listen unix on an IP address', unix('0.0.0.0:80'), false],
  ['listen unix path of 107 bytes', unix('/' + 'a'.repeat(106)), true],
  ['listen unix abstract of 108 bytes', unix('@' + 'a'.repeat(107)), true],
  ['listen unix abstract of 109 bytes', unix('@' + 'a'.repeat(108)), false],
  ['listen kind sctp', tcp('0.0.0.0:1', { kind: 'sctp' }), false],
  ['listen backlog 0', tcp('0.0.0.0:1', { backlog: 0 }), false],
  ['listen backlog 2^20 + 1', tcp('0.0.0.0:1', { backlog: 2 ** 20 + 1 }), false],
  ['listen reusePort "yes"', tcp('0.0.0.0:1', { reusePort: 'yes' }), false],
  ['listen an unknown field', tcp('0.0.0.0:1', { port: 1 }), false],
  ['listen without address', { listen: [{ name: 'x' }] }, false],
  ['listen without name', { listen: [{ address: '0.0.0.0:1' }] }, false],
  ["listen name with ':'", { listen: [{ name: 'a:b', address: '0.0.0.0:1' }] }, false],
  ['listen name with a newline', { listen: [{ name: 'a\nb', address: '0.0.0.0:1' }] }, false],
  ['listen name of 256 characters', { listen: [{ name: 'a'.repeat(256), address: '0.0.0.0:1' }] }, false],
  ['listen name of 255 characters', { listen: [{ name: 'a'.repeat(255), address: '0.0.0.0:1' }] }, true],
  ['64 listen sockets', { listen: Array.from({ length: 64 }, (_, i) => ({ name: 'l', address: `0.0.0.0:${i}` })) }, true],
  ['65 listen sockets', { listen: Array.from({ length: 65 }, (_, i) => ({ name: 'l', address: `0.0.0.0:${i}` })) }, false],
];

describe('the agent validator and the schema agree', () => {
  it.each(AGREE)('%s', (_what, entry, accepted) => {
    const raw = { name: 'app', ...entry };
    expect({ agent: agentAccepts(raw), schema: schemaAccepts(raw) }).toEqual({ agent: accepted, schema: accepted });
  });

  it.each([
    ['app', true],
    ['a-1', true],
    ['a'.repeat(63), true],
    ['a'.repeat(64), false],
    ['App', false],
    ['-a', false],
    ['a_b', false],
    ['', false],
    [7, false],
  ] as const)('container name %s', (name, accepted) => {
    expect({ agent: agentAccepts({ name }), schema: schemaAccepts({ name }) }).toEqual({ agent: accepted, schema: accepted });
  });
});

/** [what, entry, agent, schema, why they differ]: every known difference, in both directions. */
const DIFFER: [string, Record<string, unknown>, boolean, boolean, string][] = [
  ['a fractional number of seconds', { watchdogSec: 2.5 }, true, false, 'int-or-string takes integers; write "2.5" or "2500ms"'],
  ['a decimal string for an integer', { fileDescriptorStoreMax: '16' }, true, false, 'YAML quoting in a hand-written file; the API has integers'],
  ['a decimal string backlog', tcp('0.0.0.0:1', { backlog: '16' }), true, false, 'as above'],
  ['a time span over 10^9 seconds', { watchdogSec: '40y' }, false, true, 'a pattern cannot bound a sum'],
  ['a time span beyond 2^53 microseconds', { watchdogSec: '99999999999999999999' }, false, true, 'as above'],
  ['a bracketed non-address', tcp('[:::]:80'), false, true, 'the IPv6 pattern is loose; the agent parses the literal'],
  ['a unix path of 107 two-byte characters', unix('/' + '\u00e9'.repeat(60)), false, true, 'maxLength counts characters, sun_path bytes'],
  ['a unix path of 108 characters', unix('/' + 'a'.repeat(107)), false, true, 'one maxLength for paths (107) and abstract names (108)'],
];

describe('where they differ, and why (documented in docs/crds.md)', () => {
  it.each(DIFFER)('%s', (_what, entry, agent, schema) => {
    const raw = { name: 'app', ...entry };
    expect({ agent: agentAccepts(raw), schema: schemaAccepts(raw) }).toEqual({ agent, schema });
  });
});

/** A small deterministic PRNG (mulberry32), so a failure names a reproducible input. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('TIME_SPAN_PATTERN matches config/timespan.ts', () => {
  const re = new RegExp(TIME_SPAN_PATTERN, 'u');
  const parses = (s: string): boolean | 'too large' => {
    try {
      parseTimeSpanUsec(s);
      return true;
    } catch (e) {
      return /too large/.test((e as Error).message) ? 'too large' : false;
    }
  };

  it.each([
    '5s', '1min 30s', '1min30s', '500ms', '1.5h', '2 h', '30', '0', '0.5', '.5s', '1 2', ' 5s ', 'infinity', ' infinity ',
    '5 s', '+5', '1s+2s', '5s5', '5m.5s', '5ms', '5µs', '5μs', '5M', '1y 2w 3d', '5 \t\n\rs', '1 .5',
    '', ' ', '-5s', '-0', '3.', '3.s', '12.34.56', '5x', '5 x', '5secs', '5ss', 'infinityx', '5 infinity', 'infinity 5',
    '+.5', '++5', '5+', '5s-', 's', '.', '1..2', 'Infinity', '5 S', '5Min', '1e3', '0x10', '５s',
  ])('%j', (s) => {
    expect(re.test(s)).toBe(parses(s) === true);
  });

  it('agrees on 20,000 random strings of time span tokens', () => {
    const tokens = ['0', '1', '7', '42', '.', '+', '-', ' ', '\t', 's', 'm', 'in', 'min', 'ms', 'sec', 'h', 'M', 'µs', 'us', 'd', 'w', 'y', 'x', 'infinity', 'e'];
    const rnd = prng(0x5eed);
    let checked = 0;
    for (let i = 0; i < 20_000; i++) {
      const n = 1 + Math.floor(rnd() * 6);
      const s = Array.from({ length: n }, () => tokens[Math.floor(rnd() * tokens.length)]).join('');
      const p = parses(s);
      if (p === 'too large') continue;
      if (re.test(s) !== p) throw new Error(`pattern ${re.test(s)} but parser ${p} for ${JSON.stringify(s)}`);
      checked++;
    }
    expect(checked).toBeGreaterThan(19_000);
  });

  // Catastrophic (exponential) backtracking on thousands of repetitions would not end:
  // the test's own timeout catches it. No bound on the time here: how fast the pattern
  // is, is a benchmark's question, not a test's.
  it.each([
    ['1 '.repeat(5000) + 'x', false],
    ['1s'.repeat(5000) + '!', false],
    [' '.repeat(10_000) + '1x', false],
    ['1s '.repeat(5000), true],
    ['1 '.repeat(5000) + '1', true],
  ])('hostile input of %#: a long match or near-match ends, and agrees with the parser', (s, ok) => {
    expect(re.test(s)).toBe(ok);
    expect(parses(s)).toBe(ok);
  });
});

describe('the address patterns match config/address.ts on the forms they claim', () => {
  const ip = new RegExp(IP_PORT_PATTERN, 'u');
  const unixRe = new RegExp(UNIX_ADDRESS_PATTERN, 'u');
  it('IPv4 with every port from 0 to 70000 (leading zeros too)', () => {
    for (let port = 0; port <= 70_000; port += 7) {
      for (const p of [String(port), `00${port}`]) {
        const a = `10.0.0.1:${p}`;
        expect([a, ip.test(a)]).toEqual([a, listenAddressProblem('tcp', a) === null]);
      }
    }
  });
  it('every IPv4 octet value', () => {
    for (let o = 0; o <= 300; o++) {
      for (const text of [String(o), `0${o}`]) {
        const a = `${text}.1.2.3:80`;
        expect([a, ip.test(a)]).toEqual([a, listenAddressProblem('tcp', a) === null]);
      }
    }
  });
  it('unix forms', () => {
    for (const a of ['/x', '/', '@a', '@', 'x', '', '/a\u0000b', '@a\nb']) {
      expect([a, unixRe.test(a)]).toEqual([a, listenAddressProblem('unix-stream', a) === null]);
    }
  });
});

describe('one list of fields', () => {
  it('the schema has exactly ContainerConfig\'s fields (the type is the compile-time check, this the runtime one)', () => {
    const c: ContainerConfig = { ...DEFAULTS, name: 'x' };
    expect([...CONTAINER_FIELDS].sort()).toEqual(Object.keys(c).sort());
    expect(SETTINGS_FIELDS).toEqual(Object.keys(SETTINGS_SCHEMA.properties!));
    expect([...LISTEN_FIELDS].sort()).toEqual(['address', 'backlog', 'kind', 'name', 'reusePort']);
  });

  it('validate.ts has no hand-kept list of field names', () => {
    const text = readFileSync(join(root, 'src/config/validate.ts'), 'utf8');
    expect(text).not.toMatch(/'timeoutStartSec'|'reusePort'/);
  });

  it('the unknown-field error comes from the schema: a field added there is known to the agent', () => {
    expect(() => containerFromRaw({ name: 'a', releaseAfterSec: 1 }, DEFAULTS, 'c')).not.toThrow();
    expect(() => containerFromRaw({ name: 'a', releaseAfterSecs: 1 }, DEFAULTS, 'c')).toThrow(/unknown field releaseAfterSecs/);
  });
});

describe('the agent stays lean', () => {
  function* tsFiles(dir: string): Generator<string> {
    for (const n of readdirSync(dir)) {
      const p = join(dir, n);
      if (statSync(p).isDirectory()) yield* tsFiles(p);
      else if (p.endsWith('.ts')) yield p;
    }
  }

  it('no file under src/ imports ajv, ajv-formats or kubernetes-models', () => {
    const offenders = [...tsFiles(join(root, 'src'))].filter((f) => /from ['"](ajv|ajv-formats|kubernetes-models)[/'"]/.test(readFileSync(f, 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('loading the agent and its config modules from dist/ loads no ajv (in a fresh node: this test process has it)', () => {
    const script = [
      "import { createRequire } from 'node:module';",
      "for (const m of ['./dist/cli/agent.js', './dist/config/load.js', './dist/config/schema.js']) await import(m);",
      'const loaded = Object.keys(createRequire(import.meta.url).cache);',
      'console.log(JSON.stringify(loaded));',
    ].join('\n');
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
    const loaded = JSON.parse(out) as string[];
    expect(loaded.filter((p) => /node_modules\/(ajv|ajv-formats|kubernetes-models)\//.test(p))).toEqual([]);
    // The check sees CommonJS packages that ESM loads: prom-client is one the agent does load.
    expect(loaded.some((p) => p.includes('node_modules/prom-client/'))).toBe(true);
  });
});
