/**
 * What the keeper keeps with each fd, opaque to it: which container, which store
 * name and poll flag, or which `listen:` entry. Part of the protocol (its version),
 * not of the state blob, so fds can be adopted when the blob cannot be read.
 * Names never contain NUL (F3.14: 0x20..0x7E); container names are DNS labels.
 */
import type { ListenConfig } from '../config/types.js';

export type Meta =
  | { kind: 'store'; container: string; name: string; poll: boolean }
  | { kind: 'listen'; container: string; name: string; listenKind: ListenConfig['kind']; address: string };

const LISTEN_KINDS = new Set<string>(['tcp', 'udp', 'unix-stream', 'unix-dgram']);

export function encodeMeta(m: Meta): string {
  if (m.kind === 'store') return `s${m.poll ? '1' : '0'}${m.container}\0${m.name}`;
  return `l${m.container}\0${m.name}\0${m.listenKind}\0${m.address}`;
}

/** null for metadata this agent does not understand (its fds are closed, not adopted). */
export function decodeMeta(s: string): Meta | null {
  if (s.startsWith('s') && s.length >= 2) {
    const parts = s.slice(2).split('\0');
    if (parts.length !== 2 || (s[1] !== '0' && s[1] !== '1')) return null;
    return { kind: 'store', container: parts[0]!, name: parts[1]!, poll: s[1] === '1' };
  }
  if (s.startsWith('l')) {
    const parts = s.slice(1).split('\0');
    if (parts.length !== 4 || !LISTEN_KINDS.has(parts[2]!)) return null;
    return { kind: 'listen', container: parts[0]!, name: parts[1]!, listenKind: parts[2] as ListenConfig['kind'], address: parts[3]! };
  }
  return null;
}
