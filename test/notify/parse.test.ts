// Pure datagram parsing (spec §1d, §1e, A2.18): bytes + metadata in, message or rejection out.
import { describe, expect, it } from 'vitest';
import {
  MAX_NOTIFY_BYTES,
  checkBarrier,
  decodeUtf8,
  parseDatagram,
  rawBytes,
  splitAssignments,
  toMessage,
  type DatagramMeta,
  type NotifyMessage,
  type ParseResult,
} from '../../src/notify/parse.js';
import { REJECT_REASONS } from '../../src/unit/reasons.js';

function meta(data: string | Uint8Array, over: Partial<DatagramMeta> = {}): DatagramMeta {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  return { data: bytes, hasCreds: true, truncated: false, ctruncated: false, fdCount: 0, ...over };
}

function ok(r: ParseResult): NotifyMessage {
  if (!r.ok) throw new Error(`expected a message, got rejection ${r.reason}: ${r.detail}`);
  return r.message;
}

function reason(r: ParseResult): string {
  if (r.ok) throw new Error(`expected a rejection, got lines ${JSON.stringify(r.message.lines)}`);
  return r.reason;
}

function msg(text: string): NotifyMessage {
  return ok(parseDatagram(meta(text)));
}

describe('D1.14 payload size', () => {
  it('D1.14: MAX_NOTIFY_BYTES is PIPE_BUF (4096)', () => {
    expect(MAX_NOTIFY_BYTES).toBe(4096);
  });

  it('D1.14: a 4096-byte payload is accepted whole', () => {
    const status = 'x'.repeat(MAX_NOTIFY_BYTES - 'STATUS='.length);
    const m = msg(`STATUS=${status}`);
    expect(m.values.status).toBe(status);
    expect(m.lines).toHaveLength(1);
  });

  it('D1.14: the truncated flag (MSG_TRUNC, >= 4097 bytes) drops the datagram as too_large', () => {
    const r = parseDatagram(meta('READY=1', { truncated: true }));
    expect(reason(r)).toBe('too_large');
  });

  it('D1.14: too_large wins over every other defect', () => {
    const r = parseDatagram(meta('A\0B', { truncated: true, ctruncated: true, hasCreds: false }));
    expect(reason(r)).toBe('too_large');
  });
});

describe('D1.15 control data truncated', () => {
  it('D1.15: MSG_CTRUNC drops the datagram as truncated, even with valid payload', () => {
    const r = parseDatagram(meta('FDSTORE=1', { ctruncated: true, fdCount: 5 }));
    expect(reason(r)).toBe('truncated');
  });

  it('D1.15: the rejection detail is systemd\'s wording', () => {
    const r = parseDatagram(meta('', { ctruncated: true }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.detail).toMatch(/truncated control data/);
  });
});

describe('D1.16 credentials', () => {
  it('D1.16: a datagram without SCM_CREDENTIALS is dropped as no_credentials', () => {
    expect(reason(parseDatagram(meta('READY=1', { hasCreds: false })))).toBe('no_credentials');
  });

  it('D1.16: checked before the payload (an empty credential-less datagram is dropped too)', () => {
    expect(reason(parseDatagram(meta('', { hasCreds: false })))).toBe('no_credentials');
  });
});

describe('D1.17 NUL bytes', () => {
  it('D1.17: a NUL in the middle drops the datagram', () => {
    expect(reason(parseDatagram(meta('READY=1\0STATUS=x')))).toBe('nul_byte');
  });

  it('D1.17: a NUL as the first byte drops the datagram', () => {
    expect(reason(parseDatagram(meta('\0READY=1')))).toBe('nul_byte');
  });

  it('D1.17: one trailing NUL is tolerated and stripped', () => {
    const m = msg('READY=1\nSTATUS=up\0');
    expect(m.lines).toEqual(['READY=1', 'STATUS=up']);
    expect(m.values.status).toBe('up');
    expect(m.flags.ready).toBe(true);
  });

  it('D1.17: only one trailing NUL is stripped; two are an embedded NUL', () => {
    expect(reason(parseDatagram(meta('READY=1\0\0')))).toBe('nul_byte');
  });

  it('D1.17: a datagram that is a single NUL is empty and valid', () => {
    expect(msg('\0').lines).toEqual([]);
  });

  it('D1.17: works on a subarray view (byteOffset honoured)', () => {
    const backing = Buffer.from('\0\0READY=1\0', 'latin1');
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 2, backing.length - 2);
    const m = ok(parseDatagram(meta(view)));
    expect(m.lines).toEqual(['READY=1']);
  });
});

describe('D1.18 empty datagram', () => {
  it('D1.18: a 0-byte datagram is valid with zero assignments', () => {
    const m = msg('');
    expect(m.lines).toEqual([]);
    expect(Object.values(m.flags).every((f) => f === false)).toBe(true);
    expect(m.values).toEqual({});
  });

  it('D1.18: a 0-byte datagram carrying fds is still valid (the fds are the caller\'s to close)', () => {
    const m = ok(parseDatagram(meta('', { fdCount: 3 })));
    expect(m.lines).toEqual([]);
  });

  it('D1.18: only separators is the same as empty', () => {
    expect(msg('\n\r\n\r').lines).toEqual([]);
  });
});

describe('D1.19 no UTF-8 validation of the whole datagram', () => {
  it('D1.19: invalid UTF-8 bytes in an unrelated line do not drop the datagram', () => {
    const data = Buffer.concat([Buffer.from('X_BLOB='), Buffer.from([0xff, 0xfe, 0x80]), Buffer.from('\nREADY=1')]);
    const m = ok(parseDatagram(meta(data)));
    expect(m.flags.ready).toBe(true);
    expect(m.lines).toHaveLength(2);
  });

  it('D1.19: bytes survive as latin1 so rawBytes() gives back exactly what was sent', () => {
    const sent = Buffer.concat([Buffer.from('STATUS='), Buffer.from('héllo ✓', 'utf8')]);
    const m = ok(parseDatagram(meta(sent)));
    expect(rawBytes(m.lines[0]!).equals(sent)).toBe(true);
  });
});

describe('D1.20 splitting', () => {
  it('D1.20: splits on \\n and on \\r', () => {
    expect(splitAssignments('A=1\nB=2\rC=3')).toEqual(['A=1', 'B=2', 'C=3']);
  });

  it('D1.20: \\r\\n is one separator; runs of separators collapse', () => {
    expect(splitAssignments('A=1\r\nB=2\n\n\n\r\rC=3')).toEqual(['A=1', 'B=2', 'C=3']);
  });

  it('D1.20: leading and trailing empty lines vanish; trailing newline optional', () => {
    expect(splitAssignments('\n\nREADY=1\n')).toEqual(['READY=1']);
    expect(splitAssignments('READY=1')).toEqual(['READY=1']);
  });

  it('D1.20: no whitespace trimming', () => {
    expect(splitAssignments(' READY=1 \n\tSTATUS=a ')).toEqual([' READY=1 ', '\tSTATUS=a ']);
  });

  it('D1.20: lines need not contain =', () => {
    expect(splitAssignments('hello\nREADY=1\n=\nX')).toEqual(['hello', 'READY=1', '=', 'X']);
  });

  it('D1.20: whitespace-only lines are kept (only empty lines vanish)', () => {
    expect(splitAssignments('A=1\n \nB=2')).toEqual(['A=1', ' ', 'B=2']);
  });

  it('D1.21 (documented deviation): backslashes are kept literally, no escape processing', () => {
    expect(splitAssignments('STATUS=a\\b\\\nREADY=1\\')).toEqual(['STATUS=a\\b\\', 'READY=1\\']);
  });

  it('D1.20: parseDatagram splits the same way', () => {
    expect(msg('\r\nREADY=1\r\nSTATUS=x\r\n').lines).toEqual(['READY=1', 'STATUS=x']);
  });
});

describe('D1.22 flags are exact whole lines', () => {
  const FLAG_LINES: [string, keyof NotifyMessage['flags']][] = [
    ['READY=1', 'ready'],
    ['RELOADING=1', 'reloading'],
    ['STOPPING=1', 'stopping'],
    ['FDSTORE=1', 'fdstore'],
    ['FDSTOREREMOVE=1', 'fdstoreRemove'],
    ['FDPOLL=0', 'noPoll'],
    ['BARRIER=1', 'barrier'],
  ];

  it.each(FLAG_LINES)('D1.22: %s sets %s and nothing else', (line, key) => {
    const m = toMessage([line]);
    expect(m.flags[key]).toBe(true);
    for (const [k, v] of Object.entries(m.flags)) if (k !== key) expect(v).toBe(false);
  });

  it.each(['READY=0', 'READY=yes', 'READY= 1', 'READY=1 ', ' READY=1', 'READY=11', 'READY', 'ready=1', 'READY=true'])(
    'D1.22: %j does not set ready',
    (line) => {
      expect(msg(line).flags.ready).toBe(false);
    },
  );

  it.each(['FDPOLL=1', 'FDPOLL=no', 'FDPOLL=00', 'FDPOLL=0 '])('D1.22: %j does not disable polling', (line) => {
    expect(msg(line).flags.noPoll).toBe(false);
  });

  it('D1.22: a flag is matched anywhere in the message', () => {
    const m = msg('STATUS=a\nX_FOO=1\nFDNAME=x\nFDSTORE=1\nSTOPPING=1');
    expect(m.flags.fdstore).toBe(true);
    expect(m.flags.stopping).toBe(true);
  });

  it('D1.22: READY=0 after READY=1 does not clear it (flags are presence, not last value)', () => {
    expect(msg('READY=1\nREADY=0').flags.ready).toBe(true);
    expect(msg('READY=0\nREADY=1').flags.ready).toBe(true);
  });
});

describe('D1.23 value assignments', () => {
  it('D1.23: the first line with the key wins; later duplicates are ignored', () => {
    const m = msg('STATUS=first\nSTATUS=second\nFDNAME=a\nFDNAME=b');
    expect(m.values.status).toBe('first');
    expect(m.values.fdName).toBe('a');
  });

  it('D1.23: an empty first value still wins over a later non-empty one', () => {
    expect(msg('STATUS=\nSTATUS=x').values.status).toBe('');
  });

  it('D1.23: WATCHDOG_USEC= never matches WATCHDOG=, and the reverse', () => {
    const m = msg('WATCHDOG_USEC=5000000');
    expect(m.values.watchdogUsec).toBe('5000000');
    expect(m.values.watchdog).toBeUndefined();
    const n = msg('WATCHDOG=1');
    expect(n.values.watchdog).toBe('1');
    expect(n.values.watchdogUsec).toBeUndefined();
  });

  it('D1.23: WATCHDOG_USEC before WATCHDOG does not shadow it', () => {
    const m = msg('WATCHDOG_USEC=1\nWATCHDOG=trigger');
    expect(m.values.watchdog).toBe('trigger');
    expect(m.values.watchdogUsec).toBe('1');
  });

  it('D1.23: keys are case-sensitive', () => {
    const m = msg('status=lower\nStatus=mixed');
    expect(m.values.status).toBeUndefined();
  });

  it('D1.23: the value is everything after the first =, including further = signs', () => {
    expect(msg('STATUS=a=b=c').values.status).toBe('a=b=c');
  });

  it('D1.23: no trimming of values', () => {
    expect(msg('STATUS= spaced ').values.status).toBe(' spaced ');
    expect(msg('STATUS =x').values.status).toBeUndefined();
  });

  it('D1.23: every known key is mapped', () => {
    const m = msg(
      [
        'STATUS=s',
        'ERRNO=2',
        'MAINPID=42',
        'WATCHDOG=1',
        'WATCHDOG_USEC=7',
        'EXTEND_TIMEOUT_USEC=8',
        'NOTIFYACCESS=all',
        'FDNAME=n',
        'MONOTONIC_USEC=9',
      ].join('\n'),
    );
    expect(m.values).toEqual({
      status: 's',
      errno: '2',
      mainPid: '42',
      watchdog: '1',
      watchdogUsec: '7',
      extendTimeoutUsec: '8',
      notifyAccess: 'all',
      fdName: 'n',
      monotonicUsec: '9',
    });
  });

  it('D1.24: unknown keys are ignored silently', () => {
    const m = msg('X_APP=1\nEXIT_STATUS=3\nBUSERROR=x\nFOO');
    expect(m.values).toEqual({});
    expect(Object.values(m.flags).every((f) => !f)).toBe(true);
    expect(m.lines).toHaveLength(4);
  });
});

describe('A2.18 BARRIER=1', () => {
  it('A2.18: BARRIER=1 alone with exactly one fd is valid', () => {
    expect(checkBarrier(msg('BARRIER=1'), 1)).toBeNull();
  });

  it('A2.18: a trailing newline or NUL does not add a line', () => {
    expect(checkBarrier(msg('BARRIER=1\n'), 1)).toBeNull();
    expect(checkBarrier(msg('BARRIER=1\0'), 1)).toBeNull();
  });

  it.each([0, 2, 5])('A2.18: BARRIER=1 with %i fds is refused', (n) => {
    expect(checkBarrier(msg('BARRIER=1'), n)).toMatch(new RegExp(`exactly one fd, got ${n}`));
  });

  it.each(['BARRIER=1\nREADY=1', 'STATUS=x\nBARRIER=1', 'BARRIER=1\nBARRIER=1', 'BARRIER=1\nX_FOO'])(
    'A2.18: %j (other lines) is refused, everything ignored',
    (text) => {
      const m = msg(text);
      expect(m.flags.barrier).toBe(true);
      expect(checkBarrier(m, 1)).toMatch(/everything ignored/);
    },
  );

  it('A2.18: BARRIER=0 or "BARRIER=1 " is not a barrier', () => {
    expect(msg('BARRIER=0').flags.barrier).toBe(false);
    expect(msg('BARRIER=1 ').flags.barrier).toBe(false);
  });
});

describe('A2.5 decodeUtf8', () => {
  it('A2.5: valid UTF-8 (sent as bytes, held as latin1) decodes to text', () => {
    const latin1 = Buffer.from('héllo ✓ 草', 'utf8').toString('latin1');
    expect(decodeUtf8(latin1)).toBe('héllo ✓ 草');
  });

  it('A2.5: ASCII and the empty string decode as themselves', () => {
    expect(decodeUtf8('plain')).toBe('plain');
    expect(decodeUtf8('')).toBe('');
  });

  it.each([
    ['lone continuation byte', [0x80]],
    ['0xff', [0xff]],
    ['truncated 2-byte sequence', [0x61, 0xc3]],
    ['overlong encoding of /', [0xc0, 0xaf]],
    ['UTF-16 surrogate', [0xed, 0xa0, 0x80]],
  ])('A2.5: %s is invalid', (_what, bytes) => {
    expect(decodeUtf8(Buffer.from(bytes).toString('latin1'))).toBeNull();
  });
});

describe('reject reasons', () => {
  it('every reason parseDatagram returns is in the closed REJECT_REASONS list', () => {
    const cases: DatagramMeta[] = [
      meta('', { truncated: true }),
      meta('', { ctruncated: true }),
      meta('', { hasCreds: false }),
      meta('a\0b'),
    ];
    for (const c of cases) expect(REJECT_REASONS).toContain(reason(parseDatagram(c)));
  });
});
