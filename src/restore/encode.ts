/**
 * Pure encoding of the restore protocol (agent/include/proto.h): header, batches
 * of at most 253 fds with their names, end marker.
 */

import { FDS_PER_MSG, PROTO_MAGIC } from '../native/proto.js';
export { FDS_PER_MSG, PROTO_MAGIC };

export interface RestoreHeader {
  fds: number;
  notify: boolean;
  fdstoreMax: number;
  watchdogUsec: number;
}

export interface Passed {
  fd: number;
  name: string;
}

export interface Message {
  data: Buffer;
  fds: number[];
}

export function encodeHeader(h: RestoreHeader): Buffer {
  return Buffer.from(
    `${PROTO_MAGIC}fds=${h.fds}\nnotify=${h.notify ? 1 : 0}\nfdstore=${h.fdstoreMax}\nwatchdog_usec=${Math.round(h.watchdogUsec)}\n`,
  );
}

/** Batches of at most FDS_PER_MSG: "F\n" then one "name\n" per fd. */
export function* batches(items: readonly Passed[]): Generator<Message> {
  for (let i = 0; i < items.length; i += FDS_PER_MSG) {
    const slice = items.slice(i, i + FDS_PER_MSG);
    yield { data: Buffer.from('F\n' + slice.map((p) => p.name + '\n').join('')), fds: slice.map((p) => p.fd) };
  }
}

export const END = Buffer.from('E\n');

export function abortMessage(reason: string): Buffer {
  return Buffer.from(`X ${reason.replace(/\n/g, ' ')}\n`);
}
