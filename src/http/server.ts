/**
 * The agent's HTTP endpoint: /metrics for Prometheus, /healthz, /readyz/NAME and
 * /livez/NAME for the kubelet. It listens on the pod network, so it answers with
 * states and fixed reasons only: fd paths, addresses and STATUS= text stay behind
 * the admin socket (`fdstore ls`).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Liveness } from '../unit/run.js';
import { ConfigError } from '../config/validate.js';
import type { Logger } from '../log/log.js';

/** 9721: unassigned by IANA; configurable since a pod's containers share ports. */
export const DEFAULT_LISTEN = '0.0.0.0:9721';

export interface ListenAddress {
  host: string;
  port: number;
}

/** What a probe asks of a container's current run (Run satisfies it). */
export interface Probed {
  readiness(): Liveness;
  liveness(): Liveness;
}

export interface HttpDeps {
  registry: Registry;
  log: Logger;
  /** The agent is up and its sockets are bound. */
  health(): Liveness;
  /** The current run of a configured container; undefined for an unknown name. */
  run(name: string): Probed | undefined;
}

/** `HOST:PORT`, `[V6]:PORT`, or `off` (null). Throws ConfigError otherwise. */
export function parseListen(value: string): ListenAddress | null {
  if (value === 'off') return null;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`--http must be HOST:PORT, [IPV6]:PORT or off, not ${JSON.stringify(value)}`);
  return { host: m[1] ?? m[2]!, port };
}

export function formatAddress(a: ListenAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

const TEXT = 'text/plain; charset=utf-8';

export class HttpServer {
  private readonly server: Server;

  constructor(private readonly d: HttpDeps) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        d.log.error('http request failed', { path: pathOf(req), error: String(e) });
        if (!res.headersSent) reply(res, req, 500, 'internal error');
        else res.destroy();
      });
    });
    // Probes and scrapes are small: bound what a slow client can hold open.
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
  }

  /** Resolves once listening; rejects with a message naming the address (EADDRINUSE...). */
  start(at: ListenAddress): Promise<ListenAddress> {
    return new Promise((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException): void => {
        const why = e.code === 'EADDRINUSE' ? 'address already in use' : e.message;
        const err = new Error(`cannot listen on ${formatAddress(at)} (--http) for metrics and probes: ${why}; choose a free port or --http off`);
        reject(Object.assign(err, { code: e.code ?? 'ELISTEN' }));
      };
      this.server.once('error', onError);
      this.server.listen({ host: at.host, port: at.port, exclusive: true }, () => {
        this.server.off('error', onError);
        this.server.on('error', (e) => this.d.log.error('http server error', { error: e.message }));
        const a = this.server.address() as AddressInfo;
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  /** Stop listening and drop open connections (keep-alive scrapers included). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return reply(res, req, 405, 'method not allowed');
    }
    const path = pathOf(req);
    if (path === '/metrics') {
      const body = await this.d.registry.metrics();
      return send(res, req, 200, this.d.registry.contentType, body);
    }
    if (path === '/healthz') return probe(res, req, this.d.health());
    const m = /^\/(readyz|livez)\/([^/]+)$/.exec(path);
    if (m) {
      const run = this.d.run(m[2]!);
      if (!run) return reply(res, req, 404, 'unknown container');
      return probe(res, req, m[1] === 'readyz' ? run.readiness() : run.liveness());
    }
    return reply(res, req, 404, 'not found');
  }
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

function probe(res: ServerResponse, req: IncomingMessage, l: Liveness): void {
  reply(res, req, l.ok ? 200 : 503, l.reason);
}

/** One line of text: the kubelet records the first bytes of a failing probe's body. */
function reply(res: ServerResponse, req: IncomingMessage, status: number, line: string): void {
  send(res, req, status, TEXT, `${line}\n`);
}

function send(res: ServerResponse, req: IncomingMessage, status: number, type: string, body: string): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}
