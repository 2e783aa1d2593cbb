/**
 * What the operator-plumbing tests share: the real cluster's kubeconfig (from the
 * cluster's global setup, or FDSTORE_KUBECONFIG / KUBECONFIG), a fresh namespace per
 * file, a KubeConfig routed through a TcpProxy, waiting for conditions with a deadline,
 * and the process's open fds and active handles for leak checks.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import https from 'node:https';
import { KubeConfig, type CoreV1Api } from '@kubernetes/client-node';
import { createLogger, type Logger } from '../../src/log/log.js';

/**
 * The cluster's kubeconfig, or undefined (the tests are then skipped, saying why):
 * FDSTORE_KUBECONFIG, or KUBECONFIG when the project's scripts/kube/up.sh set it (with
 * its FDSTORE_KUBE_* lines). A KUBECONFIG a developer happens to have in the shell is
 * never used: these tests create and delete namespaces.
 */
export function kubeconfigPath(): string | undefined {
  const e = process.env;
  const p = e.FDSTORE_KUBECONFIG || (e.FDSTORE_KUBE_NODE_IMAGE ? e.KUBECONFIG : undefined);
  return p && existsSync(p) ? p : undefined;
}

export const NEEDS_CLUSTER = '[needs a cluster: npm run test:kube, or FDSTORE_KUBECONFIG=PATH]';

/** A namespace of our own (the cluster is shared); deleted by the returned function. */
export async function freshNamespace(core: CoreV1Api, prefix: string): Promise<{ name: string; remove: () => Promise<void> }> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name, labels: { 'fdstore.dev/test': 'operator-kube' } } } });
  return {
    name,
    remove: async () => {
      await core.deleteNamespace({ name }).catch(() => {});
    },
  };
}

/** The same cluster and credentials, reached through 127.0.0.1:port (the API server's cert names 127.0.0.1). */
export function viaProxy(kc: KubeConfig, port: number): KubeConfig {
  const cluster = kc.getCurrentCluster()!;
  const server = new URL(cluster.server);
  const host = server.hostname;
  server.hostname = '127.0.0.1';
  server.port = String(port);
  const proxied = new KubeConfig();
  proxied.loadFromOptions({
    clusters: [{ ...cluster, server: server.toString().replace(/\/$/, ''), tlsServerName: cluster.tlsServerName ?? (host === '127.0.0.1' ? undefined : host) }],
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.getCurrentContext(),
  });
  return proxied;
}

export async function waitFor<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const end = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (performance.now() >= end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Open fds of this process. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Active handles by type (TCPSocketWrap, Timeout, Immediate...): what keeps the loop alive. */
export function handles(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1;
  return out;
}

export interface Baseline {
  fds: number;
  handles: Record<string, number>;
}

export function baseline(): Baseline {
  return { fds: fdCount(), handles: handles() };
}

/** Waits until fds and handles are back to (at most) the baseline; fails naming what stayed. */
export async function expectNoLeak(base: Baseline, timeoutMs = 5_000): Promise<void> {
  const extra = (): string[] => {
    const now = handles();
    const over = Object.entries(now).filter(([k, n]) => n > (base.handles[k] ?? 0)).map(([k, n]) => `${k} ${base.handles[k] ?? 0}->${n}`);
    const fds = fdCount();
    if (fds > base.fds) over.push(`fds ${base.fds}->${fds}`);
    return over;
  };
  await waitFor(() => extra().length === 0, timeoutMs, 'fds and handles back to the baseline').catch((err: Error) => {
    throw new Error(`${err.message}: ${extra().join(', ')}`);
  });
}

/** A logger that keeps its lines (for assertions and for a failing test's output). */
export function memoryLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) }, 'debug');
  return { log, lines };
}

export interface WatchLine {
  status: number;
  line?: { type?: string; object?: { code?: number; message?: string } };
}

/** The first line of a raw watch (or its HTTP status when not 200); the connection is then dropped. */
export async function firstWatchLine(kc: KubeConfig, pathAndQuery: string): Promise<WatchLine> {
  const opts: https.RequestOptions = { method: 'GET' };
  await kc.applyToHTTPSOptions(opts);
  const url = new URL(kc.getCurrentCluster()!.server + pathAndQuery);
  try {
    return await new Promise<WatchLine>((resolve, reject) => {
      const req = https.request(url, opts, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          resolve({ status: res.statusCode ?? 0 });
          return;
        }
        let buf = '';
        res.on('data', (b: Buffer) => {
          buf += b.toString();
          const nl = buf.indexOf('\n');
          if (nl < 0) return;
          resolve({ status: 200, line: JSON.parse(buf.slice(0, nl)) as WatchLine['line'] });
          req.destroy();
        });
      });
      req.setTimeout(10_000, () => req.destroy(new Error('no watch line within 10 s')));
      req.on('error', reject);
      req.end();
    });
  } finally {
    (opts.agent as https.Agent | undefined)?.destroy();
  }
}

/** A real 410: an HTTP 410, or (watch cache) HTTP 200 with an ERROR event of code 410. */
export function isGone(w: WatchLine): boolean {
  return w.status === 410 || (w.line?.type === 'ERROR' && w.line.object?.code === 410);
}
