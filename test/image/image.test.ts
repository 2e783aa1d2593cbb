/**
 * The container image (Dockerfile), built by scripts/image/build.sh from local debootstrap
 * bases and run with podman (runc) the way a kubelet runs the chart's containers: read-only
 * root file system without podman's extra tmpfs mounts, all capabilities dropped,
 * no-new-privileges, the image's own user.
 *
 * Proves: the tag (version + content hash) and the docker-archive tarball containerd
 * imports; a second build is a cache hit; `fdstore --version`; no shell, package manager or
 * compiler (exec of /bin/sh fails, and every ELF file in the image is on a short list); all
 * files root's and read-only to the agent; uid 64919 with a passwd entry; the agent starts
 * on a read-only root with only its run dir mounted, answers /healthz, `podman exec ...
 * fdstore ls` works (the `kubectl exec` of the README), node is PID 1 and stops cleanly on
 * SIGTERM; the launcher it copies into DIR/NAME runs in an empty image as another uid; the
 * operator starts (client-node loads) and serves /healthz; the size against a
 * node:20-bookworm-slim equivalent (scripts/image/slim-equivalent.sh).
 *
 * Needs root and podman, runc, debootstrap (Debian), the Debian mirror and the npm registry
 * when cold (minutes); warm, the build is a few seconds. Skipped only without root.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot, NEEDS_ROOT, REPO } from '../helpers/proc.js';
import { listImage, podman, podmanOk, runScript, waitForLog, type ImageFile } from './podman.js';

const BUILD = resolve(REPO, 'scripts', 'image', 'build.sh');
const SLIM = resolve(REPO, 'scripts', 'image', 'slim-equivalent.sh');
/** Cold: a debootstrap, apt for the builder base, npm ci, node-gyp, tsc, on a loaded 2-core machine. */
const BUILD_MS = 40 * 60_000;
const AGENT_UID = 64919;
const APP_UID = 10001;
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const PREFIX = 'fdstore-image-test-';
/** 124 MB when written, node alone 86 MB: a bound that catches a stray dev dependency or toolchain. */
const MAX_IMAGE_BYTES = 160_000_000;
/** Every ELF file the runtime may hold: node, the libraries ldd names for it, ours. */
const ELF_ALLOWED = [
  /^\/usr\/local\/bin\/(node|fdstore)$/,
  /^\/opt\/fdstore\/agent\/launcher\/fdstore-exec$/,
  /^\/opt\/fdstore\/agent\/keeper\/fdstore-keeper$/,
  /^\/opt\/fdstore\/agent\/addon\/build\/Release\/fdstore\.node$/,
  /^\/lib64\/ld-linux-x86-64\.so\.2$/,
  /^\/lib\/x86_64-linux-gnu\/lib(c|m|dl|pthread|gcc_s|stdc\+\+)\.so\.[0-9]+$/,
];
const FORBIDDEN = /(^|\/)(sh|bash|dash|busybox|apt|apt-get|dpkg|gcc|cc|g\+\+|make|ld|as|npm|npx|python3?|perl|env)$/;

interface Env {
  pe: NodeJS.ProcessEnv;
  image: string;
  tarball: string;
  size: number;
  hashed: string[];
  coldMs: number;
  cold: boolean;
  warm: Map<string, string>;
  warmMs: number;
}

let env: Env | null = null;
let setupError: unknown = null;
const dirs: string[] = [];
const containers: string[] = [];

function need(): Env {
  if (env) return env;
  throw new Error(`image build failed, so this test cannot run: ${setupError instanceof Error ? setupError.message : String(setupError)}`);
}

function must(kv: Map<string, string>, key: string): string {
  const v = kv.get(key);
  if (!v) throw new Error(`build.sh printed no ${key}`);
  return v;
}

beforeAll(async () => {
  if (!isRoot) return;
  try {
    const first = await runScript(BUILD, [], BUILD_MS);
    const warm = await runScript(BUILD, [], BUILD_MS);
    const pe = { ...process.env, CONTAINERS_CONF: must(first.kv, 'CONTAINERS_CONF'), CONTAINERS_STORAGE_CONF: must(first.kv, 'CONTAINERS_STORAGE_CONF') };
    env = {
      pe,
      image: must(first.kv, 'IMAGE'),
      tarball: must(first.kv, 'TARBALL'),
      size: Number(must(first.kv, 'IMAGE_SIZE')),
      hashed: must(first.kv, 'HASHED_PATHS').split(' '),
      coldMs: first.ms,
      cold: first.kv.get('BUILT') === '1',
      warm: warm.kv,
      warmMs: warm.ms,
    };
    console.log(`image ${env.image}: ${(env.size / 1e6).toFixed(1)} MB; build.sh ${(first.ms / 1000).toFixed(1)} s (${env.cold ? 'built' : 'cached'}), again ${(warm.ms / 1000).toFixed(1)} s`);
    // containers of an earlier, killed run
    const stale = (await podmanOk(pe, ['ps', '-a', '--format', '{{.Names}}', '--filter', `name=^${PREFIX}`])).split('\n').filter(Boolean);
    for (const name of stale) await podman(pe, ['rm', '-f', '-t', '0', name]);
  } catch (e) {
    setupError = e;
  }
}, 2 * BUILD_MS);

afterAll(async () => {
  if (env) for (const name of containers) await podman(env.pe, ['rm', '-f', '-t', '0', name]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 120_000);

/** A kubelet's defaults for the chart's containers, as podman flags. */
const HARDENED = ['--read-only', '--read-only-tmpfs=false', '--cap-drop=ALL', '--security-opt=no-new-privileges'];

function runArgs(image: string, opts: { network?: string; entrypoint?: string; extra?: string[] }, args: string[]): string[] {
  return [
    'run', '--rm', ...HARDENED, `--network=${opts.network ?? 'none'}`,
    ...(opts.entrypoint ? ['--entrypoint', opts.entrypoint] : []),
    ...(opts.extra ?? []), image, ...args,
  ];
}

describe.skipIf(!isRoot)(`the container image ${NEEDS_ROOT}`, () => {
  it('is tagged <version>-<content hash> (never latest), saved as a docker-archive for containerd, and a second build is a cache hit', () => {
    const e = need();
    expect(e.image).toMatch(new RegExp(`^localhost/fdstore:${VERSION.replace(/\./g, '\\.')}-[0-9a-f]{12}$`));
    const manifest = JSON.parse(execFileSync('tar', ['-xOf', e.tarball, 'manifest.json'], { encoding: 'utf8' })) as { RepoTags: string[] }[];
    expect(manifest).toHaveLength(1);
    expect(manifest[0]!.RepoTags).toEqual([e.image]);
    expect(e.warm.get('IMAGE')).toBe(e.image);
    expect(e.warm.get('BUILT')).toBe('0');
  });

  it('hashes for its tag exactly the paths the Dockerfile copies from the context', () => {
    const e = need();
    const copied = readFileSync(join(REPO, 'Dockerfile'), 'utf8').split('\n')
      .filter((l) => /^COPY\s/.test(l) && !/--from=/.test(l))
      .flatMap((l) => l.trim().split(/\s+/).slice(1, -1))
      .map((p) => p.replace(/\/$/, ''));
    expect(new Set(e.hashed)).toEqual(new Set([...copied, 'Dockerfile', '.dockerignore']));
  });

  it('prints package.json\'s version through its entrypoint, on a read-only root with no network', async () => {
    const e = need();
    expect((await podmanOk(e.pe, runArgs(e.image, {}, ['--version']))).trim()).toBe(`fdstore ${VERSION}`);
    expect((await podmanOk(e.pe, runArgs(e.image, { entrypoint: '/usr/local/bin/fdstore-exec' }, ['--version']))).trim()).toBe(`fdstore-exec ${VERSION}`);
  });

  it('has no shell, package manager or compiler; its only ELF files are node, its libraries and ours; all root\'s, none writable by the agent', async () => {
    const e = need();
    const sh = await podman(e.pe, runArgs(e.image, { entrypoint: '/bin/sh' }, ['-c', 'true']));
    expect(sh.code).toBe(127); // podman: the command does not exist in the image
    expect(sh.stderr).toMatch(/\/bin\/sh.*no such file or directory/);

    const files = await listImage(e.pe, e.image);
    const paths = files.map((f) => f.path);
    expect(paths).toContain('/usr/local/bin/node');
    expect(files.filter((f) => f.type !== 'dir' && FORBIDDEN.test(f.path)).map((f) => f.path)).toEqual([]);
    const elves = files.filter((f) => f.elf).map((f) => f.path).sort();
    expect(elves.filter((p) => !ELF_ALLOWED.some((re) => re.test(p)))).toEqual([]);
    expect(elves).toHaveLength(5 + 1 + 6); // ours (entry, launcher, keeper, addon) and node, ld.so, six libraries
    // the whole top level: nothing but what stage-runtime.sh lays out
    expect(files.filter((f) => f.path.lastIndexOf('/') === 0).map((f) => f.path).sort()).toEqual(['/etc', '/lib', '/lib64', '/opt', '/usr']);
    const notRoots = files.filter((f: ImageFile) => f.uid !== 0 || (f.type !== 'symlink' && (f.mode & 0o022) !== 0));
    expect(notRoots.map((f) => `${f.path} uid ${f.uid} mode ${f.mode.toString(8)}`)).toEqual([]);
    // runtime dependencies only
    expect(paths.some((p) => p.startsWith('/opt/fdstore/node_modules/@kubernetes/client-node/'))).toBe(true);
    for (const dev of ['typescript', 'vitest', 'eslint', 'ajv', 'kubernetes-models', 'fdstore']) {
      expect(paths, dev).not.toContain(`/opt/fdstore/node_modules/${dev}`);
    }
  });

  it('runs as uid 64919, which its /etc/passwd names', async () => {
    const e = need();
    const inspect = JSON.parse(await podmanOk(e.pe, ['image', 'inspect', e.image])) as {
      Config: { User: string; Entrypoint: string[]; Labels: Record<string, string> };
    }[];
    expect(inspect[0]!.Config.User).toBe(`${AGENT_UID}:${AGENT_UID}`);
    expect(inspect[0]!.Config.Entrypoint).toEqual(['/usr/local/bin/fdstore']);
    expect(inspect[0]!.Config.Labels['org.opencontainers.image.version']).toBe(VERSION);
    expect(inspect[0]!.Config.Labels['org.opencontainers.image.revision']).toMatch(/^[0-9a-f]{40}(-dirty)?$/);
    const js = 'const os = require("os"); console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), user: os.userInfo().username }))';
    const out = await podmanOk(e.pe, runArgs(e.image, { entrypoint: '/usr/local/bin/node' }, ['-e', js]));
    expect(JSON.parse(out)).toEqual({ uid: AGENT_UID, gid: AGENT_UID, user: 'fdstore' });
  });

  it('the agent runs on a read-only root with only its run dir mounted: /healthz, fdstore ls by exec, node as PID 1, a clean SIGTERM; its launcher runs in an empty image as another uid', async () => {
    const e = need();
    // an emptyDir as the kubelet makes it: root's, mode 0777, no sticky bit
    const runDir = mkdtempSync(join(tmpdir(), PREFIX));
    dirs.push(runDir);
    chmodSync(runDir, 0o777);
    const name = `${PREFIX}agent-${process.pid}`;
    containers.push(name);
    // host network so the host probes it as a kubelet would; port 0: the agent logs the one it got
    await podmanOk(e.pe, [
      'run', '-d', '--name', name, ...HARDENED, '--network=host', '-v', `${runDir}:/run/fdstore`, e.image,
      'agent', '--run-dir', '/run/fdstore', '--container', 'app', '--http', '127.0.0.1:0',
    ]);
    const m = await waitForLog(e.pe, name, /"msg":"http listening","address":"127\.0\.0\.1:(\d+)"/, 60_000);
    const res = await fetch(`http://127.0.0.1:${m[1]!}/healthz`);
    expect(res.status).toBe(200);
    await waitForLog(e.pe, name, /"msg":"agent ready"/, 30_000);

    expect(await podmanOk(e.pe, ['exec', name, 'fdstore', 'ls'])).toMatch(/^app: /m);

    const pid = (await podmanOk(e.pe, ['inspect', '--format', '{{.State.Pid}}', name])).trim();
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    expect(status).toMatch(/^Name:\s+node$/m); // the entry exec'd node: no wrapper in between
    expect(status).toMatch(new RegExp(`^Uid:\\s+${AGENT_UID}\\s+${AGENT_UID}\\s+${AGENT_UID}\\s+${AGENT_UID}$`, 'm'));
    expect(status).toMatch(/^CapEff:\s+0+$/m);

    // Nothing written to the image's file system: only the mount points podman itself adds.
    const diff = (await podmanOk(e.pe, ['diff', '--format', 'json', name]));
    const changed = Object.values(JSON.parse(diff) as Record<string, string[]>).flat();
    expect(changed.filter((p) => !['/etc', '/etc/hosts', '/etc/hostname', '/etc/resolv.conf', '/run', '/run/fdstore', '/run/.containerenv'].includes(p))).toEqual([]);

    // the launcher the agent copied into DIR/app, in an image with no files at all, as the app's uid
    const emptyCtx = mkdtempSync(join(tmpdir(), PREFIX));
    dirs.push(emptyCtx);
    writeFileSync(join(emptyCtx, 'Containerfile'), 'FROM scratch\nLABEL dev.fdstore.test=empty\n');
    const empty = 'localhost/fdstore-image/empty:1';
    await podmanOk(e.pe, ['build', '-q', '--pull=never', '--network=none', '-t', empty, emptyCtx]);
    const launcher = await podmanOk(e.pe, [
      'run', '--rm', ...HARDENED, '--network=none', '--user', `${APP_UID}:${APP_UID}`,
      '-v', `${join(runDir, 'app')}:/run/fdstore`, empty, '/run/fdstore/fdstore-exec', '--version',
    ]);
    expect(launcher.trim()).toBe(`fdstore-exec ${VERSION}`);

    await podmanOk(e.pe, ['stop', '-t', '20', name], 60_000);
    expect((await podmanOk(e.pe, ['inspect', '--format', '{{.State.ExitCode}}', name])).trim()).toBe('0');
  });

  it('the operator starts from it (client-node loads) and serves /healthz without an API server', async () => {
    const e = need();
    const dir = mkdtempSync(join(tmpdir(), PREFIX));
    dirs.push(dir);
    chmodSync(dir, 0o755);
    // an API server that refuses connections: the operator's watches retry, its HTTP port answers
    writeFileSync(join(dir, 'kubeconfig'), [
      'apiVersion: v1', 'kind: Config',
      'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]',
      'users: [{name: u, user: {token: x}}]',
      'contexts: [{name: c, context: {cluster: c, user: u}}]', 'current-context: c', '',
    ].join('\n'), { mode: 0o644 });
    const name = `${PREFIX}operator-${process.pid}`;
    containers.push(name);
    await podmanOk(e.pe, [
      'run', '-d', '--name', name, ...HARDENED, '--network=host', '-v', `${dir}:/cfg:ro`, e.image,
      'operator', '--kubeconfig', '/cfg/kubeconfig', '--lease-namespace', 'default', '--http', '127.0.0.1:0',
    ]);
    const m = await waitForLog(e.pe, name, /"msg":"http listening","address":"127\.0\.0\.1:(\d+)"/, 60_000);
    await waitForLog(e.pe, name, /"msg":"watch restarting".*ECONNREFUSED 127\.0\.0\.1:1/, 30_000);
    expect((await fetch(`http://127.0.0.1:${m[1]!}/healthz`)).status).toBe(200);
    await podmanOk(e.pe, ['rm', '-f', '-t', '10', name], 60_000);
  });

  it(`is smaller than the same app on a node:20-bookworm-slim equivalent, and under ${MAX_IMAGE_BYTES / 1e6} MB`, { timeout: 20 * 60_000 }, async () => {
    const e = need();
    const { kv } = await runScript(SLIM, [e.image], 20 * 60_000);
    const slim = Number(must(kv, 'SLIM_IMAGE_SIZE'));
    const slimBase = Number(must(kv, 'SLIM_BASE_SIZE'));
    console.log(`image sizes (podman .Size): fdstore ${(e.size / 1e6).toFixed(1)} MB; the same /opt/fdstore on a bookworm-slim equivalent + node 20 ${(slim / 1e6).toFixed(1)} MB (its base alone ${(slimBase / 1e6).toFixed(1)} MB)`);
    expect(e.size).toBeLessThan(MAX_IMAGE_BYTES);
    expect(e.size).toBeLessThan(slim);
  });
});
