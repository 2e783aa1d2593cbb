/**
 * Pure validators for notify values (A2.6, A2.12, A2.13, F3.14, N4.1).
 */
import { constants } from 'node:os';

/** systemd's FDNAME_MAX. */
export { FDNAME_MAX } from '../native/proto.js';
import { FDNAME_MAX } from '../native/proto.js';

/** F3.14: at most 255 bytes, each 0x20..0x7E except ':'. The empty name is valid. */
export function isValidFdName(name: string): boolean {
  if (name.length > FDNAME_MAX) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x3a) return false;
  }
  return true;
}

/** Decimal unsigned 64-bit integer in microseconds, as systemd's safe_atou64 (no units). */
export function parseUsec(s: string): bigint | null {
  if (!/^[0-9]+$/.test(s)) return null;
  const v = BigInt(s);
  return v <= 0xffffffffffffffffn ? v : null;
}

/** UINT64_MAX means "infinity" to systemd (A2.12: disables the watchdog). */
export const USEC_INFINITY = 0xffffffffffffffffn;

const ERRNO_MAX = 4095;

/** A2.6: an errno name (ENOENT) or an integer 0..4095; null when invalid. */
export function parseErrno(s: string): number | null {
  if (/^[0-9]+$/.test(s)) {
    const n = Number(s);
    return n <= ERRNO_MAX ? n : null;
  }
  const byName = (constants.errno as Record<string, number>)[s];
  return byName === undefined ? null : byName;
}

export type NotifyAccess = 'none' | 'main' | 'exec' | 'all';
export const NOTIFY_ACCESS_VALUES: readonly NotifyAccess[] = ['none', 'main', 'exec', 'all'];

export function parseNotifyAccess(s: string): NotifyAccess | null {
  return (NOTIFY_ACCESS_VALUES as readonly string[]).includes(s) ? (s as NotifyAccess) : null;
}

/** A2.9: MAINPID must be a decimal pid > 1. */
export function parsePid(s: string): number | null {
  if (!/^[0-9]+$/.test(s)) return null;
  const n = Number(s);
  return n > 1 && n <= 0x3fffffff ? n : null;
}
