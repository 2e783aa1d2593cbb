/** FdStore status and conditions, Events from status diffs, their rate limit, policy statuses. */
import { describe, expect, it } from 'vitest';
import { buildStatus, comparable, forApi, mergePatch, sha256 } from '../../src/operator/status/fdstore.js';
import { eventsBetween } from '../../src/operator/status/events.js';
import { EventLimiter } from '../../src/operator/status/ratelimit.js';
import { setCondition } from '../../src/operator/status/conditions.js';
import { policyStatuses, sameStatus } from '../../src/operator/policysync.js';
import { renderConfig } from '../../src/operator/policy/render.js';
import { agentStatus, container, pod, policy } from './fixtures.js';

const T0 = '2026-12-01T10:00:00.000Z';
const T1 = '2026-12-01T10:05:00.000Z';
const cond = (s: ReturnType<typeof buildStatus>, type: string) => s.conditions!.find((c) => c.type === type)!;

describe('buildStatus', () => {
  it('summaries for the printer columns', () => {
    const s = buildStatus({ agent: agentStatus([container('a', { stored: 3, restores: 2 }), container('b', { ready: false, state: 'starting', stored: 4, restores: 1 })]), unreachable: null, prev: undefined, policy: null, otherPolicies: [], configText: null, nowIso: T0 });
    expect([s.readySummary, s.stored, s.restores]).toEqual(['1/2', 7, 3]);
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'ContainersNotReady' });
    expect(cond(s, 'Ready').message).toContain('b: starting');
    expect(cond(s, 'ConfigApplied')).toMatchObject({ status: 'True', reason: 'NoPolicy' });
  });
  it('lastTransitionTime moves only when the status flips', () => {
    const a = agentStatus([container('a')]);
    const s0 = buildStatus({ agent: a, unreachable: null, prev: undefined, policy: null, otherPolicies: [], configText: null, nowIso: T0 });
    const s1 = buildStatus({ agent: a, unreachable: null, prev: s0, policy: null, otherPolicies: [], configText: null, nowIso: T1 });
    expect(cond(s1, 'Ready').lastTransitionTime).toBe(T0);
    const s2 = buildStatus({ agent: null, unreachable: 'connect ECONNREFUSED', prev: s1, policy: null, otherPolicies: [], configText: null, nowIso: T1 });
    expect(cond(s2, 'Ready')).toMatchObject({ status: 'Unknown', reason: 'AgentUnreachable', lastTransitionTime: T1 });
    // Unreachable: the last known containers stay shown.
    expect(s2.stored).toBe(1);
  });
  it('ConfigApplied: Pending until the agent runs the rendered text, Invalid when it refused it', () => {
    const text = renderConfig(policy('web', { defaults: { fileDescriptorStoreMax: 8 } }))!;
    const pol = { name: 'web', generation: 1 };
    const pending = buildStatus({ agent: agentStatus([container('a')]), unreachable: null, prev: undefined, policy: pol, otherPolicies: [], configText: text, nowIso: T0 });
    expect(cond(pending, 'ConfigApplied')).toMatchObject({ status: 'False', reason: 'Pending' });
    const applied = buildStatus({ agent: agentStatus([container('a')], { config: { policy: pol, hash: sha256(text), loadedAt: T0, error: null, reloads: 1, rejected: 0 } }), unreachable: null, prev: pending, policy: pol, otherPolicies: [], configText: text, nowIso: T1 });
    expect(cond(applied, 'ConfigApplied')).toMatchObject({ status: 'True', reason: 'Applied' });
    const refused = buildStatus({ agent: agentStatus([container('a')], { config: { policy: null, hash: null, loadedAt: T0, error: { message: 'listen[0].address is required', hash: sha256(text), at: T0 }, reloads: 0, rejected: 1 } }), unreachable: null, prev: undefined, policy: pol, otherPolicies: [], configText: text, nowIso: T0 });
    expect(cond(refused, 'ConfigApplied')).toMatchObject({ status: 'False', reason: 'Invalid' });
    expect(cond(refused, 'ConfigApplied').message).toContain('listen[0].address is required');
  });
  it('no policy: an agent reading an empty projected file counts as applied', () => {
    const s = buildStatus({ agent: agentStatus([container('a')], { config: { policy: null, hash: sha256(''), loadedAt: T0, error: null, reloads: 0, rejected: 0 } }), unreachable: null, prev: undefined, policy: null, otherPolicies: [], configText: null, nowIso: T0 });
    expect(cond(s, 'ConfigApplied').status).toBe('True');
  });
  it('StoreLost: a new agent instance with an empty store after a non-empty one; cleared once fds are stored again', () => {
    const before = buildStatus({ agent: agentStatus([container('a', { stored: 5 })]), unreachable: null, prev: undefined, policy: null, otherPolicies: [], configText: null, nowIso: T0 });
    expect(cond(before, 'StoreLost').status).toBe('False');
    const restarted = agentStatus([container('a', { stored: 0 })], { agent: { version: '0.1.0', startedAt: T1, instance: 'inst-2' } });
    const lost = buildStatus({ agent: restarted, unreachable: null, prev: before, policy: null, otherPolicies: [], configText: null, nowIso: T1 });
    expect(cond(lost, 'StoreLost')).toMatchObject({ status: 'True', reason: 'AgentRestarted' });
    expect(cond(lost, 'StoreLost').message).toContain('5 stored fd(s)');
    const still = buildStatus({ agent: restarted, unreachable: null, prev: lost, policy: null, otherPolicies: [], configText: null, nowIso: T1 });
    expect(cond(still, 'StoreLost').status).toBe('True');
    const again = buildStatus({ agent: agentStatus([container('a', { stored: 1 })], { agent: restarted.agent }), unreachable: null, prev: still, policy: null, otherPolicies: [], configText: null, nowIso: T1 });
    expect(cond(again, 'StoreLost')).toMatchObject({ status: 'False', reason: 'Restored' });
  });
  it('StoreLost with a keeper: a restarted agent that adopted the store is no loss; one whose keeper held nothing is (KeeperLost), even after the apps stored again', () => {
    const keeper = { connected: true, agentRestarts: 1, adoptedFds: 5, storeLost: false, reseeds: 0, unmirrored: 0 };
    const before = buildStatus({ agent: agentStatus([container('a', { stored: 5 })]), unreachable: null, prev: undefined, policy: null, otherPolicies: [], configText: null, nowIso: T0 });
    const kept = agentStatus([container('a', { stored: 5 })], { agent: { version: '0.1.0', startedAt: T1, instance: 'inst-2', keeper } });
    const s1 = buildStatus({ agent: kept, unreachable: null, prev: before, policy: null, otherPolicies: [], configText: null, nowIso: T1 });
    expect(cond(s1, 'StoreLost')).toMatchObject({ status: 'False', reason: 'NoRestart' });
    expect(s1.agent?.keeper).toEqual(keeper);
    // The keeper restarted too: the agent says so although the app has stored 2 fds again already.
    const gone = agentStatus([container('a', { stored: 2 })], { agent: { version: '0.1.0', startedAt: T1, instance: 'inst-3', keeper: { ...keeper, agentRestarts: 0, adoptedFds: 0, storeLost: true } } });
    const s2 = buildStatus({ agent: gone, unreachable: null, prev: s1, policy: null, otherPolicies: [], configText: null, nowIso: T1 });
    expect(cond(s2, 'StoreLost')).toMatchObject({ status: 'True', reason: 'KeeperLost' });
    // Seen again: the apps have fds stored, so it clears (as without a keeper).
    const s3 = buildStatus({ agent: gone, unreachable: null, prev: s2, policy: null, otherPolicies: [], configText: null, nowIso: T1 });
    expect(cond(s3, 'StoreLost')).toMatchObject({ status: 'False', reason: 'Restored' });
    expect(eventsBetween(kept, gone, null).map((e) => e.reason)).toEqual(['StoreLost']);
    expect(eventsBetween(agentStatus([container('a', { stored: 5 })]), kept, null)).toEqual([]);
  });
  it('comparable ignores watchdog deadlines (they move on every ping)', () => {
    const mk = (deadline: string) => buildStatus({ agent: agentStatus([container('a', { watchdog: { sec: 10, deadline, failures: 0, startTimeouts: 0 } })]), unreachable: null, prev: undefined, policy: null, otherPolicies: [], configText: null, nowIso: T0 });
    expect(comparable(mk(T0))).toBe(comparable(mk(T1)));
  });
});

describe('eventsBetween', () => {
  const base = agentStatus([container('app', { restores: 1, lastRestore: { at: T0, fds: 2 } })]);
  it('first sight: nothing, unless the FdStore said the previous agent held fds', () => {
    expect(eventsBetween(null, base, null)).toEqual([]);
    expect(eventsBetween(null, base, { instance: 'inst-1', fds: 4 })).toEqual([]);
    const empty = agentStatus([container('app', { stored: 0 })], { agent: { ...base.agent, instance: 'inst-2' } });
    expect(eventsBetween(null, empty, { instance: 'inst-1', fds: 4 }).map((e) => e.reason)).toEqual(['StoreLost']);
  });
  it('one event per counter change, never per datagram', () => {
    const next = agentStatus([container('app', { restores: 4, lastRestore: { at: T1, fds: 2 }, overLimit: 7, watchdog: { sec: 5, deadline: null, failures: 1, startTimeouts: 0 } })]);
    const ev = eventsBetween(base, next, null);
    expect(ev.map((e) => [e.type, e.reason])).toEqual([['Normal', 'FdsRestored'], ['Warning', 'WatchdogExpired'], ['Warning', 'StoreFull']]);
    expect(ev[0]!.message).toBe('restored 2 fd(s) into container app (restore #4) (3 restores since the last event)');
    expect(ev[2]!.message).toContain('7 fd(s) refused');
    expect(eventsBetween(next, next, null)).toEqual([]);
  });
  it('config refused: one event per distinct refused file', () => {
    const err = { message: 'bad', hash: 'a'.repeat(64), at: T1 };
    const next = agentStatus(base.containers, { config: { ...base.config, error: err } });
    expect(eventsBetween(base, next, null).map((e) => e.reason)).toEqual(['ConfigRejected']);
    expect(eventsBetween(next, agentStatus(base.containers, { config: { ...base.config, error: err } }), null)).toEqual([]);
  });
});

describe('EventLimiter', () => {
  it('burst per pod and reason, then held back and counted in the next one', () => {
    let now = 0;
    const lim = new EventLimiter(() => now, 2, 1000);
    const e = { type: 'Normal' as const, reason: 'FdsRestored' as const, message: 'm' };
    expect(lim.admit('ns/p', e)).toEqual(e);
    expect(lim.admit('ns/p', e)).toEqual(e);
    expect(lim.admit('ns/p', e)).toBeNull();
    expect(lim.admit('ns/p', e)).toBeNull();
    expect(lim.admit('ns/q', e)).toEqual(e);
    expect(lim.admit('ns/p', { ...e, reason: 'StoreFull' })).not.toBeNull();
    now = 1000;
    expect(lim.admit('ns/p', e)?.message).toBe('m (2 similar event(s) not reported)');
    expect(lim.suppressed).toBe(2);
    lim.forget('ns/p');
    now = 1001;
    expect(lim.admit('ns/p', e)).toEqual(e);
  });
});

describe('setCondition', () => {
  it('replaces by type and keeps others', () => {
    const a = setCondition(undefined, { type: 'A', status: 'True', reason: 'R', message: '' }, T0);
    const b = setCondition(a, { type: 'B', status: 'False', reason: 'R', message: '' }, T1);
    const c = setCondition(b, { type: 'A', status: 'False', reason: 'S', message: 'x' }, T1);
    expect(c.map((x) => [x.type, x.status, x.lastTransitionTime])).toEqual([['A', 'False', T1], ['B', 'False', T1]]);
  });
});

describe('policyStatuses', () => {
  const ok = () => null;
  it('pods won, conflicts in both policies with the winner named, Accepted from the agent check', () => {
    const older = policy('older', { selector: { matchLabels: { app: 'web' } } }, { created: '2026-01-01T00:00:00Z' });
    const newer = policy('newer', { selector: {} }, { created: '2026-02-01T00:00:00Z', generation: 4 });
    const pods = [pod('web-1', { app: 'web' }), pod('api-1', { app: 'api' })];
    const st = policyStatuses([older, newer], pods, (t) => (t.includes('newer') ? 'bad field' : null), T0);
    expect(st.get(older)).toMatchObject({ pods: 1, conflicts: [{ pod: 'web-1', winner: 'older' }], conflictsOmitted: 0 });
    expect(st.get(newer)).toMatchObject({ pods: 1, conflicts: [{ pod: 'web-1', winner: 'older' }], observedGeneration: 4 });
    expect(st.get(older)!.conditions![0]).toMatchObject({ type: 'Accepted', status: 'True', observedGeneration: 1 });
    expect(st.get(newer)!.conditions![0]).toMatchObject({ type: 'Accepted', status: 'False', message: 'bad field' });
  });
  it('conflicts are bounded', () => {
    const a = policy('a', { selector: {} });
    const b = policy('b', { selector: {} });
    const pods = Array.from({ length: 60 }, (_, i) => pod(`p-${String(i).padStart(2, '0')}`));
    const s = policyStatuses([a, b], pods, ok, T0).get(b)!;
    expect([s.conflicts!.length, s.conflictsOmitted, s.pods]).toEqual([50, 10, 0]);
  });
  it('sameStatus: an unchanged status written back compares equal', () => {
    const a = policy('a', { selector: {} });
    const s = policyStatuses([a], [pod('x')], ok, T0).get(a)!;
    a.status = JSON.parse(JSON.stringify(s));
    const again = policyStatuses([a], [pod('x')], ok, T1).get(a)!;
    expect(sameStatus(a.status, again)).toBe(true);
  });
});

describe('what goes to the API server', () => {
  it('forApi leaves out nulls and empty strings (1.20 refuses empty strings in custom resources)', () => {
    expect(forApi({ a: null, b: '', c: 'x', d: [{ e: null, f: 0 }], g: { h: undefined } })).toEqual({ c: 'x', d: [{ f: 0 }], g: {} });
  });
  it('mergePatch deletes what is gone (null), replaces lists, keeps the rest', () => {
    expect(mergePatch({ policy: { name: 'web' }, stored: 1, containers: [{ a: 1 }], agent: { v: 1, i: 'x' } }, { stored: 2, containers: [], agent: { v: 1 } }))
      .toEqual({ policy: null, stored: 2, containers: [], agent: { v: 1, i: null } });
    expect(mergePatch({}, { a: 1 })).toEqual({ a: 1 });
  });
});
