/**
 * The injector's composition: the webhook server over the policy cache, the sidecar
 * settings from --inject-sidecar, and the mode from the API server's version
 * (GET /version at start, again every VERSION_REFRESH_MS: a control-plane upgrade
 * to 1.29 turns native sidecars on without an operator restart). Until the version
 * is known the mode is classic, which works on every version.
 */
import { VersionApi, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../log/log.js';
import type { WebhookOptions } from './options.js';
import { packageVersion } from '../metrics/version.js';
import { parseKubeVersion, pickMode, type KubeVersion } from '../inject/mode.js';
import { WebhookServer, type WebhookMetrics } from '../inject/server.js';
import { defaultSettings, parseSettings } from '../inject/settings.js';
import { formatAddress } from '../http/server.js';
import type { FdStorePolicy } from './types.js';

export const VERSION_REFRESH_MS = 10 * 60_000;
/** /version is cheap; a hung API server must not hold the refresh forever. */
export const VERSION_TIMEOUT_MS = 10_000;

export interface InjectorDeps {
  kc: KubeConfig;
  options: WebhookOptions;
  policies(): readonly FdStorePolicy[];
  synced(): boolean;
  log: Logger;
  metrics: WebhookMetrics;
}

export class Injector {
  private kube: KubeVersion | null = null;
  private timer: NodeJS.Timeout | null = null;
  readonly server: WebhookServer;

  constructor(private readonly d: InjectorDeps) {
    const o = d.options;
    const settings = o.sidecar === null ? defaultSettings(o.image) : parseSettings(o.sidecar, o.image);
    this.server = new WebhookServer({
      certFile: o.certFile,
      keyFile: o.keyFile,
      log: d.log,
      metrics: d.metrics,
      policies: d.policies,
      synced: d.synced,
      settings,
      version: packageVersion(),
      mode: () => ({ mode: pickMode(o.mode, this.kube), kube: this.kube }),
    });
  }

  async start(): Promise<void> {
    const a = await this.server.listen(this.d.options.listen.host, this.d.options.listen.port);
    this.d.log.info('webhook listening', { address: formatAddress({ host: a.address, port: a.port }), path: '/inject', mode: this.d.options.mode });
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), VERSION_REFRESH_MS);
    this.timer.unref();
  }

  private async refresh(): Promise<void> {
    try {
      const api = this.d.kc.makeApiClient(VersionApi);
      const info = await Promise.race([
        api.getCode(),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer in ${VERSION_TIMEOUT_MS} ms`)), VERSION_TIMEOUT_MS).unref()),
      ]);
      const v = parseKubeVersion(info);
      const before = this.kube;
      this.kube = v ?? this.kube;
      if (before?.major !== this.kube?.major || before?.minor !== this.kube?.minor) {
        this.d.log.info('injector: API server version', { gitVersion: info.gitVersion, mode: pickMode(this.d.options.mode, this.kube) });
      }
    } catch (e) {
      this.d.log.warning('injector: GET /version failed; keeping the last known mode', { error: (e as Error).message, mode: pickMode(this.d.options.mode, this.kube) });
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.server.close();
  }
}
