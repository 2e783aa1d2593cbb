/** Client side of the admin socket, used by `fdstore ls` and `fdstore clean`. */
import { connect } from 'node:net';
import { adminSocketPath, type AdminRequest, type AdminResponse } from './protocol.js';

export const ADMIN_TIMEOUT_MS = 10_000;

export function adminCall(runDir: string, req: AdminRequest): Promise<AdminResponse> {
  const path = adminSocketPath(runDir);
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
