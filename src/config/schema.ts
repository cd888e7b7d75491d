import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { BACKUP_TYPES, COMPRESSION_ALGORITHMS } from '../domain/backup.ts';
import { readCalendarDuration, readDuration } from './duration.ts';
import { parsePassphrase, parseRecipientsFile, recipientProblem, SCRYPT_MAX_WORK_FACTOR, SCRYPT_MIN_WORK_FACTOR } from './age-recipient.ts';
import { Secret } from './secret.ts';
import { VERIFY_DEPTHS } from '../domain/verify.ts';

/**
 * The configuration schema: the single source of truth for what the YAML file may say.
 * Types are inferred from it. Keys are snake_case as in the file. Unknown keys are errors, so a
 * typo ("bukcet") is reported instead of silently ignored.
 */

const nonEmpty = z.string().trim().min(1, 'must not be empty');

/** Not trimmed: leading or trailing spaces can be part of a password. */
/**
 * Numbers and booleans may come from \`\${VAR}\`, which always yields a string: accept the string
 * forms ("5432", "true") where the schema wants a number or a boolean.
 */
const int = () => z.preprocess((v) => (typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : v), z.int());
const bool = () =>
  z.preprocess((v) => (typeof v === 'string' && /^(true|false)$/i.test(v.trim()) ? v.trim().toLowerCase() === 'true' : v), z.boolean());

const secret = z.string().min(1, 'must not be empty').transform((value) => new Secret(value));

/** A path whose content is a secret (trailing newline dropped), read at load time. */
const secretFile = nonEmpty.transform((path, ctx) => {
  try {
    const value = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    if (value === '') {
      ctx.addIssue({ code: 'custom', message: `secret file ${path} is empty` });
      return z.NEVER;
    }
    return new Secret(value);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    ctx.addIssue({ code: 'custom', message: `cannot read secret file ${path} (${reason})` });
    return z.NEVER;
  }
});

/** A fixed duration like `30s`, `5min` (or `5m`), `1h30min`, `7d`, as milliseconds (duration.ts). */
const duration = () =>
  z.string().transform((text, ctx) => {
    const parsed = readDuration(text);
    if (!parsed.ok) {
      ctx.addIssue({ code: 'custom', message: parsed.problem });
      return z.NEVER;
    }
    return parsed.value;
  });

/** A URL that may carry a token (webhooks, ping URLs): validated, then kept as a Secret. */
const secretUrl = z.url().transform((value) => new Secret(value));

/**
 * When a backup type runs: a daily time (`at: "03:00"`) or a cron expression (5 fields, or 6 with
 * seconds first), in `timezone` (default: the top-level timezone). `type: verify` runs
 * `agent verify` instead: at `depth`, on the newest backup or on every backup not yet verified.
 */
const scheduleSchema = z.strictObject({
  type: z.enum([...BACKUP_TYPES, 'verify']).default('dump'),
  /** verify only: how deep (default archive). */
  depth: z.enum(VERIFY_DEPTHS as [string, ...string[]]).optional(),
  /** verify only: `latest` (the newest backup of each type family) or `new` (every backup not verified yet at this depth). */
  backups: z.enum(['latest', 'new']).optional(),
  /** verify at depth restore only: replay the archived binlog past the backup up to the last recoverable time. */
  replay_binlog: z.boolean().optional(),
  at: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a 24-hour time HH:MM, e.g. "03:00"')
    .optional(),
  cron: nonEmpty.optional(),
  timezone: nonEmpty.optional(),
  /** A random delay of up to this much before each run, to spread load. */
  jitter: duration().optional(),
});

/** A retention window like `36h`, `7d`, `2w`, `6mo`, `1y6mo` (duration.ts); a bare `m` is refused as ambiguous. */
const calendarDuration = () =>
  z.string().transform((text, ctx) => {
    const parsed = readCalendarDuration(text);
    if (!parsed.ok) {
      ctx.addIssue({ code: 'custom', message: parsed.problem });
      return z.NEVER;
    }
    return parsed.value;
  });

/** A retention count: a positive number of periods, or -1 for all of them. */
const keepCount = () => int().pipe(z.int().min(-1, 'must be -1 (all) or more'));

/** restic's forget rules for periodic backups, and a count for manual ones. */
const familyRules = {
  keep_last: keepCount().optional(),
  keep_hourly: keepCount().optional(),
  keep_daily: keepCount().optional(),
  keep_weekly: keepCount().optional(),
  keep_monthly: keepCount().optional(),
  keep_yearly: keepCount().optional(),
  keep_within: calendarDuration().optional(),
  keep_within_hourly: calendarDuration().optional(),
  keep_within_daily: calendarDuration().optional(),
  keep_within_weekly: calendarDuration().optional(),
  keep_within_monthly: calendarDuration().optional(),
  keep_within_yearly: calendarDuration().optional(),
  manual: z.strictObject({ keep_last: keepCount().optional() }).optional(),
};

/**
 * Which backups prune keeps. Logical backups (dumps) and physical ones (full + incremental) are
 * separate families: each applies the rules to its own backups. `logical:` or `physical:` gives a
 * family its own rules, replacing the block's rules for it. A database's own block replaces the
 * shared one; a block keeps exactly what it says (an empty block keeps everything), and no block
 * at all means 7 daily, 4 weekly and 10 manual, per family.
 */
const retentionSchema = z.strictObject({
  ...familyRules,
  logical: z.strictObject(familyRules).optional(),
  physical: z.strictObject(familyRules).optional(),
  /** Point-in-time recovery to any moment this far back: the base and the binlog it needs are kept. */
  pitr_window: calendarDuration().optional(),
});

const compressionSchema = z.strictObject({
  /** Default zstd (or the shared setting, for a database's own compression block). */
  algorithm: z.enum(COMPRESSION_ALGORITHMS).optional(),
  /** zstd 1–19 (default 3), gzip 1–9 (default 6); ignored for none. */
  level: int().pipe(z.int().min(1).max(19)).optional(),
});

/** An X25519 age recipient (a public key, `age1…`), checked at load (age-recipient.ts). */
const ageRecipient = z.string().trim().superRefine((text, ctx) => {
  const problem = recipientProblem(text);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** A file of age recipients (`age -R` format), read at load: its recipients, checked. */
const recipientsFile = nonEmpty.transform((path, ctx) => {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `cannot read recipients file ${path} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})` });
    return z.NEVER;
  }
  const { recipients, problems } = parseRecipientsFile(text);
  for (const problem of problems) ctx.addIssue({ code: 'custom', message: `recipients file ${path}, ${problem}` });
  if (problems.length === 0 && recipients.length === 0) ctx.addIssue({ code: 'custom', message: `recipients file ${path} names no recipient` });
  return problems.length > 0 ? z.NEVER : recipients;
});

/**
 * An age identity file (the private key): only its path is kept, and handed to `age -d -i PATH`.
 * At load it must be readable and hold an identity; its content is never kept, logged or printed.
 */
const identityFile = nonEmpty.superRefine((path, ctx) => {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `cannot read identity file ${path} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})` });
    return;
  }
  if (!/^AGE-SECRET-KEY-1[0-9A-Z]+$/m.test(text)) {
    ctx.addIssue({ code: 'custom', message: `identity file ${path} holds no age identity (an AGE-SECRET-KEY-1… line, as age-keygen writes)` });
  }
});

/**
 * A passphrase file (age's scrypt recipient): only its path is kept, and the passphrase is read
 * from it where it is used (the worker thread that encrypts or decrypts). At load it must be
 * readable and hold one non-empty line; its content is never kept, logged or printed.
 */
const passphraseFile = nonEmpty.superRefine((path, ctx) => {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `cannot read passphrase file ${path} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})` });
    return;
  }
  const parsed = parsePassphrase(text);
  if ('problem' in parsed) ctx.addIssue({ code: 'custom', message: `passphrase file ${path}: ${parsed.problem}` });
});

/**
 * Client-side encryption with age: data objects are encrypted after compression, before they
 * leave the host. A backup host needs only the public recipients; the identity is for restores.
 * Or one secret: a passphrase (age's scrypt recipient), which both encrypts and decrypts.
 */
const encryptionSchema = z.strictObject({
  recipients: z.array(ageRecipient).optional(),
  recipients_file: recipientsFile.optional(),
  identity_file: identityFile.optional(),
  /** age's scrypt recipient; excludes recipients and recipients_file (normalize). */
  passphrase_file: passphraseFile.optional(),
  /** log2 of scrypt's cost for new passphrase-encrypted objects; age's default is 18. */
  scrypt_work_factor: int().pipe(z.int().min(SCRYPT_MIN_WORK_FACTOR).max(SCRYPT_MAX_WORK_FACTOR)).optional(),
});

const localStorageSchema = z.strictObject({
  type: z.literal('local'),
  path: nonEmpty,
});

const s3StorageSchema = z.strictObject({
  type: z.literal('s3'),
  bucket: nonEmpty,
  prefix: z.string().default(''),
  region: nonEmpty.default('us-east-1'),
  /** For S3-compatible services (MinIO, Ceph, R2, Scaleway, OVH…). */
  endpoint: z.url().optional(),
  force_path_style: bool().default(false),
  /** Without keys the default AWS credential chain is used (env, profile, instance role…). */
  access_key_id: secret.optional(),
  secret_access_key: secret.optional(),
  secret_access_key_file: secretFile.optional(),
  session_token: secret.optional(),
  /** A profile of the AWS shared config/credentials files (~/.aws, or credentials_file). */
  profile: nonEmpty.optional(),
  /** An AWS shared credentials file (INI, as `aws configure` writes), read with `profile` or its [default]. */
  credentials_file: nonEmpty.optional(),
  storage_class: nonEmpty.optional(),
  server_side_encryption: z.enum(['AES256', 'aws:kms']).optional(),
  sse_kms_key_id: nonEmpty.optional(),
  /**
   * when_supported: the SDK default (flexible checksums on every request).
   * when_required: only where the API demands one; needed by stores that do not understand
   * aws-chunked bodies (s3rver, some older S3-compatible services).
   */
  checksum: z.enum(['when_supported', 'when_required']).default('when_supported'),
  /**
   * Whether the store honours If-None-Match/If-Match on PutObject and If-Match on DeleteObject
   * (AWS S3 does). false: leases and locks fall back to read-compare-write (s3rver, older stores).
   */
  conditional_writes: bool().default(true),
  /**
   * Whether ListObjectsV2 with Delimiter "/" returns every sub-directory (AWS S3 does). false:
   * sub-directories are found by listing every key (s3rver misses directories that hold only
   * directories).
   */
  delimiter_listing: bool().default(true),
  /** Multipart part size. Memory is about part_size × (upload_concurrency + 1). 10 000 parts max. */
  part_size_mb: int().pipe(z.int().min(5).max(5120)).default(8),
  upload_concurrency: int().pipe(z.int().min(1).max(16)).default(2),
});

const gcsStorageSchema = z.strictObject({
  type: z.literal('gcs'),
  bucket: nonEmpty,
  prefix: z.string().default(''),
  /** A service-account key file; without it, application default credentials are used. */
  credentials_file: nonEmpty.optional(),
  project_id: nonEmpty.optional(),
  /** For emulators or private endpoints, e.g. http://127.0.0.1:9199. */
  endpoint: z.url().optional(),
  storage_class: nonEmpty.optional(),
  /** Whether the store honours generation preconditions (GCS does; the emulator does not). */
  conditional_writes: bool().default(true),
});

export const storageSchema = z.discriminatedUnion('type', [
  localStorageSchema,
  s3StorageSchema,
  gcsStorageSchema,
]);

const tlsSchema = z.strictObject({
  /**
   * disabled: plain TCP. required: TLS without certificate checks. verify_ca: the server
   * certificate must chain to ca_file (or the system roots). verify_identity: and match the host.
   */
  mode: z.enum(['disabled', 'required', 'verify_ca', 'verify_identity']).default('verify_identity'),
  ca_file: nonEmpty.optional(),
  cert_file: nonEmpty.optional(),
  key_file: nonEmpty.optional(),
});

const dumpSchema = z.strictObject({
  /**
   * Record binlog file/position and GTID at the snapshot when binary logging is on. MariaDB reads
   * them from the snapshot itself (binlog_snapshot_*), with no global lock and no extra grant.
   */
  binlog_coordinates: z.enum(['auto', 'off']).default('auto'),
  /** Extra arguments appended to the dump tool's command line (never put passwords here). */
  extra_args: z.array(nonEmpty).default([]),
});

const physicalSchema = z.strictObject({
  /** The server's data directory as this host sees it (a sidecar mounts it). Default: @@datadir. */
  datadir: nonEmpty.optional(),
  /** Incrementals on one full backup, at most; then the next backup is a full one. */
  max_chain_length: int().pipe(z.int().min(1).max(1000)).default(7),
  /** Back up a replica: pause its SQL thread (--safe-slave-backup) and record the primary's coordinates (--slave-info). */
  replica: bool().default(false),
  /** Extra arguments appended to the mariadb-backup command line (never a password). */
  extra_args: z.array(nonEmpty).default([]),
});

const binlogSchema = z.strictObject({
  /** Stream the server's binlog into the archive: `agent daemon` runs one capture per such entry. */
  enabled: bool().default(false),
  /** A segment is cut when this much binlog is pending… */
  segment_size_mb: int().pipe(z.int().min(1).max(1024)).default(16),
  /** …or when its oldest pending event arrived this long ago: the archive's lag. An idle server uploads nothing. */
  segment_age: duration().default(3_000),
  /**
   * A directory in which the capture creates and owns `binlog-spool.<name>/` (marked by a
   * `.backup-agent-spool` file; a non-empty one without it is refused), where mariadb-binlog writes
   * what it fetches. Default: $STATE_DIRECTORY under systemd, else a private temp directory.
   */
  spool_dir: nonEmpty.optional(),
  /** While segment uploads fail, binlog fetched but not yet archived may reach this much in the spool; past it the capture stops and fails loudly. */
  max_spool_mb: int().pipe(z.int().min(1)).default(4096),
  /** While connected and caught up, record this often that the archive is complete through now (restore "to now" on an idle server). */
  complete_mark_interval: duration().pipe(z.number().min(1000, 'must be at least 1s')).default(90_000),
  /** The replica server id the capture connects with (unique among the server's replicas). */
  server_id: int().pipe(z.int().min(1).max(4294967295)).optional(),
});

const verifySchema = z.strictObject({
  /**
   * Record each table's row count and CHECKSUM TABLE in the manifest at backup time, from a
   * consistent snapshot opened right after the backup's own, so a restore test compares with the
   * source. Costs one more full read of every table per backup (README). Needs binary logging
   * (the snapshot's binlog position says which point the figures describe).
   */
  record_figures: bool().default(false),
});

const databaseNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export const databaseSchema = z.strictObject({
  /** The entry's name: used in object keys, CLI flags and logs. */
  name: z
    .string()
    .regex(databaseNamePattern, 'must be 1–64 letters, digits, "_", "." or "-", starting with a letter or digit'),
  host: nonEmpty.optional(),
  port: int().pipe(z.int().min(1).max(65535)).optional(),
  socket: nonEmpty.optional(),
  user: nonEmpty.default('root'),
  password: secret.optional(),
  password_file: secretFile.optional(),
  tls: tlsSchema.optional(),
  /** Schemas to back up; default all user schemas (not mysql, sys, information_schema, performance_schema). */
  schemas: z.array(nonEmpty).min(1).optional(),
  exclude_schemas: z.array(nonEmpty).default([]),
  dump: dumpSchema.prefault({}),
  physical: physicalSchema.prefault({}),
  binlog: binlogSchema.prefault({}),
  verify: verifySchema.prefault({}),
  /** Default: one logical backup a day at 01:00 in the top-level timezone. */
  schedules: z.array(scheduleSchema).optional(),
  retention: retentionSchema.optional(),
  storage: storageSchema.optional(),
  compression: compressionSchema.optional(),
  /** This database's own encryption block; replaces the shared one. */
  encryption: encryptionSchema.optional(),
});

const toolsSchema = z.strictObject({
  /** Dump tool; default: mariadb-dump, else mysqldump, whichever is on PATH. */
  dump: nonEmpty.optional(),
  /** SQL client used by restore; default: mariadb, else mysql. */
  client: nonEmpty.optional(),
  /** Binlog reader for capture and point-in-time replay; default: mariadb-binlog, else mysqlbinlog. */
  binlog: nonEmpty.optional(),
  /** Physical backup tool; default: mariadb-backup, else mariabackup. */
  backup: nonEmpty.optional(),
  /** xbstream extractor used by physical restores; default: mbstream. */
  mbstream: nonEmpty.optional(),
  /** The age CLI that encrypts and decrypts (encryption: blocks); default: age on PATH. */
  age: nonEmpty.optional(),
});

const daemonSchema = z.strictObject({
  /** The HTTP listener for /healthz, /readyz, /metrics and /status. */
  listen_host: nonEmpty.default('127.0.0.1'),
  listen_port: int().pipe(z.int().min(0).max(65535)).default(9187),
  /** Jobs running at once, over all databases. */
  max_concurrent_jobs: int().pipe(z.int().min(1).max(64)).default(2),
  /** On SIGTERM, how long running jobs may finish before they are cancelled. */
  shutdown_grace: duration().default(300_000),
  /** At start-up, run a periodic job at once when its last successful backup is older than its period. */
  catch_up: bool().default(true),
});

/** Roles of API tokens, each allowed what the one before it is, and more. */
export const API_ROLES = ['viewer', 'operator', 'admin'] as const;

const apiTokenSchema = z.strictObject({
  /** Shown in the audit log instead of the token. */
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1–64 letters, digits, ".", "_" or "-"'),
  role: z.enum(API_ROLES),
  /** A file holding the token (trailing newline dropped); at least 32 characters, e.g. `openssl rand -hex 32`. */
  token_file: secretFile.refine((token) => token.reveal().length >= 32, 'the token must be at least 32 characters (openssl rand -hex 32 makes one)'),
});

const apiSchema = z.strictObject({
  /** Bearer tokens, each with a name and a role; requests without one of them get 401. */
  tokens: z.array(apiTokenSchema).min(1, 'name at least one token'),
  /** TLS on the daemon's listener: PEM certificate (chain) and key files. */
  tls: z.strictObject({ cert_file: nonEmpty, key_file: nonEmpty }).optional(),
  /** Serve the API over plain HTTP on an address other than loopback (behind a TLS proxy on the same host, say). */
  allow_insecure_http: bool().default(false),
  /** Requests per token (or per client address, before authentication) in each window; past it, 429. */
  rate_limit: z.strictObject({ max: int().pipe(z.int().min(1).max(100_000)).default(300), window: duration().default(60_000) }).prefault({}),
  /** Largest request body accepted, in KiB. */
  body_limit_kb: int().pipe(z.int().min(1).max(1024)).default(64),
});

const webhookSchema = z.strictObject({
  url: secretUrl,
  /** Which outcomes to send. */
  on: z.array(z.enum(['failure', 'success'])).min(1).default(['failure']),
  /** Only these database entries; default all. */
  databases: z.array(nonEmpty).optional(),
});

const heartbeatSchema = z.strictObject({
  /** healthchecks.io-style ping URL: `<url>/start` when a job starts, `<url>` on success, `<url>/fail` on failure. */
  url: secretUrl,
  /** The database entry this heartbeat watches; default all. */
  database: nonEmpty.optional(),
  type: z.enum(BACKUP_TYPES).optional(),
});

const notificationsSchema = z.strictObject({
  webhooks: z.array(webhookSchema).default([]),
  heartbeats: z.array(heartbeatSchema).default([]),
  /** Delivery attempts per notification (with backoff) before it is logged as lost. */
  attempts: int().pipe(z.int().min(1).max(10)).default(3),
  timeout: duration().default(10_000),
});

export const configSchema = z.strictObject({
  /** IANA time zone for schedules and displayed times. */
  timezone: nonEmpty.default('UTC'),
  log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  tools: toolsSchema.prefault({}),
  compression: compressionSchema.prefault({}),
  /** The default storage for every database that names none. */
  storage: storageSchema.optional(),
  /** The default retention for every database that names none. */
  retention: retentionSchema.optional(),
  /** The default encryption for every database that names none. */
  encryption: encryptionSchema.optional(),
  prune: z
    .strictObject({
      /** Objects under a database's prefix with no manifest, older than this, are removed by prune. */
      orphan_grace: duration().default(86_400_000),
      /**
       * A lock or lease (prune lock, running backup, binlog writer) not refreshed for this long is
       * stale: prune no longer honours it and another process may take it over. Holders refresh
       * every third of it.
       */
      lock_ttl: duration().default(600_000),
      /** When the daemon prunes every database, besides after each periodic backup. */
      daily_at: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a 24-hour time HH:MM').default('04:00'),
    })
    .prefault({}),
  databases: z.array(databaseSchema).min(1, 'name at least one database'),
  daemon: daemonSchema.prefault({}),
  /** The HTTP API on the daemon's listener (/v1); without this block only health, metrics and status are served. */
  api: apiSchema.optional(),
  notifications: notificationsSchema.prefault({}),
});

export type RawConfig = z.output<typeof configSchema>;
export type StorageConfig = z.output<typeof storageSchema>;
export type S3StorageConfig = z.output<typeof s3StorageSchema>;
export type GcsStorageConfig = z.output<typeof gcsStorageSchema>;
export type LocalStorageConfig = z.output<typeof localStorageSchema>;
export type EncryptionConfig = z.output<typeof encryptionSchema>;
export type CompressionConfig = z.output<typeof compressionSchema>;
export type RawDatabaseConfig = z.output<typeof databaseSchema>;
export type TlsConfig = z.output<typeof tlsSchema>;
export type RawSchedule = z.output<typeof scheduleSchema>;
export type DaemonConfig = z.output<typeof daemonSchema>;
export type ApiConfig = z.output<typeof apiSchema>;
export type ApiRole = (typeof API_ROLES)[number];
export type NotificationsConfig = z.output<typeof notificationsSchema>;
export type RawRetention = z.output<typeof retentionSchema>;
