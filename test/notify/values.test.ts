// Pure validators for notify values: FDNAME (F3.14), µs (A2.12/A2.13), ERRNO (A2.6),
// NOTIFYACCESS (N4.1/A2.19), MAINPID (A2.9).
import { constants } from 'node:os';
import { describe, expect, it } from 'vitest';
import {
  FDNAME_MAX,
  NOTIFY_ACCESS_VALUES,
  USEC_INFINITY,
  isValidFdName,
  parseErrno,
  parseNotifyAccess,
  parsePid,
  parseUsec,
} from '../../src/notify/values.js';

describe('F3.14 isValidFdName', () => {
  it('F3.14: FDNAME_MAX is 255', () => {
    expect(FDNAME_MAX).toBe(255);
  });

  it('F3.14: 255 bytes is valid, 256 is not', () => {
    expect(isValidFdName('a'.repeat(255))).toBe(true);
    expect(isValidFdName('a'.repeat(256))).toBe(false);
  });

  it('F3.14: the empty name is valid', () => {
    expect(isValidFdName('')).toBe(true);
  });

  it('F3.14: every byte 0x20..0x7E except ":" is allowed', () => {
    for (let c = 0x20; c <= 0x7e; c++) {
      expect(isValidFdName(`a${String.fromCharCode(c)}b`), `byte 0x${c.toString(16)}`).toBe(c !== 0x3a);
    }
  });

  it('F3.14: space and printable punctuation are valid', () => {
    expect(isValidFdName(' ')).toBe(true);
    expect(isValidFdName('http-8080 (v6)/#1')).toBe(true);
  });

  it.each([
    ['colon', 'a:b'],
    ['colon alone', ':'],
    ['DEL 0x7f', 'a\x7f'],
    ['tab', 'a\tb'],
    ['newline', 'a\nb'],
    ['0x1f', '\x1f'],
    ['NUL', 'a\0'],
    ['latin1 byte 0x80', 'a\x80'],
    ['latin1 byte 0xff', '\xff'],
    ['UTF-8 é as received (two latin1 bytes)', Buffer.from('é', 'utf8').toString('latin1')],
  ])('F3.14: %s is invalid', (_what, name) => {
    expect(isValidFdName(name)).toBe(false);
  });
});

describe('parseUsec (A2.12, A2.13: not a time-span parser)', () => {
  it.each([
    ['0', 0n],
    ['1', 1n],
    ['30000000', 30_000_000n],
    ['18446744073709551615', USEC_INFINITY],
  ])('A2.12: %j parses to %s', (s, v) => {
    expect(parseUsec(s)).toBe(v);
  });

  it.each(['', '30s', 'infinity', '5min', '-1', '1.5', '1 ', '1e6', '18446744073709551616'])(
    'A2.12: %j is rejected',
    (s) => {
      expect(parseUsec(s)).toBeNull();
    },
  );

  it('A2.12: USEC_INFINITY is UINT64_MAX', () => {
    expect(USEC_INFINITY).toBe(2n ** 64n - 1n);
  });
});

describe('A2.6 parseErrno', () => {
  it.each([
    ['0', 0],
    ['2', 2],
    ['4095', 4095],
    ['ENOENT', constants.errno.ENOENT],
    ['EPERM', constants.errno.EPERM],
    ['EADDRINUSE', constants.errno.EADDRINUSE],
  ])('A2.6: %j -> %i', (s, n) => {
    expect(parseErrno(s)).toBe(n);
  });

  it.each(['4096', '99999', '-1', '', 'enoent', 'EBOGUS', 'ENOENT ', '2x', 'toString', 'constructor', '__proto__'])(
    'A2.6: %j is invalid',
    (s) => {
      expect(parseErrno(s)).toBeNull();
    },
  );
});

describe('N4.1 parseNotifyAccess', () => {
  it.each(NOTIFY_ACCESS_VALUES.map((v) => [v]))('N4.1: %s is accepted', (v) => {
    expect(parseNotifyAccess(v)).toBe(v);
  });

  it('N4.1: the four values are none, main, exec, all', () => {
    expect([...NOTIFY_ACCESS_VALUES].sort()).toEqual(['all', 'exec', 'main', 'none']);
  });

  it.each(['', 'ALL', 'Main', ' all', 'all ', 'yes', 'toString'])('A2.19: %j is invalid', (v) => {
    expect(parseNotifyAccess(v)).toBeNull();
  });
});

describe('A2.9 parsePid', () => {
  it.each([
    ['2', 2],
    ['1234', 1234],
    ['4194304', 4194304],
  ])('A2.9: %j -> %i', (s, n) => {
    expect(parsePid(s)).toBe(n);
  });

  it.each(['0', '1', '-1', '', 'abc', '12abc', ' 12', '1.5', '99999999999999999999'])('A2.9: %j is refused', (s) => {
    expect(parsePid(s)).toBeNull();
  });
});
