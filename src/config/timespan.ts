/**
 * systemd time spans (systemd.time(7), `parse_sec()` in systemd's time-util.c):
 * "5s", "1min 30s", "1min30s", "500ms", "1.5h", "2 h", a plain number = seconds,
 * "infinity". Pure: a string in, microseconds or an error out.
 *
 * The same rules as systemd's parser:
 *   - components are summed; whitespace between them is optional, and a number
 *     without a unit is seconds ("1 2" = 3 s);
 *   - whitespace may sit between a number and its unit ("5 s");
 *   - a fraction is allowed on any component ("1.5min", ".5s"), but needs digits
 *     after the dot ("3.s" is invalid) and must not be followed directly by
 *     another number ("12.34.56" is invalid);
 *   - no sign: "-0" and "-5s" are refused;
 *   - units (case-sensitive, "M" is a month, "m" a minute): usec us µs μs, msec ms,
 *     seconds second sec s, minutes minute min m, hours hour hr h, days day d,
 *     weeks week w, months month M (30.44 d), years year y (365.25 d);
 *   - fractions below a microsecond are truncated, as systemd's integer maths does.
 */

export class TimeSpanError extends Error {
  readonly code = 'ETIMESPAN';
}

const USEC_PER_SEC = 1_000_000n;
const USEC_PER_MINUTE = 60n * USEC_PER_SEC;
const USEC_PER_HOUR = 60n * USEC_PER_MINUTE;
const USEC_PER_DAY = 24n * USEC_PER_HOUR;
/** systemd's month and year: 30.44 and 365.25 days, in whole seconds. */
const USEC_PER_MONTH = 2_629_800n * USEC_PER_SEC;
const USEC_PER_YEAR = 31_557_600n * USEC_PER_SEC;

/**
 * Checked in this order, so a longer suffix wins over its prefix ("ms" before
 * "m", "months" before "m"): the order of systemd's table.
 */
const UNITS: ReadonlyArray<readonly [string, bigint]> = [
  ['seconds', USEC_PER_SEC], ['second', USEC_PER_SEC], ['sec', USEC_PER_SEC], ['s', USEC_PER_SEC],
  ['minutes', USEC_PER_MINUTE], ['minute', USEC_PER_MINUTE], ['min', USEC_PER_MINUTE],
  ['months', USEC_PER_MONTH], ['month', USEC_PER_MONTH], ['M', USEC_PER_MONTH],
  ['msec', 1000n], ['ms', 1000n], ['m', USEC_PER_MINUTE],
  ['hours', USEC_PER_HOUR], ['hour', USEC_PER_HOUR], ['hr', USEC_PER_HOUR], ['h', USEC_PER_HOUR],
  ['days', USEC_PER_DAY], ['day', USEC_PER_DAY], ['d', USEC_PER_DAY],
  ['weeks', 7n * USEC_PER_DAY], ['week', 7n * USEC_PER_DAY], ['w', 7n * USEC_PER_DAY],
  ['years', USEC_PER_YEAR], ['year', USEC_PER_YEAR], ['y', USEC_PER_YEAR],
  ['usec', 1n], ['us', 1n], ['\u03bcs', 1n], ['\u00b5s', 1n],
];

/** The unit names this parser knows: config/schema.ts builds its time span pattern from them. */
export const TIME_SPAN_UNITS: readonly string[] = UNITS.map(([suffix]) => suffix);

/** systemd's WHITESPACE: space, tab, newline, carriage return. */
const isSpace = (ch: string | undefined): boolean => ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r';
const isDigit = (ch: string | undefined): boolean => ch !== undefined && ch >= '0' && ch <= '9';

/**
 * Microseconds of a time span; Infinity for "infinity". Throws TimeSpanError
 * naming the input. Results above Number.MAX_SAFE_INTEGER µs (285 years) are
 * refused rather than rounded.
 */
export function parseTimeSpanUsec(text: string): number {
  const fail = (why: string): never => {
    throw new TimeSpanError(`${JSON.stringify(text)} is not a time span (${why}); e.g. 30, 5s, 1min 30s, 500ms`);
  };
  let i = 0;
  const skipSpace = (): void => {
    while (isSpace(text[i])) i++;
  };
  skipSpace();
  if (text.startsWith('infinity', i)) {
    i += 'infinity'.length;
    skipSpace();
    if (i !== text.length) fail('text after infinity');
    return Infinity;
  }
  let total = 0n;
  let something = false;
  for (;;) {
    skipSpace();
    if (i === text.length) {
      if (!something) fail('empty');
      break;
    }
    const c = component(text, i, fail);
    total += c.usec;
    i = c.end;
    something = true;
  }
  if (total > BigInt(Number.MAX_SAFE_INTEGER)) fail('too large');
  return Number(total);
}

/** One number with its optional unit, from `i` (not whitespace): its value and where it ends. */
function component(text: string, start: number, fail: (why: string) => never): { usec: bigint; end: number } {
  let i = start;
  if (text[i] === '-') fail('negative');
  if (text[i] === '+' && isDigit(text[i + 1])) i++; // strtoll() takes a sign before digits
  const intStart = i;
  while (isDigit(text[i])) i++;
  const intDigits = text.slice(intStart, i);
  let fracDigits: string | null = null;
  if (text[i] === '.') {
    const fracStart = ++i;
    while (isDigit(text[i])) i++;
    fracDigits = text.slice(fracStart, i);
  } else if (intDigits === '') {
    fail(`a number expected at ${JSON.stringify(text.slice(intStart))}`);
  }
  const afterNumber = i;
  while (isSpace(text[i])) i++;
  let multiplier = USEC_PER_SEC;
  const unit = UNITS.find(([suffix]) => text.startsWith(suffix, i));
  if (unit) {
    multiplier = unit[1];
    i += unit[0].length;
  } else if (i === afterNumber && i !== text.length) {
    // Nothing between this number and the next character: "12.34.56", "5x".
    fail(`unknown unit at ${JSON.stringify(text.slice(i))}`);
  }
  let usec = BigInt(intDigits === '' ? '0' : intDigits) * multiplier;
  if (fracDigits !== null) {
    if (fracDigits === '') fail('digits expected after the decimal point');
    let m = multiplier / 10n;
    for (const d of fracDigits) {
      usec += BigInt(d) * m;
      m /= 10n;
    }
  }
  return { usec, end: i };
}

/**
 * Seconds of a setting given as a time span string or as a number of seconds (a
 * YAML number). "infinity" and 0 both mean "off" for every setting that takes
 * seconds here (watchdogSec, timeoutStartSec, releaseAfterSec), as
 * TimeoutStartSec=infinity does in systemd: returns 0 then.
 */
export function secondsOf(v: string | number): number {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0) throw new TimeSpanError(`${v} is not a time span (a number of seconds >= 0)`);
    return v;
  }
  const usec = parseTimeSpanUsec(v);
  return usec === Infinity ? 0 : usec / 1e6;
}
