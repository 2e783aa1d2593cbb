// The Event for containers the injector left alone, from the pod's fdstore.dev/injected annotation.
import { describe, expect, it } from 'vitest';
import { injectionEvents, UNWRAPPED_MESSAGE_MAX } from '../../src/operator/status/injection.js';

const rec = (unwrapped: unknown): Record<string, string> => ({ 'fdstore.dev/injected': JSON.stringify({ version: '0.1.0', mode: 'classic', policy: 'p', containers: ['web'], unwrapped, probes: false }) });

describe('injectionEvents', () => {
  it('one Warning naming every unwrapped container and why', () => {
    expect(injectionEvents(rec({ envoy: 'no command: ...', gone: 'listed, no such container' }))).toEqual([
      { type: 'Warning', reason: 'ContainerNotWrapped', message: 'fdstore did not enrol container envoy (no command: ...); container gone (listed, no such container)' },
    ]);
  });

  it('nothing when everything was enrolled, no annotation, or an annotation that is not the record', () => {
    for (const a of [rec({}), undefined, {}, { 'fdstore.dev/injected': 'garbage' }, { 'fdstore.dev/injected': 'null' }, rec(['x']), rec({ a: 1 })]) expect(injectionEvents(a)).toEqual([]);
  });

  it('bounded message', () => {
    const many = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`c${i}`, 'x'.repeat(100)]));
    expect(injectionEvents(rec(many))[0]!.message.length).toBe(UNWRAPPED_MESSAGE_MAX);
  });
});
