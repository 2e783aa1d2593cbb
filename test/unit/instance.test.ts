// containerInstance (which start of a container a process is, from its cgroup) and
// startsNewRun (a datagram showing a start without the launcher): issue 7 item 8.
import { describe, expect, it } from 'vitest';
import { containerInstance, startsNewRun } from '../../src/unit/instance.js';
import { Run } from '../../src/unit/run.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const POD = '4f1c2d3e_aaaa_bbbb_cccc_123456789abc';

describe('containerInstance', () => {
  it.each([
    ['cgroup v2, containerd, systemd driver', `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD}.slice/cri-containerd-${A}.scope\n`],
    ['cgroup v2, cgroupfs driver', `0::/kubepods/burstable/pod4f1c2d3e-aaaa-bbbb-cccc-123456789abc/${A}\n`],
    ['cgroup v1 (hybrid: empty unified line)', `12:memory:/kubepods/besteffort/pod${POD}/${A}\n4:pids:/kubepods/besteffort/pod${POD}/${A}\n0::/\n`],
    ['CRI-O', `0::/kubepods.slice/kubepods-pod${POD}.slice/crio-${A}.scope\n`],
    ['podman pod', `0::/machine.slice/machine-libpod_pod_${B}.slice/libpod-${A}.scope\n`],
    ['a private cgroup namespace (a sibling)', `0::/../${A}\n`],
    ['a sub-cgroup the container made', `0::/kubepods/burstable/pod${POD}/${A}/worker\n`],
  ])('%s: the container id', (_what, text) => {
    expect(containerInstance(text)).toBe(A);
  });

  it('no id (a local run, its own private namespace root), or gone: null', () => {
    expect(containerInstance('0::/user.slice/user-0.slice/session-1.scope\n')).toBeNull();
    expect(containerInstance('0::/\n')).toBeNull();
    expect(containerInstance(null)).toBeNull();
  });
});

describe('startsNewRun', () => {
  const live = (pid: number, instance: string | null = null) => ({ pid, alive: true, instance });
  const runOf = (phase: 'starting' | 'ready' | 'stopping' | 'exited', mainPid: number | null, instance: string | null) => {
    const r = new Run(1, 0, 0, 0);
    r.mainPid = mainPid;
    r.instance = instance;
    if (phase === 'ready') r.ready(0);
    if (phase === 'stopping') r.stopping();
    if (phase === 'exited') r.exit();
    return r;
  };

  it('(a) after the known main process exited, a live process that is not it', () => {
    expect(startsNewRun(runOf('exited', 10, null), live(11), false, null)).toBe(true);
    expect(startsNewRun(runOf('exited', 10, null), live(10), false, null)).toBe(false);
    expect(startsNewRun(runOf('exited', 10, null), { pid: 11, alive: false, instance: null }, false, null)).toBe(false);
  });

  it('(b) another container id while the main process is not alive; never the same start or the agent\'s', () => {
    expect(startsNewRun(runOf('stopping', null, A), live(11, B), false, null)).toBe(true);
    expect(startsNewRun(runOf('stopping', null, A), live(11, A), false, null)).toBe(false);
    expect(startsNewRun(runOf('stopping', 10, A), live(11, B), true, null)).toBe(false);
    expect(startsNewRun(runOf('stopping', null, A), live(11, B), false, B)).toBe(false);
    expect(startsNewRun(runOf('stopping', null, null), live(11, B), false, null)).toBe(false);
    expect(startsNewRun(runOf('stopping', null, A), live(11, null), false, null)).toBe(false);
  });

  it('pid 0 (no shared PID namespace) never starts a run', () => {
    expect(startsNewRun(runOf('exited', 10, A), { pid: 0, alive: true, instance: B }, false, null)).toBe(false);
  });
});
