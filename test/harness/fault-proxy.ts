// A tiny TCP fault proxy for fault tests: it forwards a port to an upstream port and can slow,
// stall and cut the traffic, so a test can put a real client (the agent, mariadb-dump) in front
// of a real server (MariaDB, s3rver) and break the wire at a moment it observes, not after a sleep.
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface FaultProxyOptions {
  upstreamPort: number;
  /** Server → client bytes per second (e.g. to pace a dump); unlimited when undefined. */
  downRate?: number;
  /** Client → server delay added before each chunk (a slow store: every request waits). */
  upLatencyMs?: number;
}

export interface FaultProxy {
  port: number;
  /** Client → server bytes forwarded so far. */
  readonly upBytes: number;
  /** Server → client bytes forwarded so far. */
  readonly downBytes: number;
  /**
   * Forwards `bytes` more client → server bytes, then holds the rest: resolves once the hold is
   * reached, i.e. the server has received exactly that much of whatever the client was sending.
   */
  stallAfter(bytes: number): Promise<void>;
  /** Drops every connection (both ends see a reset) and lifts a stall. */
  cutConnections(): void;
  close(): Promise<void>;
}

type Direction = 'up' | 'down';

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const sockets = new Set<Socket>();
  const counted = { up: 0, down: 0 };
  let stall: { limit: number; reached: () => void; released: Promise<void>; release: () => void } | undefined;

  /** Writes `chunk` to `to`, honouring the rate, the latency and a stall; resolves when written. */
  const forward = async (chunk: Buffer, to: Socket, direction: Direction): Promise<void> => {
    if (direction === 'up' && options.upLatencyMs) await sleep(options.upLatencyMs);
    let rest = chunk;
    while (rest.length > 0 && !to.destroyed) {
      let piece = rest;
      if (direction === 'up' && stall) {
        const room = stall.limit - counted.up;
        if (room <= 0) {
          stall.reached();
          await stall.released;
          continue;
        }
        piece = rest.subarray(0, room);
      }
      if (direction === 'down' && options.downRate) {
        piece = piece.subarray(0, Math.max(1, Math.floor(options.downRate / 20)));
        await sleep((piece.length / options.downRate) * 1000);
      }
      rest = rest.subarray(piece.length);
      counted[direction] += piece.length;
      if (!to.write(piece)) await Promise.race([once(to, 'drain'), once(to, 'close')]);
    }
  };

  const pipe = (from: Socket, to: Socket, direction: Direction) => {
    from.on('data', (chunk: Buffer) => {
      from.pause(); // one chunk at a time: order is kept and backpressure reaches the sender
      forward(chunk, to, direction).then(
        () => from.resume(),
        () => to.destroy(),
      );
    });
    from.once('end', () => to.end());
    from.once('close', () => to.destroy());
    from.on('error', () => to.destroy()); // a reset on one side resets the other, as a wire would
  };

  const server: Server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port: options.upstreamPort });
    sockets.add(client).add(upstream);
    client.once('close', () => sockets.delete(client));
    upstream.once('close', () => sockets.delete(upstream));
    pipe(client, upstream, 'up');
    pipe(upstream, client, 'down');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fault proxy: no TCP address');

  return {
    port: address.port,
    get upBytes() {
      return counted.up;
    },
    get downBytes() {
      return counted.down;
    },
    stallAfter(bytes: number): Promise<void> {
      const { promise: held, resolve: reached } = Promise.withResolvers<void>();
      const { promise: released, resolve: release } = Promise.withResolvers<void>();
      stall = { limit: counted.up + bytes, reached, released, release };
      return held;
    },
    cutConnections(): void {
      for (const socket of sockets) socket.resetAndDestroy();
      stall?.release();
      stall = undefined;
    },
    async close(): Promise<void> {
      stall?.release();
      stall = undefined;
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close').catch(() => undefined);
    },
  };
}
