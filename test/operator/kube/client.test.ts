import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { ApiException } from '@kubernetes/client-node';
import { classifyError, isRetryable, KubeConfigError, loadKubeConfig, RequestTimeoutError, withTimeout } from '../../../src/operator/kube/client.js';

describe('classifyError', () => {
  it('maps ApiException codes (generated API) and statusCode (client-node Watch)', () => {
    const api = (code: number) => new ApiException(code, 'x', '', {});
    expect(classifyError(api(409))).toBe('conflict');
    expect(classifyError(api(404))).toBe('not-found');
    expect(classifyError(api(410))).toBe('gone');
    expect(classifyError(api(403))).toBe('forbidden');
    expect(classifyError(api(401))).toBe('unauthorized');
    expect(classifyError(api(422))).toBe('invalid');
    expect(classifyError(api(429))).toBe('server');
    expect(classifyError(api(503))).toBe('server');
    expect(classifyError(Object.assign(new Error('Gone'), { statusCode: 410 }))).toBe('gone');
  });

  it('maps network failures, timeouts and aborts', () => {
    expect(classifyError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe('network');
    expect(classifyError(Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }))).toBe('network');
    const fetchError = Object.assign(new Error('request failed'), { type: 'system', code: 'ECONNRESET' });
    Object.defineProperty(fetchError, 'name', { value: 'FetchError' });
    expect(classifyError(fetchError)).toBe('network');
    expect(classifyError(new RequestTimeoutError('t'))).toBe('timeout');
    expect(classifyError(Object.assign(new Error('aborted'), { name: 'AbortError' }))).toBe('aborted');
    expect(classifyError('weird')).toBe('unknown');
  });

  it('calls server, network, timeout and 401 retryable; not 403, 404, 409 or invalid', () => {
    expect(['server', 'network', 'timeout', 'unauthorized'].every((k) => isRetryable(k as never))).toBe(true);
    expect(['forbidden', 'not-found', 'conflict', 'invalid', 'aborted'].some((k) => isRetryable(k as never))).toBe(false);
  });
});

describe('withTimeout', () => {
  it('aborts the call at the deadline with RequestTimeoutError and leaves no timer behind', async () => {
    // Fake timers: the count is of withTimeout's own timers, not of the test runner's.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const p = withTimeout(50, undefined, (_o, signal) => new Promise((_r, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))));
      const settled = expect(p).rejects.toBeInstanceOf(RequestTimeoutError);
      expect(vi.getTimerCount()).toBe(1);
      await vi.advanceTimersByTimeAsync(50);
      await settled;
      expect(vi.getTimerCount()).toBe(0);
      await expect(withTimeout(10_000, undefined, async () => 42)).resolves.toBe(42);
      await expect(withTimeout(10_000, undefined, async () => Promise.reject(new Error('no')))).rejects.toThrow('no');
      expect(vi.getTimerCount()).toBe(0); // cleared when the call settled, not left to fire
    } finally {
      vi.useRealTimers();
    }
  });

  it('follows the parent signal', async () => {
    const parent = new AbortController();
    const p = withTimeout(10_000, parent.signal, (_o, signal) => new Promise((_r, reject) => signal.addEventListener('abort', () => reject(signal.reason))));
    parent.abort(new Error('parent gone'));
    await expect(p).rejects.toThrow('parent gone');
  });
});

describe('loadKubeConfig', () => {
  it('refuses to guess outside a cluster without --kubeconfig', () => {
    delete process.env.KUBERNETES_SERVICE_HOST;
    expect(() => loadKubeConfig({ inClusterRoot: '/nonexistent' })).toThrow(KubeConfigError);
    expect(() => loadKubeConfig({ kubeconfig: '/nonexistent/kubeconfig' })).toThrow(/no such file/);
  });

  it('loads a kubeconfig file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fdstore-kc-'));
    const file = join(dir, 'config');
    writeFileSync(
      file,
      `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443', insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: abc}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`,
    );
    expect(loadKubeConfig({ kubeconfig: file }).getCurrentCluster()?.server).toBe('https://127.0.0.1:6443');
  });

  it('uses the in-cluster service account when the env and token are there', () => {
    const root = mkdtempSync(join(tmpdir(), 'fdstore-sa-'));
    const sa = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), 'tok');
    writeFileSync(join(sa, 'namespace'), 'fdstore-system');
    const saved = { ...process.env };
    try {
      process.env.KUBERNETES_SERVICE_HOST = '10.0.0.1';
      process.env.KUBERNETES_SERVICE_PORT = '443';
      const kc = loadKubeConfig({ inClusterRoot: root });
      expect(kc.getCurrentCluster()?.server).toBe('https://10.0.0.1:443');
      expect(kc.getContextObject(kc.getCurrentContext())?.namespace).toBe('fdstore-system');
      expect(() => loadKubeConfig({ inClusterRoot: join(root, 'elsewhere') })).toThrow(KubeConfigError);
    } finally {
      process.env = saved;
    }
  });
});
