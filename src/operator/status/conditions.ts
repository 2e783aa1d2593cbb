/**
 * metav1.Condition bookkeeping (KUBE-NOTES §4): one entry per type, and
 * lastTransitionTime changes only when status flips, so `kubectl describe` shows
 * since when a pod has been unready, not when the operator last looked. Pure.
 */
import type { Condition } from '../types.js';

export type ConditionInput = Omit<Condition, 'lastTransitionTime'>;

/** Conditions with `next` set: its transition time kept from `prev` when the status is unchanged. */
export function setCondition(prev: readonly Condition[] | undefined, next: ConditionInput, nowIso: string): Condition[] {
  const list = [...(prev ?? [])];
  const i = list.findIndex((c) => c.type === next.type);
  const old = i >= 0 ? list[i] : undefined;
  const c: Condition = { ...next, lastTransitionTime: old && old.status === next.status ? old.lastTransitionTime : nowIso };
  if (i >= 0) list[i] = c;
  else list.push(c);
  return list;
}

export function findCondition(list: readonly Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}

/** Condition messages the API server accepts (32768) are far more than a reader wants. */
export const CONDITION_MESSAGE_MAX = 1024;

export function cut(text: string, max = CONDITION_MESSAGE_MAX): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
