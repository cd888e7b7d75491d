// A tiny TCP fault proxy for fault tests: it forwards a port to an upstream port and can slow,
// stall and cut the traffic, so a test can put a real client (the agent, mariadb-dump) in front
// of a real server (MariaDB, s3rver) and break the wire at a moment it observes, not after a sleep.
// For HTTP upstreams (s3rver, the GCS emulator) it also counts requests and can fail the next
// ones: answer an error status itself, reset the connection, or let the request through and
// reset before the answer (the store applied it; the client cannot know).
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

/** What to do to the next `count` HTTP requests (of `method`, when given). */
export interface HttpFault {
  count: number;
  method?: string;
  /** A status: answered by the proxy, never forwarded. 'reset': the connection is reset instead. 'lose-answer': forwarded, then reset before the answer. */
  action: number | 'reset' | 'lose-answer';
}

/** The first bytes of an HTTP/1.1 request: where one request starts on a connection. */
const REQUEST_LINE = /^([A-Z]+) \S+ HTTP\/1\.[01]\r\n/;

const ERROR_CODES: Record<number, string> = { 403: 'AccessDenied', 404: 'NoSuchKey', 429: 'SlowDown', 500: 'InternalError', 503: 'ServiceUnavailable' };

function errorAnswer(status: number, method: string): Buffer {
  const code = ERROR_CODES[status] ?? 'InjectedFault';
  const body = method === 'HEAD' ? '' : `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected by the fault proxy</Message></Error>`;
  return Buffer.from(
    `HTTP/1.1 ${status} ${code}\r\ncontent-type: application/xml\r\ncontent-length: ${method === 'HEAD' ? 0 : Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

export interface FaultProxy {
  port: number;
  /** HTTP requests seen so far (faulted ones included), by method and in all. */
  readonly requests: number;
  readonly requestsByMethod: ReadonlyMap<string, number>;
  /** Applies `fault` to the next matching HTTP requests; replaces a fault still pending. */
  failRequests(fault: HttpFault): void;
  /** Faulted requests still to come. */
  readonly pendingFaults: number;
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
  const byMethod = new Map<string, number>();
  let requests = 0;
  let fault: HttpFault | undefined;

  /** A request starting in `chunk`: counted, and the fault to apply to it, if any. */
  const onRequest = (chunk: Buffer): { method: string; action?: HttpFault['action'] } | undefined => {
    const method = REQUEST_LINE.exec(chunk.subarray(0, 2048).toString('latin1'))?.[1];
    if (method === undefined) return undefined;
    requests++;
    byMethod.set(method, (byMethod.get(method) ?? 0) + 1);
    if (!fault || fault.count <= 0 || (fault.method !== undefined && fault.method !== method)) return { method };
    fault.count--;
    return { method, action: fault.action };
  };

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

  /** Per connection: whether the upstream's next answer is to be lost, or the connection is done for. */
  interface Wire {
    loseAnswer: boolean;
    dead: boolean;
  }

  /** Applies an HTTP fault to the request starting in `chunk`; true when the chunk must not be forwarded. */
  const intercept = (chunk: Buffer, client: Socket, wire: Wire): boolean => {
    if (wire.dead) return true;
    const request = onRequest(chunk);
    if (request?.action === undefined) return false;
    if (request.action === 'lose-answer') {
      wire.loseAnswer = true;
      return false;
    }
    wire.dead = true; // the upstream connection goes when the client's does (its close handler)
    if (request.action === 'reset') client.resetAndDestroy();
    else client.end(errorAnswer(request.action, request.method), () => client.destroy());
    return true;
  };

  const pipe = (from: Socket, to: Socket, direction: Direction, wire: Wire) => {
    from.on('data', (chunk: Buffer) => {
      if (direction === 'up' && intercept(chunk, from, wire)) return;
      if (direction === 'down' && wire.loseAnswer) {
        wire.dead = true;
        to.resetAndDestroy();
        from.destroy();
        return;
      }
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
    const wire: Wire = { loseAnswer: false, dead: false };
    pipe(client, upstream, 'up', wire);
    pipe(upstream, client, 'down', wire);
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
    get requests() {
      return requests;
    },
    get requestsByMethod() {
      return byMethod;
    },
    failRequests(next: HttpFault): void {
      fault = { ...next };
    },
    get pendingFaults() {
      return fault?.count ?? 0;
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
