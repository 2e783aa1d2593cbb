/** Medians and the formatting every table uses. */

export function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function min(xs) {
  return Math.min(...xs);
}

export function max(xs) {
  return Math.max(...xs);
}

/** 1234567 -> "1,234,567" (3 significant digits below 1,000). */
export function num(x) {
  if (!Number.isFinite(x)) return 'n/a';
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString('en-US');
  return Number(x.toPrecision(3)).toString();
}

export function ms(ns) {
  return Number.isFinite(ns) ? `${num(ns / 1e6)} ms` : 'n/a';
}

export function ratio(x) {
  return Number.isFinite(x) ? `${x.toFixed(2)}×` : 'n/a';
}

/** A markdown table; columns after the first are right-aligned. */
export function table(head, rows) {
  const all = [head, ...rows].map((r) => r.map(String));
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r) => '| ' + r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' | ') + ' |';
  const rule = '|' + w.map((n, i) => (i === 0 ? '-'.repeat(n + 2) : '-'.repeat(n + 1) + ':')).join('|') + '|';
  return [line(all[0]), rule, ...all.slice(1).map(line)].join('\n');
}

/** Bytes as MiB (VmRSS is kibibytes). */
export function mib(bytes) {
  return Number.isFinite(bytes) ? `${num(bytes / 1048576)} MiB` : 'n/a';
}

/** Milliseconds as seconds. */
export function sec(msOrNaN) {
  return Number.isFinite(msOrNaN) ? `${num(msOrNaN / 1000)} s` : 'n/a';
}
