/**
 * PodMonitor and ServiceMonitor (monitoring.coreos.com/v1) are not in kubernetes-models:
 * a closed JSON schema of the fields of the Prometheus Operator's v1 API that the chart
 * renders (names and types as in its CRDs). Closed, like the strict pass: a misspelled
 * field is what the operator would silently ignore.
 */
import { Ajv } from 'ajv';

const str = { type: 'string', minLength: 1 };
const strMap = { type: 'object', additionalProperties: { type: 'string' } };
const closed = (properties: Record<string, object>, required: string[] = []) => ({ type: 'object', additionalProperties: false, properties, required });
const duration = { type: 'string', pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$' };
const labelSelector = closed({
  matchLabels: strMap,
  matchExpressions: { type: 'array', items: closed({ key: str, operator: { enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] }, values: { type: 'array', items: { type: 'string' } } }, ['key', 'operator']) },
});
const namespaceSelector = closed({ any: { type: 'boolean' }, matchNames: { type: 'array', items: { type: 'string' } } });
const metadata = closed({ name: { ...str, maxLength: 253 }, namespace: str, labels: strMap, annotations: strMap }, ['name']);
const endpoint = closed({ port: str, path: { type: 'string', pattern: '^/' }, interval: duration, scrapeTimeout: duration, scheme: { enum: ['http', 'https', 'HTTP', 'HTTPS'] }, honorLabels: { type: 'boolean' } });

const monitor = (kind: string, spec: object) =>
  closed({ apiVersion: { const: 'monitoring.coreos.com/v1' }, kind: { const: kind }, metadata, spec }, ['apiVersion', 'kind', 'metadata', 'spec']);

const ajv = new Ajv({ allErrors: true });
export const validatePodMonitor = ajv.compile(
  monitor('PodMonitor', closed({ selector: labelSelector, namespaceSelector, jobLabel: str, podTargetLabels: { type: 'array', items: str }, podMetricsEndpoints: { type: 'array', minItems: 1, items: endpoint } }, ['selector', 'podMetricsEndpoints'])),
);
export const validateServiceMonitor = ajv.compile(
  monitor('ServiceMonitor', closed({ selector: labelSelector, namespaceSelector, jobLabel: str, targetLabels: { type: 'array', items: str }, endpoints: { type: 'array', minItems: 1, items: endpoint } }, ['selector', 'endpoints'])),
);

export function monitorErrors(o: Record<string, unknown>): string[] {
  const v = o.kind === 'PodMonitor' ? validatePodMonitor : validateServiceMonitor;
  return v(o) ? [] : (v.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? e.keyword}${e.params && 'additionalProperty' in e.params ? ` ${String(e.params.additionalProperty)}` : ''}`);
}
