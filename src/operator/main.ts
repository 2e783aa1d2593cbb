/**
 * The operator's composition root: load the KubeConfig, build the watches, the
 * API writer, the agent pollers, the controller, the leader election and the HTTP
 * endpoint; run until SIGTERM, then give the lease up so the other replica takes
 * over at once. No logic here.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../log/log.js';
import type { OperatorOptions } from './options.js';
import { buildConfig } from '../config/load.js';
import { formatAddress } from '../http/server.js';
import { KubeApi } from './api.js';
import { Controller } from './controller.js';
import { cachesReady, watchesHealthy } from './health.js';
import { OperatorHttp } from './http.js';
import { Injector } from './injector.js';
import { OperatorMetrics } from './metrics.js';
import { Poller } from './agents/poller.js';
import { loadKubeConfig, makeClients } from './kube/client.js';
import { LeaderElector } from './kube/lease.js';
import { enrolledPods, fdStorePolicies, Watched } from './kube/watch.js';
import type { AgentLinks, Source } from './ports.js';
import { POLICY_PLURAL, type FdStorePolicy, type Pod } from './types.js';

/** Well inside a pod's 30 s termination grace period. */
const SHUTDOWN_DEADLINE_MS = 10_000;

export async function operate(o: OperatorOptions, log: Logger): Promise<number> {
  const kc = loadKubeConfig({ kubeconfig: o.kubeconfig });
  const clients = makeClients(kc);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics = new OperatorMetrics(registry);
  const api = new KubeApi(clients, (verb, resource, code) => metrics.apiRequests.inc({ verb, resource, code: String(code) }));
  const pods = new Watched<Pod & KubernetesObject>({ kc, source: enrolledPods(o.namespace), name: 'pods', log });
  const policies = new Watched<FdStorePolicy & KubernetesObject>({
    kc,
    source: fdStorePolicies(o.namespace),
    name: POLICY_PLURAL,
    log,
  });
  metrics.watches = () => [pods, policies].map((w, i) => {
    const s = w.stats();
    return { resource: i === 0 ? 'pods' : POLICY_PLURAL, restarts: s.restarts, relists: s.relists, gone: s.gone, synced: s.synced };
  });
  const agents: AgentLinks = {
    open: (_key, target, on) => {
      const p = new Poller(target, { ...on, polled: (result) => metrics.polls.inc({ result }) });
      p.start();
      return p;
    },
  };
  const controller = new Controller({
    pods: source(pods),
    policies: source(policies),
    api,
    agents,
    clock: { nowMs: () => performance.now(), nowIso: () => new Date().toISOString() },
    log,
    metrics,
    checkConfig,
  });
  pods.start();
  policies.start();
  let leading = false;
  const http = o.http ? new OperatorHttp({
    registry,
    // Watched's clock is performance.now() too.
    healthy: () => watchesHealthy([pods, policies], performance.now()),
    ready: () => cachesReady([pods, policies], leading),
  }) : null;
  if (http && o.http) {
    const a = await http.listen(o.http.host, o.http.port);
    log.info('http listening', { address: formatAddress({ host: a.address, port: a.port }) });
  }
  // Every replica serves the webhook (it only reads the policy cache); not only the leader.
  const injector = o.webhook
    ? new Injector({ kc, options: o.webhook, policies: () => policies.list(), synced: () => policies.stats().synced, log, metrics })
    : null;
  await injector?.start();
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await Promise.race([Promise.all([pods.synced, policies.synced]), signalled]);
  log.info('caches synced', { pods: pods.list().length, policies: policies.list().length });
  const elector = new LeaderElector({
    api: clients.coordination,
    namespace: o.leaseNamespace,
    name: o.leaseName,
    identity: o.identity,
    log,
    onStartedLeading: () => {
      leading = true;
      metrics.leader.set(1);
      controller.startLeading();
    },
    onStoppedLeading: () => {
      leading = false;
      metrics.leader.set(0);
      controller.stopLeading();
    },
  });
  elector.start();
  const sig = await signalled;
  log.info('shutting down', { signal: sig });
  setTimeout(() => process.exit(1), SHUTDOWN_DEADLINE_MS).unref();
  controller.stop();
  await elector.stop();
  await Promise.all([pods.stop(), policies.stop(), http?.close(), injector?.stop()]);
  log.info('stopped');
  return 0;
}

function source<T extends KubernetesObject>(w: Watched<T>): Source<T> {
  return {
    list: () => w.list(),
    get: (ns, name) => w.get(ns, name),
    onChange: (fn) => {
      w.on('change', fn);
    },
  };
}

/** The agent's own validation of a rendered policy (one source of truth for what it accepts). */
function checkConfig(text: string): string | null {
  try {
    buildConfig({ containers: [], defaults: {} }, text, 'policy');
    return null;
  } catch (e) {
    const msg = (e as Error).message;
    // A policy that names no container is fine: the pod's flags name them.
    return msg.startsWith('no containers') ? null : msg;
  }
}
