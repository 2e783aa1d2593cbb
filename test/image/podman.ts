/**
 * The image test's edges: runs scripts/image/*.sh (KEY=VALUE on stdout), podman with the
 * storage build.sh uses, and reads the image's files from `podman image mount`.
 */
import { execFile, spawn } from 'node:child_process';
import { lstatSync, openSync, readSync, closeSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface CmdResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a script to the end; its KEY=VALUE stdout lines as a map. Throws with stderr on failure. */
export async function runScript(file: string, args: string[], timeoutMs: number): Promise<{ kv: Map<string, string>; ms: number }> {
  const t0 = Date.now();
  const r = await new Promise<CmdResult>((done) => {
    const p = spawn('bash', [file, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', (e) => done({ code: null, stdout, stderr: `${stderr}${e.message}\n` }));
    p.on('close', (code) => done({ code, stdout, stderr }));
  });
  if (r.code !== 0) throw new Error(`bash ${file} ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr.slice(-4000)}`);
  const kv = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) kv.set(m[1]!, m[2]!);
  }
  return { kv, ms: Date.now() - t0 };
}

export function podman(env: NodeJS.ProcessEnv, args: string[], timeoutMs = 60_000): Promise<CmdResult> {
  return new Promise((done) => {
    execFile('podman', args, { env, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      done({ code, stdout, stderr: err && code === null ? `${stderr}${err.message}` : stderr });
    });
  });
}

export async function podmanOk(env: NodeJS.ProcessEnv, args: string[], timeoutMs?: number): Promise<string> {
  const r = await podman(env, args, timeoutMs);
  if (r.code !== 0) throw new Error(`podman ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

export interface ImageFile {
  /** Absolute path inside the image. */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  uid: number;
  mode: number;
  /** Regular files only: starts with the ELF magic. */
  elf: boolean;
}

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

function isElf(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(4);
    return readSync(fd, b, 0, 4, 0) === 4 && b.equals(ELF_MAGIC);
  } finally {
    closeSync(fd);
  }
}

/** Every entry of the image's merged file system (`podman image mount`), without following symlinks. */
export async function listImage(env: NodeJS.ProcessEnv, image: string): Promise<ImageFile[]> {
  const root = (await podmanOk(env, ['image', 'mount', image])).trim();
  try {
    const out: ImageFile[] = [];
    const walk = (rel: string): void => {
      for (const name of readdirSync(join(root, rel))) {
        const path = `${rel}/${name}`;
        const st = lstatSync(join(root, path));
        const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
        out.push({ path, type, uid: st.uid, mode: st.mode & 0o7777, elf: type === 'file' && isElf(join(root, path)) });
        if (type === 'dir') walk(path);
      }
    };
    walk('');
    return out;
  } finally {
    await podman(env, ['image', 'unmount', image]);
  }
}

/** Polls the container's log until a line matches; the match. */
export async function waitForLog(env: NodeJS.ProcessEnv, name: string, re: RegExp, ms: number): Promise<RegExpExecArray> {
  const end = Date.now() + ms;
  let last = '';
  for (;;) {
    const r = await podman(env, ['logs', name]);
    last = r.stdout + r.stderr;
    const m = re.exec(last);
    if (m) return m;
    if (Date.now() > end) throw new Error(`no log line ${re} from ${name} within ${ms} ms:\n${last.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
