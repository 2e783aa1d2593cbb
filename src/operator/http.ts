/**
 * The operator's HTTP endpoint: /metrics, /healthz (the process serves and its
 * watches are not stuck) and /readyz (caches synced: a replica that has not listed
 * yet must not serve the webhook or take the lease's work); what the two answer is
 * health.ts. Small and bounded like the agent's.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Liveness } from '../unit/run.js';

export const OPERATOR_HTTP_MAX_CONNECTIONS = 64;

export interface OperatorHttpDeps {
  registry: Registry;
  healthy(): Liveness;
  ready(): Liveness;
}

export class OperatorHttp {
  private readonly server: Server;

  constructor(d: OperatorHttpDeps) {
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const answer = (code: number, body: string, type = 'text/plain; charset=utf-8'): void => {
        res.writeHead(code, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      if (req.method !== 'GET' && req.method !== 'HEAD') return answer(405, 'method not allowed\n');
      if (path === '/metrics') {
        d.registry.metrics().then((m) => answer(200, m, d.registry.contentType), (e: unknown) => answer(500, `${String(e)}\n`));
        return;
      }
      if (path === '/healthz' || path === '/readyz') {
        const v = path === '/healthz' ? d.healthy() : d.ready();
        return answer(v.ok ? 200 : 503, `${v.reason}\n`);
      }
      answer(404, 'not found: /metrics, /healthz, /readyz\n');
    });
    this.server.maxConnections = OPERATOR_HTTP_MAX_CONNECTIONS;
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
    this.server.keepAliveTimeout = 5_000;
    this.server.timeout = 10_000;
    this.server.on('timeout', (s: { destroy(): void }) => s.destroy());
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port }, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
