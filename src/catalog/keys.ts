import { randomBytes } from 'node:crypto';

/**
 * The object-key layout (docs/FORMAT.md), relative to the storage root or prefix. Manifest format
 * version 2 and later (this agent writes):
 *
 *   <database>/backups/<backup-id>/manifest.json     written last: the backup exists once this exists
 *   <database>/backups/<backup-id>/dump.sql[.zst|.gz] the data of a logical backup
 *   <database>/backups/<backup-id>/backup.xbstream[.zst|.gz] the data of a physical backup
 *
 * Version 1 (agents before issue 11; still read, never written): the same names directly under
 * `<database>/<backup-id>/`. Backup IDs start with a digit, so every version-1 key of a database
 * sorts before its `backups/`, `binlog/` and `leases/` keys: a listing of `<database>/` finds them
 * all before the first key whose ID position does not start with a digit.
 *
 * Backup IDs are `YYYYMMDDTHHMMSS.mmmZ-<6 hex>`: the start time in UTC to the millisecond (ISO 8601
 * basic format) and a random suffix, so IDs, and keys, sort by creation time.
 */

export const MANIFEST_NAME = 'manifest.json';

/** The manifest format version whose keys sit directly under `<database>/<backup-id>/`. */
export const LEGACY_LAYOUT_VERSION = 1;
/** The layout this agent writes: `<database>/backups/<backup-id>/` (manifest version 2). */
export const CURRENT_LAYOUT_VERSION = 2;

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
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number, number];
  const time = new Date(Date.UTC(year, month - 1, day, hour, minute, second, Number(m[7])));
  // Impossible dates (month 13, Feb 30, hour 24) roll over, and years below 100 mean 19xx to
  // Date.UTC: they are not IDs this agent makes. Compared field by field, as a listing parses
  // every key of the catalog (formatting each time back into an ID costs more).
  const same =
    time.getUTCFullYear() === year && time.getUTCMonth() === month - 1 && time.getUTCDate() === day &&
    time.getUTCHours() === hour && time.getUTCMinutes() === minute && time.getUTCSeconds() === second;
  return same ? time : undefined;
}

export function databasePrefix(database: string): string {
  return `${database}/`;
}

/** Where the backups of the current layout live: `<database>/backups/`. */
export function backupsPrefix(database: string): string {
  return `${database}/backups/`;
}

/** The folder of one backup in the layout of manifest format `version` (default: the one written now). */
export function backupPrefix(database: string, id: string, version: number = CURRENT_LAYOUT_VERSION): string {
  return version <= LEGACY_LAYOUT_VERSION ? `${database}/${id}/` : `${backupsPrefix(database)}${id}/`;
}

export function manifestKey(database: string, id: string, version: number = CURRENT_LAYOUT_VERSION): string {
  return `${backupPrefix(database, id, version)}${MANIFEST_NAME}`;
}

export function dumpKey(database: string, id: string, extension: string, version: number = CURRENT_LAYOUT_VERSION): string {
  return `${backupPrefix(database, id, version)}dump.sql${extension}`;
}

/** The xbstream of a physical (full or incremental) backup. */
export function physicalKey(database: string, id: string, extension: string, version: number = CURRENT_LAYOUT_VERSION): string {
  return `${backupPrefix(database, id, version)}backup.xbstream${extension}`;
}

/** A key inside some backup's folder, in either layout. */
export interface BackupKey {
  database: string;
  id: string;
  /** The layout: LEGACY_LAYOUT_VERSION or CURRENT_LAYOUT_VERSION. */
  layout: number;
  /** The rest of the key after the backup's folder (`manifest.json`, `dump.sql.zst`, …). */
  name: string;
}

/** Splits a key inside a backup folder (`<db>/<id>/…` or `<db>/backups/<id>/…`); undefined for any other key. */
export function parseBackupKey(key: string): BackupKey | undefined {
  const parts = key.split('/');
  const [database, second, third] = parts;
  if (!database || !second) return undefined;
  if (second === 'backups') {
    if (!third || !isBackupId(third) || parts.length < 4) return undefined;
    return { database, id: third, layout: CURRENT_LAYOUT_VERSION, name: parts.slice(3).join('/') };
  }
  if (!isBackupId(second) || parts.length < 3) return undefined;
  return { database, id: second, layout: LEGACY_LAYOUT_VERSION, name: parts.slice(2).join('/') };
}

/** Splits a manifest key of either layout into its parts; undefined for any other key. */
export function parseManifestKey(key: string): { database: string; id: string; layout: number } | undefined {
  if (!key.endsWith(`/${MANIFEST_NAME}`)) return undefined; // half a catalog listing's keys: no split, no ID check
  const parsed = parseBackupKey(key);
  if (!parsed || parsed.name !== MANIFEST_NAME) return undefined;
  return { database: parsed.database, id: parsed.id, layout: parsed.layout };
}

/** Whether a listed key under `<database>/` is past every key of the legacy layout (its ID position does not start with a digit). */
export function isPastLegacyKeys(database: string, key: string): boolean {
  const first = key.charAt(databasePrefix(database).length);
  return first > '9';
}
