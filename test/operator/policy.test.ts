/** Policy selection (which policy configures a pod) and its rendering into the agent's config file. */
import { describe, expect, it } from 'vitest';
import { matches } from '../../src/operator/policy/selector.js';
import { resolvePolicy } from '../../src/operator/policy/resolve.js';
import { canonicalJson, renderConfig } from '../../src/operator/policy/render.js';
import { pod, policy } from './fixtures.js';

describe('label selectors (metav1.LabelSelector)', () => {
  const l = { app: 'web', tier: 'edge' };
  it.each([
    [{}, true],
    [{ matchLabels: { app: 'web' } }, true],
    [{ matchLabels: { app: 'api' } }, false],
    [{ matchExpressions: [{ key: 'tier', operator: 'In' as const, values: ['edge', 'core'] }] }, true],
    [{ matchExpressions: [{ key: 'tier', operator: 'NotIn' as const, values: ['edge'] }] }, false],
    [{ matchExpressions: [{ key: 'zone', operator: 'NotIn' as const, values: ['a'] }] }, true],
    [{ matchExpressions: [{ key: 'app', operator: 'Exists' as const }] }, true],
    [{ matchExpressions: [{ key: 'app', operator: 'DoesNotExist' as const }] }, false],
    [{ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In' as const, values: ['core'] }] }, false],
    [{ matchExpressions: [{ key: 'app', operator: 'Bogus' as never }] }, false],
  ])('%j → %s', (sel, want) => {
    expect(matches(sel, l)).toBe(want);
  });
});

describe('resolvePolicy: highest priority, then oldest, then name', () => {
  const p = pod('web-1', { app: 'web' });
  it('no match → no winner', () => {
    expect(resolvePolicy(p, [policy('x', { selector: { matchLabels: { app: 'api' } } })]).winner).toBeNull();
  });
  it('another namespace never applies', () => {
    expect(resolvePolicy(p, [policy('x', { selector: {} }, { ns: 'other' })]).winner).toBeNull();
  });
  it('priority wins over age', () => {
    const old = policy('old', { selector: {} }, { created: '2026-01-01T00:00:00Z' });
    const hi = policy('hi', { selector: {}, priority: 10 }, { created: '2026-06-01T00:00:00Z' });
    const r = resolvePolicy(p, [old, hi]);
    expect(r.winner?.metadata.name).toBe('hi');
    expect(r.losers.map((x) => x.metadata.name)).toEqual(['old']);
  });
  it('equal priority: the older policy keeps its pods; same age: the smaller name', () => {
    const a = policy('b-older', { selector: {} }, { created: '2026-01-01T00:00:00Z' });
    const b = policy('a-newer', { selector: {} }, { created: '2026-02-01T00:00:00Z' });
    expect(resolvePolicy(p, [b, a]).winner?.metadata.name).toBe('b-older');
    const c = policy('c', { selector: {} });
    const d = policy('d', { selector: {} });
    expect(resolvePolicy(p, [d, c]).winner?.metadata.name).toBe('c');
    expect(resolvePolicy(p, [c, d]).winner?.metadata.name).toBe('c');
  });
  it('a policy being deleted no longer applies', () => {
    const gone = policy('gone', { selector: {} });
    gone.metadata.deletionTimestamp = '2026-12-01T11:00:00Z';
    expect(resolvePolicy(p, [gone]).winner).toBeNull();
  });
});

describe('renderConfig', () => {
  it('no policy → no annotation', () => {
    expect(renderConfig(null)).toBeNull();
  });
  it('canonical: key order and container order do not change the bytes', () => {
    const a = policy('web', { selector: {}, defaults: { watchdogSec: '10s', fileDescriptorStoreMax: 8 }, containers: [{ name: 'b', preserve: 'yes' }, { name: 'a' }] }, { generation: 3 });
    const b = policy('web', { containers: [{ name: 'a' }, { preserve: 'yes', name: 'b' }], defaults: { fileDescriptorStoreMax: 8, watchdogSec: '10s' }, selector: { matchLabels: { x: 'y' } } }, { generation: 3 });
    expect(renderConfig(a)).toBe(renderConfig(b));
    expect(JSON.parse(renderConfig(a)!)).toEqual({
      policy: { name: 'web', generation: 3 },
      defaults: { fileDescriptorStoreMax: 8, watchdogSec: '10s' },
      containers: [{ name: 'a' }, { name: 'b', preserve: 'yes' }],
    });
  });
  it('selector, priority and injection are not agent settings', () => {
    const text = renderConfig(policy('p', { selector: { matchLabels: { a: 'b' } }, priority: 3, injection: { enabled: true } }))!;
    expect(JSON.parse(text)).toEqual({ policy: { name: 'p', generation: 1 } });
  });
  it('canonicalJson sorts nested keys, keeps arrays', () => {
    expect(canonicalJson({ b: [{ z: 1, a: 2 }], a: null })).toBe('{"a":null,"b":[{"a":2,"z":1}]}');
  });
});
