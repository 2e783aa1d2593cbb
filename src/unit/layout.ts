/**
 * The run dir's layout, named once. Every path the agent, `fdstore ls`, the demo
 * and the tests use comes from here; the launcher's side is in proto.h.
 *
 *   DIR/NAME/notify          NOTIFY_SOCKET of container NAME (SOCK_DGRAM)
 *   DIR/NAME/restore         the launcher's restore socket (SOCK_SEQPACKET)
 *   DIR/NAME/fdstore-exec    the launcher, copied in by the agent
 *   DIR/.fdstore/admin.sock  the admin socket (`fdstore ls`, `fdstore clean`)
 *   DIR/.fdstore/lock        flock held by the running agent, holding its pid
 *   DIR/.keeper/keeper.sock  fdstore-keeper's socket (docs/keeper.md; the keeper
 *                            creates it: keeper.h has the same two names)
 *
 * The chart (templates/_sidecar.tpl) and the injector (inject/pieces.ts) name the
 * same paths in a pod; test/chart/sidecar.test.ts holds the chart to this module.
 *
 * `.fdstore` and `.keeper` can never be a container's directory: container names are DNS-1123
 * labels (no leading dot).
 */
import { join } from 'node:path';
import { NOTIFY_NAME, RESTORE_NAME } from '../native/proto.js';

export const LAUNCHER_NAME = 'fdstore-exec';
export const ADMIN_DIR = '.fdstore';
export const ADMIN_SOCKET = 'admin.sock';
export const LOCK_NAME = 'lock';
/** Same names as agent/include/keeper.h (test/keeper/peers.test.ts checks them). */
export const KEEPER_DIR = '.keeper';
export const KEEPER_SOCKET = 'keeper.sock';
/** Default run dir of `fdstore agent`, `ls` and `clean`. */
export const DEFAULT_RUN_DIR = '/run/fdstore';

export function containerDir(runDir: string, name: string): string {
  return join(runDir, name);
}
export function notifyPath(runDir: string, name: string): string {
  return join(runDir, name, NOTIFY_NAME);
}
export function restorePath(runDir: string, name: string): string {
  return join(runDir, name, RESTORE_NAME);
}
export function launcherPath(runDir: string, name: string): string {
  return join(runDir, name, LAUNCHER_NAME);
}
export function adminDir(runDir: string): string {
  return join(runDir, ADMIN_DIR);
}
export function adminSocketPath(runDir: string): string {
  return join(runDir, ADMIN_DIR, ADMIN_SOCKET);
}
export function lockPath(runDir: string): string {
  return join(runDir, ADMIN_DIR, LOCK_NAME);
}
export function keeperSocketPath(runDir: string): string {
  return join(runDir, KEEPER_DIR, KEEPER_SOCKET);
}
