/**
 * The agent and its apps as a pod runs them: default settings, the agent as one
 * non-root uid, each app as another, every capability dropped (setpriv). A root
 * run would hide what a pod refuses: systemd-notify cannot claim its parent's pid,
 * and the notify socket must be writable by a foreign uid.
 */
import { describe, expect, it } from 'vitest';
import { isRoot, NEEDS_ROOT } from '../helpers/proc.js';
import { readFileSync, statSync } from 'node:fs';
import { pyNotify, systemdNotify } from '../helpers/clients/index.js';
import { closedByReason, drops, expectFdCount, mark, waitClosed } from '../helpers/observe.js';
import { useAgents } from './fixture.js';

const setup = useAgents();
const AGENT = { uid: 10001, gid: 10001 };
const APP = { uid: 10002, gid: 10002 };
const OTHER_APP = { uid: 10003, gid: 10003 };

describe.skipIf(!isRoot)(`non-root uids without capabilities (the pod shape) ${NEEDS_ROOT}`, () => {
  it('agent 10001, apps 10002/10003: libsystemd, python3-systemd and systemd-notify all work with defaults', { timeout: 30_000 }, async () => {
    const { agent, baseline, client } = await setup({ user: AGENT, containers: ['web', 'worker'] });
    const status = readFileSync(`/proc/${agent.pid}/status`, 'utf8');
    expect(status).toMatch(/^Uid:\s+10001\s+10001\s+10001\s+10001$/m);
    expect(status).toMatch(/^CapEff:\s+0+$/m);
    expect(status).toMatch(/^CapBnd:\s+0+$/m);
    expect(statSync(agent.notifyPath('web')).uid).toBe(AGENT.uid);

    const web = client(APP, 'web');
    const tcp = await web.listen('tcp-listen');
    expect(await web.notify('FDSTORE=1\nFDNAME=http', [tcp.id, ...(await web.socketpairs(2))])).toBeGreaterThan(0);
    expect(await web.barrier()).toBe(1);

    const py = await pyNotify({
      socket: agent.notifyPath('worker'), state: 'FDSTORE=1\nFDNAME=py', socketpairs: 1, placement: { user: OTHER_APP },
    });
    expect(py.result).toMatchObject({ ret: true, acked: true });

    const sn = await systemdNotify({
      socket: agent.notifyPath('web'), args: ['--ready', '--status=up'], placement: { user: APP },
    });
    expect(sn.code, sn.stderr).toBe(0);

    expect(await drops(agent)).toEqual([]);
    const ls = await agent.ls();
    expect(ls.fds.map((f) => [f.container, f.fdname, f.type]).sort()).toEqual([
      ['web', 'http', 'tcp_listen'], ['web', 'http', 'unix'], ['web', 'http', 'unix'], ['worker', 'py', 'unix'],
    ]);
    expect(ls.fds.find((f) => f.type === 'tcp_listen')!.address).toBe(`127.0.0.1:${tcp.port}`);
    const webState = ls.containers.find((c) => c.name === 'web')!;
    expect(webState.state).toBe('ready');
    expect(webState.status).toBe('up');
    await expectFdCount(agent, baseline + 4);

    // Hang-up removal across uids.
    const m = await mark(agent);
    await py.proc.request('close-peers');
    await waitClosed(agent, 'hangup', 1, m);
    expect(await closedByReason(agent, m)).toEqual({ hangup: 1 });
    await py.proc.close();
    await expectFdCount(agent, baseline + 3);

    // The admin socket answers the agent's uid only: an app cannot list or clean stores.
    const lsAsApp = await agent.cli(['ls', '--run-dir', agent.runDir, '--json'], APP);
    expect(lsAsApp.code).not.toBe(0);
    const cleanAsApp = await agent.cli(['clean', '--run-dir', agent.runDir, '--container', 'web'], APP);
    expect(cleanAsApp.code).not.toBe(0);
    expect(await agent.names('web')).toEqual(['http', 'http', 'http']);

    expect(await agent.stop()).toBe(0);
  });
});
