/**
 * A TCP proxy in front of the real API server, under the test's control: the way to
 * make the operator's connection fail without touching the shared API server. TLS goes
 * through it untouched (the client verifies the API server's certificate as usual).
 *
 * - `mode` decides what a new connection gets: 'pass' (forwarded), 'refuse' (accepted
 *   and reset at once, like a dead endpoint), 'stall' (accepted; its bytes are read and
 *   dropped; nothing ever comes back: a black hole that TCP cannot detect).
 * - `freeze()` turns every open connection into a stall; `cut()` resets them all.
 * - `open` counts client connections not yet closed; when a test's client is done it
 *   must reach 0 by the client's own doing (the proxy never closes a stalled one), which
 *   is how the tests see that a stalled socket was not leaked.
 */
import net from 'node:net';

export type ProxyMode = 'pass' | 'refuse' | 'stall';

interface Pair {
  client: net.Socket;
  upstream: net.Socket | undefined;
  frozen: boolean;
}

export class TcpProxy {
  mode: ProxyMode = 'pass';
  accepted = 0;
  private readonly pairs = new Set<Pair>();
  private readonly server: net.Server;

  private constructor(
    private readonly host: string,
    private readonly targetPort: number,
  ) {
    this.server = net.createServer((client) => this.accept(client));
  }

  static async start(target: URL): Promise<TcpProxy> {
    const p = new TcpProxy(target.hostname.replace(/^\[|\]$/g, ''), Number(target.port || 443));
    await new Promise<void>((resolve) => p.server.listen(0, '127.0.0.1', resolve));
    return p;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Client connections still open. */
  get open(): number {
    return this.pairs.size;
  }

  /** Frozen or stalled connections not yet closed (by the client: the proxy never closes them). */
  get stalledOpen(): number {
    return [...this.pairs].filter((p) => p.frozen).length;
  }

  /** Every open connection stops forwarding in both directions; bytes are still accepted. */
  freeze(): void {
    for (const p of this.pairs) p.frozen = true;
  }

  /** Reset every open connection. */
  cut(): void {
    for (const p of this.pairs) {
      p.client.resetAndDestroy();
      p.upstream?.destroy();
    }
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    this.accepted++;
    const pair: Pair = { client, upstream: undefined, frozen: false };
    this.pairs.add(pair);
    client.on('close', () => {
      this.pairs.delete(pair);
      pair.upstream?.destroy();
    });
    client.on('error', () => {});
    if (this.mode === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    if (this.mode === 'stall') {
      pair.frozen = true;
      client.on('data', () => {}); // read and drop: the client's writes succeed
      return;
    }
    const upstream = net.connect(this.targetPort, this.host);
    pair.upstream = upstream;
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => {
      if (!pair.frozen) client.destroy();
    });
    client.on('data', (b) => {
      if (!pair.frozen) upstream.write(b);
    });
    upstream.on('data', (b) => {
      if (!pair.frozen) client.write(b);
    });
    client.on('end', () => {
      if (!pair.frozen) upstream.end();
    });
  }
}
