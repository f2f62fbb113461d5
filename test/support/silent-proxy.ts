import { createServer, type Server, Socket } from 'node:net';

/**
 * A TCP proxy to `target` that can go silent: while silent it forwards nothing either way and keeps every
 * connection open, as a network dropping packets (or a stalled server) would. When it ends, the connections
 * open meanwhile (out of step with PostgreSQL's protocol, having lost bytes) are closed.
 */
export interface SilentProxy {
  readonly port: number;
  /** Connections open through the proxy (a client closing its end closes one). */
  openConnections(): number;
  silence(silent: boolean): void;
  close(): Promise<void>;
}

export async function silentProxy(target: { host: string; port: number }): Promise<SilentProxy> {
  let silent = false;
  const pairs = new Set<[Socket, Socket]>();
  const server: Server = createServer((client) => {
    const upstream = new Socket();
    upstream.connect(target.port, target.host);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    for (const [from, to] of [pair, [upstream, client] as const]) {
      from.on('data', (chunk) => {
        if (!silent) to.write(chunk);
      });
      from.on('error', () => undefined);
      from.on('close', () => {
        pairs.delete(pair);
        to.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    openConnections: () => pairs.size,
    silence(value) {
      silent = value;
      if (!value) for (const pair of pairs) for (const socket of pair) socket.destroy();
    },
    close: async () => {
      for (const pair of pairs) for (const socket of pair) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
