/**
 * /metrics of the real agent after a scripted sequence of real notify messages
 * (python3-systemd's daemon.notify, and raw.py for what no library sends): the
 * exact fdstore_ series, promtool's verdict, and bounded labels under a storm of
 * random FDNAMEs and STATUS texts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pyNotify } from '../helpers/clients/index.js';
import { PYTHON, run } from '../helpers/proc.js';
import { RawSender } from '../helpers/raw.js';
import { parseExposition, promtoolCheck, seriesMap, zeroSeries, agentZeroSeries } from './expo.js';
import { startHttpAgent, until, type HttpAgent } from './live.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function agentWith(containers: string[], args: string[] = []): Promise<HttpAgent> {
  const h = await startHttpAgent({ containers, args });
  cleanups.push(() => h.agent.dispose());
  return h;
}

/** python3-systemd notify (+ a barrier); the process stays up to keep socket peers open. */
async function py(h: HttpAgent, state: string, extra: { socketpairs?: number; memfd?: string[] } = {}) {
  const { result, proc } = await pyNotify({ socket: h.agent.notifyPath('app'), state, ...extra });
  expect(result).toMatchObject({ ret: true, acked: true });
  cleanups.push(() => proc.close());
  return proc;
}

describe('/metrics of a real agent', () => {
  it('shows exactly the expected series after a scripted sequence of notify messages', async () => {
    const t0 = Date.now() / 1000;
    const h = await agentWith(['app', 'worker'], ['--fd-store-max', '8']);
    const initial = await h.scrape();
    expect(promtoolCheck(initial)).toEqual({ code: 0, output: '' });

    await py(h, 'READY=1\nSTATUS=warming up');
    await py(h, 'FDSTORE=1\nFDNAME=web', { socketpairs: 2, memfd: ['a'] });
    await py(h, 'FDSTORE=1\nFDNAME=tmp', { memfd: ['b'] });
    const gone = await py(h, 'FDSTORE=1\nFDNAME=gone', { socketpairs: 1 });
    await py(h, 'FDNAME=unsent', { socketpairs: 1 });
    await py(h, 'WATCHDOG=1');
    await py(h, 'FDSTOREREMOVE=1\nFDNAME=tmp');
    await py(h, 'ERRNO=bogus');
    const raw = new RawSender(h.agent.notifyPath('app'));
    cleanups.push(() => raw.exit());
    await raw.send({ data: 'FDSTORE=1\nFDNAME=lb', fds: ['tcp-listen', { dup: 0 }] });
    await raw.send({ data: 'READY=1\0oops', fds: ['memfd'] });
    expect(await raw.barrier()).toBe(true);
    await py(h, 'RELOADING=1');
    await gone.request('close-peers');
    const t1 = Date.now() / 1000;

    const text = await until(async () => {
      const t = await h.scrape();
      return seriesMap(t).get('fdstore_fds_dropped_total{app_container="app",reason="hangup"}') === 1 ? t : undefined;
    }, 'the hang-up to be counted').catch(async (e: Error) => {
      throw new Error(`${e.message}\n${(await h.scrape()).split('\n').filter((l) => l.startsWith('fdstore_fds_') || l.startsWith('fdstore_stored')).join('\n')}\n${h.agent.stderrTail()}`);
    });
    const got = seriesMap(text);

    const expected = new Map([...zeroSeries('app', 8), ...zeroSeries('worker', 8), ...agentZeroSeries(true)]);
    const app = (name: string, v: number, extra = ''): void => void expected.set(`fdstore_${name}{app_container="app"${extra}}`, v);
    app('notify_messages_total', 10, ',result="accepted"');
    app('notify_messages_total', 1, ',result="rejected"');
    app('notify_rejected_total', 1, ',reason="nul_byte"');
    app('fds_dropped_total', 1, ',reason="not_stored"');
    app('fds_dropped_total', 1, ',reason="removed"');
    app('fds_dropped_total', 1, ',reason="hangup"');
    app('fds_dropped_total', 1, ',reason="duplicate"');
    app('fds_dropped_total', 1, ',reason="invalid_message"');
    app('fds_stored_total', 6);
    app('stored_fds', 2, ',type="unix"');
    app('stored_fds', 1, ',type="memfd"');
    app('stored_fds', 1, ',type="tcp_listen"');
    app('watchdog_pings_total', 1);
    app('notify_warnings_total', 1);
    app('container_ready', 1);
    app('container_state', 0, ',state="starting"');
    app('container_state', 1, ',state="reloading"');
    expected.set('fdstore_build_info{version="0.1.0"}', 1);
    const ping = got.get('fdstore_watchdog_last_ping_timestamp_seconds{app_container="app"}')!;
    expect(ping).toBeGreaterThanOrEqual(t0 - 1);
    expect(ping).toBeLessThanOrEqual(t1 + 1);
    app('watchdog_last_ping_timestamp_seconds', ping);
    const start = got.get('fdstore_agent_start_time_seconds')!;
    expect(start).toBeGreaterThanOrEqual(t0 - 1);
    expect(start).toBeLessThanOrEqual(ping);
    expected.set('fdstore_agent_start_time_seconds', start);
    // No --config: nothing reloaded, the flags' config loaded at start.
    expected.set('fdstore_config_reloads_total{result="applied"}', 0);
    expected.set('fdstore_config_reloads_total{result="rejected"}', 0);
    expected.set('fdstore_config_checks_total', 0);
    expected.set('fdstore_config_last_reload_successful', 1);
    const loaded = got.get('fdstore_config_loaded_timestamp_seconds')!;
    expect(Math.abs(loaded - start)).toBeLessThanOrEqual(1);
    expected.set('fdstore_config_loaded_timestamp_seconds', loaded);
    expect(Object.fromEntries(got)).toEqual(Object.fromEntries(expected));

    // The agent's own fd table is there too (every stored fd is one of them).
    const open = parseExposition(text).find((s) => s.name === 'process_open_fds')!.value;
    expect(Math.abs(open - h.agent.fdCount())).toBeLessThanOrEqual(2); // scrape connections come and go
    expect(promtoolCheck(text)).toEqual({ code: 0, output: '' });
    // Nothing from the messages' free text reaches the pod network.
    for (const secret of ['warming up', 'web', 'gone', 'tmp', 'lb', 'bogus']) expect(text).not.toContain(secret);
    expect((await h.get('/readyz/app')).body).toBe('reloading\n');
  });

  it('keeps the same series under a storm of random FDNAMEs and STATUS texts', async () => {
    const h = await agentWith(['app']);
    const before = [...seriesMap(await h.scrape(), '').keys()].sort();
    const script = join(h.agent.root, 'storm.py');
    writeFileSync(script, STORM_PY);
    const r = await run(PYTHON, [script, '400'], { env: { ...process.env, NOTIFY_SOCKET: h.agent.notifyPath('app') }, timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const words = JSON.parse(r.stdout) as { acked: boolean; names: string[]; statuses: string[] };
    expect(words.acked).toBe(true);

    const text = await h.scrape();
    expect(promtoolCheck(text)).toEqual({ code: 0, output: '' });
    const after = [...seriesMap(text, '').keys()].sort();
    expect(after).toEqual(before);
    const got = seriesMap(text);
    expect(got.get('fdstore_notify_messages_total{app_container="app",result="accepted"}')).toBe(400);
    const stored = [...got].filter(([k]) => k.startsWith('fdstore_stored_fds{')).reduce((a, [, v]) => a + v, 0);
    expect(stored).toBeGreaterThan(0);
    expect(stored).toBe((await h.agent.ls()).fds.length);
    for (const w of [...words.names, ...words.statuses]) expect(text).not.toContain(w);
    for (const p of ['/readyz/app', '/livez/app', '/healthz']) {
      const body = (await h.get(p)).body;
      for (const w of words.statuses) expect(body).not.toContain(w);
    }
  });
});

/** 400 datagrams through python3-systemd: random names and status texts, memfds, removals, junk. */
const STORM_PY = String.raw`
import json, os, random, select, socket, string, struct, sys
from systemd import daemon

rng = random.Random(4)
def word(n):
    return ''.join(rng.choice(string.ascii_letters + string.digits + '_-.') for _ in range(n))

names, statuses = [], []
for i in range(int(sys.argv[1])):
    name = 'N' + word(rng.randint(8, 60))
    status = 'S' + word(rng.randint(8, 40)) + ' "quoted" \u00e9\u6f22'
    names.append(name)
    statuses.append(status[:9])
    kind = i % 4
    if kind == 0:
        fd = os.memfd_create('storm')
        daemon.notify('FDSTORE=1\nFDNAME=%s\nSTATUS=%s' % (name, status), fds=[fd])
        os.close(fd)
    elif kind == 1:
        daemon.notify('FDSTOREREMOVE=1\nFDNAME=%s' % rng.choice(names))
    elif kind == 2:
        daemon.notify('STATUS=%s\nERRNO=%s\nX_%s=1' % (status, word(5), word(6)))
    else:
        fd = os.memfd_create('storm')
        daemon.notify('FDNAME=%s\nWATCHDOG=1' % name, fds=[fd])
        os.close(fd)

r, w = os.pipe()
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
    s.sendmsg([b'BARRIER=1'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack('i', w))], 0, os.environ['NOTIFY_SOCKET'])
os.close(w)
p = select.poll()
p.register(r, 0)
acked = any(ev & select.POLLHUP for _, ev in p.poll(10000))
print(json.dumps({'acked': acked, 'names': names, 'statuses': statuses}))
`;
