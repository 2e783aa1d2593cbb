/**
 * A TLS-terminating proxy in front of the API server that counts every request
 * the operator makes, by verb and resource as the API server names them (a GET
 * with watch=true is a `watch`, a GET of a collection a `list`). The operator's
 * own fdstore_operator_api_requests_total counts only its writes and reads of
 * FdStores; this also sees its watches, relists and Lease renewals. Its
 * certificate is a throwaway one made here (openssl), trusted only by the
 * kubeconfig written for the operator.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:https';
import { join } from 'node:path';
import { URL } from 'node:url';

/** The API server's verb for a request (k8s.io/apiserver's RequestInfo, simplified). */
export function classify(method, url) {
  const u = new URL(url, 'https://proxy');
  const parts = u.pathname.split('/').filter(Boolean);
  let rest = parts[0] === 'api' ? parts.slice(2) : parts[0] === 'apis' ? parts.slice(3) : parts;
  let watchPath = false;
  if (rest[0] === 'watch') {
    watchPath = true;
    rest = rest.slice(1);
  }
  if (rest[0] === 'namespaces' && rest.length >= 3) rest = rest.slice(2);
  const [res = '(none)', name, sub] = rest;
  const resource = sub ? `${res}/${sub}` : res;
  const watching = watchPath || ['true', '1'].includes(u.searchParams.get('watch') ?? '');
  const verb = {
    GET: watching ? 'watch' : name === undefined ? 'list' : 'get',
    POST: 'create',
    PUT: 'update',
    PATCH: 'patch',
    DELETE: name === undefined ? 'deletecollection' : 'delete',
  }[method] ?? method.toLowerCase();
  return { verb, resource };
}

export class CountingProxy {
  /** "verb resource" -> requests */
  counts = new Map();
  /** TLS connections the client opened (client-node 1.4: one per request). */
  connections = 0;

  static async start(upstream, ca, dir) {
    const key = join(dir, 'proxy.key');
    const cert = join(dir, 'proxy.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
      '-subj', '/CN=fdstore-bench-proxy', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const p = new CountingProxy(new URL(upstream), ca, readFileSync(key), readFileSync(cert));
    await new Promise((resolve) => p.server.listen(0, '127.0.0.1', resolve));
    return p;
  }

  constructor(upstream, ca, key, cert) {
    this.cert = cert;
    this.upstream = upstream;
    this.agent = new Agent({ keepAlive: true, ca });
    this.server = createServer({ key, cert }, (req, res) => this.forward(req, res));
    this.server.on('secureConnection', () => this.connections++);
  }

  get url() {
    return `https://127.0.0.1:${this.server.address().port}`;
  }

  forward(req, res) {
    const { verb, resource } = classify(req.method, req.url);
    const k = `${verb} ${resource}`;
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
    const up = request({
      host: this.upstream.hostname,
      port: this.upstream.port || 443,
      method: req.method,
      path: req.url,
      headers: { ...req.headers, host: this.upstream.host },
      agent: this.agent,
    }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    // The client went away (a watch it ended): end the upstream request too.
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  }

  snapshot() {
    return Object.fromEntries(this.counts);
  }

  close() {
    this.server.closeAllConnections();
    this.agent.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
