/**
 * The operator's own metrics, on a Registry passed in. Labels are closed sets
 * (verbs, resources, HTTP codes, event reasons): no pod or policy names, so 10,000
 * pods cost the same number of series as one.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ControllerMetrics } from './controller.js';

export class OperatorMetrics implements ControllerMetrics {
  readonly apiRequests: Counter<'verb' | 'resource' | 'code'>;
  private readonly reconciles: Counter<'result'>;
  private readonly depth: Gauge;
  private readonly managed: Gauge;
  private readonly events: Counter<'reason'>;
  private readonly suppressed: Gauge;
  readonly leader: Gauge;
  readonly polls: Counter<'result'>;
  readonly watchRestarts: Counter<'resource'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.apiRequests = new Counter({ name: 'fdstore_operator_api_requests_total', help: 'Kubernetes API requests by verb, resource and HTTP status ("error": no answer).', labelNames: ['verb', 'resource', 'code'], registers });
    this.reconciles = new Counter({ name: 'fdstore_operator_reconciles_total', help: 'Pod reconciles by result (errors are retried with back-off).', labelNames: ['result'], registers });
    this.depth = new Gauge({ name: 'fdstore_operator_queue_depth', help: 'Pod keys waiting to be reconciled (now or after a back-off).', registers });
    this.managed = new Gauge({ name: 'fdstore_operator_pods_managed', help: 'Enrolled pods this replica follows (0 unless it leads).', registers });
    this.events = new Counter({ name: 'fdstore_operator_events_total', help: 'Kubernetes Events recorded on pods, by reason.', labelNames: ['reason'], registers });
    this.suppressed = new Gauge({ name: 'fdstore_operator_events_suppressed', help: 'Events held back by the per-pod rate limit since start (said in the next event).', registers });
    this.leader = new Gauge({ name: 'fdstore_operator_leader', help: '1 while this replica holds the leader Lease.', registers });
    this.polls = new Counter({ name: 'fdstore_operator_agent_polls_total', help: 'Long-polls of agents\' /status by result.', labelNames: ['result'], registers });
    this.watchRestarts = new Counter({ name: 'fdstore_operator_watch_restarts_total', help: 'Watches rebuilt after an error, a stall or a periodic relist.', labelNames: ['resource'], registers });
    this.apiRequests.inc({ verb: 'get', resource: 'fdstores', code: '200' }, 0);
    for (const r of ['ok', 'error']) this.reconciles.inc({ result: r }, 0);
    for (const r of ['changed', 'unchanged', 'error']) this.polls.inc({ result: r }, 0);
  }

  reconciled(result: 'ok' | 'error'): void {
    this.reconciles.inc({ result });
  }

  queueDepth(n: number): void {
    this.depth.set(n);
  }

  podsManaged(n: number): void {
    this.managed.set(n);
  }

  eventSent(reason: string): void {
    this.events.inc({ reason });
  }

  eventsSuppressed(n: number): void {
    this.suppressed.set(n);
  }
}
