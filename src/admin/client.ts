/** Client side of the admin socket, used by `fdstore ls` and `fdstore clean`. */
import { lstatSync } from 'node:fs';
import { connect } from 'node:net';
import { adminDir } from '../unit/layout.js';
import { adminSocketPath, type AdminRequest, type AdminResponse } from './protocol.js';

export const ADMIN_TIMEOUT_MS = 10_000;

/**
 * Why DIR/.fdstore is not the agent's (issue 7 item 10), or null: it must be a real
 * directory (not a symlink) owned by this uid (the admin socket answers only the
 * agent's own uid) and not writable by group or others, or a fake agent planted
 * there would answer `ls` and `clean`. ENOENT is left to the connect.
 */
export function adminDirProblem(runDir: string, uid: number): string | null {
  const dir = adminDir(runDir);
  let st;
  try {
    st = lstatSync(dir);
  } catch {
    return null;
  }
  if (st.isSymbolicLink()) return `${dir} is a symlink (owned by uid ${st.uid}): not talking to an agent through it`;
  if (!st.isDirectory()) return `${dir} is not a directory (owned by uid ${st.uid})`;
  if (st.uid !== uid) return `${dir} is owned by uid ${st.uid}, not this uid ${uid}: not talking to it (run this as the agent's uid)`;
  if ((st.mode & 0o022) !== 0) {
    return `${dir} (owned by uid ${st.uid}) is writable by group or others (mode 0${(st.mode & 0o7777).toString(8)}): not talking to it`;
  }
  return null;
}

export function adminCall(runDir: string, req: AdminRequest): Promise<AdminResponse> {
  const path = adminSocketPath(runDir);
  const problem = adminDirProblem(runDir, process.getuid?.() ?? 0);
  if (problem !== null) return Promise.reject(new Error(problem));
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    let buf = '';
    const timer = setTimeout(() => sock.destroy(new Error(`no answer from the agent at ${path}`)), ADMIN_TIMEOUT_MS);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (d: string) => (buf += d));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') reject(new Error(`no agent is running for ${runDir} (${path}: ${e.code})`));
      else reject(e);
    });
    sock.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf) as AdminResponse);
      } catch {
        reject(new Error(`the agent closed the connection without an answer (is this uid allowed? the admin socket accepts only the agent's uid)`));
      }
    });
  });
}
