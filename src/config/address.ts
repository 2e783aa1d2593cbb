/**
 * The address forms a `listen:` entry takes, checked where the config is read (a
 * file the agent reloads, flags) and again by the agent before it binds anything.
 * Pure. config/schema.ts states the same forms as patterns for the API server.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { ListenConfig } from './types.js';

/** sockaddr_un.sun_path: 108 bytes, one kept for the NUL (paths) or the leading NUL (abstract). */
export const UNIX_ADDRESS_MAX = 107;

/**
 * Why `address` is not of the form its kind takes, or null. IP literals only: the
 * agent binds before any resolver is worth trusting, and systemd's ListenStream=
 * takes no names either.
 */
export function listenAddressProblem(kind: ListenConfig['kind'], address: string): string | null {
  if (kind === 'tcp' || kind === 'udp') {
    const m = /^\[([^\]]+)\]:([0-9]+)$/.exec(address) ?? /^([^:[\]]+):([0-9]+)$/.exec(address);
    if (!m) return 'expected "A.B.C.D:PORT" or "[IPV6]:PORT"';
    const [, host, port] = m as unknown as [string, string, string];
    const v6 = address.startsWith('[');
    // isIPv6 takes a zone ("fe80::1%eth0"); the bind does not, and the docs promise none.
    if (v6 && host.includes('%')) return `${host}: no zone ids (IP literals only)`;
    if (v6 ? !isIPv6(host) : !isIPv4(host)) return `${host} is not an IPv${v6 ? 6 : 4} address (IP literals only)`;
    if (Number(port) > 65535) return `port ${port} is out of range`;
    return null;
  }
  if (address.startsWith('@')) {
    if (address.length < 2) return 'an abstract name needs at least one character after "@"';
    if (Buffer.byteLength(address) > UNIX_ADDRESS_MAX + 1) return `abstract name longer than ${UNIX_ADDRESS_MAX} bytes`;
    return null;
  }
  if (!address.startsWith('/')) return 'expected an absolute path or "@abstract"';
  if (address.includes('\0')) return 'path contains NUL';
  if (Buffer.byteLength(address) > UNIX_ADDRESS_MAX) return `path longer than ${UNIX_ADDRESS_MAX} bytes (sun_path)`;
  return null;
}
