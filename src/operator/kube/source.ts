/**
 * What a Watched<T> watches: one collection URL and its selectors, the same for the
 * list and the watch (so the two can never disagree about what is in scope).
 */

/** The label the sidecar template (and later the injector) puts on enrolled pods. */
export const ENROLLED_LABEL = 'fdstore.dev/enrolled';
export const ENROLLED_SELECTOR = `${ENROLLED_LABEL}=true`;

/** What to watch: a collection URL and its selectors (the same for list and watch). */
export interface WatchSource {
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
}

/** `/api/v1/pods`, `/apis/fdstore.dev/v1alpha1/namespaces/x/fdstores`, ... */
export function collectionPath(r: { group?: string; version: string; plural: string; namespace?: string }): string {
  const base = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
  const ns = r.namespace ? `/namespaces/${encodeURIComponent(r.namespace)}` : '';
  return `${base}${ns}/${r.plural}`;
}

/** The enrolled pods: label-selected, never all pods; cluster-wide without a namespace. */
export function enrolledPods(namespace?: string): WatchSource {
  return { path: collectionPath({ version: 'v1', plural: 'pods', namespace }), labelSelector: ENROLLED_SELECTOR };
}
