import { readFileSync } from 'node:fs';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { checkData } from '../catalog/data-check.ts';
import { listBackups, type ListOptions } from '../catalog/listing.ts';
import { newestRecords, type RecordSummary } from '../verify/record.ts';
import type { Manifest } from '../catalog/manifest.ts';
import type { AgentConfig, DatabaseConfig } from '../config/normalize.ts';
import type { ApiConfig, ApiRole } from '../config/schema.ts';
import { Archive } from '../binlog/archive.ts';
import { handle, type HttpDeps } from '../daemon/http.ts';
import type { JobRecord, JobRegistry } from '../daemon/job-registry.ts';
import { BACKUP_TYPES, type BackupType } from '../domain/backup.ts';
import { AgentError, messageOf } from '../errors.ts';
import { dataObject } from '../restore/download.ts';
import { openRange, openVerified } from '../restore/fetch.ts';
import { ifRangeHolds, parseRange } from './range.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { listStatus } from '../cli/list.ts';
import { backupPrefix } from '../catalog/keys.ts';
import { allows, TokenTable, type Caller } from './auth.ts';
import type { ScheduleView } from '../daemon/daemon.ts';
import type { RestoreApiRequest } from '../daemon/api-restore.ts';
import { Secret } from '../config/secret.ts';
import type { ScheduleInput } from '../daemon/api-schedules.ts';
import { planPrune } from '../retention/prune.ts';
import { expectedIntervalSeconds, shortestInterval } from './overview.ts';
import { registerUi } from './ui-assets.ts';

/**
 * The daemon's HTTP API (/v1, JSON, bearer tokens with roles) beside health, metrics and status,
 * on fastify: schema-validated bodies (unknown fields refused), a body size limit, a rate limit per
 * token, an audit line per request, and the OpenAPI document at /v1/openapi.json.
 */

export interface ApiDeps {
  config: () => AgentConfig;
  logger: Logger;
  storage: (database: DatabaseConfig) => Promise<StorageDriver>;
  catalog: (database: DatabaseConfig) => Promise<ListOptions>;
  jobs: JobRegistry;
  /** Starts a backup job now; a conflict names the job of the same kind that runs. */
  backupNow: (database: string, type: BackupType, requestedBy: string) => { job: JobRecord } | { conflict: string };
  /** Plans (and without dry run applies) retention for the named databases, as `agent prune --json` reports it. */
  prune: (databases: readonly string[], dryRun: boolean, requestedBy: string) => Promise<{ job: JobRecord; reports: unknown[] }>;
  /** Starts a restore job into a configured entry; refuses (409) a target holding data without overwrite before the job exists. */
  restore: (request: RestoreApiRequest, requestedBy: string) => Promise<JobRecord>;
  /** The schedules of the file (read-only) and of the API (kept in the state directory). */
  schedules: {
    list(): ScheduleView[];
    create(database: string, type: BackupType, input: ScheduleInput, by: string): Promise<ScheduleView>;
    update(id: string, patch: { type?: BackupType | undefined; schedule?: ScheduleInput | undefined }, by: string): Promise<ScheduleView | undefined>;
    remove(id: string, by: string): Promise<boolean>;
  };
  /** Health, metrics and the status page, as without the API. */
  legacy: HttpDeps;
}

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller;
  }
  interface FastifyContextConfig {
    /** The least role a route needs; routes without one are public (health, metrics, the OpenAPI document). */
    role?: ApiRole;
  }
}

/** An error reply: `{ error, hint? }`, the shape of every 4xx and 5xx of the API. */
class ApiError extends Error {
  readonly status: number;
  readonly hint: string | undefined;

  constructor(status: number, message: string, hint?: string) {
    super(message);
    this.status = status;
    this.hint = hint;
  }
}

const isoOrNull = (value: string | undefined) => value ?? null;

function backupJson(m: Manifest, location: string, status: string, problem: string | null, lastRecoverableAt: string | null | undefined, verification?: RecordSummary) {
  return {
    id: m.id,
    database: m.database,
    type: m.type,
    trigger: m.trigger,
    status,
    problem,
    created_at: m.startedAt,
    completed_at: m.completedAt,
    size_bytes: m.sizeBytes,
    raw_size_bytes: m.rawSizeBytes,
    compression: m.compression.algorithm,
    schemas: m.schemas,
    parent: m.physical?.parent ?? null,
    /** The binlog coordinates the backup is consistent at: where a point-in-time replay starts. */
    restores_to: m.binlog ? { gtid: m.binlog.gtid, binlog_file: m.binlog.file, binlog_position: m.binlog.position } : null,
    /** For databases with binlog archiving: the latest time a restore can reach. */
    ...(lastRecoverableAt === undefined ? {} : { last_recoverable_at: lastRecoverableAt }),
    location: `${location}/${backupPrefix(m.database, m.id, m.version)}`,
    /** Its newest verification (agent verify, a verify schedule): depth, when and whether it passed; null when never verified. */
    verified: verification ? { depth: verification.depth, at: verification.at, ok: verification.ok } : null,
  };
}

type BackupJson = ReturnType<typeof backupJson>;

function jobJson(job: JobRecord) {
  return {
    id: job.id,
    kind: job.kind,
    database: job.database,
    type: job.type ?? null,
    trigger: job.trigger,
    requested_by: job.requestedBy ?? null,
    status: job.status,
    message: job.message ?? null,
    hint: job.hint ?? null,
    bytes: job.bytes,
    created_at: job.createdAt,
    started_at: isoOrNull(job.startedAt),
    finished_at: isoOrNull(job.finishedAt),
    backup_id: job.backupId ?? null,
  };
}

const errorSchema = { type: 'object', properties: { error: { type: 'string' }, hint: { type: 'string' } }, required: ['error'] } as const;

/** "body.schedule: must be …", "querystring.page_size: must be <= 1000", "body.colour: unknown field". */
export function describeValidation(context: string, errors: readonly { instancePath: string; keyword: string; message?: string | undefined; params: Record<string, unknown> }[]): string {
  const first = errors[0];
  if (!first) return `${context}: invalid`;
  const path = `${context}${first.instancePath.replace(/\//g, '.')}`;
  if (first.keyword === 'additionalProperties') return `${path}.${String(first.params['additionalProperty'])}: unknown field`;
  if (first.keyword === 'required') return `${path}.${String(first.params['missingProperty'])}: missing`;
  if (first.keyword === 'enum') return `${path}: must be one of ${(first.params['allowedValues'] as unknown[]).join(', ')}`;
  return `${path}: ${first.message ?? 'invalid'}`;
}

export async function buildApi(deps: ApiDeps, api: ApiConfig): Promise<FastifyInstance> {
  const tokens = new TokenTable(api.tokens);
  const app = Fastify({
    logger: false,
    bodyLimit: api.body_limit_kb * 1024,
    ...(api.tls ? { https: { cert: readFileSync(api.tls.cert_file), key: readFileSync(api.tls.key_file) } } : {}),
    // Unknown fields are refused, not silently dropped; query strings are coerced to their types.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true, allErrors: false } },
  });
  const log = deps.logger.child({ component: 'api' });

  await app.register((await import('@fastify/swagger')).default, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'backup-agent daemon API', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  // Who calls, before anything else; a route's role is checked here, so no handler runs for a caller below it.
  app.addHook('onRequest', async (request) => {
    const needed = request.routeOptions.config.role;
    if (needed === undefined) return;
    const found = tokens.identify(request.headers.authorization);
    if (found === 'missing') throw new ApiError(401, 'authentication required: send Authorization: Bearer TOKEN');
    if (found === 'invalid') throw new ApiError(401, 'the bearer token is not valid');
    request.caller = found;
    if (!allows(found.role, needed)) throw new ApiError(403, `the ${found.role} role may not do this: it needs ${needed}`);
  });

  await app.register((await import('@fastify/rate-limit')).default, {
    global: true,
    hook: 'preHandler',
    max: api.rate_limit.max,
    timeWindow: api.rate_limit.window,
    keyGenerator: (request) => (request.caller ? `token:${request.caller.name}` : `ip:${request.ip}`),
    errorResponseBuilder: (_request, context) => new ApiError(429, `rate limit: more than ${context.max} requests in ${context.after}`, 'slow down; the limit is api.rate_limit in the configuration'),
  });

  // The audit trail: who (the token's name, never the token), what, the answer and how long it took.
  app.addHook('onResponse', async (request, reply) => {
    if (request.routeOptions.config.role === undefined && reply.statusCode < 400) return; // health probes and scrapes
    log.info({ token: request.caller?.name ?? null, method: request.method, path: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'api request');
  });

  app.setErrorHandler((error: FastifyError | ApiError | AgentError, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof ApiError) return reply.status(error.status).send({ error: error.message, ...(error.hint ? { hint: error.hint } : {}) });
    const validation = (error as FastifyError).validation;
    if (validation) return reply.status(400).send({ error: describeValidation((error as FastifyError).validationContext ?? 'request', validation as never) });
    const status = (error as FastifyError).statusCode;
    if (status !== undefined && status >= 400 && status < 500) return reply.status(status).send({ error: error.message });
    if (error instanceof AgentError) {
      const code = error.kind === 'usage' || error.kind === 'config' ? 400 : error.kind === 'refused' ? 409 : error.kind === 'locked' ? 423 : 500;
      return reply.status(code).send({ error: error.message, ...(error.hint ? { hint: error.hint } : {}) });
    }
    log.error({ method: request.method, path: request.url, error: messageOf(error) }, 'api request failed');
    return reply.status(500).send({ error: 'internal error (the daemon log has the details)' });
  });
  app.setNotFoundHandler((request, reply) => reply.status(404).send({ error: `no such endpoint: ${request.method} ${request.url.split('?')[0]}` }));

  // Health, metrics and status as without the API: public, never rate limited.
  for (const path of ['/healthz', '/readyz', '/metrics', '/status']) {
    app.route({
      method: ['GET', 'HEAD'],
      url: path,
      config: { rateLimit: false },
      schema: { hide: true },
      handler: async (request, reply) => {
        const answer = await handle(deps.legacy, request.method, request.url);
        return reply.status(answer.status).header('content-type', answer.contentType).header('cache-control', 'no-store').send(answer.body);
      },
    });
  }
  registerUi(app, log);
  app.get('/v1/openapi.json', { config: { rateLimit: false }, schema: { hide: true } }, async () => app.swagger());

  const databaseNames = () => deps.config().databases.map((d) => d.name);
  const entry = (name: string, field: string): DatabaseConfig => {
    const found = deps.config().databases.find((d) => d.name === name);
    if (!found) throw new ApiError(400, `${field}: no database entry named ${name}`, `the configuration names: ${databaseNames().join(', ')}`);
    return found;
  };

  /** Every backup of the named entries (all when none), newest first, with its data checked as `agent list` does. */
  const catalog = async (names: readonly string[] | undefined): Promise<BackupJson[]> => {
    const rows: BackupJson[] = [];
    const databases = names ? names.map((n) => entry(n, 'database')) : deps.config().databases;
    for (const database of databases) {
      const storage = await deps.storage(database);
      const listing = await listBackups(storage, database.name, await deps.catalog(database));
      const data = await checkData(storage, listing.backups, listing.objects);
      let lastRecoverable: string | null | undefined;
      if (database.binlog.enabled) lastRecoverable = (await (await Archive.load(storage, database.name)).summarize(listing.backups)).lastRecoverableAt ?? null;
      // Verification records sit in the backup folders the listing walked: their keys say depth, time and result.
      const verifications = newestRecords(listing.objects.keys());
      for (const m of listing.backups) {
        const state = data.get(m.id);
        const problem = state?.state === 'missing' ? state.problem : state?.state === 'unknown' ? state.error : null;
        rows.push(backupJson(m, storage.location, listStatus(m, state), problem, lastRecoverable, verifications.get(m.id)));
      }
    }
    return rows.sort((a, b) => (a.created_at === b.created_at ? (a.id < b.id ? 1 : -1) : a.created_at < b.created_at ? 1 : -1));
  };

  const backupSchema = { type: 'object', additionalProperties: true } as const;
  app.get<{ Querystring: { database?: string; type?: BackupType; status?: string; trigger?: string; page: number; page_size: number } }>(
    '/v1/backups',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'Backups, newest first, with filters and pages',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            database: { type: 'string', minLength: 1 },
            type: { type: 'string', enum: [...BACKUP_TYPES] },
            status: { type: 'string', enum: ['completed', 'data missing', 'data unknown'] },
            trigger: { type: 'string', enum: ['manual', 'periodic'] },
            page: { type: 'integer', minimum: 1, default: 1 },
            page_size: { type: 'integer', minimum: 1, maximum: 1000, default: 50 },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: { backups: { type: 'array', items: backupSchema }, backups_count: { type: 'integer' }, pages_count: { type: 'integer' }, page: { type: 'integer' }, page_size: { type: 'integer' } },
          },
          '4xx': errorSchema,
        },
      },
    },
    async (request) => {
      const q = request.query;
      const all = (await catalog(q.database === undefined ? undefined : [q.database])).filter(
        (b) => (q.type === undefined || b.type === q.type) && (q.status === undefined || b.status === q.status) && (q.trigger === undefined || b.trigger === q.trigger),
      );
      const start = (q.page - 1) * q.page_size;
      return { backups: all.slice(start, start + q.page_size), backups_count: all.length, pages_count: Math.ceil(all.length / q.page_size), page: q.page, page_size: q.page_size };
    },
  );

  const idParams = { type: 'object', additionalProperties: false, properties: { id: { type: 'string', pattern: '^[0-9A-Za-z.-]{1,80}$' } }, required: ['id'] } as const;
  const findBackup = async (id: string): Promise<BackupJson> => {
    const found = (await catalog(undefined)).find((b) => b.id === id);
    if (!found) throw new ApiError(404, `no backup ${id}`);
    return found;
  };
  app.get<{ Params: { id: string } }>('/v1/backups/:id', { config: { role: 'viewer' }, schema: { summary: 'One backup', params: idParams, response: { '4xx': errorSchema } } }, async (request) =>
    findBackup(request.params.id),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/backups/:id/download',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'The stored archive of a backup: whole, verified against its SHA-256 as it streams (200), or one byte range (Range: bytes=a-b, a- or -n; 206, 416)',
        description:
          'A whole download is checked against the manifest: a size or SHA-256 mismatch cuts the body before its end, so a client never sees a clean end of a corrupt archive. A range is checked for the stored size and the bytes sent; the ETag is the SHA-256 (If-Range with it resumes a download; anything else sends the whole archive). Several ranges in one header are answered with the whole archive.',
        params: idParams,
        headers: { type: 'object', properties: { range: { type: 'string' }, 'if-range': { type: 'string' } } },
        response: { '4xx': errorSchema, '5xx': errorSchema },
      },
    },
    async (request, reply) => {
      const backup = await findBackup(request.params.id);
      const database = entry(backup.database, 'database');
      const storage = await deps.storage(database);
      const listing = await listBackups(storage, database.name, await deps.catalog(database));
      const manifest = listing.backups.find((m) => m.id === backup.id);
      if (!manifest) throw new ApiError(404, `no backup ${backup.id}`);
      const object = dataObject(manifest);
      const name = object.key.split('/').at(-1) ?? 'backup';
      const etag = `"${object.sha256}"`;
      reply
        .header('accept-ranges', 'bytes')
        .header('etag', etag)
        .header('content-type', 'application/octet-stream')
        .header('content-disposition', `attachment; filename="${name.replace(/"/g, '')}"`)
        .header('x-backup-sha256', object.sha256);
      const ifRange = request.headers['if-range'];
      const range = ifRangeHolds(Array.isArray(ifRange) ? ifRange[0] : ifRange, etag) ? parseRange(request.headers.range, object.sizeBytes) : ({ kind: 'full' } as const);
      if (range.kind === 'unsatisfiable') {
        return reply
          .status(416)
          .header('content-type', 'application/json; charset=utf-8')
          .header('content-range', `bytes */${object.sizeBytes}`)
          .send({ error: `range not satisfiable: ${request.headers.range ?? ''} of an archive of ${object.sizeBytes} bytes` });
      }
      if (range.kind === 'partial') {
        const part = await openRange(storage, object, range.start, range.end);
        return reply
          .status(206)
          .header('content-range', `bytes ${range.start}-${range.end}/${object.sizeBytes}`)
          .header('content-length', String(range.end - range.start + 1))
          .send(part);
      }
      // A mismatch fails the stream before its end: the client sees a cut body, never a clean one.
      const body = await openVerified(storage, object);
      return reply.header('content-length', String(object.sizeBytes)).send(body);
    },
  );

  app.post<{ Body: { database: string; type: BackupType; schedule: unknown } }>(
    '/v1/backups/schedules',
    {
      config: { role: 'operator' },
      schema: {
        summary: 'Schedule a backup: "once" starts it now (202, a job); a cron or daily schedule needs the admin role',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['database', 'type', 'schedule'],
          properties: {
            database: { type: 'string', minLength: 1 },
            type: { type: 'string', enum: [...BACKUP_TYPES] },
            schedule: {
              oneOf: [
                { type: 'string', minLength: 1 },
                {
                  type: 'object',
                  additionalProperties: false,
                  properties: { at: { type: 'string', pattern: '^([01]\\d|2[0-3]):[0-5]\\d$' }, cron: { type: 'string', minLength: 1 }, timezone: { type: 'string', minLength: 1 } },
                },
              ],
            },
          },
        },
        response: { '4xx': errorSchema, '5xx': errorSchema },
      },
    },
    async (request, reply) => {
      const { database, type, schedule } = request.body;
      const caller = request.caller as Caller;
      if (schedule !== 'once' && !allows(caller.role, 'admin')) {
        throw new ApiError(403, `the ${caller.role} role may not do this: it needs admin`, 'an operator may run a backup once (schedule: "once"); recurring schedules need admin');
      }
      entry(database, 'body.database');
      if (schedule !== 'once') {
        const made = await deps.schedules.create(database, type, schedule as ScheduleInput, caller.name);
        return reply.status(201).header('location', `/v1/backups/schedules/${made.id}`).send({ schedule: made });
      }
      const started = deps.backupNow(database, type, caller.name);
      if ('conflict' in started) throw new ApiError(409, started.conflict, 'wait for it (GET /v1/jobs), or cancel it (POST /v1/jobs/{id}/cancel)');
      return reply.status(202).header('location', `/v1/jobs/${started.job.id}`).send({ job: jobJson(started.job) });
    },
  );

  const scheduleParams = { type: 'object', additionalProperties: false, properties: { id: { type: 'string', pattern: '^[0-9A-Za-z_.-]{1,120}$' } }, required: ['id'] } as const;
  const findSchedule = (id: string): ScheduleView => {
    const found = deps.schedules.list().find((v) => v.id === id);
    if (!found) throw new ApiError(404, `no schedule ${id}`);
    return found;
  };
  const writable = (id: string): ScheduleView => {
    const found = findSchedule(id);
    if (found.read_only) throw new ApiError(409, `schedule ${id} comes from the configuration file: change it there (and reload with SIGHUP)`);
    return found;
  };
  app.get<{ Querystring: { database?: string } }>(
    '/v1/backups/schedules',
    { config: { role: 'viewer' }, schema: { summary: 'Every schedule: those of the file (read-only) and those made through the API', querystring: { type: 'object', additionalProperties: false, properties: { database: { type: 'string', minLength: 1 } } } } },
    async (request) => ({ schedules: deps.schedules.list().filter((v) => request.query.database === undefined || v.database === request.query.database) }),
  );
  app.get<{ Params: { id: string } }>('/v1/backups/schedules/:id', { config: { role: 'viewer' }, schema: { summary: 'One schedule', params: scheduleParams, response: { '4xx': errorSchema } } }, async (request) => ({
    schedule: findSchedule(request.params.id),
  }));
  app.patch<{ Params: { id: string }; Body: { type?: BackupType; schedule?: ScheduleInput } }>(
    '/v1/backups/schedules/:id',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Change a schedule made through the API',
        params: scheduleParams,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: {
            type: { type: 'string', enum: [...BACKUP_TYPES] },
            schedule: {
              oneOf: [
                { type: 'string', minLength: 1 },
                { type: 'object', additionalProperties: false, properties: { at: { type: 'string' }, cron: { type: 'string', minLength: 1 }, timezone: { type: 'string', minLength: 1 } } },
              ],
            },
          },
        },
        response: { '4xx': errorSchema },
      },
    },
    async (request) => {
      writable(request.params.id);
      if (request.body.schedule === 'once') throw new ApiError(400, 'body.schedule: "once" is not a recurring schedule: POST /v1/backups/schedules runs a backup once');
      const updated = await deps.schedules.update(request.params.id, request.body, (request.caller as Caller).name);
      if (!updated) throw new ApiError(404, `no schedule ${request.params.id}`);
      return { schedule: updated };
    },
  );
  app.delete<{ Params: { id: string } }>('/v1/backups/schedules/:id', { config: { role: 'admin' }, schema: { summary: 'Remove a schedule made through the API', params: scheduleParams, response: { '4xx': errorSchema } } }, async (request, reply) => {
    writable(request.params.id);
    if (!(await deps.schedules.remove(request.params.id, (request.caller as Caller).name))) throw new ApiError(404, `no schedule ${request.params.id}`);
    return reply.status(204).send();
  });

  app.post<{ Body: { database: string; target?: string; backup_id?: string; to_time?: string; to_gtid?: string; overwrite?: boolean; binlog?: boolean; identity?: string; passphrase?: string; source?: Parameters<typeof import('../cli/from-location.ts').storageFromRequest>[0] } }>(
    '/v1/restores',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Restore a logical backup (or a point in time) of a database entry into the server of an entry; a job (202)',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['database'],
          properties: {
            database: { type: 'string', minLength: 1 },
            target: { type: 'string', minLength: 1 },
            backup_id: { type: 'string', pattern: '^\\d{8}T\\d{6}\\.\\d{3}Z-[0-9a-f]{6}$' },
            to_time: { type: 'string', minLength: 1 },
            to_gtid: { type: 'string', minLength: 1 },
            overwrite: { type: 'boolean', default: false },
            binlog: { type: 'boolean', default: true },
            identity: {
              type: 'string',
              minLength: 1,
              maxLength: 16384,
              description:
                'An encrypted backup: the age identity that opens it, the content of a key file (AGE-SECRET-KEY-1… lines; # comments allowed). Default: encryption.identity_file of the source entry, else of the target. A secret: never logged or returned; age reads it from a 0600 file in a private temp directory, unlinked, for the job\'s lifetime',
            },
            passphrase: {
              type: 'string',
              minLength: 1,
              maxLength: 1024,
              description:
                'A passphrase-encrypted backup (age scrypt): its passphrase, one line. Default: encryption.passphrase_file of the source entry, else of the target. A secret: never logged or returned; the decryption reads it from a 0600 file in a private temp directory, unlinked, for the job\'s lifetime',
            },
            source: {
              type: 'object',
              additionalProperties: false,
              required: ['url'],
              description: 'Another store instead of the entry\'s: its bucket URL, endpoint and credentials (never logged or returned); `database` is then the database folder in it',
              properties: {
                url: { type: 'string', pattern: '^(s3|gs)://' },
                endpoint: { type: 'string' },
                region: { type: 'string' },
                profile: { type: 'string' },
                credentials_file: { type: 'string' },
                access_key_id: { type: 'string' },
                secret_access_key: { type: 'string' },
                session_token: { type: 'string' },
                options: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
              },
            },
          },
        },
        response: { '4xx': errorSchema },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const from = b.source === undefined ? undefined : (await import('../cli/from-location.ts')).storageFromRequest(b.source, 'body.source');
      const job = await deps.restore(
        {
          database: b.database,
          from,
          target: b.target,
          backupId: b.backup_id,
          toTime: b.to_time,
          toGtid: b.to_gtid,
          overwrite: b.overwrite ?? false,
          skipBinlog: b.binlog === false,
          identity: b.identity === undefined ? undefined : new Secret(b.identity),
          passphrase: b.passphrase === undefined ? undefined : new Secret(b.passphrase),
        },
        (request.caller as Caller).name,
      );
      return reply.status(202).header('location', `/v1/restores/${job.id}`).send({ restore: jobJson(job) });
    },
  );
  app.get('/v1/restores', { config: { role: 'viewer' }, schema: { summary: 'Restore jobs, newest first' } }, async () => ({ restores: deps.jobs.list().filter((j) => j.kind === 'restore').map(jobJson) }));
  app.get<{ Params: { id: string } }>('/v1/restores/:id', { config: { role: 'viewer' }, schema: { summary: 'One restore job', params: idParams, response: { '4xx': errorSchema } } }, async (request) => {
    const job = deps.jobs.get(request.params.id);
    if (!job || job.kind !== 'restore') throw new ApiError(404, `no restore ${request.params.id}`);
    return { restore: jobJson(job) };
  });

  app.get('/v1/jobs', { config: { role: 'viewer' }, schema: { summary: 'Jobs the daemon runs and ran, newest first' } }, async () => ({ jobs: deps.jobs.list().map(jobJson) }));
  app.get<{ Params: { id: string } }>('/v1/jobs/:id', { config: { role: 'viewer' }, schema: { summary: 'One job', params: idParams, response: { '4xx': errorSchema } } }, async (request) => {
    const job = deps.jobs.get(request.params.id);
    if (!job) throw new ApiError(404, `no job ${request.params.id}`);
    return { job: jobJson(job) };
  });
  app.post<{ Params: { id: string } }>('/v1/jobs/:id/cancel', { config: { role: 'operator' }, schema: { summary: 'Cancel a scheduled or running job', params: idParams, response: { '4xx': errorSchema } } }, async (request, reply) => {
    const caller = request.caller as Caller;
    const cancelled = deps.jobs.cancel(request.params.id, `cancelled through the API by ${caller.name}`);
    if (cancelled === undefined) throw new ApiError(404, `no job ${request.params.id}`);
    if (!cancelled) throw new ApiError(409, `job ${request.params.id} has already finished`);
    return reply.status(202).send({ job: jobJson(deps.jobs.get(request.params.id) as JobRecord) });
  });

  app.get('/v1/whoami', { config: { role: 'viewer' }, schema: { summary: 'The caller: its token name and role (what the dashboard offers depends on it)', response: { 200: { type: 'object', properties: { name: { type: 'string' }, role: { type: 'string' } } } } } }, async (request) => ({
    name: (request.caller as Caller).name,
    role: (request.caller as Caller).role,
  }));

  // The dashboard's overview: per entry, the newest backup of each type and how late it is against
  // its schedules, the next run, running jobs with their bytes, the binlog capture and the archive's gaps.
  app.get<{ Querystring: { database?: string } }>(
    '/v1/status',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'Per database entry: last successful backup of each type and its age against the expected interval, next run, running jobs, binlog archiving and gaps',
        querystring: { type: 'object', additionalProperties: false, properties: { database: { type: 'string', minLength: 1 } } },
        response: {
          200: {
            type: 'object',
            required: ['now', 'timezone', 'databases'],
            properties: {
              now: { type: 'string' },
              timezone: { type: 'string' },
              databases: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['name', 'types', 'running_jobs', 'binlog'],
                  properties: {
                    name: { type: 'string' },
                    error: { type: ['string', 'null'] },
                    types: {
                      type: 'array',
                      items: {
                        type: 'object',
                        properties: {
                          type: { type: 'string' },
                          schedules: { type: 'array', items: { type: 'string' } },
                          next_run: { type: ['string', 'null'] },
                          expected_interval_seconds: { type: ['integer', 'null'] },
                          last_success: { type: ['object', 'null'], additionalProperties: true },
                          age_seconds: { type: ['integer', 'null'] },
                          last_failure: { type: ['object', 'null'], additionalProperties: true },
                        },
                      },
                    },
                    running_jobs: { type: 'array', items: { type: 'object', additionalProperties: true } },
                    binlog: { type: ['object', 'null'], additionalProperties: true },
                  },
                },
              },
            },
          },
          '4xx': errorSchema,
        },
      },
    },
    async (request) => {
      const config = deps.config();
      const now = new Date();
      const databases = request.query.database === undefined ? config.databases : [entry(request.query.database, 'querystring.database')];
      const board = deps.legacy.status();
      const schedules = deps.schedules.list();
      const running = deps.jobs.list().filter((j) => j.finishedAt === undefined);
      const out = [];
      for (const database of databases) {
        let backups: Manifest[] = [];
        let error: string | null = null;
        let gaps: unknown[] | null = null;
        try {
          const storage = await deps.storage(database);
          backups = (await listBackups(storage, database.name, await deps.catalog(database))).backups;
          if (database.binlog.enabled) gaps = (await (await Archive.load(storage, database.name)).summarize(backups)).gaps;
        } catch (err) {
          error = messageOf(err);
        }
        const ofDatabase = schedules.filter((v) => v.database === database.name && v.active);
        const types = BACKUP_TYPES.filter((t) => ofDatabase.some((v) => v.type === t) || backups.some((b) => b.type === t)).map((type) => {
          const mine = ofDatabase.filter((v) => v.type === type);
          const newest = backups.find((b) => b.type === type);
          const next = mine.map((v) => v.next_run).filter((n): n is string => n !== null).sort()[0] ?? null;
          const failure = board.jobs.find((j) => j.database === database.name && j.type === type)?.last;
          return {
            type,
            schedules: mine.map((v) => v.description),
            next_run: next,
            expected_interval_seconds: shortestInterval(mine.map((v) => expectedIntervalSeconds(v.cron, v.timezone, now))),
            last_success: newest ? { id: newest.id, trigger: newest.trigger, completed_at: newest.completedAt, size_bytes: newest.sizeBytes } : null,
            age_seconds: newest ? Math.max(0, Math.round((now.getTime() - new Date(newest.completedAt).getTime()) / 1000)) : null,
            last_failure: failure?.result === 'failure' ? { at: failure.at, error: failure.error, hint: failure.hint ?? null } : null,
          };
        });
        const capture = board.binlog?.[database.name];
        out.push({
          name: database.name,
          error,
          types,
          running_jobs: running.filter((j) => j.database === database.name || (j.kind === 'prune' && j.database.split(',').includes(database.name))).map(jobJson),
          binlog: database.binlog.enabled
            ? {
                health: capture?.health ?? 'starting',
                connected: capture?.connected ?? false,
                lag_seconds: capture?.lagSeconds ?? null,
                pending_bytes: capture?.pendingBytes ?? null,
                last_event_at: capture?.lastEventAt ?? null,
                last_recoverable_at: capture?.lastRecoverableAt ?? null,
                error: capture?.error ?? null,
                gaps,
              }
            : null,
        });
      }
      return { now: now.toISOString(), timezone: config.timezone, databases: out };
    },
  );

  // The dashboard's timeline: what retention would keep and drop today, and why, with sizes. The
  // prune plan's own decision (read-only: nothing is locked or removed).
  app.get<{ Querystring: { database: string } }>(
    '/v1/retention',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'What retention keeps (with its reasons) and would drop today, read-only: the plan of agent prune --dry-run',
        querystring: { type: 'object', additionalProperties: false, required: ['database'], properties: { database: { type: 'string', minLength: 1 } } },
        response: {
          200: {
            type: 'object',
            properties: {
              database: { type: 'string' },
              backups: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    id: { type: 'string' },
                    type: { type: 'string' },
                    trigger: { type: 'string' },
                    created_at: { type: 'string' },
                    size_bytes: { type: 'integer' },
                    keep: { type: 'boolean' },
                    reasons: { type: 'array', items: { type: 'string' } },
                    problem: { type: ['string', 'null'] },
                  },
                },
              },
            },
          },
          '4xx': errorSchema,
        },
      },
    },
    async (request) => {
      const config = deps.config();
      const database = entry(request.query.database, 'querystring.database');
      const plan = await planPrune(await deps.storage(database), database, config.timezone, new Date(), config.prune.orphan_grace, await deps.catalog(database));
      const problems = new Map(plan.unrestorable.map((u) => [u.manifest.id, u.problem]));
      const row = (m: Manifest, keep: boolean, reasons: string[]) => ({
        id: m.id,
        type: m.type,
        trigger: m.trigger,
        created_at: m.startedAt,
        size_bytes: m.sizeBytes,
        keep,
        reasons,
        problem: problems.get(m.id) ?? null,
      });
      const backups = [...plan.keep.map((k) => row(k.manifest, true, k.reasons)), ...plan.remove.map((m) => row(m, false, []))].sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
      return { database: database.name, backups };
    },
  );

  app.post<{ Body: { database?: string; dry_run: boolean } }>(
    '/v1/prune',
    {
      config: { role: 'operator' },
      schema: {
        summary: 'Apply (or with dry_run, plan) retention: what is kept, why, and what is removed',
        body: { type: 'object', additionalProperties: false, required: ['dry_run'], properties: { database: { type: 'string', minLength: 1 }, dry_run: { type: 'boolean' } } },
        response: { '4xx': errorSchema },
      },
    },
    async (request) => {
      const names = request.body.database === undefined ? databaseNames() : [entry(request.body.database, 'body.database').name];
      const { job, reports } = await deps.prune(names, request.body.dry_run, (request.caller as Caller).name);
      return { job: jobJson(job), reports };
    },
  );

  return app;
}

/** Builds the API and listens on the daemon's address. */
export async function startApi(deps: ApiDeps, api: ApiConfig, host: string, port: number): Promise<FastifyInstance> {
  const app = await buildApi(deps, api);
  await app.listen({ host, port });
  return app;
}
