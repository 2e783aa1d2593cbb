/** `fdstore ls` and `fdstore clean`: clients of the agent's admin socket. */
import { parseArgs } from 'node:util';
import { adminCall } from '../admin/client.js';
import type { ContainerStatus, FdRow } from '../admin/protocol.js';
import { CLEAN_HELP, LS_HELP } from './usage.js';
import { DEFAULT_RUN_DIR } from '../unit/layout.js';

const EXIT_USAGE = 2;
const EXIT_FAIL = 1;

function parse(argv: string[], help: string, extra: Record<string, { type: 'boolean' }> = {}) {
  try {
    const { values } = parseArgs({
      args: argv,
      options: { 'run-dir': { type: 'string' }, container: { type: 'string' }, help: { type: 'boolean', short: 'h' }, ...extra },
      strict: true,
    });
    if (values.help) {
      process.stdout.write(help);
      return 0;
    }
    // The agent's run dir as an app container or the agent's own container sees it.
    const runDir = typeof values['run-dir'] === 'string' ? values['run-dir'] : process.env.FDSTORE_RUN_DIR || DEFAULT_RUN_DIR;
    return { ...values, 'run-dir': runDir } as Record<string, string | boolean | undefined> & { 'run-dir': string };
  } catch (e) {
    process.stderr.write(`fdstore: ${(e as Error).message}\n\n${help}`);
    return EXIT_USAGE;
  }
}

export async function runLs(argv: string[]): Promise<number> {
  const v = parse(argv, LS_HELP, { json: { type: 'boolean' } });
  if (typeof v === 'number') return v;
  try {
    const container = typeof v.container === 'string' ? v.container : undefined;
    const r = await adminCall(v['run-dir'], container === undefined ? { op: 'ls' } : { op: 'ls', container });
    if (!r.ok) throw new Error(r.error);
    if (!('fds' in r)) throw new Error('unexpected answer from the agent');
    if (v.json) process.stdout.write(JSON.stringify({ containers: r.containers, fds: r.fds }, null, 2) + '\n');
    else process.stdout.write(formatLs(r.containers, r.fds));
    return 0;
  } catch (e) {
    process.stderr.write(`fdstore ls: ${(e as Error).message}\n`);
    return EXIT_FAIL;
  }
}

export async function runClean(argv: string[]): Promise<number> {
  const v = parse(argv, CLEAN_HELP);
  if (typeof v === 'number') return v;
  if (typeof v.container !== 'string') {
    process.stderr.write(`fdstore clean: --container is required\n\n${CLEAN_HELP}`);
    return EXIT_USAGE;
  }
  try {
    const r = await adminCall(v['run-dir'], { op: 'clean', container: v.container });
    if (!r.ok) throw new Error(r.error);
    process.stdout.write(`closed ${'closed' in r ? r.closed : 0} fds of ${v.container}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`fdstore clean: ${(e as Error).message}\n`);
    return EXIT_FAIL;
  }
}

const COLUMNS = ['FDNAME', 'TYPE', 'INODE-TYPE', 'DEVNO', 'INODE', 'ADDRESS/PATH', 'FLAGS', 'POLL'] as const;

export function formatLs(containers: ContainerStatus[], fds: FdRow[]): string {
  let out = '';
  for (const c of containers) {
    out += `${c.name}: ${c.state === 'unknown' ? 'unknown since agent restart' : c.state}, ${c.count}/${c.max} fds, main pid ${c.mainPid ?? '-'}, restores ${c.restores}`;
    if (c.status !== null) out += `, status ${JSON.stringify(c.status)}`;
    if (c.errno !== null) out += `, errno ${c.errno}`;
    if (c.watchdogDeadlineInMs !== null) out += `, watchdog due in ${(c.watchdogDeadlineInMs / 1000).toFixed(1)} s`;
    if (!c.live) out += `, NOT LIVE: ${c.liveReason}`;
    out += '\n';
    // Sockets the agent binds for the app (socket activation): passed first, before the stored fds.
    for (const l of c.listen ?? []) {
      out += c.listenHeld?.includes(l.name)
        ? `  listen ${l.name}: ${l.kind} ${l.address}, held by the running app since the agent restarted (bound again at its next start)\n`
        : `  listen ${l.name}: ${l.kind} ${l.address}, passed first as LISTEN_FDNAMES entry ${JSON.stringify(l.name)}\n`;
    }
    const rows = fds.filter((f) => f.container === c.name).map((f) => [
      f.fdname, f.type, f.inodeType, f.dev, String(f.inode), f.address || f.path, f.flags, f.poll ? 'yes' : 'no',
    ]);
    if (rows.length === 0) {
      out += `  No file descriptors in fdstore of '${c.name}'.\n`;
      continue;
    }
    const all = [[...COLUMNS], ...rows];
    const widths = COLUMNS.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
    for (const r of all) out += '  ' + r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ') + '\n';
  }
  return out;
}
