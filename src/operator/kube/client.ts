/**
 * The operator's connection to the API server: which KubeConfig, which API clients,
 * how a failure is classified, and how one call is bounded in time. This directory
 * is the only user of `@kubernetes/client-node` (1.4.0; ESM, object-parameter API,
 * errors are `ApiException` with `.code` and `.body`).
 */
import { existsSync } from 'node:fs';
import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  Observable,
  type ConfigurationOptions,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';

/** Where a pod's service-account token lives; its presence (with the env vars) means "in a cluster". */
const SERVICEACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * One ordinary API call (get, create, replace, patch) gives up after 10 s. client-node
 * 1.4.0 has no request timeout at all: a call through a black-holed connection would
 * wait forever (KUBE-NOTES 1.3). Watches are bounded differently (watch.ts).
 */
export const REQUEST_TIMEOUT_MS = 10_000;

export class KubeConfigError extends Error {
  readonly code = 'ERR_KUBE_CONFIG';
}

export interface LoadOptions {
  /** `--kubeconfig PATH`; without it, the pod's in-cluster service account. */
  kubeconfig?: string;
  /** For tests: a directory standing for `/` when reading the in-cluster token and CA (client-node's pathPrefix). */
  inClusterRoot?: string;
}

/**
 * The KubeConfig from `--kubeconfig PATH`, else in-cluster. In-cluster config uses
 * client-node's `tokenFile` provider, which re-reads the projected (rotating) token
 * every 60 s. Fails with a clear error instead of client-node's silent
 * `https://undefined:undefined` when run outside a cluster without a file.
 */
export function loadKubeConfig(opts: LoadOptions = {}): KubeConfig {
  const kc = new KubeConfig();
  if (opts.kubeconfig !== undefined) {
    if (!existsSync(opts.kubeconfig)) throw new KubeConfigError(`kubeconfig ${opts.kubeconfig}: no such file`);
    try {
      kc.loadFromFile(opts.kubeconfig);
    } catch (err) {
      throw new KubeConfigError(`kubeconfig ${opts.kubeconfig}: ${(err as Error).message}`);
    }
  } else {
    const env = process.env;
    const prefix = opts.inClusterRoot ?? '';
    if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT || !existsSync(prefix + SERVICEACCOUNT_TOKEN)) {
      throw new KubeConfigError(
        'not in a cluster (KUBERNETES_SERVICE_HOST/PORT or the service-account token missing): pass --kubeconfig PATH',
      );
    }
    kc.loadFromCluster(prefix);
  }
  const cluster = kc.getCurrentCluster();
  if (cluster === null || !cluster.server) throw new KubeConfigError('kubeconfig: the current context names no cluster with a server');
  return kc;
}

export interface KubeClients {
  kc: KubeConfig;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  coordination: CoordinationV1Api;
}

export function makeClients(kc: KubeConfig): KubeClients {
  return {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    coordination: kc.makeApiClient(CoordinationV1Api),
  };
}

/**
 * What a failed call means to the caller (STYLE.md 7: branch on a code, never on text).
 * - conflict (409): someone else wrote first; re-read, then retry.
 * - not-found (404), gone (410: resourceVersion too old, relist).
 * - forbidden (403), unauthorized (401: a rotated token is re-read within 60 s).
 * - invalid (other 4xx): our request is wrong; retrying will not help.
 * - server (5xx, 429), network (refused, reset, premature close), timeout (ours): transient.
 * - aborted: we cancelled it ourselves.
 */
export type ApiErrorKind =
  | 'conflict'
  | 'not-found'
  | 'gone'
  | 'forbidden'
  | 'unauthorized'
  | 'invalid'
  | 'server'
  | 'network'
  | 'timeout'
  | 'aborted'
  | 'unknown';

export const API_ERROR_KINDS: readonly ApiErrorKind[] = [
  'conflict',
  'not-found',
  'gone',
  'forbidden',
  'unauthorized',
  'invalid',
  'server',
  'network',
  'timeout',
  'aborted',
  'unknown',
];

/** Thrown by `withTimeout` when our own deadline, not the caller's signal, ended the call. */
export class RequestTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  override readonly name = 'TimeoutError';
}

/** The HTTP status of a failed call: ApiException `.code` (generated API) or `.statusCode` (client-node's Watch). */
export function httpStatus(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.statusCode === 'number') return e.statusCode;
  return undefined;
}

export function classifyError(err: unknown): ApiErrorKind {
  const status = httpStatus(err);
  if (status !== undefined) return classifyStatus(status);
  if (typeof err !== 'object' || err === null) return 'unknown';
  const e = err as { name?: unknown; code?: unknown; type?: unknown };
  if (e.name === 'TimeoutError' || e.code === 'ETIMEDOUT') return 'timeout';
  if (e.name === 'AbortError' || e.type === 'aborted' || e.code === 'ABORT_ERR') return 'aborted';
  // node-fetch FetchError (type 'system' carries the errno code), node's socket errors,
  // and node-fetch's "Premature close" when a chunked body ends without its last chunk.
  if (e.name === 'FetchError' || e.type === 'system') return 'network';
  if (typeof e.code === 'string' && /^(E[A-Z]+|ERR_STREAM_PREMATURE_CLOSE|ERR_SOCKET_.*|ERR_TLS_.*)$/.test(e.code)) return 'network';
  return 'unknown';
}

export function classifyStatus(status: number): ApiErrorKind {
  switch (status) {
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not-found';
    case 409:
      return 'conflict';
    case 410:
      return 'gone';
    case 429:
      return 'server';
  }
  if (status >= 500) return 'server';
  if (status >= 400) return 'invalid';
  return 'unknown';
}

/** Transient: the same call may work later, after a back-off. */
export function isRetryable(kind: ApiErrorKind): boolean {
  return kind === 'server' || kind === 'network' || kind === 'timeout' || kind === 'unauthorized';
}

/**
 * Per-call options that make a generated API call abortable by `signal`
 * (`RequestContext.setSignal`, client-node 1.4.0). 'append' keeps the API's own
 * middleware; per-call middleware would otherwise replace it (KUBE-NOTES 1.3).
 */
export function signalOptions(signal: AbortSignal, opts?: ConfigurationOptions): ConfigurationOptions {
  const middleware = {
    pre: (ctx: RequestContext): Observable<RequestContext> => {
      ctx.setSignal(signal);
      return new Observable(Promise.resolve(ctx));
    },
    post: (rsp: ResponseContext): Observable<ResponseContext> => new Observable(Promise.resolve(rsp)),
  };
  return { ...opts, middleware: [...(opts?.middleware ?? []), middleware], middlewareMergeStrategy: 'append' };
}

/**
 * Run one call with a deadline: `fn` gets options carrying a signal that aborts at
 * `timeoutMs` or when `parent` aborts. Our timer is cleared when the call settles, so
 * no timer outlives the call (AbortSignal.timeout would linger until it fires).
 * A call ended by the deadline rejects with RequestTimeoutError.
 */
export async function withTimeout<T>(
  timeoutMs: number,
  parent: AbortSignal | undefined,
  fn: (opts: ConfigurationOptions, signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const ctrl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ctrl.abort(new RequestTimeoutError(`request timed out after ${timeoutMs} ms`));
  }, timeoutMs);
  const onParentAbort = (): void => ctrl.abort(parent?.reason);
  if (parent?.aborted) ctrl.abort(parent.reason);
  else parent?.addEventListener('abort', onParentAbort, { once: true });
  try {
    return await fn(signalOptions(ctrl.signal), ctrl.signal);
  } catch (err) {
    if (timedOut) throw new RequestTimeoutError(`request timed out after ${timeoutMs} ms`, { cause: err });
    throw err;
  } finally {
    clearTimeout(timer);
    parent?.removeEventListener('abort', onParentAbort);
  }
}

/** The API server's message for a failed call, bounded, for logs (the body is JSON `Status`). */
export function errorMessage(err: unknown): string {
  const MAX = 300;
  if (err instanceof ApiException) {
    const body = err.body as unknown;
    let msg = typeof body === 'string' ? body : JSON.stringify(body);
    try {
      const status = JSON.parse(msg) as { message?: unknown };
      if (typeof status.message === 'string') msg = status.message;
    } catch {
      // not JSON: keep the raw text
    }
    return `HTTP ${err.code}: ${msg}`.slice(0, MAX);
  }
  return (err instanceof Error ? err.message : String(err)).slice(0, MAX);
}
