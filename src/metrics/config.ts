/**
 * Metrics of the config file's live reload (config/reload.ts), named as
 * Prometheus' own config reload metrics are, so the usual alert carries over:
 * `fdstore_config_last_reload_successful == 0`.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ConfigObserver, ReloadResult } from '../config/reload.js';
import type { ConfigState } from '../status/types.js';

export const RELOAD_RESULTS: readonly ReloadResult[] = ['applied', 'rejected'];

export class ConfigMetrics implements ConfigObserver {
  private readonly reloads: Counter<'result'>;
  private readonly checks: Counter;

  constructor(registry: Registry, state: () => ConfigState) {
    const registers = [registry];
    this.reloads = new Counter({
      name: 'fdstore_config_reloads_total',
      help: 'Config file reloads, by result (applied: a changed file now in force; rejected: a file that could not be used, the last good config kept).',
      labelNames: ['result'],
      registers,
    });
    for (const result of RELOAD_RESULTS) this.reloads.inc({ result }, 0);
    this.checks = new Counter({ name: 'fdstore_config_checks_total', help: 'Reads of the config file (polls and SIGHUP), changed or not.', registers });
    new Gauge({
      name: 'fdstore_config_last_reload_successful',
      help: '1 unless the last config file read could not be used (the last good config is in force then).',
      registers,
      collect() {
        this.set(state().error === null ? 1 : 0);
      },
    });
    new Gauge({
      name: 'fdstore_config_loaded_timestamp_seconds',
      help: 'Unix time the config in force was loaded (the agent start until a reload applies one).',
      registers,
      collect() {
        this.set(Date.parse(state().loadedAt) / 1000);
      },
    });
  }

  // Arrow properties: called detached from the object.
  checked = (): void => {
    this.checks.inc();
  };

  reloaded = (result: ReloadResult): void => {
    this.reloads.inc({ result });
  };
}
