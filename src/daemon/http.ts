import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { BinlogStatus } from './binlog-supervisor.ts';
import type { JobStatus, PruneStatus, VerifyStatus } from './status-board.ts';

export interface HttpDeps {
  /** False while starting and once shutdown has begun: /readyz answers 503. */
  ready: () => boolean;
  metrics: { contentType: string; render(): Promise<string> };
  status: () => { pid: number; startedAt: string; version: string; jobs: JobStatus[]; binlog?: Record<string, BinlogStatus>; prune?: Record<string, PruneStatus>; verify?: Record<string, VerifyStatus> };
}

export interface HttpReply {
  status: number;
  contentType: string;
  body: string;
}

/** Routes a request to a reply. Pure of sockets, so tests call it directly. */
export async function handle(deps: HttpDeps, method: string, url: string): Promise<HttpReply> {
  const path = new URL(url, 'http://agent').pathname;
  const text = (status: number, body: string): HttpReply => ({ status, contentType: 'text/plain; charset=utf-8', body: `${body}\n` });
  if (method !== 'GET' && method !== 'HEAD') return text(405, 'method not allowed');
  switch (path) {
    case '/healthz':
      return text(200, 'ok');
    case '/readyz':
      return deps.ready() ? text(200, 'ready') : text(503, 'not ready');
    case '/metrics':
      return { status: 200, contentType: deps.metrics.contentType, body: await deps.metrics.render() };
    case '/status':
      return { status: 200, contentType: 'application/json', body: `${JSON.stringify(deps.status(), null, 2)}\n` };
    default:
      return text(404, 'not found');
  }
}

export function startHttpServer(deps: HttpDeps, host: string, port: number): Promise<Server> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    handle(deps, req.method ?? 'GET', req.url ?? '/').then(
      (reply) => {
        res.writeHead(reply.status, { 'content-type': reply.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : reply.body);
      },
      () => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('internal error\n');
      },
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
