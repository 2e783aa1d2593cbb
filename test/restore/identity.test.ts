/**
 * Restore peer identity (issue 7 item 11, docs/security.md): a peer is container
 * NAME's when its mount namespace mounts DIR/NAME (the kubelet's subPath mount;
 * changing mounts needs CAP_SYS_ADMIN). Real processes in real mount namespaces
 * (`unshare --mount` + a bind mount, as the kubelet does), the real launcher.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkPeerMounts, parseMountinfo, peerMounts, runDirSource } from '../../src/restore/identity.js';
import { startAgent, type Agent } from '../helpers/agent.js';
import { isRoot, NEEDS_ROOT, run, PYTHON } from '../helpers/proc.js';
import { cleanEnv, containerState, launcherOf, restoreFixture, waitExited } from './harness.js';

const fixture = restoreFixture();
const { agents } = fixture;

/** Runs `fdstore-exec --dir DIR/target -- CMD` in a new mount namespace that bind-mounts DIR/mounted (a container's view). */
function launchFrom(agent: Agent, mounted: string, target: string, cmd: string[]) {
  const mnt = join(agent.root, `mnt-${mounted}`);
  mkdirSync(mnt, { recursive: true });
  const script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"';
  return run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', join(agent.runDir, mounted), mnt,
    launcherOf(agent, target), '--dir', join(agent.runDir, target), '--', ...cmd], { env: cleanEnv() });
}

const STORE = `import os
from systemd import daemon
m = os.memfd_create('secret'); os.write(m, b'b-only')
assert daemon.notify('FDSTORE=1\\nFDNAME=secret', fds=[m])
`;

describe('restore peer identity', () => {
  it.skipIf(!isRoot)(`a process that mounts DIR/a is refused on b's restore socket; b's own launcher restores afterwards ${NEEDS_ROOT}`, async () => {
    const agent = await startAgent({ containers: ['a', 'b'] });
    agents.push(agent);
    const seeded = await run(PYTHON, ['-c', STORE], { env: cleanEnv({ NOTIFY_SOCKET: agent.notifyPath('b') }) });
    expect(seeded.code, seeded.stderr).toBe(0);
    expect(await agent.names('b')).toEqual(['secret']);

    // a's process, reaching b's directory the way /proc/PID/root of a b process would.
    const intruder = await launchFrom(agent, 'a', 'b', ['sh', '-c', 'echo "$LISTEN_FDNAMES"']);
    expect(intruder.code).toBe(111);
    expect(intruder.stderr).toContain('aborted the restore: process belongs to container a (it mounts their directory), not b');
    expect(intruder.stdout).toBe('');
    expect(await containerState(agent, 'b')).toMatchObject({ starts: 0, restores: 0, count: 1 });
    expect(agent.logs.some((l) => l.msg === 'restore refused' && l.container === 'b')).toBe(true);

    // Nothing was learned from it: b's own launcher (it mounts DIR/b) restores.
    const own = await launchFrom(agent, 'b', 'b', ['sh', '-c', 'echo "$LISTEN_FDNAMES"']);
    expect(own.code, own.stderr).toBe(0);
    expect(own.stdout.trim()).toBe('secret');
    await waitExited(agent, 'b');
    // And a's own launcher is not refused on a's socket either.
    const a = await launchFrom(agent, 'a', 'a', ['true']);
    expect(a.code, a.stderr).toBe(0);
    expect(await containerState(agent, 'b')).toMatchObject({ starts: 1, restores: 1 });
  });

  it('a process that sees the whole run dir (a local run, the agent\'s container) is told apart by socket only', async () => {
    const agent = await startAgent({ containers: ['a'] });
    agents.push(agent);
    const r = await run(launcherOf(agent, 'a'), ['--', 'true'], { env: cleanEnv() });
    expect(r.code, r.stderr).toBe(0);
    expect(agent.logs.some((l) => l.msg.startsWith('restore peers see the whole run dir'))).toBe(true);
  });
});

describe('identity from mountinfo (pure)', () => {
  // A sidecar and an app container of one pod, as the kubelet mounts an emptyDir.
  const VOL = '/var/lib/kubelet/pods/4f1c/volumes/kubernetes.io~empty-dir/fdstore';
  const agentInfo = [
    '700 600 0:120 / / rw,relatime - overlay overlay rw',
    `720 700 8:1 ${VOL} /run/fdstore rw,relatime - ext4 /dev/sda1 rw`,
    '721 700 8:1 /var/lib/kubelet/pods/4f1c/etc-hosts /etc/hosts rw - ext4 /dev/sda1 rw',
  ].join('\n');
  const appInfo = (name: string) => [
    '800 600 0:130 / / rw,relatime - overlay overlay rw',
    `820 800 8:1 ${VOL}/${name} /run/fdstore rw,relatime - ext4 /dev/sda1 rw`,
    '821 800 8:1 /var/lib/kubelet/pods/4f1c/etc-hosts /etc/hosts rw - ext4 /dev/sda1 rw',
  ].join('\n');
  const src = runDirSource(parseMountinfo(agentInfo), '/run/fdstore')!;
  const names = ['web', 'db'];

  it('the run dir source is the device and the path inside it', () => {
    expect(src).toEqual({ dev: '8:1', root: VOL });
    expect(runDirSource(parseMountinfo(agentInfo), '/run/fdstore/sub')).toEqual({ dev: '8:1', root: `${VOL}/sub` });
  });

  it('an app container is the one whose directory it mounts, and only that one', () => {
    const web = peerMounts(parseMountinfo(appInfo('web')), src, names);
    expect(web).toEqual({ whole: false, containers: ['web'] });
    expect(checkPeerMounts(web, 'web')).toEqual({ ok: true, undistinguished: false });
    expect(checkPeerMounts(web, 'db')).toMatchObject({ ok: false, reason: expect.stringContaining('belongs to container web') });
  });

  it('a container without the volume reached the socket through another process\'s root', () => {
    const none = peerMounts(parseMountinfo('900 600 0:140 / / rw - overlay overlay rw'), src, names);
    expect(checkPeerMounts(none, 'web')).toMatchObject({ ok: false, reason: expect.stringContaining('does not mount the run dir') });
  });

  it('the agent\'s own container sees the whole run dir: undistinguished', () => {
    expect(checkPeerMounts(peerMounts(parseMountinfo(agentInfo), src, names), 'web')).toEqual({ ok: true, undistinguished: true });
  });

  it('mountinfo escapes (\\040 for a space) are decoded; other devices and unknown names do not count', () => {
    const spaced = runDirSource(parseMountinfo('1 0 8:2 /my\\040dir /data rw - ext4 /dev/sdb rw'), '/data/run')!;
    expect(spaced).toEqual({ dev: '8:2', root: '/my dir/run' });
    const peer = parseMountinfo(['2 0 8:2 /my\\040dir/run/web /x rw - ext4 /dev/sdb rw', '3 0 8:3 /my\\040dir/run/db /y rw - ext4 /dev/sdc rw',
      '4 0 8:2 /my\\040dir/run/other /z rw - ext4 /dev/sdb rw'].join('\n'));
    expect(peerMounts(peer, spaced, names)).toEqual({ whole: false, containers: ['web'] });
  });
});
