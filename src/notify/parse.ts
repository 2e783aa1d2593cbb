/**
 * Pure notify-datagram parsing: bytes + credentials -> assignments or a rejection.
 * No I/O here; the server owns fds and decides what to do with the result.
 *
 * Spec references are to ../shared/spec/FDSTORE-SPEC.md (D1.x, A2.x).
 */

/** systemd's NOTIFY_BUFFER_MAX (= PIPE_BUF): a 4097-byte datagram is dropped (D1.14). */
export { NOTIFY_BYTES_MAX as MAX_NOTIFY_BYTES } from '../native/proto.js';
import { NOTIFY_BYTES_MAX as MAX_NOTIFY_BYTES } from '../native/proto.js';

/** Bounded reasons a whole datagram is dropped: a closed set named by the unit model. */
import type { RejectReason } from '../unit/reasons.js';
export type { RejectReason } from '../unit/reasons.js';

/** Flag assignments: matched only as an exact whole line (D1.22). */
const FLAGS = {
  ready: 'READY=1',
  reloading: 'RELOADING=1',
  stopping: 'STOPPING=1',
  fdstore: 'FDSTORE=1',
  fdstoreRemove: 'FDSTOREREMOVE=1',
  noPoll: 'FDPOLL=0',
  barrier: 'BARRIER=1',
} as const;

/** Value assignments: the first line starting with `KEY=` wins (D1.23). */
const VALUES = {
  status: 'STATUS=',
  errno: 'ERRNO=',
  mainPid: 'MAINPID=',
  watchdog: 'WATCHDOG=',
  watchdogUsec: 'WATCHDOG_USEC=',
  extendTimeoutUsec: 'EXTEND_TIMEOUT_USEC=',
  notifyAccess: 'NOTIFYACCESS=',
  fdName: 'FDNAME=',
  monotonicUsec: 'MONOTONIC_USEC=',
} as const;

export type FlagKey = keyof typeof FLAGS;
export type ValueKey = keyof typeof VALUES;

export interface NotifyMessage {
  /** The assignments as split (D1.20), for logs and tests. */
  lines: string[];
  flags: Record<FlagKey, boolean>;
  /** Present only when the datagram had a line for that key. */
  values: Partial<Record<ValueKey, string>>;
}

export type ParseResult =
  | { ok: true; message: NotifyMessage }
  | { ok: false; reason: RejectReason; detail: string };

/** What the receive path knows about one datagram, without the fds themselves. */
export interface DatagramMeta {
  data: Uint8Array;
  hasCreds: boolean;
  truncated: boolean;
  ctruncated: boolean;
  fdCount: number;
}

/**
 * Validate (D1.14-D1.17) and split (D1.20) one datagram.
 *
 * Deviation from D1.16: a credential pid of 0 is NOT rejected here. In a pod
 * without a shared PID namespace every sender reads as pid 0, and the agent
 * accepts on socket identity instead (the server logs that once).
 */
export function parseDatagram(d: DatagramMeta): ParseResult {
  if (d.truncated) return reject('too_large', `payload exceeds ${MAX_NOTIFY_BYTES} bytes`);
  if (d.ctruncated) return reject('truncated', 'truncated control data (too many fds sent?)');
  if (!d.hasCreds) return reject('no_credentials', 'datagram lacks credentials');
  let bytes = d.data;
  // One trailing NUL is tolerated (some clients send C strings with it).
  if (bytes.length > 0 && bytes[bytes.length - 1] === 0) bytes = bytes.subarray(0, bytes.length - 1);
  if (bytes.includes(0)) return reject('nul_byte', 'datagram contains an embedded NUL byte');
  const lines = splitAssignments(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1'));
  return { ok: true, message: toMessage(lines) };
}

/**
 * Split on '\n' and '\r', dropping empty lines (D1.20). Bytes are kept as latin1
 * so that every byte maps to one code unit: validation of individual fields
 * (STATUS as UTF-8, FDNAME as ASCII) happens where the field is used.
 *
 * Deviation from D1.21 (backslash escapes in systemd's splitter, marked inferred
 * in the spec): backslashes are kept literally. No client we know escapes.
 */
export function splitAssignments(text: string): string[] {
  return text.split(/[\r\n]+/).filter((l) => l.length > 0);
}

export function toMessage(lines: string[]): NotifyMessage {
  const flags = {} as Record<FlagKey, boolean>;
  for (const key of Object.keys(FLAGS) as FlagKey[]) flags[key] = false;
  const values: Partial<Record<ValueKey, string>> = {};
  for (const line of lines) {
    const flag = flagByLine.get(line);
    if (flag) flags[flag] = true;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = valueKeyByPrefix.get(line.slice(0, eq + 1));
    if (key && values[key] === undefined) values[key] = line.slice(eq + 1);
  }
  return { lines, flags, values };
}

/** Built once: toMessage runs for every datagram on the receive path. */
const flagByLine = new Map<string, FlagKey>((Object.entries(FLAGS) as [FlagKey, string][]).map(([k, v]) => [v, k]));

const valueKeyByPrefix = new Map<string, ValueKey>(
  (Object.entries(VALUES) as [ValueKey, string][]).map(([k, v]) => [v, k]),
);

/**
 * BARRIER=1 (A2.18): valid only alone, with exactly one fd (the write end of the
 * client's pipe). Either way the caller closes every fd, which is the acknowledgement.
 */
export function checkBarrier(m: NotifyMessage, fdCount: number): string | null {
  if (m.lines.length !== 1) return 'BARRIER=1 sent with other assignments, everything ignored';
  if (fdCount !== 1) return `BARRIER=1 needs exactly one fd, got ${fdCount}`;
  return null;
}

function reject(reason: RejectReason, detail: string): ParseResult {
  return { ok: false, reason, detail };
}

/** latin1 string back to the exact bytes the client sent. */
export function rawBytes(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

/** STATUS= must be valid UTF-8 (A2.5); returns the decoded text or null. */
export function decodeUtf8(s: string): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(rawBytes(s));
  } catch {
    return null;
  }
}
