/**
 * The demo's failed-request counts with and without the store: runs
 * `node dist/demo/main.js` as `npm run demo` does and reads its table.
 */
import { join } from 'node:path';
import { Child, ROOT } from './proc.js';

const TIMEOUT_MS = 180_000;

export async function demoBench() {
  const demo = new Child(process.execPath, [join(ROOT, 'dist', 'demo', 'main.js')], { stderr: 'pipe' });
  const { code } = await demo.stop(undefined, TIMEOUT_MS);
  const lines = demo.lines;
  const head = lines.findIndex((l) => l.startsWith('mode '));
  if (head < 0) throw new Error(`demo printed no table (exit ${code}):\n${lines.slice(-10).join('\n')}`);
  const cols = lines[head].trim().split(/\s{2,}/);
  const rows = [];
  for (const l of lines.slice(head + 1)) {
    if (!l.trim()) break;
    const cells = l.trim().split(/\s{2,}/);
    rows.push(Object.fromEntries(cols.map((c, i) => [c, i === 0 ? cells[i] : Number(cells[i])])));
  }
  const verdict = lines.slice(head + rows.length + 1).find((l) => l.trim()) ?? '';
  return { exitCode: code, columns: cols, rows, verdict: verdict.trim() };
}
