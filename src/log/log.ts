/**
 * Structured logs: one JSON line per decision, constant message + fields, so
 * operators can grep and count. Written to an injected stream (stderr in main.ts).
 */
export type Level = 'debug' | 'info' | 'warning' | 'error';
const ORDER: Record<Level, number> = { debug: 0, info: 1, warning: 2, error: 3 };

export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warning(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  /** Log at most once per key for the life of the process (e.g. a documented deviation). */
  once(key: string, level: Level, msg: string, fields?: Fields): void;
}

export interface Sink {
  write(line: string): unknown;
}

export function createLogger(sink: Sink, min: Level = 'info', now: () => Date = () => new Date()): Logger {
  const seen = new Set<string>();
  const emit = (level: Level, msg: string, fields?: Fields): void => {
    if (ORDER[level] < ORDER[min]) return;
    const rec = { time: now().toISOString(), level, msg, ...fields };
    sink.write(JSON.stringify(rec, replacer) + '\n');
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warning: (m, f) => emit('warning', m, f),
    error: (m, f) => emit('error', m, f),
    once: (key, level, m, f) => {
      if (seen.has(key)) return;
      seen.add(key);
      emit(level, m, f);
    },
  };
}

function replacer(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

export function isLevel(s: string): s is Level {
  return s in ORDER;
}
