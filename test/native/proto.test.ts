/**
 * The TypeScript copy of the wire constants (src/native/proto.ts) must equal
 * agent/include/proto.h, which the addon and the launcher compile against.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as proto from '../../src/native/proto.js';

const header = readFileSync(join(import.meta.dirname, '..', '..', 'agent', 'include', 'proto.h'), 'utf8');

/** #define FDSTORE_X value, with earlier defines substituted and integer arithmetic evaluated. */
function defines(text: string): Map<string, string | number> {
  const out = new Map<string, string | number>();
  for (const m of text.matchAll(/^#define FDSTORE_(\w+) (.+)$/gm)) {
    const [, name, raw] = m as unknown as [string, string, string];
    if (raw.startsWith('"')) {
      out.set(name, JSON.parse(raw) as string);
      continue;
    }
    const expr = raw.replace(/FDSTORE_(\w+)/g, (_, n: string) => String(out.get(n)));
    if (!/^[\d\s()+*-]+$/.test(expr)) throw new Error(`unexpected #define ${name} ${raw}`);
    out.set(name, Function(`return (${expr});`)() as number);
  }
  return out;
}

const TS_NAME: Record<string, keyof typeof proto> = {
  PROTO_MAGIC: 'PROTO_MAGIC',
  FDS_PER_MSG: 'FDS_PER_MSG',
  RESTORE_TIMEOUT_MS: 'RESTORE_TIMEOUT_MS',
  NAME_MAX: 'FDNAME_MAX',
  RESTORE_MSG_MAX: 'RESTORE_MSG_MAX',
  NOTIFY_BYTES_MAX: 'NOTIFY_BYTES_MAX',
  NOTIFY_FDS_MAX: 'NOTIFY_FDS_MAX',
  LISTEN_FDS_START: 'LISTEN_FDS_START',
  LAUNCHER_RESERVED_FDS: 'LAUNCHER_RESERVED_FDS',
  NOTIFY_NAME: 'NOTIFY_NAME',
  RESTORE_NAME: 'RESTORE_NAME',
  EXIT_USAGE: 'EXIT_USAGE',
  EXIT_SYSCALL: 'EXIT_SYSCALL',
  EXIT_NOEXEC: 'EXIT_NOEXEC',
  EXIT_NOTFOUND: 'EXIT_NOTFOUND',
};

describe('proto.h and src/native/proto.ts', () => {
  const c = defines(header);
  it('every constant of proto.h has a TypeScript twin', () => {
    const missing = [...c.keys()].filter((k) => k !== 'PROTO_H' && !(k in TS_NAME));
    expect(missing).toEqual([]);
  });
  for (const [cName, tsName] of Object.entries(TS_NAME)) {
    it(`FDSTORE_${cName} equals ${tsName}`, () => {
      expect(c.get(cName)).toBeDefined();
      expect(proto[tsName]).toBe(c.get(cName));
    });
  }
});
