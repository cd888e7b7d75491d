import type { Compression } from '../domain/backup.ts';
import { DEFAULT_POLICY, type FamilyPolicy, type RetentionPolicy } from '../domain/retention-policy.ts';
import type { Schedule, VerifySchedule } from '../domain/schedule.ts';
import { cronProblem, DEFAULT_SCHEDULE, toSchedule, toVerifySchedule } from './schedule.ts';
import { SCRYPT_DEFAULT_WORK_FACTOR } from './age-recipient.ts';
import type { CompressionConfig, EncryptionConfig, RawConfig, RawDatabaseConfig, RawRetention, StorageConfig } from './schema.ts';
import { isZeroDuration } from './duration.ts';
import type { Secret } from './secret.ts';

/**
 * Turns the validated file into the shape the agent runs on: per-database storage and compression
 * resolved against the shared defaults, secret sources merged, cross-field rules checked.
 * Pure: data in, data out, issues carry the YAML path to report.
 */

export interface ConfigIssue {
  path: (string | number)[];
  message: string;
}

export interface Connection {
  host: string | undefined;
  port: number;
  socket: string | undefined;
  user: string;
  password: Secret | undefined;
  tls: RawDatabaseConfig['tls'];
}

export type { Compression } from '../domain/backup.ts';

/**
 * A database's age encryption: new data objects go either to the public recipients or to the
 * passphrase (age's scrypt recipient, which must be a file's only one): exactly one of the two is
 * set. The identity file is what restores of X25519-encrypted objects decrypt with, when this
 * host has one. Only paths are kept: the identity is handed to `age -d -i PATH`, the passphrase
 * is read by the worker thread that uses it.
 */
export interface Encryption {
  /** X25519 recipients (`age1…`); empty when a passphrase encrypts. */
  recipients: string[];
  /** The passphrase file and scrypt's work factor for new objects; undefined with recipients. */
  passphrase: { file: string; workFactor: number } | undefined;
  identityFile: string | undefined;
}

export interface DatabaseConfig {
  name: string;
  connection: Connection;
  /** Explicit schema list, or undefined for every user schema. */
  schemas: string[] | undefined;
  excludeSchemas: string[];
  dump: RawDatabaseConfig['dump'];
  physical: RawDatabaseConfig['physical'];
  binlog: RawDatabaseConfig['binlog'];
  verify: RawDatabaseConfig['verify'];
  storage: StorageConfig;
  compression: Compression;
  /** Client-side encryption of every data object; undefined: stored as compressed. */
  encryption: Encryption | undefined;
  /** Periodic schedules, time zones resolved; the default is a daily dump at 01:00. */
  schedules: Schedule[];
  /** `type: verify` schedules: the daemon proves backups on them (agent verify). */
  verifySchedules: VerifySchedule[];
  retention: RetentionPolicy;
}

type RawFamilyRules = Omit<RawRetention, 'logical' | 'physical' | 'pitr_window'>;

function toFamilyPolicy(raw: RawFamilyRules): FamilyPolicy {
  return {
    periodic: {
      last: raw.keep_last,
      hourly: raw.keep_hourly,
      daily: raw.keep_daily,
      weekly: raw.keep_weekly,
      monthly: raw.keep_monthly,
      yearly: raw.keep_yearly,
      within: raw.keep_within,
      withinHourly: raw.keep_within_hourly,
      withinDaily: raw.keep_within_daily,
      withinWeekly: raw.keep_within_weekly,
      withinMonthly: raw.keep_within_monthly,
      withinYearly: raw.keep_within_yearly,
    },
    manual: { last: raw.manual?.keep_last },
  };
}

/** A retention block as the policy function takes it; none at all gives the documented default. */
export function toRetentionPolicy(raw: RawRetention | undefined): RetentionPolicy {
  if (!raw) return DEFAULT_POLICY;
  return {
    ...toFamilyPolicy(raw),
    // `0d` is no window, as a zero keep_within is no rule.
    pitrWindow: raw.pitr_window && !isZeroDuration(raw.pitr_window) ? raw.pitr_window : undefined,
    families: {
      ...(raw.logical ? { logical: toFamilyPolicy(raw.logical) } : {}),
      ...(raw.physical ? { physical: toFamilyPolicy(raw.physical) } : {}),
    },
  };
}

export interface AgentConfig {
  timezone: string;
  logLevel: RawConfig['log_level'];
  tools: RawConfig['tools'];
  databases: DatabaseConfig[];
  daemon: RawConfig['daemon'];
  api: RawConfig['api'];
  notifications: RawConfig['notifications'];
  prune: RawConfig['prune'];
}

const defaultLevel: Record<Compression['algorithm'], number> = { zstd: 3, gzip: 6, none: 0 };
const maxLevel: Record<Compression['algorithm'], number> = { zstd: 19, gzip: 9, none: 0 };

function resolveCompression(
  shared: CompressionConfig,
  own: CompressionConfig | undefined,
  path: (string | number)[],
  issues: ConfigIssue[],
): Compression {
  const algorithm = own?.algorithm ?? shared.algorithm ?? 'zstd';
  // A shared level applies only while the algorithm is the shared one: gzip's 9 is not zstd's 9.
  const level = own?.level ?? (algorithm === (shared.algorithm ?? 'zstd') ? shared.level : undefined) ?? defaultLevel[algorithm];
  if (algorithm !== 'none' && level > maxLevel[algorithm]) {
    issues.push({ path: [...path, 'level'], message: `${algorithm} level must be 1–${maxLevel[algorithm]}` });
  }
  return { algorithm, level };
}

/** Whether an address is loopback only: the API without TLS is served nowhere else unless the config says so. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function checkApi(api: NonNullable<RawConfig['api']>, listenHost: string, issues: ConfigIssue[]): void {
  const names = new Map<string, number>();
  const tokens = new Map<string, number>();
  api.tokens.forEach((token, i) => {
    const sameName = names.get(token.name);
    if (sameName !== undefined) issues.push({ path: ['api', 'tokens', i, 'name'], message: `duplicate token name "${token.name}" (also api.tokens[${sameName}])` });
    names.set(token.name, i);
    const sameToken = tokens.get(token.token_file.reveal());
    // The message names the entries, never the token.
    if (sameToken !== undefined) issues.push({ path: ['api', 'tokens', i, 'token_file'], message: `the same token as api.tokens[${sameToken}]: each name needs a token of its own` });
    tokens.set(token.token_file.reveal(), i);
  });
  if (!api.tls && !api.allow_insecure_http && !isLoopback(listenHost)) {
    issues.push({
      path: ['api', 'tls'],
      message: `the API would be served over plain HTTP on ${listenHost}: set tls (cert_file, key_file), bind daemon.listen_host to 127.0.0.1 behind a proxy, or set allow_insecure_http: true`,
    });
  }
}

/** The shared or the database's own encryption block, as the agent runs on it; issues carry the YAML path. */
function resolveEncryption(raw: EncryptionConfig | undefined, path: (string | number)[], issues: ConfigIssue[]): Encryption | undefined {
  if (!raw) return undefined;
  const recipients = [...new Set([...(raw.recipients ?? []), ...(raw.recipients_file ?? [])])];
  if (raw.passphrase_file !== undefined && (raw.recipients !== undefined || raw.recipients_file !== undefined)) {
    issues.push({
      path: [...path, 'passphrase_file'],
      message: `passphrase_file and ${raw.recipients !== undefined ? 'recipients' : 'recipients_file'}: age allows a passphrase (scrypt) only as a file's one recipient; encrypt either to the passphrase or to the public keys`,
    });
  }
  if (raw.scrypt_work_factor !== undefined && raw.passphrase_file === undefined) {
    issues.push({ path: [...path, 'scrypt_work_factor'], message: 'needs passphrase_file: the work factor is the cost of the passphrase (scrypt) encryption' });
  }
  if (recipients.length === 0 && raw.passphrase_file === undefined) {
    issues.push({
      path,
      message: 'encryption needs recipients, recipients_file or passphrase_file: the public keys (age1…) or the passphrase new backups are encrypted to (identity_file alone can only decrypt)',
    });
  }
  const passphrase = raw.passphrase_file === undefined ? undefined : { file: raw.passphrase_file, workFactor: raw.scrypt_work_factor ?? SCRYPT_DEFAULT_WORK_FACTOR };
  return { recipients: passphrase ? [] : recipients, passphrase, identityFile: raw.identity_file };
}

/** Checks of a storage block the schema cannot express (also used for `--from` flags). */
export function checkStorage(storage: StorageConfig, path: (string | number)[], issues: ConfigIssue[]): void {
  if (storage.type === 'local') return;
  if (/^\/|\/\/|(^|\/)\.\.?(\/|$)/.test(storage.prefix)) {
    issues.push({ path: [...path, 'prefix'], message: 'must be a relative key prefix without empty, "." or ".." segments' });
  }
  if (storage.type !== 's3') return;
  if (storage.secret_access_key && storage.secret_access_key_file) {
    issues.push({ path: [...path, 'secret_access_key_file'], message: 'give secret_access_key or secret_access_key_file, not both' });
  }
  const hasSecret = Boolean(storage.secret_access_key ?? storage.secret_access_key_file);
  if (Boolean(storage.access_key_id) !== hasSecret) {
    issues.push({ path: [...path, storage.access_key_id ? 'secret_access_key' : 'access_key_id'], message: 'access_key_id and secret_access_key go together (or leave both out to use the default AWS credential chain)' });
  }
  if (storage.credentials_file && storage.access_key_id) {
    issues.push({ path: [...path, 'credentials_file'], message: 'give access keys or credentials_file, not both' });
  }
  if (storage.sse_kms_key_id && storage.server_side_encryption !== 'aws:kms') {
    issues.push({ path: [...path, 'sse_kms_key_id'], message: 'needs server_side_encryption: aws:kms' });
  }
}

/**
 * A zone Intl accepts. UTC and the canonical IANA names are checked against Intl's list first:
 * creating a DateTimeFormat loads ICU's time zone data, ~6 MiB of resident memory that a process
 * which never formats a date (the binlog capture) need not pay. Aliases still go through it.
 */
export function isValidTimeZone(zone: string): boolean {
  if (zone === 'UTC' || Intl.supportedValuesOf('timeZone').includes(zone)) return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export function normalizeConfig(raw: RawConfig): { config: AgentConfig; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  const rootTimezone = raw.timezone;
  if (!isValidTimeZone(raw.timezone)) {
    issues.push({ path: ['timezone'], message: `unknown time zone "${raw.timezone}" (expected an IANA name like Europe/Paris)` });
  }
  if (raw.storage) checkStorage(raw.storage, ['storage'], issues);
  if (raw.api) checkApi(raw.api, raw.daemon.listen_host, issues);
  const sharedEncryption = resolveEncryption(raw.encryption, ['encryption'], issues);

  const seen = new Map<string, number>();
  const databases = raw.databases.map((db, i): DatabaseConfig => {
    const path = ['databases', i];
    const first = seen.get(db.name);
    if (first !== undefined) {
      issues.push({ path: [...path, 'name'], message: `duplicate database name "${db.name}" (also databases[${first}])` });
    } else {
      seen.set(db.name, i);
    }
    if (db.password && db.password_file) {
      issues.push({ path: [...path, 'password_file'], message: 'give password or password_file, not both' });
    }
    if (db.socket && (db.host ?? db.port) !== undefined) {
      issues.push({ path: [...path, 'socket'], message: 'give socket, or host and port, not both' });
    }
    if (db.schemas && db.exclude_schemas.length > 0) {
      issues.push({ path: [...path, 'exclude_schemas'], message: 'give schemas or exclude_schemas, not both' });
    }
    const storage = db.storage ?? raw.storage;
    if (!storage) {
      issues.push({ path: [...path, 'storage'], message: 'no storage: set storage here or a shared storage at the top level' });
    } else if (db.storage) {
      checkStorage(db.storage, [...path, 'storage'], issues);
    }
    const encryption = db.encryption ? resolveEncryption(db.encryption, [...path, 'encryption'], issues) : sharedEncryption;
    if (db.verify.record_figures && db.dump.binlog_coordinates === 'off') {
      issues.push({
        path: [...path, 'verify', 'record_figures'],
        message: 'needs dump.binlog_coordinates: auto: the figures are compared only when their binlog position is the backup\'s own',
      });
    }
    if (db.verify.record_figures && encryption) {
      issues.push({
        path: [...path, 'verify', 'record_figures'],
        message: 'the figures (table names, row counts, checksums) would be stored unencrypted in the manifest of an encrypted backup; turn one of them off',
      });
    }
    const schedules: Schedule[] = [];
    const verifySchedules: VerifySchedule[] = [];
    (db.schedules ?? [DEFAULT_SCHEDULE]).forEach((raw, j) => {
      const at = [...path, 'schedules', j];
      if ((raw.at === undefined) === (raw.cron === undefined)) {
        issues.push({ path: at, message: 'give either at: "HH:MM" or cron: "…"' });
      }
      const zone = raw.timezone ?? (isValidTimeZone(rootTimezone) ? rootTimezone : 'UTC');
      if (!isValidTimeZone(zone)) {
        issues.push({ path: [...at, 'timezone'], message: `unknown time zone "${zone}" (expected an IANA name like Europe/Paris)` });
      } else if (raw.cron !== undefined) {
        const problem = cronProblem(raw.cron, zone);
        if (problem) issues.push({ path: [...at, 'cron'], message: problem });
      }
      const zoneDefault = isValidTimeZone(rootTimezone) ? rootTimezone : 'UTC';
      if (raw.type === 'verify') {
        if (raw.replay_binlog && raw.depth !== 'restore') {
          issues.push({ path: [...at, 'replay_binlog'], message: `the binlog is replayed only by a restore: set depth: restore (here ${raw.depth ?? 'archive, the default'})` });
        }
        verifySchedules.push(toVerifySchedule(raw, zoneDefault));
        return;
      }
      for (const field of ['depth', 'backups', 'replay_binlog'] as const) {
        if (raw[field] !== undefined) issues.push({ path: [...at, field], message: `only a verify schedule (type: verify) takes ${field}` });
      }
      schedules.push(toSchedule({ ...raw, type: raw.type }, zoneDefault));
    });
    return {
      name: db.name,
      schedules,
      verifySchedules,
      retention: toRetentionPolicy(db.retention ?? raw.retention),
      connection: {
        host: db.socket ? undefined : (db.host ?? '127.0.0.1'),
        port: db.port ?? 3306,
        socket: db.socket,
        user: db.user,
        password: db.password ?? db.password_file,
        tls: db.tls,
      },
      schemas: db.schemas,
      excludeSchemas: db.exclude_schemas,
      dump: db.dump,
      physical: db.physical,
      binlog: db.binlog,
      verify: db.verify,
      // When storage is missing an issue is recorded and this placeholder is never used.
      storage: storage ?? { type: 'local', path: '' },
      compression: resolveCompression(raw.compression, db.compression, [...path, 'compression'], issues),
      encryption,
    };
  });

  const names = new Set(databases.map((d) => d.name));
  raw.notifications.webhooks.forEach((hook, i) => {
    hook.databases?.forEach((name, j) => {
      if (!names.has(name)) issues.push({ path: ['notifications', 'webhooks', i, 'databases', j], message: `no database entry named "${name}"` });
    });
  });
  raw.notifications.heartbeats.forEach((beat, i) => {
    if (beat.database !== undefined && !names.has(beat.database)) {
      issues.push({ path: ['notifications', 'heartbeats', i, 'database'], message: `no database entry named "${beat.database}"` });
    }
  });

  return {
    config: {
      timezone: raw.timezone,
      logLevel: raw.log_level,
      tools: raw.tools,
      databases,
      daemon: raw.daemon,
      api: raw.api,
      notifications: raw.notifications,
      prune: raw.prune,
    },
    issues,
  };
}
