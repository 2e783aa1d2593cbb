/**
 * The agent's start-up checks and small helpers: paths that must fit sun_path,
 * listen addresses, an earlier agent's sockets, bind errors with their likely cause.
 */
import { lstatSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ContainerConfig } from '../config/types.js';
import { notifyPath, restorePath } from '../unit/layout.js';
import { at } from './rundir.js';
import { listenAddressProblem } from './listen.js';

/** Longest AF_UNIX path: sun_path is 108 bytes including the terminating NUL. */
export const SUN_PATH_MAX = 107;

/** An earlier agent's socket at name in the directory dfd (never through a symlink); or under the path dir. */
export function hasSocket(dfd: number | string, name: string, byPath = false): boolean {
  try {
    return lstatSync(byPath ? `${dfd as string}/${name}` : at(dfd as number, name)).isSocket();
  } catch {
    return false;
  }
}

/** Why a container directory may be someone else's: the kubelet makes a subPath directory that is missing. */
export const SUBPATH_HINT = ' (made by the kubelet for a subPath mount before the agent started? run the agent as a native sidecar so it creates the directory)';

/** Bind the socket named path; a failure names the path and, for EACCES, the likely cause. */
export function binding<T>(path: string, bind: () => T): T {
  try {
    return bind();
  } catch (e) {
    const err = e as Error & { code?: string };
    const hint =
      err.code === 'EACCES'
        ? `: the agent's uid ${process.getuid?.()} cannot write ${dirname(path)} (created by someone else first? run the agent as a native sidecar so it creates the directory)`
        : '';
    throw Object.assign(new Error(`cannot bind ${path}: ${err.message}${hint}`), { code: err.code });
  }
}

export function checkPaths(runDir: string, name: string): void {
  for (const p of [notifyPath(runDir, name), restorePath(runDir, name)]) checkPathFits(p);
}

export function checkListen(cfg: ContainerConfig): void {
  cfg.listen.forEach((l, i) => {
    const problem = listenAddressProblem(l.kind, l.address);
    if (problem !== null) {
      throw Object.assign(new Error(`container ${cfg.name}: listen[${i}] ${l.name}: ${l.kind} address ${JSON.stringify(l.address)}: ${problem}`), {
        code: 'ECONFIG',
      });
    }
  });
}

export function checkPathFits(path: string): void {
  if (Buffer.byteLength(path) > SUN_PATH_MAX) {
    throw Object.assign(new Error(`socket path ${path} is longer than ${SUN_PATH_MAX} bytes (sun_path): use a shorter --run-dir or container name`), {
      code: 'ECONFIG',
    });
  }
}

/** Settings that differ, by field name (for the log). */
export function changedFields(a: ContainerConfig, b: ContainerConfig): string[] {
  return (Object.keys(b) as (keyof ContainerConfig)[]).filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}
