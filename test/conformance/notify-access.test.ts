/**
 * NotifyAccess in a real PID namespace, the way a pod with
 * shareProcessNamespace: true looks: `sh` is pid 1 (the pause process), the agent
 * and every client live in the namespace, so the kernel's SCM_CREDENTIALS pids
 * are the pids the container sees, and MAINPID= names a pid in that namespace.
 */
import { describe, expect, it } from 'vitest';
import { isRoot, NEEDS_ROOT } from '../helpers/proc.js';
import { closed, closedByReason, drops, expectFdCount, mark } from '../helpers/observe.js';
import { useAgents } from './fixture.js';

const setup = useAgents();

describe.skipIf(!isRoot)(`NotifyAccess (N4) in a PID namespace ${NEEDS_ROOT}`, () => {
  it('N4.3 A2.9 A2.19: after MAINPID=self and NOTIFYACCESS=main, a child of the main process is refused', async () => {
    const { agent, baseline, client, raw } = await setup({ pidns: true });
    const main = client();
    const mainPid = await main.pid();
    // The pid is the namespace's, not the host's: proof that we are where a pod's container is.
    expect(mainPid).toBeLessThan(100);
    expect(mainPid).not.toBe(main.proc.pid);

    expect(await main.notify(`MAINPID=${mainPid}\nNOTIFYACCESS=main`)).toBeGreaterThan(0);
    expect(await main.barrier()).toBe(1);
    const c = (await agent.ls()).containers[0]!;
    expect(c.mainPid).toBe(mainPid);

    const m = await mark(agent);
    const [fromChild] = await main.socketpairs(1);
    const child = await main.child('FDSTORE=1\nFDNAME=child', [fromChild!]);
    expect(child.ret).toBeGreaterThan(0);
    expect(child.barrier).toBe(1); // BARRIER=1 is answered before authorization (D1.25)
    // Another process of the container, not related to the main process.
    const other = raw();
    await other.send({ data: 'FDSTORE=1\nFDNAME=other', fds: ['socketpair', 'memfd'] });
    expect(await other.barrier()).toBe(true);
    const [fromMain] = await main.socketpairs(1);
    expect(await main.notify('FDSTORE=1\nFDNAME=main', [fromMain!])).toBeGreaterThan(0);
    expect(await main.barrier()).toBe(1);

    expect(await agent.names()).toEqual(['main']);
    expect(await drops(agent, m)).toEqual(['unauthorized', 'unauthorized']);
    expect(await closed(agent, 'unauthorized', m)).toBe(3);
    // One stored fd, and the pidfd the agent holds to learn when the main pid exits.
    await expectFdCount(agent, baseline + 1 + 1);
    expect([...agent.fdTable().values()].filter((t) => t === 'anon_inode:[pidfd]')).toHaveLength(1);
  });

  it('N4.5: with --notify-access main and no main pid known yet, every message is refused, MAINPID= included', async () => {
    // systemd authorizes a datagram before applying its MAINPID= (A2 order), and
    // `main` with an unknown main pid rejects everything: the main pid must come
    // from the launcher (or from a message sent while access was wider, above).
    const { agent, baseline, client } = await setup({ pidns: true, args: ['--notify-access', 'main'] });
    const main = client();
    const mainPid = await main.pid();
    const m = await mark(agent);
    expect(await main.notify(`MAINPID=${mainPid}`)).toBeGreaterThan(0);
    expect(await main.notify('FDSTORE=1\nFDNAME=main', await main.socketpairs(1))).toBeGreaterThan(0);
    expect(await main.barrier()).toBe(1);
    expect(await agent.names()).toEqual([]);
    expect(await drops(agent, m)).toEqual(['unauthorized', 'unauthorized']);
    expect(await closedByReason(agent, m)).toEqual({ unauthorized: 1 });
    const c = (await agent.ls()).containers[0]!;
    expect(c.mainPid).toBeNull();
    await expectFdCount(agent, baseline);
  });

  it('N4.1 N4.4: NotifyAccess=none (config file) refuses every sender in the container', async () => {
    const { agent, baseline, client } = await setup({
      pidns: true,
      config: { containers: [{ name: 'app', notifyAccess: 'none' }] },
    });
    const c = client();
    const m = await mark(agent);
    expect(await c.notify('FDSTORE=1\nFDNAME=x\nREADY=1', await c.socketpairs(2))).toBeGreaterThan(0);
    expect(await c.barrier()).toBe(1);
    expect(await agent.names()).toEqual([]);
    expect(await drops(agent, m)).toEqual(['unauthorized']);
    expect(await closed(agent, 'unauthorized', m)).toBe(2);
    const ct = (await agent.ls()).containers[0]!;
    expect(ct.state).not.toBe('ready');
    await expectFdCount(agent, baseline);
  });

  it('the agent as a child of the namespace\'s pid 1 still exits 0 on SIGTERM', async () => {
    const { agent } = await setup({ pidns: true });
    expect(await agent.stop()).toBe(0);
  });
});
