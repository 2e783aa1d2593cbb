/**
 * What a Watched<T> watches: one collection URL and its selectors, the same for the
 * list and the watch (so the two can never disagree about what is in scope). The
 * operator's two watches are built from their rbac.ts entries, so the URL and the
 * permission it needs cannot drift apart.
 */
import { API_CALLS, type ApiCall } from '../rbac.js';
import { VERSION } from '../types.js';

/** The label the sidecar template (and later the injector) puts on enrolled pods. */
export const ENROLLED_LABEL = 'fdstore.dev/enrolled';
export const ENROLLED_SELECTOR = `${ENROLLED_LABEL}=true`;

/** What to watch: a collection URL and its selectors (the same for list and watch). */
export interface WatchSource {
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** The requests this watch makes, as rbac.ts declares them (for the operator's own watches). */
  calls?: { list: ApiCall; watch: ApiCall };
}

/** `/api/v1/pods`, `/apis/fdstore.dev/v1alpha1/namespaces/x/fdstores`, ... */
export function collectionPath(r: { group?: string; version: string; plural: string; namespace?: string }): string {
  const base = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
  const ns = r.namespace ? `/namespaces/${encodeURIComponent(r.namespace)}` : '';
  return `${base}${ns}/${r.plural}`;
}

/** A watch of the collection that `list` and `watch` (same group and resource) name. */
function declared(list: ApiCall, watch: ApiCall, version: string, namespace: string | undefined, labelSelector?: string): WatchSource {
  if (list.verb !== 'list' || watch.verb !== 'watch' || list.group !== watch.group || list.resource !== watch.resource) {
    throw new Error(`not a list and a watch of one resource: ${list.verb} ${list.resource}, ${watch.verb} ${watch.resource}`);
  }
  const path = collectionPath({ group: list.group || undefined, version, plural: list.resource, namespace });
  return { path, labelSelector, calls: { list, watch } };
}

/** The enrolled pods: label-selected, never all pods; cluster-wide without a namespace. */
export function enrolledPods(namespace?: string): WatchSource {
  return declared(API_CALLS.listPods, API_CALLS.watchPods, 'v1', namespace, ENROLLED_SELECTOR);
}

/** Every FdStorePolicy (of one namespace, or all). */
export function fdStorePolicies(namespace?: string): WatchSource {
  return declared(API_CALLS.listPolicies, API_CALLS.watchPolicies, VERSION, namespace);
}
