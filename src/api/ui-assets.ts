import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';

/**
 * The web dashboard's static files (dist/web: index.html, the style sheet and the compiled ES
 * modules), served under /ui/ without a token: the page signs in with one and sends it on every
 * API call. Read once at start-up (they are small), with a strict Content-Security-Policy (no
 * inline script or style, nothing from another origin, no form posts), revalidated by ETag.
 */

export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  // The sign-in form is handled by the script; without it nothing is ever submitted (the token stays in the page).
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

export interface UiAsset {
  body: Buffer;
  type: string;
  etag: string;
}

/** Where the built dashboard lives: dist/web beside dist/api. */
export const uiDirectory = (): string => fileURLToPath(new URL('../web/', import.meta.url));

/** The servable files of `dir` by name (source maps and declarations are left out). */
export function loadUiAssets(dir: string): Map<string, UiAsset> {
  const assets = new Map<string, UiAsset>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (!type) continue;
    const body = readFileSync(join(dir, name));
    assets.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  return assets;
}

export function registerUi(app: FastifyInstance, logger: Logger, dir = uiDirectory()): void {
  let assets: Map<string, UiAsset>;
  let problem: string | undefined;
  try {
    assets = loadUiAssets(dir);
    if (!assets.has('index.html')) problem = `the web dashboard's index.html is missing from ${dir} (run npm run build)`;
  } catch (err) {
    assets = new Map();
    problem = `cannot read the web dashboard's files in ${dir}: ${(err as Error).message}`;
  }
  // Not fatal (backups go on), but never silent.
  if (problem) logger.error({ component: 'api' }, problem);

  const route = { config: { rateLimit: false }, schema: { hide: true } } as const;
  app.get('/ui', route, async (_request, reply) => reply.redirect('/ui/', 308));
  const serve = async (request: FastifyRequest<{ Params: { file?: string } }>, reply: FastifyReply) => {
    if (problem) return reply.status(503).send({ error: problem });
    const name = request.params.file || 'index.html';
    const asset = assets.get(name);
    if (!asset) return reply.status(404).send({ error: `no such file of the web dashboard: ${name}` });
    reply
      .header('content-type', asset.type)
      .header('cache-control', 'no-cache')
      .header('etag', asset.etag)
      .header('content-security-policy', UI_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY');
    if (request.headers['if-none-match'] === asset.etag) return reply.status(304).send();
    return reply.send(asset.body);
  };
  app.get('/ui/', route, serve);
  app.get('/ui/:file', route, serve);
}
