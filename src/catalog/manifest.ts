import { z } from 'zod';
import { BACKUP_TYPES } from '../domain/backup.ts';
import { backupPrefix, MANIFEST_NAME } from './keys.ts';

/**
 * The manifest: one JSON document per backup, versioned, written after all data objects. Its
 * presence is what makes a backup exist. docs/FORMAT.md documents every field for other tools.
 */

export const MANIFEST_FORMAT = 'backup-agent/manifest';

export { BACKUP_TYPES, type BackupType } from '../domain/backup.ts';
/**
 * The newest manifest format version this agent reads and writes. Version 2 changed no field: it
 * says the backup lives in the `<database>/backups/<id>/` layout (keys.ts); version 1 manifests
 * (under `<database>/<id>/`) are still read. Version 3 (same layout as 2) is an encrypted backup:
 * `encryption` is set, and an agent that knows only version 2 refuses it ("upgrade the agent")
 * instead of feeding age ciphertext to a decompressor. Backups without encryption are still
 * written as version 2, so older agents keep reading them.
 */
export const MANIFEST_VERSION = 3;
export const MANIFEST_VERSIONS = [1, 2, 3] as const;
/** The version an unencrypted backup is written with. */
export const PLAIN_MANIFEST_VERSION = 2;
/** The version an encrypted backup is written with. */
export const ENCRYPTED_MANIFEST_VERSION = 3;

/**
 * How the data objects are encrypted: age (https://age-encryption.org/v1) to these recipients, so
 * `agent list` and an error can say which keys open the backup. An X25519 recipient is recorded
 * by its public key; a passphrase (age's scrypt recipient, always a file's only one) by its type
 * alone: no salt, no work factor, nothing derived from the passphrase. No secret, and no digest
 * of the plaintext.
 */
const recipientRecordSchema = z.discriminatedUnion('type', [z.object({ type: z.literal('X25519'), recipient: z.string() }), z.object({ type: z.literal('scrypt') })]);

export const encryptionSchema = z
  .object({
    format: z.literal('age'),
    recipients: z.array(recipientRecordSchema).min(1),
  })
  .refine((e) => e.recipients.length === 1 || e.recipients.every((r) => r.type !== 'scrypt'), {
    message: 'a scrypt (passphrase) recipient must be the only one',
    path: ['recipients'],
  });

export type EncryptionRecord = z.infer<typeof encryptionSchema>;
export type RecipientRecord = z.infer<typeof recipientRecordSchema>;

/** Pure: the record of an encryption to `recipients` (X25519 `age1…` keys, checked at config load). */
export function encryptionRecord(recipients: readonly string[]): EncryptionRecord {
  return { format: 'age', recipients: recipients.map((recipient) => ({ type: 'X25519', recipient })) };
}

/** Pure: the record of an encryption to a passphrase (age's scrypt recipient). */
export function passphraseRecord(): EncryptionRecord {
  return { format: 'age', recipients: [{ type: 'scrypt' }] };
}

/** Whether a record says the data opens with a passphrase, not with an identity. */
export function isPassphraseRecord(encryption: EncryptionRecord): boolean {
  return encryption.recipients.some((r) => r.type === 'scrypt');
}

const objectSchema = z.object({
  /** Key relative to the storage root/prefix. */
  key: z.string(),
  role: z.enum(['data']),
  /** Bytes stored (after compression and encryption). */
  sizeBytes: z.number().int().nonnegative(),
  /** SHA-256 of the stored bytes (the ciphertext, when encrypted), hex. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  compression: z.enum(['zstd', 'gzip', 'none']),
  /** Bytes before compression (the SQL text). */
  rawSizeBytes: z.number().int().nonnegative(),
});

/** Where a replica stood in its primary's binlog, as mariadb-backup --slave-info reports it. */
const primarySchema = z.object({
  /** The replica's gtid_slave_pos when it replicates by GTID; null otherwise. */
  gtid: z.string().nullable(),
  /** The primary's binlog file and position the replica had executed up to; null in GTID mode. */
  file: z.string().nullable(),
  position: z.number().int().nonnegative().nullable(),
  /** mariadb-backup's own line, verbatim. */
  reported: z.string(),
});

/** What a physical backup covers, as mariadb-backup reports it (LSNs as decimal strings: 64-bit). */
const physicalSchema = z.object({
  fromLsn: z.string().regex(/^\d+$/),
  toLsn: z.string().regex(/^\d+$/),
  lastLsn: z.string().regex(/^\d+$/),
  /** The backup this incremental applies on top of; null for a full backup. */
  parent: z.string().nullable(),
  /** 1 for a full backup, parent's + 1 for an incremental. */
  chainLength: z.number().int().min(1),
  /** The server's datadir the backup was taken from. */
  datadir: z.string(),
  /** Replica mode: the primary's coordinates this replica had applied at the backup; null otherwise. */
  primary: primarySchema.nullable(),
});

const binlogSchema = z.object({
  file: z.string(),
  position: z.number().int().nonnegative(),
  /** GTID position at the snapshot (MariaDB domain-server-seq list, or MySQL GTID set); null when unknown. */
  gtid: z.string().nullable(),
});

/**
 * Row counts and checksums of every table of the backup, taken at backup time when the entry sets
 * `verify.record_figures`, so a restore test compares with the source, not only with itself. They
 * come from a consistent-snapshot session of their own, opened right after the backup's snapshot:
 * `at` is that snapshot's binlog position, and the figures describe the backup's data only when
 * `at` equals the manifest's `binlog` (no transaction committed in between). Optional, added
 * without a version change: an agent that predates it ignores it (zod drops unknown fields) and
 * only loses the comparison.
 */
const figuresSchema = z.object({
  /** How they were taken; `consistent-snapshot` is the only method this agent compares. */
  method: z.string(),
  /** The binlog coordinates of the figures' snapshot. */
  at: binlogSchema,
  takenAt: z.iso.datetime(),
  tables: z.array(
    z.object({
      schema: z.string(),
      table: z.string(),
      /** SELECT COUNT(*) in the snapshot. */
      rows: z.number().int().nonnegative(),
      /** CHECKSUM TABLE … EXTENDED in the snapshot (decimal, 64-bit as a string); null when the server gave none. */
      checksum: z.string().regex(/^\d+$/).nullable(),
    }),
  ),
});

export const manifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  version: z.union([z.literal(1), z.literal(2), z.literal(3)]),
  id: z.string(),
  database: z.string(),
  type: z.enum(BACKUP_TYPES),
  trigger: z.enum(['manual', 'periodic']),
  status: z.enum(['completed']),
  startedAt: z.iso.datetime(),
  completedAt: z.iso.datetime(),
  sizeBytes: z.number().int().nonnegative(),
  rawSizeBytes: z.number().int().nonnegative(),
  compression: z.object({ algorithm: z.enum(['zstd', 'gzip', 'none']), level: z.number().int() }),
  /** null: stored as compressed; set (version 3): every data object is age-encrypted. */
  encryption: encryptionSchema.nullable(),
  schemas: z.array(z.string()),
  objects: z.array(objectSchema).min(1),
  binlog: binlogSchema.nullable(),
  /** Physical backups only. */
  physical: physicalSchema.optional(),
  /** Table figures at backup time (verify.record_figures); absent when not recorded. */
  figures: figuresSchema.optional(),
  server: z.object({
    flavor: z.enum(['mariadb', 'mysql']),
    version: z.string(),
    serverId: z.number().int(),
    hostname: z.string(),
  }),
  tool: z.object({ name: z.string(), version: z.string() }),
  agent: z.object({ version: z.string(), hostname: z.string() }),
});

export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestObject = z.infer<typeof objectSchema>;
export type BinlogCoordinates = z.infer<typeof binlogSchema>;
export type PhysicalInfo = z.infer<typeof physicalSchema>;
export type PrimaryCoordinates = z.infer<typeof primarySchema>;
export type TableFigures = z.infer<typeof figuresSchema>;

/** A manifest written by a newer agent, in a format version this one does not know. */
export class NewerManifestError extends Error {
  readonly version: number;

  constructor(version: number) {
    super(`manifest version ${version} is newer than this agent understands (${MANIFEST_VERSION}); upgrade the agent`);
    this.name = 'NewerManifestError';
    this.version = version;
  }
}

/** Parses manifest JSON; throws an Error naming the first problem (NewerManifestError for a newer format). */
export function parseManifest(text: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`manifest is not JSON: ${(err as Error).message}`);
  }
  return validateManifest(json);
}

/** Checks decoded manifest JSON (parseManifest without the decoding): the same errors. */
export function validateManifest(json: unknown): Manifest {
  const version = (json as { version?: unknown } | null)?.version;
  if (typeof version === 'number' && version > MANIFEST_VERSION) {
    throw new NewerManifestError(version);
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`manifest is invalid at ${issue?.path.join('.') || '(top level)'}: ${issue?.message ?? 'unknown'}`);
  }
  const outside = objectsOutsideFolder(parsed.data);
  if (outside) throw new Error(`manifest is invalid at ${outside.path}: ${outside.key} is not in the folder of backup ${parsed.data.database}/${parsed.data.id}`);
  return parsed.data;
}

/**
 * Pure: the first object a manifest names outside its own backup's folder (another backup's data,
 * a binlog segment, a path with `..`), which prune would otherwise delete with this backup: such a
 * manifest is unreadable, never trusted.
 */
export function objectsOutsideFolder(manifest: Pick<Manifest, 'database' | 'id' | 'version' | 'objects'>): { path: string; key: string } | undefined {
  const folder = backupPrefix(manifest.database, manifest.id, manifest.version);
  for (const [i, object] of manifest.objects.entries()) {
    const name = object.key.startsWith(folder) ? object.key.slice(folder.length) : '';
    if (!name || name.includes('/') || name === '.' || name === '..' || name === MANIFEST_NAME) return { path: `objects.${i}.key`, key: object.key };
  }
  return undefined;
}

export function serializeManifest(manifest: Manifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}
