/**
 * F3.14/F3.30 end to end: an empty FDNAME= is a valid name; it comes back as an
 * empty LISTEN_FDNAMES field through the real agent and the real launcher.
 */
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { startAgent, type Agent } from '../helpers/agent.js';
import { PYTHON, run } from '../helpers/proc.js';

let agent: Agent | null = null;
afterEach(async () => {
  await agent?.dispose();
  agent = null;
});

it('F3.14: empty and non-empty names round-trip through fdstore-exec', async () => {
  agent = await startAgent({ containers: ['app'] });
  const env = { ...process.env, NOTIFY_SOCKET: agent.notifyPath() };
  const store = await run(PYTHON, ['-c', `import os
from systemd import daemon
a=os.memfd_create('a'); os.write(a, b'first')
b=os.memfd_create('b'); os.write(b, b'second')
assert daemon.notify('FDSTORE=1\\nFDNAME=', fds=[a])
assert daemon.notify('FDSTORE=1\\nFDNAME=named', fds=[b])
`], { env });
  expect(store.code, store.stderr).toBe(0);
  const ls = await agent.ls();
  expect(ls.fds.map((f) => f.fdname).sort()).toEqual(['', 'named']);
  const launched = await run(join(agent.runDir, 'app', 'fdstore-exec'), ['--', PYTHON, '-c', `import os
from systemd import daemon
# Read LISTEN_FDNAMES by hand: libsystemd 252's sd_listen_fds_with_names() collapses
# empty fields and answers EINVAL, as it would under systemd 252 itself.
assert os.environ['LISTEN_PID'] == str(os.getpid())
names = {3 + i: n for i, n in enumerate(os.environ['LISTEN_FDNAMES'].split(':'))}
out = {}
for fd, name in names.items():
    os.lseek(fd, 0, 0)
    out[name] = os.read(fd, 100).decode()
print(os.environ['LISTEN_FDS'], repr(os.environ['LISTEN_FDNAMES']), sorted(out.items()))
`]);
  expect(launched.code, launched.stderr).toBe(0);
  expect(launched.stdout.trim()).toBe(`2 ':named' [('', 'first'), ('named', 'second')]`);
});
