/**
 * systemd time spans (systemd.time(7); parse_sec() of systemd's time-util.c), as
 * every setting in seconds takes them: watchdogSec, timeoutStartSec,
 * releaseAfterSec in the config file and --watchdog-sec, --timeout-start-sec.
 */
import { describe, expect, it } from 'vitest';
import { parseTimeSpanUsec, secondsOf } from '../../src/config/timespan.js';
import { buildConfig } from '../../src/config/load.js';

const S = 1_000_000;

describe('parseTimeSpanUsec (systemd parse_sec)', () => {
  it.each([
    ['30', 30 * S], // a plain number is seconds
    ['0', 0],
    ['5s', 5 * S],
    ['5 s', 5 * S],
    ['  5s  ', 5 * S],
    ['500ms', 500_000],
    ['1min 30s', 90 * S],
    ['1min30s', 90 * S],
    ['1m30s', 90 * S],
    ['2h', 7200 * S],
    ['2 hours', 7200 * S],
    ['1hr', 3600 * S],
    ['1.5min', 90 * S],
    ['.5s', S / 2],
    ['1.5', 1.5 * S],
    ['12.34s.56', 12.9 * S], // a fraction may follow a unit
    ['1 2', 3 * S], // two unitless components: 1 s + 2 s
    ['1d', 86_400 * S],
    ['1w', 7 * 86_400 * S],
    ['1M', 2_629_800 * S], // month: 30.44 days
    ['1y', 31_557_600 * S], // year: 365.25 days
    ['1y 12month', 63_115_200 * S],
    ['3us', 3],
    ['3\u00b5s', 3],
    ['3\u03bcs', 3],
    ['7usec', 7],
    ['1msec', 1000],
    ['0.0000001s', 0], // below a microsecond: truncated
    ['+5s', 5 * S],
    ['infinity', Infinity],
    [' infinity ', Infinity],
  ])('%j is %d µs', (text, usec) => {
    expect(parseTimeSpanUsec(text)).toBe(usec);
  });

  it.each([
    '', '   ', 's', '-0', '-5s', '5x', '5 x', '12.34.56', '3.s', '3.', '3. 1', '0.-0', 'infinityx', 'infinity 5',
    '5S', 'ms', '1e3', '1,5s', '+', '+.5', '99999999999y',
  ])('%j is refused', (text) => {
    expect(() => parseTimeSpanUsec(text)).toThrow(/is not a time span/);
  });

  it('secondsOf: numbers are seconds, strings time spans, infinity is off (0)', () => {
    expect(secondsOf(2.5)).toBe(2.5);
    expect(secondsOf('2500ms')).toBe(2.5);
    expect(secondsOf('infinity')).toBe(0);
    expect(() => secondsOf(-1)).toThrow(/time span/);
  });
});

describe('time spans in the config file', () => {
  it('watchdogSec, timeoutStartSec and releaseAfterSec take "5s", "1min 30s" and numbers', () => {
    const [c] = buildConfig({ containers: [], defaults: {} },
      'containers:\n  - name: app\n    watchdogSec: 5s\n    timeoutStartSec: 1min 30s\n    releaseAfterSec: 600\n');
    expect(c).toMatchObject({ watchdogSec: 5, timeoutStartSec: 90, releaseAfterSec: 600 });
  });

  it('an invalid span names the field and gives examples', () => {
    expect(() => buildConfig({ containers: [], defaults: {} }, 'containers:\n  - name: app\n    watchdogSec: 5 parsecs\n'))
      .toThrow(/containers\[0\]\.watchdogSec: "5 parsecs" is not a time span .*1min 30s/);
    expect(() => buildConfig({ containers: [], defaults: {} }, 'containers:\n  - name: app\n    watchdogSec: true\n'))
      .toThrow(/watchdogSec: a number of seconds or a time span/);
  });
});
