import { isAbsolute, resolve } from 'node:path';
import { checkStorage, type ConfigIssue } from '../config/normalize.ts';
import { storageSchema, type StorageConfig } from '../config/schema.ts';
import { usageError } from '../errors.ts';
import { listDatabases } from '../catalog/listing.ts';
import type { CommandContext, StoredDatabase } from './context.ts';

/**
 * `--from URL` and its companion flags: a storage location given on the command line instead of a
 * configured entry's, so `list`, `download` and `restore` work from any bucket (another agent's
 * archive after losing its host) with nothing but the bucket, its credentials and the key.
 * The flags become the same storage block the configuration file has, checked by the same schema;
 * an error names the flag that is wrong.
 */

export interface FromFlags {
  /** `s3://bucket[/prefix]`, `gs://bucket[/prefix]`, `file:///path` or a local path. */
  from: string;
  /** S3-compatible services (MinIO, Ceph, R2…) and emulators; implies path-style addressing unless `--from-option force_path_style=false`. */
  endpoint?: string | undefined;
  region?: string | undefined;
  /** A profile of the AWS shared credentials/config files. */
  profile?: string | undefined;
  /** s3: an AWS shared credentials file (with --profile, or its [default]); gs: a service-account JSON key file. */
  credentialsFile?: string | undefined;
  /** Any other storage option as `key=value` (the keys of the configuration's storage block). */
  options?: readonly string[] | undefined;
}

/** Storage options whose value is a secret: never accepted in argv, where `ps` shows them. */
const SECRET_OPTIONS: Record<string, string> = {
  access_key_id: 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment, or give --credentials-file',
  secret_access_key: 'set AWS_SECRET_ACCESS_KEY in the environment, or give secret_access_key_file=PATH or --credentials-file',
  session_token: 'set AWS_SESSION_TOKEN in the environment, or give --credentials-file',
};

/** Options with a flag of their own: given as `--from-option`, they would be ambiguous. */
const FLAG_OF: Record<string, string> = {
  endpoint: '--endpoint',
  region: '--region',
  profile: '--profile',
  credentials_file: '--credentials-file',
  type: '--from',
  bucket: '--from',
  prefix: '--from',
  path: '--from',
};

/** The scheme, bucket and prefix of `--from`; a local path for anything without a scheme. */
export function parseLocation(from: string, cwd = process.cwd()): { type: 's3' | 'gcs'; bucket: string; prefix: string } | { type: 'local'; path: string } {
  const text = from.trim();
  if (text === '') throw usageError('--from: empty location', 'give s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or a local directory');
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)?.[1]?.toLowerCase();
  if (scheme === undefined) return { type: 'local', path: isAbsolute(text) ? text : resolve(cwd, text) };
  if (scheme === 'file') {
    const path = decodeURIComponent(text.slice('file://'.length));
    if (!path.startsWith('/')) throw usageError(`--from ${from}: a file URL needs an absolute path (file:///var/backups)`);
    return { type: 'local', path };
  }
  if (scheme !== 's3' && scheme !== 'gs') {
    throw usageError(`--from ${from}: unknown scheme "${scheme}://"`, 'use s3://BUCKET/PREFIX (S3 and S3-compatible stores), gs://BUCKET/PREFIX (Google Cloud Storage) or a local directory');
  }
  const rest = text.slice(scheme.length + 3);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = slash < 0 ? '' : rest.slice(slash + 1).replace(/\/+$/, '');
  if (bucket === '') throw usageError(`--from ${from}: no bucket name`, `write ${scheme}://BUCKET/PREFIX`);
  return { type: scheme === 's3' ? 's3' : 'gcs', bucket, prefix };
}

/** `raw` checked by the configuration's storage schema and checks; the first problem, with the key it is about, otherwise. */
function checkRaw(raw: Record<string, unknown>): { storage: StorageConfig } | { key: string; message: string; more: number } {
  const parsed = storageSchema.safeParse(raw);
  const issues: ConfigIssue[] = parsed.success ? [] : parsed.error.issues.map((i) => ({ path: i.path.map((p) => (typeof p === 'symbol' ? String(p) : p)), message: i.message }));
  if (parsed.success) checkStorage(parsed.data, [], issues);
  const [first] = issues;
  if (!first) return { storage: (parsed as { data: StorageConfig }).data };
  return { key: String(first.path[0] ?? ''), message: first.message, more: issues.length - 1 };
}

/** An S3-compatible endpoint almost always wants path-style addressing (bucket in the path). */
function defaultPathStyle(raw: Record<string, unknown>, type: string, endpointGiven: boolean, pathStyleGiven: boolean): void {
  if (type === 's3' && endpointGiven && !pathStyleGiven) raw['force_path_style'] = true;
}

/** The storage options a request's `source` names as fields of their own; the others go in `options`. */
const REQUEST_FIELDS = ['endpoint', 'region', 'profile', 'credentials_file', 'access_key_id', 'secret_access_key', 'session_token'] as const;

/**
 * The storage of an API request's `source` (POST /v1/restores): the same location and options as
 * the flags, and, unlike argv, the keys themselves (a request body is not visible in `ps`; the
 * daemon never logs or returns them). Errors name the field under `prefix`.
 */
export function storageFromRequest(source: { url: string; endpoint?: string; region?: string; profile?: string; credentials_file?: string; options?: Record<string, string | number | boolean>; access_key_id?: string; secret_access_key?: string; session_token?: string }, prefix: string): StorageConfig {
  const location = parseLocation(source.url, '/');
  if (location.type === 'local') throw usageError(`${prefix}.url: a bucket URL (s3://, gs://): the daemon restores from local directories only through agent restore --from on the host`);
  const raw: Record<string, unknown> = { ...source.options, ...location };
  for (const key of REQUEST_FIELDS) {
    if (source[key] !== undefined) raw[key] = source[key];
  }
  defaultPathStyle(raw, location.type, source.endpoint !== undefined, source.options?.['force_path_style'] !== undefined);
  const checked = checkRaw(raw);
  if ('storage' in checked) return checked.storage;
  const { key } = checked;
  const field = key === '' || key === 'type' || key === 'bucket' || key === 'prefix' ? `${prefix}.url` : (REQUEST_FIELDS as readonly string[]).includes(key) ? `${prefix}.${key}` : `${prefix}.options.${key}`;
  throw usageError(`${field}: ${checked.message}`);
}

/** The storage block the flags describe, checked like the configuration's; a usage error naming the flag otherwise. */
export function storageFromFlags(flags: FromFlags, cwd = process.cwd()): StorageConfig {
  const location = parseLocation(flags.from, cwd);
  const raw: Record<string, unknown> = { ...location };
  const given = new Map<string, string>();
  for (const option of flags.options ?? []) {
    const eq = option.indexOf('=');
    const key = eq < 0 ? option.trim() : option.slice(0, eq).trim();
    if (eq < 0 || key === '') throw usageError(`--from-option ${option}: expected KEY=VALUE`, 'for example --from-option delimiter_listing=false');
    if (SECRET_OPTIONS[key]) throw usageError(`--from-option ${key}: a secret on the command line is visible to every user of the host (ps)`, SECRET_OPTIONS[key]);
    // It needs access_key_id beside it, which has no place in argv: the credentials file holds both.
    if (key === 'secret_access_key_file') throw usageError(`--from-option ${key}: the key ID that goes with it cannot be given on the command line`, 'give --credentials-file (an AWS shared credentials file), or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY');
    if (FLAG_OF[key]) throw usageError(`--from-option ${key}: give it as ${FLAG_OF[key]}`);
    if (given.has(key)) throw usageError(`--from-option ${key}: given twice`);
    given.set(key, option.slice(eq + 1));
    raw[key] = option.slice(eq + 1);
  }
  const flagged: [string, string | undefined][] = [
    ['endpoint', flags.endpoint],
    ['region', flags.region],
    ['profile', flags.profile],
    ['credentials_file', flags.credentialsFile === undefined ? undefined : resolve(cwd, flags.credentialsFile)],
  ];
  for (const [key, value] of flagged) {
    if (value === undefined) continue;
    const allowed = location.type === 's3' || (location.type === 'gcs' && (key === 'endpoint' || key === 'credentials_file'));
    if (!allowed) throw usageError(`${FLAG_OF[key]}: not an option of ${location.type === 'local' ? 'a local directory' : 'gs:// storage'}`);
    raw[key] = value;
  }
  defaultPathStyle(raw, location.type, flags.endpoint !== undefined, given.has('force_path_style'));
  const checked = checkRaw(raw);
  if ('storage' in checked) return checked.storage;
  const { key } = checked;
  const flag = FLAG_OF[key] ?? (key === '' ? '--from' : `--from-option ${key}`);
  const more = checked.more > 0 ? ` (and ${checked.more} more)` : '';
  throw usageError(`${flag}: ${checked.message}${more}`, key !== '' && !FLAG_OF[key] && !given.has(key) ? undefined : `storage options are those of the configuration's storage block (README, Storage)`);
}

/**
 * The database to read in the `--from` store: `name` when given (its folder there), else the only
 * one the store holds; a usage error naming what is there otherwise.
 */
export async function archiveSource(ctx: CommandContext, flags: FromFlags, name: string | undefined, flag = '--database'): Promise<StoredDatabase> {
  const storage = storageFromFlags(flags);
  if (name !== undefined) return { name, storage };
  const names = await listDatabases(await ctx.storage({ name: '', storage }));
  const [only, ...rest] = names;
  if (only !== undefined && rest.length === 0) return { name: only, storage };
  if (only === undefined) throw usageError(`--from ${flags.from}: no database folders there`, 'check the bucket and prefix: the prefix is the storage prefix the agent was configured with');
  throw usageError(`${flag} is required: ${flags.from} holds several databases`, `one of: ${names.join(', ')}`);
}

/** The flags that only mean something with --from, refused without it rather than ignored. */
export function checkFromFlags(flags: Partial<FromFlags>): void {
  if (flags.from !== undefined) return;
  const stray = [
    ['--endpoint', flags.endpoint],
    ['--region', flags.region],
    ['--profile', flags.profile],
    ['--credentials-file', flags.credentialsFile],
    ['--from-option', flags.options?.length ? flags.options : undefined],
  ].find(([, v]) => v !== undefined);
  if (stray) throw usageError(`${String(stray[0])} needs --from: it describes the storage given there`, 'add --from URL, or drop the flag to use the configured storage');
}

/** The `--from` flags as commander parses them. */
export interface FromCliOptions {
  from?: string;
  endpoint?: string;
  region?: string;
  profile?: string;
  credentialsFile?: string;
  fromOption?: string[];
}

/** The --from flags of a command, or undefined when it reads the configured storage (companion flags without --from are refused). */
export function fromFlags(opts: FromCliOptions): FromFlags | undefined {
  const flags = { from: opts.from, endpoint: opts.endpoint, region: opts.region, profile: opts.profile, credentialsFile: opts.credentialsFile, options: opts.fromOption };
  checkFromFlags(flags);
  return flags.from === undefined ? undefined : { ...flags, from: flags.from };
}
