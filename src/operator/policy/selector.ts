/**
 * metav1.LabelSelector matching (apimachinery's labels.Selector): matchLabels and
 * matchExpressions are ANDed; an empty selector matches everything, as for a
 * NetworkPolicy's podSelector. Pure.
 */
import type { LabelSelector } from '../types.js';

export function matches(sel: LabelSelector | undefined, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  for (const [k, v] of Object.entries(sel?.matchLabels ?? {})) if (l[k] !== v) return false;
  for (const e of sel?.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(l, e.key);
    const values = e.values ?? [];
    switch (e.operator) {
      case 'In':
        if (!has || !values.includes(l[e.key]!)) return false;
        break;
      case 'NotIn':
        if (has && values.includes(l[e.key]!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        // An operator the API server let through but we do not know: match nothing
        // rather than everything (a policy must never grab pods by accident).
        return false;
    }
  }
  return true;
}
