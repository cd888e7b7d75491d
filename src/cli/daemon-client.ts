import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AgentConfig } from '../config/normalize.ts';
import type { BackupType } from '../domain/backup.ts';
import { AgentError, messageOf } from '../errors.ts';

/**
 * `agent run-now` beside a running daemon: the backup runs in the daemon, through its API, so a
 * manual and a periodic backup of the same database and type never run at once. Used when the
 * configuration has an `api:` block with an operator (or admin) token and the daemon answers on
 * its listener; otherwise the CLI runs the backup itself, as without a daemon.
 */

export interface Reply {
  status: number;
  body: Record<string, any>;
}

export interface DaemonClient {
  /** Where the daemon was found, for messages. */
  readonly url: string;
  /** Runs a backup in the daemon and waits for it; `onJob` hears its job ID. Cancelled through the API when `signal` aborts. */
  backup(database: string, type: BackupType, signal: AbortSignal, onJob?: (id: string) => void): Promise<string>;
}

const JOB_POLL_MS = 500;

/**
 * Requests to the daemon's listener as the configuration describes it: HTTPS with the configured
 * certificate as the one trusted, when the API has TLS; 127.0.0.1 for a wildcard address.
 */
export function daemonRequester(config: AgentConfig, bearer?: string): { url: string; call: (method: string, path: string, body?: unknown, timeoutMs?: number) => Promise<Reply> } {
  const wildcard = ['0.0.0.0', '::', ''].includes(config.daemon.listen_host);
  const host = wildcard ? '127.0.0.1' : config.daemon.listen_host;
  const tls = config.api?.tls ? { ca: readFileSync(config.api.tls.cert_file) } : undefined;
  const url = `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${config.daemon.listen_port}`;
  const call = (method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const options = {
        method,
        host,
        port: config.daemon.listen_port,
        path,
        timeout: timeoutMs,
        headers: { ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}) },
        ...(tls ?? {}),
      };
      const req = (tls ? httpsRequest : httpRequest)(options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: Record<string, any> = {};
          try {
            parsed = text ? (JSON.parse(text) as Record<string, any>) : {};
          } catch {
            parsed = { error: text.trim() };
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer from the daemon at ${url} within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  return { url, call };
}

/** The running daemon's API, or undefined when there is none to use (no api block, no operator token, nothing listening). */
export async function connectDaemon(config: AgentConfig): Promise<DaemonClient | undefined> {
  const token = config.api?.tokens.find((t) => t.role === 'operator' || t.role === 'admin');
  if (!token) return undefined;
  const { url, call } = daemonRequester(config, token.token_file.reveal());
  try {
    const health = await call('GET', '/healthz', undefined, 1000);
    if (health.status !== 200) return undefined;
  } catch {
    return undefined; // no daemon listening: the CLI runs the backup itself
  }

  const fail = (what: string, reply: Reply) =>
    new AgentError(reply.status === 409 ? 'locked' : reply.status === 401 || reply.status === 403 ? 'config' : 'internal', `${what}: the daemon at ${url} answered ${reply.status}: ${String(reply.body['error'] ?? '')}`, {
      ...(reply.body['hint'] ? { hint: String(reply.body['hint']) } : {}),
    });

  return {
    url,
    async backup(database, type, signal, onJob) {
      const started = await call('POST', '/v1/backups/schedules', { database, type, schedule: 'once' });
      if (started.status !== 202) throw fail(`start a ${type} backup of ${database}`, started);
      const id = String(started.body['job']?.id);
      onJob?.(id);
      let cancelled = false;
      for (;;) {
        if (signal.aborted && !cancelled) {
          cancelled = true;
          await call('POST', `/v1/jobs/${id}/cancel`).catch(() => undefined);
        }
        const polled = await call('GET', `/v1/jobs/${id}`).catch((err: unknown) => {
          throw new AgentError('internal', `follow job ${id} in the daemon at ${url}: ${messageOf(err)}`, { hint: 'the backup may still run in the daemon: GET /v1/jobs, or agent list' });
        });
        if (polled.status !== 200) throw fail(`follow job ${id}`, polled);
        const job = polled.body['job'] as { status: string; message: string | null; backup_id: string | null; finished_at: string | null };
        if (job.finished_at) {
          if (job.status === 'succeeded' && job.backup_id) return job.backup_id;
          throw new AgentError('internal', `${job.status === 'cancelled' ? 'cancelled' : 'failed'} in the daemon (job ${id}): ${job.message ?? ''}`, { hint: 'the daemon log has the details' });
        }
        await sleep(JOB_POLL_MS);
      }
    },
  };
}
