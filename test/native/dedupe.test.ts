import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  close,
  DEDUPE_AUTO,
  DEDUPE_DUPFD_QUERY,
  DEDUPE_FSTAT,
  DEDUPE_KCMP,
  notifySocket,
  recvNotify,
  sameFile,
  type DedupeMethod,
} from '../../src/native/sys.js';
import { makeTmp, sendDgram } from './peer.js';

// Each method is forced, so all three paths run here even though Auto would only
// ever pick F_DUPFD_QUERY on this kernel (S8.3).
describe('sameFile', () => {
  let tmp: ReturnType<typeof makeTmp>;
  let sock: number;
  let file: string;
  const opened: number[] = [];

  /** Fds as a peer sends them back: dups of ours, or fresh ones it opened. */
  function viaPeer(fds: object[], inherit: number[] = []): number[] {
    sendDgram({ path: join(tmp.dir, 'notify'), data: 'FDSTORE=1', fds }, inherit);
    const d = recvNotify(sock)!;
    opened.push(...d.fds);
    return d.fds;
  }
  function open(p: string, flags = 'r'): number {
    const fd = openSync(p, flags);
    opened.push(fd);
    return fd;
  }

  beforeAll(() => {
    tmp = makeTmp();
    sock = notifySocket(join(tmp.dir, 'notify'), 1 << 20);
    file = join(tmp.dir, 'file');
    writeFileSync(file, 'x');
  });
  afterAll(() => {
    for (const fd of opened) close(fd);
    close(sock);
    tmp.cleanup();
  });

  const exact: Array<[string, DedupeMethod]> = [
    ['F_DUPFD_QUERY', DEDUPE_DUPFD_QUERY],
    ['kcmp', DEDUPE_KCMP],
    ['auto', DEDUPE_AUTO],
  ];
  for (const [name, method] of exact) {
    describe(name, () => {
      it('a copy passed through SCM_RIGHTS is the same file', () => {
        const mine = open(file);
        const [copy] = viaPeer([{ kind: 'inherit', fd: 3 }], [mine]);
        expect(sameFile(mine, copy!, method)).toBe(true);
        expect(sameFile(copy!, mine, method)).toBe(true);
      });
      it('two open()s of one file are different', () => {
        expect(sameFile(open(file), open(file), method)).toBe(false);
      });
      it('the two ends of a pipe are different', () => {
        const [r, w] = viaPeer([{ kind: 'pipe' }]);
        expect(sameFile(r!, w!, method)).toBe(false);
      });
      it('a dup of a character device is the same file', () => {
        const mine = open('/dev/null');
        const [copy] = viaPeer([{ kind: 'inherit', fd: 3 }], [mine]);
        expect(sameFile(mine, copy!, method)).toBe(true);
      });
    });
  }

  describe('fstat fallback', () => {
    it('a copy passed through SCM_RIGHTS is the same file', () => {
      const mine = open(file);
      const [copy] = viaPeer([{ kind: 'inherit', fd: 3 }], [mine]);
      expect(sameFile(mine, copy!, DEDUPE_FSTAT)).toBe(true);
    });
    it('cannot tell two open()s with equal flags apart (the documented weakness)', () => {
      expect(sameFile(open(file), open(file), DEDUPE_FSTAT)).toBe(true);
    });
    it('two open()s with different flags are different', () => {
      expect(sameFile(open(file, 'r'), open(file, 'r+'), DEDUPE_FSTAT)).toBe(false);
    });
    it('the two ends of a pipe are different', () => {
      const [r, w] = viaPeer([{ kind: 'pipe' }]);
      expect(sameFile(r!, w!, DEDUPE_FSTAT)).toBe(false);
    });
    it('treats character devices as distinct, even a dup', () => {
      const a = open('/dev/null');
      const [copy] = viaPeer([{ kind: 'inherit', fd: 3 }], [a]);
      expect(sameFile(a, open('/dev/null'), DEDUPE_FSTAT)).toBe(false);
      expect(sameFile(a, copy!, DEDUPE_FSTAT)).toBe(false);
    });
  });

  it('throws EBADF for a closed fd under every method', () => {
    const a = openSync(file, 'r');
    const b = openSync(file, 'r');
    closeSync(b);
    for (const m of [DEDUPE_AUTO, DEDUPE_DUPFD_QUERY, DEDUPE_KCMP, DEDUPE_FSTAT] as const) {
      expect(() => sameFile(a, b, m)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    }
    closeSync(a);
  });
});
