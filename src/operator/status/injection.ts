/**
 * The Event for what the injector left alone: containers of the pod it did not put
 * behind the launcher (no command: the image's entrypoint is unknown to the webhook),
 * read from the pod's fdstore.dev/injected annotation. Pure. The webhook itself cannot
 * record it (at admission a ReplicaSet's pod has no name yet).
 */
import { INJECTED_ANNOTATION } from '../../inject/decide.js';
import type { PodEvent } from './events.js';
/** Bounded: a pod has at most a few dozen containers, each reason a sentence. */
export const UNWRAPPED_MESSAGE_MAX = 1024;

export function injectionEvents(annotations: Record<string, string> | undefined): PodEvent[] {
  const text = annotations?.[INJECTED_ANNOTATION];
  if (text === undefined) return [];
  let rec: unknown;
  try {
    rec = JSON.parse(text);
  } catch {
    return [];
  }
  const unwrapped = (rec as { unwrapped?: unknown } | null)?.unwrapped;
  if (unwrapped === null || typeof unwrapped !== 'object' || Array.isArray(unwrapped)) return [];
  const entries = Object.entries(unwrapped as Record<string, unknown>).filter(([, v]) => typeof v === 'string');
  if (entries.length === 0) return [];
  let message = `fdstore did not enrol ${entries.map(([name, why]) => `container ${name} (${String(why)})`).join('; ')}`;
  if (message.length > UNWRAPPED_MESSAGE_MAX) message = `${message.slice(0, UNWRAPPED_MESSAGE_MAX - 3)}...`;
  return [{ type: 'Warning', reason: 'ContainerNotWrapped', message }];
}
