/**
 * One AdmissionReview (admission.k8s.io/v1) in, the response out. Pure: the caches,
 * the settings and the mode are passed in. Only a body that is not an
 * AdmissionReview at all is refused (400: there is no uid to answer); anything else
 * the injector cannot handle is allowed unchanged with a warning, so the injector
 * can never block a pod (as failurePolicy Ignore would, but without the API
 * server's timeout).
 */
import type { FdStorePolicy } from '../operator/types.js';
import type { KubeVersion, SidecarMode } from './mode.js';
import { inject, type InjectResult } from './patch.js';
import type { SidecarSettings } from './settings.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';
/** kubectl shows warnings; the API server truncates long ones (and many): keep them few and short. */
export const WARNING_MAX_CHARS = 256;
export const WARNINGS_MAX = 10;
/** A uid is a UUID; anything much longer is not the API server's. */
export const UID_MAX = 128;

/** A closed set: a metric label. */
export type ReviewResult = 'injected' | 'skipped' | 'not_pod' | 'not_synced' | 'invalid_object' | 'error' | 'bad_request';
export const REVIEW_RESULTS: readonly ReviewResult[] = ['injected', 'skipped', 'not_pod', 'not_synced', 'invalid_object', 'error', 'bad_request'];

export interface ReviewDeps {
  policies(): readonly FdStorePolicy[];
  /** The policy cache has listed once: before that a pod could be missed for want of its policy. */
  synced(): boolean;
  settings: SidecarSettings;
  mode(): { mode: SidecarMode; kube: KubeVersion | null };
  version: string;
}

export interface ReviewOutcome {
  status: 200 | 400;
  body: unknown;
  result: ReviewResult;
  /** For the log: why, for anything but injected. */
  detail: string;
  injected?: InjectResult;
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function answer(uid: string, extra: Record<string, unknown>): unknown {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response: { uid, allowed: true, ...extra } };
}

const boundWarnings = (w: string[]): string[] => w.slice(0, WARNINGS_MAX).map((s) => (s.length > WARNING_MAX_CHARS ? `${s.slice(0, WARNING_MAX_CHARS - 3)}...` : s));

/** The request of an AdmissionReview v1, or the 400 for a body that is none. */
function requestOf(body: Buffer | string): { req: Record<string, unknown> & { uid: string } } | { refused: ReviewOutcome } {
  let doc: unknown;
  try {
    doc = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch (e) {
    return { refused: { status: 400, body: { error: 'not JSON' }, result: 'bad_request', detail: `not JSON: ${(e as Error).message}` } };
  }
  if (!isObj(doc) || doc.kind !== 'AdmissionReview' || doc.apiVersion !== ADMISSION_API_VERSION || !isObj(doc.request)) {
    return { refused: { status: 400, body: { error: `expected an ${ADMISSION_API_VERSION} AdmissionReview with a request` }, result: 'bad_request', detail: 'not an AdmissionReview v1' } };
  }
  const req = doc.request;
  if (typeof req.uid !== 'string' || req.uid === '' || req.uid.length > UID_MAX) {
    return { refused: { status: 400, body: { error: 'request.uid missing or invalid' }, result: 'bad_request', detail: 'no request.uid' } };
  }
  return { req: req as Record<string, unknown> & { uid: string } };
}

const usablePod = (pod: unknown): pod is Record<string, unknown> & { spec: Record<string, unknown> } =>
  isObj(pod) && isObj(pod.spec) && Array.isArray(pod.spec.containers) && pod.spec.containers.every((c) => isObj(c) && typeof c.name === 'string');

export function review(body: Buffer | string, d: ReviewDeps): ReviewOutcome {
  const got = requestOf(body);
  if ('refused' in got) return got.refused;
  const req = got.req;
  const uid = req.uid;
  const kind = isObj(req.kind) ? req.kind : {};
  if (kind.kind !== 'Pod' || (kind.group ?? '') !== '' || req.operation !== 'CREATE') {
    return { status: 200, body: answer(uid, {}), result: 'not_pod', detail: `not a Pod CREATE: ${String(kind.kind)} ${String(req.operation)}` };
  }
  const pod = req.object;
  const namespace = typeof req.namespace === 'string' ? req.namespace : '';
  if (!usablePod(pod) || namespace === '') {
    return { status: 200, body: answer(uid, { warnings: ['fdstore: not injected: the request holds no pod spec with named containers, or no namespace'] }), result: 'invalid_object', detail: 'no usable pod' };
  }
  if (!d.synced()) {
    return { status: 200, body: answer(uid, { warnings: ['fdstore: not injected: the injector has not listed the FdStorePolicies yet'] }), result: 'not_synced', detail: 'policies not synced' };
  }
  let r: InjectResult;
  try {
    const { mode, kube } = d.mode();
    r = inject({ namespace, pod: pod as Parameters<typeof inject>[0]['pod'], policies: d.policies(), settings: d.settings, mode, kube, version: d.version });
  } catch (e) {
    // A shape the core did not expect (a hostile or future field): the pod goes through as it is.
    return { status: 200, body: answer(uid, { warnings: ['fdstore: not injected: internal error (see the operator log)'] }), result: 'error', detail: (e as Error).message };
  }
  const warnings = boundWarnings(r.warnings);
  const extra: Record<string, unknown> = warnings.length > 0 ? { warnings } : {};
  if (r.patch.length > 0) {
    extra.patchType = 'JSONPatch';
    extra.patch = Buffer.from(JSON.stringify(r.patch)).toString('base64');
  }
  const injected = r.decision.inject && r.record !== null && r.record.containers.length > 0;
  return { status: 200, body: answer(uid, extra), result: injected ? 'injected' : 'skipped', detail: r.decision.inject ? 'no container to enrol' : r.decision.why, injected: r };
}
