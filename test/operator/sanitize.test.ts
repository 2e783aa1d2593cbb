/** The operator's parser of agents' /status bodies: hostile input from any pod. */
import { describe, expect, it } from 'vitest';
import { CONTAINERS_MAX, parseStatus, STATUS_BODY_MAX } from '../../src/operator/agents/sanitize.js';
import { STATUS_FD_GROUPS_MAX, STATUS_TEXT_MAX } from '../../src/status/types.js';
import { agentStatus, container } from './fixtures.js';

const body = (v: unknown): string => JSON.stringify(v);

describe('parseStatus', () => {
  it('an honest status comes back equal', () => {
    const s = agentStatus([container('app', { status: 'serving', errno: 0, lastRestore: { at: '2026-12-01T10:00:00.000Z', fds: 1 } })]);
    expect(parseStatus(body(s))).toEqual(s);
  });
  it('the keeper block comes back equal; absent stays absent; a hostile one is typed or refused', () => {
    const keeper = { connected: true, agentRestarts: 2, adoptedFds: 7, storeLost: false, reseeds: 1, unmirrored: 0 };
    const s = agentStatus([container('app')], { agent: { version: '0.1.0', startedAt: '2026-12-01T10:00:00.000Z', instance: 'i', keeper } });
    expect(parseStatus(body(s))).toEqual(s);
    expect('keeper' in parseStatus(body(agentStatus([container('app')]))).agent).toBe(false);
    const odd = parseStatus(body({ ...s, agent: { ...s.agent, keeper: { connected: 'yes', storeLost: 1, extra: 'x' } } }));
    expect(odd.agent.keeper).toEqual({ connected: false, agentRestarts: 0, adoptedFds: 0, storeLost: false, reseeds: 0, unmirrored: 0 });
    expect(() => parseStatus(body({ ...s, agent: { ...s.agent, keeper: { ...keeper, adoptedFds: 1.5 } } }))).toThrow(/agent.keeper.adoptedFds: an integer/);
  });
  it.each([
    ['not JSON', '{', /not JSON/],
    ['a list', '[]', /an object/],
    ['another schema', body({ ...agentStatus([]), schema: 'fdstore.dev/agent-status/v9' }), /unknown status schema/],
    ['oversize', 'x'.repeat(STATUS_BODY_MAX + 1), /over/],
    ['too many containers', body(agentStatus(Array.from({ length: CONTAINERS_MAX + 1 }, (_, i) => container(`c${i}`)))), /at most/],
    ['a bad container name', body(agentStatus([container('../etc')])), /DNS-1123/],
    ['a float count', body(agentStatus([container('a', { stored: 1.5 })])), /integer/],
    ['a bad time', body(agentStatus([container('a', { lastRestore: { at: 'yesterday', fds: 1 } })])), /RFC 3339/],
    ['a bad hash', body(agentStatus([], { config: { policy: null, hash: 'zz', loadedAt: '2026-12-01T10:00:00Z', error: null, reloads: 0, rejected: 0 } })), /sha256/],
  ])('refuses %s', (_what, text, why) => {
    expect(() => parseStatus(text)).toThrow(why);
  });
  it('cuts strings and lists, replaces control characters, drops unknown fields', () => {
    const groups = Array.from({ length: STATUS_FD_GROUPS_MAX + 5 }, (_, i) => ({ name: `g${i}`, type: 'pipe', count: 1 }));
    const raw = agentStatus([container('a', { status: `x\u0000y${'z'.repeat(1000)}`, fdGroups: groups, fdGroupsOmitted: 2 })]) as unknown as Record<string, unknown>;
    (raw as { extra?: string }).extra = 'e';
    const s = parseStatus(body(raw));
    const c = s.containers[0]!;
    expect(c.status!.length).toBe(STATUS_TEXT_MAX);
    expect(c.status!.startsWith('x?y')).toBe(true);
    expect(c.fdGroups.length).toBe(STATUS_FD_GROUPS_MAX);
    expect(c.fdGroupsOmitted).toBe(7);
    expect('extra' in s).toBe(false);
  });
  it('an unknown run phase reads as unknown', () => {
    const s = parseStatus(body(agentStatus([container('a', { state: 'pwned' as never })])));
    expect(s.containers[0]!.state).toBe('unknown');
  });
});
