/**
 * Global setup of the e2e tests (vitest.e2e.config.ts), after the kube one has the cluster up:
 * builds the fdstore image (scripts/image/build.sh: the Dockerfile with podman; minutes cold,
 * a second when the tag for these sources exists) and imports it into the node's containerd,
 * unless containerd has it already. Hands IMAGE (localhost/fdstore:<version>-<hash>) and its
 * size to the tests through process.env.
 */
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
/** Cold: a debootstrap, the builder's packages, npm ci and the build, on two busy cores. */
const BUILD_TIMEOUT_MS = 40 * 60_000;
const IMPORT_TIMEOUT_MS = 10 * 60_000;

function buildImage(): Promise<Map<string, string>> {
  return new Promise((done, fail) => {
    const p = spawn('bash', [join(ROOT, 'scripts', 'image', 'build.sh')], { stdio: ['ignore', 'pipe', 'pipe'], timeout: BUILD_TIMEOUT_MS, killSignal: 'SIGKILL' });
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    // its progress goes to our stderr as it happens
    p.stderr.pipe(process.stderr);
    p.on('close', (code) => {
      if (code !== 0) return fail(new Error(`scripts/image/build.sh failed (exit ${code})`));
      done(new Map([...out.matchAll(/^([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((m) => [m[1]!, m[2]!])));
    });
  });
}

function ctr(args: string[], timeoutMs: number): Promise<string> {
  const sock = process.env.FDSTORE_KUBE_CTR_SOCK;
  if (!sock) return Promise.reject(new Error('FDSTORE_KUBE_CTR_SOCK is not set: the kube global setup must run first'));
  return new Promise((done, fail) => {
    execFile('ctr', ['--address', sock, '-n', 'k8s.io', ...args], { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20 },
      (err, stdout, stderr) => (err ? fail(new Error(`ctr ${args.join(' ')}: ${err.message} ${stderr}`)) : done(stdout)));
  });
}

export default async function setup(): Promise<void> {
  const kv = await buildImage();
  const image = kv.get('IMAGE');
  const tarball = kv.get('TARBALL');
  if (!image || !tarball) throw new Error('scripts/image/build.sh printed no IMAGE or TARBALL');
  const have = (await ctr(['images', 'ls', '-q'], 60_000)).split('\n');
  if (!have.includes(image)) {
    const t0 = Date.now();
    await ctr(['images', 'import', tarball], IMPORT_TIMEOUT_MS);
    process.stderr.write(`e2e: imported ${image} into the node's containerd (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
  }
  process.env.FDSTORE_E2E_IMAGE = image;
  process.env.FDSTORE_E2E_IMAGE_SIZE = kv.get('IMAGE_SIZE') ?? '';
}
