/** python3-systemd and systemd-notify against the agent. */
import { describe, expect, it } from 'vitest';
import { pyNotify, systemdNotify } from '../helpers/clients/index.js';
import { closedByReason, drops, expectFdCount, mark, waitClosed } from '../helpers/observe.js';
import { useAgents } from './fixture.js';

const setup = useAgents();

describe('python3-systemd', () => {
  it('F3.5 F3.13: notify("FDSTORE=1\\nFDNAME=py", fds=[...]) stores every fd under its name', async () => {
    const { agent, baseline } = await setup();
    const { result, proc } = await pyNotify({
      socket: agent.notifyPath(), state: 'FDSTORE=1\nFDNAME=py', socketpairs: 2, memfd: ['state'],
    });
    try {
      expect(result).toMatchObject({ ret: true, acked: true });
      const ls = await agent.ls();
      expect(ls.fds.map((f) => [f.fdname, f.type]).sort()).toEqual([['py', 'memfd'], ['py', 'unix'], ['py', 'unix']]);
      expect(await drops(agent)).toEqual([]);
      await expectFdCount(agent, baseline + 3);
      // Hang-up removal works for python's sockets too; the memfd stays.
      const m = await mark(agent);
      await proc.request('close-peers');
      await waitClosed(agent, 'hangup', 2, m);
      expect((await agent.ls()).fds.map((f) => f.type)).toEqual(['memfd']);
      await expectFdCount(agent, baseline + 1);
    } finally {
      await proc.close();
    }
  });
});

describe('systemd-notify', () => {
  it('A2.1 A2.5 A2.18: --ready --status=... is accepted, applied, and its BARRIER=1 acknowledged', async () => {
    const { agent, baseline } = await setup();
    const r = await systemdNotify({ socket: agent.notifyPath(), args: ['--ready', '--status=serving requests'] });
    // systemd-notify exits non-zero when the barrier is not acknowledged in 5 s.
    expect(r.code, r.stderr).toBe(0);
    expect(await drops(agent)).toEqual([]);
    expect(await closedByReason(agent)).toEqual({});
    const c = (await agent.ls()).containers[0]!;
    expect(c.status).toBe('serving requests');
    expect(c.state).toBe('ready');
    await expectFdCount(agent, baseline);
  });

  it('A2.5: a later STATUS= replaces the status, an empty one clears it; readiness stays', async () => {
    const { agent } = await setup();
    const send = async (args: string[]): Promise<Record<string, unknown>> => {
      const r = await systemdNotify({ socket: agent.notifyPath(), args });
      expect(r.code, r.stderr).toBe(0);
      return (await agent.ls()).containers[0]!;
    };
    await send(['--ready', '--status=one']);
    const two = await send(['--status=two']);
    expect(two.status).toBe('two');
    expect(two.state).toBe('ready');
    const cleared = await send(['--status=']);
    expect(['', null]).toContain(cleared.status);
    expect(await drops(agent)).toEqual([]);
  });
});
