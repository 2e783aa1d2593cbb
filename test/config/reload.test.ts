// The live config file: bounded reading (real files: symlink swaps, FIFOs, sizes)
// and ConfigSource's decisions (reading and applying injected, a manual timer).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CONFIG_FILE_MAX_BYTES, readConfigFile } from '../../src/config/file.js';
import { CONFIG_ERROR_MAX, CONFIG_LOG_LIMIT, ConfigSource, loadInitial, sha256, type ReloadResult } from '../../src/config/reload.js';
import type { ContainerConfig } from '../../src/config/types.js';
import { ConfigError } from '../../src/config/validate.js';
import { createLogger } from '../../src/log/log.js';

const root = mkdtempSync(join(tmpdir(), 'fdstore-reload-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function readError(path: string, max?: number): string {
  try {
    readConfigFile(path, max);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('readConfigFile', () => {
  it('reads up to the limit and refuses more, never a part', () => {
    const p = join(root, 'size.yaml');
    writeFileSync(p, 'x'.repeat(100));
    expect(readConfigFile(p, 100)).toHaveLength(100);
    expect(readError(p, 99)).toBe(`config file ${p} is 100 bytes, more than the 99 read`);
    writeFileSync(p, '#'.repeat(CONFIG_FILE_MAX_BYTES + 1));
    expect(readError(p)).toMatch(/is 262145 bytes, more than the 262144 read$/);
    writeFileSync(p, '');
    expect(readConfigFile(p)).toBe('');
  });

  it('refuses what is not a regular UTF-8 file, without blocking on a FIFO', () => {
    const fifo = join(root, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(readError(fifo)).toBe(`config file ${fifo} is not a regular file`);
    expect(readError(root)).toBe(`config file ${root} is not a regular file`);
    expect(readError(join(root, 'missing'))).toMatch(/^cannot read config file .*missing: ENOENT/);
    const bin = join(root, 'bin.yaml');
    writeFileSync(bin, Buffer.from([0x61, 0xff, 0x62]));
    expect(readError(bin)).toBe(`config file ${bin} is not UTF-8 text`);
  });

  it("follows the kubelet's ..data symlink swap", () => {
    // The layout of a downwardAPI volume: FILE -> ..data/FILE, ..data -> ..TIMESTAMP.
    const vol = join(root, 'vol');
    mkdirSync(join(vol, '..2025_01_01_00_00_00.1'), { recursive: true });
    writeFileSync(join(vol, '..2025_01_01_00_00_00.1', 'config'), 'one');
    symlinkSync('..2025_01_01_00_00_00.1', join(vol, '..data'));
    symlinkSync('..data/config', join(vol, 'config'));
    expect(readConfigFile(join(vol, 'config'))).toBe('one');
    mkdirSync(join(vol, '..2025_01_01_00_01_00.2'));
    writeFileSync(join(vol, '..2025_01_01_00_01_00.2', 'config'), 'two');
    symlinkSync('..2025_01_01_00_01_00.2', join(vol, '..data_tmp'));
    renameSync(join(vol, '..data_tmp'), join(vol, '..data'));
    expect(readConfigFile(join(vol, 'config'))).toBe('two');
  });
});

/** A ConfigSource over an in-memory file, with its log lines, applies and counters. */
function source(opts: { text?: string | null; path?: string | null; refuse?: (c: ContainerConfig[]) => string | null } = {}) {
  const file = { text: opts.text === undefined ? 'containers: [{name: app}]' : opts.text, error: null as string | null };
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({ write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) }, 'debug', () => new Date(0));
  const applied: ContainerConfig[][] = [];
  const results: ReloadResult[] = [];
  let checks = 0;
  let now = 0;
  let ticks: (() => void) | null = null;
  const path = opts.path === undefined ? '/cfg' : opts.path;
  const read = (): string => {
    if (file.error !== null) throw new ConfigError(file.error);
    return file.text ?? '';
  };
  const flags = { containers: ['app'], defaults: {} };
  const s = new ConfigSource(
    {
      path,
      flags,
      read,
      apply: (c) => {
        const why = opts.refuse?.(c) ?? null;
        if (why !== null) throw new ConfigError(why);
        applied.push(c);
      },
      log,
      wallMs: () => 1_700_000_000_000 + now,
      nowMs: () => now,
      pollMs: 1000,
      timers: { every: (fn) => (ticks = fn), clear: () => (ticks = null) },
      obs: { checked: () => void checks++, reloaded: (r) => void results.push(r) },
    },
    loadInitial(path, flags, read),
  );
  return {
    s, file, lines, applied, results,
    get checks() { return checks; },
    advance: (ms: number) => void (now += ms),
    poll: () => ticks?.(),
    warnings: () => lines.filter((l) => l.level === 'warning'),
  };
}

describe('ConfigSource', () => {
  it('a poll applies a changed file once, and an unchanged one not at all', () => {
    const t = source();
    t.s.start();
    expect(t.s.state()).toEqual({ policy: null, hash: sha256('containers: [{name: app}]'), loadedAt: new Date(1_700_000_000_000).toISOString(), error: null, reloads: 0, rejected: 0 });
    t.poll();
    t.poll();
    expect(t.applied).toEqual([]);
    expect(t.checks).toBe(2);
    t.file.text = 'policy: {name: web, generation: 3}\ncontainers: [{name: app, fileDescriptorStoreMax: 7}]';
    t.advance(5000);
    t.poll();
    t.poll();
    expect(t.applied).toHaveLength(1);
    expect(t.applied[0]!.map((c) => [c.name, c.fileDescriptorStoreMax])).toEqual([['app', 7]]);
    expect(t.results).toEqual(['applied']);
    expect(t.s.state()).toMatchObject({ policy: { name: 'web', generation: 3 }, hash: sha256(t.file.text), reloads: 1, rejected: 0, error: null, loadedAt: new Date(1_700_000_005_000).toISOString() });
    expect(t.lines.filter((l) => l.msg === 'config applied')).toHaveLength(1);
  });

  it('a bad file keeps the last good config: counted once, logged once per distinct error, shown until a good one', () => {
    const t = source();
    const changes: unknown[] = [];
    t.s.onChange((st) => changes.push(st.rejected));
    t.s.start();
    const good = t.s.state();
    t.file.text = 'containers: [{name: app, fileDescriptorStoreMax: lots}]';
    t.poll();
    t.poll();
    t.poll();
    expect(t.results).toEqual(['rejected']);
    expect(t.s.state()).toMatchObject({ hash: good.hash, policy: null, reloads: 0, rejected: 1 });
    expect(t.s.state().error).toEqual({
      message: '/cfg: containers[0].fileDescriptorStoreMax: an integer from 0 to 1073741824',
      hash: sha256(t.file.text),
      at: new Date(1_700_000_000_000).toISOString(),
    });
    expect(t.warnings()).toHaveLength(1);
    expect(t.warnings()[0]).toMatchObject({ msg: 'config file rejected: keeping the last good config', error: t.s.state().error!.message, kept: good.hash });
    // Another bad file: counted and logged.
    t.file.text = 'containers: [';
    t.poll();
    expect(t.s.state().rejected).toBe(2);
    expect(t.warnings()).toHaveLength(2);
    expect(t.warnings()[1]!.error).toMatch(/^\/cfg: not valid YAML/);
    // Unreadable, then too big (the reader's errors): each once.
    t.file.error = 'cannot read config file /cfg: EACCES';
    t.poll();
    t.poll();
    t.file.error = 'config file /cfg is 300000 bytes, more than the 262144 read';
    t.poll();
    expect(t.s.state().rejected).toBe(4);
    expect(t.s.state().error).toMatchObject({ message: t.file.error, hash: '' });
    expect(t.warnings()).toHaveLength(4);
    // SIGHUP is an explicit attempt: counted and answered even for the same file.
    t.s.reload('signal');
    expect(t.s.state().rejected).toBe(5);
    expect(t.warnings()).toHaveLength(5);
    // A good file clears the error.
    t.file.error = null;
    t.file.text = 'containers: [{name: app, watchdogSec: 1}]';
    t.poll();
    expect(t.s.state()).toMatchObject({ error: null, reloads: 1, rejected: 5, hash: sha256(t.file.text) });
    expect(changes).toEqual([1, 2, 3, 4, 5, 5]);
    expect(t.applied).toHaveLength(1);
  });

  it('the agent refusing the config (ConfigError from apply) is a rejection too', () => {
    const t = source({ refuse: (c) => (c.some((x) => x.fileDescriptorStoreMax > 100) ? 'too many fds' : null) });
    t.s.start();
    t.file.text = 'containers: [{name: app, fileDescriptorStoreMax: 1000}]';
    t.poll();
    expect(t.s.state()).toMatchObject({ reloads: 0, rejected: 1, error: { message: 'too many fds' } });
    expect(t.applied).toEqual([]);
  });

  it('SIGHUP re-applies an unchanged file; before start() it waits for start()', () => {
    const t = source();
    t.s.reload('signal');
    expect(t.applied).toEqual([]);
    t.s.start();
    expect(t.applied).toHaveLength(1);
    t.s.reload('signal');
    expect(t.applied).toHaveLength(2);
    expect(t.s.state().reloads).toBe(2);
  });

  it('rate-limits rejection lines', () => {
    const t = source();
    t.s.start();
    t.file.text = 'nope: 1';
    for (let i = 0; i < CONFIG_LOG_LIMIT.burst + 5; i++) t.s.reload('signal');
    expect(t.s.state().rejected).toBe(CONFIG_LOG_LIMIT.burst + 5);
    expect(t.warnings()).toHaveLength(CONFIG_LOG_LIMIT.burst);
    t.advance(CONFIG_LOG_LIMIT.intervalMs);
    t.s.reload('signal');
    expect(t.warnings()).toHaveLength(CONFIG_LOG_LIMIT.burst + 1);
    expect(t.warnings().at(-1)!.suppressedBefore).toBe(5);
  });

  it('without --config: no hash, no policy, nothing to reload', () => {
    const t = source({ path: null });
    t.s.start();
    t.s.reload('signal');
    expect(t.s.state()).toMatchObject({ policy: null, hash: null, error: null, reloads: 0, rejected: 0 });
    expect(t.checks).toBe(0);
    expect(t.lines.map((l) => l.msg)).toEqual(['reload requested: no --config file, nothing to reload']);
  });

  it('a container that leaves the file is logged once and stays in what is applied', () => {
    const t = source({ text: 'containers: [{name: app}, {name: db, fileDescriptorStoreMax: 9}]' });
    t.s.start();
    t.file.text = '';
    t.poll();
    t.file.text = '# still empty';
    t.poll();
    expect(t.applied.map((a) => a.map((c) => `${c.name}:${c.fileDescriptorStoreMax}`))).toEqual([['app:4096', 'db:9'], ['app:4096', 'db:9']]);
    expect(t.warnings().map((l) => l.container)).toEqual(['app', 'db']);
  });
});

describe('ConfigSource bounds', () => {
  it("cuts a long error message (a field name is the writer's choice)", () => {
    const t = source();
    t.s.start();
    t.file.text = `containers: [{name: app, ${'k'.repeat(5000)}: 1}]`;
    t.poll();
    const msg = t.s.state().error!.message;
    expect(msg.length).toBeLessThan(CONFIG_ERROR_MAX + 32);
    expect(msg).toMatch(/^\/cfg: containers\[0\]: unknown field k+\.\.\. \(5\d{3} chars\)$/);
    expect(t.warnings()[0]!.error).toBe(msg);
  });
});
