import { constants } from 'node:os';

const NAMES = new Map<number, string>(Object.entries(constants.errno).map(([k, v]) => [v as number, k]));

/** An addon call failed: carries the errno name as `code`, callers branch on it. */
export class SysError extends Error {
  readonly code: string;
  constructor(
    readonly syscall: string,
    readonly errno: number,
    detail = '',
  ) {
    const code = NAMES.get(errno) ?? `E${errno}`;
    super(`${syscall}${detail ? ` ${detail}` : ''}: ${code}`);
    this.code = code;
  }
}

/** Throw a SysError for a negative return, else pass the value through. */
export function must<T>(rc: T, syscall: string, detail = ''): Exclude<T, number> | number {
  if (typeof rc === 'number' && rc < 0) throw new SysError(syscall, -rc, detail);
  return rc as Exclude<T, number> | number;
}

export function mustFd(rc: number, syscall: string, detail = ''): number {
  if (rc < 0) throw new SysError(syscall, -rc, detail);
  return rc;
}
