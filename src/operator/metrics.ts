/**
 * The operator's own metrics, on a Registry passed in. Labels are closed sets
 * (verbs, resources, HTTP codes, event reasons): no pod or policy names, so 10,000
 * pods cost the same number of series as one.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { REVIEW_RESULTS, type ReviewResult } from '../inject/review.js';
import type { WebhookMetrics } from '../inject/server.js';
import type { ControllerMetrics } from './controller.js';

/** What a watch counts (kube/watch.ts WatchStats), read at scrape time. */
export interface WatchCounts {
  resource: string;
  restarts: number;
  relists: number;
  gone: number;
  synced: boolean;
}

export class OperatorMetrics implements ControllerMetrics, WebhookMetrics {
  readonly apiRequests: Counter<'verb' | 'resource' | 'code'>;
  private readonly reconciles: Counter<'result'>;
  private readonly depth: Gauge;
  private readonly managed: Gauge;
  private readonly events: Counter<'reason'>;
  private readonly suppressed: Gauge;
  readonly leader: Gauge;
  readonly polls: Counter<'result'>;
  private readonly watchRebuilds: Counter<'resource' | 'why'>;
  private readonly reviews: Counter<'result'>;
  private readonly reviewSeconds: Histogram;
  private readonly certReloads: Counter<'result'>;
  /** Set by the composition root once the watches exist. */
  watches: () => WatchCounts[] = () => [];

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
    const watches = (): WatchCounts[] => this.watches();
    const rebuilds: Counter<'resource' | 'why'> = new Counter({
      name: 'fdstore_operator_watch_rebuilds_total',
      help: 'Watches rebuilt, by resource and why: error (an error or a stall), relist (the periodic full relist), gone (410: resourceVersion too old).',
      labelNames: ['resource', 'why'],
      registers,
      // The watches count for themselves; copied at scrape time so the two never drift.
      collect() {
        rebuilds.reset();
        for (const w of watches()) {
          rebuilds.inc({ resource: w.resource, why: 'error' }, w.restarts);
          rebuilds.inc({ resource: w.resource, why: 'relist' }, w.relists);
          rebuilds.inc({ resource: w.resource, why: 'gone' }, w.gone);
        }
      },
    });
    this.watchRebuilds = rebuilds;
    this.reviews = new Counter({ name: 'fdstore_operator_admission_reviews_total', help: 'AdmissionReviews answered by the injector, by result (bad_request: refused with 4xx; error, invalid_object, not_synced: allowed unchanged with a warning).', labelNames: ['result'], registers });
    this.reviewSeconds = new Histogram({ name: 'fdstore_operator_admission_review_seconds', help: 'Time from the request to the answer of an AdmissionReview.', buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers });
    this.certReloads = new Counter({ name: 'fdstore_operator_webhook_cert_reloads_total', help: 'Re-reads of the webhook certificate that changed it (ok) or failed (error: the old one stays).', labelNames: ['result'], registers });
    for (const r of REVIEW_RESULTS) this.reviews.inc({ result: r }, 0);
    this.apiRequests.inc({ verb: 'get', resource: 'fdstores', code: '200' }, 0);
    for (const r of ['ok', 'error']) this.reconciles.inc({ result: r }, 0);
    for (const r of ['changed', 'unchanged', 'error']) this.polls.inc({ result: r }, 0);
  }

  reviewed(result: ReviewResult, seconds: number): void {
    this.reviews.inc({ result });
    this.reviewSeconds.observe(seconds);
  }

  certReloaded(ok: boolean): void {
    this.certReloads.inc({ result: ok ? 'ok' : 'error' });
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
