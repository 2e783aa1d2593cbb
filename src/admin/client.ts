/** Client side of the admin socket, used by `fdstore ls` and `fdstore clean`. */
import { lstatSync, statSync } from 'node:fs';
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
      // A refused peer's request is still unread when the agent closes: a reset, not an end.
      else if (e.code === 'ECONNRESET' || e.code === 'EPIPE') reject(new Error(refusedMessage(path)));
      else reject(e);
    });
    sock.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf) as AdminResponse);
      } catch {
        reject(new Error(refusedMessage(path)));
      }
    });
  });
}

/**
 * The agent closes an admin connection unanswered when the peer's uid (SO_PEERCRED)
 * is not its own. The socket is the agent's (it bound it), so its owner is the uid
 * the agent accepts: name it, and this process's uid.
 */
function refusedMessage(path: string): string {
  const me = process.getuid?.() ?? -1;
  let owner: number | null = null;
  try {
    owner = statSync(path).uid;
  } catch {
    // gone since: state the rule without the number
  }
  if (owner === me) return `the agent at ${path} closed the connection without an answer`;
  const who = owner === null ? "the agent's own uid" : `the agent's uid ${owner} (the socket's owner)`;
  const hint = owner === null ? '' : `. Run this command as uid ${owner} (e.g. kubectl exec into the agent's container)`;
  return `the agent refused this connection: its admin socket ${path} accepts only ${who}; this is uid ${me}${hint}`;
}
