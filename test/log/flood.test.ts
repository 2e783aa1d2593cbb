/**
 * A hostile flood against the real agent (issue 7 item 3): thousands of invalid
 * datagrams, each with an fd. The log stays bounded (per container and reason, at
 * most a burst per window), the metrics count every datagram and every fd
 * exactly, and the lines not written are counted too. Sync point: the flooder's
 * own BARRIER=1, acknowledged after every datagram before it was applied.
 */
import { describe, expect, it } from 'vitest';
import { LineProcess, PYTHON } from '../helpers/proc.js';
import { parseExposition } from '../metrics/expo.js';
import { startHttpAgent } from '../metrics/live.js';
import { LOG_RATE_LIMIT } from '../../src/log/ratelimit.js';

/** N datagrams with an embedded NUL (D1.17) and one fd each, then a barrier; prints "acked". */
const FLOOD = `
import array, os, select, socket, sys
path, n = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(path)
fd = os.open("/dev/null", os.O_RDONLY)
anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]).tobytes())]
payload = b"STATUS=" + b"A" * 200 + b"\\0" + b"B" * 200
for _ in range(n):
    s.sendmsg([payload], anc)
r, w = os.pipe()
s.sendmsg([b"BARRIER=1"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [w]).tobytes())])
os.close(w)
p = select.poll(); p.register(r, select.POLLHUP)
print("acked" if p.poll(60000) else "timeout", flush=True)
`;

/** The value of one series, whatever the container label is called. */
function value(text: string, name: string, labels: Record<string, string>): number {
  const s = parseExposition(text).filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  if (s.length !== 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${s.length} series`);
  return s[0]!.value;
}

describe('a flood of invalid datagrams', () => {
  it('writes a bounded log, counts every datagram and fd exactly, and counts the suppressed lines', async () => {
    const h = await startHttpAgent();
    try {
      const N = 5_000;
      const from = h.agent.mark();
      const started = performance.now();
      const p = new LineProcess(PYTHON, ['-c', FLOOD, h.agent.notifyPath('app'), String(N)]);
      expect(await p.nextLine(120_000)).toBe('acked');
      await p.close();
      const text = await h.scrape();
      const elapsed = performance.now() - started;

      // Exact: every datagram and every fd.
      expect(value(text, 'fdstore_notify_rejected_total', { reason: 'nul_byte' })).toBe(N);
      expect(value(text, 'fdstore_fds_dropped_total', { reason: 'invalid_message' })).toBe(N);

      // Bounded: at most a burst per window per reason, the rest counted.
      const lines = h.agent.since(from);
      const nul = lines.filter((l) => l.reason === 'nul_byte').length;
      const closedLines = lines.filter((l) => l.reason === 'invalid_message').length;
      const windows = 1 + Math.floor(elapsed / LOG_RATE_LIMIT.intervalMs);
      expect(nul).toBeGreaterThan(0);
      expect(nul).toBeLessThanOrEqual(LOG_RATE_LIMIT.burst * windows);
      expect(closedLines).toBeLessThanOrEqual(LOG_RATE_LIMIT.burst * windows);
      expect(value(text, 'fdstore_log_suppressed_total', { reason: 'nul_byte' })).toBe(N - nul);
      expect(value(text, 'fdstore_log_suppressed_total', { reason: 'invalid_message' })).toBe(N - closedLines);

      // The bytes written for the flood: every line, bounded in size too.
      const bytes = lines.reduce((n, l) => n + JSON.stringify(l).length + 1, 0);
      expect(bytes).toBeLessThanOrEqual(2 * LOG_RATE_LIMIT.burst * windows * 512 + 10 * 512);
    } finally {
      await h.agent.dispose();
    }
  });
});
