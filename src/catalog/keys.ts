import { randomBytes } from 'node:crypto';

/**
 * The object-key layout (docs/FORMAT.md), relative to the storage root or prefix:
 *
 *   <database>/<backup-id>/manifest.json     written last: the backup exists once this exists
 *   <database>/<backup-id>/dump.sql[.zst|.gz] the data of a logical backup
 *   <database>/<backup-id>/backup.xbstream[.zst|.gz] the data of a physical backup
 *
 * Backup IDs are `YYYYMMDDTHHMMSS.mmmZ-<6 hex>`: the start time in UTC to the millisecond (ISO 8601
 * basic format) and a random suffix, so IDs, and keys, sort by creation time.
 */

export const MANIFEST_NAME = 'manifest.json';

const ID_PATTERN = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z-[0-9a-f]{6}$/;

export function newBackupId(now: Date, random: Buffer = randomBytes(3)): string {
  const stamp = now.toISOString().replace(/[-:]/g, '');
  return `${stamp}-${random.toString('hex').slice(0, 6).padEnd(6, '0')}`;
}

export function isBackupId(value: string): boolean {
  return backupIdTime(value) !== undefined;
}

/** The time encoded in a backup ID. */
export function backupIdTime(id: string): Date | undefined {
  const m = ID_PATTERN.exec(id);
  if (!m) return undefined;
  const time = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), Number(m[7])));
  // Impossible dates (month 13, Feb 30) would roll over; they are not IDs this agent makes.
  return time.toISOString().replace(/[-:]/g, '') === id.slice(0, 20) ? time : undefined;
}

export function databasePrefix(database: string): string {
  return `${database}/`;
}

export function backupPrefix(database: string, id: string): string {
  return `${database}/${id}/`;
}

export function manifestKey(database: string, id: string): string {
  return `${backupPrefix(database, id)}${MANIFEST_NAME}`;
}

export function dumpKey(database: string, id: string, extension: string): string {
  return `${backupPrefix(database, id)}dump.sql${extension}`;
}

/** The xbstream of a physical (full or incremental) backup. */
export function physicalKey(database: string, id: string, extension: string): string {
  return `${backupPrefix(database, id)}backup.xbstream${extension}`;
}

/** Splits `<database>/<id>/manifest.json` into its parts; undefined for any other key. */
export function parseManifestKey(key: string): { database: string; id: string } | undefined {
  const parts = key.split('/');
  if (parts.length !== 3 || parts[2] !== MANIFEST_NAME) return undefined;
  const [database, id] = parts;
  if (!database || !id || !isBackupId(id)) return undefined;
  return { database, id };
}
