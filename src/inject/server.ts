/**
 * The webhook's HTTPS server: POST /inject with an AdmissionReview, answered by
 * review.ts. Served by every operator replica (not only the leader: it only reads
 * the policy cache), on its own port. Bounded: body size, connections, header and
 * request timeouts. Hostile requests cost a counter and a rate-limited log line,
 * never a crash. The certificate is re-read when its files change (cert-manager
 * renews, the kubelet updates the Secret volume), without a restart.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import type { Logger } from '../log/log.js';
import { LOG_RATE_LIMIT, RateLimiter } from '../log/ratelimit.js';
import { review, type ReviewDeps, type ReviewResult } from './review.js';

export const INJECT_PATH = '/inject';
/** An AdmissionReview of a pod: etcd refuses objects over 1.5 MiB; twice that with the review around it. */
export const MAX_REVIEW_BYTES = 3 << 20;
export const WEBHOOK_MAX_CONNECTIONS = 256;
/** The API server waits timeoutSeconds (the chart: 5 s); a request slower than that is useless. */
export const WEBHOOK_HEADERS_TIMEOUT_MS = 5_000;
export const WEBHOOK_REQUEST_TIMEOUT_MS = 10_000;
export const CERT_RELOAD_MS = 30_000;

export interface WebhookMetrics {
  reviewed(result: ReviewResult, seconds: number): void;
  certReloaded(ok: boolean): void;
}

export interface WebhookDeps extends ReviewDeps {
  certFile: string;
  keyFile: string;
  log: Logger;
  metrics: WebhookMetrics;
  now?: () => number;
}

export class WebhookServer {
  private readonly server: Server;
  private readonly limiter: RateLimiter;
  private loaded: { cert: string; key: string };
  private reload: NodeJS.Timeout | null = null;

  constructor(private readonly d: WebhookDeps) {
    const now = d.now ?? (() => performance.now());
    this.limiter = new RateLimiter(LOG_RATE_LIMIT, now);
    this.loaded = this.read();
    this.server = createServer({ cert: this.loaded.cert, key: this.loaded.key, minVersion: 'TLSv1.2' }, (req, res) => this.handle(req, res, now));
    this.server.maxConnections = WEBHOOK_MAX_CONNECTIONS;
    this.server.headersTimeout = WEBHOOK_HEADERS_TIMEOUT_MS;
    this.server.requestTimeout = WEBHOOK_REQUEST_TIMEOUT_MS;
    this.server.keepAliveTimeout = 30_000;
    // A TLS handshake that fails (a scanner, a client without our CA) is a log line, not an error event.
    this.server.on('tlsClientError', (e) => this.warn('tls', 'webhook TLS handshake failed', { error: e.message }));
  }

  private read(): { cert: string; key: string } {
    return { cert: readFileSync(this.d.certFile, 'utf8'), key: readFileSync(this.d.keyFile, 'utf8') };
  }

  /** Re-reads the files; a new pair is used for the next connections. A broken pair keeps the old one. */
  reloadCert(): boolean {
    let next;
    try {
      next = this.read();
    } catch (e) {
      this.warn('cert', 'webhook certificate unreadable; keeping the old one', { error: (e as Error).message });
      this.d.metrics.certReloaded(false);
      return false;
    }
    if (next.cert === this.loaded.cert && next.key === this.loaded.key) return false;
    try {
      this.server.setSecureContext({ cert: next.cert, key: next.key });
    } catch (e) {
      this.warn('cert', 'webhook certificate refused; keeping the old one', { error: (e as Error).message });
      this.d.metrics.certReloaded(false);
      return false;
    }
    this.loaded = next;
    this.d.metrics.certReloaded(true);
    this.d.log.info('webhook certificate reloaded', { cert: this.d.certFile });
    return true;
  }

  private warn(key: string, msg: string, fields: Record<string, unknown>): void {
    const v = this.limiter.take(key);
    if (!v.allowed) return;
    this.d.log.warning(msg, v.suppressedBefore > 0 ? { ...fields, suppressedBefore: v.suppressedBefore } : fields);
  }

  private handle(req: IncomingMessage, res: ServerResponse, now: () => number): void {
    const t0 = now();
    const done = (code: number, body: unknown, result: ReviewResult): void => {
      const text = JSON.stringify(body);
      res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
      this.d.metrics.reviewed(result, (now() - t0) / 1000);
    };
    const refuse = (code: number, why: string): void => {
      this.warn(`bad:${code}`, 'webhook request refused', { code, why, remote: req.socket.remoteAddress });
      // Do not read the rest of a refused body: close the connection after the answer.
      res.setHeader('connection', 'close');
      done(code, { error: why }, 'bad_request');
    };
    const path = (req.url ?? '/').split('?')[0];
    if (path !== INJECT_PATH) return refuse(404, `not found: POST ${INJECT_PATH}`);
    if (req.method !== 'POST') return refuse(405, 'method not allowed: POST only');
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > MAX_REVIEW_BYTES) return refuse(413, `body over ${MAX_REVIEW_BYTES} bytes`);
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > MAX_REVIEW_BYTES) {
        over = true;
        chunks.length = 0;
        refuse(413, `body over ${MAX_REVIEW_BYTES} bytes`);
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('error', () => {}); // an aborted upload: nothing to answer
    req.on('end', () => {
      if (over) return;
      const out = review(Buffer.concat(chunks), this.d);
      if (out.status === 400) this.warn('bad:400', 'webhook request refused', { why: out.detail, remote: req.socket.remoteAddress });
      else if (out.result === 'error' || out.result === 'invalid_object') this.warn(out.result, 'pod not injected', { why: out.detail });
      done(out.status, out.body, out.result);
    });
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port }, () => {
        this.server.off('error', reject);
        this.reload = setInterval(() => this.reloadCert(), CERT_RELOAD_MS);
        this.reload.unref();
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    if (this.reload) clearInterval(this.reload);
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
