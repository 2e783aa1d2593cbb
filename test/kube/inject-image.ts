/**
 * The image an injected pod runs: the fdstore image the cluster already has
 * (scripts/image/build.sh's tarball), with this checkout's dist/ over its own, so the
 * agent in the pod is the code under test (--exit-when-done included) without a full
 * image build. Built with podman in a storage of its own (nothing shared is touched),
 * imported into the node's containerd; tagged by the hash of dist/, so a rerun
 * without changes imports nothing new.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, importImage, kubeEnv, run } from './cluster.js';

const IMAGE_CACHE = process.env.FDSTORE_IMAGE_CACHE ?? '/var/cache/fdstore-image';
const WORK = '/tmp/fdstore-inject-image';

function hashDir(dir: string, h = createHash('sha256')): ReturnType<typeof createHash> {
  for (const e of readdirSync(dir).sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) hashDir(p, h.update(`d:${e}\n`));
    else h.update(`f:${e}\n`).update(readFileSync(p));
  }
  return h;
}

export async function injectImage(): Promise<string> {
  const dir = join(IMAGE_CACHE, 'images');
  const base = existsSync(dir) ? readdirSync(dir).filter((f) => /^fdstore-.*\.tar$/.test(f)).sort((a, b) => statSync(join(dir, b)).mtimeMs - statSync(join(dir, a)).mtimeMs)[0] : undefined;
  if (!base) throw new Error(`no fdstore image tarball in ${dir}: run scripts/image/build.sh (as root) first`);
  const baseTag = `localhost/fdstore:${base.replace(/^fdstore-/, '').replace(/\.tar$/, '')}`;
  const tag = `localhost/fdstore-inject-test:${hashDir(join(REPO, 'dist')).update(baseTag).digest('hex').slice(0, 12)}`;
  const have = await run('ctr', ['--address', kubeEnv().ctrSock, '-n', 'k8s.io', 'images', 'ls', '-q', `name==${tag}`]);
  if (have.stdout.trim() === tag) return tag;
  const P = ['--root', join(WORK, 'root'), '--runroot', join(WORK, 'run'), '--cgroup-manager=cgroupfs', '--runtime', 'runc', '--events-backend=file'];
  const ctx = join(WORK, 'ctx');
  rmSync(ctx, { recursive: true, force: true });
  mkdirSync(ctx, { recursive: true });
  cpSync(join(REPO, 'dist'), join(ctx, 'dist'), { recursive: true });
  writeFileSync(join(ctx, 'Containerfile'), `FROM ${baseTag}\nCOPY dist/ /opt/fdstore/dist/\n`);
  const step = async (args: string[]): Promise<void> => {
    const r = await run('podman', [...P, ...args], { timeoutMs: 300_000 });
    if (r.code !== 0) throw new Error(`podman ${args[0]} failed (${r.code}): ${r.stderr.trim()}`);
  };
  await step(['load', '-q', '-i', join(dir, base)]);
  await step(['build', '-q', '--pull=never', '-t', tag, ctx]);
  const tar = join(WORK, 'image.tar');
  await step(['save', '-q', '--format', 'docker-archive', '-o', tar, tag]);
  await importImage(tar);
  rmSync(tar, { force: true });
  return tag;
}
