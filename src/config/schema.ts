import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { Secret } from './secret.ts';

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

const compressionSchema = z.strictObject({
  /** Default zstd (or the shared setting, for a database's own compression block). */
  algorithm: z.enum(['zstd', 'gzip', 'none']).optional(),
  /** zstd 1–19 (default 3), gzip 1–9 (default 6); ignored for none. */
  level: int().pipe(z.int().min(1).max(19)).optional(),
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
  storage_class: nonEmpty.optional(),
  server_side_encryption: z.enum(['AES256', 'aws:kms']).optional(),
  sse_kms_key_id: nonEmpty.optional(),
  /**
   * when_supported: the SDK default (flexible checksums on every request).
   * when_required: only where the API demands one; needed by stores that do not understand
   * aws-chunked bodies (s3rver, some older S3-compatible services).
   */
  checksum: z.enum(['when_supported', 'when_required']).default('when_supported'),
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
  storage: storageSchema.optional(),
  compression: compressionSchema.optional(),
});

const toolsSchema = z.strictObject({
  /** Dump tool; default: mariadb-dump, else mysqldump, whichever is on PATH. */
  dump: nonEmpty.optional(),
  /** SQL client used by restore; default: mariadb, else mysql. */
  client: nonEmpty.optional(),
});

export const configSchema = z.strictObject({
  /** IANA time zone for schedules and displayed times. */
  timezone: nonEmpty.default('UTC'),
  log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  tools: toolsSchema.prefault({}),
  compression: compressionSchema.prefault({}),
  /** The default storage for every database that names none. */
  storage: storageSchema.optional(),
  databases: z.array(databaseSchema).min(1, 'name at least one database'),
});

export type RawConfig = z.output<typeof configSchema>;
export type StorageConfig = z.output<typeof storageSchema>;
export type S3StorageConfig = z.output<typeof s3StorageSchema>;
export type GcsStorageConfig = z.output<typeof gcsStorageSchema>;
export type LocalStorageConfig = z.output<typeof localStorageSchema>;
export type CompressionConfig = z.output<typeof compressionSchema>;
export type RawDatabaseConfig = z.output<typeof databaseSchema>;
export type TlsConfig = z.output<typeof tlsSchema>;
