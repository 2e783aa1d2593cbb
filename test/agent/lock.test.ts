/**
 * Issue 7 item 13: two agents on one run dir. The first holds an flock on
 * DIR/.fdstore/lock for its life; a second one refuses (exit 2) naming the first
 * one's pid, and touches none of its sockets.
 */
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent, type Agent } from '../helpers/agent.js';
import { FDSTORE_BIN, run } from '../helpers/proc.js';

let agents: Agent[] = [];
afterEach(async () => {
  for (const a of agents) await a.dispose();
  agents = [];
});

describe('item 13: one agent per run dir', () => {
  it('a second agent on the same run dir refuses with the first one\'s pid and leaves its sockets alone', async () => {
    const first = await startAgent({ containers: ['app'] });
    agents.push(first);
    const notifyIno = lstatSync(first.notifyPath()).ino;
    const adminIno = lstatSync(join(first.runDir, '.fdstore', 'admin.sock')).ino;
    expect(readFileSync(join(first.runDir, '.fdstore', 'lock'), 'utf8')).toBe(`${first.pid}\n`);

    const second = await run(process.execPath, [FDSTORE_BIN, 'agent', '--run-dir', first.runDir, '--container', 'app', '--listen', 'off']);
    expect(second.code).toBe(2);
    const lines = second.stderr.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; error?: string });
    expect(lines.filter((l) => l.msg === 'agent failed to start')).toHaveLength(1);
    expect(lines.find((l) => l.msg === 'agent failed to start')!.error).toMatch(
      new RegExp(`another agent \\(pid ${first.pid}\\) is serving this run dir \\(${first.runDir}/.fdstore/lock is locked\\)`),
    );

    // The first agent still owns and serves the same socket files.
    expect(lstatSync(first.notifyPath()).ino).toBe(notifyIno);
    expect(lstatSync(join(first.runDir, '.fdstore', 'admin.sock')).ino).toBe(adminIno);
    expect((await first.ls()).containers.map((c) => c.name)).toEqual(['app']);
    expect(first.alive).toBe(true);

    // Once it stops, the lock is free: a new agent starts on the run dir.
    expect(await first.stop()).toBe(0);
    const next = await startAgent({ containers: ['app'], args: ['--run-dir', first.runDir] });
    agents.push(next);
    expect(readFileSync(join(first.runDir, '.fdstore', 'lock'), 'utf8')).toBe(`${next.pid}\n`);
    const ls = await next.cli(['ls', '--run-dir', first.runDir, '--json']);
    expect(ls.code, ls.stderr).toBe(0);
  });
});
