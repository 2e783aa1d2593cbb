/**
 * Issue 7 item 12: the agent is not dumpable (PR_SET_DUMPABLE 0), so a process
 * of the agent's own uid cannot read its fd table (stored fds) or enter its root
 * (the admin socket) through /proc. Root, with CAP_SYS_PTRACE, still can: the
 * test helpers rely on that.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent, type Agent } from '../helpers/agent.js';
import { isRoot, NEEDS_ROOT, PYTHON, run } from '../helpers/proc.js';

/** The recommended agent uid (examples/web-native.yaml, the chart): not 65532, distroless's `nonroot`. */
const AGENT = { uid: 64919, gid: 64919 };

let agent: Agent | null = null;
afterEach(async () => {
  await agent?.dispose();
  agent = null;
});

describe('item 12: same-uid neighbours', () => {
  it.skipIf(!isRoot)(`a process with the agent's uid cannot readlink /proc/<agent>/fd/N nor open /proc/<agent>/root ${NEEDS_ROOT}`, async () => {
    agent = await startAgent({ containers: ['app'], user: AGENT });
    const pid = agent.pid;
    const fd = readdirSync(`/proc/${pid}/fd`).find((e) => readlinkSync(`/proc/${pid}/fd/${e}`).startsWith('socket:'));
    expect(fd).toBeDefined();
    // Root still can (CAP_SYS_PTRACE): what the helpers' fd counts use.
    expect(readlinkSync(`/proc/${pid}/fd/${fd}`)).toMatch(/^socket:\[\d+\]$/);

    const probe = (code: string) => run(PYTHON, ['-c', `import os\ntry:\n print(${code})\nexcept OSError as e:\n print('errno', e.errno)`], {
      placement: { user: AGENT },
    });
    // EACCES (13): /proc/<agent>/fd and /proc/<agent>/root belong to root now.
    expect((await probe(`os.readlink('/proc/${pid}/fd/${fd}')`)).stdout.trim()).toBe('errno 13');
    expect((await probe(`os.listdir('/proc/${pid}/root/')`)).stdout.trim()).toBe('errno 13');
    // A control: the same uid reads its own process's fds.
    expect((await probe(`os.readlink('/proc/self/fd/0')`)).stdout.trim()).not.toMatch(/^errno/);
  });
});
