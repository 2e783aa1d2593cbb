/**
 * The agent's HTTP endpoint: /metrics for Prometheus, /healthz, /readyz/NAME and
 * /livez/NAME for the kubelet, /status for the operator (http/status.ts). It
 * listens on the pod network, so it answers with states, counts and fixed reasons:
 * fd paths, addresses and pids stay behind the admin socket (`fdstore ls`). The one
 * app-written text is /status's STATUS=, cut to 256 bytes (STATUS_TEXT_MAX): the
 * operator shows it in the FdStore object as systemctl status shows it, and the app
 * writes it for whoever reads its status (docs/security.md).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Registry } from 'prom-client';
import type { Liveness } from '../unit/run.js';
import { ConfigError } from '../config/validate.js';
import type { Logger } from '../log/log.js';
import type { StatusSource } from '../status/service.js';
import { serveStatus, type StatusRequestKind, type StatusRoute } from './status.js';

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
  /** GET /status; absent: 404. */
  status?: StatusSource;
  /** One /status request served (a counter). */
  statusRequest?(kind: StatusRequestKind): void;
  /** Open connections at most (default HTTP_MAX_CONNECTIONS, counted in the fd budget). */
  maxConnections?: number;
  /** Tests only: shorter idle limits than the HTTP_*_TIMEOUT_MS defaults. */
  timeouts?: Partial<HttpTimeouts>;
}

export interface HttpTimeouts {
  headersMs: number;
  requestMs: number;
  keepAliveMs: number;
  idleMs: number;
  /** How often Node checks open connections against headersMs and requestMs. */
  checkMs: number;
}

/**
 * Open HTTP connections at most (probes and scrapes: a kubelet probes on a fresh
 * connection per period, Prometheus keeps one or two alive), so ~20,000 idle
 * connections from the pod network cost 64 fds. Counted in the agent's fd budget
 * (agent/limits.ts). At the cap a new connection evicts the oldest one without a
 * request in progress (see ConnectionCap): whoever holds 64 idle connections
 * cannot shut the kubelet's probes out, which would restart healthy apps.
 */
export const HTTP_MAX_CONNECTIONS = 64;

/**
 * Idle limits: probes and scrapes send their request at once and are answered in
 * milliseconds, so a connection that says nothing is closed. server.timeout (socket
 * inactivity) is what closes a connection that never sends a byte: on Node 20,
 * headersTimeout and requestTimeout only apply once a request has started.
 */
export const HTTP_HEADERS_TIMEOUT_MS = 10_000;
export const HTTP_REQUEST_TIMEOUT_MS = 30_000;
export const HTTP_KEEPALIVE_TIMEOUT_MS = 5_000;
export const HTTP_IDLE_TIMEOUT_MS = 10_000;
const HTTP_CHECK_INTERVAL_MS = 1_000;

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
  private readonly statusRoute: StatusRoute | null;

  constructor(private readonly d: HttpDeps) {
    const t: HttpTimeouts = {
      headersMs: HTTP_HEADERS_TIMEOUT_MS,
      requestMs: HTTP_REQUEST_TIMEOUT_MS,
      keepAliveMs: HTTP_KEEPALIVE_TIMEOUT_MS,
      idleMs: HTTP_IDLE_TIMEOUT_MS,
      checkMs: HTTP_CHECK_INTERVAL_MS,
      ...d.timeouts,
    };
    this.server = createServer({ connectionsCheckingInterval: t.checkMs }, (req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        d.log.error('http request failed', { path: pathOf(req), error: String(e) });
        if (!res.headersSent) reply(res, req, 500, 'internal error');
        else res.destroy();
      });
    });
    // Probes and scrapes are small: bound what a slow or idle client can hold open.
    const cap = new ConnectionCap(d.maxConnections ?? HTTP_MAX_CONNECTIONS);
    this.server.on('connection', (socket: Socket) => cap.admit(socket));
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => cap.busy(req.socket, res));
    this.server.headersTimeout = t.headersMs;
    this.server.requestTimeout = t.requestMs;
    this.server.keepAliveTimeout = t.keepAliveMs;
    this.server.timeout = t.idleMs;
    this.server.on('timeout', (socket: { destroy(): void }) => socket.destroy());
    this.statusRoute = d.status
      ? { source: d.status, idleMs: t.idleMs, counted: d.statusRequest, reject: reply, send }
      : null;
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
      // Waiting long-polls are released with their connections: nothing holds close() up.
      this.d.status?.cancelAll();
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
    if (path === '/status' && this.statusRoute) return serveStatus(this.statusRoute, req, res, queryOf(req));
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

function queryOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? '' : url.slice(q + 1);
}

function probe(res: ServerResponse, req: IncomingMessage, l: Liveness): void {
  reply(res, req, l.ok ? 200 : 503, l.reason);
}

/** One line of text: the kubelet records the first bytes of a failing probe's body. */
function reply(res: ServerResponse, req: IncomingMessage, status: number, line: string): void {
  send(res, req, status, TEXT, `${line}\n`);
}

function send(res: ServerResponse, req: IncomingMessage, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * At most `max` open connections. A connection past the cap evicts the oldest one
 * that has no request in progress (an idle or keep-alive connection); when every
 * held connection is busy, the newcomer is closed instead. Eviction by age means an
 * attacker's idle connections, which are older, go before a probe that has just
 * connected and is about to send its request.
 */
export class ConnectionCap {
  /** Open connections in accept order (a Set iterates in insertion order). */
  private readonly open = new Set<Socket>();
  private readonly inRequest = new Set<Socket>();

  constructor(private readonly max: number) {}

  admit(socket: Socket): void {
    this.open.add(socket);
    socket.once('close', () => {
      this.open.delete(socket);
      this.inRequest.delete(socket);
    });
    if (this.open.size <= this.max) return;
    for (const s of this.open) {
      if (s !== socket && !this.inRequest.has(s)) return void this.evict(s);
    }
    this.evict(socket);
  }

  busy(socket: Socket, res: ServerResponse): void {
    this.inRequest.add(socket);
    res.once('close', () => this.inRequest.delete(socket));
  }

  private evict(s: Socket): void {
    // Out of the count now: destroy() closes the fd at once, 'close' follows later.
    this.open.delete(s);
    this.inRequest.delete(s);
    s.destroy();
  }
}
