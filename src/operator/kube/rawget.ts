/**
 * A raw `GET` of a collection, parsed as the API server's JSON and nothing more.
 *
 * Why not the generated `list*` methods: the informer's cache must hold one shape of
 * object. client-node deserializes list items into its model classes (timestamps become
 * `Date`) while watch events stay raw `JSON.parse` output (strings), so a cache fed by
 * both mixes the two (KUBE-NOTES 1.2, client-node#655). Listing the same URL the watch
 * uses, with the same selectors, gives raw JSON on both paths for every kind, core or
 * custom, and the request is abortable end to end (connect, headers and body).
 *
 * Credentials come from the KubeConfig exactly as client-node's own watch gets them
 * (`applyToHTTPSOptions`: CA, client cert, bearer token, proxy agent).
 */
import http from 'node:http';
import https from 'node:https';
import { ApiException, type KubeConfig } from '@kubernetes/client-node';

/**
 * The largest list body accepted: 256 MiB. etcd caps one object at 1.5 MiB and a pod is
 * typically 5-20 KiB, so this admits lists of ~10,000 large pods while bounding what a
 * broken or hostile endpoint can make the operator buffer.
 */
export const LIST_BODY_MAX_BYTES = 256 * 1024 * 1024;
/** How much of an error body is kept for ApiException.body (a `Status` object is < 1 KiB). */
const ERROR_BODY_MAX_BYTES = 64 * 1024;

export class BodyTooLargeError extends Error {
  readonly code = 'ERR_BODY_TOO_LARGE';
}

export type Query = Record<string, string | undefined>;

export async function getJson<T>(
  kc: KubeConfig,
  path: string,
  query: Query,
  signal: AbortSignal,
  maxBytes = LIST_BODY_MAX_BYTES,
): Promise<T> {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error('kubeconfig: no current cluster');
  const url = new URL(cluster.server + path);
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
  const opts: https.RequestOptions = { method: 'GET', headers: { Accept: 'application/json' } };
  await kc.applyToHTTPSOptions(opts);
  signal.throwIfAborted();
  const agent = opts.agent;
  try {
    return await request<T>(url, { ...opts, signal }, maxBytes);
  } finally {
    // client-node makes a new agent per call (client-node#2893, fixed after 1.4.0):
    // destroy it so no socket of this call outlives it.
    if (agent instanceof http.Agent) agent.destroy();
  }
}

function request<T>(url: URL, opts: https.RequestOptions, maxBytes: number): Promise<T> {
  const mod = url.protocol === 'http:' ? http : https;
  return new Promise<T>((resolve, reject) => {
    const req = mod.request(url, opts, (res) => {
      const status = res.statusCode ?? 0;
      const ok = status >= 200 && status < 300;
      const limit = ok ? maxBytes : ERROR_BODY_MAX_BYTES;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > limit) {
          if (ok) req.destroy(new BodyTooLargeError(`response body over ${limit} bytes from ${url.pathname}`));
          return; // an error body is only cut, not fatal
        }
        chunks.push(chunk);
      });
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (!ok) {
          reject(new ApiException(status, `HTTP ${status} from GET ${url.pathname}`, text, headersOf(res.headers)));
          return;
        }
        try {
          resolve(JSON.parse(text) as T);
        } catch (err) {
          reject(new Error(`GET ${url.pathname}: invalid JSON (${(err as Error).message})`));
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

function headersOf(h: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}
